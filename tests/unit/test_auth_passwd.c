/*
 * test_auth_passwd.c - unit tests for src/auth/auth_passwd.c: Mosquitto
 * password files. The $7$ line is what the installed mosquitto_passwd 2.0.11
 * wrote for alice/secret; the $6$ line was computed independently (Python
 * hashlib: base64(SHA512(password + salt))).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auth/auth_passwd.h"

#define ALICE "alice:$7$101$R11+BqtlehKNapki$KpxC09gdb30tplOyKLo2Mg1LiTwd/B5CI6XGtbulRkTmfJE5/GCpqUVJyLQex5QB6YxTyH7g5FJL92N6iB2shw=="
#define CAROL "carol:$6$MDEyMzQ1Njc4OWFi$/0cXV9cHg1WeH0nrXuhQCh8Ek9Xb/jew2yg9JsXj3nqJ7QcgN3RRfVTssLEud3WJFpzbs52g7wk1aUQiFt5cnA=="
#define PW(s) (const uint8_t *)(s), strlen(s)

static char err[256];

static struct passwd_db *parse(const char *text)
{
	err[0] = 0;
	return passwd_db_parse("pw", text, strlen(text), err, sizeof(err));
}

static void test_mosquitto_7(void **state)
{
	(void)state;
	struct passwd_db *db = parse(ALICE "\n");
	assert_non_null(db);
	assert_int_equal(passwd_db_count(db), 1);
	assert_int_equal(passwd_db_max_iter(db), 101);
	assert_int_equal(passwd_db_check(db, "alice", PW("secret")), PASSWD_OK);
	assert_int_equal(passwd_db_check(db, "alice", PW("secreT")), PASSWD_WRONG);
	assert_int_equal(passwd_db_check(db, "alice", PW("")), PASSWD_WRONG);
	assert_int_equal(passwd_db_check(db, "alice", PW("secret\n")), PASSWD_WRONG);
	assert_int_equal(passwd_db_check(db, "bob", PW("secret")), PASSWD_UNKNOWN_USER);
	assert_int_equal(passwd_db_check(db, "Alice", PW("secret")), PASSWD_UNKNOWN_USER);
	passwd_db_free(db);
}

static void test_sha512_6(void **state)
{
	(void)state;
	struct passwd_db *db = parse("# users\n\n" CAROL "\r\n" ALICE);
	assert_non_null(db);
	assert_int_equal(passwd_db_count(db), 2);
	assert_int_equal(passwd_db_check(db, "carol", PW("pass6")), PASSWD_OK);
	assert_int_equal(passwd_db_check(db, "carol", PW("pass7")), PASSWD_WRONG);
	assert_int_equal(passwd_db_check(db, "alice", PW("secret")), PASSWD_OK);
	passwd_db_free(db);
}

/* a password with any bytes, a user name with spaces: as mosquitto_passwd */
static void test_make_roundtrip(void **state)
{
	(void)state;
	char hash[256], line[400];
	const char pw[] = "p:w d\xc3\xa9$";
	assert_int_equal(passwd_hash_make(PW(pw), 101, hash, sizeof(hash)), 0);
	assert_memory_equal(hash, "$7$101$", 7);
	snprintf(line, sizeof(line), "user one:%s\n", hash);
	struct passwd_db *db = parse(line);
	assert_non_null(db);
	assert_int_equal(passwd_db_check(db, "user one", PW(pw)), PASSWD_OK);
	assert_int_equal(passwd_db_check(db, "user one", PW("p:w d")), PASSWD_WRONG);
	passwd_db_free(db);
	/* two hashes of one password differ (fresh salt) */
	char h2[256];
	assert_int_equal(passwd_hash_make(PW(pw), 101, h2, sizeof(h2)), 0);
	assert_string_not_equal(hash, h2);
	assert_int_equal(passwd_hash_make(PW(pw), 101, h2, 20), -1); /* too small */
}

static void bad(const char *text, const char *want)
{
	struct passwd_db *db = parse(text);
	assert_null(db);
	if (!strstr(err, want))
		fail_msg("error '%s' lacks '%s'", err, want);
}

static void test_bad_lines(void **state)
{
	(void)state;
	bad("alice\n", "pw:1: expected user:hash");
	bad("\n:$7$101$abc$def\n", "pw:2: expected user:hash");
	bad(ALICE "\nbob:secret\n", "pw:2: hash is neither");
	bad("bob:$5$abcd$efgh\n", "pw:1: hash is neither");
	bad("bob:$7$$R11+BqtlehKNapki$KpxC\n", "pw:1: bad iteration count");
	bad("bob:$7$0$R11+BqtlehKNapki$KpxC\n", "pw:1: bad iteration count");
	bad("bob:$7$99999999999$R11+BqtlehKNapki$KpxC\n", "pw:1: bad iteration count");
	bad("bob:$7$101$R11+BqtlehKNapki\n", "pw:1: hash has no '$'");
	bad("bob:$7$101$R1!+BqtlehKNapki$KpxC09gdb30tplOyKLo2Mg1LiTwd/B5CI6XGtbulRkTmfJE5/GCpqUVJyLQex5QB6YxTyH7g5FJL92N6iB2shw==\n",
	    "pw:1: salt is not base64");
	bad("bob:$7$101$R11+BqtlehKNapki$KpxC09gdb30tplOyKLo2Mg1LiTwd\n", "pw:1: hash is not 64 bytes");
	bad("bob:$6$MDEy$\n", "pw:1: hash is not 64 bytes");
	bad(ALICE "\n" ALICE "\n", "pw:2: user listed twice");
}

static void test_load_file(void **state)
{
	(void)state;
	assert_null(passwd_db_load("/nonexistent/pw", err, sizeof(err)));
	assert_string_equal(err, "/nonexistent/pw: cannot open: No such file or directory");
	char path[] = "/tmp/test_auth_passwd_XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	FILE *f = fdopen(fd, "w");
	fputs(ALICE "\n" CAROL "\n", f);
	fclose(f);
	struct passwd_db *db = passwd_db_load(path, err, sizeof(err));
	remove(path);
	assert_non_null(db);
	assert_int_equal(passwd_db_check(db, "carol", PW("pass6")), PASSWD_OK);
	passwd_db_free(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mosquitto_7),
		cmocka_unit_test(test_sha512_6),
		cmocka_unit_test(test_make_roundtrip),
		cmocka_unit_test(test_bad_lines),
		cmocka_unit_test(test_load_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
