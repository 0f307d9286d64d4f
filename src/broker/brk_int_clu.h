/*
 * brk_int_clu.h - private to src/broker/ (included at the end of brk_int.h,
 * never on its own): the functions broker files share for the cluster
 * (brk_cluster.c, brk_handover.c, the fence) and for authentication that waits
 * for a server or an AUTH exchange (brk_auth.c, brk_eauth.c). The objects and
 * the ownership rules are brk_int.h's.
 */
#ifndef HQ_BRK_INT_CLU_H
#define HQ_BRK_INT_CLU_H

/* brk_cluster.c: the broker side of the cluster runtime */
void brk_cluster_route(struct worker *w, bool add, const char *filter);
/* After route changes: gate c's SUBACK until every peer has them (no-op alone). */
void brk_cluster_barrier(struct conn *c);
void brk_cluster_flush(struct worker *w);
/* Before a store batch holding an incoming QoS 2 id is submitted: hold the
 * requests so far (and all later ones) until that batch is stored; returns
 * the token to put in the batch, 0 if nothing needs holding. */
uint64_t brk_cluster_hold(struct worker *w);
bool brk_cluster_held_release(struct worker *w, uint64_t token); /* false: not ours */
void brk_cluster_held_tick(struct worker *w, int64_t now);
void brk_cluster_held_free(struct worker *w);
void brk_route_forwarded(struct worker *w, struct fwd_in *f);  /* consumes f */
void fwd_in_release(struct fwd_in *f);
void brk_cluster_drop_remote_routes(struct worker *w);   /* shutdown */
/* A store confirmation (or failure) for a held FORWARD_ACK; false: not one. */
bool brk_cluster_fwd_wait_done(struct worker *w, uint64_t token, bool failed);
void brk_cluster_fwd_waits_free(struct worker *w);       /* shutdown */
/* A gate token's confirmation, whatever waits on it: a held response, a
 * connection waiting for the cluster, a held FORWARD_ACK. */
void brk_token_done(struct worker *w, uint64_t token, bool failed);
/* CONNECT: ask the other nodes about c's client id first (true: c waits). */
bool brk_cluster_takeover_begin(struct conn *c);
/* imported: a session handed over (WQ_TAKEOVER_DONE's sess, borrowed) or NULL */
void brk_cluster_takeover_done(struct worker *w, struct session *imported, struct takeover_msg *t);
void brk_cluster_takeover_out(struct worker *w, struct session *s, struct takeover_msg *t);
/* WQ_TAKEOVER_IMPORT: rebuild the session on its owner, route it, tell the cluster. */
void brk_cluster_takeover_import(struct worker *w, struct takeover_msg *t);
void brk_cluster_conn_free(struct conn *c);
/* A delivery for a session that moved to another node goes there. */
void brk_cluster_forward_moved(struct session *s, struct deliv *d);

/* brk_handover.c: what another node forwards for a session that moves away
 * from here keeps following it, and a session that moved here gets each of
 * those messages once (ARCHITECTURE.md "Takeover"). */
/* A replica entry only forwarded messages match: a session handed over. */
#define BRK_SUBOPT_FWD_ONLY 0x80
/* The old owner, as s is handed over (before sess_end): its plain routes stay. */
void brk_handover_ghost(struct worker *w, struct session *s);
/* sess_end: true if filter's routes stay (the ghost withdraws them later). */
bool brk_handover_keeps(const struct session *s, const char *filter);
void brk_handover_tick(struct worker *w, int64_t now);
void brk_handover_free(struct worker *w);                /* shutdown */
/* The new owner, s just imported: second copies are dropped for a while. */
void brk_handover_dedup_start(struct session *s, int64_t now);
/* s (its owner) is about to get msg: true if it had it already (drop). */
bool brk_handover_dup(struct session *s, const struct brk_msg *msg, int64_t now);
#define HOV_DEDUP_MS 15000        /* the ghost's life plus relays still on their way */
#define HOV_DEDUP_MAX 65536       /* ids kept per session (oldest forgotten first) */
void brk_handover_dedup_free(struct session *s);
/* A new id for a message published on this worker (cluster only). */
uint64_t brk_handover_mid(struct worker *w);
/* Per-publisher order across a hand-over (clu_fence.c): on a worker whose
 * replica now sends a session of worker `owner` to another node, and on
 * that owner when the worker's fence comes back. */
void brk_cluster_move_fence(struct worker *w, int owner);
void brk_cluster_move_fence_back(struct worker *w, int from, uint64_t token);
/* d (DV_SHARED) goes to its group's members on node_sess's node; d is emptied. */
void brk_cluster_forward_shared(struct worker *w, struct session *node_sess, struct deliv *d);
/* c (in CS_WAIT) attaches s once token is released (every peer has s's routes). */
void brk_cluster_attach_after_barrier(struct conn *c, struct session *s);
bool brk_cluster_wait_release(struct worker *w, uint64_t token);
void brk_connect_attach(struct conn *c, struct session *s);

/* brk_connect.c: continue a CONNECT after the cluster answered; blob (may be
 * NULL) is the session another node handed over. */
void brk_connect_resume(struct conn *c, uint8_t status, struct session *imported);
bool brk_session_import(struct worker *w, struct session *s);
/* From the cluster thread: append entries to worker w's inbox and wake it. */
void wk_inbox_append(struct worker *w, const struct wq_entry *v, uint32_t n);

/* brk_auth.c: CONNECTs waiting for a server authentication method */
/* Ask the chain for c; AUTH_PENDING: c waits, not read, until
 * brk_connect_auth_done (or closes meanwhile, and the answer is dropped). */
enum auth_rc brk_auth_begin(struct conn *c, const struct auth_req *r, const char **why);
/* The auth thread's callback (auth_set_done; arg: the broker). */
void brk_auth_done_cb(void *arg, struct auth_answer *ans);
/* WQ_AUTH_DONE on the asking worker (consumes ans). */
void brk_auth_answer(struct worker *w, struct auth_answer *ans);
void brk_auth_conn_free(struct conn *c);
/* brk_connect.c: the chain answered for c (in CS_WAIT) */
void brk_connect_auth_done(struct conn *c, const struct auth_answer *ans);
/* brk_connect.c: a refusing CONNACK (v5 reason), logged, then close */
void brk_connect_refuse(struct conn *c, uint8_t v5_reason, const char *why);
/* brk_eauth.c: v5 enhanced authentication (AUTH packets). begin: CONNECT
 * named method: c->eauth, or HQ_EAUTH when not supported (0x8C). connect:
 * the CONNECT's data, instead of the chain. pre_connack: a packet while
 * the exchange runs (CS_NEW with c->eauth). packet: AUTH on a live
 * connection (re-authentication). connack_props/sent: the CONNACK's method
 * and server data. */
int brk_eauth_begin(struct conn *c, const struct mqtt_str *method);
int brk_eauth_connect(struct conn *c, const struct mqtt_connect *k);
int brk_eauth_pre_connack(struct conn *c, const uint8_t *p, size_t n);
int brk_eauth_packet(struct conn *c, const struct mqtt_packet *p);
void brk_eauth_connack_props(struct conn *c, struct mqtt_props *pr);
void brk_eauth_connack_sent(struct conn *c);
void brk_eauth_conn_free(struct conn *c);

#endif
