/*
 * http_authz.c - who is calling the management API, and may they: HTTP
 * Basic with an API key (key:secret) or a Bearer token from POST
 * /api/v5/login (mgmt/mgmt_token.h). Called by the dispatcher for every
 * route that is not in the open list, so a route added later needs
 * credentials unless someone marks it open.
 *
 * Answers: 401 + WWW-Authenticate for missing, malformed, wrong, expired or
 * revoked credentials; 403 for a viewer's non-GET and for a user that must
 * change its password first (PASSWORD_CHANGE_REQUIRED). Each refusal is one
 * warning line with the caller's address, at most LOG_BURST per LOG_WINDOW_S
 * and then one summary line, so a flood of bad requests cannot fill the log.
 *
 * Logout: tokens are stateless, so logging out puts the token's id on this
 * node's revocation list until the token expires. Other nodes of a cluster
 * do not see that list (yet): there, a logged-out token stays valid until it
 * expires (dashboard.token_expired_time, 60 min by default).
 *
 * Threads: MHD's connection threads; one mutex guards the revocation list and
 * one the log limiter. The token key is written once at creation.
 */
#include "http/http_int.h"
#include "core/clock.h"
#include "core/conf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define REVOKED_MAX 65536   /* logged-out tokens remembered at once */
#define LOG_WINDOW_S 10
#define LOG_BURST 20
#define WWW_AUTH "Basic realm=\"hamqtt\", Bearer realm=\"hamqtt\""

struct revoked {
	char jti[MGMT_JTI_LEN + 1];
	int64_t exp;
};

struct http_authz {
	uint8_t key[MGMT_KEY_LEN];
	pthread_mutex_t mu;         /* rev, nrev */
	struct revoked *rev;
	size_t nrev;
	pthread_mutex_t log_mu;     /* the limiter below */
	int64_t log_window;         /* start of the current window, unix s */
	unsigned log_lines;         /* lines written in it */
	unsigned long log_dropped;  /* refusals not written in it */
};

struct http_authz *http_authz_new(const struct hq_config *cfg, char *err, size_t errlen)
{
	struct http_authz *a = hq_calloc(1, sizeof(*a));
	char why[512];
	if (mgmt_token_key(cfg->node_cookie, cfg->node_data_dir, a->key, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "management API token key: %s", why);
		free(a);
		return NULL;
	}
	pthread_mutex_init(&a->mu, NULL);
	pthread_mutex_init(&a->log_mu, NULL);
	return a;
}

void http_authz_free(struct http_authz *a)
{
	if (!a)
		return;
	OPENSSL_cleanse(a->key, sizeof(a->key));
	pthread_mutex_destroy(&a->mu);
	pthread_mutex_destroy(&a->log_mu);
	free(a->rev);
	free(a);
}

void http_authz_log_refusal(struct http_authz *a, const char *peer, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	int64_t now = (int64_t)time(NULL);
	unsigned long dropped = 0;
	bool write;
	pthread_mutex_lock(&a->log_mu);
	if (now >= a->log_window + LOG_WINDOW_S) {
		dropped = a->log_dropped;
		a->log_window = now;
		a->log_lines = 0;
		a->log_dropped = 0;
	}
	write = a->log_lines < LOG_BURST;
	if (write)
		a->log_lines++;
	else
		a->log_dropped++;
	pthread_mutex_unlock(&a->log_mu);
	if (dropped)
		log_warning("http: %lu more refused management API requests not logged in the last "
			    "%d s", dropped, LOG_WINDOW_S);
	if (!write)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_warning("http: %s refused: %s", peer ? peer : "?", msg);
}

static bool is_revoked(struct http_authz *a, struct mgmt_users *users, const char *jti,
		       int64_t now)
{
	bool hit = false;
	pthread_mutex_lock(&a->mu);
	for (size_t i = 0; i < a->nrev && !hit; i++)
		hit = a->rev[i].exp > now && !strcmp(a->rev[i].jti, jti);
	pthread_mutex_unlock(&a->mu);
	/* a logout on another node (the replicated table, mgmt_repl.c) */
	return hit || (users && mgmt_users_revoked(users, jti));
}

/* A printable, bounded copy of a user-supplied name for a log line. */
static void safe(char *out, size_t n, const char *s)
{
	size_t i = 0;
	for (; s && s[i] && i + 1 < n; i++)
		out[i] = (unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f ? '?' : s[i];
	out[i] = '\0';
}

/* "Basic base64(key:secret)" -> principal */
static int check_basic(struct http_ctx *ctx, const char *b64, struct mgmt_principal *who,
		       char *why, size_t whylen)
{
	size_t n = strlen(b64);
	unsigned char dec[512];
	if (n == 0 || n % 4 || n / 4 * 3 >= sizeof(dec)) {
		snprintf(why, whylen, "malformed Basic credentials");
		return HQ_EAUTH;
	}
	int len = EVP_DecodeBlock(dec, (const unsigned char *)b64, (int)n);
	if (len < 0) {
		snprintf(why, whylen, "malformed Basic credentials");
		return HQ_EAUTH;
	}
	dec[len] = '\0';
	char *colon = strchr((char *)dec, ':');
	if (!colon) {
		snprintf(why, whylen, "malformed Basic credentials");
		return HQ_EAUTH;
	}
	*colon = '\0';
	int rc = mgmt_keys_check(ctx->users, (char *)dec, colon + 1, (int64_t)time(NULL), who);
	if (rc != HQ_OK) {
		char k[40];
		safe(k, sizeof(k), (char *)dec);
		snprintf(why, whylen, "API key '%s': unknown, wrong secret, disabled or expired", k);
	}
	OPENSSL_cleanse(dec, sizeof(dec));
	return rc;
}

static int check_bearer(struct http_ctx *ctx, const char *tok, struct mgmt_principal *who,
			char *why, size_t whylen)
{
	struct mgmt_claims c;
	int64_t now = (int64_t)time(NULL), changed_ms = 0;
	enum mgmt_token_result r = mgmt_token_verify(ctx->authz->key, tok, now, &c);
	char u[MGMT_NAME_MAX];
	safe(u, sizeof(u), c.user);
	if (r == MGMT_TOKEN_BAD) {
		snprintf(why, whylen, "bad token (not signed with this cluster's key)");
		return HQ_EAUTH;
	}
	if (r == MGMT_TOKEN_EXPIRED) {
		snprintf(why, whylen, "expired token of user '%s'", u);
		return HQ_EAUTH;
	}
	if (is_revoked(ctx->authz, ctx->users, c.jti, now)) {
		snprintf(why, whylen, "logged-out token of user '%s'", u);
		return HQ_EAUTH;
	}
	/* what this node knows about the user overrides the token: deleted here,
	 * or the password changed after the token was issued. A user only in
	 * another node's table (no replication yet) is taken on the token's word. */
	bool known = mgmt_users_exists(ctx->users, c.user, &changed_ms);
	if ((!known && !strcmp(c.node, ctx->cfg->node_name)) || (known && c.iat_ms < changed_ms)) {
		snprintf(why, whylen, "token of user '%s' was revoked (user deleted or password "
			 "changed)", u);
		return HQ_EAUTH;
	}
	snprintf(who->name, sizeof(who->name), "%s", c.user);
	who->is_key = false;
	who->role = c.role;
	who->must_change = c.must_change;
	return HQ_OK;
}

static void refuse(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp,
		   int status, const char *code, const char *msg, const char *why)
{
	char m[16], p[128];
	safe(m, sizeof(m), req->method);
	safe(p, sizeof(p), req->path);
	http_authz_log_refusal(ctx->authz, req->peer, "%d %s %s: %s", status, m, p, why);
	if (status == 401)
		resp->www_auth = WWW_AUTH;
	http_resp_error(resp, status, code, msg);
}

int http_authz_check(struct http_ctx *ctx, const struct http_req *req, unsigned flags,
		     struct mgmt_principal *who, struct http_resp *resp)
{
	char why[200];
	const char *h = req->authorization;
	int rc = HQ_EAUTH;
	memset(who, 0, sizeof(*who));
	if (!h) {
		refuse(ctx, req, resp, 401, "UNAUTHORIZED", "credentials required (API key or "
		       "token)", "no credentials");
		return HQ_EAUTH;
	}
	while (*h == ' ')
		h++;
	if (!strncasecmp(h, "Basic ", 6)) {
		rc = check_basic(ctx, h + 6, who, why, sizeof(why));
	} else if (!strncasecmp(h, "Bearer ", 7)) {
		rc = check_bearer(ctx, h + 7, who, why, sizeof(why));
	} else {
		snprintf(why, sizeof(why), "unknown Authorization scheme");
	}
	if (rc != HQ_OK) {
		refuse(ctx, req, resp, 401, "BAD_API_KEY_OR_TOKEN", "bad credentials", why);
		return rc;
	}
	if (flags & HTTP_R_SELF)
		return HQ_OK;
	char n[MGMT_NAME_MAX];
	safe(n, sizeof(n), who->name);
	if (who->must_change) {
		snprintf(why, sizeof(why), "user '%s' must change its password first", n);
		refuse(ctx, req, resp, 403, "PASSWORD_CHANGE_REQUIRED", "change the password first "
		       "(POST /api/v5/users/{username}/change_pwd), then log in again", why);
		return HQ_EAUTH;
	}
	bool read_only = !strcmp(req->method, "GET") || !strcmp(req->method, "HEAD");
	if (who->role != MGMT_ROLE_ADMIN && !read_only) {
		snprintf(why, sizeof(why), "user '%s' is a viewer", n);
		refuse(ctx, req, resp, 403, "FORBIDDEN", "the viewer role may only read", why);
		return HQ_EAUTH;
	}
	return HQ_OK;
}

char *http_authz_issue(struct http_ctx *ctx, const struct mgmt_principal *who)
{
	struct mgmt_claims c;
	memset(&c, 0, sizeof(c));
	snprintf(c.user, sizeof(c.user), "%s", who->name);
	snprintf(c.node, sizeof(c.node), "%s", ctx->cfg->node_name);
	c.role = who->role;
	c.must_change = who->must_change;
	c.iat_ms = clock_wall_ms();
	c.exp = c.iat_ms / 1000 + ctx->cfg->dashboard_token_expiry;
	return mgmt_token_sign(ctx->authz->key, &c);
}

int http_authz_revoke(struct http_ctx *ctx, const struct http_req *req)
{
	const char *h = req->authorization;
	struct mgmt_claims c;
	int64_t now = (int64_t)time(NULL);
	while (h && *h == ' ')
		h++;
	if (!h || strncasecmp(h, "Bearer ", 7) ||
	    mgmt_token_verify(ctx->authz->key, h + 7, now, &c) != MGMT_TOKEN_OK)
		return HQ_EINVAL;
	struct http_authz *a = ctx->authz;
	int rc = HQ_OK;
	pthread_mutex_lock(&a->mu);
	size_t j = 0; /* drop the expired ones first: they need no revoking */
	for (size_t i = 0; i < a->nrev; i++)
		if (a->rev[i].exp > now)
			a->rev[j++] = a->rev[i];
	a->nrev = j;
	if (a->nrev >= REVOKED_MAX) {
		rc = HQ_ELIMIT;
	} else {
		a->rev = hq_realloc(a->rev, (a->nrev + 1) * sizeof(*a->rev));
		memcpy(a->rev[a->nrev].jti, c.jti, sizeof(c.jti));
		a->rev[a->nrev].exp = c.exp;
		a->nrev++;
	}
	pthread_mutex_unlock(&a->mu);
	if (rc == HQ_OK)
		rc = mgmt_users_revoke(ctx->users, c.jti, c.exp);  /* every node */
	return rc;
}
