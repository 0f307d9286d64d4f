/*
 * bridge.h - MQTT bridges to remote brokers (issue 12; docs/architecture/bridge.md).
 *
 * bridges.mqtt.<name>.* makes a bridge: a client connection to a remote MQTT
 * 3.1.1/5 broker (TCP or TLS) and a local client connection to this node
 * (broker_bridge_attach: a trusted socketpair), with `forwards` (local filter
 * -> remote prefix) and `subscriptions` (remote filter -> local prefix).
 * Every bridge of the node runs on one thread (brg_run.c) and its own ev
 * loop; in a cluster only the running member with the lowest name runs them.
 *
 * Ownership: the configuration (struct brg_conf, brg_conf.c) is parsed once
 * at start and owned by struct bridges; the thread owns the connections;
 * status snapshots are copied under a mutex for other threads (HTTP).
 */
#ifndef HQ_BRIDGE_H
#define HQ_BRIDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hq_config;
struct broker;

/* One forward (local filter -> remote prefix) or subscription (remote filter
 * -> local prefix); the other side's topic is prefix + the topic. */
struct brg_rule {
	char *filter;
	char *prefix;             /* "" = the topic unchanged */
	uint8_t qos;              /* the most this rule delivers with */
};

struct brg_conf {
	char *name;
	char *server;             /* host:port as configured */
	char *host;               /* without brackets */
	int port;
	uint8_t version;          /* 4 (3.1.1) or 5 */
	char *clientid;
	char *username, *password; /* NULL = not sent */
	bool ssl;
	char *cacertfile, *certfile, *keyfile, *server_name; /* "" = none */
	bool verify_peer;
	struct brg_rule *fwd, *sub;
	int n_fwd, n_sub;
	uint32_t keepalive_s;
	uint32_t reconnect_min_ms, reconnect_max_ms;
	uint32_t max_buffered;
};

/* Parse cfg->bridge_raw (the bridges.* lines, conf.h): HQ_OK with *out
 * (n entries, the caller's: bridge_conf_free), or HQ_EINVAL with
 * "file:line: key: why" in err. node_cluster is cluster.name (the default
 * client id is <cluster.name>-bridge-<name>). */
int bridge_conf_parse(const struct hq_config *cfg, struct brg_conf **out, int *n, char *err,
		      size_t errlen);
void bridge_conf_free(struct brg_conf *v, int n);

/* Start the bridge thread when any bridge is configured (else NULL and
 * HQ_OK). The broker must be started; it must outlive bridges_stop. */
struct bridges;
int bridges_start(struct broker *b, const struct hq_config *cfg, struct bridges **out,
		  char *err, size_t errlen);
/* Stop the thread, close every connection, free everything. NULL is fine. */
void bridges_stop(struct bridges *br);

/* A bridge as other threads see it (GET /api/v5/bridges, /metrics). */
struct bridge_status {
	char name[64];
	char server[256];
	const char *status;       /* "connected" | "connecting" | "disconnected" | "standby" */
	char node[256];           /* the node running it ("" when none known) */
	bool up;
	uint64_t fwd_ok, fwd_failed;   /* local -> remote: acknowledged by the remote / lost */
	uint64_t recv_ok, recv_failed; /* remote -> local: acknowledged locally / lost */
	uint64_t recv_looped;     /* our own messages back from the remote: dropped */
	uint64_t buffered;        /* messages waiting in the local session's queue */
	uint64_t dropped;         /* dropped by the queue bound (max_buffered) */
	int64_t down_since_ms;    /* wall ms; 0 while up */
	char last_error[200];
};
/* A copy of every bridge's status (*out malloc'd, the caller frees; n = 0
 * and NULL when none). Any thread. */
void bridges_status(struct bridge_status **out, size_t *n);

#endif
