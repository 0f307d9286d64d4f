/*
 * store_mem.c - the in-memory store backend: the state the events produce,
 * kept in hash tables so that load returns it. Not durable (ops->durable is
 * false: the broker keeps live state in memory anyway and skips writing to
 * it), but complete: it is the reference the durable backends of issue 9
 * mirror, and tests/unit/test_store.c checks every backend against it.
 *
 * State: sessions by client id, each with its subscriptions (by filter),
 * queue entries (by seq) and QoS 2 received ids, each rx id with its marks
 * (RXID_MARK, by target: they live and die with it); messages by id with
 * the number of queue entries referencing them; retained messages by topic.
 * Every record is one store_ev_clone allocation (its bytes included).
 *
 * apply is all or nothing: a first pass checks the batch against the current
 * state (a put must find its parent session / message, or one put earlier in
 * the batch) and only then is anything changed. Deleting or updating a record
 * that does not exist is not an error (it may have gone with its session).
 * Runs on one thread at a time (store.h), so no lock.
 */
#include "store/store.h"
#include "core/conf.h"
#include "core/err.h"
#include "core/mem.h"

#include <stdio.h>
#include <string.h>
#include <uthash.h>

struct mem_msg {
	uint64_t id;
	uint32_t refs;            /* queue entries referencing it */
	struct store_ev *ev;      /* owned clone of its MSG_PUT */
	UT_hash_handle hh;
};

struct mem_rec {                  /* a subscription, queue entry, rx id, mark or retained message */
	struct store_ev *ev;      /* owned clone */
	const void *key;          /* -> inside ev */
	size_t klen;
	struct mem_rec *marks;    /* an rx id's marks by target (owned: freed with it) */
	UT_hash_handle hh;
};

struct mem_sess {
	char *key;                /* owned client id bytes */
	size_t klen;
	struct store_ev *hdr;     /* owned clone of its SESSION_PUT */
	struct mem_rec *subs;     /* by filter */
	struct mem_rec *qents;    /* by seq */
	struct mem_rec *rxids;    /* by pid */
	UT_hash_handle hh;
};

struct mem_store {
	struct mem_sess *sessions;
	struct mem_msg *msgs;
	struct mem_rec *retained; /* by topic */
	uint64_t *fresh;          /* ids put by the batch being applied */
	uint32_t n_fresh, cap_fresh;
};

/* ---- records ---- */

static void rec_clear(struct mem_rec **table);

static void rec_free(struct mem_rec *r)
{
	rec_clear(&r->marks);
	hq_free(r->ev);
	hq_free(r);
}

/* Where a record's key lies inside its own clone. */
static void rec_key(struct mem_rec *r)
{
	struct store_ev *e = r->ev;
	switch (e->kind) {
	case STORE_EV_SUB_PUT:
		r->key = e->u.sub.filter.p;
		r->klen = e->u.sub.filter.len;
		break;
	case STORE_EV_QENT_PUT:
		r->key = &e->u.qent.seq;
		r->klen = sizeof(e->u.qent.seq);
		break;
	case STORE_EV_RXID_ADD:
		r->key = &e->u.pid;
		r->klen = sizeof(e->u.pid);
		break;
	case STORE_EV_RXID_MARK:
		r->key = e->u.mark.target.p;
		r->klen = e->u.mark.target.len;
		break;
	default: /* STORE_EV_RETAIN_PUT */
		r->key = e->u.msg.topic.p;
		r->klen = e->u.msg.topic.len;
		break;
	}
}

/* Insert (or replace) a clone of ev in *table. The replaced record's event
 * goes to *old when asked for (the caller frees it), else it is freed. */
static void rec_put(struct mem_rec **table, const struct store_ev *ev, struct store_ev **old)
{
	struct mem_rec *r = hq_calloc(1, sizeof(*r));
	r->ev = store_ev_clone(ev);
	rec_key(r);
	struct mem_rec *prev;
	HASH_FIND(hh, *table, r->key, r->klen, prev);
	if (prev)
		HASH_DEL(*table, prev);
	HASH_ADD_KEYPTR(hh, *table, r->key, r->klen, r);
	if (prev) {
		if (old)
			*old = prev->ev;
		else
			hq_free(prev->ev);
		hq_free(prev);
	}
}

static struct mem_rec *rec_find(struct mem_rec *table, const void *key, size_t klen)
{
	struct mem_rec *r;
	HASH_FIND(hh, table, key, klen, r);
	return r;
}

static void rec_clear(struct mem_rec **table)
{
	struct mem_rec *r, *tmp;
	HASH_ITER(hh, *table, r, tmp) {
		HASH_DEL(*table, r);
		rec_free(r);
	}
}

/* ---- messages ---- */

static struct mem_msg *msg_find(struct mem_store *m, uint64_t id)
{
	struct mem_msg *mm;
	HASH_FIND(hh, m->msgs, &id, sizeof(id), mm);
	return mm;
}

static void msg_del(struct mem_store *m, struct mem_msg *mm)
{
	HASH_DEL(m->msgs, mm);
	hq_free(mm->ev);
	hq_free(mm);
}

static void msg_unref(struct mem_store *m, uint64_t id)
{
	struct mem_msg *mm = id ? msg_find(m, id) : NULL;
	if (mm && mm->refs && --mm->refs == 0)
		msg_del(m, mm);
}

static void msg_put(struct mem_store *m, const struct store_ev *ev)
{
	struct mem_msg *mm = msg_find(m, ev->u.msg.id);
	if (!mm) {
		mm = hq_calloc(1, sizeof(*mm));
		mm->id = ev->u.msg.id;
		HASH_ADD(hh, m->msgs, id, sizeof(mm->id), mm);
	} else {
		hq_free(mm->ev); /* the same id again: newer content, same references */
	}
	mm->ev = store_ev_clone(ev);
	if (m->n_fresh == m->cap_fresh) {
		m->cap_fresh = m->cap_fresh ? m->cap_fresh * 2 : 16;
		m->fresh = hq_realloc(m->fresh, m->cap_fresh * sizeof(*m->fresh));
	}
	m->fresh[m->n_fresh++] = mm->id;
}

/* ---- sessions ---- */

static struct mem_sess *sess_find(struct mem_store *m, struct store_bytes id)
{
	struct mem_sess *s;
	HASH_FIND(hh, m->sessions, id.p, id.len, s);
	return s;
}

static void qent_drop(struct mem_store *m, struct mem_rec *r)
{
	msg_unref(m, r->ev->u.qent.msg_id);
	rec_free(r);
}

static void sess_del(struct mem_store *m, struct mem_sess *s)
{
	HASH_DEL(m->sessions, s);
	rec_clear(&s->subs);
	rec_clear(&s->rxids);
	struct mem_rec *r, *tmp;
	HASH_ITER(hh, s->qents, r, tmp) {
		HASH_DEL(s->qents, r);
		qent_drop(m, r);
	}
	hq_free(s->hdr);
	hq_free(s->key);
	hq_free(s);
}

static void sess_put(struct mem_store *m, const struct store_ev *ev)
{
	struct mem_sess *s = sess_find(m, ev->client_id);
	if (!s) {
		s = hq_calloc(1, sizeof(*s));
		s->key = hq_memdup(ev->client_id.p, ev->client_id.len);
		s->klen = ev->client_id.len;
		HASH_ADD_KEYPTR(hh, m->sessions, s->key, s->klen, s);
	}
	hq_free(s->hdr);
	s->hdr = store_ev_clone(ev);
}

static void qent_put(struct mem_store *m, struct mem_sess *s, const struct store_ev *ev)
{
	struct mem_msg *mm = ev->u.qent.msg_id ? msg_find(m, ev->u.qent.msg_id) : NULL;
	if (mm)
		mm->refs++;
	struct store_ev *old = NULL;
	rec_put(&s->qents, ev, &old);
	if (old) {
		msg_unref(m, old->u.qent.msg_id);
		hq_free(old);
	}
}

static void qent_update(struct mem_store *m, struct mem_sess *s, const struct store_ev *ev)
{
	struct mem_rec *r = rec_find(s->qents, &ev->u.qent.seq, sizeof(uint64_t));
	if (!r)
		return;
	struct store_qent *q = &r->ev->u.qent;
	q->state = ev->u.qent.state;
	q->pid = ev->u.qent.pid;
	q->flags = ev->u.qent.flags;
	if (q->state == STORE_Q_PUBREL && q->msg_id) {
		/* PUBREC received: the message is not needed any more */
		msg_unref(m, q->msg_id);
		q->msg_id = 0;
	}
}

/* ---- apply ---- */

/* What the check pass knows about keys the batch touched before. */
struct shadow {
	const void *key;
	size_t klen;
	bool exists;
	UT_hash_handle hh;
};

static void shadow_set(struct shadow **t, const void *key, size_t klen, bool exists)
{
	struct shadow *e;
	HASH_FIND(hh, *t, key, klen, e);
	if (!e) {
		e = hq_calloc(1, sizeof(*e));
		e->key = key;
		e->klen = klen;
		HASH_ADD_KEYPTR(hh, *t, e->key, e->klen, e);
	}
	e->exists = exists;
}

static bool shadow_exists(struct shadow *t, const void *key, size_t klen, bool current)
{
	struct shadow *e;
	HASH_FIND(hh, t, key, klen, e);
	return e ? e->exists : current;
}

static void shadow_free(struct shadow **t)
{
	struct shadow *e, *tmp;
	HASH_ITER(hh, *t, e, tmp) {
		HASH_DEL(*t, e);
		hq_free(e);
	}
}

static bool session_scoped(uint8_t kind)
{
	return kind != STORE_EV_MSG_PUT && kind != STORE_EV_RETAIN_PUT && kind != STORE_EV_RETAIN_DEL;
}

/* The check pass: HQ_OK when every event of b can be applied. */
static int check(struct mem_store *m, const struct store_batch *b)
{
	struct shadow *sess = NULL, *msgs = NULL;
	int rc = HQ_OK;
	for (uint32_t i = 0; i < b->n_ev && rc == HQ_OK; i++) {
		const struct store_ev *ev = &b->ev[i];
		if (ev->kind == 0 || ev->kind > STORE_EV_KIND_MAX) {
			rc = HQ_EINVAL;
			break;
		}
		if (session_scoped(ev->kind) && !ev->client_id.len) {
			rc = HQ_EINVAL;
			break;
		}
		const void *cid = ev->client_id.p;
		size_t clen = ev->client_id.len;
		bool have_sess = session_scoped(ev->kind) &&
			shadow_exists(sess, cid, clen, sess_find(m, ev->client_id) != NULL);
		switch (ev->kind) {
		case STORE_EV_SESSION_PUT:
			shadow_set(&sess, cid, clen, true);
			break;
		case STORE_EV_SESSION_DEL:
			shadow_set(&sess, cid, clen, false);
			break;
		case STORE_EV_SUB_PUT:
		case STORE_EV_RXID_ADD:
			if (!have_sess)
				rc = HQ_ENOTFOUND;
			break;
		case STORE_EV_MSG_PUT:
			if (!ev->u.msg.id || !ev->u.msg.topic.len)
				rc = HQ_EINVAL;
			else
				shadow_set(&msgs, &ev->u.msg.id, sizeof(uint64_t), true);
			break;
		case STORE_EV_QENT_PUT:
		case STORE_EV_QENT_UPDATE:
			if (ev->u.qent.state > STORE_Q_PUBREL) {
				rc = HQ_EINVAL;
				break;
			}
			if (ev->kind == STORE_EV_QENT_UPDATE)
				break;
			if (!have_sess)
				rc = HQ_ENOTFOUND;
			else if (ev->u.qent.state != STORE_Q_PUBREL &&
				 !shadow_exists(msgs, &ev->u.qent.msg_id, sizeof(uint64_t),
						msg_find(m, ev->u.qent.msg_id) != NULL))
				rc = HQ_ENOTFOUND; /* an entry needs its message */
			break;
		case STORE_EV_RETAIN_PUT:
		case STORE_EV_RETAIN_DEL:
			if (!ev->u.msg.topic.len)
				rc = HQ_EINVAL;
			break;
		case STORE_EV_RXID_MARK:
			/* no rx id is not an error (apply ignores the mark);
			 * an empty target is the caller's bug */
			if (!ev->u.mark.target.len)
				rc = HQ_EINVAL;
			break;
		default:
			break;
		}
	}
	shadow_free(&sess);
	shadow_free(&msgs);
	return rc;
}

static void apply_one(struct mem_store *m, const struct store_ev *ev)
{
	struct mem_sess *s = session_scoped(ev->kind) ? sess_find(m, ev->client_id) : NULL;
	struct mem_rec *r;
	switch (ev->kind) {
	case STORE_EV_SESSION_PUT:
		sess_put(m, ev);
		break;
	case STORE_EV_SESSION_DEL:
		if (s)
			sess_del(m, s);
		break;
	case STORE_EV_SUB_PUT:
		rec_put(&s->subs, ev, NULL);
		break;
	case STORE_EV_SUB_DEL:
		if (s && (r = rec_find(s->subs, ev->u.sub.filter.p, ev->u.sub.filter.len))) {
			HASH_DEL(s->subs, r);
			rec_free(r);
		}
		break;
	case STORE_EV_MSG_PUT:
		msg_put(m, ev);
		break;
	case STORE_EV_QENT_PUT:
		qent_put(m, s, ev);
		break;
	case STORE_EV_QENT_UPDATE:
		if (s)
			qent_update(m, s, ev);
		break;
	case STORE_EV_QENT_DEL:
		if (s && (r = rec_find(s->qents, &ev->u.qent.seq, sizeof(uint64_t)))) {
			HASH_DEL(s->qents, r);
			qent_drop(m, r);
		}
		break;
	case STORE_EV_RXID_ADD:
		/* again for a stored id: nothing changes (its marks stay) */
		if (!rec_find(s->rxids, &ev->u.pid, sizeof(uint16_t)))
			rec_put(&s->rxids, ev, NULL);
		break;
	case STORE_EV_RXID_MARK:
		/* only while its rx id is stored (store.h); a set by target */
		if (s && (r = rec_find(s->rxids, &ev->u.mark.pid, sizeof(uint16_t))))
			rec_put(&r->marks, ev, NULL);
		break;
	case STORE_EV_RXID_DEL:
		if (s && (r = rec_find(s->rxids, &ev->u.pid, sizeof(uint16_t)))) {
			HASH_DEL(s->rxids, r);
			rec_free(r);
		}
		break;
	case STORE_EV_RETAIN_PUT:
		rec_put(&m->retained, ev, NULL);
		break;
	case STORE_EV_RETAIN_DEL:
		if ((r = rec_find(m->retained, ev->u.msg.topic.p, ev->u.msg.topic.len))) {
			HASH_DEL(m->retained, r);
			rec_free(r);
		}
		break;
	}
}

static int mem_apply(struct store *st, const struct store_batch *b)
{
	struct mem_store *m = st->impl;
	int rc = check(m, b);
	if (rc != HQ_OK)
		return rc;
	m->n_fresh = 0;
	for (uint32_t i = 0; i < b->n_ev; i++)
		apply_one(m, &b->ev[i]);
	/* a message no entry took by the batch's end is not kept */
	for (uint32_t i = 0; i < m->n_fresh; i++) {
		struct mem_msg *mm = msg_find(m, m->fresh[i]);
		if (mm && !mm->refs)
			msg_del(m, mm);
	}
	m->n_fresh = 0;
	return HQ_OK;
}

/* ---- load ---- */

static int by_seq(const void *a, const void *b)
{
	uint64_t x = ((const struct mem_rec *)a)->ev->u.qent.seq;
	uint64_t y = ((const struct mem_rec *)b)->ev->u.qent.seq;
	return x < y ? -1 : x > y;
}

static int load_recs(struct mem_rec *table, store_load_cb cb, void *ctx)
{
	struct mem_rec *r, *tmp;
	HASH_ITER(hh, table, r, tmp) {
		int rc = cb(ctx, r->ev);
		if (rc != HQ_OK)
			return rc;
	}
	return HQ_OK;
}

static int mem_load(struct store *st, store_load_cb cb, void *ctx)
{
	struct mem_store *m = st->impl;
	int rc = HQ_OK;
	struct mem_msg *mm, *mtmp;
	HASH_ITER(hh, m->msgs, mm, mtmp)
		if ((rc = cb(ctx, mm->ev)) != HQ_OK)
			return rc;
	struct mem_sess *s, *stmp;
	HASH_ITER(hh, m->sessions, s, stmp) {
		if ((rc = cb(ctx, s->hdr)) != HQ_OK)
			return rc;
		if ((rc = load_recs(s->subs, cb, ctx)) != HQ_OK)
			return rc;
		HASH_SORT(s->qents, by_seq); /* queue order */
		if ((rc = load_recs(s->qents, cb, ctx)) != HQ_OK)
			return rc;
		if ((rc = load_recs(s->rxids, cb, ctx)) != HQ_OK)
			return rc;
		struct mem_rec *r, *rtmp;
		HASH_ITER(hh, s->rxids, r, rtmp)
			if ((rc = load_recs(r->marks, cb, ctx)) != HQ_OK)
				return rc;
	}
	return load_recs(m->retained, cb, ctx);
}

/* ---- lifetime ---- */

static void mem_close(struct store *st)
{
	struct mem_store *m = st->impl;
	struct mem_sess *s, *stmp;
	HASH_ITER(hh, m->sessions, s, stmp)
		sess_del(m, s);
	struct mem_msg *mm, *mtmp;
	HASH_ITER(hh, m->msgs, mm, mtmp)
		msg_del(m, mm);
	rec_clear(&m->retained);
	hq_free(m->fresh);
	hq_free(m);
}

static uint64_t mem_next_msg_id(struct store *st)
{
	struct mem_store *m = st->impl;
	uint64_t max = 0;
	struct mem_msg *mm, *tmp;
	HASH_ITER(hh, m->msgs, mm, tmp)
		if (mm->id > max)
			max = mm->id;
	return max + 1;
}

static const struct store_ops mem_ops = {
	.name = "memory",
	.durable = false,
	.apply = mem_apply,
	.sync = NULL,
	.load = mem_load,
	.next_msg_id = mem_next_msg_id,
	.close = mem_close,
};

struct store *store_mem_new(void)
{
	struct store *st = hq_calloc(1, sizeof(*st));
	st->ops = &mem_ops;
	st->impl = hq_calloc(1, sizeof(struct mem_store));
	return st;
}
