/*
 * http_metrics_broker.c - the /metrics families read from broker_prom.h:
 * messages by QoS, bytes per listener, sessions and subscriptions, the
 * per-session queue depth histogram, routes, cluster links (state, heartbeat
 * RTT, bytes, output queue, forwards awaiting an acknowledgement) and the
 * store's group commit times. Cluster families appear only with clustering
 * on, the store histogram only with a durable store.
 */
#include "http/http_metrics.h"
#include "broker/broker_prom.h"
#include "core/buf.h"

#include <inttypes.h>
#include <stdio.h>

#define put http_metrics_put

static void family(struct buf *b, const char *name, const char *type, const char *help)
{
	put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void by_qos(struct buf *b, const char *node, const struct broker_prom *p)
{
	family(b, "hamqtt_messages_received_by_qos_total", "counter",
	       "PUBLISH packets received from clients, by the QoS they were published with.");
	for (int q = 0; q < 3; q++)
		put(b, "hamqtt_messages_received_by_qos_total{node=\"%s\",qos=\"%d\"} %" PRIu64 "\n",
		    node, q, p->msgs_in_qos[q]);
	family(b, "hamqtt_messages_sent_by_qos_total", "counter",
	       "PUBLISH packets sent to clients, by the QoS of the delivery.");
	for (int q = 0; q < 3; q++)
		put(b, "hamqtt_messages_sent_by_qos_total{node=\"%s\",qos=\"%d\"} %" PRIu64 "\n", node,
		    q, p->msgs_out_qos[q]);
}

static void listeners(struct buf *b, const char *node, const struct broker_prom *p)
{
	static const char *const dir[2] = { "received", "sent" };
	for (int d = 0; d < 2; d++) {
		char name[64];
		snprintf(name, sizeof(name), "hamqtt_listener_%s_bytes_total", dir[d]);
		put(b, "# HELP %s Bytes %s on client connections, by listener (type:name).\n"
		       "# TYPE %s counter\n", name, d ? "written to" : "read from", name);
		for (int l = 0; l < p->n_listeners; l++) {
			if (!p->listeners[l].name[0])
				continue;
			char lab[200];
			http_metrics_escape(p->listeners[l].name, lab, sizeof(lab));
			put(b, "%s{node=\"%s\",listener=\"%s\"} %" PRIu64 "\n", name, node, lab,
			    d ? p->listeners[l].bytes_out : p->listeners[l].bytes_in);
		}
	}
}

static void sessions(struct buf *b, const char *node, const struct broker_prom *p)
{
	family(b, "hamqtt_sessions", "gauge",
	       "Sessions held by this node: online (a client connected) or offline (kept for a "
	       "client that will resume it). Sampled at most once a second.");
	put(b, "hamqtt_sessions{node=\"%s\",state=\"online\"} %" PRIu64 "\n"
	       "hamqtt_sessions{node=\"%s\",state=\"offline\"} %" PRIu64 "\n",
	    node, p->sessions_online, node, p->sessions_offline);
	family(b, "hamqtt_subscriptions", "gauge",
	       "Subscriptions of the sessions held by this node (shared ones included).");
	put(b, "hamqtt_subscriptions{node=\"%s\"} %" PRId64 "\n", node,
	    p->subscriptions > 0 ? p->subscriptions : 0);
	family(b, "hamqtt_session_queue_depth", "histogram",
	       "Messages waiting in each session's queue (not in flight), over the sessions of "
	       "this node. Sampled at most once a second.");
	uint64_t cum = 0;
	for (int i = 0; i < BROKER_QDEPTH_N; i++) {
		cum += p->qdepth[i];
		put(b, "hamqtt_session_queue_depth_bucket{node=\"%s\",le=\"%" PRIu32 "\"} %" PRIu64 "\n",
		    node, broker_qdepth_bounds[i], cum);
	}
	cum += p->qdepth[BROKER_QDEPTH_N];
	put(b, "hamqtt_session_queue_depth_bucket{node=\"%s\",le=\"+Inf\"} %" PRIu64 "\n"
	       "hamqtt_session_queue_depth_sum{node=\"%s\"} %" PRIu64 "\n"
	       "hamqtt_session_queue_depth_count{node=\"%s\"} %" PRIu64 "\n",
	    node, cum, node, p->qdepth_sum, node, cum);
}

/* One gauge or counter per peer. */
typedef double (*link_val)(const struct broker_prom_link *l);
static double v_up(const struct broker_prom_link *l) { return l->up; }
static double v_rtt(const struct broker_prom_link *l) { return (double)l->rtt_us / 1e6; }
static double v_in(const struct broker_prom_link *l) { return (double)l->bytes_in; }
static double v_out(const struct broker_prom_link *l) { return (double)l->bytes_out; }
static double v_queue(const struct broker_prom_link *l) { return (double)l->queue_bytes; }
static double v_pend(const struct broker_prom_link *l) { return l->pending_acks; }
static double v_routes(const struct broker_prom_link *l) { return l->routes; }

static void link_family(struct buf *b, const char *node, const struct broker_prom *p,
			const char *name, const char *type, const char *help, link_val fn,
			bool rtt)
{
	family(b, name, type, help);
	for (size_t i = 0; i < p->n_links; i++) {
		const struct broker_prom_link *l = &p->links[i];
		if (rtt && (!l->up || l->rtt_us < 0))
			continue; /* no measure on a link that is down: no sample */
		char peer[512];
		http_metrics_escape(l->node, peer, sizeof(peer));
		put(b, "%s{node=\"%s\",peer=\"%s\"} %.9g\n", name, node, peer, fn(l));
	}
}

static void cluster(struct buf *b, const char *node, const struct broker_prom *p)
{
	if (!p->clustered)
		return;
	family(b, "hamqtt_routes", "gauge",
	       "Routes (topic filters, shared groups apart) in the cluster's tables: local = "
	       "filters this node's sessions subscribe to, remote = those the other nodes "
	       "announced to it.");
	put(b, "hamqtt_routes{node=\"%s\",scope=\"local\"} %" PRIu64 "\n"
	       "hamqtt_routes{node=\"%s\",scope=\"remote\"} %" PRIu64 "\n",
	    node, p->routes_local, node, p->routes_remote);
	link_family(b, node, p, "hamqtt_cluster_link_up", "gauge",
		    "1 while an authenticated link to the peer is up, 0 while it is down.", v_up,
		    false);
	link_family(b, node, p, "hamqtt_cluster_link_rtt_seconds", "gauge",
		    "Round trip of the last heartbeat probe on the link to the peer (its output "
		    "queue included).", v_rtt, true);
	link_family(b, node, p, "hamqtt_cluster_link_received_bytes_total", "counter",
		    "Bytes read from the links to the peer since this node started.", v_in, false);
	link_family(b, node, p, "hamqtt_cluster_link_sent_bytes_total", "counter",
		    "Bytes written to the links to the peer since this node started.", v_out, false);
	link_family(b, node, p, "hamqtt_cluster_link_queue_bytes", "gauge",
		    "Bytes waiting in the output buffer of the link to the peer.", v_queue, false);
	link_family(b, node, p, "hamqtt_cluster_forwards_pending", "gauge",
		    "QoS 1/2 messages forwarded to the peer and not acknowledged yet.", v_pend,
		    false);
	link_family(b, node, p, "hamqtt_cluster_link_routes", "gauge",
		    "Routes the peer announced to this node.", v_routes, false);
}

static void store(struct buf *b, const char *node, const struct broker_prom *p)
{
	if (!p->store_durable)
		return;
	family(b, "hamqtt_store_commit_duration_seconds", "histogram",
	       "Time the store thread took per group commit (the group's batches applied and "
	       "made durable, retries while the backend is down included).");
	uint64_t cum = 0;
	for (int i = 0; i < BROKER_STORE_LAT_N; i++) {
		cum += p->store_lat[i];
		put(b, "hamqtt_store_commit_duration_seconds_bucket{node=\"%s\",le=\"%g\"} %" PRIu64
		       "\n", node, (double)p->store_lat_bounds_us[i] / 1e6, cum);
	}
	cum += p->store_lat[BROKER_STORE_LAT_N];
	put(b, "hamqtt_store_commit_duration_seconds_bucket{node=\"%s\",le=\"+Inf\"} %" PRIu64 "\n"
	       "hamqtt_store_commit_duration_seconds_sum{node=\"%s\"} %.6f\n"
	       "hamqtt_store_commit_duration_seconds_count{node=\"%s\"} %" PRIu64 "\n",
	    node, cum, node, (double)p->store_lat_sum_us / 1e6, node, cum);
}

void http_metrics_broker(struct buf *b, const char *node, struct broker *br)
{
	struct broker_prom p;
	broker_prom_get(br, &p);
	by_qos(b, node, &p);
	listeners(b, node, &p);
	sessions(b, node, &p);
	cluster(b, node, &p);
	store(b, node, &p);
	broker_prom_release(&p);
}
