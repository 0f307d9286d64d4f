/*
 * brk_deliver.c - outgoing messages of a session: the in-flight window, the
 * queue and its drop policy, PUBLISH encoding (topic aliases, subscription
 * identifiers, remaining expiry, peer maximum packet size), acknowledgements,
 * redelivery on resume, and redispatch of shared-subscription messages.
 *
 * Runs on the session's worker. In-flight entries are few (the window, at most
 * the peer's receive maximum) and kept in send order in an array.
 */
#include "broker/brk_int.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

#include <string.h>

uint32_t sess_window(const struct session *s)
{
	const struct conn *c = s->conn;
	uint32_t w = s->w->b->cfg->max_inflight;
	if (c && c->peer_receive_max < w)
		w = c->peer_receive_max; /* [MQTT-3.3.4-9] */
	return w;
}

/* Encode one PUBLISH of d to the session's connection. false: not sent
 * (expired, or larger than the peer accepts [MQTT-3.1.2-24]). */
static bool send_publish(struct session *s, struct deliv *d)
{
	struct conn *c = s->conn;
	struct worker *w = s->w;
	struct brk_msg *m = d->msg;
	int64_t now = ev_now_ms(w->loop);
	if (m->has_expiry && msg_expired(m, now))
		return false;
	struct mqtt_pub_out o = {
		.topic = (const uint8_t *)m->topic,
		.topic_len = m->topic_len,
		.packet_id = d->pid,
		.qos = d->qos,
		.dup = d->qos && (d->flags & DV_SENT),
		.retain = d->flags & DV_RETAIN,
		.payload = m->payload,
		.payload_len = m->payload_len,
	};
	struct alias_out *a = NULL;
	bool new_alias = false;
	if (c->version == MQTT_V5) {
		o.props = m->props;
		o.props_len = m->props_len;
		if (m->has_expiry) {
			o.has_expiry = true;
			o.expiry = msg_remaining(m, now); /* [MQTT-3.3.2-6] */
		}
		o.sub_ids = deliv_sub_ids(d);
		o.n_sub_ids = d->n_sub_ids;
		if (c->peer_alias_max) {
			HASH_FIND(hh, c->alias_out, m->topic, m->topic_len, a);
			if (a) {
				o.topic = NULL;
				o.topic_len = 0;
				o.topic_alias = a->alias;
			} else if (c->alias_out_next < c->peer_alias_max) {
				new_alias = true;
				o.topic_alias = (uint16_t)(c->alias_out_next + 1);
			}
		}
	}
	size_t size = mqtt_pub_out_size(c->version, &o);
	/* behind a QoS 2 PUBLISH waiting for the store: held in the gate too */
	bool held = c->gate && c->gate->n_out;
	size_t mark = buf_avail(&c->out);
	if (c->peer_max_packet && size > c->peer_max_packet) {
		brk_drop_count(w, BRK_DROP_TOO_LARGE);
		log_debug("client_id=%s message on %s skipped: %zu bytes > client maximum %u",
			  s->client_id, m->topic, size, c->peer_max_packet);
		return false;
	}
	if (new_alias) {
		a = hq_malloc(sizeof(*a));
		a->topic = hq_strndup(m->topic, m->topic_len);
		a->alias = o.topic_alias;
		c->alias_out_next++;
		HASH_ADD_KEYPTR(hh, c->alias_out, a->topic, m->topic_len, a);
	}
	if (m->payload_len >= OUT_SEG_MIN && !held) {
		/* the payload goes from the message itself: no copy */
		mqtt_pub_out_encode_head(&c->out, c->version, &o);
		conn_add_payload_seg(c, m);
	} else {
		mqtt_pub_out_encode(&c->out, c->version, &o);
	}
	if (held)
		gate_capture(c, mark);
	d->flags |= DV_SENT;
	STAT_ADD(w->st.msgs_out[d->qos], 1); /* 0..2: min(published, granted) */
	if (c->trace_mask)
		brk_trace_pub_out(c, m, o.qos, o.packet_id, o.retain);
	conn_mark_dirty(c);
	return true;
}

static bool pid_in_flight(const struct session *s, uint16_t pid)
{
	for (uint32_t i = 0; i < s->n_inflight; i++)
		if (s->inflight[i].pid == pid)
			return true;
	return false;
}

/* Packet ids go up one by one and the window is kept in send order, so the
 * live ids lie (circularly) between the oldest entry's and the newest's: only
 * an id inside that span needs the scan. */
static uint16_t alloc_pid(struct session *s)
{
	for (;;) {
		uint16_t pid = s->next_pid++;
		if (s->next_pid == 0)
			s->next_pid = 1;
		if (pid == 0)
			continue;
		if (!s->n_inflight)
			return pid;
		uint16_t oldest = s->inflight[0].pid;
		uint16_t newest = s->inflight[s->n_inflight - 1].pid;
		if ((uint16_t)(pid - oldest) > (uint16_t)(newest - oldest))
			return pid;
		if (!pid_in_flight(s, pid))
			return pid;
	}
}

/* Acknowledgements come nearly in order: removing the oldest entry only moves
 * the window's start; a removal inside it shifts the younger entries. */
static void inflight_remove(struct session *s, uint32_t i)
{
	deliv_release(&s->inflight[i]);
	if (i == 0) {
		s->inflight++;
	} else {
		memmove(&s->inflight[i], &s->inflight[i + 1],
			(s->n_inflight - i - 1) * sizeof(*s->inflight));
	}
	if (--s->n_inflight == 0)
		s->inflight = s->inflight_base;
}

static struct deliv *inflight_append_slot(struct session *s)
{
	uint32_t start = (uint32_t)(s->inflight - s->inflight_base);
	if (start + s->n_inflight == s->cap_inflight) {
		if (start) {
			memmove(s->inflight_base, s->inflight, s->n_inflight * sizeof(*s->inflight));
		} else {
			s->cap_inflight = s->cap_inflight ? s->cap_inflight * 2 : 8;
			s->inflight_base = hq_realloc(s->inflight_base,
						      s->cap_inflight * sizeof(*s->inflight));
		}
		s->inflight = s->inflight_base;
	}
	return &s->inflight[s->n_inflight++];
}

static void progress(struct session *s);

/* Put d (owned) into the window and send it. A persistent session's QoS 2
 * delivery leaves only once its packet id is stored: sent under another id
 * after a crash, the client would take it for a new message. QoS 1 needs no
 * such wait (a resend under a new id is a duplicate QoS 1 allows), so a QoS 1
 * entry taken from the queue stays "queued" in the store. */
static void start_inflight(struct session *s, struct deliv *d)
{
	/* the clock of a stuck consumer starts with its oldest unacknowledged
	 * message: an idle subscriber is not stuck when a burst begins */
	if (!s->n_inflight)
		progress(s);
	d->pid = alloc_pid(s);
	struct deliv *slot = inflight_append_slot(s);
	*slot = *d;
	if (brk_store_persisting(s)) {
		if (!slot->seq)
			brk_store_qent_put(s, slot);
		else if (slot->qos == 2)
			brk_store_qent_update(s, slot);
		if (slot->qos == 2 && slot->seq) {
			uint64_t tok = gate_token_new(s->w);
			gate_open_out(s->conn, tok);
			brk_store_hold(s->w, tok);
		}
	}
	if (!send_publish(s, slot)) {
		brk_store_qent_del(s, slot);
		inflight_remove(s, s->n_inflight - 1);
	}
}

static void drop_counted(struct session *s, struct deliv *d, enum broker_drop_reason why)
{
	s->dropped++;
	brk_drop_count(s->w, why);
	brk_store_qent_del(s, d);
	/* the node-wide bound logs its own line per interval (brk_qbound.c) */
	if (why != BRK_DROP_NODE_FULL && (s->dropped == 1 || s->dropped % 1000 == 0))
		log_warning("client_id=%s %s: dropped %s message on %s (%llu dropped so far)",
			    s->client_id, why == BRK_DROP_SLOW_READER ? "slow reader"
					  : why == BRK_DROP_MEMORY ? "memory high" : "queue full",
			    d->qos ? "the oldest" : "a QoS 0",
			    d->msg ? d->msg->topic : "", (unsigned long long)s->dropped);
	deliv_release(d);
}

static uint64_t deliv_bytes(const struct deliv *d)
{
	return d->msg ? (uint64_t)d->msg->topic_len + d->msg->payload_len : 0;
}

/* Queue accounting: every change to s->queue goes through these three. */
static void q_account(struct session *s, const struct deliv *d, int sign)
{
	uint64_t n = deliv_bytes(d);
	s->queued_bytes += (uint64_t)sign * n;
	brk_queued_add(s->w, sign * (int64_t)n);
	if (d->qos == 0)
		s->queued_qos0 += (uint32_t)sign;
}

/* What publishers on other workers see of the queue (back-pressure). */
static void q_publish_len(struct session *s)
{
	atomic_store_explicit(&s->qlen_pub, s->queue.len, memory_order_relaxed);
	atomic_store_explicit(&s->qbytes_pub, s->queued_bytes, memory_order_relaxed);
}

static bool dequeue(struct session *s, struct deliv *out)
{
	if (!dq_pop(&s->queue, out))
		return false;
	q_account(s, out, -1);
	q_publish_len(s);
	return true;
}

static void q_remove_at(struct session *s, uint32_t i, struct deliv *out)
{
	dq_remove_at(&s->queue, i, out);
	q_account(s, out, -1);
	q_publish_len(s);
}

/* A consumer acknowledged or took more: it is alive (back-pressure). */
static void progress(struct session *s)
{
	atomic_store_explicit(&s->progress_ms, ev_now_ms(s->w->loop), memory_order_relaxed);
}

/* Make room for one message: drop the oldest QoS 0 message first, else the
 * oldest message. false when the newcomer itself is the one to drop. */
static bool evict_one(struct session *s, const struct deliv *incoming,
		      enum broker_drop_reason why)
{
	struct deliv victim;
	uint32_t i = s->queue.len;
	if (s->queued_qos0)
		for (i = 0; i < s->queue.len; i++)
			if (dq_at(&s->queue, i)->qos == 0)
				break;
	if (i < s->queue.len)
		q_remove_at(s, i, &victim);
	else if (incoming->qos == 0 || !s->queue.len)
		return false;
	else
		dequeue(s, &victim);
	drop_counted(s, &victim, why);
	return true;
}

/* Which limit queuing `need` more bytes for s would break, if any. */
static bool over_limit(const struct session *s, uint64_t need, enum broker_drop_reason *why)
{
	const struct hq_config *cfg = s->w->b->cfg;
	*why = BRK_DROP_QUEUE_FULL;
	uint32_t qmax = s->qmax ? s->qmax : cfg->max_queued_messages;
	if (qmax && s->queue.len >= qmax)
		return true;
	/* a single message larger than the session's byte limit still queues alone */
	if (cfg->max_queued_bytes && s->queue.len && s->queued_bytes + need > cfg->max_queued_bytes)
		return true;
	*why = BRK_DROP_NODE_FULL;
	return brk_queued_over(s, need);
}

/* Queue d (owned) behind earlier messages within mqtt.max_queued_messages,
 * mqtt.max_queued_bytes and the node's mqtt.max_queued_bytes_total, applying
 * the drop policy of evict_one (brk_qbound.c states the node-wide part). */
static void enqueue(struct session *s, struct deliv *d)
{
	uint64_t need = deliv_bytes(d);
	enum broker_drop_reason why;
	while (over_limit(s, need, &why)) {
		if (!evict_one(s, d, why)) {
			drop_counted(s, d, why);
			return;
		}
	}
	brk_store_qent_put(s, d);
	q_account(s, d, +1);
	dq_push(&s->queue, d);
	q_publish_len(s);
}

void sess_deliver(struct session *s, struct deliv *d)
{
	WK_ASSERT_OWNER(s->w);
	struct conn *c = s->conn;
	if (s->ended && sess_moved_to(s) && d->msg) {
		brk_cluster_forward_moved(s, d);
		return;
	}
	if (s->ended || !d->msg) {
		deliv_release(d);
		return;
	}
	if (s->clu && s->clu->dedup && brk_handover_dup(s, d->msg, ev_now_ms(s->w->loop))) {
		deliv_release(d); /* moved here moments ago: it had this copy already */
		return;
	}
	/* the ACL's read check per message (auth.h): a wildcard subscription
	 * may cover topics a deny rule excludes; cached per client */
	if (s->acl && !brk_acl_allow(s->w, s->acl, ACL_READ, d->msg->topic, d->msg->topic_len, false)) {
		deliv_release(d);
		return;
	}
	if (d->msg->has_expiry && msg_expired(d->msg, ev_now_ms(s->w->loop))) {
		deliv_release(d);
		return;
	}
	bool live = c && c->state == CS_ACTIVE && conn_writable(c);
	if (d->qos == 0) {
		if (ovl_mem_shed(s, c)) {
			drop_counted(s, d, BRK_DROP_MEMORY); /* above the memory watermark */
			return;
		}
		if (live) {
			send_publish(s, d);
			deliv_release(d);
		} else if (c && c->state == CS_ACTIVE) {
			drop_counted(s, d, BRK_DROP_SLOW_READER); /* QoS 0 to a backed-up socket */
		} else {
			enqueue(s, d);
		}
		return;
	}
	/* behind the queue and behind retained messages still to send */
	if (live && !s->queue.len && !s->retained_out && s->n_inflight < sess_window(s))
		start_inflight(s, d);
	else
		enqueue(s, d);
}

void sess_load_deliv(struct session *s, struct deliv *d, bool inflight)
{
	WK_ASSERT_OWNER(s->w);
	if (inflight && d->pid && !pid_in_flight(s, d->pid)) {
		*inflight_append_slot(s) = *d;
		if ((uint16_t)(d->pid + 1) != 0)
			s->next_pid = (uint16_t)(d->pid + 1);
		return;
	}
	/* two stored entries in flight under one packet id: the store's order
	 * should make this impossible, so say so (the chaos test reads logs) */
	if (inflight && d->pid)
		log_warning("store: client_id=%s has two entries in flight under packet id %u: "
			    "the later one is %s", s->client_id, d->pid,
			    d->msg ? "queued again under a new id" : "dropped");
	if (!d->msg) { /* waiting for PUBCOMP under an id already in use: done */
		deliv_release(d);
		return;
	}
	d->pid = 0;
	d->flags &= (uint8_t)~DV_PUBREL;
	q_account(s, d, +1);
	dq_push(&s->queue, d);
	q_publish_len(s);
}

/* Send what the window and the socket take: retained messages of new
 * subscriptions first (brk_retained_out.c), then the queue. */
void sess_pump(struct session *s)
{
	WK_ASSERT_OWNER(s->w);
	struct conn *c = s->conn;
	struct deliv d;
	uint8_t qos;
	while (c && c->state == CS_ACTIVE && (s->queue.len || s->retained_out) &&
	       conn_writable(c)) {
		if (sess_retained_peek(s, &qos)) {
			if (qos && s->n_inflight >= sess_window(s))
				break;
			sess_retained_take(s, &d);
			if (s->acl && !brk_acl_allow(s->w, s->acl, ACL_READ, d.msg->topic,
						     d.msg->topic_len, false)) {
				deliv_release(&d); /* retained under a wildcard, not readable */
				continue;
			}
		} else {
			struct deliv *head = dq_at(&s->queue, 0);
			if (head->qos && s->n_inflight >= sess_window(s))
				break;
			dequeue(s, &d);
		}
		if (d.msg->has_expiry && msg_expired(d.msg, ev_now_ms(s->w->loop))) {
			brk_store_qent_del(s, &d);
			deliv_release(&d);
			continue;
		}
		if (d.qos == 0) {
			send_publish(s, &d);
			deliv_release(&d);
		} else {
			start_inflight(s, &d);
		}
	}
}

/* [MQTT-4.4.0-1] on resume, resend unacknowledged PUBLISH (DUP=1) and PUBREL
 * in their original order. */
void sess_resend_inflight(struct session *s)
{
	WK_ASSERT_OWNER(s->w);
	/* A QoS 2 PUBLISH or PUBREL leaves only once its state is stored
	 * (gate_open_out in start_inflight and on PUBREC), but that gate died
	 * with the old connection: the resends wait for everything this node
	 * handed the store so far (its thread applies batches in order). A
	 * PUBREL whose state the store lacked would let the client deliver and
	 * forget the id, and a crash then send the PUBLISH again. */
	bool qos2 = false;
	for (uint32_t i = 0; i < s->n_inflight && !qos2; i++)
		qos2 = s->inflight[i].qos == 2;
	if (qos2 && s->conn && brk_store_persisting(s)) {
		uint64_t tok = gate_token_new(s->w);
		gate_open_out(s->conn, tok);
		brk_store_hold(s->w, tok);
	}
	for (uint32_t i = 0; i < s->n_inflight;) {
		struct deliv *d = &s->inflight[i];
		if (d->flags & DV_PUBREL) {
			conn_send_ack(s->conn, MQTT_PUBREL, d->pid, 0);
			i++;
		} else if (send_publish(s, d)) {
			i++;
		} else {
			brk_store_qent_del(s, d);
			inflight_remove(s, i);
		}
	}
}

void sess_handle_puback(struct session *s, uint8_t type, uint16_t pid, uint8_t reason)
{
	WK_ASSERT_OWNER(s->w);
	uint32_t i;
	for (i = 0; i < s->n_inflight; i++)
		if (s->inflight[i].pid == pid)
			break;
	if (i == s->n_inflight) {
		log_debug("client_id=%s %s for unknown packet id %u", s->client_id,
			  mqtt_type_name(type), pid);
		if (type == MQTT_PUBREC && s->conn)
			conn_send_ack(s->conn, MQTT_PUBREL, pid, MQTT_RC_PACKET_ID_NOT_FOUND);
		return;
	}
	struct deliv *d = &s->inflight[i];
	progress(s);
	switch (type) {
	case MQTT_PUBACK:
		if (d->qos == 1) {
			brk_store_qent_del(s, d);
			inflight_remove(s, i);
		}
		break;
	case MQTT_PUBREC:
		if (d->qos != 2)
			break;
		if (reason >= 0x80) {
			brk_store_qent_del(s, d);
			inflight_remove(s, i); /* the receiver refused it: done */
			break;
		}
		if (d->msg) {
			msg_unref(d->msg);
			d->msg = NULL;
		}
		d->flags |= DV_PUBREL;
		brk_store_qent_update(s, d);
		if (d->seq && brk_store_persisting(s)) {
			/* PUBREL lets the client deliver and forget the id: it
			 * leaves only once the store knows the message was
			 * received, else after a crash the node would send the
			 * PUBLISH again and the client take it for a new one */
			uint64_t tok = gate_token_new(s->w);
			gate_open_out(s->conn, tok);
			brk_store_hold(s->w, tok);
		}
		conn_send_ack(s->conn, MQTT_PUBREL, pid, 0);
		break;
	case MQTT_PUBCOMP:
		if (d->flags & DV_PUBREL) {
			brk_store_qent_del(s, d);
			inflight_remove(s, i);
		}
		break;
	}
	sess_pump(s);
}

/* ---- shared subscriptions: give a departing member's messages to another ---- */

struct redispatch_ctx {
	struct session *exclude;
	const char *group;
	struct session *chosen;
	uint8_t options;
	bool remote;              /* this pass looks at other nodes' node sessions */
};

/* A member that may take the message in this pass: another online one, a
 * local session in the first pass, another node in the second. */
static bool redispatch_candidate(const struct redispatch_ctx *r, const struct session *t)
{
	return t != r->exclude && t->remote == r->remote &&
	       atomic_load_explicit(&t->online, memory_order_relaxed);
}

static bool redispatch_eligible(void *ctx, const struct topic_sub *sub)
{
	return redispatch_candidate(ctx, sub->owner);
}

static void redispatch_shared_cb(void *ctx, const struct topic_sub *sub, const char *gf, size_t gl)
{
	struct redispatch_ctx *r = ctx;
	if (strlen(r->group) == gl && !memcmp(r->group, gf, gl) && redispatch_candidate(r, sub->owner)) {
		r->chosen = sub->owner;
		r->options = sub->options;
	}
}

static void ignore_cb(void *ctx, const struct topic_sub *sub)
{
	(void)ctx;
	(void)sub;
}

static void deliver_to(struct worker *w, struct session *t, struct deliv *d)
{
	if (t->w == w) {
		sess_deliver(t, d);
		return;
	}
	if (d->qos) {
		/* counted before the owner sees it: back-pressure (brk_conn.c) */
		atomic_fetch_add_explicit(&t->inbound, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&t->inbound_bytes, deliv_bytes(d), memory_order_relaxed);
	}
	struct wq_entry e = { .kind = WQ_DELIVER, .sess = sess_ref(t) };
	e.u.d = *d;
	if (d->qos && w->store_tok) {
		/* the publisher's PUBACK waits until the owner stored it */
		e.ack_token = brk_store_tok_remote(w->id, w->store_tok);
		w->store_tok_remote++;
	}
	wk_post(w, t->w, &e);
}

void sess_deliver_posted(struct session *s, struct deliv *d, bool run, uint64_t ack_token)
{
	WK_ASSERT_OWNER(s->w);
	uint8_t qos = d->qos;
	uint64_t bytes = deliv_bytes(d);
	uint32_t mark = brk_store_mark(s->w);
	bool relayed = false;
	if (run) {
		/* a first delivery of the publish: its entry carries the mark */
		s->w->rx_mark = ack_token && d->msg && d->msg->rx ? d->msg : NULL;
		/* a session handed over relays it, and the relay's acknowledgement
		 * releases the token (brk_cluster_forward_moved takes it) */
		s->w->clu.relay_ack = ack_token;
		sess_deliver(s, d);
		relayed = ack_token && !s->w->clu.relay_ack;
		s->w->clu.relay_ack = 0;
		s->w->rx_mark = NULL;
	} else {
		deliv_release(d);
	}
	if (ack_token && !relayed) {
		if (run && brk_store_mark(s->w) != mark)
			brk_store_hold(s->w, ack_token); /* released when stored */
		else
			brk_store_ack(s->w, ack_token, false); /* nothing to wait for */
	}
	/* only after the queue published its new length: for a moment the
	 * delivery counts twice, never zero times */
	if (qos) {
		atomic_fetch_sub_explicit(&s->inbound, 1, memory_order_relaxed);
		atomic_fetch_sub_explicit(&s->inbound_bytes, bytes, memory_order_relaxed);
	}
}

static void redispatch_pick(struct worker *w, const struct brk_msg *msg, struct redispatch_ctx *r)
{
	topic_tree_match(w->routes, msg->topic, msg->topic_len,
			 (enum topic_shared_strategy)w->b->cfg->shared_strategy, msg->pub_hash,
			 ignore_cb, redispatch_shared_cb, redispatch_eligible, r);
}

/* Try to hand d to another online member of its group; true if it moved.
 * A member on this node first; else the group's member on another node
 * (its node session in our replica), which picks one of its own members: a
 * message is not lost because the only other members are elsewhere. */
static bool redispatch_one(struct session *s, struct deliv *d)
{
	struct worker *w = s->w;
	struct redispatch_ctx r = { .exclude = s, .group = d->share_group };
	redispatch_pick(w, d->msg, &r);
	if (!r.chosen && w->b->clu) {
		r.remote = true;
		redispatch_pick(w, d->msg, &r);
	}
	if (!r.chosen)
		return false;
	log_debug("client_id=%s left: message on %s redispatched in %s%s%s", s->client_id,
		  d->msg->topic, d->share_group, r.remote ? " to " : "",
		  r.remote ? r.chosen->client_id : "");
	brk_store_qent_del(s, d); /* the member taking it stores it anew */
	if (r.remote) {
		brk_cluster_forward_shared(w, r.chosen, d); /* empties d */
		return true;
	}
	struct deliv nd = *d;
	nd.seq = 0;
	uint8_t granted = r.options & MQTT_SUBOPT_QOS_MASK;
	nd.qos = d->msg->qos < granted ? d->msg->qos : granted;
	nd.flags = DV_SHARED;
	nd.pid = 0;
	deliver_to(w, r.chosen, &nd);
	memset(d, 0, sizeof(*d)); /* ownership moved to nd */
	return true;
}

void sess_redispatch_shared(struct session *s)
{
	WK_ASSERT_OWNER(s->w);
	/* handed over to another node: the session's blob carries these
	 * messages to their new owner, giving them away too would duplicate
	 * them */
	if (sess_moved_to(s))
		return;
	for (uint32_t i = 0; i < s->n_inflight;) {
		struct deliv *d = &s->inflight[i];
		if ((d->flags & DV_SHARED) && d->msg && !(d->flags & DV_PUBREL) && redispatch_one(s, d)) {
			inflight_remove(s, i); /* d was emptied: releases nothing */
		} else {
			i++;
		}
	}
	for (uint32_t i = 0; i < s->queue.len;) {
		struct deliv *d = dq_at(&s->queue, i);
		struct deliv copy = *d;
		if ((d->flags & DV_SHARED) && d->msg && redispatch_one(s, d)) {
			struct deliv gone;
			q_account(s, &copy, -1);
			dq_remove_at(&s->queue, i, &gone);
			q_publish_len(s);
		} else {
			i++;
		}
	}
}

/* Exposed for brk_publish.c */
void brk_deliver_to(struct worker *w, struct session *t, struct deliv *d)
{
	WK_ASSERT_OWNER(w);
	deliver_to(w, t, d);
}
