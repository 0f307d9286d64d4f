/*
 * test_store_redis.c - what the redis backend does beyond the common store
 * semantics (test_store.c runs those against it): several nodes sharing one
 * Redis, and Redis going away. Real redis-server / redis-sentinel processes
 * (redis_fixture.inc).
 *
 *  - two nodes: each loads only the sessions it owns; load_session reads any
 *    one; list_sessions follows the owner index, also when a session is
 *    taken over; message references count across nodes; the message ids of
 *    two nodes never collide and a restarted node never reuses one; the late
 *    writes of a node that no longer owns a session are dropped (fence);
 *    load_session returns an rx id's marks after the rx ids, a fenced mark
 *    is not written, and RXID_DEL / SESSION_DEL leave no mark key behind;
 *  - Redis killed: apply is HQ_EIO (transient), and works again once Redis is
 *    back; open does not need Redis, load waits for it;
 *  - Sentinel: a failover during writes costs HQ_EIO for a while, then the
 *    writes go to the new master, and what was replicated is there.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/clock.h"
#include "core/conf.h"
#include "core/err.h"
#include "core/mem.h"
#include "store/store.h"
#include "store/store_redis_int.h"

#include "redis_fixture.inc"

#define B(s) ((struct store_bytes){ (const uint8_t *)(s), (uint32_t)strlen(s) })
#define NODE_A "a@127.0.0.1"
#define NODE_B "b@127.0.0.1"

static struct rfx_proc shared_srv; /* the one Redis of the two-node tests */

static struct store *open_node(const char *node, int port, const char *sentinels)
{
	struct hq_config cfg;
	rfx_config(&cfg, node, port, sentinels);
	struct store *st = NULL;
	char err[256];
	assert_int_equal(store_redis_open(&cfg, &st, err, sizeof(err)), HQ_OK);
	return st;
}

/* ---- events and snapshots ---- */

static struct store_ev ev_sess(const char *cid, const char *owner)
{
	struct store_ev e = { .kind = STORE_EV_SESSION_PUT, .client_id = B(cid) };
	e.u.sess.owner = B(owner);
	e.u.sess.expiry = 600;
	e.u.sess.version = 4;
	return e;
}

static struct store_ev ev_sub(const char *cid, const char *filter)
{
	struct store_ev e = { .kind = STORE_EV_SUB_PUT, .client_id = B(cid) };
	e.u.sub.filter = B(filter);
	e.u.sub.options = 1;
	return e;
}

static struct store_ev ev_msg(uint64_t id, const char *payload)
{
	struct store_ev e = { .kind = STORE_EV_MSG_PUT };
	e.u.msg.id = id;
	e.u.msg.topic = B("t/1");
	e.u.msg.payload = B(payload);
	e.u.msg.qos = 1;
	return e;
}

static struct store_ev ev_qent(uint8_t kind, const char *cid, uint64_t seq, uint64_t msg_id)
{
	struct store_ev e = { .kind = kind, .client_id = B(cid) };
	e.u.qent.seq = seq;
	e.u.qent.msg_id = msg_id;
	e.u.qent.qos = 1;
	return e;
}

static struct store_ev ev_retain(const char *topic, const char *payload)
{
	struct store_ev e = { .kind = STORE_EV_RETAIN_PUT };
	e.u.msg.topic = B(topic);
	e.u.msg.payload = B(payload);
	e.u.msg.retain = true;
	return e;
}

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

struct snap {
	struct store_ev **v;
	size_t n;
};

static int snap_cb(void *ctx, const struct store_ev *ev)
{
	struct snap *s = ctx;
	s->v = hq_realloc(s->v, (s->n + 1) * sizeof(*s->v));
	s->v[s->n++] = store_ev_clone(ev);
	return HQ_OK;
}

static void snap_free(struct snap *s)
{
	for (size_t i = 0; i < s->n; i++)
		hq_free(s->v[i]);
	hq_free(s->v);
	*s = (struct snap){ 0 };
}

static struct snap load(struct store *st)
{
	struct snap s = { 0 };
	assert_int_equal(st->ops->load(st, snap_cb, &s), HQ_OK);
	return s;
}

static bool bytes_eq(struct store_bytes b, const char *s)
{
	return b.len == strlen(s) && !memcmp(b.p, s, b.len);
}

/* How many events of kind (for session cid, NULL = any) s holds. */
static size_t count(const struct snap *s, uint8_t kind, const char *cid)
{
	size_t n = 0;
	for (size_t i = 0; i < s->n; i++)
		n += s->v[i]->kind == kind && (!cid || bytes_eq(s->v[i]->client_id, cid));
	return n;
}

/* ---- fixtures ---- */

static int setup_shared(void **state)
{
	if (!shared_srv.pid && !rfx_start_server(&shared_srv, 0))
		return -1;
	redisReply *r = rfx_cmd(shared_srv.port, "FLUSHALL");
	if (!r)
		return -1;
	freeReplyObject(r);
	struct store **two = hq_calloc(2, sizeof(*two));
	two[0] = open_node(NODE_A, shared_srv.port, NULL);
	two[1] = open_node(NODE_B, shared_srv.port, NULL);
	*state = two;
	return 0;
}

static int teardown_shared(void **state)
{
	struct store **two = *state;
	store_free(two[0]);
	store_free(two[1]);
	hq_free(two);
	return 0;
}

/* ---- two nodes ---- */

static void test_each_node_loads_its_own(void **state)
{
	struct store **two = *state, *a = two[0], *b = two[1];
	assert_int_equal(APPLY(a, ev_sess("a1", NODE_A), ev_sub("a1", "x/#"), ev_msg(1, "m"),
			       ev_qent(STORE_EV_QENT_PUT, "a1", 1, 1), ev_sess("a2", NODE_A),
			       ev_retain("r/a", "from a")), HQ_OK);
	assert_int_equal(APPLY(b, ev_sess("b1", NODE_B), ev_msg(2, "n"),
			       ev_qent(STORE_EV_QENT_PUT, "b1", 1, 2)), HQ_OK);
	struct snap s = load(a);
	assert_int_equal(count(&s, STORE_EV_SESSION_PUT, NULL), 2);
	assert_int_equal(count(&s, STORE_EV_SESSION_PUT, "b1"), 0);
	assert_int_equal(count(&s, STORE_EV_MSG_PUT, NULL), 1); /* only what a's entries reference */
	assert_int_equal(s.v[0]->kind, STORE_EV_MSG_PUT);
	assert_int_equal(s.v[0]->u.msg.id, 1);
	assert_int_equal(count(&s, STORE_EV_RETAIN_PUT, NULL), 1); /* retained: every node */
	snap_free(&s);
	s = load(b);
	assert_int_equal(count(&s, STORE_EV_SESSION_PUT, NULL), 1);
	assert_int_equal(count(&s, STORE_EV_SESSION_PUT, "b1"), 1);
	assert_true(bytes_eq(s.v[1]->u.sess.owner, NODE_B));
	assert_int_equal(count(&s, STORE_EV_RETAIN_PUT, NULL), 1);
	snap_free(&s);
}

static void test_load_session_and_list(void **state)
{
	struct store **two = *state, *a = two[0], *b = two[1];
	assert_int_equal(APPLY(a, ev_sess("a1", NODE_A), ev_sub("a1", "x/#"), ev_msg(1, "m"),
			       ev_qent(STORE_EV_QENT_PUT, "a1", 2, 1), ev_qent(STORE_EV_QENT_PUT, "a1", 1, 1),
			       ev_sess("a2", NODE_A)), HQ_OK);
	/* b reads a's session: its message first, then the header and the rest */
	struct snap s = { 0 };
	assert_int_equal(b->ops->load_session(b, B("a1"), snap_cb, &s), HQ_OK);
	assert_int_equal(s.n, 5);
	assert_int_equal(s.v[0]->kind, STORE_EV_MSG_PUT);
	assert_int_equal(s.v[1]->kind, STORE_EV_SESSION_PUT);
	assert_true(bytes_eq(s.v[1]->u.sess.owner, NODE_A));
	assert_int_equal(s.v[2]->kind, STORE_EV_SUB_PUT);
	assert_int_equal(s.v[3]->u.qent.seq, 1);
	assert_int_equal(s.v[4]->u.qent.seq, 2);
	snap_free(&s);
	assert_int_equal(b->ops->load_session(b, B("nobody"), snap_cb, &s), HQ_ENOTFOUND);
	assert_int_equal(s.n, 0);
	assert_int_equal(b->ops->list_sessions(b, B(NODE_A), snap_cb, &s), HQ_OK);
	assert_int_equal(s.n, 2);
	assert_int_equal(count(&s, STORE_EV_SESSION_PUT, "a1") + count(&s, STORE_EV_SESSION_PUT, "a2"), 2);
	snap_free(&s);
	assert_int_equal(b->ops->list_sessions(b, B(NODE_B), snap_cb, &s), HQ_OK);
	assert_int_equal(s.n, 0);
	/* a deleted session leaves the index */
	struct store_ev del = { .kind = STORE_EV_SESSION_DEL, .client_id = B("a2") };
	assert_int_equal(APPLY(a, del), HQ_OK);
	assert_int_equal(a->ops->list_sessions(a, B(NODE_A), snap_cb, &s), HQ_OK);
	assert_int_equal(s.n, 1);
	snap_free(&s);
}

static struct store_ev ev_mark(const char *cid, uint16_t pid, const char *target)
{
	struct store_ev e = { .kind = STORE_EV_RXID_MARK, .client_id = B(cid) };
	e.u.mark.pid = pid;
	e.u.mark.target = B(target);
	return e;
}

static long long mark_keys(void)
{
	redisReply *r = rfx_cmd(shared_srv.port, "KEYS hq:mk:*");
	assert_non_null(r);
	long long n = r->type == REDIS_REPLY_ARRAY ? (long long)r->elements : -1;
	freeReplyObject(r);
	return n;
}

/* Marks through load_session (another node reading a1), the fence, and the
 * Redis keys RXID_DEL and SESSION_DEL must not leave behind. */
static void test_marks_shared(void **state)
{
	struct store **two = *state, *a = two[0], *b = two[1];
	struct store_ev rx7 = { .kind = STORE_EV_RXID_ADD, .client_id = B("a1"), .u.pid = 7 };
	struct store_ev rx8 = rx7;
	rx8.u.pid = 8;
	assert_int_equal(APPLY(a, ev_sess("a1", NODE_A), rx7, rx8, ev_mark("a1", 7, "cx"),
			       ev_mark("a1", 7, "cy"), ev_mark("a1", 8, "cx")), HQ_OK);
	/* a mark is fenced with its target, not with the publisher's session
	 * (any node may own that): b marks its own session z on a1's id, but
	 * not a session a owns (a stale node must not mark what it did not
	 * store) */
	assert_int_equal(APPLY(b, ev_sess("z", NODE_B), ev_mark("a1", 8, "cz")), HQ_OK);
	assert_int_equal(APPLY(b, ev_mark("a1", 8, "ca1")), HQ_OK);
	struct snap s = { 0 };
	assert_int_equal(b->ops->load_session(b, B("a1"), snap_cb, &s), HQ_OK);
	assert_int_equal(s.n, 7);
	assert_int_equal(s.v[0]->kind, STORE_EV_SESSION_PUT);
	assert_int_equal(s.v[1]->kind, STORE_EV_RXID_ADD);
	assert_int_equal(s.v[2]->kind, STORE_EV_RXID_ADD);
	size_t on7 = 0;
	for (size_t i = 3; i < 7; i++) {
		assert_int_equal(s.v[i]->kind, STORE_EV_RXID_MARK);
		assert_true(bytes_eq(s.v[i]->client_id, "a1"));
		if (s.v[i]->u.mark.pid == 7) {
			on7++;
			assert_true(bytes_eq(s.v[i]->u.mark.target, "cx") ||
				    bytes_eq(s.v[i]->u.mark.target, "cy"));
		} else {
			assert_int_equal(s.v[i]->u.mark.pid, 8);
			assert_true(bytes_eq(s.v[i]->u.mark.target, "cx") ||
				    bytes_eq(s.v[i]->u.mark.target, "cz"));
		}
	}
	assert_int_equal(on7, 2);
	snap_free(&s);
	assert_int_equal(mark_keys(), 2);
	struct store_ev del7 = rx7;
	del7.kind = STORE_EV_RXID_DEL;
	assert_int_equal(APPLY(a, del7), HQ_OK);
	assert_int_equal(mark_keys(), 1);
	s = load(a);
	assert_int_equal(count(&s, STORE_EV_RXID_MARK, "a1"), 2);
	snap_free(&s);
	struct store_ev sdel = { .kind = STORE_EV_SESSION_DEL, .client_id = B("a1") };
	assert_int_equal(APPLY(a, sdel), HQ_OK);
	assert_int_equal(mark_keys(), 0);
}

/* b takes a1 over (its SESSION_PUT names b): a1 moves in the owner index,
 * keeps what it owns, and a's next load no longer has it. */
static void test_takeover_moves_owner(void **state)
{
	struct store **two = *state, *a = two[0], *b = two[1];
	assert_int_equal(APPLY(a, ev_sess("a1", NODE_A), ev_sub("a1", "x/#"), ev_msg(1, "m"),
			       ev_qent(STORE_EV_QENT_PUT, "a1", 1, 1), ev_sess("a2", NODE_A)), HQ_OK);
	assert_int_equal(APPLY(b, ev_sess("a1", NODE_B)), HQ_OK);
	struct snap s = { 0 };
	assert_int_equal(a->ops->list_sessions(a, B(NODE_A), snap_cb, &s), HQ_OK);
	assert_int_equal(s.n, 1);
	assert_int_equal(count(&s, STORE_EV_SESSION_PUT, "a2"), 1);
	snap_free(&s);
	assert_int_equal(a->ops->list_sessions(a, B(NODE_B), snap_cb, &s), HQ_OK);
	assert_int_equal(count(&s, STORE_EV_SESSION_PUT, "a1"), 1);
	snap_free(&s);
	redisReply *r = rfx_cmd(shared_srv.port, "SISMEMBER hq:own:%s a1", NODE_A);
	assert_non_null(r);
	assert_int_equal(r->integer, 0); /* the index is exact, not filtered at read */
	freeReplyObject(r);
	s = load(a);
	assert_int_equal(count(&s, STORE_EV_SESSION_PUT, "a1"), 0);
	assert_int_equal(count(&s, STORE_EV_MSG_PUT, NULL), 0);
	snap_free(&s);
	s = load(b);
	assert_int_equal(count(&s, STORE_EV_SESSION_PUT, "a1"), 1);
	assert_int_equal(count(&s, STORE_EV_SUB_PUT, "a1"), 1);
	assert_int_equal(count(&s, STORE_EV_QENT_PUT, "a1"), 1);
	assert_int_equal(count(&s, STORE_EV_MSG_PUT, NULL), 1);
	snap_free(&s);
}

/* A message is shared by every node's entries: it goes with the last one,
 * whichever node deletes it. */
static void test_refcount_across_nodes(void **state)
{
	struct store **two = *state, *a = two[0], *b = two[1];
	uint64_t id = a->ops->next_msg_id(a);
	assert_int_equal(APPLY(a, ev_sess("a1", NODE_A), ev_msg(id, "m"),
			       ev_qent(STORE_EV_QENT_PUT, "a1", 1, id)), HQ_OK);
	assert_int_equal(APPLY(b, ev_sess("b1", NODE_B), ev_qent(STORE_EV_QENT_PUT, "b1", 1, id)), HQ_OK);
	assert_int_equal(APPLY(b, ev_qent(STORE_EV_QENT_DEL, "b1", 1, 0)), HQ_OK);
	struct snap s = load(a);
	assert_int_equal(count(&s, STORE_EV_MSG_PUT, NULL), 1); /* a1 still references it */
	snap_free(&s);
	/* b takes a1 over and acknowledges its entry: the message goes */
	assert_int_equal(APPLY(b, ev_sess("a1", NODE_B), ev_qent(STORE_EV_QENT_DEL, "a1", 1, 0)), HQ_OK);
	redisReply *r = rfx_cmd(shared_srv.port, "HLEN hq:msg");
	assert_non_null(r);
	assert_int_equal(r->integer, 0);
	freeReplyObject(r);
	r = rfx_cmd(shared_srv.port, "HLEN hq:mref");
	assert_int_equal(r->integer, 0);
	freeReplyObject(r);
}

/* hq:mref of id (0 when absent) and whether hq:msg holds it. */
static long long mref(uint64_t id, bool *stored)
{
	uint8_t k[8];
	for (int i = 0; i < 8; i++)
		k[i] = (uint8_t)(id >> (56 - 8 * i));
	redisReply *r = rfx_cmd(shared_srv.port, "HGET hq:mref %b", k, (size_t)8);
	assert_non_null(r);
	long long n = r->type == REDIS_REPLY_STRING ? atoll(r->str) : 0;
	freeReplyObject(r);
	r = rfx_cmd(shared_srv.port, "HEXISTS hq:msg %b", k, (size_t)8);
	assert_non_null(r);
	*stored = r->integer == 1;
	freeReplyObject(r);
	return n;
}

/* The seq -> message id of session cid's entries in s (0 = no such entry). */
static uint64_t qent_msg(const struct snap *s, const char *cid, uint64_t seq)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i]->kind == STORE_EV_QENT_PUT && bytes_eq(s->v[i]->client_id, cid) &&
		    s->v[i]->u.qent.seq == seq)
			return s->v[i]->u.qent.msg_id;
	return 0;
}

static bool has_sub(const struct snap *s, const char *cid, const char *filter)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i]->kind == STORE_EV_SUB_PUT && bytes_eq(s->v[i]->client_id, cid) &&
		    bytes_eq(s->v[i]->u.sub.filter, filter))
			return true;
	return false;
}

/* b takes s over from a; a's batches written before it knew arrive late.
 * Those of s are dropped (b's state unchanged, references exact), a's
 * events for o, which a still owns, apply. */
static void test_fence_late_writes_of_old_owner(void **state)
{
	struct store **two = *state, *a = two[0], *b = two[1];
	const uint64_t m1 = 11, m2 = 12, m3 = 13, m4 = 14, missing = 99;
	assert_int_equal(APPLY(a, ev_sess("s", NODE_A), ev_sub("s", "a/#"), ev_msg(m1, "1"),
			       ev_qent(STORE_EV_QENT_PUT, "s", 1, m1), ev_qent(STORE_EV_QENT_PUT, "s", 2, m1),
			       ev_sess("o", NODE_A)), HQ_OK);
	/* the hand-over: b takes s and rewrites it (seq 1 now m2, a new seq 3) */
	assert_int_equal(APPLY(b, ev_sess("s", NODE_B), ev_sub("s", "b/#"), ev_msg(m2, "2"),
			       ev_qent(STORE_EV_QENT_PUT, "s", 1, m2), ev_qent(STORE_EV_QENT_PUT, "s", 3, m2)),
			 HQ_OK);
	bool in;
	assert_int_equal(mref(m1, &in), 1);
	assert_int_equal(mref(m2, &in), 2);

	/* a's late batch: everything for s is fenced, even a put that would
	 * fail the check (a message nobody stored); o's events apply */
	struct store_ev upd = ev_qent(STORE_EV_QENT_UPDATE, "s", 3, 0);
	upd.u.qent.state = 1;
	upd.u.qent.pid = 5;
	struct store_ev subdel = { .kind = STORE_EV_SUB_DEL, .client_id = B("s") };
	subdel.u.sub.filter = B("b/#");
	struct store_ev rx = { .kind = STORE_EV_RXID_ADD, .client_id = B("s"), .u.pid = 7 };
	struct store_ev sdel = { .kind = STORE_EV_SESSION_DEL, .client_id = B("s") };
	assert_int_equal(APPLY(a, ev_msg(m3, "3"), ev_qent(STORE_EV_QENT_PUT, "s", 4, m3),
			       ev_qent(STORE_EV_QENT_PUT, "s", 5, missing), ev_qent(STORE_EV_QENT_DEL, "s", 2, 0),
			       ev_qent(STORE_EV_QENT_DEL, "s", 1, 0), upd, ev_sub("s", "late/#"), subdel, rx,
			       ev_sub("o", "o/#"), ev_qent(STORE_EV_QENT_PUT, "o", 1, m3), sdel),
			 HQ_OK);

	struct snap s = load(b);
	assert_int_equal(count(&s, STORE_EV_SESSION_PUT, "s"), 1);
	assert_int_equal(count(&s, STORE_EV_SUB_PUT, "s"), 2);
	assert_true(has_sub(&s, "s", "a/#"));
	assert_true(has_sub(&s, "s", "b/#"));
	assert_int_equal(count(&s, STORE_EV_QENT_PUT, "s"), 3);
	assert_int_equal(qent_msg(&s, "s", 1), m2);
	assert_int_equal(qent_msg(&s, "s", 2), m1);
	assert_int_equal(qent_msg(&s, "s", 3), m2);
	for (size_t i = 0; i < s.n; i++)
		if (s.v[i]->kind == STORE_EV_QENT_PUT)
			assert_int_equal(s.v[i]->u.qent.state, 0); /* the update was dropped */
	assert_int_equal(count(&s, STORE_EV_RXID_ADD, "s"), 0);
	assert_int_equal(count(&s, STORE_EV_MSG_PUT, NULL), 2); /* m1, m2 */
	snap_free(&s);
	s = load(a);
	assert_int_equal(count(&s, STORE_EV_SESSION_PUT, NULL), 1);
	assert_int_equal(count(&s, STORE_EV_SESSION_PUT, "o"), 1);
	assert_true(has_sub(&s, "o", "o/#"));
	assert_int_equal(qent_msg(&s, "o", 1), m3);
	snap_free(&s);
	/* a batch whose only entry is fenced keeps no message */
	assert_int_equal(APPLY(a, ev_msg(m4, "4"), ev_qent(STORE_EV_QENT_PUT, "s", 6, m4)), HQ_OK);
	assert_int_equal(mref(m1, &in), 1);
	assert_true(in);
	assert_int_equal(mref(m2, &in), 2);
	assert_true(in);
	assert_int_equal(mref(m3, &in), 1); /* o's entry only */
	assert_true(in);
	assert_int_equal(mref(m4, &in), 0);
	assert_false(in);
	redisReply *r = rfx_cmd(shared_srv.port, "HLEN hq:msg");
	assert_int_equal(r->integer, 3);
	freeReplyObject(r);
	assert_int_equal(store_redis_fenced(a), 9 + 1);
	assert_int_equal(store_redis_fenced(b), 0);

	/* a SESSION_PUT always applies: a takes s back, and its writes count again */
	assert_int_equal(APPLY(a, ev_sess("s", NODE_A), ev_qent(STORE_EV_QENT_DEL, "s", 2, 0)), HQ_OK);
	assert_int_equal(store_redis_fenced(a), 10);
	assert_int_equal(mref(m1, &in), 0);
	assert_false(in);
	assert_int_equal(APPLY(b, ev_qent(STORE_EV_QENT_DEL, "s", 1, 0)), HQ_OK);
	assert_int_equal(store_redis_fenced(b), 1);
	assert_int_equal(mref(m2, &in), 2);
}

/* A header update (u.sess.update) is a write to an existing session: refused
 * when the session is missing (a Redis back without its data: the broker
 * then writes the session again whole, instead of recreating an empty
 * header), dropped when another node owns it; a plain put (create, take)
 * applies whatever is there. */
static void test_session_update_needs_the_session(void **state)
{
	struct store **two = *state, *a = two[0], *b = two[1];
	struct store_ev upd = ev_sess("u", NODE_A);
	upd.u.sess.update = true;
	upd.u.sess.expiry = 77;
	assert_int_equal(APPLY(a, upd), HQ_ENOTFOUND);
	struct snap s = load(a);
	assert_int_equal(count(&s, STORE_EV_SESSION_PUT, "u"), 0);
	snap_free(&s);
	assert_int_equal(APPLY(a, ev_sess("u", NODE_A), ev_sub("u", "u/#")), HQ_OK);
	assert_int_equal(APPLY(a, upd), HQ_OK);
	s = load(a);
	assert_int_equal(count(&s, STORE_EV_SESSION_PUT, "u"), 1);
	for (size_t i = 0; i < s.n; i++)
		if (s.v[i]->kind == STORE_EV_SESSION_PUT)
			assert_int_equal(s.v[i]->u.sess.expiry, 77);
	assert_true(has_sub(&s, "u", "u/#"));
	snap_free(&s);
	/* b takes it; a's late update is fenced and does not take it back */
	assert_int_equal(APPLY(b, ev_sess("u", NODE_B)), HQ_OK);
	upd.u.sess.expiry = 5;
	assert_int_equal(APPLY(a, upd), HQ_OK);
	assert_int_equal(store_redis_fenced(a), 1);
	s = load(b);
	assert_int_equal(count(&s, STORE_EV_SESSION_PUT, "u"), 1);
	for (size_t i = 0; i < s.n; i++)
		if (s.v[i]->kind == STORE_EV_SESSION_PUT)
			assert_int_equal(s.v[i]->u.sess.expiry, 600);
	snap_free(&s);
	s = load(a);
	assert_int_equal(count(&s, STORE_EV_SESSION_PUT, "u"), 0);
	snap_free(&s);
}

static void test_msg_ids_never_collide(void **state)
{
	struct store **two = *state, *a = two[0], *b = two[1];
	uint64_t ia = a->ops->next_msg_id(a), ib = b->ops->next_msg_id(b);
	assert_int_not_equal(ia >> 48, ib >> 48); /* one tag per node name */
	assert_int_not_equal(ia >> 48, 0);
	/* a stores ids up to ia + 1000; a restarted a starts above them */
	assert_int_equal(APPLY(a, ev_sess("a1", NODE_A), ev_msg(ia + 1000, "m"),
			       ev_qent(STORE_EV_QENT_PUT, "a1", 1, ia + 1000), ev_msg(ia + 5, "unkept")),
			 HQ_OK);
	struct store *a2 = open_node(NODE_A, shared_srv.port, NULL);
	struct snap s = load(a2);
	snap_free(&s);
	uint64_t again = a2->ops->next_msg_id(a2);
	assert_true(again > ia + 1000);
	assert_int_equal(again >> 48, ia >> 48);
	store_free(a2);
	/* b's range is untouched by a's writes */
	struct store *b2 = open_node(NODE_B, shared_srv.port, NULL);
	assert_int_equal(b2->ops->next_msg_id(b2), ib);
	store_free(b2);
	/* a describe line names the server */
	char want[64];
	snprintf(want, sizeof(want), "redis 127.0.0.1:%d db 0", shared_srv.port);
	assert_string_equal(a->ops->describe(a), want);
}

/* ---- Redis going away ---- */

static void test_redis_killed_and_back(void **state)
{
	(void)state;
	struct rfx_proc srv = { 0 };
	assert_true(rfx_start_server(&srv, 0));
	struct store *st = open_node(NODE_A, srv.port, NULL);
	assert_int_equal(APPLY(st, ev_retain("r", "1")), HQ_OK);
	rfx_kill(&srv);
	assert_int_equal(APPLY(st, ev_retain("r", "2")), HQ_EIO);
	assert_non_null(strstr(st->ops->describe(st), "disconnected"));
	assert_int_equal(APPLY(st, ev_retain("r", "3")), HQ_EIO); /* still down */
	assert_true(rfx_start_server(&srv, 0)); /* same port, empty */
	int rc = HQ_EIO;
	for (int i = 0; i < 100 && rc == HQ_EIO; i++) { /* the backoff is at most 2 s */
		rc = APPLY(st, ev_retain("r", "4"));
		if (rc == HQ_EIO)
			usleep(50 * 1000);
	}
	assert_int_equal(rc, HQ_OK);
	assert_null(strstr(st->ops->describe(st), "disconnected"));
	struct snap s = load(st);
	assert_int_equal(s.n, 1);
	assert_true(bytes_eq(s.v[0]->u.msg.payload, "4"));
	snap_free(&s);
	store_free(st);
	rfx_kill(&srv);
}

/* open succeeds with Redis down (the node starts, the store reports down);
 * load waits for Redis instead of starting without the sessions. */
static void test_open_down_load_waits(void **state)
{
	(void)state;
	struct rfx_proc srv = { .port = rfx_free_port() };
	struct store *st = open_node(NODE_A, srv.port, NULL);
	assert_non_null(strstr(st->ops->describe(st), "disconnected"));
	assert_true(rfx_launch(&srv, 0, 1500, false));
	int64_t t0 = clock_mono_ms();
	struct snap s = load(st);
	assert_true(clock_mono_ms() - t0 >= 1000);
	assert_int_equal(s.n, 0);
	snap_free(&s);
	assert_true(st->ops->next_msg_id(st) >> 48 >= 1);
	store_free(st);
	rfx_kill(&srv);
}

static int apply_until_ok(struct store *st, const char *v)
{
	int rc = HQ_EIO;
	for (int i = 0; i < 100 && rc == HQ_EIO; i++) { /* the backoff is at most 2 s */
		rc = APPLY(st, ev_retain("r", v));
		if (rc == HQ_EIO)
			usleep(50 * 1000);
	}
	return rc;
}

/* A server that is (or becomes) a replica is not written to: the connect
 * checks ROLE, and a READONLY reply drops the connection; both HQ_EIO,
 * and writes resume once it is a master again. */
static void test_replica_refused(void **state)
{
	(void)state;
	struct rfx_proc m = { 0 }, rep = { 0 };
	assert_true(rfx_start_server(&m, 0));
	assert_true(rfx_start_server(&rep, m.port));
	struct store *st = open_node(NODE_A, rep.port, NULL);
	assert_int_equal(APPLY(st, ev_retain("r", "1")), HQ_EIO);
	assert_non_null(strstr(st->ops->describe(st), "not a master"));
	redisReply *r = rfx_cmd(rep.port, "REPLICAOF NO ONE");
	assert_non_null(r);
	freeReplyObject(r);
	assert_int_equal(apply_until_ok(st, "2"), HQ_OK);
	/* demoted under our feet: READONLY */
	r = rfx_cmd(rep.port, "REPLICAOF 127.0.0.1 %d", m.port);
	assert_non_null(r);
	freeReplyObject(r);
	assert_int_equal(APPLY(st, ev_retain("r", "3")), HQ_EIO);
	assert_non_null(strstr(st->ops->describe(st), "READONLY"));
	r = rfx_cmd(rep.port, "REPLICAOF NO ONE");
	freeReplyObject(r);
	assert_int_equal(apply_until_ok(st, "4"), HQ_OK);
	store_free(st);
	rfx_kill(&rep);
	rfx_kill(&m);
}

/* ---- Sentinel ---- */

static bool replica_synced(int port)
{
	redisReply *r = rfx_cmd(port, "INFO replication");
	bool up = r && r->type == REDIS_REPLY_STRING && strstr(r->str, "master_link_status:up");
	if (r)
		freeReplyObject(r);
	return up;
}

static bool sentinel_knows_replica(int port)
{
	redisReply *r = rfx_cmd(port, "SENTINEL replicas mymaster");
	bool ok = r && r->type == REDIS_REPLY_ARRAY && r->elements > 0;
	if (r)
		freeReplyObject(r);
	return ok;
}

static void test_sentinel_failover(void **state)
{
	(void)state;
	struct rfx_proc m = { 0 }, rep = { 0 }, sen = { 0 };
	assert_true(rfx_start_server(&m, 0));
	assert_true(rfx_start_server(&rep, m.port));
	for (int i = 0; i < 200 && !replica_synced(rep.port); i++)
		usleep(50 * 1000);
	assert_true(replica_synced(rep.port));
	/* started after the replica is up, so its first INFO lists it */
	assert_true(rfx_start_sentinel(&sen, m.port));
	for (int i = 0; i < 300 && !sentinel_knows_replica(sen.port); i++)
		usleep(50 * 1000);
	assert_true(sentinel_knows_replica(sen.port));

	char sentinels[64];
	snprintf(sentinels, sizeof(sentinels), "127.0.0.1:%d", sen.port);
	struct store *st = open_node(NODE_A, 1, sentinels); /* server unused with sentinels */
	char want[128];
	snprintf(want, sizeof(want), "redis 127.0.0.1:%d db 0 (via sentinel mymaster)", m.port);
	assert_string_equal(st->ops->describe(st), want);
	assert_int_equal(APPLY(st, ev_sess("c1", NODE_A), ev_sub("c1", "f/#")), HQ_OK);
	/* what reached the replica survives the failover (WAIT would only
	 * cover writes of its own connection: poll the replica instead) */
	bool there = false;
	for (int i = 0; i < 200 && !there; i++) {
		redisReply *r = rfx_cmd(rep.port, "HEXISTS hq:sess c1");
		there = r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
		if (r)
			freeReplyObject(r);
		if (!there)
			usleep(50 * 1000);
	}
	assert_true(there);

	rfx_kill(&m);
	int eio = 0, rc = HQ_EIO;
	int64_t until = clock_mono_ms() + 40000;
	char v[16];
	for (int i = 0; rc != HQ_OK && clock_mono_ms() < until; i++) {
		snprintf(v, sizeof(v), "%d", i);
		rc = APPLY(st, ev_retain("r", v));
		if (rc != HQ_OK) {
			assert_int_equal(rc, HQ_EIO); /* transient, never anything else */
			eio++;
			usleep(100 * 1000);
		}
	}
	assert_int_equal(rc, HQ_OK);
	assert_true(eio >= 1);
	snprintf(want, sizeof(want), "redis 127.0.0.1:%d db 0 (via sentinel mymaster)", rep.port);
	assert_string_equal(st->ops->describe(st), want);
	struct snap s = load(st);
	assert_int_equal(count(&s, STORE_EV_SESSION_PUT, "c1"), 1);
	assert_int_equal(count(&s, STORE_EV_SUB_PUT, "c1"), 1);
	assert_int_equal(count(&s, STORE_EV_RETAIN_PUT, NULL), 1);
	snap_free(&s);
	store_free(st);
	rfx_kill(&sen);
	rfx_kill(&rep);
}

/* ---- throughput (printed, not asserted: the machine is shared) ---- */

/* Batches of 99 events as a publish-heavy turn makes them: 33 x (MSG_PUT
 * with a 100-byte payload, QENT_PUT referencing it, QENT_DEL of the entry
 * the previous batch put). At most 2000 batches or 3 s. */
static void test_throughput(void **state)
{
	struct store **two = *state, *a = two[0];
	assert_int_equal(APPLY(a, ev_sess("bench", NODE_A)), HQ_OK);
	char payload[101];
	memset(payload, 'p', 100);
	payload[100] = 0;
	uint64_t id = a->ops->next_msg_id(a), seq = 1, events = 0;
	int64_t t0 = clock_mono_us(), end = t0 + 3000000;
	int n;
	for (n = 0; n < 2000 && clock_mono_us() < end; n++) {
		struct store_batch *b = store_batch_new(0);
		for (int k = 0; k < 33; k++, id++, seq++) {
			struct store_ev e[3] = { ev_msg(id, payload),
						 ev_qent(STORE_EV_QENT_PUT, "bench", seq, id),
						 ev_qent(STORE_EV_QENT_DEL, "bench", seq - 33, 0) };
			for (int j = 0; j < 3; j++)
				store_batch_add(b, &e[j]);
		}
		events += b->n_ev;
		assert_int_equal(a->ops->apply(a, b), HQ_OK);
		store_batch_free(b);
	}
	double s = (double)(clock_mono_us() - t0) / 1e6;
	printf("redis backend: %d batches of 99 events in %.2f s: %.0f events/s, %.0f batches/s\n", n, s,
	       (double)events / s, n / s);
	redisReply *r = rfx_cmd(shared_srv.port, "HLEN hq:msg");
	assert_int_equal(r->integer, 33); /* only the last batch's messages are referenced */
	freeReplyObject(r);
}

int main(void)
{
	if (!rfx_available())
		return rfx_missing("store_redis");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_each_node_loads_its_own, setup_shared, teardown_shared),
		cmocka_unit_test_setup_teardown(test_load_session_and_list, setup_shared, teardown_shared),
		cmocka_unit_test_setup_teardown(test_marks_shared, setup_shared, teardown_shared),
		cmocka_unit_test_setup_teardown(test_takeover_moves_owner, setup_shared, teardown_shared),
		cmocka_unit_test_setup_teardown(test_refcount_across_nodes, setup_shared, teardown_shared),
		cmocka_unit_test_setup_teardown(test_fence_late_writes_of_old_owner, setup_shared, teardown_shared),
		cmocka_unit_test_setup_teardown(test_session_update_needs_the_session, setup_shared,
						teardown_shared),
		cmocka_unit_test_setup_teardown(test_msg_ids_never_collide, setup_shared, teardown_shared),
		cmocka_unit_test_setup_teardown(test_throughput, setup_shared, teardown_shared),
		cmocka_unit_test(test_redis_killed_and_back),
		cmocka_unit_test(test_open_down_load_waits),
		cmocka_unit_test(test_replica_refused),
		cmocka_unit_test(test_sentinel_failover),
	};
	return cmocka_run_group_tests_name("store_redis", tests, NULL, NULL);
}
