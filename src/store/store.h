/*
 * store.h - the persistence interface (ARCHITECTURE.md "Persistence").
 *
 * The broker describes every change of persistent state as an event
 * (struct store_ev), appends the events of one loop turn to a batch
 * (struct store_batch, store_batch.c) and hands the batch to the store runner
 * (store_runner.c), one thread that applies batches in submission order
 * through a backend's ops table and posts each batch back to its owner.
 * Backends: memory (store_mem.c); local (LMDB) and redis plug in through the
 * same struct store_ops and must pass tests/unit/test_store.c.
 *
 * Ownership:
 *  - struct store_bytes inside an event is a borrowed view. store_batch_add
 *    copies every byte string the event's kind uses into the batch, so the
 *    caller's buffers may go as soon as it returns; the copies live as long as
 *    the batch (they never move: the batch's arena does not reallocate).
 *  - A batch belongs to whoever holds it: its builder, then the runner
 *    (store_runner_submit), then the completion callback, which must free it
 *    (store_batch_free) or pass it on (the broker: to the owning worker).
 *  - Backends copy what they keep (store_ev_clone). The load callback gets
 *    events whose bytes are borrowed for the duration of the call.
 *
 * Threads: a backend's apply/sync/load run on one thread at a time (the
 * runner thread, or the main thread before the runner starts / after it
 * stopped); backends need no lock of their own for that.
 */
#ifndef HQ_STORE_H
#define HQ_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- events ---- */

enum store_ev_kind {
	STORE_EV_SESSION_PUT = 1, /* client_id, u.sess: create or replace the header */
	STORE_EV_SESSION_DEL,     /* client_id: the session and all it owns (subs, entries, rx ids) */
	STORE_EV_SUB_PUT,         /* client_id, u.sub: add or replace by filter */
	STORE_EV_SUB_DEL,         /* client_id, u.sub.filter */
	STORE_EV_MSG_PUT,         /* u.msg (id != 0): one stored copy, referenced by entries */
	STORE_EV_QENT_PUT,        /* client_id, u.qent: a new queue entry (references u.qent.msg_id) */
	STORE_EV_QENT_UPDATE,     /* client_id, u.qent.seq/state/pid/flags: an entry changes state */
	STORE_EV_QENT_DEL,        /* client_id, u.qent.seq */
	STORE_EV_RXID_ADD,        /* client_id, u.pid: QoS 2 id received (PUBREC sent) */
	STORE_EV_RXID_DEL,        /* client_id, u.pid: PUBREL received */
	STORE_EV_RETAIN_PUT,      /* u.msg (topic is the key; id unused) */
	STORE_EV_RETAIN_DEL,      /* u.msg.topic */
	STORE_EV_RXID_MARK,       /* client_id (the publisher), u.mark: see struct store_mark */
	STORE_EV_KIND_MAX = STORE_EV_RXID_MARK,
};

/* A borrowed byte string (not NUL terminated). */
struct store_bytes {
	const uint8_t *p;
	uint32_t len;
};

/* An application message: MSG_PUT, RETAIN_PUT, a session's will. Times are
 * wall-clock ms since the Unix epoch (monotonic time does not survive a
 * restart). */
struct store_msg {
	uint64_t id;              /* MSG_PUT: node-unique, never 0 */
	struct store_bytes topic, props, payload;  /* props: forwardable v5 properties */
	int64_t expire_at;        /* wall ms, when has_expiry */
	uint32_t expiry;          /* message expiry interval as published, s */
	uint32_t pub_hash;        /* publisher's client id hash (shared "hash" strategy) */
	uint64_t ts_wall;         /* RETAIN_PUT: HLC time stamp of the write */
	uint16_t ts_logical;
	struct store_bytes origin; /* RETAIN_PUT: node that wrote it */
	uint8_t qos;
	bool retain;
	bool has_expiry;
};

/* A session header (what is not subscriptions, queue entries or rx ids). */
struct store_sess {
	struct store_bytes owner; /* node holding it (node.name); a shared store (redis)
				   * loads at start only the sessions its node owns */
	int64_t expire_at;        /* wall ms when it expires if still offline; 0 = online / never */
	int64_t will_at;          /* wall ms the will is due (delayed will); 0 = none pending */
	uint32_t expiry;          /* session expiry interval, s (UINT32_MAX = never) */
	uint32_t will_delay;      /* s */
	uint8_t version;          /* protocol level of the last connection */
	bool has_will;
	/* a change to a header the store already has, not a create or a take:
	 * a shared store refuses it (HQ_ENOTFOUND) when the session is missing
	 * (a Redis back without its data: the broker then writes it again
	 * whole) and drops it when another node owns the session (the fence) */
	bool update;
	struct store_msg will;    /* when has_will (id unused) */
};

struct store_sub {
	struct store_bytes filter; /* full text, "$share/g/f" included */
	uint32_t sub_id;
	uint8_t options;          /* SUBSCRIBE options byte */
};

enum store_qstate {
	STORE_Q_QUEUED = 0,       /* waiting for a window slot or a connection */
	STORE_Q_INFLIGHT,         /* sent with pid, not acknowledged */
	STORE_Q_PUBREL,           /* QoS 2: PUBREC received, waiting for PUBCOMP; no message */
};

#define STORE_QF_RETAIN 0x01  /* send with RETAIN=1 */
#define STORE_QF_SENT 0x02    /* sent at least once: resend with DUP */

/* One delivery of a stored message to one session. seq orders a session's
 * entries (queue order); it is the entry's key within the session. */
struct store_qent {
	uint64_t seq;
	uint64_t msg_id;          /* PUT: the referenced MSG_PUT; 0 once in PUBREL */
	struct store_bytes sub_ids; /* PUT: n * uint32_t, host order */
	struct store_bytes share_group; /* PUT: "$share/g/f" or empty */
	uint16_t pid;             /* INFLIGHT / PUBREL */
	uint8_t qos;              /* delivery QoS */
	uint8_t state;            /* enum store_qstate */
	uint8_t flags;            /* STORE_QF_* */
};

/* RXID_MARK: the QoS 2 message that client_id published with packet id pid
 * is stored for target (opaque to the store; the broker's encoding: 'c' +
 * a subscriber's client id, or 'g' + a shared group "$share/g/f"). Written
 * in the batch that stores target's entry, so that after a crash the
 * publisher's resend is delivered to the targets that lack it and to no
 * other (ARCHITECTURE.md "Persistence", exactly once across workers).
 * A mark lives as long as the publisher's rx id: RXID_DEL and SESSION_DEL
 * of client_id drop its marks; a mark whose rx id is not stored when it is
 * applied is ignored (the publisher's session ended meanwhile). Loaded
 * after the session's RXID_ADDs. */
struct store_mark {
	uint16_t pid;
	struct store_bytes target;
};

struct store_ev {
	uint8_t kind;             /* enum store_ev_kind */
	struct store_bytes client_id; /* session-scoped kinds */
	union {
		struct store_sess sess;
		struct store_sub sub;
		struct store_msg msg;
		struct store_qent qent;
		struct store_mark mark;
		uint16_t pid;
	} u;
};

/* One allocation holding a deep copy of ev (hq_free it). For backends. */
struct store_ev *store_ev_clone(const struct store_ev *ev);
const char *store_ev_kind_name(uint8_t kind);

/* ---- batches (store_batch.c) ---- */

struct store_chunk;

struct store_batch {
	struct store_ev *ev;      /* owned array, in append order */
	uint32_t n_ev, cap_ev;
	uint64_t *tokens;         /* owned: gate tokens released when the batch completes */
	uint32_t n_tokens, cap_tokens;
	uint32_t owner;           /* who gets the completion (the broker: a worker id) */
	/* A read instead of a write (store_batch_read): the runner fills ev with
	 * what the backend returns (load_session / list_sessions), in order with
	 * the writes before it. */
	uint8_t read;             /* enum store_read */
	struct store_bytes read_key; /* in the arena */
	void *user;               /* the submitter's, never touched by store code */
	int status;               /* set by the runner: HQ_OK or the apply/sync error */
	struct store_chunk *chunks; /* owned arena of the events' bytes */
	struct store_batch *next; /* the runner's queue */
};

enum store_read {
	STORE_READ_NONE = 0,
	STORE_READ_SESSION,       /* key = client id: ops->load_session (nothing if not stored) */
	STORE_READ_OWNED,         /* key = node name: ops->list_sessions */
};

struct store_batch *store_batch_new(uint32_t owner);
/* A batch that reads instead (shared backends only): kind and key copied. */
struct store_batch *store_batch_read(uint32_t owner, uint8_t kind, const void *key, size_t len);
void store_batch_free(struct store_batch *b);
/* Append a copy of ev (and of every byte string its kind uses). */
void store_batch_add(struct store_batch *b, const struct store_ev *ev);
void store_batch_add_token(struct store_batch *b, uint64_t token);
static inline bool store_batch_empty(const struct store_batch *b)
{
	return !b || (b->n_ev == 0 && b->n_tokens == 0);
}

/* ---- backends ---- */

struct store;
struct hq_config;

/* Load: one put event per stored record (bytes borrowed for the call).
 * Order: every MSG_PUT; then per session SESSION_PUT followed by its SUB_PUTs,
 * QENT_PUTs (ascending seq, current state/pid/flags), RXID_ADDs and
 * RXID_MARKs; then every
 * RETAIN_PUT. A non-HQ_OK return stops the load and is returned by it. */
typedef int (*store_load_cb)(void *ctx, const struct store_ev *ev);

/* Errors of apply/sync: HQ_EIO means transient (backend down or slow, disk
 * full, connection lost): the runner keeps the batch, reports itself
 * unhealthy and retries it with backoff, so nothing is lost and nothing is
 * acknowledged meanwhile. Any other error is permanent for that batch: it
 * completes failed (nothing of it applied). */

struct store_ops {
	const char *name;
	bool durable;             /* survives a restart: worth writing to */
	/* Apply every event of b in order, all or nothing. HQ_OK or an HQ_E*
	 * error (nothing of b applied). Runs on the runner thread. */
	int (*apply)(struct store *st, const struct store_batch *b);
	/* Make what was applied durable (group commit: once per group of
	 * batches). NULL = nothing to do. An error fails the whole group. */
	int (*sync)(struct store *st);
	/* Everything this node owns (order above). A shared backend loads the
	 * sessions whose header names this node as owner, the messages their
	 * entries reference and every retained message. */
	int (*load)(struct store *st, store_load_cb cb, void *ctx);
	/* After load: the first message id this node may use. Greater than the
	 * id of every message this node ever stored that may still be stored;
	 * ids issued by different nodes sharing one store never collide. */
	uint64_t (*next_msg_id)(struct store *st);
	void (*close)(struct store *st);  /* frees impl, not st */
	/* Shared backends only (NULL for node-local ones): several nodes use
	 * the same store, so a session can move between them. */
	/* One session whatever its owner, in load order (its messages, header,
	 * subscriptions, entries, rx ids); HQ_ENOTFOUND when not stored. */
	int (*load_session)(struct store *st, struct store_bytes client_id, store_load_cb cb, void *ctx);
	/* The SESSION_PUT of every session whose owner is `owner`. */
	int (*list_sessions)(struct store *st, struct store_bytes owner, store_load_cb cb, void *ctx);
	/* A short description of the backend's state for logs and status
	 * ("connected to 127.0.0.1:6379 (master mymaster)"); NULL = none. */
	const char *(*describe)(struct store *st);
};

struct store {
	const struct store_ops *ops;
	void *impl;
};

/* Open the backend chosen by session.store. HQ_OK, or HQ_EINVAL with err set. */
int store_open_backend(const struct hq_config *cfg, struct store **out, char *err, size_t errlen);
void store_free(struct store *st);
/* The in-memory backend (also used by unit tests). */
struct store *store_mem_new(void);
/* The durable backends (store_lmdb.c, store_redis.c): HQ_OK, or an error with
 * err set (the caller refuses to start). */
int store_lmdb_open(const struct hq_config *cfg, struct store **out, char *err, size_t errlen);
int store_redis_open(const struct hq_config *cfg, struct store **out, char *err, size_t errlen);

/* ---- the runner: one thread applying batches in order (store_runner.c) ---- */

struct store_runner;

/* Called on the runner thread once per batch, in submission order, with
 * b->status set; takes ownership of b. Must not block (the broker appends
 * to the owning worker's inbox and wakes it). */
typedef void (*store_done_fn)(void *arg, struct store_batch *b);

/* Start the thread. st stays the caller's; it must outlive the runner. */
int store_runner_start(struct store *st, store_done_fn done, void *arg, struct store_runner **out);
/* Queue b (ownership passes to the runner). Any thread. */
void store_runner_submit(struct store_runner *r, struct store_batch *b);
/* Apply and complete everything submitted, then join the thread and free r. */
void store_runner_stop(struct store_runner *r);
/* False after a failed batch, true again after the next success. Any thread. */
bool store_runner_healthy(const struct store_runner *r);
/* store_cancel.c: drop the QENT_PUT/QENT_DEL pairs of one entry within a
 * group of batches (and the messages only they referenced) before it is
 * applied; returns the events dropped. Runner thread. */
uint64_t store_cancel_group(struct store_batch *group);
/* Batches completed so far, failed ones included. Any thread. */
uint64_t store_runner_completed(const struct store_runner *r);
/* Transient failures retried so far, and batches completed failed (a
 * permanent error, or given up at stop). Any thread. */
void store_runner_stats(const struct store_runner *r, uint64_t *retries, uint64_t *failed);
/* While unhealthy: the monotonic ms (clock_mono_ms) of the episode's first
 * failure; 0 while healthy. Any thread. */
int64_t store_runner_down_since(const struct store_runner *r);
/* The time of each group commit (a group of batches applied and synced, the
 * retries of a backend that is down included), as a histogram for /metrics:
 * counts[i] groups took at most store_lat_bounds_us[i] (not cumulative;
 * counts[STORE_LAT_N] took longer), sum_us their total. Written by the
 * runner thread only (relaxed), read from any thread. */
#define STORE_LAT_N 12
extern const int64_t store_lat_bounds_us[STORE_LAT_N];
void store_runner_latency(const struct store_runner *r, uint64_t counts[STORE_LAT_N + 1],
			  uint64_t *sum_us);

#endif
