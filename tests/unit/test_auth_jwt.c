/*
 * test_auth_jwt.c - unit tests for the JWT method's pure parts: token shape
 * and header (auth_jwt_parse.c), claim checks, JWK -> PEM (auth_jwk.c) and
 * the claims ACL (auth_acl.c acl_from_claim).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>

#include "auth/auth_acl.h"
#include "auth/auth_jwk.h"
#include "auth/auth_jwt_parse.h"
#include "core/mem.h"

static char *b64u(const void *data, size_t n)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	const uint8_t *p = data;
	char *o = hq_malloc(n * 4 / 3 + 4);
	size_t k = 0;
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		acc = (acc << 8) | p[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			o[k++] = a[(acc >> bits) & 63];
		}
	}
	if (bits)
		o[k++] = a[(acc << (6 - bits)) & 63];
	o[k] = 0;
	return o;
}

/* header.payload.sig from JSON texts (the signature is not checked here). */
static char *token(const char *header, const char *payload, const char *sig)
{
	char *h = b64u(header, strlen(header)), *p = b64u(payload, strlen(payload));
	size_t n = strlen(h) + strlen(p) + strlen(sig) + 3;
	char *t = hq_malloc(n);
	snprintf(t, n, "%s.%s.%s", h, p, sig);
	hq_free(h);
	hq_free(p);
	return t;
}

static bool header_of(const char *header, struct jwtp_header *h, const char **why)
{
	char *t = token(header, "{}", "c2ln");
	struct jwtp_parts parts;
	assert_true(jwtp_split(t, strlen(t), &parts));
	bool ok = jwtp_header(&parts, h, why) == JWTP_OK;
	hq_free(t);
	return ok;
}

static void test_split(void **state)
{
	(void)state;
	struct jwtp_parts p;
	assert_true(jwtp_split("eyJ.eyJ.c2ln", 12, &p));
	assert_int_equal(p.len[0], 3);
	assert_int_equal(p.len[2], 4);
	assert_true(jwtp_split("eyJ.eyJ.", 8, &p)); /* alg none shape: a JWT, refused later */
	assert_false(jwtp_split("secret", 6, &p));
	assert_false(jwtp_split("a.b", 3, &p));
	assert_false(jwtp_split("a.b.c.d", 7, &p));
	assert_false(jwtp_split("..sig", 5, &p));
	assert_false(jwtp_split("eyJ.ey J.c2ln", 13, &p));
	assert_false(jwtp_split("eyJ.eyJ+.c2ln", 13, &p)); /* not base64url */
	uint8_t *out;
	size_t n;
	assert_true(jwtp_b64url_decode("aGk", 3, &out, &n));
	assert_int_equal(n, 2);
	assert_memory_equal(out, "hi", 2);
	hq_free(out);
	assert_false(jwtp_b64url_decode("a", 1, &out, &n));
	assert_false(jwtp_b64url_decode("a*bc", 4, &out, &n));
}

static void test_header(void **state)
{
	(void)state;
	struct jwtp_header h;
	const char *why = "";
	assert_true(header_of("{\"alg\":\"RS256\",\"kid\":\"k1\"}", &h, &why));
	assert_int_equal(h.alg, JWT_ALG_RS256);
	assert_int_equal(h.kty, JWTP_KTY_RSA);
	assert_true(h.has_kid);
	assert_string_equal(h.kid, "k1");
	assert_true(header_of("{\"alg\":\"ES256\"}", &h, &why));
	assert_int_equal(h.curve_nid, NID_X9_62_prime256v1);
	assert_false(h.has_kid);
	assert_false(header_of("{\"alg\":\"none\"}", &h, &why));
	assert_non_null(strstr(why, "none"));
	assert_false(header_of("{\"alg\":\"PS256\"}", &h, &why));
	assert_false(header_of("{\"typ\":\"JWT\"}", &h, &why));
	assert_false(header_of("{\"alg\":\"HS256\",\"crit\":[\"b64\"]}", &h, &why));
	assert_false(header_of("{\"alg\":\"HS256\",\"kid\":7}", &h, &why));
	assert_false(header_of("[1]", &h, &why));
	/* two alg members: cJSON and libjwt's jansson would read different ones */
	assert_false(header_of("{\"alg\":\"RS256\",\"alg\":\"HS256\"}", &h, &why));
	assert_non_null(strstr(why, "duplicate"));
	char *t = token("{\"alg\":\"HS256\"}", "{}", "");
	struct jwtp_parts parts;
	assert_true(jwtp_split(t, strlen(t), &parts));
	assert_int_equal(jwtp_header(&parts, &h, &why), JWTP_MALFORMED); /* no signature */
	hq_free(t);
}

static bool claims_ok(const char *json, const struct jwtp_claim_rules *r, const char **why)
{
	cJSON *c = cJSON_Parse(json);
	assert_non_null(c);
	bool ok = jwtp_check_claims(c, r, 1000, "cid", "user", why) == JWTP_OK;
	cJSON_Delete(c);
	return ok;
}

static void test_claims(void **state)
{
	(void)state;
	const char *why = "";
	struct jwtp_claim_rules r = { 0 };
	assert_true(claims_ok("{}", &r, &why));
	assert_true(claims_ok("{\"exp\":1001,\"nbf\":1000}", &r, &why));
	assert_false(claims_ok("{\"exp\":1000}", &r, &why)); /* on exp: expired */
	assert_false(claims_ok("{\"exp\":\"2000\"}", &r, &why));
	assert_false(claims_ok("{\"nbf\":1001}", &r, &why));
	r.leeway = 5;
	assert_true(claims_ok("{\"exp\":996,\"nbf\":1004}", &r, &why));
	assert_false(claims_ok("{\"exp\":995}", &r, &why));
	r = (struct jwtp_claim_rules){ .issuer = "idp", .audience = "mq" };
	assert_true(claims_ok("{\"iss\":\"idp\",\"aud\":\"mq\"}", &r, &why));
	assert_true(claims_ok("{\"iss\":\"idp\",\"aud\":[\"a\",\"mq\"]}", &r, &why));
	assert_false(claims_ok("{\"iss\":\"idp\",\"aud\":[\"a\"]}", &r, &why));
	assert_false(claims_ok("{\"aud\":\"mq\"}", &r, &why));
	assert_false(claims_ok("{\"iss\":\"other\",\"aud\":\"mq\"}", &r, &why));
	r = (struct jwtp_claim_rules){ .verify_clientid = true, .verify_username = true };
	assert_true(claims_ok("{\"clientid\":\"cid\",\"username\":\"user\"}", &r, &why));
	r.verify_username = false;
	assert_true(claims_ok("{\"sub\":\"cid\"}", &r, &why));
	assert_false(claims_ok("{\"sub\":\"other\"}", &r, &why));
	assert_false(claims_ok("{}", &r, &why));
}

/* The base64url of a BIGNUM (padded to len bytes when len > 0). */
static char *bn_b64u(const BIGNUM *bn, int len)
{
	int n = len ? len : BN_num_bytes(bn);
	uint8_t buf[600];
	assert_true(BN_bn2binpad(bn, buf, n) == n);
	return b64u(buf, (size_t)n);
}

static char *pem_of(EVP_PKEY *pk)
{
	BIO *b = BIO_new(BIO_s_mem());
	assert_true(PEM_write_bio_PUBKEY(b, pk));
	char *d;
	long n = BIO_get_mem_data(b, &d);
	char *s = hq_strndup(d, (size_t)n);
	BIO_free(b);
	return s;
}

static void test_jwk_rsa_ec_oct(void **state)
{
	(void)state;
	EVP_PKEY *rsa = EVP_RSA_gen(2048), *ec = EVP_EC_gen("P-256");
	assert_non_null(rsa);
	assert_non_null(ec);
	BIGNUM *n = NULL, *e = NULL, *x = NULL, *y = NULL;
	assert_true(EVP_PKEY_get_bn_param(rsa, OSSL_PKEY_PARAM_RSA_N, &n));
	assert_true(EVP_PKEY_get_bn_param(rsa, OSSL_PKEY_PARAM_RSA_E, &e));
	assert_true(EVP_PKEY_get_bn_param(ec, OSSL_PKEY_PARAM_EC_PUB_X, &x));
	assert_true(EVP_PKEY_get_bn_param(ec, OSSL_PKEY_PARAM_EC_PUB_Y, &y));
	char *sn = bn_b64u(n, 0), *se = bn_b64u(e, 0), *sx = bn_b64u(x, 32), *sy = bn_b64u(y, 32);
	char json[4096];
	snprintf(json, sizeof(json),
		 "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"r\",\"alg\":\"RS256\",\"n\":\"%s\",\"e\":\"%s\"},"
		 "{\"kty\":\"EC\",\"kid\":\"e\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"},"
		 "{\"kty\":\"oct\",\"kid\":\"s\",\"k\":\"c2VjcmV0\"},"
		 "{\"kty\":\"RSA\",\"use\":\"enc\",\"n\":\"AQAB\",\"e\":\"AQAB\"},"
		 "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AA\"}]}",
		 sn, se, sx, sy);
	char err[200];
	unsigned skipped = 0;
	struct jwk_set *s = jwk_set_parse(json, strlen(json), &skipped, err, sizeof(err));
	if (!s)
		fail_msg("jwk_set_parse: %s", err);
	assert_int_equal(jwk_set_count(s), 3);
	assert_int_equal(skipped, 2);
	char *rsa_pem = pem_of(rsa), *ec_pem = pem_of(ec);
	const struct jwk_key *k = jwk_set_find(s, "r");
	assert_int_equal(k->kty, JWTP_KTY_RSA);
	assert_string_equal((const char *)k->key, rsa_pem); /* JWK -> the same public key */
	k = jwk_set_find(s, "e");
	assert_int_equal(k->kty, JWTP_KTY_EC);
	assert_int_equal(k->curve_nid, NID_X9_62_prime256v1);
	assert_string_equal((const char *)k->key, ec_pem);
	k = jwk_set_find(s, "s");
	assert_int_equal(k->key_len, 6);
	assert_memory_equal(k->key, "secret", 6);
	/* which token may meet which key */
	struct jwtp_header hs = { .alg = JWT_ALG_HS256, .kty = JWTP_KTY_OCT };
	struct jwtp_header rs = { .alg = JWT_ALG_RS256, .kty = JWTP_KTY_RSA };
	struct jwtp_header rs5 = { .alg = JWT_ALG_RS512, .kty = JWTP_KTY_RSA };
	struct jwtp_header es = { .alg = JWT_ALG_ES256, .kty = JWTP_KTY_EC, .curve_nid = NID_X9_62_prime256v1 };
	struct jwtp_header es3 = { .alg = JWT_ALG_ES384, .kty = JWTP_KTY_EC, .curve_nid = NID_secp384r1 };
	assert_true(jwk_key_fits(jwk_set_find(s, "r"), &rs));
	assert_false(jwk_key_fits(jwk_set_find(s, "r"), &rs5)); /* the JWK says RS256 */
	assert_false(jwk_key_fits(jwk_set_find(s, "r"), &hs));  /* algorithm confusion */
	assert_true(jwk_key_fits(jwk_set_find(s, "e"), &es));
	assert_false(jwk_key_fits(jwk_set_find(s, "e"), &es3));
	assert_false(jwk_key_fits(jwk_set_find(s, "e"), &hs));
	assert_true(jwk_key_fits(jwk_set_find(s, "s"), &hs));
	assert_false(jwk_key_fits(jwk_set_find(s, "s"), &rs));
	jwk_set_unref(s);
	/* a PEM file's key */
	s = jwk_set_pem(ec_pem, strlen(ec_pem), err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(jwk_set_key(s, 0)->kty, JWTP_KTY_EC);
	jwk_set_unref(s);
	/* malformed keys are errors: a point off the curve, a short coordinate */
	snprintf(json, sizeof(json), "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}]}", sx, sx);
	assert_null(jwk_set_parse(json, strlen(json), NULL, err, sizeof(err)));
	assert_null(jwk_set_parse("{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":\"AA\"}]}", 67, NULL, err, sizeof(err)));
	assert_null(jwk_set_parse("{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}", 47, NULL, err, sizeof(err))); /* too short */
	assert_null(jwk_set_parse("{\"nokeys\":1}", 12, NULL, err, sizeof(err)));
	snprintf(json, sizeof(json), "{\"keys\":[{\"kty\":\"RSA\",\"alg\":\"ES256\",\"n\":\"%s\",\"e\":\"%s\"}]}", sn, se);
	assert_null(jwk_set_parse(json, strlen(json), NULL, err, sizeof(err)));
	hq_free(sn);
	hq_free(se);
	hq_free(sx);
	hq_free(sy);
	hq_free(rsa_pem);
	hq_free(ec_pem);
	BN_free(n);
	BN_free(e);
	BN_free(x);
	BN_free(y);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ec);
}

static struct acl_rules *claim(const char *json)
{
	cJSON *c = cJSON_Parse(json);
	assert_non_null(c);
	char err[200] = "";
	struct acl_rules *r = acl_from_claim(c, err, sizeof(err));
	cJSON_Delete(c);
	return r;
}

static void test_claims_acl(void **state)
{
	(void)state;
	/* EMQX 5 list form: the first rule that covers decides */
	struct acl_rules *r = claim("[{\"permission\":\"allow\",\"action\":\"publish\",\"topic\":\"dev/${clientid}/#\"},"
				    "{\"permission\":\"deny\",\"action\":\"subscribe\",\"topic\":\"cmd/secret\"},"
				    "{\"permission\":\"allow\",\"action\":\"all\",\"topic\":\"cmd/#\"},"
				    "{\"permission\":\"deny\",\"action\":\"all\",\"topic\":\"#\"}]");
	assert_non_null(r);
	assert_int_equal(acl_check(r, "u", "d1", ACL_WRITE, "dev/d1/t", false), ACL_ALLOW);
	assert_int_equal(acl_check(r, "u", "d1", ACL_WRITE, "dev/d2/t", false), ACL_DENY);
	assert_int_equal(acl_check(r, "u", "d1", ACL_READ, "dev/d1/t", false), ACL_DENY);
	assert_int_equal(acl_check(r, "u", "d1", ACL_READ, "cmd/x", true), ACL_ALLOW);
	assert_int_equal(acl_check(r, "u", "d1", ACL_READ, "cmd/secret", true), ACL_DENY);
	assert_int_equal(acl_check(r, "u", "d1", ACL_READ, "cmd/secret", false), ACL_DENY);
	assert_int_equal(acl_check(r, "u", "d1", ACL_WRITE, "cmd/secret", false), ACL_ALLOW);
	assert_int_equal(acl_check(r, "u", "a/b", ACL_WRITE, "dev/a/b/t", false), ACL_DENY);
	acl_unref(r);
	/* the older object form: grants only, the rest is no match */
	r = claim("{\"pub\":[\"p/#\"],\"sub\":[\"s/+\"],\"all\":[\"x\"]}");
	assert_non_null(r);
	assert_int_equal(acl_check(r, NULL, "c", ACL_WRITE, "p/1", false), ACL_ALLOW);
	assert_int_equal(acl_check(r, NULL, "c", ACL_READ, "p/1", false), ACL_NO_MATCH);
	assert_int_equal(acl_check(r, NULL, "c", ACL_READ, "s/1", false), ACL_ALLOW);
	assert_int_equal(acl_check(r, NULL, "c", ACL_READ, "s/#", true), ACL_ALLOW); /* overlap */
	assert_int_equal(acl_check(r, NULL, "c", ACL_READ, "x", false), ACL_ALLOW);
	assert_int_equal(acl_check(r, NULL, "c", ACL_WRITE, "x", false), ACL_ALLOW);
	acl_unref(r);
	/* malformed claims */
	assert_null(claim("\"all\""));
	assert_null(claim("{\"pub\":\"p/#\"}"));
	assert_null(claim("{\"read\":[\"p\"]}"));
	assert_null(claim("{\"pub\":[\"a/#/b\"]}"));
	assert_null(claim("[{\"permission\":\"maybe\",\"action\":\"all\",\"topic\":\"t\"}]"));
	assert_null(claim("[{\"permission\":\"allow\",\"action\":\"read\",\"topic\":\"t\"}]"));
	assert_null(claim("[{\"permission\":\"allow\",\"action\":\"all\"}]"));
	assert_null(claim("[1]"));
	/* at most 256 rules */
	size_t cap = 300 * 8 + 32;
	char *big = hq_malloc(cap);
	size_t o = (size_t)snprintf(big, cap, "{\"pub\":[");
	for (int i = 0; i < 300; i++)
		o += (size_t)snprintf(big + o, cap - o, "%s\"t%d\"", i ? "," : "", i);
	snprintf(big + o, cap - o, "]}");
	assert_null(claim(big));
	hq_free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split),
		cmocka_unit_test(test_header),
		cmocka_unit_test(test_claims),
		cmocka_unit_test(test_jwk_rsa_ec_oct),
		cmocka_unit_test(test_claims_acl),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
