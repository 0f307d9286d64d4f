/*
 * brk_query_msg.c - the management API's retained messages and publish
 * (broker_api.h).
 *
 * Retained messages are read under retain_lock on the calling thread (the
 * tree is shared, not a worker's) and copied out. A delete and a publish are
 * writes: they run on worker 0 (brk_call_one) through the same functions an
 * MQTT PUBLISH uses (brk_retain_store, brk_route), so the cluster replicates
 * and the store persists them as it does a client's. Worker 0 always: two
 * API publishes keep their order, as one client's would.
 */
#include "broker/brk_int.h"
#include "broker/broker_api.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/mem.h"

#include <string.h>

#define API_PUBLISHER "http_api"

/* ---- retained ---- */

struct ret_walk {
	size_t offset, limit, idx;
	struct broker_retained *out;
	size_t n;
};

static void ret_fill(const char *topic, size_t len, const struct brk_msg *m,
		     struct broker_retained *o, bool payload)
{
	memset(o, 0, sizeof(*o));
	o->topic = hq_strndup(topic, len);
	o->qos = m->qos;
	o->publish_at = m->stamp ? (int64_t)m->stamp->ts.wall_ms : 0;
	if (payload) {
		o->payload = hq_malloc(m->payload_len ? m->payload_len : 1);
		memcpy(o->payload, m->payload, m->payload_len);
		o->payload_len = m->payload_len;
	}
}

static bool ret_visit(void *ctx, const char *topic, size_t len, void *value)
{
	struct ret_walk *r = ctx;
	if (r->idx >= r->offset && r->idx - r->offset < r->limit)
		ret_fill(topic, len, value, &r->out[r->n++], false);
	r->idx++;
	return true; /* counted to the end: meta.count is the whole set */
}

int broker_retained_list(struct broker *b, size_t offset, size_t limit,
			 struct broker_retained **out, size_t *n, size_t *total)
{
	struct ret_walk r = { .offset = offset, .limit = limit };
	pthread_mutex_lock(&b->retain_lock);
	size_t all = retain_tree_count(b->retained);
	size_t cap = all > offset ? all - offset : 0;
	cap = cap < limit ? cap : limit;
	r.out = hq_calloc(cap ? cap : 1, sizeof(*r.out));
	r.limit = cap;
	/* "#" leaves out the $-topics: $SYS/brokers/<node>/... is the node's
	 * own statistics, not an application's retained message */
	retain_tree_match(b->retained, "#", 1, ret_visit, &r);
	pthread_mutex_unlock(&b->retain_lock);
	*out = r.out;
	*n = r.n;
	*total = r.idx;
	return HQ_OK;
}

int broker_retained_get(struct broker *b, const char *topic, struct broker_retained *out)
{
	size_t len = strlen(topic);
	pthread_mutex_lock(&b->retain_lock);
	struct brk_msg *m = retain_tree_get(b->retained, topic, len);
	if (m)
		ret_fill(topic, len, m, out, true);
	pthread_mutex_unlock(&b->retain_lock);
	return m ? HQ_OK : HQ_ENOTFOUND;
}

void broker_retained_free(struct broker_retained *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		hq_free(v[i].topic);
		hq_free(v[i].payload);
	}
	hq_free(v);
}

struct ret_del_job {
	const char *topic;
	bool found;
};

static void ret_del_on(struct worker *w, void *arg)
{
	struct ret_del_job *j = arg;
	struct broker *b = w->b;
	size_t len = strlen(j->topic);
	pthread_mutex_lock(&b->retain_lock);
	j->found = retain_tree_get(b->retained, j->topic, len) != NULL;
	pthread_mutex_unlock(&b->retain_lock);
	if (!j->found)
		return;
	/* an empty retained message: the delete an MQTT client would send,
	 * stamped, stored and sent to every node the same way */
	struct brk_msg *m = msg_new(j->topic, len, NULL, 0, NULL, 0, 0, true, false, 0,
				    ev_now_ms(w->loop));
	m->pub_hash = brk_hash(API_PUBLISHER, sizeof(API_PUBLISHER) - 1);
	m->mid = brk_handover_mid(w);
	brk_retain_store(w, m);
	msg_unref(m);
}

int broker_retained_delete(struct broker *b, const char *topic)
{
	if (!topic_name_valid(topic, strlen(topic), 0))
		return HQ_ETOPIC;
	struct ret_del_job j = { .topic = topic };
	int rc = brk_call_one(b, &b->workers[0], ret_del_on, &j);
	return rc != HQ_OK ? rc : j.found ? HQ_OK : HQ_ENOTFOUND;
}

/* ---- publish ---- */

static bool prop_str(struct buf *out, uint8_t id, const void *p, size_t n)
{
	if (n > UINT16_MAX)
		return false;
	uint8_t h[3] = { id, (uint8_t)(n >> 8), (uint8_t)n };
	buf_append(out, h, sizeof(h));
	buf_append(out, p, n);
	return true;
}

/* The forwardable property blob (mqtt_props_forwardable's shape). */
static int props_build(const struct broker_publish *p, struct buf *out)
{
	if (p->payload_format >= 0) {
		uint8_t pf[2] = { MQTT_PROP_PAYLOAD_FORMAT, (uint8_t)(p->payload_format ? 1 : 0) };
		buf_append(out, pf, sizeof(pf));
	}
	if (p->content_type &&
	    !prop_str(out, MQTT_PROP_CONTENT_TYPE, p->content_type, strlen(p->content_type)))
		return HQ_EINVAL;
	if (p->response_topic) {
		size_t n = strlen(p->response_topic);
		if (!topic_name_valid(p->response_topic, n, 0) ||
		    !prop_str(out, MQTT_PROP_RESPONSE_TOPIC, p->response_topic, n))
			return HQ_EINVAL; /* [MQTT-3.3.2-14] a topic name, no wildcard */
	}
	if (p->correlation_data &&
	    !prop_str(out, MQTT_PROP_CORRELATION_DATA, p->correlation_data, p->correlation_len))
		return HQ_EINVAL;
	for (size_t i = 0; i < p->n_user_props; i++) {
		const struct broker_user_prop *u = &p->user_props[i];
		if (strlen(u->key) > UINT16_MAX || strlen(u->value) > UINT16_MAX)
			return HQ_EINVAL;
		mqtt_props_user_append(out, u->key, u->value);
	}
	return HQ_OK;
}

/* Does any subscription (here, or another node's through its node
 * session) match? A second match on the replica, only for API publishes:
 * brk_route does not report its hits. TOPIC_SHARED_HASH moves no
 * round-robin cursor, so the real match picks as it would have. */
static void count_cb(void *ctx, const struct topic_sub *sub)
{
	if (!(sub->options & BRK_SUBOPT_FWD_ONLY))
		(*(uint32_t *)ctx)++;
}

static void count_shared_cb(void *ctx, const struct topic_sub *sub, const char *gf, size_t n)
{
	(void)gf;
	(void)n;
	count_cb(ctx, sub);
}

struct pub_job {
	const struct broker_publish *p;
	const struct buf *props;
	uint64_t id;
	bool matched;
};

static void pub_on(struct worker *w, void *arg)
{
	struct pub_job *j = arg;
	const struct broker_publish *p = j->p;
	struct broker *b = w->b;
	struct brk_msg *m = msg_new(p->topic, strlen(p->topic), j->props->data, j->props->len,
				    p->payload, p->payload_len, p->qos, p->retain, p->has_expiry,
				    p->message_expiry, ev_now_ms(w->loop));
	/* a publisher id no session has: no-local never matches it */
	m->origin_sid = atomic_fetch_add(&b->next_id, 1);
	m->pub_hash = brk_hash(API_PUBLISHER, sizeof(API_PUBLISHER) - 1);
	m->mid = brk_handover_mid(w);
	j->id = m->mid ? m->mid : m->origin_sid;
	STAT_ADD(w->st.msgs_in[p->qos > 2 ? 2 : p->qos], 1); /* the route checked 0..2 */
	w->congested = NULL;
	if (p->retain)
		brk_retain_store(w, m);
	uint32_t hits = 0;
	topic_tree_match(w->routes, m->topic, m->topic_len, TOPIC_SHARED_HASH, m->pub_hash,
			 count_cb, count_shared_cb, NULL, &hits);
	j->matched = hits > 0; /* a node session's route counts: another node's subscriber */
	brk_route(w, m); /* no store token: never refused */
	if (b->arc)
		brk_archive_take(w, m, "", NULL, 0);
	w->congested = NULL;  /* no publisher connection to pause */
	msg_unref(m);
}

int broker_publish_msg(struct broker *b, const struct broker_publish *p, uint64_t *id,
		       bool *matched)
{
	const struct hq_config *cfg = b->cfg;
	size_t tlen = p->topic ? strlen(p->topic) : 0;
	if (!tlen || tlen > UINT16_MAX || !mqtt_utf8_valid((const uint8_t *)p->topic, tlen) ||
	    !topic_name_valid(p->topic, tlen, cfg->max_topic_levels) ||
	    !strncmp(p->topic, "$SYS/", 5))
		return HQ_ETOPIC;
	if (p->qos > cfg->max_qos || (p->retain && !cfg->retain_available))
		return HQ_EINVAL;
	struct buf props = { 0 };
	int rc = props_build(p, &props);
	struct pub_job j = { .p = p, .props = &props };
	if (rc == HQ_OK)
		rc = brk_call_one(b, &b->workers[0], pub_on, &j);
	buf_free(&props);
	if (rc == HQ_OK) {
		*id = j.id;
		*matched = j.matched;
	}
	return rc;
}
