/*
 * auth_jwk.c - JWK Sets and PEM keys -> keys libjwt can use (auth_jwk.h).
 */
#include "auth/auth_jwk.h"
#include "core/mem.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

struct jwk_set {
	atomic_uint refs;
	size_t n;
	struct jwk_key v[];
};

static struct jwk_set *set_new(size_t cap)
{
	struct jwk_set *s = hq_calloc(1, sizeof(*s) + cap * sizeof(s->v[0]));
	atomic_init(&s->refs, 1);
	return s;
}

static void set_free(struct jwk_set *s)
{
	for (size_t i = 0; i < s->n; i++) {
		hq_free(s->v[i].kid);
		if (s->v[i].key)
			OPENSSL_cleanse(s->v[i].key, s->v[i].key_len);
		hq_free(s->v[i].key);
	}
	hq_free(s);
}

struct jwk_set *jwk_set_ref(struct jwk_set *s)
{
	atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
	return s;
}

void jwk_set_unref(struct jwk_set *s)
{
	if (s && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
		set_free(s);
}

size_t jwk_set_count(const struct jwk_set *s)
{
	return s ? s->n : 0;
}

const struct jwk_key *jwk_set_key(const struct jwk_set *s, size_t i)
{
	return &s->v[i];
}

const struct jwk_key *jwk_set_find(const struct jwk_set *s, const char *kid)
{
	for (size_t i = 0; s && i < s->n; i++)
		if (s->v[i].kid && !strcmp(s->v[i].kid, kid))
			return &s->v[i];
	return NULL;
}

bool jwk_key_fits(const struct jwk_key *k, const struct jwtp_header *h)
{
	if (k->kty != h->kty)
		return false; /* e.g. HS256 never meets an RSA key (algorithm confusion) */
	if (k->kty == JWTP_KTY_EC && k->curve_nid != h->curve_nid)
		return false;
	return k->alg == JWT_ALG_NONE || k->alg == h->alg;
}

struct jwk_set *jwk_set_secret(const unsigned char *secret, size_t len)
{
	struct jwk_set *s = set_new(1);
	s->v[0] = (struct jwk_key){ .kty = JWTP_KTY_OCT, .key = hq_memdup(secret, len + 1),
				    .key_len = len };
	s->v[0].key[len] = 0;
	s->n = 1;
	return s;
}

/* The public key as PEM (SubjectPublicKeyInfo) and its family. */
static bool pkey_to_key(EVP_PKEY *pk, struct jwk_key *k, char *err, size_t errlen)
{
	int id = EVP_PKEY_get_base_id(pk);
	if (id == EVP_PKEY_RSA) {
		k->kty = JWTP_KTY_RSA;
		if (EVP_PKEY_get_bits(pk) < 2048) {
			snprintf(err, errlen, "RSA key shorter than 2048 bits");
			return false;
		}
	} else if (id == EVP_PKEY_EC) {
		char group[64];
		size_t gl = 0;
		if (!EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group,
						    sizeof(group), &gl)) {
			snprintf(err, errlen, "EC key without a named curve");
			return false;
		}
		k->kty = JWTP_KTY_EC;
		k->curve_nid = OBJ_sn2nid(group);
		if (k->curve_nid == NID_undef)
			k->curve_nid = EC_curve_nist2nid(group);
		if (k->curve_nid != NID_X9_62_prime256v1 && k->curve_nid != NID_secp384r1 &&
		    k->curve_nid != NID_secp521r1) {
			snprintf(err, errlen, "EC curve %s not supported (P-256, P-384, P-521)", group);
			return false;
		}
	} else {
		snprintf(err, errlen, "public key is neither RSA nor EC");
		return false;
	}
	BIO *b = BIO_new(BIO_s_mem());
	if (!b || !PEM_write_bio_PUBKEY(b, pk)) {
		BIO_free(b);
		snprintf(err, errlen, "cannot write the public key as PEM");
		return false;
	}
	char *data;
	long n = BIO_get_mem_data(b, &data);
	k->key = (unsigned char *)hq_strndup(data, (size_t)n);
	k->key_len = (size_t)n;
	BIO_free(b);
	return true;
}

struct jwk_set *jwk_set_pem(const char *pem, size_t len, char *err, size_t errlen)
{
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	EVP_PKEY *pk = b ? PEM_read_bio_PUBKEY(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	if (!pk) {
		snprintf(err, errlen, "not a PEM public key (-----BEGIN PUBLIC KEY-----)");
		return NULL;
	}
	struct jwk_set *s = set_new(1);
	bool ok = pkey_to_key(pk, &s->v[0], err, errlen);
	EVP_PKEY_free(pk);
	if (!ok) {
		set_free(s);
		return NULL;
	}
	s->n = 1;
	return s;
}

static BIGNUM *b64_bn(const cJSON *jwk, const char *name)
{
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(jwk, name);
	if (!cJSON_IsString(c))
		return NULL;
	uint8_t *raw;
	size_t n;
	if (!jwtp_b64url_decode(c->valuestring, strlen(c->valuestring), &raw, &n))
		return NULL;
	BIGNUM *bn = n ? BN_bin2bn(raw, (int)n, NULL) : NULL;
	hq_free(raw);
	return bn;
}

/* Octets of a base64url member, left-padded to want bytes (EC coordinates). */
static bool b64_fixed(const cJSON *jwk, const char *name, uint8_t *out, size_t want)
{
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(jwk, name);
	if (!cJSON_IsString(c))
		return false;
	uint8_t *raw;
	size_t n;
	if (!jwtp_b64url_decode(c->valuestring, strlen(c->valuestring), &raw, &n))
		return false;
	bool ok = n == want; /* RFC 7518 6.2.1.2: the full coordinate length */
	if (ok)
		memcpy(out, raw, n);
	hq_free(raw);
	return ok;
}

static EVP_PKEY *fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	EVP_PKEY *pk = NULL;
	if (params && ctx && EVP_PKEY_fromdata_init(ctx) > 0)
		(void)EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return pk;
}

static EVP_PKEY *rsa_from_jwk(const cJSON *jwk)
{
	BIGNUM *n = b64_bn(jwk, "n"), *e = b64_bn(jwk, "e");
	EVP_PKEY *pk = NULL;
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	if (n && e && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
		pk = fromdata("RSA", bld);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	return pk;
}

static EVP_PKEY *ec_from_jwk(const cJSON *jwk)
{
	const cJSON *crv = cJSON_GetObjectItemCaseSensitive(jwk, "crv");
	if (!cJSON_IsString(crv))
		return NULL;
	const char *group;
	size_t clen;
	if (!strcmp(crv->valuestring, "P-256")) {
		group = "prime256v1";
		clen = 32;
	} else if (!strcmp(crv->valuestring, "P-384")) {
		group = "secp384r1";
		clen = 48;
	} else if (!strcmp(crv->valuestring, "P-521")) {
		group = "secp521r1";
		clen = 66;
	} else {
		return NULL;
	}
	uint8_t pt[1 + 2 * 66];
	pt[0] = 0x04; /* uncompressed point: 04 || x || y */
	if (!b64_fixed(jwk, "x", pt + 1, clen) || !b64_fixed(jwk, "y", pt + 1 + clen, clen))
		return NULL;
	EVP_PKEY *pk = NULL;
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	if (bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) &&
	    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, 1 + 2 * clen))
		pk = fromdata("EC", bld); /* checks the point is on the curve */
	OSSL_PARAM_BLD_free(bld);
	return pk;
}

/* One JWK; false with err when malformed; *skip when not for us. */
static bool one_jwk(const cJSON *jwk, struct jwk_key *k, bool *skip, char *err, size_t errlen)
{
	*skip = false;
	memset(k, 0, sizeof(*k));
	const cJSON *kty = cJSON_GetObjectItemCaseSensitive(jwk, "kty");
	const cJSON *use = cJSON_GetObjectItemCaseSensitive(jwk, "use");
	const cJSON *alg = cJSON_GetObjectItemCaseSensitive(jwk, "alg");
	const cJSON *kid = cJSON_GetObjectItemCaseSensitive(jwk, "kid");
	if (!cJSON_IsObject(jwk) || !cJSON_IsString(kty)) {
		snprintf(err, errlen, "a key without kty");
		return false;
	}
	if ((use && (!cJSON_IsString(use) || strcmp(use->valuestring, "sig"))) ||
	    (strcmp(kty->valuestring, "RSA") && strcmp(kty->valuestring, "EC") &&
	     strcmp(kty->valuestring, "oct"))) {
		*skip = true; /* an encryption key, or a kind we do not verify with */
		return true;
	}
	if (kid && (!cJSON_IsString(kid) || strlen(kid->valuestring) > JWTP_MAX_KID)) {
		snprintf(err, errlen, "kid is not a string of at most 128 bytes");
		return false;
	}
	if (alg) {
		enum jwtp_kty akty;
		int nid;
		if (!cJSON_IsString(alg) || !jwtp_alg(alg->valuestring, &k->alg, &akty, &nid)) {
			*skip = true; /* e.g. PS256: not one libjwt 1.10 verifies */
			return true;
		}
	}
	if (!strcmp(kty->valuestring, "oct")) {
		const cJSON *kv = cJSON_GetObjectItemCaseSensitive(jwk, "k");
		uint8_t *raw;
		size_t n;
		if (!cJSON_IsString(kv) ||
		    !jwtp_b64url_decode(kv->valuestring, strlen(kv->valuestring), &raw, &n)) {
			snprintf(err, errlen, "oct key without a valid k");
			return false;
		}
		if (n == 0) {
			hq_free(raw);
			snprintf(err, errlen, "oct key with an empty k");
			return false;
		}
		k->kty = JWTP_KTY_OCT;
		k->key = raw;
		k->key_len = n;
	} else {
		bool rsa = !strcmp(kty->valuestring, "RSA");
		EVP_PKEY *pk = rsa ? rsa_from_jwk(jwk) : ec_from_jwk(jwk);
		if (!pk) {
			snprintf(err, errlen, rsa ? "RSA key with a bad n or e"
						  : "EC key with a bad crv, x or y");
			return false;
		}
		bool ok = pkey_to_key(pk, k, err, errlen);
		EVP_PKEY_free(pk);
		if (!ok)
			return false;
	}
	if (k->alg != JWT_ALG_NONE) {
		enum jwtp_kty akty;
		int nid;
		jwt_alg_t a;
		(void)jwtp_alg(alg->valuestring, &a, &akty, &nid);
		if (akty != k->kty || (akty == JWTP_KTY_EC && nid != k->curve_nid)) {
			snprintf(err, errlen, "alg %s does not fit the key", alg->valuestring);
			hq_free(k->key);
			k->key = NULL;
			return false;
		}
	}
	if (kid)
		k->kid = hq_strdup(kid->valuestring);
	return true;
}

struct jwk_set *jwk_set_parse(const char *json, size_t len, unsigned *skipped, char *err,
			      size_t errlen)
{
	cJSON *j = cJSON_ParseWithLength(json, len);
	const cJSON *keys = cJSON_GetObjectItemCaseSensitive(j, "keys");
	if (!cJSON_IsArray(keys)) {
		snprintf(err, errlen, "not a JWK Set (no \"keys\" array)");
		cJSON_Delete(j);
		return NULL;
	}
	int n = cJSON_GetArraySize(keys);
	if (n > JWK_MAX_KEYS) {
		snprintf(err, errlen, "more than %d keys", JWK_MAX_KEYS);
		cJSON_Delete(j);
		return NULL;
	}
	struct jwk_set *s = set_new((size_t)n);
	unsigned skip_n = 0;
	const cJSON *e;
	cJSON_ArrayForEach(e, keys) {
		bool skip;
		char why[160];
		if (!one_jwk(e, &s->v[s->n], &skip, why, sizeof(why))) {
			snprintf(err, errlen, "key %zu: %s", s->n + skip_n + 1, why);
			set_free(s);
			cJSON_Delete(j);
			return NULL;
		}
		if (skip)
			skip_n++;
		else
			s->n++;
	}
	cJSON_Delete(j);
	if (skipped)
		*skipped = skip_n;
	return s;
}

struct jwk_set *jwk_set_load(const char *path, bool pem, char *err, size_t errlen)
{
	FILE *fp = fopen(path, "rb");
	if (!fp) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	char buf[65536];
	size_t n = fread(buf, 1, sizeof(buf), fp);
	bool too_big = n == sizeof(buf), rerr = ferror(fp);
	fclose(fp);
	if (too_big || rerr) {
		snprintf(err, errlen, "%s: %s", path, rerr ? "read error" : "larger than 64 KiB");
		return NULL;
	}
	char why[200];
	struct jwk_set *s = pem ? jwk_set_pem(buf, n, why, sizeof(why))
				: jwk_set_parse(buf, n, NULL, why, sizeof(why));
	if (!s)
		snprintf(err, errlen, "%s: %s", path, why);
	return s;
}
