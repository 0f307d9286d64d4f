/*
 * arc_mysql_query.c - read-back of the default table (GET
 * /api/v5/archive/messages, hamqtt-ctl archive list/replay): an MQTT topic
 * filter turned into SQL with MQTT's exact semantics, rows in (ts, msgid)
 * order, paged, with the total. Every value is bound.
 *
 * A filter with wildcards becomes a LIKE on its literal prefix (so the
 * (topic, ts) index narrows the scan) AND a REGEXP that decides exactly:
 * '+' is one level (possibly empty), "a/#" is "a" and everything under it,
 * and a filter starting with a wildcard does not match a topic starting
 * with '$' [MQTT-4.7.2-1]. Both compare byte for byte (the column's binary
 * collation).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive/arc_mysql_int.h"
#include "broker/topic.h"
#include "core/err.h"

#define LIKE_ESC '!' /* not '\\': sql_mode NO_BACKSLASH_ESCAPES would change its meaning */

void my_filter_free(struct my_filter *f)
{
	for (uint32_t i = 0; i < f->nparams; i++)
		free(f->params[i]);
	f->nparams = 0;
}

int my_filter_make(const char *f, struct my_filter *out)
{
	memset(out, 0, sizeof(*out));
	if (!topic_filter_valid(f, strlen(f), 0))
		return HQ_EINVAL;
	size_t len = strlen(f), wild = strcspn(f, "+#");
	if (wild == len) {
		snprintf(out->cond, sizeof(out->cond), "topic = ?");
		out->params[out->nparams++] = strdup(f);
		return out->params[0] ? HQ_OK : HQ_ENOMEM;
	}
	if (!strcmp(f, "#")) {
		/* everything but the $-topics: no pattern to evaluate */
		snprintf(out->cond, sizeof(out->cond), "topic NOT LIKE '$%%'");
		return HQ_OK;
	}
	/* the LIKE prefix: the literal text before the first wildcard, "a/" of "a/+/b";
	 * "a/#" also matches "a" itself, so its prefix stops before the '/' */
	size_t plen = wild;
	if (f[wild] == '#' && wild > 0)
		plen--;
	char *like = malloc(plen * 2 + 2), *o = like;
	/* the regex: each byte escaped unless alphanumeric or UTF-8 */
	char *re = malloc(len * 2 + 32), *r = re;
	if (!like || !re) {
		free(like);
		free(re);
		return HQ_ENOMEM;
	}
	for (size_t i = 0; i < plen; i++) {
		if (f[i] == '%' || f[i] == '_' || f[i] == LIKE_ESC)
			*o++ = LIKE_ESC;
		*o++ = f[i];
	}
	*o++ = '%';
	*o = '\0';
	r += sprintf(r, "(?s)^%s", wild == 0 ? "(?!\\$)" : "");
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)f[i];
		if (c == '+')
			r += sprintf(r, "[^/]*");
		else if (c == '#')
			r += sprintf(r, i == 0 ? ".*" : "");
		else if (c == '/' && i + 2 == len && f[i + 1] == '#') {
			r += sprintf(r, "(/.*)?");
			break;
		}
		else {
			if (c < 0x80 && !(c >= '0' && c <= '9') && !(c >= 'a' && c <= 'z') &&
			    !(c >= 'A' && c <= 'Z') && c != '/')
				*r++ = '\\';
			*r++ = (char)c;
		}
	}
	r += sprintf(r, "\\z");
	if (plen) {
		snprintf(out->cond, sizeof(out->cond), "topic LIKE ? ESCAPE '%c' AND topic REGEXP ?",
			 LIKE_ESC);
		out->params[out->nparams++] = like;
	}
	else {
		snprintf(out->cond, sizeof(out->cond), "topic REGEXP ?");
		free(like);
	}
	out->params[out->nparams++] = re;
	return HQ_OK;
}

/* The WHERE clause and its parameters (strings from fl, times into t). */
struct my_where {
	char sql[256];
	MYSQL_BIND b[6]; /* filter (2), from, to, limit, offset */
	uint32_t n;
	MYSQL_TIME from, to;
	unsigned long long limit, offset;
};

static void my_where_make(struct my_where *w, const struct arc_query *q, const struct my_filter *fl)
{
	memset(w, 0, sizeof(*w));
	size_t n = (size_t)snprintf(w->sql, sizeof(w->sql), " WHERE 1 = 1");
	if (q->topic) {
		n += (size_t)snprintf(w->sql + n, sizeof(w->sql) - n, " AND %s", fl->cond);
		for (uint32_t i = 0; i < fl->nparams; i++) {
			w->b[w->n].buffer_type = MYSQL_TYPE_STRING;
			w->b[w->n].buffer = fl->params[i];
			w->b[w->n].buffer_length = (unsigned long)strlen(fl->params[i]);
			w->n++;
		}
	}
	/* DATETIME spans years 1000..9999: a bound outside is no bound */
	if (q->from_ms > -30610224000000LL && q->from_ms != INT64_MIN) {
		my_time_from_ms(&w->from, q->from_ms);
		n += (size_t)snprintf(w->sql + n, sizeof(w->sql) - n, " AND ts >= ?");
		w->b[w->n].buffer_type = MYSQL_TYPE_DATETIME;
		w->b[w->n++].buffer = &w->from;
	}
	if (q->to_ms < 253402300800000LL) {
		my_time_from_ms(&w->to, q->to_ms);
		snprintf(w->sql + n, sizeof(w->sql) - n, " AND ts < ?");
		w->b[w->n].buffer_type = MYSQL_TYPE_DATETIME;
		w->b[w->n++].buffer = &w->to;
	}
}

static int my_count(struct my_conn *mc, struct my_where *w, uint64_t *total, char *err, size_t errlen)
{
	char sql[512];
	snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s%s", mc->qtable, w->sql);
	MYSQL_STMT *st = mysql_stmt_init(mc->c);
	long long cnt = 0;
	MYSQL_BIND out = { .buffer_type = MYSQL_TYPE_LONGLONG, .buffer = &cnt };
	int rc = HQ_OK;
	if (!st)
		return my_fail(mc, NULL, "statement", err, errlen);
	if (mysql_stmt_prepare(st, sql, (unsigned long)strlen(sql)) ||
	    (w->n && mysql_stmt_bind_param(st, w->b)) || mysql_stmt_execute(st) ||
	    mysql_stmt_bind_result(st, &out) || mysql_stmt_fetch(st))
		rc = my_fail(mc, st, "count", err, errlen);
	mysql_stmt_close(st);
	*total = cnt > 0 ? (uint64_t)cnt : 0;
	return rc;
}

enum { C_ID, C_TOPIC, C_PAYLOAD, C_QOS, C_RETAIN, C_CLIENTID, C_USERNAME, C_TS, C_NODE, C_N };

/* After store_result: a buffer per variable-length column, as large as its longest value. */
static int my_bind_out(MYSQL_STMT *st, MYSQL_BIND *b, char **bufs, unsigned long *lens, my_bool *nulls,
		       signed char *qos, signed char *retain, MYSQL_TIME *ts)
{
	MYSQL_RES *meta = mysql_stmt_result_metadata(st);
	if (!meta || mysql_num_fields(meta) != C_N) {
		if (meta)
			mysql_free_result(meta);
		return HQ_EINVAL;
	}
	MYSQL_FIELD *fields = mysql_fetch_fields(meta);
	memset(b, 0, C_N * sizeof(*b));
	for (int i = 0; i < C_N; i++) {
		b[i].length = &lens[i];
		b[i].is_null = &nulls[i];
		if (i == C_QOS || i == C_RETAIN) {
			b[i].buffer_type = MYSQL_TYPE_TINY;
			b[i].buffer = i == C_QOS ? qos : retain;
			continue;
		}
		if (i == C_TS) {
			b[i].buffer_type = MYSQL_TYPE_DATETIME;
			b[i].buffer = ts;
			continue;
		}
		b[i].buffer_type = i == C_PAYLOAD ? MYSQL_TYPE_BLOB : MYSQL_TYPE_STRING;
		b[i].buffer_length = fields[i].max_length + 1;
		if (!(bufs[i] = malloc(b[i].buffer_length))) {
			mysql_free_result(meta);
			return HQ_ENOMEM;
		}
		b[i].buffer = bufs[i];
	}
	mysql_free_result(meta);
	return HQ_OK;
}

static int my_rows(struct my_conn *mc, struct my_where *w, const struct arc_query *q, arc_row_fn each,
		   void *ctx, char *err, size_t errlen)
{
	char sql[768];
	snprintf(sql, sizeof(sql), "SELECT msgid, topic, payload, qos, retain, clientid, username, ts, "
		 "node FROM %s%s ORDER BY ts, msgid LIMIT ? OFFSET ?", mc->qtable, w->sql);
	w->limit = q->limit ? q->limit : 1;
	w->offset = q->offset;
	w->b[w->n].buffer_type = MYSQL_TYPE_LONGLONG;
	w->b[w->n].is_unsigned = 1;
	w->b[w->n++].buffer = &w->limit;
	w->b[w->n].buffer_type = MYSQL_TYPE_LONGLONG;
	w->b[w->n].is_unsigned = 1;
	w->b[w->n++].buffer = &w->offset;
	MYSQL_STMT *st = mysql_stmt_init(mc->c);
	if (!st)
		return my_fail(mc, NULL, "statement", err, errlen);
	my_bool update_max = 1;
	MYSQL_BIND out[C_N];
	char *bufs[C_N] = { 0 };
	unsigned long lens[C_N];
	my_bool nulls[C_N];
	signed char qos = 0, retain = 0;
	MYSQL_TIME ts;
	int rc = HQ_OK;
	mysql_stmt_attr_set(st, STMT_ATTR_UPDATE_MAX_LENGTH, &update_max);
	if (mysql_stmt_prepare(st, sql, (unsigned long)strlen(sql)) || mysql_stmt_bind_param(st, w->b) ||
	    mysql_stmt_execute(st) || mysql_stmt_store_result(st))
		rc = my_fail(mc, st, "select", err, errlen);
	if (rc == HQ_OK && (rc = my_bind_out(st, out, bufs, lens, nulls, &qos, &retain, &ts)) != HQ_OK)
		snprintf(err, errlen, "mysql: the table %s is not the archive's default schema", mc->qtable);
	if (rc == HQ_OK && mysql_stmt_bind_result(st, out))
		rc = my_fail(mc, st, "bind result", err, errlen);
	while (rc == HQ_OK) {
		int f = mysql_stmt_fetch(st);
		if (f == MYSQL_NO_DATA)
			break;
		if (f == 1) {
			rc = my_fail(mc, st, "fetch", err, errlen);
			break;
		}
		struct arc_msg m = { 0 };
		size_t idl = lens[C_ID] < ARC_ID_HEX ? lens[C_ID] : ARC_ID_HEX;
		memcpy(m.id, bufs[C_ID], idl);
		m.id[idl] = '\0';
		bufs[C_TOPIC][lens[C_TOPIC]] = '\0';
		m.topic = bufs[C_TOPIC];
		m.topic_len = (uint32_t)lens[C_TOPIC];
		m.payload = (const uint8_t *)bufs[C_PAYLOAD];
		m.payload_len = (uint32_t)lens[C_PAYLOAD];
		bufs[C_CLIENTID][lens[C_CLIENTID]] = '\0';
		m.clientid = bufs[C_CLIENTID];
		m.clientid_len = (uint16_t)lens[C_CLIENTID];
		if (!nulls[C_USERNAME]) {
			bufs[C_USERNAME][lens[C_USERNAME]] = '\0';
			m.username = bufs[C_USERNAME];
			m.username_len = (uint16_t)lens[C_USERNAME];
		}
		m.qos = (uint8_t)qos;
		m.retain = retain != 0;
		m.ts_ms = my_time_to_ms(&ts);
		bufs[C_NODE][lens[C_NODE]] = '\0';
		m.node = bufs[C_NODE];
		if (each(ctx, &m))
			break;
	}
	for (int i = 0; i < C_N; i++)
		free(bufs[i]);
	mysql_stmt_close(st);
	return rc;
}

int my_query(void *db, const struct arc_query *q, arc_row_fn each, void *ctx, uint64_t *total,
	     char *err, size_t errlen)
{
	struct my_conn *mc = db;
	struct my_filter fl = { 0 };
	struct my_where w;
	*total = 0;
	if (mc->tmpl) {
		snprintf(err, errlen, "mysql: read-back needs the default schema (this archive has an "
			 "insert template)");
		return HQ_EINVAL;
	}
	if (q->topic && my_filter_make(q->topic, &fl) != HQ_OK) {
		snprintf(err, errlen, "bad topic filter");
		return HQ_EINVAL;
	}
	my_where_make(&w, q, &fl);
	int rc = my_count(mc, &w, total, err, errlen);
	if (rc == HQ_OK)
		rc = my_rows(mc, &w, q, each, ctx, err, errlen);
	my_end_read(mc);
	my_filter_free(&fl);
	return rc;
}
