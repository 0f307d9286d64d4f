/*
 * brk_overload.c - overload protection at the node's door: per-listener
 * connection limits (max_connections, max_conn_rate), connections per
 * source address, the memory high watermark, and the counters and
 * rate-limited log lines of every overload event (brk_ratelimit.c adds the
 * per-client message and byte rates; the incomplete-packet timeout is in
 * tick_cb and brk_conn.c).
 *
 * Ownership and threads: struct ovl belongs to the broker (broker_new makes
 * it, broker_free frees it); every worker reads it.
 *  - listener counts: atomics, changed at accept and conn_free only;
 *  - a listener's connection-rate bucket: its own mutex, taken only on a
 *    listener with max_conn_rate, once per accept;
 *  - the per-address table: one mutex, taken only with
 *    overload.max_connections_per_ip, at admission and conn_free;
 *  - the memory sample: written by worker 0's tick once a second, read
 *    anywhere (broker.mem_high, a relaxed atomic: the QoS 0 path reads it);
 *  - event counters and log stamps: atomics (events are rare, and the log
 *    line under abuse is one per OVL_LOG_MS per reason, whoever writes it).
 * A connection's claims are recorded in the conn (ovl_listener, ovl_ip) and
 * given back by ovl_conn_release from conn_free, whichever worker owns it.
 */
#include "broker/brk_int.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define OVL_LOG_MS 10000          /* one line per reason per interval under abuse */
#define OVL_MEM_SAMPLE_MS 1000
#define OVL_MEM_LOW_PCT 90        /* hysteresis: normal again below 90 % of the mark */

struct ovl_ip {
	UT_hash_handle hh;
	uint32_t n;
	char ip[];
};

struct ovl_listener {
	_Atomic uint32_t conns;
	uint32_t max_conns;           /* 0 = no limit */
	double conn_rate;             /* per second; 0 = no limit */
	double msg_rate, byte_rate;   /* per client, per second; 0 = no limit */
	pthread_mutex_t lock;         /* the rate bucket below */
	double tokens;
	int64_t last_ms;
};

struct ovl {
	struct ovl_listener l[CONF_MAX_LISTENERS];
	bool admit;                   /* anything to check when a connection comes */
	uint32_t max_per_ip;
	pthread_mutex_t ip_lock;
	struct ovl_ip *ips;           /* uthash by ip, under ip_lock */
	uint64_t watermark;           /* bytes; 0 = off */
	int64_t next_mem_ms;          /* worker 0 only */
	_Atomic uint64_t rss;
	_Atomic uint64_t count[BRK_OVL_N];
	_Atomic uint64_t logged[BRK_OVL_N];
	_Atomic int64_t last_log[BRK_OVL_N];
};

static const char *const ev_names[BRK_OVL_N] = {
	[BRK_OVL_LISTENER_FULL] = "listener_full",
	[BRK_OVL_CONN_RATE] = "conn_rate",
	[BRK_OVL_PER_IP] = "per_ip",
	[BRK_OVL_MEMORY] = "memory",
	[BRK_OVL_THROTTLED] = "throttled",
	[BRK_OVL_RATE_DISCONNECT] = "rate_disconnect",
	[BRK_OVL_INCOMPLETE] = "incomplete_packet",
	[BRK_OVL_BANNED] = "banned",
	[BRK_OVL_FLAPPING] = "flapping",
};

const char *broker_overload_event_name(int ev)
{
	return ev >= 0 && ev < BRK_OVL_N ? ev_names[ev] : "unknown";
}

/* The machine's memory, or the cgroup's limit when lower (containers). */
static uint64_t total_memory(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
	uint64_t total = pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz : 0;
	FILE *f = fopen("/sys/fs/cgroup/memory.max", "r"); /* cgroup v2; "max" = none */
	if (f) {
		unsigned long long lim;
		if (fscanf(f, "%llu", &lim) == 1 && lim > 0 && (!total || lim < total))
			total = lim;
		fclose(f);
	}
	return total;
}

uint64_t ovl_rss_now(void)
{
	/* /proc/self/statm: size resident ...; in pages. One read a second. */
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	char buf[128];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	unsigned long long size, res;
	if (sscanf(buf, "%llu %llu", &size, &res) != 2)
		return 0;
	return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
}

static int listener_rate(const struct conf_listener *L, const char *key, const char *v,
			 double *out, char *err, size_t errlen)
{
	if (conf_parse_rate(v ? v : "", out) == HQ_OK)
		return HQ_OK;
	snprintf(err, errlen, "listeners.%s.%s.%s: bad rate '%s'", conf_listener_type_name(L->type),
		 L->name, key, v);
	return HQ_EINVAL;
}

int ovl_new(struct broker *b, char *err, size_t errlen)
{
	struct hq_config *cfg = b->cfg;
	struct ovl *o = hq_calloc(1, sizeof(*o));
	b->ovl = o;
	pthread_mutex_init(&o->ip_lock, NULL);
	for (int i = 0; i < CONF_MAX_LISTENERS; i++)
		pthread_mutex_init(&o->l[i].lock, NULL);
	for (int i = 0; i < cfg->n_listeners; i++) {
		const struct conf_listener *L = &cfg->listeners[i];
		struct ovl_listener *l = &o->l[i];
		l->max_conns = L->max_connections;
		if (listener_rate(L, "max_conn_rate", L->max_conn_rate, &l->conn_rate, err, errlen) ||
		    listener_rate(L, "messages_rate", L->messages_rate, &l->msg_rate, err, errlen) ||
		    listener_rate(L, "bytes_rate", L->bytes_rate, &l->byte_rate, err, errlen))
			return HQ_EINVAL;
		l->tokens = l->conn_rate < 1 ? 1 : l->conn_rate;
		if (l->max_conns || l->msg_rate > 0 || l->byte_rate > 0)
			o->admit = true;
	}
	o->max_per_ip = cfg->ovl_max_conns_per_ip;
	if (o->max_per_ip)
		o->admit = true;
	uint64_t v;
	bool pct;
	const char *wm = cfg->ovl_memory_high_watermark ? cfg->ovl_memory_high_watermark : "0";
	if (conf_parse_watermark(wm, &v, &pct) != HQ_OK) {
		snprintf(err, errlen, "overload.memory_high_watermark: bad value '%s'", wm);
		return HQ_EINVAL;
	}
	o->watermark = pct ? total_memory() / 100 * v : v;
	if (o->watermark)
		log_notice("memory high watermark %llu bytes%s",
			   (unsigned long long)o->watermark, pct ? " (of the machine's or cgroup's memory)" : "");
	return HQ_OK;
}

void ovl_free(struct broker *b)
{
	struct ovl *o = b->ovl;
	if (!o)
		return;
	struct ovl_ip *e, *tmp;
	HASH_ITER(hh, o->ips, e, tmp) {
		HASH_DEL(o->ips, e);
		hq_free(e);
	}
	pthread_mutex_destroy(&o->ip_lock);
	for (int i = 0; i < CONF_MAX_LISTENERS; i++)
		pthread_mutex_destroy(&o->l[i].lock);
	HQ_FREE(b->ovl);
}

/* ---- events: counted always, logged once per interval per reason ---- */

void ovl_event(struct broker *b, enum broker_overload_event ev, const char *fmt, ...)
{
	struct ovl *o = b->ovl;
	uint64_t n = atomic_fetch_add_explicit(&o->count[ev], 1, memory_order_relaxed) + 1;
	int64_t now = clock_mono_ms();
	int64_t last = atomic_load_explicit(&o->last_log[ev], memory_order_relaxed);
	if (last && now - last < OVL_LOG_MS)
		return; /* ovl_tick writes the summary */
	if (!atomic_compare_exchange_strong(&o->last_log[ev], &last, now))
		return;
	uint64_t before = atomic_exchange(&o->logged[ev], n);
	char what[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (n - before > 1)
		log_notice("overload %s: %s (and %llu more since the last line)", ev_names[ev], what,
			   (unsigned long long)(n - before - 1));
	else
		log_notice("overload %s: %s", ev_names[ev], what);
}

/* The summary of events nobody logged (the interval had not passed). */
static void log_pending(struct ovl *o, int64_t now)
{
	for (int ev = 0; ev < BRK_OVL_N; ev++) {
		uint64_t n = atomic_load_explicit(&o->count[ev], memory_order_relaxed);
		uint64_t done = atomic_load_explicit(&o->logged[ev], memory_order_relaxed);
		int64_t last = atomic_load_explicit(&o->last_log[ev], memory_order_relaxed);
		if (n == done || now - last < OVL_LOG_MS)
			continue;
		if (!atomic_compare_exchange_strong(&o->last_log[ev], &last, now))
			continue;
		done = atomic_exchange(&o->logged[ev], n);
		log_notice("overload %s: %llu more in the last %d s", ev_names[ev],
			   (unsigned long long)(n - done), (int)((now - last) / 1000));
	}
}

/* Worker 0's tick: the memory sample and the pending log lines. */
void ovl_tick(struct broker *b, int64_t now)
{
	struct ovl *o = b->ovl;
	log_pending(o, clock_mono_ms());
	if (!o->watermark || now < o->next_mem_ms)
		return;
	o->next_mem_ms = now + OVL_MEM_SAMPLE_MS;
	uint64_t rss = ovl_rss_now();
	atomic_store_explicit(&o->rss, rss, memory_order_relaxed);
	bool high = atomic_load_explicit(&b->mem_high, memory_order_relaxed);
	if (!high && rss > o->watermark) {
		atomic_store_explicit(&b->mem_high, true, memory_order_relaxed);
		log_warning("memory %llu bytes above overload.memory_high_watermark (%llu): refusing "
			    "new connections, dropping QoS 0 to subscribers that are behind",
			    (unsigned long long)rss, (unsigned long long)o->watermark);
	} else if (high && rss < o->watermark / 100 * OVL_MEM_LOW_PCT) {
		atomic_store_explicit(&b->mem_high, false, memory_order_relaxed);
		log_notice("memory %llu bytes back under the high watermark: normal service",
			   (unsigned long long)rss);
	}
}

void ovl_info(struct broker *b, struct broker_info *out)
{
	struct ovl *o = b->ovl;
	if (!o)
		return;
	for (int ev = 0; ev < BRK_OVL_N; ev++)
		out->overload[ev] = atomic_load_explicit(&o->count[ev], memory_order_relaxed);
	out->mem_watermark = o->watermark;
	out->mem_high = atomic_load_explicit(&b->mem_high, memory_order_relaxed);
	out->rss_bytes = o->watermark ? atomic_load_explicit(&o->rss, memory_order_relaxed)
				      : ovl_rss_now();
}

/* ---- the connection rate (accept path) ---- */

int64_t ovl_conn_rate_take(struct broker *b, int li, int64_t now)
{
	struct ovl_listener *l = &b->ovl->l[li];
	if (!(l->conn_rate > 0))
		return 0;
	double burst = l->conn_rate < 1 ? 1 : l->conn_rate; /* one second's worth */
	int64_t wait = 0;
	pthread_mutex_lock(&l->lock);
	if (l->last_ms) {
		l->tokens += (double)(now - l->last_ms) * l->conn_rate / 1000.0;
		if (l->tokens > burst)
			l->tokens = burst;
	}
	l->last_ms = now;
	if (l->tokens >= 1)
		l->tokens -= 1;
	else
		wait = 1 + (int64_t)((1 - l->tokens) * 1000.0 / l->conn_rate);
	pthread_mutex_unlock(&l->lock);
	return wait;
}

void ovl_conn_rate_refund(struct broker *b, int li)
{
	struct ovl_listener *l = &b->ovl->l[li];
	if (!(l->conn_rate > 0))
		return;
	pthread_mutex_lock(&l->lock);
	l->tokens += 1;
	pthread_mutex_unlock(&l->lock);
}

/*
 * listeners.<type>.<name>.max_conn_rate: out of tokens, the listening socket
 * is not watched until the next one is due (tick_cb), so the clients wait in
 * the kernel backlog and are accepted as the rate allows (what EMQX does).
 */
void ovl_listener_pause(struct worker *w, int k, int64_t wait_ms)
{
	int64_t at = ev_now_ms(w->loop) + wait_ms;
	if (!w->lrate_paused || at < w->lrate_resume_at)
		w->lrate_resume_at = at;
	w->lrate_paused |= 1u << k;
	ev_io_set(w->loop, &w->lios[k], 0);
	const struct conf_listener *L = &w->b->cfg->listeners[w->lcfg[k]];
	ovl_event(w->b, BRK_OVL_CONN_RATE, "listener %s.%s over max_conn_rate %s: accepting "
		  "paused for %lld ms", conf_listener_type_name(L->type), L->name, L->max_conn_rate,
		  (long long)wait_ms);
}

void ovl_listener_tick(struct worker *w, int64_t now)
{
	WK_ASSERT_OWNER(w);
	if (!w->lrate_paused || now < w->lrate_resume_at)
		return;
	for (int k = 0; k < w->n_lfds; k++)
		if ((w->lrate_paused & (1u << k)) && !w->accept.paused)
			ev_io_set(w->loop, &w->lios[k], EV_READ);
	w->lrate_paused = 0;
}

/* ---- admission: listener and address counts ---- */

/* "1.2.3.4:5" -> "1.2.3.4", "[::1]:5" -> "[::1]" */
static size_t ip_len(const char *addr)
{
	const char *colon = strrchr(addr, ':');
	return colon ? (size_t)(colon - addr) : strlen(addr);
}

static bool ip_take(struct ovl *o, const char *addr)
{
	size_t n = ip_len(addr);
	bool ok = true;
	pthread_mutex_lock(&o->ip_lock);
	struct ovl_ip *e;
	HASH_FIND(hh, o->ips, addr, n, e);
	if (!e) {
		e = hq_calloc(1, sizeof(*e) + n + 1);
		memcpy(e->ip, addr, n);
		HASH_ADD(hh, o->ips, ip[0], n, e);
	}
	if (e->n >= o->max_per_ip)
		ok = false;
	else
		e->n++;
	pthread_mutex_unlock(&o->ip_lock);
	return ok;
}

static void ip_give(struct ovl *o, const char *addr)
{
	size_t n = ip_len(addr);
	pthread_mutex_lock(&o->ip_lock);
	struct ovl_ip *e;
	HASH_FIND(hh, o->ips, addr, n, e);
	if (e && e->n && --e->n == 0) {
		HASH_DEL(o->ips, e);
		hq_free(e);
	}
	pthread_mutex_unlock(&o->ip_lock);
}

/* The address limit for c's (real) address; false: refused (counted, logged). */
static bool admit_ip(struct conn *c)
{
	struct broker *b = c->w->b;
	if (!b->ovl->max_per_ip)
		return true;
	if (!ip_take(b->ovl, c->addr)) {
		ovl_event(b, BRK_OVL_PER_IP, "connection from %s closed: overload.max_connections_per_ip "
			  "(%u) reached", c->addr, b->ovl->max_per_ip);
		return false;
	}
	c->ovl_ip = true;
	return true;
}

bool ovl_conn_admit(struct conn *c)
{
	struct broker *b = c->w->b;
	struct ovl *o = b->ovl;
	if (!o->admit)
		return true;
	struct ovl_listener *l = &o->l[c->lidx];
	const struct conf_listener *L = &b->cfg->listeners[c->lidx];
	if (l->max_conns) {
		uint32_t n = atomic_fetch_add(&l->conns, 1) + 1;
		c->ovl_listener = true;
		if (n > l->max_conns) {
			ovl_event(b, BRK_OVL_LISTENER_FULL, "connection from %s closed: listener %s.%s "
				  "max_connections (%u) reached", c->addr, conf_listener_type_name(L->type),
				  L->name, l->max_conns);
			return false;
		}
	}
	/* behind a PROXY header the socket's address is the balancer's: the
	 * real one is counted once the header is read (ovl_proxy_admit) */
	if (!c->expect_proxy && !admit_ip(c))
		return false;
	if (l->msg_rate > 0 || l->byte_rate > 0)
		rl_conn_init(c, l->msg_rate, l->byte_rate);
	return true;
}

bool ovl_proxy_admit(struct conn *c)
{
	return c->ovl_ip || admit_ip(c);
}

void ovl_conn_release(struct conn *c)
{
	struct ovl *o = c->w->b->ovl;
	if (c->ovl_listener)
		atomic_fetch_sub(&o->l[c->lidx].conns, 1);
	if (c->ovl_ip)
		ip_give(o, c->addr);
	c->ovl_listener = c->ovl_ip = false;
	rl_conn_free(c);
}
