/*
 * test_store_cancel.c - store_cancel_group (src/store/store_cancel.c): the
 * put/delete pairs of one queue entry within a group are dropped before the
 * group is applied, and the result is the same stored state.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/err.h"
#include "core/mem.h"
#include "store/store.h"

#define B(s) ((struct store_bytes){ (const uint8_t *)(s), (uint32_t)strlen(s) })

static void add_sess(struct store_batch *b, const char *cid)
{
	struct store_ev e = { .kind = STORE_EV_SESSION_PUT, .client_id = B(cid) };
	e.u.sess.expiry = 60;
	store_batch_add(b, &e);
}

static void add_msg(struct store_batch *b, uint64_t id)
{
	struct store_ev e = { .kind = STORE_EV_MSG_PUT };
	e.u.msg.id = id;
	e.u.msg.topic = B("t");
	e.u.msg.payload = B("p");
	e.u.msg.qos = 1;
	store_batch_add(b, &e);
}

static void add_qent(struct store_batch *b, uint8_t kind, const char *cid, uint64_t seq, uint64_t msg)
{
	struct store_ev e = { .kind = kind, .client_id = B(cid) };
	e.u.qent.seq = seq;
	e.u.qent.msg_id = msg;
	e.u.qent.qos = 1;
	e.u.qent.state = kind == STORE_EV_QENT_UPDATE ? STORE_Q_PUBREL : STORE_Q_INFLIGHT;
	e.u.qent.pid = (uint16_t)seq;
	store_batch_add(b, &e);
}

static struct store_batch *chain(struct store_batch **v, int n)
{
	for (int i = 0; i + 1 < n; i++)
		v[i]->next = v[i + 1];
	return v[0];
}

static int count_cb(void *ctx, const struct store_ev *ev)
{
	(*(int *)ctx) += 1 + ev->kind * 100;
	return HQ_OK;
}

/* Apply a group as the runner does; a digest of what load returns. */
static int apply_group(struct store_batch *g)
{
	struct store *st = store_mem_new();
	for (struct store_batch *b = g; b; b = b->next)
		if (!b->read)
			assert_int_equal(st->ops->apply(st, b), HQ_OK);
	int digest = 0;
	st->ops->load(st, count_cb, &digest);
	store_free(st);
	return digest;
}

/* The same four batches twice: one group cancelled, one not. */
static struct store_batch *build(struct store_batch **v)
{
	for (int i = 0; i < 4; i++)
		v[i] = store_batch_new(0);
	add_sess(v[0], "a");
	add_msg(v[0], 1);
	add_qent(v[0], STORE_EV_QENT_PUT, "a", 1, 1);   /* acknowledged in v[1]: dropped */
	add_msg(v[0], 2);
	add_qent(v[0], STORE_EV_QENT_PUT, "a", 2, 2);   /* PUBREL first: kept */
	add_msg(v[0], 3);
	add_qent(v[0], STORE_EV_QENT_PUT, "a", 3, 3);   /* still queued: kept */
	add_qent(v[1], STORE_EV_QENT_DEL, "a", 1, 0);
	add_qent(v[1], STORE_EV_QENT_UPDATE, "a", 2, 0);
	add_qent(v[1], STORE_EV_QENT_DEL, "a", 2, 0);
	add_msg(v[2], 4);
	add_qent(v[2], STORE_EV_QENT_PUT, "a", 4, 4);   /* a read follows: kept */
	v[3]->read = STORE_READ_SESSION;
	return chain(v, 4);
}

static void test_pairs_dropped_same_result(void **state)
{
	(void)state;
	struct store_batch *x[5], *y[4];
	struct store_batch *plain = build(y);
	struct store_batch *g = build(x);
	x[4] = store_batch_new(0); /* after the read: its delete stays */
	add_qent(x[4], STORE_EV_QENT_DEL, "a", 4, 0);
	x[3]->next = x[4];
	uint64_t dropped = store_cancel_group(g);
	assert_int_equal(dropped, 2);
	/* v[0]: session, message 2 + its entry, message 3 + its entry */
	assert_int_equal(x[0]->n_ev, 5);
	assert_int_equal(x[1]->n_ev, 2);
	assert_int_equal(x[2]->n_ev, 2);
	assert_int_equal(x[4]->n_ev, 1);
	x[3]->next = NULL;
	assert_int_equal(apply_group(g), apply_group(plain));
	for (int i = 0; i < 5; i++)
		store_batch_free(x[i]);
	for (int i = 0; i < 4; i++)
		store_batch_free(y[i]);
}

static void test_nothing_to_cancel(void **state)
{
	(void)state;
	struct store_batch *b = store_batch_new(0);
	add_sess(b, "s");
	assert_int_equal(store_cancel_group(b), 0);
	assert_int_equal(b->n_ev, 1);
	store_batch_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pairs_dropped_same_result),
		cmocka_unit_test(test_nothing_to_cancel),
	};
	return cmocka_run_group_tests_name("store_cancel", tests, NULL, NULL);
}
