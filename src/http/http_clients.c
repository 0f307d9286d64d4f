/*
 * http_clients.c - EMQX's /api/v5/clients, /clients/{id}/subscriptions,
 * /subscriptions and /topics, for this node (the routes are flagged
 * HTTP_R_FANOUT_*: the dispatcher makes them cluster-wide). The broker is
 * read through broker_api.h only; what a worker owns is read by the worker.
 */
#include "broker/broker_api.h"
#include "broker/broker.h"
#include "core/conf.h"
#include "core/err.h"
#include "http/http_int.h"
#include "http/http_qapi.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LIST_MAX_LIMIT 10000 /* EMQX's largest page */

void http_qapi_time(char *out, size_t cap, int64_t ms)
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&s, &tm);
	size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, cap - n, ".%03d+00:00", (int)(ms % 1000));
}

bool http_qapi_add_time(cJSON *o, const char *name, int64_t ms)
{
	if (!ms)
		return cJSON_AddNullToObject(o, name) != NULL;
	char t[48];
	http_qapi_time(t, sizeof(t), ms);
	return cJSON_AddStringToObject(o, name, t) != NULL;
}

void http_qapi_error(struct http_resp *resp, int rc, const char *what)
{
	switch (rc) {
	case HQ_ENOTFOUND:
		http_resp_error(resp, 404, "NOT_FOUND", what);
		break;
	case HQ_ECLOSED:
		http_resp_error(resp, 503, "SERVICE_UNAVAILABLE", "the node is stopping");
		break;
	case HQ_EIO:
		http_resp_error(resp, 503, "SERVICE_UNAVAILABLE", "a worker did not answer in time");
		break;
	case HQ_EINVAL:
	case HQ_ETOPIC:
		http_resp_error(resp, 400, "BAD_REQUEST", what);
		break;
	default:
		http_resp_error(resp, 500, "INTERNAL_ERROR", "internal error");
		break;
	}
}

char *http_qapi_arg_dup(const struct http_req *req)
{
	char *s = malloc(req->arg_len + 1);
	if (s) {
		memcpy(s, req->arg, req->arg_len);
		s[req->arg_len] = '\0';
	}
	return s;
}

static cJSON *client_json(const struct broker_client *c, const char *node)
{
	cJSON *o = cJSON_CreateObject();
	bool ok = o && cJSON_AddStringToObject(o, "clientid", c->clientid) &&
		  (c->username ? cJSON_AddStringToObject(o, "username", c->username)
			       : cJSON_AddNullToObject(o, "username")) &&
		  (c->connected ? cJSON_AddStringToObject(o, "ip_address", c->ip)
				: cJSON_AddNullToObject(o, "ip_address")) &&
		  cJSON_AddNumberToObject(o, "port", c->port) &&
		  cJSON_AddStringToObject(o, "proto_name", c->proto_ver == 3 ? "MQIsdp" : "MQTT") &&
		  cJSON_AddNumberToObject(o, "proto_ver", c->proto_ver) &&
		  cJSON_AddNumberToObject(o, "keepalive", c->keepalive) &&
		  cJSON_AddBoolToObject(o, "clean_start", c->clean_start) &&
		  cJSON_AddNumberToObject(o, "expiry_interval", (double)c->expiry_interval) &&
		  cJSON_AddBoolToObject(o, "connected", c->connected) &&
		  cJSON_AddStringToObject(o, "conn_state", c->connected ? "connected" : "disconnected") &&
		  http_qapi_add_time(o, "connected_at", c->connected_at) &&
		  http_qapi_add_time(o, "disconnected_at", c->disconnected_at) &&
		  http_qapi_add_time(o, "created_at", c->created_at) &&
		  cJSON_AddNumberToObject(o, "subscriptions_cnt", c->subscriptions_cnt) &&
		  cJSON_AddNumberToObject(o, "mqueue_len", c->mqueue_len) &&
		  cJSON_AddNumberToObject(o, "mqueue_dropped", (double)c->mqueue_dropped) &&
		  cJSON_AddNumberToObject(o, "inflight_cnt", c->inflight_cnt) &&
		  cJSON_AddNumberToObject(o, "inflight_max", c->inflight_max) &&
		  cJSON_AddStringToObject(o, "node", node) &&
		  (c->connected ? cJSON_AddStringToObject(o, "listener", c->listener)
				: cJSON_AddNullToObject(o, "listener")) &&
		  cJSON_AddBoolToObject(o, "is_bridge", false);
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* The filters of GET /clients; false: a 400 is in resp. */
static bool client_filter(const struct http_req *req, struct broker_client_filter *f,
			  struct http_resp *resp)
{
	memset(f, 0, sizeof(*f));
	f->clientid = http_arg(req, "clientid");
	f->username = http_arg(req, "username");
	f->ip_address = http_arg(req, "ip_address");
	f->like_clientid = http_arg(req, "like_clientid");
	f->like_username = http_arg(req, "like_username");
	f->conn_state = -1;
	f->proto_ver = -1;
	const char *cs = http_arg(req, "conn_state"), *pv = http_arg(req, "proto_ver");
	if (cs && !strcmp(cs, "connected"))
		f->conn_state = 1;
	else if (cs && !strcmp(cs, "disconnected"))
		f->conn_state = 0;
	else if (cs)
		goto bad;
	if (pv && (!strcmp(pv, "3") || !strcmp(pv, "4") || !strcmp(pv, "5")))
		f->proto_ver = pv[0] - '0';
	else if (pv)
		goto bad;
	return true;
bad:
	http_resp_error(resp, 400, "BAD_REQUEST",
			"conn_state is connected|disconnected, proto_ver is 3|4|5");
	return false;
}

/* ?node= names another node: this node has nothing to add. */
static bool other_node(struct http_ctx *ctx, const struct http_req *req)
{
	const char *node = http_arg(req, "node");
	return node && strcmp(node, ctx->cfg->node_name);
}

void http_clients_list(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	struct http_page pg;
	struct broker_client_filter f;
	struct broker *b = http_broker(ctx, resp);
	if (!b || http_page_get(req, LIST_MAX_LIMIT, &pg, resp) != HQ_OK ||
	    !client_filter(req, &f, resp))
		return;
	struct broker_client *v = NULL;
	size_t n = 0, total = 0;
	if (!other_node(ctx, req)) {
		int rc = broker_clients_list(b, &f, pg.offset, (size_t)pg.limit, &v, &n, &total);
		if (rc != HQ_OK) {
			http_qapi_error(resp, rc, "");
			return;
		}
	}
	cJSON *data = cJSON_CreateArray();
	for (size_t i = 0; data && i < n; i++) {
		cJSON *o = client_json(&v[i], ctx->cfg->node_name);
		if (!o) {
			cJSON_Delete(data);
			data = NULL;
			break;
		}
		cJSON_AddItemToArray(data, o);
	}
	broker_clients_free(v, n);
	http_resp_page(resp, &pg, data, total);
}

void http_client_get(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	struct broker *b = http_broker(ctx, resp);
	char *id = b ? http_qapi_arg_dup(req) : NULL;
	if (!id) {
		if (b)
			http_resp_json(resp, 500, NULL);
		return;
	}
	struct broker_client c;
	int rc = broker_client_get(b, id, &c);
	free(id);
	if (rc != HQ_OK) {
		http_qapi_error(resp, rc, "Client ID not found");
		return;
	}
	cJSON *o = client_json(&c, ctx->cfg->node_name);
	free(c.clientid); /* c's strings; c itself is on the stack */
	free(c.username);
	http_resp_json(resp, o ? 200 : 500, o);
}

void http_client_kick(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	struct broker *b = http_broker(ctx, resp);
	char *id = b ? http_qapi_arg_dup(req) : NULL;
	if (!id) {
		if (b)
			http_resp_json(resp, 500, NULL);
		return;
	}
	int rc = broker_client_kick(b, id);
	free(id);
	if (rc != HQ_OK) {
		http_qapi_error(resp, rc, "Client ID not found");
		return;
	}
	resp->status = 204;
}

static cJSON *sub_json(const struct broker_sub *s, const char *node)
{
	cJSON *o = cJSON_CreateObject();
	if (!o || !cJSON_AddStringToObject(o, "topic", s->topic) ||
	    !cJSON_AddNumberToObject(o, "qos", s->qos) || !cJSON_AddNumberToObject(o, "nl", s->nl) ||
	    !cJSON_AddNumberToObject(o, "rap", s->rap) || !cJSON_AddNumberToObject(o, "rh", s->rh) ||
	    !cJSON_AddStringToObject(o, "node", node) ||
	    !cJSON_AddStringToObject(o, "clientid", s->clientid)) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

static cJSON *subs_array(const struct broker_sub *v, size_t n, const char *node)
{
	cJSON *data = cJSON_CreateArray();
	for (size_t i = 0; data && i < n; i++) {
		cJSON *o = sub_json(&v[i], node);
		if (!o) {
			cJSON_Delete(data);
			return NULL;
		}
		cJSON_AddItemToArray(data, o);
	}
	return data;
}

/* EMQX answers a plain array here, not a page */
void http_client_subs(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	struct broker *b = http_broker(ctx, resp);
	char *id = b ? http_qapi_arg_dup(req) : NULL;
	if (!id) {
		if (b)
			http_resp_json(resp, 500, NULL);
		return;
	}
	struct broker_sub *v = NULL;
	size_t n = 0;
	int rc = broker_client_subs(b, id, &v, &n);
	free(id);
	if (rc != HQ_OK) {
		http_qapi_error(resp, rc, "Client ID not found");
		return;
	}
	cJSON *data = subs_array(v, n, ctx->cfg->node_name);
	broker_subs_free(v, n);
	http_resp_json(resp, data ? 200 : 500, data);
}

void http_subs_list(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	struct http_page pg;
	struct broker *b = http_broker(ctx, resp);
	if (!b || http_page_get(req, LIST_MAX_LIMIT, &pg, resp) != HQ_OK)
		return;
	struct broker_sub_filter f = { .clientid = http_arg(req, "clientid"),
				       .topic = http_arg(req, "topic"),
				       .share_group = http_arg(req, "share_group"),
				       .match_topic = http_arg(req, "match_topic"),
				       .qos = -1 };
	const char *q = http_arg(req, "qos");
	if (q && (strlen(q) != 1 || q[0] < '0' || q[0] > '2')) {
		http_resp_error(resp, 400, "BAD_REQUEST", "qos is 0, 1 or 2");
		return;
	}
	if (q)
		f.qos = q[0] - '0';
	if (f.match_topic && !*f.match_topic) {
		http_resp_error(resp, 400, "BAD_REQUEST", "match_topic is a topic name");
		return;
	}
	struct broker_sub *v = NULL;
	size_t n = 0, total = 0;
	if (!other_node(ctx, req)) {
		int rc = broker_subs_list(b, &f, pg.offset, (size_t)pg.limit, &v, &n, &total);
		if (rc != HQ_OK) {
			http_qapi_error(resp, rc, "");
			return;
		}
	}
	cJSON *data = subs_array(v, n, ctx->cfg->node_name);
	broker_subs_free(v, n);
	http_resp_page(resp, &pg, data, total);
}

void http_topics_list(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	struct http_page pg;
	struct broker *b = http_broker(ctx, resp);
	if (!b || http_page_get(req, LIST_MAX_LIMIT, &pg, resp) != HQ_OK)
		return;
	char **v = NULL;
	size_t n = 0, total = 0;
	int rc = broker_topics_list(b, http_arg(req, "topic"), pg.offset, (size_t)pg.limit, &v, &n,
				    &total);
	if (rc != HQ_OK) {
		http_qapi_error(resp, rc, "");
		return;
	}
	cJSON *data = cJSON_CreateArray();
	for (size_t i = 0; data && i < n; i++) {
		cJSON *o = cJSON_CreateObject();
		if (!o || !cJSON_AddStringToObject(o, "topic", v[i]) ||
		    !cJSON_AddStringToObject(o, "node", ctx->cfg->node_name)) {
			cJSON_Delete(o);
			cJSON_Delete(data);
			data = NULL;
			break;
		}
		cJSON_AddItemToArray(data, o);
	}
	broker_strings_free(v, n);
	http_resp_page(resp, &pg, data, total);
}
