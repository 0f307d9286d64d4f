/*
 * test_clu_hlc.c - unit tests for src/cluster/clu_hlc.c, the hybrid logical
 * clock that orders retained writes across nodes (last writer wins).
 *
 * The wall clock is an argument, so every case drives it by hand: standing
 * still, stepping back, jumping ahead, and a randomised three-node exchange
 * that checks the two HLC guarantees (each node's timestamps strictly
 * increase; a receive orders after the send) and the drift bound.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cluster/clu_hlc.h"
#include "core/err.h"

static struct clu_hlc_ts ts(uint64_t wall, uint16_t logical)
{
	struct clu_hlc_ts t = { wall, logical };
	return t;
}

#define ASSERT_TS(t, w, l)                              \
	do {                                            \
		assert_true((t).wall_ms == (uint64_t)(w)); \
		assert_int_equal((t).logical, (l));     \
	} while (0)

static void test_now_monotonic(void **state)
{
	struct clu_hlc c;
	struct clu_hlc_ts t;

	clu_hlc_init(&c);
	assert_true(c.max_drift_ms == CLU_HLC_MAX_DRIFT_MS);
	t = clu_hlc_now(&c, 1000);
	ASSERT_TS(t, 1000, 0);
	/* same millisecond: the logical counter orders events */
	t = clu_hlc_now(&c, 1000);
	ASSERT_TS(t, 1000, 1);
	t = clu_hlc_now(&c, 1000);
	ASSERT_TS(t, 1000, 2);
	/* the wall clock steps back: time does not */
	t = clu_hlc_now(&c, 500);
	ASSERT_TS(t, 1000, 3);
	/* the wall clock moves on: logical restarts */
	t = clu_hlc_now(&c, 1001);
	ASSERT_TS(t, 1001, 0);
}

static void test_logical_overflow(void **state)
{
	struct clu_hlc c;
	struct clu_hlc_ts t;

	clu_hlc_init(&c);
	c.last = ts(2000, UINT16_MAX - 1);
	t = clu_hlc_now(&c, 2000);
	ASSERT_TS(t, 2000, UINT16_MAX);
	t = clu_hlc_now(&c, 2000);   /* the counter is full: borrow the next millisecond */
	ASSERT_TS(t, 2001, 0);
	t = clu_hlc_now(&c, 2000);
	ASSERT_TS(t, 2001, 1);

	/* the same through a receive with a full counter */
	clu_hlc_init(&c);
	c.last = ts(3000, 5);
	assert_int_equal(clu_hlc_update(&c, ts(3000, UINT16_MAX), 3000, &t), HQ_OK);
	ASSERT_TS(t, 3001, 0);

	/* the end of time saturates instead of wrapping to 0 */
	clu_hlc_init(&c);
	c.last = ts(UINT64_MAX, UINT16_MAX);
	t = clu_hlc_now(&c, 1);
	ASSERT_TS(t, UINT64_MAX, UINT16_MAX);
}

static void test_update_rules(void **state)
{
	struct clu_hlc c;
	struct clu_hlc_ts t;

	/* remote ahead of us (within drift): adopt its wall, count after it */
	clu_hlc_init(&c);
	clu_hlc_now(&c, 1000);
	assert_int_equal(clu_hlc_update(&c, ts(1500, 7), 1000, &t), HQ_OK);
	ASSERT_TS(t, 1500, 8);
	t = clu_hlc_now(&c, 1001);   /* later local events order after what we saw */
	ASSERT_TS(t, 1500, 9);
	assert_true(clu_hlc_ts_cmp(t, ts(1500, 7)) > 0);

	/* remote behind: our own time continues */
	assert_int_equal(clu_hlc_update(&c, ts(10, 60000), 1001, &t), HQ_OK);
	ASSERT_TS(t, 1500, 10);

	/* all three equal: max of the counters + 1 */
	clu_hlc_init(&c);
	c.last = ts(4000, 3);
	assert_int_equal(clu_hlc_update(&c, ts(4000, 9), 4000, &t), HQ_OK);
	ASSERT_TS(t, 4000, 10);
	c.last = ts(4000, 30);
	assert_int_equal(clu_hlc_update(&c, ts(4000, 9), 4000, &t), HQ_OK);
	ASSERT_TS(t, 4000, 31);

	/* the wall clock is ahead of both: it wins, counter 0 */
	assert_int_equal(clu_hlc_update(&c, ts(4500, 9), 5000, NULL), HQ_OK);
	ASSERT_TS(c.last, 5000, 0);
}

static void test_drift_refused(void **state)
{
	struct clu_hlc c;
	struct clu_hlc_ts t = ts(7, 7);

	clu_hlc_init(&c);
	c.max_drift_ms = 1000;
	clu_hlc_now(&c, 10000);
	/* exactly at the bound: accepted */
	assert_int_equal(clu_hlc_update(&c, ts(11000, 0), 10000, &t), HQ_OK);
	ASSERT_TS(t, 11000, 1);
	/* beyond: refused, and the clock is untouched */
	assert_int_equal(clu_hlc_update(&c, ts(12001, 0), 11000, &t), HQ_EINVAL);
	ASSERT_TS(c.last, 11000, 1);
	ASSERT_TS(t, 11000, 1);
	assert_int_equal(clu_hlc_update(&c, ts(UINT64_MAX, 0), 0, &t), HQ_EINVAL);
	ASSERT_TS(c.last, 11000, 1);
}

static void test_ordering(void **state)
{
	static const char a[] = "hamqtt@a", b[] = "hamqtt@b", ab[] = "hamqtt@ab";

	/* wall, then logical, then node name */
	assert_true(clu_hlc_ts_cmp(ts(1, 9), ts(2, 0)) < 0);
	assert_true(clu_hlc_ts_cmp(ts(2, 0), ts(1, 9)) > 0);
	assert_true(clu_hlc_ts_cmp(ts(2, 1), ts(2, 2)) < 0);
	assert_int_equal(clu_hlc_ts_cmp(ts(2, 2), ts(2, 2)), 0);

	assert_true(clu_hlc_cmp(ts(1, 0), b, 8, ts(2, 0), a, 8) < 0);
	assert_true(clu_hlc_cmp(ts(2, 1), a, 8, ts(2, 0), b, 8) > 0);
	assert_true(clu_hlc_cmp(ts(2, 0), a, 8, ts(2, 0), b, 8) < 0);
	assert_true(clu_hlc_cmp(ts(2, 0), b, 8, ts(2, 0), a, 8) > 0);
	assert_true(clu_hlc_cmp(ts(2, 0), a, 8, ts(2, 0), ab, 9) < 0);   /* prefix first */
	assert_true(clu_hlc_cmp(ts(2, 0), ab, 9, ts(2, 0), a, 8) > 0);
	assert_true(clu_hlc_cmp(ts(2, 0), ab, 9, ts(2, 0), b, 8) < 0);
	assert_int_equal(clu_hlc_cmp(ts(2, 0), a, 8, ts(2, 0), "hamqtt@a-not-this", 8), 0);
	assert_int_equal(clu_hlc_cmp(ts(2, 0), NULL, 0, ts(2, 0), NULL, 0), 0);
	assert_true(clu_hlc_cmp(ts(2, 0), NULL, 0, ts(2, 0), a, 8) < 0);
	/* bytes compare unsigned: a UTF-8 name sorts after ASCII */
	assert_true(clu_hlc_cmp(ts(2, 0), "\xc3\xa9", 2, ts(2, 0), "z", 1) > 0);
}

/* the same pair of writes gets the same winner whichever order they arrive in */
static void test_lww_converges(void **state)
{
	struct {
		struct clu_hlc_ts t;
		const char *node;
	} w[] = { { { 100, 0 }, "n@1" }, { { 100, 0 }, "n@2" }, { { 100, 1 }, "n@1" },
		  { { 99, 500 }, "n@3" }, { { 101, 0 }, "n@0" } };
	size_t n = sizeof(w) / sizeof(*w);

	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < n; j++) {
			int x = clu_hlc_cmp(w[i].t, w[i].node, 3, w[j].t, w[j].node, 3);
			int y = clu_hlc_cmp(w[j].t, w[j].node, 3, w[i].t, w[i].node, 3);
			assert_int_equal(x, -y);
			assert_int_equal(x == 0, i == j);
			for (size_t k = 0; k < n; k++) {   /* transitive */
				int z = clu_hlc_cmp(w[j].t, w[j].node, 3, w[k].t, w[k].node, 3);
				if (x < 0 && z < 0)
					assert_true(clu_hlc_cmp(w[i].t, w[i].node, 3, w[k].t, w[k].node, 3) < 0);
			}
		}
	}
}

/*
 * Three nodes with skewed, jittering wall clocks (one steps back now and then)
 * exchange timestamps at random. Checked: every node's timestamps strictly
 * increase, every receive orders after its send, wall_ms never runs further
 * ahead of the fastest wall clock than the drift allows.
 */
static void test_random_exchange(void **state)
{
	struct clu_hlc c[3];
	struct clu_hlc_ts prev[3], sent[3];
	int64_t skew[3] = { 0, 250, -400 };
	uint64_t real = 1700000000000ull, seed = 12345;
	bool have_sent[3] = { false, false, false };

	for (int i = 0; i < 3; i++) {
		clu_hlc_init(&c[i]);
		prev[i] = ts(0, 0);
	}
	for (int it = 0; it < 200000; it++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		int node = (int)((seed >> 33) % 3);
		int what = (int)((seed >> 40) % 4);
		uint64_t wall;
		struct clu_hlc_ts t;

		real += (seed >> 50) % 3;   /* often the same millisecond */
		wall = (uint64_t)((int64_t)real + skew[node]);
		if ((seed >> 20) % 97 == 0)
			wall -= 1000;   /* an NTP step back */
		if (what == 0 && have_sent[(node + 1) % 3]) {
			struct clu_hlc_ts r = sent[(node + 1) % 3];
			assert_int_equal(clu_hlc_update(&c[node], r, wall, &t), HQ_OK);
			assert_true(clu_hlc_ts_cmp(t, r) > 0);
		} else {
			t = clu_hlc_now(&c[node], wall);
			sent[node] = t;
			have_sent[node] = true;
		}
		assert_true(clu_hlc_ts_cmp(t, prev[node]) > 0);
		assert_true(t.wall_ms <= real + 250);   /* never ahead of the fastest clock */
		prev[node] = t;
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_now_monotonic),
		cmocka_unit_test(test_logical_overflow),
		cmocka_unit_test(test_update_rules),
		cmocka_unit_test(test_drift_refused),
		cmocka_unit_test(test_ordering),
		cmocka_unit_test(test_lww_converges),
		cmocka_unit_test(test_random_exchange),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
