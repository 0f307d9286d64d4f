/*
 * http_nodes.c - the node-level routes of the REST API, EMQX v5 shaped:
 * /nodes, /nodes/{node}, /stats, /metrics (JSON counters), /listeners, and
 * the tests' paged list /_test/items.
 *
 * Each is an HTTP_R_NODE route: with req->local (asked by a peer, or by this
 * node for itself) the handler answers for this node only; otherwise it asks
 * every member (http_fanout_gather) and combines: a list per node, a sum with
 * ?aggregate=true. Members that did not answer are named in the
 * X-Hamqtt-Unreachable header; /nodes lists them with node_status "stopped".
 * Values come from broker_get_info (broker.h), read with relaxed atomics.
 */
#include "http/http_int.h"
#include "http/http_query.h"
#include "broker/broker.h"
#include "broker/broker_api.h"
#include "core/conf.h"
#include "core/err.h"
#include "core/version.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- this node ---- */

static double mem_total(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
	return pages > 0 && size > 0 ? (double)pages * (double)size : 0;
}

static cJSON *node_info(struct http_ctx *ctx, struct broker *b)
{
	struct broker_info in;
	broker_get_info(b, &in);
	double load[3] = { 0, 0, 0 };
	if (getloadavg(load, 3) < 0)
		load[0] = load[1] = load[2] = 0;
	char exe[PATH_MAX] = "";
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = 0;
	char *slash = strrchr(exe, '/');
	if (slash)
		*slash = 0;
	const struct hq_config *cfg = ctx->cfg;
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "node", cfg->node_name);
	cJSON_AddStringToObject(o, "node_status", in.accepting ? "running" : "stopped");
	cJSON_AddStringToObject(o, "version", HAMQTT_VERSION);
	cJSON_AddNumberToObject(o, "uptime", (double)in.uptime_s * 1000.0);
	cJSON_AddNumberToObject(o, "connections", (double)in.connections);
	cJSON_AddNumberToObject(o, "live_connections", (double)in.connections);
	cJSON_AddNumberToObject(o, "memory_used", (double)in.rss_bytes);
	cJSON_AddNumberToObject(o, "memory_total", mem_total());
	cJSON_AddNumberToObject(o, "load1", load[0]);
	cJSON_AddNumberToObject(o, "load5", load[1]);
	cJSON_AddNumberToObject(o, "load15", load[2]);
	cJSON_AddNumberToObject(o, "max_fds", (double)sysconf(_SC_OPEN_MAX));
	cJSON_AddStringToObject(o, "role", "core");
	cJSON_AddStringToObject(o, "edition", "hamqtt");
	cJSON_AddStringToObject(o, "sys_path", exe);
	cJSON_AddStringToObject(o, "log_path", cfg->log_file && *cfg->log_file ? cfg->log_file
										 : "stderr");
	cJSON_AddNumberToObject(o, "workers", in.workers);
	return o;
}

static cJSON *stopped_node(const char *name)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "node", name);
	cJSON_AddStringToObject(o, "node_status", "stopped");
	return o;
}

static cJSON *node_stats(struct http_ctx *ctx, struct broker *b)
{
	struct broker_info in;
	broker_get_info(b, &in);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "node", ctx->cfg->node_name);
	cJSON_AddNumberToObject(o, "connections.count", (double)in.connections);
	cJSON_AddNumberToObject(o, "live_connections.count", (double)in.connections);
	cJSON_AddNumberToObject(o, "sessions.count", (double)in.sessions);
	cJSON_AddNumberToObject(o, "subscriptions.count", (double)in.subscriptions);
	/* the node's routes, exact with clustering off too (one call on a worker) */
	char **tv = NULL;
	size_t tn = 0, topics = (size_t)(in.topics > 0 ? in.topics : 0);
	if (broker_topics_list(b, NULL, 0, 0, &tv, &tn, &topics) == HQ_OK)
		broker_strings_free(tv, tn);
	cJSON_AddNumberToObject(o, "topics.count", (double)topics);
	cJSON_AddNumberToObject(o, "retained.count", (double)in.retained);
	cJSON_AddNumberToObject(o, "cluster.running", (double)in.cluster_running);
	cJSON_AddNumberToObject(o, "queued_bytes.count", (double)(in.queued_bytes > 0 ? in.queued_bytes : 0));
	/* the peaks of this run, as the sampler saw them (http_monitor.c) */
	int64_t pc = in.connections, ps = in.sessions;
	http_monitor_peaks(ctx->monitor, &pc, &ps);
	cJSON_AddNumberToObject(o, "connections.max", (double)pc);
	cJSON_AddNumberToObject(o, "live_connections.max", (double)pc);
	cJSON_AddNumberToObject(o, "sessions.max", (double)ps);
	return o;
}

static cJSON *node_metrics(struct http_ctx *ctx, struct broker *b)
{
	struct broker_info in;
	broker_get_info(b, &in);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "node", ctx->cfg->node_name);
	cJSON_AddNumberToObject(o, "messages.received", (double)in.msgs_in);
	cJSON_AddNumberToObject(o, "messages.sent", (double)in.msgs_out);
	cJSON_AddNumberToObject(o, "messages.dropped", (double)in.msgs_dropped);
	for (int r = 0; r < BRK_DROP_N; r++) {
		char k[64];
		snprintf(k, sizeof(k), "messages.dropped.%s", broker_drop_reason_name(r));
		cJSON_AddNumberToObject(o, k, (double)in.dropped_by[r]);
	}
	cJSON_AddNumberToObject(o, "messages.forward", (double)in.forwards_out);
	cJSON_AddNumberToObject(o, "messages.forward_in", (double)in.forwards_in);
	cJSON_AddNumberToObject(o, "messages.forward_lost", (double)in.forwards_lost);
	cJSON_AddNumberToObject(o, "bytes.received", (double)in.bytes_in);
	cJSON_AddNumberToObject(o, "bytes.sent", (double)in.bytes_out);
	cJSON_AddNumberToObject(o, "client.connected", (double)in.connects_total);
	cJSON_AddNumberToObject(o, "client.authenticate", (double)(in.auth_ok + in.auth_refused));
	cJSON_AddNumberToObject(o, "client.auth.success", (double)in.auth_ok);
	cJSON_AddNumberToObject(o, "client.auth.failure", (double)in.auth_refused);
	cJSON_AddNumberToObject(o, "authorization.allow", (double)in.acl_allow);
	cJSON_AddNumberToObject(o, "authorization.deny", (double)in.acl_deny);
	for (int e = 0; e < BRK_OVL_N; e++) {
		char k[64];
		snprintf(k, sizeof(k), "overload.%s", broker_overload_event_name(e));
		cJSON_AddNumberToObject(o, k, (double)in.overload[e]);
	}
	return o;
}

static cJSON *node_listeners(struct http_ctx *ctx, struct broker *b)
{
	struct broker_info in;
	broker_get_info(b, &in);
	const struct hq_config *cfg = ctx->cfg;
	cJSON *a = cJSON_CreateArray();
	for (int i = 0; i < cfg->n_listeners; i++) {
		const struct conf_listener *L = &cfg->listeners[i];
		const char *type = conf_listener_type_name(L->type);
		char id[300];
		snprintf(id, sizeof(id), "%s:%s", type, L->name);
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "id", id);
		cJSON_AddStringToObject(o, "type", type);
		cJSON_AddStringToObject(o, "name", L->name);
		cJSON_AddStringToObject(o, "bind", L->bind);
		cJSON_AddBoolToObject(o, "enable", L->enabled);
		cJSON_AddBoolToObject(o, "running", L->enabled && in.accepting);
		/* counted per listener type: with two listeners of one type
		 * each shows the type's connections */
		cJSON_AddNumberToObject(o, "current_connections",
					(double)in.connections_by_type[L->type]);
		cJSON_AddNumberToObject(o, "max_connections", L->max_connections ?
					(double)L->max_connections : 0);
		cJSON_AddStringToObject(o, "node", cfg->node_name);
		cJSON_AddItemToArray(a, o);
	}
	return a;
}

/* ---- combining the members' answers ---- */

static bool want_aggregate(const struct http_req *req)
{
	const char *v = http_arg(req, "aggregate");
	return v && !strcmp(v, "true");
}

/* The members' answers to req (each its own node's), parsed; NULL + resp
 * filled on error. *v / *n are the raw answers (http_fanout_free). */
static cJSON *gather(struct http_ctx *ctx, const struct http_req *req, http_handler fn,
		     const char *only, struct http_member_ans **v, size_t *n,
		     struct http_resp *resp)
{
	char *q = http_query_encode(req->query, "_");
	int rc = http_fanout_gather(ctx, req, fn, only, q ? q : "", v, n, resp);
	free(q);
	if (rc != HQ_OK)
		return NULL;
	cJSON *all = cJSON_CreateArray();
	for (size_t i = 0; i < *n; i++) {
		cJSON *doc = (*v)[i].status == 200 ? cJSON_ParseWithLength((*v)[i].body, (*v)[i].len)
						   : NULL;
		if (!doc) {
			if ((*v)[i].status == 200)
				(*v)[i].status = 502;
			doc = cJSON_CreateNull();
		}
		cJSON_AddItemToArray(all, doc);
	}
	cJSON_Delete(http_fanout_unreachable(*v, *n, resp));
	return all;
}

/* Sum the numbers of every object of arr (the "node" string left out). */
static cJSON *sum_objects(cJSON *arr)
{
	cJSON *out = cJSON_CreateObject(), *o, *f;
	cJSON_ArrayForEach(o, arr) {
		if (!cJSON_IsObject(o))
			continue;
		cJSON_ArrayForEach(f, o) {
			if (!cJSON_IsNumber(f))
				continue;
			cJSON *have = cJSON_GetObjectItemCaseSensitive(out, f->string);
			if (have)
				cJSON_SetNumberValue(have, have->valuedouble + f->valuedouble);
			else
				cJSON_AddNumberToObject(out, f->string, f->valuedouble);
		}
	}
	return out;
}

/* A per-node object route: local -> this node's object; else a list of
 * every answering member's, or their sum with ?aggregate=true. */
static void per_node(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp,
		     http_handler self, cJSON *(*make)(struct http_ctx *, struct broker *))
{
	struct broker *b = http_broker(ctx, resp);
	if (!b)
		return;
	if (req->local) {
		http_resp_json(resp, 200, make(ctx, b));
		return;
	}
	struct http_member_ans *v = NULL;
	size_t n = 0;
	cJSON *all = gather(ctx, req, self, NULL, &v, &n, resp);
	http_fanout_free(v, n);
	if (!all)
		return;
	cJSON *out = cJSON_CreateArray(), *o;
	cJSON_ArrayForEach(o, all)
		if (cJSON_IsObject(o))
			cJSON_AddItemToArray(out, cJSON_Duplicate(o, true));
	cJSON_Delete(all);
	if (want_aggregate(req)) {
		cJSON *sum = sum_objects(out);
		cJSON_Delete(out);
		out = sum;
	}
	http_resp_json(resp, 200, out);
}

void http_nodes_stats(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	per_node(ctx, req, resp, http_nodes_stats, node_stats);
}

void http_nodes_metrics(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	per_node(ctx, req, resp, http_nodes_metrics, node_metrics);
}

void http_nodes_list(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	struct broker *b = http_broker(ctx, resp);
	if (!b)
		return;
	if (req->local) {
		http_resp_json(resp, 200, node_info(ctx, b));
		return;
	}
	struct http_member_ans *v = NULL;
	size_t n = 0;
	cJSON *all = gather(ctx, req, http_nodes_list, NULL, &v, &n, resp);
	if (!all)
		return;
	cJSON *out = cJSON_CreateArray();
	for (size_t i = 0; i < n; i++) {
		cJSON *o = cJSON_GetArrayItem(all, (int)i);
		cJSON_AddItemToArray(out, cJSON_IsObject(o) ? cJSON_Duplicate(o, true)
							    : stopped_node(v[i].node));
	}
	http_fanout_free(v, n);
	cJSON_Delete(all);
	http_resp_json(resp, 200, out);
}

void http_nodes_get(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	struct broker *b = http_broker(ctx, resp);
	if (!b)
		return;
	char name[256];
	if (req->arg_len >= sizeof(name)) {
		http_resp_error(resp, 404, "NOT_FOUND", "no such node");
		return;
	}
	memcpy(name, req->arg, req->arg_len);
	name[req->arg_len] = 0;
	if (!strcmp(name, ctx->cfg->node_name)) {
		http_resp_json(resp, 200, node_info(ctx, b));
		return;
	}
	if (req->local) {
		http_resp_error(resp, 404, "NOT_FOUND", "no such node");
		return;
	}
	struct http_member_ans *v = NULL;
	size_t n = 0;
	cJSON *all = gather(ctx, req, http_nodes_get, name, &v, &n, resp);
	if (!all)
		return;
	cJSON *o = cJSON_GetArrayItem(all, 0);
	if (!n)
		http_resp_error(resp, 404, "NOT_FOUND", "no such node");
	else if (cJSON_IsObject(o))
		http_resp_json(resp, 200, cJSON_Duplicate(o, true));
	else
		http_resp_json(resp, 200, stopped_node(name));
	http_fanout_free(v, n);
	cJSON_Delete(all);
}

/* EMQX lists each listener once, its state per node in node_status. */
void http_nodes_listeners(struct http_ctx *ctx, const struct http_req *req,
			  struct http_resp *resp)
{
	struct broker *b = http_broker(ctx, resp);
	if (!b)
		return;
	if (req->local) {
		http_resp_json(resp, 200, node_listeners(ctx, b));
		return;
	}
	struct http_member_ans *v = NULL;
	size_t n = 0;
	cJSON *all = gather(ctx, req, http_nodes_listeners, NULL, &v, &n, resp);
	http_fanout_free(v, n);
	if (!all)
		return;
	cJSON *out = cJSON_CreateArray(), *node, *l;
	cJSON_ArrayForEach(node, all) {
		cJSON_ArrayForEach(l, node) {
			const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(l, "id"));
			if (!id)
				continue;
			cJSON *have = NULL, *it;
			cJSON_ArrayForEach(it, out)
				if (!strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "id")), id))
					have = it;
			if (!have) {
				have = cJSON_Duplicate(l, true);
				cJSON_DeleteItemFromObjectCaseSensitive(have, "node");
				cJSON_SetNumberValue(cJSON_GetObjectItemCaseSensitive(have, "current_connections"), 0);
				cJSON_AddArrayToObject(have, "node_status");
				cJSON_AddItemToArray(out, have);
			}
			cJSON *cur = cJSON_GetObjectItemCaseSensitive(have, "current_connections");
			cJSON *lc = cJSON_GetObjectItemCaseSensitive(l, "current_connections");
			if (cJSON_IsNumber(cur) && cJSON_IsNumber(lc))
				cJSON_SetNumberValue(cur, cur->valuedouble + lc->valuedouble);
			cJSON *st = cJSON_CreateObject();
			cJSON_AddItemToObject(st, "node", cJSON_Duplicate(
				cJSON_GetObjectItemCaseSensitive(l, "node"), true));
			cJSON *s = cJSON_AddObjectToObject(st, "status");
			cJSON_AddItemToObject(s, "running", cJSON_Duplicate(
				cJSON_GetObjectItemCaseSensitive(l, "running"), true));
			cJSON_AddItemToObject(s, "current_connections", cJSON_Duplicate(lc, true));
			cJSON_AddItemToObject(s, "max_connections", cJSON_Duplicate(
				cJSON_GetObjectItemCaseSensitive(l, "max_connections"), true));
			cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(have, "node_status"), st);
		}
	}
	cJSON_Delete(all);
	http_resp_json(resp, 200, out);
}

/* GET /api/v5/_test/items: HQ_TEST_FANOUT_ITEMS items {"node", "i"} on
 * this node (a paged HTTP_R_FANOUT_LIST for the tests of the fan-out);
 * 404 when the variable is not set, as in production. */
void http_nodes_test_items(struct http_ctx *ctx, const struct http_req *req,
			   struct http_resp *resp)
{
	const char *env = getenv("HQ_TEST_FANOUT_ITEMS");
	long count = env ? strtol(env, NULL, 10) : -1;
	if (count < 0 || count > 100000) {
		http_resp_error(resp, 404, "NOT_FOUND", "no such path");
		return;
	}
	struct http_page pg;
	if (http_page_get(req, 1000, &pg, resp) != HQ_OK)
		return;
	cJSON *data = cJSON_CreateArray();
	for (size_t i = pg.offset; i < (size_t)count && i < pg.offset + (size_t)pg.limit; i++) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "node", ctx->cfg->node_name);
		cJSON_AddNumberToObject(o, "i", (double)i);
		cJSON_AddItemToArray(data, o);
	}
	http_resp_page(resp, &pg, data, (size_t)count);
}

/* GET /api/v5/_test/items/{node},{i}: that item, from the node holding it
 * (an HTTP_R_FANOUT_ONE route for the tests); 404 on every other node. */
void http_nodes_test_item(struct http_ctx *ctx, const struct http_req *req,
			  struct http_resp *resp)
{
	const char *env = getenv("HQ_TEST_FANOUT_ITEMS");
	long count = env ? strtol(env, NULL, 10) : -1;
	const char *me = ctx->cfg->node_name;
	size_t ml = strlen(me);
	if (count < 0) {
		http_resp_error(resp, 404, "NOT_FOUND", "no such path");
		return;
	}
	char num[24];
	if (req->arg_len <= ml + 1 || req->arg_len - ml - 1 >= sizeof(num) ||
	    memcmp(req->arg, me, ml) || req->arg[ml] != ',') {
		http_resp_error(resp, 404, "NOT_FOUND", "no such item here");
		return;
	}
	memcpy(num, req->arg + ml + 1, req->arg_len - ml - 1);
	num[req->arg_len - ml - 1] = 0;
	char *end;
	long i = strtol(num, &end, 10);
	if (*end || i < 0) {
		http_resp_error(resp, 400, "BAD_REQUEST", "expected {node},{number}");
		return;
	}
	if (i >= count) {
		http_resp_error(resp, 404, "NOT_FOUND", "no such item here");
		return;
	}
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "node", me);
	cJSON_AddNumberToObject(o, "i", (double)i);
	http_resp_json(resp, 200, o);
}
