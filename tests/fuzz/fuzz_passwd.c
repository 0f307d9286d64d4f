/*
 * fuzz_passwd.c - libFuzzer harness for the password file (src/auth/auth_passwd.c:
 * passwd_db_parse on a length, Mosquitto's "user:$7$iter$salt$hash" and
 * "user:$6$salt$hash" lines) and for one hash field alone (passwd_hash_parse),
 * the code that reads auth.password_file at start and on SIGHUP. Built and
 * run by `make fuzz`.
 *
 * The first byte picks the mode: even, a whole file; odd, one hash field.
 * Besides "no crash, no leak, no overread" (ASan): a refused file has a
 * "name:line: why" error, an accepted one answers passwd_db_check with one of
 * its three results, and an accepted hash has a 7 or 6 type, a non-zero
 * iteration count exactly for $7$ and a salt that fits; and passwd_hash_make's
 * output for the input as a password parses and verifies. Passwords are only
 * checked when the iteration counts are small (a $7$ line may ask for 4e9
 * PBKDF2 rounds: that is slow on purpose, not a bug).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_passwd.h"
#include "core/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s (line %d)\n", #c, __LINE__); abort(); } } while (0)

#define CHEAP_ITER 64 /* PBKDF2 rounds a check may cost per input */

static void check_pw(const struct passwd_db *db, const char *user)
{
	enum passwd_result r = passwd_db_check(db, user, (const uint8_t *)"secret", 6);
	CHECK(r == PASSWD_OK || r == PASSWD_WRONG || r == PASSWD_UNKNOWN_USER);
}

static void fuzz_file(const uint8_t *data, size_t size)
{
	char err[256];
	err[0] = '\0';
	/* an exact-size copy, not NUL terminated: the parser takes a length */
	char *copy = malloc(size ? size : 1);
	memcpy(copy, data, size);
	struct passwd_db *db = passwd_db_parse("fuzz.pw", copy, size, err, sizeof(err));
	if (!db) {
		CHECK(!strncmp(err, "fuzz.pw:", 8));
		free(copy);
		return;
	}
	if (passwd_db_count(db) && passwd_db_max_iter(db) <= CHEAP_ITER) {
		/* the first line's user, whatever bytes it holds */
		const char *colon = memchr(copy, ':', size);
		size_t ulen = colon ? (size_t)(colon - copy) : 0;
		char user[128];
		if (ulen < sizeof(user)) {
			memcpy(user, copy, ulen);
			user[ulen] = '\0';
			check_pw(db, user);
		}
		check_pw(db, "alice");
	}
	passwd_db_free(db);
	free(copy);
}

static void fuzz_hash(const uint8_t *data, size_t size)
{
	struct passwd_hash h;
	const char *why = NULL;
	char *copy = malloc(size ? size : 1);
	memcpy(copy, data, size);
	if (passwd_hash_parse(copy, size, &h, &why) != 0) {
		CHECK(why != NULL);
		free(copy);
		return;
	}
	CHECK(h.type == 6 || h.type == 7);
	CHECK((h.type == 7) == (h.iter > 0));
	CHECK(h.salt_len > 0 && h.salt_len <= sizeof(h.salt));
	if (h.iter <= CHEAP_ITER)
		(void)passwd_hash_verify(&h, data, size);
	free(copy);
}

/* What hamqtt-passwd writes for any password reads back and verifies. */
static void fuzz_make(const uint8_t *pw, size_t n)
{
	char line[256];
	struct passwd_hash h;
	const char *why = NULL;
	CHECK(passwd_hash_make(pw, n, 2, line, sizeof(line)) == 0);
	CHECK(passwd_hash_parse(line, strlen(line), &h, &why) == 0);
	CHECK(h.type == 7 && h.iter == 2 && h.salt_len == PASSWD_SALT_LEN);
	CHECK(passwd_hash_verify(&h, pw, n) == 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 65536)
		return 0;
	log_set_level(LOG_NONE);
	if (data[0] & 1) {
		fuzz_hash(data + 1, size - 1);
		fuzz_make(data + 1, size - 1);
	}
	else
		fuzz_file(data + 1, size - 1);
	return 0;
}
