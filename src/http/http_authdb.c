/*
 * http_authdb.c - the built-in user database over REST (auth_builtin.h), in
 * EMQX 5's shape:
 *   GET    .../users?page=1&limit=100  {"data": [{"user_id", "is_superuser"}],
 *                                       "meta": {"page", "limit", "count"}}
 *   POST   .../users                   {"user_id", "password", "is_superuser"?}
 *                                      -> 201 {"user_id", "is_superuser"}; 409 if it exists
 *   GET    .../users/{user_id}         -> {"user_id", "is_superuser"}; 404
 *   PUT    .../users/{user_id}         {"password"?, "is_superuser"?} -> 200; 404
 *   DELETE .../users/{user_id}         -> 204; 404
 * where ... is /api/v5/authentication/password_based:built_in_database.
 * Passwords are never returned. The table is cluster-wide: a change made on
 * any node holds on every node.
 */
#include "http/http_int.h"
#include "auth/auth.h"
#include "auth/auth_builtin.h"
#include "broker/broker.h"
#include "core/err.h"
#include "core/mem.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE_LIMIT_MAX 1000

static struct auth_builtin *db_of(struct http_ctx *ctx, struct http_resp *resp)
{
	struct broker *b = http_broker(ctx, resp);
	if (!b)
		return NULL;
	struct auth_builtin *db = auth_builtin_db(broker_auth(b));
	if (!db)
		http_resp_error(resp, 503, "SERVICE_UNAVAILABLE", "built-in database not available");
	return db;
}

static cJSON *user_json(const char *id, bool su)
{
	cJSON *o = cJSON_CreateObject();
	if (o && (!cJSON_AddStringToObject(o, "user_id", id) ||
		  !cJSON_AddBoolToObject(o, "is_superuser", su))) {
		cJSON_Delete(o);
		o = NULL;
	}
	return o;
}

void http_authdb_list(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	struct auth_builtin *db = db_of(ctx, resp);
	if (!db)
		return;
	struct http_page pg;
	if (http_page_get(req, PAGE_LIMIT_MAX, &pg, resp) != HQ_OK)
		return;
	struct auth_builtin_user *v = NULL; /* owned here */
	size_t n = 0, total = 0;
	auth_builtin_list(db, pg.offset, (size_t)pg.limit, &v, &n, &total);
	cJSON *data = cJSON_CreateArray();
	for (size_t i = 0; data && i < n; i++) {
		cJSON *o = user_json(v[i].user_id, v[i].superuser);
		if (!o) {
			cJSON_Delete(data);
			data = NULL;
			break;
		}
		cJSON_AddItemToArray(data, o);
	}
	hq_free(v);
	http_resp_page(resp, &pg, data, total); /* takes data; 500 when NULL */
}

/* password (string) and is_superuser (bool) of a body; false: wrong types */
static bool body_fields(const cJSON *in, const char **pw, int *su)
{
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(in, "password");
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(in, "is_superuser");
	if ((p && !cJSON_IsString(p)) || (s && !cJSON_IsBool(s)))
		return false;
	*pw = p ? p->valuestring : NULL;
	*su = s ? cJSON_IsTrue(s) : -1;
	return true;
}

static void answer(struct http_resp *resp, int rc, const char *why, int ok_status, const char *id,
		   struct auth_builtin *db)
{
	switch (rc) {
	case HQ_OK: {
		bool su = false;
		if (auth_builtin_get(db, id, &su) != HQ_OK) {
			http_resp_error(resp, 404, "NOT_FOUND", "user not found");
			return;
		}
		cJSON *o = user_json(id, su);
		http_resp_json(resp, o ? ok_status : 500, o);
		return;
	}
	case HQ_EEXIST:
		http_resp_error(resp, 409, "ALREADY_EXISTS", "user already exists");
		return;
	case HQ_ENOTFOUND:
		http_resp_error(resp, 404, "NOT_FOUND", "user not found");
		return;
	case HQ_EINVAL:
		http_resp_error(resp, 400, "BAD_REQUEST", why ? why : "bad user");
		return;
	default:
		http_resp_error(resp, 500, "INTERNAL_ERROR", why ? why : hq_strerror(rc));
	}
}

void http_authdb_add(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	struct auth_builtin *db = db_of(ctx, resp);
	if (!db)
		return;
	cJSON *in = req->body ? cJSON_Parse(req->body) : NULL;
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(in, "user_id");
	const char *pw = NULL;
	int su = -1;
	if (!cJSON_IsObject(in) || !cJSON_IsString(id) || !body_fields(in, &pw, &su) || !pw) {
		cJSON_Delete(in);
		http_resp_error(resp, 400, "BAD_REQUEST", "the body must be {\"user_id\": string, "
				"\"password\": string, \"is_superuser\": bool (optional)}");
		return;
	}
	const char *why = NULL;
	char user[AUTH_BUILTIN_ID_MAX + 1];
	snprintf(user, sizeof(user), "%s", id->valuestring);
	int rc = strlen(id->valuestring) > AUTH_BUILTIN_ID_MAX ? HQ_EINVAL
		 : auth_builtin_add(db, user, pw, su > 0, &why);
	if (rc == HQ_EINVAL && !why)
		why = "user_id must be 1..255 bytes";
	cJSON_Delete(in);
	answer(resp, rc, why, 201, user, db);
}

/* the {user_id} segment, or a 404 */
static bool user_arg(const struct http_req *req, struct http_resp *resp, char *out, size_t n)
{
	if (!req->arg || req->arg_len >= n) {
		http_resp_error(resp, 404, "NOT_FOUND", "user not found");
		return false;
	}
	snprintf(out, n, "%.*s", (int)req->arg_len, req->arg);
	return true;
}

void http_authdb_get(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	struct auth_builtin *db = db_of(ctx, resp);
	char user[AUTH_BUILTIN_ID_MAX + 1];
	if (db && user_arg(req, resp, user, sizeof(user)))
		answer(resp, HQ_OK, NULL, 200, user, db);
}

void http_authdb_put(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	struct auth_builtin *db = db_of(ctx, resp);
	char user[AUTH_BUILTIN_ID_MAX + 1];
	if (!db || !user_arg(req, resp, user, sizeof(user)))
		return;
	cJSON *in = req->body ? cJSON_Parse(req->body) : NULL;
	const char *pw = NULL;
	int su = -1;
	if (!cJSON_IsObject(in) || !body_fields(in, &pw, &su)) {
		cJSON_Delete(in);
		http_resp_error(resp, 400, "BAD_REQUEST", "the body must be {\"password\": string, "
				"\"is_superuser\": bool}, both optional");
		return;
	}
	const char *why = NULL;
	int rc = auth_builtin_update(db, user, pw, su, &why);
	cJSON_Delete(in);
	answer(resp, rc, why, 200, user, db);
}

void http_authdb_delete(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	struct auth_builtin *db = db_of(ctx, resp);
	char user[AUTH_BUILTIN_ID_MAX + 1];
	if (!db || !user_arg(req, resp, user, sizeof(user)))
		return;
	int rc = auth_builtin_delete(db, user);
	if (rc == HQ_ENOTFOUND) {
		http_resp_error(resp, 404, "NOT_FOUND", "user not found");
		return;
	}
	resp->status = rc == HQ_OK ? 204 : 500;
}
