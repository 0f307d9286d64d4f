/*
 * http_bridges.c - the MQTT bridges (src/bridge/, issue 12) in the API:
 *   GET /api/v5/bridges   every node's view (HTTP_R_FANOUT_LIST): one item
 *                         per bridge and node, "status" connected |
 *                         connecting | disconnected | standby, "node" the
 *                         node answering, "running_on" the member that runs
 *                         it (the lowest running one), counters
 * and their lines of GET /metrics (http_bridge_metrics).
 */
#include "bridge/bridge.h"
#include "core/conf.h"
#include "core/err.h"
#include "core/mem.h"
#include "http/http_int.h"
#include "http/http_metrics.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdlib.h>

static cJSON *bridge_json(const struct bridge_status *s, const char *node)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *m = cJSON_CreateObject();
	if (!o || !m || !cJSON_AddStringToObject(o, "name", s->name) ||
	    !cJSON_AddStringToObject(o, "type", "mqtt") ||
	    !cJSON_AddStringToObject(o, "server", s->server) ||
	    !cJSON_AddStringToObject(o, "status", s->status) ||
	    !cJSON_AddStringToObject(o, "node", node) ||
	    !cJSON_AddStringToObject(o, "running_on", s->node) ||
	    !cJSON_AddStringToObject(o, "last_error", s->last_error) ||
	    !cJSON_AddNumberToObject(o, "down_since", (double)s->down_since_ms) ||
	    !cJSON_AddNumberToObject(m, "forwarded", (double)s->fwd_ok) ||
	    !cJSON_AddNumberToObject(m, "forward_failed", (double)s->fwd_failed) ||
	    !cJSON_AddNumberToObject(m, "received", (double)s->recv_ok) ||
	    !cJSON_AddNumberToObject(m, "receive_failed", (double)s->recv_failed) ||
	    !cJSON_AddNumberToObject(m, "looped", (double)s->recv_looped) ||
	    !cJSON_AddNumberToObject(m, "buffered", (double)s->buffered) ||
	    !cJSON_AddNumberToObject(m, "dropped", (double)s->dropped) ||
	    !cJSON_AddItemToObject(o, "metrics", m)) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

void http_bridges_list(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	struct http_page pg;
	if (http_page_get(req, 1000, &pg, resp) != HQ_OK)
		return;
	struct bridge_status *v;
	size_t n;
	bridges_status(&v, &n);
	cJSON *data = cJSON_CreateArray();
	for (size_t i = pg.offset; data && i < n && i < pg.offset + (size_t)pg.limit; i++) {
		cJSON *o = bridge_json(&v[i], ctx->cfg->node_name);
		if (!o || !cJSON_AddItemToArray(data, o)) {
			cJSON_Delete(o);
			cJSON_Delete(data);
			data = NULL;
		}
	}
	free(v);
	if (!data) {
		http_resp_json(resp, 500, NULL);
		return;
	}
	http_resp_page(resp, &pg, data, n);
}

void http_bridge_metrics(struct buf *b, const char *node)
{
	struct bridge_status *v;
	size_t n;
	bridges_status(&v, &n);
	if (!n)
		return;
	http_metrics_put(b, "# HELP hamqtt_bridge_up 1 while the bridge is connected to its remote "
			 "broker (on the member that runs it).\n# TYPE hamqtt_bridge_up gauge\n");
	for (size_t i = 0; i < n; i++)
		http_metrics_put(b, "hamqtt_bridge_up{node=\"%s\",bridge=\"%s\"} %d\n", node, v[i].name,
				 v[i].up ? 1 : 0);
	http_metrics_put(b, "# HELP hamqtt_bridge_messages_total Messages a bridge carried: forward "
			 "(local to remote) and receive (remote to local); result ok (acknowledged by "
			 "the other side), failed (refused by it or unmappable), looped (our own "
			 "message back from the remote, dropped), dropped (the local buffer's bound "
			 "max_buffered).\n# TYPE hamqtt_bridge_messages_total counter\n");
	for (size_t i = 0; i < n; i++) {
		const struct bridge_status *s = &v[i];
		const char *f = "hamqtt_bridge_messages_total{node=\"%s\",bridge=\"%s\",direction=\"%s\","
				"result=\"%s\"} %" PRIu64 "\n";
		http_metrics_put(b, f, node, s->name, "forward", "ok", s->fwd_ok);
		http_metrics_put(b, f, node, s->name, "forward", "failed", s->fwd_failed);
		http_metrics_put(b, f, node, s->name, "forward", "dropped", s->dropped);
		http_metrics_put(b, f, node, s->name, "receive", "ok", s->recv_ok);
		http_metrics_put(b, f, node, s->name, "receive", "failed", s->recv_failed);
		http_metrics_put(b, f, node, s->name, "receive", "looped", s->recv_looped);
	}
	http_metrics_put(b, "# HELP hamqtt_bridge_buffered Messages waiting in the bridge's local "
			 "session for the remote broker.\n# TYPE hamqtt_bridge_buffered gauge\n");
	for (size_t i = 0; i < n; i++)
		http_metrics_put(b, "hamqtt_bridge_buffered{node=\"%s\",bridge=\"%s\"} %" PRIu64 "\n",
				 node, v[i].name, v[i].buffered);
	free(v);
}
