/*
 * auth_jwt_parse.c - JWT shape, header and claims (auth_jwt_parse.h). No
 * key material here: what this file accepts still has to pass the
 * signature check in auth_jwt.c.
 */
#include "auth/auth_jwt_parse.h"
#include "core/mem.h"

#include <math.h>
#include <string.h>

#include <openssl/obj_mac.h>

static int b64url_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

bool jwtp_split(const char *tok, size_t len, struct jwtp_parts *out)
{
	if (!tok || len < 4 || len > JWTP_MAX_TOKEN)
		return false;
	int part = 0;
	size_t start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || tok[i] == '.') {
			if (part > 2)
				return false;
			out->seg[part] = tok + start;
			out->len[part] = i - start;
			part++;
			start = i + 1;
			continue;
		}
		if (b64url_val((unsigned char)tok[i]) < 0)
			return false;
	}
	return part == 3 && out->len[0] > 0 && out->len[1] > 0;
}

bool jwtp_b64url_decode(const char *s, size_t n, uint8_t **out, size_t *outlen)
{
	while (n > 0 && s[n - 1] == '=')
		n--;
	if (n % 4 == 1)
		return false;
	uint8_t *b = hq_malloc(n * 3 / 4 + 1);
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		int v = b64url_val((unsigned char)s[i]);
		if (v < 0) {
			hq_free(b);
			return false;
		}
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			b[o++] = (uint8_t)(acc >> bits);
		}
	}
	b[o] = 0;
	*out = b;
	*outlen = o;
	return true;
}

/* Does an object name a member twice? cJSON reads the first of two, jansson
 * (inside libjwt) the last: {"alg":"RS256","alg":"HS256"} would have us pick
 * the RSA key and libjwt use its PEM as an HMAC secret. Small objects: the
 * quadratic scan is bounded by the token's length. */
static bool has_duplicates(const cJSON *o)
{
	for (const cJSON *a = o->child; a; a = a->next)
		for (const cJSON *b = a->next; b; b = b->next)
			if (!strcmp(a->string, b->string))
				return true;
	return false;
}

static cJSON *segment_json(const struct jwtp_parts *p, int i)
{
	uint8_t *raw;
	size_t n;
	if (!jwtp_b64url_decode(p->seg[i], p->len[i], &raw, &n))
		return NULL;
	cJSON *j = cJSON_ParseWithLength((const char *)raw, n);
	hq_free(raw);
	if (j && (!cJSON_IsObject(j) || has_duplicates(j))) {
		cJSON_Delete(j);
		return NULL;
	}
	return j;
}

static const struct {
	const char *name;
	jwt_alg_t alg;
	enum jwtp_kty kty;
	int nid;
} algs[] = {
	{ "HS256", JWT_ALG_HS256, JWTP_KTY_OCT, 0 },
	{ "HS384", JWT_ALG_HS384, JWTP_KTY_OCT, 0 },
	{ "HS512", JWT_ALG_HS512, JWTP_KTY_OCT, 0 },
	{ "RS256", JWT_ALG_RS256, JWTP_KTY_RSA, 0 },
	{ "RS384", JWT_ALG_RS384, JWTP_KTY_RSA, 0 },
	{ "RS512", JWT_ALG_RS512, JWTP_KTY_RSA, 0 },
	{ "ES256", JWT_ALG_ES256, JWTP_KTY_EC, NID_X9_62_prime256v1 },
	{ "ES384", JWT_ALG_ES384, JWTP_KTY_EC, NID_secp384r1 },
	{ "ES512", JWT_ALG_ES512, JWTP_KTY_EC, NID_secp521r1 },
};

bool jwtp_alg(const char *name, jwt_alg_t *alg, enum jwtp_kty *kty, int *curve_nid)
{
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
		if (!strcmp(name, algs[i].name)) {
			*alg = algs[i].alg;
			*kty = algs[i].kty;
			*curve_nid = algs[i].nid;
			return true;
		}
	}
	return false;
}

enum jwtp_rc jwtp_header(const struct jwtp_parts *p, struct jwtp_header *h, const char **why)
{
	memset(h, 0, sizeof(*h));
	cJSON *j = segment_json(p, 0);
	if (!j) {
		*why = "JWT header is not a JSON object (or names a member twice: duplicate)";
		return JWTP_MALFORMED;
	}
	enum jwtp_rc rc = JWTP_MALFORMED;
	const cJSON *alg = cJSON_GetObjectItemCaseSensitive(j, "alg");
	const cJSON *kid = cJSON_GetObjectItemCaseSensitive(j, "kid");
	if (!cJSON_IsString(alg)) {
		*why = "JWT header has no alg";
		rc = JWTP_ALG;
	} else if (!strcmp(alg->valuestring, "none") || !strcmp(alg->valuestring, "NONE") ||
		   !strcmp(alg->valuestring, "None")) {
		*why = "JWT alg none refused";
		rc = JWTP_ALG;
	} else if (!jwtp_alg(alg->valuestring, &h->alg, &h->kty, &h->curve_nid)) {
		*why = "JWT alg not supported";
		rc = JWTP_ALG;
	} else if (cJSON_GetObjectItemCaseSensitive(j, "crit")) {
		/* RFC 7515 4.1.11: extensions we do not understand must be refused */
		*why = "JWT header has crit extensions";
	} else if (kid && (!cJSON_IsString(kid) || strlen(kid->valuestring) > JWTP_MAX_KID)) {
		*why = "JWT kid is not a string of at most 128 bytes";
	} else if (p->len[2] == 0) {
		*why = "JWT has no signature";
	} else {
		if (kid) {
			h->has_kid = true;
			strcpy(h->kid, kid->valuestring);
		}
		rc = JWTP_OK;
	}
	cJSON_Delete(j);
	return rc;
}

cJSON *jwtp_payload(const struct jwtp_parts *p, const char **why)
{
	cJSON *j = segment_json(p, 1);
	if (!j)
		*why = "JWT payload is not a JSON object (or names a member twice: duplicate)";
	return j;
}

/* A NumericDate claim: absent (true, *present false), a finite number, or bad. */
static bool numeric_date(const cJSON *claims, const char *name, double *v, bool *present)
{
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(claims, name);
	*present = c != NULL;
	if (!c)
		return true;
	if (!cJSON_IsNumber(c) || !isfinite(c->valuedouble))
		return false;
	*v = c->valuedouble;
	return true;
}

static bool str_claim_is(const cJSON *claims, const char *name, const char *fallback, const char *want)
{
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(claims, name);
	if (!c && fallback)
		c = cJSON_GetObjectItemCaseSensitive(claims, fallback);
	return want && cJSON_IsString(c) && !strcmp(c->valuestring, want);
}

static bool aud_ok(const cJSON *claims, const char *want)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(claims, "aud");
	if (cJSON_IsString(a))
		return !strcmp(a->valuestring, want);
	if (!cJSON_IsArray(a))
		return false;
	const cJSON *e;
	cJSON_ArrayForEach(e, a) {
		if (cJSON_IsString(e) && !strcmp(e->valuestring, want))
			return true;
	}
	return false;
}

enum jwtp_rc jwtp_check_claims(const cJSON *claims, const struct jwtp_claim_rules *cr, int64_t now,
		       const char *client_id, const char *username, const char **why)
{
	double exp = 0, nbf = 0;
	bool has_exp, has_nbf;
	if (!numeric_date(claims, "exp", &exp, &has_exp)) {
		*why = "JWT exp is not a number";
		return JWTP_MALFORMED;
	}
	if (!numeric_date(claims, "nbf", &nbf, &has_nbf)) {
		*why = "JWT nbf is not a number";
		return JWTP_MALFORMED;
	}
	/* RFC 7519 4.1.4: on or after exp the token must not be accepted */
	if (has_exp && (double)now >= exp + (double)cr->leeway) {
		*why = "JWT expired (exp)";
		return JWTP_TIME;
	}
	if (has_nbf && (double)now + (double)cr->leeway < nbf) {
		*why = "JWT not yet valid (nbf)";
		return JWTP_TIME;
	}
	if (cr->issuer && *cr->issuer && !str_claim_is(claims, "iss", NULL, cr->issuer)) {
		*why = "JWT iss does not match auth.jwt.issuer";
		return JWTP_MISMATCH;
	}
	if (cr->audience && *cr->audience && !aud_ok(claims, cr->audience)) {
		*why = "JWT aud does not include auth.jwt.audience";
		return JWTP_MISMATCH;
	}
	if (cr->verify_clientid && !str_claim_is(claims, "clientid", "sub", client_id)) {
		*why = "JWT clientid/sub claim does not match the client id";
		return JWTP_MISMATCH;
	}
	if (cr->verify_username && !str_claim_is(claims, "username", "sub", username)) {
		*why = "JWT username/sub claim does not match the user name";
		return JWTP_MISMATCH;
	}
	return JWTP_OK;
}
