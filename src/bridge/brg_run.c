/*
 * brg_run.c - the bridge thread: every bridge of this node on one ev loop.
 *
 * A bridge's cycle: dial the REMOTE broker, subscribe the subscriptions
 * there, then connect the LOCAL side (a socketpair whose other end the broker
 * adopts as a trusted client, broker_bridge_attach) and subscribe the
 * forwards there; both up = "connected" (the first cycle of a process goes
 * local first: see start_cycle). Either side failing tears
 * both down and a retry follows after an exponential backoff with jitter
 * (reconnect_min .. reconnect_max). Tearing both down is what makes the
 * delivery guarantee simple: nothing is acknowledged to one side before the
 * other side acknowledged it (brg_pipe.c), so whatever was in flight is
 * redelivered by its persistent session (local: this node's session, kept
 * in session.store and bounded by max_buffered while the remote is down;
 * remote: the remote broker's session for our client id).
 *
 * In a cluster only the running member with the lowest name runs the
 * bridges (the member list is read every second); the others are "standby".
 */
#include "bridge/brg_run.h"
#include "broker/broker.h"
#include "broker/broker_api.h"
#include "core/clock.h"
#include "core/conf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/rand.h"
#include "net/net_tls.h"

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TICK_MS 250
#define CONNECT_TIMEOUT_MS 15000
#define ALARM_AFTER_MS 30000
#define LOCAL_RECV_MAX 1000       /* local messages held here unacknowledged, at most */
#define REMOTE_RECV_MAX 1000
#define REMOTE_SESSION_EXPIRY (7u * 24 * 3600)
#define LOCAL_SESSION_EXPIRY 0xFFFFFFFFu /* kept until the bridge is removed */
#define DEFAULT_CA "/etc/ssl/certs/ca-certificates.crt"

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct bridges *g_bridges; /* the running set, for bridges_status */

static const char *state_name(enum brg_state s)
{
	switch (s) {
	case BS_UP:
		return "connected";
	case BS_CONNECTING:
		return "connecting";
	case BS_DOWN:
		return "disconnected";
	default:
		return "standby";
	}
}

static void set_state(struct brg *g, enum brg_state st, const char *why)
{
	if (g->st == st && !why)
		return;
	int64_t now = clock_mono_ms();
	if (g->st != st)
		log_notice("bridge %s (%s): %s -> %s%s%s", g->c->name, g->c->server, state_name(g->st),
			   state_name(st), why ? ": " : "", why ? why : "");
	g->st = st;
	if (st == BS_UP || st == BS_STANDBY)
		g->down_since_ms = 0;
	else if (!g->down_since_ms)
		g->down_since_ms = now;
	pthread_mutex_lock(&g->all->lock);
	g->stat.status = state_name(st);
	g->stat.up = st == BS_UP;
	if (why)
		snprintf(g->stat.last_error, sizeof(g->stat.last_error), "%s", why);
	g->stat.down_since_ms = g->down_since_ms ? clock_wall_ms() - (now - g->down_since_ms) : 0;
	pthread_mutex_unlock(&g->all->lock);
}

static void close_both(struct brg *g, bool polite)
{
	struct mqtt_packet d = { .type = MQTT_DISCONNECT };
	if (polite) {
		if (g->remote.st == LK_UP)
			brg_link_send(&g->remote, &d);
		if (g->local.st == LK_UP)
			brg_link_send(&g->local, &d);
	}
	g->remote.on_close = g->local.on_close = NULL; /* no callback for our own closing */
	brg_link_close(&g->remote);
	brg_link_close(&g->local);
	brg_pipe_reset(&g->fwd);
	brg_pipe_reset(&g->recv);
}

/* Either side failed: both down, retry after the backoff (with jitter). */
static void bridge_down(struct brg *g, const char *why)
{
	close_both(g, true);
	uint32_t r = 0;
	rand_bytes(&r, sizeof(r));
	uint32_t b = g->backoff_ms ? g->backoff_ms : g->c->reconnect_min_ms;
	uint32_t wait = b / 2 + (uint32_t)((uint64_t)r % (b / 2 + 1)); /* [b/2, b] */
	g->retry_at_ms = clock_mono_ms() + wait;
	uint64_t next = (uint64_t)b * 2;
	g->backoff_ms = next > g->c->reconnect_max_ms ? g->c->reconnect_max_ms : (uint32_t)next;
	char msg[400];
	snprintf(msg, sizeof(msg), "%s; retrying in %u ms", why, wait);
	set_state(g, BS_DOWN, msg);
}

static void on_close(struct brg_link *l, const char *why)
{
	struct brg *g = l->owner;
	char msg[320];
	snprintf(msg, sizeof(msg), "%s side: %s", l->what, why);
	bridge_down(g, msg);
}

static void send_connect(struct brg_link *l)
{
	struct brg *g = l->owner;
	bool remote = l == &g->remote;
	struct mqtt_packet p = { .type = MQTT_CONNECT };
	struct mqtt_connect *k = &p.u.connect;
	k->version = l->version;
	k->clean_start = false; /* both sessions persist: that is the buffer */
	k->keepalive = l->keepalive;
	k->client_id = (struct mqtt_str){ (const uint8_t *)g->c->clientid,
					  (uint16_t)strlen(g->c->clientid) };
	if (l->version == MQTT_V5) {
		k->props.present = MQTT_PROP_BIT(MQTT_PROP_SESSION_EXPIRY) |
				   MQTT_PROP_BIT(MQTT_PROP_RECEIVE_MAX);
		k->props.session_expiry = remote ? REMOTE_SESSION_EXPIRY : LOCAL_SESSION_EXPIRY;
		k->props.receive_max = remote ? REMOTE_RECV_MAX : LOCAL_RECV_MAX;
	}
	if (remote && g->c->username) {
		k->has_username = true;
		k->username = (struct mqtt_str){ (const uint8_t *)g->c->username,
						 (uint16_t)strlen(g->c->username) };
	}
	if (remote && g->c->password) {
		k->has_password = true;
		k->password = (struct mqtt_str){ (const uint8_t *)g->c->password,
						 (uint16_t)strlen(g->c->password) };
	}
	brg_link_send(l, &p);
}

static void subscribe(struct brg_link *l, const struct brg_rule *rules, int n)
{
	if (!n)
		return;
	struct buf list = { 0 };
	for (int i = 0; i < n; i++) {
		uint8_t opt = rules[i].qos;
		if (l->version == MQTT_V5) /* no echo of our own publishes; retain flags kept;
					      retained messages only for a new subscription */
			opt |= MQTT_SUBOPT_NO_LOCAL | MQTT_SUBOPT_RAP | 1u << MQTT_SUBOPT_RH_SHIFT;
		mqtt_sub_append(&list, rules[i].filter, opt);
	}
	struct mqtt_packet p = { .type = MQTT_SUBSCRIBE };
	p.u.subscribe.packet_id = brg_link_pid(l);
	p.u.subscribe.list = buf_head(&list);
	p.u.subscribe.list_len = (uint32_t)buf_avail(&list);
	p.u.subscribe.count = (uint16_t)n;
	brg_link_send(l, &p);
	buf_free(&list);
}

static void dial_remote(struct brg *g)
{
	const char *sni = g->c->server_name[0] ? g->c->server_name : g->c->host;
	char why[300];
	if (brg_link_dial(&g->remote, g->c->host, g->c->port, g->tls, g->tls ? sni : NULL, why,
			  sizeof(why)) != HQ_OK) {
		char msg[340];
		snprintf(msg, sizeof(msg), "remote side: %s", why);
		bridge_down(g, msg);
	}
}

static void bridge_up(struct brg *g, const char *why)
{
	g->backoff_ms = 0;
	set_state(g, BS_UP, why);
	brg_pipe_ready(&g->fwd);
	brg_pipe_ready(&g->recv);
}

static void attach_local(struct brg *g);

static const char *connack_text(uint8_t version, uint8_t rc)
{
	if (version != MQTT_V5)
		switch (rc) {
		case MQTT_V3_BAD_VERSION:
			return "unacceptable protocol version";
		case MQTT_V3_ID_REJECTED:
			return "client id rejected";
		case MQTT_V3_SERVER_UNAVAILABLE:
			return "server unavailable";
		case MQTT_V3_BAD_USER_PASS:
			return "bad user name or password";
		case MQTT_V3_NOT_AUTHORIZED:
			return "not authorized";
		default:
			return "refused";
		}
	switch (rc) {
	case MQTT_RC_BAD_USERNAME_OR_PASSWORD:
		return "bad user name or password";
	case MQTT_RC_NOT_AUTHORIZED:
		return "not authorized";
	case MQTT_RC_CLIENT_ID_NOT_VALID:
		return "client id not valid";
	case MQTT_RC_SERVER_UNAVAILABLE:
	case MQTT_RC_SERVER_BUSY:
		return "server unavailable";
	case MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION:
		return "unsupported protocol version";
	default:
		return "refused";
	}
}

static void on_connack(struct brg_link *l, const struct mqtt_connack *a)
{
	struct brg *g = l->owner;
	if (l->st != LK_MQTT)
		return;
	if (a->reason != 0) {
		char why[160];
		snprintf(why, sizeof(why), "CONNACK refused: %s (0x%02x)", connack_text(l->version, a->reason),
			 a->reason);
		brg_link_close(l);
		on_close(l, why);
		return;
	}
	l->st = LK_UP;
	if (l->version == MQTT_V5) {
		if (a->props.present & MQTT_PROP_BIT(MQTT_PROP_RECEIVE_MAX))
			l->peer_recv_max = a->props.receive_max;
		if (a->props.present & MQTT_PROP_BIT(MQTT_PROP_MAX_QOS))
			l->peer_max_qos = a->props.max_qos;
		if (a->props.present & MQTT_PROP_BIT(MQTT_PROP_SERVER_KEEP_ALIVE))
			l->keepalive = a->props.server_keep_alive;
	} else {
		l->peer_recv_max = REMOTE_RECV_MAX; /* 3.1.1 says nothing: be reasonable */
	}
	if (l == &g->local) {
		subscribe(l, g->c->fwd, g->c->n_fwd);
		g->local_made = true;
		if (g->remote.st == LK_UP)
			bridge_up(g, "local side up");
		else
			dial_remote(g);
		return;
	}
	subscribe(l, g->c->sub, g->c->n_sub);
	if (g->local.st == LK_UP)
		bridge_up(g, a->session_present ? "remote session resumed" : "remote session new");
	else
		attach_local(g);
}

static void on_packet(struct brg_link *l, const struct mqtt_packet *p, const uint8_t *raw,
		      size_t len)
{
	struct brg *g = l->owner;
	bool remote = l == &g->remote;
	struct brg_pipe *from_pipe = remote ? &g->recv : &g->fwd; /* where l is `from` */
	struct brg_pipe *to_pipe = remote ? &g->fwd : &g->recv;   /* where l is `to` */
	switch (p->type) {
	case MQTT_CONNACK:
		on_connack(l, &p->u.connack);
		return;
	case MQTT_PUBLISH:
		if (l->st == LK_UP)
			brg_pipe_publish(from_pipe, p, raw, len);
		return;
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBCOMP:
		brg_pipe_ack(to_pipe, p);
		return;
	case MQTT_PUBREL: {
		struct mqtt_packet c = { .type = MQTT_PUBCOMP };
		c.u.ack.packet_id = p->u.ack.packet_id;
		brg_link_send(l, &c);
		return;
	}
	case MQTT_SUBACK:
		for (uint16_t i = 0; i < p->u.suback.count; i++)
			if (p->u.suback.codes[i] >= 0x80)
				log_warning("bridge %s: the %s broker refused subscription %u of %s "
					    "(0x%02x)", g->c->name, l->what, i + 1,
					    remote ? "subscriptions" : "forwards", p->u.suback.codes[i]);
		return;
	case MQTT_DISCONNECT: {
		char why[96];
		snprintf(why, sizeof(why), "DISCONNECT from the broker (reason 0x%02x)",
			 p->u.disconnect.reason);
		brg_link_close(l);
		on_close(l, why);
		return;
	}
	default:
		return;
	}
}

static void attach_local(struct brg *g)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
		bridge_down(g, "local side: socketpair failed");
		return;
	}
	char label[96];
	snprintf(label, sizeof(label), "bridge:%s", g->c->name);
	if (broker_bridge_attach(g->all->b, sv[1], label, g->c->max_buffered) != HQ_OK) {
		close(sv[0]);
		bridge_down(g, "local side: the broker did not take the connection");
		return;
	}
	brg_link_attach(&g->local, sv[0]);
}

/*
 * The order of a cycle: the remote side first, then the local side, so that
 * while the remote is unreachable the local session stays offline and
 * untouched (its queue is the buffer; no local connection churns with the
 * retries). Only the first cycle of this process goes local first, so the
 * local session and its subscriptions exist (and buffer) from the start even
 * when the remote has never been reachable.
 */
static void start_cycle(struct brg *g)
{
	g->local.on_close = g->remote.on_close = on_close;
	set_state(g, BS_CONNECTING, NULL);
	if (g->local_made)
		dial_remote(g);
	else
		attach_local(g);
}

/* The member list: the running member with the lowest name runs bridges. */
static void leadership(struct bridges *br, int64_t now)
{
	if (now < br->next_members_ms)
		return;
	br->next_members_ms = now + 1000;
	if (!br->clustered) {
		br->leader = true;
		return;
	}
	struct broker_member *m = NULL;
	size_t n = 0;
	if (broker_cluster_members(br->b, &m, &n) != HQ_OK)
		return; /* busy or stopping: keep the last decision */
	const char *low = NULL;
	for (size_t i = 0; i < n; i++)
		if ((m[i].self || !strcmp(m[i].status, "running")) && (!low || strcmp(m[i].node, low) < 0))
			low = m[i].node;
	bool me = low && !strcmp(low, br->self);
	pthread_mutex_lock(&br->lock);
	snprintf(br->leader_node, sizeof(br->leader_node), "%s", low ? low : "");
	pthread_mutex_unlock(&br->lock);
	if (me != br->leader)
		log_notice("bridges: %s", me ? "this node is the lowest running member: running them"
					     : "another member runs them: standby");
	br->leader = me;
	free(m);
}

static void refresh_queue(struct brg *g)
{
	struct broker_client bc;
	if (broker_client_get(g->all->b, g->c->clientid, &bc) != HQ_OK)
		return;
	pthread_mutex_lock(&g->all->lock);
	/* in flight to the bridge when its local side closed count too */
	g->stat.buffered = (uint64_t)bc.mqueue_len + bc.inflight_cnt;
	g->stat.dropped = bc.mqueue_dropped;
	pthread_mutex_unlock(&g->all->lock);
	hq_free(bc.clientid);
	hq_free(bc.username);
}

static void link_tick(struct brg *g, struct brg_link *l, int64_t now)
{
	if (l->st == LK_IDLE)
		return;
	if (l->st != LK_UP) {
		if (now - l->since_ms > CONNECT_TIMEOUT_MS) {
			brg_link_close(l);
			on_close(l, "no CONNACK in time");
		}
		return;
	}
	if (l->keepalive && now - l->last_rx_ms > (int64_t)l->keepalive * 1500) {
		brg_link_close(l);
		on_close(l, "keep alive timeout (no answer to PINGREQ)");
		return;
	}
	if (l->keepalive && now - l->last_tx_ms >= (int64_t)l->keepalive * 1000) {
		struct mqtt_packet p = { .type = MQTT_PINGREQ };
		brg_link_send(l, &p);
	}
	(void)g;
}

static void tick(struct ev_loop *loop, void *arg)
{
	struct bridges *br = arg;
	int64_t now = clock_mono_ms();
	(void)loop;
	leadership(br, now);
	bool queue_refresh = (now / TICK_MS) % 8 == 0; /* about every 2 s */
	for (int i = 0; i < br->n; i++) {
		struct brg *g = &br->v[i];
		if (!br->leader) {
			if (g->st != BS_STANDBY) {
				close_both(g, true);
				g->backoff_ms = 0;
				set_state(g, BS_STANDBY, "another member runs the bridge");
			}
			goto alarm;
		}
		if (g->st == BS_STANDBY || (g->st == BS_DOWN && now >= g->retry_at_ms))
			start_cycle(g);
		link_tick(g, &g->local, now);
		link_tick(g, &g->remote, now);
		if (queue_refresh)
			refresh_queue(g);
alarm:;
		bool down = g->down_since_ms && now - g->down_since_ms > ALARM_AFTER_MS;
		if (down != g->alarm) {
			char name[128], det[512];
			snprintf(name, sizeof(name), "bridge_down:%s", g->c->name);
			pthread_mutex_lock(&br->lock);
			snprintf(det, sizeof(det), "{\"bridge\":\"%s\",\"server\":\"%s\"}", g->c->name,
				 g->c->server);
			pthread_mutex_unlock(&br->lock);
			broker_alarm_set(br->b, name, down, det, "a bridge's remote broker is unreachable");
			g->alarm = down;
		}
	}
}

static void *thread_main(void *arg)
{
	struct bridges *br = arg;
	ev_run(br->loop);
	for (int i = 0; i < br->n; i++)
		close_both(&br->v[i], true);
	return NULL;
}

static int brg_init(struct bridges *br, struct brg *g, struct brg_conf *c,
		    const struct hq_config *cfg, char *err, size_t errlen)
{
	g->c = c;
	g->all = br;
	snprintf(g->marker, sizeof(g->marker), "%s/%s", cfg->cluster_name, c->name);
	if (c->ssl) {
		const char *ca = c->cacertfile[0] ? c->cacertfile
						  : (c->verify_peer ? DEFAULT_CA : "");
		char keys[128];
		snprintf(keys, sizeof(keys), "bridges.mqtt.%s.ssl.", c->name);
		struct tls_opts o = { .keys = keys, .certfile = c->certfile, .keyfile = c->keyfile,
				      .cacertfile = ca, .tls_versions = "1.2,1.3", .ciphers = "",
				      .verify_peer = c->verify_peer };
		g->tls = tls_cli_new(&o, err, errlen);
		if (!g->tls)
			return HQ_EINVAL;
	}
	struct brg_link *ls[2] = { &g->local, &g->remote };
	for (int k = 0; k < 2; k++) {
		struct brg_link *l = ls[k];
		l->loop = br->loop;
		l->owner = g;
		l->what = k ? "remote" : "local";
		l->version = k ? c->version : MQTT_V5;
		l->keepalive = (uint16_t)(k ? c->keepalive_s : 60);
		l->on_packet = on_packet;
		l->on_ready = send_connect;
		l->io.fd = -1;
	}
	g->fwd = (struct brg_pipe){ .g = g, .dir = BRG_FWD, .from = &g->local, .to = &g->remote,
				    .rules = c->fwd, .n_rules = c->n_fwd,
				    .map = hq_calloc(65536, sizeof(uint32_t)) };
	g->recv = (struct brg_pipe){ .g = g, .dir = BRG_RECV, .from = &g->remote, .to = &g->local,
				     .rules = c->sub, .n_rules = c->n_sub,
				     .map = hq_calloc(65536, sizeof(uint32_t)) };
	snprintf(g->stat.name, sizeof(g->stat.name), "%s", c->name);
	snprintf(g->stat.server, sizeof(g->stat.server), "%s", c->server);
	g->stat.status = state_name(BS_STANDBY);
	return HQ_OK;
}

static void bridges_free(struct bridges *br)
{
	for (int i = 0; br->v && i < br->n; i++) {
		brg_pipe_free(&br->v[i].fwd);
		brg_pipe_free(&br->v[i].recv);
		tls_cli_free(br->v[i].tls);
	}
	hq_free(br->v);
	bridge_conf_free(br->confs, br->n);
	if (br->loop)
		ev_loop_free(br->loop);
	pthread_mutex_destroy(&br->lock);
	hq_free(br);
}

int bridges_start(struct broker *b, const struct hq_config *cfg, struct bridges **out,
		  char *err, size_t errlen)
{
	*out = NULL;
	struct brg_conf *confs;
	int n;
	if (bridge_conf_parse(cfg, &confs, &n, err, errlen) != HQ_OK)
		return HQ_EINVAL;
	if (!n)
		return HQ_OK;
	struct bridges *br = hq_calloc(1, sizeof(*br));
	pthread_mutex_init(&br->lock, NULL);
	br->b = b;
	br->confs = confs;
	br->n = n;
	br->clustered = cfg->cluster_port != 0;
	snprintf(br->self, sizeof(br->self), "%s", cfg->node_name);
	br->loop = ev_loop_new();
	br->v = hq_calloc((size_t)n, sizeof(*br->v));
	for (int i = 0; i < n; i++)
		if (brg_init(br, &br->v[i], &confs[i], cfg, err, errlen) != HQ_OK) {
			bridges_free(br);
			return HQ_EINVAL;
		}
	if (!br->loop || ev_timer_every(br->loop, TICK_MS, tick, br) != HQ_OK ||
	    pthread_create(&br->th, NULL, thread_main, br) != 0) {
		snprintf(err, errlen, "bridges: cannot start their thread");
		bridges_free(br);
		return HQ_EIO;
	}
	br->started = true;
	*out = br;
	pthread_mutex_lock(&g_lock);
	g_bridges = br;
	pthread_mutex_unlock(&g_lock);
	log_info("bridges: %d configured", n);
	return HQ_OK;
}

void bridges_stop(struct bridges *br)
{
	if (!br)
		return;
	pthread_mutex_lock(&g_lock);
	g_bridges = NULL;
	pthread_mutex_unlock(&g_lock);
	if (br->started) {
		ev_stop(br->loop);
		pthread_join(br->th, NULL);
	}
	bridges_free(br);
}

void bridges_status(struct bridge_status **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&g_lock);
	struct bridges *br = g_bridges;
	if (br && br->n) {
		*out = hq_calloc((size_t)br->n, sizeof(**out));
		pthread_mutex_lock(&br->lock);
		for (int i = 0; i < br->n; i++) {
			(*out)[i] = br->v[i].stat;
			snprintf((*out)[i].node, sizeof((*out)[i].node), "%s",
				 br->clustered ? br->leader_node : br->self);
		}
		pthread_mutex_unlock(&br->lock);
		*n = (size_t)br->n;
	}
	pthread_mutex_unlock(&g_lock);
}
