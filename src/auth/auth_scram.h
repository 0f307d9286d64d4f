/*
 * auth_scram.h - the server side of SCRAM-SHA-512 (RFC 5802 with SHA-512 as
 * RFC 7677 does it with SHA-256), for MQTT v5 enhanced authentication
 * (auth.h auth_ext_*). Internal to src/auth/.
 *
 * Why SHA-512: a Mosquitto "$7$" password file entry is
 * PBKDF2-HMAC-SHA512(password, salt, iterations), which is exactly SCRAM's
 * SaltedPassword, so users of the password file log in with SCRAM and the
 * server never sees their password. (The other side of that coin: the file
 * is password-equivalent for SCRAM, as it always was for a stolen copy
 * cracked offline; keep it private.) No channel binding ("n" or "y" only),
 * no authorization identity other than the user itself, no extensions.
 * User names are compared as bytes after "=2C"/"=3D" decoding (no SASLprep,
 * as mosquitto_passwd hashes the bytes it is given).
 *
 * The parsers take untrusted bytes (fuzzed: tests/fuzz/fuzz_scram.c) and
 * return views into them; struct scram holds one exchange (owned by its
 * caller, one thread at a time).
 */
#ifndef HQ_AUTH_AUTH_SCRAM_H
#define HQ_AUTH_AUTH_SCRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SCRAM_KEY_LEN 64          /* SHA-512 */
#define SCRAM_MSG_MAX 4096        /* longer client messages are refused */
#define SCRAM_USER_MAX 256

/* client-first-message: gs2-header client-first-message-bare */
struct scram_first {
	const char *gs2;          /* "n,," / "y,," / "n,a=user,": gs2_len bytes */
	size_t gs2_len;
	const char *bare;         /* client-first-message-bare: bare_len bytes */
	size_t bare_len;
	const char *cnonce;       /* the client's nonce: cnonce_len bytes */
	size_t cnonce_len;
	char user[SCRAM_USER_MAX]; /* decoded ("=2C" -> ',', "=3D" -> '='), NUL-terminated */
};

/* client-final-message: c=<cbind>,r=<nonce>[,ext],p=<proof> */
struct scram_final {
	const char *cbind;        /* base64 of the gs2 header: cbind_len bytes */
	size_t cbind_len;
	const char *nonce;
	size_t nonce_len;
	size_t without_proof_len; /* bytes before ",p=" */
	uint8_t proof[SCRAM_KEY_LEN];
};

/* 0, or -1 and *why (static text). */
int scram_parse_first(const uint8_t *in, size_t n, struct scram_first *out, const char **why);
int scram_parse_final(const uint8_t *in, size_t n, struct scram_final *out, const char **why);

/* What the server knows of a user (a "$7$" entry, or a decoy for a user it
 * does not know: the exchange then runs to the end and fails there, so a
 * client cannot tell unknown users from wrong passwords). */
struct scram_cred {
	bool known;
	uint32_t iter;
	uint8_t salt[64];
	size_t salt_len;
	uint8_t salted[SCRAM_KEY_LEN]; /* SaltedPassword */
};
/* A decoy for user: a salt derived from user and a per-process secret (the
 * same user gets the same salt every time), iter as given. */
int scram_cred_decoy(const char *user, uint32_t iter, struct scram_cred *out);

enum scram_rc {
	SCRAM_CONTINUE = 0,       /* send *out (server-first) and wait for the client */
	SCRAM_OK,                 /* authenticated: *out is server-final (v=...) */
	SCRAM_BAD_PROOF,          /* wrong password or unknown user */
	SCRAM_BAD_MESSAGE,        /* not SCRAM, or a feature we do not do */
};

struct scram {
	int stage;                /* 0: want client-first, 1: want client-final, 2: done */
	char *first_bare;         /* owned copies for the AuthMessage */
	char *server_first;
	char *gs2;
	char *nonce;              /* client nonce + server nonce */
	char user[SCRAM_USER_MAX];
	bool known;
	uint8_t stored_key[SCRAM_KEY_LEN];
	uint8_t server_key[SCRAM_KEY_LEN];
};

/* Step 1: f parsed from client-first, cred looked up for f->user. *out
 * (hq_malloc'd, *outlen bytes, not NUL-terminated) is server-first. */
enum scram_rc scram_server_first(struct scram *s, const struct scram_first *f,
				 const struct scram_cred *cred, uint8_t **out, size_t *outlen,
				 const char **why);
/* Step 2: the client-final bytes; on SCRAM_OK *out is server-final. The
 * proof is compared in constant time. */
enum scram_rc scram_client_final(struct scram *s, const uint8_t *in, size_t n, uint8_t **out,
				 size_t *outlen, const char **why);
/* Forget the exchange (keys cleansed); s can start again (re-authentication). */
void scram_reset(struct scram *s);

/* The chain's side (auth_chain.c), for auth_ext.c: user's password file
 * entry copied under the chain's lock (1: found; 0: none), *max_iter the
 * file's largest $7$ iteration count; whether a password file is set. */
struct auth;
struct passwd_hash;
int auth_passwd_entry(struct auth *a, const char *user, struct passwd_hash *out, uint32_t *max_iter);
bool auth_has_passwd(struct auth *a);

#endif
