/*
 * mqtt_props.c - MQTT 5 properties (spec 2.2.2): the one property table and
 * everything driven by it: decoding with duplicate / placement / range checks,
 * encoding in id order, walking user properties, and the forwardable blob.
 *
 * The table is indexed by property id. Fixed-size values are stored through
 * `off` (an offsetof into struct mqtt_props) so the decoder and the encoder
 * share one description instead of two parallel switch statements; only user
 * properties and subscription identifiers (repeatable) are special-cased.
 */
#include <assert.h>
#include <stddef.h>

#include "core/buf.h"
#include "mqtt/mqtt_int.h"

#define PK MQTT_PK
#define W MQTT_PK(MQTT_PK_WILL)
#define ALL_ACKS (PK(MQTT_PUBACK) | PK(MQTT_PUBREC) | PK(MQTT_PUBREL) | PK(MQTT_PUBCOMP))
#define EVERY (W | PK(MQTT_CONNECT) | PK(MQTT_CONNACK) | PK(MQTT_PUBLISH) | ALL_ACKS | \
	       PK(MQTT_SUBSCRIBE) | PK(MQTT_SUBACK) | PK(MQTT_UNSUBSCRIBE) | \
	       PK(MQTT_UNSUBACK) | PK(MQTT_DISCONNECT) | PK(MQTT_AUTH))

/* One entry; the why texts are string literals built from id and name so that
 * `why` can stay a static string and still name the property. */
#define PROP(id, ty, chk, allow, mult, field, nm)                                 \
	[id] = { .type = MQTT_PT_##ty, .check = MQTT_PC_##chk, .allowed = (allow),    \
		 .multi = (mult), .off = (field), .name = nm,                          \
		 .dup_why = "duplicate property " #id " (" nm ")",                     \
		 .bad_why = "invalid value for property " #id " (" nm ")",             \
		 .where_why = "property " #id " (" nm ") not allowed in this packet" }
#define F(f) offsetof(struct mqtt_props, f)

/* Spec table 2-4, with the value constraints from each packet's section. */
const struct mqtt_prop_def mqtt_prop_defs[MQTT_PROP_ID_MAX + 1] = {
	PROP(0x01, BYTE, BOOL, PK(MQTT_PUBLISH) | W, 0, F(payload_format), "payload format"),
	PROP(0x02, U32, NONE, PK(MQTT_PUBLISH) | W, 0, F(message_expiry), "message expiry"),
	PROP(0x03, UTF8, NONE, PK(MQTT_PUBLISH) | W, 0, F(content_type), "content type"),
	PROP(0x08, UTF8, TOPIC, PK(MQTT_PUBLISH) | W, 0, F(response_topic), "response topic"),
	PROP(0x09, BIN, NONE, PK(MQTT_PUBLISH) | W, 0, F(correlation_data), "correlation data"),
	/* repeatable in PUBLISH (one per matching subscription), once in SUBSCRIBE */
	PROP(0x0B, VARINT, NONZERO, PK(MQTT_PUBLISH) | PK(MQTT_SUBSCRIBE), PK(MQTT_PUBLISH), 0,
	     "subscription identifier"),
	PROP(0x11, U32, NONE, PK(MQTT_CONNECT) | PK(MQTT_CONNACK) | PK(MQTT_DISCONNECT), 0,
	     F(session_expiry), "session expiry"),
	PROP(0x12, UTF8, NONE, PK(MQTT_CONNACK), 0, F(assigned_client_id), "assigned client id"),
	PROP(0x13, U16, NONE, PK(MQTT_CONNACK), 0, F(server_keep_alive), "server keep alive"),
	PROP(0x15, UTF8, NONE, PK(MQTT_CONNECT) | PK(MQTT_CONNACK) | PK(MQTT_AUTH), 0,
	     F(auth_method), "authentication method"),
	PROP(0x16, BIN, NONE, PK(MQTT_CONNECT) | PK(MQTT_CONNACK) | PK(MQTT_AUTH), 0,
	     F(auth_data), "authentication data"),
	PROP(0x17, BYTE, BOOL, PK(MQTT_CONNECT), 0, F(request_problem_info),
	     "request problem information"),
	PROP(0x18, U32, NONE, W, 0, F(will_delay), "will delay interval"),
	PROP(0x19, BYTE, BOOL, PK(MQTT_CONNECT), 0, F(request_response_info),
	     "request response information"),
	PROP(0x1A, UTF8, NONE, PK(MQTT_CONNACK), 0, F(response_info), "response information"),
	PROP(0x1C, UTF8, NONE, PK(MQTT_CONNACK) | PK(MQTT_DISCONNECT), 0, F(server_reference),
	     "server reference"),
	PROP(0x1F, UTF8, NONE, PK(MQTT_CONNACK) | ALL_ACKS | PK(MQTT_SUBACK) | PK(MQTT_UNSUBACK) |
	     PK(MQTT_DISCONNECT) | PK(MQTT_AUTH), 0, F(reason_string), "reason string"),
	PROP(0x21, U16, NONZERO, PK(MQTT_CONNECT) | PK(MQTT_CONNACK), 0, F(receive_max),
	     "receive maximum"),
	PROP(0x22, U16, NONE, PK(MQTT_CONNECT) | PK(MQTT_CONNACK), 0, F(topic_alias_max),
	     "topic alias maximum"),
	PROP(0x23, U16, NONZERO, PK(MQTT_PUBLISH), 0, F(topic_alias), "topic alias"),
	PROP(0x24, BYTE, BOOL, PK(MQTT_CONNACK), 0, F(max_qos), "maximum QoS"),
	PROP(0x25, BYTE, BOOL, PK(MQTT_CONNACK), 0, F(retain_available), "retain available"),
	PROP(0x26, PAIR, NONE, EVERY, EVERY, 0, "user property"),
	PROP(0x27, U32, NONZERO, PK(MQTT_CONNECT) | PK(MQTT_CONNACK), 0, F(max_packet_size),
	     "maximum packet size"),
	PROP(0x28, BYTE, BOOL, PK(MQTT_CONNACK), 0, F(wildcard_sub_avail),
	     "wildcard subscription available"),
	PROP(0x29, BYTE, BOOL, PK(MQTT_CONNACK), 0, F(sub_id_avail),
	     "subscription identifier available"),
	PROP(0x2A, BYTE, BOOL, PK(MQTT_CONNACK), 0, F(shared_sub_avail),
	     "shared subscription available"),
};

static const struct mqtt_prop_def *prop_def(uint8_t id)
{
	if (id > MQTT_PROP_ID_MAX || mqtt_prop_defs[id].type == MQTT_PT_NONE)
		return NULL;
	return &mqtt_prop_defs[id];
}

/* Read one property value of def's type into out. */
static void read_value(struct bytes_rd *r, const struct mqtt_prop_def *d,
		       struct mqtt_props *out)
{
	uint8_t *field = (uint8_t *)out + d->off;
	uint32_t v = 0;
	struct mqtt_str s;

	switch (d->type) {
	case MQTT_PT_BYTE:
		v = bytes_rd_u8(r);
		*field = (uint8_t)v;
		break;
	case MQTT_PT_U16:
		v = bytes_rd_u16(r);
		memcpy(field, &(uint16_t){ (uint16_t)v }, sizeof(uint16_t));
		break;
	case MQTT_PT_U32:
		v = bytes_rd_u32(r);
		memcpy(field, &v, sizeof(uint32_t));
		break;
	case MQTT_PT_VARINT:        /* subscription identifier, the only one */
		v = bytes_rd_varint(r);
		/* more than MQTT_MAX_SUB_IDS are validated but not kept */
		if (out->n_sub_ids < MQTT_MAX_SUB_IDS)
			out->sub_ids[out->n_sub_ids++] = v;
		break;
	case MQTT_PT_UTF8:
		s = mqtt_rd_utf8(r, "invalid UTF-8 in a string property");
		memcpy(field, &s, sizeof(s));
		if (d->check == MQTT_PC_TOPIC && r->rc == HQ_OK &&
		    (s.len == 0 || mqtt_has_wildcard(s.p, s.len)))
			bytes_rd_fail(r, HQ_EPROTOCOL, d->bad_why);  /* [MQTT-3.3.2-14] */
		return;
	case MQTT_PT_BIN:
		s = mqtt_rd_bin(r);
		memcpy(field, &s, sizeof(s));
		return;
	case MQTT_PT_PAIR:
		mqtt_rd_utf8(r, "invalid UTF-8 in a user property name");
		mqtt_rd_utf8(r, "invalid UTF-8 in a user property value");
		/* saturates: a count is only advisory, the walk is authoritative */
		if (out->n_user < UINT16_MAX)
			out->n_user++;
		return;
	}
	if (r->rc != HQ_OK)
		return;
	if (d->check == MQTT_PC_BOOL && v > 1)
		bytes_rd_fail(r, HQ_EPROTOCOL, d->bad_why);
	else if (d->check == MQTT_PC_NONZERO && v == 0)
		/* a zero topic alias has its own reason code, 0x94 [MQTT-3.3.2-8] */
		bytes_rd_fail(r, (d - mqtt_prop_defs) == MQTT_PROP_TOPIC_ALIAS ? HQ_EALIAS : HQ_EPROTOCOL, d->bad_why);
}

void mqtt_props_read(struct bytes_rd *r, int ptype, struct mqtt_props *out)
{
	memset(out, 0, sizeof(*out));
	uint32_t plen = bytes_rd_varint(r);
	if (!bytes_rd_need(r, plen))
		return;

	/* the properties are decoded by a sub-reader bounded by their length, so
	 * a value cannot run into whatever follows the property section */
	struct bytes_rd sub;
	bytes_rd_init(&sub, r->p + r->pos, plen);
	out->raw = sub.p;
	out->raw_len = plen;
	r->pos += plen;

	uint16_t mask = MQTT_PK(ptype);
	while (sub.rc == HQ_OK && sub.pos < sub.len) {
		/* ids are variable byte integers, but every defined one is < 0x80,
		 * so a byte with the top bit set can only be an unknown id */
		uint8_t id = bytes_rd_u8(&sub);
		const struct mqtt_prop_def *d = prop_def(id);
		if (!d) {
			bytes_rd_fail(&sub, HQ_EMALFORMED, "unknown property id");
			break;
		}
		if (!(d->allowed & mask)) {
			bytes_rd_fail(&sub, HQ_EMALFORMED, d->where_why);
			break;
		}
		if ((out->present & MQTT_PROP_BIT(id)) && !(d->multi & mask)) {
			bytes_rd_fail(&sub, HQ_EPROTOCOL, d->dup_why);
			break;
		}
		out->present |= MQTT_PROP_BIT(id);
		read_value(&sub, d, out);
	}
	/* spec 3.1.2.11.10: authentication data without a method is a protocol error */
	if (sub.rc == HQ_OK && (out->present & MQTT_PROP_BIT(MQTT_PROP_AUTH_DATA)) &&
	    !(out->present & MQTT_PROP_BIT(MQTT_PROP_AUTH_METHOD)))
		bytes_rd_fail(&sub, HQ_EPROTOCOL, "authentication data without a method");
	if (sub.rc != HQ_OK)
		bytes_rd_fail(r, sub.rc, sub.why);
}

/* Write the property section body (no length prefix). */
static void write_body(struct bytes_wr *w, const struct mqtt_props *p)
{
	for (uint8_t id = 1; id <= MQTT_PROP_ID_MAX; id++) {
		const struct mqtt_prop_def *d = &mqtt_prop_defs[id];
		if (d->type == MQTT_PT_NONE || d->type == MQTT_PT_PAIR ||
		    !(p->present & MQTT_PROP_BIT(id)))
			continue;
		const uint8_t *field = (const uint8_t *)p + d->off;
		uint16_t v16;
		uint32_t v32;
		struct mqtt_str s;

		if (d->type == MQTT_PT_VARINT) {
			/* a set bit with no count still means one identifier */
			unsigned n = p->n_sub_ids ? p->n_sub_ids : 1;
			if (n > MQTT_MAX_SUB_IDS)
				n = MQTT_MAX_SUB_IDS;
			for (unsigned i = 0; i < n; i++) {
				bytes_wr_u8(w, id);
				bytes_wr_varint(w, p->sub_ids[i]);
			}
			continue;
		}
		bytes_wr_u8(w, id);
		switch (d->type) {
		case MQTT_PT_BYTE:
			bytes_wr_u8(w, *field);
			break;
		case MQTT_PT_U16:
			memcpy(&v16, field, sizeof(v16));
			bytes_wr_u16(w, v16);
			break;
		case MQTT_PT_U32:
			memcpy(&v32, field, sizeof(v32));
			bytes_wr_u32(w, v32);
			break;
		case MQTT_PT_UTF8:
		case MQTT_PT_BIN:
			memcpy(&s, field, sizeof(s));
			mqtt_wr_str(w, s.p, s.len);
			break;
		}
	}
	bytes_wr_bytes(w, p->extra, p->extra_len);
}

int mqtt_props_write(struct bytes_wr *w, int ptype, const struct mqtt_props *p)
{
	uint16_t mask = MQTT_PK(ptype);

	for (uint8_t id = 1; id <= MQTT_PROP_ID_MAX; id++) {
		if (!(p->present & MQTT_PROP_BIT(id)) || id == MQTT_PROP_USER)
			continue;
		const struct mqtt_prop_def *d = prop_def(id);
		if (!d || !(d->allowed & mask))
			return HQ_EINVAL;
	}
	if (p->present & MQTT_PROP_BIT(MQTT_PROP_SUBSCRIPTION_ID))
		for (unsigned i = 0; i < p->n_sub_ids && i < MQTT_MAX_SUB_IDS; i++)
			if (p->sub_ids[i] > MQTT_VARINT_MAX)
				return HQ_EINVAL;

	/* count first: the length prefix precedes the properties */
	struct bytes_wr count;
	bytes_wr_count(&count);
	write_body(&count, p);
	if (count.n > MQTT_VARINT_MAX)
		return HQ_EINVAL;
	bytes_wr_varint(w, (uint32_t)count.n);
	write_body(w, p);
	return HQ_OK;
}

/*
 * Size of the property starting at raw[pos], or 0 if it does not fit. Only
 * used on property sections the decoder accepted, but bounds-checked anyway so
 * a caller handing in a hand-made struct cannot make it read past raw_len.
 */
static size_t prop_size(const uint8_t *raw, size_t len, size_t pos)
{
	struct bytes_rd r;

	bytes_rd_init(&r, raw + pos, len - pos);
	const struct mqtt_prop_def *d = prop_def(bytes_rd_u8(&r));
	if (!d)
		return 0;
	switch (d->type) {
	case MQTT_PT_BYTE: bytes_rd_u8(&r); break;
	case MQTT_PT_U16: bytes_rd_u16(&r); break;
	case MQTT_PT_U32: bytes_rd_u32(&r); break;
	case MQTT_PT_VARINT: bytes_rd_varint(&r); break;
	case MQTT_PT_UTF8:
	case MQTT_PT_BIN: mqtt_rd_bin(&r); break;
	case MQTT_PT_PAIR: mqtt_rd_bin(&r); mqtt_rd_bin(&r); break;
	}
	return r.rc == HQ_OK ? r.pos : 0;
}

bool mqtt_props_user_next(const struct mqtt_props *p, uint32_t *cursor,
			  struct mqtt_str *key, struct mqtt_str *val)
{
	while (*cursor < p->raw_len) {
		size_t pos = *cursor;
		size_t n = prop_size(p->raw, p->raw_len, pos);
		if (n == 0) {
			*cursor = p->raw_len;
			return false;
		}
		*cursor = (uint32_t)(pos + n);
		if (p->raw[pos] != MQTT_PROP_USER)
			continue;
		struct bytes_rd r;
		bytes_rd_init(&r, p->raw + pos + 1, n - 1);
		*key = mqtt_rd_bin(&r);
		*val = mqtt_rd_bin(&r);
		return true;
	}
	return false;
}

void mqtt_props_forwardable(const struct mqtt_props *p, struct buf *out)
{
	size_t pos = 0;

	while (pos < p->raw_len) {
		size_t n = prop_size(p->raw, p->raw_len, pos);
		if (n == 0)
			break;
		switch (p->raw[pos]) {
		case MQTT_PROP_PAYLOAD_FORMAT:
		case MQTT_PROP_CONTENT_TYPE:
		case MQTT_PROP_RESPONSE_TOPIC:
		case MQTT_PROP_CORRELATION_DATA:
		case MQTT_PROP_USER:
			/* copied verbatim: they were validated on the way in and the
			 * spec (3.3.2.3) requires them forwarded unaltered */
			buf_append(out, p->raw + pos, n);
			break;
		}
		pos += n;
	}
}

void mqtt_props_user_append(struct buf *blob, const char *key, const char *val)
{
	size_t kl = strlen(key), vl = strlen(val);

	assert(kl <= UINT16_MAX && vl <= UINT16_MAX);  /* local caller's strings */
	struct bytes_wr w;
	bytes_wr_buf(&w, blob);
	bytes_wr_u8(&w, MQTT_PROP_USER);
	mqtt_wr_str(&w, (const uint8_t *)key, (uint16_t)kl);
	mqtt_wr_str(&w, (const uint8_t *)val, (uint16_t)vl);
	bytes_wr_end(&w);
}
