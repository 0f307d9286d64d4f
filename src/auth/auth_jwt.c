/*
 * auth_jwt.c - the JWT method (auth_jwt.h): key selection by the token's
 * header, libjwt for the signature, our own claim checks.
 */
#include "auth/auth_jwt.h"
#include "auth/auth_jwk.h"
#include "auth/auth_jwt_fetch.h"
#include "auth/auth_jwt_parse.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jwt.h>

enum { SET_SECRET, SET_PEM, SET_FILE, SET_URL, N_SETS };

struct auth_jwt {
	pthread_mutex_t lock;           /* guards the set pointers */
	struct jwk_set *sets[N_SETS];   /* one reference each; NULL: not configured / none yet */
	struct jwt_fetch *fetch;        /* owned; NULL without jwks_url */
	bool from_username;
	bool have_jwks;                 /* jwks_file or jwks_url: a kid must be known */
	char *public_key, *jwks_file, *jwks_url, *issuer, *audience, *acl_claim; /* owned */
	struct jwtp_claim_rules rules;  /* points into the strings above */
	_Atomic uint64_t counts[JWT_R_N]; /* by enum jwt_result, any worker */
};

void auth_jwt_counts(const struct auth_jwt *j, uint64_t out[JWT_R_N])
{
	for (int i = 0; i < JWT_R_N; i++)
		out[i] = atomic_load_explicit(&j->counts[i], memory_order_relaxed);
}

static enum jwt_answer count(struct auth_jwt *j, enum jwt_result r)
{
	atomic_fetch_add_explicit(&j->counts[r], 1, memory_order_relaxed);
	return r == JWT_R_OK ? JWT_VALID : JWT_INVALID;
}

bool auth_jwt_configured(const struct hq_config *cfg)
{
	return (cfg->auth_jwt_secret && *cfg->auth_jwt_secret) ||
	       (cfg->auth_jwt_public_key && *cfg->auth_jwt_public_key) ||
	       (cfg->auth_jwt_jwks_file && *cfg->auth_jwt_jwks_file) ||
	       (cfg->auth_jwt_jwks_url && *cfg->auth_jwt_jwks_url);
}

static char *dup_or_null(const char *s)
{
	return s && *s ? hq_strdup(s) : NULL;
}

static void swap_set(struct auth_jwt *j, int which, struct jwk_set *s)
{
	pthread_mutex_lock(&j->lock);
	struct jwk_set *old = j->sets[which];
	j->sets[which] = s;
	pthread_mutex_unlock(&j->lock);
	jwk_set_unref(old); /* a CONNECT in flight keeps its own reference */
}

static void on_url_keys(void *ctx, struct jwk_set *s)
{
	swap_set(ctx, SET_URL, s);
}

static struct jwk_set *secret_set(const struct hq_config *cfg, char *err, size_t errlen)
{
	const char *s = cfg->auth_jwt_secret;
	if (!cfg->auth_jwt_secret_base64)
		return jwk_set_secret((const unsigned char *)s, strlen(s));
	/* base64 or base64url: one decoder for both alphabets */
	char *t = hq_strdup(s);
	for (char *p = t; *p; p++)
		*p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
	uint8_t *raw;
	size_t n;
	struct jwk_set *set = NULL;
	if (jwtp_b64url_decode(t, strlen(t), &raw, &n) && n > 0) {
		set = jwk_set_secret(raw, n);
		hq_free(raw);
	} else {
		snprintf(err, errlen, "auth.jwt.secret: not base64 (auth.jwt.secret_base64 = true)");
	}
	hq_free(t);
	return set;
}

static int load_files(struct auth_jwt *j, struct jwk_set **pem, struct jwk_set **file, char *err,
		      size_t errlen)
{
	char why[400];
	*pem = *file = NULL;
	if (j->public_key && !(*pem = jwk_set_load(j->public_key, true, why, sizeof(why)))) {
		snprintf(err, errlen, "auth.jwt.public_key: %s", why);
		return HQ_EINVAL;
	}
	if (j->jwks_file && !(*file = jwk_set_load(j->jwks_file, false, why, sizeof(why)))) {
		snprintf(err, errlen, "auth.jwt.jwks_file: %s", why);
		jwk_set_unref(*pem);
		*pem = NULL;
		return HQ_EINVAL;
	}
	return HQ_OK;
}

struct auth_jwt *auth_jwt_new(const struct hq_config *cfg, char *err, size_t errlen)
{
	struct auth_jwt *j = hq_calloc(1, sizeof(*j));
	pthread_mutex_init(&j->lock, NULL);
	j->from_username = cfg->auth_jwt_from == CONF_JWT_FROM_USERNAME;
	j->public_key = dup_or_null(cfg->auth_jwt_public_key);
	j->jwks_file = dup_or_null(cfg->auth_jwt_jwks_file);
	j->jwks_url = dup_or_null(cfg->auth_jwt_jwks_url);
	j->issuer = dup_or_null(cfg->auth_jwt_issuer);
	j->audience = dup_or_null(cfg->auth_jwt_audience);
	j->acl_claim = dup_or_null(cfg->auth_jwt_acl_claim);
	j->have_jwks = j->jwks_file || j->jwks_url;
	j->rules = (struct jwtp_claim_rules){ .issuer = j->issuer, .audience = j->audience,
					      .verify_clientid = cfg->auth_jwt_verify_clientid,
					      .verify_username = cfg->auth_jwt_verify_username,
					      .leeway = cfg->auth_jwt_leeway };
	if (cfg->auth_jwt_secret && *cfg->auth_jwt_secret &&
	    !(j->sets[SET_SECRET] = secret_set(cfg, err, errlen)))
		goto fail;
	if (load_files(j, &j->sets[SET_PEM], &j->sets[SET_FILE], err, errlen) != HQ_OK)
		goto fail;
	if (j->jwks_url) {
		/* the first fetch on the main thread, so that a node starts with
		 * keys; a failure is not fatal (the identity provider may be down),
		 * the thread keeps trying */
		char why[400];
		j->sets[SET_URL] = jwt_fetch_once(j->jwks_url, why, sizeof(why));
		if (j->sets[SET_URL])
			log_info("auth: JWKS %s: %zu keys", j->jwks_url, jwk_set_count(j->sets[SET_URL]));
		else
			log_warning("auth: JWKS fetch failed (tokens refused until one succeeds): %s", why);
		j->fetch = jwt_fetch_start(j->jwks_url, cfg->auth_jwt_jwks_refresh, !j->sets[SET_URL],
					   on_url_keys, j);
		if (!j->fetch) {
			snprintf(err, errlen, "auth.jwt.jwks_url: cannot start the fetch thread");
			goto fail;
		}
	}
	log_info("auth: JWT from the %s field (secret %s, public key %s, JWKS file %s, JWKS URL %s)",
		 j->from_username ? "user name" : "password", j->sets[SET_SECRET] ? "yes" : "no",
		 j->public_key ? j->public_key : "-", j->jwks_file ? j->jwks_file : "-",
		 j->jwks_url ? j->jwks_url : "-");
	return j;
fail:
	auth_jwt_free(j);
	return NULL;
}

void auth_jwt_free(struct auth_jwt *j)
{
	if (!j)
		return;
	jwt_fetch_stop(j->fetch); /* before the sets it writes */
	for (int i = 0; i < N_SETS; i++)
		jwk_set_unref(j->sets[i]);
	hq_free(j->public_key);
	hq_free(j->jwks_file);
	hq_free(j->jwks_url);
	hq_free(j->issuer);
	hq_free(j->audience);
	hq_free(j->acl_claim);
	pthread_mutex_destroy(&j->lock);
	hq_free(j);
}

int auth_jwt_reload(struct auth_jwt *j, char *err, size_t errlen)
{
	struct jwk_set *pem, *file;
	if (load_files(j, &pem, &file, err, errlen) != HQ_OK)
		return HQ_EINVAL;
	if (pem)
		swap_set(j, SET_PEM, pem);
	if (file)
		swap_set(j, SET_FILE, file);
	if (pem || file)
		log_notice("auth: reloaded JWT keys (%s%s%s)", j->public_key ? j->public_key : "",
			   pem && file ? ", " : "", j->jwks_file ? j->jwks_file : "");
	if (j->fetch)
		jwt_fetch_request(j->fetch);
	return HQ_OK;
}

/* Does key k verify the token? libjwt reads the alg from the header, which
 * jwtp_header vetted and jwk_key_fits matched to k. */
static bool verify_with(const struct jwk_key *k, const struct jwtp_header *h, const char *tokz)
{
	jwt_t *jw = NULL;
	int rc = jwt_decode(&jw, tokz, k->key, (int)k->key_len);
	/* and libjwt read the alg we matched the key to (no parser differential) */
	bool ok = rc == 0 && jw && jwt_get_alg(jw) == h->alg;
	jwt_free(jw);
	return ok;
}

/* The signature against the keys that fit the header; *why on failure. */
static enum jwt_result verify(struct auth_jwt *j, const struct jwtp_header *h, const char *tokz,
			      const char **why)
{
	enum jwt_result res = JWT_R_SIGNATURE;
	struct jwk_set *sets[N_SETS];
	pthread_mutex_lock(&j->lock);
	for (int i = 0; i < N_SETS; i++)
		sets[i] = j->sets[i] ? jwk_set_ref(j->sets[i]) : NULL;
	pthread_mutex_unlock(&j->lock);
	bool ok = false, tried = false;
	if (h->has_kid && j->have_jwks && (h->kty != JWTP_KTY_OCT || !sets[SET_SECRET])) {
		/* a JWKS names its keys: the kid must be one of them */
		const struct jwk_key *k = jwk_set_find(sets[SET_FILE], h->kid);
		if (!k)
			k = jwk_set_find(sets[SET_URL], h->kid);
		if (!k) {
			if (j->fetch)
				jwt_fetch_request(j->fetch);
			*why = j->fetch ? "JWT kid unknown (JWKS refresh requested, retry later)"
					: "JWT kid unknown";
			res = JWT_R_KID;
			goto out;
		}
		if (!jwk_key_fits(k, h)) {
			*why = "JWT alg does not fit the key its kid names";
			res = JWT_R_ALG;
			goto out;
		}
		tried = true;
		ok = verify_with(k, h, tokz);
	} else {
		for (int i = 0; i < N_SETS && !ok; i++) {
			for (size_t n = 0; n < jwk_set_count(sets[i]) && !ok; n++) {
				const struct jwk_key *k = jwk_set_key(sets[i], n);
				if (!jwk_key_fits(k, h))
					continue;
				tried = true;
				ok = verify_with(k, h, tokz);
			}
		}
	}
	if (!tried) {
		*why = "JWT alg does not fit any configured key";
		res = JWT_R_ALG;
	} else if (!ok) {
		*why = "JWT signature invalid";
	} else {
		res = JWT_R_OK;
	}
out:
	for (int i = 0; i < N_SETS; i++)
		jwk_set_unref(sets[i]);
	return res;
}

/* The claim's string value (username, else sub), owned copy or NULL. */
static char *claim_name(const cJSON *claims)
{
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(claims, "username");
	if (!cJSON_IsString(c))
		c = cJSON_GetObjectItemCaseSensitive(claims, "sub");
	return cJSON_IsString(c) && *c->valuestring ? hq_strdup(c->valuestring) : NULL;
}

enum jwt_answer auth_jwt_check(struct auth_jwt *j, const struct jwt_cred *c,
			       struct jwt_outcome *out, const char **why)
{
	const char *tok;
	size_t len;
	if (j->from_username) {
		tok = c->username;
		len = tok ? strlen(tok) : 0;
	} else {
		tok = (const char *)c->password;
		len = c->has_password ? c->password_len : 0;
	}
	struct jwtp_parts parts;
	if (!tok || !jwtp_split(tok, len, &parts))
		return JWT_NOT_MINE; /* not a JWT: the next method's */
	out->token_in_username = j->from_username;
	struct jwtp_header h;
	enum jwtp_rc prc = jwtp_header(&parts, &h, why);
	if (prc != JWTP_OK)
		return count(j, prc == JWTP_ALG ? JWT_R_ALG : JWT_R_MALFORMED);
	cJSON *claims = jwtp_payload(&parts, why);
	if (!claims)
		return count(j, JWT_R_MALFORMED);
	char *tokz = hq_strndup(tok, len);
	const char *user = j->from_username ? NULL : c->username;
	char *claimed = j->from_username ? claim_name(claims) : NULL;
	if (j->from_username)
		user = claimed;
	/* the signature first: nothing unsigned decides anything else */
	enum jwt_result res = verify(j, &h, tokz, why);
	if (res == JWT_R_OK) {
		prc = jwtp_check_claims(claims, &j->rules, (int64_t)time(NULL), c->client_id, user, why);
		if (prc != JWTP_OK)
			res = prc == JWTP_TIME ? JWT_R_EXPIRED
			      : prc == JWTP_MISMATCH ? JWT_R_CLAIMS : JWT_R_MALFORMED;
	}
	const cJSON *acl = j->acl_claim ? cJSON_GetObjectItemCaseSensitive(claims, j->acl_claim) : NULL;
	if (res == JWT_R_OK && acl) {
		char aerr[200];
		out->acl = acl_from_claim(acl, aerr, sizeof(aerr));
		if (!out->acl) {
			log_notice("auth: JWT refused: %s", aerr);
			*why = "JWT ACL claim malformed";
			res = JWT_R_ACL;
		}
	}
	if (res == JWT_R_OK) {
		*why = "JWT";
		out->username = claimed;
		claimed = NULL;
	}
	hq_free(claimed);
	memset(tokz, 0, len);
	hq_free(tokz);
	cJSON_Delete(claims);
	return count(j, res);
}
