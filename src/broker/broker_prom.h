/*
 * broker_prom.h - the node's figures for the Prometheus exposition (/metrics)
 * that broker_info does not carry: per QoS, per listener, sessions and their
 * queue depths, subscriptions, routes, cluster links, store commit times.
 *
 * Any thread. Every figure is a copy: the workers' counters are relaxed
 * atomic loads, the sessions a sample of their published atomics taken under
 * the registry lock at most once a second, the cluster links the snapshot
 * the cluster thread publishes, the store times the store thread's atomics.
 * Nothing here touches another thread's live structs (ARCHITECTURE.md
 * "Metrics and monitoring").
 */
#ifndef HQ_BROKER_PROM_H
#define HQ_BROKER_PROM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/conf.h"

struct broker;

struct broker_prom_listener {
	char name[96];            /* "tcp:default": type:name, as EMQX labels it */
	uint64_t bytes_in, bytes_out;
};

struct broker_prom_link {
	char node[256];           /* the peer, name@host */
	bool up;
	int64_t rtt_us;           /* -1: not measured (yet) */
	uint64_t bytes_in, bytes_out, queue_bytes;
	uint32_t pending_acks, routes;
};

/* Queue depth histogram over sessions: upper bounds (messages) of the
 * buckets; the last bucket (+Inf) is implicit. */
#define BROKER_QDEPTH_N 6
extern const uint32_t broker_qdepth_bounds[BROKER_QDEPTH_N];
#define BROKER_STORE_LAT_N 12

struct broker_prom {
	uint64_t msgs_in_qos[3];  /* PUBLISH received, by the QoS published */
	uint64_t msgs_out_qos[3]; /* PUBLISH sent, by the QoS delivered */
	int n_listeners;
	struct broker_prom_listener listeners[CONF_MAX_LISTENERS];
	int64_t subscriptions;    /* of the node's sessions */
	/* the session sample (sessions of this node, not other nodes') */
	uint64_t sessions_online, sessions_offline;
	uint64_t qdepth[BROKER_QDEPTH_N + 1];   /* sessions per bucket, not cumulative */
	uint64_t qdepth_sum;      /* messages queued over those sessions */
	/* cluster (clustered false: clustering off, nothing below is set) */
	bool clustered;
	uint64_t routes_local, routes_remote;
	struct broker_prom_link *links;         /* owned: broker_prom_release */
	size_t n_links;
	/* the store thread's group commits (store_durable false: none) */
	bool store_durable;
	int64_t store_lat_bounds_us[BROKER_STORE_LAT_N];
	uint64_t store_lat[BROKER_STORE_LAT_N + 1]; /* not cumulative */
	uint64_t store_lat_sum_us;
};

void broker_prom_get(struct broker *b, struct broker_prom *out);
void broker_prom_release(struct broker_prom *p);

#endif
