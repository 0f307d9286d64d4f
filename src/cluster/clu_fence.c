/*
 * clu_fence.c - per-publisher order across a session hand-over, on the
 * cluster thread.
 *
 * When a session moves to another node, the worker that owned it (O) points
 * every worker's replica at the new node. A publisher's worker P switches
 * paths there: what it delivered to the session before went into O's inbox,
 * and O forwards it (FORWARD with CLIENT, from O's requests); what it
 * publishes after goes from P's own requests. The two reach this thread in
 * no particular order, so P's later message could leave first
 * [MQTT-4.6.0-6].
 *
 * The fence (brk_cluster.c posts it): P, at the switch, puts FENCE_START
 * (token) in its requests and asks O, behind its earlier deliveries, to put
 * FENCE_MARK (token) in O's; O's forwards of those deliveries come before
 * that mark. From FENCE_START until the mark has been seen, P's forwards
 * without CLIENT wait here, in order; the mark lets them go. A mark may come
 * first (a worker hands its inbox posts over before its cluster requests,
 * which the store may hold too): then nothing waits.
 *
 * Nothing that releases a fence ever waits for one (marks and forwards with
 * CLIENT are never held), so two hand-overs at once, each fencing the
 * other's old owner, cannot wait for each other.
 */
#include "cluster/clu_int.h"
#include "core/mem.h"

#include <string.h>

/* One worker's fences. */
struct clu_fence {
	uint64_t *open;           /* started, mark not seen yet */
	uint32_t n_open, cap_open;
	uint64_t *early;          /* marks seen before their start */
	uint32_t n_early, cap_early;
	struct clu_req_vec held;  /* its forwards meanwhile, in order (owned) */
};

static struct clu_fence *fence_of(struct clu_node *n, uint16_t worker)
{
	int nw = brk_clu_n_workers(n->b);
	if (worker >= nw)
		return NULL;
	if (!n->fences)
		n->fences = hq_calloc((size_t)nw, sizeof(*n->fences));
	return &n->fences[worker];
}

static void tok_add(uint64_t **v, uint32_t *len, uint32_t *cap, uint64_t tok)
{
	if (*len == *cap) {
		*cap = *cap ? *cap * 2 : 4;
		*v = hq_realloc(*v, *cap * sizeof(**v));
	}
	(*v)[(*len)++] = tok;
}

/* Remove tok from v; false if it is not there. */
static bool tok_take(uint64_t *v, uint32_t *len, uint64_t tok)
{
	for (uint32_t i = 0; i < *len; i++) {
		if (v[i] == tok) {
			v[i] = v[--*len];
			return true;
		}
	}
	return false;
}

void clu_fence_start(struct clu_node *n, uint16_t worker, uint64_t token)
{
	struct clu_fence *f = fence_of(n, worker);
	if (!f || tok_take(f->early, &f->n_early, token))
		return; /* its old owner's forwards went already */
	tok_add(&f->open, &f->n_open, &f->cap_open, token);
}

void clu_fence_mark(struct clu_node *n, uint16_t worker, uint64_t token)
{
	struct clu_fence *f = fence_of(n, worker);
	if (!f)
		return;
	if (!tok_take(f->open, &f->n_open, token)) {
		tok_add(&f->early, &f->n_early, &f->cap_early, token);
		return;
	}
	if (f->n_open)
		return; /* another hand-over still fences this worker */
	/* in the order they came; the fence is clear, so none is held again */
	struct clu_req_vec v = f->held;
	f->held = (struct clu_req_vec){ 0 };
	for (uint32_t i = 0; i < v.len; i++) {
		clu_route_forward(n, &v.v[i]);
		clu_req_release(&v.v[i]);
	}
	hq_free(v.v);
}

bool clu_fence_hold(struct clu_node *n, struct clu_req *r)
{
	if (r->key || !n->fences)
		return false; /* a forward following a session is never held */
	struct clu_fence *f = fence_of(n, r->worker);
	if (!f || !f->n_open)
		return false;
	clu_req_push(&f->held, r);
	memset(r, 0, sizeof(*r)); /* moved */
	return true;
}

void clu_fence_free(struct clu_node *n)
{
	if (!n->fences)
		return;
	int nw = brk_clu_n_workers(n->b);
	for (int w = 0; w < nw; w++) {
		struct clu_fence *f = &n->fences[w];
		for (uint32_t i = 0; i < f->held.len; i++)
			clu_req_release(&f->held.v[i]);
		hq_free(f->held.v);
		hq_free(f->open);
		hq_free(f->early);
	}
	hq_free(n->fences);
	n->fences = NULL;
}
