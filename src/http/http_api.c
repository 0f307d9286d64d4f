/*
 * http_api.c - the management API's route table and its JSON handlers.
 *
 * Routes are one table of {method, path, handler}; http_api_dispatch is the
 * only place that picks a handler, and the only source of 404/405. Handlers
 * read the broker through broker.h only (broker_get_info is thread safe) and
 * run on the HTTP server's thread. Bodies are built with cJSON.
 * EMQX-compatible where EMQX has the same endpoint (/api/v5/status,
 * DELETE /api/v5/cluster/{node}/force_leave). The cluster endpoints are in
 * http_cluster.c.
 */
#include "http/http_int.h"
#include "http/http_qapi.h"
#include "broker/broker.h"
#include "core/clock.h"
#include "core/conf.h"
#include "core/version.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


void http_resp_json(struct http_resp *resp, int status, cJSON *doc)
{
	char *text = doc ? cJSON_PrintUnformatted(doc) : NULL;
	cJSON_Delete(doc);
	free(resp->body);
	if (!text) { /* out of memory while building the body */
		resp->status = 500;
		resp->body = NULL;
		resp->body_len = 0;
		resp->content_type = "application/json";
		return;
	}
	resp->status = status;
	resp->content_type = "application/json";
	resp->body = text;
	resp->body_len = strlen(text);
}

void http_resp_error(struct http_resp *resp, int status, const char *code, const char *message)
{
	cJSON *doc = cJSON_CreateObject();
	if (doc && (!cJSON_AddStringToObject(doc, "code", code) ||
		    !cJSON_AddStringToObject(doc, "message", message))) {
		cJSON_Delete(doc);
		doc = NULL;
	}
	http_resp_json(resp, status, doc);
}

struct broker *http_broker(struct http_ctx *ctx, struct http_resp *resp)
{
	struct broker *b = atomic_load(&ctx->b);
	if (!b)
		http_resp_error(resp, 503, "NOT_RUNNING", "the node is starting");
	return b;
}

/* The "store" object of the status: {backend, durable, healthy,
 * description, down_since_s (unix time the outage began) and down_for_s
 * (its length), both null while healthy}. */
static bool add_store(cJSON *doc, struct broker *b)
{
	struct broker_store_info si;
	broker_store_info(b, &si);
	cJSON *o = cJSON_AddObjectToObject(doc, "store");
	if (!o || !cJSON_AddStringToObject(o, "backend", si.backend) ||
	    !cJSON_AddBoolToObject(o, "durable", si.durable) ||
	    !cJSON_AddBoolToObject(o, "healthy", si.healthy) ||
	    !cJSON_AddStringToObject(o, "description", si.description))
		return false;
	if (si.healthy)
		return cJSON_AddNullToObject(o, "down_since_s") && cJSON_AddNullToObject(o, "down_for_s");
	return cJSON_AddNumberToObject(o, "down_since_s", (double)((clock_wall_ms() - si.down_ms) / 1000)) &&
	       cJSON_AddNumberToObject(o, "down_for_s", (double)si.down_ms / 1000.0);
}

/* GET /api/v5/status: the load balancer's health check. 200 while the node
 * accepts MQTT, 503 while it starts or shuts down (http.h: the phases).
 * A store that is down does not change the code, only the body's "store"
 * (ARCHITECTURE.md "Persistence", Errors: the node still serves everything
 * that needs no store, and a shared Redis down would take every node out of
 * the load balancer at once). Never logs. */
static void api_status(struct http_ctx *ctx, const struct http_req *req,
		       struct http_resp *resp)
{
	struct broker *b = atomic_load(&ctx->b);
	struct broker_info info = { .accepting = false };
	/* stopping is read first: once main said so, the node never answers 200 */
	bool stopping = atomic_load(&ctx->stopping);
	if (b && !stopping)
		broker_get_info(b, &info);
	cJSON *doc = cJSON_CreateObject();
	if (!doc)
		goto fail;
	if (!info.accepting) {
		/* a node never goes back from running to starting */
		const char *st = stopping || atomic_load(&ctx->seen_accepting) ? "stopping" : "starting";
		if (!cJSON_AddStringToObject(doc, "status", st))
			goto fail;
		http_resp_json(resp, 503, doc);
		return;
	}
	atomic_store(&ctx->seen_accepting, true);
	if (!cJSON_AddStringToObject(doc, "node", ctx->cfg->node_name) ||
	    !cJSON_AddStringToObject(doc, "status", "running") ||
	    !cJSON_AddNumberToObject(doc, "uptime", (double)info.uptime_s) ||
	    !cJSON_AddNumberToObject(doc, "connections", (double)info.connections) ||
	    !cJSON_AddStringToObject(doc, "version", HAMQTT_VERSION) || !add_store(doc, b))
		goto fail;
	http_resp_json(resp, 200, doc);
	return;
fail:
	cJSON_Delete(doc);
	http_resp_json(resp, 500, NULL);
}

#define AUTHDB_USERS "/api/v5/authentication/password_based:built_in_database/users"
#define ACLDB "/api/v5/authorization/sources/built_in_database/rules"

/* Every route needs credentials (http_authz.c) unless flagged HTTP_R_OPEN:
 * deny by default, so a route added later is protected without a thought. */
static const struct http_route routes[] = {
	/* the dashboard (http_assets.c): pages hold no data, so open; hash
	 * routes (#/clients) keep every app URL at "/" */
	{ "GET", "/", http_assets_get, HTTP_R_OPEN },
	{ "GET", "/index.html", http_assets_get, HTTP_R_OPEN },
	{ "GET", "/assets/*", http_assets_get, HTTP_R_OPEN },
	{ "GET", "/vendor/*/*", http_assets_get, HTTP_R_OPEN },
	/* the OpenAPI document (http_apidocs.c): documentation, not data, so
	 * open like EMQX's /api-docs; test_58 checks it against this table */
	{ "GET", "/api-docs", http_apidocs_get, HTTP_R_OPEN },
	{ "GET", "/api-docs/openapi.json", http_apidocs_get, HTTP_R_OPEN },
	{ "GET", "/api/v5/status", api_status, HTTP_R_OPEN },
	{ "GET", "/metrics", http_metrics, HTTP_R_OPEN },
	{ "POST", "/api/v5/login", http_mgmt_login, HTTP_R_OPEN },
	{ "POST", "/api/v5/logout", http_mgmt_logout, HTTP_R_SELF },
	{ "GET", "/api/v5/users", http_mgmt_users_list, 0 },
	{ "POST", "/api/v5/users", http_mgmt_users_add, 0 },
	{ "PUT", "/api/v5/users/*", http_mgmt_user_put, 0 },
	{ "DELETE", "/api/v5/users/*", http_mgmt_user_delete, 0 },
	{ "POST", "/api/v5/users/*/change_pwd", http_mgmt_change_pwd, HTTP_R_SELF },
	{ "GET", "/api/v5/api_key", http_mgmt_keys_list, 0 },
	{ "POST", "/api/v5/api_key", http_mgmt_key_create, 0 },
	{ "GET", "/api/v5/api_key/*", http_mgmt_key_get, 0 },
	{ "PUT", "/api/v5/api_key/*", http_mgmt_key_put, 0 },
	{ "DELETE", "/api/v5/api_key/*", http_mgmt_key_delete, 0 },
	{ "GET", "/api/v5/cluster", http_cluster_get, 0 },
	{ "POST", "/api/v5/cluster/join", http_cluster_join, 0 },
	{ "POST", "/api/v5/cluster/leave", http_cluster_leave, 0 },
	/* EMQX 5's path; the node name is the '*' segment */
	{ "DELETE", "/api/v5/cluster/*/force_leave", http_cluster_force_leave, 0 },
	/* the banned list (http_banned.c): EMQX's /api/v5/banned/{as}/{who} */
	{ "GET", "/api/v5/banned", http_banned_get, 0 },
	{ "POST", "/api/v5/banned", http_banned_post, 0 },
	{ "DELETE", "/api/v5/banned/clientid/*", http_banned_delete, 0 },
	{ "DELETE", "/api/v5/banned/username/*", http_banned_delete, 0 },
	{ "DELETE", "/api/v5/banned/peerhost/*", http_banned_delete, 0 },
	/* the built-in user database (http_authdb.c), EMQX's path */
	{ "GET", AUTHDB_USERS, http_authdb_list, 0 },
	{ "POST", AUTHDB_USERS, http_authdb_add, 0 },
	{ "GET", AUTHDB_USERS "/*", http_authdb_get, 0 },
	{ "PUT", AUTHDB_USERS "/*", http_authdb_put, 0 },
	{ "DELETE", AUTHDB_USERS "/*", http_authdb_delete, 0 },
	/* the built-in database's ACL rules (http_acldb.c), EMQX's paths */
	{ "GET", ACLDB "/users", http_acldb_list_users, 0 },
	{ "POST", ACLDB "/users", http_acldb_add_users, 0 },
	{ "GET", ACLDB "/users/*", http_acldb_get_users, 0 },
	{ "PUT", ACLDB "/users/*", http_acldb_put_users, 0 },
	{ "DELETE", ACLDB "/users/*", http_acldb_delete_users, 0 },
	{ "GET", ACLDB "/clients", http_acldb_list_clients, 0 },
	{ "POST", ACLDB "/clients", http_acldb_add_clients, 0 },
	{ "GET", ACLDB "/clients/*", http_acldb_get_clients, 0 },
	{ "PUT", ACLDB "/clients/*", http_acldb_put_clients, 0 },
	{ "DELETE", ACLDB "/clients/*", http_acldb_delete_clients, 0 },
	{ "GET", ACLDB "/all", http_acldb_get_all, 0 },
	{ "POST", ACLDB "/all", http_acldb_post_all, 0 },
	{ "DELETE", ACLDB "/all", http_acldb_delete_all, 0 },
	/* the broker's query services (http_clients.c, http_retained.c; broker_api.h) */
	{ "GET", "/api/v5/clients", http_clients_list, HTTP_R_FANOUT_LIST },
	{ "GET", "/api/v5/clients/*", http_client_get, HTTP_R_FANOUT_ONE },
	{ "DELETE", "/api/v5/clients/*", http_client_kick, HTTP_R_FANOUT_ONE },
	{ "GET", "/api/v5/clients/*/subscriptions", http_client_subs, HTTP_R_FANOUT_ONE },
	{ "GET", "/api/v5/subscriptions", http_subs_list, HTTP_R_FANOUT_LIST },
	{ "GET", "/api/v5/topics", http_topics_list, HTTP_R_FANOUT_LIST },
	/* retained messages are on every node: local */
	{ "GET", "/api/v5/mqtt/retainer/messages", http_retained_list, 0 },
	{ "GET", "/api/v5/mqtt/retainer/message/**", http_retained_get, 0 },
	{ "DELETE", "/api/v5/mqtt/retainer/message/**", http_retained_delete, 0 },
	{ "POST", "/api/v5/publish", http_publish, 0 },
	{ "POST", "/api/v5/publish/bulk", http_publish_bulk, 0 },
	/* issue 12: the archive read back (http_archive.c); the database is the
	 * cluster's: local */
	{ "GET", "/api/v5/archive/messages", http_archive_messages, 0 },
	/* EMQX's Prometheus scrape path: the same text as /metrics, open too */
	{ "GET", "/api/v5/prometheus/stats", http_metrics, HTTP_R_OPEN },
	/* issue 11 "ops" (http_ops.c): alarms, log level, traces */
	{ "GET", "/api/v5/alarms", http_ops_alarms_list, HTTP_R_FANOUT_LIST },
	/* writes flagged HTTP_R_FANOUT_ONE are made by every running member at once
	 * (a trace starts on every node, each writing its own file; the log level
	 * and the alarm history are per node): the answer is the first member's
	 * other than 404, this node first */
	{ "DELETE", "/api/v5/alarms", http_ops_alarms_clear, HTTP_R_FANOUT_ONE },
	{ "GET", "/api/v5/log_level", http_ops_log_level_get, 0 },
	{ "PUT", "/api/v5/log_level", http_ops_log_level_put, HTTP_R_FANOUT_ONE },
	{ "GET", "/api/v5/trace", http_ops_trace_list, 0 },
	{ "POST", "/api/v5/trace", http_ops_trace_create, HTTP_R_FANOUT_ONE },
	{ "DELETE", "/api/v5/trace/*", http_ops_trace_delete, HTTP_R_FANOUT_ONE },
	{ "PUT", "/api/v5/trace/*/stop", http_ops_trace_stop, HTTP_R_FANOUT_ONE },
	{ "GET", "/api/v5/trace/*/download", http_ops_trace_download, 0 },
	{ "GET", "/api/v5/trace/*/log", http_ops_trace_log, 0 },
	/* issue 12 MQTT bridges (http_bridges.c): every node's view */
	{ "GET", "/api/v5/bridges", http_bridges_list, HTTP_R_FANOUT_LIST },
	/* node-level routes, cluster-wide (http_nodes.c, http_monitor.c) */
	{ "GET", "/api/v5/nodes", http_nodes_list, HTTP_R_NODE },
	{ "GET", "/api/v5/nodes/*", http_nodes_get, HTTP_R_NODE },
	{ "GET", "/api/v5/stats", http_nodes_stats, HTTP_R_NODE },
	{ "GET", "/api/v5/metrics", http_nodes_metrics, HTTP_R_NODE },
	{ "GET", "/api/v5/listeners", http_nodes_listeners, HTTP_R_NODE },
	{ "GET", "/api/v5/monitor", http_monitor_get, HTTP_R_NODE },
	{ "GET", "/api/v5/monitor_current", http_monitor_current, HTTP_R_NODE },
	/* a paged list with HQ_TEST_FANOUT_ITEMS items per node (tests only; 404 without) */
	{ "GET", "/api/v5/_test/items", http_nodes_test_items, HTTP_R_FANOUT_LIST },
	{ "GET", "/api/v5/_test/items/*", http_nodes_test_item, HTTP_R_FANOUT_ONE },
};

/* Does path match the route pattern pat? Literal bytes must be equal; a '*'
 * matches one non-empty segment (up to the next '/' or the end), returned in
 * *arg and *arg_len; a final "**" matches the non-empty rest of the path. One wildcard is all the table needs; a second one would
 * overwrite the first. Segments are matched after MHD decoded %XX, so a
 * node name sent as hamqtt%40host arrives here as hamqtt@host. */
static bool route_match(const char *pat, const char *path, const char **arg, size_t *arg_len)
{
	while (*pat) {
		if (pat[0] == '*' && pat[1] == '*') {
			/* "**" (last in the pattern): the rest of the path, slashes
			 * included, non-empty (a retained topic "a/b/c") */
			size_t n = strlen(path);
			if (!n)
				return false;
			*arg = path;
			*arg_len = n;
			return !pat[2];
		}
		if (*pat == '*') {
			size_t n = strcspn(path, "/");
			if (!n)
				return false;
			*arg = path;
			*arg_len = n;
			path += n;
			pat++;
		} else if (*pat++ != *path++) {
			return false;
		}
	}
	return !*path;
}

void http_api_dispatch(struct http_ctx *ctx, const struct http_req *req,
		       struct http_resp *resp)
{
	bool path_known = false;
	size_t allow_len = 0;
	const char *m = strcmp(req->method, "HEAD") ? req->method : "GET";
	const struct http_route *hit = NULL;
	struct http_req with_arg = *req;

	resp->allow_buf[0] = '\0';
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		const struct http_route *r = &routes[i];
		const char *arg = NULL;
		size_t arg_len = 0;
		if (!route_match(r->path, req->path, &arg, &arg_len))
			continue;
		if (!strcmp(r->method, m)) {
			hit = r;
			with_arg.arg = arg;
			with_arg.arg_len = arg_len;
			break;
		}
		path_known = true;
		int n = snprintf(resp->allow_buf + allow_len, sizeof(resp->allow_buf) - allow_len,
				 "%s%s%s", allow_len ? ", " : "", r->method,
				 strcmp(r->method, "GET") ? "" : ", HEAD");
		if (n > 0 && (size_t)n < sizeof(resp->allow_buf) - allow_len)
			allow_len += (size_t)n;
	}
	/* a peer's request (http_exec.c; only the cluster link sets local):
	 * trusted, run as an administrator, and only on cluster-wide routes */
	static const struct mgmt_principal peer_admin = { .name = "cluster",
							   .role = MGMT_ROLE_ADMIN };
	if (req->local) {
		if (!hit && !path_known) {
			http_resp_error(resp, 404, "NOT_FOUND", "no such path");
			return;
		}
		if (!hit || !(hit->flags & (HTTP_R_FANOUT_LIST | HTTP_R_FANOUT_ONE | HTTP_R_NODE))) {
			http_resp_error(resp, 403, "FORBIDDEN", "not a cluster-wide route");
			return;
		}
		with_arg.who = &peer_admin;
		hit->fn(ctx, &with_arg, resp);
		return;
	}
	/* credentials before anything else, 404 and 405 included: without them
	 * the API tells nothing, not even which paths exist */
	struct mgmt_principal who;
	unsigned flags = hit ? hit->flags : 0;
	if (!(flags & HTTP_R_OPEN)) {
		if (!ctx->users || !ctx->authz) { /* http_server.c logged why at start */
			http_resp_error(resp, 503, "MGMT_UNAVAILABLE", "the management API is "
					"disabled on this node (see its log)");
			return;
		}
		if (http_authz_check(ctx, req, flags, &who, resp) != 0)
			return;
		with_arg.who = &who;
	}
	if (hit && (hit->flags & (HTTP_R_FANOUT_LIST | HTTP_R_FANOUT_ONE))) {
		http_fanout_route(ctx, &with_arg, hit->fn, hit->flags, resp);
	} else if (hit) {
		hit->fn(ctx, &with_arg, resp);
	} else if (path_known) {
		resp->allow = resp->allow_buf;
		http_resp_error(resp, 405, "METHOD_NOT_ALLOWED", "method not allowed for this path");
	} else {
		http_resp_error(resp, 404, "NOT_FOUND", "no such path");
	}
}
