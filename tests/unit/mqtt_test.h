/*
 * mqtt_test.h - helpers shared by the test_mqtt_*.c unit tests: framing a
 * hand-written body, decoding with a readable failure message, and a property
 * oracle written from the spec's table 2-4 independently of mqtt_props.c (so a
 * mistake in the codec's table is not mirrored by the tests).
 *
 * Everything is static inline so each test file uses what it needs.
 */
#ifndef HQ_TEST_MQTT_TEST_H
#define HQ_TEST_MQTT_TEST_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/buf.h"
#include "core/err.h"
#include "mqtt/mqtt.h"

#define S(lit) ((struct mqtt_str){ (const uint8_t *)(lit), (uint16_t)(sizeof(lit) - 1) })

static inline bool mt_str_eq(struct mqtt_str a, struct mqtt_str b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

#define assert_str_eq(a, b) assert_true(mt_str_eq((a), (b)))

/* Frame body with fixed header byte hdr (remaining length computed). */
static inline void mt_frame(struct buf *out, uint8_t hdr, const uint8_t *body, size_t n)
{
	uint8_t h[5];
	h[0] = hdr;
	size_t hl = 1 + mqtt_varint_encode(h + 1, (uint32_t)n);
	buf_append(out, h, hl);
	if (n)
		buf_append(out, body, n);
}

/* Decode a whole packet in a fresh heap copy (so ASan sees any overread). */
static inline int mt_decode(const uint8_t *p, size_t n, uint8_t ver, struct mqtt_packet *pkt,
			    const char **why)
{
	uint8_t *copy = malloc(n ? n : 1);
	if (n)
		memcpy(copy, p, n);
	int rc = mqtt_decode(copy, n, ver, pkt, why);
	/* decoded views borrow the copy; the callers of this helper only look
	 * at scalar results, so it can go */
	free(copy);
	return rc;
}

/* Decode hdr+body and check the result code; prints `why` when it differs. */
static inline void mt_check(int line, uint8_t ver, int want, uint8_t hdr, const uint8_t *body,
			    size_t n)
{
	struct buf b = { 0 };
	struct mqtt_packet pkt;
	const char *why = NULL;

	mt_frame(&b, hdr, body, n);
	int rc = mt_decode(b.data, b.len, ver, &pkt, &why);
	if (rc != want)
		fail_msg("line %d: got %d (%s) want %d, why=%s", line, rc, hq_strerror(rc), want,
			 why ? why : "(null)");
	if (rc != HQ_OK && why == NULL)
		fail_msg("line %d: error without why", line);
	buf_free(&b);
}

/* CHECK(version, expected rc, fixed header byte, body bytes...) */
#define CHECK(ver, want, hdr, ...)                                                   \
	do {                                                                         \
		const uint8_t body_[] = { __VA_ARGS__ };                             \
		mt_check(__LINE__, (ver), (want), (hdr), body_, sizeof(body_));      \
	} while (0)
#define CHECK_EMPTY(ver, want, hdr) mt_check(__LINE__, (ver), (want), (hdr), NULL, 0)

/* Encode then decode; fails the test on any error. out borrows b. */
static inline void mt_roundtrip(struct buf *b, uint8_t ver, const struct mqtt_packet *in,
				struct mqtt_packet *out)
{
	const char *why = NULL;

	buf_reset(b);
	int rc = mqtt_encode(b, ver, in);
	if (rc != HQ_OK)
		fail_msg("encode %s v%d: %s", mqtt_type_name(in->type), ver, hq_strerror(rc));
	rc = mqtt_decode(buf_head(b), buf_avail(b), ver, out, &why);
	if (rc != HQ_OK)
		fail_msg("decode %s v%d: %s (%s)", mqtt_type_name(in->type), ver, hq_strerror(rc),
			 why ? why : "");
	assert_int_equal(out->type, in->type);
}

/* ---- property oracle (spec table 2-4) ---- */

#define MT_WILL 0  /* "packet type" of will properties */
#define MT_P(t) (1u << (t))

struct mt_prop {
	uint8_t id;
	unsigned mask;              /* MT_P(type) where allowed; MT_P(MT_WILL) for will */
};

static const struct mt_prop mt_props[] = {
	{ 0x01, MT_P(MQTT_PUBLISH) | MT_P(MT_WILL) },
	{ 0x02, MT_P(MQTT_PUBLISH) | MT_P(MT_WILL) },
	{ 0x03, MT_P(MQTT_PUBLISH) | MT_P(MT_WILL) },
	{ 0x08, MT_P(MQTT_PUBLISH) | MT_P(MT_WILL) },
	{ 0x09, MT_P(MQTT_PUBLISH) | MT_P(MT_WILL) },
	{ 0x0B, MT_P(MQTT_PUBLISH) | MT_P(MQTT_SUBSCRIBE) },
	{ 0x11, MT_P(MQTT_CONNECT) | MT_P(MQTT_CONNACK) | MT_P(MQTT_DISCONNECT) },
	{ 0x12, MT_P(MQTT_CONNACK) },
	{ 0x13, MT_P(MQTT_CONNACK) },
	{ 0x15, MT_P(MQTT_CONNECT) | MT_P(MQTT_CONNACK) | MT_P(MQTT_AUTH) },
	{ 0x16, MT_P(MQTT_CONNECT) | MT_P(MQTT_CONNACK) | MT_P(MQTT_AUTH) },
	{ 0x17, MT_P(MQTT_CONNECT) },
	{ 0x18, MT_P(MT_WILL) },
	{ 0x19, MT_P(MQTT_CONNECT) },
	{ 0x1A, MT_P(MQTT_CONNACK) },
	{ 0x1C, MT_P(MQTT_CONNACK) | MT_P(MQTT_DISCONNECT) },
	{ 0x1F, MT_P(MQTT_CONNACK) | MT_P(MQTT_PUBACK) | MT_P(MQTT_PUBREC) | MT_P(MQTT_PUBREL) |
		MT_P(MQTT_PUBCOMP) | MT_P(MQTT_SUBACK) | MT_P(MQTT_UNSUBACK) |
		MT_P(MQTT_DISCONNECT) | MT_P(MQTT_AUTH) },
	{ 0x21, MT_P(MQTT_CONNECT) | MT_P(MQTT_CONNACK) },
	{ 0x22, MT_P(MQTT_CONNECT) | MT_P(MQTT_CONNACK) },
	{ 0x23, MT_P(MQTT_PUBLISH) },
	{ 0x24, MT_P(MQTT_CONNACK) },
	{ 0x25, MT_P(MQTT_CONNACK) },
	{ 0x27, MT_P(MQTT_CONNECT) | MT_P(MQTT_CONNACK) },
	{ 0x28, MT_P(MQTT_CONNACK) },
	{ 0x29, MT_P(MQTT_CONNACK) },
	{ 0x2A, MT_P(MQTT_CONNACK) },
};
#define MT_NPROPS (sizeof(mt_props) / sizeof(mt_props[0]))
/* user property 0x26 is allowed everywhere and travels in `extra` */

/* Set property id in p to a distinctive valid value. */
static inline void mt_prop_set(struct mqtt_props *p, uint8_t id)
{
	p->present |= MQTT_PROP_BIT(id);
	switch (id) {
	case 0x01: p->payload_format = 1; break;
	case 0x02: p->message_expiry = 0x01020304; break;
	case 0x03: p->content_type = S("text/plain"); break;
	case 0x08: p->response_topic = S("resp/topic"); break;
	case 0x09: p->correlation_data = S("\x00\x01\xff"); break;
	case 0x0B: p->sub_ids[0] = 268435455; p->n_sub_ids = 1; break;
	case 0x11: p->session_expiry = 0xFFFFFFFF; break;
	case 0x12: p->assigned_client_id = S("auto-1"); break;
	case 0x13: p->server_keep_alive = 0x1234; break;
	case 0x15: p->auth_method = S("SCRAM-SHA-1"); break;
	case 0x16:
		p->auth_data = S("\x00\xfe");
		/* data needs a method (spec 3.1.2.11.10) */
		p->present |= MQTT_PROP_BIT(0x15);
		p->auth_method = S("SCRAM-SHA-1");
		break;
	case 0x17: p->request_problem_info = 0; break;
	case 0x18: p->will_delay = 77; break;
	case 0x19: p->request_response_info = 1; break;
	case 0x1A: p->response_info = S("ri/"); break;
	case 0x1C: p->server_reference = S("other:1883"); break;
	case 0x1F: p->reason_string = S("because"); break;
	case 0x21: p->receive_max = 65535; break;
	case 0x22: p->topic_alias_max = 10; break;
	case 0x23: p->topic_alias = 7; break;
	case 0x24: p->max_qos = 1; break;
	case 0x25: p->retain_available = 0; break;
	case 0x27: p->max_packet_size = 268435460; break;
	case 0x28: p->wildcard_sub_avail = 1; break;
	case 0x29: p->sub_id_avail = 0; break;
	case 0x2A: p->shared_sub_avail = 1; break;
	default: fail_msg("no test value for property 0x%02x", id);
	}
}

/* Set every property allowed in ptype. */
static inline void mt_props_fill(struct mqtt_props *p, int ptype)
{
	for (size_t i = 0; i < MT_NPROPS; i++)
		if (mt_props[i].mask & MT_P(ptype))
			mt_prop_set(p, mt_props[i].id);
}

/* Compare the decoded props against what was encoded (user props excluded). */
static inline void mt_props_eq(const struct mqtt_props *want, const struct mqtt_props *got)
{
	uint64_t mask = ~MQTT_PROP_BIT(MQTT_PROP_USER);

	assert_int_equal(want->present & mask, got->present & mask);
	uint64_t pr = want->present;
#define B(id) (pr & MQTT_PROP_BIT(id))
	if (B(0x01)) assert_int_equal(want->payload_format, got->payload_format);
	if (B(0x02)) assert_int_equal(want->message_expiry, got->message_expiry);
	if (B(0x03)) assert_str_eq(want->content_type, got->content_type);
	if (B(0x08)) assert_str_eq(want->response_topic, got->response_topic);
	if (B(0x09)) assert_str_eq(want->correlation_data, got->correlation_data);
	if (B(0x0B)) {
		assert_int_equal(want->n_sub_ids, got->n_sub_ids);
		for (unsigned i = 0; i < want->n_sub_ids; i++)
			assert_int_equal(want->sub_ids[i], got->sub_ids[i]);
	}
	if (B(0x11)) assert_int_equal(want->session_expiry, got->session_expiry);
	if (B(0x12)) assert_str_eq(want->assigned_client_id, got->assigned_client_id);
	if (B(0x13)) assert_int_equal(want->server_keep_alive, got->server_keep_alive);
	if (B(0x15)) assert_str_eq(want->auth_method, got->auth_method);
	if (B(0x16)) assert_str_eq(want->auth_data, got->auth_data);
	if (B(0x17)) assert_int_equal(want->request_problem_info, got->request_problem_info);
	if (B(0x18)) assert_int_equal(want->will_delay, got->will_delay);
	if (B(0x19)) assert_int_equal(want->request_response_info, got->request_response_info);
	if (B(0x1A)) assert_str_eq(want->response_info, got->response_info);
	if (B(0x1C)) assert_str_eq(want->server_reference, got->server_reference);
	if (B(0x1F)) assert_str_eq(want->reason_string, got->reason_string);
	if (B(0x21)) assert_int_equal(want->receive_max, got->receive_max);
	if (B(0x22)) assert_int_equal(want->topic_alias_max, got->topic_alias_max);
	if (B(0x23)) assert_int_equal(want->topic_alias, got->topic_alias);
	if (B(0x24)) assert_int_equal(want->max_qos, got->max_qos);
	if (B(0x25)) assert_int_equal(want->retain_available, got->retain_available);
	if (B(0x27)) assert_int_equal(want->max_packet_size, got->max_packet_size);
	if (B(0x28)) assert_int_equal(want->wildcard_sub_avail, got->wildcard_sub_avail);
	if (B(0x29)) assert_int_equal(want->sub_id_avail, got->sub_id_avail);
	if (B(0x2A)) assert_int_equal(want->shared_sub_avail, got->shared_sub_avail);
#undef B
}

/* Check the user properties of got are exactly keys[i]=vals[i], in order. */
static inline void mt_users_eq(const struct mqtt_props *got, const char *const *keys,
			       const char *const *vals, unsigned n)
{
	uint32_t cur = 0;
	struct mqtt_str k, v;
	unsigned i = 0;

	while (mqtt_props_user_next(got, &cur, &k, &v)) {
		assert_true(i < n);
		assert_int_equal(k.len, strlen(keys[i]));
		assert_memory_equal(k.p, keys[i], k.len);
		assert_int_equal(v.len, strlen(vals[i]));
		assert_memory_equal(v.p, vals[i], v.len);
		i++;
	}
	assert_int_equal(i, n);
	assert_int_equal(got->n_user, n);
}

/*
 * A minimal valid packet of `type` (v5 when it matters) whose properties are
 * *props_out: lets property tests iterate over packet types. Will properties
 * (type MT_WILL) come as a CONNECT with a will.
 */
static inline struct mqtt_props *mt_base_packet(struct mqtt_packet *pkt, int type,
						struct buf *list)
{
	memset(pkt, 0, sizeof(*pkt));
	pkt->type = (uint8_t)(type == MT_WILL ? MQTT_CONNECT : type);
	switch (pkt->type) {
	case MQTT_CONNECT:
		pkt->u.connect.client_id = S("cid");
		if (type == MT_WILL) {
			pkt->u.connect.has_will = true;
			pkt->u.connect.will.topic = S("will/t");
			pkt->u.connect.will.payload = (const uint8_t *)"bye";
			pkt->u.connect.will.payload_len = 3;
			return &pkt->u.connect.will.props;
		}
		return &pkt->u.connect.props;
	case MQTT_CONNACK:
		return &pkt->u.connack.props;
	case MQTT_PUBLISH:
		pkt->u.publish.topic = S("a/b");
		pkt->u.publish.qos = 1;
		pkt->u.publish.packet_id = 9;
		return &pkt->u.publish.props;
	case MQTT_PUBACK: case MQTT_PUBREC: case MQTT_PUBREL: case MQTT_PUBCOMP:
		pkt->u.ack.packet_id = 10;
		return &pkt->u.ack.props;
	case MQTT_SUBSCRIBE: case MQTT_UNSUBSCRIBE:
		buf_reset(list);
		if (pkt->type == MQTT_SUBSCRIBE)
			mqtt_sub_append(list, "x/#", 1);
		else
			mqtt_unsub_append(list, "x/#");
		pkt->u.subscribe.packet_id = 11;
		pkt->u.subscribe.list = buf_head(list);
		pkt->u.subscribe.list_len = (uint32_t)buf_avail(list);
		pkt->u.subscribe.count = 1;
		return &pkt->u.subscribe.props;
	case MQTT_SUBACK: case MQTT_UNSUBACK:
		pkt->u.suback.packet_id = 12;
		pkt->u.suback.codes = (const uint8_t *)"\x00";
		pkt->u.suback.count = 1;
		return &pkt->u.suback.props;
	case MQTT_DISCONNECT: case MQTT_AUTH:
		return &pkt->u.disconnect.props;
	}
	return NULL;  /* PINGREQ / PINGRESP have none */
}

/* The properties of a decoded packet of `type` (MT_WILL: the will's). */
static inline const struct mqtt_props *mt_props_of(const struct mqtt_packet *pkt, int type)
{
	switch (type) {
	case MT_WILL: return &pkt->u.connect.will.props;
	case MQTT_CONNECT: return &pkt->u.connect.props;
	case MQTT_CONNACK: return &pkt->u.connack.props;
	case MQTT_PUBLISH: return &pkt->u.publish.props;
	case MQTT_PUBACK: case MQTT_PUBREC: case MQTT_PUBREL: case MQTT_PUBCOMP:
		return &pkt->u.ack.props;
	case MQTT_SUBSCRIBE: case MQTT_UNSUBSCRIBE: return &pkt->u.subscribe.props;
	case MQTT_SUBACK: case MQTT_UNSUBACK: return &pkt->u.suback.props;
	case MQTT_DISCONNECT: case MQTT_AUTH: return &pkt->u.disconnect.props;
	}
	return NULL;
}

#endif
