/*
 * brk_handover.c - messages from a third node while a session moves between
 * two others (ARCHITECTURE.md "The cluster", Takeover).
 *
 * Client X's session moves from node 1 to node 2 while a publisher on node 3
 * sends to it. Node 3 forwards to whichever nodes its replica names for X's
 * filters; it learns of the move only through route changes: node 2's
 * ROUTE_ADD (after its import) and node 1's ROUTE_DEL, which come on two
 * links in no particular order. Two rules make every message reach X once:
 *
 * - The old owner (node 1) keeps the session's plain routes for
 *   HOV_GHOST_MS (a "ghost"): its replica entries stay, marked
 *   BRK_SUBOPT_FWD_ONLY, so only messages other nodes forward here match
 *   them (this node's own publishers follow the provisional route to node 2,
 *   brk_cluster_takeover_out), and the route count keeps node 1's route
 *   announced, so node 3 never has neither route. A forwarded message that
 *   matches the ghost reaches the ended session, which relays it to node 2
 *   (FORWARD with CLIENT, brk_cluster_forward_moved) carrying the publishing
 *   node's message id; the FORWARD_ACK to node 3 waits for node 2's
 *   acknowledgement of the relay (the publisher's PUBACK with it), so a
 *   publisher that waits for each acknowledgement keeps its order; one with
 *   several messages in flight keeps it through node 3's route switch fence
 *   (cluster/clu_switch.c), which builds on that acknowledgement.
 * - The new owner (node 2) remembers for HOV_DEDUP_MS which (origin node,
 *   message id) reached the imported session: while node 3 has both routes
 *   a message arrives twice (straight, and relayed by node 1), and the
 *   second copy is dropped, whichever comes first.
 *
 * Threads: a ghost is owned by the session's worker; the dedup set by the
 * imported session's owner (sess_deliver runs there). b->ghosts (atomic)
 * tells every worker that a forwarded message may be relayed, so it takes a
 * token to hold its FORWARD_ACK (brk_route_forwarded).
 */
#include "broker/brk_int.h"
#include "core/log.h"
#include "core/mem.h"

#include <stddef.h>
#include <string.h>

#define HOV_GHOST_MS 10000        /* as long as node 1's provisional route (clu_route.c) */

struct hov_ghost {
	struct session *s;        /* reference: the session handed over (ended) */
	char **filters;           /* owned: its plain filters, still in the replicas */
	uint32_t n;
	int64_t until;            /* monotonic ms */
	struct hov_ghost *next;
};

struct hov_seen {
	struct clu_peer *origin;  /* key: origin node and its message id */
	uint64_t mid;
	UT_hash_handle hh;
};

struct hov_dedup {
	int64_t until;            /* monotonic ms: forgotten after */
	struct hov_seen *by_key;  /* uthash over ring */
	struct hov_seen *ring;    /* FIFO, cap entries (grows to HOV_DEDUP_MAX) */
	uint32_t head, n, cap;
};

static bool shared_filter(const char *f)
{
	return !strncmp(f, "$share/", 7);
}

uint64_t brk_handover_mid(struct worker *w)
{
	WK_ASSERT_OWNER(w);
	if (!w->b->clu)
		return 0; /* no cluster: nothing to tell apart */
	if (!w->clu.next_mid) {
		/* per worker and run: the worker in the top byte, the start time
		 * below, so a restarted node does not reuse its last run's ids */
		w->clu.next_mid = ((uint64_t)(w->id & 0xFF) << 56) |
			      (((uint64_t)w->b->start_wall_ms & ((UINT64_C(1) << 42) - 1)) << 13);
	}
	return ++w->clu.next_mid;
}

void brk_handover_ghost(struct worker *w, struct session *s)
{
	WK_ASSERT_OWNER(w);
	struct hov_ghost *g = hq_calloc(1, sizeof(*g));
	g->filters = hq_calloc(s->n_subs ? s->n_subs : 1, sizeof(*g->filters));
	struct sess_sub *sub, *tmp;
	HASH_ITER(hh, s->subs, sub, tmp) {
		if (shared_filter(sub->filter) || g->n == s->n_subs)
			continue; /* a group picks among online members: nothing to follow */
		/* replaced in place in every replica, behind the route changes
		 * the caller posted: the same switch point on every worker */
		brk_route_broadcast(w, WQ_ROUTE_ADD, s, sub->filter,
				    sub->options | BRK_SUBOPT_FWD_ONLY, sub->sub_id);
		g->filters[g->n++] = hq_strdup(sub->filter);
	}
	if (!g->n) {
		hq_free(g->filters);
		hq_free(g);
		return;
	}
	if (!s->clu)
		s->clu = hq_calloc(1, sizeof(*s->clu));
	s->clu->ghost = true;
	g->s = sess_ref(s);
	g->until = ev_now_ms(w->loop) + HOV_GHOST_MS;
	g->next = w->clu.ghosts;
	w->clu.ghosts = g;
	atomic_fetch_add(&w->b->ghosts, 1);
	log_debug("client_id=%s: %u route(s) kept %d ms for what other nodes forward", s->client_id,
		  g->n, HOV_GHOST_MS);
}

bool brk_handover_keeps(const struct session *s, const char *filter)
{
	return s->clu && s->clu->ghost && !shared_filter(filter);
}

static void ghost_end(struct worker *w, struct hov_ghost *g)
{
	log_debug("client_id=%s: the %u route(s) kept after its hand-over are withdrawn",
		  g->s->client_id, g->n);
	for (uint32_t i = 0; i < g->n; i++) {
		brk_route_broadcast(w, WQ_ROUTE_DEL, g->s, g->filters[i], 0, 0);
		brk_cluster_route(w, false, g->filters[i]);
		hq_free(g->filters[i]);
	}
	hq_free(g->filters);
	sess_unref(g->s);
	hq_free(g);
	atomic_fetch_sub(&w->b->ghosts, 1);
}

void brk_handover_tick(struct worker *w, int64_t now)
{
	WK_ASSERT_OWNER(w);
	for (struct hov_ghost **p = &w->clu.ghosts; *p;) {
		struct hov_ghost *g = *p;
		if (now < g->until) {
			p = &g->next;
			continue;
		}
		*p = g->next;
		ghost_end(w, g);
	}
}

void brk_handover_free(struct worker *w)
{
	while (w->clu.ghosts) {
		struct hov_ghost *g = w->clu.ghosts;
		w->clu.ghosts = g->next;
		for (uint32_t i = 0; i < g->n; i++)
			hq_free(g->filters[i]);
		hq_free(g->filters);
		sess_unref(g->s);
		hq_free(g);
	}
}

/* ---- the new owner ---- */

void brk_handover_dedup_start(struct session *s, int64_t now)
{
	WK_ASSERT_OWNER(s->w);
	if (!s->clu)
		s->clu = hq_calloc(1, sizeof(*s->clu));
	if (!s->clu->dedup)
		s->clu->dedup = hq_calloc(1, sizeof(*s->clu->dedup));
	s->clu->dedup->until = now + HOV_DEDUP_MS;
}

void brk_handover_dedup_free(struct session *s)
{
	struct hov_dedup *d = s->clu ? s->clu->dedup : NULL;
	if (!d)
		return;
	HASH_CLEAR(hh, d->by_key);
	hq_free(d->ring);
	hq_free(d);
	s->clu->dedup = NULL;
}

/* The key's bytes: origin then mid, no padding between (both 8 bytes). */
#define SEEN_KEYLEN (offsetof(struct hov_seen, mid) + sizeof(uint64_t) - offsetof(struct hov_seen, origin))

static void seen_add(struct hov_dedup *d, struct clu_peer *origin, uint64_t mid)
{
	if (d->n == d->cap && d->cap < HOV_DEDUP_MAX) {
		/* grow: the ring is unwrapped into a new array, the hash rebuilt
		 * (its handles point into the old one) */
		uint32_t cap = d->cap ? d->cap * 2 : 64;
		struct hov_seen *r = hq_calloc(cap, sizeof(*r));
		HASH_CLEAR(hh, d->by_key);
		for (uint32_t i = 0; i < d->n; i++) {
			struct hov_seen *e = &r[i];
			*e = d->ring[(d->head + i) % d->cap];
			memset(&e->hh, 0, sizeof(e->hh));
			HASH_ADD(hh, d->by_key, origin, SEEN_KEYLEN, e);
		}
		hq_free(d->ring);
		d->ring = r;
		d->cap = cap;
		d->head = 0;
	}
	if (d->n == d->cap) {
		/* full: forget the oldest (a copy that late may come twice) */
		struct hov_seen *old = &d->ring[d->head];
		HASH_DEL(d->by_key, old);
		d->head = (d->head + 1) % d->cap;
		d->n--;
	}
	struct hov_seen *e = &d->ring[(d->head + d->n) % d->cap];
	memset(e, 0, sizeof(*e));
	e->origin = origin;
	e->mid = mid;
	HASH_ADD(hh, d->by_key, origin, SEEN_KEYLEN, e);
	d->n++;
}

bool brk_handover_dup(struct session *s, const struct brk_msg *msg, int64_t now)
{
	WK_ASSERT_OWNER(s->w);
	struct hov_dedup *d = s->clu->dedup;
	if (!d || !msg->mid || !msg->fwd_origin)
		return false; /* published here: it takes one path only */
	if (now > d->until) {
		brk_handover_dedup_free(s);
		return false;
	}
	struct hov_seen key, *e;
	memset(&key, 0, sizeof(key));
	key.origin = msg->fwd_origin;
	key.mid = msg->mid;
	HASH_FIND(hh, d->by_key, &key.origin, SEEN_KEYLEN, e);
	if (e) {
		log_debug("client_id=%s: a second copy of a message on %s dropped (it came both "
			  "straight and through the session's old node)", s->client_id, msg->topic);
		return true;
	}
	seen_add(d, msg->fwd_origin, msg->mid);
	return false;
}
