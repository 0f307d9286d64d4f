/*
 * mqtt_encode.c - struct mqtt_packet -> bytes, for MQTT 3.1, 3.1.1 and 5, and
 * the broker's PUBLISH fast path (struct mqtt_pub_out).
 *
 * Each per-packet encoder writes the variable header and payload through a
 * struct bytes_wr and runs twice: first counting (to learn the remaining length
 * that precedes the body), then writing into one buf_reserve. Encoders only
 * refuse what cannot be represented (HQ_EINVAL); they trust the caller's
 * values otherwise, the decoder being the side that distrusts.
 */
#include <assert.h>

#include "core/buf.h"
#include "mqtt/mqtt_int.h"

/* true if a v5 property section would carry anything (user properties are
 * only ever written through `extra`) */
static bool props_nonempty(const struct mqtt_props *p)
{
	return (p->present & ~MQTT_PROP_BIT(MQTT_PROP_USER)) != 0 || p->extra_len != 0;
}

static int enc_connect(struct bytes_wr *w, uint8_t version, const struct mqtt_packet *pkt)
{
	const struct mqtt_connect *c = &pkt->u.connect;
	const char *name = version == MQTT_V31 ? "MQIsdp" : "MQTT";
	uint8_t f = 0;
	int rc;

	if (c->has_will && c->will.qos > 2)
		return HQ_EINVAL;
	if (c->clean_start)
		f |= 0x02;
	if (c->has_will)
		f |= (uint8_t)(0x04 | c->will.qos << 3 | (c->will.retain ? 0x20 : 0));
	if (c->has_password)
		f |= 0x40;
	if (c->has_username)
		f |= 0x80;
	mqtt_wr_str(w, (const uint8_t *)name, (uint16_t)strlen(name));
	bytes_wr_u8(w, version);
	bytes_wr_u8(w, f);
	bytes_wr_u16(w, c->keepalive);
	if (version == MQTT_V5 && (rc = mqtt_props_write(w, MQTT_CONNECT, &c->props)) != HQ_OK)
		return rc;
	mqtt_wr_str(w, c->client_id.p, c->client_id.len);
	if (c->has_will) {
		if (version == MQTT_V5 &&
		    (rc = mqtt_props_write(w, MQTT_PK_WILL, &c->will.props)) != HQ_OK)
			return rc;
		mqtt_wr_str(w, c->will.topic.p, c->will.topic.len);
		mqtt_wr_str(w, c->will.payload, c->will.payload_len);
	}
	if (c->has_username)
		mqtt_wr_str(w, c->username.p, c->username.len);
	if (c->has_password)
		mqtt_wr_str(w, c->password.p, c->password.len);
	return HQ_OK;
}

static int enc_connack(struct bytes_wr *w, uint8_t version, const struct mqtt_packet *pkt)
{
	const struct mqtt_connack *c = &pkt->u.connack;

	bytes_wr_u8(w, c->session_present ? 1 : 0);
	bytes_wr_u8(w, c->reason);
	if (version == MQTT_V5)
		return mqtt_props_write(w, MQTT_CONNACK, &c->props);
	return HQ_OK;
}

static int enc_publish(struct bytes_wr *w, uint8_t version, const struct mqtt_packet *pkt)
{
	const struct mqtt_publish *pb = &pkt->u.publish;
	int rc;

	if (pb->qos > 2)
		return HQ_EINVAL;
	mqtt_wr_str(w, pb->topic.p, pb->topic.len);
	if (pb->qos > 0)
		bytes_wr_u16(w, pb->packet_id);
	if (version == MQTT_V5 && (rc = mqtt_props_write(w, MQTT_PUBLISH, &pb->props)) != HQ_OK)
		return rc;
	bytes_wr_bytes(w, pb->payload, pb->payload_len);
	return HQ_OK;
}

/* PUBACK, PUBREC, PUBREL, PUBCOMP: in v5 the shortest form the spec allows
 * (3.4.2.1): reason and property length are left out when they say nothing */
static int enc_ack(struct bytes_wr *w, uint8_t version, const struct mqtt_packet *pkt)
{
	const struct mqtt_ack *a = &pkt->u.ack;

	bytes_wr_u16(w, a->packet_id);
	if (version != MQTT_V5)
		return HQ_OK;
	bool props = props_nonempty(&a->props);
	if (a->reason == 0 && !props)
		return HQ_OK;
	bytes_wr_u8(w, a->reason);
	if (!props)
		return HQ_OK;
	return mqtt_props_write(w, pkt->type, &a->props);
}

/* SUBSCRIBE and UNSUBSCRIBE: the entry list comes pre-encoded */
static int enc_subscribe(struct bytes_wr *w, uint8_t version, const struct mqtt_packet *pkt)
{
	const struct mqtt_subscribe *s = &pkt->u.subscribe;
	int rc;

	if (s->list_len == 0)
		return HQ_EINVAL;  /* [MQTT-3.8.3-3] / [MQTT-3.10.3-2] */
	bytes_wr_u16(w, s->packet_id);
	if (version == MQTT_V5 && (rc = mqtt_props_write(w, pkt->type, &s->props)) != HQ_OK)
		return rc;
	bytes_wr_bytes(w, s->list, s->list_len);
	return HQ_OK;
}

/* SUBACK and UNSUBACK (a 3.x UNSUBACK carries no codes) */
static int enc_suback(struct bytes_wr *w, uint8_t version, const struct mqtt_packet *pkt)
{
	const struct mqtt_suback *s = &pkt->u.suback;
	int rc;

	bytes_wr_u16(w, s->packet_id);
	if (pkt->type == MQTT_UNSUBACK && version != MQTT_V5)
		return HQ_OK;
	if (version == MQTT_V5 && (rc = mqtt_props_write(w, pkt->type, &s->props)) != HQ_OK)
		return rc;
	bytes_wr_bytes(w, s->codes, s->count);
	return HQ_OK;
}

static int enc_empty(struct bytes_wr *w, uint8_t version, const struct mqtt_packet *pkt)
{
	return HQ_OK;
}

/* DISCONNECT and AUTH: empty body for "success, no properties" (3.14.2.1) */
static int enc_disconnect(struct bytes_wr *w, uint8_t version, const struct mqtt_packet *pkt)
{
	const struct mqtt_disconnect *d = &pkt->u.disconnect;

	if (version != MQTT_V5)
		return HQ_OK;
	bool props = props_nonempty(&d->props);
	if (d->reason == 0 && !props)
		return HQ_OK;
	bytes_wr_u8(w, d->reason);
	if (!props)
		return HQ_OK;
	return mqtt_props_write(w, pkt->type, &d->props);
}

static int (*const encoders[16])(struct bytes_wr *, uint8_t, const struct mqtt_packet *) = {
	[MQTT_CONNECT] = enc_connect,
	[MQTT_CONNACK] = enc_connack,
	[MQTT_PUBLISH] = enc_publish,
	[MQTT_PUBACK] = enc_ack,
	[MQTT_PUBREC] = enc_ack,
	[MQTT_PUBREL] = enc_ack,
	[MQTT_PUBCOMP] = enc_ack,
	[MQTT_SUBSCRIBE] = enc_subscribe,
	[MQTT_SUBACK] = enc_suback,
	[MQTT_UNSUBSCRIBE] = enc_subscribe,
	[MQTT_UNSUBACK] = enc_suback,
	[MQTT_PINGREQ] = enc_empty,
	[MQTT_PINGRESP] = enc_empty,
	[MQTT_DISCONNECT] = enc_disconnect,
	[MQTT_AUTH] = enc_disconnect,
};

static uint8_t fixed_flags(const struct mqtt_packet *pkt)
{
	const struct mqtt_publish *pb = &pkt->u.publish;

	switch (pkt->type) {
	case MQTT_PUBLISH:
		/* DUP only means something with QoS > 0 [MQTT-3.3.1-2] */
		return (uint8_t)((pb->dup && pb->qos ? 0x08 : 0) | pb->qos << 1 |
				 (pb->retain ? 0x01 : 0));
	case MQTT_PUBREL:
	case MQTT_SUBSCRIBE:
	case MQTT_UNSUBSCRIBE:
		return 0x02;  /* [MQTT-3.6.1-1] [MQTT-3.8.1-1] [MQTT-3.10.1-1] */
	default:
		return 0;
	}
}

int mqtt_encode(struct buf *out, uint8_t version, const struct mqtt_packet *pkt)
{
	struct bytes_wr count;
	int rc;

	bytes_wr_count(&count);

	if (version != MQTT_V31 && version != MQTT_V311 && version != MQTT_V5)
		return HQ_EINVAL;
	if (pkt->type == 0 || pkt->type > MQTT_AUTH ||
	    (pkt->type == MQTT_AUTH && version != MQTT_V5))
		return HQ_EINVAL;
	rc = encoders[pkt->type](&count, version, pkt);
	if (rc != HQ_OK)
		return rc;
	if (count.n > MQTT_VARINT_MAX)
		return HQ_EINVAL;

	size_t total = 1 + bytes_varint_size((uint32_t)count.n) + count.n;
	uint8_t *q = buf_reserve(out, total);
	q[0] = (uint8_t)(pkt->type << 4 | fixed_flags(pkt));
	size_t hl = 1 + bytes_varint_put(q + 1, (uint32_t)count.n);
	struct bytes_wr body;
	bytes_wr_fixed(&body, q + hl, count.n);
	rc = encoders[pkt->type](&body, version, pkt);
	assert(rc == HQ_OK && body.rc == HQ_OK && body.n == count.n);
	out->len += total;
	return HQ_OK;
}

void mqtt_sub_append(struct buf *list, const char *filter, uint8_t options)
{
	size_t n = strlen(filter);

	assert(n <= UINT16_MAX);  /* local caller's string, not peer input */
	struct bytes_wr w;
	bytes_wr_buf(&w, list);
	mqtt_wr_str(&w, (const uint8_t *)filter, (uint16_t)n);
	bytes_wr_u8(&w, options);
	bytes_wr_end(&w);
}

void mqtt_unsub_append(struct buf *list, const char *filter)
{
	size_t n = strlen(filter);

	assert(n <= UINT16_MAX);
	struct bytes_wr w;
	bytes_wr_buf(&w, list);
	mqtt_wr_str(&w, (const uint8_t *)filter, (uint16_t)n);
	bytes_wr_end(&w);
}

/* ---- PUBLISH fast path ---- */

/* Property section length of an outgoing v5 PUBLISH (without its prefix). */
static size_t pub_props_len(const struct mqtt_pub_out *p)
{
	size_t n = p->props_len;

	if (p->has_expiry)
		n += 5;
	for (unsigned i = 0; i < p->n_sub_ids; i++)
		n += 1 + bytes_varint_size(p->sub_ids[i]);
	if (p->topic_alias)
		n += 3;
	return n;
}

static size_t pub_rem_len(uint8_t version, const struct mqtt_pub_out *p, size_t props_len)
{
	size_t n = 2 + (size_t)p->topic_len + (p->qos ? 2 : 0) + p->payload_len;

	if (version == MQTT_V5)
		n += bytes_varint_size((uint32_t)props_len) + props_len;
	return n;
}

size_t mqtt_pub_out_size(uint8_t version, const struct mqtt_pub_out *p)
{
	size_t pl = version == MQTT_V5 ? pub_props_len(p) : 0;
	size_t rem = pub_rem_len(version, p, pl);

	return 1 + bytes_varint_size((uint32_t)rem) + rem;
}

static void pub_out_write(struct buf *out, uint8_t version, const struct mqtt_pub_out *p,
			  bool with_payload)
{
	size_t pl = version == MQTT_V5 ? pub_props_len(p) : 0;
	size_t rem = pub_rem_len(version, p, pl);
	size_t total = 1 + bytes_varint_size((uint32_t)rem) + rem;
	if (!with_payload)
		total -= p->payload_len;

	assert(rem <= MQTT_VARINT_MAX && p->qos <= 2);
	/* the size is exact, so bare stores (core/bytes.h): this runs once per
	 * delivery, and the writer's per-field bounds check would cost ~20% */
	uint8_t *q0 = buf_reserve(out, total), *q = q0;
	q = bytes_st_u8(q, (uint8_t)(0x30 | (p->dup && p->qos ? 0x08 : 0) | p->qos << 1 |
				     (p->retain ? 0x01 : 0)));
	q = bytes_st_varint(q, (uint32_t)rem);
	q = bytes_st_u16(q, p->topic_len);
	q = bytes_st_mem(q, p->topic, p->topic_len);
	if (p->qos)
		q = bytes_st_u16(q, p->packet_id);
	if (version == MQTT_V5) {
		/* id order, like mqtt_props_write; the forwarded blob last */
		q = bytes_st_varint(q, (uint32_t)pl);
		if (p->has_expiry) {
			q = bytes_st_u8(q, MQTT_PROP_MESSAGE_EXPIRY);
			q = bytes_st_u32(q, p->expiry);
		}
		for (unsigned i = 0; i < p->n_sub_ids; i++) {
			q = bytes_st_u8(q, MQTT_PROP_SUBSCRIPTION_ID);
			q = bytes_st_varint(q, p->sub_ids[i]);
		}
		if (p->topic_alias) {
			q = bytes_st_u8(q, MQTT_PROP_TOPIC_ALIAS);
			q = bytes_st_u16(q, p->topic_alias);
		}
		q = bytes_st_mem(q, p->props, p->props_len);
	}
	if (with_payload)
		q = bytes_st_mem(q, p->payload, p->payload_len);
	assert((size_t)(q - q0) == total);
	out->len += total;
}

void mqtt_pub_out_encode(struct buf *out, uint8_t version, const struct mqtt_pub_out *p)
{
	pub_out_write(out, version, p, true);
}

void mqtt_pub_out_encode_head(struct buf *out, uint8_t version, const struct mqtt_pub_out *p)
{
	pub_out_write(out, version, p, false);
}
