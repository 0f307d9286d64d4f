/*
 * brk_int.h - the broker's private objects: worker, connection, session,
 * message, delivery. Shared by the src/broker/brk_*.c files only.
 *
 * Threading (the rule every field follows):
 *  - A worker owns its event loop, its connections, the sessions created on it
 *    (sess->w never changes) and its replica of the subscription index.
 *    Only the owning worker's thread reads or writes their plain fields.
 *  - Other workers reach them only through the owner's inbox (struct wq_entry,
 *    a vector swapped under the inbox mutex): deliveries, route changes,
 *    connection hand-offs, session kills. Entries between two workers keep
 *    their order, so a route change is never overtaken by a later delivery.
 *  - Shared state with its own lock: the client-id registry (connect path
 *    only) and the retained tree (retained publishes and subscribes only).
 *    The publish path takes no global lock.
 *  - Fields other threads may read are _Atomic (session refs/online,
 *    counters).
 *  - The store thread (store_runner.c) sees only the batches handed to it
 *    (brk_store.c) and gives each back through its worker's inbox.
 *
 * Ownership:
 *  - struct brk_msg is reference counted and immutable once published
 *    (handed to brk_route or stored as retained); every queue entry,
 *    in-flight slot and retained slot holds one reference.
 *  - struct session is reference counted: the registry, the attached
 *    connection, each route entry in each replica, and each inbox entry
 *    naming it hold one reference. Its
 *    contents are freed when the session ends; the struct when refs drop to 0.
 *  - struct conn belongs to exactly one worker at a time; it is freed only in
 *    that worker's before-sleep hook after being closed (never mid-callback).
 */
#ifndef HQ_BROKER_BRK_INT_H
#define HQ_BROKER_BRK_INT_H

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <uthash.h>

#include "auth/auth.h"
#include "broker/brk_clu.h"
#include "broker/broker.h"
#include "broker/topic.h"
#include "cluster/clu_types.h"
#include "cluster/cluster.h"
#include "core/buf.h"
#include "core/conf.h"
#include "core/inbox.h"
#include "core/log.h"
#include "mqtt/mqtt.h"
#include "net/accept_guard.h"
#include "net/ev.h"
#include "net/linger.h"
#include "net/net_tls.h"
#include "net/net_ws.h"
#include "net/xport.h"

struct worker;
struct session;
struct conn;

/* ---- messages ---- */

/* One published application message, shared by every delivery of it. */
struct brk_msg {
	atomic_uint refs;
	uint8_t qos;              /* QoS it was published with */
	bool retain;              /* RETAIN flag as published */
	bool has_expiry;
	uint16_t topic_len;
	uint32_t props_len;       /* forwardable v5 properties (mqtt_props_forwardable) */
	uint32_t payload_len;
	uint32_t expiry;          /* message expiry interval as published, seconds */
	int64_t expire_at;        /* monotonic ms; valid when has_expiry */
	uint64_t origin_sid;      /* session id of the publisher, 0 = broker ($SYS) */
	/* id of its one stored copy (brk_store.c), 0 until a persistent session
	 * queues it; set once by whichever worker stores it first (CAS) */
	_Atomic uint64_t store_id;
	uint32_t pub_hash;        /* hash of the publisher's client id (shared "hash") */
	/* as a retained message: when and where it was written (owned; NULL
	 * until stored retained). A side structure: only retained messages
	 * pay for it. */
	struct msg_stamp *stamp;
	/* QoS 2 from a persistent session: its publisher and packet id, for the
	 * marks of the entries stored for it (brk_rxmark.c); owned, NULL
	 * otherwise */
	struct msg_rx *rx;
	/* cluster: the publishing node's id of the message (unique per node
	 * run; 0 = none) and, for a message another node forwarded here, that
	 * node (NULL: published here). A session that just moved here drops
	 * its second copy (brk_handover.c). */
	uint64_t mid;
	struct clu_peer *fwd_origin;
	char *topic;              /* -> data, NUL terminated */
	uint8_t *props;           /* -> data */
	uint8_t *payload;         /* -> data */
	uint8_t data[];
};

/* The publisher of a QoS 2 message whose id it stored (brk_rxmark.c). */
struct msg_rx {
	uint16_t pid;
	char client_id[];
};

/* An incoming QoS 2 id loaded from the store, not known to be stored for
 * every target: the targets that have it (brk_rxmark.c). */
struct rx_target;
struct rx_unconf {
	struct rx_unconf *next;
	struct rx_target *clients; /* uthash by client id */
	struct rx_target *groups;  /* uthash by "$share/g/f" */
	uint32_t n_marks;
	uint16_t pid;
	/* the marks are not known here (a gate failed: a node died holding a
	 * forward, or a store write failed): a resend waits for a store read
	 * of them (brk_store_marks_read) */
	bool unread;
	int64_t read_at;          /* monotonic ms the read was asked, 0 = none out */
};

/* The retained last-writer-wins stamp (clu_hlc_cmp: time, then node). */
struct msg_stamp {
	struct clu_hlc_ts ts;
	const char *origin;       /* node name, borrowed (config or cluster member) */
};

/* Allocate a message with one reference (the caller's). */
struct brk_msg *msg_new(const char *topic, size_t topic_len, const uint8_t *props,
			size_t props_len, const uint8_t *payload, size_t payload_len,
			uint8_t qos, bool retain, bool has_expiry, uint32_t expiry,
			int64_t now_ms);
static inline struct brk_msg *msg_ref(struct brk_msg *m)
{
	atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
	return m;
}
void msg_unref(struct brk_msg *m);
/* Remaining expiry in seconds (>= 1) or 0 when expired. Only with has_expiry. */
uint32_t msg_remaining(const struct brk_msg *m, int64_t now_ms);
bool msg_expired(const struct brk_msg *m, int64_t now_ms);
void msg_unref_cb(void *m);   /* for retain_tree_free */

/* ---- deliveries (one message to one session) ---- */

#define DV_RETAIN 0x01        /* send with RETAIN=1 */
#define DV_SENT 0x02          /* sent at least once: resend with DUP */
#define DV_PUBREL 0x04        /* QoS 2: PUBREC received, waiting for PUBCOMP */
#define DV_SHARED 0x08        /* came through a shared subscription: share_group set */

struct deliv {
	struct brk_msg *msg;      /* reference; NULL once in DV_PUBREL state */
	uint64_t seq;             /* its queue entry in the store (brk_store.c); 0 = not stored */
	uint32_t *sub_ids;        /* owned, when n_sub_ids > 1 */
	char *share_group;        /* owned "$share/g/f", when DV_SHARED */
	uint32_t sub_id;          /* when n_sub_ids == 1 */
	uint16_t pid;             /* packet id once in flight */
	uint8_t qos;              /* delivery QoS = min(published, granted) */
	uint8_t flags;
	uint8_t n_sub_ids;
};

void deliv_release(struct deliv *d);
/* sub ids of a delivery as an array (either &d->sub_id or d->sub_ids) */
static inline const uint32_t *deliv_sub_ids(const struct deliv *d)
{
	return d->n_sub_ids > 1 ? d->sub_ids : &d->sub_id;
}

/* FIFO ring of deliveries (session queue); cap is a power of two. */
struct dqueue {
	struct deliv *v;
	uint32_t head, len, cap;
};
void dq_push(struct dqueue *q, const struct deliv *d);
bool dq_pop(struct dqueue *q, struct deliv *out);
struct deliv *dq_at(struct dqueue *q, uint32_t i);
void dq_remove_at(struct dqueue *q, uint32_t i, struct deliv *out);
void dq_free(struct dqueue *q);

/* ---- retained messages still to send after a SUBSCRIBE ---- */

/* A snapshot of the retained messages matching one new subscription, taken
 * under retain_lock, sent as the in-flight window frees (brk_retained_out.c)
 * instead of enqueued at once: the queue limit then never drops them. Owned
 * by the session (its worker only); a FIFO, one per filter at most. */
struct ret_cursor {
	struct brk_msg **v;       /* references; v[next..n) are still to send */
	uint32_t n, next;
	uint32_t sub_id;
	uint8_t granted;          /* subscription QoS */
	char *filter;             /* owned: a new SUBSCRIBE of it replaces the cursor */
	struct ret_cursor *link;  /* the next cursor in the session's FIFO */
};

/* ---- sessions ---- */

/* One subscription of a session, kept for replication, resync and listing. */
struct sess_sub {
	char *filter;             /* owned, full text ("$share/g/f" included) */
	uint8_t options;
	uint32_t sub_id;
	UT_hash_handle hh;        /* by filter */
};

#define SESS_NEVER_EXPIRE UINT32_MAX

struct session {
	/* fields in size order, so an idle session wastes no padding */
	uint64_t sid;             /* unique per process, for no-local */
	struct worker *w;         /* owner, fixed for life */
	char *client_id;          /* owned */
	struct conn *conn;        /* attached connection or NULL */
	int64_t expire_at;        /* monotonic ms while offline; 0 = not scheduled */
	/* will of the current/last connection */
	struct brk_msg *will;     /* reference or NULL */
	int64_t will_at;          /* monotonic ms; 0 = not scheduled */
	/* wall clock ms: created, last detached (0 = never); management API only */
	int64_t created_wall_ms, detached_wall_ms;
	struct sess_sub *subs;    /* uthash */
	/* outgoing QoS 1/2 */
	struct deliv *inflight;   /* in send order: n_inflight entries from here, inside */
	struct deliv *inflight_base; /* the allocation of cap_inflight entries (owned) */
	struct dqueue queue;      /* waiting for a window slot or a connection */
	struct ret_cursor *retained_out; /* retained messages to send before the queue (FIFO) */
	uint64_t queued_bytes;    /* topic + payload bytes of the queue's messages */
	/* read by other workers for publisher back-pressure (relaxed) */
	_Atomic int64_t progress_ms;    /* last ack, or first send into an empty window */
	_Atomic uint64_t qbytes_pub;    /* queued_bytes as last published by the owner */
	/* QoS > 0 deliveries posted to this session by other workers and not yet
	 * taken in by the owner (senders add, the owner subtracts): a publisher on
	 * another worker sees the load it created at once, not a turn later */
	_Atomic uint64_t inbound_bytes;
	/* incoming QoS 2 packet ids between PUBREC and PUBREL */
	uint16_t *rx_pids;
	struct rx_unconf *rx_unconf; /* those of them loaded from the store (brk_rxmark.c) */
	struct session *off_prev, *off_next; /* worker's offline list (utlist DL) */
	UT_hash_handle reg_hh;    /* the node's client-id registry, keyed by client_id */
	uint64_t dropped;         /* messages dropped by the queue policy */
	uint64_t store_seq;       /* the last queue entry seq given out (brk_store.c; owner only) */
	atomic_int refs;
	uint32_t client_hash;
	uint32_t expiry;          /* session expiry interval, s (SESS_NEVER_EXPIRE) */
	uint32_t will_delay;      /* s */
	uint32_t n_subs;
	uint32_t n_inflight, cap_inflight;
	uint32_t queued_qos0;     /* QoS 0 entries in the queue (eviction skips the scan at 0) */
	_Atomic uint32_t qlen_pub;      /* queue.len as last published by the owner (relaxed) */
	_Atomic uint32_t inbound;       /* deliveries in transit, see inbound_bytes */
	uint32_t n_rx_pids, cap_rx_pids;
	uint32_t qmax;            /* queue limit in messages set by a bridge's internal
				     connection (brk_bridge.c); 0 = mqtt.max_queued_messages */
	uint16_t next_pid;
	atomic_bool online;       /* read by other workers choosing a shared member */
	/* when the current connection attached, as a packed HLC timestamp
	 * (clu_hlc_pack); read by the cluster thread after a partition */
	_Atomic uint64_t conn_hlc;
	bool ended;               /* session is over; deliveries are dropped */
	uint8_t version;          /* protocol level of the last connection */
	bool in_registry;         /* guarded by broker.reg_lock */
	bool in_offline_list;
	/* a node session stands for another cluster member in the replicas: its
	 * routes are that node's subscriptions; a hit becomes a FORWARD */
	bool remote;              /* stays here: brk_route tests it on every hit */
	bool stored;              /* the store holds its header (brk_store.c; owner only) */
	/* cluster-only state, allocated for node sessions and sessions handed
	 * over to another node only (NULL for every other session) */
	struct sess_cluster *clu;
	/* the ACL context of the last connection (owned; NULL: no ACL file, or
	 * no connection since the session was loaded or imported) */
	struct auth_client *acl;
};

/* Cluster side of a session (brk_cluster.c). Left on struct session: remote
 * (a flag read on the publish path, in padding) and conn_hlc (read lock-free
 * by the cluster thread for every connected session). */
struct sess_cluster {
	struct clu_peer *member;  /* node session: the cluster thread's member (outlives it) */
	/* handed over to another node: its node session (reference); deliveries
	 * that still arrive here follow the session there */
	struct session *moved_to;
	/* moved here from another node moments ago: the messages it got from
	 * other nodes, to drop a second copy (brk_handover.c; owned, or NULL) */
	struct hov_dedup *dedup;
	bool ghost;               /* moved away: its plain routes stay a while (brk_handover.c) */
};
static inline struct session *sess_moved_to(const struct session *s)
{
	return s->clu ? s->clu->moved_to : NULL;
}

struct session *sess_new(struct worker *w, const char *client_id, size_t id_len);
static inline struct session *sess_ref(struct session *s)
{
	atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
	return s;
}
void sess_unref(struct session *s);
/* A node session for member `name` (one reference, the caller's). */
struct session *sess_new_remote(struct broker *b, const char *name, struct clu_peer *m);

/* ---- connections ---- */

enum conn_state {
	CS_NEW = 0,               /* waiting for CONNECT */
	CS_WAIT,                  /* CONNECT accepted, hand-off to the session's worker pending */
	CS_ACTIVE,                /* CONNACK sent */
	CS_CLOSED,                /* closed; freed at the end of the loop turn */
};

/* A large payload written straight from its message with writev, instead of
 * being copied into c->out: the segment's bytes go after `before` bytes of
 * c->out (counted from c->out's head; reduced as c->out is sent). */
struct out_seg {
	size_t before;
	struct brk_msg *msg;      /* reference */
	uint32_t off;             /* payload bytes already sent */
};
#define OUT_SEG_MIN 16384     /* smaller payloads are copied: cheaper than an iovec */

struct conn_segs {            /* allocated while a connection has segments */
	struct out_seg *v;
	uint32_t n, cap;
	size_t pending;           /* unsent payload bytes in v */
};

/* A publisher paused for back-pressure (allocated only while paused, so idle
 * connections do not pay for it). */
struct conn_thr {
	struct conn *c;
	struct session *sess;     /* reference: the lagging subscriber */
	int64_t since;            /* monotonic ms */
	struct conn_thr *prev, *next; /* worker's throttled list (utlist DL) */
};

/* Responses held back until the cluster confirms something (brk_gate.c): a
 * PUBACK/PUBREC until every destination node accepted the message, a SUBACK
 * until every peer has the new routes. Later responses queue behind them, so
 * acknowledgements keep the order of the requests [MQTT-4.6.0-2]. */
struct gate_item {
	uint64_t token;           /* worker-unique; 0 = nothing awaited of its own */
	uint32_t remaining;       /* confirmations still awaited */
	struct buf bytes;         /* encoded packets released together */
	struct conn *c;
	bool out;                 /* counted in conn_gate.n_out */
	uint16_t rx_pid;          /* a QoS 2 PUBLISH's packet id, or 0 (gate_fail) */
	struct gate_item *next;   /* the connection's FIFO */
	UT_hash_handle hh;        /* worker.gates by token */
};
struct conn_gate {
	struct gate_item *head, *tail;
	uint32_t n_out;           /* items holding outgoing PUBLISHes (QoS 2 to a
				   * persistent session, until stored): later
				   * PUBLISHes queue behind them too */
};

struct alias_in {             /* client->server topic alias */
	char *topic;              /* owned */
	uint16_t alias;
	UT_hash_handle hh;        /* by alias: sparse, so alias 65535 costs one entry */
};

struct alias_out {            /* server->client topic alias */
	char *topic;              /* owned */
	uint16_t alias;
	UT_hash_handle hh;
};

struct conn {
	/* fields in size order, so no padding is paid per connection */
	struct ev_io io;
	struct worker *w;         /* current owner */
	struct conn *prev, *next; /* worker's connection list (utlist DL) */
	struct conn *dirty_next;  /* worker's pending-write list */
	struct conn *free_next;   /* worker's closed list (a closed conn may still be dirty) */
	struct conn_thr *thr;     /* set while not read for back-pressure (owned) */
	struct conn_gate *gate;   /* held responses (owned), NULL when none */
	struct buf in, out;
	struct conn_segs *segs;   /* large payloads waiting in order with out, or NULL */
	/* the transport below MQTT (net/xport.h): NULL on tcp (the hot path's one
	 * test), else the top layer of tls and/or ws, which the conn owns */
	struct xport *xp;
	struct tls_conn *tls;     /* ssl, wss: the TLS state (owned), else NULL */
	struct ws_conn *ws;       /* ws, wss: the WebSocket state (owned), else NULL */
	struct conn_rl *rl;       /* per-client rates (brk_ratelimit.c, owned), NULL when none */
	int64_t partial_since;    /* monotonic ms c->in started holding an unfinished packet; 0 = none */
	int64_t last_rx_ms;       /* monotonic */
	int64_t connected_ms;
	int64_t closing_since;    /* conn_close_after_gate: monotonic ms */
	const char *closing_why;  /* static string, for the deferred conn_close */
	struct session *sess;     /* reference while attached */
	char *client_id;          /* for logs and hand-off: owned until attached, then
				   * borrowed from the session (client_id_borrowed) */
	struct brk_msg *will;     /* from CONNECT: reference or NULL (moved to the session on attach) */
	/* topic aliases */
	struct alias_in *alias_in; /* uthash by alias, owned; at most topic_alias_maximum entries */
	struct alias_out *alias_out; /* uthash by topic */
	/* authentication (src/auth/): the user name (owned; from CONNECT, or set
	 * before it by the transport: a certificate's CN with
	 * peer_cert_as_username = cn, which wins over the packet's) and the ACL
	 * context made at CONNECT (owned until the session attaches, which
	 * takes it; NULL without an ACL file) */
	char *username;
	struct auth_client *acl;
	char addr[64];            /* "ip:port" of the peer */
	enum conn_state state;
	/* from CONNECT, kept until the session attaches */
	uint32_t req_expiry;      /* session expiry granted */
	uint32_t req_expiry_asked; /* as the client asked (v5 CONNACK echoes a change) */
	uint32_t will_delay;
	/* peer limits (v5) */
	uint32_t peer_max_packet;   /* 0 = no limit */
	uint16_t peer_receive_max;
	uint16_t peer_alias_max;
	uint16_t alias_out_next;
	uint16_t keepalive;       /* effective keepalive, s (0 = none) */
	uint8_t version;          /* protocol level, 0 until CONNECT */
	bool dirty;
	bool paused;              /* not reading: hand-off to another worker in progress */
	bool sent_connack;
	bool expect_proxy;        /* a PROXY v1/v2 header must come first (listener option) */
	bool disconnect_normal;   /* DISCONNECT 0x00 received: no will */
	bool taken_over;          /* closed because a new connection resumed its session */
	bool keepalive_changed;   /* v5: send Server Keep Alive */
	bool client_id_borrowed;
	bool clean_start;
	bool id_assigned;
	bool request_problem_info;
	bool request_response_info;
	bool cluster_wait;        /* CS_WAIT: other nodes are asked about its client id */
	bool store_wait;          /* CS_WAIT: the shared store is read for its session */
	bool store_read;          /* the shared store was read for it already */
	bool auth_wait;           /* CS_WAIT: a server authentication method is asked (brk_auth.c) */
	bool closing;             /* conn_close_after_gate: not read, nothing new sent */
	uint8_t closing_reason;
	bool xp_ready;            /* the transport's handshakes are done (brk_ws.c) */
	uint8_t ltype;            /* enum conf_listener_type of its listener */
	/* overload protection (brk_overload.c) */
	uint8_t lidx;             /* its listener: index of cfg->listeners */
	bool ovl_listener;        /* counted in its listener's connections */
	bool ovl_ip;              /* counted in the per-address table under c->addr */
	bool rl_paused;           /* over a rate: not read (brk_ratelimit.c) */
	/* v5 enhanced authentication (brk_eauth.c): owned, NULL unless CONNECT
	 * named a supported Authentication Method */
	struct conn_eauth *eauth;
	/* traces (brk_trace.c): the client traces that match this connection,
	 * as of generation trace_gen of broker.trace_word (0: none ever) */
	uint32_t trace_gen, trace_mask;
	/* a bridge's local side (brk_bridge.c): trusted, no listener, no
	 * authentication, no ACL; its session's queue limit is int_qmax */
	bool internal;
	uint32_t int_qmax;
};

/* ---- worker inbox entries ---- */

enum wq_kind {
	WQ_DELIVER = 1,           /* d -> sess */
	WQ_ROUTE_ADD,             /* filter/options/sub_id of sess into the replica */
	WQ_ROUTE_DEL,
	WQ_ADOPT,                 /* conn with parsed CONNECT resumes sess here */
	WQ_KILL,                  /* sess ends (taken over by a clean start) */
	WQ_KICK,                  /* close sess's connection (admin / shutdown) */
	WQ_FWD_IN,                /* a message forwarded by another node: deliver here */
	WQ_GATE_RELEASE,          /* the cluster confirmed gate token u.token */
	WQ_TAKEOVER_IMPORT,       /* a session handed over by another node: rebuild it here */
	WQ_TAKEOVER_DONE,         /* the other nodes answered about a connecting client id */
	WQ_TAKEOVER_OUT,          /* another node takes sess over: close, hand it out */
	WQ_STORE_DONE,            /* the store thread applied u.batch (brk_store.c) */
	WQ_CLOSE_LISTENERS,       /* shutdown drain: stop accepting (broker_drain) */
	WQ_ADOPT_NODE,            /* u.filter (owned): a dead node's name; take its sessions */
	WQ_MOVE_FENCE,            /* a session of worker sub_id moved to another node:
				   * fence our forwards (clu_fence.c) */
	WQ_MOVE_FENCE_BACK,       /* to that worker, behind what worker sub_id delivered
				   * to the session: mark fence u.token */
	WQ_AUTH_DONE,             /* an auth thread answered: u.auth (owned) */
	WQ_SWITCH_MARK,           /* behind new routes: echo route switch u.token to the
				   * cluster thread (clu_switch.c) */
	WQ_CALL,                  /* run u.call on this worker for another thread (brk_call.c) */
	WQ_LISTEN,                /* the peers' routes are known: accept (clu_start.c) */
};

/* WQ_TAKEOVER_IMPORT / DONE / OUT */
struct takeover_msg {
	uint8_t *blob;            /* IMPORT: the serialised session (owned) */
	char *client_id;          /* IMPORT: owned; OUT without a session: owned id to look up */
	struct clu_peer *member;  /* OUT: the asking node */
	struct session *node_sess; /* OUT: its node session (reference), for routes */
	uint64_t id;              /* IMPORT: the cluster's takeover id; DONE: the waiting
				   * connection's token; OUT: request id */
	uint32_t blob_len;
	uint32_t link_gen;        /* OUT */
	uint8_t status;           /* DONE: enum clu_takeover_status */
	bool clean_start;         /* OUT */
};

/* WQ_FWD_IN: struct fwd_in, in brk_clu.h (the cluster builds it). */

struct wq_entry {
	uint8_t kind;
	uint8_t options;          /* WQ_ROUTE_*: options; WQ_GATE_RELEASE: 1 = failed */
	uint32_t sub_id;
	struct session *sess;     /* reference */
	/* WQ_DELIVER: the publisher's gate (brk_store_tok_remote) released once
	 * the delivery is stored, or at once if it needs no storing; 0 = none */
	uint64_t ack_token;
	union {
		struct deliv d;       /* WQ_DELIVER */
		char *filter;         /* WQ_ROUTE_*, WQ_ADOPT_NODE: owned */
		struct conn *conn;    /* WQ_ADOPT: owned while in the queue */
		struct fwd_in fwd;    /* WQ_FWD_IN */
		uint64_t token;       /* WQ_GATE_RELEASE, WQ_MOVE_FENCE_BACK */
		struct takeover_msg takeover; /* WQ_TAKEOVER_* */
		struct store_batch *batch; /* WQ_STORE_DONE: owned */
		struct auth_answer *auth; /* WQ_AUTH_DONE: owned */
		struct brk_call *call;    /* WQ_CALL: one reference (brk_call.c) */
	} u;
};

struct wq_vec {
	struct wq_entry *v;
	uint32_t len, cap;
};

/* ---- statistics ---- */

struct brk_stats {
	/* by QoS (msgs_in: as published; msgs_out: as delivered) and by
	 * listener (cfg->listeners index, conn.lidx): the totals are their sums
	 * (broker_get_info), so the hot path still adds to one counter */
	_Atomic uint64_t msgs_in[3], msgs_out[3];
	_Atomic uint64_t bytes_in[CONF_MAX_LISTENERS], bytes_out[CONF_MAX_LISTENERS];
	_Atomic uint64_t msgs_dropped, conns_total;
	_Atomic uint64_t dropped_by[BRK_DROP_N];  /* msgs_dropped by reason */
	_Atomic int64_t conns_now;
	/* src/auth/: CONNECTs the chain accepted / refused, ACL decisions */
	_Atomic uint64_t auth_ok, auth_refused, acl_allow, acl_deny;
};
/* Counters have one writer (the owning worker); others only read. A relaxed
 * load+store avoids a locked instruction per message. */
#define STAT_ADD(field, n) \
	atomic_store_explicit(&(field), atomic_load_explicit(&(field), memory_order_relaxed) + (n), \
			      memory_order_relaxed)
#define STAT_GET(field) atomic_load_explicit(&(field), memory_order_relaxed)

/* ---- a match in progress (publish path scratch, per worker) ---- */

struct match_hit {
	struct session *sess;     /* borrowed from the replica */
	const char *share_group;  /* borrowed, NULL for non-shared */
	uint32_t sub_id;
	uint8_t options;
};

/* ---- worker ---- */

/* What a worker keeps for the cluster (brk_cluster.c, brk_publish.c). */
struct wk_cluster {
	struct clu_req_vec out;           /* requests for the cluster thread, handed over in before-sleep */
	struct conn_wait *waits;          /* uthash by token: connections in cluster_wait */
	uint64_t fwd_token;               /* set by the publish path: gate for QoS>0 forwards */
	uint32_t fwd_pending;             /* forwards that will release fwd_token */
	const struct fwd_in *fwd_from;    /* set while routing a forwarded message */
	struct fwd_wait *fwd_waits;       /* FORWARD_ACKs waiting for the store (uthash by token) */
	/* requests held until a batch holding an incoming QoS 2 id is stored
	 * (brk_cluster_hold), FIFO; owned */
	struct clu_held *held_head, *held_tail;
	/* brk_handover.c: sessions handed over whose routes still catch what
	 * other nodes forward here (owned list); this worker's message ids;
	 * the publisher's token a posted delivery carries while its session
	 * runs it (sess_deliver_posted), 0 once a relay took it */
	struct hov_ghost *ghosts;
	uint64_t next_mid;
	uint64_t relay_ack;
};

struct worker {
	int id;
	struct broker *b;
	pthread_t thread;
	struct ev_loop *loop;
	struct topic_tree *routes;        /* replica of all subscriptions of the node */
	int *lfds;                        /* listening sockets (SO_REUSEPORT), one per listener */
	struct ev_io *lios;
	bool *lproxy;                     /* listener expects a PROXY protocol header */
	struct tls_srv **ltls;            /* listener's TLS context (broker's), NULL for tcp */
	int n_lfds;
	struct accept_guard accept;       /* accept() out of resources: pause, refuse, count */
	struct linger_set *linger;        /* sockets closed after a last packet, still draining */
	struct conn *conns;               /* utlist DL */
	struct conn *dirty;               /* singly linked via dirty_next */
	struct conn *closed;              /* singly linked via free_next */
	struct session *offline;          /* offline sessions with a timer (expiry/will) */
	struct conn_thr *throttled;       /* publishers paused for back-pressure */
	struct conn_rl *rl_paused;        /* clients paused over their rate (brk_ratelimit.c) */
	int *lcfg;                        /* per listening socket: its index of cfg->listeners */
	uint32_t lrate_paused;            /* listening sockets paused by max_conn_rate (bits) */
	int64_t lrate_resume_at;          /* monotonic ms they are watched again */
	struct session *congested;        /* set by brk_route: a live target whose queue is long */
	/* inbox of struct wq_entry: filled by other workers, the cluster and
	 * store threads, swapped by this one (core/inbox.h) */
	struct inbox inbox;
	/* outboxes: one per destination worker, flushed in before-sleep */
	struct wq_vec *outbox;
	uint8_t rbuf[65536];              /* every read lands here first (brk_conn.c) */
	/* match scratch */
	struct match_hit *hits;
	uint32_t n_hits, cap_hits;
	unsigned rand_state;
	struct brk_stats st;
	/* queued bytes added (+) or removed (-) by this worker and not yet
	 * added to broker.queued_total (brk_qbound.c); one writer, read by
	 * broker_get_info */
	_Atomic int64_t queued_local;
	int64_t next_sys_ms;
	/* held responses (brk_gate.c): stay here, the store's gates use them too */
	struct gate_item *gates;          /* uthash by token */
	uint64_t next_token;
	struct wk_cluster clu;            /* the worker's cluster side (embedded: one per worker) */
	struct store_batch *store_batch;  /* this turn's store events, or NULL (brk_store.c) */
	struct store_seen *store_msgs;    /* message ids put in store_batch (uthash; brk_store.c) */
	uint64_t store_nev;               /* events appended ever (brk_store_mark) */
	/* store_batch holds an incoming QoS 2 id: it goes to the store before
	 * this turn's deliveries reach other workers (brk_store_rxid) */
	bool store_first;
	struct store_wait *store_waits;   /* connections waiting for a store read (uthash by token) */
	struct auth_wait *auth_waits;     /* connections waiting for an auth thread (uthash by token) */
	/* the gate token of the request being handled whose response waits for
	 * what the request stores (a QoS>=1 PUBLISH): deliveries posted to other
	 * workers carry it (brk_deliver.c); 0 = none */
	uint64_t store_tok;
	uint32_t store_tok_remote;        /* such deliveries posted (counted in the gate) */
	/* while a QoS 2 message is delivered for the first time: the entries
	 * stored for it carry its marks (brk_rxmark.c); compared only */
	const struct brk_msg *rx_mark;
	/* while a resent QoS 2 message loaded unconfirmed is routed: the
	 * targets that have it already (borrowed from the publish path) */
	const struct rx_unconf *route_skip;
	/* broker.trace_word as loaded for the packet being handled (brk_trace_in),
	 * and the subscriptions the last brk_route matched (its line) */
	uint64_t trace_word;
	uint32_t route_hits;
	/* issue 12 archive (brk_archive.c): this turn's copies per archive,
	 * handed to the archives in before-sleep; NULL without archives */
	struct brk_arc_pend *arc_pend;
	uint64_t arc_seq;                 /* the message ids' counter */
};

struct conn_wait {
	uint64_t token;
	struct conn *c;
	struct session *sess;     /* reference: a session taken over, attached on release */
	UT_hash_handle hh;
};

/* ---- the node ---- */

struct broker {
	struct hq_config *cfg;            /* borrowed from main */
	struct worker *workers;
	int n_workers;
	int64_t start_ms;                 /* monotonic */
	int64_t start_wall_ms;
	atomic_bool stopping;             /* draining or stopped: accepts nothing new */
	atomic_bool ready;                /* worker threads started */
	atomic_bool start_hold;           /* listeners wait for the peers' routes (clu_start.c) */
	bool wound_down;                  /* broker_shutdown ran (main thread only) */
	atomic_int conns_now;             /* live connections, for max_connections */
	atomic_int conns_by_type[CONF_LT_COUNT]; /* the same per listener type (/metrics) */
	struct ovl *ovl;                  /* overload protection (brk_overload.c, owned) */
	struct brk_banned *banned;        /* banned list, flapping (brk_banned.c, owned) */
	struct repl *repl;                /* replicated tables (repl/repl.h, owned; issue 10) */
	atomic_bool mem_high;             /* above overload.memory_high_watermark */
	atomic_uint_fast64_t next_id;     /* session ids (internal; assigned client ids are random) */
	/* client id registry: connect path only */
	pthread_mutex_t reg_lock;
	struct session *registry;         /* uthash on reg_hh: one reference each */
	/* retained messages */
	pthread_mutex_t retain_lock;
	struct retain_tree *retained;
	struct clu_hlc hlc;               /* stamps retained writes; under retain_lock */
	uint32_t topic_alias_max;         /* cached cfg */
	/* node-wide queued bytes (brk_qbound.c): the sum of every worker's
	 * flushed batches and of changes made off the workers */
	_Atomic int64_t queued_total;
	_Atomic int64_t node_full_log_ms;  /* last "node queue limit" log line */
	_Atomic uint64_t node_full_drops;  /* BRK_DROP_NODE_FULL, for that line */
	_Atomic uint64_t node_full_logged; /* node_full_drops at the last line */
	struct store *store;
	struct store_runner *store_run;   /* the store thread; NULL when not durable. Written
					   * at start and by brk_store_stop under store_info_lock,
					   * which the HTTP thread's reads take (broker_store_info) */
	pthread_mutex_t store_info_lock;
	_Atomic uint64_t next_msg_id;     /* stored message ids (brk_store.c) */
	struct clu_node *clu;             /* NULL when clustering is off */
	atomic_uint ghosts;               /* sessions handed over whose routes linger (brk_handover.c) */
	struct tls_srv *tls[CONF_MAX_LISTENERS]; /* per ssl listener (index of cfg->listeners),
					   * owned; freed after every connection */
	struct auth *auth;                /* the authentication chain and ACL (owned) */
	int data_lock_fd;                 /* flock on <data_dir>/hamqttd.lock; -1: none */
	/* node names of loaded retained stamps (msg_stamp.origin borrows them;
	 * owned, freed with the broker) */
	char **origins;
	uint32_t n_origins;
	/* /metrics (brk_prom.c): subscriptions of the node's sessions (changed
	 * wherever a session's subs table is, any thread: atomic adds) and the
	 * sampled session snapshot, refreshed at most once a second */
	_Atomic int64_t subs_now;
	pthread_mutex_t prom_lock;
	struct brk_prom_sample *prom_sample;   /* owned, under prom_lock */
	/* issue 11 "ops": alarms (brk_alarm.c, owned; its thread), traces
	 * (brk_trace.c, owned) and their word: generation << 32 | topic traces
	 * (relaxed atomic, the hot path's one load), the flood guard of the
	 * lines about refused connections and ACL denials */
	struct brk_alarms *alarms;
	struct brk_traces *traces;
	_Atomic uint64_t trace_word;
	struct log_rl deny_rl;
	/* cluster-wide REST API (brk_rpc.c): the HTTP server's executor, called
	 * by the cluster thread under api_lock (broker_set_api_handler) */
	pthread_mutex_t api_lock;
	broker_api_fn *api_fn;
	void *api_arg;
	/* issue 12 archive (brk_archive.c): the set (main's; NULL: none, the
	 * publish path's one test) and this run's random id prefix */
	struct archive_set *arc;
	char arc_prefix[17];
};
/* brk_prom.c: s's subscription table grew (+) or shrank (-) by delta */
static inline void brk_prom_subs(struct session *s, int64_t delta)
{
	if (s->w)
		atomic_fetch_add_explicit(&s->w->b->subs_now, delta, memory_order_relaxed);
}
void brk_prom_free(struct broker *b);

/* ---- thread ownership, checked ---- */

/* The worker whose state this thread may touch (connections, sessions,
 * replica, outboxes, gates, store batch): set once by each worker thread
 * (worker_main); during shutdown, when no worker thread runs any more, the
 * main thread takes each worker's part in turn (wk_act_as in broker_shutdown
 * and broker_free); NULL on every other thread (main, cluster, store, HTTP).
 * Functions that touch worker-owned state start with WK_ASSERT_OWNER on the
 * worker that owns it: one TLS load and a compare, in every build without
 * NDEBUG (the default build keeps asserts). Not checked on purpose: the last
 * sess_unref (frees a session's contents on whatever thread drops it) and
 * conn_free (a connection in transit in a WQ_ADOPT entry has no worker). */
extern _Thread_local struct worker *wk_cur;
static inline struct worker *wk_current(void)
{
	return wk_cur;
}
#ifdef NDEBUG
#define WK_ASSERT_OWNER(w) ((void)0)
#else
#define WK_ASSERT_OWNER(w) assert(wk_cur == (w))
#endif

/* ---- functions shared between broker files ---- */

/* brk_worker.c */
/* Release what an inbox entry holds without acting on it (shutdown). */
void wq_entry_release(struct wq_entry *e);
void wk_post(struct worker *from, struct worker *to, const struct wq_entry *e);
/* Hand every outbox to its worker now (normally done once per loop turn). */
void wk_flush_outboxes(struct worker *w);
/* Start-up load and shutdown only: the main thread acts as worker w (NULL: none). */
void wk_act_as(struct worker *w);
void wk_conn_add(struct worker *w, struct conn *c);
void wk_conn_remove(struct worker *w, struct conn *c);

/* brk_conn.c */
struct conn *conn_new(struct worker *w, int fd, const char *addr, bool expect_proxy,
		      struct tls_srv *tls, int lidx);
/* brk_bridge.c: a bridge's local side on fd (the worker's end of a
 * socketpair); NULL after a log line when it cannot be watched. */
struct conn *conn_new_internal(struct worker *w, int fd, const char *label, uint32_t qmax);
/* brk_ws.c: the transport of a new connection on a listener of type L->type
 * (TLS, WebSocket, both; nothing on tcp). HQ_OK, or HQ_ENOMEM after a log line. */
int conn_xp_new(struct conn *c, struct tls_srv *tls, const struct conf_listener *L);
/* brk_ws.c: the transport's handshakes (PROXY header, TLS, WebSocket upgrade)
 * from the event loop. HQ_OK once done (c->xp_ready), HQ_EAGAIN (waiting for
 * the socket), or an error after closing the connection with a log line. */
int conn_xp_start(struct conn *c);
/* brk_ws.c: a read or write of an established transport failed: close with
 * one log line naming the listener and the transport's reason. */
void conn_xp_failed(struct conn *c);
/* brk_ws.c: bytes below the MQTT stream before the transport is ready (an
 * HTTP refusal): through TLS when there is one, else -1 (the lingering close
 * sends c->out raw). */
ssize_t conn_xp_raw_write(struct conn *c, const void *p, size_t n);
/* brk_ws.c: free the transport (fd stays the caller's) */
void conn_xp_free(struct conn *c);
/* brk_tls.c: the PROXY header (if expected) and the TLS handshake of a
 * connection on an ssl listener. HQ_OK once established (read on), HQ_EAGAIN
 * (waiting for the socket), or an error after closing the connection. */
int conn_tls_handshake(struct conn *c);
/* A PROXY header at p[0..n): its length, HQ_EAGAIN, or an error after closing
 * the connection (brk_conn.c). Sets c->addr to the client's real address. */
int conn_proxy_header(struct conn *c, const uint8_t *p, size_t n);
void conn_mark_dirty(struct conn *c);
void conn_close(struct conn *c, int reason, const char *why);
void conn_close_after_gate(struct conn *c, uint8_t reason, const char *why);
/* a closing connection whose held responses never leave is closed anyway */
#define CONN_CLOSING_MAX_MS 5000
void conn_free(struct conn *c);
void conn_flush(struct conn *c);
void conn_io_cb(struct ev_loop *l, struct ev_io *io, unsigned events);
void conn_process_input(struct conn *c);
bool conn_writable(const struct conn *c);
void conn_add_payload_seg(struct conn *c, struct brk_msg *m);
void conn_send_packet(struct conn *c, const struct mqtt_packet *p);
void conn_send_ack(struct conn *c, uint8_t type, uint16_t pid, uint8_t reason);
void conn_send_disconnect(struct conn *c, uint8_t reason, const char *reason_string);
static inline bool conn_reading(const struct conn *c)
{
	return !c->paused && !c->thr && !c->rl_paused && !c->closing && c->state != CS_CLOSED;
}
void conn_throttle(struct conn *c, struct session *t);
void wk_check_throttled(struct worker *w, int64_t now);
bool sess_congested(const struct session *t, const struct hq_config *cfg, int64_t now);

/* An ACL decision for ac (auth.h), counted on w (allow/deny in /metrics). */
static inline bool brk_acl_allow(struct worker *w, struct auth_client *ac, unsigned access,
				 const char *topic, size_t len, bool is_filter)
{
	bool ok = auth_client_allow(ac, access, topic, len, is_filter);
	if (ok)
		STAT_ADD(w->st.acl_allow, 1);
	else
		STAT_ADD(w->st.acl_deny, 1);
	return ok;
}

/* brk_dispatch.c */
int brk_handle_packet(struct conn *c, const uint8_t *p, size_t n);
uint8_t brk_reason_from_err(int err);

/* brk_connect.c */
int brk_handle_connect(struct conn *c, const struct mqtt_packet *p);
int brk_handle_connect_error(struct conn *c, const uint8_t *p, size_t n, int rc, const char *why);
void brk_adopt(struct worker *w, struct conn *c, struct session *s);

/* brk_session.c */
void sess_attach(struct session *s, struct conn *c, bool present);
void sess_detach(struct session *s, struct conn *c);
void sess_end(struct session *s, bool publish_will);
void sess_kill(struct session *s, uint8_t reason);
void sess_timers(struct worker *w, int64_t now);
void sess_set_will(struct session *s, struct brk_msg *will, uint32_t delay);
void sess_publish_will(struct session *s);
int sess_rx_pid_add(struct session *s, uint16_t pid);   /* HQ_EEXIST if present */
/* brk_rxmark.c: exactly once across workers (see there) */
void brk_rxmark_msg(struct session *pub, struct brk_msg *m, uint16_t pid);
/* The mark's target of d for s ('c' + client id, 'g' + group) into out;
 * its length, 0 if it does not fit. */
size_t brk_rxmark_target(const struct session *s, const struct deliv *d, char *out, size_t cap);
void sess_rx_unconf_add(struct session *s, uint16_t pid);
void sess_rx_unconf_mark(struct session *s, uint16_t pid, const uint8_t *target, size_t len);
struct rx_unconf *sess_rx_unconf_take(struct session *s, uint16_t pid); /* NULL: none */
void sess_rx_unconf_give_back(struct session *s, struct rx_unconf *u);
void sess_rx_unconf_drop(struct session *s, uint16_t pid);
void sess_rx_unconf_free_all(struct session *s);
void rx_unconf_free(struct rx_unconf *u);
bool sess_rx_unconf_has(struct session *s, uint16_t pid);
/* pid's marks must be read from the store before its resend is routed. */
void sess_rx_unconf_unread(struct session *s, uint16_t pid);
/* Each target of u in its mark encoding ('c'/'g' + name; bytes borrowed). */
void rx_unconf_each(const struct rx_unconf *u,
		    void (*cb)(void *ctx, const uint8_t *target, size_t len), void *ctx);
/* A set built elsewhere (a FORWARD's skip set): empty, then a target in the
 * marks' encoding ('c'/'g' + name; others ignored) at a time. */
struct rx_unconf *rx_unconf_new(uint16_t pid);
void rx_unconf_add_target(struct rx_unconf *u, const uint8_t *target, size_t len);
/* u's targets in the marks' encoding, NUL terminated: an owned array of n
 * owned strings (NULL when none). */
char **rx_unconf_targets(const struct rx_unconf *u, uint32_t *n);
/* Has the target (a client's plain delivery, or a group's) the message? */
bool rx_unconf_has(const struct rx_unconf *u, const char *client_id, const char *share_group);
bool sess_rx_pid_del(struct session *s, uint16_t pid);
void reg_remove_if(struct broker *b, struct session *s);
void sess_offline_update(struct session *s);

/* brk_deliver.c */
void sess_deliver(struct session *s, struct deliv *d);    /* takes ownership of d's refs */
/* Outgoing QoS 1/2 messages s may have in flight now: mqtt.max_inflight, or
 * less if its connection's Receive Maximum says so. */
uint32_t sess_window(const struct session *s);
void sess_pump(struct session *s);
void sess_resend_inflight(struct session *s);
void sess_handle_puback(struct session *s, uint8_t type, uint16_t pid, uint8_t reason);
void sess_redispatch_shared(struct session *s);
/* Start-up (brk_store_load.c): d (owned) back into s's window (in flight,
 * its packet id kept) or queue, in the stored order. */
void sess_load_deliv(struct session *s, struct deliv *d, bool inflight);

/* brk_retained_out.c: retained messages on subscribe, paced by the window */
void sess_retained_start(struct session *s, const char *filter, uint8_t options, uint32_t sub_id);
/* The next retained delivery's QoS; false when none is pending. */
bool sess_retained_peek(const struct session *s, uint8_t *qos);
/* Move the next retained delivery into *d (owned by the caller). */
void sess_retained_take(struct session *s, struct deliv *d);
uint32_t sess_retained_pending(const struct session *s);
/* Calls fn for each pending retained delivery in order (d borrowed). */
void sess_retained_each(const struct session *s, void (*fn)(void *ctx, const struct deliv *d),
			void *ctx);
void sess_retained_free(struct session *s);

/* brk_publish.c */
int brk_handle_publish(struct conn *c, const struct mqtt_packet *p);
/* Borrows msg. False: refused, nothing delivered (a QoS > 0 publish while a
 * node with matching routes is unreachable and the store is shared). */
bool brk_route(struct worker *w, struct brk_msg *msg);
/* brk_retain.c (the one retained writer; brk_retain_apply in brk_clu.h). Store (or, empty, delete) a retained message written on this node and
 * tell the other nodes. True if they were told (a QoS > 0 publisher may then
 * wait for them: brk_cluster_retain_barrier). */
bool brk_retain_store(struct worker *w, struct brk_msg *msg);
/* Start-up (brk_store_load.c): m (a reference, consumed) becomes its topic's
 * retained message with its stored stamp; origin outlives the broker's use. */
void brk_retain_load(struct broker *b, struct brk_msg *m, struct clu_hlc_ts ts, const char *origin);

/* brk_subscribe.c */
int brk_handle_subscribe(struct conn *c, const struct mqtt_packet *p);
int brk_handle_unsubscribe(struct conn *c, const struct mqtt_packet *p);
void brk_route_broadcast(struct worker *w, enum wq_kind kind, struct session *s,
			 const char *filter, uint8_t options, uint32_t sub_id);
void brk_route_apply(struct worker *w, enum wq_kind kind, struct session *s,
		     const char *filter, uint8_t options, uint32_t sub_id);

/* brk_gate.c */
uint64_t gate_token_new(struct worker *w);
/* Hold every response of c from now on until token is released `remaining` times. */
void gate_open(struct conn *c, uint64_t token, uint32_t remaining);
/* The same for an outgoing PUBLISH: every later write to c waits too. */
void gate_open_out(struct conn *c, uint64_t token);
/* Move the bytes c->out got since `mark` into the gate if c is gated. */
void gate_capture(struct conn *c, size_t mark);
bool gate_release(struct worker *w, uint64_t token);   /* false: no such gate */
/* What token waited for failed: its responses never leave; the connection
 * is closed (v5: DISCONNECT 0x80 with why) so the client sends again. */
bool gate_fail(struct worker *w, uint64_t token, const char *why);
/* The newest gate of c holds the PUBREC of incoming QoS 2 packet id pid. */
void gate_tail_rx_pid(struct conn *c, uint16_t pid);
void gate_conn_free(struct conn *c);

/* brk_sys.c */
void brk_sys_publish(struct worker *w);

/* brk_qbound.c: per-reason drop counters and the node-wide queued bytes */
/* Count one message dropped for `reason` on worker w (w's thread). */
void brk_drop_count(struct worker *w, enum broker_drop_reason reason);
/* Queued bytes changed by delta on w's thread (batched into the total). */
void brk_queued_add(struct worker *w, int64_t delta);
/* The same from any thread (session import, last unref): straight to the total. */
void brk_queued_add_shared(struct broker *b, int64_t delta);
/* Would `need` more bytes queued for s cross the node-wide bound? An
 * offline session may use 3/4 of it, a connected one all of it. */
bool brk_queued_over(const struct session *s, uint64_t need);
/* The node-wide total, as well as it is known (any thread). */
int64_t brk_queued_total(struct broker *b);

uint32_t brk_hash(const char *s, size_t n);

/* brk_deliver.c */
void brk_deliver_to(struct worker *w, struct session *t, struct deliv *d);
/* The owner takes in a WQ_DELIVER entry (or releases it at shutdown): the
 * delivery no longer counts as in transit (session.inbound). */
void sess_deliver_posted(struct session *s, struct deliv *d, bool run, uint64_t ack_token);

#include "broker/brk_int_ovl.h"
#include "broker/brk_int_clu.h"
#include "broker/brk_int_ops.h"
#include "broker/brk_store.h"

/* ---- issue 12 archive (brk_archive.c) ---- */
/* A QoS>=1 PUBLISH of topic: how many ack = stored archives take it (its
 * PUBACK waits for each), or -1 when one of them is full (refuse it). */
int brk_archive_hold(struct worker *w, const char *topic, size_t tlen);
/* Copy m for every archive that takes it (published here: a client's, a
 * will, the REST API's); tok: the gate token the ack = stored ones release
 * (0: none). Returns how many copies hold tok. */
uint32_t brk_archive_take(struct worker *w, const struct brk_msg *m, const char *clientid,
			  const char *username, uint64_t tok);
void brk_archive_flush(struct worker *w); /* before-sleep: hand this turn's copies over */
void brk_archive_worker_free(struct worker *w);

#endif
