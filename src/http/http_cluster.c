/*
 * http_cluster.c - the cluster administration endpoints of the management API
 * (what `hamqtt-ctl cluster ...` calls):
 *
 *   GET    /api/v5/cluster                    the member list
 *   POST   /api/v5/cluster/join               {"node": "name@host"}
 *   POST   /api/v5/cluster/leave              (no body)
 *   DELETE /api/v5/cluster/{node}/force_leave (EMQX 5's path)
 *
 * Each handler makes one broker_cluster_* call (broker.h), which hands the
 * request to the cluster thread and waits for it: seconds for a join. That
 * is why http_server.c runs one thread per connection, so a slow join never
 * delays a health check. Failures become a JSON error whose message is the
 * broker's one-line reason, with the status chosen by err_status().
 */
#include "http/http_int.h"
#include "broker/broker.h"
#include "core/conf.h"
#include "core/err.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NODE_MAX sizeof(((struct broker_member *)0)->node) /* bytes, with the NUL */
#define REASON_MAX 512

/* Answer a failed broker_cluster_* call: the HTTP status and code follow the
 * HQ_E* contract of broker.h; the message is the broker's reason (or the
 * generic text of rc when it gave none). */
static void err_status(struct http_resp *resp, int rc, const char *reason)
{
	int status = 500;
	const char *code = "INTERNAL_ERROR";
	switch (rc) {
	case HQ_EINVAL:
		status = 400;
		code = "BAD_REQUEST";
		break;
	case HQ_ENOTFOUND:
		status = 404;
		code = "NOT_FOUND";
		break;
	case HQ_EIO: /* the other node failed us, not this one: a gateway-style error */
		status = 502;
		code = "UNREACHABLE";
		break;
	case HQ_EPROTOCOL:
		status = 409;
		code = "CONFLICT";
		break;
	}
	http_resp_error(resp, status, code, reason[0] ? reason : hq_strerror(rc));
}

/* {"node": node, flag: true} (no "node" when NULL) with status 200, or a bare 500 when out of memory. */
static void resp_done(struct http_resp *resp, const char *node, const char *flag)
{
	cJSON *doc = cJSON_CreateObject();
	if (doc && ((node && !cJSON_AddStringToObject(doc, "node", node)) ||
		    !cJSON_AddTrueToObject(doc, flag))) {
		cJSON_Delete(doc);
		doc = NULL;
	}
	http_resp_json(resp, doc ? 200 : 500, doc);
}

/* GET /api/v5/cluster: {"name", "self", "nodes": [{"node", "addr", "status",
 * "self", "incarnation"}, ...]}, this node first (broker order). */
void http_cluster_get(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	struct broker *b = http_broker(ctx, resp);
	if (!b)
		return;
	struct broker_member *mem = NULL; /* owned here, from broker_cluster_members */
	size_t n = 0;
	int rc = broker_cluster_members(b, &mem, &n);
	if (rc != HQ_OK) {
		err_status(resp, rc, "");
		return;
	}
	cJSON *doc = cJSON_CreateObject();
	cJSON *nodes = NULL;
	if (!doc || !cJSON_AddStringToObject(doc, "name", ctx->cfg->cluster_name) ||
	    !cJSON_AddStringToObject(doc, "self", ctx->cfg->node_name) ||
	    !(nodes = cJSON_AddArrayToObject(doc, "nodes")))
		goto fail;
	for (size_t i = 0; i < n; i++) {
		cJSON *o = cJSON_CreateObject();
		if (!o)
			goto fail;
		cJSON_AddItemToArray(nodes, o); /* nodes owns o from here */
		/* incarnation is ms since the epoch: exact in a double until 2^53 ms */
		if (!cJSON_AddStringToObject(o, "node", mem[i].node) ||
		    !cJSON_AddStringToObject(o, "addr", mem[i].addr) ||
		    !cJSON_AddStringToObject(o, "status", mem[i].status ? mem[i].status : "stopped") ||
		    !cJSON_AddBoolToObject(o, "self", mem[i].self) ||
		    !cJSON_AddNumberToObject(o, "incarnation", (double)mem[i].incarnation))
			goto fail;
	}
	free(mem);
	http_resp_json(resp, 200, doc);
	return;
fail:
	free(mem);
	cJSON_Delete(doc);
	http_resp_json(resp, 500, NULL);
}

const char *http_cluster_join_parse(const char *body, size_t len, char *node, size_t nodelen)
{
	/* the whole body must be one JSON value: trailing bytes are an error (the
	 * length includes the NUL that http_req guarantees, where cJSON checks) */
	cJSON *doc = len ? cJSON_ParseWithLengthOpts(body, len + 1, NULL, true) : NULL;
	const char *bad = NULL;
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(doc, "node");
	if (!cJSON_IsObject(doc))
		bad = !len ? "missing request body: expected {\"node\": \"name@host\"}"
		      : doc ? "expected a JSON object {\"node\": \"name@host\"}"
		      : "request body is not valid JSON: expected {\"node\": \"name@host\"}";
	else if (!cJSON_IsString(n) || !n->valuestring[0])
		bad = n ? "\"node\" must be a non-empty string \"name@host\""
			: "missing \"node\": expected {\"node\": \"name@host\"}";
	else if (strlen(n->valuestring) >= nodelen)
		bad = "\"node\" is too long (255 bytes at most)";
	else
		snprintf(node, nodelen, "%s", n->valuestring);
	cJSON_Delete(doc);
	return bad;
}

/* POST /api/v5/cluster/join {"node": "name@host"} -> {"node", "joined": true}.
 * The body is checked first (a JSON object with a non-empty string "node"
 * that fits a member name); whether the name is a valid, reachable node is
 * the broker's to say. */
void http_cluster_join(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	struct broker *b = http_broker(ctx, resp);
	if (!b)
		return;
	char reason[REASON_MAX] = "", node[NODE_MAX];
	const char *bad = http_cluster_join_parse(req->body, req->body_len, node, sizeof(node));
	if (bad) {
		http_resp_error(resp, 400, "BAD_REQUEST", bad);
		return;
	}
	int rc = broker_cluster_join(b, node, reason, sizeof(reason));
	if (rc != HQ_OK)
		err_status(resp, rc, reason);
	else
		resp_done(resp, node, "joined");
}

/* POST /api/v5/cluster/leave -> {"left": true}; a body, if any, is ignored. */
void http_cluster_leave(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	struct broker *b = http_broker(ctx, resp);
	if (!b)
		return;
	char reason[REASON_MAX] = "";
	int rc = broker_cluster_leave(b, reason, sizeof(reason));
	if (rc != HQ_OK)
		err_status(resp, rc, reason);
	else
		resp_done(resp, NULL, "left");
}

/* DELETE /api/v5/cluster/{node}/force_leave -> {"node", "removed": true}.
 * req->arg is the node, already percent-decoded by MHD (so "hamqtt@host" and
 * "hamqtt%40host" name the same node). */
void http_cluster_force_leave(struct http_ctx *ctx, const struct http_req *req,
			      struct http_resp *resp)
{
	struct broker *b = http_broker(ctx, resp);
	if (!b)
		return;
	char node[NODE_MAX];
	char reason[REASON_MAX] = "";
	if (!req->arg || req->arg_len >= sizeof(node)) {
		http_resp_error(resp, 400, "BAD_REQUEST", "node name too long (255 bytes at most)");
		return;
	}
	memcpy(node, req->arg, req->arg_len);
	node[req->arg_len] = '\0';
	int rc = broker_cluster_force_leave(b, node, reason, sizeof(reason));
	if (rc != HQ_OK)
		err_status(resp, rc, reason);
	else
		resp_done(resp, node, "removed");
}
