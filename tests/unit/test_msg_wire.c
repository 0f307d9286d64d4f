/*
 * test_msg_wire.c - unit tests for src/core/msg_wire.{h,c}, the one encoding
 * of a message shared by the cluster protocol (FORWARD, RETAIN_SET mbody)
 * and the session blob.
 *
 * The bytes of a sample are pinned (they are the cluster protocol version 1
 * layout: a change here is a protocol change), messages round-trip through
 * every writer target, every truncation is refused, and the encoder refuses
 * what the decoder would refuse.
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
#include "core/msg_wire.h"

static struct msg_wire sample(void)
{
	return (struct msg_wire){
		.qos = 1, .retain = true, .has_expiry = true, .expiry = 0x01020304,
		.pub_hash = 0xA0B0C0D0,
		.topic = (const uint8_t *)"a/b", .topic_len = 3,
		.props = (const uint8_t *)"\x01\x01", .props_len = 2,
		.payload = (const uint8_t *)"hi", .payload_len = 2,
	};
}

static const uint8_t sample_bytes[] = {
	0x00, 0x03, 'a', '/', 'b',          /* topic:u16 + bytes */
	0x01,                               /* qos */
	0x03,                               /* RETAIN | EXPIRY */
	0x01, 0x02, 0x03, 0x04,             /* expiry */
	0xA0, 0xB0, 0xC0, 0xD0,             /* pub_hash */
	0x00, 0x00, 0x00, 0x02, 0x01, 0x01, /* props:u32 + bytes */
	0x00, 0x00, 0x00, 0x02, 'h', 'i',   /* payload:u32 + bytes */
};

static void assert_same(const struct msg_wire *a, const struct msg_wire *b)
{
	assert_int_equal(a->qos, b->qos);
	assert_int_equal(a->retain, b->retain);
	assert_int_equal(a->has_expiry, b->has_expiry);
	assert_int_equal(a->expiry, b->expiry);
	assert_int_equal(a->pub_hash, b->pub_hash);
	assert_int_equal(a->topic_len, b->topic_len);
	assert_memory_equal(a->topic, b->topic, a->topic_len);
	assert_int_equal(a->props_len, b->props_len);
	if (a->props_len)
		assert_memory_equal(a->props, b->props, a->props_len);
	assert_int_equal(a->payload_len, b->payload_len);
	if (a->payload_len)
		assert_memory_equal(a->payload, b->payload, a->payload_len);
}

static void test_pinned_bytes(void **state)
{
	(void)state;
	struct msg_wire m = sample(), d;
	struct buf b = { 0 };
	struct bytes_wr w;

	bytes_wr_buf(&w, &b);
	msg_wire_put(&w, &m);
	assert_int_equal(bytes_wr_end(&w), HQ_OK);
	assert_int_equal(buf_avail(&b), sizeof(sample_bytes));
	assert_memory_equal(buf_head(&b), sample_bytes, sizeof(sample_bytes));

	struct bytes_rd r;
	bytes_rd_init(&r, sample_bytes, sizeof(sample_bytes));
	msg_wire_get(&r, &d);
	assert_int_equal(r.rc, HQ_OK);
	assert_int_equal(bytes_rd_left(&r), 0);
	assert_same(&m, &d);
	assert_ptr_equal(d.payload, sample_bytes + sizeof(sample_bytes) - 2);   /* borrowed */
	buf_free(&b);
}

static void test_round_trip_shapes(void **state)
{
	(void)state;
	static uint8_t big[70000];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 31);
	struct msg_wire shapes[6];
	shapes[0] = sample();
	shapes[1] = sample();
	shapes[1].has_expiry = false;
	shapes[1].expiry = 0;
	shapes[1].retain = false;
	shapes[1].qos = 0;
	shapes[2] = sample();
	shapes[2].props = NULL;
	shapes[2].props_len = 0;
	shapes[2].payload = NULL;
	shapes[2].payload_len = 0;
	shapes[3] = sample();
	shapes[3].qos = 2;
	shapes[3].payload = big;
	shapes[3].payload_len = sizeof(big);
	shapes[4] = sample();
	shapes[4].topic = big;          /* 'any bytes': content is the caller's rule */
	shapes[4].topic_len = UINT16_MAX;
	shapes[5] = sample();
	shapes[5].expiry = 0;           /* already expired still travels */

	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		struct bytes_wr c, w;
		struct buf b = { 0 };
		bytes_wr_count(&c);
		msg_wire_put(&c, &shapes[i]);
		assert_int_equal(bytes_wr_end(&c), HQ_OK);
		bytes_wr_buf(&w, &b);
		msg_wire_put(&w, &shapes[i]);
		assert_int_equal(bytes_wr_end(&w), HQ_OK);
		assert_int_equal(c.n, buf_avail(&b));

		/* whole, and split (RETAIN_SET puts its kind byte in between) */
		uint8_t *copy = hq_malloc(c.n);
		memcpy(copy, buf_head(&b), c.n);
		struct bytes_rd r;
		struct msg_wire d;
		bytes_rd_init(&r, copy, c.n);
		msg_wire_get(&r, &d);
		assert_int_equal(r.rc, HQ_OK);
		assert_int_equal(bytes_rd_left(&r), 0);
		assert_same(&shapes[i], &d);
		memset(&d, 0, sizeof(d));
		bytes_rd_init(&r, copy, c.n);
		msg_wire_get_topic(&r, &d);
		msg_wire_get_body(&r, &d);
		assert_int_equal(r.rc, HQ_OK);
		assert_same(&shapes[i], &d);
		hq_free(copy);
		buf_free(&b);
	}
}

static void test_truncation_every_length(void **state)
{
	(void)state;
	for (size_t k = 0; k < sizeof(sample_bytes); k++) {
		uint8_t *cut = hq_malloc(k ? k : 1);
		memcpy(cut, sample_bytes, k);
		struct bytes_rd r;
		struct msg_wire d;
		bytes_rd_init(&r, cut, k);
		msg_wire_get(&r, &d);
		assert_int_equal(r.rc, HQ_EMALFORMED);
		hq_free(cut);
	}
}

static void test_decode_refuses(void **state)
{
	(void)state;
	uint8_t in[sizeof(sample_bytes)];
	struct bytes_rd r;
	struct msg_wire d;

	memcpy(in, sample_bytes, sizeof(in));
	in[5] = 3;                          /* QoS 3 */
	bytes_rd_init(&r, in, sizeof(in));
	msg_wire_get(&r, &d);
	assert_int_equal(r.rc, HQ_EMALFORMED);
	assert_string_equal(r.why, "message QoS above 2");

	memcpy(in, sample_bytes, sizeof(in));
	in[6] |= 0x04;                      /* reserved flag */
	bytes_rd_init(&r, in, sizeof(in));
	msg_wire_get(&r, &d);
	assert_int_equal(r.rc, HQ_EMALFORMED);
	assert_string_equal(r.why, "reserved message flag set");

	static const uint8_t empty_topic[] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
	bytes_rd_init(&r, empty_topic, sizeof(empty_topic));
	msg_wire_get(&r, &d);
	assert_int_equal(r.rc, HQ_EMALFORMED);
	assert_string_equal(r.why, "empty message topic");
	assert_null(d.topic);

	memcpy(in, sample_bytes, sizeof(in));
	in[sizeof(in) - 3] = 3;             /* payload length one past the end */
	bytes_rd_init(&r, in, sizeof(in));
	msg_wire_get(&r, &d);
	assert_int_equal(r.rc, HQ_EMALFORMED);
}

static void test_encode_refuses(void **state)
{
	(void)state;
	struct bytes_wr w;
	struct msg_wire m;

	m = sample();
	m.qos = 3;
	bytes_wr_count(&w);
	msg_wire_put(&w, &m);
	assert_int_equal(bytes_wr_end(&w), HQ_EINVAL);

	m = sample();
	m.topic_len = 0;
	bytes_wr_count(&w);
	msg_wire_put(&w, &m);
	assert_int_equal(bytes_wr_end(&w), HQ_EINVAL);

	m = sample();
	m.topic_len = (size_t)UINT16_MAX + 1;
	bytes_wr_count(&w);
	msg_wire_put(&w, &m);
	assert_int_equal(bytes_wr_end(&w), HQ_EINVAL);

	m = sample();
	m.payload = NULL;                   /* a length without bytes */
	bytes_wr_count(&w);
	msg_wire_put(&w, &m);
	assert_int_equal(bytes_wr_end(&w), HQ_EINVAL);

	/* too long for a u32 length: refused before a byte is read from it */
	m = sample();
	m.payload_len = (size_t)UINT32_MAX + 1;
	struct buf b = { 0 };
	bytes_wr_buf(&w, &b);
	msg_wire_put(&w, &m);
	assert_int_equal(bytes_wr_end(&w), HQ_ETOOLARGE);
	assert_int_equal(buf_avail(&b), 0);
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pinned_bytes),
		cmocka_unit_test(test_round_trip_shapes),
		cmocka_unit_test(test_truncation_every_length),
		cmocka_unit_test(test_decode_refuses),
		cmocka_unit_test(test_encode_refuses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
