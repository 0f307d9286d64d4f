/*
 * brk_msg.c - published messages (one allocation each, reference counted and
 * immutable once built), deliveries and the delivery FIFO of a session.
 */
#include "broker/brk_int.h"
#include "core/mem.h"

#include <string.h>

struct brk_msg *msg_new(const char *topic, size_t topic_len, const uint8_t *props,
			size_t props_len, const uint8_t *payload, size_t payload_len,
			uint8_t qos, bool retain, bool has_expiry, uint32_t expiry,
			int64_t now_ms)
{
	struct brk_msg *m = hq_malloc(sizeof(*m) + topic_len + 1 + props_len + payload_len);
	atomic_init(&m->refs, 1);
	m->qos = qos;
	m->retain = retain;
	m->has_expiry = has_expiry;
	m->expiry = expiry;
	m->expire_at = has_expiry ? now_ms + (int64_t)expiry * 1000 : 0;
	m->topic_len = (uint16_t)topic_len;
	m->props_len = (uint32_t)props_len;
	m->payload_len = (uint32_t)payload_len;
	m->origin_sid = 0;
	atomic_init(&m->store_id, 0);
	m->pub_hash = 0;
	m->stamp = NULL;
	m->rx = NULL;
	m->mid = 0;
	m->fwd_origin = NULL;
	m->topic = (char *)m->data;
	memcpy(m->topic, topic, topic_len);
	m->topic[topic_len] = '\0';
	m->props = m->data + topic_len + 1;
	if (props_len)
		memcpy(m->props, props, props_len);
	m->payload = m->props + props_len;
	if (payload_len)
		memcpy(m->payload, payload, payload_len);
	return m;
}

void msg_unref(struct brk_msg *m)
{
	if (m && atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1) {
		hq_free(m->stamp);
		hq_free(m->rx);
		hq_free(m);
	}
}

void msg_unref_cb(void *m)
{
	msg_unref(m);
}

bool msg_expired(const struct brk_msg *m, int64_t now_ms)
{
	return m->has_expiry && now_ms >= m->expire_at;
}

uint32_t msg_remaining(const struct brk_msg *m, int64_t now_ms)
{
	int64_t left = m->expire_at - now_ms;
	if (left <= 0)
		return 0;
	/* round up: a message with 1 ms left still has "1 second" to live */
	return (uint32_t)((left + 999) / 1000);
}

void deliv_release(struct deliv *d)
{
	if (d->msg)
		msg_unref(d->msg);
	if (d->n_sub_ids > 1)
		hq_free(d->sub_ids);
	hq_free(d->share_group);
	memset(d, 0, sizeof(*d));
}

void dq_push(struct dqueue *q, const struct deliv *d)
{
	if (q->len == q->cap) {
		uint32_t ncap = q->cap ? q->cap * 2 : 8;
		struct deliv *nv = hq_malloc(ncap * sizeof(*nv));
		for (uint32_t i = 0; i < q->len; i++)
			nv[i] = q->v[(q->head + i) & (q->cap - 1)];
		hq_free(q->v);
		q->v = nv;
		q->cap = ncap;
		q->head = 0;
	}
	q->v[(q->head + q->len) & (q->cap - 1)] = *d;
	q->len++;
}

bool dq_pop(struct dqueue *q, struct deliv *out)
{
	if (!q->len)
		return false;
	*out = q->v[q->head];
	q->head = (q->head + 1) & (q->cap - 1);
	q->len--;
	if (!q->len && q->cap > 64) {
		/* an emptied big queue gives its memory back */
		HQ_FREE(q->v);
		q->cap = q->head = 0;
	}
	return true;
}

struct deliv *dq_at(struct dqueue *q, uint32_t i)
{
	return &q->v[(q->head + i) & (q->cap - 1)];
}

void dq_remove_at(struct dqueue *q, uint32_t i, struct deliv *out)
{
	*out = *dq_at(q, i);
	/* shift the older entries one step towards the tail */
	for (uint32_t k = i; k > 0; k--)
		*dq_at(q, k) = *dq_at(q, k - 1);
	q->head = (q->head + 1) & (q->cap - 1);
	q->len--;
}

void dq_free(struct dqueue *q)
{
	struct deliv d;
	while (q->len) {
		dq_pop(q, &d);
		deliv_release(&d);
	}
	HQ_FREE(q->v);
	q->cap = q->head = q->len = 0;
}

uint32_t brk_hash(const char *s, size_t n)
{
	/* FNV-1a: stable across runs, so "hash_clientid" sticks to a member */
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++) {
		h ^= (uint8_t)s[i];
		h *= 16777619u;
	}
	return h;
}
