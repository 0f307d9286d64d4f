/*
 * test_mqtt_codec.c - the MQTT codec on valid input: primitives, framing, exact
 * byte vectors from the specifications, encode -> decode round trips of every
 * packet type in every version, the PUBLISH fast path, and truncation at every
 * length (error, never a crash; run under ASan).
 *
 * Malformed and forbidden input is in test_mqtt_malformed.c, properties in
 * test_mqtt_props.c.
 */
#include "mqtt_test.h"

static const uint8_t versions[] = { MQTT_V31, MQTT_V311, MQTT_V5 };

/* ---- primitives ---- */

/* spec 1.5.5 (v5) / 2.2.3 (3.1.1) table of variable byte integer sizes */
static void test_varint_spec_table(void **state)
{
	static const struct {
		uint32_t v;
		uint8_t n;
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
		uint8_t b[4];
		uint32_t v = 0;
		assert_int_equal(mqtt_varint_size(t[i].v), t[i].n);
		assert_int_equal(mqtt_varint_encode(b, t[i].v), t[i].n);
		assert_memory_equal(b, t[i].b, t[i].n);
		assert_int_equal(mqtt_varint_decode(t[i].b, t[i].n, &v), t[i].n);
		assert_int_equal(v, t[i].v);
		/* every strict prefix is incomplete */
		for (size_t k = 0; k < t[i].n; k++)
			assert_int_equal(mqtt_varint_decode(t[i].b, k, &v), 0);
	}
}

/* [MQTT-1.5.5-1] minimum number of bytes; at most four bytes */
static void test_varint_malformed(void **state)
{
	uint32_t v;
	assert_int_equal(mqtt_varint_decode((const uint8_t *)"\x80\x00", 2, &v), -1);
	assert_int_equal(mqtt_varint_decode((const uint8_t *)"\xFF\x80\x00", 3, &v), -1);
	assert_int_equal(mqtt_varint_decode((const uint8_t *)"\x80\x80\x80\x00", 4, &v), -1);
	assert_int_equal(mqtt_varint_decode((const uint8_t *)"\xFF\xFF\xFF\xFF\x7F", 5, &v), -1);
	assert_int_equal(mqtt_varint_decode((const uint8_t *)"\x80\x80\x80\x80", 4, &v), -1);
}

/* [MQTT-1.5.4-1] [MQTT-1.5.4-2] and RFC 3629 well-formedness */
static void test_utf8(void **state)
{
	static const struct {
		const char *s;
		size_t n;
		bool ok;
	} t[] = {
		{ "", 0, true },
		{ "a/b", 3, true },
		{ "A\xF0\xAA\x9B\x94", 5, true },          /* spec 1.5.4 example U+2A6D4 */
		{ "\xC2\x80", 2, true },                   /* U+0080 */
		{ "\xDF\xBF", 2, true },                   /* U+07FF */
		{ "\xE0\xA0\x80", 3, true },               /* U+0800 */
		{ "\xED\x9F\xBF", 3, true },               /* U+D7FF */
		{ "\xEE\x80\x80", 3, true },               /* U+E000 */
		{ "\xEF\xBF\xBF", 3, true },               /* U+FFFF (non-character: SHOULD NOT) */
		{ "\xEF\xBB\xBF", 3, true },               /* U+FEFF [MQTT-1.5.4-3] kept */
		{ "\x01\x1F\x7F", 3, true },               /* controls: SHOULD NOT only */
		{ "\xF4\x8F\xBF\xBF", 4, true },           /* U+10FFFF */
		{ "\x00", 1, false },                      /* U+0000 [MQTT-1.5.4-2] */
		{ "a\x00" "b", 3, false },
		{ "\xC0\x80", 2, false },                  /* overlong U+0000 */
		{ "\xC1\xBF", 2, false },                  /* overlong */
		{ "\xE0\x9F\xBF", 3, false },              /* overlong */
		{ "\xF0\x8F\xBF\xBF", 4, false },          /* overlong */
		{ "\xED\xA0\x80", 3, false },              /* U+D800 [MQTT-1.5.4-1] */
		{ "\xED\xBF\xBF", 3, false },              /* U+DFFF */
		{ "\xED\xA0\xBD\xED\xB2\xA9", 6, false },  /* CESU-8 surrogate pair */
		{ "\xF4\x90\x80\x80", 4, false },          /* > U+10FFFF */
		{ "\xF5\x80\x80\x80", 4, false },
		{ "\xFF", 1, false },
		{ "\x80", 1, false },                      /* lone continuation */
		{ "\xC2", 1, false },                      /* truncated */
		{ "\xE2\x82", 2, false },
		{ "\xF0\x9F\x98", 3, false },
		{ "\xE2\x28\xA1", 3, false },              /* bad continuation */
		{ "\xF0\x9F\x98\x28", 4, false },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (mqtt_utf8_valid((const uint8_t *)t[i].s, t[i].n) != t[i].ok)
			fail_msg("utf8 case %zu", i);
}

static void test_type_names(void **state)
{
	assert_string_equal(mqtt_type_name(MQTT_CONNECT), "CONNECT");
	assert_string_equal(mqtt_type_name(MQTT_AUTH), "AUTH");
	assert_string_equal(mqtt_type_name(0), "RESERVED");
	assert_string_equal(mqtt_type_name(16), "UNKNOWN");
	assert_string_equal(mqtt_type_name(-1), "UNKNOWN");
}

/* ---- framing ---- */

static void test_frame(void **state)
{
	size_t hl = 0;
	uint32_t rl = 0;

	assert_int_equal(mqtt_frame((const uint8_t *)"", 0, 0, &hl, &rl), HQ_EAGAIN);
	assert_int_equal(mqtt_frame((const uint8_t *)"\x30", 1, 0, &hl, &rl), HQ_EAGAIN);
	assert_int_equal(mqtt_frame((const uint8_t *)"\x30\x80", 2, 0, &hl, &rl), HQ_EAGAIN);
	assert_int_equal(mqtt_frame((const uint8_t *)"\xC0\x00", 2, 0, &hl, &rl), HQ_OK);
	assert_int_equal(hl, 2);
	assert_int_equal(rl, 0);
	assert_int_equal(mqtt_frame((const uint8_t *)"\x30\xFF\xFF\xFF\x7F", 5, 0, &hl, &rl), HQ_OK);
	assert_int_equal(hl, 5);
	assert_int_equal(rl, 268435455);
	/* a fifth length byte */
	assert_int_equal(mqtt_frame((const uint8_t *)"\x30\xFF\xFF\xFF\xFF\x01", 6, 0, &hl, &rl),
			 HQ_EMALFORMED);
	/* [MQTT-1.5.5-1]: 0x80 0x00 is a non-minimal 0 */
	assert_int_equal(mqtt_frame((const uint8_t *)"\x30\x80\x00", 3, 0, &hl, &rl), HQ_EMALFORMED);
	/* max size covers the fixed header too */
	assert_int_equal(mqtt_frame((const uint8_t *)"\x30\x7F", 2, 129, &hl, &rl), HQ_OK);
	assert_int_equal(mqtt_frame((const uint8_t *)"\x30\x7F", 2, 128, &hl, &rl), HQ_ETOOLARGE);
	assert_int_equal(mqtt_frame((const uint8_t *)"\x30\x80\x01", 3, 130, &hl, &rl), HQ_ETOOLARGE);
	assert_int_equal(mqtt_frame((const uint8_t *)"\x30\x80\x01", 3, 131, &hl, &rl), HQ_OK);
}

/* ---- byte vectors from the specifications ---- */

static void expect_bytes(const struct buf *b, const uint8_t *want, size_t n)
{
	if (buf_avail(b) != n || memcmp(buf_head(b), want, n) != 0) {
		char hex[1024] = "";
		for (size_t i = 0; i < buf_avail(b) && i < 300; i++)
			snprintf(hex + strlen(hex), sizeof(hex) - strlen(hex), "%02x ",
				 buf_head(b)[i]);
		fail_msg("encoded %zu bytes: %s", buf_avail(b), hex);
	}
}

/* 3.1.1 figure 3.6 (variable header: MQTT, level 4, flags 0xCE, keep alive 10) */
static void test_vector_connect_v311(void **state)
{
	struct mqtt_packet p = { .type = MQTT_CONNECT };
	struct buf b = { 0 };
	struct mqtt_packet d;
	struct mqtt_connect *c = &p.u.connect;

	c->clean_start = true;
	c->keepalive = 10;
	c->client_id = S("c");
	c->has_will = true;
	c->will.qos = 1;
	c->will.topic = S("w");
	c->will.payload = (const uint8_t *)"x";
	c->will.payload_len = 1;
	c->has_username = true;
	c->username = S("u");
	c->has_password = true;
	c->password = S("p");
	assert_int_equal(mqtt_encode(&b, MQTT_V311, &p), HQ_OK);
	static const uint8_t want[] = {
		0x10, 0x19, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0xCE, 0x00, 0x0A,
		0x00, 0x01, 'c', 0x00, 0x01, 'w', 0x00, 0x01, 'x',
		0x00, 0x01, 'u', 0x00, 0x01, 'p',
	};
	expect_bytes(&b, want, sizeof(want));
	assert_int_equal(mqtt_decode(b.data, b.len, 0, &d, NULL), HQ_OK);
	assert_int_equal(d.u.connect.version, MQTT_V311);
	assert_int_equal(d.u.connect.will.qos, 1);
	assert_true(d.u.connect.has_password && d.u.connect.has_username && d.u.connect.has_will);
	buf_free(&b);
}

/* 5.0 3.1.2.11 figure: MQTT, level 5, flags 0xC2, keep alive 10, session expiry 10 */
static void test_vector_connect_v5(void **state)
{
	struct mqtt_packet p = { .type = MQTT_CONNECT };
	struct buf b = { 0 };
	struct mqtt_connect *c = &p.u.connect;

	c->clean_start = true;
	c->keepalive = 10;
	c->props.present = MQTT_PROP_BIT(MQTT_PROP_SESSION_EXPIRY);
	c->props.session_expiry = 10;
	c->client_id = S("");
	c->has_username = true;
	c->username = S("u");
	c->has_password = true;
	c->password = S("p");
	assert_int_equal(mqtt_encode(&b, MQTT_V5, &p), HQ_OK);
	static const uint8_t want[] = {
		0x10, 0x18, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0xC2, 0x00, 0x0A,
		0x05, 0x11, 0x00, 0x00, 0x00, 0x0A,
		0x00, 0x00, 0x00, 0x01, 'u', 0x00, 0x01, 'p',
	};
	expect_bytes(&b, want, sizeof(want));
	buf_free(&b);
}

/* MQTT 3.1: "MQIsdp", level 3 */
static void test_vector_connect_v31(void **state)
{
	struct mqtt_packet p = { .type = MQTT_CONNECT };
	struct buf b = { 0 };
	struct mqtt_packet d;

	p.u.connect.clean_start = true;
	p.u.connect.keepalive = 60;
	p.u.connect.client_id = S("id");
	assert_int_equal(mqtt_encode(&b, MQTT_V31, &p), HQ_OK);
	static const uint8_t want[] = {
		0x10, 0x10, 0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', 0x03, 0x02, 0x00, 0x3C,
		0x00, 0x02, 'i', 'd',
	};
	expect_bytes(&b, want, sizeof(want));
	assert_int_equal(mqtt_decode(b.data, b.len, 0, &d, NULL), HQ_OK);
	assert_int_equal(d.u.connect.version, MQTT_V31);
	assert_str_eq(d.u.connect.proto_name, S("MQIsdp"));
	buf_free(&b);
}

/* 3.1.1 figure 3.11: topic "a/b", packet id 10; spec 1.5.4 UTF-8 example */
static void test_vector_publish(void **state)
{
	struct mqtt_packet p = { .type = MQTT_PUBLISH };
	struct mqtt_packet d;
	struct buf b = { 0 };

	p.u.publish.topic = S("a/b");
	p.u.publish.qos = 1;
	p.u.publish.packet_id = 10;
	p.u.publish.payload = (const uint8_t *)"hi";
	p.u.publish.payload_len = 2;
	assert_int_equal(mqtt_encode(&b, MQTT_V311, &p), HQ_OK);
	static const uint8_t want[] = { 0x32, 0x09, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x0A, 'h', 'i' };
	expect_bytes(&b, want, sizeof(want));

	/* 0x00 0x05 0x41 0xF0 0xAA 0x9B 0x94 is "A" U+2A6D4 */
	static const uint8_t utf[] = { 0x30, 0x07, 0x00, 0x05, 0x41, 0xF0, 0xAA, 0x9B, 0x94 };
	assert_int_equal(mqtt_decode(utf, sizeof(utf), MQTT_V311, &d, NULL), HQ_OK);
	assert_int_equal(d.u.publish.topic.len, 5);
	assert_int_equal(d.u.publish.payload_len, 0);
	buf_free(&b);
}

/* 3.1.1 figures 3.21/3.22 and 3.26: SUBSCRIBE a/b QoS 1, c/d QoS 2; SUBACK */
static void test_vector_subscribe(void **state)
{
	struct buf list = { 0 }, b = { 0 };
	struct mqtt_packet p = { .type = MQTT_SUBSCRIBE };

	mqtt_sub_append(&list, "a/b", 1);
	mqtt_sub_append(&list, "c/d", 2);
	p.u.subscribe.packet_id = 10;
	p.u.subscribe.list = list.data;
	p.u.subscribe.list_len = (uint32_t)list.len;
	p.u.subscribe.count = 2;
	assert_int_equal(mqtt_encode(&b, MQTT_V311, &p), HQ_OK);
	static const uint8_t want[] = {
		0x82, 0x0E, 0x00, 0x0A, 0x00, 0x03, 'a', '/', 'b', 0x01,
		0x00, 0x03, 'c', '/', 'd', 0x02,
	};
	expect_bytes(&b, want, sizeof(want));

	buf_reset(&b);
	struct mqtt_packet s = { .type = MQTT_SUBACK };
	s.u.suback.packet_id = 10;
	s.u.suback.codes = (const uint8_t *)"\x00\x01\x02\x80";
	s.u.suback.count = 4;
	assert_int_equal(mqtt_encode(&b, MQTT_V311, &s), HQ_OK);
	static const uint8_t want2[] = { 0x90, 0x06, 0x00, 0x0A, 0x00, 0x01, 0x02, 0x80 };
	expect_bytes(&b, want2, sizeof(want2));
	buf_free(&b);
	buf_free(&list);
}

/* Fixed two-byte packets (3.1.1 sections 3.2, 3.4, 3.6, 3.12-3.14) and the v5
 * short forms (3.4.2.1, 3.14.2.1). */
static void test_vector_small(void **state)
{
	struct buf b = { 0 };
	struct mqtt_packet p;

#define ENC(ver, ...)                                                      \
	do {                                                               \
		static const uint8_t w_[] = { __VA_ARGS__ };               \
		buf_reset(&b);                                             \
		assert_int_equal(mqtt_encode(&b, (ver), &p), HQ_OK);       \
		expect_bytes(&b, w_, sizeof(w_));                          \
	} while (0)

	memset(&p, 0, sizeof(p));
	p.type = MQTT_CONNACK;
	p.u.connack.session_present = true;
	ENC(MQTT_V311, 0x20, 0x02, 0x01, 0x00);
	ENC(MQTT_V5, 0x20, 0x03, 0x01, 0x00, 0x00);
	p.u.connack.session_present = false;
	p.u.connack.reason = MQTT_V3_BAD_VERSION;
	ENC(MQTT_V31, 0x20, 0x02, 0x00, 0x01);

	memset(&p, 0, sizeof(p));
	p.type = MQTT_PUBACK;
	p.u.ack.packet_id = 42;
	ENC(MQTT_V311, 0x40, 0x02, 0x00, 0x2A);
	ENC(MQTT_V5, 0x40, 0x02, 0x00, 0x2A);
	p.u.ack.reason = MQTT_RC_NO_MATCHING_SUBSCRIBERS;
	ENC(MQTT_V5, 0x40, 0x03, 0x00, 0x2A, 0x10);
	p.type = MQTT_PUBREL;
	p.u.ack.reason = 0;
	ENC(MQTT_V311, 0x62, 0x02, 0x00, 0x2A);

	memset(&p, 0, sizeof(p));
	p.type = MQTT_PINGREQ;
	ENC(MQTT_V311, 0xC0, 0x00);
	p.type = MQTT_PINGRESP;
	ENC(MQTT_V311, 0xD0, 0x00);
	p.type = MQTT_DISCONNECT;
	ENC(MQTT_V311, 0xE0, 0x00);
	ENC(MQTT_V5, 0xE0, 0x00);
	p.u.disconnect.reason = MQTT_RC_DISCONNECT_WITH_WILL;
	ENC(MQTT_V5, 0xE0, 0x01, 0x04);
	p.u.disconnect.reason = MQTT_RC_SESSION_TAKEN_OVER;
	p.u.disconnect.props.present = MQTT_PROP_BIT(MQTT_PROP_REASON_STRING);
	p.u.disconnect.props.reason_string = S("x");
	ENC(MQTT_V5, 0xE0, 0x06, 0x8E, 0x04, 0x1F, 0x00, 0x01, 'x');
	p.type = MQTT_UNSUBACK;
	memset(&p.u, 0, sizeof(p.u));
	p.u.suback.packet_id = 7;
	ENC(MQTT_V311, 0xB0, 0x02, 0x00, 0x07);
#undef ENC
	buf_free(&b);
}

/* ---- round trips ---- */

static const char *const ukeys[] = { "k1", "k1", "", "ключ" };
static const char *const uvals[] = { "v1", "v2", "empty key", "значение" };

/* Give props every property allowed in ptype plus four user properties. */
static void full_props(struct mqtt_props *p, int ptype, struct buf *users)
{
	buf_reset(users);
	for (unsigned i = 0; i < 4; i++)
		mqtt_props_user_append(users, ukeys[i], uvals[i]);
	mt_props_fill(p, ptype);
	p->extra = buf_head(users);
	p->extra_len = (uint32_t)buf_avail(users);
}

static void check_props(const struct mqtt_props *want, const struct mqtt_props *got, uint8_t ver)
{
	if (ver != MQTT_V5) {
		assert_int_equal(got->present, 0);
		assert_int_equal(got->raw_len, 0);
		return;
	}
	mt_props_eq(want, got);
	mt_users_eq(got, ukeys, uvals, want->extra_len ? 4 : 0);
}

static void test_rt_connect(void **state)
{
	struct buf b = { 0 }, u1 = { 0 }, u2 = { 0 };

	for (size_t vi = 0; vi < sizeof(versions); vi++)
		for (unsigned variant = 0; variant < 16; variant++) {
			uint8_t ver = versions[vi];
			struct mqtt_packet p = { .type = MQTT_CONNECT }, d;
			struct mqtt_connect *c = &p.u.connect;
			c->clean_start = variant & 1;
			c->keepalive = (uint16_t)(variant * 1000);
			c->client_id = variant & 2 ? S("client-ü") : S("");
			c->has_will = variant & 4;
			if (c->has_will) {
				c->will.qos = variant % 3;
				c->will.retain = variant & 8;
				c->will.topic = S("will/topic");
				c->will.payload = (const uint8_t *)"\x00\xffgone";
				c->will.payload_len = 6;
			}
			c->has_username = variant & 8;
			c->username = S("user");
			/* 3.x needs a user name with a password [MQTT-3.1.2-22] */
			c->has_password = ver == MQTT_V5 ? (variant & 2) : c->has_username;
			c->password = S("\x00pw\xff");
			if (ver == MQTT_V5 && (variant & 1)) {
				full_props(&c->props, MQTT_CONNECT, &u1);
				if (c->has_will)
					full_props(&c->will.props, MT_WILL, &u2);
			}
			mt_roundtrip(&b, ver, &p, &d);
			struct mqtt_connect *e = &d.u.connect;
			assert_int_equal(e->version, ver);
			assert_str_eq(e->proto_name, ver == MQTT_V31 ? S("MQIsdp") : S("MQTT"));
			assert_int_equal(e->clean_start, c->clean_start);
			assert_int_equal(e->keepalive, c->keepalive);
			assert_str_eq(e->client_id, c->client_id);
			assert_int_equal(e->has_will, c->has_will);
			assert_int_equal(e->has_username, c->has_username);
			assert_int_equal(e->has_password, c->has_password);
			if (c->has_will) {
				assert_int_equal(e->will.qos, c->will.qos);
				assert_int_equal(e->will.retain, c->will.retain);
				assert_str_eq(e->will.topic, c->will.topic);
				assert_int_equal(e->will.payload_len, 6);
				assert_memory_equal(e->will.payload, c->will.payload, 6);
				check_props(&c->will.props, &e->will.props, ver);
			}
			if (c->has_username)
				assert_str_eq(e->username, c->username);
			if (c->has_password)
				assert_str_eq(e->password, c->password);
			check_props(&c->props, &e->props, ver);
		}
	buf_free(&b);
	buf_free(&u1);
	buf_free(&u2);
}

static void test_rt_connack(void **state)
{
	struct buf b = { 0 }, u = { 0 };

	for (size_t vi = 0; vi < sizeof(versions); vi++)
		for (unsigned variant = 0; variant < 4; variant++) {
			uint8_t ver = versions[vi];
			struct mqtt_packet p = { .type = MQTT_CONNACK }, d;
			/* 3.1 has no session present flag */
			p.u.connack.session_present = ver != MQTT_V31 && (variant & 1);
			p.u.connack.reason = variant & 2 ?
				(ver == MQTT_V5 ? MQTT_RC_BANNED : MQTT_V3_NOT_AUTHORIZED) : 0;
			if (ver == MQTT_V5 && (variant & 1))
				full_props(&p.u.connack.props, MQTT_CONNACK, &u);
			mt_roundtrip(&b, ver, &p, &d);
			assert_int_equal(d.u.connack.session_present, p.u.connack.session_present);
			assert_int_equal(d.u.connack.reason, p.u.connack.reason);
			check_props(&p.u.connack.props, &d.u.connack.props, ver);
		}
	buf_free(&b);
	buf_free(&u);
}

static void test_rt_publish(void **state)
{
	struct buf b = { 0 }, u = { 0 };
	static uint8_t big[70000];

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)i;
	for (size_t vi = 0; vi < sizeof(versions); vi++)
		for (unsigned variant = 0; variant < 24; variant++) {
			uint8_t ver = versions[vi];
			struct mqtt_packet p = { .type = MQTT_PUBLISH }, d;
			struct mqtt_publish *pb = &p.u.publish;
			pb->qos = variant % 3;
			pb->dup = pb->qos && (variant & 4);
			pb->retain = variant & 8;
			pb->topic = S("sport/tennis/player1/ranking");
			pb->packet_id = pb->qos ? (uint16_t)(65535 - variant) : 0;
			pb->payload = big;
			pb->payload_len = variant & 16 ? sizeof(big) : variant;
			if (ver == MQTT_V5 && (variant & 1)) {
				full_props(&pb->props, MQTT_PUBLISH, &u);
				/* several subscription identifiers (server -> client) */
				pb->props.sub_ids[1] = 1;
				pb->props.sub_ids[2] = 128;
				pb->props.n_sub_ids = 3;
				if (variant & 8)
					pb->topic = S("");  /* with a topic alias */
			}
			mt_roundtrip(&b, ver, &p, &d);
			struct mqtt_publish *e = &d.u.publish;
			assert_int_equal(e->qos, pb->qos);
			assert_int_equal(e->dup, pb->dup);
			assert_int_equal(e->retain, pb->retain);
			assert_str_eq(e->topic, pb->topic);
			assert_int_equal(e->packet_id, pb->packet_id);
			assert_int_equal(e->payload_len, pb->payload_len);
			if (pb->payload_len)
				assert_memory_equal(e->payload, big, pb->payload_len);
			check_props(&pb->props, &e->props, ver);
			assert_int_equal(d.flags, (pb->dup ? 8 : 0) | pb->qos << 1 | (pb->retain ? 1 : 0));
		}
	buf_free(&b);
	buf_free(&u);
}

static void test_rt_acks(void **state)
{
	static const uint8_t types[] = { MQTT_PUBACK, MQTT_PUBREC, MQTT_PUBREL, MQTT_PUBCOMP };
	struct buf b = { 0 }, u = { 0 };

	for (size_t ti = 0; ti < sizeof(types); ti++)
		for (size_t vi = 0; vi < sizeof(versions); vi++)
			for (unsigned variant = 0; variant < 4; variant++) {
				uint8_t ver = versions[vi];
				struct mqtt_packet p = { .type = types[ti] }, d;
				p.u.ack.packet_id = (uint16_t)(1 + variant * 20000);
				if (ver == MQTT_V5) {
					bool pubrel = types[ti] >= MQTT_PUBREL;
					if (variant & 1)
						p.u.ack.reason = pubrel ? 0x92 : 0x97;
					if (variant & 2)
						full_props(&p.u.ack.props, types[ti], &u);
				}
				mt_roundtrip(&b, ver, &p, &d);
				assert_int_equal(d.u.ack.packet_id, p.u.ack.packet_id);
				assert_int_equal(d.u.ack.reason, p.u.ack.reason);
				check_props(&p.u.ack.props, &d.u.ack.props, ver);
				/* minimal encodings: 2 bytes when nothing else to say */
				if (ver != MQTT_V5 || variant == 0)
					assert_int_equal(b.len, 4);
			}
	buf_free(&b);
	buf_free(&u);
}

static void test_rt_subscribe(void **state)
{
	struct buf b = { 0 }, u = { 0 }, list = { 0 };
	static const char *const filters[] = { "a/+/c", "#", "$share/g/x/#", "ü/€" };

	for (size_t vi = 0; vi < sizeof(versions); vi++)
		for (unsigned unsub = 0; unsub < 2; unsub++) {
			uint8_t ver = versions[vi];
			struct mqtt_packet p = { .type = unsub ? MQTT_UNSUBSCRIBE : MQTT_SUBSCRIBE }, d;
			uint8_t opts[4];
			buf_reset(&list);
			for (unsigned i = 0; i < 4; i++) {
				opts[i] = (uint8_t)(i % 3);
				if (ver == MQTT_V5)
					opts[i] |= (uint8_t)((i & 1 ? MQTT_SUBOPT_NO_LOCAL : 0) |
							     (i & 2 ? MQTT_SUBOPT_RAP : 0) |
							     (i % 3) << MQTT_SUBOPT_RH_SHIFT);
				if (unsub)
					mqtt_unsub_append(&list, filters[i]);
				else
					mqtt_sub_append(&list, filters[i], opts[i]);
			}
			p.u.subscribe.packet_id = 0x1234;
			p.u.subscribe.list = list.data;
			p.u.subscribe.list_len = (uint32_t)list.len;
			p.u.subscribe.count = 4;
			if (ver == MQTT_V5) {
				full_props(&p.u.subscribe.props, p.type, &u);
				if (unsub)  /* UNSUBSCRIBE has only user properties */
					p.u.subscribe.props.present = 0;
			}
			mt_roundtrip(&b, ver, &p, &d);
			struct mqtt_subscribe *s = &d.u.subscribe;
			assert_int_equal(s->packet_id, 0x1234);
			assert_int_equal(s->count, 4);
			check_props(&p.u.subscribe.props, &s->props, ver);
			uint32_t cur = 0;
			struct mqtt_str f;
			uint8_t o;
			for (unsigned i = 0; i < 4; i++) {
				if (unsub) {
					assert_true(mqtt_unsub_next(s, &cur, &f));
				} else {
					assert_true(mqtt_sub_next(s, &cur, &f, &o));
					assert_int_equal(o, opts[i]);
				}
				assert_int_equal(f.len, strlen(filters[i]));
				assert_memory_equal(f.p, filters[i], f.len);
			}
			assert_false(unsub ? mqtt_unsub_next(s, &cur, &f) : mqtt_sub_next(s, &cur, &f, &o));
		}
	buf_free(&b);
	buf_free(&u);
	buf_free(&list);
}

static void test_rt_suback(void **state)
{
	struct buf b = { 0 }, u = { 0 };

	for (size_t vi = 0; vi < sizeof(versions); vi++)
		for (unsigned unsub = 0; unsub < 2; unsub++) {
			uint8_t ver = versions[vi];
			struct mqtt_packet p = { .type = unsub ? MQTT_UNSUBACK : MQTT_SUBACK }, d;
			p.u.suback.packet_id = 77;
			if (ver == MQTT_V5) {
				p.u.suback.codes = unsub ? (const uint8_t *)"\x00\x11\x87"
							 : (const uint8_t *)"\x02\x80\xA2";
				p.u.suback.count = 3;
				full_props(&p.u.suback.props, p.type, &u);
			} else if (!unsub) {
				p.u.suback.codes = (const uint8_t *)"\x00\x01\x02\x80";
				p.u.suback.count = 4;
			}
			mt_roundtrip(&b, ver, &p, &d);
			assert_int_equal(d.u.suback.packet_id, 77);
			assert_int_equal(d.u.suback.count, p.u.suback.count);
			if (p.u.suback.count)
				assert_memory_equal(d.u.suback.codes, p.u.suback.codes, p.u.suback.count);
			check_props(&p.u.suback.props, &d.u.suback.props, ver);
		}
	buf_free(&b);
	buf_free(&u);
}

static void test_rt_ping_disconnect_auth(void **state)
{
	struct buf b = { 0 }, u = { 0 };
	static const uint8_t types[] = { MQTT_PINGREQ, MQTT_PINGRESP, MQTT_DISCONNECT, MQTT_AUTH };

	for (size_t ti = 0; ti < sizeof(types); ti++)
		for (size_t vi = 0; vi < sizeof(versions); vi++)
			for (unsigned variant = 0; variant < 4; variant++) {
				uint8_t ver = versions[vi];
				uint8_t t = types[ti];
				if (t == MQTT_AUTH && ver != MQTT_V5)
					continue;
				struct mqtt_packet p = { .type = t }, d;
				if (ver == MQTT_V5 && t >= MQTT_DISCONNECT) {
					if (variant & 1)
						p.u.disconnect.reason = t == MQTT_AUTH ? 0x18 : 0x8E;
					if (variant & 2)
						full_props(&p.u.disconnect.props, t, &u);
				}
				mt_roundtrip(&b, ver, &p, &d);
				if (t >= MQTT_DISCONNECT) {
					assert_int_equal(d.u.disconnect.reason, p.u.disconnect.reason);
					check_props(&p.u.disconnect.props, &d.u.disconnect.props, ver);
				}
			}
	buf_free(&b);
	buf_free(&u);
}

/* encoder refusals */
static void test_encode_einval(void **state)
{
	struct buf b = { 0 };
	struct mqtt_packet p = { .type = MQTT_PUBLISH };

	p.u.publish.topic = S("t");
	p.u.publish.qos = 3;
	assert_int_equal(mqtt_encode(&b, MQTT_V311, &p), HQ_EINVAL);
	p.u.publish.qos = 0;
	assert_int_equal(mqtt_encode(&b, 6, &p), HQ_EINVAL);
	p.type = MQTT_AUTH;
	assert_int_equal(mqtt_encode(&b, MQTT_V311, &p), HQ_EINVAL);
	p.type = 0;
	assert_int_equal(mqtt_encode(&b, MQTT_V5, &p), HQ_EINVAL);
	memset(&p, 0, sizeof(p));
	p.type = MQTT_SUBSCRIBE;  /* no entries [MQTT-3.8.3-3] */
	p.u.subscribe.packet_id = 1;
	assert_int_equal(mqtt_encode(&b, MQTT_V311, &p), HQ_EINVAL);
	memset(&p, 0, sizeof(p));
	p.type = MQTT_PUBLISH;  /* more than 256 MiB */
	p.u.publish.topic = S("t");
	p.u.publish.payload = (const uint8_t *)"";
	p.u.publish.payload_len = 268435455;
	assert_int_equal(mqtt_encode(&b, MQTT_V311, &p), HQ_EINVAL);
	p.u.publish.payload_len = 0;
	p.u.publish.props.present = MQTT_PROP_BIT(MQTT_PROP_SUBSCRIPTION_ID);
	p.u.publish.props.sub_ids[0] = 268435456;
	p.u.publish.props.n_sub_ids = 1;
	assert_int_equal(mqtt_encode(&b, MQTT_V5, &p), HQ_EINVAL);
	/* nothing half-written */
	assert_int_equal(b.len, 0);
	buf_free(&b);
}

/* ---- PUBLISH fast path and forwardable properties ---- */

static void test_pub_out(void **state)
{
	struct buf b = { 0 }, ref = { 0 }, fwd = { 0 }, u = { 0 };
	static const uint32_t ids[] = { 5, 300, 268435455 };

	/* a received v5 PUBLISH with everything */
	struct mqtt_packet in = { .type = MQTT_PUBLISH }, d;
	in.u.publish.topic = S("in/topic");
	in.u.publish.qos = 2;
	in.u.publish.packet_id = 3;
	full_props(&in.u.publish.props, MQTT_PUBLISH, &u);
	mt_roundtrip(&ref, MQTT_V5, &in, &d);
	mqtt_props_forwardable(&d.u.publish.props, &fwd);
	/* exactly 01, 03, 08, 09 and the four user properties, in order */
	{
		struct mqtt_props want = { 0 };
		mt_prop_set(&want, 0x01);
		mt_prop_set(&want, 0x03);
		mt_prop_set(&want, 0x08);
		mt_prop_set(&want, 0x09);
		struct mqtt_packet p = { .type = MQTT_PUBLISH }, e;
		p.u.publish.topic = S("t");
		p.u.publish.props.extra = fwd.data;
		p.u.publish.props.extra_len = (uint32_t)fwd.len;
		mt_roundtrip(&b, MQTT_V5, &p, &e);
		mt_props_eq(&want, &e.u.publish.props);
		mt_users_eq(&e.u.publish.props, ukeys, uvals, 4);
	}

	for (size_t vi = 0; vi < sizeof(versions); vi++)
		for (unsigned variant = 0; variant < 16; variant++) {
			uint8_t ver = versions[vi];
			struct mqtt_pub_out o = { 0 };
			o.topic = (const uint8_t *)"out/t";
			o.topic_len = 5;
			o.qos = variant % 3;
			o.dup = o.qos && (variant & 4);
			o.retain = variant & 8;
			o.packet_id = o.qos ? 999 : 0;
			o.payload = (const uint8_t *)"payload";
			o.payload_len = 7;
			if (variant & 1) {
				o.topic_alias = 4;
				o.has_expiry = true;
				o.expiry = 3600;
				o.sub_ids = ids;
				o.n_sub_ids = 3;
				o.props = fwd.data;
				o.props_len = (uint32_t)fwd.len;
				if (variant & 2)
					o.topic_len = 0;  /* established alias */
			}
			if (ver != MQTT_V5)
				o.topic_len = 5;
			buf_reset(&b);
			/* a partially consumed buffer must not confuse the fast path */
			buf_append(&b, "zz", 2);
			buf_consume(&b, 1);
			size_t sz = mqtt_pub_out_size(ver, &o);
			mqtt_pub_out_encode(&b, ver, &o);
			assert_int_equal(buf_avail(&b), 1 + sz);
			const char *why = NULL;
			int rc = mqtt_decode(buf_head(&b) + 1, sz, ver, &d, &why);
			if (rc)
				fail_msg("pub_out v%d variant %u: %s", ver, variant, why);
			struct mqtt_publish *e = &d.u.publish;
			assert_int_equal(e->qos, o.qos);
			assert_int_equal(e->dup, o.dup);
			assert_int_equal(e->retain, o.retain);
			assert_int_equal(e->packet_id, o.packet_id);
			assert_int_equal(e->topic.len, o.topic_len);
			assert_int_equal(e->payload_len, 7);
			assert_memory_equal(e->payload, "payload", 7);
			if (ver == MQTT_V5 && (variant & 1)) {
				assert_int_equal(e->props.topic_alias, 4);
				assert_int_equal(e->props.message_expiry, 3600);
				assert_int_equal(e->props.n_sub_ids, 3);
				assert_memory_equal(e->props.sub_ids, ids, sizeof(ids));
				assert_str_eq(e->props.content_type, S("text/plain"));
				mt_users_eq(&e->props, ukeys, uvals, 4);
			} else {
				assert_int_equal(e->props.present, 0);
			}

			/* same bytes as the general encoder */
			struct mqtt_packet g = { .type = MQTT_PUBLISH };
			g.u.publish.qos = o.qos;
			g.u.publish.dup = o.dup;
			g.u.publish.retain = o.retain;
			g.u.publish.packet_id = o.packet_id;
			g.u.publish.topic = (struct mqtt_str){ o.topic, o.topic_len };
			g.u.publish.payload = o.payload;
			g.u.publish.payload_len = o.payload_len;
			if (variant & 1) {
				struct mqtt_props *gp = &g.u.publish.props;
				gp->present = MQTT_PROP_BIT(MQTT_PROP_TOPIC_ALIAS) |
					      MQTT_PROP_BIT(MQTT_PROP_MESSAGE_EXPIRY) |
					      MQTT_PROP_BIT(MQTT_PROP_SUBSCRIPTION_ID);
				gp->topic_alias = 4;
				gp->message_expiry = 3600;
				memcpy(gp->sub_ids, ids, sizeof(ids));
				gp->n_sub_ids = 3;
				gp->extra = fwd.data;
				gp->extra_len = (uint32_t)fwd.len;
			}
			buf_reset(&ref);
			assert_int_equal(mqtt_encode(&ref, ver, &g), HQ_OK);
			assert_int_equal(ref.len, sz);
			assert_memory_equal(ref.data, buf_head(&b) + 1, sz);
		}
	buf_free(&b);
	buf_free(&ref);
	buf_free(&fwd);
	buf_free(&u);
}

/* ---- truncation ---- */

/* Cut a valid packet at every length: always an error, never a crash. Then
 * also re-frame every prefix of the body with a matching remaining length
 * (exercises each field's own bounds check); those must not crash, and for
 * CONNECT, whose last field is length-prefixed, must all fail. */
static void truncate_all(const struct buf *pk, uint8_t ver, bool body_prefix_fails)
{
	struct mqtt_packet d;
	const char *why;
	size_t hl;
	uint32_t rl;

	for (size_t n = 0; n < pk->len; n++) {
		uint8_t *cut = malloc(n ? n : 1);
		memcpy(cut, pk->data, n);
		why = NULL;
		int rc = mqtt_decode(cut, n, ver, &d, &why);
		if (rc == HQ_OK || why == NULL)
			fail_msg("%s v%d cut at %zu/%zu decoded", mqtt_type_name(pk->data[0] >> 4),
				 ver, n, pk->len);
		free(cut);
	}
	assert_int_equal(mqtt_frame(pk->data, pk->len, 0, &hl, &rl), HQ_OK);
	for (uint32_t k = 0; k < rl; k++) {
		struct buf b = { 0 };
		mt_frame(&b, pk->data[0], pk->data + hl, k);
		int rc = mt_decode(b.data, b.len, ver, &d, &why);
		if (body_prefix_fails && rc == HQ_OK)
			fail_msg("body prefix %u/%u decoded", k, rl);
		buf_free(&b);
	}
}

static void test_truncation(void **state)
{
	struct buf b = { 0 }, u1 = { 0 }, u2 = { 0 }, list = { 0 };

	for (size_t vi = 0; vi < sizeof(versions); vi++) {
		uint8_t ver = versions[vi];
		struct mqtt_packet p = { .type = MQTT_CONNECT };
		struct mqtt_connect *c = &p.u.connect;
		c->client_id = S("cid");
		c->has_will = true;
		c->will.qos = 2;
		c->will.topic = S("w/t");
		c->will.payload = (const uint8_t *)"bye";
		c->will.payload_len = 3;
		c->has_username = c->has_password = true;
		c->username = S("user");
		c->password = S("pw");
		if (ver == MQTT_V5) {
			full_props(&c->props, MQTT_CONNECT, &u1);
			full_props(&c->will.props, MT_WILL, &u2);
		}
		buf_reset(&b);
		assert_int_equal(mqtt_encode(&b, ver, &p), HQ_OK);
		truncate_all(&b, ver, true);

		for (int t = MQTT_CONNACK; t <= MQTT_AUTH; t++) {
			if (t == MQTT_AUTH && ver != MQTT_V5)
				continue;
			struct mqtt_props *pp = mt_base_packet(&p, t, &list);
			if (pp && ver == MQTT_V5)
				full_props(pp, t, &u1);
			if (t == MQTT_PUBLISH) {
				p.u.publish.payload = (const uint8_t *)"data";
				p.u.publish.payload_len = 4;
			}
			if (t == MQTT_UNSUBACK && ver != MQTT_V5)
				p.u.suback.count = 0;
			buf_reset(&b);
			assert_int_equal(mqtt_encode(&b, ver, &p), HQ_OK);
			truncate_all(&b, ver, false);
		}
	}
	buf_free(&b);
	buf_free(&u1);
	buf_free(&u2);
	buf_free(&list);
}

/* Decoded views borrow the input: nothing is copied. */
static void test_zero_copy(void **state)
{
	static const uint8_t pk[] = { 0x30, 0x06, 0x00, 0x01, 't', 'a', 'b', 'c' };
	struct mqtt_packet d;

	assert_int_equal(mqtt_decode(pk, sizeof(pk), MQTT_V311, &d, NULL), HQ_OK);
	assert_ptr_equal(d.u.publish.topic.p, pk + 4);
	assert_ptr_equal(d.u.publish.payload, pk + 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_varint_spec_table),
		cmocka_unit_test(test_varint_malformed),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_type_names),
		cmocka_unit_test(test_frame),
		cmocka_unit_test(test_vector_connect_v311),
		cmocka_unit_test(test_vector_connect_v5),
		cmocka_unit_test(test_vector_connect_v31),
		cmocka_unit_test(test_vector_publish),
		cmocka_unit_test(test_vector_subscribe),
		cmocka_unit_test(test_vector_small),
		cmocka_unit_test(test_rt_connect),
		cmocka_unit_test(test_rt_connack),
		cmocka_unit_test(test_rt_publish),
		cmocka_unit_test(test_rt_acks),
		cmocka_unit_test(test_rt_subscribe),
		cmocka_unit_test(test_rt_suback),
		cmocka_unit_test(test_rt_ping_disconnect_auth),
		cmocka_unit_test(test_encode_einval),
		cmocka_unit_test(test_pub_out),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_zero_copy),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
