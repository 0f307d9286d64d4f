/*
 * brk_prom.c - broker_prom_get (broker_prom.h): the copies /metrics renders.
 *
 * Sessions: the workers own them and keep no per-worker list, and a counter
 * per queue change would tax the publish path. So the figures are sampled:
 * a walk of the client-id registry under reg_lock reading only what the
 * owners publish as atomics (online, qlen_pub), at most once a second
 * whatever the number of scrapers (the sample is kept under prom_lock).
 * The registry lock is the CONNECT path's, never the publish path's.
 */
#include "broker/brk_int.h"
#include "broker/broker_prom.h"
#include "cluster/cluster.h"
#include "core/clock.h"
#include "core/mem.h"
#include "store/store.h"

#include <stdio.h>
#include <string.h>

_Static_assert(BROKER_STORE_LAT_N == STORE_LAT_N, "store latency buckets");

const uint32_t broker_qdepth_bounds[BROKER_QDEPTH_N] = { 0, 1, 10, 100, 1000, 10000 };
#define SAMPLE_EVERY_MS 1000

struct brk_prom_sample {
	int64_t at_ms;            /* monotonic; 0 = never taken */
	uint64_t online, offline, qdepth[BROKER_QDEPTH_N + 1], qsum;
};

static void sample_take(struct broker *b, struct brk_prom_sample *s)
{
	memset(s, 0, sizeof(*s));
	struct session *e, *tmp;
	pthread_mutex_lock(&b->reg_lock);
	HASH_ITER(reg_hh, b->registry, e, tmp) {
		if (e->remote)
			continue;
		if (atomic_load_explicit(&e->online, memory_order_relaxed))
			s->online++;
		else
			s->offline++;
		uint32_t q = atomic_load_explicit(&e->qlen_pub, memory_order_relaxed);
		int i = 0;
		while (i < BROKER_QDEPTH_N && q > broker_qdepth_bounds[i])
			i++;
		s->qdepth[i]++;
		s->qsum += q;
	}
	pthread_mutex_unlock(&b->reg_lock);
}

static void sessions(struct broker *b, struct broker_prom *out)
{
	int64_t now = clock_mono_ms();
	pthread_mutex_lock(&b->prom_lock);
	if (!b->prom_sample)
		b->prom_sample = hq_calloc(1, sizeof(*b->prom_sample));
	struct brk_prom_sample *s = b->prom_sample;
	if (!s->at_ms || now - s->at_ms >= SAMPLE_EVERY_MS) {
		sample_take(b, s);
		s->at_ms = now;
	}
	out->sessions_online = s->online;
	out->sessions_offline = s->offline;
	memcpy(out->qdepth, s->qdepth, sizeof(out->qdepth));
	out->qdepth_sum = s->qsum;
	pthread_mutex_unlock(&b->prom_lock);
}

static void cluster(struct broker *b, struct broker_prom *out)
{
	if (!b->clu)
		return;
	struct clu_link_stat *v;
	size_t n;
	out->clustered = true;
	clu_get_links(b->clu, &v, &n, &out->routes_local);
	out->links = n ? hq_calloc(n, sizeof(*out->links)) : NULL;
	out->n_links = n;
	for (size_t i = 0; i < n; i++) {
		struct broker_prom_link *l = &out->links[i];
		snprintf(l->node, sizeof(l->node), "%s", v[i].node);
		l->up = v[i].up;
		l->rtt_us = v[i].rtt_us;
		l->bytes_in = v[i].bytes_in;
		l->bytes_out = v[i].bytes_out;
		l->queue_bytes = v[i].queue_bytes;
		l->pending_acks = v[i].pending_acks;
		l->routes = v[i].routes;
		out->routes_remote += v[i].routes;
	}
	hq_free(v);
}

static void store(struct broker *b, struct broker_prom *out)
{
	memcpy(out->store_lat_bounds_us, store_lat_bounds_us, sizeof(out->store_lat_bounds_us));
	/* the runner is read under store_info_lock (see broker_store_info) */
	pthread_mutex_lock(&b->store_info_lock);
	if (b->store_run) {
		out->store_durable = true;
		store_runner_latency(b->store_run, out->store_lat, &out->store_lat_sum_us);
	}
	pthread_mutex_unlock(&b->store_info_lock);
}

void broker_prom_get(struct broker *b, struct broker_prom *out)
{
	memset(out, 0, sizeof(*out));
	const struct hq_config *cfg = b->cfg;
	for (int i = 0; i < b->n_workers; i++) {
		struct brk_stats *st = &b->workers[i].st;
		for (int q = 0; q < 3; q++) {
			out->msgs_in_qos[q] += STAT_GET(st->msgs_in[q]);
			out->msgs_out_qos[q] += STAT_GET(st->msgs_out[q]);
		}
		for (int l = 0; l < cfg->n_listeners && l < CONF_MAX_LISTENERS; l++) {
			out->listeners[l].bytes_in += STAT_GET(st->bytes_in[l]);
			out->listeners[l].bytes_out += STAT_GET(st->bytes_out[l]);
		}
	}
	out->n_listeners = cfg->n_listeners < CONF_MAX_LISTENERS ? cfg->n_listeners : CONF_MAX_LISTENERS;
	for (int l = 0; l < out->n_listeners; l++)
		if (cfg->listeners[l].enabled) /* a disabled one keeps an empty name: not shown */
			snprintf(out->listeners[l].name, sizeof(out->listeners[l].name), "%s:%s",
			 conf_listener_type_name(cfg->listeners[l].type), cfg->listeners[l].name);
	out->subscriptions = atomic_load_explicit(&b->subs_now, memory_order_relaxed);
	sessions(b, out);
	cluster(b, out);
	store(b, out);
}

void broker_prom_release(struct broker_prom *p)
{
	hq_free(p->links);
	p->links = NULL;
	p->n_links = 0;
}

void brk_prom_free(struct broker *b)
{
	hq_free(b->prom_sample);
	b->prom_sample = NULL;
	pthread_mutex_destroy(&b->prom_lock);
}
