/*
 * brk_sys.c - $SYS/brokers/<node>/... statistics, published retained by
 * worker 0 every sys.interval seconds (Mosquitto's $SYS tree, EMQX's
 * $SYS/brokers/<node> prefix).
 */
#include "broker/brk_int.h"
#include "core/clock.h"
#include "core/mem.h"
#include "core/version.h"

#include <stdio.h>
#include <string.h>


static void sys_pub(struct worker *w, const char *leaf, const char *value)
{
	char topic[512];
	int n = snprintf(topic, sizeof(topic), "$SYS/brokers/%s/%s", w->b->cfg->node_name, leaf);
	if (n < 0 || (size_t)n >= sizeof(topic))
		return;
	struct brk_msg *m = msg_new(topic, (size_t)n, NULL, 0, (const uint8_t *)value, strlen(value),
				    0, true, false, 0, ev_now_ms(w->loop));
	brk_retain_store(w, m);
	brk_route(w, m);
	msg_unref(m);
}

static void sys_u64(struct worker *w, const char *leaf, unsigned long long v)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%llu", v);
	sys_pub(w, leaf, buf);
}

void broker_get_info(struct broker *b, struct broker_info *out)
{
	memset(out, 0, sizeof(*out));
	out->accepting = atomic_load(&b->ready) && !atomic_load(&b->stopping) &&
			 !atomic_load(&b->start_hold);
	out->workers = b->n_workers;
	out->uptime_s = (clock_mono_ms() - b->start_ms) / 1000;
	out->connections = atomic_load(&b->conns_now);
	for (int t = 0; t < CONF_LT_COUNT; t++)
		out->connections_by_type[t] = atomic_load(&b->conns_by_type[t]);
	out->queued_bytes = brk_queued_total(b);
	out->queued_bytes_limit = b->cfg->max_queued_bytes_total;
	for (int i = 0; i < b->n_workers; i++) {
		struct brk_stats *st = &b->workers[i].st;
		for (int q = 0; q < 3; q++) {
			out->msgs_in += STAT_GET(st->msgs_in[q]);
			out->msgs_out += STAT_GET(st->msgs_out[q]);
		}
		for (int l = 0; l < CONF_MAX_LISTENERS; l++) {
			out->bytes_in += STAT_GET(st->bytes_in[l]);
			out->bytes_out += STAT_GET(st->bytes_out[l]);
		}
		out->msgs_dropped += STAT_GET(st->msgs_dropped);
		for (int r = 0; r < BRK_DROP_N; r++)
			out->dropped_by[r] += STAT_GET(st->dropped_by[r]);
		out->connects_total += STAT_GET(st->conns_total);
		out->auth_ok += STAT_GET(st->auth_ok);
		out->auth_refused += STAT_GET(st->auth_refused);
		out->acl_allow += STAT_GET(st->acl_allow);
		out->acl_deny += STAT_GET(st->acl_deny);
		accept_guard_counts_add(&b->workers[i].accept, &out->accept_mqtt);
	}
	ovl_info(b, out);
	_Static_assert(sizeof(out->jwt_results) / sizeof(out->jwt_results[0]) == AUTH_JWT_RESULTS,
		       "broker_info.jwt_results");
	auth_jwt_results(b->auth, out->jwt_results);
	pthread_mutex_lock(&b->retain_lock);
	out->retained = retain_tree_count(b->retained);
	out->cluster_running = 1;
	out->forwards_out = out->forwards_in = out->forwards_lost = 0;
	if (b->clu) {
		struct clu_stats cs;
		clu_get_stats(b->clu, &cs);
		out->cluster_running = cs.running;
		out->forwards_out = cs.forwards_out;
		out->forwards_in = cs.forwards_in;
		out->forwards_lost = cs.forwards_lost;
		out->accept_cluster = cs.accept;
		out->topics = cs.topics;
	}
	/* every subscription of this node's sessions, clustered or not (brk_prom.c) */
	out->subscriptions = atomic_load_explicit(&b->subs_now, memory_order_relaxed);
	pthread_mutex_unlock(&b->retain_lock);
	out->start_wall_ms = b->start_wall_ms;
	pthread_mutex_lock(&b->reg_lock);
	out->sessions = (int64_t)HASH_CNT(reg_hh, b->registry);
	pthread_mutex_unlock(&b->reg_lock);
}

void brk_sys_publish(struct worker *w)
{
	WK_ASSERT_OWNER(w);
	struct broker_info in;
	broker_get_info(w->b, &in);
	char up[64];
	snprintf(up, sizeof(up), "%lld seconds", (long long)in.uptime_s);
	sys_pub(w, "version", "hamqtt " HAMQTT_VERSION);
	sys_pub(w, "uptime", up);
	sys_u64(w, "clients/connected", (unsigned long long)in.connections);
	sys_u64(w, "clients/total", in.connects_total);
	sys_u64(w, "messages/received", in.msgs_in);
	sys_u64(w, "messages/sent", in.msgs_out);
	sys_u64(w, "messages/dropped", in.msgs_dropped);
	for (int r = 0; r < BRK_DROP_N; r++) {
		char leaf[64];
		snprintf(leaf, sizeof(leaf), "messages/dropped/%s", broker_drop_reason_name(r));
		sys_u64(w, leaf, in.dropped_by[r]);
	}
	sys_u64(w, "messages/queued/bytes", in.queued_bytes > 0 ? (unsigned long long)in.queued_bytes : 0);
	sys_u64(w, "bytes/received", in.bytes_in);
	sys_u64(w, "bytes/sent", in.bytes_out);
	sys_u64(w, "retained/count", in.retained);
	struct broker_store_info si;
	broker_store_info(w->b, &si);
	sys_pub(w, "store/backend", si.backend);
	sys_u64(w, "store/healthy", si.healthy ? 1 : 0);
}
