/*
 * mqtt_prim.c - MQTT data representation primitives (spec 1.5): variable byte
 * integers, UTF-8 validation, and the reader helpers built on them.
 *
 * These are also used outside the codec (store serialisation), so they take raw
 * pointers and lengths and never assume a whole packet.
 */
#include "mqtt/mqtt_int.h"

static const char *const type_names[16] = {
	"RESERVED", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL",
	"PUBCOMP", "SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ",
	"PINGRESP", "DISCONNECT", "AUTH",
};

const char *mqtt_type_name(int type)
{
	if (type < 0 || type > 15)
		return "UNKNOWN";
	return type_names[type];
}

/* the varint primitives live with the byte cursors (core/bytes.h) */
size_t mqtt_varint_size(uint32_t v)
{
	return bytes_varint_size(v);
}

size_t mqtt_varint_encode(uint8_t *p, uint32_t v)
{
	return bytes_varint_put(p, v);
}

int mqtt_varint_decode(const uint8_t *p, size_t n, uint32_t *v)
{
	return bytes_varint_get(p, n, v);
}

/*
 * Well-formed UTF-8 (RFC 3629 / Unicode table 3-7): no overlong forms, no
 * surrogates U+D800..U+DFFF [MQTT-1.5.4-1], nothing above U+10FFFF, and no
 * U+0000 [MQTT-1.5.4-2]. Other control characters and non-characters are only
 * SHOULD NOTs in the spec, so they pass.
 */
bool mqtt_utf8_valid(const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint8_t c = p[i];
		if (c >= 0x01 && c < 0x80) {
			i++;
			continue;
		}
		if (c == 0x00)
			return false;
		size_t need;
		uint8_t lo = 0x80, hi = 0xBF;   /* range of the second byte */
		if (c >= 0xC2 && c <= 0xDF) {
			need = 1;
		} else if (c == 0xE0) {
			need = 2;
			lo = 0xA0;
		} else if (c == 0xED) {
			need = 2;
			hi = 0x9F;                  /* excludes the surrogates */
		} else if (c >= 0xE1 && c <= 0xEF) {
			need = 2;
		} else if (c == 0xF0) {
			need = 3;
			lo = 0x90;
		} else if (c >= 0xF1 && c <= 0xF3) {
			need = 3;
		} else if (c == 0xF4) {
			need = 3;
			hi = 0x8F;
		} else {
			return false;               /* 0x80..0xC1, 0xF5..0xFF */
		}
		if (n - i - 1 < need)
			return false;
		if (p[i + 1] < lo || p[i + 1] > hi)
			return false;
		for (size_t k = 2; k <= need; k++)
			if ((p[i + k] & 0xC0) != 0x80)
				return false;
		i += need + 1;
	}
	return true;
}

struct mqtt_str mqtt_rd_bin(struct bytes_rd *r)
{
	struct mqtt_str s = { NULL, 0 };
	uint16_t len = bytes_rd_u16(r);

	if (!bytes_rd_need(r, len))
		return s;
	/* an empty string still points into the packet: callers may compare
	 * pointers, and "" must not look like "absent" */
	s.p = r->p + r->pos;
	s.len = len;
	r->pos += len;
	return s;
}

struct mqtt_str mqtt_rd_utf8(struct bytes_rd *r, const char *why)
{
	struct mqtt_str s = mqtt_rd_bin(r);

	if (r->rc == HQ_OK && !mqtt_utf8_valid(s.p, s.len)) {
		bytes_rd_fail(r, HQ_EMALFORMED, why);
		s.p = NULL;
		s.len = 0;
	}
	return s;
}
