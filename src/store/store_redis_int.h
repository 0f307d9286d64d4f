/*
 * store_redis_int.h - what the three parts of the redis backend share:
 * store_redis.c (the ops), store_redis_conn.c (the connection: Sentinel
 * discovery, AUTH/SELECT, role check, reconnect with backoff, scripts),
 * store_redis_codec.c (records and batch events as bytes), and the Lua text
 * in store_redis_lua.c. Layout and behaviour: ARCHITECTURE.md "Persistence",
 * "The redis backend".
 *
 * Threads: every call but rconn_describe runs on the thread using the store
 * (store.h: one at a time). rconn_describe may run on any thread: the
 * description is kept under desc_lock.
 */
#ifndef HQ_STORE_REDIS_INT_H
#define HQ_STORE_REDIS_INT_H

#include "store/store.h"

#include <hiredis/hiredis.h>
#include <pthread.h>

/* ---- connection (store_redis_conn.c) ---- */

enum { RSCRIPT_BATCH = 0, RSCRIPT_TAG, RSCRIPT_N };

struct rconn {
	redisContext *c;              /* NULL = disconnected */
	/* configuration (owned copies) */
	char *server;                 /* host:port when no Sentinel */
	char **sentinels;             /* host:port each */
	int n_sentinels;
	char *master_name, *password;
	int db;
	int timeout_ms;
	/* state */
	char host[256];               /* the server in use (or last tried) */
	int port;
	int64_t next_try_ms;          /* monotonic: no connect attempt before */
	uint64_t gen;                 /* connections made so far (sync: same one as the applies?) */
	int backoff_ms;               /* 0 after a success; 100 .. 2000 */
	char sha[RSCRIPT_N][41];      /* SCRIPT LOAD results */
	pthread_mutex_t desc_lock;
	char desc[384];               /* under desc_lock */
};

int rconn_init(struct rconn *rc, const struct hq_config *cfg, char *err, size_t errlen);
void rconn_fini(struct rconn *rc);
/* Connected (HQ_OK) or HQ_EIO: down, or still within the backoff of the
 * last failure (a connect is not tried more often than that). */
int rconn_ensure(struct rconn *rc);
/* Forget the connection (it is broken or talks to a non-master). */
void rconn_drop(struct rconn *rc, const char *why);
/* A reply's verdict: HQ_OK; HQ_EIO after dropping the connection (NULL
 * reply = I/O error or timeout; READONLY, LOADING, MASTERDOWN, BUSY...);
 * HQ_ENOTFOUND / HQ_EINVAL for the script's own refusals. */
int rconn_verdict(struct rconn *rc, const redisReply *r);
/* Run script `which`: argv/lens[2..argc) are the caller's (argv[2] the number
 * of keys), [0..2) are set here (EVALSHA sha, or EVAL text on NOSCRIPT).
 * *out is the reply when HQ_OK (freeReplyObject it), else NULL. */
int rconn_eval(struct rconn *rc, int which, int argc, const char **argv, size_t *lens,
	       redisReply **out);
/* Send n commands at once and read their n replies (pipelining). Each
 * command is argv/lens of argc[i] strings. HQ_OK with every reply in
 * out[0..n) (even error replies: the caller checks), or HQ_EIO (none kept). */
int rconn_pipeline(struct rconn *rc, int n, const int *argc, const char *const *const *argv,
		   const size_t *const *lens, redisReply **out);
void rconn_describe(struct rconn *rc, char *buf, size_t n);

extern const char *const rscript_text[RSCRIPT_N];

/* ---- bytes (store_redis_codec.c) ---- */

struct rbuf {
	uint8_t *p;                   /* owned */
	size_t len, cap;
};

void rbuf_reset(struct rbuf *b);
void rbuf_free(struct rbuf *b);

/* the script's kind for a SESSION_PUT with u.sess.update (the other kinds
 * are enum store_ev_kind): checked like a write to the session. Above
 * STORE_EV_KIND_MAX with room to spare (it was 13 until RXID_MARK took 13);
 * only this build's script reads it, nothing stores it. */
#define RK_SESSION_UPDATE 64
#define RK_STR_(x) #x
#define RK_STR(x) RK_STR_(x)      /* a kind as Lua text */
#define RQ_HDR 13                 /* msg id 8 | pid 2 | qos | state | flags: the script edits it */

/* Encode ev as one script argument (kind | len4 a | len4 b | rest) appended
 * to b. HQ_EINVAL for an event the reference backend refuses as malformed.
 * An empty session owner is stored as `node` (the writing node). */
int rcodec_event(struct rbuf *b, const struct store_ev *ev, const char *node);

/* Decode stored records into ev (bytes borrowed from the inputs). */
int rdecode_sess(struct store_ev *ev, const char *cid, size_t clen, const char *v, size_t vlen);
int rdecode_sub(struct store_ev *ev, const char *cid, size_t clen, const char *filter, size_t flen,
		const char *v, size_t vlen);
int rdecode_qent(struct store_ev *ev, const char *cid, size_t clen, const char *seq, size_t slen,
		 const char *v, size_t vlen);
int rdecode_rx(struct store_ev *ev, const char *cid, size_t clen, const char *pid, size_t plen);
/* RXID_MARK: pid = the 2-byte member of hq:rx:<cid>, target = a member of
 * hq:mk:<cid><pid> */
int rdecode_mark(struct store_ev *ev, const char *cid, size_t clen, const char *pid, size_t plen,
		 const char *target, size_t tlen);
/* MSG_PUT (id8 = the 8-byte key) or RETAIN_PUT (id8 NULL). */
int rdecode_msg(struct store_ev *ev, uint8_t kind, const char *id8, const char *v, size_t vlen);

uint64_t rget64(const void *p);  /* big endian */
void rput64(void *p, uint64_t v);

/* ---- the ops (store_redis.c) ---- */

/* How many session-scoped events the batches of st (a redis store) had dropped by the
 * fence (their session belonged to another node by then). Any thread. */
uint64_t store_redis_fenced(const struct store *st);

#endif
