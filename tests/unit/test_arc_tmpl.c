/*
 * test_arc_tmpl.c - unit tests for src/archive/arc_tmpl.c: the operator's
 * INSERT template (archive.<name>.insert) parsed into SQL with markers of
 * both styles, what it refuses, and each placeholder's value for a row
 * (JSON fields of the payload included).
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

static struct arc_tmpl *parse_ok(const char *text)
{
	struct arc_tmpl *t = NULL;
	char err[256] = "";
	int rc = arc_tmpl_parse(text, &t, err, sizeof(err));
	if (rc != HQ_OK)
		fprintf(stderr, "unexpected refusal of %s: %s\n", text, err);
	assert_int_equal(rc, HQ_OK);
	assert_non_null(t);
	return t;
}

/* Refused, with a reason that contains `why`. */
static void parse_bad(const char *text, const char *why)
{
	struct arc_tmpl *t = (struct arc_tmpl *)1;
	char err[256] = "";
	assert_int_equal(arc_tmpl_parse(text, &t, err, sizeof(err)), HQ_EINVAL);
	assert_null(t);
	if (!strstr(err, why))
		fprintf(stderr, "%s: reason \"%s\" lacks \"%s\"\n", text, err, why);
	assert_non_null(strstr(err, why));
}

static void test_markers(void **state)
{
	(void)state;
	struct arc_tmpl *t = parse_ok("INSERT INTO t (a, b, c) VALUES (${topic}, ${payload.temp}, "
				      "FROM_UNIXTIME(${timestamp} / 1000));");
	assert_int_equal(arc_tmpl_nparams(t), 3);
	assert_string_equal(arc_tmpl_sql(t, ARC_MARK_QUESTION),
			    "INSERT INTO t (a, b, c) VALUES (?, ?, FROM_UNIXTIME(? / 1000))");
	assert_string_equal(arc_tmpl_sql(t, ARC_MARK_DOLLAR),
			    "INSERT INTO t (a, b, c) VALUES ($1, $2, FROM_UNIXTIME($3 / 1000))");
	arc_tmpl_free(t);

	/* literals keep their quotes, doubled quotes and backslashes; the same
	 * placeholder twice is two parameters */
	t = parse_ok("  insert into `my``t` (x, y, z) values ('it''s \\' ok', ${id}, ${id})");
	assert_int_equal(arc_tmpl_nparams(t), 2);
	assert_string_equal(arc_tmpl_sql(t, ARC_MARK_QUESTION),
			    "  insert into `my``t` (x, y, z) values ('it''s \\' ok', ?, ?)");
	assert_string_equal(arc_tmpl_sql(t, ARC_MARK_DOLLAR),
			    "  insert into `my``t` (x, y, z) values ('it''s \\' ok', $1, $2)");
	arc_tmpl_free(t);

	t = parse_ok("INSERT INTO t VALUES (${topic},${payload},${clientid},${username},${qos},"
		     "${retain},${timestamp},${node},${id},${payload.a.b.0})");
	assert_int_equal(arc_tmpl_nparams(t), 10);
	assert_non_null(strstr(arc_tmpl_sql(t, ARC_MARK_DOLLAR), "$10)"));
	arc_tmpl_free(t);
	arc_tmpl_free(NULL);
}

static void test_refused(void **state)
{
	(void)state;
	parse_bad("", "empty");
	parse_bad("SELECT ${topic}", "not an INSERT");
	parse_bad("DELETE FROM t WHERE a = ${topic}", "not an INSERT");
	parse_bad("INSERTINTO t VALUES (${topic})", "not an INSERT");
	parse_bad("INSERT INTO t VALUES (${topic)", "unterminated ${");
	parse_bad("INSERT INTO t VALUES (${topik})", "unknown placeholder ${topik}");
	parse_bad("INSERT INTO t VALUES (${payload.})", "unknown placeholder");
	parse_bad("INSERT INTO t VALUES (${payload.a..b})", "empty field name");
	parse_bad("INSERT INTO t VALUES (${payload.a b})", "bad character");
	parse_bad("INSERT INTO t VALUES ('${topic}')", "inside a quoted string literal");
	parse_bad("INSERT INTO t VALUES ('a\\' ${topic}')", "inside a quoted string literal");
	parse_bad("INSERT INTO \"x${topic}\" VALUES (1)", "inside a quoted identifier");
	parse_bad("INSERT INTO t VALUES ('abc, ${topic})", "inside a quoted");
	parse_bad("INSERT INTO t VALUES ('abc)", "unterminated quoted string literal");
	parse_bad("INSERT INTO t VALUES (1)", "no ${...} placeholder");
	parse_bad("INSERT INTO t VALUES (${topic}, ?)", "bare '?'");
	parse_bad("INSERT INTO t VALUES (${topic}, $1)", "'$' that does not start");
	parse_bad("INSERT INTO t VALUES (${topic}); DROP TABLE t", "more than one statement");
	parse_bad("INSERT INTO t VALUES (${topic}) -- x", "comments");
	parse_bad("INSERT INTO t VALUES (${topic}) /* x */", "comments");
	parse_bad("INSERT INTO t VALUES (${topic}) # x", "comments");
}

static void test_too_many(void **state)
{
	(void)state;
	size_t cap = 20 + 1100 * 10;
	char *s = malloc(cap);
	size_t n = (size_t)snprintf(s, cap, "INSERT INTO t VALUES (");
	for (int i = 0; i < 1100; i++)
		n += (size_t)snprintf(s + n, cap - n, "${qos},");
	s[n - 1] = ')';
	parse_bad(s, "more than 1024 placeholders");
	free(s);
}

static struct arc_msg msg(const char *payload, size_t plen)
{
	struct arc_msg m = { .topic = "a/b", .topic_len = 3, .payload = (const uint8_t *)payload,
			     .payload_len = (uint32_t)plen, .clientid = "c1", .clientid_len = 2,
			     .username = NULL, .qos = 2, .retain = true, .ts_ms = 1700000000123,
			     .node = "n1" };
	memcpy(m.id, "0123456789abcdef0123456789abcdef", ARC_ID_HEX + 1);
	return m;
}

/* Parameter i of t for m, as a NUL-terminated copy in out, or "<NULL>". */
static void param(const struct arc_tmpl *t, struct arc_tmpl_row *r, uint32_t i, char *out,
		  size_t outlen, bool expect_binary)
{
	size_t len = 99;
	bool bin = !expect_binary;
	const char *v = arc_tmpl_param(t, r, i, &len, &bin);
	assert_int_equal(bin, expect_binary);
	if (!v) {
		snprintf(out, outlen, "<NULL>");
		return;
	}
	assert_true(len < outlen);
	memcpy(out, v, len);
	out[len] = '\0';
}

static void test_values(void **state)
{
	(void)state;
	struct arc_tmpl *t = parse_ok("INSERT INTO t VALUES (${topic},${payload},${clientid},"
				      "${username},${qos},${retain},${timestamp},${node},${id})");
	const char pl[] = "x\0y";
	struct arc_msg m = msg(pl, 3);
	struct arc_tmpl_row r;
	char v[128];
	arc_tmpl_row_init(&r, &m);
	param(t, &r, 0, v, sizeof(v), false);
	assert_string_equal(v, "a/b");
	size_t len;
	bool bin;
	const char *p = arc_tmpl_param(t, &r, 1, &len, &bin);
	assert_true(bin);
	assert_int_equal(len, 3);
	assert_memory_equal(p, "x\0y", 3);
	param(t, &r, 2, v, sizeof(v), false);
	assert_string_equal(v, "c1");
	param(t, &r, 3, v, sizeof(v), false);
	assert_string_equal(v, "<NULL>");
	param(t, &r, 4, v, sizeof(v), false);
	assert_string_equal(v, "2");
	param(t, &r, 5, v, sizeof(v), false);
	assert_string_equal(v, "1");
	param(t, &r, 6, v, sizeof(v), false);
	assert_string_equal(v, "1700000000123");
	param(t, &r, 7, v, sizeof(v), false);
	assert_string_equal(v, "n1");
	param(t, &r, 8, v, sizeof(v), false);
	assert_string_equal(v, "0123456789abcdef0123456789abcdef");
	param(t, &r, 9, v, sizeof(v), false); /* out of range: NULL */
	assert_string_equal(v, "<NULL>");
	arc_tmpl_row_done(&r);

	m.username = "bob";
	m.username_len = 3;
	m.payload = NULL;
	m.payload_len = 0;
	m.retain = false;
	m.qos = 0;
	arc_tmpl_row_init(&r, &m);
	param(t, &r, 3, v, sizeof(v), false);
	assert_string_equal(v, "bob");
	p = arc_tmpl_param(t, &r, 1, &len, &bin);
	assert_non_null(p); /* an empty payload is empty bytes, not NULL */
	assert_int_equal(len, 0);
	param(t, &r, 4, v, sizeof(v), false);
	assert_string_equal(v, "0");
	param(t, &r, 5, v, sizeof(v), false);
	assert_string_equal(v, "0");
	arc_tmpl_row_done(&r);
	arc_tmpl_free(t);
}

static void test_json(void **state)
{
	(void)state;
	struct arc_tmpl *t = parse_ok(
		"INSERT INTO t VALUES (${payload.temp}, ${payload.name}, ${payload.ok}, ${payload.obj}, "
		"${payload.arr}, ${payload.obj.x}, ${payload.arr.1}, ${payload.missing}, ${payload.nul}, "
		"${payload.big}, ${payload.frac}, ${payload.name.x}, ${payload.arr.x})");
	const char *js = "{\"temp\": 21.5, \"name\": \"kitchen \\\"A\\\"\", \"ok\": false, "
			 "\"obj\": {\"x\": 1, \"y\": [true]}, \"arr\": [1, \"two\"], \"nul\": null, "
			 "\"big\": 1234567890123, \"frac\": 0.1}";
	struct arc_msg m = msg(js, strlen(js));
	struct arc_tmpl_row r;
	char v[128];
	static const char *want[] = { "21.5", "kitchen \"A\"", "false", "{\"x\":1,\"y\":[true]}",
				      "[1,\"two\"]", "1", "two", "<NULL>", "<NULL>", "1234567890123",
				      "0.1", "<NULL>", "<NULL>" };
	arc_tmpl_row_init(&r, &m);
	for (uint32_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		param(t, &r, i, v, sizeof(v), false);
		assert_string_equal(v, want[i]);
	}
	arc_tmpl_row_done(&r);

	/* not JSON at all, or empty: every field is NULL */
	const char *bad[] = { "not json", "", "{\"temp\": ", "\xff\xfe" };
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		m = msg(bad[k], strlen(bad[k]));
		arc_tmpl_row_init(&r, &m);
		param(t, &r, 0, v, sizeof(v), false);
		assert_string_equal(v, "<NULL>");
		arc_tmpl_row_done(&r);
	}
	/* a payload that is a bare JSON number has no fields */
	m = msg("42", 2);
	arc_tmpl_row_init(&r, &m);
	param(t, &r, 0, v, sizeof(v), false);
	assert_string_equal(v, "<NULL>");
	arc_tmpl_row_done(&r);
	arc_tmpl_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_markers),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_too_many),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
