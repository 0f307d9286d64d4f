/*
 * ctl_cmd_clients.c - hamqtt-ctl's clients and subscriptions commands over
 * /api/v5/clients and /api/v5/subscriptions (cluster-wide lists: the node
 * asked combines its members' answers), and the paged-list helper every
 * list command shares.
 */
#include "ctl.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CTL_PAGE_ALL 1000 /* items per request of --all (the routes allow up to 10,000) */

/* "?name=value&..." of the query so far plus page and limit. */
static int page_path(char *out, size_t cap, const char *base, const char *query, long page,
		     const char *limit)
{
	int n = snprintf(out, cap, "%s?%s%spage=%ld%s%s", base, query, *query ? "&" : "", page,
			 limit ? "&limit=" : "", limit ? limit : "");
	return n > 0 && (size_t)n < cap ? 0 : -1;
}

static bool positive(const char *s)
{
	char *end;
	long v = s ? strtol(s, &end, 10) : 0;
	return s && *s && !*end && v > 0;
}

int ctl_list(const struct ctl *c, const struct ctl_args *a, const char *base_path,
	     const char *query, cJSON **doc)
{
	char path[2048];
	const char *page = ctl_opt(a, "page"), *limit = ctl_opt(a, "limit");
	bool all = ctl_opt(a, "all") != NULL;
	*doc = NULL;
	/* checked here, not by the node, so the exit status is 2 like any usage error */
	if ((page && !positive(page)) || (limit && !positive(limit))) {
		fprintf(stderr, "hamqtt-ctl: --page and --limit are positive integers\n");
		return 2;
	}
	if (all && page) {
		fprintf(stderr, "hamqtt-ctl: --all reads every page: no --page with it\n");
		return 2;
	}
	if (!all) {
		if (page_path(path, sizeof(path), base_path, query, page ? atol(page) : 1, limit)) {
			fprintf(stderr, "hamqtt-ctl: arguments too long\n");
			return 1;
		}
		return ctl_call(c, "GET", path, NULL, false, doc);
	}
	/* --all: page after page until hasnext is false, bounded by CTL_ALL_MAX
	 * items in case the list grows while it is read */
	cJSON *merged = cJSON_CreateObject();
	cJSON *data = cJSON_AddArrayToObject(merged, "data");
	const char *lim = limit ? limit : "1000";
	double count = 0;
	for (long p = 1;; p++) {
		cJSON *one = NULL;
		if (page_path(path, sizeof(path), base_path, query, p, lim) ||
		    ctl_call(c, "GET", path, NULL, true, &one) != 0) {
			cJSON_Delete(merged);
			return 1;
		}
		cJSON *items = cJSON_DetachItemFromObjectCaseSensitive(one, "data");
		cJSON *meta = cJSON_GetObjectItemCaseSensitive(one, "meta");
		cJSON *it;
		const cJSON *cnt = cJSON_GetObjectItemCaseSensitive(meta, "count");
		count = cJSON_IsNumber(cnt) ? cnt->valuedouble : count;
		bool more = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(meta, "hasnext"));
		int got = cJSON_GetArraySize(items);
		while (items && (it = cJSON_DetachItemFromArray(items, 0)))
			cJSON_AddItemToArray(data, it);
		cJSON_Delete(items);
		cJSON_Delete(one);
		if (!more || !got || cJSON_GetArraySize(data) >= CTL_ALL_MAX)
			break;
	}
	cJSON *meta = cJSON_AddObjectToObject(merged, "meta");
	cJSON_AddNumberToObject(meta, "page", 1);
	cJSON_AddNumberToObject(meta, "limit", cJSON_GetArraySize(data));
	cJSON_AddNumberToObject(meta, "count", count);
	cJSON_AddBoolToObject(meta, "hasnext", false);
	if (c->json) {
		char *t = cJSON_PrintUnformatted(merged);
		if (t)
			printf("%s\n", t);
		cJSON_free(t);
	}
	*doc = merged;
	return 0;
}

void ctl_list_footer(const cJSON *doc, const char *what, const char *whats)
{
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(doc, "meta");
	char count[32], page[32], limit[32];
	ctl_jtext(meta, "count", count, sizeof(count));
	ctl_jtext(meta, "page", page, sizeof(page));
	ctl_jtext(meta, "limit", limit, sizeof(limit));
	if (strcmp(count, "1"))
		what = whats;
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(meta, "hasnext")))
		printf("%s %s in all; page %s (limit %s), more with --page %ld or --all\n", count,
		       what, page, limit, atol(page) + 1);
	else
		printf("%s %s in all\n", count, what);
}

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

/* The list's data array, or NULL after a message (an unexpected reply). */
static const cJSON *list_data(const struct ctl *c, const cJSON *doc, const char *path)
{
	const cJSON *data = cJSON_GetObjectItemCaseSensitive(doc, "data");
	if (!cJSON_IsArray(data))
		fprintf(stderr, "hamqtt-ctl: unexpected reply from %s%s\n", c->base, path);
	return cJSON_IsArray(data) ? data : NULL;
}

/* clients list: GET /api/v5/clients?clientid=&username=&like_clientid=&page=&limit= */
int ctl_cmd_clients_list(struct ctl *c, const struct ctl_args *a)
{
	static const char path[] = "/api/v5/clients";
	char q[1024] = "";
	size_t ql = 0;
	cJSON *doc = NULL;
	if (add_arg(q, sizeof(q), &ql, "clientid", ctl_opt(a, "clientid")) ||
	    add_arg(q, sizeof(q), &ql, "username", ctl_opt(a, "username")) ||
	    add_arg(q, sizeof(q), &ql, "like_clientid", ctl_opt(a, "like-clientid"))) {
		fprintf(stderr, "hamqtt-ctl: arguments too long\n");
		return 1;
	}
	int rc = ctl_list(c, a, path, q, &doc);
	if (rc != 0 || c->json) {
		cJSON_Delete(doc);
		return rc;
	}
	const cJSON *data = list_data(c, doc, path), *o;
	if (!data) {
		cJSON_Delete(doc);
		return 1;
	}
	static const char *const head[] = { "CLIENTID", "USERNAME", "NODE", "STATE", "IP",
					    "PROTO", "SUBS", "QUEUED", "INFLIGHT", "CONNECTED_AT" };
	static const char *const keys[] = { "clientid", "username", "node", "conn_state",
					    "ip_address", "proto_ver", "subscriptions_cnt",
					    "mqueue_len", "inflight_cnt", "connected_at" };
	struct ctl_table *t = ctl_table_new(10, head);
	cJSON_ArrayForEach(o, data)
		ctl_table_row_json(t, o, keys);
	ctl_table_print(t);
	ctl_table_free(t);
	ctl_list_footer(doc, "client", "clients");
	cJSON_Delete(doc);
	return 0;
}

/* "/api/v5/clients/<id, URL-encoded><suffix>" into path; -1 when too long. */
static int client_path(char *path, size_t cap, const char *id, const char *suffix)
{
	size_t n = (size_t)snprintf(path, cap, "/api/v5/clients/");
	if (ctl_urlenc(path, cap - strlen(suffix) - 1, &n, id) != 0) {
		fprintf(stderr, "hamqtt-ctl: client id too long\n");
		return -1;
	}
	snprintf(path + n, cap - n, "%s", suffix);
	return 0;
}

/* clients show ID: GET /api/v5/clients/ID, "key: value" lines, then its
 * subscriptions (GET .../subscriptions) as a table. --json: the client's
 * object only. */
int ctl_cmd_clients_show(struct ctl *c, const struct ctl_args *a)
{
	char path[1024];
	cJSON *doc = NULL, *subs = NULL, *f;
	if (client_path(path, sizeof(path), a->pos[0], ""))
		return 1;
	if (ctl_call(c, "GET", path, NULL, false, &doc) != 0)
		return 1;
	if (c->json || !cJSON_IsObject(doc)) {
		cJSON_Delete(doc);
		return 0;
	}
	int w = 0;
	cJSON_ArrayForEach(f, doc)
		w = (int)strlen(f->string) > w ? (int)strlen(f->string) : w;
	cJSON_ArrayForEach(f, doc) {
		char v[512];
		printf("%-*s  %s\n", w + 1, f->string, ctl_jtext(doc, f->string, v, sizeof(v)));
	}
	cJSON_Delete(doc);
	if (client_path(path, sizeof(path), a->pos[0], "/subscriptions") ||
	    ctl_call(c, "GET", path, NULL, true, &subs) != 0)
		return 1;
	static const char *const head[] = { "TOPIC", "QOS", "NL", "RAP", "RH" };
	static const char *const keys[] = { "topic", "qos", "nl", "rap", "rh" };
	struct ctl_table *t = ctl_table_new(5, head);
	cJSON_ArrayForEach(f, subs)
		ctl_table_row_json(t, f, keys);
	printf("\n%d subscription%s\n", ctl_table_rows(t), ctl_table_rows(t) == 1 ? "" : "s");
	if (ctl_table_rows(t))
		ctl_table_print(t);
	ctl_table_free(t);
	cJSON_Delete(subs);
	return 0;
}

/* clients kick ID: DELETE /api/v5/clients/ID (204), on whichever node has it. */
int ctl_cmd_clients_kick(struct ctl *c, const struct ctl_args *a)
{
	char path[1024];
	if (client_path(path, sizeof(path), a->pos[0], ""))
		return 1;
	if (ctl_call(c, "DELETE", path, NULL, false, NULL) != 0)
		return 1;
	if (c->json)
		printf("{}\n"); /* a 204 has no body; --json output stays JSON */
	else
		printf("client %s kicked\n", a->pos[0]);
	return 0;
}

/* subscriptions list: GET /api/v5/subscriptions?clientid=&topic=&page=&limit= */
int ctl_cmd_subs_list(struct ctl *c, const struct ctl_args *a)
{
	static const char path[] = "/api/v5/subscriptions";
	char q[1024] = "";
	size_t ql = 0;
	cJSON *doc = NULL;
	if (add_arg(q, sizeof(q), &ql, "clientid", ctl_opt(a, "clientid")) ||
	    add_arg(q, sizeof(q), &ql, "topic", ctl_opt(a, "topic"))) {
		fprintf(stderr, "hamqtt-ctl: arguments too long\n");
		return 1;
	}
	int rc = ctl_list(c, a, path, q, &doc);
	if (rc != 0 || c->json) {
		cJSON_Delete(doc);
		return rc;
	}
	const cJSON *data = list_data(c, doc, path), *o;
	if (!data) {
		cJSON_Delete(doc);
		return 1;
	}
	static const char *const head[] = { "CLIENTID", "TOPIC", "QOS", "NODE" };
	static const char *const keys[] = { "clientid", "topic", "qos", "node" };
	struct ctl_table *t = ctl_table_new(4, head);
	cJSON_ArrayForEach(o, data)
		ctl_table_row_json(t, o, keys);
	ctl_table_print(t);
	ctl_table_free(t);
	ctl_list_footer(doc, "subscription", "subscriptions");
	cJSON_Delete(doc);
	return 0;
}
