/*
 * test_handover_dedup.c - the new owner's memory of what reached a session
 * that just moved here (brk_handover.c): a message that comes both straight
 * from its node and relayed by the session's old node is kept once.
 *
 * The session's worker is a bare struct worker + struct broker, as in
 * test_sess_serial.c: nothing here touches routes or the event loop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "broker/brk_int.h"
#include "core/mem.h"

struct fixture {
	struct broker b;
	struct worker w;
};

static int setup(void **state)
{
	struct fixture *f = hq_calloc(1, sizeof(*f));
	atomic_init(&f->b.next_id, 1);
	f->w.b = &f->b;
	wk_cur = &f->w;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	wk_cur = NULL;
	hq_free(*state);
	return 0;
}

/* Two origin nodes: only their addresses matter (never dereferenced). */
static char node_a, node_b;
#define A ((struct clu_peer *)&node_a)
#define B ((struct clu_peer *)&node_b)

static struct brk_msg *mk(struct clu_peer *origin, uint64_t mid)
{
	struct brk_msg *m = msg_new("t", 1, NULL, 0, (const uint8_t *)"x", 1, 1, false, false, 0, 0);
	m->fwd_origin = origin;
	m->mid = mid;
	return m;
}

static bool dup(struct session *s, struct clu_peer *origin, uint64_t mid, int64_t now)
{
	struct brk_msg *m = mk(origin, mid);
	bool r = brk_handover_dup(s, m, now);
	msg_unref(m);
	return r;
}

static struct session *moved_here(void **state, int64_t now)
{
	struct fixture *f = *state;
	struct session *s = sess_new(&f->w, "x", 1);
	brk_handover_dedup_start(s, now);
	return s;
}

/* The second copy of (origin, id) goes, whichever path brought the first;
 * the same id from another node is another message. */
static void test_second_copy_dropped(void **state)
{
	struct session *s = moved_here(state, 1000);
	assert_false(dup(s, A, 7, 1001));
	assert_true(dup(s, A, 7, 1002));
	assert_true(dup(s, A, 7, 1003));
	assert_false(dup(s, B, 7, 1004));
	assert_true(dup(s, B, 7, 1005));
	assert_false(dup(s, A, 8, 1006));
	sess_unref(s);
}

/* No id (a node that gives none) or published here (no origin): one path
 * only, never dropped. */
static void test_without_id_never_dropped(void **state)
{
	struct session *s = moved_here(state, 0);
	assert_false(dup(s, A, 0, 1));
	assert_false(dup(s, A, 0, 2));
	assert_false(dup(s, NULL, 9, 3));
	assert_false(dup(s, NULL, 9, 4));
	sess_unref(s);
}

/* After HOV_DEDUP_MS the memory is gone (and freed): both paths are long
 * over, and nothing is dropped any more. */
static void test_forgotten_after_the_window(void **state)
{
	struct session *s = moved_here(state, 1000);
	assert_false(dup(s, A, 1, 1000 + HOV_DEDUP_MS));
	assert_true(dup(s, A, 1, 1000 + HOV_DEDUP_MS));
	assert_false(dup(s, A, 1, 1001 + HOV_DEDUP_MS));
	assert_null(s->clu->dedup);
	assert_false(dup(s, A, 1, 1002 + HOV_DEDUP_MS));
	sess_unref(s);
}

/* Bounded: past HOV_DEDUP_MAX ids the oldest is forgotten first; growing
 * the set keeps every id it holds. */
static void test_bounded_oldest_first(void **state)
{
	struct session *s = moved_here(state, 0);
	for (uint64_t i = 1; i <= HOV_DEDUP_MAX; i++)
		assert_false(dup(s, A, i, 1));
	for (uint64_t i = 1; i <= HOV_DEDUP_MAX; i += 997)
		assert_true(dup(s, A, i, 1));
	assert_false(dup(s, B, 1, 1)); /* one more: A's id 1 is forgotten */
	assert_false(dup(s, A, 1, 1)); /* (and it is the newest now: A's 2 went) */
	assert_false(dup(s, A, 2, 1));
	assert_true(dup(s, A, HOV_DEDUP_MAX, 1));
	assert_true(dup(s, B, 1, 1));
	sess_unref(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_second_copy_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_without_id_never_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forgotten_after_the_window, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bounded_oldest_first, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
