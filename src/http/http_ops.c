/*
 * http_ops.c - the operator's routes of issue 11 (EMQX v5 shapes):
 *   GET    /api/v5/alarms?activated=true|false&page=&limit=   paged, this node's part
 *          items {"node","name","message","details","activated","activate_at",
 *                 "deactivate_at" ("infinity" while active),"duration" (ms)}
 *   DELETE /api/v5/alarms                   forget the deactivated ones -> 204
 *   GET    /api/v5/log_level                {"level": "info"}
 *   PUT    /api/v5/log_level {"level": "debug"}  this node only (see ARCHITECTURE.md)
 *   POST   /api/v5/trace {"name","type","clientid"|"topic"|"ip_address",
 *                         "start_at"?,"end_at"?}  (RFC 3339 or unix seconds;
 *                         default now .. now + 10 min)
 *   GET    /api/v5/trace                    [{"name","type",<type>,"start_at","end_at",
 *                                            "status","log_size":{node: bytes},"truncated"}]
 *   DELETE /api/v5/trace/{name}             -> 204
 *   PUT    /api/v5/trace/{name}/stop        -> 200 with the trace
 *   GET    /api/v5/trace/{name}/download    the file (text/plain)
 *   GET    /api/v5/trace/{name}/log?position=&bytes=  {"items": text, "meta":
 *                                            {"position": next, "bytes": read}}
 * The broker is reached through broker.h only; the log level is core/log.h's.
 */
#include "http/http_int.h"
#include "broker/broker.h"
#include "core/clock.h"
#include "core/conf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define OPS_TRACE_DEFAULT_S 600          /* a trace without end_at: 10 minutes */
#define OPS_LOG_READ_MAX (1024 * 1024)   /* bytes one /log call returns at most */

/* "2026-12-06T20:00:00.123Z" (ms given) or "...:00Z". */
static void rfc3339(int64_t ms, bool with_ms, char *out, size_t len)
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&s, &tm);
	size_t n = strftime(out, len, "%Y-%m-%dT%H:%M:%S", &tm);
	if (with_ms)
		snprintf(out + n, len - n, ".%03dZ", (int)(ms % 1000));
	else
		snprintf(out + n, len - n, "Z");
}

/* An RFC 3339 time ("2026-12-06T20:00:00Z", fraction and +hh:mm allowed) or
 * unix seconds, as a string or a number. HQ_OK or HQ_EINVAL. */
static int parse_time(const cJSON *v, int64_t *out)
{
	if (cJSON_IsNumber(v)) {
		*out = (int64_t)v->valuedouble;
		return HQ_OK;
	}
	if (!cJSON_IsString(v))
		return HQ_EINVAL;
	const char *s = v->valuestring;
	char *end;
	long long secs = strtoll(s, &end, 10);
	if (*s && !*end) {
		*out = secs;
		return HQ_OK;
	}
	struct tm tm = { 0 };
	int n = 0;
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
		   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6 || n != 19)
		return HQ_EINVAL;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	const char *p = s + n;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++)
			;
	int64_t off = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int hh, mm, k = 0;
		if (sscanf(p + 1, "%2d:%2d%n", &hh, &mm, &k) != 2 || k != 5)
			return HQ_EINVAL;
		off = (hh * 3600 + mm * 60) * (*p == '+' ? 1 : -1);
		p += 6;
	} else {
		return HQ_EINVAL;
	}
	if (*p)
		return HQ_EINVAL;
	*out = (int64_t)timegm(&tm) - off;
	return HQ_OK;
}

/* ---- alarms ---- */

static cJSON *alarm_json(const struct broker_alarm *a, const char *node, int64_t now_ms)
{
	char at[40], de[40];
	cJSON *o = cJSON_CreateObject();
	rfc3339(a->activate_at_ms, true, at, sizeof(at));
	if (a->activated)
		snprintf(de, sizeof(de), "infinity");
	else
		rfc3339(a->deactivate_at_ms, true, de, sizeof(de));
	cJSON *details = cJSON_Parse(a->details);
	int64_t dur = (a->activated ? now_ms : a->deactivate_at_ms) - a->activate_at_ms;
	if (!o || !cJSON_AddStringToObject(o, "node", node) ||
	    !cJSON_AddStringToObject(o, "name", a->name) ||
	    !cJSON_AddStringToObject(o, "message", a->message) ||
	    !cJSON_AddItemToObject(o, "details", details ? details : cJSON_CreateObject()) ||
	    !cJSON_AddBoolToObject(o, "activated", a->activated) ||
	    !cJSON_AddStringToObject(o, "activate_at", at) ||
	    !cJSON_AddStringToObject(o, "deactivate_at", de) ||
	    !cJSON_AddNumberToObject(o, "duration", (double)(dur > 0 ? dur : 0))) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

void http_ops_alarms_list(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	struct broker *b = http_broker(ctx, resp);
	if (!b)
		return;
	struct http_page pg;
	if (http_page_get(req, 1000, &pg, resp) != HQ_OK)
		return;
	const char *act = http_arg(req, "activated");
	int which = -1;
	if (act && !strcmp(act, "true"))
		which = 1;
	else if (act && !strcmp(act, "false"))
		which = 0;
	else if (act) {
		http_resp_error(resp, 400, "BAD_REQUEST", "activated: true or false");
		return;
	}
	struct broker_alarm *v = NULL;
	size_t n = 0;
	cJSON *data = cJSON_CreateArray();
	if (!data || broker_alarm_list(b, which, &v, &n) != HQ_OK) {
		cJSON_Delete(data);
		http_resp_json(resp, 500, NULL);
		return;
	}
	int64_t now = clock_wall_ms();
	for (size_t i = pg.offset; i < n && i < pg.offset + (size_t)pg.limit; i++) {
		cJSON *o = alarm_json(&v[i], ctx->cfg->node_name, now);
		if (!o || !cJSON_AddItemToArray(data, o)) {
			cJSON_Delete(o);
			free(v);
			cJSON_Delete(data);
			http_resp_json(resp, 500, NULL);
			return;
		}
	}
	free(v);
	http_resp_page(resp, &pg, data, n);
}

void http_ops_alarms_clear(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	struct broker *b = http_broker(ctx, resp);
	if (!b)
		return;
	size_t n = broker_alarm_clear_history(b);
	log_notice("api: %s cleared %zu deactivated alarms", req->who ? req->who->name : "?", n);
	free(resp->body);
	resp->body = NULL;
	resp->body_len = 0;
	resp->status = 204;
}

/* ---- log level ---- */

static void level_reply(struct http_resp *resp)
{
	cJSON *o = cJSON_CreateObject();
	if (o && !cJSON_AddStringToObject(o, "level", log_level_name(log_get_level()))) {
		cJSON_Delete(o);
		o = NULL;
	}
	http_resp_json(resp, 200, o);
}

void http_ops_log_level_get(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	(void)ctx;
	(void)req;
	level_reply(resp);
}

void http_ops_log_level_put(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	(void)ctx;
	cJSON *doc = req->body ? cJSON_Parse(req->body) : NULL;
	const cJSON *lv = cJSON_GetObjectItemCaseSensitive(doc, "level");
	enum log_level l;
	if (!cJSON_IsString(lv) || log_level_parse(lv->valuestring, &l) != HQ_OK) {
		cJSON_Delete(doc);
		http_resp_error(resp, 400, "BAD_REQUEST",
				"level: debug, info, notice, warning, error or none");
		return;
	}
	cJSON_Delete(doc);
	enum log_level old = log_get_level();
	/* told at the more verbose of the two levels, so the line is seen */
	log_set_level(l < old ? l : old);
	log_notice("api: %s set the log level from %s to %s", req->who ? req->who->name : "?",
		   log_level_name(old), log_level_name(l));
	log_set_level(l);
	level_reply(resp);
}

/* ---- traces ---- */

static cJSON *trace_json(const struct broker_trace *t, const char *node)
{
	char st[40], en[40];
	rfc3339(t->start_s * 1000, false, st, sizeof(st));
	rfc3339(t->end_s * 1000, false, en, sizeof(en));
	cJSON *o = cJSON_CreateObject();
	const char *type = broker_trace_type_name(t->type);
	cJSON *sz;
	if (!o || !cJSON_AddStringToObject(o, "name", t->name) ||
	    !cJSON_AddStringToObject(o, "type", type) ||
	    !cJSON_AddStringToObject(o, type, t->filter) ||
	    !cJSON_AddStringToObject(o, "start_at", st) ||
	    !cJSON_AddStringToObject(o, "end_at", en) ||
	    !cJSON_AddStringToObject(o, "status", t->status ? t->status : "running") ||
	    !(sz = cJSON_AddObjectToObject(o, "log_size")) ||
	    !cJSON_AddNumberToObject(sz, node, (double)t->log_size) ||
	    !cJSON_AddBoolToObject(o, "truncated", t->truncated)) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

void http_ops_trace_list(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	(void)req;
	struct broker *b = http_broker(ctx, resp);
	if (!b)
		return;
	struct broker_trace *v = NULL;
	size_t n = 0;
	cJSON *arr = cJSON_CreateArray();
	if (!arr || broker_trace_list(b, &v, &n) != HQ_OK) {
		cJSON_Delete(arr);
		http_resp_json(resp, 500, NULL);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		cJSON *o = trace_json(&v[i], ctx->cfg->node_name);
		if (!o || !cJSON_AddItemToArray(arr, o)) {
			cJSON_Delete(o);
			cJSON_Delete(arr);
			arr = NULL;
			break;
		}
	}
	free(v);
	http_resp_json(resp, arr ? 200 : 500, arr);
}

/* The trace named by the route's '*' into name; false after a 400/404. */
static bool trace_name(const struct http_req *req, char *name, size_t len, struct http_resp *resp)
{
	if (!req->arg || req->arg_len >= len) {
		http_resp_error(resp, 404, "NOT_FOUND", "no such trace");
		return false;
	}
	memcpy(name, req->arg, req->arg_len);
	name[req->arg_len] = '\0';
	return true;
}

void http_ops_trace_create(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	struct broker *b = http_broker(ctx, resp);
	if (!b)
		return;
	cJSON *doc = req->body ? cJSON_Parse(req->body) : NULL;
	struct broker_trace t = { 0 };
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(doc, "name");
	const cJSON *type = cJSON_GetObjectItemCaseSensitive(doc, "type");
	t.type = cJSON_IsString(type) ? broker_trace_type_parse(type->valuestring) : -1;
	const cJSON *filter = t.type >= 0 ?
		cJSON_GetObjectItemCaseSensitive(doc, broker_trace_type_name(t.type)) : NULL;
	const cJSON *sa = cJSON_GetObjectItemCaseSensitive(doc, "start_at");
	const cJSON *ea = cJSON_GetObjectItemCaseSensitive(doc, "end_at");
	const char *bad = NULL;
	int64_t now = clock_wall_ms() / 1000;
	t.start_s = now;
	if (!cJSON_IsString(name) || strlen(name->valuestring) >= sizeof(t.name))
		bad = "name: a string of at most 63 characters";
	else if (t.type < 0)
		bad = "type: clientid, topic or ip_address";
	else if (!cJSON_IsString(filter) || !filter->valuestring[0] ||
		 strlen(filter->valuestring) >= sizeof(t.filter))
		bad = "the value named by type: a non-empty string of at most 255 bytes";
	else if (sa && parse_time(sa, &t.start_s) != HQ_OK)
		bad = "start_at: RFC 3339 or unix seconds";
	else if (ea && parse_time(ea, &t.end_s) != HQ_OK)
		bad = "end_at: RFC 3339 or unix seconds";
	if (bad) {
		cJSON_Delete(doc);
		http_resp_error(resp, 400, "BAD_REQUEST", bad);
		return;
	}
	if (!ea)
		t.end_s = (t.start_s > now ? t.start_s : now) + OPS_TRACE_DEFAULT_S;
	snprintf(t.name, sizeof(t.name), "%s", name->valuestring);
	snprintf(t.filter, sizeof(t.filter), "%s", filter->valuestring);
	cJSON_Delete(doc);
	char err[256];
	int rc = broker_trace_start(b, &t, err, sizeof(err));
	if (rc == HQ_EINVAL) {
		http_resp_error(resp, 400, "BAD_REQUEST", err);
		return;
	}
	if (rc == HQ_EEXIST) {
		http_resp_error(resp, 409, "ALREADY_EXISTS", err);
		return;
	}
	if (rc == HQ_ELIMIT) {
		http_resp_error(resp, 409, "TOO_MANY_TRACES", err);
		return;
	}
	if (rc != HQ_OK) {
		log_error("api: trace %s: %s", t.name, err);
		http_resp_error(resp, 500, "INTERNAL_ERROR", err);
		return;
	}
	t.status = t.start_s > now ? "waiting" : "running";
	http_resp_json(resp, 200, trace_json(&t, ctx->cfg->node_name));
}

void http_ops_trace_delete(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	char name[64];
	struct broker *b = http_broker(ctx, resp);
	if (!b || !trace_name(req, name, sizeof(name), resp))
		return;
	if (broker_trace_delete(b, name) != HQ_OK) {
		http_resp_error(resp, 404, "NOT_FOUND", "no such trace");
		return;
	}
	free(resp->body);
	resp->body = NULL;
	resp->body_len = 0;
	resp->status = 204;
}

void http_ops_trace_stop(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	char name[64];
	struct broker *b = http_broker(ctx, resp);
	if (!b || !trace_name(req, name, sizeof(name), resp))
		return;
	if (broker_trace_stop(b, name) != HQ_OK) {
		http_resp_error(resp, 404, "NOT_FOUND", "no such trace");
		return;
	}
	struct broker_trace *v = NULL;
	size_t n = 0;
	if (broker_trace_list(b, &v, &n) != HQ_OK) {
		http_resp_json(resp, 500, NULL);
		return;
	}
	cJSON *o = NULL;
	for (size_t i = 0; i < n && !o; i++)
		if (!strcmp(v[i].name, name))
			o = trace_json(&v[i], ctx->cfg->node_name);
	free(v);
	http_resp_json(resp, o ? 200 : 404, o);
}

/* Read up to max bytes of the trace's file from pos into a malloc'd buffer. */
static int read_trace(struct broker *b, const char *name, uint64_t pos, size_t max, char **out,
		      size_t *n)
{
	char path[4200];
	if (broker_trace_file(b, name, path, sizeof(path)) != HQ_OK)
		return HQ_ENOTFOUND;
	*out = NULL;
	*n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? HQ_OK : HQ_EIO; /* nothing written yet */
	struct stat st;
	if (fstat(fd, &st) != 0) {
		close(fd);
		return HQ_EIO;
	}
	size_t want = (uint64_t)st.st_size > pos ? (size_t)((uint64_t)st.st_size - pos) : 0;
	if (want > max)
		want = max;
	char *buf = malloc(want + 1);
	if (!buf) {
		close(fd);
		return HQ_ENOMEM;
	}
	ssize_t r = want ? pread(fd, buf, want, (off_t)pos) : 0;
	close(fd);
	if (r < 0) {
		free(buf);
		return HQ_EIO;
	}
	buf[r] = '\0';
	*out = buf;
	*n = (size_t)r;
	return HQ_OK;
}

void http_ops_trace_download(struct http_ctx *ctx, const struct http_req *req,
			     struct http_resp *resp)
{
	char name[64];
	struct broker *b = http_broker(ctx, resp);
	if (!b || !trace_name(req, name, sizeof(name), resp))
		return;
	char *text;
	size_t n;
	int rc = read_trace(b, name, 0, BROKER_TRACE_FILE_MAX, &text, &n);
	if (rc == HQ_ENOTFOUND) {
		http_resp_error(resp, 404, "NOT_FOUND", "no such trace");
		return;
	}
	if (rc != HQ_OK) {
		http_resp_error(resp, 500, "INTERNAL_ERROR", "cannot read the trace file");
		return;
	}
	free(resp->body);
	resp->status = 200;
	resp->content_type = "text/plain; charset=utf-8";
	resp->body = text ? text : hq_strdup("");
	resp->body_len = n;
}

void http_ops_trace_log(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	char name[64];
	struct broker *b = http_broker(ctx, resp);
	if (!b || !trace_name(req, name, sizeof(name), resp))
		return;
	const char *ps = http_arg(req, "position"), *bs = http_arg(req, "bytes");
	char *end = NULL;
	long long pos = ps ? strtoll(ps, &end, 10) : 0;
	if (ps && (*end || pos < 0)) {
		http_resp_error(resp, 400, "BAD_REQUEST", "position: a byte offset");
		return;
	}
	long long max = bs ? strtoll(bs, &end, 10) : OPS_LOG_READ_MAX;
	if (bs && (*end || max <= 0)) {
		http_resp_error(resp, 400, "BAD_REQUEST", "bytes: a positive count");
		return;
	}
	if (max > OPS_LOG_READ_MAX)
		max = OPS_LOG_READ_MAX;
	char *text;
	size_t n;
	int rc = read_trace(b, name, (uint64_t)pos, (size_t)max, &text, &n);
	if (rc == HQ_ENOTFOUND) {
		http_resp_error(resp, 404, "NOT_FOUND", "no such trace");
		return;
	}
	if (rc != HQ_OK) {
		http_resp_error(resp, 500, "INTERNAL_ERROR", "cannot read the trace file");
		return;
	}
	cJSON *o = cJSON_CreateObject();
	cJSON *meta = o ? cJSON_AddObjectToObject(o, "meta") : NULL;
	if (!meta || !cJSON_AddStringToObject(o, "items", text ? text : "") ||
	    !cJSON_AddNumberToObject(meta, "position", (double)((uint64_t)pos + n)) ||
	    !cJSON_AddNumberToObject(meta, "bytes", (double)n)) {
		cJSON_Delete(o);
		o = NULL;
	}
	free(text);
	http_resp_json(resp, o ? 200 : 500, o);
}
