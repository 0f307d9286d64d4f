/*
 * test_bytes.c - unit tests for src/core/bytes.{h,c}, the byte reader and
 * writer every codec uses (MQTT packets, session blobs, cluster frames).
 *
 * Every width is written to all three writer targets (fixed memory, count
 * only, growable buf) and must give the same bytes and the same count; the
 * bytes are pinned. A reader over every truncation of a field sequence must
 * fail with the truncation reason and never read past its input (exact-size
 * heap copies, for ASan). The first error must stick with its reason.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/bytes.h"
#include "core/err.h"
#include "core/mem.h"

/* one of each put, in a fixed order */
static void write_all(struct bytes_wr *w)
{
	bytes_wr_u8(w, 0xA1);
	bytes_wr_u16(w, 0xB2C3);
	bytes_wr_u32(w, 0xD4E5F607);
	bytes_wr_u64(w, 0x0102030405060708ull);
	bytes_wr_varint(w, 0);
	bytes_wr_varint(w, 127);
	bytes_wr_varint(w, 128);
	bytes_wr_varint(w, 268435455);
	bytes_wr_bytes(w, "xyz", 3);
	bytes_wr_bytes(w, NULL, 0);
}

static const uint8_t want_all[] = {
	0xA1,
	0xB2, 0xC3,
	0xD4, 0xE5, 0xF6, 0x07,
	0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
	0x00,
	0x7F,
	0x80, 0x01,
	0xFF, 0xFF, 0xFF, 0x7F,
	'x', 'y', 'z',
};

static void test_every_width_every_target(void **state)
{
	(void)state;
	struct bytes_wr w;

	/* count only */
	bytes_wr_count(&w);
	write_all(&w);
	assert_int_equal(bytes_wr_end(&w), HQ_OK);
	assert_int_equal(w.n, sizeof(want_all));

	/* fixed memory of exactly that size */
	uint8_t *fixed = hq_malloc(sizeof(want_all));
	bytes_wr_fixed(&w, fixed, sizeof(want_all));
	write_all(&w);
	assert_int_equal(bytes_wr_end(&w), HQ_OK);
	assert_int_equal(w.n, sizeof(want_all));
	assert_memory_equal(fixed, want_all, sizeof(want_all));
	hq_free(fixed);

	/* growable buf, starting empty, then appending after a consumed prefix */
	struct buf b = { 0 };
	bytes_wr_buf(&w, &b);
	write_all(&w);
	assert_int_equal(bytes_wr_end(&w), HQ_OK);
	assert_int_equal(buf_avail(&b), sizeof(want_all));
	assert_memory_equal(buf_head(&b), want_all, sizeof(want_all));
	buf_consume(&b, 5);
	for (int i = 0; i < 200; i++) {   /* many growths and a compaction on the way */
		bytes_wr_buf(&w, &b);
		write_all(&w);
		assert_int_equal(bytes_wr_end(&w), HQ_OK);
	}
	assert_int_equal(buf_avail(&b), 201 * sizeof(want_all) - 5);
	assert_memory_equal(buf_head(&b), want_all + 5, sizeof(want_all) - 5);
	for (int i = 0; i < 200; i++)
		assert_memory_equal(buf_head(&b) + sizeof(want_all) - 5 + i * sizeof(want_all),
				    want_all, sizeof(want_all));
	buf_free(&b);
}

static void read_all(struct bytes_rd *r)
{
	assert_int_equal(bytes_rd_u8(r), 0xA1);
	assert_int_equal(bytes_rd_u16(r), 0xB2C3);
	assert_int_equal(bytes_rd_u32(r), 0xD4E5F607);
	assert_true(bytes_rd_u64(r) == 0x0102030405060708ull);
	assert_int_equal(bytes_rd_varint(r), 0);
	assert_int_equal(bytes_rd_varint(r), 127);
	assert_int_equal(bytes_rd_varint(r), 128);
	assert_int_equal(bytes_rd_varint(r), 268435455);
	const uint8_t *p = bytes_rd_take(r, 3);
	assert_non_null(p);
	assert_memory_equal(p, "xyz", 3);
	assert_non_null(bytes_rd_take(r, 0));   /* empty, but still a place in the input */
}

/* the same reads as read_all, without asserting values (for truncations) */
static void read_all_blind(struct bytes_rd *r)
{
	bytes_rd_u8(r);
	bytes_rd_u16(r);
	bytes_rd_u32(r);
	bytes_rd_u64(r);
	for (int i = 0; i < 4; i++)
		bytes_rd_varint(r);
	bytes_rd_take(r, 3);
}

static void test_read_and_truncation_at_every_offset(void **state)
{
	(void)state;
	struct bytes_rd r;

	bytes_rd_init(&r, want_all, sizeof(want_all));
	read_all(&r);
	assert_int_equal(r.rc, HQ_OK);
	assert_null(r.why);
	assert_int_equal(bytes_rd_left(&r), 0);

	for (size_t k = 0; k < sizeof(want_all); k++) {
		uint8_t *cut = hq_malloc(k ? k : 1);   /* exact size: ASan sees any overread */
		memcpy(cut, want_all, k);
		bytes_rd_init(&r, cut, k);
		read_all_blind(&r);
		assert_int_equal(r.rc, HQ_EMALFORMED);
		assert_non_null(r.why);
		assert_true(strstr(r.why, "past the end") || strstr(r.why, "runs past"));
		assert_int_equal(bytes_rd_left(&r), 0);
		/* after the error: zeros and NULL, never a read */
		assert_int_equal(bytes_rd_u32(&r), 0);
		assert_null(bytes_rd_take(&r, 0));
		hq_free(cut);
	}
}

static void test_reader_sticky_first_reason(void **state)
{
	(void)state;
	struct bytes_rd r;
	static const uint8_t in[] = { 1, 2, 3, 4 };

	bytes_rd_init(&r, in, sizeof(in));
	assert_int_equal(bytes_rd_u8(&r), 1);
	bytes_rd_check(&r, true, "not this one");
	assert_int_equal(r.rc, HQ_OK);
	bytes_rd_check(&r, false, "first");
	bytes_rd_fail(&r, HQ_EPROTOCOL, "second");
	bytes_rd_u64(&r);   /* a truncation now is a consequence, not a cause */
	assert_int_equal(r.rc, HQ_EMALFORMED);
	assert_string_equal(r.why, "first");
	assert_int_equal(bytes_rd_u16(&r), 0);
	assert_int_equal(bytes_rd_varint(&r), 0);

	/* a truncation first: that is the reason kept */
	bytes_rd_init(&r, in, sizeof(in));
	bytes_rd_u64(&r);
	const char *why = r.why;
	bytes_rd_fail(&r, HQ_EPROTOCOL, "later");
	assert_int_equal(r.rc, HQ_EMALFORMED);
	assert_ptr_equal(r.why, why);
}

static void test_writer_sticky_and_fixed_overflow(void **state)
{
	(void)state;
	struct bytes_wr w;
	uint8_t mem[8];

	/* running out of fixed room: an error, never a write past cap */
	memset(mem, 0xEE, sizeof(mem));
	bytes_wr_fixed(&w, mem, 5);
	bytes_wr_u32(&w, 0x01020304);
	bytes_wr_u16(&w, 0x0506);        /* one byte short */
	bytes_wr_u8(&w, 0x07);            /* would fit, but the error sticks */
	assert_int_equal(bytes_wr_end(&w), HQ_ETOOLARGE);
	assert_int_equal(w.n, 7);         /* it keeps counting: what it would have needed */
	assert_memory_equal(mem, "\x01\x02\x03\x04\xEE\xEE\xEE\xEE", 8);

	/* the first reason is kept; nothing is written after it */
	struct buf b = { 0 };
	buf_append(&b, "ab", 2);
	bytes_wr_buf(&w, &b);
	bytes_wr_u8(&w, 1);
	bytes_wr_check(&w, true, "not this one");
	bytes_wr_check(&w, false, "first");
	bytes_wr_fail(&w, HQ_ETOOLARGE, "second");
	bytes_wr_varint(&w, BYTES_VARINT_MAX + 1);
	bytes_wr_bytes(&w, "more", 4);
	assert_int_equal(bytes_wr_end(&w), HQ_EINVAL);
	assert_string_equal(w.why, "first");
	assert_int_equal(buf_avail(&b), 2);   /* end did not commit */
	buf_free(&b);

	/* an error after growth: the buf is as it was, whether the growth
	 * compacted it (off past half) or kept its read offset */
	for (int compact = 0; compact <= 1; compact++) {
		uint8_t fill[200], big[300];
		memset(fill, 'f', sizeof(fill));
		fill[198] = '8';
		fill[199] = '9';
		memset(big, 'x', sizeof(big));
		buf_append(&b, fill, sizeof(fill));
		buf_consume(&b, compact ? 198 : 10);
		size_t left = buf_avail(&b);
		bytes_wr_buf(&w, &b);
		bytes_wr_bytes(&w, big, sizeof(big));
		assert_int_equal(b.off, compact ? 0 : 10);
		bytes_wr_check(&w, false, "late");
		assert_int_equal(bytes_wr_end(&w), HQ_EINVAL);
		assert_int_equal(buf_avail(&b), left);
		assert_memory_equal(buf_head(&b) + left - 2, "89", 2);
		buf_free(&b);
	}

	/* a varint too large is an error in every mode */
	bytes_wr_count(&w);
	bytes_wr_varint(&w, BYTES_VARINT_MAX + 1);
	assert_int_equal(bytes_wr_end(&w), HQ_EINVAL);
}

/* for sizes 0..40 of raw bytes between varints: count == fixed == buf */
static void test_count_equals_real(void **state)
{
	(void)state;
	uint8_t src[64];
	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)(i * 7);

	for (size_t k = 0; k <= 40; k++) {
		struct bytes_wr c, f, g;
		struct buf b = { 0 };
		uint32_t vi = (uint32_t)(k * 9973u * k * k) % (BYTES_VARINT_MAX + 1);
		bytes_wr_count(&c);
		bytes_wr_varint(&c, vi);
		bytes_wr_bytes(&c, src, k);
		bytes_wr_u16(&c, (uint16_t)k);
		assert_int_equal(bytes_wr_end(&c), HQ_OK);

		uint8_t *mem = hq_malloc(c.n);
		bytes_wr_fixed(&f, mem, c.n);   /* exactly the counted size */
		bytes_wr_varint(&f, vi);
		bytes_wr_bytes(&f, src, k);
		bytes_wr_u16(&f, (uint16_t)k);
		assert_int_equal(bytes_wr_end(&f), HQ_OK);
		assert_int_equal(f.n, c.n);

		bytes_wr_buf(&g, &b);
		bytes_wr_varint(&g, vi);
		bytes_wr_bytes(&g, src, k);
		bytes_wr_u16(&g, (uint16_t)k);
		assert_int_equal(bytes_wr_end(&g), HQ_OK);
		assert_int_equal(buf_avail(&b), c.n);
		assert_memory_equal(buf_head(&b), mem, c.n);

		struct bytes_rd r;
		bytes_rd_init(&r, mem, c.n);
		assert_int_equal(bytes_rd_varint(&r), vi);
		assert_memory_equal(bytes_rd_take(&r, k), src, k);
		assert_int_equal(bytes_rd_u16(&r), k);
		assert_int_equal(bytes_rd_left(&r), 0);
		hq_free(mem);
		buf_free(&b);
	}
}

static void test_varint_boundaries(void **state)
{
	(void)state;
	static const struct {
		uint32_t v;
		size_t n;
		uint8_t b[4];
	} t[] = {
		{ 0, 1, { 0x00 } },
		{ 127, 1, { 0x7F } },
		{ 128, 2, { 0x80, 0x01 } },
		{ 16383, 2, { 0xFF, 0x7F } },
		{ 16384, 3, { 0x80, 0x80, 0x01 } },
		{ 2097151, 3, { 0xFF, 0xFF, 0x7F } },
		{ 2097152, 4, { 0x80, 0x80, 0x80, 0x01 } },
		{ 268435455, 4, { 0xFF, 0xFF, 0xFF, 0x7F } },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		uint8_t out[4];
		struct bytes_wr w;
		assert_int_equal(bytes_varint_size(t[i].v), t[i].n);
		bytes_wr_fixed(&w, out, t[i].n);   /* exact room: the in-place check fails, still fits */
		bytes_wr_varint(&w, t[i].v);
		assert_int_equal(bytes_wr_end(&w), HQ_OK);
		assert_int_equal(w.n, t[i].n);
		assert_memory_equal(out, t[i].b, t[i].n);

		struct bytes_rd r;
		bytes_rd_init(&r, t[i].b, t[i].n);
		assert_int_equal(bytes_rd_varint(&r), t[i].v);
		assert_int_equal(r.rc, HQ_OK);
		for (size_t k = 0; k < t[i].n; k++) {
			bytes_rd_init(&r, t[i].b, k);
			bytes_rd_varint(&r);
			assert_int_equal(r.rc, HQ_EMALFORMED);
			assert_string_equal(r.why, "variable byte integer runs past the end");
		}
		/* one byte short of room: an error, not an overflow */
		if (t[i].n > 1) {
			bytes_wr_fixed(&w, out, t[i].n - 1);
			bytes_wr_varint(&w, t[i].v);
			assert_int_equal(bytes_wr_end(&w), HQ_ETOOLARGE);
		}
	}

	/* not the shortest form, and a continuation bit on the 4th byte */
	static const char *bad[] = { "\x80\x00", "\xFF\x80\x00", "\x80\x80\x80\x00",
				     "\x80\x80\x80\x80", "\xFF\xFF\xFF\xFF\x7F" };
	static const size_t bad_n[] = { 2, 3, 4, 4, 5 };
	for (size_t i = 0; i < 5; i++) {
		struct bytes_rd r;
		bytes_rd_init(&r, bad[i], bad_n[i]);
		assert_int_equal(bytes_rd_varint(&r), 0);
		assert_int_equal(r.rc, HQ_EMALFORMED);
		assert_string_equal(r.why, "invalid variable byte integer");
	}
}

static void test_take_borrows(void **state)
{
	(void)state;
	static const uint8_t in[] = { 0, 3, 'a', 'b', 'c', 9 };
	struct bytes_rd r;

	bytes_rd_init(&r, in, sizeof(in));
	size_t n = bytes_rd_u16(&r);
	const uint8_t *p = bytes_rd_take(&r, n);
	assert_ptr_equal(p, in + 2);     /* a view, not a copy */
	assert_ptr_equal(bytes_rd_cur(&r), in + 5);
	assert_null(bytes_rd_take(&r, 2));
	assert_int_equal(r.rc, HQ_EMALFORMED);
	assert_null(bytes_rd_take(&r, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_width_every_target),
		cmocka_unit_test(test_read_and_truncation_at_every_offset),
		cmocka_unit_test(test_reader_sticky_first_reason),
		cmocka_unit_test(test_writer_sticky_and_fixed_overflow),
		cmocka_unit_test(test_count_equals_real),
		cmocka_unit_test(test_varint_boundaries),
		cmocka_unit_test(test_take_borrows),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
