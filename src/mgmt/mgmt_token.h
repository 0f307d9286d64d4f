/*
 * mgmt_token.h - stateless, signed dashboard tokens (POST /api/v5/login ->
 * "Authorization: Bearer <token>").
 *
 * A token is "v1.<payload>.<mac>": payload is base64url(JSON claims) and mac
 * is base64url(HMAC-SHA256(key, "v1." payload)). Nothing is stored: any node
 * holding the same key accepts the token, so a login answered by one node
 * behind HAProxy works on every other (no sticky sessions). The key is
 * derived from node.cookie, which every node of a cluster shares; with the
 * public default cookie a random per-node key in the data dir is used instead,
 * so nobody can forge tokens for a default install (mgmt_token_key).
 *
 * Pure functions (no global state): any thread may call them.
 */
#ifndef HQ_MGMT_MGMT_TOKEN_H
#define HQ_MGMT_MGMT_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MGMT_KEY_LEN 32            /* HMAC-SHA256 key bytes */
#define MGMT_NAME_MAX 64           /* user and API key names, NUL included */
#define MGMT_JTI_LEN 32            /* hex chars of a token's random id */
#define MGMT_TOKEN_MAX 1024        /* longest token we parse */
/* node.cookie's compiled-in default (conf_keys.c; test_mgmt checks they agree):
 * public, so never a signing key */
#define MGMT_PUBLIC_COOKIE "hamqttsecretcookie"
#define MGMT_TOKEN_KEY_FILE "mgmt_token.key" /* in node.data_dir, 0600 */

enum mgmt_role { MGMT_ROLE_VIEWER = 0, MGMT_ROLE_ADMIN = 1 };

/* "administrator" / "viewer" (EMQX's role names) */
const char *mgmt_role_name(enum mgmt_role r);
/* 0 and *out set, or -1 for an unknown name */
int mgmt_role_parse(const char *s, enum mgmt_role *out);

struct mgmt_claims {
	char user[MGMT_NAME_MAX];
	enum mgmt_role role;
	bool must_change;          /* issued to a user that must change its password first */
	int64_t iat_ms;            /* issued at, unix milliseconds (compared with a
				      password change, which may be in the same second) */
	int64_t exp;               /* expiry, unix seconds */
	char jti[MGMT_JTI_LEN + 1]; /* random id, for logout's revocation list */
	char node[128];            /* the issuing node's name */
};

enum mgmt_token_result { MGMT_TOKEN_OK = 0, MGMT_TOKEN_BAD = -1, MGMT_TOKEN_EXPIRED = -2 };

/* The signing key: HMAC-SHA256(cookie, label) unless cookie is empty or the
 * public default; then the 32 random bytes of <data_dir>/mgmt_token.key,
 * created (0600) on first use. 0, or -1 with err set. */
int mgmt_token_key(const char *cookie, const char *data_dir, uint8_t key[MGMT_KEY_LEN],
		   char *err, size_t errlen);

/* Sign c (jti is filled with a fresh random id); a malloc'd token the caller
 * frees, or NULL (no random bytes). */
char *mgmt_token_sign(const uint8_t key[MGMT_KEY_LEN], struct mgmt_claims *c);
/* Check the MAC (constant time) and then exp against now_s; fills *out on OK
 * (and on EXPIRED, for the log line). */
enum mgmt_token_result mgmt_token_verify(const uint8_t key[MGMT_KEY_LEN], const char *tok,
					 int64_t now_s, struct mgmt_claims *out);

/* base64url without padding of n bytes into out (needs 4*ceil(n/3)+1). */
void mgmt_b64url(const uint8_t *in, size_t n, char *out);
/* n random bytes as 2n hex chars + NUL into out; 0 or -1. */
int mgmt_rand_hex(char *out, size_t n);

#endif
