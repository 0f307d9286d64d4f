/*
 * http_archive.c - GET /api/v5/archive/messages: the archive's rows read back
 * (issue 12, docs/architecture/archive.md "Read back"), EMQX's paged shape.
 *
 * Node-local: the database is shared by the cluster, so any node answers for
 * all of it (no fan-out). The query runs on this HTTP thread through
 * archive_read, which opens its own short-lived connection.
 */
#include "archive/archive.h"
#include "broker/broker.h"
#include "core/err.h"
#include "http/http_int.h"
#include "http/http_qapi.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ARC_MAX_LIMIT 10000

/* n digits at *p as a number (advancing p), or -1. */
static int digits(const char **p, int n)
{
	int v = 0;
	for (int i = 0; i < n; i++, (*p)++) {
		if (!isdigit((unsigned char)**p))
			return -1;
		v = v * 10 + (**p - '0');
	}
	return v;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; Howard Hinnant's
 * days_from_civil), so no timegm and no TZ is involved. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* A time argument: integer ms since the epoch, or RFC 3339
 * (2026-12-07T00:00:00Z, fractional seconds and +hh:mm offsets; 't' and ' '
 * for 'T'). false when it is neither. */
static bool parse_time(const char *s, int64_t *ms)
{
	const char *p = s;
	if (*p == '-' || isdigit((unsigned char)*p)) {
		char *end;
		errno = 0;
		long long v = strtoll(s, &end, 10);
		if (end != s && !*end && !errno) {
			*ms = v;
			return true;
		}
	}
	int y = digits(&p, 4), mo, d, h, mi, sec;
	if (y < 0 || *p++ != '-' || (mo = digits(&p, 2)) < 1 || mo > 12 || *p++ != '-' ||
	    (d = digits(&p, 2)) < 1 || d > 31 || (*p != 'T' && *p != 't' && *p != ' '))
		return false;
	p++;
	if ((h = digits(&p, 2)) < 0 || h > 23 || *p++ != ':' || (mi = digits(&p, 2)) < 0 ||
	    mi > 59 || *p++ != ':' || (sec = digits(&p, 2)) < 0 || sec > 60)
		return false;
	int frac = 0;
	if (*p == '.') {
		p++;
		int n = 0;
		for (; isdigit((unsigned char)*p); p++, n++)
			if (n < 3)
				frac = frac * 10 + (*p - '0');
		if (!n)
			return false;
		for (; n < 3; n++)
			frac *= 10;
	}
	int off = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p++ == '-' ? -1 : 1, oh, om;
		if ((oh = digits(&p, 2)) < 0 || oh > 23 || *p++ != ':' || (om = digits(&p, 2)) < 0 ||
		    om > 59)
			return false;
		off = sign * (oh * 60 + om);
	} else {
		return false;
	}
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (y % 4 == 0 && y % 100) || y % 400 == 0;
	if (*p || d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap))
		return false;
	int64_t t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off * 60;
	*ms = t * 1000 + frac;
	return true;
}

/* Each row as one JSON item of the page. */
struct rows {
	cJSON *data;
	bool oom;
};

static int add_row(void *ctx, const struct arc_msg *m)
{
	struct rows *r = ctx;
	cJSON *o = cJSON_CreateObject();
	char *topic = strndup(m->topic, m->topic_len);
	char *cid = strndup(m->clientid ? m->clientid : "", m->clientid_len);
	char *user = m->username ? strndup(m->username, m->username_len) : NULL;
	char *pl = malloc(4 * ((m->payload_len + 2) / 3) + 1);
	if (pl)
		EVP_EncodeBlock((unsigned char *)pl, m->payload, (int)m->payload_len);
	bool ok = o && topic && cid && pl && (!m->username || user) &&
		  cJSON_AddStringToObject(o, "id", m->id) &&
		  cJSON_AddStringToObject(o, "topic", topic) &&
		  cJSON_AddStringToObject(o, "payload", pl) &&
		  cJSON_AddStringToObject(o, "payload_encoding", "base64") &&
		  cJSON_AddNumberToObject(o, "qos", m->qos) &&
		  cJSON_AddBoolToObject(o, "retain", m->retain) &&
		  cJSON_AddStringToObject(o, "clientid", cid) &&
		  (user ? cJSON_AddStringToObject(o, "username", user)
			: cJSON_AddNullToObject(o, "username")) &&
		  http_qapi_add_time(o, "timestamp", m->ts_ms) &&
		  cJSON_AddStringToObject(o, "node", m->node ? m->node : "");
	free(topic);
	free(cid);
	free(user);
	free(pl);
	if (!ok) {
		cJSON_Delete(o);
		r->oom = true;
		return 1;
	}
	cJSON_AddItemToArray(r->data, o);
	return 0;
}

static void read_error(struct http_resp *resp, int rc, const char *why)
{
	switch (rc) {
	case HQ_ENOTFOUND:
		http_resp_error(resp, 404, "NOT_FOUND", why);
		break;
	case HQ_EINVAL:
	case HQ_ETOPIC:
		http_resp_error(resp, 400, "BAD_REQUEST", why);
		break;
	case HQ_EEXIST:
		http_resp_error(resp, 409, "CONFLICT", why);
		break;
	case HQ_EAGAIN:
		http_resp_error(resp, 503, "SERVICE_UNAVAILABLE", why);
		break;
	default:
		http_resp_error(resp, 500, "INTERNAL_ERROR", why);
		break;
	}
}

void http_archive_messages(struct http_ctx *ctx, const struct http_req *req,
			   struct http_resp *resp)
{
	struct http_page pg;
	struct broker *b = http_broker(ctx, resp);
	if (!b || http_page_get(req, ARC_MAX_LIMIT, &pg, resp) != HQ_OK)
		return;
	struct arc_query q = { .from_ms = INT64_MIN, .to_ms = INT64_MAX, .offset = pg.offset,
			       .limit = (uint32_t)pg.limit };
	const char *from = http_arg(req, "from"), *to = http_arg(req, "to");
	if (from && !parse_time(from, &q.from_ms)) {
		http_resp_error(resp, 400, "BAD_REQUEST",
				"from is RFC 3339 (2026-12-07T00:00:00Z) or ms since the epoch");
		return;
	}
	if (to && !parse_time(to, &q.to_ms)) {
		http_resp_error(resp, 400, "BAD_REQUEST",
				"to is RFC 3339 (2026-12-07T00:00:00Z) or ms since the epoch");
		return;
	}
	const char *topic = http_arg(req, "topic");
	q.topic = topic && *topic ? topic : NULL;
	struct rows r = { .data = cJSON_CreateArray() };
	if (!r.data) {
		http_resp_json(resp, 500, NULL);
		return;
	}
	uint64_t total = 0;
	char why[768] = "";
	int rc = archive_read(broker_archive(b), http_arg(req, "archive"), &q, add_row, &r, &total,
			      why, sizeof(why));
	if (rc != HQ_OK || r.oom) {
		cJSON_Delete(r.data);
		read_error(resp, r.oom ? HQ_ENOMEM : rc, r.oom ? "out of memory" : why);
		return;
	}
	http_resp_page(resp, &pg, r.data, (size_t)total);
}
