/*
 * test_sess_serial.c - unit tests for src/broker/sess_serial.c (the session
 * blob, format documented in sess_serial.h). The store has its own suite
 * (test_store.c).
 *
 * A session holding every kind of state (subscriptions, will, in-flight QoS 1
 * and QoS 2 in both states, queued deliveries with several subscription ids and
 * shared groups, incoming QoS 2 packet ids) goes through serialise ->
 * deserialise and is compared field by field. Corrupt input
 * (every truncation, byte flips, hand-made invalid blobs) must give an error
 * or a session that serialises again, and never crash or leak (ASan).
 * The session's worker is a bare struct worker + struct broker: nothing here
 * touches routes, the registry, connections or the event loop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker/brk_int.h"
#include "broker/sess_serial.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/mem.h"
#include "core/msg_wire.h"

#define S(s) (s), strlen(s)

struct fixture {
	struct broker b;
	struct worker w;
};

static int setup(void **state)
{
	struct fixture *f = hq_calloc(1, sizeof(*f));
	atomic_init(&f->b.next_id, 1);
	f->w.b = &f->b;
	wk_cur = &f->w; /* this thread plays the worker that owns the sessions */
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	wk_cur = NULL;
	hq_free(*state);
	return 0;
}

static struct worker *fx_worker(void **state)
{
	return &((struct fixture *)*state)->w;
}

/* ---- building sessions ---- */

static struct brk_msg *mk_msg(const char *topic, const char *payload, uint8_t qos, bool retain,
			      bool has_exp, uint32_t exp, uint32_t hash)
{
	/* a forwardable property blob: payload format indicator 1, content type "x" */
	static const uint8_t props[] = { 0x01, 0x01, 0x03, 0x00, 0x01, 'x' };
	struct brk_msg *m = msg_new(S(topic), props, sizeof(props), (const uint8_t *)payload,
				    strlen(payload), qos, retain, has_exp, exp, clock_mono_ms());
	m->pub_hash = hash;
	m->origin_sid = 42;
	return m;
}

static void add_sub(struct session *s, const char *filter, uint8_t options, uint32_t sub_id)
{
	struct sess_sub *sub = hq_calloc(1, sizeof(*sub));
	sub->filter = hq_strdup(filter);
	sub->options = options;
	sub->sub_id = sub_id;
	HASH_ADD_KEYPTR(hh, s->subs, sub->filter, strlen(sub->filter), sub);
	s->n_subs++;
}

static void add_inflight(struct session *s, const struct deliv *d)
{
	if (s->n_inflight == s->cap_inflight) {
		s->cap_inflight = s->cap_inflight ? s->cap_inflight * 2 : 4;
		s->inflight = s->inflight_base =
			hq_realloc(s->inflight_base, s->cap_inflight * sizeof(*s->inflight));
	}
	s->inflight[s->n_inflight++] = *d;
}

static void set_ids(struct deliv *d, const uint32_t *ids, uint8_t n)
{
	d->n_sub_ids = n;
	if (n == 1)
		d->sub_id = ids[0];
	else if (n > 1)
		d->sub_ids = hq_memdup(ids, n * sizeof(*ids));
}

/* A session holding one of everything the format carries. */
static struct session *full_session(struct worker *w)
{
	int64_t now = clock_mono_ms();
	struct session *s = sess_new(w, S("client-1"));
	s->version = MQTT_V5;
	s->expiry = 3600;
	s->expire_at = now + 1800 * 1000;
	sess_set_will(s, mk_msg("clients/client-1/state", "gone", 1, true, true, 600, 7), 30);
	s->will_at = now + 20 * 1000;
	s->next_pid = 13;

	add_sub(s, "a/b", 0x01, 0);
	add_sub(s, "sport/+/x", 0x02 | MQTT_SUBOPT_NO_LOCAL | MQTT_SUBOPT_RAP | (1 << MQTT_SUBOPT_RH_SHIFT), 7);
	add_sub(s, "$share/g1/t/#", 0x01 | (2 << MQTT_SUBOPT_RH_SHIFT), 9);

	/* in flight: QoS 1 sent; QoS 2 waiting for PUBREC; QoS 2 waiting for PUBCOMP */
	struct deliv d = { .pid = 10, .qos = 1, .flags = DV_SENT | DV_RETAIN };
	d.msg = mk_msg("a/b", "one", 1, true, false, 0, 1);
	add_inflight(s, &d);
	d = (struct deliv){ .pid = 11, .qos = 2, .flags = DV_SENT };
	d.msg = mk_msg("sport/tennis/x", "two", 2, false, true, 3600, 2);
	set_ids(&d, (const uint32_t[]){ 7 }, 1);
	add_inflight(s, &d);
	d = (struct deliv){ .pid = 12, .qos = 2, .flags = DV_SENT | DV_PUBREL | DV_SHARED };
	d.share_group = hq_strdup("$share/g1/t/#");
	set_ids(&d, (const uint32_t[]){ 9 }, 1);
	add_inflight(s, &d);

	/* queued: several sub ids; shared; QoS 0 retained; expiring; expired; empty payload */
	d = (struct deliv){ .qos = 1 };
	d.msg = mk_msg("sport/tennis/x", "three", 2, false, false, 0, 3);
	set_ids(&d, (const uint32_t[]){ 7, 268435455, 1 }, 3);
	dq_push(&s->queue, &d);
	d = (struct deliv){ .qos = 1, .flags = DV_SHARED };
	d.share_group = hq_strdup("$share/g1/t/#");
	d.msg = mk_msg("t/x/y", "four", 1, false, false, 0, 4);
	set_ids(&d, (const uint32_t[]){ 9 }, 1);
	dq_push(&s->queue, &d);
	d = (struct deliv){ .qos = 0, .flags = DV_RETAIN };
	d.msg = mk_msg("a/b", "five", 0, true, false, 0, 5);
	dq_push(&s->queue, &d);
	d = (struct deliv){ .qos = 2 };
	d.msg = mk_msg("sport/golf/x", "six", 2, false, true, 5, 6);
	dq_push(&s->queue, &d);
	d = (struct deliv){ .qos = 1 };
	d.msg = mk_msg("a/b", "", 1, false, true, 0, 8); /* already expired */
	dq_push(&s->queue, &d);

	sess_rx_pid_add(s, 5);
	sess_rx_pid_add(s, 77);
	sess_rx_pid_add(s, 65535);
	/* 77 loaded from a store, not resent yet: the targets that have it */
	sess_rx_unconf_add(s, 77);
	sess_rx_unconf_mark(s, 77, (const uint8_t *)"csub-1", 6);
	sess_rx_unconf_mark(s, 77, (const uint8_t *)"g$share/g/a/#", 13);
	sess_rx_unconf_unread(s, 65535);
	return s;
}

/* ---- comparing ---- */

/* Clock readings around a serialisation, and the reader's clock. */
struct times {
	int64_t t0, t1;   /* before/after sess_serialize */
	int64_t now;      /* passed to sess_deserialize */
};

/* An interval scheduled at `at` (writer's clock) must come back as `got`
 * (reader's clock) with the same time left, give or take the write's duration. */
static void check_at(int64_t at, int64_t got, const struct times *t)
{
	if (!at) {
		assert_int_equal(got, 0);
		return;
	}
	int64_t hi = at - t->t0 > 0 ? at - t->t0 : 0;
	int64_t lo = at - t->t1 > 0 ? at - t->t1 : 0;
	assert_in_range(got - t->now, lo, hi);
}

static void check_msg(const struct brk_msg *a, const struct brk_msg *b, const struct times *t)
{
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(atomic_load(&b->refs), 1);
	assert_int_equal(a->qos, b->qos);
	assert_int_equal(a->retain, b->retain);
	assert_int_equal(a->has_expiry, b->has_expiry);
	assert_int_equal(a->topic_len, b->topic_len);
	assert_string_equal(a->topic, b->topic);
	assert_int_equal(a->props_len, b->props_len);
	assert_memory_equal(a->props, b->props, a->props_len);
	assert_int_equal(a->payload_len, b->payload_len);
	if (a->payload_len)
		assert_memory_equal(a->payload, b->payload, a->payload_len);
	assert_int_equal(a->pub_hash, b->pub_hash);
	assert_int_equal(b->origin_sid, 0); /* per process: not carried */
	if (a->has_expiry) {
		/* remaining seconds (rounded up) at write time, restarted at read time */
		uint32_t hi = msg_remaining(a, t->t0), lo = msg_remaining(a, t->t1);
		assert_in_range(b->expiry, lo, hi);
		assert_int_equal(b->expire_at, t->now + (int64_t)b->expiry * 1000);
		assert_int_equal(msg_expired(b, t->now), b->expiry == 0);
	} else {
		assert_int_equal(b->expire_at, 0);
	}
}

static void check_deliv(const struct deliv *a, const struct deliv *b, const struct times *t)
{
	assert_int_equal(a->pid, b->pid);
	assert_int_equal(a->qos, b->qos);
	assert_int_equal(a->flags, b->flags);
	assert_int_equal(a->n_sub_ids, b->n_sub_ids);
	assert_memory_equal(deliv_sub_ids(a), deliv_sub_ids(b), a->n_sub_ids * sizeof(uint32_t));
	if (a->n_sub_ids <= 1)
		assert_null(b->sub_ids);
	if (a->flags & DV_SHARED)
		assert_string_equal(a->share_group, b->share_group);
	else
		assert_null(b->share_group);
	if (a->flags & DV_PUBREL)
		assert_null(b->msg);
	else
		check_msg(a->msg, b->msg, t);
}

static void check_session(const struct session *a, const struct session *b, const struct times *t)
{
	assert_int_not_equal(a->sid, b->sid);     /* a new session of this process */
	assert_int_equal(atomic_load(&b->refs), 1);
	assert_false(atomic_load(&b->online));
	assert_null(b->conn);
	assert_false(b->ended);
	assert_false(b->in_offline_list);
	assert_string_equal(a->client_id, b->client_id);
	assert_int_equal(a->client_hash, b->client_hash);
	assert_int_equal(a->version, b->version);
	assert_int_equal(a->expiry, b->expiry);
	check_at(a->expire_at, b->expire_at, t);
	assert_int_equal(a->next_pid, b->next_pid);
	if (a->will) {
		check_msg(a->will, b->will, t);
		assert_int_equal(a->will_delay, b->will_delay);
		check_at(a->will_at, b->will_at, t);
	} else {
		assert_null(b->will);
		assert_int_equal(b->will_at, 0);
	}
	/* subscriptions: same set, same iteration order */
	assert_int_equal(a->n_subs, b->n_subs);
	assert_int_equal(HASH_COUNT(b->subs), b->n_subs);
	const struct sess_sub *x = a->subs, *y = b->subs;
	for (; x && y; x = x->hh.next, y = y->hh.next) {
		assert_string_equal(x->filter, y->filter);
		assert_int_equal(x->options, y->options);
		assert_int_equal(x->sub_id, y->sub_id);
		struct sess_sub *found;
		HASH_FIND_STR(b->subs, x->filter, found);
		assert_ptr_equal(found, y);
	}
	assert_null(x);
	assert_null(y);
	assert_int_equal(a->n_inflight, b->n_inflight);
	assert_true(b->cap_inflight >= b->n_inflight);
	for (uint32_t i = 0; i < a->n_inflight; i++)
		check_deliv(&a->inflight[i], &b->inflight[i], t);
	struct dqueue *qa = (struct dqueue *)&a->queue, *qb = (struct dqueue *)&b->queue;
	assert_int_equal(qa->len, qb->len);
	for (uint32_t i = 0; i < qa->len; i++)
		check_deliv(dq_at(qa, i), dq_at(qb, i), t);
	assert_int_equal(a->n_rx_pids, b->n_rx_pids);
	assert_true(b->cap_rx_pids >= b->n_rx_pids);
	if (a->n_rx_pids)
		assert_memory_equal(a->rx_pids, b->rx_pids, a->n_rx_pids * sizeof(uint16_t));
	for (uint16_t pid = 1; pid; pid++) {
		bool in_a = sess_rx_unconf_has((struct session *)a, pid);
		assert_int_equal(in_a, sess_rx_unconf_has((struct session *)b, pid));
		if (!in_a)
			continue;
		struct rx_unconf *ua = sess_rx_unconf_take((struct session *)a, pid);
		struct rx_unconf *ub = sess_rx_unconf_take((struct session *)b, pid);
		assert_int_equal(ua->n_marks, ub->n_marks);
		assert_int_equal(ua->unread, ub->unread);
		assert_int_equal(rx_unconf_has(ua, "sub-1", NULL), rx_unconf_has(ub, "sub-1", NULL));
		assert_int_equal(rx_unconf_has(ua, "x", "$share/g/a/#"),
				 rx_unconf_has(ub, "x", "$share/g/a/#"));
		assert_false(rx_unconf_has(ub, "sub-2", NULL));
		sess_rx_unconf_give_back((struct session *)a, ua);
		sess_rx_unconf_give_back((struct session *)b, ub);
	}
}

static void serialize_timed(const struct session *s, struct buf *out, struct times *t)
{
	t->t0 = clock_mono_ms();
	sess_serialize(s, out);
	t->t1 = clock_mono_ms();
}

/* Deserialise an exact-size heap copy of p[0..n), so ASan sees any over-read. */
static int deserialize_copy(struct worker *w, const uint8_t *p, size_t n, int64_t now,
			    struct session **out)
{
	uint8_t *c = hq_malloc(n ? n : 1);
	if (n)
		memcpy(c, p, n);
	int rc = sess_deserialize(w, c, n, now, out);
	hq_free(c);
	return rc;
}

/* ---- round trips ---- */

static void test_roundtrip_full(void **state)
{
	struct worker *w = fx_worker(state);
	struct session *s = full_session(w);
	struct buf blob = { 0 };
	struct times t;
	serialize_timed(s, &blob, &t);
	assert_memory_equal(blob.data, SESS_SERIAL_MAGIC, 4);
	assert_int_equal(blob.data[4], SESS_SERIAL_VERSION);

	struct session *r = NULL;
	t.now = 1000000; /* the reader's clock need not be the writer's */
	assert_int_equal(sess_deserialize(w, blob.data, blob.len, t.now, &r), HQ_OK);
	assert_non_null(r);
	assert_ptr_equal(r->w, w);
	check_session(s, r, &t);
	sess_unref(r);
	sess_unref(s);
	buf_free(&blob);
}

/* What comes back serialises to the same bytes when no time passes in between. */
static void test_roundtrip_stable(void **state)
{
	struct worker *w = fx_worker(state);
	struct session *s = sess_new(w, S("stable"));
	/* no scheduled times and no message expiry: the bytes do not depend on the clock */
	s->version = MQTT_V311;
	s->expiry = SESS_NEVER_EXPIRE;
	s->next_pid = 65535;
	sess_set_will(s, mk_msg("w", "x", 0, false, false, 0, 0), 0);
	add_sub(s, "#", 0x00, 0);
	struct deliv d = { .pid = 65535, .qos = 1 };
	d.msg = mk_msg("w", "y", 1, false, false, 0, 9);
	add_inflight(s, &d);
	struct buf a = { 0 }, b = { 0 };
	sess_serialize(s, &a);
	struct session *r;
	assert_int_equal(sess_deserialize(w, a.data, a.len, 5, &r), HQ_OK);
	sess_serialize(r, &b);
	assert_int_equal(a.len, b.len);
	assert_memory_equal(a.data, b.data, a.len);
	sess_unref(r);
	sess_unref(s);
	buf_free(&a);
	buf_free(&b);
}

static void test_roundtrip_empty(void **state)
{
	struct worker *w = fx_worker(state);
	struct session *s = sess_new(w, "", 0); /* never attached: version 0, empty id */
	struct buf blob = { 0 };
	struct times t;
	serialize_timed(s, &blob, &t);
	/* magic, version, id "", proto, expiry, sflags, next_pid, five empty counts */
	assert_int_equal(blob.len, 4 + 1 + 1 + 1 + 4 + 1 + 2 + 5);
	struct session *r;
	t.now = 0; /* a scheduled time must never become 0 ("unscheduled") either */
	assert_int_equal(sess_deserialize(w, blob.data, blob.len, t.now, &r), HQ_OK);
	check_session(s, r, &t);
	sess_unref(r);
	sess_unref(s);
	buf_free(&blob);
}

/* Retained messages still to send after a SUBSCRIBE (brk_retained_out.c) go
 * into the blob as queue entries ahead of the queue: the next owner sends
 * them in the same order. */
static void test_pending_retained_as_queue(void **state)
{
	struct worker *w = fx_worker(state);
	struct session *s = sess_new(w, S("ret"));
	struct deliv q = { .msg = mk_msg("live/1", "l", 1, false, false, 0, 1), .qos = 1 };
	dq_push(&s->queue, &q);
	struct ret_cursor *rc = hq_calloc(1, sizeof(*rc));
	rc->n = 3;
	rc->next = 1; /* the first one was sent already */
	rc->v = hq_calloc(3, sizeof(*rc->v));
	rc->v[1] = mk_msg("r/a", "a", 2, true, false, 0, 1);
	rc->v[2] = mk_msg("r/b", "b", 0, true, false, 0, 1);
	rc->granted = 1;
	rc->sub_id = 7;
	rc->filter = hq_strdup("r/#");
	s->retained_out = rc;
	assert_int_equal(sess_retained_pending(s), 2);
	struct buf blob = { 0 };
	sess_serialize(s, &blob);
	struct session *r;
	assert_int_equal(sess_deserialize(w, blob.data, blob.len, clock_mono_ms(), &r), HQ_OK);
	assert_null(r->retained_out);
	assert_int_equal(r->queue.len, 3);
	const char *topics[] = { "r/a", "r/b", "live/1" };
	const uint8_t qos[] = { 1, 0, 1 }; /* min(published, granted) */
	for (uint32_t i = 0; i < 3; i++) {
		struct deliv *d = dq_at(&r->queue, i);
		assert_string_equal(d->msg->topic, topics[i]);
		assert_int_equal(d->qos, qos[i]);
		assert_int_equal(!!(d->flags & DV_RETAIN), i < 2);
		assert_int_equal(d->n_sub_ids, i < 2 ? 1 : 0);
		if (i < 2)
			assert_int_equal(d->sub_id, 7);
	}
	sess_unref(r);
	sess_unref(s); /* frees the cursor with its two references */
	buf_free(&blob);
}

/* Times already past when written: scheduled immediately, never "unscheduled". */
static void test_past_times(void **state)
{
	struct worker *w = fx_worker(state);
	struct session *s = sess_new(w, S("late"));
	s->version = MQTT_V5;
	s->expiry = 10;
	s->expire_at = 1;  /* long past */
	sess_set_will(s, mk_msg("w", "x", 0, false, true, 1, 0), 5);
	s->will_at = 1;
	struct buf blob = { 0 };
	sess_serialize(s, &blob);
	struct session *r;
	assert_int_equal(sess_deserialize(w, blob.data, blob.len, 0, &r), HQ_OK);
	assert_int_equal(r->expire_at, 1);
	assert_int_equal(r->will_at, 1);
	sess_unref(r);
	assert_int_equal(sess_deserialize(w, blob.data, blob.len, 5000, &r), HQ_OK);
	assert_int_equal(r->expire_at, 5000);
	assert_int_equal(r->will_at, 5000);
	assert_true(r->will->has_expiry);
	sess_unref(r);
	sess_unref(s);
	buf_free(&blob);
}

/* ---- bad input ---- */

static void test_version_and_magic(void **state)
{
	struct worker *w = fx_worker(state);
	struct session *s = full_session(w), *r = (struct session *)1;
	struct buf blob = { 0 };
	sess_serialize(s, &blob);
	blob.data[4] = SESS_SERIAL_VERSION + 1;
	assert_int_equal(deserialize_copy(w, blob.data, blob.len, 0, &r), HQ_EVERSION);
	assert_null(r);
	blob.data[4] = 0;
	assert_int_equal(deserialize_copy(w, blob.data, blob.len, 0, &r), HQ_EVERSION);
	blob.data[4] = SESS_SERIAL_VERSION;
	assert_int_equal(sess_deserialize(w, NULL, 0, 0, &r), HQ_EMALFORMED); /* empty buf */
	assert_null(r);
	/* only the version byte: still a version error, not a truncation */
	assert_int_equal(deserialize_copy(w, (const uint8_t *)"HQSS\x09", 5, 0, &r), HQ_EVERSION);
	blob.data[0] = 'X';
	assert_int_equal(deserialize_copy(w, blob.data, blob.len, 0, &r), HQ_EMALFORMED);
	blob.data[0] = 'H';
	/* trailing garbage */
	buf_append(&blob, "", 1);
	assert_int_equal(deserialize_copy(w, blob.data, blob.len, 0, &r), HQ_EMALFORMED);
	assert_null(r);
	blob.len--;
	assert_int_equal(deserialize_copy(w, blob.data, blob.len, 0, &r), HQ_OK);
	sess_unref(r);
	sess_unref(s);
	buf_free(&blob);
}

static void test_truncation_every_length(void **state)
{
	struct worker *w = fx_worker(state);
	struct session *s = full_session(w);
	struct buf blob = { 0 };
	sess_serialize(s, &blob);
	for (size_t n = 0; n < blob.len; n++) {
		struct session *r = (struct session *)1;
		int rc = deserialize_copy(w, blob.data, n, 0, &r);
		assert_int_equal(rc, HQ_EMALFORMED);
		assert_null(r);
	}
	sess_unref(s);
	buf_free(&blob);
}

/* A session that came out of a corrupt blob must still be a session the broker
 * could hold: it serialises (the writer asserts the invariants) and reads back. */
static void check_survivor(struct worker *w, struct session *r)
{
	struct buf again = { 0 };
	sess_serialize(r, &again);
	struct session *r2;
	assert_int_equal(sess_deserialize(w, again.data, again.len, 0, &r2), HQ_OK);
	assert_int_equal(r2->n_inflight, r->n_inflight);
	assert_int_equal(r2->queue.len, r->queue.len);
	for (uint32_t i = 0; i < r->n_inflight; i++) {
		struct deliv *d = &r->inflight[i];
		assert_true(d->pid != 0 && d->qos >= 1 && d->qos <= 2);
		assert_true(!!d->msg != !!(d->flags & DV_PUBREL));
	}
	for (uint32_t i = 0; i < r->queue.len; i++)
		assert_non_null(dq_at(&r->queue, i)->msg);
	sess_unref(r2);
	sess_unref(r);
	buf_free(&again);
}

static void test_byte_flips(void **state)
{
	struct worker *w = fx_worker(state);
	struct session *s = full_session(w);
	struct buf blob = { 0 };
	sess_serialize(s, &blob);
	static const uint8_t masks[] = { 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xFF };
	uint8_t *c = hq_malloc(blob.len);
	size_t ok = 0, bad = 0;
	for (size_t i = 0; i < blob.len; i++) {
		for (size_t k = 0; k < sizeof(masks); k++) {
			memcpy(c, blob.data, blob.len);
			c[i] ^= masks[k];
			struct session *r = NULL;
			int rc = sess_deserialize(w, c, blob.len, 0, &r);
			if (rc == HQ_OK) {
				ok++;
				check_survivor(w, r);
			} else {
				bad++;
				assert_true(rc == HQ_EMALFORMED || rc == HQ_EVERSION);
				assert_null(r);
			}
		}
	}
	/* payload/hash bytes flip harmlessly; lengths and flags do not */
	assert_true(ok > 0);
	assert_true(bad > 0);
	hq_free(c);
	sess_unref(s);
	buf_free(&blob);
}

static uint32_t xorshift(uint32_t *st)
{
	uint32_t x = *st;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *st = x;
}

/* Several random bytes changed at once, and random cuts, with a fixed seed. */
static void test_random_corruption(void **state)
{
	struct worker *w = fx_worker(state);
	struct session *s = full_session(w);
	struct buf blob = { 0 };
	sess_serialize(s, &blob);
	uint8_t *c = hq_malloc(blob.len);
	uint32_t seed = 0x5e55107u;
	for (int iter = 0; iter < 20000; iter++) {
		memcpy(c, blob.data, blob.len);
		int nflip = 1 + (int)(xorshift(&seed) % 4);
		for (int k = 0; k < nflip; k++)
			c[5 + xorshift(&seed) % (blob.len - 5)] = (uint8_t)xorshift(&seed);
		size_t n = xorshift(&seed) % 4 ? blob.len : xorshift(&seed) % blob.len;
		struct session *r = NULL;
		int rc = deserialize_copy(w, c, n, 0, &r);
		if (rc == HQ_OK)
			check_survivor(w, r);
		else
			assert_true(rc == HQ_EMALFORMED && r == NULL);
	}
	hq_free(c);
	sess_unref(s);
	buf_free(&blob);
}

/* ---- hand-made blobs: each breaks exactly one rule ---- */

struct bw {
	struct buf b;
};

static void bw_u8(struct bw *x, uint8_t v)
{
	buf_append(&x->b, &v, 1);
}
static void bw_u16(struct bw *x, uint16_t v)
{
	bw_u8(x, (uint8_t)(v >> 8));
	bw_u8(x, (uint8_t)v);
}
static void bw_u32(struct bw *x, uint32_t v)
{
	bw_u16(x, (uint16_t)(v >> 16));
	bw_u16(x, (uint16_t)v);
}
static void bw_vi(struct bw *x, uint32_t v)
{
	uint8_t t[4];
	buf_append(&x->b, t, mqtt_varint_encode(t, v));
}
static void bw_str(struct bw *x, const char *s)
{
	bw_vi(x, (uint32_t)strlen(s));
	buf_append(&x->b, s, strlen(s));
}

/* a u16-length string: the topic of the shared message encoding */
static void bw_str16(struct bw *x, const char *s, size_t n)
{
	bw_u16(x, (uint16_t)n);
	buf_append(&x->b, s, n);
}

/* message (core/msg_wire.h): topic, qos, mflags, [expiry], hash, props, payload */
static void bw_msg(struct bw *x, uint8_t qos, uint8_t mflags, const char *topic)
{
	bw_str16(x, topic, strlen(topic));
	bw_u8(x, qos);
	bw_u8(x, mflags);
	if (mflags & MSG_WIRE_EXPIRY)
		bw_u32(x, 10);
	bw_u32(x, 0);
	bw_u32(x, 0);
	bw_u32(x, 1);
	bw_u8(x, 'p');
}

static void bw_deliv(struct bw *x, uint16_t pid, uint8_t qos, uint8_t flags, const char *group,
		     const char *topic)
{
	bw_u16(x, pid);
	bw_u8(x, qos);
	bw_u8(x, flags);
	bw_u8(x, 1);
	bw_vi(x, 3);
	if (flags & DV_SHARED)
		bw_str(x, group);
	if (!(flags & DV_PUBREL))
		bw_msg(x, 1, 0, topic);
}

enum bad_kind {
	OK_BASELINE,
	BAD_PROTO,
	BAD_SFLAGS,
	BAD_WILL_AT_NO_WILL,
	BAD_NEXT_PID,
	BAD_FILTER,
	BAD_DUP_FILTER,
	BAD_OPTIONS,
	BAD_TOPIC_WILDCARD,
	BAD_TOPIC_UTF8,
	BAD_TOPIC_NUL,
	BAD_TOPIC_EMPTY,
	BAD_MFLAGS,
	BAD_MSG_QOS,
	BAD_PID_ZERO,
	BAD_DUP_PID,
	BAD_QOS0_INFLIGHT,
	BAD_PUBREL_QOS1,
	BAD_PUBREL_QUEUED,
	BAD_SUB_ID_ZERO,
	BAD_GROUP,
	BAD_DFLAGS,
	BAD_RX_DUP,
	BAD_RX_ZERO,
	BAD_HUGE_QUEUE,
	BAD_HUGE_INFLIGHT,
	BAD_HUGE_LENGTH,
	BAD_EXPIRE_IN,
	BAD_LONG_VARINT,
	BAD_UNCONF_PID,      /* an unconfirmed id that is not an rx id */
	BAD_UNCONF_TARGET,   /* a target without its 'c'/'g' kind */
	BAD_UNCONF_FLAGS,    /* an unknown uflags bit */
	BAD_COUNT
};

static void build(struct bw *x, enum bad_kind k)
{
	memset(x, 0, sizeof(*x));
	uint8_t sf = k == BAD_SFLAGS ? 0x80 : k == BAD_WILL_AT_NO_WILL ? SS_WILL_AT : SS_EXPIRE_AT;
	buf_append(&x->b, "HQSS", 4);
	bw_u8(x, SESS_SERIAL_VERSION);
	bw_str(x, "c");
	bw_u8(x, k == BAD_PROTO ? 6 : MQTT_V5);
	bw_u32(x, 60);
	bw_u8(x, sf);
	if (sf & SS_EXPIRE_AT) {
		bw_u32(x, k == BAD_EXPIRE_IN ? 0xFFFFFFFF : 0);
		bw_u32(x, k == BAD_EXPIRE_IN ? 0xFFFFFFFF : 1000);
	}
	/* BAD_WILL_AT_NO_WILL: a writer never sets SS_WILL_AT alone, so there is
	 * nothing more to write; everything after is a valid session */
	bw_u16(x, k == BAD_NEXT_PID ? 0 : 1);
	/* subs */
	bw_vi(x, 2);
	bw_str(x, k == BAD_FILTER ? "a/#/b" : "a/+");
	bw_u8(x, k == BAD_OPTIONS ? 0x40 : 0x01);
	bw_vi(x, 0);
	bw_str(x, k == BAD_DUP_FILTER ? "a/+" : "$share/g/a/#");
	bw_u8(x, 0x02);
	if (k == BAD_LONG_VARINT) {
		buf_append(&x->b, "\x81\x00", 2); /* 1, not in shortest form */
	} else {
		bw_vi(x, 1);
	}
	/* in flight */
	if (k == BAD_HUGE_INFLIGHT) {
		bw_vi(x, 268435455);
		return;
	}
	bw_vi(x, 2);
	bw_deliv(x, k == BAD_PID_ZERO ? 0 : 1, k == BAD_QOS0_INFLIGHT ? 0 : 1, DV_SENT, NULL, "a/b");
	bw_deliv(x, k == BAD_DUP_PID ? 1 : 2, k == BAD_PUBREL_QOS1 ? 1 : 2, DV_PUBREL | DV_SHARED,
		 k == BAD_GROUP ? "$share//a" : "$share/g/a/#", NULL);
	/* queue */
	if (k == BAD_HUGE_QUEUE) {
		bw_vi(x, 268435455);
		return;
	}
	bw_vi(x, 2);
	if (k == BAD_PUBREL_QUEUED) {
		bw_deliv(x, 0, 2, DV_PUBREL, NULL, NULL);
	} else {
		bw_u16(x, 0);
		bw_u8(x, 1);
		bw_u8(x, k == BAD_DFLAGS ? 0x10 : DV_RETAIN);
		bw_u8(x, 2);
		bw_vi(x, 5);
		bw_vi(x, k == BAD_SUB_ID_ZERO ? 0 : 6);
		/* a topic longer than 65535 bytes cannot be expressed: u16 length */
		const char *topic = k == BAD_TOPIC_WILDCARD ? "a/+" : k == BAD_TOPIC_UTF8 ? "a/\xC0\x80"
				  : k == BAD_TOPIC_NUL ? NULL : k == BAD_TOPIC_EMPTY ? "" : "a/b";
		if (topic)
			bw_str16(x, topic, strlen(topic));
		else
			bw_str16(x, "a\0b", 3);
		bw_u8(x, k == BAD_MSG_QOS ? 3 : 1);
		bw_u8(x, k == BAD_MFLAGS ? 0x04 : MSG_WIRE_EXPIRY);
		bw_u32(x, 10);
		bw_u32(x, 0);
		if (k == BAD_HUGE_LENGTH) {
			bw_u32(x, 0xFFFFFFFF);
			return;
		}
		bw_u32(x, 0);
		bw_u32(x, 1);
		bw_u8(x, 'q');
	}
	bw_deliv(x, 0, 0, 0, NULL, "z");
	/* rx pids */
	bw_vi(x, 2);
	bw_u16(x, 9);
	bw_u16(x, k == BAD_RX_DUP ? 9 : k == BAD_RX_ZERO ? 0 : 10);
	/* unconfirmed ids (version 3) */
	bw_vi(x, 1);
	bw_u16(x, k == BAD_UNCONF_PID ? 11 : 10);
	bw_u8(x, k == BAD_UNCONF_FLAGS ? 0x02 : 0);
	bw_vi(x, 2);
	bw_str(x, "cpeer");
	bw_str(x, k == BAD_UNCONF_TARGET ? "xpeer" : "g$share/g/a");
}

static void test_invalid_content(void **state)
{
	struct worker *w = fx_worker(state);
	for (int k = OK_BASELINE; k < BAD_COUNT; k++) {
		struct bw x;
		build(&x, (enum bad_kind)k);
		struct session *r = (struct session *)1;
		int rc = deserialize_copy(w, x.b.data, x.b.len, 100, &r);
		if (k == OK_BASELINE) {
			assert_int_equal(rc, HQ_OK);
			assert_int_equal(r->expire_at, 1100);
			assert_int_equal(r->n_subs, 2);
			assert_int_equal(r->n_inflight, 2);
			assert_int_equal(r->queue.len, 2);
			assert_int_equal(dq_at(&r->queue, 0)->n_sub_ids, 2);
			assert_int_equal(dq_at(&r->queue, 0)->sub_ids[1], 6);
			assert_int_equal(r->n_rx_pids, 2);
			sess_unref(r);
		} else {
			if (rc != HQ_EMALFORMED)
				fail_msg("case %d accepted", k);
			assert_null(r);
		}
		buf_free(&x.b);
	}
}

/* Many sessions, each found again from its own blob. */
static void restore(struct worker *w, const char *key, size_t klen, const uint8_t *val, size_t vlen)
{
	struct session *r;
	assert_int_equal(sess_deserialize(w, val, vlen, 0, &r), HQ_OK);
	assert_int_equal(strlen(r->client_id), klen);
	assert_memory_equal(r->client_id, key, klen);
	assert_int_equal(r->n_rx_pids, 1);
	assert_int_equal(r->rx_pids[0], (uint16_t)atoi(r->client_id + 1));
	sess_unref(r);
}

static void test_many_sessions(void **state)
{
	struct worker *w = fx_worker(state);
	char id[16];
	for (int i = 1; i <= 50; i++) {
		snprintf(id, sizeof(id), "c%d", i);
		struct session *s = sess_new(w, S(id));
		s->version = MQTT_V311;
		sess_rx_pid_add(s, (uint16_t)i);
		struct buf blob = { 0 };
		sess_serialize(s, &blob);
		sess_unref(s);
		restore(w, S(id), blob.data, blob.len);
		buf_free(&blob);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_roundtrip_stable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_roundtrip_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pending_retained_as_queue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_past_times, setup, teardown),
		cmocka_unit_test_setup_teardown(test_version_and_magic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncation_every_length, setup, teardown),
		cmocka_unit_test_setup_teardown(test_byte_flips, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random_corruption, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_content, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_sessions, setup, teardown),
	};
	return cmocka_run_group_tests_name("sess_serial", tests, NULL, NULL);
}
