/*
 * report.c - what the run measured: CPU and memory samples from /proc and
 * getrusage, the progress line (stderr, once a second), the human summary and
 * the final `RESULT key=value ...` line (stdout, always last).
 *
 * Rates are over the measured period: from the end of the warm-up until the
 * duration elapsed (-d), or until every expected message arrived (--count).
 * CPU figures are percent of one core over the same period.
 */
#include "bench.h"
#include "mqtt/mqtt.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *mode_name[] = { "pub", "sub", "pubsub", "conn", "hs" };

/* utime + stime of pid in seconds, or -1 */
static double broker_cpu_s(int pid)
{
	char path[64], line[1024];
	unsigned long ut = 0, st = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(line, 1, sizeof(line) - 1, f);
	fclose(f);
	line[n] = 0;
	/* the command name may hold spaces: fields restart after the last ')' */
	char *p = strrchr(line, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
			 &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

long rep_broker_rss_kb(int pid)
{
	char path[64], line[256];
	long kb = -1;

	if (pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

void rep_sample(struct bench *b, struct sample *s)
{
	struct rusage ru;

	s->t_ns = now_ns();
	s->c = b->c;
	s->established = b->established;
	getrusage(RUSAGE_SELF, &ru);
	s->self_cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
			(double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	s->broker_cpu_s = b->o.broker_pid > 0 ? broker_cpu_s(b->o.broker_pid) : -1;
	s->broker_rss_kb = rep_broker_rss_kb(b->o.broker_pid);
	if (s->broker_rss_kb > b->broker_rss_max_kb)
		b->broker_rss_max_kb = s->broker_rss_kb;
}

static double cpu_pct(double a, double b, double secs)
{
	if (a < 0 || b < 0 || secs <= 0)
		return -1;
	return (b - a) / secs * 100.0;
}

void rep_expect(const struct bench *b, uint64_t *expected, uint64_t *lost, uint64_t *tail)
{
	*expected = *lost = *tail = 0;
	for (uint32_t i = 0; i < b->n_trk; i++) {
		const struct tracker *t = &b->trk[i];
		for (uint32_t j = 0; j < t->cap; j++) {
			const struct track *k = &t->tab[j];
			if (k->pub_id == UINT32_MAX)
				continue;
			uint64_t exp = k->next;   /* unknown publisher: what its numbers show */
			if (b->o.mode == MODE_PUBSUB)
				exp = b->pubs[k->pub_id].seq;
			else if (b->known_pubs && b->o.count)
				exp = b->o.count;
			*expected += exp;
			if (exp > k->unique)
				*lost += exp - k->unique;
			if (exp > k->next)
				*tail += exp - k->next;
		}
	}
	if (b->o.expect > *expected) {   /* --expect: publishers never heard from */
		*lost += b->o.expect - *expected;
		*tail += b->o.expect - *expected;
		*expected = b->o.expect;
	}
}

static const char *si(double v, char *buf, size_t n)
{
	if (v >= 1e6)
		snprintf(buf, n, "%.2fM", v / 1e6);
	else if (v >= 1e4)
		snprintf(buf, n, "%.1fk", v / 1e3);
	else
		snprintf(buf, n, "%.0f", v);
	return buf;
}

static const char *phase_name(int ph)
{
	static const char *names[] = { "connect", "warmup", "measure", "drain", "hold", "closing",
				       "done" };
	return names[ph];
}

void rep_progress(struct bench *b)
{
	struct sample s;
	char r1[32], r2[32], bcpu[48] = "", gcpu[24];

	rep_sample(b, &s);
	double dt = (double)(s.t_ns - b->s_tick.t_ns) / 1e9;
	double el = (double)(s.t_ns - b->s_base.t_ns) / 1e9;
	if (dt <= 0)
		return;
	double g = cpu_pct(b->s_tick.self_cpu_s, s.self_cpu_s, dt);
	double bc = cpu_pct(b->s_tick.broker_cpu_s, s.broker_cpu_s, dt);
	snprintf(gcpu, sizeof(gcpu), "gen %.0f%%", g);
	if (b->o.broker_pid > 0)
		snprintf(bcpu, sizeof(bcpu), "  broker %.0f%% %ldMB", bc, s.broker_rss_kb / 1024);

	if (b->o.mode == MODE_HS) {
		double rate = (double)(s.c.hs - b->s_tick.c.hs) / dt;
		fprintf(stderr, "[%6.1fs] %-7s %.0f cycles/s, %llu in all, p50 %.0fus p99 %.0fus, "
			"%u failed  %s%s\n", el, phase_name(b->phase), rate,
			(unsigned long long)s.c.hs, (double)hist_pct(&b->lat_tick, 50) / 1e3,
			(double)hist_pct(&b->lat_tick, 99) / 1e3,
			b->err.connect_fail + b->err.refused + b->err.protocol, gcpu, bcpu);
	} else if (b->phase == PH_CONNECT || b->phase == PH_HOLD) {
		double rate = (double)(b->established - b->s_tick.established) / dt;
		fprintf(stderr, "[%6.1fs] %-7s %u/%u established (%.0f/s), %u alive, %u failed  %s%s\n",
			el, phase_name(b->phase), b->established, b->n_cl, rate, b->alive,
			b->err.connect_fail + b->err.refused + b->err.sub_refused, gcpu, bcpu);
	} else {
		double sent = (double)(s.c.sent - b->s_tick.c.sent) / dt;
		double dlv = (double)(s.c.delivered - b->s_tick.c.delivered) / dt;
		double ack = (double)(s.c.acked - b->s_tick.c.acked) / dt;
		char lat[96] = "";
		if (b->lat_tick.n)
			snprintf(lat, sizeof(lat), "  p50 %.0fus p99 %.0fus max %.0fus",
				 (double)hist_pct(&b->lat_tick, 50) / 1e3,
				 (double)hist_pct(&b->lat_tick, 99) / 1e3,
				 (double)b->lat_tick.max / 1e3);
		fprintf(stderr, "[%6.1fs] %-7s sent %s/s  %s %s/s%s  conns %u  %s%s\n", el,
			phase_name(b->phase), si(sent, r1, sizeof(r1)),
			b->n_subs ? "dlv" : "acked", si(b->n_subs ? dlv : ack, r2, sizeof(r2)), lat,
			b->alive, gcpu, bcpu);
	}
	hist_reset(&b->lat_tick);
	b->s_tick = s;
}

static void fmt_pct(char *out, size_t n, double v)
{
	if (v < 0)
		snprintf(out, n, "na");
	else
		snprintf(out, n, "%.1f", v);
}

int rep_final(struct bench *b)
{
	const struct opts *o = &b->o;
	const struct errors *e = &b->err;
	uint64_t expected = 0, lost = 0, tail = 0;
	double secs = (double)(b->measure_t1_ns - b->measure_t0_ns) / 1e9;
	double conn_secs = (double)(b->conn_t1_ns - b->conn_t0_ns) / 1e9;
	double conn_rate = conn_secs > 0 ? b->established / conn_secs : 0;
	char gcpu[32], bcpu[32];
	int status = 0;

	rep_expect(b, &expected, &lost, &tail);
	if (secs < 0)
		secs = 0;
	fmt_pct(gcpu, sizeof(gcpu), cpu_pct(b->s_m0.self_cpu_s, b->s_m1.self_cpu_s, secs));
	fmt_pct(bcpu, sizeof(bcpu), cpu_pct(b->s_m0.broker_cpu_s, b->s_m1.broker_cpu_s, secs));
	double rate = secs > 0 ? (double)b->cm.delivered / secs : 0;
	double sent_rate = secs > 0 ? (double)b->cm.sent / secs : 0;
	double ack_rate = secs > 0 ? (double)b->cm.acked / secs : 0;
	double hs_rate = secs > 0 ? (double)b->cm.hs / secs : 0;
	double us = 1e3;
	long rss = b->s_m1.broker_rss_kb;
	long rss_per_conn = -1;
	if (o->mode == MODE_CONN && b->established && b->broker_rss_conn_kb >= 0 &&
	    b->s_base.broker_rss_kb >= 0)
		rss_per_conn = (b->broker_rss_conn_kb - b->s_base.broker_rss_kb) * 1024 /
			       (long)b->established;
	if (e->connect_fail || e->refused || e->sub_refused || e->dropped || e->protocol)
		status = 2;
	else if (b->stalled)
		status = 3;

	/* human summary */
	printf("hamqtt-bench %s: ", mode_name[o->mode]);
	if (o->mode == MODE_CONN)
		printf("%u connections", b->n_cl);
	if (o->mode == MODE_HS)
		printf("%u slots connecting over and over%s", b->n_cl,
		       o->cafile ? " (TLS, full handshakes)" : "");
	if (o->mode == MODE_PUB || o->mode == MODE_PUBSUB)
		printf("%u publisher%s", b->n_pubs, b->n_pubs == 1 ? "" : "s");
	if (o->mode == MODE_PUBSUB)
		printf(" -> ");
	if (o->mode == MODE_SUB || o->mode == MODE_PUBSUB)
		printf("%u subscriber%s%s", b->n_subs, b->n_subs == 1 ? "" : "s",
		       o->shared ? " (shared)" : "");
	if (o->mode != MODE_CONN && o->mode != MODE_HS) {
		printf(", QoS %d, %u B payload", o->qos, o->size);
		if (o->mode != MODE_SUB)
			printf(", window %u, %s", o->window, o->rate > 0 ? "" : "max rate");
		if (o->rate > 0 && o->mode != MODE_SUB)
			printf("%g msg/s each", o->rate);
	}
	printf(", MQTT %s, %s:%d\n", o->version == 5 ? "5" : o->version == 4 ? "3.1.1" : "3.1",
	       o->host, o->port);
	printf("  connections  %u of %u established in %.2f s (%.0f conn/s)", b->established,
	       b->n_cl, conn_secs > 0 ? conn_secs : 0, conn_rate);
	if (b->established != b->alive_end)
		printf(", %u alive at the end", b->alive_end);
	printf("\n");
	if (o->mode == MODE_HS) {
		printf("  measured     %.2f s", secs);
		if (o->warmup > 0)
			printf(" (after %.1f s warm-up)", o->warmup);
		printf(": %llu cycles, %.0f/s", (unsigned long long)b->cm.hs, hs_rate);
		if (b->lat.n)
			printf("; connect() to CONNACK p50 %.1f us  p99 %.1f us  max %.1f us",
			       (double)hist_pct(&b->lat, 50) / us, (double)hist_pct(&b->lat, 99) / us,
			       (double)b->lat.max / us);
		printf("\n");
	} else if (o->mode == MODE_CONN) {
		if (b->s_base.broker_rss_kb >= 0)
			printf("  broker RSS   %ld KB before, %ld KB with all connections: %ld B per "
			       "connection\n", b->s_base.broker_rss_kb, b->broker_rss_conn_kb,
			       rss_per_conn);
	} else {
		printf("  measured     %.2f s", secs);
		if (o->warmup > 0)
			printf(" (after %.1f s warm-up)", o->warmup);
		printf("\n  sent         %llu msg, %.0f msg/s", (unsigned long long)b->c.sent,
		       sent_rate);
		if (o->qos > 0)
			printf(" (acknowledged %llu, %.0f/s)", (unsigned long long)b->c.acked, ack_rate);
		printf("\n");
		if (b->n_subs) {
			printf("  delivered    %llu msg of %llu expected, %.0f msg/s\n",
			       (unsigned long long)b->c.delivered, (unsigned long long)expected, rate);
			if (o->expect)
				printf("  expect       %llu distinct messages: %s %.3f s after the first "
				       "SUBSCRIBE (%.0f msg/s)\n", (unsigned long long)o->expect,
				       b->expect_t_ns ? "all arrived" : "NOT all arrived, gave up",
				       secs, rate);
			if (b->lat.n)
				printf("  latency      p50 %.1f us  p99 %.1f us  p99.9 %.1f us  max %.1f "
				       "us  mean %.1f us\n",
				       (double)hist_pct(&b->lat, 50) / us, (double)hist_pct(&b->lat, 99) / us,
				       (double)hist_pct(&b->lat, 99.9) / us, (double)b->lat.max / us,
				       b->lat.sum / (double)b->lat.n / us);
			printf("  lost %llu", (unsigned long long)lost);
			if (lost)
				printf(" (%llu after the last one received, %llu in gaps)",
				       (unsigned long long)tail, (unsigned long long)(lost - tail));
			printf("  duplicated %llu  reordered %llu  stray %llu", (unsigned long long)b->c.dup,
			       (unsigned long long)b->c.reorder, (unsigned long long)b->c.stray);
			if (b->c.e2e_stalls)
				printf("  (QoS 0 window reopened %llu times)",
				       (unsigned long long)b->c.e2e_stalls);
			printf("\n");
		}
		if (b->c.nacked)
			printf("  refused by the broker (v5 reason >= 0x80): %llu\n",
			       (unsigned long long)b->c.nacked);
	}
	printf("  cpu          generator %s %%", gcpu);
	if (o->broker_pid > 0)
		printf("   broker %s %% (pid %d), RSS %ld KB (max %ld KB)", bcpu, o->broker_pid, rss,
		       b->broker_rss_max_kb);
	printf("\n");
	if (status == 2)
		printf("  ERRORS       connect failed %u, refused %u, subscribe refused %u, dropped %u,"
		       " protocol %u; first: %s\n", e->connect_fail, e->refused, e->sub_refused,
		       e->dropped, e->protocol, e->first);
	if (b->stalled)
		printf("  STALLED      no progress for %.0f s: gave up\n", o->timeout);

	printf("RESULT scenario=%s version=%d qos=%d size=%u pubs=%u subs=%u window=%u "
	       "rate_limit=%g duration=%.3f sent=%llu acked=%llu delivered=%llu expected=%llu "
	       "rate=%.0f sent_rate=%.0f ack_rate=%.0f p50_us=%.1f p99_us=%.1f p999_us=%.1f "
	       "max_us=%.1f mean_us=%.1f lost=%llu lost_tail=%llu dup=%llu reorder=%llu stray=%llu nacked=%llu "
	       "e2e_stalls=%llu broker_cpu=%s broker_rss_kb=%ld broker_rss_max_kb=%ld gen_cpu=%s "
	       "conns=%u conns_wanted=%u conn_rate=%.0f conn_fail=%u refused=%u sub_refused=%u "
	       "dropped=%u protocol_err=%u rss_per_conn_b=%ld expect=%llu expect_reached=%d "
	       "tls=%d hs=%llu hs_rate=%.0f status=%s\n",
	       mode_name[o->mode], o->version, o->qos, o->size, b->n_pubs, b->n_subs, o->window,
	       o->rate, secs, (unsigned long long)b->c.sent, (unsigned long long)b->c.acked,
	       (unsigned long long)b->c.delivered, (unsigned long long)expected, rate, sent_rate,
	       ack_rate, (double)hist_pct(&b->lat, 50) / us, (double)hist_pct(&b->lat, 99) / us,
	       (double)hist_pct(&b->lat, 99.9) / us, (double)b->lat.max / us,
	       b->lat.n ? b->lat.sum / (double)b->lat.n / us : 0.0, (unsigned long long)lost,
	       (unsigned long long)tail, (unsigned long long)b->c.dup, (unsigned long long)b->c.reorder,
	       (unsigned long long)b->c.stray, (unsigned long long)b->c.nacked,
	       (unsigned long long)b->c.e2e_stalls, bcpu, rss, b->broker_rss_max_kb, gcpu,
	       b->established, b->n_cl, conn_rate, e->connect_fail, e->refused, e->sub_refused,
	       e->dropped, e->protocol, rss_per_conn, (unsigned long long)o->expect,
	       b->expect_t_ns != 0, o->cafile != NULL, (unsigned long long)b->cm.hs, hs_rate,
	       status == 2 ? "error" : status == 3 ? "stalled" : "ok");
	fflush(stdout);
	return status;
}
