/*
 * test_store.c - the store interface (src/store/store.h), run against every
 * backend in `backends` below (memory, local; issue 9 adds redis).
 *
 * What a backend must do: every event kind round-trips through apply + load;
 * one stored copy of a message however many queue entries reference it, gone
 * with its last reference; queue entry state changes; a session's delete
 * takes its subscriptions, entries and received ids along; an rx id's
 * marks (RXID_MARK) load after the session's rx ids, form a set, go with
 * their rx id and its session, and a mark without its rx id is ignored;
 * retained put/overwrite/delete; a batch is all or nothing. The runner applies
 * batches in submission order and completes each exactly once with its
 * status and gate tokens; a failing backend (the `failing` wrapper: a test
 * double around the backend under test, for error paths only) is retried
 * while its errors are transient (HQ_EIO: nothing lost, order kept, the
 * runner unhealthy meanwhile), its batches fail on a permanent error, and a
 * stop with a dead backend returns within bounds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>

#include "core/conf.h"
#include "core/err.h"
#include "core/mem.h"
#include "store/store.h"
#include "store_test.h"

#include "redis_fixture.inc"

#define B(s) ((struct store_bytes){ (const uint8_t *)(s), (uint32_t)strlen(s) })

/* ---- the backends under test ---- */

struct backend {
	const char *name;
	struct store *(*open)(void);
	void (*cleanup)(void);    /* after store_free; NULL = nothing to do */
	bool needs_redis;         /* skipped (failed when CI=true) without redis-server */
};

/* local: a fresh data dir per test, removed after it */
static struct lmdb_tmp lmdb_dir;

static struct store *open_lmdb(void)
{
	lmdb_tmp_init(&lmdb_dir, 64ull << 20, false);
	return lmdb_tmp_open(&lmdb_dir);
}

static void cleanup_lmdb(void)
{
	lmdb_tmp_remove(&lmdb_dir);
}

/* One redis-server for the whole run, emptied before each test. */
static struct store *redis_open(void)
{
	static struct rfx_proc srv;
	if (!srv.pid && !rfx_start_server(&srv, 0))
		return NULL;
	redisReply *r = rfx_cmd(srv.port, "FLUSHALL");
	if (!r)
		return NULL;
	freeReplyObject(r);
	struct hq_config cfg;
	rfx_config(&cfg, "n1@127.0.0.1", srv.port, NULL);
	struct store *st;
	char err[256];
	return store_redis_open(&cfg, &st, err, sizeof(err)) == HQ_OK ? st : NULL;
}

static const struct backend backends[] = {
	{ "memory", store_mem_new, NULL, false },
	{ "local", open_lmdb, cleanup_lmdb, false },
	{ "redis", redis_open, NULL, true },
};
#define N_BACKENDS (sizeof(backends) / sizeof(backends[0]))

static const struct backend *cur_backend; /* the one the running test uses */

static int setup(void **state)
{
	cur_backend = *state;
	struct store *st = cur_backend->open();
	assert_non_null(st);
	*state = st;
	return 0;
}

static int teardown(void **state)
{
	store_free(*state);
	if (cur_backend->cleanup)
		cur_backend->cleanup();
	return 0;
}

/* ---- building events ---- */

static struct store_ev ev_sess(const char *cid, uint32_t expiry, bool will)
{
	struct store_ev e = { .kind = STORE_EV_SESSION_PUT, .client_id = B(cid) };
	e.u.sess.expiry = expiry;
	e.u.sess.expire_at = 1700000000000LL;
	e.u.sess.version = 5;
	if (will) {
		e.u.sess.has_will = true;
		e.u.sess.will_delay = 30;
		e.u.sess.will_at = 1700000030000LL;
		e.u.sess.will.topic = B("will/topic");
		e.u.sess.will.payload = B("gone");
		e.u.sess.will.qos = 1;
		e.u.sess.will.retain = true;
	}
	return e;
}

static struct store_ev ev_kind(uint8_t kind, const char *cid)
{
	return (struct store_ev){ .kind = kind, .client_id = cid ? B(cid) : (struct store_bytes){ 0 } };
}

static struct store_ev ev_sub(uint8_t kind, const char *cid, const char *filter, uint8_t opts,
			      uint32_t sub_id)
{
	struct store_ev e = ev_kind(kind, cid);
	e.u.sub.filter = B(filter);
	e.u.sub.options = opts;
	e.u.sub.sub_id = sub_id;
	return e;
}

static struct store_ev ev_msg(uint64_t id, const char *topic, const char *payload)
{
	struct store_ev e = ev_kind(STORE_EV_MSG_PUT, NULL);
	static const uint8_t props[] = { 0x01, 0x01, 0x03, 0x00, 0x01, 'x' };
	e.u.msg.id = id;
	e.u.msg.topic = B(topic);
	e.u.msg.payload = B(payload);
	e.u.msg.props = (struct store_bytes){ props, sizeof(props) };
	e.u.msg.qos = 2;
	e.u.msg.has_expiry = true;
	e.u.msg.expiry = 60;
	e.u.msg.expire_at = 1700000060000LL;
	e.u.msg.pub_hash = 0xabcdef;
	return e;
}

static struct store_ev ev_qent(uint8_t kind, const char *cid, uint64_t seq, uint64_t msg_id,
			       uint8_t state, uint16_t pid)
{
	static const uint32_t ids[] = { 7, 9 };
	struct store_ev e = ev_kind(kind, cid);
	e.u.qent.seq = seq;
	e.u.qent.msg_id = msg_id;
	e.u.qent.state = state;
	e.u.qent.pid = pid;
	e.u.qent.qos = 1;
	if (kind == STORE_EV_QENT_PUT) {
		e.u.qent.sub_ids = (struct store_bytes){ (const uint8_t *)ids, sizeof(ids) };
		e.u.qent.share_group = B("$share/g/a/#");
		e.u.qent.flags = STORE_QF_RETAIN;
	}
	return e;
}

static struct store_ev ev_rx(uint8_t kind, const char *cid, uint16_t pid)
{
	struct store_ev e = ev_kind(kind, cid);
	e.u.pid = pid;
	return e;
}

static struct store_ev ev_mark(const char *cid, uint16_t pid, const char *target)
{
	struct store_ev e = ev_kind(STORE_EV_RXID_MARK, cid);
	e.u.mark.pid = pid;
	e.u.mark.target = B(target);
	return e;
}

static struct store_ev ev_retain(uint8_t kind, const char *topic, const char *payload)
{
	struct store_ev e = ev_kind(kind, NULL);
	e.u.msg.topic = B(topic);
	if (payload) {
		e.u.msg.payload = B(payload);
		e.u.msg.qos = 1;
		e.u.msg.retain = true;
		e.u.msg.ts_wall = 1700000000123ULL;
		e.u.msg.ts_logical = 4;
		e.u.msg.origin = B("n1@127.0.0.1");
	}
	return e;
}

/* Apply events as one batch; the backend's result. */
static int apply_n(struct store *st, const struct store_ev *v, size_t n)
{
	struct store_batch *b = store_batch_new(0);
	for (size_t i = 0; i < n; i++)
		store_batch_add(b, &v[i]);
	int rc = st->ops->apply(st, b);
	store_batch_free(b);
	return rc;
}
#define APPLY(st, ...) apply_n(st, (const struct store_ev[]){ __VA_ARGS__ }, \
			       sizeof((const struct store_ev[]){ __VA_ARGS__ }) / sizeof(struct store_ev))

/* ---- what load returns ---- */

struct snap {
	struct store_ev **v;          /* owned clones, in load order */
	size_t n;
};

static int snap_cb(void *ctx, const struct store_ev *ev)
{
	struct snap *s = ctx;
	s->v = hq_realloc(s->v, (s->n + 1) * sizeof(*s->v));
	s->v[s->n++] = store_ev_clone(ev);
	return HQ_OK;
}

static struct snap load(struct store *st)
{
	struct snap s = { 0 };
	assert_int_equal(st->ops->load(st, snap_cb, &s), HQ_OK);
	return s;
}

static void snap_free(struct snap *s)
{
	for (size_t i = 0; i < s->n; i++)
		hq_free(s->v[i]);
	hq_free(s->v);
	*s = (struct snap){ 0 };
}

static bool bytes_eq(struct store_bytes b, const char *s)
{
	return b.len == strlen(s) && !memcmp(b.p, s, b.len);
}

static size_t count(const struct snap *s, uint8_t kind)
{
	size_t n = 0;
	for (size_t i = 0; i < s->n; i++)
		n += s->v[i]->kind == kind;
	return n;
}

/* The i-th event of `kind` belonging to session cid (NULL: any), or NULL. */
static const struct store_ev *find(const struct snap *s, uint8_t kind, const char *cid, size_t nth)
{
	for (size_t i = 0; i < s->n; i++) {
		const struct store_ev *e = s->v[i];
		if (e->kind != kind || (cid && !bytes_eq(e->client_id, cid)))
			continue;
		if (nth-- == 0)
			return e;
	}
	return NULL;
}

static size_t index_of(const struct snap *s, const struct store_ev *e)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i] == e)
			return i;
	fail_msg("event not in snapshot");
	return 0;
}

/* ---- round trips ---- */

static void test_empty_load(void **state)
{
	struct snap s = load(*state);
	assert_int_equal(s.n, 0);
	snap_free(&s);
}

static void test_every_kind_roundtrips(void **state)
{
	struct store *st = *state;
	assert_int_equal(APPLY(st, ev_msg(11, "a/b", "hello"), ev_sess("c1", 3600, true),
			       ev_sub(STORE_EV_SUB_PUT, "c1", "a/#", 0x01, 7),
			       ev_sub(STORE_EV_SUB_PUT, "c1", "$share/g/a/#", 0x02, 0),
			       ev_qent(STORE_EV_QENT_PUT, "c1", 2, 11, STORE_Q_INFLIGHT, 5),
			       ev_qent(STORE_EV_QENT_PUT, "c1", 1, 11, STORE_Q_QUEUED, 0),
			       ev_rx(STORE_EV_RXID_ADD, "c1", 42),
			       ev_retain(STORE_EV_RETAIN_PUT, "r/1", "kept")), HQ_OK);
	struct snap s = load(st);
	assert_int_equal(s.n, 8);
	const struct store_ev *m = find(&s, STORE_EV_MSG_PUT, NULL, 0);
	assert_non_null(m);
	assert_int_equal(m->u.msg.id, 11);
	assert_true(bytes_eq(m->u.msg.topic, "a/b"));
	assert_true(bytes_eq(m->u.msg.payload, "hello"));
	assert_int_equal(m->u.msg.props.len, 6);
	assert_int_equal(m->u.msg.props.p[5], 'x');
	assert_int_equal(m->u.msg.qos, 2);
	assert_true(m->u.msg.has_expiry);
	assert_int_equal(m->u.msg.expiry, 60);
	assert_int_equal(m->u.msg.expire_at, 1700000060000LL);
	assert_int_equal(m->u.msg.pub_hash, 0xabcdef);

	const struct store_ev *h = find(&s, STORE_EV_SESSION_PUT, "c1", 0);
	assert_non_null(h);
	assert_int_equal(h->u.sess.expiry, 3600);
	assert_int_equal(h->u.sess.expire_at, 1700000000000LL);
	assert_int_equal(h->u.sess.version, 5);
	assert_true(h->u.sess.has_will);
	assert_int_equal(h->u.sess.will_delay, 30);
	assert_int_equal(h->u.sess.will_at, 1700000030000LL);
	assert_true(bytes_eq(h->u.sess.will.topic, "will/topic"));
	assert_true(bytes_eq(h->u.sess.will.payload, "gone"));
	assert_true(h->u.sess.will.retain);

	const struct store_ev *sub = find(&s, STORE_EV_SUB_PUT, "c1", 0);
	const struct store_ev *sub2 = find(&s, STORE_EV_SUB_PUT, "c1", 1);
	assert_non_null(sub2);
	if (!bytes_eq(sub->u.sub.filter, "a/#")) {
		const struct store_ev *t = sub;
		sub = sub2;
		sub2 = t;
	}
	assert_true(bytes_eq(sub->u.sub.filter, "a/#"));
	assert_int_equal(sub->u.sub.options, 0x01);
	assert_int_equal(sub->u.sub.sub_id, 7);
	assert_true(bytes_eq(sub2->u.sub.filter, "$share/g/a/#"));
	assert_int_equal(sub2->u.sub.options, 0x02);

	/* queue entries come back in seq order, whatever the put order */
	const struct store_ev *q1 = find(&s, STORE_EV_QENT_PUT, "c1", 0);
	const struct store_ev *q2 = find(&s, STORE_EV_QENT_PUT, "c1", 1);
	assert_int_equal(q1->u.qent.seq, 1);
	assert_int_equal(q1->u.qent.state, STORE_Q_QUEUED);
	assert_int_equal(q2->u.qent.seq, 2);
	assert_int_equal(q2->u.qent.state, STORE_Q_INFLIGHT);
	assert_int_equal(q2->u.qent.pid, 5);
	assert_int_equal(q2->u.qent.msg_id, 11);
	assert_int_equal(q2->u.qent.qos, 1);
	assert_int_equal(q2->u.qent.flags, STORE_QF_RETAIN);
	assert_true(bytes_eq(q2->u.qent.share_group, "$share/g/a/#"));
	assert_int_equal(q2->u.qent.sub_ids.len, 2 * sizeof(uint32_t));
	uint32_t ids[2];
	memcpy(ids, q2->u.qent.sub_ids.p, sizeof(ids));
	assert_int_equal(ids[0], 7);
	assert_int_equal(ids[1], 9);

	const struct store_ev *rx = find(&s, STORE_EV_RXID_ADD, "c1", 0);
	assert_int_equal(rx->u.pid, 42);

	const struct store_ev *r = find(&s, STORE_EV_RETAIN_PUT, NULL, 0);
	assert_true(bytes_eq(r->u.msg.topic, "r/1"));
	assert_true(bytes_eq(r->u.msg.payload, "kept"));
	assert_true(bytes_eq(r->u.msg.origin, "n1@127.0.0.1"));
	assert_int_equal(r->u.msg.ts_wall, 1700000000123ULL);
	assert_int_equal(r->u.msg.ts_logical, 4);

	/* load order: messages, then the session and what it owns, then retained */
	assert_true(index_of(&s, m) < index_of(&s, h));
	assert_true(index_of(&s, h) < index_of(&s, sub));
	assert_true(index_of(&s, h) < index_of(&s, q1));
	assert_true(index_of(&s, q1) < index_of(&s, q2));
	assert_true(index_of(&s, h) < index_of(&s, rx));
	assert_true(index_of(&s, rx) < index_of(&s, r));
	snap_free(&s);
}

/* Load order holds with several sessions: each one's records follow its header. */
static void test_load_groups_by_session(void **state)
{
	struct store *st = *state;
	char cid[16];
	for (int i = 0; i < 20; i++) {
		snprintf(cid, sizeof(cid), "c%d", i);
		assert_int_equal(APPLY(st, ev_msg(100 + (uint64_t)i, "t", "p"), ev_sess(cid, 60, false),
				       ev_sub(STORE_EV_SUB_PUT, cid, "t", 1, 0),
				       ev_qent(STORE_EV_QENT_PUT, cid, 1, 100 + (uint64_t)i,
					       STORE_Q_QUEUED, 0)), HQ_OK);
	}
	struct snap s = load(st);
	assert_int_equal(s.n, 80);
	const struct store_bytes *cur = NULL;
	for (size_t i = 0; i < s.n; i++) {
		const struct store_ev *e = s.v[i];
		if (e->kind == STORE_EV_SESSION_PUT)
			cur = &e->client_id;
		else if (e->kind == STORE_EV_SUB_PUT || e->kind == STORE_EV_QENT_PUT) {
			assert_non_null(cur);
			assert_int_equal(e->client_id.len, cur->len);
			assert_memory_equal(e->client_id.p, cur->p, cur->len);
		} else {
			assert_int_equal(e->kind, STORE_EV_MSG_PUT);
			assert_null(cur); /* every message before the first session */
		}
	}
	snap_free(&s);
}

/* ---- messages and their references ---- */

static void test_msg_one_copy_refcounted(void **state)
{
	struct store *st = *state;
	assert_int_equal(APPLY(st, ev_sess("a", 60, false), ev_sess("b", 60, false),
			       ev_msg(7, "x", "shared"),
			       ev_qent(STORE_EV_QENT_PUT, "a", 1, 7, STORE_Q_QUEUED, 0),
			       ev_qent(STORE_EV_QENT_PUT, "b", 1, 7, STORE_Q_QUEUED, 0),
			       ev_qent(STORE_EV_QENT_PUT, "b", 2, 7, STORE_Q_QUEUED, 0)), HQ_OK);
	struct snap s = load(st);
	assert_int_equal(count(&s, STORE_EV_MSG_PUT), 1); /* one stored copy */
	assert_int_equal(count(&s, STORE_EV_QENT_PUT), 3);
	snap_free(&s);
	/* a's entry goes: b still references it */
	assert_int_equal(APPLY(st, ev_qent(STORE_EV_QENT_DEL, "a", 1, 0, 0, 0)), HQ_OK);
	s = load(st);
	assert_int_equal(count(&s, STORE_EV_MSG_PUT), 1);
	snap_free(&s);
	/* one of b's two entries goes into PUBREL: that reference is dropped */
	assert_int_equal(APPLY(st, ev_qent(STORE_EV_QENT_UPDATE, "b", 1, 0, STORE_Q_PUBREL, 3)), HQ_OK);
	s = load(st);
	assert_int_equal(count(&s, STORE_EV_MSG_PUT), 1);
	assert_int_equal(find(&s, STORE_EV_QENT_PUT, "b", 0)->u.qent.msg_id, 0);
	snap_free(&s);
	/* the last reference goes with b's session */
	assert_int_equal(APPLY(st, ev_kind(STORE_EV_SESSION_DEL, "b")), HQ_OK);
	s = load(st);
	assert_int_equal(count(&s, STORE_EV_MSG_PUT), 0);
	assert_int_equal(count(&s, STORE_EV_SESSION_PUT), 1);
	snap_free(&s);
}

static void test_msg_unreferenced_not_kept(void **state)
{
	struct store *st = *state;
	/* a message that no entry took by the end of its batch */
	assert_int_equal(APPLY(st, ev_msg(1, "x", "nobody")), HQ_OK);
	/* and one taken and released within the same batch */
	assert_int_equal(APPLY(st, ev_sess("a", 60, false), ev_msg(2, "x", "brief"),
			       ev_qent(STORE_EV_QENT_PUT, "a", 1, 2, STORE_Q_QUEUED, 0),
			       ev_qent(STORE_EV_QENT_DEL, "a", 1, 0, 0, 0)), HQ_OK);
	struct snap s = load(st);
	assert_int_equal(count(&s, STORE_EV_MSG_PUT), 0);
	assert_int_equal(count(&s, STORE_EV_SESSION_PUT), 1);
	snap_free(&s);
	/* an entry of a later batch may reference a message stored earlier */
	assert_int_equal(APPLY(st, ev_msg(3, "x", "kept"),
			       ev_qent(STORE_EV_QENT_PUT, "a", 1, 3, STORE_Q_QUEUED, 0)), HQ_OK);
	assert_int_equal(APPLY(st, ev_qent(STORE_EV_QENT_PUT, "a", 2, 3, STORE_Q_QUEUED, 0),
			       ev_qent(STORE_EV_QENT_DEL, "a", 1, 0, 0, 0)), HQ_OK);
	s = load(st);
	assert_int_equal(count(&s, STORE_EV_MSG_PUT), 1);
	assert_int_equal(find(&s, STORE_EV_QENT_PUT, "a", 0)->u.qent.seq, 2);
	snap_free(&s);
}

/* ---- queue entries ---- */

static void test_qent_state_updates(void **state)
{
	struct store *st = *state;
	assert_int_equal(APPLY(st, ev_sess("a", 60, false), ev_msg(5, "q", "2"),
			       ev_qent(STORE_EV_QENT_PUT, "a", 9, 5, STORE_Q_QUEUED, 0)), HQ_OK);
	struct store_ev up = ev_qent(STORE_EV_QENT_UPDATE, "a", 9, 0, STORE_Q_INFLIGHT, 17);
	up.u.qent.flags = STORE_QF_SENT;
	assert_int_equal(APPLY(st, up), HQ_OK);
	struct snap s = load(st);
	const struct store_ev *q = find(&s, STORE_EV_QENT_PUT, "a", 0);
	assert_int_equal(q->u.qent.state, STORE_Q_INFLIGHT);
	assert_int_equal(q->u.qent.pid, 17);
	assert_int_equal(q->u.qent.flags, STORE_QF_SENT);
	assert_int_equal(q->u.qent.msg_id, 5);
	assert_true(bytes_eq(q->u.qent.share_group, "$share/g/a/#")); /* kept from the put */
	snap_free(&s);

	assert_int_equal(APPLY(st, ev_qent(STORE_EV_QENT_UPDATE, "a", 9, 0, STORE_Q_PUBREL, 17)), HQ_OK);
	s = load(st);
	q = find(&s, STORE_EV_QENT_PUT, "a", 0);
	assert_int_equal(q->u.qent.state, STORE_Q_PUBREL);
	assert_int_equal(q->u.qent.pid, 17);
	assert_int_equal(count(&s, STORE_EV_MSG_PUT), 0); /* PUBREL needs no message */
	snap_free(&s);

	/* updating or deleting what is not there is not an error */
	assert_int_equal(APPLY(st, ev_qent(STORE_EV_QENT_UPDATE, "a", 77, 0, STORE_Q_INFLIGHT, 1),
			       ev_qent(STORE_EV_QENT_DEL, "nobody", 1, 0, 0, 0)), HQ_OK);
	assert_int_equal(APPLY(st, ev_qent(STORE_EV_QENT_DEL, "a", 9, 0, 0, 0)), HQ_OK);
	s = load(st);
	assert_int_equal(count(&s, STORE_EV_QENT_PUT), 0);
	snap_free(&s);
}

/* ---- sessions ---- */

static void test_session_delete_cascades(void **state)
{
	struct store *st = *state;
	assert_int_equal(APPLY(st, ev_sess("a", 60, true), ev_sess("keep", 60, false),
			       ev_sub(STORE_EV_SUB_PUT, "a", "x/+", 1, 0),
			       ev_sub(STORE_EV_SUB_PUT, "keep", "x/+", 1, 0), ev_msg(1, "x/y", "m"),
			       ev_qent(STORE_EV_QENT_PUT, "a", 1, 1, STORE_Q_QUEUED, 0),
			       ev_rx(STORE_EV_RXID_ADD, "a", 3)), HQ_OK);
	assert_int_equal(APPLY(st, ev_kind(STORE_EV_SESSION_DEL, "a")), HQ_OK);
	struct snap s = load(st);
	assert_int_equal(s.n, 2); /* keep's header and subscription */
	assert_non_null(find(&s, STORE_EV_SESSION_PUT, "keep", 0));
	assert_non_null(find(&s, STORE_EV_SUB_PUT, "keep", 0));
	snap_free(&s);
	/* the same client id again starts from nothing */
	assert_int_equal(APPLY(st, ev_sess("a", 10, false)), HQ_OK);
	s = load(st);
	assert_int_equal(s.n, 3);
	const struct store_ev *h = find(&s, STORE_EV_SESSION_PUT, "a", 0);
	assert_int_equal(h->u.sess.expiry, 10);
	assert_false(h->u.sess.has_will);
	assert_null(find(&s, STORE_EV_SUB_PUT, "a", 0));
	snap_free(&s);
}

static void test_session_header_replaced(void **state)
{
	struct store *st = *state;
	assert_int_equal(APPLY(st, ev_sess("a", 60, true), ev_sub(STORE_EV_SUB_PUT, "a", "t", 0, 0)),
			 HQ_OK);
	struct store_ev h = ev_sess("a", 120, false);
	h.u.sess.expire_at = 0;
	assert_int_equal(APPLY(st, h), HQ_OK);
	struct snap s = load(st);
	assert_int_equal(count(&s, STORE_EV_SESSION_PUT), 1);
	const struct store_ev *g = find(&s, STORE_EV_SESSION_PUT, "a", 0);
	assert_int_equal(g->u.sess.expiry, 120);
	assert_int_equal(g->u.sess.expire_at, 0);
	assert_false(g->u.sess.has_will);
	assert_non_null(find(&s, STORE_EV_SUB_PUT, "a", 0)); /* a header put keeps the rest */
	snap_free(&s);
}

static void test_subscriptions(void **state)
{
	struct store *st = *state;
	assert_int_equal(APPLY(st, ev_sess("a", 60, false),
			       ev_sub(STORE_EV_SUB_PUT, "a", "t/#", 0, 1),
			       ev_sub(STORE_EV_SUB_PUT, "a", "t/#", 2, 5), /* same filter: replaced */
			       ev_sub(STORE_EV_SUB_PUT, "a", "u", 1, 0)), HQ_OK);
	struct snap s = load(st);
	assert_int_equal(count(&s, STORE_EV_SUB_PUT), 2);
	for (size_t i = 0; i < 2; i++) {
		const struct store_ev *e = find(&s, STORE_EV_SUB_PUT, "a", i);
		if (bytes_eq(e->u.sub.filter, "t/#")) {
			assert_int_equal(e->u.sub.options, 2);
			assert_int_equal(e->u.sub.sub_id, 5);
		}
	}
	snap_free(&s);
	assert_int_equal(APPLY(st, ev_sub(STORE_EV_SUB_DEL, "a", "t/#", 0, 0),
			       ev_sub(STORE_EV_SUB_DEL, "a", "never", 0, 0)), HQ_OK);
	s = load(st);
	assert_int_equal(count(&s, STORE_EV_SUB_PUT), 1);
	assert_true(bytes_eq(find(&s, STORE_EV_SUB_PUT, "a", 0)->u.sub.filter, "u"));
	snap_free(&s);
}

static void test_rx_ids(void **state)
{
	struct store *st = *state;
	assert_int_equal(APPLY(st, ev_sess("a", 60, false), ev_rx(STORE_EV_RXID_ADD, "a", 1),
			       ev_rx(STORE_EV_RXID_ADD, "a", 65535), ev_rx(STORE_EV_RXID_ADD, "a", 1)),
			 HQ_OK);
	struct snap s = load(st);
	assert_int_equal(count(&s, STORE_EV_RXID_ADD), 2);
	snap_free(&s);
	assert_int_equal(APPLY(st, ev_rx(STORE_EV_RXID_DEL, "a", 1), ev_rx(STORE_EV_RXID_DEL, "a", 2)),
			 HQ_OK);
	s = load(st);
	assert_int_equal(count(&s, STORE_EV_RXID_ADD), 1);
	assert_int_equal(find(&s, STORE_EV_RXID_ADD, "a", 0)->u.pid, 65535);
	snap_free(&s);
}

/* ---- marks (RXID_MARK): test_store_marks.inc ---- */

#include "test_store_marks.inc"

/* ---- retained ---- */

static void test_retained_put_overwrite_delete(void **state)
{
	struct store *st = *state;
	assert_int_equal(APPLY(st, ev_retain(STORE_EV_RETAIN_PUT, "r/a", "1"),
			       ev_retain(STORE_EV_RETAIN_PUT, "r/b", "2")), HQ_OK);
	assert_int_equal(APPLY(st, ev_retain(STORE_EV_RETAIN_PUT, "r/a", "one")), HQ_OK);
	struct snap s = load(st);
	assert_int_equal(count(&s, STORE_EV_RETAIN_PUT), 2);
	for (size_t i = 0; i < 2; i++) {
		const struct store_ev *e = find(&s, STORE_EV_RETAIN_PUT, NULL, i);
		if (bytes_eq(e->u.msg.topic, "r/a"))
			assert_true(bytes_eq(e->u.msg.payload, "one"));
		else
			assert_true(bytes_eq(e->u.msg.payload, "2"));
	}
	snap_free(&s);
	assert_int_equal(APPLY(st, ev_retain(STORE_EV_RETAIN_DEL, "r/a", NULL),
			       ev_retain(STORE_EV_RETAIN_DEL, "r/none", NULL)), HQ_OK);
	s = load(st);
	assert_int_equal(count(&s, STORE_EV_RETAIN_PUT), 1);
	assert_true(bytes_eq(find(&s, STORE_EV_RETAIN_PUT, NULL, 0)->u.msg.topic, "r/b"));
	snap_free(&s);
}

/* ---- batches ---- */

static void test_batch_all_or_nothing(void **state)
{
	struct store *st = *state;
	/* the third event needs a session that does not exist: nothing is applied */
	assert_int_not_equal(APPLY(st, ev_sess("a", 60, false), ev_retain(STORE_EV_RETAIN_PUT, "r", "x"),
				   ev_sub(STORE_EV_SUB_PUT, "ghost", "t", 0, 0)), HQ_OK);
	/* an entry whose message is not stored */
	assert_int_not_equal(APPLY(st, ev_sess("a", 60, false),
				   ev_qent(STORE_EV_QENT_PUT, "a", 1, 99, STORE_Q_QUEUED, 0)), HQ_OK);
	/* a session deleted earlier in the same batch cannot take a subscription */
	assert_int_not_equal(APPLY(st, ev_sess("a", 60, false), ev_kind(STORE_EV_SESSION_DEL, "a"),
				   ev_sub(STORE_EV_SUB_PUT, "a", "t", 0, 0)), HQ_OK);
	/* malformed: no message id, unknown kind */
	assert_int_not_equal(APPLY(st, ev_msg(0, "t", "p")), HQ_OK);
	assert_int_not_equal(APPLY(st, ev_kind(200, "a")), HQ_OK);
	struct snap s = load(st);
	assert_int_equal(s.n, 0);
	snap_free(&s);
	/* later events of a batch see the earlier ones */
	assert_int_equal(APPLY(st, ev_sess("a", 60, false), ev_msg(1, "t", "p"),
			       ev_qent(STORE_EV_QENT_PUT, "a", 1, 1, STORE_Q_QUEUED, 0)), HQ_OK);
}

/* Events are applied in append order: the last write of a key wins. */
static void test_batch_event_order(void **state)
{
	struct store *st = *state;
	assert_int_equal(APPLY(st, ev_retain(STORE_EV_RETAIN_PUT, "r", "1"),
			       ev_retain(STORE_EV_RETAIN_DEL, "r", NULL),
			       ev_retain(STORE_EV_RETAIN_PUT, "r", "3"), ev_sess("a", 1, false),
			       ev_kind(STORE_EV_SESSION_DEL, "a"), ev_sess("a", 2, false)), HQ_OK);
	struct snap s = load(st);
	assert_int_equal(s.n, 2);
	assert_true(bytes_eq(find(&s, STORE_EV_RETAIN_PUT, NULL, 0)->u.msg.payload, "3"));
	assert_int_equal(find(&s, STORE_EV_SESSION_PUT, "a", 0)->u.sess.expiry, 2);
	snap_free(&s);
}

/* The batch owns copies: the caller's buffers may change right after add. */
static void test_batch_copies_bytes(void **state)
{
	struct store *st = *state;
	char cid[8] = "client", topic[8] = "top/ic", payload[1024];
	memset(payload, 'p', sizeof(payload));
	struct store_batch *b = store_batch_new(3);
	struct store_ev e = ev_sess(cid, 5, false);
	store_batch_add(b, &e);
	struct store_ev r = ev_retain(STORE_EV_RETAIN_PUT, topic, "x");
	r.u.msg.payload = (struct store_bytes){ (const uint8_t *)payload, sizeof(payload) };
	/* enough events to need several arena chunks */
	for (int i = 0; i < 40; i++)
		store_batch_add(b, &r);
	memset(cid, 'X', 6);
	memset(topic, 'Y', 6);
	memset(payload, 'Z', sizeof(payload));
	assert_int_equal(b->owner, 3);
	assert_int_equal(b->n_ev, 41);
	assert_false(store_batch_empty(b));
	assert_int_equal(st->ops->apply(st, b), HQ_OK);
	store_batch_free(b);
	struct snap s = load(st);
	assert_non_null(find(&s, STORE_EV_SESSION_PUT, "client", 0));
	const struct store_ev *g = find(&s, STORE_EV_RETAIN_PUT, NULL, 0);
	assert_true(bytes_eq(g->u.msg.topic, "top/ic"));
	assert_int_equal(g->u.msg.payload.len, 1024);
	assert_int_equal(g->u.msg.payload.p[1023], 'p');
	snap_free(&s);
	assert_true(store_batch_empty(NULL));
	struct store_batch *t = store_batch_new(0);
	assert_true(store_batch_empty(t));
	store_batch_add_token(t, 9);
	assert_false(store_batch_empty(t)); /* a token alone still needs its completion */
	store_batch_free(t);
	store_batch_free(NULL);
}

#include "test_store_runner.inc"

int main(void)
{
	int failed = 0;
	for (size_t i = 0; i < N_BACKENDS; i++) {
		void *be = (void *)&backends[i];
		if (backends[i].needs_redis && !rfx_available()) {
			failed += rfx_missing("store[redis]");
			continue;
		}
#define T(f) cmocka_unit_test_prestate_setup_teardown(f, setup, teardown, be)
		const struct CMUnitTest tests[] = {
			T(test_empty_load),
			T(test_every_kind_roundtrips),
			T(test_load_groups_by_session),
			T(test_msg_one_copy_refcounted),
			T(test_msg_unreferenced_not_kept),
			T(test_qent_state_updates),
			T(test_session_delete_cascades),
			T(test_session_header_replaced),
			T(test_subscriptions),
			T(test_rx_ids),
			T(test_marks_load_after_rx_ids),
			T(test_marks_gone_with_rx_id),
			T(test_marks_gone_with_session),
			T(test_mark_without_rx_id_ignored),
			T(test_mark_duplicates_load_once),
			T(test_retained_put_overwrite_delete),
			T(test_batch_all_or_nothing),
			T(test_batch_event_order),
			T(test_batch_copies_bytes),
			T(test_runner_in_order),
			T(test_runner_tokens_and_status),
			T(test_runner_apply_failure),
			T(test_runner_sync_failure),
			T(test_runner_transient_retried),
			T(test_runner_stop_dead_backend),
			T(test_runner_stop_drains),
		};
#undef T
		char name[64];
		snprintf(name, sizeof(name), "store[%s]", backends[i].name);
		failed += cmocka_run_group_tests_name(name, tests, NULL, NULL);
	}
	return failed;
}
