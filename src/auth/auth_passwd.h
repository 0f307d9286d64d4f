/*
 * auth_passwd.h - a password file in Mosquitto's format, one user a line:
 *   user:$7$<iterations>$<salt base64>$<hash base64>   PBKDF2-HMAC-SHA512
 *   user:$6$<salt base64>$<hash base64>                SHA512(password + salt)
 * (what mosquitto_passwd writes; $7$ since Mosquitto 2.0). Empty lines and
 * lines starting with '#' are skipped. A table is immutable once loaded, so
 * any thread may check against it; the chain (auth_chain.c) swaps whole
 * tables on reload.
 */
#ifndef HQ_AUTH_AUTH_PASSWD_H
#define HQ_AUTH_AUTH_PASSWD_H

#include <stddef.h>
#include <stdint.h>

#define PASSWD_SALT_LEN 12         /* bytes, as mosquitto_passwd */
#define PASSWD_HASH_LEN 64         /* SHA-512 */
#define PASSWD_DEFAULT_ITER 101    /* mosquitto_passwd's default */
#define PASSWD_INLINE_ITER 10000   /* above this a check is slow enough to warn */

struct passwd_db;

enum passwd_result { PASSWD_UNKNOWN_USER = -1, PASSWD_WRONG = 0, PASSWD_OK = 1 };

/* Parse text (name is used in errors: "name:line: why"); NULL on the first
 * bad line. */
struct passwd_db *passwd_db_parse(const char *name, const char *text, size_t len,
				  char *err, size_t errlen);
/* Read and parse a file. */
struct passwd_db *passwd_db_load(const char *path, char *err, size_t errlen);
void passwd_db_free(struct passwd_db *db);
uint32_t passwd_db_count(const struct passwd_db *db);
/* The largest $7$ iteration count in the table (0 when none). */
uint32_t passwd_db_max_iter(const struct passwd_db *db);

/* Check a password (bytes, not NUL terminated) for user; constant-time
 * compare of the derived hash. */
enum passwd_result passwd_db_check(const struct passwd_db *db, const char *user,
				   const uint8_t *pw, size_t pwlen);

/* A copy of user's entry into *out: 1, or 0 for no such user. */
struct passwd_hash;
int passwd_db_lookup(const struct passwd_db *db, const char *user, struct passwd_hash *out);

/* Parse one hash field ("$7$..." or "$6$..."): 0 or -1 (why set). */
struct passwd_hash {
	int type;                  /* 6 or 7 */
	uint32_t iter;             /* $7$ */
	uint8_t salt[64];
	size_t salt_len;
	uint8_t hash[PASSWD_HASH_LEN];
};
int passwd_hash_parse(const char *s, size_t n, struct passwd_hash *h, const char **why);
int passwd_hash_verify(const struct passwd_hash *h, const uint8_t *pw, size_t pwlen);

/* A "$7$<iter>$<salt>$<hash>" string for pw with a fresh random salt into
 * out; 0, or -1 (no random bytes / OpenSSL failure / out too small). */
int passwd_hash_make(const uint8_t *pw, size_t pwlen, uint32_t iter, char *out, size_t outlen);

#endif
