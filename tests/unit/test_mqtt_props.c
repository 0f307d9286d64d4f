/*
 * test_mqtt_props.c - MQTT 5 properties (spec 2.2.2): every property in every
 * packet that allows it (round trip), in every packet that does not (encoder
 * HQ_EINVAL, decoder HQ_EMALFORMED), duplicates, value ranges, unknown ids,
 * bad lengths and UTF-8, and the user property walk.
 *
 * Raw properties are injected through `extra`, which the encoder copies
 * verbatim: that is how packets the encoder would refuse are built.
 */
#include "mqtt_test.h"

enum { T_BYTE, T_U16, T_U32, T_VARINT, T_UTF8, T_BIN };

static int prop_type(uint8_t id)
{
	switch (id) {
	case 0x01: case 0x17: case 0x19: case 0x24: case 0x25: case 0x28: case 0x29: case 0x2A:
		return T_BYTE;
	case 0x13: case 0x21: case 0x22: case 0x23:
		return T_U16;
	case 0x02: case 0x11: case 0x18: case 0x27:
		return T_U32;
	case 0x0B:
		return T_VARINT;
	case 0x09: case 0x16:
		return T_BIN;
	default:
		return T_UTF8;
	}
}

/* Append property id with numeric value v (strings: "a/b"). */
static void raw_prop(struct buf *b, uint8_t id, uint32_t v)
{
	uint8_t q[8];
	size_t n = 0;

	q[n++] = id;
	switch (prop_type(id)) {
	case T_BYTE: q[n++] = (uint8_t)v; break;
	case T_U16: q[n++] = (uint8_t)(v >> 8); q[n++] = (uint8_t)v; break;
	case T_U32:
		q[n++] = (uint8_t)(v >> 24); q[n++] = (uint8_t)(v >> 16);
		q[n++] = (uint8_t)(v >> 8); q[n++] = (uint8_t)v;
		break;
	case T_VARINT: n += mqtt_varint_encode(q + n, v); break;
	default: q[n++] = 0; q[n++] = 3; memcpy(q + n, "a/b", 3); n += 3; break;
	}
	buf_append(b, q, n);
}

/* Encode base packet of ptype (v5) with props + extra blob; decode; return rc. */
static int enc_dec(int ptype, uint64_t present, const struct buf *extra, struct mqtt_packet *d,
		   const char **why, struct buf *out, struct buf *list)
{
	struct mqtt_packet p;
	struct mqtt_props *pp = mt_base_packet(&p, ptype, list);

	for (uint8_t id = 1; id < 64; id++)
		if (present & MQTT_PROP_BIT(id))
			mt_prop_set(pp, id);
	if (extra) {
		pp->extra = extra->data;
		pp->extra_len = (uint32_t)extra->len;
	}
	buf_reset(out);
	int rc = mqtt_encode(out, MQTT_V5, &p);
	if (rc != HQ_OK)
		return rc;
	*why = NULL;
	return mqtt_decode(out->data, out->len, MQTT_V5, d, why);
}

static const int ptypes[] = {
	MT_WILL, MQTT_CONNECT, MQTT_CONNACK, MQTT_PUBLISH, MQTT_PUBACK, MQTT_PUBREC,
	MQTT_PUBREL, MQTT_PUBCOMP, MQTT_SUBSCRIBE, MQTT_SUBACK, MQTT_UNSUBSCRIBE,
	MQTT_UNSUBACK, MQTT_DISCONNECT, MQTT_AUTH,
};
#define NPT (sizeof(ptypes) / sizeof(ptypes[0]))

/* Each property alone, in each packet that allows it (spec table 2-4). */
static void test_each_property_allowed(void **state)
{
	struct buf out = { 0 }, list = { 0 };
	struct mqtt_packet d;
	const char *why;
	unsigned n = 0;

	for (size_t i = 0; i < MT_NPROPS; i++)
		for (size_t t = 0; t < NPT; t++) {
			if (!(mt_props[i].mask & MT_P(ptypes[t])))
				continue;
			struct mqtt_props want = { 0 };
			mt_prop_set(&want, mt_props[i].id);
			int rc = enc_dec(ptypes[t], want.present, NULL, &d, &why, &out, &list);
			if (rc != HQ_OK)
				fail_msg("property 0x%02x in %s: %s (%s)", mt_props[i].id,
					 ptypes[t] ? mqtt_type_name(ptypes[t]) : "will",
					 hq_strerror(rc), why);
			mt_props_eq(&want, mt_props_of(&d, ptypes[t]));
			n++;
		}
	assert_int_equal(n, 50);  /* the (property, packet) pairs of table 2-4 */
	buf_free(&out);
	buf_free(&list);
}

/* Each property in each packet that does not allow it: the encoder refuses it,
 * and the decoder treats it as malformed (spec 2.2.2.2: "a Control Packet which
 * contains an Identifier which is not valid for its packet type ... Malformed"). */
static void test_each_property_not_allowed(void **state)
{
	struct buf out = { 0 }, list = { 0 }, extra = { 0 };
	struct mqtt_packet d;
	const char *why;

	for (size_t i = 0; i < MT_NPROPS; i++)
		for (size_t t = 0; t < NPT; t++) {
			uint8_t id = mt_props[i].id;
			if (mt_props[i].mask & MT_P(ptypes[t]))
				continue;
			int rc = enc_dec(ptypes[t], MQTT_PROP_BIT(id), NULL, &d, &why, &out, &list);
			if (rc != HQ_EINVAL)
				fail_msg("encoder took 0x%02x in type %d", id, ptypes[t]);
			buf_reset(&extra);
			raw_prop(&extra, id, 1);
			rc = enc_dec(ptypes[t], 0, &extra, &d, &why, &out, &list);
			if (rc != HQ_EMALFORMED)
				fail_msg("decoder: 0x%02x in type %d gave %d", id, ptypes[t], rc);
			assert_non_null(strstr(why, "not allowed"));
		}
	buf_free(&out);
	buf_free(&list);
	buf_free(&extra);
}

/* "It is a Protocol Error to include X more than once" (every property except
 * User Property, and Subscription Identifier in PUBLISH). */
static void test_duplicates(void **state)
{
	struct buf out = { 0 }, list = { 0 }, extra = { 0 };
	struct mqtt_packet d;
	const char *why;
	char want[64];

	for (size_t i = 0; i < MT_NPROPS; i++)
		for (size_t t = 0; t < NPT; t++) {
			uint8_t id = mt_props[i].id;
			if (!(mt_props[i].mask & MT_P(ptypes[t])))
				continue;
			buf_reset(&extra);
			raw_prop(&extra, id, 1);
			int rc = enc_dec(ptypes[t], MQTT_PROP_BIT(id), &extra, &d, &why, &out, &list);
			if (id == MQTT_PROP_SUBSCRIPTION_ID && ptypes[t] == MQTT_PUBLISH) {
				assert_int_equal(rc, HQ_OK);
				assert_int_equal(d.u.publish.props.n_sub_ids, 2);
				continue;
			}
			if (rc != HQ_EPROTOCOL)
				fail_msg("duplicate 0x%02x in type %d gave %d", id, ptypes[t], rc);
			snprintf(want, sizeof(want), "duplicate property 0x%02X", id);
			if (strstr(why, want) == NULL)
				fail_msg("why '%s' lacks '%s'", why, want);
		}
	/* user properties repeat anywhere, same key included */
	for (size_t t = 0; t < NPT; t++) {
		buf_reset(&extra);
		for (int k = 0; k < 3; k++)
			mqtt_props_user_append(&extra, "k", "v");
		assert_int_equal(enc_dec(ptypes[t], 0, &extra, &d, &why, &out, &list), HQ_OK);
		assert_int_equal(mt_props_of(&d, ptypes[t])->n_user, 3);
	}
	buf_free(&out);
	buf_free(&list);
	buf_free(&extra);
}

/* Out-of-range values are protocol errors: spec 3.1.2.11.x, 3.2.2.3.x, 3.3.2.3.x */
static void test_value_ranges(void **state)
{
	static const struct {
		int ptype;
		uint8_t id;
		uint32_t v;
		int want;
	} t[] = {
		{ MQTT_PUBLISH, 0x01, 2, HQ_EPROTOCOL },       /* payload format 0/1 */
		{ MT_WILL, 0x01, 255, HQ_EPROTOCOL },
		{ MQTT_CONNECT, 0x17, 2, HQ_EPROTOCOL },       /* request problem info */
		{ MQTT_CONNECT, 0x19, 2, HQ_EPROTOCOL },       /* request response info */
		{ MQTT_CONNACK, 0x24, 2, HQ_EPROTOCOL },       /* maximum QoS 0/1 */
		{ MQTT_CONNACK, 0x25, 2, HQ_EPROTOCOL },       /* retain available */
		{ MQTT_CONNACK, 0x28, 2, HQ_EPROTOCOL },       /* wildcard sub available */
		{ MQTT_CONNACK, 0x29, 2, HQ_EPROTOCOL },       /* sub id available */
		{ MQTT_CONNACK, 0x2A, 2, HQ_EPROTOCOL },       /* shared sub available */
		{ MQTT_CONNECT, 0x21, 0, HQ_EPROTOCOL },       /* receive maximum 0 */
		{ MQTT_CONNACK, 0x21, 0, HQ_EPROTOCOL },
		{ MQTT_CONNECT, 0x27, 0, HQ_EPROTOCOL },       /* maximum packet size 0 */
		{ MQTT_CONNACK, 0x27, 0, HQ_EPROTOCOL },
		{ MQTT_PUBLISH, 0x23, 0, HQ_EALIAS },          /* topic alias 0 [MQTT-3.3.2-8] */
		{ MQTT_PUBLISH, 0x0B, 0, HQ_EPROTOCOL },       /* subscription id 0 */
		{ MQTT_SUBSCRIBE, 0x0B, 0, HQ_EPROTOCOL },
		/* boundary values that are fine */
		{ MQTT_PUBLISH, 0x01, 1, HQ_OK },
		{ MQTT_CONNACK, 0x24, 0, HQ_OK },
		{ MQTT_CONNECT, 0x21, 1, HQ_OK },
		{ MQTT_CONNECT, 0x22, 0, HQ_OK },              /* topic alias max 0 is valid */
		{ MQTT_SUBSCRIBE, 0x0B, 268435455, HQ_OK },
		{ MQTT_PUBLISH, 0x23, 65535, HQ_OK },
		{ MQTT_CONNECT, 0x11, 0xFFFFFFFF, HQ_OK },
	};
	struct buf out = { 0 }, list = { 0 }, extra = { 0 };
	struct mqtt_packet d;
	const char *why;

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		buf_reset(&extra);
		raw_prop(&extra, t[i].id, t[i].v);
		int rc = enc_dec(t[i].ptype, 0, &extra, &d, &why, &out, &list);
		if (rc != t[i].want)
			fail_msg("case %zu: 0x%02x=%u gave %d (%s)", i, t[i].id, t[i].v, rc, why);
	}
	buf_free(&out);
	buf_free(&list);
	buf_free(&extra);
}

/* Hand-built PUBLISH v5 property sections. */
static void test_raw_sections(void **state)
{
	/* PUBLISH QoS 0, topic "t", then properties, then payload */
#define PUB(...) CHECK(MQTT_V5, HQ_EMALFORMED, 0x30, 0x00, 0x01, 't', __VA_ARGS__)
	PUB(0x02, 0x00, 0x00);                      /* unknown id 0x00 */
	PUB(0x02, 0x04, 0x00);                      /* unknown id 0x04 */
	PUB(0x02, 0x2B, 0x00);                      /* first id past the table */
	PUB(0x02, 0x7F, 0x00);
	PUB(0x03, 0x81, 0x00, 0x00);                /* two-byte id (unknown) */
	PUB(0x05, 0x02, 0x00, 0x00);                /* property length past the end */
	PUB(0x02, 0x02, 0x00, 0x00, 0x00, 0x00);    /* value longer than the section */
	PUB(0x80, 0x00);                            /* non-minimal property length */
	PUB(0xFF, 0xFF, 0xFF, 0xFF, 0x01);          /* 5-byte property length */
	PUB(0x04, 0x03, 0x00, 0x01, 0xC0);          /* invalid UTF-8 in content type */
	PUB(0x04, 0x03, 0x00, 0x01, 0x00);          /* U+0000 in content type */
	PUB(0x06, 0x26, 0x00, 0x01, 0xFF, 0x00, 0x00);  /* bad user property name */
	PUB(0x06, 0x26, 0x00, 0x00, 0x00, 0x01, 0xED);  /* bad user property value */
	PUB(0x03, 0x26, 0x00, 0x00);                /* user property missing value */
	PUB(0x03, 0x0B, 0x80, 0x80);                /* truncated subscription id */
	PUB(0x05, 0x0B, 0x80, 0x80, 0x80, 0x80);    /* 5-byte subscription id */
#undef PUB
	/* empty property section, and payload after it */
	CHECK(MQTT_V5, HQ_OK, 0x30, 0x00, 0x01, 't', 0x00, 'x', 'y');
	/* response topic must be a topic name [MQTT-3.3.2-14] */
	CHECK(MQTT_V5, HQ_EPROTOCOL, 0x30, 0x00, 0x01, 't', 0x04, 0x08, 0x00, 0x01, '#');
	CHECK(MQTT_V5, HQ_EPROTOCOL, 0x30, 0x00, 0x01, 't', 0x04, 0x08, 0x00, 0x01, '+');
	CHECK(MQTT_V5, HQ_EPROTOCOL, 0x30, 0x00, 0x01, 't', 0x03, 0x08, 0x00, 0x00);
	CHECK(MQTT_V5, HQ_OK, 0x30, 0x00, 0x01, 't', 0x04, 0x08, 0x00, 0x01, 'r');
	/* AUTH: authentication data without a method (spec 3.1.2.11.10) */
	CHECK(MQTT_V5, HQ_EPROTOCOL, 0xF0, 0x18, 0x04, 0x16, 0x00, 0x01, 'd');
	CHECK(MQTT_V5, HQ_OK, 0xF0, 0x18, 0x08, 0x15, 0x00, 0x01, 'm', 0x16, 0x00, 0x01, 'd');
}

/* More subscription identifiers than MQTT_MAX_SUB_IDS: all validated, the
 * first MQTT_MAX_SUB_IDS kept. */
static void test_many_sub_ids(void **state)
{
	struct buf extra = { 0 }, out = { 0 }, list = { 0 };
	struct mqtt_packet d;
	const char *why;

	for (uint32_t i = 1; i <= MQTT_MAX_SUB_IDS + 4; i++)
		raw_prop(&extra, 0x0B, i * 1000);
	assert_int_equal(enc_dec(MQTT_PUBLISH, 0, &extra, &d, &why, &out, &list), HQ_OK);
	assert_int_equal(d.u.publish.props.n_sub_ids, MQTT_MAX_SUB_IDS);
	for (uint32_t i = 0; i < MQTT_MAX_SUB_IDS; i++)
		assert_int_equal(d.u.publish.props.sub_ids[i], (i + 1) * 1000);
	raw_prop(&extra, 0x0B, 0);  /* and the last one is still checked */
	assert_int_equal(enc_dec(MQTT_PUBLISH, 0, &extra, &d, &why, &out, &list), HQ_EPROTOCOL);
	buf_free(&extra);
	buf_free(&out);
	buf_free(&list);
}

/* User properties interleaved with others keep their order; the walker skips
 * the others; the forwardable blob keeps only what a broker forwards. */
static void test_user_walk_and_forwardable(void **state)
{
	struct buf extra = { 0 }, out = { 0 }, list = { 0 }, fwd = { 0 };
	struct mqtt_packet d;
	const char *why;
	static const char *const k[] = { "a", "b", "c" };
	static const char *const v[] = { "1", "2", "3" };

	mqtt_props_user_append(&extra, "a", "1");
	raw_prop(&extra, 0x23, 5);                  /* topic alias: not forwarded */
	mqtt_props_user_append(&extra, "b", "2");
	raw_prop(&extra, 0x03, 0);                  /* content type: forwarded */
	raw_prop(&extra, 0x0B, 9);                  /* sub id: not forwarded */
	raw_prop(&extra, 0x02, 60);                 /* expiry: not forwarded */
	mqtt_props_user_append(&extra, "c", "3");
	assert_int_equal(enc_dec(MQTT_PUBLISH, 0, &extra, &d, &why, &out, &list), HQ_OK);
	mt_users_eq(&d.u.publish.props, k, v, 3);
	assert_int_equal(d.u.publish.props.raw_len, extra.len);

	mqtt_props_forwardable(&d.u.publish.props, &fwd);
	struct buf want = { 0 };
	mqtt_props_user_append(&want, "a", "1");
	mqtt_props_user_append(&want, "b", "2");
	raw_prop(&want, 0x03, 0);
	mqtt_props_user_append(&want, "c", "3");
	assert_int_equal(fwd.len, want.len);
	assert_memory_equal(fwd.data, want.data, want.len);

	/* a props struct with no section walks nothing */
	struct mqtt_props none = { 0 };
	uint32_t cur = 0;
	struct mqtt_str ks, vs;
	assert_false(mqtt_props_user_next(&none, &cur, &ks, &vs));
	buf_free(&want);
	buf_free(&extra);
	buf_free(&out);
	buf_free(&list);
	buf_free(&fwd);
}

/* Encoder: properties in id order, then extra. */
static void test_encode_order(void **state)
{
	struct buf b = { 0 };
	struct mqtt_packet p = { .type = MQTT_PUBLISH };

	p.u.publish.topic = S("t");
	p.u.publish.props.present = MQTT_PROP_BIT(0x23) | MQTT_PROP_BIT(0x01) |
				    MQTT_PROP_BIT(0x02) | MQTT_PROP_BIT(MQTT_PROP_USER);
	p.u.publish.props.topic_alias = 0x0102;
	p.u.publish.props.payload_format = 1;
	p.u.publish.props.message_expiry = 0x0A0B0C0D;
	p.u.publish.props.extra = (const uint8_t *)"\x26\x00\x00\x00\x00";
	p.u.publish.props.extra_len = 5;
	assert_int_equal(mqtt_encode(&b, MQTT_V5, &p), HQ_OK);
	static const uint8_t want[] = {
		0x30, 0x13, 0x00, 0x01, 't', 0x0F,
		0x01, 0x01, 0x02, 0x0A, 0x0B, 0x0C, 0x0D, 0x23, 0x01, 0x02,
		0x26, 0x00, 0x00, 0x00, 0x00,
	};
	assert_int_equal(b.len, sizeof(want));
	assert_memory_equal(b.data, want, sizeof(want));
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_each_property_allowed),
		cmocka_unit_test(test_each_property_not_allowed),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_value_ranges),
		cmocka_unit_test(test_raw_sections),
		cmocka_unit_test(test_many_sub_ids),
		cmocka_unit_test(test_user_walk_and_forwardable),
		cmocka_unit_test(test_encode_order),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
