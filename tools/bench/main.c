/*
 * main.c - hamqtt-bench: options, setup, the run's phases, main().
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
#include <getopt.h>
#include <netdb.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile int sigcount;

static void usage(FILE *f)
{
	fputs(
"usage: hamqtt-bench pub|sub|pubsub|conn [options]\n"
"\n"
"MQTT load generator: every client in one process, one thread, one epoll loop.\n"
"  pub     publishers only (-c publishers)\n"
"  sub     subscribers only (-c subscribers); messages from another hamqtt-bench\n"
"          on this host are checked; with --pubs N --count M exact counts too\n"
"  pubsub  both ends in this process: end-to-end latency, lost/dup/reorder\n"
"          (-c pairs, or --pubs N --subs M for fan-in / fan-out shapes)\n"
"  conn    open -c connections, hold them for -d seconds: connect rate, and\n"
"          broker RSS per connection with --broker-pid\n"
"\n"
"Connection:\n"
"  -h, --host HOST          broker address (127.0.0.1)\n"
"  -p, --port PORT          broker port (1883)\n"
"  -c, --clients N          publishers (pub), subscribers (sub), pairs (pubsub),\n"
"                           connections (conn) (1; conn: 100)\n"
"      --pubs N, --subs N   pubsub: publishers and subscribers (default -c each)\n"
"  -V, --mqtt-version V     3 (3.1), 4 (3.1.1) or 5 (4)\n"
"  -k, --keepalive S        keepalive seconds, PINGREQ after S/2 idle (60; 0 = off)\n"
"      --clean, --no-clean  clean session / clean start (on)\n"
"      --session-expiry S   v5 session expiry interval property\n"
"      --conn-rate N        connections started per second (0 = unlimited)\n"
"      --bind-spread        bind source addresses 127.0.0.1..127.0.0.254 round\n"
"                           robin: beyond 64k connections to one port, and a\n"
"                           faster connect beyond ~10k (kernel port search)\n"
"      --id-prefix P        client ids P<p|s|c><index> (default hqb<pid>...)\n"
"      --id-base N          pub: publisher ids (payload and %i) start at N, so\n"
"                           several pub processes can feed one sub\n"
"      --timeout S          handshake timeout, and give up (exit 3) after S\n"
"                           seconds without progress (10)\n"
"\n"
"Messages:\n"
"  -q, --qos Q              publish and subscribe QoS 0, 1 or 2 (0)\n"
"      --sub-qos Q          subscription QoS (default -q)\n"
"  -s, --size B             payload bytes, >= 16: the payload starts with the send\n"
"                           time, publisher id and sequence number (64)\n"
"  -r, --rate R             msg/s per publisher (0 = as fast as the window allows)\n"
"  -w, --window W           max QoS > 0 messages in flight per publisher (64);\n"
"                           pubsub at QoS 0 and max rate: max messages per\n"
"                           publisher sent but not yet received here; pub at\n"
"                           QoS 0 and max rate: as fast as the socket takes\n"
"  -t, --topic PAT          publish topic, %i = publisher index (bench/%i),\n"
"                           %n = sequence number: one topic per message (the\n"
"                           subscriptions here are matched against %n = 0)\n"
"      --retain             publish with the RETAIN flag (e.g. -t ret/%n --count N\n"
"                           -q 1: N retained topics, stored when pub exits)\n"
"  -T, --sub-topic PAT      subscription, %i = subscriber index (bench/%i when\n"
"                           publishers and subscribers are as many, else bench/#)\n"
"      --shared GROUP       subscribe through $share/GROUP/...: each message is\n"
"                           expected once per group (order across members is not\n"
"                           guaranteed, so reorders are expected there)\n"
"\n"
"Run:\n"
"  -d, --duration S         measured seconds (10); conn: seconds to hold\n"
"      --warmup S           seconds of load before measuring (0)\n"
"      --count N            messages per publisher, instead of a duration; the run\n"
"                           ends when all of them arrived (or --drain idle)\n"
"      --drain S            after publishing: wait for missing messages until S\n"
"                           seconds pass without any (1)\n"
"      --expect N           sub: run until N distinct messages arrived (e.g. the\n"
"                           retained ones, in any order: counted exactly), or\n"
"                           --timeout without any (exit 3); the measured period\n"
"                           is from the first SUBSCRIBE to the N-th message\n"
"      --cpu N              pin this process to CPU N\n"
"      --broker-pid PID     report the broker's CPU % and RSS (from /proc)\n"
"      --progress, --no-progress  progress line each second on stderr (default:\n"
"                           on runs longer than 3 s)\n"
"      --help\n"
"\n"
"Output: progress on stderr; a summary, then one line `RESULT key=value ...`\n"
"on stdout. Rates are over the measured period; latency is receive time - send\n"
"time (both CLOCK_MONOTONIC on this host); lost = expected sequence numbers never\n"
"received, dup = received twice by one subscriber, reorder = lower than one\n"
"already received from the same publisher by the same subscriber.\n"
"Exit: 0 ok, 1 usage, 2 connections failed, refused or dropped, 3 stalled.\n",
	      f);
}

/* ---- topics ---- */

char *topic_expand(const char *pat, uint32_t i, uint32_t seq)
{
	struct buf out = { 0 };
	char num[16];

	for (const char *p = pat; *p; p++) {
		if (p[0] == '%' && (p[1] == 'i' || p[1] == 'n')) {
			int n = snprintf(num, sizeof(num), "%u", p[1] == 'i' ? i : seq);
			buf_append(&out, num, (size_t)n);
			p++;
		} else if (p[0] == '%' && p[1] == '%') {
			buf_append(&out, "%", 1);
			p++;
		} else {
			buf_append(&out, p, 1);
		}
	}
	buf_append(&out, "", 1);
	return (char *)out.data;
}

bool topic_match(const char *f, const char *n)
{
	if (n[0] == '$' && (f[0] == '+' || f[0] == '#'))
		return false;   /* [MQTT-4.7.2-1] */
	for (;;) {
		if (f[0] == '#' && f[1] == 0)
			return true;
		if (f[0] == '+' && (f[1] == '/' || f[1] == 0)) {
			f++;
			while (*n && *n != '/')
				n++;
		} else {
			while (*f && *f != '/' && *f == *n) {
				f++;
				n++;
			}
			if ((*f && *f != '/') || (*n && *n != '/'))
				return false;
		}
		if (*f == 0 && *n == 0)
			return true;
		if (*f == 0 || *n == 0)   /* "a/#" also matches "a" */
			return *n == 0 && strcmp(f, "/#") == 0;
		f++;
		n++;
	}
}

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
	b->n_cl = o->mode == MODE_CONN ? o->clients : b->n_subs + b->n_pubs;
	if (!o->sub_topic)
		o->sub_topic = o->mode == MODE_SUB || b->n_subs == b->n_pubs ? "bench/%i" : "bench/#";
	b->cl = hq_calloc(b->n_cl, sizeof(*b->cl));
	b->pubs = hq_calloc(b->n_pubs ? b->n_pubs : 1, sizeof(*b->pubs));
	for (uint32_t i = 0; i < b->n_cl; i++) {
		struct client *c = &b->cl[i];
		c->b = b;
		c->io.fd = -1;
		if (o->mode == MODE_CONN) {
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

/* every expected message arrived and every flow completed */
static bool complete(const struct bench *b)
{
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
		if (b->next_conn == b->n_cl && b->pending == 0)
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
		} else if (o->duration_set && t - b->measure_t0_ns >= (int64_t)(o->duration * 1e9)) {
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
	if (b->phase != PH_CONNECT && b->phase < PH_CLOSING && b->alive == 0)
		finish(b, t);   /* every connection is gone: nothing left to wait for */

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
	if (b->phase == PH_CONNECT) {
		while (b->next_conn < b->n_cl && b->pending < BENCH_MAX_PENDING) {
			if (b->o.conn_rate > 0 && b->conn_t0_ns &&
			    b->next_conn >= (uint64_t)((double)(b->now_ns - b->conn_t0_ns) *
						      b->o.conn_rate / 1e9) + 1)
				break;
			cli_start(b, &b->cl[b->next_conn++]);
		}
	}
	gen_turn(b);
	cli_flush_all(b);
}

/* ---- options ---- */

enum {
	OPT_PUBS = 256, OPT_SUBS, OPT_SUB_QOS, OPT_WARMUP, OPT_DRAIN, OPT_COUNT, OPT_CONN_RATE,
	OPT_CLEAN, OPT_NO_CLEAN, OPT_SESSION_EXPIRY, OPT_CPU, OPT_BIND_SPREAD, OPT_BROKER_PID,
	OPT_SHARED, OPT_ID_PREFIX, OPT_ID_BASE, OPT_TIMEOUT, OPT_PROGRESS, OPT_NO_PROGRESS, OPT_HELP,
	OPT_RETAIN, OPT_EXPECT,
};

static const struct option long_opts[] = {
	{ "host", required_argument, NULL, 'h' },
	{ "port", required_argument, NULL, 'p' },
	{ "clients", required_argument, NULL, 'c' },
	{ "pubs", required_argument, NULL, OPT_PUBS },
	{ "subs", required_argument, NULL, OPT_SUBS },
	{ "qos", required_argument, NULL, 'q' },
	{ "sub-qos", required_argument, NULL, OPT_SUB_QOS },
	{ "mqtt-version", required_argument, NULL, 'V' },
	{ "size", required_argument, NULL, 's' },
	{ "rate", required_argument, NULL, 'r' },
	{ "window", required_argument, NULL, 'w' },
	{ "topic", required_argument, NULL, 't' },
	{ "sub-topic", required_argument, NULL, 'T' },
	{ "duration", required_argument, NULL, 'd' },
	{ "warmup", required_argument, NULL, OPT_WARMUP },
	{ "drain", required_argument, NULL, OPT_DRAIN },
	{ "count", required_argument, NULL, OPT_COUNT },
	{ "conn-rate", required_argument, NULL, OPT_CONN_RATE },
	{ "keepalive", required_argument, NULL, 'k' },
	{ "clean", no_argument, NULL, OPT_CLEAN },
	{ "no-clean", no_argument, NULL, OPT_NO_CLEAN },
	{ "session-expiry", required_argument, NULL, OPT_SESSION_EXPIRY },
	{ "cpu", required_argument, NULL, OPT_CPU },
	{ "bind-spread", no_argument, NULL, OPT_BIND_SPREAD },
	{ "broker-pid", required_argument, NULL, OPT_BROKER_PID },
	{ "shared", required_argument, NULL, OPT_SHARED },
	{ "id-prefix", required_argument, NULL, OPT_ID_PREFIX },
	{ "id-base", required_argument, NULL, OPT_ID_BASE },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "progress", no_argument, NULL, OPT_PROGRESS },
	{ "no-progress", no_argument, NULL, OPT_NO_PROGRESS },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "retain", no_argument, NULL, OPT_RETAIN },
	{ "expect", required_argument, NULL, OPT_EXPECT },
	{ NULL, 0, NULL, 0 },
};

static int bad(const char *what, const char *arg)
{
	fprintf(stderr, "hamqtt-bench: invalid %s '%s' (see --help)\n", what, arg);
	return -1;
}

static int num(const char *arg, const char *what, double lo, double hi, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(arg, &end);
	if (errno || end == arg || *end || v < lo || v > hi)
		return bad(what, arg);
	*out = v;
	return 0;
}

#define NUM(dst, what, lo, hi)                                  \
	do {                                                    \
		double v_;                                      \
		if (num(optarg, what, lo, hi, &v_) < 0)         \
			return -1;                              \
		dst = (__typeof__(dst))v_;                      \
	} while (0)

static int parse(struct opts *o, int argc, char **argv)
{
	static const char *modes[] = { "pub", "sub", "pubsub", "conn" };
	bool clients_set = false;
	int ch;

	*o = (struct opts){
		.host = "127.0.0.1", .port = 1883, .clients = 1, .version = 4, .size = 64,
		.window = 64, .topic = "bench/%i", .duration = 10, .drain = 1, .keepalive = 60,
		.clean = true, .session_expiry = -1, .cpu = -1, .timeout = 10, .progress = -1,
		.sub_qos = -1,
	};
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? -1 : 1;
	}
	o->mode = -1;
	for (int i = 0; i < 4; i++)
		if (!strcmp(argv[1], modes[i]))
			o->mode = i;
	if (o->mode < 0)
		return bad("sub-command", argv[1]);
	argc--;
	argv++;
	while ((ch = getopt_long(argc, argv, "h:p:c:q:V:s:r:w:t:T:d:k:", long_opts, NULL)) != -1) {
		switch (ch) {
		case 'h': o->host = optarg; break;
		case 'p': NUM(o->port, "port", 1, 65535); break;
		case 'c': NUM(o->clients, "client count", 1, 10000000); clients_set = true; break;
		case OPT_PUBS: NUM(o->pubs, "publisher count", 1, 10000000); break;
		case OPT_SUBS: NUM(o->subs, "subscriber count", 1, 10000000); break;
		case 'q': NUM(o->qos, "QoS", 0, 2); break;
		case OPT_SUB_QOS: NUM(o->sub_qos, "subscription QoS", 0, 2); break;
		case 'V': NUM(o->version, "MQTT version", 3, 5); break;
		case 's': NUM(o->size, "payload size", BENCH_HDR, 256 * 1024 * 1024 - 1024); break;
		case 'r': NUM(o->rate, "rate", 0, 1e9); break;
		case 'w': NUM(o->window, "window", 1, 65535); break;
		case 't': o->topic = optarg; break;
		case 'T': o->sub_topic = optarg; break;
		case 'd': NUM(o->duration, "duration", 0, 1e7); o->duration_set = true; break;
		case OPT_WARMUP: NUM(o->warmup, "warm-up", 0, 1e7); break;
		case OPT_DRAIN: NUM(o->drain, "drain", 0, 1e7); break;
		case OPT_COUNT: NUM(o->count, "count", 1, 4e9); break;
		case OPT_CONN_RATE: NUM(o->conn_rate, "connection rate", 0, 1e9); break;
		case 'k': NUM(o->keepalive, "keepalive", 0, 65535); break;
		case OPT_CLEAN: o->clean = true; break;
		case OPT_NO_CLEAN: o->clean = false; break;
		case OPT_SESSION_EXPIRY: NUM(o->session_expiry, "session expiry", 0, 4294967295.0); break;
		case OPT_CPU: NUM(o->cpu, "cpu", 0, CPU_SETSIZE - 1); break;
		case OPT_BIND_SPREAD: o->bind_spread = true; break;
		case OPT_BROKER_PID: NUM(o->broker_pid, "pid", 1, 1e9); break;
		case OPT_SHARED: o->shared = optarg; break;
		case OPT_ID_PREFIX: o->id_prefix = optarg; break;
		case OPT_ID_BASE: NUM(o->id_base, "id base", 0, 4e9); break;
		case OPT_TIMEOUT: NUM(o->timeout, "timeout", 0.1, 1e6); break;
		case OPT_PROGRESS: o->progress = 1; break;
		case OPT_NO_PROGRESS: o->progress = 0; break;
		case OPT_HELP: usage(stdout); return 1;
		case OPT_RETAIN: o->retain = true; break;
		case OPT_EXPECT: NUM(o->expect, "expected message count", 1, 4e9); break;
		default: return -1;
		}
	}
	if (optind < argc)
		return bad("argument", argv[optind]);
	if (o->mode == MODE_CONN && !clients_set)
		o->clients = 100;
	if (o->sub_qos < 0)
		o->sub_qos = o->qos;
	if (o->version == 3 && o->id_prefix && strlen(o->id_prefix) > 12)
		fprintf(stderr, "hamqtt-bench: warning: MQTT 3.1 limits client ids to 23 bytes\n");
	if (o->id_base && o->mode != MODE_PUB)
		return bad("option for this sub-command (pub only)", "--id-base");
	if ((o->pubs || o->subs) && o->mode != MODE_PUBSUB && o->mode != MODE_SUB)
		return bad("option for this sub-command", "--pubs/--subs");
	if (o->mode == MODE_SUB && o->subs)
		return bad("option for sub (use -c)", "--subs");
	if (o->shared && (o->mode == MODE_PUB || o->mode == MODE_CONN))
		return bad("option for this sub-command", "--shared");
	if (o->expect && o->mode != MODE_SUB)
		return bad("option for this sub-command (sub only)", "--expect");
	if (o->expect && o->shared)
		return bad("option with --shared", "--expect");
	if (o->retain && (o->mode == MODE_SUB || o->mode == MODE_CONN))
		return bad("option for this sub-command", "--retain");
	o->topic_seq = strstr(o->topic, "%n") != NULL;
	if (o->topic_seq && strstr(o->topic, "%%"))
		return bad("topic with both %n and %% (unsupported)", o->topic);
	return 0;
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
	int rc = parse(&b->o, argc, argv);

	if (rc)
		return rc < 0 ? 1 : 0;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (resolve(b) < 0 || setup(b) < 0 || prepare_process(b) < 0)
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
	ev_loop_free(b->loop);
	return rc;
}
