/*
 * auth_jwt.h - the JWT method of the authentication chain (auth.jwt.*).
 *
 * A credential (the password, or the user name with auth.jwt.from =
 * username) that is not a JWT at all is not ours (the next method is
 * asked). A JWT is refused (bad credentials) unless: its header names an
 * algorithm we verify (never "none"), a configured key of that algorithm's
 * family verifies its signature (HS* only with auth.jwt.secret or a JWK of
 * kty oct, RS* only with an RSA key, ES* only with an EC key of the right
 * curve: no algorithm confusion), exp / nbf hold (auth.jwt.leeway), and
 * iss / aud / the client id or user name binding hold where configured.
 * With a JWKS URL, a kid we do not know asks the fetch thread for an early
 * refresh and refuses this CONNECT (the client retries).
 *
 * Threads: auth_jwt_check on any worker (a mutex guards only the swap of
 * key set pointers); the JWKS fetch thread (auth_jwt_fetch.c) swaps the
 * URL's keys; auth_jwt_new / free / reload on the main thread.
 */
#ifndef HQ_AUTH_AUTH_JWT_H
#define HQ_AUTH_AUTH_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth_acl.h"
#include "core/conf.h"

struct auth_jwt;

bool auth_jwt_configured(const struct hq_config *cfg);
/* NULL and err ("auth.jwt.<key>: why") on a bad key, file or first fetch. */
struct auth_jwt *auth_jwt_new(const struct hq_config *cfg, char *err, size_t errlen);
void auth_jwt_free(struct auth_jwt *j);
/* Re-read auth.jwt.public_key and auth.jwt.jwks_file; on error the old keys stay. */
int auth_jwt_reload(struct auth_jwt *j, char *err, size_t errlen);

enum jwt_answer { JWT_NOT_MINE = 0, JWT_VALID, JWT_INVALID };

struct jwt_cred {
	const char *client_id;
	const char *username;     /* NULL: none */
	const uint8_t *password;
	size_t password_len;
	bool has_password;
};

/* What a valid token brings besides the answer. */
struct jwt_outcome {
	struct acl_rules *acl;    /* the claims' ACL (a reference) or NULL */
	bool token_in_username;   /* auth.jwt.from = username: the user name is the token */
	char *username;           /* then the claim "username" or "sub" (owned) or NULL */
};

/* Results counted (auth.h AUTH_JWT_RESULTS, auth_jwt_result_names). */
enum jwt_result { JWT_R_OK = 0, JWT_R_EXPIRED, JWT_R_SIGNATURE, JWT_R_ALG, JWT_R_KID,
		  JWT_R_CLAIMS, JWT_R_MALFORMED, JWT_R_ACL, JWT_R_N };
void auth_jwt_counts(const struct auth_jwt *j, uint64_t out[JWT_R_N]);

/* *why: static text, never the token. */
enum jwt_answer auth_jwt_check(struct auth_jwt *j, const struct jwt_cred *c,
			       struct jwt_outcome *out, const char **why);

#endif
