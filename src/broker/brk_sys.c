/*
 * brk_sys.c - $SYS/brokers/<node>/... statistics, published retained by
 * worker 0 every sys.interval seconds (Mosquitto's $SYS tree, EMQX's
 * $SYS/brokers/<node> prefix).
 */
#include "broker/brk_int.h"
#include "core/clock.h"
#include "core/mem.h"

#include <stdio.h>
#include <string.h>

#ifndef HAMQTT_VERSION
#define HAMQTT_VERSION "0.1.0"
#endif

static void sys_pub(struct worker *w, const char *leaf, const char *value)
{
	char topic[512];
	int n = snprintf(topic, sizeof(topic), "$SYS/brokers/%s/%s", w->b->cfg->node_name, leaf);
	if (n < 0 || (size_t)n >= sizeof(topic))
		return;
	struct brk_msg *m = msg_new(topic, (size_t)n, NULL, 0, (const uint8_t *)value, strlen(value),
				    0, true, false, 0, ev_now_ms(w->loop));
	brk_retain_store(w->b, m);
	brk_route(w, m);
	msg_unref(m);
}

static void sys_u64(struct worker *w, const char *leaf, unsigned long long v)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%llu", v);
	sys_pub(w, leaf, buf);
}

void brk_sys_publish(struct worker *w)
{
	struct broker *b = w->b;
	unsigned long long in = 0, out = 0, bin = 0, bout = 0, dropped = 0, total = 0;
	for (int i = 0; i < b->n_workers; i++) {
		struct brk_stats *st = &b->workers[i].st;
		in += STAT_GET(st->msgs_in);
		out += STAT_GET(st->msgs_out);
		bin += STAT_GET(st->bytes_in);
		bout += STAT_GET(st->bytes_out);
		dropped += STAT_GET(st->msgs_dropped);
		total += STAT_GET(st->conns_total);
	}
	char up[64];
	snprintf(up, sizeof(up), "%lld seconds",
		 (long long)((ev_now_ms(w->loop) - b->start_ms) / 1000));
	sys_pub(w, "version", "hamqtt " HAMQTT_VERSION);
	sys_pub(w, "uptime", up);
	sys_u64(w, "clients/connected", (unsigned long long)atomic_load(&b->conns_now));
	sys_u64(w, "clients/total", total);
	sys_u64(w, "messages/received", in);
	sys_u64(w, "messages/sent", out);
	sys_u64(w, "messages/dropped", dropped);
	sys_u64(w, "bytes/received", bin);
	sys_u64(w, "bytes/sent", bout);
}
