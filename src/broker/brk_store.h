/*
 * brk_store.h - the broker's side of the session store (ARCHITECTURE.md,
 * "Persistence"): the hooks that turn state changes into store events
 * (brk_store.c), the start-up rebuild and run-time reads (brk_store_load.c)
 * and the shared-store takeover and adoption (brk_store_shared.c). Broker
 * files only: it needs the structs of brk_int.h, which includes it last.
 */
#ifndef HQ_BRK_STORE_H
#define HQ_BRK_STORE_H

/* brk_store.c: state changes as store events (ARCHITECTURE.md "Persistence").
 * Each hook runs on the state's owning worker and costs one test when the
 * backend is not durable. */
int brk_store_open(struct broker *b, char *err, size_t errlen);
void brk_store_stop(struct broker *b);   /* apply and post back what is pending */
void brk_store_close(struct broker *b);
void brk_store_flush(struct worker *w);  /* before-sleep: hand the turn's batch over */
void brk_store_done(struct worker *w, struct store_batch *sb);   /* WQ_STORE_DONE */
/* The turn's batch releases gate token when stored (fails it otherwise). */
void brk_store_hold(struct worker *w, uint64_t token);
/* Under retain_lock, from the one retained writer (brk_retain.c): one batch
 * per write, completed on worker `owner`. Empty payload: delete. */
bool brk_store_retain(struct broker *b, uint32_t owner, const struct brk_msg *m, uint64_t token);
/* Header of s if persistent (expiry > 0); first time with its subscriptions.
 * s no longer persistent: deleted. */
void brk_store_session_put(struct session *s);
void brk_store_session_take(struct session *s);
void brk_store_session_delete(struct session *s);
void brk_store_sub_put(struct session *s, const struct sess_sub *sub);
void brk_store_sub_delete(struct session *s, const char *filter);
/* Queue entries of persistent sessions (QoS >= 1 only; no-ops otherwise).
 * put: d enters the queue or the window (gets d->seq); update: d's state
 * (in flight with its packet id, or waiting for PUBCOMP) changed; del: d is
 * done (acknowledged, dropped, expired, given to another session). */
void brk_store_qent_put(struct session *s, struct deliv *d);
void brk_store_qent_update(struct session *s, const struct deliv *d);
void brk_store_qent_del(struct session *s, struct deliv *d);
void brk_store_rxid(struct session *s, uint16_t pid, bool add);
/* Does s's state go to the store? (persistent session, durable backend) */
bool brk_store_persisting(const struct session *s);
/* Events appended by w so far (a mark: compare before and after a request). */
uint32_t brk_store_mark(const struct worker *w);
/* Gate tokens: a token of worker wid as another worker's batch carries it. */
uint64_t brk_store_tok_remote(int wid, uint64_t token);
/* Its worker (self when it carries none) and token. */
void brk_store_tok_split(uint64_t remote_token, int self, int *wid, uint64_t *token);
/* Release (or fail) such a token: to its worker through w's outbox. */
void brk_store_ack(struct worker *w, uint64_t remote_token, bool failed);
/* The response of the request just handled on c waits for what it stored
 * since mark (and for `pending` other confirmations); returns whether a
 * gate was opened. tok: the request's token or 0 (then one is made). */
bool brk_store_gate(struct conn *c, uint32_t mark, uint64_t tok, uint32_t pending);
/* Start-up: rebuild sessions and retained messages from the store, then
 * start the store thread (after the cluster node exists, before workers run). */
int brk_store_load(struct broker *b, char *err, size_t errlen);
int brk_store_start(struct broker *b, char *err, size_t errlen);   /* the store thread */
/* Run time: the session a read batch returned, built on w (one reference,
 * the caller's; not registered, no routes yet), or NULL. */
struct session *brk_store_build(struct worker *w, const struct store_batch *sb);

/* brk_store_shared.c: a store every node shares (redis) */
bool brk_store_shared(const struct broker *b);
/* CONNECT of c found no session on any node: read the store first (true: c
 * waits, the connect goes on in brk_connect_stored). */
bool brk_store_connect_read(struct conn *c);
void brk_store_read_done(struct worker *w, struct store_batch *sb);
/* The marks of s's unconfirmed QoS 2 id u->pid (u->unread) from the store,
 * unless a read is out already (at most one per READ_AGAIN_MS). */
void brk_store_marks_read(struct session *s, struct rx_unconf *u, int64_t now_ms);
/* s (built from the store, one reference) becomes this node's: registered,
 * owned in the store, routed on every worker and node. False if the id is
 * registered already: then the caller's reference is released with it;
 * true: the caller still holds it. */
bool brk_store_take(struct worker *w, struct session *s);
void brk_store_conn_free(struct conn *c);
/* A dead node's sessions still in the store: resumed here, offline. */
void brk_store_adopt_node(struct worker *w, const char *owner);
/* brk_connect.c: the connect of c goes on with the stored session s
 * (reference consumed) or NULL (none stored, or failed: refuse). */
void brk_connect_stored(struct conn *c, struct session *s, bool failed);

#endif
