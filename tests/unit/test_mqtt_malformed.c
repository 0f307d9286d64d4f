/*
 * test_mqtt_malformed.c - every malformed packet / protocol violation the
 * decoder must catch, each test named after (or commenting) the normative
 * statement it checks. Packets are hand-written bytes: CHECK(version, rc,
 * fixed header byte, body...) frames the body with its remaining length.
 */
#include "mqtt_test.h"

static const uint8_t all_versions[] = { MQTT_V31, MQTT_V311, MQTT_V5 };

/* ---- fixed header ---- */

/* [MQTT-2.2.2-1] [MQTT-2.2.2-2]: reserved flag bits must have the listed values */
static void test_2_2_2_reserved_flags(void **state)
{
	for (size_t vi = 1; vi < sizeof(all_versions); vi++) {
		uint8_t v = all_versions[vi];
		for (uint8_t f = 1; f < 16; f++) {
			CHECK(v, HQ_EMALFORMED, (uint8_t)(0x20 | f), 0x00, 0x00);     /* CONNACK */
			CHECK(v, HQ_EMALFORMED, (uint8_t)(0x40 | f), 0x00, 0x01);     /* PUBACK */
			CHECK(v, HQ_EMALFORMED, (uint8_t)(0x50 | f), 0x00, 0x01);     /* PUBREC */
			CHECK(v, HQ_EMALFORMED, (uint8_t)(0x70 | f), 0x00, 0x01);     /* PUBCOMP */
			CHECK(v, HQ_EMALFORMED, (uint8_t)(0x90 | f), 0x00, 0x01, 0x00); /* SUBACK */
			CHECK_EMPTY(v, HQ_EMALFORMED, (uint8_t)(0xC0 | f));           /* PINGREQ */
			CHECK_EMPTY(v, HQ_EMALFORMED, (uint8_t)(0xD0 | f));           /* PINGRESP */
			CHECK_EMPTY(v, HQ_EMALFORMED, (uint8_t)(0xE0 | f));           /* DISCONNECT */
			if (v == MQTT_V5)
				CHECK_EMPTY(v, HQ_EMALFORMED, (uint8_t)(0xF0 | f));   /* AUTH */
		}
		/* PUBREL, SUBSCRIBE, UNSUBSCRIBE: 0010 [MQTT-3.6.1-1] [MQTT-3.8.1-1]
		 * [MQTT-3.10.1-1] */
		for (uint8_t f = 0; f < 16; f++) {
			if (f == 2)
				continue;
			CHECK(v, HQ_EMALFORMED, (uint8_t)(0x60 | f), 0x00, 0x01);
			CHECK(v, HQ_EMALFORMED, (uint8_t)(0x80 | f), 0x00, 0x01, 0x00, 0x01, 'a', 0x00);
			CHECK(v, HQ_EMALFORMED, (uint8_t)(0xA0 | f), 0x00, 0x01, 0x00, 0x01, 'a');
		}
	}
	/* CONNECT flags are checked whatever the connection's version */
	CHECK(0, HQ_EMALFORMED, 0x11, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3C,
	      0x00, 0x01, 'c');
	/* MQTT 3.1 clients set DUP (and QoS 1) on resent PUBREL/SUBSCRIBE: accepted */
	CHECK(MQTT_V31, HQ_OK, 0x6A, 0x00, 0x01);
	CHECK(MQTT_V31, HQ_OK, 0x8A, 0x00, 0x01, 0x00, 0x01, 'a', 0x00);
}

/* 3.1.1 table 2.1: types 0 and (before v5) 15 are reserved */
static void test_2_2_1_reserved_types(void **state)
{
	for (size_t vi = 0; vi < sizeof(all_versions); vi++)
		CHECK_EMPTY(all_versions[vi], HQ_EMALFORMED, 0x00);
	CHECK_EMPTY(MQTT_V311, HQ_EMALFORMED, 0xF0);
	CHECK_EMPTY(MQTT_V31, HQ_EMALFORMED, 0xF0);
	CHECK_EMPTY(MQTT_V5, HQ_OK, 0xF0);
}

/* 2.2.3 remaining length: must match the bytes; at most 4 bytes, minimal
 * [MQTT-1.5.5-1] */
static void test_2_2_3_remaining_length(void **state)
{
	struct mqtt_packet d;
	const char *why;
	static const uint8_t longer[] = { 0xC0, 0x01 };            /* says 1, has 0 */
	static const uint8_t shorter[] = { 0xC0, 0x00, 0x00 };     /* trailing byte */
	static const uint8_t nonmin[] = { 0xC0, 0x80, 0x00 };
	static const uint8_t five[] = { 0x30, 0x80, 0x80, 0x80, 0x80, 0x01 };
	static const uint8_t nohdr[] = { 0x30 };

	assert_int_equal(mt_decode(longer, sizeof(longer), MQTT_V311, &d, &why), HQ_EMALFORMED);
	assert_int_equal(mt_decode(shorter, sizeof(shorter), MQTT_V311, &d, &why), HQ_EMALFORMED);
	assert_int_equal(mt_decode(nonmin, sizeof(nonmin), MQTT_V311, &d, &why), HQ_EMALFORMED);
	assert_int_equal(mt_decode(five, sizeof(five), MQTT_V311, &d, &why), HQ_EMALFORMED);
	assert_int_equal(mt_decode(nohdr, sizeof(nohdr), MQTT_V311, &d, &why), HQ_EMALFORMED);
	assert_int_equal(mt_decode(nohdr, 0, MQTT_V311, &d, &why), HQ_EMALFORMED);
	/* no version negotiated: only CONNECT can be decoded */
	assert_int_equal(mt_decode(shorter, 2, 0, &d, &why), HQ_EINVAL);
	assert_int_equal(mt_decode(shorter, 2, 6, &d, &why), HQ_EINVAL);
}

/* [MQTT-2.2.1-3] non-zero packet identifiers */
static void test_2_2_1_3_packet_id_zero(void **state)
{
	for (size_t vi = 0; vi < sizeof(all_versions); vi++) {
		uint8_t v = all_versions[vi];
		CHECK(v, HQ_EPROTOCOL, 0x32, 0x00, 0x01, 't', 0x00, 0x00);    /* PUBLISH QoS 1 */
		CHECK(v, HQ_EPROTOCOL, 0x34, 0x00, 0x01, 't', 0x00, 0x00);    /* PUBLISH QoS 2 */
		CHECK(v, HQ_EPROTOCOL, 0x40, 0x00, 0x00);
		CHECK(v, HQ_EPROTOCOL, 0x50, 0x00, 0x00);
		CHECK(v, HQ_EPROTOCOL, 0x62, 0x00, 0x00);
		CHECK(v, HQ_EPROTOCOL, 0x70, 0x00, 0x00);
		CHECK(v, HQ_EPROTOCOL, 0x82, 0x00, 0x00, 0x00, 0x01, 'a', 0x00);
		CHECK(v, HQ_EPROTOCOL, 0xA2, 0x00, 0x00, 0x00, 0x01, 'a');
		CHECK(v, HQ_EPROTOCOL, 0xB0, 0x00, 0x00);
	}
	CHECK(MQTT_V311, HQ_EPROTOCOL, 0x90, 0x00, 0x00, 0x00);
	/* QoS 0 has no packet identifier: these bytes are payload */
	CHECK(MQTT_V311, HQ_OK, 0x30, 0x00, 0x01, 't', 0x00, 0x00);
}

/* ---- UTF-8 strings in every field [MQTT-1.5.4-1] [MQTT-1.5.4-2] ---- */

static void test_1_5_4_utf8_fields(void **state)
{
	/* topic name */
	CHECK(MQTT_V311, HQ_EMALFORMED, 0x30, 0x00, 0x01, 0x00);
	CHECK(MQTT_V311, HQ_EMALFORMED, 0x30, 0x00, 0x03, 0xED, 0xA0, 0x80);
	CHECK(MQTT_V311, HQ_EMALFORMED, 0x30, 0x00, 0x02, 0xC0, 0xAF);
	CHECK(MQTT_V5, HQ_EMALFORMED, 0x30, 0x00, 0x02, 'a', 0xFF, 0x00);
	/* client id, will topic, user name */
	CHECK(0, HQ_EMALFORMED, 0x10, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3C,
	      0x00, 0x01, 0x00);
	CHECK(0, HQ_EMALFORMED, 0x10, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x06, 0x00, 0x3C,
	      0x00, 0x00, 0x00, 0x01, 0x80, 0x00, 0x00);
	CHECK(0, HQ_EMALFORMED, 0x10, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x82, 0x00, 0x3C,
	      0x00, 0x00, 0x00, 0x02, 0xED, 0xB0);
	/* the password is binary data: anything goes */
	CHECK(MQTT_V5, HQ_OK, 0x10, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0x42, 0x00, 0x3C, 0x00,
	      0x00, 0x00, 0x00, 0x02, 0x00, 0xFF);
	/* topic filters in SUBSCRIBE and UNSUBSCRIBE */
	CHECK(MQTT_V311, HQ_EMALFORMED, 0x82, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00);
	CHECK(MQTT_V311, HQ_EMALFORMED, 0xA2, 0x00, 0x01, 0x00, 0x01, 'a', 0x00, 0x01, 0xF8);
}

/* ---- CONNECT ---- */

/* [MQTT-3.1.2-1] unknown protocol name: a protocol error, not a version issue */
static void test_3_1_2_1_protocol_name(void **state)
{
	CHECK(0, HQ_EPROTOCOL, 0x10, 0x00, 0x04, 'M', 'Q', 'T', 'X', 0x04, 0x02, 0x00, 0x3C,
	      0x00, 0x00);
	CHECK(0, HQ_EPROTOCOL, 0x10, 0x00, 0x04, 'm', 'q', 't', 't', 0x04, 0x02, 0x00, 0x3C,
	      0x00, 0x00);
	CHECK(0, HQ_EPROTOCOL, 0x10, 0x00, 0x00, 0x04, 0x02, 0x00, 0x3C, 0x00, 0x00);
	CHECK(0, HQ_EPROTOCOL, 0x10, 0x00, 0x03, 'M', 'Q', 'T', 0x04, 0x02, 0x00, 0x3C, 0x00, 0x00);
	/* a truncated name is malformed */
	CHECK(0, HQ_EMALFORMED, 0x10, 0x00, 0x04, 'M', 'Q');
}

/* [MQTT-3.1.2-2] unsupported level: HQ_EVERSION (CONNACK 0x84 / rc 1), and the
 * decoded name and level are there for the broker to pick the CONNACK form */
static void test_3_1_2_2_protocol_level(void **state)
{
	static const uint8_t bad[] = { 0, 1, 2, 6, 7, 0x83, 0x84, 0x85, 255 };
	for (size_t i = 0; i < sizeof(bad); i++) {
		CHECK(0, HQ_EVERSION, 0x10, 0x00, 0x04, 'M', 'Q', 'T', 'T', bad[i], 0x02, 0x00,
		      0x3C, 0x00, 0x00);
		CHECK(0, HQ_EVERSION, 0x10, 0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', bad[i],
		      0x02, 0x00, 0x3C, 0x00, 0x00);
	}
	/* name/level mismatch */
	CHECK(0, HQ_EVERSION, 0x10, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x03, 0x02, 0x00, 0x3C,
	      0x00, 0x00);
	CHECK(0, HQ_EVERSION, 0x10, 0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', 0x04, 0x02, 0x00,
	      0x3C, 0x00, 0x00);
	/* the level check comes before the rest is looked at */
	CHECK(0, HQ_EVERSION, 0x10, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x06, 0xFF);

	static const uint8_t pk[] = { 0x10, 0x07, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x06 };
	struct mqtt_packet d;
	const char *why = NULL;
	assert_int_equal(mqtt_decode(pk, sizeof(pk), 0, &d, &why), HQ_EVERSION);
	assert_int_equal(d.type, MQTT_CONNECT);
	assert_int_equal(d.u.connect.version, 6);
	assert_str_eq(d.u.connect.proto_name, S("MQTT"));
	assert_non_null(why);
}

/* [MQTT-3.1.2-3] reserved connect flag */
static void test_3_1_2_3_connect_reserved_flag(void **state)
{
	CHECK(0, HQ_EMALFORMED, 0x10, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x03, 0x00, 0x3C,
	      0x00, 0x00);
	CHECK(0, HQ_EMALFORMED, 0x10, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0x01, 0x00, 0x3C,
	      0x00, 0x00, 0x00);
	CHECK(0, HQ_EMALFORMED, 0x10, 0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', 0x03, 0x01,
	      0x00, 0x3C, 0x00, 0x01, 'c');
}

/* [MQTT-3.1.2-11] [MQTT-3.1.2-13] [MQTT-3.1.2-15]: no will, then will QoS and
 * will retain are 0; [MQTT-3.1.2-14]: will QoS is not 3 */
static void test_3_1_2_11_14_will_flags(void **state)
{
	static const uint8_t bad[] = { 0x08, 0x10, 0x18, 0x20, 0x28 };
	for (size_t i = 0; i < sizeof(bad); i++)
		CHECK(0, HQ_EMALFORMED, 0x10, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, bad[i], 0x00,
		      0x3C, 0x00, 0x00);
	/* will QoS 3 */
	CHECK(0, HQ_EMALFORMED, 0x10, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x1C, 0x00, 0x3C,
	      0x00, 0x00, 0x00, 0x01, 't', 0x00, 0x00);
	/* will QoS 2 + retain is fine */
	CHECK(0, HQ_OK, 0x10, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x34, 0x00, 0x3C, 0x00, 0x00,
	      0x00, 0x01, 't', 0x00, 0x00);
}

/* The will topic is a topic name: no wildcards [MQTT-3.3.2-2], not empty
 * [MQTT-4.7.3-1] */
static void test_3_1_3_will_topic(void **state)
{
	CHECK(0, HQ_ETOPIC, 0x10, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x04, 0x00, 0x3C, 0x00,
	      0x00, 0x00, 0x01, '#', 0x00, 0x00);
	CHECK(0, HQ_ETOPIC, 0x10, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x04, 0x00, 0x3C, 0x00,
	      0x00, 0x00, 0x03, 'a', '/', '+', 0x00, 0x00);
	CHECK(0, HQ_ETOPIC, 0x10, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0x04, 0x00, 0x3C, 0x00,
	      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00);
}

/* [MQTT-3.1.2-22] 3.1/3.1.1: password flag needs the user name flag; v5 not */
static void test_3_1_2_22_password_without_username(void **state)
{
	CHECK(0, HQ_EMALFORMED, 0x10, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x42, 0x00, 0x3C,
	      0x00, 0x00, 0x00, 0x01, 'p');
	CHECK(0, HQ_EMALFORMED, 0x10, 0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', 0x03, 0x42, 0x00,
	      0x3C, 0x00, 0x01, 'c', 0x00, 0x01, 'p');
	CHECK(0, HQ_OK, 0x10, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0x42, 0x00, 0x3C, 0x00,
	      0x00, 0x00, 0x00, 0x01, 'p');
}

/* CONNECT: flags announce fields that are not there, or bytes follow */
static void test_3_1_3_connect_payload(void **state)
{
	/* user name flag, no user name */
	CHECK(0, HQ_EMALFORMED, 0x10, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x82, 0x00, 0x3C,
	      0x00, 0x00);
	/* will flag, no will */
	CHECK(0, HQ_EMALFORMED, 0x10, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x06, 0x00, 0x3C,
	      0x00, 0x00);
	/* trailing byte */
	CHECK(0, HQ_EMALFORMED, 0x10, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3C,
	      0x00, 0x00, 0x00);
	/* v5 without property length */
	CHECK(0, HQ_EMALFORMED, 0x10, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0x02, 0x00, 0x3C,
	      0x00, 0x00);
	/* will property not allowed in CONNECT properties (will delay 0x18) */
	CHECK(0, HQ_EMALFORMED, 0x10, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0x02, 0x00, 0x3C,
	      0x05, 0x18, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00);
	/* an empty client id is the broker's decision [MQTT-3.1.3-6..8] */
	CHECK(0, HQ_OK, 0x10, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3C, 0x00, 0x00);
}

/* ---- CONNACK ---- */

static void test_3_2_connack(void **state)
{
	/* [MQTT-3.2.2-1] reserved acknowledge flags */
	CHECK(MQTT_V311, HQ_EMALFORMED, 0x20, 0x02, 0x00);
	CHECK(MQTT_V5, HQ_EMALFORMED, 0x20, 0x80, 0x00, 0x00);
	/* 3.1.1: return codes 6-255 reserved; exactly 2 bytes */
	CHECK(MQTT_V311, HQ_EPROTOCOL, 0x20, 0x00, 0x06);
	CHECK(MQTT_V311, HQ_EMALFORMED, 0x20, 0x00, 0x00, 0x00);
	CHECK(MQTT_V311, HQ_EMALFORMED, 0x20, 0x00);
	/* v5: reason codes of table 3-1 only */
	CHECK(MQTT_V5, HQ_EPROTOCOL, 0x20, 0x00, 0x01, 0x00);
	CHECK(MQTT_V5, HQ_EPROTOCOL, 0x20, 0x00, 0x8E, 0x00);
	CHECK(MQTT_V5, HQ_OK, 0x20, 0x00, 0x9F, 0x00);
	/* a 3.1.1-style 2-byte CONNACK read by a v5 client */
	CHECK(MQTT_V5, HQ_OK, 0x20, 0x00, 0x84);
}

/* ---- PUBLISH ---- */

/* [MQTT-3.3.1-4] QoS 3 */
static void test_3_3_1_4_qos3(void **state)
{
	for (size_t vi = 0; vi < sizeof(all_versions); vi++) {
		CHECK(all_versions[vi], HQ_EMALFORMED, 0x36, 0x00, 0x01, 't', 0x00, 0x01);
		CHECK(all_versions[vi], HQ_EMALFORMED, 0x3F, 0x00, 0x01, 't', 0x00, 0x01);
	}
}

/* [MQTT-3.3.1-2] DUP must be 0 on QoS 0 */
static void test_3_3_1_2_dup_qos0(void **state)
{
	for (size_t vi = 0; vi < sizeof(all_versions); vi++) {
		CHECK(all_versions[vi], HQ_EMALFORMED, 0x38, 0x00, 0x01, 't');
		CHECK(all_versions[vi], HQ_EMALFORMED, 0x39, 0x00, 0x01, 't');
	}
	CHECK(MQTT_V311, HQ_OK, 0x3A, 0x00, 0x01, 't', 0x00, 0x01);
	CHECK(MQTT_V5, HQ_OK, 0x3A, 0x00, 0x01, 't', 0x00, 0x01, 0x00);
}

/* [MQTT-3.3.2-2] no wildcards in a topic name */
static void test_3_3_2_2_wildcard_topic(void **state)
{
	for (size_t vi = 0; vi < sizeof(all_versions); vi++) {
		uint8_t v = all_versions[vi];
		uint8_t pl = v == MQTT_V5 ? 0x00 : 'x';  /* v5: property length */
		CHECK(v, HQ_ETOPIC, 0x30, 0x00, 0x01, '#', pl);
		CHECK(v, HQ_ETOPIC, 0x30, 0x00, 0x01, '+', pl);
		CHECK(v, HQ_ETOPIC, 0x30, 0x00, 0x05, 'a', '/', '+', '/', 'b', pl);
		CHECK(v, HQ_ETOPIC, 0x30, 0x00, 0x03, 'a', 'b', '#', pl);
		CHECK(v, HQ_OK, 0x30, 0x00, 0x03, '$', 'a', 'b', pl);
	}
}

/* [MQTT-4.7.3-1] empty topic name: forbidden before v5; in v5 it goes with a
 * topic alias, which only the broker can check */
static void test_4_7_3_1_empty_topic(void **state)
{
	CHECK(MQTT_V311, HQ_EPROTOCOL, 0x30, 0x00, 0x00, 'x');
	CHECK(MQTT_V31, HQ_EPROTOCOL, 0x30, 0x00, 0x00);
	CHECK(MQTT_V5, HQ_OK, 0x30, 0x00, 0x00, 0x00);
	CHECK(MQTT_V5, HQ_OK, 0x30, 0x00, 0x00, 0x03, 0x23, 0x00, 0x01);
}

static void test_3_3_publish_truncated(void **state)
{
	CHECK(MQTT_V311, HQ_EMALFORMED, 0x30, 0x00);
	CHECK(MQTT_V311, HQ_EMALFORMED, 0x30, 0x00, 0x05, 'a');
	CHECK(MQTT_V311, HQ_EMALFORMED, 0x32, 0x00, 0x01, 't', 0x00);
	CHECK(MQTT_V5, HQ_EMALFORMED, 0x30, 0x00, 0x01, 't');  /* no property length */
	CHECK_EMPTY(MQTT_V311, HQ_EMALFORMED, 0x30);
}

/* ---- acknowledgements ---- */

/* 3.x: remaining length exactly 2; v5: 2 (success), 3 (reason), 4+ (props) */
static void test_3_4_ack_lengths(void **state)
{
	static const uint8_t hdr[] = { 0x40, 0x50, 0x62, 0x70 };
	for (size_t i = 0; i < sizeof(hdr); i++) {
		CHECK(MQTT_V311, HQ_EMALFORMED, hdr[i], 0x00, 0x01, 0x00);
		CHECK(MQTT_V31, HQ_EMALFORMED, hdr[i], 0x00, 0x01, 0x00, 0x00);
		CHECK(MQTT_V311, HQ_EMALFORMED, hdr[i], 0x00);
		CHECK_EMPTY(MQTT_V311, HQ_EMALFORMED, hdr[i]);
		CHECK(MQTT_V5, HQ_OK, hdr[i], 0x00, 0x01);
		CHECK(MQTT_V5, HQ_OK, hdr[i], 0x00, 0x01, 0x00);
		CHECK(MQTT_V5, HQ_OK, hdr[i], 0x00, 0x01, 0x00, 0x00);
		/* property length says more than there is */
		CHECK(MQTT_V5, HQ_EMALFORMED, hdr[i], 0x00, 0x01, 0x00, 0x01);
		/* bytes after the properties */
		CHECK(MQTT_V5, HQ_EMALFORMED, hdr[i], 0x00, 0x01, 0x00, 0x00, 0x00);
	}
	/* reason codes: PUBACK/PUBREC table 3-4/3-5, PUBREL/PUBCOMP table 3-6/3-7 */
	CHECK(MQTT_V5, HQ_OK, 0x40, 0x00, 0x01, 0x99);
	CHECK(MQTT_V5, HQ_EPROTOCOL, 0x40, 0x00, 0x01, 0x92);
	CHECK(MQTT_V5, HQ_EPROTOCOL, 0x50, 0x00, 0x01, 0x01);
	CHECK(MQTT_V5, HQ_OK, 0x62, 0x00, 0x01, 0x92);
	CHECK(MQTT_V5, HQ_EPROTOCOL, 0x62, 0x00, 0x01, 0x80);
	CHECK(MQTT_V5, HQ_EPROTOCOL, 0x70, 0x00, 0x01, 0x10);
}

/* ---- SUBSCRIBE / SUBACK ---- */

/* [MQTT-3.8.3-3] (3.1.1) / [MQTT-3.8.3-2] (5.0): at least one filter */
static void test_3_8_3_3_subscribe_empty(void **state)
{
	CHECK(MQTT_V311, HQ_EPROTOCOL, 0x82, 0x00, 0x01);
	CHECK(MQTT_V31, HQ_EPROTOCOL, 0x82, 0x00, 0x01);
	CHECK(MQTT_V5, HQ_EPROTOCOL, 0x82, 0x00, 0x01, 0x00);
}

/* [MQTT-3.8.3-5] (5.0) / [MQTT-3.8.3-4] (3.1.1): reserved option bits, QoS 3 */
static void test_3_8_3_5_subscription_options(void **state)
{
	for (unsigned o = 0; o < 256; o++) {
		/* reserved bits: malformed; QoS 3 (v5 3.8.3.1) and retain
		 * handling 3: protocol errors */
		int want3 = (o & 0xFC) ? HQ_EMALFORMED : (o & 3) == 3 ? HQ_EPROTOCOL : HQ_OK;
		int want5 = (o & 0xC0) ? HQ_EMALFORMED :
			    (o & 3) == 3 || ((o >> 4) & 3) == 3 ? HQ_EPROTOCOL : HQ_OK;
		CHECK(MQTT_V311, want3, 0x82, 0x00, 0x01, 0x00, 0x01, 'a', (uint8_t)o);
		CHECK(MQTT_V31, want3, 0x82, 0x00, 0x01, 0x00, 0x01, 'a', (uint8_t)o);
		CHECK(MQTT_V5, want5, 0x82, 0x00, 0x01, 0x00, 0x00, 0x01, 'a', (uint8_t)o);
		/* checked on every entry, not only the first */
		CHECK(MQTT_V5, want5, 0x82, 0x00, 0x01, 0x00, 0x00, 0x01, 'a', 0x00, 0x00, 0x01,
		      'b', (uint8_t)o);
	}
}

static void test_3_8_subscribe_truncated(void **state)
{
	CHECK(MQTT_V311, HQ_EMALFORMED, 0x82, 0x00, 0x01, 0x00, 0x01, 'a');      /* no options */
	CHECK(MQTT_V311, HQ_EMALFORMED, 0x82, 0x00, 0x01, 0x00, 0x02, 'a');
	CHECK(MQTT_V311, HQ_EMALFORMED, 0x82, 0x00, 0x01, 0x00, 0x01, 'a', 0x00, 0x00);
	CHECK(MQTT_V311, HQ_EMALFORMED, 0x82, 0x00);
	/* filter syntax is the broker's (topic_filter_valid), not the codec's */
	CHECK(MQTT_V311, HQ_OK, 0x82, 0x00, 0x01, 0x00, 0x03, 'a', '#', 'b', 0x00);
}

static void test_3_9_suback(void **state)
{
	/* [MQTT-3.9.3-2] 3.1.1 return codes 0, 1, 2, 0x80 */
	CHECK(MQTT_V311, HQ_EPROTOCOL, 0x90, 0x00, 0x01, 0x03);
	CHECK(MQTT_V311, HQ_EPROTOCOL, 0x90, 0x00, 0x01, 0x00, 0x81);
	/* at least one code */
	CHECK(MQTT_V311, HQ_EPROTOCOL, 0x90, 0x00, 0x01);
	CHECK(MQTT_V5, HQ_EPROTOCOL, 0x90, 0x00, 0x01, 0x00);
	/* v5 table 3-8 */
	CHECK(MQTT_V5, HQ_OK, 0x90, 0x00, 0x01, 0x00, 0x9E, 0xA1, 0xA2);
	CHECK(MQTT_V5, HQ_EPROTOCOL, 0x90, 0x00, 0x01, 0x00, 0x11);
}

/* ---- UNSUBSCRIBE / UNSUBACK ---- */

/* [MQTT-3.10.3-2] at least one filter */
static void test_3_10_3_2_unsubscribe_empty(void **state)
{
	CHECK(MQTT_V311, HQ_EPROTOCOL, 0xA2, 0x00, 0x01);
	CHECK(MQTT_V5, HQ_EPROTOCOL, 0xA2, 0x00, 0x01, 0x00);
	CHECK(MQTT_V311, HQ_EMALFORMED, 0xA2, 0x00, 0x01, 0x00);
	/* UNSUBSCRIBE allows only user properties */
	CHECK(MQTT_V5, HQ_EMALFORMED, 0xA2, 0x00, 0x01, 0x02, 0x0B, 0x01, 0x00, 0x01, 'a');
}

static void test_3_11_unsuback(void **state)
{
	/* 3.x: packet id only */
	CHECK(MQTT_V311, HQ_EMALFORMED, 0xB0, 0x00, 0x01, 0x00);
	CHECK(MQTT_V311, HQ_OK, 0xB0, 0x00, 0x01);
	/* v5: table 3-9, at least one code */
	CHECK(MQTT_V5, HQ_OK, 0xB0, 0x00, 0x01, 0x00, 0x11, 0x8F);
	CHECK(MQTT_V5, HQ_EPROTOCOL, 0xB0, 0x00, 0x01, 0x00, 0x01);
	CHECK(MQTT_V5, HQ_EPROTOCOL, 0xB0, 0x00, 0x01, 0x00);
	CHECK(MQTT_V5, HQ_EMALFORMED, 0xB0, 0x00, 0x01);
}

/* ---- PINGREQ, PINGRESP, DISCONNECT, AUTH ---- */

static void test_3_12_3_14_empty_packets(void **state)
{
	CHECK(MQTT_V311, HQ_EMALFORMED, 0xC0, 0x00);
	CHECK(MQTT_V5, HQ_EMALFORMED, 0xD0, 0x00);
	CHECK(MQTT_V311, HQ_EMALFORMED, 0xE0, 0x00);
	/* v5 DISCONNECT: 0 bytes = reason 0, 1 byte = reason only */
	CHECK_EMPTY(MQTT_V5, HQ_OK, 0xE0);
	CHECK(MQTT_V5, HQ_OK, 0xE0, 0x04);
	CHECK(MQTT_V5, HQ_OK, 0xE0, 0x8E, 0x00);
	CHECK(MQTT_V5, HQ_EPROTOCOL, 0xE0, 0x05);           /* table 3-10 */
	CHECK(MQTT_V5, HQ_EPROTOCOL, 0xE0, 0x84);
	CHECK(MQTT_V5, HQ_EMALFORMED, 0xE0, 0x00, 0x01);     /* property length past end */
	CHECK(MQTT_V5, HQ_EMALFORMED, 0xE0, 0x00, 0x00, 0x00);
	/* v5 AUTH: table 3-11 */
	CHECK(MQTT_V5, HQ_OK, 0xF0, 0x19, 0x00);
	CHECK(MQTT_V5, HQ_EPROTOCOL, 0xF0, 0x04, 0x00);
	/* session expiry is a DISCONNECT property, not an AUTH one */
	CHECK(MQTT_V5, HQ_EMALFORMED, 0xF0, 0x18, 0x05, 0x11, 0x00, 0x00, 0x00, 0x00);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_2_2_2_reserved_flags),
		cmocka_unit_test(test_2_2_1_reserved_types),
		cmocka_unit_test(test_2_2_3_remaining_length),
		cmocka_unit_test(test_2_2_1_3_packet_id_zero),
		cmocka_unit_test(test_1_5_4_utf8_fields),
		cmocka_unit_test(test_3_1_2_1_protocol_name),
		cmocka_unit_test(test_3_1_2_2_protocol_level),
		cmocka_unit_test(test_3_1_2_3_connect_reserved_flag),
		cmocka_unit_test(test_3_1_2_11_14_will_flags),
		cmocka_unit_test(test_3_1_3_will_topic),
		cmocka_unit_test(test_3_1_2_22_password_without_username),
		cmocka_unit_test(test_3_1_3_connect_payload),
		cmocka_unit_test(test_3_2_connack),
		cmocka_unit_test(test_3_3_1_4_qos3),
		cmocka_unit_test(test_3_3_1_2_dup_qos0),
		cmocka_unit_test(test_3_3_2_2_wildcard_topic),
		cmocka_unit_test(test_4_7_3_1_empty_topic),
		cmocka_unit_test(test_3_3_publish_truncated),
		cmocka_unit_test(test_3_4_ack_lengths),
		cmocka_unit_test(test_3_8_3_3_subscribe_empty),
		cmocka_unit_test(test_3_8_3_5_subscription_options),
		cmocka_unit_test(test_3_8_subscribe_truncated),
		cmocka_unit_test(test_3_9_suback),
		cmocka_unit_test(test_3_10_3_2_unsubscribe_empty),
		cmocka_unit_test(test_3_11_unsuback),
		cmocka_unit_test(test_3_12_3_14_empty_packets),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
