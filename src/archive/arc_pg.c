/*
 * arc_pg.c - the PostgreSQL backend of the archive (libpq), behind
 * arc_backend.h.
 *
 * Default schema: a batch is COPY'd (text format) into a per-connection
 * temporary table, then moved with INSERT ... SELECT ... ON CONFLICT (msgid)
 * DO NOTHING, all in one transaction: one round trip per step whatever the
 * batch size, and a batch written again after a lost commit answer adds no
 * row. An operator's template: the statement prepared with $n markers, one
 * execution per row inside one transaction, sent in pipeline mode (no round
 * trip per row). TLS: sslmode=require, or verify-full against tls_cafile.
 */
#include "archive/arc_int.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/mem.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pg {
	PGconn *c;
	const struct arc_db *db;
	struct buf copy; /* the COPY text of the batch, reused */
};

/* Transient (retry) or the rows' fault (drop)? By SQLSTATE class: 08
 * connection, 40 rollback (deadlock, serialisation), 53 resources, 57
 * operator (shutdown), 58 system; no state at all: the connection broke. */
static int classify(struct pg *p, PGresult *r, const char *what, char *err, size_t errlen)
{
	const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = r ? PQresultErrorMessage(r) : "";
	if (!msg || !*msg)
		msg = PQerrorMessage(p->c);
	snprintf(err, errlen, "%s: %s%s%.*s", what, st ? st : "", st ? " " : "",
		 (int)strcspn(msg, "\n"), msg);
	if (PQstatus(p->c) != CONNECTION_OK || !st)
		return HQ_EAGAIN;
	static const char *const again[] = { "08", "40", "53", "57", "58", "55P03", NULL };
	for (int i = 0; again[i]; i++)
		if (!strncmp(st, again[i], strlen(again[i])))
			return HQ_EAGAIN;
	return HQ_EINVAL;
}

/* Run sql, expecting no rows; HQ_OK or classify's answer. */
static int exec(struct pg *p, const char *sql, const char *what, char *err, size_t errlen)
{
	PGresult *r = PQexec(p->c, sql);
	int rc = HQ_OK;
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		rc = classify(p, r, what, err, errlen);
	PQclear(r);
	return rc;
}

/* An index name from the table's ("s.t" -> "s_t_ts_idx"): unqualified, it
 * lands in the table's schema. */
static void index_name(const char *table, const char *suffix, char *out, size_t n)
{
	snprintf(out, n, "%s_%s", table, suffix);
	for (char *q = out; *q; q++)
		if (*q == '.')
			*q = '_';
}

static int create_schema(struct pg *p, char *err, size_t errlen)
{
	const char *t = p->db->table;
	char sql[1024], i1[200], i2[200];
	index_name(t, "ts_idx", i1, sizeof(i1));
	index_name(t, "topic_ts_idx", i2, sizeof(i2));
	snprintf(sql, sizeof(sql),
		 "CREATE TABLE IF NOT EXISTS %s (msgid CHAR(32) PRIMARY KEY, topic TEXT NOT NULL, "
		 "payload BYTEA NOT NULL, qos SMALLINT NOT NULL, retain BOOLEAN NOT NULL, "
		 "clientid TEXT NOT NULL, username TEXT, ts TIMESTAMPTZ(3) NOT NULL, node TEXT NOT NULL);"
		 "CREATE INDEX IF NOT EXISTS %s ON %s (ts);"
		 "CREATE INDEX IF NOT EXISTS %s ON %s (topic, ts)",
		 t, i1, t, i2, t);
	/* two writers creating it at once: one loses on the catalog's unique
	 * index; the table is there all the same, so once more settles it */
	int rc = HQ_OK;
	for (int attempt = 0; attempt < 3; attempt++) {
		rc = exec(p, sql, "create table", err, errlen);
		if (rc != HQ_EINVAL || (!strstr(err, "23505") && !strstr(err, "42P07")))
			break;
	}
	return rc;
}

/* The server's NOTICEs ("relation ... already exists, skipping" from the
 * IF NOT EXISTS of every connect) are not ours to print: libpq's default
 * writes them to stderr, into the node's log. */
static void no_notices(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

static int pg_open(const struct arc_db *db, void **out, char *err, size_t errlen)
{
	*out = NULL;
	char port[8], timeout[16];
	snprintf(port, sizeof(port), "%u", db->port);
	snprintf(timeout, sizeof(timeout), "%u", db->connect_timeout_s ? db->connect_timeout_s : 5);
	const char *keys[16], *vals[16];
	int n = 0;
#define KV(k, v) do { const char *v_ = (v); if (v_) { keys[n] = k; vals[n] = v_; n++; } } while (0)
	KV("host", db->host);
	KV("port", port);
	KV("dbname", db->database);
	KV("user", db->username);
	KV("password", db->password);
	KV("connect_timeout", timeout);
	KV("application_name", "hamqtt-archive");
	KV("client_encoding", "UTF8");
	KV("sslmode", !db->tls ? "disable" : db->tls_cafile ? "verify-full" : "require");
	if (db->tls)
		KV("sslrootcert", db->tls_cafile);
#undef KV
	keys[n] = vals[n] = NULL;
	struct pg *p = hq_calloc(1, sizeof(*p));
	p->db = db;
	p->c = PQconnectdbParams(keys, vals, 0);
	if (!p->c || PQstatus(p->c) != CONNECTION_OK) {
		const char *m = p->c ? PQerrorMessage(p->c) : "out of memory";
		snprintf(err, errlen, "connect: %.*s", (int)strcspn(m, "\n"), m);
		PQfinish(p->c);
		hq_free(p);
		return HQ_EAGAIN;
	}
	PQsetNoticeProcessor(p->c, no_notices, NULL);
	int rc = HQ_OK;
	if (!db->insert) {
		rc = create_schema(p, err, errlen);
		if (rc == HQ_OK)
			rc = exec(p, "CREATE TEMP TABLE IF NOT EXISTS hamqtt_arc_in (msgid TEXT, topic TEXT, "
				  "payload BYTEA, qos SMALLINT, retain BOOLEAN, clientid TEXT, username TEXT, "
				  "ts_ms BIGINT, node TEXT) ON COMMIT DELETE ROWS", "temp table", err, errlen);
	} else {
		PGresult *r = PQprepare(p->c, "hamqtt_ins", arc_tmpl_sql(db->insert, ARC_MARK_DOLLAR),
					(int)arc_tmpl_nparams(db->insert), NULL);
		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			rc = classify(p, r, "prepare insert", err, errlen);
		PQclear(r);
	}
	if (rc != HQ_OK) {
		PQfinish(p->c);
		hq_free(p);
		/* a schema the server refuses for good is still worth retrying:
		 * the operator may fix it while the node buffers */
		return HQ_EAGAIN;
	}
	*out = p;
	return HQ_OK;
}

static void pg_close(void *h)
{
	struct pg *p = h;
	if (!p)
		return;
	PQfinish(p->c);
	buf_free(&p->copy);
	hq_free(p);
}

/* COPY text format: backslash, tab, newline and CR escaped. */
static void copy_text(struct buf *b, const char *s, size_t n)
{
	size_t start = 0;
	for (size_t i = 0; i < n; i++) {
		const char *rep = NULL;
		switch (s[i]) {
		case '\\': rep = "\\\\"; break;
		case '\t': rep = "\\t"; break;
		case '\n': rep = "\\n"; break;
		case '\r': rep = "\\r"; break;
		default: continue;
		}
		buf_append(b, s + start, i - start);
		buf_append(b, rep, 2);
		start = i + 1;
	}
	buf_append(b, s + start, n - start);
}

static void copy_row(struct buf *b, const struct arc_msg *m)
{
	static const char hex[] = "0123456789abcdef";
	char num[64];
	buf_append(b, m->id, ARC_ID_HEX);
	buf_append(b, "\t", 1);
	copy_text(b, m->topic, m->topic_len);
	buf_append(b, "\t\\\\x", 4); /* bytea's hex input, its backslash escaped for COPY */
	if (m->payload_len) {
		char *o = (char *)buf_reserve(b, (size_t)m->payload_len * 2);
		for (uint32_t i = 0; i < m->payload_len; i++) {
			*o++ = hex[m->payload[i] >> 4];
			*o++ = hex[m->payload[i] & 15];
		}
		b->len += (size_t)m->payload_len * 2;
	}
	int k = snprintf(num, sizeof(num), "\t%u\t%c\t", m->qos, m->retain ? 't' : 'f');
	buf_append(b, num, (size_t)k);
	copy_text(b, m->clientid, m->clientid_len);
	buf_append(b, "\t", 1);
	if (m->username)
		copy_text(b, m->username, m->username_len);
	else
		buf_append(b, "\\N", 2);
	k = snprintf(num, sizeof(num), "\t%lld\t", (long long)m->ts_ms);
	buf_append(b, num, (size_t)k);
	copy_text(b, m->node, strlen(m->node));
	buf_append(b, "\n", 1);
}

static int write_default(struct pg *p, const struct arc_msg *rows, size_t n, char *err, size_t errlen)
{
	int rc = exec(p, "BEGIN", "begin", err, errlen);
	if (rc != HQ_OK)
		return rc;
	PGresult *r = PQexec(p->c, "COPY hamqtt_arc_in FROM STDIN");
	if (PQresultStatus(r) != PGRES_COPY_IN) {
		rc = classify(p, r, "copy", err, errlen);
		PQclear(r);
		return rc;
	}
	PQclear(r);
	p->copy.len = p->copy.off = 0;
	for (size_t i = 0; i < n; i++)
		copy_row(&p->copy, &rows[i]);
	/* in pieces: PQputCopyData takes an int */
	const char *d = (const char *)buf_head(&p->copy);
	size_t left = buf_avail(&p->copy);
	while (left) {
		int part = left > (1u << 30) ? 1 << 30 : (int)left;
		if (PQputCopyData(p->c, d, part) != 1)
			return classify(p, NULL, "copy data", err, errlen);
		d += part;
		left -= (size_t)part;
	}
	if (PQputCopyEnd(p->c, NULL) != 1)
		return classify(p, NULL, "copy end", err, errlen);
	r = PQgetResult(p->c);
	rc = PQresultStatus(r) == PGRES_COMMAND_OK ? HQ_OK : classify(p, r, "copy", err, errlen);
	PQclear(r);
	while ((r = PQgetResult(p->c)))
		PQclear(r);
	if (rc == HQ_OK) {
		char sql[768];
		snprintf(sql, sizeof(sql),
			 "INSERT INTO %s (msgid, topic, payload, qos, retain, clientid, username, ts, node) "
			 "SELECT msgid, topic, payload, qos, retain, clientid, username, "
			 "'epoch'::timestamptz + ts_ms * interval '1 millisecond', node "
			 "FROM hamqtt_arc_in ON CONFLICT (msgid) DO NOTHING",
			 p->db->table);
		rc = exec(p, sql, "insert", err, errlen);
	}
	if (rc == HQ_OK)
		rc = exec(p, "COMMIT", "commit", err, errlen);
	if (rc == HQ_EINVAL) {
		char e2[64];
		exec(p, "ROLLBACK", "rollback", e2, sizeof(e2));
	}
	return rc;
}

/* One execution of the prepared template per row, pipelined: the rows go
 * out back to back and the answers are read after the COMMIT. */
static int write_tmpl(struct pg *p, const struct arc_msg *rows, size_t n, char *err, size_t errlen)
{
	const struct arc_tmpl *t = p->db->insert;
	uint32_t np = arc_tmpl_nparams(t);
	const char **vals = hq_calloc(np + 1, sizeof(*vals));
	int *lens = hq_calloc(np + 1, sizeof(*lens)), *fmts = hq_calloc(np + 1, sizeof(*fmts));
	int rc = HQ_OK;
	if (!PQenterPipelineMode(p->c)) {
		rc = classify(p, NULL, "pipeline", err, errlen);
		goto out;
	}
	bool sent = PQsendQueryParams(p->c, "BEGIN", 0, NULL, NULL, NULL, NULL, 0);
	for (size_t i = 0; i < n && sent; i++) {
		struct arc_tmpl_row row;
		arc_tmpl_row_init(&row, &rows[i]);
		for (uint32_t k = 0; k < np; k++) {
			size_t len = 0;
			bool bin = false;
			vals[k] = arc_tmpl_param(t, &row, k, &len, &bin);
			lens[k] = (int)len;
			fmts[k] = bin;
		}
		sent = PQsendQueryPrepared(p->c, "hamqtt_ins", (int)np, vals, lens, fmts, 0);
		arc_tmpl_row_done(&row);
	}
	sent = sent && PQsendQueryParams(p->c, "COMMIT", 0, NULL, NULL, NULL, NULL, 0);
	sent = sent && PQpipelineSync(p->c);
	if (!sent) {
		rc = classify(p, NULL, "send", err, errlen);
		goto out;
	}
	/* n + 2 results, each followed by NULL, then the sync */
	for (size_t i = 0; i < n + 2; i++) {
		PGresult *r = PQgetResult(p->c);
		ExecStatusType st = PQresultStatus(r);
		if (rc == HQ_OK && st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
			rc = !r ? HQ_EAGAIN : classify(p, r, "insert", err, errlen);
		PQclear(r);
		if (!r)
			break;
		while ((r = PQgetResult(p->c)))
			PQclear(r);
	}
	PGresult *r = PQgetResult(p->c); /* PGRES_PIPELINE_SYNC */
	PQclear(r);
	PQexitPipelineMode(p->c);
	if (rc == HQ_EINVAL) {
		char e2[64];
		exec(p, "ROLLBACK", "rollback", e2, sizeof(e2));
	}
out:
	hq_free(vals);
	hq_free(lens);
	hq_free(fmts);
	return rc;
}

static int pg_write(void *h, const struct arc_msg *rows, size_t n, char *err, size_t errlen)
{
	struct pg *p = h;
	if (!n)
		return HQ_OK;
	return p->db->insert ? write_tmpl(p, rows, n, err, errlen) : write_default(p, rows, n, err, errlen);
}

/* An MQTT filter as an anchored PostgreSQL regex: literal levels escaped,
 * '+' one level (maybe empty), a final '#' the parent level and below. */
static void filter_regex(const char *f, struct buf *b)
{
	buf_append(b, "^", 1);
	for (const char *p = f; *p; p++) {
		if (*p == '+') {
			buf_append(b, "[^/]*", 5);
		} else if (*p == '#') {
			/* "a/#": the '/' before it already went in; make it optional */
			if (b->len > 1 && b->data[b->len - 1] == '/') {
				b->len--;
				buf_append(b, "(/.*)?", 6);
			} else {
				buf_append(b, ".*", 2);
			}
		} else {
			if (strchr("\\.^$|?*+()[]{}", *p))
				buf_append(b, "\\", 1);
			buf_append(b, p, 1);
		}
	}
	buf_append(b, "$", 2); /* with the NUL */
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int pg_query(void *h, const struct arc_query *q, arc_row_fn each, void *ctx,
		    uint64_t *total, char *err, size_t errlen)
{
	struct pg *p = h;
	char where[512] = "TRUE", from[32], to[32], lim[32], off[32];
	const char *params[6];
	int np = 0;
	struct buf re = { 0 };
	if (q->topic) {
		filter_regex(q->topic, &re);
		params[np++] = (const char *)re.data;
		size_t w = strlen(where);
		snprintf(where + w, sizeof(where) - w, " AND topic ~ $%d", np);
		if (q->topic[0] == '+' || q->topic[0] == '#') {
			w = strlen(where);
			snprintf(where + w, sizeof(where) - w, " AND topic !~ '^\\$'");
		}
	}
	if (q->from_ms != INT64_MIN) {
		snprintf(from, sizeof(from), "%lld", (long long)q->from_ms);
		params[np++] = from;
		size_t w = strlen(where);
		snprintf(where + w, sizeof(where) - w,
			 " AND ts >= 'epoch'::timestamptz + $%d::bigint * interval '1 millisecond'", np);
	}
	if (q->to_ms != INT64_MAX) {
		snprintf(to, sizeof(to), "%lld", (long long)q->to_ms);
		params[np++] = to;
		size_t w = strlen(where);
		snprintf(where + w, sizeof(where) - w,
			 " AND ts < 'epoch'::timestamptz + $%d::bigint * interval '1 millisecond'", np);
	}
	char sql[1536];
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s WHERE %s", p->db->table, where);
	PGresult *r = PQexecParams(p->c, sql, np, NULL, params, NULL, NULL, 0);
	int rc = HQ_OK;
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		rc = classify(p, r, "count", err, errlen);
		PQclear(r);
		buf_free(&re);
		return rc;
	}
	*total = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	snprintf(lim, sizeof(lim), "%u", q->limit);
	snprintf(off, sizeof(off), "%llu", (unsigned long long)q->offset);
	params[np] = lim;
	params[np + 1] = off;
	snprintf(sql, sizeof(sql),
		 "SELECT msgid, topic, payload, qos, retain, clientid, username, "
		 "(extract(epoch FROM ts) * 1000)::bigint, node FROM %s WHERE %s "
		 "ORDER BY ts, msgid LIMIT $%d OFFSET $%d",
		 p->db->table, where, np + 1, np + 2);
	/* binary results for the payload only would need every column binary:
	 * text it is, bytea in hex */
	r = PQexecParams(p->c, sql, np + 2, NULL, params, NULL, NULL, 0);
	buf_free(&re);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		rc = classify(p, r, "select", err, errlen);
		PQclear(r);
		return rc;
	}
	int rows = PQntuples(r);
	uint8_t *pl = NULL;
	for (int i = 0; i < rows; i++) {
		struct arc_msg m = { 0 };
		snprintf(m.id, sizeof(m.id), "%s", PQgetvalue(r, i, 0));
		m.topic = PQgetvalue(r, i, 1);
		m.topic_len = (uint32_t)PQgetlength(r, i, 1);
		const char *hx = PQgetvalue(r, i, 2);
		size_t hl = (size_t)PQgetlength(r, i, 2);
		if (hl >= 2 && hx[0] == '\\' && hx[1] == 'x') {
			hx += 2;
			hl -= 2;
		}
		pl = hq_realloc(pl, hl / 2 + 1);
		for (size_t k = 0; k + 1 < hl + 1 && k / 2 < hl / 2; k += 2)
			pl[k / 2] = (uint8_t)(hexval(hx[k]) << 4 | hexval(hx[k + 1]));
		m.payload = pl;
		m.payload_len = (uint32_t)(hl / 2);
		m.qos = (uint8_t)atoi(PQgetvalue(r, i, 3));
		m.retain = PQgetvalue(r, i, 4)[0] == 't';
		m.clientid = PQgetvalue(r, i, 5);
		m.clientid_len = (uint16_t)PQgetlength(r, i, 5);
		if (!PQgetisnull(r, i, 6)) {
			m.username = PQgetvalue(r, i, 6);
			m.username_len = (uint16_t)PQgetlength(r, i, 6);
		}
		m.ts_ms = strtoll(PQgetvalue(r, i, 7), NULL, 10);
		m.node = PQgetvalue(r, i, 8);
		if (each(ctx, &m))
			break;
	}
	hq_free(pl);
	PQclear(r);
	return HQ_OK;
}

const struct arc_backend_ops arc_pg_ops = {
	.name = "postgresql",
	.open = pg_open,
	.write = pg_write,
	.query = pg_query,
	.close = pg_close,
};
