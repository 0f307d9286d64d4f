/*
 * auth_jwk.h - the keys JWTs are verified with: a shared secret, a PEM
 * public key file, or a JWK Set (RFC 7517: kty oct / RSA n,e / EC P-256,
 * P-384, P-521 x,y). Every key ends up as what libjwt 1.10 takes: the raw
 * secret bytes, or a PEM SubjectPublicKeyInfo (JWK -> EVP_PKEY with
 * OpenSSL 3's EVP_PKEY_fromdata -> PEM), together with the family
 * (and curve) it serves, so that a token's alg can only meet a key of its
 * own family.
 *
 * A key set is immutable and reference counted: a CONNECT keeps the set it
 * started with while the JWKS thread swaps in a new one.
 */
#ifndef HQ_AUTH_AUTH_JWK_H
#define HQ_AUTH_AUTH_JWK_H

#include <stdbool.h>
#include <stddef.h>

#include <jwt.h>

#include "auth/auth_jwt_parse.h"

#define JWK_MAX_KEYS 64   /* keys read from one set; more is refused */

struct jwk_key {
	char *kid;                /* owned; NULL: none */
	enum jwtp_kty kty;
	int curve_nid;            /* EC only */
	jwt_alg_t alg;            /* the JWK's "alg"; JWT_ALG_NONE: any of its family */
	unsigned char *key;       /* owned: secret bytes or a NUL-terminated PEM */
	size_t key_len;           /* without the NUL */
};

struct jwk_set;

/* Parse a JWK Set ({"keys":[...]}). Keys with "use" other than "sig" or of a
 * kty we do not serve are skipped (counted in *skipped when not NULL); a
 * malformed key is an error. NULL and err on error. */
struct jwk_set *jwk_set_parse(const char *json, size_t len, unsigned *skipped, char *err,
			      size_t errlen);
/* A set of one key: a secret (HS*) or a PEM public key (RSA or EC). */
struct jwk_set *jwk_set_secret(const unsigned char *secret, size_t len);
struct jwk_set *jwk_set_pem(const char *pem, size_t len, char *err, size_t errlen);
/* Read a file (a JWK Set or a PEM key). */
struct jwk_set *jwk_set_load(const char *path, bool pem, char *err, size_t errlen);

struct jwk_set *jwk_set_ref(struct jwk_set *s);
void jwk_set_unref(struct jwk_set *s);
size_t jwk_set_count(const struct jwk_set *s);
const struct jwk_key *jwk_set_key(const struct jwk_set *s, size_t i);
/* The key with this kid, or NULL. */
const struct jwk_key *jwk_set_find(const struct jwk_set *s, const char *kid);
/* May this key verify a token of header h? (family, curve, the JWK's alg) */
bool jwk_key_fits(const struct jwk_key *k, const struct jwtp_header *h);

#endif
