/*
 * clu_stats.c - what /metrics shows of the cluster links: the heartbeat round
 * trip per peer and a per-peer snapshot (link state, RTT, bytes, output queue,
 * forwards awaiting an acknowledgement, routes).
 *
 * Round trip: HEARTBEAT carries wall_ms and echo_ms (clu_proto.h). A probe is
 * a HEARTBEAT with echo_ms 0; the peer answers it at once with a HEARTBEAT
 * echoing the probe's wall_ms, which is never answered itself. Matching the
 * echo to the probe we sent, the round trip is timed on our own monotonic
 * clock (neither wall clock nor the peer's clock enters it). A peer that
 * does not answer probes (an older hamqtt) simply has no RTT.
 *
 * Ownership: everything on clu_peer/clu_link is the cluster thread's. Other
 * threads see only the copy published here under lstat_lock once a second.
 */
#include "cluster/clu_int.h"
#include "core/clock.h"
#include "core/mem.h"

#include <stdio.h>
#include <string.h>

void clu_stats_init(struct clu_node *n)
{
	pthread_mutex_init(&n->lstat_lock, NULL);
}

void clu_stats_free(struct clu_node *n)
{
	hq_free(n->lstat);
	n->lstat = NULL;
	pthread_mutex_destroy(&n->lstat_lock);
}

void clu_stats_probe(struct clu_link *l, int64_t now)
{
	struct clu_msg m = { .type = CLU_MSG_HEARTBEAT };
	m.hb.wall_ms = (uint64_t)clock_wall_ms();
	clu_link_send(l, &m);
	l->last_tx_ms = now;
	if (l->m) {
		l->m->probe_wall = m.hb.wall_ms;
		l->m->probe_us = clock_mono_us();
		l->m->probe_ms = now;
	}
}

void clu_stats_heartbeat(struct clu_link *l, const struct clu_heartbeat *hb)
{
	struct clu_peer *m = l->m;
	if (!hb->echo_ms) {
		/* a probe: echo it now (not counted as our own probe) */
		struct clu_msg r = { .type = CLU_MSG_HEARTBEAT };
		r.hb.wall_ms = (uint64_t)clock_wall_ms();
		r.hb.echo_ms = hb->wall_ms ? hb->wall_ms : 1;
		clu_link_send(l, &r);
		return;
	}
	if (!m || !m->probe_wall || hb->echo_ms != m->probe_wall)
		return; /* an echo of an older probe, or of none */
	int64_t rtt = clock_mono_us() - m->probe_us;
	m->rtt_us = rtt > 0 ? rtt : 1;
	m->probe_wall = 0;
}

void clu_stats_publish(struct clu_node *n, int64_t now)
{
	if (now < n->lstat_next_ms)
		return;
	n->lstat_next_ms = now + 1000;
	size_t cnt = 0;
	struct clu_link_stat *v = n->n_m > 1 ? hq_calloc(n->n_m - 1, sizeof(*v)) : NULL;
	for (size_t i = 1; i < n->n_m; i++) {
		const struct clu_peer *m = n->m[i];
		if (m->left || m->forgotten)
			continue;
		struct clu_link_stat *s = &v[cnt++];
		snprintf(s->node, sizeof(s->node), "%s", m->name);
		const struct clu_link *l = m->link;
		s->up = l && l->st == LS_UP;
		s->rtt_us = m->rtt_us ? m->rtt_us : -1;
		s->bytes_in = m->st_bytes_in;
		s->bytes_out = m->st_bytes_out;
		s->queue_bytes = l ? buf_avail(&l->out) : 0;
		s->pending_acks = m->pn;
		s->routes = HASH_COUNT(m->routes);
	}
	uint64_t local = HASH_COUNT(n->lroutes);
	pthread_mutex_lock(&n->lstat_lock);
	struct clu_link_stat *old = n->lstat;
	n->lstat = v;
	n->n_lstat = cnt;
	n->lstat_routes = local;
	pthread_mutex_unlock(&n->lstat_lock);
	hq_free(old);
}

void clu_get_links(struct clu_node *n, struct clu_link_stat **out, size_t *count,
		   uint64_t *routes_local)
{
	pthread_mutex_lock(&n->lstat_lock);
	*count = n->n_lstat;
	*routes_local = n->lstat_routes;
	*out = NULL;
	if (n->n_lstat) {
		*out = hq_malloc(n->n_lstat * sizeof(**out));
		memcpy(*out, n->lstat, n->n_lstat * sizeof(**out));
	}
	pthread_mutex_unlock(&n->lstat_lock);
}
