/*
 * test_clu_proto_repl.c - the REPL_SET frame (replicated tables, clu_proto.h
 * version 4): a SET and a DELETE round-trip field by field, the domains are
 * enforced by encoder and decoder alike, and every truncation or corruption
 * of a sample frame is refused or re-encodes to the same bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cluster/clu_proto.h"
#include "core/err.h"
#include "core/mem.h"

#define NODE_A "hamqtt@10.0.0.1"

static struct clu_rentry sample(bool del)
{
	struct clu_rentry e = {
		.table = clu_str("authdb"),
		.key = { (const uint8_t *)"u\0alice", 7 },
		.ts = { 1764355200123ull, 9 },
		.origin = clu_str(NODE_A),
		.del = del,
		.expires_ms = del ? 0 : 1764355299000ull,
	};
	if (!del)
		e.value = (struct clu_bin){ (const uint8_t *)"v\0bytes", 7 };
	return e;
}

static bool bin_eq(struct clu_bin a, struct clu_bin b)
{
	return a.len == b.len && (!a.len || memcmp(a.p, b.p, a.len) == 0);
}

/* encode a batch of the two samples into a heap copy of exact size */
static uint8_t *encode_two(size_t *n)
{
	struct buf b = { 0 };
	struct clu_batch bt;
	assert_int_equal(clu_batch_begin(&bt, &b, CLU_MSG_REPL_SET), HQ_OK);
	struct clu_rentry s = sample(false), d = sample(true);
	assert_int_equal(clu_batch_rentry(&bt, &s), HQ_OK);
	assert_int_equal(clu_batch_rentry(&bt, &d), HQ_OK);
	clu_batch_end(&bt);
	*n = buf_avail(&b);
	uint8_t *p = hq_malloc(*n);
	memcpy(p, buf_head(&b), *n);
	buf_free(&b);
	return p;
}

static void test_roundtrip(void **state)
{
	(void)state;
	size_t n, used;
	uint8_t *p = encode_two(&n);
	struct clu_msg m;
	assert_int_equal(clu_decode(p, n, CLU_MAX_BODY, &m, &used), HQ_OK);
	assert_int_equal(used, n);
	assert_int_equal(m.type, CLU_MSG_REPL_SET);
	assert_string_equal(clu_type_name(CLU_MSG_REPL_SET), "REPL_SET");
	struct clu_rentry got, s = sample(false), d = sample(true);
	assert_true(clu_next_rentry(&m.list, &got));
	assert_true(got.table.len == 6 && !memcmp(got.table.p, "authdb", 6));
	assert_true(bin_eq(got.key, s.key));
	assert_true(got.ts.wall_ms == s.ts.wall_ms && got.ts.logical == 9);
	assert_true(got.origin.len == strlen(NODE_A) && !memcmp(got.origin.p, NODE_A, got.origin.len));
	assert_false(got.del);
	assert_true(got.expires_ms == s.expires_ms);
	assert_true(bin_eq(got.value, s.value));
	assert_true(clu_next_rentry(&m.list, &got));
	assert_true(got.del);
	assert_true(bin_eq(got.key, d.key));
	assert_int_equal(got.value.len, 0);
	assert_false(clu_next_rentry(&m.list, &got));
	hq_free(p);
}

static void test_domains(void **state)
{
	(void)state;
	struct buf b = { 0 };
	struct clu_batch bt;
	assert_int_equal(clu_batch_begin(&bt, &b, CLU_MSG_REPL_SET), HQ_OK);
	struct clu_rentry e = sample(false);
	e.table = clu_str("Auth");          /* upper case: outside [a-z0-9_] */
	assert_int_equal(clu_batch_rentry(&bt, &e), HQ_EINVAL);
	e = sample(false);
	e.table = clu_str("");
	assert_int_equal(clu_batch_rentry(&bt, &e), HQ_EINVAL);
	e = sample(false);
	e.key.len = 0;
	assert_int_equal(clu_batch_rentry(&bt, &e), HQ_EINVAL);
	e = sample(false);
	e.key.len = CLU_RKEY_MAX + 1;
	assert_int_equal(clu_batch_rentry(&bt, &e), HQ_EINVAL);
	e = sample(false);
	e.origin = clu_str("no-at-sign");
	assert_int_equal(clu_batch_rentry(&bt, &e), HQ_EINVAL);
	/* a REPL_SET batch takes no other entry kind */
	struct clu_client c = { .client_id = clu_str("x") };
	assert_int_equal(clu_batch_client(&bt, &c), HQ_EINVAL);
	clu_batch_end(&bt);
	struct clu_msg m;
	size_t used;
	assert_int_equal(clu_decode(buf_head(&b), buf_avail(&b), CLU_MAX_BODY, &m, &used), HQ_OK);
	assert_int_equal(m.list.n, 0);     /* nothing invalid got in */
	buf_free(&b);
}

/* Cut at every length, flip every byte: refused, or re-encodes identically. */
static void test_truncate_corrupt(void **state)
{
	(void)state;
	size_t n, used;
	uint8_t *p = encode_two(&n);
	struct clu_msg m;
	for (size_t k = 0; k < n; k++) {
		uint8_t *c = hq_malloc(k ? k : 1);
		memcpy(c, p, k);
		int rc = clu_decode(c, k, CLU_MAX_BODY, &m, &used);
		assert_true(rc == HQ_EAGAIN || rc == HQ_EMALFORMED);
		/* the body alone, cut short: malformed */
		if (k >= CLU_HDR_LEN)
			assert_int_equal(clu_decode_body(CLU_MSG_REPL_SET, c + CLU_HDR_LEN, k - CLU_HDR_LEN, &m),
					 HQ_EMALFORMED);
		hq_free(c);
	}
	for (size_t i = CLU_HDR_LEN; i < n; i++) {
		uint8_t *c = hq_malloc(n);
		memcpy(c, p, n);
		c[i] ^= 0x5A;
		if (clu_decode(c, n, CLU_MAX_BODY, &m, &used) == HQ_OK) {
			struct buf b = { 0 };
			struct clu_batch bt;
			assert_int_equal(clu_batch_begin(&bt, &b, CLU_MSG_REPL_SET), HQ_OK);
			struct clu_rentry e;
			while (clu_next_rentry(&m.list, &e))
				assert_int_equal(clu_batch_rentry(&bt, &e), HQ_OK);
			clu_batch_end(&bt);
			assert_int_equal(buf_avail(&b), n);
			assert_memory_equal(buf_head(&b), c, n);
			buf_free(&b);
		}
		hq_free(c);
	}
	hq_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_domains),
		cmocka_unit_test(test_truncate_corrupt),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
