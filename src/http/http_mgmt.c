/*
 * http_mgmt.c - the management API's own routes, in EMQX 5's shapes:
 *   POST /api/v5/login {"username","password"} -> {"token","role",...}
 *   POST /api/v5/logout
 *   GET|POST /api/v5/users, PUT|DELETE /api/v5/users/{username},
 *   POST /api/v5/users/{username}/change_pwd {"old_pwd","new_pwd"}
 *   GET|POST /api/v5/api_key, GET|PUT|DELETE /api/v5/api_key/{name}
 * The table lives behind mgmt/mgmt_users.h; authentication and roles were
 * checked by the dispatcher (http_authz.c) before any handler here runs,
 * except login (open) and change_pwd/logout (HTTP_R_SELF: checked here).
 */
#include "http/http_int.h"
#include "http/http_throttle.h"
#include "core/conf.h"
#include "core/err.h"
#include "core/version.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The body as a JSON object, or NULL with a 400 in resp. */
static cJSON *body_object(const struct http_req *req, struct http_resp *resp)
{
	cJSON *doc = req->body ? cJSON_ParseWithLength(req->body, req->body_len) : NULL;
	if (!cJSON_IsObject(doc)) {
		cJSON_Delete(doc);
		http_resp_error(resp, 400, "BAD_REQUEST", "the body must be a JSON object");
		return NULL;
	}
	return doc;
}

static const char *str_field(const cJSON *doc, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, name);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* req->arg as a NUL terminated name; false (and 404) when too long. */
static bool arg_name(const struct http_req *req, char out[MGMT_NAME_MAX], struct http_resp *resp)
{
	if (!req->arg || req->arg_len >= MGMT_NAME_MAX) {
		http_resp_error(resp, 404, "NOT_FOUND", "no such name");
		return false;
	}
	memcpy(out, req->arg, req->arg_len);
	out[req->arg_len] = '\0';
	return true;
}

static void error_for(struct http_resp *resp, int rc, const char *why)
{
	switch (rc) {
	case HQ_ENOTFOUND:
		http_resp_error(resp, 404, "NOT_FOUND", why ? why : "not found");
		break;
	case HQ_EEXIST:
		http_resp_error(resp, 409, "ALREADY_EXISTS", why ? why : "already exists");
		break;
	case HQ_EINVAL:
		http_resp_error(resp, 400, "BAD_REQUEST", why ? why : "bad request");
		break;
	case HQ_EAUTH:
		http_resp_error(resp, 400, "BAD_USERNAME_OR_PWD", why ? why : "wrong password");
		break;
	default:
		http_resp_error(resp, 500, "INTERNAL_ERROR", why ? why : "cannot save the table");
	}
}

static void no_content(struct http_resp *resp)
{
	free(resp->body);
	resp->body = NULL;
	resp->body_len = 0;
	resp->status = 204;
}

void http_mgmt_login(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	if (!ctx->users || !ctx->authz) { /* an open route: the dispatcher did not check */
		http_resp_error(resp, 503, "MGMT_UNAVAILABLE", "the management API is disabled on "
				"this node (see its log)");
		return;
	}
	cJSON *in = body_object(req, resp);
	if (!in)
		return;
	/* throttled before the password is looked at (http_throttle.h) */
	unsigned wait_s = ctx->login_throttle ? http_throttle_begin(ctx->login_throttle, req->peer) : 0;
	if (wait_s) {
		cJSON_Delete(in);
		resp->retry_after = wait_s;
		http_resp_error(resp, 429, "TOO_MANY_REQUESTS", "too many failed logins from this "
				"address: retry later");
		return;
	}
	const char *user = str_field(in, "username"), *pw = str_field(in, "password");
	struct mgmt_principal who;
	bool ok = user && pw && mgmt_users_login(ctx->users, user, pw, &who) == HQ_OK;
	if (ctx->login_throttle)
		http_throttle_done(ctx->login_throttle, req->peer, ok);
	if (!ok) {
		char u[MGMT_NAME_MAX];
		size_t i = 0;
		for (; user && user[i] && i + 1 < sizeof(u); i++)
			u[i] = (unsigned char)user[i] < 0x20 || user[i] == 0x7f ? '?' : user[i];
		u[i] = '\0';
		http_authz_log_refusal(ctx->authz, req->peer, "401 POST /api/v5/login: wrong "
				       "username or password (user '%s')", u);
		cJSON_Delete(in);
		resp->www_auth = NULL;
		http_resp_error(resp, 401, "BAD_USERNAME_OR_PWD", "wrong username or password");
		return;
	}
	cJSON_Delete(in);
	char *tok = http_authz_issue(ctx, &who);
	cJSON *out = cJSON_CreateObject();
	if (!tok || !out || !cJSON_AddStringToObject(out, "token", tok) ||
	    !cJSON_AddStringToObject(out, "version", HAMQTT_VERSION) ||
	    !cJSON_AddStringToObject(out, "role", mgmt_role_name(who.role)) ||
	    !cJSON_AddBoolToObject(out, "password_change_required", who.must_change) ||
	    !cJSON_AddNumberToObject(out, "expires_in", (double)ctx->cfg->dashboard_token_expiry)) {
		free(tok);
		cJSON_Delete(out);
		http_resp_json(resp, 500, NULL);
		return;
	}
	free(tok);
	http_resp_json(resp, 200, out);
}

void http_mgmt_logout(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	int rc = http_authz_revoke(ctx, req);
	if (rc == HQ_EINVAL)
		http_resp_error(resp, 400, "BAD_REQUEST", "log out with the token (Bearer) to end");
	else if (rc != HQ_OK)
		http_resp_error(resp, 503, "TOO_MANY_LOGOUTS", "revocation list full, retry later");
	else
		no_content(resp);
}

void http_mgmt_users_list(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	http_resp_json(resp, 200, mgmt_users_list(ctx->users));
}

/* "role" of a body: -1 when absent, -2 (and 400) when not a role */
static int role_field(const cJSON *in, struct http_resp *resp)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(in, "role");
	enum mgmt_role r;
	if (!v)
		return -1;
	if (!cJSON_IsString(v) || mgmt_role_parse(v->valuestring, &r) != 0) {
		http_resp_error(resp, 400, "BAD_REQUEST", "role must be administrator or viewer");
		return -2;
	}
	return (int)r;
}

void http_mgmt_users_add(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	cJSON *in = body_object(req, resp);
	if (!in)
		return;
	int role = role_field(in, resp);
	const char *name = str_field(in, "username"), *why = NULL;
	if (role != -2) {
		int rc = mgmt_users_add(ctx->users, name, str_field(in, "password"),
					role < 0 ? MGMT_ROLE_ADMIN : (enum mgmt_role)role,
					str_field(in, "description"), &why);
		if (rc == HQ_OK)
			http_resp_json(resp, 200, mgmt_users_get(ctx->users, name));
		else
			error_for(resp, rc, why);
	}
	cJSON_Delete(in);
}

void http_mgmt_user_put(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	char name[MGMT_NAME_MAX];
	if (!arg_name(req, name, resp))
		return;
	cJSON *in = body_object(req, resp);
	if (!in)
		return;
	int role = role_field(in, resp);
	if (role != -2) {
		int rc = mgmt_users_update(ctx->users, name, role, str_field(in, "description"));
		if (rc == HQ_OK)
			http_resp_json(resp, 200, mgmt_users_get(ctx->users, name));
		else
			error_for(resp, rc, rc == HQ_ENOTFOUND ? "no such user" :
				  rc == HQ_EINVAL ? "cannot demote the last administrator" : NULL);
	}
	cJSON_Delete(in);
}

void http_mgmt_user_delete(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	char name[MGMT_NAME_MAX];
	const char *why = NULL;
	if (!arg_name(req, name, resp))
		return;
	int rc = mgmt_users_delete(ctx->users, name, &why);
	if (rc == HQ_OK)
		no_content(resp);
	else
		error_for(resp, rc, why);
}

void http_mgmt_change_pwd(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	char name[MGMT_NAME_MAX];
	const char *why = NULL;
	if (!arg_name(req, name, resp))
		return;
	/* a user changes its own password; an API key (administrator) any, still
	 * knowing the old one, as EMQX asks */
	if (!req->who || (!req->who->is_key && strcmp(req->who->name, name))) {
		http_authz_log_refusal(ctx->authz, req->peer, "403 change_pwd of '%s' by '%s'",
				       name, req->who ? req->who->name : "?");
		http_resp_error(resp, 403, "FORBIDDEN", "only the user itself changes its password");
		return;
	}
	cJSON *in = body_object(req, resp);
	if (!in)
		return;
	int rc = mgmt_users_change_pwd(ctx->users, name, str_field(in, "old_pwd"),
				       str_field(in, "new_pwd"), &why);
	cJSON_Delete(in);
	if (rc == HQ_OK)
		no_content(resp);
	else
		error_for(resp, rc, why);
}

void http_mgmt_keys_list(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	http_resp_json(resp, 200, mgmt_keys_list(ctx->users));
}

/* "enable": -1 absent, 0/1, -2 (and 400) not a bool */
static int bool_field(const cJSON *in, const char *name, struct http_resp *resp)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(in, name);
	if (!v)
		return -1;
	if (!cJSON_IsBool(v)) {
		http_resp_error(resp, 400, "BAD_REQUEST", "enable must be true or false");
		return -2;
	}
	return cJSON_IsTrue(v);
}

/* "expired_at": -1 absent, else unix s (0 = never); -2 (and 400) when bad */
static int64_t expiry_field(const cJSON *in, struct http_resp *resp)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(in, "expired_at");
	if (!v)
		return -1;
	int64_t t = mgmt_time_parse(v);
	if (t < 0) {
		http_resp_error(resp, 400, "BAD_REQUEST", "expired_at must be \"infinity\", an RFC "
				"3339 time or unix seconds");
		return -2;
	}
	return t;
}

void http_mgmt_key_create(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	cJSON *in = body_object(req, resp);
	if (!in)
		return;
	int enable = bool_field(in, "enable", resp), rc = HQ_OK;
	int64_t exp = enable == -2 ? -2 : expiry_field(in, resp);
	const char *why = NULL;
	if (exp != -2) {
		cJSON *out = mgmt_keys_create(ctx->users, str_field(in, "name"), str_field(in, "desc"),
					      enable != 0, exp < 0 ? 0 : exp, &rc, &why);
		if (out)
			http_resp_json(resp, 200, out);
		else
			error_for(resp, rc, why);
	}
	cJSON_Delete(in);
}

void http_mgmt_key_get(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	char name[MGMT_NAME_MAX];
	if (!arg_name(req, name, resp))
		return;
	cJSON *o = mgmt_keys_get(ctx->users, name);
	if (o)
		http_resp_json(resp, 200, o);
	else
		error_for(resp, HQ_ENOTFOUND, "no such API key");
}

void http_mgmt_key_put(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	char name[MGMT_NAME_MAX];
	if (!arg_name(req, name, resp))
		return;
	cJSON *in = body_object(req, resp);
	if (!in)
		return;
	int enable = bool_field(in, "enable", resp), rc = HQ_OK;
	int64_t exp = enable == -2 ? -2 : expiry_field(in, resp);
	if (exp != -2) {
		cJSON *out = mgmt_keys_update(ctx->users, name, enable, str_field(in, "desc"), exp, &rc);
		if (out)
			http_resp_json(resp, 200, out);
		else
			error_for(resp, rc, rc == HQ_ENOTFOUND ? "no such API key" : NULL);
	}
	cJSON_Delete(in);
}

void http_mgmt_key_delete(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	char name[MGMT_NAME_MAX];
	if (!arg_name(req, name, resp))
		return;
	int rc = mgmt_keys_delete(ctx->users, name);
	if (rc == HQ_OK)
		no_content(resp);
	else
		error_for(resp, rc, rc == HQ_ENOTFOUND ? "no such API key" : NULL);
}
