/*
 * brk_publish.c - an incoming PUBLISH, and the publish path: from one message
 * to every matching subscriber.
 *
 * The path of one PUBLISH: conn_read -> brk_handle_packet (decode) ->
 * brk_handle_publish (topic alias, limits, QoS 2 duplicate check, one
 * brk_msg allocation) -> brk_route: match in this worker's replica of the
 * subscription index (no lock), merge overlapping subscriptions of one
 * session into one delivery [MQTT-3.3.4-2..5], then per session either
 * sess_deliver (own worker: encode into the socket buffer) or one entry in
 * the outbox of the session's worker (handed over at the end of the turn).
 */
#include "broker/brk_int.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "store/store.h"

#include <stdlib.h>
#include <string.h>

void brk_deliver_to(struct worker *w, struct session *t, struct deliv *d);

static void push_hit(struct worker *w, const struct topic_sub *sub, const char *group)
{
	if (w->n_hits == w->cap_hits) {
		w->cap_hits = w->cap_hits ? w->cap_hits * 2 : 64;
		w->hits = hq_realloc(w->hits, w->cap_hits * sizeof(*w->hits));
	}
	struct match_hit *h = &w->hits[w->n_hits++];
	h->sess = sub->owner;
	h->share_group = group;
	h->sub_id = sub->sub_id;
	h->options = sub->options;
}

static void hit_cb(void *ctx, const struct topic_sub *sub)
{
	struct worker *w = ctx;
	/* a session handed over to another node: only what other nodes
	 * forwarded here still follows it this way (brk_handover.c) */
	if ((sub->options & BRK_SUBOPT_FWD_ONLY) && !w->clu.fwd_from)
		return;
	push_hit(w, sub, NULL);
}

static void shared_hit_cb(void *ctx, const struct topic_sub *sub, const char *gf, size_t gl)
{
	(void)gl;
	push_hit(ctx, sub, gf);
}

static bool online_cb(void *ctx, const struct topic_sub *sub)
{
	struct worker *w = ctx;
	const struct session *t = sub->owner;
	/* a forwarded message picks among this node's members only */
	if (w->clu.fwd_from && t->remote)
		return false;
	return atomic_load_explicit(&t->online, memory_order_relaxed);
}

/* Hits i.. of one node session become one FORWARD to that node; returns the
 * index after them. The node chooses its own subscribers; we tell it whether
 * its plain subscribers get the message and which shared groups we picked it
 * for. */
static uint32_t forward_hits(struct worker *w, struct brk_msg *msg, uint32_t i)
{
	struct session *t = w->hits[i].sess;
	struct clu_req r = { .kind = CRQ_FORWARD, .worker = (uint16_t)w->id, .member = t->clu->member };
	uint32_t j = i;
	for (; j < w->n_hits && w->hits[j].sess == t; j++) {
		const char *gf = w->hits[j].share_group;
		if (!gf) {
			r.plain = true;
			continue;
		}
		if (r.n_groups == UINT16_MAX)
			continue;
		if (w->route_skip && rx_unconf_has(w->route_skip, NULL, gf))
			continue; /* a resend: the group has it stored already */
		r.groups = hq_realloc(r.groups, (r.n_groups + 1u) * sizeof(*r.groups));
		r.groups[r.n_groups++] = hq_strdup(gf);
	}
	if (w->clu.fwd_from || (!r.plain && !r.n_groups))
		goto skip; /* never forward a forwarded message again; nothing left to send */
	r.msg = msg_ref(msg);
	if (msg->qos && w->clu.fwd_token) {
		r.token = w->clu.fwd_token;
		w->clu.fwd_pending++;
	}
	/* exactly once for QoS 2 across nodes (brk_rxmark.c): the node stores
	 * marks with what it stores for the first delivery, and a resend of an
	 * id loaded unconfirmed skips there too the targets that have it; the
	 * node cannot be told which of the marks are its own: all of them */
	r.rx = msg->rx && w->rx_mark == msg;
	if (r.rx && w->route_skip)
		r.skip = rx_unconf_targets(w->route_skip, &r.n_skip);
	clu_req_push(&w->clu.out, &r);
	return j;
skip:
	for (uint16_t k = 0; k < r.n_groups; k++)
		hq_free(r.groups[k]);
	hq_free(r.groups);
	return j;
}

/* Forwarded message: was this node chosen for group gf? */
static bool fwd_has_group(const struct fwd_in *f, const char *gf)
{
	for (uint16_t k = 0; k < f->n_groups; k++)
		if (!strcmp(f->groups[k], gf))
			return true;
	return false;
}

static int hit_cmp(const void *a, const void *b)
{
	const struct match_hit *x = a, *y = b;
	if (x->sess != y->sess)
		return (uintptr_t)x->sess < (uintptr_t)y->sess ? -1 : 1;
	/* shared hits after the plain ones of the same session */
	return (x->share_group != NULL) - (y->share_group != NULL);
}

/* With a shared store, a QoS > 0 publish that matches the routes of a node
 * that is unreachable cannot be stored for that node's sessions (they are
 * in the store, owned by it, until it returns or they are adopted): it is
 * refused as a whole, before anything is delivered, so the client's resend
 * neither loses nor duplicates. */
static bool hits_unreachable(const struct worker *w)
{
	for (uint32_t i = 0; i < w->n_hits; i++) {
		const struct session *t = w->hits[i].sess;
		if (t->remote && !w->hits[i].share_group &&
		    !atomic_load_explicit(&t->online, memory_order_relaxed))
			return true;
	}
	return false;
}

bool brk_route(struct worker *w, struct brk_msg *msg)
{
	WK_ASSERT_OWNER(w);
	struct broker *b = w->b;
	int64_t now = ev_now_ms(w->loop);
	w->n_hits = 0;
	topic_tree_match(w->routes, msg->topic, msg->topic_len,
			 (enum topic_shared_strategy)b->cfg->shared_strategy, msg->pub_hash,
			 hit_cb, shared_hit_cb, online_cb, w);
	if (w->store_tok && !w->clu.fwd_from && brk_store_shared(b) && hits_unreachable(w)) {
		w->n_hits = 0;
		return false;
	}
	if (w->n_hits > 1)
		qsort(w->hits, w->n_hits, sizeof(*w->hits), hit_cmp);
	for (uint32_t i = 0; i < w->n_hits;) {
		struct match_hit *h = &w->hits[i];
		struct session *t = h->sess;
		struct deliv d = { 0 };
		if (t->remote) {
			i = forward_hits(w, msg, i);
			continue;
		}
		if (w->clu.fwd_from && (h->share_group ? !fwd_has_group(w->clu.fwd_from, h->share_group)
						   : !w->clu.fwd_from->plain)) {
			i++; /* the origin node chose elsewhere for this one */
			continue;
		}
		if (w->route_skip && rx_unconf_has(w->route_skip, t->client_id, h->share_group)) {
			/* a resend after a restart: this session (or group) has
			 * it stored already (brk_rxmark.c) */
			if (h->share_group)
				i++;
			else
				while (i < w->n_hits && w->hits[i].sess == t && !w->hits[i].share_group)
					i++;
			continue;
		}
		if (h->share_group) {
			/* one member of a group: its own delivery */
			uint8_t g = h->options & MQTT_SUBOPT_QOS_MASK;
			d.qos = msg->qos < g ? msg->qos : g;
			d.flags = DV_SHARED;
			d.share_group = hq_strdup(h->share_group);
			if (h->sub_id) {
				d.sub_id = h->sub_id;
				d.n_sub_ids = 1;
			}
			d.msg = msg_ref(msg);
			brk_deliver_to(w, t, &d);
			if (!w->congested && d.qos && sess_congested(t, b->cfg, now))
				w->congested = t;
			i++;
			continue;
		}
		/* merge every plain subscription of t matching this topic */
		uint32_t j = i;
		int granted = -1;
		bool rap = false;
		uint32_t nids = 0;
		for (; j < w->n_hits && w->hits[j].sess == t && !w->hits[j].share_group; j++) {
			struct match_hit *k = &w->hits[j];
			/* [MQTT-3.8.3-3] no local: not to the publishing client */
			if ((k->options & MQTT_SUBOPT_NO_LOCAL) && t->sid == msg->origin_sid)
				continue;
			int g = k->options & MQTT_SUBOPT_QOS_MASK;
			if (g > granted)
				granted = g;
			if (k->options & MQTT_SUBOPT_RAP)
				rap = true;
			if (k->sub_id)
				nids++;
		}
		if (granted >= 0) {
			d.qos = msg->qos < granted ? msg->qos : (uint8_t)granted;
			/* [MQTT-3.3.1-12] [MQTT-3.3.1-13] retain as published, else 0 */
			if (rap && msg->retain)
				d.flags |= DV_RETAIN;
			if (nids == 1 || nids > 1) {
				uint32_t *ids = nids > 1 ? hq_malloc(nids * sizeof(uint32_t)) : &d.sub_id;
				uint32_t n = 0;
				for (uint32_t k = i; k < j; k++) {
					struct match_hit *x = &w->hits[k];
					if ((x->options & MQTT_SUBOPT_NO_LOCAL) && t->sid == msg->origin_sid)
						continue;
					if (x->sub_id)
						ids[n++] = x->sub_id;
				}
				d.n_sub_ids = (uint8_t)(n > 255 ? 255 : n);
				if (nids > 1)
					d.sub_ids = ids;
			}
			d.msg = msg_ref(msg);
			brk_deliver_to(w, t, &d);
			if (!w->congested && d.qos && sess_congested(t, b->cfg, now))
				w->congested = t;
		}
		i = j;
	}
	w->route_hits = w->n_hits; /* for a topic trace's line */
	w->n_hits = 0;
	return true;
}

/* The responses to the PUBLISHes before this one still leave: the client
 * learns which of them were accepted (conn_close_after_gate). */
static int fail(struct conn *c, int reason, const char *why)
{
	if (reason >= 0)
		conn_close_after_gate(c, (uint8_t)reason, why);
	else
		conn_close(c, reason, why);
	return HQ_EPROTOCOL;
}

/* The ACL denied writing this PUBLISH's topic (auth.acl.deny_action):
 * disconnect (v5 DISCONNECT 0x87), or drop it and acknowledge (v5 with 0x87
 * in PUBACK/PUBREC, which ends a QoS 2 flow; v3 has no failure code: a plain
 * acknowledgement, as Mosquitto does, so the client does not resend). */
static int publish_denied(struct conn *c, const struct mqtt_publish *pb, const char *topic, size_t tlen)
{
	brk_deny_log(c, "publish denied by the ACL client_id=%s topic=%.*s username=%s addr=%s",
		     c->client_id, (int)tlen, topic, c->username ? c->username : "", c->addr);
	if (c->w->b->cfg->auth_acl_deny_action == CONF_ACL_DISCONNECT)
		return fail(c, MQTT_RC_NOT_AUTHORIZED, "publish denied by the ACL");
	uint8_t rc = c->version == MQTT_V5 ? MQTT_RC_NOT_AUTHORIZED : 0;
	if (pb->qos == 1)
		conn_send_ack(c, MQTT_PUBACK, pb->packet_id, rc);
	else if (pb->qos == 2)
		conn_send_ack(c, MQTT_PUBREC, pb->packet_id, rc);
	return HQ_OK;
}

int brk_handle_publish(struct conn *c, const struct mqtt_packet *p)
{
	WK_ASSERT_OWNER(c->w);
	const struct mqtt_publish *pb = &p->u.publish;
	struct worker *w = c->w;
	struct broker *b = w->b;
	struct hq_config *cfg = b->cfg;
	struct session *s = c->sess;
	const char *topic = (const char *)pb->topic.p;
	size_t tlen = pb->topic.len;

	if (c->version == MQTT_V5) {
		const struct mqtt_props *pr = &pb->props;
		if (pr->present & MQTT_PROP_BIT(MQTT_PROP_SUBSCRIPTION_ID))
			return fail(c, MQTT_RC_PROTOCOL_ERROR, "subscription identifier in PUBLISH from a client");
		if (pr->present & MQTT_PROP_BIT(MQTT_PROP_TOPIC_ALIAS)) {
			uint16_t a = pr->topic_alias;
			/* [MQTT-3.3.2-8] [MQTT-3.3.2-9] */
			if (a == 0 || a > b->topic_alias_max)
				return fail(c, MQTT_RC_TOPIC_ALIAS_INVALID, "topic alias out of range");
			struct alias_in *e = NULL;
			HASH_FIND(hh, c->alias_in, &a, sizeof(a), e);
			if (tlen == 0) {
				if (!e)
					return fail(c, MQTT_RC_PROTOCOL_ERROR, "unknown topic alias");
				topic = e->topic;
				tlen = strlen(topic);
			} else {
				/* one entry per alias in use (bounded by Topic Alias
				 * Maximum), never a table of the maximum's size */
				if (!e) {
					e = hq_calloc(1, sizeof(*e));
					e->alias = a;
					HASH_ADD(hh, c->alias_in, alias, sizeof(e->alias), e);
				}
				hq_free(e->topic);
				e->topic = hq_strndup(topic, tlen);
			}
		} else if (tlen == 0) {
			return fail(c, MQTT_RC_PROTOCOL_ERROR, "empty topic without topic alias");
		}
	} else if (tlen == 0) {
		return fail(c, -1, "empty topic name"); /* [MQTT-4.7.3-1] */
	}
	if (!topic_name_valid(topic, tlen, cfg->max_topic_levels))
		return fail(c, MQTT_RC_TOPIC_NAME_INVALID, "invalid topic name");
	if (pb->qos > cfg->max_qos)
		return fail(c, MQTT_RC_QOS_NOT_SUPPORTED, "QoS above mqtt.max_qos"); /* [MQTT-3.2.2-11] */
	if (pb->retain && !cfg->retain_available)
		return fail(c, MQTT_RC_RETAIN_NOT_SUPPORTED, "retain not available");
	if (s->acl && !brk_acl_allow(w, s->acl, ACL_WRITE, topic, tlen, false))
		return publish_denied(c, pb, topic, tlen);

	/* issue 12: ack = stored archives taking it hold its PUBACK; one of
	 * them full: refused, not acknowledged (v5 0x97; v3 has no code) */
	int arc_hold = 0;
	if (b->arc && pb->qos && (arc_hold = brk_archive_hold(w, topic, tlen)) < 0) {
		log_warning("client_id=%s: QoS %u PUBLISH to %.*s refused: an archive is full",
			    s->client_id, pb->qos, (int)tlen, topic);
		if (c->version == MQTT_V5)
			conn_send_ack(c, pb->qos == 1 ? MQTT_PUBACK : MQTT_PUBREC, pb->packet_id,
				      MQTT_RC_QUOTA_EXCEEDED);
		return HQ_OK;
	}
	/* what this PUBLISH stores from here on, its PUBACK/PUBREC waits for */
	uint32_t mark = brk_store_mark(w);
	struct rx_unconf *redo = NULL; /* owned until the end of this function */
	if (pb->qos == 2) {
		if (sess_rx_pid_add(s, pb->packet_id) == HQ_EEXIST) {
			redo = sess_rx_unconf_take(s, pb->packet_id);
			if (!redo) {
				/* a resent QoS 2 PUBLISH before PUBREL: acknowledge, do not deliver again */
				conn_send_ack(c, MQTT_PUBREC, pb->packet_id, 0);
				return HQ_OK;
			}
			if (redo->unread) {
				/* which targets have it is in the store: read it, and
				 * let the client send again (it keeps the message) */
				brk_store_marks_read(s, redo, ev_now_ms(w->loop));
				sess_rx_unconf_give_back(s, redo);
				return fail(c, MQTT_RC_UNSPECIFIED, "a resent QoS 2 message whose delivery "
					    "is being checked in the store: send again");
			}
			/* the id came from the store: the node stopped before
			 * acknowledging it, perhaps before every target had it
			 * stored; routed again to the targets without a mark */
			log_info("client_id=%s: QoS 2 packet id %u resent after a restart: delivered "
				 "to the subscribers that lack it (%u have it)", s->client_id,
				 pb->packet_id, redo->n_marks);
		} else if (c->version == MQTT_V5 && s->n_rx_pids > cfg->receive_maximum) {
			/* MQTT 3.1.1 has no Receive Maximum: a v3 client cannot know
			 * the limit, and its ids (at most 65,535) bound the list anyway */
			sess_rx_pid_del(s, pb->packet_id);
			return fail(c, MQTT_RC_RECEIVE_MAX_EXCEEDED, "receive maximum exceeded"); /* [MQTT-3.3.4-7] */
		}
	}
	STAT_ADD(w->st.msgs_in[pb->qos], 1); /* 0..2: the codec refuses QoS 3 */
	/* clients may not write the broker's own $SYS tree: accepted and dropped */
	if (!(tlen >= 5 && !memcmp(topic, "$SYS/", 5))) {
		struct buf props = { 0 };
		bool has_exp = false;
		uint32_t exp = 0;
		if (c->version == MQTT_V5 && pb->props.raw_len) {
			mqtt_props_forwardable(&pb->props, &props);
			has_exp = pb->props.present & MQTT_PROP_BIT(MQTT_PROP_MESSAGE_EXPIRY);
			exp = pb->props.message_expiry;
		}
		struct brk_msg *m = msg_new(topic, tlen, props.data, props.len, pb->payload,
					    pb->payload_len, pb->qos, pb->retain, has_exp, exp,
					    ev_now_ms(w->loop));
		buf_free(&props);
		m->origin_sid = s->sid;
		m->pub_hash = s->client_hash;
		m->mid = brk_handover_mid(w); /* before anything shares it (retained) */
		if (pb->qos == 2)
			brk_rxmark_msg(s, m, pb->packet_id);
		w->congested = NULL;
		/* QoS > 0: forwards to other nodes release this token when
		 * accepted, store writes when stored */
		uint64_t tok = pb->qos && (b->clu || b->store_run || arc_hold) ? gate_token_new(w) : 0;
		w->clu.fwd_token = b->clu ? tok : 0;
		w->clu.fwd_pending = 0;
		w->store_tok = b->store_run ? tok : 0;
		w->store_tok_remote = 0;
		if (pb->retain && brk_retain_store(w, m) && tok && clu_peers_up(b->clu)) {
			/* acknowledged once every node stored it too */
			struct clu_req r = { .kind = CRQ_BARRIER, .worker = (uint16_t)w->id, .token = tok };
			clu_req_push(&w->clu.out, &r);
			w->clu.fwd_pending++;
		}
		w->rx_mark = m->rx ? m : NULL;
		w->route_skip = redo;
		bool routed = brk_route(w, m);
		if ((uint32_t)w->trace_word) /* a topic trace runs */
			brk_trace_topic(w, c, m, routed ? w->route_hits : 0);
		w->rx_mark = NULL;
		w->route_skip = NULL;
		w->clu.fwd_token = 0;
		w->store_tok = 0;
		if (!routed) {
			w->clu.fwd_pending = 0;
			w->store_tok_remote = 0;
			w->congested = NULL;
			msg_unref(m);
			if (redo)
				sess_rx_unconf_give_back(s, redo); /* the next resend tries again */
			else if (pb->qos == 2)
				sess_rx_pid_del(s, pb->packet_id); /* not received: the resend is new */
			return fail(c, MQTT_RC_UNSPECIFIED,
				    "a node holding subscribers of this topic is unreachable: send again");
		}
		uint32_t arc_held = b->arc ? brk_archive_take(w, m, s->client_id, c->username,
							     arc_hold ? tok : 0) : 0;
		/* the PUBACK / PUBREC below waits for every destination node,
		 * for every session that stores the message (ARCHITECTURE.md,
		 * "Persistence") and for the ack = stored archives */
		if (tok && brk_store_gate(c, mark, tok, w->clu.fwd_pending + w->store_tok_remote + arc_held) &&
		    pb->qos == 2)
			gate_tail_rx_pid(c, pb->packet_id);
		w->clu.fwd_pending = 0;
		w->store_tok_remote = 0;
		mark = UINT32_MAX; /* gated above */
		msg_unref(m);
		if (w->congested) {
			conn_throttle(c, w->congested);
			w->congested = NULL;
		}
	}
	rx_unconf_free(redo);
	if (mark != UINT32_MAX && pb->qos)
		brk_store_gate(c, mark, 0, 0); /* $SYS: only the QoS 2 id was stored */
	if (pb->qos == 1)
		conn_send_ack(c, MQTT_PUBACK, pb->packet_id, 0);
	else if (pb->qos == 2)
		conn_send_ack(c, MQTT_PUBREC, pb->packet_id, 0);
	return HQ_OK;
}
