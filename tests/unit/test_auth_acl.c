/*
 * test_auth_acl.c - unit tests for src/auth/auth_acl.c (Mosquitto ACL files)
 * and the per-client context of auth_chain.c (no_match, decision cache).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auth/auth.h"
#include "auth/auth_acl.h"
#include "core/conf.h"

static char err[256];

static struct acl_rules *parse(const char *text)
{
	err[0] = 0;
	struct acl_rules *r = acl_parse("acl", text, strlen(text), err, sizeof(err));
	if (!r)
		fail_msg("parse: %s", err);
	return r;
}

static void test_covers(void **state)
{
	(void)state;
	assert_true(acl_covers("a/b", "a/b"));
	assert_false(acl_covers("a/b", "a/c"));
	assert_false(acl_covers("a/b", "a/b/c"));
	assert_false(acl_covers("a/b/c", "a/b"));
	assert_true(acl_covers("a/+", "a/b"));
	assert_true(acl_covers("a/+", "a/+"));
	assert_false(acl_covers("a/+", "a/#"));
	assert_false(acl_covers("a/+", "a/b/c"));
	assert_true(acl_covers("a/#", "a"));
	assert_true(acl_covers("a/#", "a/b/c"));
	assert_true(acl_covers("a/#", "a/#"));
	assert_true(acl_covers("a/#", "a/+/c"));
	assert_false(acl_covers("a/b", "a/+"));
	assert_false(acl_covers("a/b", "a/#"));
	assert_true(acl_covers("#", "x/y"));
	assert_true(acl_covers("#", "#"));
	assert_true(acl_covers("+/+", "a/"));
	assert_true(acl_covers("a//b", "a//b"));
	/* [MQTT-4.7.2-1] a leading wildcard never matches a $ topic */
	assert_false(acl_covers("#", "$SYS/x"));
	assert_false(acl_covers("+/x", "$SYS/x"));
	assert_true(acl_covers("$SYS/#", "$SYS/brokers/n/uptime"));
	assert_true(acl_covers("$SYS/#", "$SYS/#"));
}

static void test_overlaps(void **state)
{
	(void)state;
	assert_true(acl_overlaps("a/#", "#"));
	assert_true(acl_overlaps("a/b", "+/b"));
	assert_true(acl_overlaps("a/+/c", "a/b/+"));
	assert_false(acl_overlaps("a/b", "c/#"));
	assert_false(acl_overlaps("a/b/c", "a/+"));
	assert_true(acl_overlaps("a/#", "a"));
	assert_true(acl_overlaps("a", "a/#"));
	assert_false(acl_overlaps("$SYS/#", "#"));
	assert_false(acl_overlaps("#", "$SYS/#"));
}

#define R ACL_READ
#define W ACL_WRITE
#define CHECK(r, user, cid, acc, what, filt) acl_check(r, user, cid, acc, what, filt)

static const char *file =
	"# anonymous\n"
	"topic read public/#\n"
	"topic $SYS/brokers/+/uptime\n"
	"\n"
	"user alice\n"
	"topic readwrite a/#\n"
	"topic deny a/secret\n"
	"topic write  in/alice \n"
	"user bob smith\n"
	"topic read b/#\n"
	"pattern write dev/%u/out\n"
	"pattern read dev/%c/in\n"
	"pattern deny dev/%u/locked\n";

static void test_sections(void **state)
{
	(void)state;
	struct acl_rules *r = parse(file);
	/* anonymous: the rules before any user line */
	assert_int_equal(CHECK(r, NULL, "c", R, "public/x", false), ACL_ALLOW);
	assert_int_equal(CHECK(r, NULL, "c", W, "public/x", false), ACL_NO_MATCH);
	assert_int_equal(CHECK(r, NULL, "c", R, "a/x", false), ACL_NO_MATCH);
	assert_int_equal(CHECK(r, NULL, "c", W, "$SYS/brokers/n/uptime", false), ACL_ALLOW);
	/* alice: her section, not the anonymous one */
	assert_int_equal(CHECK(r, "alice", "c", R, "public/x", false), ACL_NO_MATCH);
	assert_int_equal(CHECK(r, "alice", "c", W, "a/x/y", false), ACL_ALLOW);
	assert_int_equal(CHECK(r, "alice", "c", R, "a/secret", false), ACL_DENY);
	assert_int_equal(CHECK(r, "alice", "c", W, "a/secret", false), ACL_DENY);
	assert_int_equal(CHECK(r, "alice", "c", W, "in/alice", false), ACL_ALLOW);
	assert_int_equal(CHECK(r, "alice", "c", R, "in/alice", false), ACL_NO_MATCH);
	/* a user name with a space; an unknown user has no section */
	assert_int_equal(CHECK(r, "bob smith", "c", R, "b/1", false), ACL_ALLOW);
	assert_int_equal(CHECK(r, "bob", "c", R, "b/1", false), ACL_NO_MATCH);
	/* patterns: every client, substituted */
	assert_int_equal(CHECK(r, "alice", "c", W, "dev/alice/out", false), ACL_ALLOW);
	assert_int_equal(CHECK(r, "bob smith", "c", W, "dev/bob smith/out", false), ACL_ALLOW);
	assert_int_equal(CHECK(r, "alice", "c", W, "dev/bob/out", false), ACL_NO_MATCH);
	assert_int_equal(CHECK(r, "alice", "c7", R, "dev/c7/in", false), ACL_ALLOW);
	assert_int_equal(CHECK(r, NULL, "c7", R, "dev/c7/in", false), ACL_ALLOW);
	assert_int_equal(CHECK(r, NULL, "c7", W, "dev//out", false), ACL_NO_MATCH); /* no user */
	assert_int_equal(CHECK(r, "alice", "c", R, "dev/alice/locked", false), ACL_DENY);
	/* a substituted value may not leave its level */
	assert_int_equal(CHECK(r, "x/y", "c", W, "dev/x/y/out", false), ACL_NO_MATCH);
	assert_int_equal(CHECK(r, "+", "c", W, "dev/z/out", false), ACL_NO_MATCH);
	assert_int_equal(CHECK(r, "alice", "#", R, "dev/q/in", false), ACL_NO_MATCH);
	acl_unref(r);
}

static void test_subscribe_filters(void **state)
{
	(void)state;
	struct acl_rules *r = parse(file);
	assert_int_equal(CHECK(r, "alice", "c", R, "a/#", true), ACL_ALLOW);
	assert_int_equal(CHECK(r, "alice", "c", R, "a/+/z", true), ACL_ALLOW);
	/* # reaches a/...: granted, messages checked one by one */
	assert_int_equal(CHECK(r, "alice", "c", R, "#", true), ACL_ALLOW);
	assert_int_equal(CHECK(r, "alice", "c", R, "x/#", true), ACL_NO_MATCH);
	assert_int_equal(CHECK(r, "alice", "c", R, "a/secret", true), ACL_DENY);
	assert_int_equal(CHECK(r, "alice", "c", R, "in/alice", true), ACL_NO_MATCH); /* write only */
	/* $SYS: only where a rule names it */
	assert_int_equal(CHECK(r, "alice", "c", R, "$SYS/#", true), ACL_NO_MATCH);
	assert_int_equal(CHECK(r, NULL, "c", R, "$SYS/brokers/+/uptime", true), ACL_ALLOW);
	assert_int_equal(CHECK(r, NULL, "c", R, "$SYS/#", true), ACL_ALLOW); /* part of it */
	assert_int_equal(CHECK(r, NULL, "c", R, "$SYS/brokers/n/clients", false), ACL_NO_MATCH);
	acl_unref(r);
}

static void bad(const char *text, const char *want)
{
	err[0] = 0;
	struct acl_rules *r = acl_parse("acl", text, strlen(text), err, sizeof(err));
	assert_null(r);
	if (strcmp(err, want))
		fail_msg("error '%s', want '%s'", err, want);
}

static void test_bad_lines(void **state)
{
	(void)state;
	bad("topic read a\nfoo bar\n", "acl:2: expected topic, pattern or user");
	bad("user\n", "acl:1: user: expected a user name");
	bad("topic\n", "acl:1: expected a topic filter");
	bad("topic read a/#/b\n", "acl:1: invalid topic filter");
	bad("\n\npattern write a+/b\n", "acl:3: invalid topic filter");
	/* Mosquitto reads "topic read" as the topic "read" */
	struct acl_rules *r = parse("topic read\n  # indented comment\n");
	assert_int_equal(CHECK(r, NULL, "c", W, "read", false), ACL_ALLOW);
	acl_unref(r);
}

/* The per-client context: no_match, and the cache answers repeats. */
static void test_client_cache(void **state)
{
	(void)state;
	char path[] = "/tmp/test_auth_acl_XXXXXX";
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");
	fputs(file, f);
	fclose(f);
	struct hq_config cfg;
	conf_defaults(&cfg);
	free(cfg.auth_acl_file);
	cfg.auth_acl_file = strdup(path);
	struct auth *a = auth_new(&cfg, err, sizeof(err));
	assert_non_null(a);
	struct auth_client *ac = auth_client_new(a, "alice", "c1", NULL);
	assert_non_null(ac);
	assert_true(auth_client_allow(ac, R, "a/x", 3, false));
	assert_false(auth_client_allow(ac, R, "a/secretXX", 8, false)); /* len counts */
	assert_int_equal(auth_client_cache_hits(ac), 0);
	assert_true(auth_client_allow(ac, R, "a/x", 3, false));
	assert_false(auth_client_allow(ac, W, "a/secret", 8, false));
	assert_false(auth_client_allow(ac, R, "zzz", 3, false)); /* no match: deny */
	assert_false(auth_client_allow(ac, R, "zzz", 3, false));
	assert_int_equal(auth_client_cache_hits(ac), 2); /* a/x once, zzz once */
	/* more topics than the cache holds: still right */
	char t[32];
	for (int i = 0; i < 3000; i++) {
		int n = snprintf(t, sizeof(t), "a/%d", i);
		assert_true(auth_client_allow(ac, W, t, (size_t)n, false));
	}
	/* a reload leaves existing contexts their rules */
	f = fopen(path, "w");
	fputs("user alice\ntopic deny a/#\n", f);
	fclose(f);
	assert_int_equal(auth_reload(a, err, sizeof(err)), 0);
	assert_true(auth_client_allow(ac, R, "a/q", 3, false));
	struct auth_client *ac2 = auth_client_new(a, "alice", "c1", NULL);
	assert_false(auth_client_allow(ac2, R, "a/q", 3, false));
	auth_client_free(ac2);
	/* a bad file on reload: refused, old rules stay */
	f = fopen(path, "w");
	fputs("bogus\n", f);
	fclose(f);
	assert_int_not_equal(auth_reload(a, err, sizeof(err)), 0);
	assert_non_null(strstr(err, ":1: expected topic, pattern or user"));
	ac2 = auth_client_new(a, "alice", "c1", NULL);
	assert_false(auth_client_allow(ac2, R, "a/q", 3, false));
	auth_client_free(ac2);
	auth_client_free(ac);
	auth_free(a);
	/* no_match = allow */
	f = fopen(path, "w");
	fputs("topic deny x\n", f);
	fclose(f);
	cfg.auth_acl_no_match = CONF_ACL_ALLOW;
	a = auth_new(&cfg, err, sizeof(err));
	ac = auth_client_new(a, NULL, "c", NULL);
	assert_true(auth_client_allow(ac, W, "y", 1, false));
	assert_false(auth_client_allow(ac, W, "x", 1, false));
	auth_client_free(ac);
	auth_free(a);
	remove(path);
	/* no ACL file: no context at all */
	free(cfg.auth_acl_file);
	cfg.auth_acl_file = strdup("");
	a = auth_new(&cfg, err, sizeof(err));
	assert_null(auth_client_new(a, "alice", "c", NULL));
	auth_free(a);
	conf_free(&cfg);
}

/* The chain's answers. */
static void test_chain(void **state)
{
	(void)state;
	char path[] = "/tmp/test_auth_chain_XXXXXX";
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");
	fputs("alice:$7$101$R11+BqtlehKNapki$KpxC09gdb30tplOyKLo2Mg1LiTwd/B5CI6XGtbulRkTmfJE5/"
	      "GCpqUVJyLQex5QB6YxTyH7g5FJL92N6iB2shw==\n", f);
	fclose(f);
	struct hq_config cfg;
	conf_defaults(&cfg);
	const char *why;
	/* defaults: nothing to ask */
	struct auth *a = auth_new(&cfg, err, sizeof(err));
	assert_false(auth_connect_needed(a));
	struct auth_req anon = { .client_id = "c" };
	assert_int_equal(auth_connect(a, &anon, &why), AUTH_ALLOW);
	auth_free(a);
	free(cfg.auth_password_file);
	cfg.auth_password_file = strdup(path);
	a = auth_new(&cfg, err, sizeof(err));
	assert_true(auth_connect_needed(a));
	struct auth_req ok = { .client_id = "c", .username = "alice", .password = (const uint8_t *)"secret",
			       .password_len = 6, .has_password = true };
	assert_int_equal(auth_connect(a, &ok, &why), AUTH_ALLOW);
	struct auth_req wrong = ok;
	wrong.password_len = 5;
	assert_int_equal(auth_connect(a, &wrong, &why), AUTH_BAD_CREDENTIALS);
	struct auth_req nopw = { .client_id = "c", .username = "alice" };
	assert_int_equal(auth_connect(a, &nopw, &why), AUTH_BAD_CREDENTIALS);
	struct auth_req unknown = ok;
	unknown.username = "mallory";
	assert_int_equal(auth_connect(a, &unknown, &why), AUTH_BAD_CREDENTIALS);
	assert_int_equal(auth_connect(a, &anon, &why), AUTH_ALLOW); /* allow_anonymous */
	auth_free(a);
	cfg.auth_allow_anonymous = false;
	a = auth_new(&cfg, err, sizeof(err));
	assert_int_equal(auth_connect(a, &anon, &why), AUTH_NOT_AUTHORIZED);
	assert_int_equal(auth_connect(a, &ok, &why), AUTH_ALLOW);
	auth_free(a);
	/* a bad file fails the start with file:line */
	f = fopen(path, "w");
	fputs("# x\nalice\n", f);
	fclose(f);
	assert_null(auth_new(&cfg, err, sizeof(err)));
	char want[128];
	snprintf(want, sizeof(want), "%s:2: expected user:hash", path);
	assert_string_equal(err, want);
	remove(path);
	conf_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_covers),
		cmocka_unit_test(test_overlaps),
		cmocka_unit_test(test_sections),
		cmocka_unit_test(test_subscribe_filters),
		cmocka_unit_test(test_bad_lines),
		cmocka_unit_test(test_client_cache),
		cmocka_unit_test(test_chain),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
