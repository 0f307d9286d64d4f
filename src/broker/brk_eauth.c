/*
 * brk_eauth.c - MQTT v5 enhanced authentication on a connection: the AUTH
 * exchange between CONNECT and CONNACK, and re-authentication (AUTH 0x19)
 * on a live connection. The method itself (SCRAM-SHA-512) is src/auth's
 * (auth.h auth_ext_*); this file is the MQTT side of it.
 *
 * During the first exchange the connection stays CS_NEW with c->eauth set:
 * mqtt.connect_timeout (brk_worker.c tick_cb) runs from the TCP accept over
 * the whole exchange, and only AUTH and DISCONNECT are accepted
 * [MQTT-3.1.2-30]; anything else, or an AUTH out of sequence, gets CONNACK
 * 0x82 (no DISCONNECT may precede CONNACK [MQTT-3.14.0-1]). Every AUTH and
 * the successful CONNACK repeat the CONNECT's method [MQTT-4.12.0-5].
 *
 * Ownership: c->eauth (struct conn_eauth) and what it holds belong to the
 * connection and move with it between workers; only its owner touches it.
 */
#include "broker/brk_int.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

#include <stdio.h>
#include <string.h>

struct conn_eauth {
	struct auth_ext *x;       /* owned */
	uint8_t *final;           /* server-final data for the CONNACK (owned) or NULL */
	size_t final_len;
	bool reauth;              /* a re-authentication runs (CS_ACTIVE) */
};

int brk_eauth_begin(struct conn *c, const struct mqtt_str *method)
{
	struct auth_ext *x = auth_ext_new(c->w->b->auth, (const char *)method->p, method->len);
	if (!x)
		return HQ_EAUTH;
	c->eauth = hq_calloc(1, sizeof(*c->eauth));
	c->eauth->x = x;
	return HQ_OK;
}

void brk_eauth_conn_free(struct conn *c)
{
	if (!c->eauth)
		return;
	auth_ext_free(c->eauth->x);
	hq_free(c->eauth->final);
	HQ_FREE(c->eauth);
}

void brk_eauth_connack_props(struct conn *c, struct mqtt_props *pr)
{
	struct conn_eauth *e = c->eauth;
	const char *m = auth_ext_method(e->x);
	pr->present |= MQTT_PROP_BIT(MQTT_PROP_AUTH_METHOD);
	pr->auth_method.p = (const uint8_t *)m;
	pr->auth_method.len = (uint16_t)strlen(m);
	if (e->final) {
		pr->present |= MQTT_PROP_BIT(MQTT_PROP_AUTH_DATA);
		pr->auth_data.p = e->final;
		pr->auth_data.len = (uint16_t)e->final_len;
	}
}

void brk_eauth_connack_sent(struct conn *c)
{
	hq_free(c->eauth->final);
	c->eauth->final = NULL;
}

static void send_auth(struct conn *c, uint8_t reason, const uint8_t *data, size_t len)
{
	struct mqtt_packet p = { .type = MQTT_AUTH };
	struct mqtt_props *pr = &p.u.disconnect.props;
	const char *m = auth_ext_method(c->eauth->x);
	p.u.disconnect.reason = reason;
	pr->present = MQTT_PROP_BIT(MQTT_PROP_AUTH_METHOD);
	pr->auth_method.p = (const uint8_t *)m;
	pr->auth_method.len = (uint16_t)strlen(m);
	if (data) {
		pr->present |= MQTT_PROP_BIT(MQTT_PROP_AUTH_DATA);
		pr->auth_data.p = data;
		pr->auth_data.len = (uint16_t)len;
	}
	conn_send_packet(c, &p);
}

/* The client's Authentication Data into the method: the exchange goes on
 * (AUTH 0x18 sent), succeeds or fails (rc and *why for the caller). */
static enum auth_ext_rc step(struct conn *c, const struct mqtt_props *pr, const char **why)
{
	bool has = pr->present & MQTT_PROP_BIT(MQTT_PROP_AUTH_DATA);
	uint8_t *out = NULL;
	size_t outlen = 0;
	enum auth_ext_rc rc = auth_ext_step(c->w->b->auth, c->eauth->x, has ? pr->auth_data.p : NULL,
					    has ? pr->auth_data.len : 0, &out, &outlen, why);
	if (rc == AUTH_EXT_CONTINUE) {
		send_auth(c, MQTT_RC_CONTINUE_AUTH, out, outlen);
		hq_free(out);
	} else if (rc == AUTH_EXT_OK) {
		hq_free(c->eauth->final);
		c->eauth->final = out;
		c->eauth->final_len = outlen;
	} else {
		hq_free(out);
	}
	return rc;
}

/* The method authenticated the user: it is the connection's user name; a
 * User Name field (or a certificate's CN) naming someone else is refused. */
static bool user_matches(struct conn *c)
{
	const char *u = auth_ext_user(c->eauth->x);
	if (c->username)
		return strcmp(c->username, u) == 0;
	c->username = hq_strdup(u);
	return true;
}

static void connect_step_done(struct conn *c, enum auth_ext_rc rc, const char *why)
{
	struct auth_answer ans = { .rc = AUTH_ALLOW };
	if (rc == AUTH_EXT_CONTINUE)
		return;
	if (rc == AUTH_EXT_OK && !user_matches(c)) {
		rc = AUTH_EXT_NOT_AUTHORIZED;
		why = "the User Name field names another user than the authentication method";
	}
	if (rc == AUTH_EXT_OK && banned_username(c->w->b, c->username)) {
		/* CONNECT's ban check knew only the User Name field, if any */
		brk_connect_refuse(c, MQTT_RC_BANNED, "banned (user name, after enhanced authentication)");
		return;
	}
	if (rc != AUTH_EXT_OK)
		ans.rc = rc == AUTH_EXT_BAD_CREDENTIALS ? AUTH_BAD_CREDENTIALS : AUTH_NOT_AUTHORIZED;
	snprintf(ans.why, sizeof(ans.why), "%s", why ? why : "");
	brk_connect_auth_done(c, &ans); /* CONNACK (with c->eauth->final) or refusal */
}

int brk_eauth_connect(struct conn *c, const struct mqtt_connect *k)
{
	const char *why = "";
	enum auth_ext_rc rc = step(c, &k->props, &why); /* sets why: not in one expression */
	connect_step_done(c, rc, why);
	return HQ_OK;
}

/* The method of an AUTH must be the CONNECT's [MQTT-4.12.0-5]. */
static bool same_method(const struct conn *c, const struct mqtt_props *pr)
{
	const char *m = auth_ext_method(c->eauth->x);
	return (pr->present & MQTT_PROP_BIT(MQTT_PROP_AUTH_METHOD)) &&
	       pr->auth_method.len == strlen(m) && memcmp(pr->auth_method.p, m, pr->auth_method.len) == 0;
}

int brk_eauth_pre_connack(struct conn *c, const uint8_t *p, size_t n)
{
	struct mqtt_packet pkt;
	const char *why = NULL;
	int type = p[0] >> 4;
	if (type != MQTT_AUTH && type != MQTT_DISCONNECT) {
		brk_connect_refuse(c, MQTT_RC_PROTOCOL_ERROR,
				   "a packet other than AUTH or DISCONNECT before CONNACK");
		return HQ_EPROTOCOL;
	}
	int rc = mqtt_decode(p, n, c->version, &pkt, &why);
	if (rc != HQ_OK) {
		char msg[160];
		snprintf(msg, sizeof(msg), "%s: %s", hq_strerror(rc), why ? why : mqtt_type_name(type));
		brk_connect_refuse(c, brk_reason_from_err(rc), msg);
		return rc;
	}
	if (type == MQTT_DISCONNECT) {
		conn_close(c, -1, "client sent DISCONNECT during enhanced authentication");
		return HQ_OK;
	}
	const struct mqtt_disconnect *a = &pkt.u.disconnect;
	if (a->reason != MQTT_RC_CONTINUE_AUTH || !same_method(c, &a->props)) {
		/* [MQTT-4.12.0-3] the client answers with 0x18 and the same method */
		brk_connect_refuse(c, MQTT_RC_PROTOCOL_ERROR, a->reason != MQTT_RC_CONTINUE_AUTH ?
				   "AUTH before CONNACK without reason 0x18" :
				   "AUTH with another authentication method than CONNECT's");
		return HQ_EPROTOCOL;
	}
	why = "";
	enum auth_ext_rc erc = step(c, &a->props, &why);
	connect_step_done(c, erc, why);
	return HQ_OK;
}

/* Re-authentication on a live connection (4.12.1): the same method and the
 * same user; while it runs the connection goes on as it was. A failure
 * ends the connection with DISCONNECT 0x87 [MQTT-4.12.1-2]. */
int brk_eauth_packet(struct conn *c, const struct mqtt_packet *p)
{
	const struct mqtt_disconnect *a = &p->u.disconnect;
	if (!c->eauth) {
		/* [MQTT-4.12.0-7] no method in CONNECT: no AUTH */
		conn_close(c, MQTT_RC_PROTOCOL_ERROR, "AUTH without an authentication method");
		return HQ_EPROTOCOL;
	}
	struct conn_eauth *e = c->eauth;
	const char *bad = NULL;
	if (!same_method(c, &a->props))
		bad = "AUTH with another authentication method than CONNECT's"; /* [MQTT-4.12.1-1] */
	else if (a->reason == MQTT_RC_REAUTHENTICATE && e->reauth)
		bad = "AUTH 0x19 while a re-authentication runs";
	else if (a->reason == MQTT_RC_CONTINUE_AUTH && !e->reauth)
		bad = "AUTH 0x18 outside an authentication exchange";
	else if (a->reason == MQTT_RC_SUCCESS)
		bad = "AUTH 0x00 from a client";
	if (bad) {
		conn_close(c, MQTT_RC_PROTOCOL_ERROR, bad);
		return HQ_EPROTOCOL;
	}
	if (a->reason == MQTT_RC_REAUTHENTICATE) {
		auth_ext_restart(e->x);
		e->reauth = true;
	}
	const char *why = "";
	enum auth_ext_rc rc = step(c, &a->props, &why);
	if (rc == AUTH_EXT_CONTINUE)
		return HQ_OK;
	e->reauth = false;
	if (rc == AUTH_EXT_OK && (!c->username || strcmp(c->username, auth_ext_user(e->x)) != 0)) {
		rc = AUTH_EXT_NOT_AUTHORIZED;
		why = "re-authentication as another user";
	}
	if (rc != AUTH_EXT_OK) {
		log_notice("re-authentication failed client_id=%s addr=%s username=%s reason=\"%s\"",
			   c->client_id, c->addr, c->username ? c->username : "", why);
		conn_close(c, MQTT_RC_NOT_AUTHORIZED, "re-authentication failed");
		return HQ_EAUTH;
	}
	log_info("client re-authenticated client_id=%s username=%s (%s)", c->client_id, c->username, why);
	send_auth(c, MQTT_RC_SUCCESS, e->final, e->final_len);
	hq_free(e->final);
	e->final = NULL;
	return HQ_OK;
}
