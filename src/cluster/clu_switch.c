/*
 * clu_switch.c - per-publisher order when this node's route for a filter
 * moves to another node, on the cluster thread of the publishing node.
 *
 * A session that moves from node A to node B (ARCHITECTURE.md "Takeover")
 * is reached from here first through A (A's route; A relays what it gets for
 * the session to B, broker/brk_handover.c), then also straight to B once B's
 * ROUTE_ADD is here. A publisher with several messages in flight could see
 * one relayed through A overtaken by a later one sent straight to B
 * [MQTT-4.6.0-6]. A acknowledges a relayed message only once B acknowledged
 * the relay, so: from the point where a worker's replica has B's new route,
 * its forwards to B wait until A acknowledged every QoS > 0 forward that
 * worker sent A before (what A relayed is queued on B by then).
 *
 * The switch point of each worker: a ROUTE_ADD from B for a key another
 * linked node A routes too posts every worker a mark behind the route
 * (brk_post_switch); the worker echoes it in its requests
 * (CRQ_SWITCH_MARK), behind every forward it made before. At the echo, A's
 * last sequence number bounds what must be acknowledged. A wait ends when A
 * acknowledged through it, A's link changed (its forwards were released),
 * or after CLU_SWITCH_MAX_MS. Forwards following a session (CLIENT) never
 * wait, nor do those to other nodes: nothing that releases a wait waits.
 */
#include "cluster/clu_int.h"
#include "core/log.h"
#include "core/mem.h"

#include <string.h>

#define CLU_SWITCH_MAX_MS 3000

/* A ROUTE_ADD that overlaps: its mark is in the workers' inboxes. */
struct clu_switch {
	uint64_t id;
	struct clu_peer *to;
	struct clu_peer **from;          /* nodes routing a key of that ROUTE_ADD too */
	uint32_t n_from;
	int echoed;                      /* workers that echoed the mark */
	struct clu_switch *next;
};

/* One worker's wait: its forwards to `to` until `from` acknowledged
 * through `through` on link generation gen. */
struct clu_sw_cond {
	struct clu_peer *to, *from;
	uint64_t through;
	uint32_t gen;
	int64_t deadline_ms;
};

struct clu_sw_worker {
	struct clu_sw_cond *c;
	uint32_t n, cap;
	struct clu_req_vec held;         /* forwards waiting, in order (owned) */
};

static bool has_peer(struct clu_peer **v, uint32_t n, const struct clu_peer *m)
{
	for (uint32_t i = 0; i < n; i++)
		if (v[i] == m)
			return true;
	return false;
}

void clu_switch_route_added(struct clu_node *n, struct clu_peer *to, const char *key)
{
	struct clu_switch *sw = n->sw_open;
	for (size_t i = 1; i < n->n_m; i++) {
		struct clu_peer *a = n->m[i];
		if (a == to || !a->link)
			continue;
		struct clu_remote_route *rr;
		HASH_FIND_STR(a->routes, key, rr);
		if (!rr)
			continue;
		if (!sw) {
			sw = n->sw_open = hq_calloc(1, sizeof(*sw));
			sw->to = to;
			sw->from = hq_calloc(n->n_m, sizeof(*sw->from));
		}
		if (!has_peer(sw->from, sw->n_from, a))
			sw->from[sw->n_from++] = a;
	}
}

void clu_switch_frame_end(struct clu_node *n)
{
	struct clu_switch *sw = n->sw_open;
	if (!sw)
		return;
	n->sw_open = NULL;
	sw->id = ++n->next_switch;
	sw->next = n->switches;
	n->switches = sw;
	brk_post_switch(n->wout, sw->id); /* behind the routes, to every worker */
}

static struct clu_sw_worker *sw_worker(struct clu_node *n, uint16_t worker)
{
	int nw = brk_clu_n_workers(n->b);
	if (worker >= nw)
		return NULL;
	if (!n->sw_workers)
		n->sw_workers = hq_calloc((size_t)nw, sizeof(*n->sw_workers));
	return &n->sw_workers[worker];
}

void clu_switch_mark(struct clu_node *n, uint16_t worker, uint64_t id)
{
	struct clu_switch **p = &n->switches, *sw;
	while ((sw = *p) && sw->id != id)
		p = &sw->next;
	struct clu_sw_worker *w = sw_worker(n, worker);
	if (!sw || !w)
		return;
	int64_t now = clu_now(n);
	for (uint32_t i = 0; i < sw->n_from; i++) {
		struct clu_peer *a = sw->from[i];
		if (!a->link || a->ph == a->pn)
			continue; /* nothing of ours unacknowledged there */
		if (w->n == w->cap) {
			w->cap = w->cap ? w->cap * 2 : 4;
			w->c = hq_realloc(w->c, w->cap * sizeof(*w->c));
		}
		w->c[w->n++] = (struct clu_sw_cond){ .to = sw->to, .from = a, .through = a->next_seq,
						     .gen = a->link_gen,
						     .deadline_ms = now + CLU_SWITCH_MAX_MS };
		n->sw_conds++;
	}
	if (++sw->echoed >= brk_clu_n_workers(n->b)) {
		*p = sw->next;
		hq_free(sw->from);
		hq_free(sw);
	}
}

static bool waits_for(const struct clu_sw_worker *w, const struct clu_peer *to)
{
	for (uint32_t i = 0; i < w->n; i++)
		if (w->c[i].to == to)
			return true;
	return false;
}

bool clu_switch_hold(struct clu_node *n, struct clu_req *r)
{
	if (!n->sw_conds || r->key || !r->member)
		return false;
	struct clu_sw_worker *w = sw_worker(n, r->worker);
	if (!w || !waits_for(w, r->member))
		return false;
	clu_req_push(&w->held, r);
	memset(r, 0, sizeof(*r)); /* moved */
	return true;
}

static bool cond_met(const struct clu_sw_cond *c, int64_t now)
{
	const struct clu_peer *a = c->from;
	return !a->link || a->link_gen != c->gen || a->ph == a->pn ||
	       a->pend[a->ph].seq > c->through || now >= c->deadline_ms;
}

/* Send w's held forwards whose destination no longer waits, in order. */
static void release(struct clu_node *n, struct clu_sw_worker *w)
{
	uint32_t k = 0;
	struct clu_req_vec v = w->held;
	for (uint32_t i = 0; i < v.len; i++) {
		if (waits_for(w, v.v[i].member)) {
			v.v[k++] = v.v[i];
			continue;
		}
		clu_route_forward(n, &v.v[i]);
		clu_req_release(&v.v[i]);
	}
	w->held.len = k;
}

void clu_switch_check(struct clu_node *n)
{
	if (!n->sw_conds)
		return;
	int64_t now = clu_now(n);
	int nw = brk_clu_n_workers(n->b);
	for (int i = 0; i < nw; i++) {
		struct clu_sw_worker *w = &n->sw_workers[i];
		uint32_t before = w->n;
		for (uint32_t j = 0; j < w->n;) {
			if (!cond_met(&w->c[j], now)) {
				j++;
				continue;
			}
			if (now >= w->c[j].deadline_ms)
				log_debug("cluster: forwards to %s sent after %d ms without %s's "
					  "acknowledgements (route switch)", w->c[j].to->name,
					  CLU_SWITCH_MAX_MS, w->c[j].from->name);
			memmove(&w->c[j], &w->c[j + 1], (w->n - j - 1) * sizeof(*w->c));
			w->n--;
			n->sw_conds--;
		}
		if (w->n != before && w->held.len)
			release(n, w);
	}
}

void clu_switch_free(struct clu_node *n)
{
	if (n->sw_workers) {
		int nw = brk_clu_n_workers(n->b);
		for (int i = 0; i < nw; i++) {
			struct clu_sw_worker *w = &n->sw_workers[i];
			for (uint32_t k = 0; k < w->held.len; k++)
				clu_req_release(&w->held.v[k]);
			hq_free(w->held.v);
			hq_free(w->c);
		}
		hq_free(n->sw_workers);
		n->sw_workers = NULL;
	}
	struct clu_switch *open = n->sw_open;
	n->sw_open = NULL;
	while (open || n->switches) {
		struct clu_switch *sw = open ? open : n->switches;
		if (open)
			open = NULL;
		else
			n->switches = sw->next;
		hq_free(sw->from);
		hq_free(sw);
	}
}
