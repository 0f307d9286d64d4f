/*
 * main.c - hamqtt-bench: setup, the run's phases, main() (options: opts.c).
 *
 * A run: open every connection (subscribers first, paced by --conn-rate, at
 * most BENCH_MAX_PENDING handshakes at once) -> warm-up -> measured period ->
 * drain (publishing stopped; wait for acks and deliveries) -> report. The loop
 * calls before_sleep() once per turn (pace connections, generate, flush) and
 * tick() every millisecond (phase changes, once a second: progress line,
 * keepalive, handshake timeouts).
 */
#include "bench.h"
#include "core/err.h"
#include "core/mem.h"
#include "mqtt/mqtt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile int sigcount;

static bool has_wildcard(const char *f)
{
	return strchr(f, '+') || strchr(f, '#');
}

/* string -> index, open addressing; keys are borrowed */
struct strmap {
	const char **keys;
	uint32_t *vals;
	uint32_t cap;
};

static uint32_t str_hash(const char *s)
{
	uint32_t h = 2166136261u;
	while (*s)
		h = (h ^ (uint8_t)*s++) * 16777619u;
	return h;
}

static void strmap_init(struct strmap *m, uint32_t n)
{
	m->cap = 16;
	while (m->cap < n * 2)
		m->cap *= 2;
	m->keys = hq_calloc(m->cap, sizeof(*m->keys));
	m->vals = hq_calloc(m->cap, sizeof(*m->vals));
}

static void strmap_free(struct strmap *m)
{
	hq_free(m->keys);
	hq_free(m->vals);
}

/* the slot of key: holding it, or empty */
static uint32_t strmap_slot(const struct strmap *m, const char *key)
{
	uint32_t s = str_hash(key) & (m->cap - 1);
	while (m->keys[s] && strcmp(m->keys[s], key) != 0)
		s = (s + 1) & (m->cap - 1);
	return s;
}

/* ---- setup ---- */

static int resolve(struct bench *b)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res = NULL;
	char port[16];

	snprintf(port, sizeof(port), "%d", b->o.port);
	int rc = getaddrinfo(b->o.host, port, &hints, &res);
	if (rc != 0 || !res) {
		fprintf(stderr, "hamqtt-bench: cannot resolve %s: %s\n", b->o.host, gai_strerror(rc));
		return -1;
	}
	memcpy(&b->addr, res->ai_addr, res->ai_addrlen);
	b->addrlen = res->ai_addrlen;
	freeaddrinfo(res);
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&b->addr;
	bool loopback = b->addr.ss_family == AF_INET &&
			(ntohl(sin->sin_addr.s_addr) >> 24) == 127;
	if (b->o.bind_spread && !loopback) {
		fprintf(stderr, "hamqtt-bench: --bind-spread needs a broker on 127.x.x.x\n");
		return -1;
	}
	if (loopback && !b->o.bind_spread && b->o.mode == MODE_CONN && b->o.clients > 10000)
		fprintf(stderr, "hamqtt-bench: hint: beyond ~10k connections from one source "
			"address the kernel's ephemeral port search dominates the connect rate; "
			"--bind-spread avoids it\n");
	return 0;
}

/* the filter a tracker matches against (without $share/GROUP/) */
static const char *plain_filter(const struct bench *b, const struct tracker *t)
{
	return b->o.shared ? t->filter + strlen("$share/") + strlen(b->o.shared) + 1 : t->filter;
}

/* Subscribers and their trackers: one each, or one per shared subscription. */
static void setup_subs(struct bench *b)
{
	struct strmap m;

	b->trk = hq_calloc(b->n_subs ? b->n_subs : 1, sizeof(*b->trk));
	strmap_init(&m, b->n_subs);
	for (uint32_t i = 0; i < b->n_subs; i++) {
		struct client *c = &b->cl[i];
		char *f = topic_expand(b->o.sub_topic, i, 0);
		if (b->o.shared) {
			size_t n = strlen(b->o.shared) + strlen(f) + 16;
			c->topic = hq_malloc(n);
			snprintf(c->topic, n, "$share/%s/%s", b->o.shared, f);
			hq_free(f);
		} else {
			c->topic = f;
		}
		uint32_t s = strmap_slot(&m, c->topic);
		if (b->o.shared && m.keys[s]) {
			c->trk = &b->trk[m.vals[s]];
			continue;
		}
		trk_init(&b->trk[b->n_trk], c->topic, (uint32_t)b->o.expect);
		m.keys[s] = b->trk[b->n_trk].filter;
		m.vals[s] = b->n_trk;
		c->trk = &b->trk[b->n_trk++];
	}
	strmap_free(&m);
}

/*
 * Which trackers must receive which publisher: make their tracks now (so a
 * publisher never heard from counts as lost) and count each publisher's fanout.
 * Literal filters are looked up by name; only wildcard filters are matched one
 * by one against every publisher topic.
 */
static void setup_routes(struct bench *b, uint32_t n_pubs)
{
	struct strmap lit;
	uint32_t *next = hq_malloc((b->n_trk + 1) * sizeof(*next));
	uint32_t *wild = hq_malloc((b->n_trk + 1) * sizeof(*wild));
	uint32_t n_wild = 0, unmatched = 0;

	strmap_init(&lit, b->n_trk);
	for (uint32_t t = 0; t < b->n_trk; t++) {
		const char *f = plain_filter(b, &b->trk[t]);
		if (has_wildcard(f)) {
			wild[n_wild++] = t;
			continue;
		}
		uint32_t s = strmap_slot(&lit, f);
		next[t] = lit.keys[s] ? lit.vals[s] : UINT32_MAX;
		lit.keys[s] = f;
		lit.vals[s] = t;
	}
	for (uint32_t j = 0; j < n_pubs; j++) {
		char *name = topic_expand(b->o.topic, j, 0);
		uint32_t fanout = 0;
		uint32_t s = strmap_slot(&lit, name);
		for (uint32_t t = lit.keys[s] ? lit.vals[s] : UINT32_MAX; t != UINT32_MAX; t = next[t]) {
			trk_get(&b->trk[t], j);
			fanout++;
		}
		for (uint32_t w = 0; w < n_wild; w++) {
			if (topic_match(plain_filter(b, &b->trk[wild[w]]), name)) {
				trk_get(&b->trk[wild[w]], j);
				fanout++;
			}
		}
		if (b->o.mode == MODE_PUBSUB)
			b->pubs[j].fanout = fanout;
		else if (b->o.count)
			b->expected += b->o.count * fanout;
		if (!fanout)
			unmatched++;
		hq_free(name);
	}
	if (unmatched)
		fprintf(stderr, "hamqtt-bench: warning: %u publisher topic(s) match no subscription "
			"here (-t %s, -T %s)\n", unmatched, b->o.topic, b->o.sub_topic);
	strmap_free(&lit);
	hq_free(next);
	hq_free(wild);
}

static int setup(struct bench *b)
{
	struct opts *o = &b->o;

	switch (o->mode) {
	case MODE_PUB:
		b->n_pubs = o->clients;
		break;
	case MODE_SUB:
		b->n_subs = o->clients;
		b->known_pubs = o->pubs;
		break;
	case MODE_PUBSUB:
		b->n_pubs = o->pubs ? o->pubs : o->clients;
		b->n_subs = o->subs ? o->subs : o->clients;
		b->known_pubs = b->n_pubs;
		break;
	default:
		break;
	}
	b->n_cl = o->mode == MODE_CONN || o->mode == MODE_HS ? o->clients : b->n_subs + b->n_pubs;
	if (!o->sub_topic)
		o->sub_topic = o->mode == MODE_SUB || b->n_subs == b->n_pubs ? "bench/%i" : "bench/#";
	b->cl = hq_calloc(b->n_cl, sizeof(*b->cl));
	b->pubs = hq_calloc(b->n_pubs ? b->n_pubs : 1, sizeof(*b->pubs));
	for (uint32_t i = 0; i < b->n_cl; i++) {
		struct client *c = &b->cl[i];
		c->b = b;
		c->io.fd = -1;
		if (o->mode == MODE_CONN || o->mode == MODE_HS) {
			c->role = ROLE_IDLE;
			c->idx = i;
		} else if (i < b->n_subs) {
			c->role = ROLE_SUB;
			c->idx = i;
		} else {
			c->role = ROLE_PUB;
			c->idx = i - b->n_subs;
			c->topic = topic_expand(o->topic, o->id_base + c->idx, 0);
			gen_init(b, c);
		}
		c->window = o->window;
	}
	setup_subs(b);
	if (b->known_pubs)
		setup_routes(b, b->known_pubs);
	return 0;
}

static void teardown(struct bench *b)
{
	for (uint32_t i = 0; i < b->n_cl; i++) {
		cli_disconnect(&b->cl[i]);
		hq_free(b->cl[i].topic);
	}
	for (uint32_t i = 0; i < b->n_pubs; i++)
		gen_free(&b->pubs[i]);
	for (uint32_t i = 0; i < b->n_trk; i++)
		trk_free(&b->trk[i]);
	hq_free(b->trk);
	hq_free(b->pubs);
	hq_free(b->cl);
	buf_free(&b->rx);
}

/* ---- phases ---- */

static void set_phase(struct bench *b, int ph, int64_t t)
{
	b->phase = ph;
	b->phase_ns = t;
	if (ph == PH_DONE)
		ev_stop(b->loop);
}

static void end_measure(struct bench *b, int64_t t);

/* The run is over: ask every client to disconnect; the loop ends when the
 * broker closed them all, or after CLOSE_WAIT_NS. */
#define CLOSE_WAIT_NS 2000000000LL
static void finish(struct bench *b, int64_t t)
{
	if (b->phase == PH_CLOSING || b->phase == PH_DONE)
		return;
	end_measure(b, t);
	b->alive_end = b->alive;
	set_phase(b, PH_CLOSING, t);
	for (uint32_t i = 0; i < b->n_cl; i++) {
		struct client *c = &b->cl[i];
		if (c->state == CS_READY)
			cli_send_disconnect(c);
		else
			cli_close(c);
	}
}

static void begin_measure(struct bench *b, int64_t t)
{
	set_phase(b, PH_MEASURE, t);
	b->measuring = true;
	b->measure_t0_ns = t;
	memset(&b->cm, 0, sizeof(b->cm));
	hist_reset(&b->lat);
	rep_sample(b, &b->s_m0);
}

static void end_measure(struct bench *b, int64_t t)
{
	if (!b->measuring)
		return;
	b->measuring = false;
	b->measure_t1_ns = t;
	rep_sample(b, &b->s_m1);
}

static void connect_done(struct bench *b, int64_t t)
{
	if (b->o.mode == MODE_HS) {
		/* the slots connect over and over from now on (hs.c) */
		b->run_t0_ns = t;
		b->last_progress_ns = t;
		if (b->o.warmup > 0)
			set_phase(b, PH_WARMUP, t);
		else
			begin_measure(b, t);
		return;
	}
	if (b->o.mode == MODE_CONN) {
		b->broker_rss_conn_kb = rep_broker_rss_kb(b->o.broker_pid);
		b->measuring = true;
		b->measure_t0_ns = b->s_base.t_ns;
		b->s_m0 = b->s_base;
		set_phase(b, PH_HOLD, t);
		return;
	}
	if (b->established < b->n_cl) {
		fprintf(stderr, "hamqtt-bench: only %u of %u connections established: not running "
			"(first error: %s)\n", b->established, b->n_cl, b->err.first);
		finish(b, t);
		return;
	}
	b->run_t0_ns = t;
	b->last_progress_ns = t;
	/* stagger the rate schedules over one interval */
	for (uint32_t i = 0; i < b->n_pubs; i++)
		b->pubs[i].start_ns = t + (b->o.rate > 0 ?
			(int64_t)(1e9 / b->o.rate * i / b->n_pubs) : 0);
	if (b->o.expect && b->measure_t0_ns)
		set_phase(b, PH_MEASURE, t);   /* measuring since the first SUBSCRIBE */
	else if (b->o.warmup > 0)
		set_phase(b, PH_WARMUP, t);
	else
		begin_measure(b, t);
}

void bench_expect_start(struct bench *b, int64_t t)
{
	if (b->measure_t0_ns)
		return;
	b->measuring = true;
	b->measure_t0_ns = t;
	memset(&b->cm, 0, sizeof(b->cm));
	hist_reset(&b->lat);
	rep_sample(b, &b->s_m0);
	b->s_m0.t_ns = t;
}

void bench_expect_reached(struct bench *b, int64_t t)
{
	if (b->expect_t_ns)
		return;
	b->expect_t_ns = t;
	end_measure(b, t);
}

/* hs mode: slots in a cycle now / slots that failed and stay closed */
static uint32_t hs_count(const struct bench *b, bool busy)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < b->n_cl; i++) {
		uint8_t st = b->cl[i].state;
		n += busy ? st != CS_IDLE && st != CS_CLOSED : st == CS_CLOSED;
	}
	return n;
}

/* every expected message arrived and every flow completed */
static bool complete(const struct bench *b)
{
	if (b->o.mode == MODE_HS)   /* every cycle started has ended, and none is due */
		return hs_count(b, true) == 0 &&
		       (b->phase == PH_DRAIN || (b->o.count && b->hs_started >= b->o.count) ||
			hs_count(b, false) == b->n_cl);
	if (b->o.expect)
		return b->expect_t_ns != 0;
	if (b->o.mode == MODE_SUB)
		return b->o.count && b->known_pubs && b->unique >= b->expected;
	if (b->o.count && !gen_done(b))
		return false;
	return gen_acks_done(b) && b->unique >= b->expected;
}

static void stop_publishing(struct bench *b, int64_t t)
{
	end_measure(b, t);
	set_phase(b, PH_DRAIN, t);
}

static void tick(struct ev_loop *l, void *arg)
{
	struct bench *b = arg;
	static int handled;
	int64_t t = now_ns();
	const struct opts *o = &b->o;
	int64_t drain_ns = (int64_t)(o->drain * 1e9);

	if (sigcount != handled) {
		handled = sigcount;
		if (b->phase == PH_WARMUP || b->phase == PH_MEASURE)
			stop_publishing(b, t);
		else if (b->phase == PH_CLOSING)
			set_phase(b, PH_DONE, t);
		else
			finish(b, t);
	}
	switch (b->phase) {
	case PH_CONNECT:
		if (o->mode == MODE_HS || (b->next_conn == b->n_cl && b->pending == 0))
			connect_done(b, t);
		break;
	case PH_WARMUP:
		if (t - b->phase_ns >= (int64_t)(o->warmup * 1e9))
			begin_measure(b, t);
		break;
	case PH_MEASURE:
		if ((o->count || o->expect) && complete(b)) {
			end_measure(b, t);
			finish(b, t);
		} else if ((o->duration_set || (o->mode == MODE_HS && !o->count)) &&
			   t - b->measure_t0_ns >= (int64_t)(o->duration * 1e9)) {
			stop_publishing(b, t);
		} else if (o->count && !o->expect && b->last_progress_ns &&
			   (o->mode == MODE_SUB || gen_done(b)) &&
			   t - b->last_progress_ns >= drain_ns) {
			end_measure(b, b->last_progress_ns);
			finish(b, t);
		}
		break;
	case PH_DRAIN:
		if (complete(b) || t - b->last_progress_ns >= drain_ns ||
		    t - b->phase_ns >= 10 * drain_ns + 5000000000)
			finish(b, t);
		break;
	case PH_HOLD:
		if (t - b->phase_ns >= (int64_t)(o->duration * 1e9))
			finish(b, t);
		break;
	case PH_CLOSING:
		if (b->alive == 0 || t - b->phase_ns >= CLOSE_WAIT_NS)
			set_phase(b, PH_DONE, t);
		return;
	case PH_DONE:
		return;
	}
	if ((b->phase == PH_WARMUP || b->phase == PH_MEASURE) &&
	    (o->mode != MODE_SUB || o->expect) &&
	    t - b->last_progress_ns >= (int64_t)(o->timeout * 1e9)) {
		b->stalled = true;
		cli_error(b, "no progress for %.0f s (no message sent, acknowledged or received): "
			  "giving up", o->timeout);
		end_measure(b, b->last_progress_ns);
		finish(b, t);
	}
	if (o->mode == MODE_HS) {
		if (b->phase != PH_CONNECT && b->phase < PH_CLOSING && hs_count(b, false) == b->n_cl)
			finish(b, t);   /* every slot failed */
	} else if (b->phase != PH_CONNECT && b->phase < PH_CLOSING && b->alive == 0) {
		finish(b, t);   /* every connection is gone: nothing left to wait for */
	}

	/* once a second */
	int64_t el = t - b->s_base.t_ns;
	if (t - b->s_tick.t_ns >= 1000000000) {
		cli_tick(b, ev_now_ms(l));
		double planned = o->warmup + (o->count ? 0 : o->duration);
		if (o->progress == 1 || (o->progress < 0 && (planned > 3 || el >= 3000000000)))
			rep_progress(b);
		else {
			rep_sample(b, &b->s_tick);
			hist_reset(&b->lat_tick);
		}
	}
}

static void before_sleep(struct ev_loop *l, void *arg)
{
	struct bench *b = arg;

	b->now_ns = now_ns();
	if (b->phase == PH_CONNECT && b->o.mode != MODE_HS) {
		while (b->next_conn < b->n_cl && b->pending < BENCH_MAX_PENDING) {
			if (b->o.conn_rate > 0 && b->conn_t0_ns &&
			    b->next_conn >= (uint64_t)((double)(b->now_ns - b->conn_t0_ns) *
						      b->o.conn_rate / 1e9) + 1)
				break;
			cli_start(b, &b->cl[b->next_conn++]);
		}
	}
	if (b->o.mode == MODE_HS)
		hs_turn(b);
	else
		gen_turn(b);
	cli_flush_all(b);
}

static void on_signal(int sig)
{
	(void)sig;
	if (++sigcount >= 3)
		_exit(130);
}

static int prepare_process(const struct bench *b)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && (rlim_t)b->n_cl + 16 > rl.rlim_cur) {
		fprintf(stderr, "hamqtt-bench: %u connections need %u file descriptors; the limit "
			"is %llu\n", b->n_cl, b->n_cl + 16, (unsigned long long)rl.rlim_cur);
		return -1;
	}
	if (b->o.cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(b->o.cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set) < 0) {
			fprintf(stderr, "hamqtt-bench: cannot pin to CPU %d: %s\n", b->o.cpu,
				strerror(errno));
			return -1;
		}
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

int main(int argc, char **argv)
{
	static struct bench bench;   /* holds two histograms: not on the stack */
	struct bench *b = &bench;
	int rc = bench_parse_opts(&b->o, argc, argv);

	if (rc)
		return rc < 0 ? 1 : 0;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (resolve(b) < 0 || btls_init(&b->o) < 0 || setup(b) < 0 || prepare_process(b) < 0)
		return 1;
	b->loop = ev_loop_new();
	if (!b->loop || ev_timer_every(b->loop, 1, tick, b) != HQ_OK) {
		fprintf(stderr, "hamqtt-bench: cannot create the event loop: %s\n", strerror(errno));
		return 1;
	}
	ev_set_before_sleep(b->loop, before_sleep, b);
	b->broker_rss_max_kb = -1;
	b->broker_rss_conn_kb = -1;
	rep_sample(b, &b->s_base);
	b->s_tick = b->s_base;
	set_phase(b, PH_CONNECT, b->s_base.t_ns);

	if (ev_run(b->loop) != HQ_OK)
		fprintf(stderr, "hamqtt-bench: event loop failed: %s\n", strerror(errno));
	if (b->measuring)
		end_measure(b, now_ns());
	if (!b->s_m1.t_ns)
		rep_sample(b, &b->s_m1);
	rc = rep_final(b);
	teardown(b);
	btls_free();
	ev_loop_free(b->loop);
	return rc;
}
