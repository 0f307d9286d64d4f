/*
 * http_banned.c - the banned list over REST, in EMQX 5's shape:
 *
 *   GET    /api/v5/banned               {"data": [{"as", "who", "by", "reason",
 *                                        "at", "until"}], "meta": {"count"}}
 *   POST   /api/v5/banned               {"as": "clientid"|"username"|"peerhost",
 *                                        "who": ..., "reason"?, "by"?, "until"?}
 *                                        -> 200 with the ban as stored
 *   DELETE /api/v5/banned/{as}/{who}    -> 204, or 404 when no such ban
 *
 * Times are RFC 3339 in UTC ("2026-12-06T16:00:00Z"); "until" may also be a
 * number of seconds since the epoch; a ban without "until" never expires
 * ("until": "infinity" in the listing). The list itself lives in the broker
 * (brk_banned.c; replicated to every node, repl/repl.h).
 */
#include "http/http_int.h"
#include "broker/broker.h"
#include "core/err.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void rfc3339(int64_t s, char *out, size_t n)
{
	time_t t = (time_t)s;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* "2026-12-06T16:00:00Z" or with "+hh:mm"/"-hh:mm"; -1 when not a time. */
static int64_t parse_time(const char *v)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	const char *p = strptime(v, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p)
		return -1;
	int64_t t = (int64_t)timegm(&tm);
	if (*p == '.') /* fractions of a second are dropped */
		for (p++; *p >= '0' && *p <= '9'; p++)
			;
	if (*p == 'Z' && !p[1])
		return t;
	int hh, mm;
	if ((*p == '+' || *p == '-') && sscanf(p + 1, "%2d:%2d", &hh, &mm) == 2 && strlen(p) == 6)
		return *p == '+' ? t - (hh * 3600 + mm * 60) : t + (hh * 3600 + mm * 60);
	return -1;
}

static cJSON *ban_json(const struct broker_ban *v)
{
	char at[32], until[32];
	rfc3339(v->at_s, at, sizeof(at));
	if (v->until_s)
		rfc3339(v->until_s, until, sizeof(until));
	else
		snprintf(until, sizeof(until), "infinity");
	cJSON *o = cJSON_CreateObject();
	if (o && (!cJSON_AddStringToObject(o, "as", v->as) ||
		  !cJSON_AddStringToObject(o, "who", v->who) ||
		  !cJSON_AddStringToObject(o, "by", v->by) ||
		  !cJSON_AddStringToObject(o, "reason", v->reason) ||
		  !cJSON_AddStringToObject(o, "at", at) ||
		  !cJSON_AddStringToObject(o, "until", until))) {
		cJSON_Delete(o);
		o = NULL;
	}
	return o;
}

void http_banned_get(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	(void)req;
	struct broker *b = http_broker(ctx, resp);
	if (!b)
		return;
	struct broker_ban *v = NULL; /* owned here */
	size_t n = 0;
	broker_ban_list(b, &v, &n);
	cJSON *doc = cJSON_CreateObject(), *data = NULL, *meta = NULL;
	if (!doc || !(data = cJSON_AddArrayToObject(doc, "data")) ||
	    !(meta = cJSON_AddObjectToObject(doc, "meta")) ||
	    !cJSON_AddNumberToObject(meta, "count", (double)n))
		goto fail;
	for (size_t i = 0; i < n; i++) {
		cJSON *o = ban_json(&v[i]);
		if (!o)
			goto fail;
		cJSON_AddItemToArray(data, o);
	}
	free(v);
	http_resp_json(resp, 200, doc);
	return;
fail:
	free(v);
	cJSON_Delete(doc);
	http_resp_json(resp, 500, NULL);
}

/* A string member of o copied into out (optional: def when absent); false
 * when present but not a string or too long. */
static bool str_field(const cJSON *o, const char *name, char *out, size_t n, const char *def)
{
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, name);
	if (!f) {
		snprintf(out, n, "%s", def);
		return true;
	}
	if (!cJSON_IsString(f) || strlen(f->valuestring) >= n)
		return false;
	snprintf(out, n, "%s", f->valuestring);
	return true;
}

const char *http_banned_parse(const char *body, int64_t now_s, struct broker_ban *ban)
{
	cJSON *in = body ? cJSON_Parse(body) : NULL;
	*ban = (struct broker_ban){ .at_s = now_s };
	const char *bad = NULL;
	if (!cJSON_IsObject(in))
		bad = "the body must be a JSON object";
	else if (!str_field(in, "as", ban->as, sizeof(ban->as), "") ||
		 broker_ban_as_parse(ban->as, strlen(ban->as)) < 0)
		bad = "\"as\" must be clientid, username or peerhost";
	else if (!str_field(in, "who", ban->who, sizeof(ban->who), "") || !ban->who[0])
		bad = "\"who\" must be a non-empty string of at most 255 bytes";
	else if (!str_field(in, "by", ban->by, sizeof(ban->by), "rest api") ||
		 !str_field(in, "reason", ban->reason, sizeof(ban->reason), ""))
		bad = "\"by\" and \"reason\" must be strings";
	if (!bad) {
		const cJSON *u = cJSON_GetObjectItemCaseSensitive(in, "until");
		/* seconds up to 9999-12-31T23:59:59Z: a larger double (1e300, inf)
		 * does not fit an int64_t (undefined behaviour; fuzz_http) */
		if (cJSON_IsNumber(u) && u->valuedouble > 0 && u->valuedouble <= 253402300799.0)
			ban->until_s = (int64_t)u->valuedouble;
		else if (cJSON_IsString(u) && strcmp(u->valuestring, "infinity") != 0)
			ban->until_s = parse_time(u->valuestring);
		else if (u && !cJSON_IsString(u))
			ban->until_s = -1;
		if (ban->until_s < 0)
			bad = "\"until\" must be an RFC 3339 time, seconds since the epoch or \"infinity\"";
		else if (ban->until_s && ban->until_s <= ban->at_s)
			bad = "\"until\" is in the past";
	}
	cJSON_Delete(in);
	return bad;
}

void http_banned_post(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	struct broker *b = http_broker(ctx, resp);
	if (!b)
		return;
	struct broker_ban ban;
	const char *bad = http_banned_parse(req->body, (int64_t)time(NULL), &ban);
	if (bad) {
		http_resp_error(resp, 400, "BAD_REQUEST", bad);
		return;
	}
	if (broker_ban_add(b, &ban) != HQ_OK) {
		http_resp_error(resp, 400, "BAD_REQUEST", "bad ban");
		return;
	}
	cJSON *o = ban_json(&ban);
	http_resp_json(resp, o ? 200 : 500, o);
}

/* DELETE /api/v5/banned/<as>/<who>: the route names the as, '*' the who. */
void http_banned_delete(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	struct broker *b = http_broker(ctx, resp);
	if (!b)
		return;
	const char *p = req->path + strlen("/api/v5/banned/");
	const char *slash = strchr(p, '/');
	char as[16], who[256];
	if (!slash || (size_t)(slash - p) >= sizeof(as) || req->arg_len >= sizeof(who)) {
		http_resp_error(resp, 400, "BAD_REQUEST", "no such ban");
		return;
	}
	snprintf(as, sizeof(as), "%.*s", (int)(slash - p), p);
	snprintf(who, sizeof(who), "%.*s", (int)req->arg_len, req->arg);
	int rc = broker_ban_del(b, as, who);
	if (rc == HQ_ENOTFOUND) {
		http_resp_error(resp, 404, "NOT_FOUND", "no such ban");
		return;
	}
	if (rc != HQ_OK) {
		http_resp_error(resp, 400, "BAD_REQUEST", hq_strerror(rc));
		return;
	}
	resp->status = 204;
}
