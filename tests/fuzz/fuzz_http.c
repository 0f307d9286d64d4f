/*
 * fuzz_http.c - libFuzzer harness for the management API behind
 * libmicrohttpd: the route table (http_api_dispatch), credentials
 * (http_authz.c: Basic API keys, Bearer tokens, roles) and the JSON bodies of
 * login, users, change_pwd and api_key (http_mgmt.c, on a real user table in
 * a temporary directory), plus the bodies of the two broker routes that take
 * one (http_banned_parse, http_cluster_join_parse). There is no broker: its
 * routes answer 503 once the credentials passed. Built and run by `make fuzz`.
 *
 * Input: byte 0 = method (bits 0-2), credentials (bits 3-4: the input's own
 * Authorization header, an administrator's API key, an administrator's token,
 * a viewer's token), bit 5 = the two body parsers instead of the dispatcher,
 * bit 6 = with credentials 0, the header line is the JSON claims of a token
 * signed with the node's key (the token parser after the signature check);
 * byte 1 = the route (a '*' takes the segment below) or, past the table, the
 * segment is the whole path; then "segment\nauthorization\nbody".
 *
 * The user table is the same before every input (after a request that
 * changed it, a copy of the file made at start is written back and
 * reopened), so a crash replays alone. Checks
 * besides ASan/UBSan: a status from the set the API uses, a JSON body that
 * parses, 401 with a WWW-Authenticate header, and never a 2xx for a route
 * that needs credentials without them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "broker/broker.h"
#include "core/conf.h"
#include "core/err.h"
#include "core/log.h"
#include "http/http_int.h"
#include "http/http_query.h"
#include "mgmt/mgmt_token.h"
#include "mgmt/mgmt_users.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s (line %d)\n", #c, __LINE__); abort(); } } while (0)

static struct hq_config cfg;
static char dir[64], users_path[128];
static char *pristine;           /* mgmt_users.json as made at start */
static size_t pristine_len;
static char basic_admin[256], bearer_admin[512], bearer_viewer[512];
static struct http_ctx ctx;      /* reopened from the copy only after a change */
static uint8_t token_key[MGMT_KEY_LEN]; /* node.cookie's, to sign made-up claims */

static const char *const methods[] = { "GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS", "" };
static const char *const paths[] = {
	"/api/v5/status", "/metrics", "/api/v5/login", "/api/v5/logout", "/api/v5/users",
	"/api/v5/users/*", "/api/v5/users/*/change_pwd", "/api/v5/api_key", "/api/v5/api_key/*",
	"/api/v5/cluster", "/api/v5/cluster/join", "/api/v5/cluster/leave",
	"/api/v5/cluster/*/force_leave", "/api/v5/banned", "/api/v5/banned/clientid/*",
	"/api/v5/banned/username/*", "/api/v5/banned/peerhost/*", "/api/v5/users/admin",
	"/api/v5/users/admin/change_pwd", "/api/v5/api_key/fz",
};
#define N_PATHS (sizeof(paths) / sizeof(paths[0]))

static void die(const char *what, const char *why)
{
	fprintf(stderr, "fuzz_http setup: %s: %s\n", what, why);
	abort();
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		die(path, "cannot open");
	char *b = malloc(1 << 20);
	*len = fread(b, 1, 1 << 20, f);
	fclose(f);
	return b;
}

static void put_file(const char *path, const char *b, size_t len)
{
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(b, 1, len, f) != len)
		die(path, "cannot write");
	fclose(f);
}

static void token_for(struct http_ctx *c, const char *name, enum mgmt_role role, char *out,
		      size_t n)
{
	struct mgmt_principal p = { .role = role };
	snprintf(p.name, sizeof(p.name), "%s", name);
	char *t = http_authz_issue(c, &p);
	if (!t)
		die("token", name);
	snprintf(out, n, "Bearer %s", t);
	free(t);
}

/* At exit: the data dir and what the table wrote there (a crash leaves it,
 * with the input that needs it). */
static void cleanup(void)
{
	char p[160];
	static const char *const files[] = { MGMT_USERS_FILE, MGMT_CTL_KEY_FILE };
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
		unlink(p);
	}
	snprintf(p, sizeof(p), "%s/%s.tmp", dir, MGMT_USERS_FILE);
	unlink(p);
	rmdir(dir);
}

/* Once: a data dir on tmpfs when there is one (the table is rewritten for
 * every input), a table with the default admin, a viewer and an API key. */
static void setup(void)
{
	char err[512];
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(dir, sizeof(dir), "%s/hq-fuzz-http-XXXXXX", base);
	if (!mkdtemp(dir))
		die("mkdtemp", dir);
	atexit(cleanup);
	snprintf(users_path, sizeof(users_path), "%s/%s", dir, MGMT_USERS_FILE);
	char text[256];
	snprintf(text, sizeof(text), "node.name = fz@127.0.0.1\nnode.cookie = fuzzcookie\n"
		 "node.data_dir = %s\n", dir);
	conf_defaults(&cfg);
	if (conf_load_string(&cfg, "fuzz.conf", text, err, sizeof(err)) != HQ_OK)
		die("config", err);
	struct http_ctx sctx = { .cfg = &cfg };
	sctx.users = mgmt_users_open(dir, "", err, sizeof(err));
	if (!sctx.users)
		die("users", err);
	sctx.authz = http_authz_new(&cfg, err, sizeof(err));
	if (!sctx.authz)
		die("authz", err);
	const char *why = "";
	if (mgmt_users_add(sctx.users, "view", "viewer-pass-1", MGMT_ROLE_VIEWER, "v", &why) != HQ_OK)
		die("viewer", why);
	int rc = 0;
	cJSON *k = mgmt_keys_create(sctx.users, "fz", "fuzz", true, 0, &rc, &why);
	if (!k)
		die("api key", why);
	char kv[200];
	snprintf(kv, sizeof(kv), "%s:%s",
		 cJSON_GetObjectItemCaseSensitive(k, "api_key")->valuestring,
		 cJSON_GetObjectItemCaseSensitive(k, "api_secret")->valuestring);
	cJSON_Delete(k);
	char b64[256];
	EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)kv, (int)strlen(kv));
	snprintf(basic_admin, sizeof(basic_admin), "Basic %s", b64);
	token_for(&sctx, MGMT_DEFAULT_USER, MGMT_ROLE_ADMIN, bearer_admin, sizeof(bearer_admin));
	token_for(&sctx, "view", MGMT_ROLE_VIEWER, bearer_viewer, sizeof(bearer_viewer));
	http_authz_free(sctx.authz);
	mgmt_users_free(sctx.users);
	if (mgmt_token_key(cfg.node_cookie, dir, token_key, err, sizeof(err)) != 0)
		die("token key", err);
	pristine = slurp(users_path, &pristine_len);
}

/* The next '\n'-terminated piece of [*p, end) as an owned string (the rest
 * when there is no '\n'). */
static char *piece(const uint8_t **p, const uint8_t *end)
{
	const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
	size_t n = nl ? (size_t)(nl - *p) : (size_t)(end - *p);
	char *s = malloc(n + 1);
	memcpy(s, *p, n);
	s[n] = '\0';
	*p += n + (nl ? 1 : 0);
	return s;
}

/* "Bearer v1.<claims>.<mac>" for made-up claims, signed with the node's key:
 * what the token parser reads only after the signature checked out. */
static void sign_claims(const char *claims, char *out, size_t n)
{
	size_t cl = strlen(claims);
	if (cl > 600)
		cl = 600;
	char tok[MGMT_TOKEN_MAX + 64];
	memcpy(tok, "v1.", 3);
	mgmt_b64url((const uint8_t *)claims, cl, tok + 3);
	size_t tl = strlen(tok);
	uint8_t mac[32];
	unsigned int ml = 0;
	HMAC(EVP_sha256(), token_key, MGMT_KEY_LEN, (const uint8_t *)tok, tl, mac, &ml);
	tok[tl++] = '.';
	mgmt_b64url(mac, sizeof(mac), tok + tl);
	snprintf(out, n, "Bearer %s", tok);
}

static void check_resp(const struct http_req *req, const struct http_resp *resp, bool creds)
{
	static const int ok[] = { 200, 201, 204, 400, 401, 403, 404, 405, 409, 413, 500, 503 };
	bool known = false;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		known |= resp->status == ok[i];
	if (!known)
		fprintf(stderr, "status %d for %s %s\n", resp->status, req->method, req->path);
	CHECK(known);
	/* a 401 challenges for Basic/Bearer, except a failed login (a JSON form:
	 * a Basic challenge there would make a browser open its own dialog) */
	if (resp->status == 401 && strcmp(req->path, "/api/v5/login"))
		CHECK(resp->www_auth != NULL);
	if (resp->status == 405)
		CHECK(resp->allow && resp->allow[0]);
	/* without credentials only the open routes answer 2xx */
	bool open = !strcmp(req->path, "/api/v5/status") || !strcmp(req->path, "/metrics") ||
		    !strcmp(req->path, "/api/v5/login");
	if (!creds && resp->status < 300)
		CHECK(open);
	if (resp->body && resp->content_type && !strcmp(resp->content_type, "application/json")) {
		cJSON *doc = cJSON_ParseWithLength(resp->body, resp->body_len);
		CHECK(doc != NULL);
		cJSON_Delete(doc);
	}
}

static void bodies(const char *body, size_t len)
{
	struct broker_ban ban;
	const char *bad = http_banned_parse(body, 1700000000, &ban);
	if (!bad) {
		CHECK(ban.as[0] && ban.who[0] && broker_ban_as_parse(ban.as, strlen(ban.as)) >= 0);
		CHECK(ban.until_s == 0 || ban.until_s > ban.at_s);
		CHECK(memchr(ban.by, 0, sizeof(ban.by)) && memchr(ban.reason, 0, sizeof(ban.reason)));
	}
	char node[256];
	bad = http_cluster_join_parse(body, len, node, sizeof(node));
	if (!bad)
		CHECK(node[0] && strlen(node) < sizeof(node));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2 || size > HTTP_MAX_BODY + 1024)
		return 0;
	log_set_level(LOG_NONE);
	if (!pristine)
		setup();
	uint8_t m = data[0], r = data[1];
	const uint8_t *p = data + 2, *end = data + size;
	size_t body_len;
	char *seg = piece(&p, end);
	char *auth = piece(&p, end);
	/* the rest, newlines included: NUL terminated, as http_server.c's */
	body_len = (size_t)(end - p);
	char *body = malloc(body_len + 1);
	memcpy(body, p, body_len);
	body[body_len] = '\0';

	if (m & 0x20) {
		bodies(body_len ? body : NULL, body_len);
		goto out;
	}
	char path[1024];
	if (r < N_PATHS) {
		const char *pat = paths[r], *star = strchr(pat, '*');
		if (star)
			snprintf(path, sizeof(path), "%.*s%s%s", (int)(star - pat), pat, seg, star + 1);
		else
			snprintf(path, sizeof(path), "%s", pat);
	} else {
		snprintf(path, sizeof(path), "%s", seg);
	}
	const char *authz = NULL;
	char signed_tok[MGMT_TOKEN_MAX + 80];
	switch (m >> 3 & 3) {
	case 0:
		authz = auth[0] ? auth : NULL;
		if (m & 0x40) { /* the header line as the claims of a valid token */
			sign_claims(auth, signed_tok, sizeof(signed_tok));
			authz = signed_tok;
		}
		break;
	case 1: authz = basic_admin; break;
	case 2: authz = bearer_admin; break;
	default: authz = bearer_viewer; break;
	}

	if (!ctx.users) { /* at first, and after a request that changed something */
		put_file(users_path, pristine, pristine_len);
		char err[512];
		ctx.cfg = &cfg;
		atomic_init(&ctx.b, NULL);
		ctx.users = mgmt_users_open(dir, "", err, sizeof(err));
		CHECK(ctx.users != NULL);
		ctx.authz = http_authz_new(&cfg, err, sizeof(err));
		CHECK(ctx.authz != NULL);
	}
	/* a query string in the segment ("?page=2&limit=x%41") goes through the
	 * parser MHD's decoding stands in for, and into the handlers' arguments */
	struct http_query query = { 0 };
	char *qm = strchr(path, '?');
	if (qm) {
		*qm = '\0';
		(void)http_query_parse(&query, qm + 1, strlen(qm + 1));
	}
	struct http_req req = {
		.method = methods[m & 7], .path = path, .body = body_len ? body : NULL,
		.body_len = body_len, .authorization = authz, .peer = "127.0.0.1",
		.query = &query,
	};
	struct http_resp resp = { .status = 0 };
	http_api_dispatch(&ctx, &req, &resp);
	/* a made-up header is no credential; made-up claims signed with the key may be */
	check_resp(&req, &resp, (m >> 3 & 3) != 0 || (m & 0x40));
	free(resp.body);
	http_query_free(&query);
	/* a write that succeeded (users, keys, a password, a logout) changed the
	 * table or the revocation list: start the next input from the copy */
	if (resp.status < 300 && strcmp(req.method, "GET") && strcmp(req.method, "HEAD")) {
		http_authz_free(ctx.authz);
		mgmt_users_free(ctx.users);
		ctx.authz = NULL;
		ctx.users = NULL;
	}
out:
	free(seg);
	free(auth);
	free(body);
	return 0;
}
