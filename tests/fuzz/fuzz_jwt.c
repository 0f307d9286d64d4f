/*
 * fuzz_jwt.c - libFuzzer harness for what the JWT method reads from a
 * client before any signature is checked (src/auth/auth_jwt_parse.c: the
 * token's shape, header and claims), the claims ACL (auth_acl.c
 * acl_from_claim) and JWK Sets (auth_jwk.c, which a JWKS URL serves).
 * Built and run by `make fuzz`.
 *
 * The first byte picks the mode: 0 a token (split, header, payload, claim
 * checks, the payload's "acl" claim), 1 an ACL claim as JSON (then a few
 * checks against it), 2 a JWK Set. Besides "no crash, no leak" (ASan) it
 * checks that an accepted header names an algorithm we verify, never none,
 * with the key family it needs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_acl.h"
#include "auth/auth_jwk.h"
#include "auth/auth_jwt_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s (line %d)\n", #c, __LINE__); abort(); } } while (0)

static void acl_probe(const cJSON *claim)
{
	char err[200];
	struct acl_rules *r = acl_from_claim(claim, err, sizeof(err));
	if (!r)
		return;
	static const char *const what[] = { "a/b", "#", "+/x", "$SYS/x", "dev/c1/t", "" };
	for (size_t i = 0; i < sizeof(what) / sizeof(what[0]); i++) {
		enum acl_verdict v = acl_check(r, "u", "c1", ACL_READ, what[i], true);
		CHECK(v == ACL_NO_MATCH || v == ACL_ALLOW || v == ACL_DENY);
		(void)acl_check(r, NULL, "c/1", ACL_WRITE, what[i], false);
	}
	acl_unref(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t mode = data[0] % 3;
	const char *s = (const char *)data + 1;
	size_t n = size - 1;
	if (mode == 0) {
		struct jwtp_parts p;
		if (!jwtp_split(s, n, &p))
			return 0;
		CHECK(p.len[0] + p.len[1] + p.len[2] + 2 == n);
		struct jwtp_header h;
		const char *why = NULL;
		enum jwtp_rc rc = jwtp_header(&p, &h, &why);
		CHECK(rc == JWTP_OK || rc == JWTP_ALG || rc == JWTP_MALFORMED);
		if (rc == JWTP_OK) {
			CHECK(h.alg != JWT_ALG_NONE && h.alg < JWT_ALG_TERM);
			CHECK(h.kty == JWTP_KTY_OCT || h.kty == JWTP_KTY_RSA || h.kty == JWTP_KTY_EC);
			CHECK((h.kty == JWTP_KTY_EC) == (h.curve_nid != 0));
			CHECK(!h.has_kid || strlen(h.kid) <= JWTP_MAX_KID);
		} else {
			CHECK(why != NULL);
		}
		cJSON *c = jwtp_payload(&p, &why);
		if (!c)
			return 0;
		struct jwtp_claim_rules r = { .issuer = "idp", .audience = "mq", .verify_clientid = true,
					      .verify_username = true, .leeway = 30 };
		(void)jwtp_check_claims(c, &r, 1700000000, "c1", "u", &why);
		const cJSON *acl = cJSON_GetObjectItemCaseSensitive(c, "acl");
		if (acl)
			acl_probe(acl);
		cJSON_Delete(c);
	} else if (mode == 1) {
		cJSON *c = cJSON_ParseWithLength(s, n);
		if (c)
			acl_probe(c);
		cJSON_Delete(c);
	} else {
		char err[200];
		struct jwk_set *ks = jwk_set_parse(s, n, NULL, err, sizeof(err));
		for (size_t i = 0; i < jwk_set_count(ks); i++) {
			const struct jwk_key *k = jwk_set_key(ks, i);
			CHECK(k->key && k->key_len > 0);
			CHECK(k->kty == JWTP_KTY_OCT || k->key[k->key_len] == 0);
		}
		jwk_set_unref(ks);
	}
	return 0;
}
