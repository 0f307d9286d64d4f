/*
 * http_page.c - query arguments and EMQX's paged list shape, shared by every
 * list route (see http_int.h).
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "http/http_int.h"
#include "http/http_query.h"

const char *http_arg(const struct http_req *req, const char *name)
{
	return http_query_get(req->query, name);
}

/* s as an integer in [lo, hi]; def when s is NULL; -1 when malformed */
static long arg_num(const char *s, long def, long lo, long hi)
{
	if (!s)
		return def;
	char *end;
	long v = strtol(s, &end, 10);
	return *s && !*end && v >= lo && v <= hi ? v : -1;
}

int http_page_get(const struct http_req *req, long max_limit, struct http_page *pg,
		  struct http_resp *resp)
{
	pg->page = arg_num(http_arg(req, "page"), 1, 1, 100000000L);
	pg->limit = arg_num(http_arg(req, "limit"), 100, 1, max_limit);
	long off = req->local ? arg_num(http_arg(req, "_offset"), -2, 0, 1L << 40) : -2;
	if (pg->page < 0 || pg->limit < 0 || off == -1) {
		http_resp_error(resp, 400, "BAD_REQUEST", "page and limit must be positive "
				"integers (limit at most the route's maximum)");
		return HQ_EINVAL;
	}
	pg->offset = off >= 0 ? (size_t)off : (size_t)(pg->page - 1) * (size_t)pg->limit;
	return HQ_OK;
}

void http_resp_page(struct http_resp *resp, const struct http_page *pg, cJSON *data,
		    size_t count)
{
	cJSON *doc = cJSON_CreateObject(), *meta = NULL;
	if (!doc || !data) {
		cJSON_Delete(doc);
		cJSON_Delete(data);
		http_resp_json(resp, 500, NULL);
		return;
	}
	size_t n = (size_t)cJSON_GetArraySize(data);
	cJSON_AddItemToObject(doc, "data", data); /* doc owns data from here */
	if (!(meta = cJSON_AddObjectToObject(doc, "meta")) ||
	    !cJSON_AddNumberToObject(meta, "page", (double)pg->page) ||
	    !cJSON_AddNumberToObject(meta, "limit", (double)pg->limit) ||
	    !cJSON_AddNumberToObject(meta, "count", (double)count) ||
	    !cJSON_AddBoolToObject(meta, "hasnext", pg->offset + n < count)) {
		cJSON_Delete(doc);
		http_resp_json(resp, 500, NULL);
		return;
	}
	http_resp_json(resp, 200, doc);
}
