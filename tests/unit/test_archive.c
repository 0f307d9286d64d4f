/*
 * test_archive.c - unit tests of the message archive's pure parts: MQTT
 * filter matching (arc_topic.c) and archive.<name>.* parsing (arc_conf.c)
 * with its exact file:line messages, and that etc/hamqtt.conf documents
 * every archive key (run from the repo root).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive/arc_int.h"
#include "broker/topic.h"
#include "core/conf.h"
#include "core/err.h"

static bool m(const char *f, const char *t)
{
	return topic_matches(f, strlen(f), t, strlen(t)); /* what arc_core.c matches with */
}

static void test_match(void **state)
{
	(void)state;
	assert_true(m("#", "a/b"));
	assert_true(m("a/#", "a"));
	assert_true(m("a/#", "a/b/c"));
	assert_false(m("a/#", "ab"));
	assert_true(m("+/b", "x/b"));
	assert_false(m("+/b", "x/b/c"));
	assert_true(m("+", ""));
	assert_true(m("a/+", "a/"));
	assert_false(m("a/+", "a"));
	assert_true(m("a/b", "a/b"));
	assert_false(m("a/b", "a/bc"));
	assert_false(m("#", "$SYS/x"));      /* [MQTT-4.7.2-1] */
	assert_false(m("+/x", "$x/x"));
	assert_true(m("$x/#", "$x/y"));
	assert_true(topic_filter_valid("a/+/#", strlen("a/+/#"), 0));
	assert_false(topic_filter_valid("a/#/b", strlen("a/#/b"), 0));
	assert_false(topic_filter_valid("a+", strlen("a+"), 0));
	assert_false(topic_filter_valid("", strlen(""), 0));
}

static int load(const char *text, struct archive_set **s, char *err, size_t errlen)
{
	struct hq_config cfg;
	conf_defaults(&cfg);
	assert_int_equal(conf_load_string(&cfg, "t.conf", text, err, errlen), HQ_OK);
	int rc = archive_conf(&cfg, s, err, errlen);
	conf_free(&cfg);
	return rc;
}

static void test_conf(void **state)
{
	(void)state;
	char err[512];
	struct archive_set *s = NULL;
	assert_int_equal(load("node.name = a@b\n", &s, err, sizeof(err)), HQ_OK);
	assert_null(s);
	assert_int_equal(load("archive.x.backend = postgresql\narchive.x.server = db\n"
			      "archive.y.server = db2:6543\narchive.y.backend = postgresql\n"
			      "archive.y.topics = \"a/#, b\"\narchive.y.spill_max_bytes = 2MB\n"
			      "archive.y.ack = stored\narchive.y.connect_timeout = 1m\n",
			      &s, err, sizeof(err)), HQ_OK);
	assert_int_equal(archive_count(s), 2);
	assert_int_equal(s->v[0].c.port, 5432);
	assert_int_equal(s->v[0].c.n_filters, 1);
	assert_string_equal(s->v[0].c.filters[0], "#");
	assert_int_equal(s->v[1].c.port, 6543);
	assert_int_equal(s->v[1].c.n_filters, 2);
	assert_string_equal(s->v[1].c.filters[1], "b");
	assert_int_equal(s->v[1].c.spill_max_bytes, 2 * 1024 * 1024);
	assert_int_equal(s->v[1].c.connect_timeout_s, 60);
	assert_int_equal(archive_ack_mask(s), 2);
	assert_int_equal(archive_match(s, "a/1", 3), 3);
	assert_int_equal(archive_match(s, "c", 1), 1);
	assert_int_equal(archive_match(s, "$SYS/x", 6), 0);
	archive_free(s);

	assert_int_equal(load("archive.x.backend = postgresql\n", &s, err, sizeof(err)), HQ_EINVAL);
	assert_string_equal(err, "t.conf:1: archive.x.server: required (host[:port])");
	assert_int_equal(load("archive.x.backend = postgresql\narchive.x.server = h\n"
			      "archive.x.retry_min_ms = 500\narchive.x.retry_max_ms = 100\n",
			      &s, err, sizeof(err)), HQ_EINVAL);
	assert_string_equal(err, "t.conf:1: archive.x.retry_max_ms: must be at least retry_min_ms (500)");
	assert_int_equal(load("archive.x.table = a;drop\n", &s, err, sizeof(err)), HQ_EINVAL);
	assert_true(strstr(err, "t.conf:1: archive.x.table: expected an SQL table name") == err);
}

/* etc/hamqtt.conf names every archive leaf (commented out: none by default) */
static void test_documented(void **state)
{
	(void)state;
	static const char *const leaves[] = { "backend", "server", "database", "username", "password",
		"tls", "tls_cafile", "topics", "table", "insert", "ack", "batch_size",
		"batch_interval_ms", "pool_size", "buffer_messages", "spill_max_bytes",
		"retry_min_ms", "retry_max_ms", "connect_timeout", NULL };
	FILE *f = fopen("etc/hamqtt.conf", "r");
	assert_non_null(f);
	static char text[1 << 20];
	size_t n = fread(text, 1, sizeof(text) - 1, f);
	text[n] = '\0';
	fclose(f);
	for (int i = 0; leaves[i]; i++) {
		char key[128];
		snprintf(key, sizeof(key), "\n#archive.main.%s = ", leaves[i]);
		if (!strstr(text, key))
			print_error("etc/hamqtt.conf does not document archive.<name>.%s\n", leaves[i]);
		assert_non_null(strstr(text, key));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_conf),
		cmocka_unit_test(test_documented),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
