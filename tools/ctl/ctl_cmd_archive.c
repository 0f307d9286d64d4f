/*
 * ctl_cmd_archive.c - hamqtt-ctl's archive commands over GET
 * /api/v5/archive/messages (issue 12): `archive list` prints a range of the
 * archived messages, `archive replay` republishes a range under a prefix
 * through POST /api/v5/publish. The database is the cluster's: the node
 * asked answers alone.
 */
#include "ctl.h"

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPLAY_PAGE 1000 /* messages per read of a replay */
#define PAYLOAD_CELL 60  /* a list's payload column is cut at this many characters */

/* Append "&name=<value, URL-encoded>" when value is set. -1: too long. */
static int add_arg(char *q, size_t cap, size_t *len, const char *name, const char *value)
{
	if (!value)
		return 0;
	int n = snprintf(q + *len, cap - *len, "%s%s=", *len ? "&" : "", name);
	if (n < 0 || (size_t)n >= cap - *len)
		return -1;
	*len += (size_t)n;
	return ctl_urlenc(q, cap, len, value);
}

/* archive, topic, from and to of a's options as a query string. */
static int range_query(const struct ctl_args *a, char *q, size_t cap)
{
	size_t ql = 0;
	q[0] = 0;
	if (add_arg(q, cap, &ql, "archive", ctl_opt(a, "archive")) ||
	    add_arg(q, cap, &ql, "topic", ctl_opt(a, "topic")) ||
	    add_arg(q, cap, &ql, "from", ctl_opt(a, "from")) ||
	    add_arg(q, cap, &ql, "to", ctl_opt(a, "to"))) {
		fprintf(stderr, "hamqtt-ctl: arguments too long\n");
		return -1;
	}
	return 0;
}

/* The payload cell: the text when the bytes are printable ASCII, else
 * "base64:<as sent>"; cut to PAYLOAD_CELL characters. */
static void payload_cell(const cJSON *o, char *out, size_t cap)
{
	const char *b64 = ctl_jstr(o, "payload");
	size_t len = b64 ? strlen(b64) : 0;
	unsigned char *raw = b64 && len % 4 == 0 ? malloc(len / 4 * 3 + 1) : NULL;
	int n = raw && len ? EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)len) : 0;
	if (n > 0)
		n -= (b64[len - 1] == '=') + (len > 1 && b64[len - 2] == '=');
	bool text = raw && n >= 0;
	for (int i = 0; text && i < n; i++)
		text = raw[i] >= 0x20 && raw[i] < 0x7f;
	if (text)
		snprintf(out, cap, "%.*s", n, (const char *)raw);
	else
		snprintf(out, cap, "base64:%s", b64 ? b64 : "");
	free(raw);
	if (strlen(out) > PAYLOAD_CELL && cap > PAYLOAD_CELL)
		strcpy(out + PAYLOAD_CELL - 3, "...");
}

/* archive list [--archive N] [--topic F] [--from T] [--to T] [--page N] [--limit N] [--all] */
int ctl_cmd_archive_list(struct ctl *c, const struct ctl_args *a)
{
	static const char path[] = "/api/v5/archive/messages";
	char q[2048];
	cJSON *doc = NULL;
	if (range_query(a, q, sizeof(q)))
		return 1;
	int rc = ctl_list(c, a, path, q, &doc);
	if (rc != 0 || c->json) {
		cJSON_Delete(doc);
		return rc;
	}
	const cJSON *data = cJSON_GetObjectItemCaseSensitive(doc, "data"), *o;
	static const char *const head[] = { "TIME", "TOPIC", "QOS", "CLIENTID", "PAYLOAD" };
	struct ctl_table *t = ctl_table_new(5, head);
	cJSON_ArrayForEach(o, data) {
		char ts[64], qos[16], cid[256], pl[PAYLOAD_CELL + 16];
		const char *topic = ctl_jstr(o, "topic");
		payload_cell(o, pl, sizeof(pl));
		const char *cells[] = { ctl_jtext(o, "timestamp", ts, sizeof(ts)), topic ? topic : "-",
					ctl_jtext(o, "qos", qos, sizeof(qos)),
					ctl_jtext(o, "clientid", cid, sizeof(cid)), pl };
		ctl_table_row(t, cells);
	}
	ctl_table_print(t);
	ctl_table_free(t);
	ctl_list_footer(doc, "archived message", "archived messages");
	cJSON_Delete(doc);
	return 0;
}

/* One archived message o published again under prefix. 0, or 1 after the
 * API's message (ctl_call prints it). */
static int republish(const struct ctl *c, const cJSON *o, const char *prefix, bool retain)
{
	const char *topic = ctl_jstr(o, "topic"), *payload = ctl_jstr(o, "payload");
	const cJSON *qos = cJSON_GetObjectItemCaseSensitive(o, "qos");
	if (!topic || !payload || !cJSON_IsNumber(qos)) {
		fprintf(stderr, "hamqtt-ctl: unexpected item in the archive's answer\n");
		return 1;
	}
	size_t tl = strlen(prefix) + 1 + strlen(topic) + 1;
	char *to = malloc(tl);
	cJSON *req = cJSON_CreateObject();
	char *body = NULL;
	if (to)
		snprintf(to, tl, "%s/%s", prefix, topic);
	if (!to || !req || !cJSON_AddStringToObject(req, "topic", to) ||
	    !cJSON_AddStringToObject(req, "payload", payload) ||
	    !cJSON_AddStringToObject(req, "payload_encoding", "base64") ||
	    !cJSON_AddNumberToObject(req, "qos", qos->valueint) ||
	    !cJSON_AddBoolToObject(req, "retain",
				   retain && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "retain"))) ||
	    !(body = cJSON_PrintUnformatted(req))) {
		free(to);
		cJSON_Delete(req);
		fprintf(stderr, "hamqtt-ctl: out of memory\n");
		return 1;
	}
	free(to);
	cJSON_Delete(req);
	int rc = ctl_call(c, "POST", "/api/v5/publish", body, true, NULL);
	cJSON_free(body);
	return rc;
}

/* archive replay --from T --to T --to-topic PREFIX [--archive N] [--topic F]
 * [--retain] [--dry-run]: the range page by page in order, at most the
 * count of its first page: a republished message the archive takes again
 * (PREFIX/... matching its topics) with --to in the future would otherwise
 * extend the range for ever. */
int ctl_cmd_archive_replay(struct ctl *c, const struct ctl_args *a)
{
	static const char path[] = "/api/v5/archive/messages";
	const char *prefix = ctl_opt(a, "to-topic");
	bool dry = ctl_opt(a, "dry-run") != NULL, retain = ctl_opt(a, "retain") != NULL;
	if (!ctl_opt(a, "from") || !ctl_opt(a, "to") || !prefix || !*prefix || !*ctl_opt(a, "from") ||
	    !*ctl_opt(a, "to")) {
		fprintf(stderr, "hamqtt-ctl: archive replay needs --from T --to T --to-topic PREFIX\n");
		return 2;
	}
	if (strchr(prefix, '+') || strchr(prefix, '#')) {
		fprintf(stderr, "hamqtt-ctl: --to-topic is a topic prefix, without wildcards\n");
		return 2;
	}
	char q[2048], p[2600];
	if (range_query(a, q, sizeof(q)))
		return 1;
	uint64_t done = 0;
	double total = -1;
	for (long page = 1;; page++) {
		cJSON *doc = NULL;
		snprintf(p, sizeof(p), "%s?%s&page=%ld&limit=%d", path, q, page, REPLAY_PAGE);
		if (ctl_call(c, "GET", p, NULL, true, &doc) != 0)
			return 1;
		const cJSON *data = cJSON_GetObjectItemCaseSensitive(doc, "data"), *o;
		const cJSON *meta = cJSON_GetObjectItemCaseSensitive(doc, "meta");
		bool more = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(meta, "hasnext"));
		int got = cJSON_GetArraySize(data);
		const cJSON *cnt = cJSON_GetObjectItemCaseSensitive(meta, "count");
		if (total < 0)
			total = cJSON_IsNumber(cnt) ? cnt->valuedouble : 0;
		cJSON_ArrayForEach(o, data) {
			if ((double)done >= total)
				break;
			if (dry) {
				const char *t = ctl_jstr(o, "topic");
				if (!c->json)
					printf("%s/%s\n", prefix, t ? t : "-");
			} else if (republish(c, o, prefix, retain) != 0) {
				fprintf(stderr, "hamqtt-ctl: replay stopped after %llu messages\n",
					(unsigned long long)done);
				cJSON_Delete(doc);
				return 1;
			}
			done++;
		}
		cJSON_Delete(doc);
		if (!more || !got || (double)done >= total)
			break;
	}
	if (c->json)
		printf("{\"replayed\":%llu,\"dry_run\":%s}\n", (unsigned long long)done,
		       dry ? "true" : "false");
	else
		printf("%llu messages %s under %s/\n", (unsigned long long)done,
		       dry ? "would be republished" : "republished", prefix);
	return 0;
}
