/*
 * broker.h - the MQTT broker node as main() sees it: build it from a config,
 * run its workers, stop it, free it. Everything else is private (brk_int.h).
 */
#ifndef HQ_BROKER_H
#define HQ_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/conf.h"
#include "net/accept_guard.h"

struct broker;
struct hq_config;

/* Why a message was not delivered (counted per reason, /metrics and $SYS). */
enum broker_drop_reason {
	BRK_DROP_QUEUE_FULL = 0,  /* the session's queue limit (messages or bytes) */
	BRK_DROP_NODE_FULL,       /* the node-wide bound mqtt.max_queued_bytes_total */
	BRK_DROP_SLOW_READER,     /* QoS 0 to a connection whose output is backed up */
	BRK_DROP_TOO_LARGE,       /* larger than the client's Maximum Packet Size */
	BRK_DROP_SESSION_GONE,    /* forwarded to a session that no longer exists here */
	BRK_DROP_MEMORY,          /* QoS 0 to a subscriber behind, above the memory watermark */
	BRK_DROP_N
};
/* "queue_full", "node_full", ...: the label value in /metrics and $SYS. */
const char *broker_drop_reason_name(int reason);

/* What overload protection did (brk_overload.c; counted per reason in
 * /metrics as hamqtt_overload_events_total). */
enum broker_overload_event {
	BRK_OVL_LISTENER_FULL = 0, /* closed at accept: listener max_connections */
	BRK_OVL_CONN_RATE,        /* a listener paused accepting: max_conn_rate */
	BRK_OVL_PER_IP,           /* closed: overload.max_connections_per_ip */
	BRK_OVL_MEMORY,           /* CONNECT refused above the memory watermark */
	BRK_OVL_THROTTLED,        /* a client paused: messages_rate / bytes_rate */
	BRK_OVL_RATE_DISCONNECT,  /* a client over its rate too long: disconnected */
	BRK_OVL_INCOMPLETE,       /* closed: a packet not complete in time */
	BRK_OVL_BANNED,           /* CONNECT refused: on the banned list (brk_banned.c) */
	BRK_OVL_FLAPPING,         /* a client id banned for connecting too often */
	BRK_OVL_N
};
/* "listener_full", ...: the label value in /metrics. */
const char *broker_overload_event_name(int ev);

/* Build a broker and open its listeners (so a bind error fails the start).
 * cfg is borrowed and must outlive the broker. On error returns NULL and
 * writes a message into err. */
struct broker *broker_new(struct hq_config *cfg, char *err, size_t errlen);
/* Start the worker threads; returns HQ_OK or HQ_EIO. */
int broker_start(struct broker *b);
/*
 * Shutdown, in this order (main.c; each step thread safe unless said):
 *  broker_drain     stop accepting: every worker closes its MQTT listening
 *                   sockets (new connections are refused, a load balancer
 *                   retries them elsewhere); connected clients are still
 *                   served; broker_info.accepting turns false. Returns at once.
 *  broker_stop      ask every worker to stop its loop (also drains).
 *  broker_shutdown  wait for the workers, close every connection (DISCONNECT
 *                   0x8B), end the sessions. Main thread. broker_get_info and
 *                   the cluster calls stay safe (they answer "not running").
 *  broker_free      release everything (runs broker_shutdown if needed).
 */
void broker_drain(struct broker *b);
void broker_stop(struct broker *b);
void broker_shutdown(struct broker *b);
void broker_free(struct broker *b);

/* SIGHUP (main thread): read every ssl listener's certificate, key and CA
 * files again; new connections get them, live ones keep theirs. A listener
 * whose files fail keeps its old ones (logged). The same for cluster.tls.*
 * (links set up afterwards). Returns how many failed. */
int broker_reload_tls(struct broker *b);

/* A consistent-enough snapshot for the management side (HTTP API, $SYS),
 * safe to take from any thread: every field is read with relaxed atomics. */
struct broker_info {
	bool accepting;           /* workers started, the peers' routes known (clu_start.c),
				   * and not draining or shutting down */
	int workers;
	int64_t uptime_s;
	int64_t connections;      /* open sockets, including before CONNECT */
	int64_t connections_by_type[CONF_LT_COUNT]; /* per listener type: tcp, ssl, ws, wss */
	uint64_t connects_total;  /* CONNACKs sent */
	uint64_t msgs_in, msgs_out, msgs_dropped;
	uint64_t dropped_by[BRK_DROP_N]; /* msgs_dropped by reason */
	int64_t queued_bytes;     /* in session queues, node-wide (approximate, see brk_qbound.c) */
	uint64_t queued_bytes_limit; /* mqtt.max_queued_bytes_total; 0 = none */
	uint64_t bytes_in, bytes_out;
	/* src/auth/: CONNECTs accepted / refused by the chain (counted only when
	 * a method is configured), ACL decisions (only with an ACL file) */
	uint64_t auth_ok, auth_refused, acl_allow, acl_deny;
	uint64_t jwt_results[8];  /* by auth_jwt_result_names (src/auth/auth.h) */
	uint64_t retained;        /* retained messages held */
	/* cluster (0 when clustering is off) */
	int cluster_running;      /* members running, this node included */
	uint64_t forwards_out;    /* messages sent to other nodes */
	uint64_t forwards_in;     /* messages other nodes sent here */
	uint64_t forwards_lost;   /* not sent (no link, queue full) or never acknowledged */
	/* accept() failures for lack of resources, per listener kind */
	struct accept_counts accept_mqtt, accept_cluster;
	/* overload protection (brk_overload.c) */
	uint64_t overload[BRK_OVL_N];
	uint64_t rss_bytes;       /* resident memory at the last sample (1 s) */
	uint64_t mem_watermark;   /* bytes; 0 = off */
	bool mem_high;            /* above the watermark (shedding load) */
	/* the node-level REST routes (/api/v5/nodes, /stats, /monitor) */
	int64_t sessions;         /* sessions registered here, online or not */
	int64_t start_wall_ms;    /* when the node started, ms since the epoch */
	int64_t subscriptions;    /* subscriptions of this node's sessions */
	int64_t topics;           /* distinct filters subscribed here, from the cluster's
				     route table (0 with clustering off: broker_topics_list
				     in broker_api.h counts them anywhere) */
};
void broker_get_info(struct broker *b, struct broker_info *out);
/* The node's replicated tables (repl/repl.h): the management API's users. */
struct repl;
struct repl *broker_repl(struct broker *b);
/* The authentication chain (auth.h), for its /metrics lines; any thread. */
struct auth *broker_auth(struct broker *b);

/* The banned list (brk_banned.c; /api/v5/banned). Any thread. A ban names a
 * client id, a user name or a peer address (as = "clientid", "username",
 * "peerhost"); until_s 0 = never expires. */
enum broker_ban_as { BRK_BAN_CLIENTID = 0, BRK_BAN_USERNAME, BRK_BAN_PEERHOST, BRK_BAN_N };
struct broker_ban {
	char as[16];
	char who[256];
	char by[64];
	char reason[256];
	int64_t at_s, until_s;    /* seconds since the epoch */
};
int broker_ban_as_parse(const char *s, size_t n);   /* enum broker_ban_as, -1 unknown */
const char *broker_ban_as_name(int as);
/* HQ_EINVAL: bad as or who (empty, > 255 bytes). Replaces an existing ban. */
int broker_ban_add(struct broker *b, const struct broker_ban *ban);
int broker_ban_del(struct broker *b, const char *as, const char *who); /* HQ_ENOTFOUND */
/* The live bans, copied: *out is the caller's to free (hq_free / free). */
int broker_ban_list(struct broker *b, struct broker_ban **out, size_t *n);
/* SIGHUP (main thread): re-read the password and ACL files; on an error the
 * old ones stay in force and the error is logged. */
int broker_reload(struct broker *b);

/* The session store's health for the management side (/api/v5/status,
 * /metrics, $SYS; ARCHITECTURE.md "Persistence", Errors). Any thread; while
 * the broker stops (its store thread going away) only the backend is told. */
struct broker_store_info {
	const char *backend;      /* "memory", "local", "redis" (static string) */
	bool durable;             /* survives a restart: a store thread writes to it */
	bool healthy;             /* writes succeed (always true when not durable) */
	char description[400];    /* the backend's own account ("redis 127.0.0.1:6379 db 0
				     disconnected: ..."); empty when it has none */
	uint64_t batches;         /* batches completed (failed ones included) */
	uint64_t retries;         /* transient failures retried */
	uint64_t failed;          /* batches completed failed: nothing of them acknowledged */
	int64_t down_ms;          /* how long it has been unhealthy; 0 while healthy */
};
void broker_store_info(struct broker *b, struct broker_store_info *out);

/*
 * Cluster administration (the HTTP API's cluster endpoints and hamqtt-ctl).
 * Thread safe: each call hands the request to the cluster thread and waits
 * for its answer (bounded: a few seconds). They return HQ_OK or a negative
 * HQ_E* with a one-line reason for the operator in err:
 *   HQ_EINVAL    node is not a valid "name@host" (or is this node itself)
 *   HQ_ENOTFOUND force-leave of a node that is not a member
 *   HQ_EIO       the node cannot be reached or refused us (err says which:
 *                connection refused, wrong cookie, other cluster name, ...)
 *   HQ_EPROTOCOL not possible in this state (clustering disabled with
 *                cluster.port = 0, or force-leave of a running member)
 */
struct broker_member {
	char node[256];           /* name@host */
	char addr[256];           /* host:port of its cluster links */
	const char *status;       /* "running" | "stopped" (static string) */
	bool self;                /* this node */
	uint64_t incarnation;     /* start (or join) time of that node, ms since the epoch */
};
/* The member list as this node sees it (left and force-left nodes are not
 * listed), this node first. *out is malloc'd; the caller frees it. */
int broker_cluster_members(struct broker *b, struct broker_member **out, size_t *n);
/* Join the cluster that node belongs to (leaving the current one first).
 * Returns once the link to node is up and the member list exchanged. */
int broker_cluster_join(struct broker *b, const char *node, char *err, size_t errlen);
/* Leave the cluster gracefully: every member forgets this node and its
 * routes; this node becomes a cluster of one. */
int broker_cluster_leave(struct broker *b, char *err, size_t errlen);
/* Remove a member that is stopped (dead or cut off) from the cluster. */
int broker_cluster_force_leave(struct broker *b, const char *node, char *err, size_t errlen);

/* ---- issue 11 "ops": alarms and traces (brk_alarm.c, brk_trace.c) ---- */

/* One alarm (EMQX's /api/v5/alarms item). Times are wall-clock ms. */
struct broker_alarm {
	char name[300];           /* "store_down", "node_down:<node>", "memory_high", "queue_drops" */
	char message[256];
	char details[512];        /* a JSON object's text */
	bool activated;
	int64_t activate_at_ms;
	int64_t deactivate_at_ms; /* 0 while activated */
};
/* A copy of the alarms: activated 1 = active ones, 0 = deactivated ones
 * (the history), -1 = all. *out is malloc'd; the caller frees it. Any thread. */
int broker_alarm_list(struct broker *b, int activated, struct broker_alarm **out, size_t *n);
/* Forget the deactivated alarms; returns how many. Any thread. */
size_t broker_alarm_clear_history(struct broker *b);

/* Traces (EMQX's /api/v5/trace): every packet of a client id or address, or
 * every PUBLISH on a topic filter, written to <node.data_dir>/trace/<name>.log
 * between start_s and end_s. At most BROKER_TRACE_MAX at once. Any thread. */
#define BROKER_TRACE_MAX 32
#define BROKER_TRACE_FILE_MAX (64ull * 1024 * 1024) /* bytes; then writing stops */
enum broker_trace_type { BRK_TRACE_CLIENTID = 0, BRK_TRACE_TOPIC, BRK_TRACE_IP };
struct broker_trace {
	char name[64];            /* [A-Za-z0-9_.-], not starting with '.' */
	int type;                 /* enum broker_trace_type */
	char filter[256];         /* the client id, topic filter or address */
	int64_t start_s, end_s;   /* unix seconds */
	/* when listed: */
	const char *status;       /* "waiting" | "running" | "stopped" (static) */
	uint64_t log_size;        /* bytes written */
	bool truncated;           /* reached BROKER_TRACE_FILE_MAX */
};
const char *broker_trace_type_name(int type);  /* "clientid", "topic", "ip_address" */
int broker_trace_type_parse(const char *s);    /* enum broker_trace_type or -1 */
/* HQ_OK; HQ_EINVAL (bad name, filter or times: err says), HQ_EEXIST (the
 * name is taken), HQ_ELIMIT (BROKER_TRACE_MAX traces), HQ_EIO (the file). */
int broker_trace_start(struct broker *b, const struct broker_trace *t, char *err, size_t errlen);
/* A copy of the traces; *out is malloc'd, the caller frees it. */
int broker_trace_list(struct broker *b, struct broker_trace **out, size_t *n);
int broker_trace_stop(struct broker *b, const char *name);    /* HQ_ENOTFOUND */
int broker_trace_delete(struct broker *b, const char *name);  /* file removed too */
/* The file of trace name into path (it may not exist yet). HQ_ENOTFOUND. */
int broker_trace_file(struct broker *b, const char *name, char *path, size_t len);
/*
 * Cluster-wide REST API (src/cluster/clu_rpc.c; ARCHITECTURE.md "Cluster-wide
 * REST API"). A node asks other members to answer an HTTP request of the
 * management API for themselves (the request forwarded with req->local set).
 *
 * Caller side: broker_cluster_call_many sends every request at once over the
 * cluster links and waits until each is answered or timeout_ms (0: the
 * default 3 s) passed. Any thread but a worker's (HTTP threads). A member
 * without a link (stopped, not a member, clustering off) or whose link goes
 * down is answered at once: status BROKER_RPC_UNREACHABLE, never waited for.
 * Answers are bounded (BROKER_RPC_RESP_MAX bytes).
 */
#define BROKER_RPC_TIMEOUT_MS 3000
#define BROKER_RPC_UNREACHABLE 0     /* no link to the node (or it went down) */
#define BROKER_RPC_TIMEOUT (-1)      /* linked, but no answer before the deadline */
#define BROKER_RPC_RESP_MAX (8u * 1024 * 1024)
struct broker_rpc {
	/* in (borrowed): node "name@host"; path decoded; query encoded ("" none) */
	const char *node, *method, *path, *query;
	const char *caller;       /* the HTTP client's address (the peer logs it) */
	const char *body;         /* or NULL */
	size_t body_len;
	/* out: the member's HTTP status or BROKER_RPC_*; resp malloc'd (the
	 * caller frees) or NULL */
	int status;
	char *resp;
	size_t resp_len;
};
/* HQ_OK: every entry has its status. */
int broker_cluster_call_many(struct broker *b, struct broker_rpc *reqs, size_t n, int timeout_ms);

/* Peer side: a request another member asked this node to answer. Allocated
 * by the cluster thread; whoever receives it owns it until it is handed back
 * with broker_rpc_answer (exactly once, from any thread). */
struct broker_rpc_job {
	char node[256];           /* the asking member */
	char caller[256];         /* its HTTP client's address */
	char *method, *path, *query; /* NUL-terminated, owned by the job */
	char *body;               /* NUL-terminated (body_len bytes before it) or NULL */
	size_t body_len;
	/* the cluster's, to route the answer back: leave alone */
	void *member;
	uint32_t link_gen;
	uint64_t id;
	int status;
	char *resp;
	size_t resp_len;
};
/* The HTTP server's executor. fn runs on the cluster thread and must only
 * queue the job (never block), and the job must reach broker_rpc_answer.
 * NULL: requests are answered 503 by the cluster thread. After
 * broker_set_api_handler(b, NULL, NULL) returns, fn is never called again. */
typedef void broker_api_fn(void *arg, struct broker_rpc_job *job);
void broker_set_api_handler(struct broker *b, broker_api_fn *fn, void *arg);
/* Answer job with an HTTP status and body (malloc'd or NULL; taken, like the
 * job). A body over BROKER_RPC_RESP_MAX becomes a 500. Any thread. */
void broker_rpc_answer(struct broker *b, struct broker_rpc_job *job, int status, char *body,
		       size_t len);
/* Free a job without answering it (the cluster's own use: shutdown). */
void broker_rpc_job_free(struct broker_rpc_job *job);

/* ---- issue 12: the message archive (brk_archive.c) ---- */
struct archive_set;
/* Before broker_start (main owns s; NULL: none): PUBLISHes taken by this
 * node are copied to the archives whose topics they match. */
void broker_set_archive(struct broker *b, struct archive_set *s);
struct archive_set *broker_archive(struct broker *b);
/* archive_ack_fn (archive.h): an ack = stored copy was stored or refused;
 * posts the gate token back to the publisher's worker. Any thread. */
void broker_archive_ack(void *b, uint32_t worker, uint64_t token, bool stored);
/* ---- issue 12 bridges (src/bridge/; broker side in brk_bridge.c) ---- */
/* Hand fd (the broker's end of a socketpair; taken in every case) to a
 * worker as a bridge's local MQTT connection: trusted (no listener limits,
 * no authentication, no ACL; "bridge" as its listener in /clients), its
 * session's queue bounded by max_queued messages (0: mqtt.max_queued_messages),
 * its session expiry not capped by mqtt.session_expiry_max.
 * label names it in logs. Any thread but a worker's; waits (bounded).
 * HQ_OK, or HQ_ECLOSED / HQ_EIO (stopping, no answer in time: fd closed). */
int broker_bridge_attach(struct broker *b, int fd, const char *label, uint32_t max_queued);
/* Raise (on) or clear an alarm of this node's table (/api/v5/alarms), e.g.
 * "bridge_down:<name>"; details is a JSON object's text. Any thread. */
void broker_alarm_set(struct broker *b, const char *name, bool on, const char *details,
		      const char *msg);

#endif
