/*
 * http_acldb.c - the built-in database's ACL rules over REST (auth_acldb.h),
 * at EMQX 5's paths and in its shapes, under
 * /api/v5/authorization/sources/built_in_database/rules:
 *   GET    /users?page=&limit=   {"data": [{"username", "rules"}], "meta": {...}}
 *   POST   /users                [{"username", "rules": [rule]}] -> 204; 409 if one exists
 *   GET    /users/{username}     {"username", "rules"} -> 200; 404
 *   PUT    /users/{username}     {"rules", "username"?} -> 204 (made if new)
 *   DELETE /users/{username}     -> 204; 404
 *   the same for /clients[/{clientid}] with "clientid";
 *   GET    /all                  {"rules"} ([] when none)
 *   POST   /all                  {"rules"} -> 204 (replaces the list)
 *   DELETE /all                  -> 204
 * where a rule is {"topic", "permission": allow|deny, "action":
 * publish|subscribe|all}. Changes hold on every node of the cluster, for
 * connections made after them.
 */
#include "http/http_int.h"
#include "auth/auth.h"
#include "auth/auth_acldb.h"
#include "broker/broker.h"
#include "core/err.h"
#include "core/mem.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct auth_acldb *db_of(struct http_ctx *ctx, struct http_resp *resp)
{
	struct broker *b = http_broker(ctx, resp);
	if (!b)
		return NULL;
	struct auth_acldb *db = auth_acl_db(broker_auth(b));
	if (!db)
		http_resp_error(resp, 503, "SERVICE_UNAVAILABLE", "built-in database not available");
	return db;
}

static const char *field_of(enum acldb_kind k)
{
	return k == ACLDB_USER ? "username" : "clientid";
}

/* {"<field>": name, "rules": rules} (takes rules); NULL when out of memory */
static cJSON *entry_json(enum acldb_kind k, const char *name, cJSON *rules)
{
	cJSON *o = cJSON_CreateObject();
	if (!o || (name && !cJSON_AddStringToObject(o, field_of(k), name))) {
		cJSON_Delete(o);
		cJSON_Delete(rules);
		return NULL;
	}
	cJSON_AddItemToObject(o, "rules", rules);
	return o;
}

static void list(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp,
		 enum acldb_kind k)
{
	struct auth_acldb *db = db_of(ctx, resp);
	if (!db)
		return;
	struct http_page pg;
	if (http_page_get(req, 1000, &pg, resp) != HQ_OK)
		return;
	struct auth_acldb_entry *v = NULL; /* owned here */
	size_t n = 0, total = 0;
	auth_acldb_list(db, k, pg.offset, (size_t)pg.limit, &v, &n, &total);
	cJSON *data = cJSON_CreateArray();
	for (size_t i = 0; data && i < n; i++) {
		cJSON *o = entry_json(k, v[i].name, v[i].rules);
		v[i].rules = NULL; /* taken */
		if (!o) {
			cJSON_Delete(data);
			data = NULL;
			break;
		}
		cJSON_AddItemToArray(data, o);
	}
	auth_acldb_entries_free(v, n);
	http_resp_page(resp, &pg, data, total); /* takes data; 500 when NULL */
}

static void set_error(struct http_resp *resp, int rc, const char *why)
{
	if (rc == HQ_EEXIST)
		http_resp_error(resp, 409, "ALREADY_EXISTS", why);
	else if (rc == HQ_EINVAL)
		http_resp_error(resp, 400, "BAD_REQUEST", why);
	else
		http_resp_error(resp, 500, "INTERNAL_ERROR", *why ? why : hq_strerror(rc));
}

/* POST /users or /clients: a batch, checked whole before anything is stored */
static void add(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp,
		enum acldb_kind k)
{
	struct auth_acldb *db = db_of(ctx, resp);
	if (!db)
		return;
	cJSON *in = req->body ? cJSON_Parse(req->body) : NULL;
	char why[200] = "";
	int rc = HQ_OK;
	const cJSON *e;
	if (!cJSON_IsArray(in) || !cJSON_GetArraySize(in)) {
		snprintf(why, sizeof(why), "the body must be [{\"%s\": string, \"rules\": [rule]}, ...]",
			 field_of(k));
		rc = HQ_EINVAL;
	}
	for (int pass = 0; pass < 2 && rc == HQ_OK; pass++) {
		cJSON_ArrayForEach(e, in) {
			const cJSON *name = cJSON_GetObjectItemCaseSensitive(e, field_of(k));
			const cJSON *rules = cJSON_GetObjectItemCaseSensitive(e, "rules");
			char *text = NULL;
			cJSON *held = NULL;
			if (!cJSON_IsString(name) || !auth_acldb_name_ok(name->valuestring)) {
				snprintf(why, sizeof(why), "%s must be a string of 1..%d bytes", field_of(k),
					 ACLDB_NAME_MAX);
				rc = HQ_EINVAL;
			} else if (pass == 0 && (rc = auth_acldb_validate(rules, &text, why, sizeof(why))) == HQ_OK &&
				   auth_acldb_get(db, k, name->valuestring, &held) == HQ_OK) {
				snprintf(why, sizeof(why), "rules for %.100s already exist", name->valuestring);
				rc = HQ_EEXIST;
			} else if (pass == 1) {
				rc = auth_acldb_set(db, k, name->valuestring, rules, true, why, sizeof(why));
			}
			hq_free(text);
			cJSON_Delete(held);
			if (rc != HQ_OK)
				break;
		}
	}
	cJSON_Delete(in);
	if (rc != HQ_OK) {
		set_error(resp, rc, why);
		return;
	}
	resp->status = 204;
}

/* the {username} / {clientid} segment into out, or a 404 */
static bool name_arg(const struct http_req *req, struct http_resp *resp, char *out, size_t n)
{
	if (!req->arg || req->arg_len >= n) {
		http_resp_error(resp, 404, "NOT_FOUND", "rules not found");
		return false;
	}
	snprintf(out, n, "%.*s", (int)req->arg_len, req->arg);
	return true;
}

static void get_one(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp,
		    enum acldb_kind k)
{
	struct auth_acldb *db = db_of(ctx, resp);
	char name[ACLDB_NAME_MAX + 1];
	if (!db || (k != ACLDB_ALL && !name_arg(req, resp, name, sizeof(name))))
		return;
	cJSON *rules = NULL;
	int rc = auth_acldb_get(db, k, k == ACLDB_ALL ? NULL : name, &rules);
	if (rc == HQ_ENOTFOUND && k == ACLDB_ALL) {
		rules = cJSON_CreateArray(); /* EMQX answers an empty list */
		rc = rules ? HQ_OK : HQ_ENOMEM;
	}
	if (rc == HQ_ENOTFOUND) {
		http_resp_error(resp, 404, "NOT_FOUND", "rules not found");
		return;
	}
	cJSON *o = rc == HQ_OK ? entry_json(k, k == ACLDB_ALL ? NULL : name, rules) : NULL;
	http_resp_json(resp, o ? 200 : 500, o);
}

/* PUT /users/{username}, PUT /clients/{clientid}, POST /all: set the list */
static void put_one(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp,
		    enum acldb_kind k)
{
	struct auth_acldb *db = db_of(ctx, resp);
	char name[ACLDB_NAME_MAX + 1];
	if (!db || (k != ACLDB_ALL && !name_arg(req, resp, name, sizeof(name))))
		return;
	cJSON *in = req->body ? cJSON_Parse(req->body) : NULL;
	const cJSON *rules = cJSON_GetObjectItemCaseSensitive(in, "rules");
	const cJSON *same = k == ACLDB_ALL ? NULL : cJSON_GetObjectItemCaseSensitive(in, field_of(k));
	char why[200] = "";
	int rc = HQ_EINVAL;
	if (!cJSON_IsObject(in) || !rules)
		snprintf(why, sizeof(why), "the body must be {\"rules\": [rule]}");
	else if (same && (!cJSON_IsString(same) || strcmp(same->valuestring, name)))
		snprintf(why, sizeof(why), "%s in the body differs from the path", field_of(k));
	else
		rc = auth_acldb_set(db, k, k == ACLDB_ALL ? NULL : name, rules, false, why, sizeof(why));
	cJSON_Delete(in);
	if (rc != HQ_OK) {
		set_error(resp, rc, why);
		return;
	}
	resp->status = 204;
}

static void delete_one(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp,
		       enum acldb_kind k)
{
	struct auth_acldb *db = db_of(ctx, resp);
	char name[ACLDB_NAME_MAX + 1];
	if (!db || (k != ACLDB_ALL && !name_arg(req, resp, name, sizeof(name))))
		return;
	int rc = auth_acldb_delete(db, k, k == ACLDB_ALL ? NULL : name);
	if (rc == HQ_ENOTFOUND && k != ACLDB_ALL) {
		http_resp_error(resp, 404, "NOT_FOUND", "rules not found");
		return;
	}
	resp->status = rc == HQ_OK || rc == HQ_ENOTFOUND ? 204 : 500;
}

#define HANDLERS(kind, suffix)                                                                   \
	void http_acldb_list_##suffix(struct http_ctx *c, const struct http_req *q,            \
				      struct http_resp *r) { list(c, q, r, kind); }            \
	void http_acldb_add_##suffix(struct http_ctx *c, const struct http_req *q,             \
				     struct http_resp *r) { add(c, q, r, kind); }              \
	void http_acldb_get_##suffix(struct http_ctx *c, const struct http_req *q,             \
				     struct http_resp *r) { get_one(c, q, r, kind); }          \
	void http_acldb_put_##suffix(struct http_ctx *c, const struct http_req *q,             \
				     struct http_resp *r) { put_one(c, q, r, kind); }          \
	void http_acldb_delete_##suffix(struct http_ctx *c, const struct http_req *q,          \
					struct http_resp *r) { delete_one(c, q, r, kind); }

HANDLERS(ACLDB_USER, users)
HANDLERS(ACLDB_CLIENT, clients)

void http_acldb_get_all(struct http_ctx *c, const struct http_req *q, struct http_resp *r)
{
	get_one(c, q, r, ACLDB_ALL);
}

void http_acldb_post_all(struct http_ctx *c, const struct http_req *q, struct http_resp *r)
{
	put_one(c, q, r, ACLDB_ALL);
}

void http_acldb_delete_all(struct http_ctx *c, const struct http_req *q, struct http_resp *r)
{
	delete_one(c, q, r, ACLDB_ALL);
}
