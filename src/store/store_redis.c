/*
 * store_redis.c - the redis backend's ops: the store several nodes share.
 *
 * apply encodes the batch (store_redis_codec.c) and runs it as one script
 * call (store_redis_lua.c), so a batch is applied atomically and checked
 * server side, with the same semantics as store_mem.c. load / load_session /
 * list_sessions read with pipelined commands: first everything (a lost
 * connection before the first callback can be retried), then the callbacks,
 * in store.h's load order. Sessions carry their owner node; load returns the
 * sessions whose owner index (hq:own:<node>) names this node.
 *
 * Message ids: each node name gets a 16-bit tag in Redis (hq:nodetag); this
 * node's ids are (tag << 48) | n, and next_msg_id starts above the highest n
 * ever stored under the tag (hq:idhw), so two nodes never issue the same id
 * and a restarted node never reuses one.
 *
 * Failures: open never fails because Redis is down (the node starts and
 * reports the store down: describe()); apply returns HQ_EIO (transient) and
 * the runner retries. load at start waits up to LOAD_WAIT_MS for Redis (a
 * restart or a Sentinel failover takes seconds), then fails with a log line
 * naming the server: starting without the node's sessions would drop them.
 */
#include "store/store_redis_int.h"
#include "core/clock.h"
#include "core/conf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOAD_WAIT_MS 30000
#define FETCH_SESS_CHUNK 128      /* sessions per pipelined round (4 commands each) */
#define FETCH_MARK_CHUNK 512      /* rx ids per pipelined round of their marks */
#define FETCH_ID_CHUNK 1000       /* ids per HMGET */
#define FORMAT_VERSION "1"        /* hq:format: the record layout of store_redis_codec.c */

struct rstore {
	struct rconn conn;
	char *node;                   /* owned: cfg->node_name */
	struct rbuf buf;              /* the batch being encoded */
	size_t *offs, *lens;          /* scratch per batch, cap entries */
	const char **argv;
	uint32_t cap;
	uint64_t next_id;             /* valid when have_next_id */
	bool have_next_id;
	uint64_t fenced;              /* events dropped by the fence (atomic: read by any thread) */
	int wait_replicas;            /* session.redis.wait_replicas */
	uint64_t group_gen;           /* connection of the group's applies; 0 = none yet */
	bool group_mixed;             /* the group's applies were on more than one connection */
};

/* ---- commands for pipelines ---- */

/* An argument: prefix (C string, may be "") followed by n bytes at p. */
struct arg {
	const char *pre;
	const void *p;
	size_t n;
};

struct cmds {
	int n, cap;
	int *argc;
	const char ***argv;           /* each one allocation: argv, lens, bytes */
	size_t **lens;
};

static void cmds_add(struct cmds *cs, int argc, const struct arg *a)
{
	size_t bytes = 0;
	for (int i = 0; i < argc; i++)
		bytes += strlen(a[i].pre) + a[i].n;
	char *mem = hq_malloc((size_t)argc * (sizeof(char *) + sizeof(size_t)) + bytes + 1);
	const char **argv = (const char **)mem;
	size_t *lens = (size_t *)(mem + (size_t)argc * sizeof(char *));
	char *d = (char *)(lens + argc);
	for (int i = 0; i < argc; i++) {
		size_t pl = strlen(a[i].pre);
		argv[i] = d;
		memcpy(d, a[i].pre, pl);
		if (a[i].n)
			memcpy(d + pl, a[i].p, a[i].n);
		lens[i] = pl + a[i].n;
		d += lens[i];
	}
	if (cs->n == cs->cap) {
		cs->cap = cs->cap ? cs->cap * 2 : 64;
		cs->argc = hq_realloc(cs->argc, (size_t)cs->cap * sizeof(int));
		cs->argv = hq_realloc(cs->argv, (size_t)cs->cap * sizeof(char **));
		cs->lens = hq_realloc(cs->lens, (size_t)cs->cap * sizeof(size_t *));
	}
	cs->argc[cs->n] = argc;
	cs->argv[cs->n] = argv;
	cs->lens[cs->n] = lens;
	cs->n++;
}

static void cmds_free(struct cmds *cs)
{
	for (int i = 0; i < cs->n; i++)
		hq_free(cs->argv[i]);
	hq_free(cs->argc);
	hq_free(cs->argv);
	hq_free(cs->lens);
	*cs = (struct cmds){ 0 };
}

/* Run cs as one pipeline; replies appended to *out (grown). */
static int cmds_run(struct rstore *s, struct cmds *cs, redisReply ***out, size_t *n_out)
{
	if (!cs->n)
		return HQ_OK;
	*out = hq_realloc(*out, (*n_out + (size_t)cs->n) * sizeof(**out));
	int rc = rconn_pipeline(&s->conn, cs->n, cs->argc, (const char *const *const *)cs->argv,
				(const size_t *const *)cs->lens, *out + *n_out);
	if (rc == HQ_OK)
		*n_out += (size_t)cs->n;
	cmds_free(cs);
	return rc;
}

/* ---- apply ---- */

static int r_apply(struct store *st, const struct store_batch *b)
{
	struct rstore *s = st->impl;
	if (!b->n_ev)
		return HQ_OK;
	if (b->n_ev + 4 > s->cap) {
		s->cap = b->n_ev + 4;
		s->offs = hq_realloc(s->offs, s->cap * sizeof(*s->offs));
		s->lens = hq_realloc(s->lens, s->cap * sizeof(*s->lens));
		s->argv = hq_realloc(s->argv, s->cap * sizeof(*s->argv));
	}
	rbuf_reset(&s->buf);
	for (uint32_t i = 0; i < b->n_ev; i++) {
		s->offs[i] = s->buf.len;
		int rc = rcodec_event(&s->buf, &b->ev[i], s->node);
		if (rc != HQ_OK)
			return rc; /* malformed: permanent, nothing sent */
	}
	s->offs[b->n_ev] = s->buf.len;
	s->argv[2] = "0"; /* no KEYS: the script derives them from the events */
	s->lens[2] = 1;
	s->argv[3] = s->node; /* the fence: sessions another node owns are not written */
	s->lens[3] = strlen(s->node);
	for (uint32_t i = 0; i < b->n_ev; i++) {
		s->argv[4 + i] = (const char *)s->buf.p + s->offs[i];
		s->lens[4 + i] = s->offs[i + 1] - s->offs[i];
	}
	redisReply *r;
	int rc = rconn_eval(&s->conn, RSCRIPT_BATCH, (int)b->n_ev + 4, s->argv, s->lens, &r);
	if (rc == HQ_OK) {
		if (s->group_gen && s->group_gen != s->conn.gen)
			s->group_mixed = true;
		s->group_gen = s->conn.gen;
	}
	if (rc == HQ_OK && r->type == REDIS_REPLY_INTEGER && r->integer > 0) {
		/* expected after a session moved: this node's late writes for it */
		__atomic_add_fetch(&s->fenced, (uint64_t)r->integer, __ATOMIC_RELAXED);
		log_debug("store redis: %lld event(s) of a batch of %u dropped: their sessions "
			  "belong to another node now", r->integer, b->n_ev);
	}
	if (r)
		freeReplyObject(r);
	return rc;
}

/* Group commit with replicas: WAIT until session.redis.wait_replicas replicas
 * have every write of this connection, so a Sentinel failover cannot lose an
 * acknowledged message. A group whose writes went over two connections (the
 * first master may have died with them) is not confirmed: it fails, and its
 * clients send again. */
static int r_sync(struct store *st)
{
	struct rstore *s = st->impl;
	uint64_t gen = s->group_gen;
	bool mixed = s->group_mixed;
	if (!s->wait_replicas || !gen) {
		s->group_gen = 0;
		s->group_mixed = false;
		return HQ_OK;
	}
	if (mixed || gen != s->conn.gen) {
		s->group_gen = 0;
		s->group_mixed = false;
		log_warning("store redis: the connection changed during a group of writes: they are "
			    "not confirmed (their clients send again)");
		return HQ_EINVAL;
	}
	/* until confirmed, the group stays pending: a retry WAITs again, or
	 * fails it above if the connection changed meanwhile */
	char n[16], ms[16];
	snprintf(n, sizeof(n), "%d", s->wait_replicas);
	/* half the command timeout: WAIT's own answer must beat the socket's */
	snprintf(ms, sizeof(ms), "%d", s->conn.timeout_ms / 2 > 0 ? s->conn.timeout_ms / 2 : 1);
	const char *argv[] = { "WAIT", n, ms };
	const size_t lens[] = { 4, strlen(n), strlen(ms) };
	const char *const *av[] = { argv };
	const size_t *lv[] = { lens };
	int argc[] = { 3 };
	redisReply *r = NULL;
	int rc = rconn_pipeline(&s->conn, 1, argc, av, lv, &r);
	if (rc != HQ_OK)
		return rc;
	long long got = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
	freeReplyObject(r);
	if (got < s->wait_replicas) {
		/* transient: retried (a replica is resyncing); nothing is
		 * acknowledged meanwhile */
		log_warning("store redis: %lld of %d replicas confirmed the writes within %d ms",
			    got, s->wait_replicas, s->conn.timeout_ms / 2);
		return HQ_EIO;
	}
	s->group_gen = 0;
	return HQ_OK;
}

uint64_t store_redis_fenced(const struct store *st)
{
	const struct rstore *s = st->impl;
	return __atomic_load_n(&s->fenced, __ATOMIC_RELAXED);
}

/* ---- reading sessions ---- */

struct sfetch {                   /* one session's replies */
	const char *cid;          /* borrowed from the reply listing it */
	size_t clen;
	redisReply *hdr, *subs, *qents, *rx;
	size_t mk0;               /* index in lres.rep of the marks of rx->element[0] (SMEMBERS
				   * hq:mk:<cid><pid>), one reply per rx id in order */
};

struct lres {                     /* everything a load read, freed after the callbacks */
	redisReply **rep;         /* every reply, owned */
	size_t n_rep;
	struct sfetch *sess;
	size_t n_sess;
	uint8_t *ids;             /* n_ids distinct message ids, 8 bytes each */
	size_t n_ids;
	size_t msg_rep0;          /* index in rep of the first HMGET hq:msg reply */
	redisReply *ret;          /* HGETALL hq:ret, or NULL */
};

static void lres_free(struct lres *L)
{
	for (size_t i = 0; i < L->n_rep; i++)
		freeReplyObject(L->rep[i]);
	hq_free(L->rep);
	hq_free(L->sess);
	hq_free(L->ids);
	*L = (struct lres){ 0 };
}

static int cmp_id(const void *a, const void *b)
{
	return memcmp(a, b, 8);
}

static bool is_str(const redisReply *r)
{
	return r && r->type == REDIS_REPLY_STRING;
}

static bool is_arr(const redisReply *r)
{
	return r && r->type == REDIS_REPLY_ARRAY;
}

/* The marks of every rx id of the sessions read so far: a second round,
 * since the rx ids name the keys. Read after the rx ids, not atomically with
 * them: at load nothing else writes this node's sessions; at a takeover
 * (load_session) an RXID_DEL in between leaves that rx id without marks,
 * which at worst delivers the publisher's resend to a target again. */
static int fetch_marks(struct rstore *s, struct lres *L)
{
	struct cmds cs = { 0 };
	size_t next = L->n_rep; /* the index the next command's reply gets */
	char *key = NULL;         /* <cid><pid2>, after the "hq:mk:" prefix */
	size_t cap = 0;
	int rc = HQ_OK;
	for (size_t j = 0; j < L->n_sess && rc == HQ_OK; j++) {
		struct sfetch *f = &L->sess[j];
		f->mk0 = next;
		if (f->clen + 2 > cap) {
			cap = f->clen + 2;
			key = hq_realloc(key, cap);
		}
		memcpy(key, f->cid, f->clen);
		for (size_t k = 0; k < f->rx->elements && rc == HQ_OK; k++) {
			const redisReply *p = f->rx->element[k];
			if (!is_str(p) || p->len != 2) {
				rc = HQ_EMALFORMED;
				break;
			}
			memcpy(key + f->clen, p->str, 2);
			cmds_add(&cs, 2, (struct arg[]){ { "SMEMBERS", 0, 0 }, { "hq:mk:", key, f->clen + 2 } });
			next++;
			if (cs.n >= FETCH_MARK_CHUNK)
				rc = cmds_run(s, &cs, &L->rep, &L->n_rep);
		}
	}
	hq_free(key);
	if (rc == HQ_OK)
		rc = cmds_run(s, &cs, &L->rep, &L->n_rep);
	cmds_free(&cs);
	return rc;
}

/* Read the sessions named by the n string elements of `names` (borrowed
 * until L is freed), the marks of their rx ids and the messages their
 * entries reference. */
static int fetch_sessions(struct rstore *s, redisReply **names, size_t n, struct lres *L)
{
	L->sess = hq_calloc(n ? n : 1, sizeof(*L->sess));
	size_t first = L->n_rep;
	for (size_t i = 0; i < n; i += FETCH_SESS_CHUNK) {
		struct cmds cs = { 0 };
		for (size_t j = i; j < n && j < i + FETCH_SESS_CHUNK; j++) {
			const char *c = names[j]->str;
			size_t cl = names[j]->len;
			cmds_add(&cs, 3, (struct arg[]){ { "HGET", 0, 0 }, { "hq:sess", 0, 0 }, { "", c, cl } });
			cmds_add(&cs, 2, (struct arg[]){ { "HGETALL", 0, 0 }, { "hq:sub:", c, cl } });
			cmds_add(&cs, 2, (struct arg[]){ { "HGETALL", 0, 0 }, { "hq:q:", c, cl } });
			cmds_add(&cs, 2, (struct arg[]){ { "SMEMBERS", 0, 0 }, { "hq:rx:", c, cl } });
		}
		int rc = cmds_run(s, &cs, &L->rep, &L->n_rep);
		if (rc != HQ_OK)
			return rc;
	}
	for (size_t j = 0; j < n; j++) {
		struct sfetch *f = &L->sess[L->n_sess++];
		redisReply **r = &L->rep[first + 4 * j];
		*f = (struct sfetch){ names[j]->str, names[j]->len, r[0], r[1], r[2], r[3], 0 };
		if (!is_arr(f->subs) || !is_arr(f->qents) || !is_arr(f->rx) ||
		    (f->hdr->type != REDIS_REPLY_NIL && !is_str(f->hdr)))
			return HQ_EMALFORMED;
		for (size_t k = 1; k < f->qents->elements; k += 2) {
			const redisReply *v = f->qents->element[k];
			if (!is_str(v) || v->len < RQ_HDR || !rget64(v->str))
				continue; /* no message (PUBREL); a bad record fails at decoding */
			if (L->n_ids % 1024 == 0)
				L->ids = hq_realloc(L->ids, (L->n_ids + 1024) * 8);
			memcpy(L->ids + 8 * L->n_ids++, v->str, 8);
		}
	}
	int rc = fetch_marks(s, L);
	if (rc != HQ_OK)
		return rc;
	if (L->n_ids) {
		qsort(L->ids, L->n_ids, 8, cmp_id);
		size_t u = 1;
		for (size_t i = 1; i < L->n_ids; i++)
			if (memcmp(L->ids + 8 * i, L->ids + 8 * (u - 1), 8))
				memmove(L->ids + 8 * u++, L->ids + 8 * i, 8);
		L->n_ids = u;
	}
	L->msg_rep0 = L->n_rep;
	struct cmds cs = { 0 };
	for (size_t i = 0; i < L->n_ids; i += FETCH_ID_CHUNK) {
		size_t k = L->n_ids - i < FETCH_ID_CHUNK ? L->n_ids - i : FETCH_ID_CHUNK;
		struct arg *a = hq_calloc(k + 2, sizeof(*a));
		a[0] = (struct arg){ "HMGET", 0, 0 };
		a[1] = (struct arg){ "hq:msg", 0, 0 };
		for (size_t j = 0; j < k; j++)
			a[2 + j] = (struct arg){ "", L->ids + 8 * (i + j), 8 };
		cmds_add(&cs, (int)k + 2, a);
		hq_free(a);
	}
	return cmds_run(s, &cs, &L->rep, &L->n_rep);
}

struct pair {
	const redisReply *k, *v;
};

/* queue order: ascending seq, the 8-byte big endian field (a bad one sorts
 * anywhere and fails at decoding) */
static int cmp_seq(const void *a, const void *b)
{
	const redisReply *x = ((const struct pair *)a)->k, *y = ((const struct pair *)b)->k;
	if (x->len != 8 || y->len != 8 || !x->str || !y->str)
		return 0;
	return memcmp(x->str, y->str, 8);
}

/* A session's subscriptions or queue entries (HGETALL field/value pairs). */
static int emit_pairs(const struct sfetch *f, const redisReply *h, store_load_cb cb, void *ctx,
		      bool qents)
{
	size_t n = h->elements / 2;
	struct pair *v = hq_malloc((n ? n : 1) * sizeof(*v));
	for (size_t i = 0; i < n; i++)
		v[i] = (struct pair){ h->element[2 * i], h->element[2 * i + 1] };
	if (qents)
		qsort(v, n, sizeof(*v), cmp_seq);
	int rc = HQ_OK;
	for (size_t i = 0; i < n && rc == HQ_OK; i++) {
		struct store_ev ev;
		if (!is_str(v[i].k) || !is_str(v[i].v))
			rc = HQ_EMALFORMED;
		else if (qents)
			rc = rdecode_qent(&ev, f->cid, f->clen, v[i].k->str, v[i].k->len, v[i].v->str,
					  v[i].v->len);
		else
			rc = rdecode_sub(&ev, f->cid, f->clen, v[i].k->str, v[i].k->len, v[i].v->str,
					 v[i].v->len);
		if (rc == HQ_OK)
			rc = cb(ctx, &ev);
	}
	hq_free(v);
	return rc;
}

/* The callbacks, in store.h's load order. `owner` (may be NULL: any) skips
 * sessions whose header names another node (moved while we read). */
static int emit(const struct lres *L, const char *owner, store_load_cb cb, void *ctx)
{
	struct store_ev ev;
	int rc = HQ_OK;
	for (size_t i = L->msg_rep0; i < L->n_rep; i++) {
		const redisReply *r = L->rep[i];
		size_t base = (i - L->msg_rep0) * FETCH_ID_CHUNK;
		for (size_t k = 0; k < r->elements; k++) {
			const redisReply *v = r->element[k];
			if (!is_str(v))
				continue; /* gone meanwhile (its entries went with it) */
			if ((rc = rdecode_msg(&ev, STORE_EV_MSG_PUT, (const char *)L->ids + 8 * (base + k),
					      v->str, v->len)) != HQ_OK ||
			    (rc = cb(ctx, &ev)) != HQ_OK)
				return rc;
		}
	}
	for (size_t i = 0; i < L->n_sess; i++) {
		const struct sfetch *f = &L->sess[i];
		if (!is_str(f->hdr))
			continue; /* deleted since it was listed */
		if ((rc = rdecode_sess(&ev, f->cid, f->clen, f->hdr->str, f->hdr->len)) != HQ_OK)
			return rc;
		if (owner && (ev.u.sess.owner.len != strlen(owner) ||
			      memcmp(ev.u.sess.owner.p, owner, ev.u.sess.owner.len)))
			continue;
		if ((rc = cb(ctx, &ev)) != HQ_OK || (rc = emit_pairs(f, f->subs, cb, ctx, false)) != HQ_OK ||
		    (rc = emit_pairs(f, f->qents, cb, ctx, true)) != HQ_OK)
			return rc;
		for (size_t k = 0; k < f->rx->elements; k++) {
			const redisReply *p = f->rx->element[k];
			if (!is_str(p))
				return HQ_EMALFORMED;
			if ((rc = rdecode_rx(&ev, f->cid, f->clen, p->str, p->len)) != HQ_OK ||
			    (rc = cb(ctx, &ev)) != HQ_OK)
				return rc;
		}
		/* the marks after every rx id (store.h's load order) */
		for (size_t k = 0; k < f->rx->elements; k++) {
			const redisReply *p = f->rx->element[k], *m = L->rep[f->mk0 + k];
			if (!is_arr(m))
				return HQ_EMALFORMED;
			for (size_t t = 0; t < m->elements; t++) {
				const redisReply *tg = m->element[t];
				if (!is_str(tg))
					return HQ_EMALFORMED;
				if ((rc = rdecode_mark(&ev, f->cid, f->clen, p->str, p->len, tg->str,
						       tg->len)) != HQ_OK ||
				    (rc = cb(ctx, &ev)) != HQ_OK)
					return rc;
			}
		}
	}
	if (!L->ret)
		return HQ_OK;
	for (size_t k = 0; k + 1 < L->ret->elements; k += 2) {
		const redisReply *v = L->ret->element[k + 1];
		if (!is_str(v))
			return HQ_EMALFORMED;
		if ((rc = rdecode_msg(&ev, STORE_EV_RETAIN_PUT, NULL, v->str, v->len)) != HQ_OK ||
		    (rc = cb(ctx, &ev)) != HQ_OK)
			return rc;
	}
	return HQ_OK;
}

/* This node's tag and id high-water mark: s->next_id. */
static int fetch_next_id(struct rstore *s)
{
	const char *argv[4] = { 0, 0, "0", s->node };
	size_t lens[4] = { 0, 0, 1, strlen(s->node) };
	redisReply *r;
	int rc = rconn_eval(&s->conn, RSCRIPT_TAG, 4, argv, lens, &r);
	if (rc != HQ_OK)
		return rc;
	if (is_arr(r) && r->elements == 2 && r->element[0]->type == REDIS_REPLY_INTEGER &&
	    is_str(r->element[1])) {
		uint64_t tag = (uint64_t)r->element[0]->integer;
		uint64_t hw = strtoull(r->element[1]->str, NULL, 10);
		s->next_id = tag << 48 | ((hw + 1) & ((1ULL << 48) - 1));
		s->have_next_id = true;
	} else {
		rc = HQ_EMALFORMED;
	}
	freeReplyObject(r);
	return rc;
}

/* Everything load needs, read (nothing called back yet). */
static int fetch_owned(struct rstore *s, struct lres *L)
{
	struct cmds cs = { 0 };
	cmds_add(&cs, 3, (struct arg[]){ { "SETNX", 0, 0 }, { "hq:format", 0, 0 }, { FORMAT_VERSION, 0, 0 } });
	cmds_add(&cs, 2, (struct arg[]){ { "GET", 0, 0 }, { "hq:format", 0, 0 } });
	cmds_add(&cs, 2, (struct arg[]){ { "SMEMBERS", 0, 0 }, { "hq:own:", s->node, strlen(s->node) } });
	cmds_add(&cs, 2, (struct arg[]){ { "HGETALL", 0, 0 }, { "hq:ret", 0, 0 } });
	int rc = cmds_run(s, &cs, &L->rep, &L->n_rep);
	if (rc != HQ_OK)
		return rc;
	const redisReply *fmt = L->rep[1];
	if (!is_str(fmt) || strcmp(fmt->str, FORMAT_VERSION)) {
		log_error("store redis: the data in %s:%d db %d has format version %s, this hamqtt "
			  "reads %s: refusing it (nothing is changed)", s->conn.host, s->conn.port,
			  s->conn.db, is_str(fmt) ? fmt->str : "?", FORMAT_VERSION);
		return HQ_EINVAL;
	}
	redisReply *own = L->rep[2];
	L->ret = L->rep[3];
	if (!is_arr(own) || !is_arr(L->ret))
		return HQ_EMALFORMED;
	for (size_t i = 0; i < own->elements; i++)
		if (!is_str(own->element[i]))
			return HQ_EMALFORMED;
	if ((rc = fetch_next_id(s)) != HQ_OK)
		return rc;
	return fetch_sessions(s, own->element, own->elements, L);
}

static int r_load(struct store *st, store_load_cb cb, void *ctx)
{
	struct rstore *s = st->impl;
	int64_t deadline = clock_mono_ms() + LOAD_WAIT_MS;
	struct lres L = { 0 };
	int rc;
	while ((rc = fetch_owned(s, &L)) == HQ_EIO && clock_mono_ms() < deadline) {
		lres_free(&L);
		usleep(100 * 1000); /* rconn_ensure adds its own backoff */
	}
	if (rc == HQ_OK)
		rc = emit(&L, s->node, cb, ctx);
	lres_free(&L);
	if (rc == HQ_EIO) {
		char d[400];
		rconn_describe(&s->conn, d, sizeof(d));
		log_error("store redis: cannot load the sessions of %s: %s, for %d s: not starting "
			  "without them", s->node, d, LOAD_WAIT_MS / 1000);
	} else if (rc == HQ_EMALFORMED) {
		log_error("store redis: a stored record of %s:%d db %d is damaged or of another "
			  "format: not starting", s->conn.host, s->conn.port, s->conn.db);
	}
	return rc;
}

static int r_load_session(struct store *st, struct store_bytes client_id, store_load_cb cb, void *ctx)
{
	struct rstore *s = st->impl;
	struct lres L = { 0 };
	redisReply name = { .type = REDIS_REPLY_STRING, .str = (char *)client_id.p, .len = client_id.len };
	redisReply *names[1] = { &name };
	int rc = fetch_sessions(s, names, 1, &L);
	if (rc == HQ_OK && !is_str(L.sess[0].hdr))
		rc = HQ_ENOTFOUND;
	if (rc == HQ_OK)
		rc = emit(&L, NULL, cb, ctx);
	lres_free(&L);
	return rc;
}

static int r_list_sessions(struct store *st, struct store_bytes owner, store_load_cb cb, void *ctx)
{
	struct rstore *s = st->impl;
	redisReply **rep = NULL;
	size_t n_rep = 0;
	struct cmds cs = { 0 };
	cmds_add(&cs, 2, (struct arg[]){ { "SMEMBERS", 0, 0 }, { "hq:own:", owner.p, owner.len } });
	int rc = cmds_run(s, &cs, &rep, &n_rep);
	if (rc == HQ_OK && !is_arr(rep[0]))
		rc = HQ_EMALFORMED;
	const redisReply *cids = rc == HQ_OK ? rep[0] : NULL;
	for (size_t i = 0; rc == HQ_OK && i < cids->elements; i += FETCH_ID_CHUNK) {
		size_t k = cids->elements - i < FETCH_ID_CHUNK ? cids->elements - i : FETCH_ID_CHUNK;
		struct arg *a = hq_calloc(k + 2, sizeof(*a));
		a[0] = (struct arg){ "HMGET", 0, 0 };
		a[1] = (struct arg){ "hq:sess", 0, 0 };
		for (size_t j = 0; j < k; j++)
			a[2 + j] = (struct arg){ "", cids->element[i + j]->str, cids->element[i + j]->len };
		cmds_add(&cs, (int)k + 2, a);
		hq_free(a);
	}
	size_t first = n_rep;
	if (rc == HQ_OK)
		rc = cmds_run(s, &cs, &rep, &n_rep);
	for (size_t i = first; rc == HQ_OK && i < n_rep; i++) {
		const redisReply *r = rep[i];
		for (size_t k = 0; rc == HQ_OK && k < r->elements; k++) {
			const redisReply *h = r->element[k], *c = cids->element[(i - first) * FETCH_ID_CHUNK + k];
			struct store_ev ev;
			if (!is_str(h))
				continue;
			rc = rdecode_sess(&ev, c->str, c->len, h->str, h->len);
			if (rc == HQ_OK && ev.u.sess.owner.len == owner.len &&
			    !memcmp(ev.u.sess.owner.p, owner.p, owner.len))
				rc = cb(ctx, &ev);
		}
	}
	cmds_free(&cs);
	for (size_t i = 0; i < n_rep; i++)
		freeReplyObject(rep[i]);
	hq_free(rep);
	return rc;
}

static uint64_t r_next_msg_id(struct store *st)
{
	struct rstore *s = st->impl;
	int64_t deadline = clock_mono_ms() + LOAD_WAIT_MS;
	while (!s->have_next_id && fetch_next_id(s) == HQ_EIO && clock_mono_ms() < deadline)
		usleep(100 * 1000);
	if (!s->have_next_id) {
		/* tag 0xffff is never allocated: these ids cannot collide with
		 * another node's, and the wall clock keeps them above earlier runs' */
		log_error("store redis: no node tag for %s (Redis unreachable): using ids from the "
			  "reserved tag 0xffff", s->node);
		s->next_id = 0xffffULL << 48 | ((uint64_t)clock_wall_ms() << 8);
		s->have_next_id = true;
	}
	return s->next_id;
}

static const char *r_describe(struct store *st)
{
	static __thread char buf[400];
	struct rstore *s = st->impl;
	rconn_describe(&s->conn, buf, sizeof(buf));
	return buf;
}

static void r_close(struct store *st)
{
	struct rstore *s = st->impl;
	rconn_fini(&s->conn);
	rbuf_free(&s->buf);
	hq_free(s->offs);
	hq_free(s->lens);
	hq_free(s->argv);
	hq_free(s->node);
	hq_free(s);
}

static const struct store_ops redis_ops = {
	.name = "redis",
	.durable = true,
	.apply = r_apply,
	.sync = r_sync, /* WAIT for replicas when asked; else Redis' own persistence decides */
	.load = r_load,
	.next_msg_id = r_next_msg_id,
	.close = r_close,
	.load_session = r_load_session,
	.list_sessions = r_list_sessions,
	.describe = r_describe,
};

int store_redis_open(const struct hq_config *cfg, struct store **out, char *err, size_t errlen)
{
	*out = NULL;
	struct rstore *s = hq_calloc(1, sizeof(*s));
	if (rconn_init(&s->conn, cfg, err, errlen) != HQ_OK) {
		rconn_fini(&s->conn);
		hq_free(s);
		return HQ_EINVAL;
	}
	s->node = hq_strdup(cfg->node_name ? cfg->node_name : "");
	s->wait_replicas = cfg->session_redis_wait_replicas;
	/* a first attempt now so describe() tells the truth from the start;
	 * Redis being down is not an error here (the runner retries) */
	(void)rconn_ensure(&s->conn);
	struct store *st = hq_calloc(1, sizeof(*st));
	st->ops = &redis_ops;
	st->impl = s;
	*out = st;
	return HQ_OK;
}
