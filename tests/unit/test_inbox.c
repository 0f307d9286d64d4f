/*
 * test_inbox.c - unit tests of core/inbox.c (the mutex-swapped hand-off used
 * by the worker inboxes and the cluster thread): entries come out in append
 * order, one wakeup is asked for per take however many appends came
 * between, the spare vector is reused, and two threads (a producer and a
 * consumer) hand over 200,000 entries without loss, duplicates or reordering
 * (run under TSan by `make SAN=tsan unit`).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <string.h>

#include "core/inbox.h"

struct ent {
	uint64_t seq;
	uint32_t tag;
};

static void test_order_and_wakeups(void **state)
{
	(void)state;
	struct inbox q;
	inbox_init(&q, sizeof(struct ent));
	struct ent e[3] = { { 1, 7 }, { 2, 7 }, { 3, 7 } };
	assert_true(inbox_append(&q, &e[0], 1));   /* first: wake */
	assert_false(inbox_append(&q, &e[1], 2));  /* wakeup already asked for */
	assert_false(inbox_want_wake(&q));
	assert_true(inbox_wake_pending(&q));
	assert_int_equal(inbox_pending(&q), 3);
	struct inbox_vec b = inbox_take(&q);
	assert_false(inbox_wake_pending(&q));
	assert_int_equal(b.len, 3);
	for (uint32_t i = 0; i < b.len; i++) {
		struct ent *x = inbox_at(&b, q.esize, i);
		assert_int_equal(x->seq, i + 1);
		assert_int_equal(x->tag, 7);
	}
	assert_int_equal(inbox_pending(&q), 0);
	void *first = b.v;
	inbox_give_back(&q, b);
	/* after a take, the next append asks for a wakeup again */
	assert_true(inbox_append(&q, &e[0], 1));
	struct inbox_vec c = inbox_take(&q);
	assert_int_equal(c.len, 1);
	inbox_give_back(&q, c);
	/* the first vector came back as the spare and is used again */
	inbox_append(&q, &e[0], 1);
	struct inbox_vec d = inbox_take(&q);
	assert_ptr_equal(d.v, first);
	inbox_give_back(&q, d);
	inbox_destroy(&q);
}

static void test_growth(void **state)
{
	(void)state;
	struct inbox q;
	inbox_init(&q, sizeof(struct ent));
	struct ent v[1000];
	for (uint32_t i = 0; i < 1000; i++)
		v[i] = (struct ent){ i, 0 };
	inbox_append(&q, v, 1000);
	inbox_append(&q, v, 1000);
	struct inbox_vec b = inbox_take(&q);
	assert_int_equal(b.len, 2000);
	assert_int_equal(((struct ent *)inbox_at(&b, q.esize, 1999))->seq, 999);
	inbox_give_back(&q, b);
	inbox_destroy(&q);
}

#define N_TOTAL 200000u
#define BATCH 37u

static void *producer(void *arg)
{
	struct inbox *q = arg;
	struct ent v[BATCH];
	uint64_t seq = 0;
	while (seq < N_TOTAL) {
		uint32_t n = 0;
		while (n < BATCH && seq < N_TOTAL)
			v[n++] = (struct ent){ seq++, 0xabcd };
		inbox_append(q, v, n);
		if (seq % 4096 < BATCH)
			sched_yield();
	}
	return NULL;
}

static void test_two_threads(void **state)
{
	(void)state;
	struct inbox q;
	inbox_init(&q, sizeof(struct ent));
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, producer, &q), 0);
	uint64_t next = 0;
	/* bounded: the producer finishes in well under a second; 50 million
	 * empty takes is far beyond that on any machine */
	for (uint64_t spins = 0; next < N_TOTAL && spins < 50000000u; spins++) {
		struct inbox_vec b = inbox_take(&q);
		for (uint32_t i = 0; i < b.len; i++) {
			struct ent *x = inbox_at(&b, q.esize, i);
			assert_int_equal(x->seq, next);
			assert_int_equal(x->tag, 0xabcd);
			next++;
		}
		inbox_give_back(&q, b);
		if (!b.len)
			sched_yield();
	}
	pthread_join(t, NULL);
	assert_int_equal(next, N_TOTAL);
	assert_int_equal(inbox_pending(&q), 0);
	inbox_destroy(&q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_and_wakeups),
		cmocka_unit_test(test_growth),
		cmocka_unit_test(test_two_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
