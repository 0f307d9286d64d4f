/*
 * brk_subscribe.c - SUBSCRIBE / UNSUBSCRIBE, route replication to every
 * worker's replica, and retained messages sent on subscribe (brk_retained_out.c).
 *
 * A route change is applied to the subscribing worker's replica at once (so
 * its own publishes see it before SUBACK leaves) and posted to every other
 * worker in the same ordered channel as deliveries.
 */
#include "broker/brk_int.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

#include <string.h>

void brk_route_apply(struct worker *w, enum wq_kind kind, struct session *s,
		     const char *filter, uint8_t options, uint32_t sub_id)
{
	WK_ASSERT_OWNER(w);
	size_t len = strlen(filter);
	if (kind == WQ_ROUTE_ADD) {
		/* no check of s->ended here: it belongs to another thread; a
		 * ROUTE_DEL from the owner always follows in the same channel (or,
		 * for a session taken over from another node, its owner posts
		 * the adds when it rebuilds it: brk_cluster_takeover_import) */
		bool replaced = false;
		if (topic_tree_add(w->routes, filter, len, s, options, sub_id, &replaced) == HQ_OK &&
		    !replaced)
			sess_ref(s); /* each replica entry holds a reference */
	} else {
		if (topic_tree_remove(w->routes, filter, len, s) == HQ_OK)
			sess_unref(s);
	}
}

void brk_route_broadcast(struct worker *w, enum wq_kind kind, struct session *s,
			 const char *filter, uint8_t options, uint32_t sub_id)
{
	WK_ASSERT_OWNER(w);
	struct broker *b = w->b;
	for (int i = 0; i < b->n_workers; i++) {
		if (i == w->id) {
			brk_route_apply(w, kind, s, filter, options, sub_id);
			continue;
		}
		struct wq_entry e = { .kind = (uint8_t)kind, .options = options, .sub_id = sub_id,
				      .sess = sess_ref(s) };
		e.u.filter = hq_strdup(filter);
		wk_post(w, &b->workers[i], &e);
	}
}

static bool has_wildcard(const char *f)
{
	return strchr(f, '+') || strchr(f, '#');
}

int brk_handle_subscribe(struct conn *c, const struct mqtt_packet *p)
{
	WK_ASSERT_OWNER(c->w);
	const struct mqtt_subscribe *sb = &p->u.subscribe;
	struct session *s = c->sess;
	struct worker *w = c->w;
	struct hq_config *cfg = w->b->cfg;
	bool v5 = c->version == MQTT_V5;
	uint32_t sub_id = 0;
	uint32_t mark = brk_store_mark(w); /* SUBACK waits for the stored subscriptions */

	if (v5 && (sb->props.present & MQTT_PROP_BIT(MQTT_PROP_SUBSCRIPTION_ID))) {
		if (sb->props.n_sub_ids > 1) {
			conn_close(c, MQTT_RC_PROTOCOL_ERROR, "more than one subscription identifier");
			return HQ_EPROTOCOL;
		}
		if (!cfg->subscription_identifiers) {
			conn_close(c, MQTT_RC_SUB_IDS_NOT_SUPPORTED, "subscription identifiers not supported");
			return HQ_EPROTOCOL;
		}
		sub_id = sb->props.sub_ids[0];
	}
	uint8_t *codes = hq_malloc(sb->count);
	struct {
		char *filter;
		uint8_t options;
	} *retained = hq_calloc(sb->count, sizeof(*retained));
	size_t n_ret = 0;
	uint32_t cursor = 0, i = 0;
	struct mqtt_str f;
	uint8_t opts;
	int rc = HQ_OK;
	while (mqtt_sub_next(sb, &cursor, &f, &opts)) {
		char *filter = hq_strndup((const char *)f.p, f.len);
		const char *g, *inner;
		size_t gl, il;
		bool shared = topic_filter_shared(filter, f.len, &g, &gl, &inner, &il);
		uint8_t qos = opts & MQTT_SUBOPT_QOS_MASK;
		uint8_t rh = (opts & MQTT_SUBOPT_RH_MASK) >> MQTT_SUBOPT_RH_SHIFT;
		struct sess_sub *sub;
		if (strlen(filter) != f.len ||
		    !topic_filter_valid(filter, f.len, cfg->max_topic_levels)) {
			codes[i++] = v5 ? MQTT_RC_TOPIC_FILTER_INVALID : 0x80;
			hq_free(filter);
			continue;
		}
		if (shared && (opts & MQTT_SUBOPT_NO_LOCAL)) {
			hq_free(filter);
			conn_close(c, MQTT_RC_PROTOCOL_ERROR, "no local on a shared subscription"); /* [MQTT-3.8.3-4] */
			rc = HQ_EPROTOCOL;
			goto out;
		}
		if (shared && !cfg->shared_subscription) {
			codes[i++] = v5 ? MQTT_RC_SHARED_SUB_NOT_SUPPORTED : 0x80;
			hq_free(filter);
			continue;
		}
		if (has_wildcard(filter) && !cfg->wildcard_subscription) {
			codes[i++] = v5 ? MQTT_RC_WILDCARD_SUB_NOT_SUPPORTED : 0x80;
			hq_free(filter);
			continue;
		}
		/* the ACL (auth.acl_file): the filter (a shared one's inner
		 * filter) must be readable as a whole; each message through a
		 * wildcard is checked again on delivery (sess_deliver).
		 * [MQTT-3.9.3-2] 0x80 is the v3.1.1 failure code */
		if (s->acl && !brk_acl_allow(w, s->acl, ACL_READ, shared ? inner : filter,
					     shared ? il : f.len, true)) {
			brk_deny_log(c, "subscribe denied by the ACL client_id=%s filter=%s "
				     "username=%s addr=%s", s->client_id, filter,
				     c->username ? c->username : "", c->addr);
			codes[i++] = v5 ? MQTT_RC_NOT_AUTHORIZED : 0x80;
			hq_free(filter);
			continue;
		}
		HASH_FIND_STR(s->subs, filter, sub);
		if (!sub && cfg->max_subscriptions && s->n_subs >= cfg->max_subscriptions) {
			codes[i++] = v5 ? MQTT_RC_QUOTA_EXCEEDED : 0x80;
			hq_free(filter);
			continue;
		}
		uint8_t granted = qos < cfg->max_qos ? qos : (uint8_t)cfg->max_qos;
		uint8_t stored = (uint8_t)((opts & ~MQTT_SUBOPT_QOS_MASK) | granted);
		bool existed = sub != NULL;
		if (!sub) {
			sub = hq_calloc(1, sizeof(*sub));
			sub->filter = filter;
			HASH_ADD_KEYPTR(hh, s->subs, sub->filter, strlen(sub->filter), sub);
			s->n_subs++;
			brk_prom_subs(s, 1);
		} else {
			hq_free(filter);
		}
		sub->options = stored;
		sub->sub_id = sub_id;
		brk_store_sub_put(s, sub);
		brk_route_broadcast(w, WQ_ROUTE_ADD, s, sub->filter, stored, sub_id);
		if (!existed)
			brk_cluster_route(w, true, sub->filter);
		codes[i++] = granted;
		/* retain handling: 0 always, 1 only for a new subscription, 2 never;
		 * never for shared subscriptions */
		if (!shared && (rh == 0 || (rh == 1 && !existed))) {
			retained[n_ret].filter = hq_strdup(sub->filter);
			retained[n_ret].options = stored;
			n_ret++;
		}
		log_debug("client_id=%s subscribed filter=%s qos=%u", s->client_id, sub->filter, granted);
	}
	/* the other workers get the routes before the SUBACK can leave; so do
	 * the other nodes (the SUBACK waits for their confirmation) */
	wk_flush_outboxes(w);
	if (i)
		brk_cluster_barrier(c);
	brk_store_gate(c, mark, 0, 0);
	struct mqtt_packet ack = { .type = MQTT_SUBACK };
	ack.u.suback.packet_id = sb->packet_id;
	ack.u.suback.codes = codes;
	ack.u.suback.count = (uint16_t)i;
	conn_send_packet(c, &ack);
	/* [MQTT-3.3.1-6] the matching retained messages, paced by the window */
	for (size_t k = 0; k < n_ret; k++)
		sess_retained_start(s, retained[k].filter, retained[k].options, sub_id);
	if (n_ret)
		sess_pump(s);
out:
	for (size_t k = 0; k < n_ret; k++)
		hq_free(retained[k].filter);
	hq_free(retained);
	hq_free(codes);
	return rc;
}

int brk_handle_unsubscribe(struct conn *c, const struct mqtt_packet *p)
{
	WK_ASSERT_OWNER(c->w);
	const struct mqtt_subscribe *ub = &p->u.subscribe;
	struct session *s = c->sess;
	uint8_t *codes = hq_malloc(ub->count);
	uint32_t cursor = 0, i = 0;
	uint32_t mark = brk_store_mark(c->w);
	struct mqtt_str f;
	while (mqtt_unsub_next(ub, &cursor, &f)) {
		struct sess_sub *sub;
		HASH_FIND(hh, s->subs, f.p, f.len, sub);
		if (!sub) {
			codes[i++] = MQTT_RC_NO_SUBSCRIPTION_EXISTED;
			continue;
		}
		brk_route_broadcast(c->w, WQ_ROUTE_DEL, s, sub->filter, 0, 0);
		brk_cluster_route(c->w, false, sub->filter);
		brk_store_sub_delete(s, sub->filter);
		HASH_DEL(s->subs, sub);
		s->n_subs--;
		brk_prom_subs(s, -1);
		hq_free(sub->filter);
		hq_free(sub);
		codes[i++] = MQTT_RC_SUCCESS;
	}
	wk_flush_outboxes(c->w); /* route removals reach every worker before UNSUBACK */
	brk_store_gate(c, mark, 0, 0);
	/* [MQTT-3.10.4-4] [MQTT-3.10.4-5] UNSUBACK even when nothing matched */
	struct mqtt_packet ack = { .type = MQTT_UNSUBACK };
	ack.u.suback.packet_id = ub->packet_id;
	ack.u.suback.codes = codes;
	ack.u.suback.count = c->version == MQTT_V5 ? (uint16_t)i : 0;
	conn_send_packet(c, &ack);
	hq_free(codes);
	return HQ_OK;
}
