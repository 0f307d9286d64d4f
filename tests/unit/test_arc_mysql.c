/*
 * test_arc_mysql.c - the archive's MariaDB/MySQL backend (src/archive/
 * arc_mysql*.c) against a real MariaDB server started here
 * (mariadb_fixture.inc): the default schema made on open, batched writes
 * (split under max_allowed_packet), a re-written batch adding no row,
 * binary payloads, an INSERT template with ${payload.temp}, read-back with
 * MQTT filter semantics and paging, and the server killed (HQ_EAGAIN) then
 * back (open works again); TLS required, verified or not.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "archive/arc_backend.h"
#include "core/err.h"

#include "mariadb_fixture.inc"

static struct mfx srv;

static struct arc_db db_conf(const char *table, const struct arc_tmpl *insert)
{
	struct arc_db d = { .name = "t", .host = "127.0.0.1", .port = (uint16_t)srv.port,
			    .database = MFX_DB, .username = MFX_USER, .password = MFX_PASSWORD,
			    .table = table, .insert = insert, .connect_timeout_s = 3 };
	return d;
}

static void *open_ok(const char *table, const struct arc_tmpl *insert)
{
	struct arc_db d = db_conf(table, insert);
	void *db = NULL;
	char err[256] = "";
	int rc = arc_mysql_ops.open(&d, &db, err, sizeof(err));
	if (rc != HQ_OK)
		fprintf(stderr, "open: %s\n", err);
	assert_int_equal(rc, HQ_OK);
	return db;
}

/* n messages: ids from seed, topic "t/<i>", a payload with NUL bytes, ts from ts0 a ms apart. */
struct batch {
	struct arc_msg m[512];
	char topics[512][32];
	uint8_t payloads[512][8];
};

static void make_batch(struct batch *b, size_t n, unsigned seed, int64_t ts0)
{
	for (size_t i = 0; i < n; i++) {
		struct arc_msg *m = &b->m[i];
		memset(m, 0, sizeof(*m));
		snprintf(m->id, sizeof(m->id), "%08x%024zx", seed, i);
		snprintf(b->topics[i], sizeof(b->topics[i]), "t/%zu", i);
		uint8_t p[8] = { 0, 'x', 0, (uint8_t)i, 0xff, 0, 'y', 0 };
		memcpy(b->payloads[i], p, sizeof(p));
		m->topic = b->topics[i];
		m->topic_len = (uint32_t)strlen(b->topics[i]);
		m->payload = b->payloads[i];
		m->payload_len = sizeof(p);
		m->clientid = "c-1";
		m->clientid_len = 3;
		m->username = i % 2 ? "bob" : NULL;
		m->username_len = i % 2 ? 3 : 0;
		m->qos = (uint8_t)(i % 3);
		m->retain = i % 5 == 0;
		m->ts_ms = ts0 + (int64_t)i;
		m->node = "n1";
	}
}

static int write_rows(void *db, const struct arc_msg *rows, size_t n)
{
	char err[256] = "";
	int rc = arc_mysql_ops.write(db, rows, n, err, sizeof(err));
	if (rc != HQ_OK)
		fprintf(stderr, "write: %s\n", err);
	return rc;
}

/* What a query returned, copied. */
struct got {
	size_t n;
	char topics[64][64];
	struct arc_msg m[64];
	uint8_t payloads[64][16];
};

static int collect(void *ctx, const struct arc_msg *m)
{
	struct got *g = ctx;
	if (g->n == 64)
		return 1;
	snprintf(g->topics[g->n], sizeof(g->topics[0]), "%.*s", (int)m->topic_len, m->topic);
	g->m[g->n] = *m;
	memcpy(g->payloads[g->n], m->payload, m->payload_len < 16 ? m->payload_len : 16);
	g->m[g->n].payload = g->payloads[g->n];
	g->m[g->n].username = m->username ? "set" : NULL; /* the row's buffers die with the call */
	g->m[g->n].clientid = NULL;
	g->m[g->n].node = NULL;
	g->m[g->n].topic = g->topics[g->n];
	g->n++;
	return 0;
}

static uint64_t query(void *db, const char *filter, int64_t from, int64_t to, uint64_t off,
		      uint32_t limit, struct got *g)
{
	struct arc_query q = { .topic = filter, .from_ms = from, .to_ms = to, .offset = off,
			       .limit = limit };
	uint64_t total = 0;
	char err[256] = "";
	memset(g, 0, sizeof(*g));
	int rc = arc_mysql_ops.query(db, &q, collect, g, &total, err, sizeof(err));
	if (rc != HQ_OK)
		fprintf(stderr, "query %s: %s\n", filter ? filter : "(all)", err);
	assert_int_equal(rc, HQ_OK);
	return total;
}

static void test_schema_write_dedup(void **state)
{
	(void)state;
	void *db = open_ok("msgs", NULL);
	assert_int_equal(mfx_scalar(&srv, "SELECT COUNT(*) FROM information_schema.statistics WHERE "
				    "table_schema = '" MFX_DB "' AND table_name = 'msgs' AND "
				    "index_name IN ('ts_idx', 'topic_ts_idx')"), 3);
	static struct batch b;
	make_batch(&b, 300, 1, 1700000000000);
	assert_int_equal(write_rows(db, b.m, 300), HQ_OK);
	assert_int_equal(mfx_scalar(&srv, "SELECT COUNT(*) FROM msgs"), 300);
	/* the same ids again (a retry whose commit answer was lost): no second row */
	assert_int_equal(write_rows(db, b.m, 300), HQ_OK);
	assert_int_equal(write_rows(db, b.m + 10, 7), HQ_OK);
	assert_int_equal(mfx_scalar(&srv, "SELECT COUNT(*) FROM msgs"), 300);
	/* a second connection opening the existing table */
	void *db2 = open_ok("msgs", NULL);
	arc_mysql_ops.close(db2);

	static struct got g;
	assert_int_equal(query(db, "t/7", INT64_MIN, INT64_MAX, 0, 10, &g), 1);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.m[0].id, b.m[7].id);
	assert_int_equal(g.m[0].payload_len, 8);
	assert_memory_equal(g.m[0].payload, b.payloads[7], 8); /* NULs and 0xff kept */
	assert_int_equal(g.m[0].qos, 1);
	assert_false(g.m[0].retain);
	assert_non_null(g.m[0].username);
	assert_int_equal(g.m[0].ts_ms, 1700000000007);
	assert_int_equal(query(db, "t/10", INT64_MIN, INT64_MAX, 0, 10, &g), 1);
	assert_true(g.m[0].retain);
	assert_null(g.m[0].username);
	assert_int_equal(g.m[0].qos, 1);
	/* the DATETIME holds UTC */
	assert_int_equal(mfx_scalar(&srv, "SELECT COUNT(*) FROM msgs WHERE ts = '2023-11-14 22:13:20.007'"), 1);
	arc_mysql_ops.close(db);
}

static void test_split_and_too_large(void **state)
{
	(void)state;
	/* a 64 KiB max_allowed_packet for connections opened from now on */
	assert_true(mfx_sql(&srv, "SET GLOBAL max_allowed_packet = 65536"));
	void *db = open_ok("big", NULL);
	static struct batch b;
	static uint8_t big[3000];
	memset(big, 'z', sizeof(big));
	make_batch(&b, 100, 2, 1700000100000);
	for (int i = 0; i < 100; i++) {
		b.m[i].payload = big;
		b.m[i].payload_len = sizeof(big);
	}
	/* 300 KB in all: several statements in one transaction */
	assert_int_equal(write_rows(db, b.m, 100), HQ_OK);
	assert_int_equal(mfx_scalar(&srv, "SELECT COUNT(*) FROM big"), 100);
	assert_int_equal(mfx_scalar(&srv, "SELECT SUM(LENGTH(payload)) FROM big"), 300000);
	/* one row beyond the server's limit can never be written */
	static uint8_t huge[70000];
	make_batch(&b, 2, 3, 1700000200000);
	b.m[1].payload = huge;
	b.m[1].payload_len = sizeof(huge);
	char err[256] = "";
	assert_int_equal(arc_mysql_ops.write(db, b.m, 2, err, sizeof(err)), HQ_EINVAL);
	assert_non_null(strstr(err, "max_allowed_packet"));
	assert_int_equal(mfx_scalar(&srv, "SELECT COUNT(*) FROM big"), 100); /* all or nothing */
	arc_mysql_ops.close(db);
	assert_true(mfx_sql(&srv, "SET GLOBAL max_allowed_packet = 16777216"));
}

static void test_template(void **state)
{
	(void)state;
	assert_true(mfx_sql(&srv, "CREATE TABLE " MFX_DB ".readings (id CHAR(32) PRIMARY KEY, "
			    "topic VARCHAR(255) NOT NULL, temp DOUBLE NULL, raw BLOB, at BIGINT, "
			    "place VARCHAR(64) NULL)"));
	struct arc_tmpl *t = NULL;
	char err[256] = "";
	assert_int_equal(arc_tmpl_parse("INSERT INTO readings (id, topic, temp, raw, at, place) VALUES "
					"(${id}, ${topic}, ${payload.temp}, ${payload}, ${timestamp}, "
					"${payload.where.room})", &t, err, sizeof(err)), HQ_OK);
	void *db = open_ok("unused", t);
	static struct batch b;
	make_batch(&b, 3, 4, 1700000300000);
	const char *js[] = { "{\"temp\": 21.5, \"where\": {\"room\": \"k\"}}", "not json", "{\"temp\": -3}" };
	for (int i = 0; i < 3; i++) {
		b.m[i].payload = (const uint8_t *)js[i];
		b.m[i].payload_len = (uint32_t)strlen(js[i]);
	}
	assert_int_equal(write_rows(db, b.m, 3), HQ_OK);
	assert_int_equal(write_rows(db, b.m, 3), HQ_OK); /* the retry: duplicate ids skipped */
	assert_int_equal(mfx_scalar(&srv, "SELECT COUNT(*) FROM readings"), 3);
	assert_int_equal(mfx_scalar(&srv, "SELECT COUNT(*) FROM readings WHERE temp = 21.5 AND place = 'k'"), 1);
	assert_int_equal(mfx_scalar(&srv, "SELECT COUNT(*) FROM readings WHERE temp IS NULL AND place IS NULL"), 1);
	assert_int_equal(mfx_scalar(&srv, "SELECT COUNT(*) FROM readings WHERE temp = -3"), 1);
	assert_int_equal(mfx_scalar(&srv, "SELECT at FROM readings WHERE topic = 't/2'"), 1700000300002);
	assert_int_equal(mfx_scalar(&srv, "SELECT COUNT(*) FROM readings WHERE raw = 'not json'"), 1);
	/* read-back is for the default schema only */
	struct arc_query q = { .from_ms = INT64_MIN, .to_ms = INT64_MAX, .limit = 10 };
	uint64_t total;
	assert_int_equal(arc_mysql_ops.query(db, &q, collect, NULL, &total, err, sizeof(err)), HQ_EINVAL);
	arc_mysql_ops.close(db);
	arc_tmpl_free(t);

	/* a template naming a column the table lacks: never writable */
	assert_int_equal(arc_tmpl_parse("INSERT INTO readings (id, nosuch) VALUES (${id}, ${topic})",
					&t, err, sizeof(err)), HQ_OK);
	db = open_ok("unused", t);
	make_batch(&b, 1, 5, 1700000400000);
	assert_int_equal(arc_mysql_ops.write(db, b.m, 1, err, sizeof(err)), HQ_EINVAL);
	arc_mysql_ops.close(db);
	arc_tmpl_free(t);
}

static void test_query_filters(void **state)
{
	(void)state;
	static const char *topics[] = { "a/b", "a/b/c", "a", "a/c", "b/b", "$SYS/x", "a/b%_/z",
					"a/bxy/z", "A/b", "/x", "a/b ", "a/", "$share/y", "ab" };
	enum { N = sizeof(topics) / sizeof(topics[0]) };
	void *db = open_ok("filt", NULL);
	static struct batch b;
	make_batch(&b, N, 6, 1700000500000);
	for (int i = 0; i < N; i++) {
		b.m[i].topic = topics[i];
		b.m[i].topic_len = (uint32_t)strlen(topics[i]);
		b.m[i].ts_ms = 1700000500000 + 1000 * (int64_t)i;
	}
	assert_int_equal(write_rows(db, b.m, N), HQ_OK);
	static const struct {
		const char *filter;
		const char *want; /* the matching topics in ts order, '|' separated */
	} cases[] = {
		{ "a/b", "a/b" },
		{ "a/+", "a/b|a/c|a/b |a/" },
		{ "a/#", "a/b|a/b/c|a|a/c|a/b%_/z|a/bxy/z|a/b |a/" },
		{ "#", "a/b|a/b/c|a|a/c|b/b|a/b%_/z|a/bxy/z|A/b|/x|a/b |a/|ab" },
		{ "+/b", "a/b|b/b|A/b" },
		{ "+", "a|ab" },
		{ "+/+", "a/b|a/c|b/b|A/b|/x|a/b |a/" },
		{ "+/#", "a/b|a/b/c|a|a/c|b/b|a/b%_/z|a/bxy/z|A/b|/x|a/b |a/|ab" },
		{ "$SYS/#", "$SYS/x" },
		{ "$SYS/+", "$SYS/x" },
		{ "a/b%_/#", "a/b%_/z" },
		{ "a/b%_/z", "a/b%_/z" },
		{ "a/+/z", "a/b%_/z|a/bxy/z" },
		{ "a/b/#", "a/b|a/b/c" },
		{ "a/b ", "a/b " },
		{ "nothing/+", "" },
	};
	static struct got g;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		uint64_t total = query(db, cases[c].filter, INT64_MIN, INT64_MAX, 0, 64, &g);
		char seen[512] = "";
		for (size_t i = 0; i < g.n; i++)
			snprintf(seen + strlen(seen), sizeof(seen) - strlen(seen), "%s%s", i ? "|" : "",
				 g.topics[i]);
		if (strcmp(seen, cases[c].want))
			fprintf(stderr, "filter %s: got \"%s\", want \"%s\"\n", cases[c].filter, seen,
				cases[c].want);
		assert_string_equal(seen, cases[c].want);
		assert_int_equal(total, g.n);
	}
	/* paging: 12 rows under '#', 5 at a time, in (ts, msgid) order, the total each time */
	assert_int_equal(query(db, "#", INT64_MIN, INT64_MAX, 10, 5, &g), 12);
	assert_int_equal(g.n, 2);
	assert_string_equal(g.topics[0], "a/");
	assert_string_equal(g.topics[1], "ab");
	assert_int_equal(query(db, NULL, INT64_MIN, INT64_MAX, 5, 5, &g), N);
	assert_int_equal(g.n, 5);
	assert_string_equal(g.topics[0], "$SYS/x");
	/* a time range: from inclusive, to exclusive */
	assert_int_equal(query(db, "#", 1700000501000, 1700000504000, 0, 64, &g), 3);
	assert_string_equal(g.topics[0], "a/b/c");
	assert_string_equal(g.topics[2], "a/c");
	/* a bad filter */
	struct arc_query q = { .topic = "a/#/b", .from_ms = INT64_MIN, .to_ms = INT64_MAX, .limit = 5 };
	uint64_t total;
	char err[128];
	assert_int_equal(arc_mysql_ops.query(db, &q, collect, &g, &total, err, sizeof(err)), HQ_EINVAL);
	q.topic = "a+";
	assert_int_equal(arc_mysql_ops.query(db, &q, collect, &g, &total, err, sizeof(err)), HQ_EINVAL);
	/* rows written after a query are seen by the next one (no stale snapshot) */
	make_batch(&b, 1, 7, 1700000600000);
	void *w = open_ok("filt", NULL);
	assert_int_equal(write_rows(w, b.m, 1), HQ_OK);
	arc_mysql_ops.close(w);
	assert_int_equal(query(db, "t/0", INT64_MIN, INT64_MAX, 0, 5, &g), 1);
	arc_mysql_ops.close(db);
}

static void test_server_killed(void **state)
{
	(void)state;
	void *db = open_ok("msgs", NULL);
	static struct batch b;
	make_batch(&b, 20, 8, 1700000700000);
	mfx_kill(&srv);
	char err[256] = "";
	assert_int_equal(arc_mysql_ops.write(db, b.m, 20, err, sizeof(err)), HQ_EAGAIN);
	arc_mysql_ops.close(db);
	struct arc_db d = db_conf("msgs", NULL);
	db = (void *)1;
	assert_int_equal(arc_mysql_ops.open(&d, &db, err, sizeof(err)), HQ_EAGAIN);
	assert_null(db);
	assert_null(strstr(err, MFX_PASSWORD));
	assert_true(mfx_start(&srv)); /* same port, same data */
	db = open_ok("msgs", NULL);
	assert_int_equal(write_rows(db, b.m, 20), HQ_OK);
	assert_int_equal(mfx_scalar(&srv, "SELECT COUNT(*) FROM msgs"), 320);
	arc_mysql_ops.close(db);
}

/* A self-signed certificate for 127.0.0.1 (its own CA) as dir/<name>.pem + dir/<name>.key. */
static bool make_cert(const char *name)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 "
		 "-addext subjectAltName=IP:127.0.0.1 -keyout %s/%s.key -out %s/%s.pem >/dev/null 2>&1 && "
		 "chmod 644 %s/%s.key", srv.dir, name, srv.dir, name, srv.dir, name);
	return system(cmd) == 0;
}

/* tls = true: encrypted (the server refuses plain connections); tls_cafile verifies. */
static void test_tls(void **state)
{
	(void)state;
	static char cert[128], key[128], ca[128], other[128];
	assert_true(make_cert("server"));
	assert_true(make_cert("other"));
	snprintf(cert, sizeof(cert), "--ssl-cert=%s/server.pem", srv.dir);
	snprintf(key, sizeof(key), "--ssl-key=%s/server.key", srv.dir);
	snprintf(ca, sizeof(ca), "%s/server.pem", srv.dir);
	snprintf(other, sizeof(other), "%s/other.pem", srv.dir);
	mfx_kill(&srv);
	srv.extra[0] = cert;
	srv.extra[1] = key;
	srv.extra[2] = "--require-secure-transport=ON";
	assert_true(mfx_start(&srv));
	struct arc_db d = db_conf("msgs", NULL);
	void *db = NULL;
	char err[256] = "";
	/* plain: refused by the server */
	assert_int_equal(arc_mysql_ops.open(&d, &db, err, sizeof(err)), HQ_EAGAIN);
	assert_null(db);
	/* encrypted, not verified */
	d.tls = true;
	assert_int_equal(arc_mysql_ops.open(&d, &db, err, sizeof(err)), HQ_OK);
	static struct batch b;
	make_batch(&b, 3, 9, 1700000800000);
	assert_int_equal(write_rows(db, b.m, 3), HQ_OK);
	arc_mysql_ops.close(db);
	/* verified against the right CA, then a wrong one */
	d.tls_cafile = ca;
	db = NULL;
	assert_int_equal(arc_mysql_ops.open(&d, &db, err, sizeof(err)), HQ_OK);
	arc_mysql_ops.close(db);
	d.tls_cafile = other;
	db = NULL;
	assert_int_equal(arc_mysql_ops.open(&d, &db, err, sizeof(err)), HQ_EAGAIN);
	assert_null(db);
	assert_int_equal(mfx_scalar(&srv, "SELECT COUNT(*) FROM msgs"), 323);
	mfx_kill(&srv);
	memset(srv.extra, 0, sizeof(srv.extra));
	assert_true(mfx_start(&srv));
}

int main(void)
{
	if (!mfx_available())
		return mfx_missing("test_arc_mysql");
	if (!mfx_setup(&srv)) {
		fprintf(stderr, "test_arc_mysql: the MariaDB fixture did not start\n");
		return 1;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_schema_write_dedup),
		cmocka_unit_test(test_split_and_too_large),
		cmocka_unit_test(test_template),
		cmocka_unit_test(test_query_filters),
		cmocka_unit_test(test_server_killed),
		cmocka_unit_test(test_tls),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	mfx_cleanup();
	return rc;
}
