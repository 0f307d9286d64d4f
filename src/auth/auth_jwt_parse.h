/*
 * auth_jwt_parse.h - the parts of a JWT we read ourselves, before and
 * around the signature check (no key, no crypto; fuzzed by
 * tests/fuzz/fuzz_jwt.c):
 *   - is a credential a JWT at all (three base64url segments)?
 *   - its header: the algorithm (never "none", only the ones we verify) and
 *     the key id, read BEFORE libjwt sees the token: libjwt 1.10 takes the
 *     algorithm from the header, so the caller must pick a key that fits it
 *     (no HS256 with an RSA public key as the secret);
 *   - its claims: exp, nbf (with a leeway), iss, aud, and optionally a
 *     claim bound to the client id or user name.
 */
#ifndef HQ_AUTH_AUTH_JWT_PARSE_H
#define HQ_AUTH_AUTH_JWT_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <jwt.h>

#define JWTP_MAX_TOKEN 16384   /* longer credentials are refused, not parsed */
#define JWTP_MAX_KID 128

/* The three segments of a compact JWS (pointers into the token). */
struct jwtp_parts {
	const char *seg[3];
	size_t len[3];
};

/* Key families an algorithm needs. */
enum jwtp_kty { JWTP_KTY_OCT = 1, JWTP_KTY_RSA, JWTP_KTY_EC };

struct jwtp_header {
	jwt_alg_t alg;
	enum jwtp_kty kty;        /* the key family alg needs */
	int curve_nid;            /* EC: the curve alg needs (NID_X9_62_prime256v1...) */
	bool has_kid;
	char kid[JWTP_MAX_KID + 1];
};

/* true: tok (len bytes) has the shape header.payload.signature with base64url
 * characters only, header and payload non-empty (the signature may be empty:
 * alg "none", which jwtp_header refuses). Anything else is not a JWT. */
bool jwtp_split(const char *tok, size_t len, struct jwtp_parts *out);

/* base64url (no padding, '=' padding tolerated) into a new NUL-terminated
 * buffer; false on a bad character or length. */
bool jwtp_b64url_decode(const char *s, size_t n, uint8_t **out, size_t *outlen);

/* What failed (for the log's *why and the /metrics reason). */
enum jwtp_rc {
	JWTP_OK = 0,
	JWTP_MALFORMED,   /* not JSON, a member twice, a bad kid, crit, no signature */
	JWTP_ALG,         /* none, unsupported, or (auth_jwt.c) no key of its family */
	JWTP_TIME,        /* exp passed / nbf not reached */
	JWTP_MISMATCH,    /* iss, aud, client id or user name binding */
};

/* Parse and vet the header; on refusal *why (static text). */
enum jwtp_rc jwtp_header(const struct jwtp_parts *p, struct jwtp_header *h, const char **why);

/* The payload as a JSON object (caller frees with cJSON_Delete); NULL and
 * *why when it is not one. */
cJSON *jwtp_payload(const struct jwtp_parts *p, const char **why);

/* Algorithm name -> (alg, key family, EC curve); false: not one we verify. */
bool jwtp_alg(const char *name, jwt_alg_t *alg, enum jwtp_kty *kty, int *curve_nid);

struct jwtp_claim_rules {
	const char *issuer;       /* NULL or "": not checked */
	const char *audience;     /* NULL or "": not checked */
	bool verify_clientid;     /* "clientid" (else "sub") must equal the client id */
	bool verify_username;     /* "username" (else "sub") must equal the user name */
	int64_t leeway;           /* seconds of clock skew allowed on exp / nbf */
};

/* exp and nbf when present (numbers; exp <= now - leeway is expired), then
 * the configured ones; on refusal *why. */
enum jwtp_rc jwtp_check_claims(const cJSON *claims, const struct jwtp_claim_rules *cr, int64_t now,
		       const char *client_id, const char *username, const char **why);

#endif
