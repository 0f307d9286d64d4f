/*
 * brk_dispatch.c - packet dispatch table and the one mapping from error codes
 * to MQTT v5 reason codes.
 *
 * Every packet from a client goes through brk_handle_packet: decode, check it
 * is allowed in the connection's state, call the handler. Any error closes the
 * connection (v5: DISCONNECT with the reason code from brk_reason_from_err;
 * v3: close only) and logs one line naming the client and the violation.
 */
#include "broker/brk_int.h"
#include "core/err.h"
#include "core/log.h"

#include <stdio.h>

typedef int (*pkt_handler)(struct conn *c, const struct mqtt_packet *p);

static int handle_ack(struct conn *c, const struct mqtt_packet *p);
static int handle_pubrel(struct conn *c, const struct mqtt_packet *p);
static int handle_ping(struct conn *c, const struct mqtt_packet *p);
static int handle_disconnect(struct conn *c, const struct mqtt_packet *p);
static int handle_auth(struct conn *c, const struct mqtt_packet *p);

static const struct {
	pkt_handler fn;
	uint8_t min_version;   /* 0 = any */
	bool client_may_send;
} dispatch[16] = {
	[MQTT_CONNECT] = { brk_handle_connect, 0, true },
	[MQTT_PUBLISH] = { brk_handle_publish, 0, true },
	[MQTT_PUBACK] = { handle_ack, 0, true },
	[MQTT_PUBREC] = { handle_ack, 0, true },
	[MQTT_PUBREL] = { handle_pubrel, 0, true },
	[MQTT_PUBCOMP] = { handle_ack, 0, true },
	[MQTT_SUBSCRIBE] = { brk_handle_subscribe, 0, true },
	[MQTT_UNSUBSCRIBE] = { brk_handle_unsubscribe, 0, true },
	[MQTT_PINGREQ] = { handle_ping, 0, true },
	[MQTT_DISCONNECT] = { handle_disconnect, 0, true },
	[MQTT_AUTH] = { handle_auth, MQTT_V5, true },
};

uint8_t brk_reason_from_err(int err)
{
	switch (err) {
	case HQ_EMALFORMED: return MQTT_RC_MALFORMED_PACKET;
	case HQ_EPROTOCOL: return MQTT_RC_PROTOCOL_ERROR;
	case HQ_ETOOLARGE: return MQTT_RC_PACKET_TOO_LARGE;
	case HQ_EVERSION: return MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION;
	case HQ_ETOPIC: return MQTT_RC_TOPIC_NAME_INVALID;
	case HQ_EALIAS: return MQTT_RC_TOPIC_ALIAS_INVALID;
	case HQ_ELIMIT: return MQTT_RC_QUOTA_EXCEEDED;
	case HQ_ERECVMAX: return MQTT_RC_RECEIVE_MAX_EXCEEDED;
	case HQ_EAUTH: return MQTT_RC_NOT_AUTHORIZED;
	case HQ_EIDREJECT: return MQTT_RC_CLIENT_ID_NOT_VALID;
	default: return MQTT_RC_UNSPECIFIED;
	}
}

int brk_handle_packet(struct conn *c, const uint8_t *p, size_t n)
{
	WK_ASSERT_OWNER(c->w);
	struct mqtt_packet pkt;
	const char *why = NULL;
	int type = p[0] >> 4;

	if (c->state == CS_NEW && c->eauth) /* an AUTH exchange before CONNACK */
		return brk_eauth_pre_connack(c, p, n);
	if (c->state == CS_NEW && type != MQTT_CONNECT) {
		/* [MQTT-3.1.0-1] the first packet must be CONNECT */
		conn_close(c, -1, "first packet is not CONNECT");
		return HQ_EPROTOCOL;
	}
	int rc = mqtt_decode(p, n, c->version, &pkt, &why);
	if (rc == HQ_OK && (type == 0 || !dispatch[type].client_may_send ||
			    !dispatch[type].fn || c->version < dispatch[type].min_version)) {
		rc = HQ_EPROTOCOL;
		why = "packet type not allowed from a client";
	}
	if (rc == HQ_OK && type == MQTT_CONNECT && c->state != CS_NEW) {
		rc = HQ_EPROTOCOL; /* [MQTT-3.1.0-2] */
		why = "second CONNECT";
	}
	if (rc != HQ_OK) {
		if (type == MQTT_CONNECT && c->state == CS_NEW)
			return brk_handle_connect_error(c, p, n, rc, why);
		char msg[160];
		snprintf(msg, sizeof(msg), "%s: %s", hq_strerror(rc), why ? why : mqtt_type_name(type));
		conn_close(c, brk_reason_from_err(rc), msg);
		return rc;
	}
	log_debug("client_id=%s recv %s", c->client_id ? c->client_id : "", mqtt_type_name(type));
	if (type != MQTT_CONNECT) /* CONNECT: at its CONNACK, once the client id is known */
		brk_trace_in(c, &pkt);
	rc = dispatch[type].fn(c, &pkt);
	return rc;
}

static int handle_ack(struct conn *c, const struct mqtt_packet *p)
{
	if (c->sess)
		sess_handle_puback(c->sess, p->type, p->u.ack.packet_id, p->u.ack.reason);
	return HQ_OK;
}

static int handle_pubrel(struct conn *c, const struct mqtt_packet *p)
{
	uint16_t pid = p->u.ack.packet_id;
	uint32_t mark = brk_store_mark(c->w);
	bool known = sess_rx_pid_del(c->sess, pid);
	/* PUBCOMP only once the id is free in the store too: the client may
	 * reuse it at once, and a stale stored id would drop that message */
	brk_store_gate(c, mark, 0, 0);
	/* [MQTT-4.3.3-11] PUBCOMP even when unknown; v5 says so with 0x92 */
	conn_send_ack(c, MQTT_PUBCOMP, pid, known ? 0 : MQTT_RC_PACKET_ID_NOT_FOUND);
	return HQ_OK;
}

static int handle_ping(struct conn *c, const struct mqtt_packet *p)
{
	uint8_t *o = buf_reserve(&c->out, 2);
	o[0] = MQTT_PINGRESP << 4;
	o[1] = 0;
	c->out.len += 2;
	if (c->trace_mask)
		brk_trace_ack(c, MQTT_PINGRESP, 0, 0, false);
	conn_mark_dirty(c);
	return HQ_OK;
}

static int handle_disconnect(struct conn *c, const struct mqtt_packet *p)
{
	const struct mqtt_disconnect *d = &p->u.disconnect;
	struct session *s = c->sess;
	if (c->version == MQTT_V5 && (d->props.present & MQTT_PROP_BIT(MQTT_PROP_SESSION_EXPIRY))) {
		/* [MQTT-3.14.2-2] cannot turn a 0 expiry into a non-zero one */
		if (s->expiry == 0 && d->props.session_expiry != 0) {
			conn_close(c, MQTT_RC_PROTOCOL_ERROR, "session expiry set in DISCONNECT after 0 in CONNECT");
			return HQ_EPROTOCOL;
		}
		uint32_t e = d->props.session_expiry;
		uint32_t cap = c->w->b->cfg->session_expiry_max;
		if (cap && e > cap)
			e = cap;
		s->expiry = e;
	}
	/* [MQTT-3.14.4-3] a normal disconnect discards the will; 0x04 keeps it */
	if (d->reason != MQTT_RC_DISCONNECT_WITH_WILL) {
		c->disconnect_normal = true;
		sess_set_will(s, NULL, 0);
	}
	char why[64];
	snprintf(why, sizeof(why), "client sent DISCONNECT 0x%02x", d->reason);
	conn_close(c, -1, why);
	return HQ_OK;
}

static int handle_auth(struct conn *c, const struct mqtt_packet *p)
{
	return brk_eauth_packet(c, p); /* re-authentication, or a protocol error */
}
