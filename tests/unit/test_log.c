/*
 * test_log.c - unit tests of the logger (core/log.c): level names, filtering,
 * the text and JSON line formats, JSON/text escaping, truncation, and whole
 * lines under concurrent writers. Logs to a temporary file and reads it back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"

static char path[64];

static int setup(void **state)
{
	snprintf(path, sizeof(path), "/tmp/test_log_XXXXXX");
	int fd = mkstemp(path);
	if (fd < 0)
		return -1;
	close(fd);
	log_set_node(NULL);
	return 0;
}

static int teardown(void **state)
{
	log_close();
	log_set_node(NULL);
	log_set_level(LOG_INFO);
	unlink(path);
	return 0;
}

/* Contents of the log file (caller frees). */
static char *slurp(void)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	size_t cap = 1 << 16, n = 0;
	char *s = malloc(cap + 1);
	size_t r;
	while ((r = fread(s + n, 1, cap - n, f)) > 0) {
		n += r;
		if (n == cap) {
			cap *= 2;
			s = realloc(s, cap + 1);
		}
	}
	s[n] = '\0';
	fclose(f);
	return s;
}

static size_t count_lines(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* Check that line (up to '\n') starts with a timestamp "YYYY-MM-DDTHH:MM:SS.mmmZ". */
static void assert_timestamp(const char *s)
{
	const char *pat = "dddd-dd-ddTdd:dd:dd.dddZ";
	for (size_t i = 0; pat[i]; i++) {
		if (pat[i] == 'd')
			assert_true(s[i] >= '0' && s[i] <= '9');
		else
			assert_int_equal(s[i], pat[i]);
	}
}

static void test_level_names(void **state)
{
	static const char *const names[] = { "debug", "info", "notice", "warning", "error", "none" };
	for (int i = LOG_DEBUG; i <= LOG_NONE; i++) {
		enum log_level l = LOG_ERROR;
		assert_string_equal(log_level_name((enum log_level)i), names[i]);
		assert_int_equal(log_level_parse(names[i], &l), HQ_OK);
		assert_int_equal(l, i);
	}
	enum log_level l = LOG_INFO;
	assert_int_equal(log_level_parse("WARNING", &l), HQ_OK);
	assert_int_equal(l, LOG_WARNING);
	assert_int_equal(log_level_parse("verbose", &l), HQ_EINVAL);
	assert_int_equal(log_level_parse("", &l), HQ_EINVAL);
	assert_int_equal(log_level_parse(NULL, &l), HQ_EINVAL);
	assert_int_equal(l, LOG_WARNING);
	assert_string_equal(log_level_name((enum log_level)42), "?");
}

static void test_text_format(void **state)
{
	assert_int_equal(log_open(LOG_INFO, LOG_FMT_TEXT, path), HQ_OK);
	log_set_node("hamqtt@127.0.0.1");
	log_info("listener=%s port=%d started", "default", 1883);
	log_set_node(NULL);
	log_error("no node");
	log_close();
	char *s = slurp();
	assert_int_equal(count_lines(s), 2);
	char *l2 = strchr(s, '\n') + 1;
	assert_timestamp(s);
	assert_timestamp(l2);
	const char *want1 = " [info] node=hamqtt@127.0.0.1 listener=default port=1883 started\n";
	assert_int_equal(l2 - s, 24 + strlen(want1));
	assert_memory_equal(s + 24, want1, strlen(want1));
	assert_string_equal(l2 + 24, " [error] no node\n");
	free(s);
}

static void test_text_format_lines(void **state)
{
	assert_int_equal(log_open(LOG_DEBUG, LOG_FMT_TEXT, path), HQ_OK);
	log_set_node("n@h");
	log_notice("one");
	log_set_node(NULL);
	log_warning("two");
	/* control bytes cannot start a forged line */
	log_info("client=%s", "evil\n2026-01-01T00:00:00.000Z [error] x\x01\t");
	log_close();
	char *s = slurp();
	assert_int_equal(count_lines(s), 3);
	char *l1 = s, *l2 = strchr(l1, '\n') + 1, *l3 = strchr(l2, '\n') + 1;
	assert_timestamp(l1);
	assert_timestamp(l2);
	assert_timestamp(l3);
	assert_memory_equal(l1 + 24, " [notice] node=n@h one\n", 23);
	assert_memory_equal(l2 + 24, " [warning] two\n", 15);
	assert_string_equal(l3 + 24,
			    " [info] client=evil\\n2026-01-01T00:00:00.000Z [error] x\\x01\\t\n");
	free(s);
}

static void test_json_format(void **state)
{
	assert_int_equal(log_open(LOG_INFO, LOG_FMT_JSON, path), HQ_OK);
	log_set_node("a\"b@h");
	log_info("quote=\" backslash=\\ nl=\n cr=\r tab=\t ctl=\x01\x1f del=\x7f");
	log_set_node(NULL);
	log_warning("utf8=\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 bad=\xff\xc3 over=\xc0\xaf sur=\xed\xa0\x80 end");
	log_close();
	char *s = slurp();
	assert_int_equal(count_lines(s), 2);
	char *l2 = strchr(s, '\n') + 1;

	assert_memory_equal(s, "{\"time\":\"", 9);
	assert_timestamp(s + 9);
	/* first line */
	const char *want1 = "\",\"level\":\"info\",\"node\":\"a\\\"b@h\",\"msg\":\"quote=\\\" backslash=\\\\ "
			    "nl=\\n cr=\\r tab=\\t ctl=\\u0001\\u001f del=\\u007f\"}\n";
	assert_memory_equal(s + 33, want1, strlen(want1));
	assert_ptr_equal(s + 33 + strlen(want1), l2);
	/* second line: valid UTF-8 kept, invalid bytes replaced, no node field */
	assert_memory_equal(l2, "{\"time\":\"", 9);
	assert_timestamp(l2 + 9);
	assert_string_equal(l2 + 33,
			    "\",\"level\":\"warning\",\"msg\":\"utf8=\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 "
			    "bad=\\ufffd\\ufffd over=\\ufffd\\ufffd sur=\\ufffd\\ufffd\\ufffd end\"}\n");
	free(s);
}

/* Every control byte and both JSON specials, in a client id (the kind of
 * text a peer chooses): each is escaped, so the line stays one JSON object. */
static void test_json_every_control(void **state)
{
	assert_int_equal(log_open(LOG_INFO, LOG_FMT_JSON, path), HQ_OK);
	char id[64];
	size_t n = 0;
	for (int ch = 1; ch < 0x20; ch++)
		id[n++] = (char)ch;
	id[n++] = '"';
	id[n++] = '\\';
	id[n++] = 0x7f;
	id[n] = '\0';
	log_notice("connection refused client_id=%s", id);
	log_close();
	char *s = slurp();
	assert_int_equal(count_lines(s), 1);
	const char *msg = strstr(s, "\"msg\":\"");
	assert_non_null(msg);
	msg += 7;
	/* no raw control byte anywhere before the final newline */
	for (const char *p = s; *p != '\n'; p++)
		assert_true((unsigned char)*p >= 0x20 && *p != 0x7f);
	const char *want = "connection refused client_id=\\u0001\\u0002\\u0003\\u0004\\u0005"
			   "\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011"
			   "\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a"
			   "\\u001b\\u001c\\u001d\\u001e\\u001f\\\"\\\\\\u007f\"}\n";
	assert_string_equal(msg, want);
	free(s);
}

/* log_reopen after a logrotate-style rename: new lines go to a new file of
 * the same name, the old one keeps what it had. */
static void test_reopen(void **state)
{
	char old[80];
	snprintf(old, sizeof(old), "%s.1", path);
	assert_int_equal(log_open(LOG_INFO, LOG_FMT_TEXT, path), HQ_OK);
	log_info("before");
	assert_int_equal(rename(path, old), 0);
	assert_int_equal(log_reopen(), HQ_OK);
	log_info("after");
	log_close();
	char *s = slurp();
	assert_int_equal(count_lines(s), 1);
	assert_non_null(strstr(s, "after"));
	free(s);
	FILE *f = fopen(old, "r");
	assert_non_null(f);
	char line[256];
	assert_non_null(fgets(line, sizeof(line), f));
	assert_non_null(strstr(line, "before"));
	fclose(f);
	unlink(old);
	assert_int_equal(log_reopen(), HQ_OK); /* stderr: nothing to do */
}

/* The flood guard: LOG_RL_LINES per window, then refused; the first line of
 * the next window learns how many were dropped. */
static void test_rate_limit(void **state)
{
	struct log_rl rl = { 0 };
	uint64_t skipped = 99;
	int64_t t0 = 1000000;
	for (int i = 0; i < LOG_RL_LINES; i++) {
		assert_true(log_rl_take(&rl, t0 + i, &skipped));
		assert_int_equal(skipped, 0);
	}
	for (int i = 0; i < 7; i++)
		assert_false(log_rl_take(&rl, t0 + 100, &skipped));
	assert_true(log_rl_take(&rl, t0 + LOG_RL_WINDOW_MS + 1, &skipped));
	assert_int_equal(skipped, 7);
	assert_true(log_rl_take(&rl, t0 + LOG_RL_WINDOW_MS + 2, &skipped));
	assert_int_equal(skipped, 0);
}

static void test_level_filter(void **state)
{
	assert_int_equal(log_open(LOG_WARNING, LOG_FMT_TEXT, path), HQ_OK);
	assert_int_equal(log_get_level(), LOG_WARNING);
	log_debug("d1");
	log_info("i1");
	log_notice("n1");
	log_warning("w1");
	log_error("e1");
	log_set_level(LOG_DEBUG);
	assert_true(log_enabled(LOG_DEBUG));
	log_debug("d2");
	log_set_level(LOG_NONE);
	assert_false(log_enabled(LOG_ERROR));
	log_error("e2");
	log_set_level(LOG_ERROR);
	log_printf(LOG_NONE, "never");   /* "none" is not a message level */
	log_warning("w3");
	log_error("e3");
	log_close();
	char *s = slurp();
	assert_int_equal(count_lines(s), 4);
	assert_non_null(strstr(s, "[warning] w1\n"));
	assert_non_null(strstr(s, "[error] e1\n"));
	assert_non_null(strstr(s, "[debug] d2\n"));
	assert_non_null(strstr(s, "[error] e3\n"));
	assert_null(strstr(s, "d1"));
	assert_null(strstr(s, "i1"));
	assert_null(strstr(s, "n1"));
	assert_null(strstr(s, "e2"));
	assert_null(strstr(s, "never"));
	assert_null(strstr(s, "w3"));
	free(s);
}

static int side_effects;

static const char *counted(void)
{
	side_effects++;
	return "x";
}

static void test_debug_args_not_evaluated(void **state)
{
	assert_int_equal(log_open(LOG_INFO, LOG_FMT_TEXT, path), HQ_OK);
	side_effects = 0;
	log_debug("%s", counted());
	assert_int_equal(side_effects, 0);
	log_set_level(LOG_DEBUG);
	log_debug("%s", counted());
	assert_int_equal(side_effects, 1);
}

static void test_append_and_errno(void **state)
{
	assert_int_equal(log_open(LOG_INFO, LOG_FMT_TEXT, path), HQ_OK);
	log_info("first");
	/* reopening appends, and replaces the previous file */
	assert_int_equal(log_open(LOG_INFO, LOG_FMT_TEXT, path), HQ_OK);
	errno = ENOENT;
	log_info("second");
	assert_int_equal(errno, ENOENT);
	log_close();
	char *s = slurp();
	assert_int_equal(count_lines(s), 2);
	assert_true(strstr(s, "first") < strstr(s, "second"));
	free(s);

	assert_int_equal(log_open(LOG_INFO, LOG_FMT_TEXT, "/nonexistent-dir/x.log"), HQ_EIO);
	assert_int_equal(errno, ENOENT);
	/* stderr aliases */
	assert_int_equal(log_open(LOG_INFO, LOG_FMT_TEXT, NULL), HQ_OK);
	assert_int_equal(log_open(LOG_INFO, LOG_FMT_TEXT, ""), HQ_OK);
	assert_int_equal(log_open(LOG_INFO, LOG_FMT_TEXT, "stderr"), HQ_OK);
}

static void test_truncation(void **state)
{
	static char msg[20001];
	size_t big = sizeof(msg) - 1;
	memset(msg, 'a', big);
	msg[big] = '\0';
	for (int fmt = LOG_FMT_TEXT; fmt <= LOG_FMT_JSON; fmt++) {
		assert_int_equal(log_open(LOG_INFO, (enum log_format)fmt, path), HQ_OK);
		log_info("%s", msg);
		/* a message of escapes that would grow past the buffer */
		memset(msg, '\n', big);
		log_info("%s", msg);
		memset(msg, 'a', big);
		log_close();
		char *s = slurp();
		assert_int_equal(count_lines(s), 2);
		char *l2 = strchr(s, '\n') + 1;
		const char *end = fmt == LOG_FMT_JSON ? "...\"}\n" : "...\n";
		assert_memory_equal(l2 - strlen(end), end, strlen(end));
		assert_string_equal(s + strlen(s) - strlen(end), end);
		assert_non_null(strstr(l2, "\\n\\n"));
		/* the cut never splits an escape: the line ends "\n..." */
		assert_memory_equal(s + strlen(s) - strlen(end) - 2, "\\n", 2);
		assert_memory_equal(s + strlen(s) - strlen(end) - 4, "\\n", 2);
		assert_true(strlen(s) < 2 * 9000);
		free(s);
		assert_int_equal(truncate(path, 0), 0);
	}
}

#define THREADS 8
#define PER_THREAD 500

static void *writer(void *arg)
{
	int id = (int)(intptr_t)arg;
	char pad[600];
	memset(pad, 'a' + id, sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	for (int i = 0; i < PER_THREAD; i++)
		log_info("t=%d i=%d %s end", id, i, pad);
	return NULL;
}

static void *level_flipper(void *arg)
{
	for (int i = 0; i < 2000; i++)
		log_set_level(i % 2 ? LOG_INFO : LOG_DEBUG);
	return NULL;
}

static void test_threads(void **state)
{
	assert_int_equal(log_open(LOG_INFO, LOG_FMT_JSON, path), HQ_OK);
	pthread_t t[THREADS + 1];
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, writer, (void *)(intptr_t)i), 0);
	assert_int_equal(pthread_create(&t[THREADS], NULL, level_flipper, NULL), 0);
	for (int i = 0; i <= THREADS; i++)
		pthread_join(t[i], NULL);
	log_close();
	char *s = slurp();
	assert_int_equal(count_lines(s), THREADS * PER_THREAD);
	/* every line whole: starts with {"time" and ends with end"} */
	for (char *line = s; *line;) {
		char *nl = strchr(line, '\n');
		assert_non_null(nl);
		assert_memory_equal(line, "{\"time\":\"", 9);
		assert_memory_equal(nl - 6, " end\"}", 6);
		line = nl + 1;
	}
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_level_names),
		cmocka_unit_test_setup_teardown(test_text_format, setup, teardown),
		cmocka_unit_test_setup_teardown(test_text_format_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_json_format, setup, teardown),
		cmocka_unit_test_setup_teardown(test_json_every_control, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
		cmocka_unit_test(test_rate_limit),
		cmocka_unit_test_setup_teardown(test_level_filter, setup, teardown),
		cmocka_unit_test_setup_teardown(test_debug_args_not_evaluated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_append_and_errno, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
	};
	return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
