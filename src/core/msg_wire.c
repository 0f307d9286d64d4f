/* msg_wire.c - the shared message encoding (layout in msg_wire.h). */
#include "core/msg_wire.h"

/* a u32 length then the bytes */
static void put_bin(struct bytes_wr *w, const uint8_t *p, size_t n)
{
	if (n > UINT32_MAX)
		bytes_wr_fail(w, HQ_ETOOLARGE, "message field longer than 4 GiB");
	bytes_wr_check(w, !n || p, "message field without bytes");
	bytes_wr_u32(w, (uint32_t)n);
	bytes_wr_bytes(w, p, n);
}

void msg_wire_put_topic(struct bytes_wr *w, const struct msg_wire *m)
{
	bytes_wr_check(w, m->topic_len >= 1 && m->topic_len <= UINT16_MAX && m->topic,
		       "message topic empty or longer than 65535 bytes");
	bytes_wr_u16(w, (uint16_t)m->topic_len);
	bytes_wr_bytes(w, m->topic, m->topic_len);
}

void msg_wire_put_body(struct bytes_wr *w, const struct msg_wire *m)
{
	bytes_wr_check(w, m->qos <= 2, "message QoS above 2");
	bytes_wr_u8(w, m->qos);
	bytes_wr_u8(w, (m->retain ? MSG_WIRE_RETAIN : 0) | (m->has_expiry ? MSG_WIRE_EXPIRY : 0));
	if (m->has_expiry)
		bytes_wr_u32(w, m->expiry);
	bytes_wr_u32(w, m->pub_hash);
	put_bin(w, m->props, m->props_len);
	put_bin(w, m->payload, m->payload_len);
}

void msg_wire_put(struct bytes_wr *w, const struct msg_wire *m)
{
	msg_wire_put_topic(w, m);
	msg_wire_put_body(w, m);
}

void msg_wire_get_topic(struct bytes_rd *r, struct msg_wire *m)
{
	size_t n = bytes_rd_u16(r);
	const uint8_t *p = bytes_rd_take(r, n);

	bytes_rd_check(r, n >= 1, "empty message topic");
	m->topic = bytes_rd_ok(r) ? p : NULL;
	m->topic_len = bytes_rd_ok(r) ? n : 0;
}

static const uint8_t *get_bin(struct bytes_rd *r, size_t *n)
{
	size_t len = bytes_rd_u32(r);
	const uint8_t *p = bytes_rd_take(r, len);

	*n = p ? len : 0;
	return p;
}

void msg_wire_get_body(struct bytes_rd *r, struct msg_wire *m)
{
	m->qos = bytes_rd_u8(r);
	uint8_t f = bytes_rd_u8(r);
	bytes_rd_check(r, m->qos <= 2, "message QoS above 2");
	bytes_rd_check(r, !(f & ~(MSG_WIRE_RETAIN | MSG_WIRE_EXPIRY)),
		       "reserved message flag set");
	m->retain = f & MSG_WIRE_RETAIN;
	m->has_expiry = f & MSG_WIRE_EXPIRY;
	m->expiry = m->has_expiry ? bytes_rd_u32(r) : 0;
	m->pub_hash = bytes_rd_u32(r);
	m->props = get_bin(r, &m->props_len);
	m->payload = get_bin(r, &m->payload_len);
}

void msg_wire_get(struct bytes_rd *r, struct msg_wire *m)
{
	msg_wire_get_topic(r, m);
	msg_wire_get_body(r, m);
}
