/*
 * store_cancel.c - writes that cancel out within one group of batches.
 *
 * A live persistent subscriber acknowledges most messages before the store
 * thread gets to them: the group the runner takes holds the entry's
 * QENT_PUT (in a batch of one turn) and its QENT_DEL (a later turn of the
 * same worker, the session's owner). Applying both changes nothing but
 * costs the backend a message write, two entry writes, two reference
 * counts and a delete. store_cancel_group drops such pairs before the group
 * is applied, and then each MSG_PUT that no remaining entry of its batch
 * references (the backend would drop it at the batch's end anyway).
 *
 * Safe because: both events come from the session's owner in its order; a
 * pair is dropped only if no event of that entry lies between them (a QoS 2
 * PUBREL update keeps the pair); a read batch (store_batch_read) must see
 * every write before it, so pairs never span one. The batches' gate tokens
 * are untouched: a response waiting for a dropped PUT is released when its
 * batch completes, which is right, since the delivery it stood for is done.
 * Runs on the runner thread, which owns the group.
 */
#include "store/store.h"
#include "core/mem.h"

#include <string.h>

struct slot {
	const struct store_ev *put;   /* NULL = empty */
	struct store_batch *b;        /* the batch holding put */
	uint32_t i;                   /* its index there */
	bool dead;                    /* deleted again (a tombstone: keep probing) */
};

struct table {
	struct slot *v;
	size_t mask;
};

static uint64_t key_hash(struct store_bytes cid, uint64_t seq)
{
	uint64_t h = 1469598103934665603ULL;
	for (uint32_t i = 0; i < cid.len; i++)
		h = (h ^ cid.p[i]) * 1099511628211ULL;
	h ^= seq;
	h *= 0x9E3779B97F4A7C15ULL;
	return h ^ (h >> 29);
}

static bool same(const struct store_ev *put, const struct store_ev *e)
{
	return put->u.qent.seq == e->u.qent.seq && put->client_id.len == e->client_id.len &&
	       !memcmp(put->client_id.p, e->client_id.p, e->client_id.len);
}

static struct slot *find(struct table *t, const struct store_ev *e, bool for_insert)
{
	size_t i = key_hash(e->client_id, e->u.qent.seq) & t->mask;
	for (;;) {
		struct slot *s = &t->v[i];
		if (!s->put)
			return for_insert ? s : NULL;
		if (!s->dead && same(s->put, e))
			return s;
		i = (i + 1) & t->mask;
	}
}

/* Drop the events marked (kind 0) from b, keeping the order. */
static void compact(struct store_batch *b)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < b->n_ev; i++)
		if (b->ev[i].kind)
			b->ev[n++] = b->ev[i];
	b->n_ev = n;
}

static uint64_t id_hash(uint64_t id)
{
	id *= 0x9E3779B97F4A7C15ULL;
	return id ^ (id >> 31);
}

/* Unreferenced MSG_PUTs of b (after its entries were dropped): a set of the
 * message ids its remaining entries reference, then one look-up each. */
static void drop_lonely_msgs(struct store_batch *b)
{
	size_t n = 0;
	for (uint32_t i = 0; i < b->n_ev; i++)
		n += b->ev[i].kind == STORE_EV_QENT_PUT;
	size_t cap = 16;
	while (cap < n * 2)
		cap *= 2;
	uint64_t *set = hq_calloc(cap, sizeof(uint64_t)); /* 0 = empty: ids are never 0 */
	for (uint32_t i = 0; i < b->n_ev; i++) {
		uint64_t id = b->ev[i].u.qent.msg_id;
		if (b->ev[i].kind != STORE_EV_QENT_PUT || !id)
			continue;
		size_t k = id_hash(id) & (cap - 1);
		while (set[k] && set[k] != id)
			k = (k + 1) & (cap - 1);
		set[k] = id;
	}
	for (uint32_t i = 0; i < b->n_ev; i++) {
		struct store_ev *m = &b->ev[i];
		if (m->kind != STORE_EV_MSG_PUT)
			continue;
		size_t k = id_hash(m->u.msg.id) & (cap - 1);
		while (set[k] && set[k] != m->u.msg.id)
			k = (k + 1) & (cap - 1);
		if (!set[k])
			m->kind = 0;
	}
	hq_free(set);
}

/* One segment: the batches from `from` up to (not including) `to`. */
static uint64_t cancel_segment(struct store_batch *from, struct store_batch *to)
{
	size_t puts = 0;
	for (struct store_batch *b = from; b != to; b = b->next)
		for (uint32_t i = 0; i < b->n_ev; i++)
			puts += b->ev[i].kind == STORE_EV_QENT_PUT;
	if (!puts)
		return 0;
	size_t cap = 16;
	while (cap < puts * 2)
		cap *= 2;
	struct table t = { hq_calloc(cap, sizeof(struct slot)), cap - 1 };
	uint64_t dropped = 0;
	for (struct store_batch *b = from; b != to; b = b->next) {
		for (uint32_t i = 0; i < b->n_ev; i++) {
			struct store_ev *e = &b->ev[i];
			struct slot *s;
			switch (e->kind) {
			case STORE_EV_QENT_PUT:
				s = find(&t, e, true);
				*s = (struct slot){ .put = e, .b = b, .i = i };
				break;
			case STORE_EV_QENT_UPDATE:
				if ((s = find(&t, e, false)))
					s->dead = true; /* its state changed on the way: keep both */
				break;
			case STORE_EV_QENT_DEL:
				if ((s = find(&t, e, false))) {
					s->b->ev[s->i].kind = 0;
					e->kind = 0;
					s->dead = true;
					dropped += 2;
				}
				break;
			default:
				break;
			}
		}
	}
	hq_free(t.v);
	if (dropped)
		for (struct store_batch *b = from; b != to; b = b->next) {
			compact(b);
			drop_lonely_msgs(b);
			compact(b);
		}
	/* (a batch may end up empty: it still completes, with its tokens) */
	return dropped;
}

uint64_t store_cancel_group(struct store_batch *group)
{
	uint64_t dropped = 0;
	struct store_batch *from = group;
	for (struct store_batch *b = group; b; b = b->next) {
		if (b->read) {
			dropped += cancel_segment(from, b);
			from = b->next;
		}
	}
	if (from)
		dropped += cancel_segment(from, NULL);
	return dropped;
}
