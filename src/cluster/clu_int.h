/*
 * clu_int.h - private to src/cluster/: the cluster thread's objects.
 *
 * Threading: everything here belongs to the cluster thread (clu_node.c runs
 * its event loop), except what cluster.h says is thread safe: the request
 * inbox (core/inbox.h), the admin queue (admin_lock), peers_up and the
 * statistics (atomics). The broker is reached only through broker/brk_clu.h;
 * workers only through their inboxes, batched per loop turn in `wout`.
 *
 * Ownership:
 *  - struct clu_peer is owned by the node's member table and is never freed
 *    before clu_node_free, even when the member leaves (it becomes a
 *    tombstone), because workers hold pointers to it (node sessions,
 *    fwd_in.member). Its node session holds one reference of its own.
 *  - struct clu_link is owned by the node's link list; closing a link moves
 *    it to `closed`, freed in before-sleep (never during its own callback).
 *  - The remote routes of a member (clu_remote_route) mirror exactly what was
 *    posted to the workers' replicas: every add posted once, every delete
 *    once, and all of them deleted when its link goes down.
 */
#ifndef HQ_CLUSTER_CLU_INT_H
#define HQ_CLUSTER_CLU_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <uthash.h>

#include "broker/brk_clu.h"
#include "cluster/clu_proto.h"
#include "cluster/cluster.h"
#include "core/buf.h"
#include "core/inbox.h"
#include "net/ev.h"

#define CLU_HANDSHAKE_MAX_BODY 4096      /* before authentication */
#define CLU_HANDSHAKE_TIMEOUT_MS 5000
#define CLU_DIAL_BACKOFF_MS 1000
#define CLU_JOIN_TIMEOUT_MS 5000
#define CLU_MEMBERS_FILE "cluster.members"  /* in node.data_dir */
#define CLU_QOS0_QUEUE_MAX (16u << 20)   /* bytes queued on a link before QoS 0 is dropped */
#define CLU_LINK_QUEUE_MAX (256u << 20)  /* ... before anything is dropped */

struct clu_link;

/* A route owned by another node, as posted to the workers' replicas. */
struct clu_remote_route {
	char *key;                /* owned: "$share/g/f" or a plain filter */
	uint32_t gen;             /* sync generation that last (re)added it */
	int64_t provisional_until; /* set by a session hand-over until the node confirms */
	UT_hash_handle hh;
};

/* A QoS > 0 FORWARD awaiting the destination's acknowledgement. */
struct clu_pending {
	uint64_t seq;
	uint64_t token;           /* gate token on `worker` (0: nobody waits) */
	uint16_t worker;
	bool done;
};

struct clu_peer {
	char name[CLU_NAME_MAX + 1];
	char addr[CLU_NAME_MAX + 1];     /* host:port of its links */
	uint64_t incarnation;
	bool self;
	bool left;                       /* tombstone: left or force-left */
	bool forgotten;                  /* as if unknown (kept for workers' pointers) */
	bool seed;                       /* from static/dns discovery: dial with JOIN */
	struct clu_link *link;           /* the authenticated link, or NULL */
	struct clu_link *dial;           /* our outgoing link being set up, or NULL */
	int64_t next_dial_ms;            /* monotonic */
	struct session *node_sess;       /* reference (see file comment) */
	struct clu_remote_route *routes;       /* uthash by key */
	uint32_t sync_gen;
	uint32_t n_provisional;          /* routes with provisional_until set */
	uint32_t link_gen;               /* bumped when a link comes up */
	/* shared store: its routes are kept while it is unreachable (a hit
	 * fails the publisher's gate) until this monotonic ms + the heartbeat
	 * timeout; then withdrawn and its sessions adopted. 0 = not down */
	int64_t routes_down_ms;
	bool adopting;                   /* this node resumes its sessions: routes go when done */
	bool start_known;                /* clu_start.c: its routes arrived, or it is not up */
	/* forwards in flight on the current link, ascending seq, from ph */
	struct clu_pending *pend;
	uint32_t ph, pn, pcap;
	uint64_t next_seq;
	/* acknowledgements to send on the current link (seqs, any order) */
	uint64_t *acks;
	uint32_t n_acks, cap_acks;
	char last_error[256];            /* why the last dial failed (for join) */
	/* clu_stats.c: traffic over its links, the heartbeat round trip (a
	 * probe's wall_ms echoed back; measured on the monotonic clock) */
	uint64_t st_bytes_in, st_bytes_out;
	uint64_t probe_wall;             /* wall_ms of the probe out, 0 = none */
	int64_t probe_us, probe_ms;      /* monotonic us / loop ms it left */
	int64_t rtt_us;                  /* 0 = never measured (a measure is >= 1) */
	/* cluster-wide REST API (clu_rpc.c), on the current link (link_gen):
	 * our RPC_REQs awaiting its RPC_RESP, and its RPC_REQs we still owe */
	uint32_t rpc_out, rpc_in;
};

enum clu_link_state {
	LS_CONNECTING = 0,               /* initiator: connect() in progress */
	LS_WAIT_HELLO,                   /* waiting for the peer's HELLO */
	LS_WAIT_AUTH,                    /* waiting for the peer's AUTH */
	LS_UP,                           /* authenticated */
	LS_CLOSED,
};

struct clu_link {
	struct clu_node *n;
	struct ev_io io;
	struct buf in, out;
	enum clu_link_state st;
	bool initiator;
	bool join;                       /* initiator: HELLO says JOIN */
	bool close_after_flush;          /* a REFUSE is on its way out */
	uint8_t nonce_a[CLU_NONCE_LEN];  /* initiator's */
	uint8_t nonce_b[CLU_NONCE_LEN];  /* acceptor's */
	char peer[CLU_NAME_MAX + 1];     /* from its HELLO */
	char peer_addr[CLU_NAME_MAX + 1];
	uint64_t peer_inc;
	struct clu_peer *m;            /* dialed member (initiator) / the peer once up */
	int64_t opened_ms, last_rx_ms, last_tx_ms;
	char addr[64];                   /* socket peer "ip:port", for logs */
	uint64_t *bars;                  /* BARRIER ids sent, awaiting BARRIER_ACK, FIFO */
	uint32_t bh, bn, bcap;
	struct clu_link *next;           /* node's links (all states) */
	struct clu_link *free_next;      /* node's closed links */
	/* cluster.tls (clu_tls.c): the link's TLS state, owned, freed on close;
	 * NULL on a plain link or a plain peer being refused */
	struct tls_conn *tls;
	bool tls_checked;                /* acceptor: the first byte was looked at */
	bool refuse_plain;               /* acceptor: a plain peer, refused after its HELLO */
	bool tls_read_wants_write;       /* the last tls_read waits for EV_WRITE */
};

struct clu_lroute {                  /* a local route and its local subscriptions */
	char *key;
	uint32_t count;
	UT_hash_handle hh;
};

struct clu_route_op {                /* a change still to tell every peer */
	char *key;                       /* owned */
	bool add;
};

struct clu_owed_ack {                /* a BARRIER answered once wout is flushed */
	struct clu_peer *m;
	uint32_t link_gen;
	uint64_t id;
};

struct clu_barrier {
	uint64_t id;
	uint64_t token;
	uint16_t worker;
	uint32_t remaining;              /* links that have not acknowledged */
	struct clu_barrier *next;
};

enum clu_admin_kind { CA_MEMBERS = 1, CA_JOIN, CA_LEAVE, CA_FORCE_LEAVE };

struct clu_admin {
	int kind;
	char node[CLU_NAME_MAX + 1];
	int rc;
	char err[256];
	struct broker_member *members;   /* CA_MEMBERS result (malloc'd, caller frees) */
	size_t n_members;
	bool done;
	int64_t deadline_ms;             /* CA_JOIN */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct clu_admin *next;
};

struct clu_node {
	struct broker *b;
	struct hq_config *cfg;
	struct ev_loop *loop;
	pthread_t thread;
	bool started;
	int lfd;
	struct ev_io lio;
	struct accept_guard accept;    /* accept() out of resources (net/accept_guard.h) */
	/* cluster.tls (clu_tls.c): owned, NULL when off; swapped inside on SIGHUP */
	struct tls_srv *tls_srv;       /* links we accept */
	struct tls_cli *tls_cli;       /* links we dial */
	struct clu_peer **m;           /* m[0] is this node */
	size_t n_m, cap_m;
	struct clu_link *links, *closed;
	/* from workers (struct clu_req, core/inbox.h) and admin callers */
	struct inbox inbox;
	pthread_mutex_t admin_lock;      /* guards admin_q and started */
	struct clu_admin *admin_q;
	bool stopping;                   /* loop thread only */
	/* clu_start.c: the MQTT listeners wait until every member's routes are
	 * known (or it is found down, or start_until passes) */
	bool start_held;
	int64_t start_until;             /* monotonic ms; 0 = not yet counted */
	/* local routes */
	struct clu_lroute *lroutes;
	struct clu_route_op *ops;
	uint32_t n_ops, cap_ops;
	uint32_t next_sync_id;
	struct clu_barrier *barriers;
	uint64_t next_barrier;
	struct clu_admin *join_wait;     /* a CA_JOIN waiting for its link */
	struct clu_tomb *tombs;          /* uthash by topic */
	int64_t next_repl_sweep_ms;      /* clu_repl.c */
	int64_t next_tomb_sweep_ms;
	struct clu_takeover *takeovers;            /* CONNECTs waiting for the other nodes */
	struct clu_takeover_recent *recent;   /* ... and those that just finished (uthash) */
	uint64_t next_takeover;
	/* to workers, flushed in before-sleep; held while imports_pending
	 * (sessions handed over, being rebuilt on their workers) */
	struct brk_post *wout;
	uint32_t imports_pending;
	/* per worker: hand-over fences (clu_fence.c), NULL until the first */
	struct clu_fence *fences;
	/* route switches (clu_switch.c): the one a ROUTE_ADD frame is opening,
	 * those whose marks the workers have not all echoed, and per worker
	 * the waits of its forwards (NULL until the first) */
	struct clu_switch *sw_open, *switches;
	uint64_t next_switch;
	struct clu_sw_worker *sw_workers;
	uint32_t sw_conds;               /* waits, over every worker */
	/* BARRIER_ACKs owed while wout is held: sent once it is flushed */
	struct clu_owed_ack *owed_acks;
	uint32_t n_owed_acks, cap_owed_acks;
	char data_path[4096];            /* <data_dir>/cluster.members */
	int64_t next_discovery_ms;
	/* dns discovery on its own thread (clu_node.c dns_*) */
	pthread_t dns_thread;
	bool dns_running;                /* started and not joined (cluster thread only) */
	pthread_mutex_t dns_lock;        /* guards the three below */
	bool dns_done;
	char **dns_names;                /* owned answer: node names */
	size_t dns_n;
	/* cluster-wide REST API (clu_rpc.c): calls from HTTP threads (under
	 * admin_lock, like admin_q), requests in flight (uthash by id) */
	struct clu_rpc_call *rpc_q;
	struct clu_rpc_pending *rpc_pend;
	uint64_t next_rpc_id;
	/* local subscriptions and distinct filters (clu_route_local), for /stats */
	_Atomic int64_t st_subs, st_topics;
	int64_t drops_logged_ms;         /* forwards not sent: rate-limited log */
	uint64_t drops_unlogged;
	atomic_int peers_up;
	atomic_int n_running;
	_Atomic uint64_t st_fwd_out, st_fwd_in, st_fwd_lost;
	/* clu_stats.c: the per-peer snapshot for /metrics (clu_get_links) */
	pthread_mutex_t lstat_lock;      /* guards the three below */
	struct clu_link_stat *lstat;     /* owned */
	size_t n_lstat;
	uint64_t lstat_routes;
	int64_t lstat_next_ms;           /* cluster thread: next publish */
};

/* clu_stats.c */
void clu_stats_init(struct clu_node *n);
void clu_stats_free(struct clu_node *n);
void clu_stats_publish(struct clu_node *n, int64_t now);   /* tick: once a second */
/* A heartbeat on l's link: a probe sent now (idle links, and at least once
 * a second), or a HEARTBEAT received (a probe is answered at once; an echo
 * of our probe gives the round trip). */
void clu_stats_probe(struct clu_link *l, int64_t now);
void clu_stats_heartbeat(struct clu_link *l, const struct clu_heartbeat *hb);
#define CLU_PROBE_EVERY_MS 1000

/* clu_node.c (the thread) and clu_member.c (the member list) */
/* snprintf for operator messages, where cutting a long name short is fine */
void clu_fmt(char *dst, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
struct clu_peer *clu_member_find(struct clu_node *n, const char *name, size_t len);
struct clu_peer *clu_member_add(struct clu_node *n, const char *name, size_t len,
				  const char *addr, uint64_t inc);
/* The member is gone (left, force-left): tombstone, link closed, routes dropped. */
void clu_member_remove(struct clu_node *n, struct clu_peer *m, const char *why);
void clu_members_save(struct clu_node *n);
void clu_members_load(struct clu_node *n);   /* at start: node.data_dir/cluster.members */
void clu_count_running(struct clu_node *n);  /* members running, for metrics */
void clu_members_broadcast(struct clu_node *n, struct clu_link *except);
void clu_wout_flush(struct clu_node *n);
void clu_gate_release(struct clu_node *n, uint16_t worker, uint64_t token);
/* A forward that was not delivered: with a shared store the publisher must
 * send again (its gate fails); otherwise released (counted as lost). */
void clu_gate_undelivered(struct clu_node *n, uint16_t worker, uint64_t token);
void clu_join_done(struct clu_node *n, struct clu_peer *m, int rc, const char *err);
int64_t clu_now(const struct clu_node *n);
/* Link events that change membership (clu_link.c calls them). */
int clu_on_hello(struct clu_node *n, struct clu_link *l, const struct clu_hello *h,
		 uint8_t *refuse, char *why, size_t whylen);
void clu_on_link_up(struct clu_node *n, struct clu_link *l);
/* clu_start.c: the start hold of the MQTT listeners */
void clu_start_init(struct clu_node *n);
void clu_start_peer_known(struct clu_node *n, struct clu_peer *m, const char *how);
void clu_start_tick(struct clu_node *n, int64_t now);
void clu_on_link_down(struct clu_node *n, struct clu_link *l, const char *why);
void clu_on_dial_failed(struct clu_node *n, struct clu_peer *m, uint8_t refuse_reason);
void clu_on_members(struct clu_node *n, struct clu_link *l, struct clu_list list);
void clu_on_leave(struct clu_node *n, struct clu_link *l, const struct clu_leave *lv);

void clu_member_forget(struct clu_node *n, size_t i);
uint64_t clu_new_incarnation(uint64_t old);
void clu_leave_cluster(struct clu_node *n);      /* tell everyone, forget everyone */
bool clu_has_members(const struct clu_node *n);

/* clu_admin.c */
void clu_admin_run(struct clu_node *n, struct clu_admin *a);
void clu_admin_done(struct clu_admin *a, int rc, const char *err);
void clu_admin_tick(struct clu_node *n, int64_t now);

/* clu_discover.c */
void clu_discover_tick(struct clu_node *n, int64_t now);
void clu_discover_stop(struct clu_node *n);

/* clu_link.c */
void clu_link_dial(struct clu_node *n, struct clu_peer *m, bool join);
void clu_link_accept(struct clu_node *n, int fd, const char *addr);
void clu_link_close(struct clu_link *l, const char *why);
void clu_link_send(struct clu_link *l, const struct clu_msg *m);
void clu_link_write(struct clu_link *l);
void clu_link_tick(struct clu_node *n, int64_t now);
void clu_link_free(struct clu_link *l);

/* clu_tls.c: cluster.tls on links (what each step does: the top of the file) */
int clu_tls_init(struct clu_node *n, char *err, size_t errlen);
void clu_tls_free(struct clu_node *n);
/* give l its TLS state (acceptor: server side; initiator: client side,
 * checking the member's host when cluster.tls.verify_hostname) */
int clu_tls_attach(struct clu_link *l);
/* drive l's handshake: true once frames may flow (TLS up, or a plain peer
 * the acceptor will refuse after its HELLO); false: waiting, or closed */
bool clu_tls_ready(struct clu_link *l);
/* log l's TLS failure (OpenSSL's reason) as `what` failed and close it */
void clu_tls_failed(struct clu_link *l, const char *what);
/* acceptor, on the peer's HELLO: HQ_OK, or a refusal (logged; why for REFUSE TLS) */
int clu_tls_check_hello(struct clu_link *l, char *why, size_t len);
/* close_notify and free l's TLS state (before the fd is closed) */
void clu_tls_close(struct clu_link *l);

/* clu_retain.c: retained messages across nodes (last writer wins) */
struct clu_tomb {                    /* a deleted retained topic, for convergence */
	char *topic;                     /* owned */
	struct clu_hlc_ts ts;
	char origin[CLU_NAME_MAX + 1];
	UT_hash_handle hh;
};
void clu_retain_req(struct clu_node *n, struct clu_req *r);
void clu_retain_frame(struct clu_node *n, struct clu_link *l, struct clu_list list);
void clu_retain_sync(struct clu_node *n, struct clu_link *l);
void clu_retain_free(struct clu_node *n);
#define CLU_TOMB_TTL_MS (24ull * 3600 * 1000)  /* a day: longer partitions may resurrect */
void clu_retain_tick(struct clu_node *n, int64_t now);

/* clu_repl.c: the replicated tables (repl/repl.h) across nodes */
void clu_repl_init(struct clu_node *n);        /* local writes reach this thread */
void clu_repl_free(struct clu_node *n);
void clu_repl_req(struct clu_node *n, struct clu_req *r);      /* CRQ_REPL */
void clu_repl_frame(struct clu_node *n, struct clu_link *l, struct clu_list list);
void clu_repl_sync(struct clu_node *n, struct clu_link *l);    /* everything, to a new link */
void clu_repl_tick(struct clu_node *n, int64_t now);

/* clu_rpc.c: the cluster-wide REST API (broker.h broker_cluster_call_many) */
#define CLU_RPC_INFLIGHT_MAX 32          /* per link and direction */
struct clu_rpc_call;
struct clu_rpc_pending;
void clu_rpc_run_queued(struct clu_node *n);         /* calls from HTTP threads */
void clu_rpc_frame(struct clu_node *n, struct clu_link *l, const struct clu_msg *m);
void clu_rpc_answer_req(struct clu_node *n, struct clu_req *r);  /* CRQ_RPC_ANSWER */
void clu_rpc_link_down(struct clu_node *n, struct clu_peer *m);
void clu_rpc_tick(struct clu_node *n, int64_t now);
void clu_rpc_stop(struct clu_node *n);     /* after the thread: answer every call */

/* clu_takeover.c: one connection per client id in the cluster */
#define CLU_TAKEOVER_TIMEOUT_MS 3000
struct clu_takeover {                     /* a CONNECT here asking the other nodes */
	uint64_t id;
	uint64_t token;                  /* the waiting connection's, on worker */
	uint16_t worker;
	bool clean_start;
	bool refused;                    /* a newer connection elsewhere won */
	struct clu_hlc_ts ts;
	char *client_id;                 /* owned */
	struct clu_peer **wait;          /* members that have not answered */
	uint32_t n_wait;
	uint8_t *blob;                   /* owned: the session handed over */
	uint32_t blob_len;
	/* that session, rebuilt and routed on its worker as soon as it arrived
	 * (reference); importing while the worker has not answered yet */
	struct session *imported;
	bool importing;
	/* a newer connection elsewhere asked while this one waited: it gets the
	 * session once this request completes (deferred answer) */
	struct clu_peer *pass_to;
	uint64_t pass_req;
	uint32_t pass_gen;
	bool pass_clean;
	int64_t started_ms, deadline_ms;
	struct clu_takeover *next;
};
/* A connect that completed here moments ago: its worker may not have
 * registered the session yet, so requests for the id go to that worker. */
struct clu_takeover_recent {
	char *client_id;                 /* owned */
	uint16_t worker;
	int64_t until_ms;
	/* the session handed over (reference) or NULL: the target of a FORWARD
	 * following it (CLIENT) that comes before its worker registered it */
	struct session *sess;
	UT_hash_handle hh;               /* clu_node.recent by client_id */
};
void clu_takeover_req(struct clu_node *n, struct clu_req *r);
void clu_takeover_resp_req(struct clu_node *n, struct clu_req *r);
void clu_takeover_imported(struct clu_node *n, struct clu_req *r);
void clu_takeover_frame(struct clu_node *n, struct clu_link *l, const struct clu_msg *m);
void clu_takeover_link_down(struct clu_node *n, struct clu_peer *m);
void clu_takeover_send_clients(struct clu_node *n, struct clu_link *l);
void clu_takeover_clients(struct clu_node *n, struct clu_link *l, struct clu_list list);
/* The session a FORWARD naming client_id (one that followed the session
 * here) is for: a reference, or NULL when there is none or it is being
 * imported right now (clu_takeover_imported fills the target in then: the
 * forwards are still in the held worker outboxes). */
struct session *clu_takeover_target(struct clu_node *n, struct clu_str client_id);
void clu_takeover_tick(struct clu_node *n, int64_t now);

/* clu_fence.c: a worker's forwards wait while a session it delivered to
 * moves to another node, until the old owner's forwards of those went. */
void clu_fence_start(struct clu_node *n, uint16_t worker, uint64_t token);
void clu_fence_mark(struct clu_node *n, uint16_t worker, uint64_t token);
/* true: r (a FORWARD) waits behind a fence; its contents moved */
bool clu_fence_hold(struct clu_node *n, struct clu_req *r);
void clu_fence_free(struct clu_node *n);

/* clu_switch.c: a worker's forwards to a node whose route for a key just
 * came while another node routes it too wait until that node acknowledged
 * what the worker sent it before (per-publisher order across a hand-over). */
void clu_switch_route_added(struct clu_node *n, struct clu_peer *to, const char *key);
void clu_switch_frame_end(struct clu_node *n);   /* after a ROUTE_ADD frame */
void clu_switch_mark(struct clu_node *n, uint16_t worker, uint64_t id);
/* true: r (a FORWARD) waits; its contents moved */
bool clu_switch_hold(struct clu_node *n, struct clu_req *r);
void clu_switch_check(struct clu_node *n);       /* acks came, links changed, time passed */
void clu_switch_free(struct clu_node *n);
void clu_takeover_free(struct clu_node *n);

/* clu_route.c */
void clu_route_local(struct clu_node *n, char *key, bool add); /* consumes key */
void clu_route_barrier(struct clu_node *n, struct clu_req *r);
/* wout was flushed after a hold: answer the BARRIERs owed meanwhile. */
void clu_route_owed_acks(struct clu_node *n);
void clu_route_forward(struct clu_node *n, struct clu_req *r);
void clu_route_fwd_done(struct clu_node *n, struct clu_req *r);
void clu_route_flush_ops(struct clu_node *n);
void clu_route_sync(struct clu_node *n, struct clu_link *l);   /* full set to a new link */
void clu_route_link_down(struct clu_node *n, struct clu_peer *m, struct clu_link *l);
void clu_route_flush_acks(struct clu_node *n);
void clu_route_frame(struct clu_node *n, struct clu_link *l, const struct clu_msg *msg);
void clu_route_free(struct clu_node *n);
/* A session handed over to m: keys its worker already routed to m. */
void clu_route_provisional(struct clu_node *n, struct clu_peer *m, uint32_t link_gen,
			   char **keys, uint16_t n_keys);
/* The workers resumed the sessions of node `name` (CRQ_ADOPTED): its routes go. */
void clu_route_adopted(struct clu_node *n, const char *name);
void clu_route_tick(struct clu_node *n, int64_t now);

#endif
