/*
 * cluster.h - the cluster runtime as the broker sees it.
 *
 * One cluster thread per node (clu_node.c) owns the listener on
 * host:cluster.port, every link to another node, the member list, the routes
 * other nodes own and the forwarding state. Workers never touch any of it:
 * they append requests (struct clu_req) to a per-worker vector during their
 * loop turn and hand the vector over with clu_submit() (one lock and at most
 * one wakeup per turn, like the worker inboxes). The cluster thread answers
 * through the workers' inboxes (broker/brk_clu.h: brk_post_route,
 * brk_post_forward, brk_post_gate_release, ...); it reaches the broker only
 * through brk_clu.h. Requests from one worker keep their order, so a route change is
 * never overtaken by the BARRIER that depends on it.
 *
 * Remote routes live in every worker's replica of the subscription index as
 * subscriptions of a "node session" (struct session with remote set), one per
 * member: matching a PUBLISH finds each remote node at most once, and
 * brk_route turns that hit into one CRQ_FORWARD (cluster.h semantics in
 * DESIGN.md: a message crosses once to each node with subscribers).
 */
#ifndef HQ_CLUSTER_CLUSTER_H
#define HQ_CLUSTER_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/accept_guard.h"

struct broker;
struct brk_msg;
struct session;
struct clu_node;
struct clu_peer;

enum clu_req_kind {
	CRQ_ROUTE_ADD = 1,   /* key: a local (filter, group) gained its first subscriber */
	CRQ_ROUTE_DEL,       /* key: ... lost its last one */
	CRQ_BARRIER,         /* release gate token on worker once every peer has our routes */
	CRQ_FORWARD,         /* msg to the node of `node`; release token once accepted */
	CRQ_FWD_DONE,        /* a forwarded message was delivered here: acknowledge seq */
	CRQ_RETAIN,          /* msg was stored retained here (empty payload: deleted) */
	CRQ_TAKEOVER,        /* key: a client id connecting here (plain: clean start) */
	CRQ_TAKEOVER_RESP,   /* our answer to member's request token (rc: status) */
	CRQ_TAKEOVER_IMPORTED, /* token (takeover id): sess rebuilt and routed on worker, or NULL */
	CRQ_ADOPTED,         /* key: a dead node whose sessions this node resumed from the
			      * shared store, their routes in every worker: its own go now */
	CRQ_FENCE_START,     /* worker: a session it delivered to moved to another node;
			      * its forwards wait until FENCE_MARK with the same token */
	CRQ_FENCE_MARK,      /* from that session's old owner, behind its forwards of what
			      * worker had delivered to it: the wait of token ends */
	CRQ_REPL,            /* blob: "table\0key" of a replicated table (repl/repl.h)
			      * changed here: send its entry to every peer */
	CRQ_SWITCH_MARK,     /* worker applied the routes posted before route switch
			      * token (clu_switch.c), behind its earlier forwards */
	CRQ_RPC_ANSWER,      /* job: the executor's answer to a peer's RPC_REQ (clu_rpc.c) */
};

struct clu_req {
	uint8_t kind;
	bool plain;               /* FORWARD: deliver to the node's non-shared subscribers */
	uint8_t rc;               /* FWD_DONE: MQTT reason code for the publisher */
	uint8_t dqos;             /* FORWARD with key (a moved session): delivery QoS */
	bool dretain;             /* ... and its RETAIN flag */
	bool rx;                  /* FORWARD: the first delivery of a QoS 2 publish whose
				   * msg has an rx identity (FORWARD RX: marks there) */
	uint16_t worker;          /* BARRIER, FORWARD: the worker holding the gate;
				   * FENCE_*: the worker whose forwards wait */
	uint16_t n_groups;        /* FORWARD: entries of groups */
	uint32_t link_gen;        /* FWD_DONE: link generation the message came on */
	uint64_t token;           /* BARRIER, FORWARD: gate token (0 = none); FWD_DONE: seq;
				   * FENCE_*: the fence */
	struct clu_peer *member;/* FORWARD (destination), FWD_DONE (origin) */
	struct brk_msg *msg;      /* FORWARD, RETAIN: reference */
	char **groups;            /* FORWARD: owned array of owned "$share/g/f";
				   * TAKEOVER_RESP: filters routed to member provisionally */
	char *key;                /* ROUTE_*: owned "$share/g/f" or plain filter; TAKEOVER*: client id;
				   * FORWARD: the client whose session moved there, or NULL */
	uint8_t *blob;            /* TAKEOVER_RESP: owned serialised session or NULL;
				   * REPL: owned "table\0key" (blob_len bytes) */
	char **skip;              /* FORWARD: owned array of n_skip owned targets that
				   * have the message stored (FORWARD SKIP), or NULL */
	uint32_t n_skip;
	struct session *sess;     /* TAKEOVER_IMPORTED: reference or NULL */
	struct broker_rpc_job *job; /* RPC_ANSWER: owned (broker.h) */
	uint32_t blob_len;
};

/* Create the runtime and bind host:cluster.port (a bind error fails the
 * start, with the key in err). NULL with *err == 0 when clustering is off
 * (cluster.port = 0). The broker is borrowed and outlives the runtime. */
struct clu_node *clu_node_new(struct broker *b, char *err, size_t errlen);
int clu_node_start(struct clu_node *n);   /* the thread: HQ_OK or HQ_EIO */
void clu_node_stop(struct clu_node *n);   /* thread safe; links closed, thread joined */
/* Release everything; after the workers stopped (their inboxes may still hold
 * node sessions, which are reference counted). */
void clu_node_free(struct clu_node *n);

/* Hand a worker's batch of requests to the cluster thread: the entries are
 * moved out of v (v->len becomes 0). Thread safe. */
struct clu_req_vec {
	struct clu_req *v;
	uint32_t len, cap;
};
void clu_submit(struct clu_node *n, struct clu_req_vec *v);
void clu_req_push(struct clu_req_vec *v, const struct clu_req *r);
/* Release what a request holds without acting on it (shutdown). */
void clu_req_release(struct clu_req *r);

/* Peers with an authenticated link right now (relaxed read, any thread): a
 * worker skips the SUBACK barrier when it is 0. */
int clu_peers_up(const struct clu_node *n);
/* After clu_node_new, before the threads start: true if the MQTT listeners
 * must wait for the peers' routes (clu_start.c posts brk_post_listen). */
bool clu_start_held(const struct clu_node *n);

/* Admin, from any thread; blocks until the cluster thread answers (bounded by
 * the runtime's own deadlines). Semantics in broker.h. */
struct broker_member;
int clu_admin_members(struct clu_node *n, struct broker_member **out, size_t *count);
int clu_admin_join(struct clu_node *n, const char *node, char *err, size_t errlen);
int clu_admin_leave(struct clu_node *n, char *err, size_t errlen);
int clu_admin_force_leave(struct clu_node *n, const char *node, char *err, size_t errlen);

/* Cluster-wide REST API (clu_rpc.c; semantics in broker.h
 * broker_cluster_call_many), from any non-worker thread; and the executor's
 * answer to a peer's request (takes job). */
struct broker_rpc;
struct broker_rpc_job;
int clu_rpc_call_many(struct clu_node *n, struct broker_rpc *reqs, size_t count, int timeout_ms);
void clu_rpc_answer(struct clu_node *n, struct broker_rpc_job *job);

/* SIGHUP (main thread): read cluster.tls.* certificate files again for the
 * links set up from now on; 0, or 1 when that failed (logged, the previous
 * certificates stay). 0 when clustering or cluster TLS is off. */
int clu_reload_tls(struct clu_node *n);

/* Counters for metrics (relaxed reads, any thread). */
struct clu_stats {
	uint64_t forwards_out, forwards_in, forwards_lost;
	int members, running;
	struct accept_counts accept;   /* the cluster listener's */
	int64_t subscriptions, topics; /* local subscriptions, distinct filters (/stats) */
};
void clu_get_stats(const struct clu_node *n, struct clu_stats *out);

/* Per peer, for /metrics (clu_stats.c): a copy the cluster thread publishes
 * once a second under a lock; never its live structs. */
struct clu_link_stat {
	char node[256];           /* name@host */
	bool up;                  /* an authenticated link to it */
	int64_t rtt_us;           /* the last heartbeat round trip; -1 = none measured */
	uint64_t bytes_in, bytes_out; /* over every link to it, this run */
	uint64_t queue_bytes;     /* waiting in the link's output buffer */
	uint32_t pending_acks;    /* QoS > 0 forwards it has not acknowledged */
	uint32_t routes;          /* its routes in our replicas (remote routes) */
};
/* The last snapshot: *out malloc'd (the caller frees; NULL when no peer),
 * *routes_local = our route keys the other nodes hold. Any thread. */
void clu_get_links(struct clu_node *n, struct clu_link_stat **out, size_t *count,
		   uint64_t *routes_local);

#endif
