/*
 * brk_clu.h - the broker's services for the cluster runtime: the only way
 * src/cluster/ reaches the broker (ARCHITECTURE.md "Invariants").
 *
 * The cluster holds broker objects only as opaque handles (struct broker,
 * struct session, struct brk_msg) and never reads their fields, takes a
 * broker lock or builds a worker inbox entry: it asks for a view
 * (brk_clu_msg_view), a lookup (brk_clu_session_find) or posts work to a
 * worker (struct brk_post, handed over in one batch per loop turn).
 *
 * Threads: every function here may be called from the cluster thread. The
 * registry and retained lookups take the broker's own locks inside and hold
 * them only for the call (callbacks run under them: they must not call back
 * into the broker). Posts reach a worker at brk_post_flush (an import at once).
 *
 * References: a function returning a struct session * or struct brk_msg *
 * returns one reference, the caller's (release with brk_clu_session_unref /
 * brk_clu_msg_unref); a function taking one "consumes" it when it says so.
 */
#ifndef HQ_BROKER_BRK_CLU_H
#define HQ_BROKER_BRK_CLU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/broker.h"       /* struct broker_member (admin answers) */
#include "broker/topic.h"        /* pure topic helpers (topic_filter_shared) */
#include "cluster/clu_types.h"

struct broker;
struct session;
struct brk_msg;
struct clu_peer;
struct hq_config;
struct rx_unconf;

/* ---- the node ---- */

int brk_clu_n_workers(const struct broker *b);
struct hq_config *brk_clu_config(struct broker *b);
bool brk_clu_stopping(const struct broker *b);
/* Does the node's session store live outside it, shared by every node
 * (redis)? Then a dead node's sessions are resumed elsewhere, and what was
 * routed to it must not be acknowledged unstored. */
bool brk_clu_store_shared(const struct broker *b);
/* The node's replicated tables (repl/repl.h; owned by the broker), or NULL. */
struct repl *brk_clu_repl(struct broker *b);
/* Cluster-wide REST API: hand a peer's request to the HTTP server's
 * executor (broker_set_api_handler), which then owns it. false: no executor
 * (HTTP off, starting or stopping): the job is still the caller's. */
bool brk_clu_api_call(struct broker *b, struct broker_rpc_job *job);
/* The node's hybrid logical clock, now (shared with retained writes). */
struct clu_hlc_ts brk_clu_hlc_now(struct broker *b);

/* ---- sessions ---- */

/* A node session: stands for member m in every worker's replica (its routes
 * are m's subscriptions; a match becomes a FORWARD to m). */
struct session *brk_clu_node_session_new(struct broker *b, const char *name, struct clu_peer *m);
struct session *brk_clu_session_ref(struct session *s);
/* A node session's node is linked (up) or not: publishers on the workers
 * read it (brk_route: with a shared store, a publish matching an unreachable
 * node's routes is refused, not acknowledged). */
void brk_clu_node_session_up(struct session *node_sess, bool up);
void brk_clu_session_unref(struct session *s);
/* The registered session of a client id (a reference) and its worker, or NULL. */
struct session *brk_clu_session_find(struct broker *b, const char *client_id, size_t len,
				     int *worker);
/* Online with a connection stamped at attach: true and its stamp. */
bool brk_clu_session_connected(const struct session *s, struct clu_hlc_ts *since);
const char *brk_clu_session_client_id(const struct session *s);
/* Every online session's client id and connection stamp (under the registry
 * lock: fn must not call the broker). */
typedef void brk_clu_client_fn(void *ctx, const char *client_id, struct clu_hlc_ts since);
void brk_clu_clients_each(struct broker *b, brk_clu_client_fn *fn, void *ctx);
/* A session handed over by another node is rebuilt on its owning worker:
 * brk_post_takeover_import below. */

/* ---- messages ---- */

/* What the cluster encodes of a message (FORWARD, RETAIN_SET); pointers are
 * borrowed from the message. */
struct brk_msg_view {
	const char *topic;
	const uint8_t *props, *payload;
	uint32_t topic_len, props_len, payload_len;
	uint32_t expiry;          /* with has_expiry: seconds left (>= 1) */
	uint32_t pub_hash;
	uint8_t qos;
	bool retain, has_expiry;
	struct clu_hlc_ts ts;     /* as retained: when and where written */
	const char *origin;       /* NULL: not stamped */
	/* the publishing node's message id (0: none) and, when another node
	 * forwarded it here, that node (brk_msg's mid, fwd_origin) */
	uint64_t mid;
	struct clu_peer *fwd_origin;
	/* a QoS 2 message's publisher and packet id (FORWARD RX, brk_rxmark.c):
	 * rx_client_len 0 = none */
	const char *rx_client;
	uint32_t rx_client_len;
	uint16_t rx_pid;
};
void brk_clu_msg_view(const struct brk_msg *m, int64_t now_ms, struct brk_msg_view *v);
/* A message from another node (view's ts/origin ignored, its rx identity
 * kept); one reference. */
struct brk_msg *brk_clu_msg_new(const struct brk_msg_view *v, int64_t now_ms);
void brk_clu_msg_unref(struct brk_msg *m);

/* ---- retained messages ---- */

/* The one writer of the retained set (brk_retain.c), here for a write that
 * came from another node: topic's message becomes v (del: removed) stamped
 * (ts, origin) if newer(ctx, current stamp) says so, decided under the
 * retained lock (cur_origin NULL: nothing or an unstamped message held).
 * origin must outlive the node (a member's name). The store sees the write.
 * True if written. *ahead_ms: how far ts is ahead of this node's clock (0
 * normally; > 0 means clocks out of sync). */
typedef bool brk_retain_newer_fn(void *ctx, struct clu_hlc_ts cur_ts, const char *cur_origin);
bool brk_retain_apply(struct broker *b, const struct brk_msg_view *v, bool del,
		      struct clu_hlc_ts ts, const char *origin, brk_retain_newer_fn *newer,
		      void *ctx, int64_t *ahead_ms);
/* References to every stamped retained message (caller frees the array and
 * unrefs each). */
struct brk_msg **brk_clu_retained_snapshot(struct broker *b, size_t *n);

/* ---- work for the workers ---- */

/* A message another node sent here, for worker's inbox (WQ_FWD_IN). */
struct fwd_in {
	struct brk_msg *msg;      /* reference */
	char **groups;            /* owned "$share/g/f" strings the origin chose us for */
	char *client_id;          /* owned: for this client's session only, or NULL */
	struct session *target;   /* reference: that session, when the cluster thread knows it, or NULL */
	struct rx_unconf *skip;   /* owned: targets that have it stored (FORWARD SKIP), or NULL */
	struct clu_peer *member;  /* origin node (for the acknowledgement) */
	uint64_t seq;             /* 0 = QoS 0, nothing to acknowledge */
	uint32_t link_gen;
	uint16_t n_groups;
	bool plain;               /* deliver to the non-shared subscribers */
};

/* A FORWARD's skip set (owned; fwd_in_release frees it): empty, then one
 * target ('c'/'g' + name, the marks' encoding) at a time. */
struct rx_unconf *brk_clu_skip_new(uint16_t pid);
void brk_clu_skip_add(struct rx_unconf *u, const char *target, size_t len);

/* Entries for the workers, batched by the caller's thread and handed over by
 * brk_post_flush (one lock and at most one wakeup per worker). Entries to one
 * worker keep their order. */
struct brk_post *brk_post_new(struct broker *b);
/* Release what is still unsent (shutdown) and the batch itself. */
void brk_post_free(struct brk_post *p);
void brk_post_flush(struct brk_post *p);
/* A route of session s (a node session or an imported one) into every
 * worker's replica. */
void brk_post_route(struct brk_post *p, struct session *s, const char *filter, bool add,
		    uint8_t options, uint32_t sub_id);
void brk_post_forward(struct brk_post *p, int worker, struct fwd_in *f); /* f's contents move */
/* The FORWARDs naming client_id without a target, still unsent in p (an
 * import held them), get s as target (one reference each). */
void brk_post_forward_target(struct brk_post *p, const char *client_id, struct session *s);
void brk_post_gate_release(struct brk_post *p, int worker, uint64_t token);
/* Every worker echoes route switch token once it has the routes posted
 * before (CRQ_SWITCH_MARK, clu_switch.c). */
void brk_post_switch(struct brk_post *p, uint64_t token);
/* What token waited for failed: the waiting response never leaves, its
 * connection is closed and the client sends again. */
void brk_post_gate_fail(struct brk_post *p, int worker, uint64_t token);
/* Every worker starts watching its MQTT listeners (the start hold ends,
 * clu_start.c), behind the routes posted before. */
void brk_post_listen(struct brk_post *p);
/* Node `owner` is gone: take over its sessions from the shared store. */
void brk_post_adopt(struct brk_post *p, const char *owner);
/* s's connection is closed and the session ends (0x8E); consumes s. */
void brk_post_kill(struct brk_post *p, struct session *s);
/* The other nodes answered about the CONNECT waiting on token; imported
 * (consumed, may be NULL) is the session one of them handed over. */
void brk_post_takeover_done(struct brk_post *p, int worker, uint64_t token, uint8_t status,
			    struct session *imported);
/* Node `member` takes over a client id held here: s (consumed) or, when the
 * registry does not show it yet, client_id (copied) on `worker`. node_sess
 * (consumed, may be NULL) is member's node session. */
/* A session another node handed over (blob, copied) is rebuilt on `worker`,
 * which will own it: it routes it on every worker and answers with
 * CRQ_TAKEOVER_IMPORTED (id, the session or NULL). Appended to worker's inbox
 * at once, together with what p held for that worker (in order); the
 * caller holds everything for the other workers until that answer. */
void brk_post_takeover_import(struct brk_post *p, int worker, uint64_t id, const uint8_t *blob,
			      size_t len, const char *client_id);
void brk_post_takeover_out(struct brk_post *p, int worker, struct session *s,
			   const char *client_id, size_t id_len, struct clu_peer *member,
			   struct session *node_sess, uint64_t req_id, uint32_t link_gen,
			   bool clean_start);

#endif
