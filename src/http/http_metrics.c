/*
 * http_metrics.c - GET /metrics: the node's counters in the Prometheus text
 * exposition format (version 0.0.4), so the monitoring step of the usual HA
 * guide (Prometheus scraping port 18083) works as is. Reads the broker only
 * through broker_get_info().
 */
#include "http/http_metrics.h"
#include "http/http_guard.h"
#include "http/http_throttle.h"
#include "http/http_int.h"
#include "archive/archive.h"
#include "auth/auth.h"
#include "broker/broker.h"
#include "core/buf.h"
#include "core/conf.h"
#include "core/err.h"
#include "core/mem.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#define put http_metrics_put
#define label_escape http_metrics_escape

void http_metrics_put(struct buf *b, const char *fmt, ...)
{
	char line[768];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n > 0)
		buf_append(b, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

void http_metrics_escape(const char *in, char *out, size_t outlen)
{
	size_t o = 0;
	for (; *in && o + 3 < outlen; in++) {
		if (*in == '\\' || *in == '"') {
			out[o++] = '\\';
			out[o++] = *in;
		} else if (*in == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else {
			out[o++] = *in;
		}
	}
	out[o] = '\0';
}

static void metric(struct buf *b, const char *name, const char *type, const char *help,
		   const char *node, uint64_t value)
{
	put(b, "# HELP %s %s\n# TYPE %s %s\n%s{node=\"%s\"} %" PRIu64 "\n", name, help, name,
	    type, name, node, value);
}

/*
 * accept() failures for lack of resources (net/accept_guard.h), one family
 * per counter with a sample per listener kind (and reason): HELP and TYPE
 * once per family, as the text format requires.
 */
static void accept_metrics(struct buf *b, const char *node, const struct broker_info *in)
{
	static const char *const kinds[2] = { "mqtt", "cluster" };
	const struct accept_counts *c[2] = { &in->accept_mqtt, &in->accept_cluster };
	put(b, "# HELP hamqtt_listener_accept_errors_total Failed accept() calls that paused a "
	       "listener (reason: emfile = process out of file descriptors, enfile = system out "
	       "of file descriptors, enobufs/enomem = kernel out of memory, other).\n"
	       "# TYPE hamqtt_listener_accept_errors_total counter\n");
	for (int k = 0; k < 2; k++)
		for (int r = 0; r < ACCEPT_ERR_N; r++)
			put(b, "hamqtt_listener_accept_errors_total{node=\"%s\",listener=\"%s\","
			       "reason=\"%s\"} %" PRIu64 "\n", node, kinds[k], accept_err_name(r),
			    c[k]->errors[r]);
	put(b, "# HELP hamqtt_listener_connections_refused_total Connections closed right after "
	       "accept because the process was out of file descriptors.\n"
	       "# TYPE hamqtt_listener_connections_refused_total counter\n");
	for (int k = 0; k < 2; k++)
		put(b, "hamqtt_listener_connections_refused_total{node=\"%s\",listener=\"%s\"} "
		       "%" PRIu64 "\n", node, kinds[k], c[k]->refused);
}

/* The session store (broker_store_info): up, and the store thread's counters. */
static void store_metrics(struct buf *b, const char *node, struct broker *br)
{
	struct broker_store_info si;
	char backend[64];
	broker_store_info(br, &si);
	label_escape(si.backend, backend, sizeof(backend));
	put(b, "# HELP hamqtt_store_up 1 while writes to the session store succeed (always 1 when "
	       "session.store = memory); 0 while it is down: nothing that needs it is acknowledged.\n"
	       "# TYPE hamqtt_store_up gauge\n"
	       "hamqtt_store_up{node=\"%s\",backend=\"%s\"} %d\n", node, backend, si.healthy ? 1 : 0);
	metric(b, "hamqtt_store_batches_total", "counter",
	       "Batches of state changes the store thread completed (failed ones included).", node,
	       si.batches);
	metric(b, "hamqtt_store_retries_total", "counter",
	       "Store writes retried after a transient failure (backend down, connection lost, disk full).",
	       node, si.retries);
	metric(b, "hamqtt_store_failed_batches_total", "counter",
	       "Batches the store could not apply: nothing depending on them was acknowledged.", node,
	       si.failed);
}

/* The node's alarms (broker_alarm_list): the fixed ones always (0 or 1), a
 * node_down:<node> one while it is active, so an alert rule can say
 * hamqtt_alarm_active == 1. */
static void alarm_metrics(struct buf *b, const char *node, struct broker *br)
{
	static const char *const fixed[] = { "store_down", "memory_high", "queue_drops" };
	struct broker_alarm *v = NULL;
	size_t n = 0;
	if (broker_alarm_list(br, 1, &v, &n) != HQ_OK)
		return;
	put(b, "# HELP hamqtt_alarm_active 1 while the named alarm is active (GET /api/v5/alarms): "
	       "store_down, memory_high, queue_drops, node_down:<node>.\n"
	       "# TYPE hamqtt_alarm_active gauge\n");
	for (size_t f = 0; f < sizeof(fixed) / sizeof(fixed[0]); f++) {
		bool on = false;
		for (size_t i = 0; i < n && !on; i++)
			on = !strcmp(v[i].name, fixed[f]);
		put(b, "hamqtt_alarm_active{node=\"%s\",name=\"%s\"} %d\n", node, fixed[f], on);
	}
	char name[sizeof(v[0].name) * 2];
	for (size_t i = 0; i < n; i++) {
		bool is_fixed = false;
		for (size_t f = 0; f < sizeof(fixed) / sizeof(fixed[0]); f++)
			is_fixed = is_fixed || !strcmp(v[i].name, fixed[f]);
		if (is_fixed)
			continue;
		label_escape(v[i].name, name, sizeof(name));
		put(b, "hamqtt_alarm_active{node=\"%s\",name=\"%s\"} 1\n", node, name);
	}
	free(v);
}

/* The management port's own connections (http_guard.h). */
/* issue 12: each archive's counters (only when archives are configured) */
static void archive_metrics(struct buf *b, const char *node, struct broker *br)
{
	struct archive_set *s = broker_archive(br);
	uint32_t n = archive_count(s);
	if (!n)
		return;
	struct archive_stats *st = hq_calloc(n, sizeof(*st));
	char (*name)[200] = hq_calloc(n, sizeof(*name));
	for (uint32_t i = 0; i < n; i++) {
		archive_stats(s, i, &st[i]);
		http_metrics_escape(archive_name(s, i), name[i], sizeof(name[i]));
	}
	put(b, "# HELP hamqtt_archive_messages_total Messages of an archive by fate: written (committed "
	       "in its database), spilled (to its spill file while the database was down or slow), "
	       "dropped (buffer and spill file full), failed (refused by the database for good).\n"
	       "# TYPE hamqtt_archive_messages_total counter\n");
	for (uint32_t i = 0; i < n; i++) {
		const char *r[4] = { "written", "spilled", "dropped", "failed" };
		uint64_t v[4] = { st[i].written, st[i].spilled, st[i].dropped, st[i].failed };
		for (int k = 0; k < 4; k++)
			put(b, "hamqtt_archive_messages_total{node=\"%s\",archive=\"%s\",result=\"%s\"} %" PRIu64 "\n",
			    node, name[i], r[k], v[k]);
	}
	put(b, "# HELP hamqtt_archive_buffered Messages of an archive waiting in memory.\n"
	       "# TYPE hamqtt_archive_buffered gauge\n");
	for (uint32_t i = 0; i < n; i++)
		put(b, "hamqtt_archive_buffered{node=\"%s\",archive=\"%s\"} %" PRIu64 "\n", node, name[i],
		    st[i].buffered);
	put(b, "# HELP hamqtt_archive_spill_bytes Bytes of messages in an archive's spill file.\n"
	       "# TYPE hamqtt_archive_spill_bytes gauge\n");
	for (uint32_t i = 0; i < n; i++)
		put(b, "hamqtt_archive_spill_bytes{node=\"%s\",archive=\"%s\"} %" PRIu64 "\n", node,
		    name[i], st[i].spill_bytes);
	put(b, "# HELP hamqtt_archive_up 1 while an archive's database takes its writes.\n"
	       "# TYPE hamqtt_archive_up gauge\n");
	for (uint32_t i = 0; i < n; i++)
		put(b, "hamqtt_archive_up{node=\"%s\",archive=\"%s\"} %d\n", node, name[i],
		    st[i].up ? 1 : 0);
	hq_free(st);
	hq_free(name);
}

static void http_guard_metrics(struct buf *b, const char *node, struct http_ctx *ctx)
{
	struct http_guard_stats st = { 0 };
	if (ctx->guard)
		http_guard_get_stats(ctx->guard, &st);
	metric(b, "hamqtt_http_connections", "gauge",
	       "Open connections to the management HTTP port.", node, st.open);
	put(b, "# HELP hamqtt_http_connections_closed_total Management HTTP connections the node "
	       "closed: per_address (over dashboard.listeners.http.max_connections_per_address), "
	       "request_timeout (request not complete within "
	       "dashboard.listeners.http.request_timeout).\n"
	       "# TYPE hamqtt_http_connections_closed_total counter\n"
	       "hamqtt_http_connections_closed_total{node=\"%s\",reason=\"per_address\"} %" PRIu64 "\n"
	       "hamqtt_http_connections_closed_total{node=\"%s\",reason=\"request_timeout\"} %" PRIu64
	       "\n", node, st.refused_per_address, node, st.request_timeouts);
	struct http_throttle_stats ls = { 0 };
	if (ctx->login_throttle)
		http_throttle_get_stats(ctx->login_throttle, &ls);
	put(b, "# HELP hamqtt_http_login_total Dashboard logins (POST /api/v5/login): ok, failed "
	       "(wrong user name or password), throttled (429: too many failures from the "
	       "address, dashboard.login.*).\n"
	       "# TYPE hamqtt_http_login_total counter\n");
	put(b, "hamqtt_http_login_total{node=\"%s\",result=\"ok\"} %" PRIu64 "\n", node, ls.ok);
	put(b, "hamqtt_http_login_total{node=\"%s\",result=\"failed\"} %" PRIu64 "\n", node,
	    ls.failed);
	put(b, "hamqtt_http_login_total{node=\"%s\",result=\"throttled\"} %" PRIu64 "\n", node,
	    ls.throttled);
	metric(b, "hamqtt_http_login_blocks_total", "counter",
	       "Times a client address was blocked from logging in (dashboard.login.max_failures).",
	       node, ls.blocks);
}

void http_metrics(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	struct broker_info in;
	char node[256];
	struct buf b = { 0 };
	struct broker *br = http_broker(ctx, resp);
	if (!br)
		return; /* starting: no broker to read yet (503) */
	broker_get_info(br, &in);
	label_escape(ctx->cfg->node_name, node, sizeof(node));
	metric(&b, "hamqtt_up", "gauge", "1 while the node accepts MQTT connections.", node,
	       in.accepting ? 1 : 0);
	metric(&b, "hamqtt_uptime_seconds", "gauge", "Seconds since the node started.", node,
	       (uint64_t)in.uptime_s);
	metric(&b, "hamqtt_workers", "gauge", "I/O worker threads.", node, (uint64_t)in.workers);
	metric(&b, "hamqtt_connections", "gauge", "Open client connections (before CONNECT included).",
	       node, (uint64_t)in.connections);
	/* per listener type (tcp, ssl, ws, wss) */
	put(&b, "# HELP hamqtt_listener_connections Open client connections by listener type.\n"
		"# TYPE hamqtt_listener_connections gauge\n");
	for (int t = 0; t < CONF_LT_COUNT; t++)
		put(&b, "hamqtt_listener_connections{node=\"%s\",type=\"%s\"} %" PRId64 "\n", node,
		    conf_listener_type_name((enum conf_listener_type)t), in.connections_by_type[t]);
	metric(&b, "hamqtt_connects_total", "counter", "Clients accepted (CONNACK success sent).",
	       node, in.connects_total);
	put(&b, "# HELP hamqtt_authentication_total CONNECTs decided by the authentication chain "
		"(counted when auth.password_file is set or auth.allow_anonymous is false).\n"
		"# TYPE hamqtt_authentication_total counter\n"
		"hamqtt_authentication_total{node=\"%s\",result=\"success\"} %" PRIu64 "\n"
		"hamqtt_authentication_total{node=\"%s\",result=\"failure\"} %" PRIu64 "\n",
		node, in.auth_ok, node, in.auth_refused);
	put(&b, "# HELP hamqtt_jwt_total JWTs judged by the auth.jwt method, by result.\n"
		"# TYPE hamqtt_jwt_total counter\n");
	for (int i = 0; i < AUTH_JWT_RESULTS; i++)
		put(&b, "hamqtt_jwt_total{node=\"%s\",result=\"%s\"} %" PRIu64 "\n", node,
		    auth_jwt_result_names[i], in.jwt_results[i]);
	put(&b, "# HELP hamqtt_acl_decisions_total ACL decisions (auth.acl_file): PUBLISH, SUBSCRIBE "
		"and each message delivered, cached decisions included.\n"
		"# TYPE hamqtt_acl_decisions_total counter\n"
		"hamqtt_acl_decisions_total{node=\"%s\",result=\"allow\"} %" PRIu64 "\n"
		"hamqtt_acl_decisions_total{node=\"%s\",result=\"deny\"} %" PRIu64 "\n",
		node, in.acl_allow, node, in.acl_deny);
	auth_metrics(broker_auth(br), node, &b);
	metric(&b, "hamqtt_messages_received_total", "counter", "PUBLISH packets received from clients.",
	       node, in.msgs_in);
	metric(&b, "hamqtt_messages_sent_total", "counter", "PUBLISH packets sent to clients.", node,
	       in.msgs_out);
	metric(&b, "hamqtt_messages_dropped_total", "counter",
	       "Messages dropped by the queue policy, slow readers or the client's maximum packet size.",
	       node, in.msgs_dropped);
	put(&b, "# HELP hamqtt_messages_dropped_by_reason_total Messages dropped, by reason: "
		"queue_full (the session's queue limit), node_full (mqtt.max_queued_bytes_total), "
		"slow_reader (QoS 0 to a backed-up connection), too_large (client's maximum packet "
		"size), session_gone (forwarded to a session that ended), memory (QoS 0 to a "
		"subscriber behind, above overload.memory_high_watermark).\n"
		"# TYPE hamqtt_messages_dropped_by_reason_total counter\n");
	for (int r = 0; r < BRK_DROP_N; r++)
		put(&b, "hamqtt_messages_dropped_by_reason_total{node=\"%s\",reason=\"%s\"} %" PRIu64 "\n",
		    node, broker_drop_reason_name(r), in.dropped_by[r]);
	put(&b, "# HELP hamqtt_overload_events_total What overload protection did, by reason: "
		"listener_full, conn_rate (a listener paused accepting), per_ip, memory (CONNECT "
		"refused), throttled (a client paused over its rate), rate_disconnect, "
		"incomplete_packet.\n# TYPE hamqtt_overload_events_total counter\n");
	for (int r = 0; r < BRK_OVL_N; r++)
		put(&b, "hamqtt_overload_events_total{node=\"%s\",reason=\"%s\"} %" PRIu64 "\n",
		    node, broker_overload_event_name(r), in.overload[r]);
	metric(&b, "hamqtt_memory_rss_bytes", "gauge", "Resident memory of the node.", node,
	       in.rss_bytes);
	metric(&b, "hamqtt_memory_high_watermark_bytes", "gauge",
	       "overload.memory_high_watermark in bytes (0 = off).", node, in.mem_watermark);
	metric(&b, "hamqtt_memory_high", "gauge",
	       "1 while above the memory high watermark (shedding load).", node, in.mem_high ? 1 : 0);
	metric(&b, "hamqtt_queued_bytes", "gauge",
	       "Topic and payload bytes in the session queues of the node (each queue counted).",
	       node, in.queued_bytes > 0 ? (uint64_t)in.queued_bytes : 0);
	metric(&b, "hamqtt_queued_bytes_limit", "gauge",
	       "mqtt.max_queued_bytes_total: the node-wide bound on queued bytes (0 = none).",
	       node, in.queued_bytes_limit);
	metric(&b, "hamqtt_bytes_received_total", "counter", "Bytes read from client sockets.", node,
	       in.bytes_in);
	metric(&b, "hamqtt_bytes_sent_total", "counter", "Bytes written to client sockets.", node,
	       in.bytes_out);
	metric(&b, "hamqtt_retained_messages", "gauge", "Retained messages held.", node, in.retained);
	metric(&b, "hamqtt_cluster_nodes_running", "gauge",
	       "Cluster members running as this node sees them, itself included.", node,
	       (uint64_t)in.cluster_running);
	metric(&b, "hamqtt_cluster_forwards_sent_total", "counter", "Messages forwarded to other nodes.",
	       node, in.forwards_out);
	metric(&b, "hamqtt_cluster_forwards_received_total", "counter",
	       "Messages other nodes forwarded to this node.", node, in.forwards_in);
	metric(&b, "hamqtt_cluster_forwards_lost_total", "counter",
	       "Messages for another node that could not be sent (no link, link queue full) or were "
	       "never acknowledged before its link went down.", node, in.forwards_lost);
	accept_metrics(&b, node, &in);
	store_metrics(&b, node, br);
	alarm_metrics(&b, node, br);
	archive_metrics(&b, node, br);
	http_guard_metrics(&b, node, ctx);
	http_metrics_broker(&b, node, br);
	http_metrics_process(&b, node);
	http_bridge_metrics(&b, node);
	free(resp->body);
	resp->status = 200;
	resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
	resp->body_len = b.len;
	resp->body = (char *)b.data; /* ownership moves to resp (malloc'd) */
	if (!resp->body) {
		resp->body = hq_strdup("");
		resp->body_len = 0;
	}
}
