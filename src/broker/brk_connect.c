/*
 * brk_connect.c - CONNECT: validation, the client-id registry, session
 * takeover and CONNACK.
 *
 * A client id maps to one session in the registry (mutex, connect path only).
 * Sessions never move between workers; connections do. A client resuming a
 * session owned by another worker is handed to that worker (WQ_ADOPT) with its
 * parsed CONNECT state, and the owner closes any older connection of the
 * session with 0x8E [MQTT-3.1.4-3]. A clean start replaces the registry entry
 * with a new session at once and tells the old session's owner to end it
 * (WQ_KILL). Racing connects are ordered by the registry lock and by each
 * worker's inbox: whichever registered last ends up connected, and only it.
 */
#include "broker/brk_int.h"
#include "broker/sess_serial.h"
#include "cluster/clu_types.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/rand.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static void send_connack(struct conn *c, bool present, uint8_t reason, bool full_props)
{
	struct broker *b = c->w->b;
	struct hq_config *cfg = b->cfg;
	struct mqtt_packet p = { .type = MQTT_CONNACK };
	struct mqtt_connack *a = &p.u.connack;
	char resp[128];
	a->session_present = present;
	a->reason = reason;
	if (c->version == MQTT_V5 && full_props) {
		struct mqtt_props *pr = &a->props;
		pr->present |= MQTT_PROP_BIT(MQTT_PROP_RECEIVE_MAX) |
			       MQTT_PROP_BIT(MQTT_PROP_MAX_PACKET_SIZE) |
			       MQTT_PROP_BIT(MQTT_PROP_RETAIN_AVAILABLE) |
			       MQTT_PROP_BIT(MQTT_PROP_WILDCARD_SUB_AVAIL) |
			       MQTT_PROP_BIT(MQTT_PROP_SUB_ID_AVAIL) |
			       MQTT_PROP_BIT(MQTT_PROP_SHARED_SUB_AVAIL);
		pr->receive_max = (uint16_t)cfg->receive_maximum;
		pr->max_packet_size = cfg->max_packet_size;
		pr->retain_available = cfg->retain_available;
		pr->wildcard_sub_avail = cfg->wildcard_subscription;
		pr->sub_id_avail = cfg->subscription_identifiers;
		pr->shared_sub_avail = cfg->shared_subscription;
		if (cfg->topic_alias_maximum) {
			pr->present |= MQTT_PROP_BIT(MQTT_PROP_TOPIC_ALIAS_MAX);
			pr->topic_alias_max = (uint16_t)cfg->topic_alias_maximum;
		}
		if (cfg->max_qos < 2) {
			/* absent means 2; 2 itself may not be sent [MQTT-3.2.2-9] */
			pr->present |= MQTT_PROP_BIT(MQTT_PROP_MAX_QOS);
			pr->max_qos = (uint8_t)cfg->max_qos;
		}
		if (c->id_assigned) {
			pr->present |= MQTT_PROP_BIT(MQTT_PROP_ASSIGNED_CLIENT_ID);
			pr->assigned_client_id.p = (const uint8_t *)c->client_id;
			pr->assigned_client_id.len = (uint16_t)strlen(c->client_id);
		}
		if (c->keepalive_changed) {
			pr->present |= MQTT_PROP_BIT(MQTT_PROP_SERVER_KEEP_ALIVE);
			pr->server_keep_alive = c->keepalive;
		}
		if (c->sess && c->sess->expiry != c->req_expiry_asked) {
			pr->present |= MQTT_PROP_BIT(MQTT_PROP_SESSION_EXPIRY);
			pr->session_expiry = c->sess->expiry;
		}
		if (c->request_response_info) {
			snprintf(resp, sizeof(resp), "response/%s", c->client_id);
			pr->present |= MQTT_PROP_BIT(MQTT_PROP_RESPONSE_INFO);
			pr->response_info.p = (const uint8_t *)resp;
			pr->response_info.len = (uint16_t)strlen(resp);
		}
	}
	if (c->eauth && full_props) /* [MQTT-4.12.0-5] the method, and the server's last data */
		brk_eauth_connack_props(c, &a->props);
	brk_trace_connect(c); /* the CONNECT line, before its CONNACK's */
	conn_send_packet(c, &p);
	c->sent_connack = true;
	if (c->eauth)
		brk_eauth_connack_sent(c);
}

/* Refuse a connection: CONNACK with the code (v5 reason or v3 return code),
 * then close [MQTT-3.2.2-6]. */
static int refuse_quiet(struct conn *c, uint8_t v5_reason, uint8_t v3_rc, const char *why)
{
	send_connack(c, false, c->version == MQTT_V5 ? v5_reason : v3_rc, false);
	/* the log line was ovl_event's (once per interval); the trace gets each */
	if (c->trace_mask)
		brk_trace_note(c, "connection refused: %s", why);
	c->sent_connack = false; /* no DISCONNECT after a refusing CONNACK */
	conn_close(c, -1, why);
	return HQ_EPROTOCOL;
}

static int refuse(struct conn *c, uint8_t v5_reason, uint8_t v3_rc, const char *why)
{
	uint8_t code = c->version == MQTT_V5 ? v5_reason : v3_rc;
	send_connack(c, false, code, false); /* first: it decides c's traces */
	brk_deny_log(c, "connection refused client_id=%s addr=%s proto=%d username=%s "
		     "code=0x%02x reason=\"%s\"", c->client_id ? c->client_id : "", c->addr,
		     c->version, c->username ? c->username : "", code, why);
	c->sent_connack = false; /* no DISCONNECT after a refusing CONNACK */
	conn_close(c, -1, why);
	return HQ_EPROTOCOL;
}

void brk_connect_refuse(struct conn *c, uint8_t v5_reason, const char *why)
{
	refuse(c, v5_reason, MQTT_V3_SERVER_UNAVAILABLE, why);
}

/* The CONNECT packet itself did not decode. */
int brk_handle_connect_error(struct conn *c, const uint8_t *p, size_t n, int rc, const char *why)
{
	WK_ASSERT_OWNER(c->w);
	/* find the protocol level byte without trusting the packet */
	size_t off = 1;
	while (off < n && off < 5 && (p[off] & 0x80))
		off++;
	off++;
	uint8_t level = 0;
	if (off + 2 <= n) {
		size_t nl = ((size_t)p[off] << 8) | p[off + 1];
		if (off + 2 + nl < n)
			level = p[off + 2 + nl];
	}
	char msg[160];
	snprintf(msg, sizeof(msg), "bad CONNECT: %s: %s", hq_strerror(rc), why ? why : "");
	if (rc == HQ_EVERSION) {
		/* [MQTT-3.1.2-2] unsupported level: 0x84 (v5) or return code 1 */
		c->version = level == MQTT_V5 ? MQTT_V5 : MQTT_V311;
		return refuse(c, MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION, MQTT_V3_BAD_VERSION, msg);
	}
	if (level == MQTT_V5) {
		c->version = MQTT_V5;
		return refuse(c, brk_reason_from_err(rc), 0, msg);
	}
	brk_deny_log(c, "connection refused addr=%s reason=\"%s\"", c->addr, msg);
	conn_close(c, -1, msg);
	return rc;
}

static void connect_register(struct worker *w, struct conn *c);

/* The user name is the connection's if the transport set one (a
 * certificate's CN), else the packet's. */
static int connect_username(struct conn *c, const struct mqtt_connect *k)
{
	if (!c->username && k->has_username) {
		c->username = hq_strndup((const char *)k->username.p, k->username.len);
		if (strlen(c->username) != k->username.len)
			return refuse(c, MQTT_RC_BAD_USERNAME_OR_PASSWORD, MQTT_V3_BAD_USER_PASS,
				      "user name contains U+0000");
	}
	return HQ_OK;
}

/* The chain allowed c (or was not asked): the ACL context (none for a
 * superuser; own: NULL or a method's rules for this client, a JWT's claims,
 * consumed), and the will's topic must be writable (Mosquitto refuses such
 * a CONNECT as not authorized too); then the client id is registered. */
static int connect_authorized(struct conn *c, bool superuser, struct acl_rules **own)
{
	struct worker *w = c->w;
	if (!superuser)
		c->acl = auth_client_new(w->b->auth, c->username, c->client_id, own);
	if (own && *own) {
		acl_unref(*own);
		*own = NULL;
	}
	if (c->acl && c->will) {
		bool ok = auth_client_allow(c->acl, ACL_WRITE, c->will->topic, c->will->topic_len, false);
		if (ok)
			STAT_ADD(w->st.acl_allow, 1);
		else
			STAT_ADD(w->st.acl_deny, 1);
		if (!ok)
			return refuse(c, MQTT_RC_NOT_AUTHORIZED, MQTT_V3_NOT_AUTHORIZED,
				      "the ACL denies writing the will topic");
	}
	/* in a cluster, the other nodes first give up any connection or
	 * session of this client id (brk_connect_resume continues) */
	if (!brk_cluster_takeover_begin(c))
		connect_register(c->w, c);
	return HQ_OK;
}

static int connect_refused(struct conn *c, enum auth_rc rc, const char *why)
{
	STAT_ADD(c->w->st.auth_refused, 1);
	/* [MQTT-3.2.2-6] a refusing CONNACK, then close */
	if (rc == AUTH_NOT_AUTHORIZED)
		return refuse(c, MQTT_RC_NOT_AUTHORIZED, MQTT_V3_NOT_AUTHORIZED, why);
	return refuse(c, MQTT_RC_BAD_USERNAME_OR_PASSWORD, MQTT_V3_BAD_USER_PASS, why);
}

/*
 * Authentication (src/auth/auth.h), the last check of the packet and before
 * the client id is registered, so a refused client never takes a session
 * over. The password is only passed on, never kept or logged. With no method
 * configured and anonymous clients allowed nothing is asked. A server method
 * (HTTP hook, Redis) answers later (brk_auth.c): everything the packet said
 * is in c by now, and brk_connect_auth_done goes on.
 */
static int connect_auth(struct conn *c, const struct mqtt_connect *k)
{
	struct worker *w = c->w;
	if (c->eauth) /* the method decides, over AUTH packets (brk_eauth.c) */
		return brk_eauth_connect(c, k);
	if (c->internal) /* a bridge's local side: trusted, no ACL (brk_bridge.c) */
		return connect_authorized(c, true, NULL);
	if (auth_connect_needed(w->b->auth)) {
		const char *why = "";
		struct auth_result res = { 0 }; /* a method's extras: a JWT's ACL, user name */
		struct auth_req r = { .client_id = c->client_id, .username = c->username,
				      .password = k->password.p, .password_len = k->password.len,
				      .has_password = k->has_password, .out = &res };
		enum auth_rc rc = brk_auth_begin(c, &r, &why);
		if (res.replace_username) {
			/* the field held a token: never log or keep it */
			hq_free(c->username);
			c->username = res.username;
			res.username = NULL;
		}
		hq_free(res.username);
		if (rc == AUTH_PENDING)
			return HQ_OK; /* no in-process method decided: res.acl is NULL */
		if (rc != AUTH_ALLOW)
			return connect_refused(c, rc, why); /* rules come only with an allow */
		STAT_ADD(w->st.auth_ok, 1);
		return connect_authorized(c, res.superuser, &res.acl);
	}
	return connect_authorized(c, false, NULL);
}

void brk_connect_auth_done(struct conn *c, const struct auth_answer *ans)
{
	WK_ASSERT_OWNER(c->w);
	if (ans->rc != AUTH_ALLOW) {
		connect_refused(c, ans->rc, ans->why);
		return;
	}
	STAT_ADD(c->w->st.auth_ok, 1);
	if (ans->superuser)
		log_info("client_id=%s authenticated as a superuser (%s): no ACL applies",
			 c->client_id, ans->why);
	connect_authorized(c, ans->superuser, NULL);
}

static void attach_and_ack(struct conn *c, struct session *s, bool present)
{
	struct broker *b = c->w->b;
	if (b->clu) {
		/* after a partition, the newer of two connections of an id wins */
		pthread_mutex_lock(&b->retain_lock);
		struct clu_hlc_ts ts = clu_hlc_now(&b->hlc, (uint64_t)clock_wall_ms());
		pthread_mutex_unlock(&b->retain_lock);
		atomic_store_explicit(&s->conn_hlc, clu_hlc_pack(ts), memory_order_relaxed);
	}
	sess_attach(s, c, present);
	send_connack(c, present, 0, true);
	c->state = CS_ACTIVE;
	STAT_ADD(c->w->st.conns_total, 1);
	log_info("client connected client_id=%s addr=%s%s%s proto=%d clean_start=%d keepalive=%u session_present=%d",
		 c->client_id, c->addr, c->username ? " username=" : "", c->username ? c->username : "",
		 c->version, c->clean_start, c->keepalive, present);
	if (present)
		sess_resend_inflight(s);
	sess_pump(s);
}

/* Runs on the session's worker: c resumes s (reference passed in and
 * consumed). The caller reads any packets pipelined after CONNECT. */
void brk_adopt(struct worker *w, struct conn *c, struct session *s)
{
	WK_ASSERT_OWNER(w);
	if (c->w != w)
		wk_conn_add(w, c);
	c->paused = false;
	/* watched by this worker's loop whatever happens next */
	if (ev_io_set(w->loop, &c->io, EV_READ) != HQ_OK) {
		sess_unref(s);
		conn_close(c, -1, "epoll failed");
		return;
	}
	if (!s->ended && s->conn && s->expiry == 0) {
		/* 3.1.2.11.2: a session with expiry 0 (or a v3 clean session)
		 * ends when its network connection closes, and the takeover
		 * closes it: the new connection starts a fresh session */
		sess_kill(s, MQTT_RC_SESSION_TAKEN_OVER);
	}
	if (!s->ended && !s->conn && s->expire_at && ev_now_ms(w->loop) >= s->expire_at) {
		/* expired, and the timer has not run yet (a restart that loaded
		 * it from the store, or within a tick): it is over */
		log_info("session expired client_id=%s", s->client_id);
		sess_end(s, true);
	}
	if (s->ended) {
		/* ended while c was in transit (a clean start won the race) or
		 * just above: register again from here */
		sess_unref(s);
		connect_register(w, c);
		return;
	}
	if (s->conn) {
		s->conn->taken_over = true;
		conn_close(s->conn, MQTT_RC_SESSION_TAKEN_OVER, "session taken over");
	}
	attach_and_ack(c, s, true);
	sess_unref(s);
}

static void connect_register(struct worker *w, struct conn *c)
{
	struct broker *b = w->b;
	struct session *e;
	size_t idlen = strlen(c->client_id);
	pthread_mutex_lock(&b->reg_lock);
	HASH_FIND(reg_hh, b->registry, c->client_id, idlen, e);
	if (!e && !c->clean_start && !c->store_read && brk_store_shared(b)) {
		/* held by no node: a dead node may have stored it */
		pthread_mutex_unlock(&b->reg_lock);
		brk_store_connect_read(c);
		return;
	}
	if (!e) {
		struct session *s = sess_new(w, c->client_id, idlen);
		/* the registry keeps sess_new's reference */
		s->in_registry = true;
		HASH_ADD_KEYPTR(reg_hh, b->registry, s->client_id, idlen, s);
		sess_ref(s);
		pthread_mutex_unlock(&b->reg_lock);
		attach_and_ack(c, s, false);
		sess_unref(s);
		return;
	}
	if (c->clean_start) {
		struct session *old = e; /* the registry's reference, now ours */
		struct session *s = sess_new(w, c->client_id, idlen);
		HASH_DELETE(reg_hh, b->registry, old);
		old->in_registry = false;
		s->in_registry = true;
		HASH_ADD_KEYPTR(reg_hh, b->registry, s->client_id, idlen, s);
		sess_ref(s);
		pthread_mutex_unlock(&b->reg_lock);
		if (old->w == w) {
			sess_kill(old, MQTT_RC_SESSION_TAKEN_OVER);
			sess_unref(old);
		} else {
			struct wq_entry q = { .kind = WQ_KILL, .sess = old };
			wk_post(w, old->w, &q);
		}
		attach_and_ack(c, s, false);
		sess_unref(s);
		return;
	}
	struct session *s = sess_ref(e);
	pthread_mutex_unlock(&b->reg_lock);
	if (s->w == w) {
		brk_adopt(w, c, s);
		return;
	}
	/* hand the connection to the session's worker */
	c->state = CS_WAIT;
	c->paused = true;
	ev_io_stop(w->loop, &c->io);
	wk_conn_remove(w, c);
	struct wq_entry q = { .kind = WQ_ADOPT, .sess = s };
	q.u.conn = c;
	wk_post(w, s->w, &q);
}

/*
 * An id for a client that sent none: "hamqtt-" and 128 random bits in hex.
 * Random, not counted: a counter repeats on every node and every restart
 * (two nodes' clients took each other's sessions over), and a predictable id
 * lets anyone resume another client's session with clean start 0. 128 bits
 * make a collision practically impossible, and nobody learns the id before
 * CONNACK, after it is registered; an id in use is still drawn again, as the
 * check is cheap. HQ_EIO if the kernel gives no random bytes (the client is
 * refused; the node keeps serving).
 */
static int assign_client_id(struct broker *b, char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	for (int attempt = 0; attempt < 8; attempt++) {
		uint8_t r[16];
		char id[sizeof("hamqtt-") + 2 * sizeof(r)];
		if (rand_bytes(r, sizeof(r)) != HQ_OK) {
			log_error("cannot assign a client id: getrandom: %s", strerror(errno));
			return HQ_EIO;
		}
		memcpy(id, "hamqtt-", 7);
		for (size_t i = 0; i < sizeof(r); i++) {
			id[7 + 2 * i] = hex[r[i] >> 4];
			id[8 + 2 * i] = hex[r[i] & 15];
		}
		id[7 + 2 * sizeof(r)] = 0;
		struct session *e;
		pthread_mutex_lock(&b->reg_lock);
		HASH_FIND(reg_hh, b->registry, id, strlen(id), e);
		pthread_mutex_unlock(&b->reg_lock);
		if (!e) {
			snprintf(out, outlen, "%s", id);
			return HQ_OK;
		}
	}
	errno = EEXIST; /* eight 128-bit draws all in use: the generator is broken */
	log_error("cannot assign a client id: every random id drawn is in use");
	return HQ_EIO;
}

int brk_handle_connect(struct conn *c, const struct mqtt_packet *pkt)
{
	WK_ASSERT_OWNER(c->w);
	struct broker *b = c->w->b;
	struct hq_config *cfg = b->cfg;
	const struct mqtt_connect *k = &pkt->u.connect;
	const struct mqtt_props *pr = &k->props;
	char idbuf[64];

	c->version = k->version;
	c->clean_start = k->clean_start;
	if (k->client_id.len) {
		c->client_id = hq_strndup((const char *)k->client_id.p, k->client_id.len);
	} else {
		/* [MQTT-3.1.3-8] v3.1.1 needs clean session for an empty id;
		 * v3.1 needs an id at all */
		if ((c->version == MQTT_V311 && !k->clean_start) || c->version == MQTT_V31) {
			c->client_id = hq_strdup("");
			return refuse(c, MQTT_RC_CLIENT_ID_NOT_VALID, MQTT_V3_ID_REJECTED,
				      "empty client id without clean session");
		}
		if (assign_client_id(b, idbuf, sizeof(idbuf)) != HQ_OK) {
			c->client_id = hq_strdup("");
			return refuse(c, MQTT_RC_SERVER_UNAVAILABLE, MQTT_V3_SERVER_UNAVAILABLE,
				      "cannot assign a client id (no random bytes from the kernel)");
		}
		c->client_id = hq_strdup(idbuf);
		c->id_assigned = true; /* [MQTT-3.1.3-6] [MQTT-3.2.2-16] */
	}
	if (strlen(c->client_id) != k->client_id.len && !c->id_assigned)
		return refuse(c, MQTT_RC_CLIENT_ID_NOT_VALID, MQTT_V3_ID_REJECTED, "client id contains U+0000");
	if (k->client_id.len > cfg->max_clientid_len)
		return refuse(c, MQTT_RC_CLIENT_ID_NOT_VALID, MQTT_V3_ID_REJECTED,
			      "client id longer than mqtt.max_clientid_len");
	if ((uint32_t)atomic_load(&b->conns_now) > cfg->max_connections)
		return refuse(c, MQTT_RC_QUOTA_EXCEEDED, MQTT_V3_SERVER_UNAVAILABLE,
			      "mqtt.max_connections reached");
	if (atomic_load_explicit(&b->mem_high, memory_order_relaxed)) {
		/* logged once per interval, not per client: this is the abuse case */
		ovl_event(b, BRK_OVL_MEMORY, "connection refused client_id=%s addr=%s: memory above "
			  "overload.memory_high_watermark", c->client_id, c->addr);
		return refuse_quiet(c, MQTT_RC_SERVER_BUSY, MQTT_V3_SERVER_UNAVAILABLE,
				    "memory above overload.memory_high_watermark");
	}
	int ban = banned_connect(c, c->username ? c->username : k->has_username ?
				 (const char *)k->username.p : NULL,
				 c->username ? strlen(c->username) : k->username.len);
	if (ban) {
		ovl_event(b, ban == BAN_FLAPPING ? BRK_OVL_FLAPPING : BRK_OVL_BANNED,
			  "connection refused client_id=%s addr=%s: %s", c->client_id, c->addr,
			  ban == BAN_FLAPPING ? "flapping (banned for flapping_detect.ban_time)"
					      : "banned");
		return refuse_quiet(c, MQTT_RC_BANNED, MQTT_V3_NOT_AUTHORIZED, "banned");
	}
	if (c->version == MQTT_V5 && (pr->present & MQTT_PROP_BIT(MQTT_PROP_AUTH_METHOD)) &&
	    brk_eauth_begin(c, &pr->auth_method) != HQ_OK) /* [MQTT-4.12.0-1] */
		return refuse(c, MQTT_RC_BAD_AUTH_METHOD, 0, "authentication method not supported");
	int arc = connect_username(c, k);
	if (arc != HQ_OK)
		return arc;

	/* v5 limits of the peer */
	c->peer_receive_max = 65535;
	c->request_problem_info = true;
	if (c->version == MQTT_V5) {
		if (pr->present & MQTT_PROP_BIT(MQTT_PROP_RECEIVE_MAX))
			c->peer_receive_max = pr->receive_max;
		if (pr->present & MQTT_PROP_BIT(MQTT_PROP_MAX_PACKET_SIZE))
			c->peer_max_packet = pr->max_packet_size;
		if (pr->present & MQTT_PROP_BIT(MQTT_PROP_TOPIC_ALIAS_MAX))
			c->peer_alias_max = pr->topic_alias_max;
		if (pr->present & MQTT_PROP_BIT(MQTT_PROP_REQUEST_PROBLEM_INFO))
			c->request_problem_info = pr->request_problem_info;
		if (pr->present & MQTT_PROP_BIT(MQTT_PROP_REQUEST_RESPONSE_INFO))
			c->request_response_info = pr->request_response_info;
	}
	/* session expiry: v3 clean session 0 = never expires, v5 property */
	uint32_t expiry;
	if (c->version == MQTT_V5)
		expiry = (pr->present & MQTT_PROP_BIT(MQTT_PROP_SESSION_EXPIRY)) ? pr->session_expiry : 0;
	else
		expiry = k->clean_start ? 0 : SESS_NEVER_EXPIRE;
	c->req_expiry_asked = expiry;
	/* a bridge's session is its buffer for a remote outage of any length */
	if (cfg->session_expiry_max && expiry > cfg->session_expiry_max && !c->internal)
		expiry = cfg->session_expiry_max;
	c->req_expiry = expiry;
	/* keep alive */
	c->keepalive = k->keepalive;
	if (c->version == MQTT_V5) {
		uint16_t ka = k->keepalive;
		if (cfg->server_keepalive)
			ka = (uint16_t)cfg->server_keepalive;
		else if (cfg->max_keepalive && (ka == 0 || ka > cfg->max_keepalive) &&
			 cfg->max_keepalive < 65535)
			ka = (uint16_t)cfg->max_keepalive;
		c->keepalive_changed = ka != k->keepalive;
		c->keepalive = ka;
	}
	/* will */
	if (k->has_will) {
		const struct mqtt_will *wl = &k->will;
		if (!topic_name_valid((const char *)wl->topic.p, wl->topic.len, cfg->max_topic_levels))
			return refuse(c, MQTT_RC_TOPIC_NAME_INVALID, MQTT_V3_ID_REJECTED, "invalid will topic");
		if (wl->qos > cfg->max_qos)
			return refuse(c, MQTT_RC_QOS_NOT_SUPPORTED, MQTT_V3_SERVER_UNAVAILABLE,
				      "will QoS above mqtt.max_qos");
		if (wl->retain && !cfg->retain_available)
			return refuse(c, MQTT_RC_RETAIN_NOT_SUPPORTED, MQTT_V3_SERVER_UNAVAILABLE,
				      "will retain not available");
		struct buf props = { 0 };
		bool has_exp = false;
		uint32_t exp = 0;
		if (c->version == MQTT_V5) {
			mqtt_props_forwardable(&wl->props, &props);
			has_exp = wl->props.present & MQTT_PROP_BIT(MQTT_PROP_MESSAGE_EXPIRY);
			exp = wl->props.message_expiry;
			if (wl->props.present & MQTT_PROP_BIT(MQTT_PROP_WILL_DELAY))
				c->will_delay = wl->props.will_delay;
		}
		c->will = msg_new((const char *)wl->topic.p, wl->topic.len, props.data, props.len,
				  wl->payload, wl->payload_len, wl->qos, wl->retain, has_exp, exp,
				  ev_now_ms(c->w->loop));
		c->will->pub_hash = brk_hash(c->client_id, strlen(c->client_id));
		buf_free(&props);
	}
	return connect_auth(c, k);
}

/*
 * A session another node handed over (deserialised and routed by the cluster
 * thread, which holds its routes in every replica already) becomes this
 * node's: true. False if this node has a session for the id already, which
 * then wins (the imported one ends, taking its routes along).
 */
bool brk_session_import(struct worker *w, struct session *s)
{
	WK_ASSERT_OWNER(w);
	struct broker *b = w->b;
	struct session *e;
	size_t idlen = strlen(s->client_id);
	pthread_mutex_lock(&b->reg_lock);
	HASH_FIND(reg_hh, b->registry, s->client_id, idlen, e);
	struct session *stale = NULL;
	if (e && !atomic_load_explicit(&e->conn_hlc, memory_order_relaxed)) {
		/* ours was loaded from this node's store at start and no client
		 * attached since (the node was down while its client moved on):
		 * the session handed over is the newer one */
		HASH_DELETE(reg_hh, b->registry, e);
		e->in_registry = false;
		stale = e; /* the registry's reference, now ours */
		e = NULL;
	}
	if (e) {
		pthread_mutex_unlock(&b->reg_lock);
		sess_end(s, false);
		return false;
	}
	s->in_registry = true;
	sess_ref(s); /* the registry's (not inside HASH_ADD: a macro evaluates it often) */
	HASH_ADD_KEYPTR(reg_hh, b->registry, s->client_id, idlen, s);
	pthread_mutex_unlock(&b->reg_lock);
	if (stale) {
		log_info("client_id=%s the session stored here before this node stopped is replaced "
			 "by the newer one of another node", s->client_id);
		/* its store records are replaced by the new session's first write
		 * (SESSION_DEL then PUT, brk_store_session_put): a delete of its own
		 * from another worker could land after that write */
		if (stale->w == w) {
			stale->stored = false;
			sess_kill(stale, MQTT_RC_SESSION_TAKEN_OVER);
			sess_unref(stale);
		} else {
			struct wq_entry q = { .kind = WQ_KILL, .options = 1, .sess = stale };
			wk_post(w, stale->w, &q);
		}
	}
	sess_offline_update(s); /* its expiry runs if no connection attaches */
	log_info("client_id=%s session taken over from another node (%u subscriptions, %u queued, "
		 "%u in flight)", s->client_id, s->n_subs, s->queue.len, s->n_inflight);
	return true;
}

/* CONNACK with session present for s, after its routes reached every peer. */
void brk_connect_attach(struct conn *c, struct session *s)
{
	WK_ASSERT_OWNER(c->w);
	if (s->ended || s->conn) {
		/* ended meanwhile (expired, or a newer connection took it) */
		refuse(c, MQTT_RC_SERVER_BUSY, MQTT_V3_SERVER_UNAVAILABLE,
		       "the session changed while it was being taken over");
		return;
	}
	attach_and_ack(c, s, true);
}

void brk_connect_resume(struct conn *c, uint8_t status, struct session *imported)
{
	WK_ASSERT_OWNER(c->w);
	if (status == CLU_TAKEOVER_REFUSED) {
		if (imported)
			sess_end(imported, false);
		refuse(c, MQTT_RC_SERVER_BUSY, MQTT_V3_SERVER_UNAVAILABLE,
		       "a newer connection of this client id on another node won");
		return;
	}
	if (imported && !c->clean_start) {
		if (brk_session_import(c->w, imported)) {
			/* CONNACK once every peer has its routes (the cluster added
			 * them before this hand-off) */
			brk_cluster_attach_after_barrier(c, imported);
			return;
		}
	} else if (imported) {
		sess_end(imported, false);
	}
	connect_register(c->w, c);
}

/*
 * The shared store was read for c's client id (brk_store_shared.c): s is the
 * session it held (one reference, consumed) or NULL. A session that
 * registered meanwhile (a racing connect) wins over the stored copy.
 */
void brk_connect_stored(struct conn *c, struct session *s, bool failed)
{
	struct worker *w = c->w;
	WK_ASSERT_OWNER(w);
	if (failed) {
		refuse(c, MQTT_RC_SERVER_UNAVAILABLE, MQTT_V3_SERVER_UNAVAILABLE,
		       "the session store could not be read");
		return;
	}
	if (!s) {
		connect_register(w, c);
		return;
	}
	if (!brk_store_take(w, s)) {
		connect_register(w, c); /* a racing connect registered the id first */
		return;
	}
	wk_flush_outboxes(w);
	log_info("client_id=%s session resumed from the store (%u subscriptions, %u queued, "
		 "%u in flight)", s->client_id, s->n_subs, s->queue.len, s->n_inflight);
	if (s->expire_at && ev_now_ms(w->loop) >= s->expire_at) {
		log_info("session expired client_id=%s", s->client_id);
		sess_end(s, true);
		sess_unref(s);
		connect_register(w, c);
		return;
	}
	brk_cluster_attach_after_barrier(c, s);
	sess_unref(s);
}
