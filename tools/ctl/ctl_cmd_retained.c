/*
 * ctl_cmd_retained.c - hamqtt-ctl's retained and publish commands over
 * /api/v5/mqtt/retainer/... and POST /api/v5/publish. Retained messages
 * are on every node, so the node asked answers alone. A topic in a path is
 * one URL-encoded segment (a%2Fb): the node decodes it.
 */
#include "ctl.h"

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The base64 payload of o decoded into a malloc'd buffer (*n bytes), or
 * NULL when there is none or it is not base64. */
static unsigned char *payload(const cJSON *o, size_t *n)
{
	const char *s = ctl_jstr(o, "payload");
	size_t len = s ? strlen(s) : 0;
	*n = 0;
	if (!s || len % 4)
		return NULL;
	unsigned char *out = malloc(len / 4 * 3 + 1);
	int r = out && len ? EVP_DecodeBlock(out, (const unsigned char *)s, (int)len) : 0;
	if (!out || r < 0) {
		free(out);
		return NULL;
	}
	size_t pad = len && s[len - 1] == '=' ? (len > 1 && s[len - 2] == '=' ? 2 : 1) : 0;
	*n = (size_t)r - pad;
	return out;
}

int ctl_cmd_retained_list(struct ctl *c, const struct ctl_args *a)
{
	static const char path[] = "/api/v5/mqtt/retainer/messages";
	cJSON *doc = NULL;
	int rc = ctl_list(c, a, path, "", &doc);
	if (rc != 0 || c->json) {
		cJSON_Delete(doc);
		return rc;
	}
	/* the list carries no payloads (EMQX's neither): `retained show` has it */
	const cJSON *data = cJSON_GetObjectItemCaseSensitive(doc, "data"), *o;
	static const char *const head[] = { "TOPIC", "QOS", "PUBLISHED_AT" };
	static const char *const keys[] = { "topic", "qos", "publish_at" };
	struct ctl_table *t = ctl_table_new(3, head);
	cJSON_ArrayForEach(o, data)
		ctl_table_row_json(t, o, keys);
	ctl_table_print(t);
	ctl_table_free(t);
	ctl_list_footer(doc, "retained message", "retained messages");
	cJSON_Delete(doc);
	return 0;
}

static int topic_path(char *path, size_t cap, const char *topic)
{
	size_t n = (size_t)snprintf(path, cap, "/api/v5/mqtt/retainer/message/");
	if (ctl_urlenc(path, cap, &n, topic) != 0) {
		fprintf(stderr, "hamqtt-ctl: topic too long\n");
		return -1;
	}
	return 0;
}

/* retained show TOPIC: its fields, then the payload as it is (bytes). */
int ctl_cmd_retained_show(struct ctl *c, const struct ctl_args *a)
{
	char path[4096];
	cJSON *doc = NULL;
	if (topic_path(path, sizeof(path), a->pos[0]) ||
	    ctl_call(c, "GET", path, NULL, false, &doc) != 0)
		return 1;
	if (!c->json) {
		char qos[16], at[64];
		size_t n;
		unsigned char *p = payload(doc, &n);
		printf("topic         %s\nqos           %s\npublished_at  %s\nbytes         %zu\n"
		       "payload       ", ctl_jstr(doc, "topic") ? ctl_jstr(doc, "topic") : "-",
		       ctl_jtext(doc, "qos", qos, sizeof(qos)),
		       ctl_jtext(doc, "publish_at", at, sizeof(at)), n);
		if (p)
			fwrite(p, 1, n, stdout);
		printf("\n");
		free(p);
	}
	cJSON_Delete(doc);
	return 0;
}

int ctl_cmd_retained_delete(struct ctl *c, const struct ctl_args *a)
{
	char path[4096];
	if (topic_path(path, sizeof(path), a->pos[0]) ||
	    ctl_call(c, "DELETE", path, NULL, false, NULL) != 0)
		return 1;
	if (c->json)
		printf("{}\n"); /* 204: no body */
	else
		printf("retained message of %s deleted\n", a->pos[0]);
	return 0;
}

/* publish TOPIC MESSAGE [--qos N] [--retain]: POST /api/v5/publish. 200
 * {"id"} when a subscriber matched, 202 when none did: both succeed. */
int ctl_cmd_publish(struct ctl *c, const struct ctl_args *a)
{
	const char *q = ctl_opt(a, "qos");
	if (q && (strlen(q) != 1 || q[0] < '0' || q[0] > '2')) {
		fprintf(stderr, "hamqtt-ctl: --qos is 0, 1 or 2\n");
		return 2;
	}
	cJSON *req = cJSON_CreateObject(), *doc = NULL;
	char *body = NULL;
	if (!req || !cJSON_AddStringToObject(req, "topic", a->pos[0]) ||
	    !cJSON_AddStringToObject(req, "payload", a->pos[1]) ||
	    !cJSON_AddNumberToObject(req, "qos", q ? q[0] - '0' : 0) ||
	    !cJSON_AddBoolToObject(req, "retain", ctl_opt(a, "retain") != NULL) ||
	    !(body = cJSON_PrintUnformatted(req))) {
		cJSON_Delete(req);
		fprintf(stderr, "hamqtt-ctl: out of memory\n");
		return 1;
	}
	cJSON_Delete(req);
	int rc = ctl_call(c, "POST", "/api/v5/publish", body, false, &doc);
	cJSON_free(body);
	if (rc == 0 && !c->json) {
		const char *id = ctl_jstr(doc, "id");
		if (id)
			printf("published to %s (id %s)\n", a->pos[0], id);
		else
			printf("published to %s; no subscriber matched\n", a->pos[0]);
	}
	cJSON_Delete(doc);
	return rc;
}
