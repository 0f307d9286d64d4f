/*
 * mqtt_decode.c - framing and per-packet decoding, bytes -> struct mqtt_packet.
 *
 * Every check the specification allows without session state is made here
 * (see mqtt.h); each cites the normative statement it enforces. Decoders read
 * through a struct bytes_rd whose errors are sticky and which never reads past
 * its end, so any byte string is safe input: this file is fuzzed.
 *
 * Errors: bytes that cannot be parsed, reserved bits, QoS 3 and similar are
 * HQ_EMALFORMED; well-formed but forbidden values are HQ_EPROTOCOL; wildcards
 * in a topic name are HQ_ETOPIC; an unsupported CONNECT level is HQ_EVERSION.
 */
#include "mqtt/mqtt_int.h"

/* v5 reason codes each packet may carry (spec 3.x.2.1 tables) */
static const uint8_t rc_connack[] = {
	0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A,
	0x8C, 0x90, 0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
};
static const uint8_t rc_puback[] = {   /* also PUBREC */
	0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99,
};
static const uint8_t rc_pubrel[] = { 0x00, 0x92 };  /* also PUBCOMP */
static const uint8_t rc_suback[] = {
	0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
};
static const uint8_t rc_suback_v3[] = { 0x00, 0x01, 0x02, 0x80 };  /* [MQTT-3.9.3-2] */
static const uint8_t rc_unsuback[] = { 0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91 };
static const uint8_t rc_disconnect[] = {
	0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F,
	0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D,
	0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
};
static const uint8_t rc_auth[] = { 0x00, 0x18, 0x19 };

#define RC_OK(list, rc) (memchr((list), (rc), sizeof(list)) != NULL)

static void check_reason(struct bytes_rd *r, bool ok)
{
	if (!ok)
		bytes_rd_fail(r, HQ_EPROTOCOL, "reason code not valid for this packet");
}

static void read_packet_id(struct bytes_rd *r, uint16_t *id)
{
	*id = bytes_rd_u16(r);
	if (r->rc == HQ_OK && *id == 0)
		bytes_rd_fail(r, HQ_EPROTOCOL, "packet identifier 0");  /* [MQTT-2.2.1-3] */
}

static bool str_is(struct mqtt_str s, const char *lit)
{
	size_t n = strlen(lit);
	return s.len == n && memcmp(s.p, lit, n) == 0;
}

static void dec_connect(struct bytes_rd *r, uint8_t version, struct mqtt_packet *out)
{
	struct mqtt_connect *c = &out->u.connect;

	/* name and level first, so that on HQ_EVERSION the caller still has them
	 * and can answer with the right CONNACK */
	c->proto_name = mqtt_rd_bin(r);
	c->version = bytes_rd_u8(r);
	if (r->rc != HQ_OK)
		return;
	bool is_mqtt = str_is(c->proto_name, "MQTT");
	bool is_isdp = str_is(c->proto_name, "MQIsdp");
	if (!is_mqtt && !is_isdp) {
		/* [MQTT-3.1.2-1]: not this protocol at all, so no CONNACK */
		bytes_rd_fail(r, HQ_EPROTOCOL, "unknown protocol name");
		return;
	}
	if ((is_mqtt && c->version != MQTT_V311 && c->version != MQTT_V5) ||
	    (is_isdp && c->version != MQTT_V31)) {
		bytes_rd_fail(r, HQ_EVERSION, "unsupported protocol level");  /* [MQTT-3.1.2-2] */
		return;
	}
	version = c->version;

	uint8_t f = bytes_rd_u8(r);
	c->keepalive = bytes_rd_u16(r);
	if (r->rc != HQ_OK)
		return;
	c->clean_start = f & 0x02;
	c->has_will = f & 0x04;
	c->will.qos = (f >> 3) & 0x03;
	c->will.retain = f & 0x20;
	c->has_password = f & 0x40;
	c->has_username = f & 0x80;
	if (f & 0x01)
		bytes_rd_fail(r, HQ_EMALFORMED, "reserved bit in CONNECT flags");  /* [MQTT-3.1.2-3] */
	else if (!c->has_will && (c->will.qos || c->will.retain))
		/* [MQTT-3.1.2-11] [MQTT-3.1.2-13] [MQTT-3.1.2-15] */
		bytes_rd_fail(r, HQ_EMALFORMED, "will QoS or retain without will flag");
	else if (c->will.qos == 3)
		bytes_rd_fail(r, HQ_EMALFORMED, "will QoS 3");  /* [MQTT-3.1.2-14] */
	else if (version < MQTT_V5 && c->has_password && !c->has_username)
		/* [MQTT-3.1.2-22]; MQTT 5 dropped this rule */
		bytes_rd_fail(r, HQ_EMALFORMED, "password flag without user name flag");

	if (version == MQTT_V5)
		mqtt_props_read(r, MQTT_CONNECT, &c->props);
	c->client_id = mqtt_rd_utf8(r, "invalid UTF-8 in client identifier");
	if (c->has_will) {
		if (version == MQTT_V5)
			mqtt_props_read(r, MQTT_PK_WILL, &c->will.props);
		c->will.topic = mqtt_rd_utf8(r, "invalid UTF-8 in will topic");
		if (r->rc == HQ_OK && (c->will.topic.len == 0 ||
				       mqtt_has_wildcard(c->will.topic.p, c->will.topic.len)))
			/* [MQTT-3.1.3-11] a topic name; [MQTT-4.7.3-1] not empty */
			bytes_rd_fail(r, HQ_ETOPIC, "invalid will topic");
		struct mqtt_str pl = mqtt_rd_bin(r);
		c->will.payload = pl.p;
		c->will.payload_len = pl.len;
	}
	if (c->has_username)
		c->username = mqtt_rd_utf8(r, "invalid UTF-8 in user name");
	if (c->has_password)
		c->password = mqtt_rd_bin(r);
}

static void dec_connack(struct bytes_rd *r, uint8_t version, struct mqtt_packet *out)
{
	struct mqtt_connack *c = &out->u.connack;
	uint8_t f = bytes_rd_u8(r);

	c->reason = bytes_rd_u8(r);
	if (r->rc != HQ_OK)
		return;
	c->session_present = f & 0x01;
	/* [MQTT-3.2.2-1] (3.1.1 and 5); MQTT 3.1 had no flags in this byte */
	if (version != MQTT_V31 && (f & 0xFE)) {
		bytes_rd_fail(r, HQ_EMALFORMED, "reserved bits in CONNACK flags");
		return;
	}
	if (version != MQTT_V5) {
		if (c->reason > MQTT_V3_NOT_AUTHORIZED)
			bytes_rd_fail(r, HQ_EPROTOCOL, "reserved CONNACK return code");
		return;
	}
	check_reason(r, RC_OK(rc_connack, c->reason));
	/* a 2-byte CONNACK is what a 3.1.1-only server answers a v5 CONNECT with
	 * (rc 1); accept it as "no properties" so the client can read the code */
	if (bytes_rd_left(r))
		mqtt_props_read(r, MQTT_CONNACK, &c->props);
}

static void dec_publish(struct bytes_rd *r, uint8_t version, struct mqtt_packet *out)
{
	struct mqtt_publish *pb = &out->u.publish;

	pb->dup = out->flags & 0x08;
	pb->qos = (out->flags >> 1) & 0x03;
	pb->retain = out->flags & 0x01;
	if (pb->qos == 3) {
		bytes_rd_fail(r, HQ_EMALFORMED, "PUBLISH QoS 3");  /* [MQTT-3.3.1-4] */
		return;
	}
	if (pb->dup && pb->qos == 0) {
		bytes_rd_fail(r, HQ_EMALFORMED, "DUP set on a QoS 0 PUBLISH");  /* [MQTT-3.3.1-2] */
		return;
	}
	pb->topic = mqtt_rd_utf8(r, "invalid UTF-8 in topic name");
	if (r->rc != HQ_OK)
		return;
	if (mqtt_has_wildcard(pb->topic.p, pb->topic.len)) {
		bytes_rd_fail(r, HQ_ETOPIC, "wildcard in PUBLISH topic name");  /* [MQTT-3.3.2-2] */
		return;
	}
	/* [MQTT-4.7.3-1]; in v5 an empty name goes with a topic alias, which only
	 * the broker can resolve */
	if (pb->topic.len == 0 && version != MQTT_V5) {
		bytes_rd_fail(r, HQ_EPROTOCOL, "empty PUBLISH topic name");
		return;
	}
	if (pb->qos > 0)
		read_packet_id(r, &pb->packet_id);
	if (version == MQTT_V5)
		mqtt_props_read(r, MQTT_PUBLISH, &pb->props);
	pb->payload = r->p + r->pos;
	pb->payload_len = (uint32_t)bytes_rd_left(r);
	r->pos = r->len;
}

/* PUBACK, PUBREC, PUBREL, PUBCOMP */
static void dec_ack(struct bytes_rd *r, uint8_t version, struct mqtt_packet *out)
{
	struct mqtt_ack *a = &out->u.ack;

	read_packet_id(r, &a->packet_id);
	/* v5: remaining length 2 = success without properties, 3 = reason only
	 * (spec 3.4.2.1); before v5 exactly 2, enforced by the trailing check */
	if (version != MQTT_V5 || bytes_rd_left(r) == 0)
		return;
	a->reason = bytes_rd_u8(r);
	bool ok = (out->type == MQTT_PUBACK || out->type == MQTT_PUBREC) ?
		  RC_OK(rc_puback, a->reason) : RC_OK(rc_pubrel, a->reason);
	check_reason(r, ok);
	if (bytes_rd_left(r))
		mqtt_props_read(r, out->type, &a->props);
}

/* SUBSCRIBE and UNSUBSCRIBE: validate the list once so the walkers need not */
static void dec_subscribe(struct bytes_rd *r, uint8_t version, struct mqtt_packet *out)
{
	struct mqtt_subscribe *s = &out->u.subscribe;
	bool sub = out->type == MQTT_SUBSCRIBE;
	uint32_t count = 0;

	read_packet_id(r, &s->packet_id);
	if (version == MQTT_V5)
		mqtt_props_read(r, out->type, &s->props);
	if (r->rc != HQ_OK)
		return;
	s->list = r->p + r->pos;
	s->list_len = (uint32_t)bytes_rd_left(r);
	while (r->pos < r->len) {
		mqtt_rd_utf8(r, "invalid UTF-8 in topic filter");
		if (sub) {
			uint8_t o = bytes_rd_u8(r);
			if (r->rc != HQ_OK)
				break;
			/* [MQTT-3.8.3-5]; before v5 only the QoS bits exist
			 * ([MQTT-3.8.3-4] in 3.1.1) */
			if (o & (version == MQTT_V5 ? 0xC0 : 0xFC))
				bytes_rd_fail(r, HQ_EMALFORMED, "reserved bits in subscription options");
			else if ((o & MQTT_SUBOPT_QOS_MASK) == 3)
				/* v5 3.8.3.1: a Protocol Error; 3.1.1 just closes */
				bytes_rd_fail(r, HQ_EPROTOCOL, "subscription QoS 3");
			else if ((o & MQTT_SUBOPT_RH_MASK) >> MQTT_SUBOPT_RH_SHIFT == 3)
				bytes_rd_fail(r, HQ_EPROTOCOL, "retain handling 3");  /* 3.8.3.1 */
		}
		if (r->rc == HQ_OK && ++count > UINT16_MAX)
			bytes_rd_fail(r, HQ_ETOOLARGE, "more than 65535 topic filters");
	}
	if (r->rc == HQ_OK && count == 0)
		/* [MQTT-3.8.3-3] / [MQTT-3.10.3-2] */
		bytes_rd_fail(r, HQ_EPROTOCOL, sub ? "SUBSCRIBE without topic filters" :
					       "UNSUBSCRIBE without topic filters");
	s->count = (uint16_t)count;
}

/* SUBACK and UNSUBACK */
static void dec_suback(struct bytes_rd *r, uint8_t version, struct mqtt_packet *out)
{
	struct mqtt_suback *s = &out->u.suback;
	bool sub = out->type == MQTT_SUBACK;

	read_packet_id(r, &s->packet_id);
	/* a 3.x UNSUBACK is the packet id alone; the trailing check enforces it */
	if (!sub && version != MQTT_V5)
		return;
	if (version == MQTT_V5)
		mqtt_props_read(r, out->type, &s->props);
	if (r->rc != HQ_OK)
		return;
	size_t n = bytes_rd_left(r);
	if (n == 0) {
		bytes_rd_fail(r, HQ_EPROTOCOL, "acknowledgement without reason codes");
		return;
	}
	if (n > UINT16_MAX) {
		bytes_rd_fail(r, HQ_ETOOLARGE, "more than 65535 reason codes");
		return;
	}
	s->codes = r->p + r->pos;
	s->count = (uint16_t)n;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = s->codes[i];
		bool ok = version != MQTT_V5 ? RC_OK(rc_suback_v3, c) :
			  sub ? RC_OK(rc_suback, c) : RC_OK(rc_unsuback, c);
		if (!ok) {
			check_reason(r, false);
			return;
		}
	}
	r->pos = r->len;
}

/* PINGREQ, PINGRESP: no body; the trailing check rejects one */
static void dec_empty(struct bytes_rd *r, uint8_t version, struct mqtt_packet *out)
{
}

/* DISCONNECT and AUTH: in v5 an empty body means reason 0, one byte means
 * reason without properties (spec 3.14.2.1, 3.15.2.1) */
static void dec_disconnect(struct bytes_rd *r, uint8_t version, struct mqtt_packet *out)
{
	struct mqtt_disconnect *d = &out->u.disconnect;

	if (version != MQTT_V5 || bytes_rd_left(r) == 0)
		return;
	d->reason = bytes_rd_u8(r);
	check_reason(r, out->type == MQTT_AUTH ? RC_OK(rc_auth, d->reason) :
						  RC_OK(rc_disconnect, d->reason));
	if (bytes_rd_left(r))
		mqtt_props_read(r, out->type, &d->props);
}

#define FLAGS_ANY 0xFF

static const struct {
	void (*dec)(struct bytes_rd *r, uint8_t version, struct mqtt_packet *out);
	uint8_t flags;              /* required fixed-header flags [MQTT-2.2.2-1] */
	const char *flags_why;
} decoders[16] = {
	[MQTT_CONNECT] = { dec_connect, 0x0, "reserved flags in CONNECT" },
	[MQTT_CONNACK] = { dec_connack, 0x0, "reserved flags in CONNACK" },
	[MQTT_PUBLISH] = { dec_publish, FLAGS_ANY, NULL },
	[MQTT_PUBACK] = { dec_ack, 0x0, "reserved flags in PUBACK" },
	[MQTT_PUBREC] = { dec_ack, 0x0, "reserved flags in PUBREC" },
	[MQTT_PUBREL] = { dec_ack, 0x2, "reserved flags in PUBREL" },
	[MQTT_PUBCOMP] = { dec_ack, 0x0, "reserved flags in PUBCOMP" },
	[MQTT_SUBSCRIBE] = { dec_subscribe, 0x2, "reserved flags in SUBSCRIBE" },
	[MQTT_SUBACK] = { dec_suback, 0x0, "reserved flags in SUBACK" },
	[MQTT_UNSUBSCRIBE] = { dec_subscribe, 0x2, "reserved flags in UNSUBSCRIBE" },
	[MQTT_UNSUBACK] = { dec_suback, 0x0, "reserved flags in UNSUBACK" },
	[MQTT_PINGREQ] = { dec_empty, 0x0, "reserved flags in PINGREQ" },
	[MQTT_PINGRESP] = { dec_empty, 0x0, "reserved flags in PINGRESP" },
	[MQTT_DISCONNECT] = { dec_disconnect, 0x0, "reserved flags in DISCONNECT" },
	[MQTT_AUTH] = { dec_disconnect, 0x0, "reserved flags in AUTH" },
};

int mqtt_frame(const uint8_t *p, size_t n, uint32_t max_size, size_t *hdr_len,
	       uint32_t *rem_len)
{
	uint32_t v;

	if (n < 2)
		return HQ_EAGAIN;
	int used = bytes_varint_get(p + 1, n - 1, &v);
	if (used == 0)
		return HQ_EAGAIN;
	if (used < 0)
		return HQ_EMALFORMED;
	*hdr_len = 1 + (size_t)used;
	*rem_len = v;
	if (max_size && *hdr_len + v > max_size)
		return HQ_ETOOLARGE;
	return HQ_OK;
}

int mqtt_decode(const uint8_t *p, size_t n, uint8_t version, struct mqtt_packet *out,
		const char **why)
{
	const char *w = NULL;
	struct bytes_rd r;
	size_t hl = 0;
	uint32_t rl = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = mqtt_frame(p, n, 0, &hl, &rl);
	if (rc != HQ_OK) {
		rc = HQ_EMALFORMED;
		w = "invalid fixed header";
		goto out;
	}
	if (hl + rl != n) {
		rc = HQ_EMALFORMED;
		w = "remaining length does not match the packet";
		goto out;
	}
	out->type = p[0] >> 4;
	out->flags = p[0] & 0x0F;
	if (out->type != MQTT_CONNECT &&
	    version != MQTT_V31 && version != MQTT_V311 && version != MQTT_V5) {
		rc = HQ_EINVAL;
		w = "no protocol version negotiated";
		goto out;
	}
	if (out->type == 0 || (out->type == MQTT_AUTH && version != MQTT_V5)) {
		rc = HQ_EMALFORMED;  /* reserved packet types (3.1.1 table 2.1) */
		w = "reserved packet type";
		goto out;
	}
	/* MQTT 3.1 only says "not used" of these bits, and its clients set DUP on
	 * resent PUBREL/SUBSCRIBE/UNSUBSCRIBE: check them from 3.1.1 on */
	uint8_t want = decoders[out->type].flags;
	bool strict = out->type == MQTT_CONNECT || version != MQTT_V31;
	if (want != FLAGS_ANY && strict && out->flags != want) {
		rc = HQ_EMALFORMED;  /* [MQTT-2.2.2-1] [MQTT-2.2.2-2] */
		w = decoders[out->type].flags_why;
		goto out;
	}

	bytes_rd_init(&r, p + hl, rl);
	decoders[out->type].dec(&r, version, out);
	if (r.rc == HQ_OK && r.pos != r.len)
		bytes_rd_fail(&r, HQ_EMALFORMED, "unexpected bytes at the end of the packet");
	rc = r.rc;
	w = r.why;
out:
	if (why)
		*why = w;
	return rc;
}

bool mqtt_sub_next(const struct mqtt_subscribe *s, uint32_t *cursor,
		   struct mqtt_str *filter, uint8_t *options)
{
	struct bytes_rd r;

	if (*cursor >= s->list_len)
		return false;
	bytes_rd_init(&r, s->list, s->list_len);
	r.pos = *cursor;
	*filter = mqtt_rd_bin(&r);
	*options = bytes_rd_u8(&r);
	if (r.rc != HQ_OK) {
		*cursor = s->list_len;
		return false;
	}
	*cursor = (uint32_t)r.pos;
	return true;
}

bool mqtt_unsub_next(const struct mqtt_subscribe *s, uint32_t *cursor,
		     struct mqtt_str *filter)
{
	struct bytes_rd r;

	if (*cursor >= s->list_len)
		return false;
	bytes_rd_init(&r, s->list, s->list_len);
	r.pos = *cursor;
	*filter = mqtt_rd_bin(&r);
	if (r.rc != HQ_OK) {
		*cursor = s->list_len;
		return false;
	}
	*cursor = (uint32_t)r.pos;
	return true;
}
