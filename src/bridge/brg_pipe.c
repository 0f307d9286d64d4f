/*
 * brg_pipe.c - one direction of a bridge: PUBLISH packets read from one link
 * (`from`) are published on the other (`to`) under the mapped topic, and
 * acknowledged to `from` only once `to` acknowledged them (at least once).
 *
 * QoS: the copy goes out with the QoS it came with (the rule's QoS already
 * capped it: it is the subscription's), at most the `to` broker's Maximum
 * QoS. QoS 2 is carried hop by hop: `to`'s PUBCOMP releases `from`'s PUBREC.
 * At most `to`'s Receive Maximum copies are unacknowledged; the rest wait
 * here in order (a copy of the packet), and so does everything behind them,
 * QoS 0 included, so the order of a publisher's messages is kept. What waits
 * here is unacknowledged to `from`, which redelivers it after a reconnect.
 */
#include "bridge/brg_run.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

#include <string.h>

#define MAP_LIVE 0x80000000u

bool brg_topic_match(const char *filter, const uint8_t *topic, size_t len)
{
	const char *f = filter;
	size_t i = 0;
	/* [MQTT-4.7.2-1] wildcards at the first level do not match $-topics */
	if (len && topic[0] == '$' && (*f == '#' || *f == '+'))
		return false;
	for (;;) {
		if (*f == '#')
			return true;
		if (*f == '+') {
			while (i < len && topic[i] != '/')
				i++;
			f++;
		} else {
			while (*f && *f != '/' && i < len && topic[i] != '/' && *f == (char)topic[i]) {
				f++;
				i++;
			}
			if (*f && *f != '/')
				return false;
			if (i < len && topic[i] != '/')
				return false;
		}
		/* both at a level end */
		if (!*f)
			return i == len;
		if (i == len)
			return f[0] == '/' && f[1] == '#' && !f[2]; /* "a/#" matches "a" */
		f++;
		i++;
	}
}

void brg_pipe_reset(struct brg_pipe *p)
{
	struct brg_pend *e, *n;
	for (e = p->head; e; e = n) {
		n = e->next;
		hq_free(e);
	}
	p->head = p->tail = NULL;
	p->npend = 0;
	p->inflight = 0;
	if (p->map)
		memset(p->map, 0, 65536 * sizeof(*p->map));
}

void brg_pipe_free(struct brg_pipe *p)
{
	brg_pipe_reset(p);
	HQ_FREE(p->map);
}

static void count(struct brg *g, uint64_t *field)
{
	pthread_mutex_lock(&g->all->lock);
	(*field)++;
	pthread_mutex_unlock(&g->all->lock);
}

/* Tell `from` its message is taken care of: PUBACK for QoS 1, PUBREC for 2. */
static void ack_from(struct brg_pipe *p, uint16_t pid, uint8_t qos)
{
	if (!qos)
		return;
	struct mqtt_packet a = { .type = qos == 1 ? MQTT_PUBACK : MQTT_PUBREC };
	a.u.ack.packet_id = pid;
	brg_link_send(p->from, &a);
}

/* Our own hop marker (v5 user property), so a message we published comes
 * back at most once: dropped here instead of looping. */
static bool has_marker(const struct brg *g, const struct mqtt_props *pr)
{
	if (!pr->n_user)
		return false;
	uint32_t cur = 0;
	struct mqtt_str k, v;
	size_t ml = strlen(g->marker);
	while (mqtt_props_user_next(pr, &cur, &k, &v))
		if (k.len == strlen(BRG_MARKER_KEY) && !memcmp(k.p, BRG_MARKER_KEY, k.len) &&
		    v.len == ml && !memcmp(v.p, g->marker, ml))
			return true;
	return false;
}

static const struct brg_rule *rule_for(const struct brg_pipe *p, const struct mqtt_str *t)
{
	for (int i = 0; i < p->n_rules; i++)
		if (brg_topic_match(p->rules[i].filter, t->p, t->len))
			return &p->rules[i];
	return NULL;
}

/* Publish pb on `to`. false: no room (Receive Maximum), nothing sent. */
static bool forward(struct brg_pipe *p, const struct mqtt_publish *pb)
{
	struct brg *g = p->g;
	struct brg_link *to = p->to;
	uint8_t qos = pb->qos < to->peer_max_qos ? pb->qos : to->peer_max_qos;
	if (qos && p->inflight >= to->peer_recv_max)
		return false;
	if (p->dir == BRG_RECV && p->from->version == MQTT_V5 && has_marker(g, &pb->props)) {
		ack_from(p, pb->packet_id, pb->qos); /* our own, back from the remote */
		count(g, &g->stat.recv_looped);
		return true;
	}
	const struct brg_rule *r = rule_for(p, &pb->topic);
	if (!r) { /* another subscription of the session's: not ours to carry */
		ack_from(p, pb->packet_id, pb->qos);
		count(g, p->dir == BRG_FWD ? &g->stat.fwd_failed : &g->stat.recv_failed);
		return true;
	}
	size_t plen = strlen(r->prefix);
	char *topic = hq_malloc(plen + pb->topic.len + 1);
	memcpy(topic, r->prefix, plen);
	memcpy(topic + plen, pb->topic.p, pb->topic.len);
	struct buf props = { 0 };
	struct mqtt_packet out = { .type = MQTT_PUBLISH };
	struct mqtt_publish *o = &out.u.publish;
	o->qos = qos;
	o->retain = pb->retain;
	o->topic = (struct mqtt_str){ (const uint8_t *)topic, (uint16_t)(plen + pb->topic.len) };
	o->payload = pb->payload;
	o->payload_len = pb->payload_len;
	if (to->version == MQTT_V5) {
		if (p->from->version == MQTT_V5)
			mqtt_props_forwardable(&pb->props, &props);
		if (p->dir == BRG_FWD)
			mqtt_props_user_append(&props, BRG_MARKER_KEY, g->marker);
		if (p->from->version == MQTT_V5 &&
		    (pb->props.present & MQTT_PROP_BIT(MQTT_PROP_MESSAGE_EXPIRY))) {
			o->props.present |= MQTT_PROP_BIT(MQTT_PROP_MESSAGE_EXPIRY);
			o->props.message_expiry = pb->props.message_expiry;
		}
		o->props.extra = props.data ? buf_head(&props) : NULL;
		o->props.extra_len = (uint32_t)buf_avail(&props);
	}
	if (plen + pb->topic.len > 65535) {
		hq_free(topic);
		buf_free(&props);
		ack_from(p, pb->packet_id, pb->qos);
		count(g, p->dir == BRG_FWD ? &g->stat.fwd_failed : &g->stat.recv_failed);
		return true;
	}
	if (qos) {
		o->packet_id = brg_link_pid(to);
		p->map[o->packet_id] = MAP_LIVE | (uint32_t)pb->qos << 16 | pb->packet_id;
		p->inflight++;
	}
	brg_link_send(to, &out); /* a failure tears the bridge down (on_close) */
	hq_free(topic);
	buf_free(&props);
	if (!qos) {
		ack_from(p, pb->packet_id, pb->qos); /* `to` takes no more than QoS 0 */
		count(g, p->dir == BRG_FWD ? &g->stat.fwd_ok : &g->stat.recv_ok);
	}
	return true;
}

static void pend_push(struct brg_pipe *p, const uint8_t *raw, size_t len)
{
	struct brg_pend *e = hq_malloc(sizeof(*e) + len);
	e->next = NULL;
	e->len = len;
	memcpy(e->raw, raw, len);
	if (p->tail)
		p->tail->next = e;
	else
		p->head = e;
	p->tail = e;
	p->npend++;
}

/* Send what waits while `to` has room (a link failure empties the queue). */
static void pend_drain(struct brg_pipe *p)
{
	while (p->head && p->to->st == LK_UP) {
		struct brg_pend *e = p->head;
		struct mqtt_packet pkt;
		if (mqtt_decode(e->raw, e->len, p->from->version, &pkt, NULL) != HQ_OK ||
		    forward(p, &pkt.u.publish)) {
			if (p->head != e)
				return; /* reset under us (the link failed) */
			p->head = e->next;
			if (!p->head)
				p->tail = NULL;
			p->npend--;
			hq_free(e);
		} else {
			return;
		}
	}
}

void brg_pipe_publish(struct brg_pipe *p, const struct mqtt_packet *pkt, const uint8_t *raw,
		      size_t len)
{
	if (!p->head && p->to->st == LK_UP && forward(p, &pkt->u.publish))
		return;
	/* QoS 1/2 waiting here are bounded by the Receive Maximum we gave
	 * `from`; QoS 0 is not, so past BRG_PEND_MAX it is dropped (counted) */
	if (!pkt->u.publish.qos && p->npend >= BRG_PEND_MAX) {
		struct brg *g = p->g;
		count(g, p->dir == BRG_FWD ? &g->stat.fwd_failed : &g->stat.recv_failed);
		return;
	}
	pend_push(p, raw, len);
}

void brg_pipe_ready(struct brg_pipe *p)
{
	pend_drain(p);
}

/* PUBACK, PUBREC or PUBCOMP from `to`. */
void brg_pipe_ack(struct brg_pipe *p, const struct mqtt_packet *pkt)
{
	struct brg *g = p->g;
	uint16_t pid = pkt->u.ack.packet_id;
	uint32_t e = p->map[pid];
	if (!(e & MAP_LIVE))
		return; /* not ours (a duplicate ack) */
	uint8_t reason = pkt->u.ack.reason;
	if (pkt->type == MQTT_PUBREC && reason < 0x80) {
		struct mqtt_packet rel = { .type = MQTT_PUBREL };
		rel.u.ack.packet_id = pid;
		brg_link_send(p->to, &rel);
		return;
	}
	p->map[pid] = 0;
	p->inflight--;
	bool ok = reason < 0x80;
	if (!ok)
		log_warning("bridge %s: the %s broker refused a message (reason 0x%02x): acknowledged "
			    "anyway, not retried", g->c->name, p->to->what, reason);
	ack_from(p, (uint16_t)(e & 0xFFFF), (uint8_t)((e >> 16) & 3));
	if (p->dir == BRG_FWD)
		count(g, ok ? &g->stat.fwd_ok : &g->stat.fwd_failed);
	else
		count(g, ok ? &g->stat.recv_ok : &g->stat.recv_failed);
	pend_drain(p);
}
