/*
 * store_runner.c - the store thread: applies batches in submission order,
 * off the workers, and reports each one back through a callback.
 *
 * Producers (workers) append to a FIFO under one mutex and signal a condition
 * variable. The thread takes the whole FIFO at once (a group), applies every
 * batch in order, makes what it applied durable with one ops->sync (group
 * commit), then calls done() for each batch in the same order. A failed sync
 * fails every batch it covered: none of them may be acknowledged.
 *
 * Transient errors (HQ_EIO from apply or sync: backend down, connection
 * lost) do not fail batches: the runner completes what it applied before,
 * marks itself unhealthy and retries the same batch with a backoff of 100 ms
 * doubling to 2 s, holding every later batch behind it (order is kept,
 * nothing is lost, nothing is acknowledged meanwhile). Any other error fails
 * that batch only. Stopping applies and completes everything submitted; if
 * the backend still fails STOP_GRACE_MS after the stop request, the rest
 * completes failed (HQ_EIO) so that a stop never hangs.
 */
#include "store/store.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 2000
#define STOP_GRACE_MS 5000
#define REMIND_MS 10000   /* while down: one reminder log line per 10 s, no flood */

struct store_runner {
	struct store *st;             /* borrowed */
	store_done_fn done;
	void *arg;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;              /* CLOCK_MONOTONIC, for the backoff waits */
	struct store_batch *head, *tail;  /* under lock */
	bool stopping;                    /* under lock */
	int64_t stop_at;                  /* under lock: monotonic ms of the stop request */
	bool gave_up;                     /* runner thread: stopping, and the grace is over */
	uint64_t submitted;               /* under lock: batches ever submitted */
	int64_t reminded_at;              /* runner thread: monotonic ms of the last down log line */
	/* test hook (HQ_TEST_STORE_KILL_AFTER_RXID set): the process is
	 * killed right after the first batch holding an incoming QoS 2 id is
	 * durable, before any later batch is applied: the crash between the
	 * publisher's batch and the other workers' that exactly once must
	 * survive (tests/integration/test_38) */
	bool kill_after_rxid;
	/* test hook (HQ_TEST_STORE_READ_DELAY_MS=n): every read waits n ms
	 * before it runs, holding open the window in which an adoption (or a
	 * CONNECT's read) is in flight, so that a stop can land in it
	 * (tests/integration/test_37_store_redis_adopt_stop.py) */
	int read_delay_ms;
	atomic_bool healthy;
	_Atomic int64_t down_since;       /* monotonic ms of the first failure of this episode; 0 = up */
	_Atomic uint64_t completed, retries, failed;
	_Atomic uint64_t cancelled;       /* events dropped before applying (store_cancel.c) */
	/* group commit times (store_runner_latency); runner thread writes */
	_Atomic uint64_t lat[STORE_LAT_N + 1], lat_sum_us;
};

const int64_t store_lat_bounds_us[STORE_LAT_N] = {
	100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 1000000, 10000000,
};

/* One writer (the runner thread): a relaxed load and store, no locked add. */
static void lat_record(struct store_runner *r, int64_t us)
{
	int i = 0;
	while (i < STORE_LAT_N && us > store_lat_bounds_us[i])
		i++;
	atomic_store_explicit(&r->lat[i], atomic_load_explicit(&r->lat[i], memory_order_relaxed) + 1,
			      memory_order_relaxed);
	atomic_store_explicit(&r->lat_sum_us,
			      atomic_load_explicit(&r->lat_sum_us, memory_order_relaxed) + (uint64_t)us,
			      memory_order_relaxed);
}

void store_runner_latency(const struct store_runner *r, uint64_t counts[STORE_LAT_N + 1],
			  uint64_t *sum_us)
{
	struct store_runner *m = (struct store_runner *)r;
	for (int i = 0; i <= STORE_LAT_N; i++)
		counts[i] = atomic_load_explicit(&m->lat[i], memory_order_relaxed);
	*sum_us = atomic_load_explicit(&m->lat_sum_us, memory_order_relaxed);
}

static const char *describe(struct store_runner *r)
{
	const char *d = r->st->ops->describe ? r->st->ops->describe(r->st) : NULL;
	return d ? d : "";
}

/* Batches submitted and not completed yet: those the outage held back. */
static uint64_t waiting(struct store_runner *r)
{
	pthread_mutex_lock(&r->lock);
	uint64_t n = r->submitted;
	pthread_mutex_unlock(&r->lock);
	uint64_t done = atomic_load_explicit(&r->completed, memory_order_relaxed);
	return n > done ? n - done : 0;
}

/* The health flag and its log lines: one when the store goes down (with the
 * backend's own account: which server, why), one when it is back, and in
 * between at most one reminder per REMIND_MS, however fast the retries. */
static void set_health(struct store_runner *r, bool ok, int rc)
{
	const char *name = r->st->ops->name;
	bool was = atomic_exchange(&r->healthy, ok);
	int64_t now = clock_mono_ms();
	if (was && !ok) {
		atomic_store(&r->down_since, now > 0 ? now : 1);
		r->reminded_at = now;
		if (rc == HQ_EIO)
			log_error("store %s: down (%s): %s: nothing depending on it is acknowledged, "
				  "retrying", name, hq_strerror(rc), describe(r));
		else
			log_error("store %s: a write failed (%s): %s: nothing depending on it was "
				  "acknowledged", name, hq_strerror(rc), describe(r));
	} else if (!was && ok) {
		int64_t since = atomic_exchange(&r->down_since, 0);
		log_notice("store %s: back after %.1f s, %llu batches waited: %s", name,
			   (double)(now - since) / 1000.0, (unsigned long long)waiting(r), describe(r));
	} else if (!ok && now - r->reminded_at >= REMIND_MS) {
		r->reminded_at = now;
		log_warning("store %s: still down after %lld s (%s): %s: %llu batches waiting", name,
			    (long long)((now - atomic_load(&r->down_since)) / 1000), hq_strerror(rc),
			    describe(r), (unsigned long long)waiting(r));
	}
}

/* Wait ms, or less when a stop's grace ends first. */
static void backoff_wait(struct store_runner *r, int ms)
{
	int64_t until = clock_mono_ms() + ms;
	pthread_mutex_lock(&r->lock);
	for (;;) {
		int64_t end = until;
		if (r->stopping && r->stop_at + STOP_GRACE_MS < end)
			end = r->stop_at + STOP_GRACE_MS;
		if (clock_mono_ms() >= end)
			break;
		struct timespec ts = { .tv_sec = end / 1000, .tv_nsec = (end % 1000) * 1000000 };
		pthread_cond_timedwait(&r->cond, &r->lock, &ts); /* a submit or stop wakes it early */
	}
	pthread_mutex_unlock(&r->lock);
}

static bool grace_over(struct store_runner *r)
{
	pthread_mutex_lock(&r->lock);
	bool over = r->stopping && clock_mono_ms() >= r->stop_at + STOP_GRACE_MS;
	pthread_mutex_unlock(&r->lock);
	return over;
}

static int read_cb(void *ctx, const struct store_ev *ev)
{
	store_batch_add(ctx, ev);
	return HQ_OK;
}

/* A batch's work: its writes, or the read it asks for (a read sees every
 * write submitted before it). A read of nothing is not an error. */
static int run_one(struct store_runner *r, struct store_batch *b)
{
	const struct store_ops *ops = r->st->ops;
	if (!b->read)
		return ops->apply(r->st, b);
	b->n_ev = 0; /* a retry starts over */
	if (r->read_delay_ms) {
		struct timespec ts = { .tv_sec = r->read_delay_ms / 1000,
				       .tv_nsec = (long)(r->read_delay_ms % 1000) * 1000000 };
		nanosleep(&ts, NULL);
	}
	int rc = HQ_EINVAL;
	if (b->read == STORE_READ_SESSION && ops->load_session)
		rc = ops->load_session(r->st, b->read_key, read_cb, b);
	else if (b->read == STORE_READ_OWNED && ops->list_sessions)
		rc = ops->list_sessions(r->st, b->read_key, read_cb, b);
	if (rc == HQ_ENOTFOUND) {
		b->n_ev = 0;
		rc = HQ_OK;
	}
	return rc;
}

/* apply(b) (or sync when b is NULL) until it is not transient; first_rc is
 * the first attempt's result. HQ_EIO once the stop grace is over. */
static int retry(struct store_runner *r, struct store_batch *b, int first_rc)
{
	const struct store_ops *ops = r->st->ops;
	int rc = first_rc, backoff = RETRY_MIN_MS;
	while (rc == HQ_EIO && !r->gave_up) {
		set_health(r, false, rc);
		if (grace_over(r)) {
			r->gave_up = true;
			log_error("store %s: still failing %d s after the stop request: what is left "
				  "completes failed", ops->name, STOP_GRACE_MS / 1000);
			break;
		}
		atomic_fetch_add_explicit(&r->retries, 1, memory_order_relaxed);
		backoff_wait(r, backoff);
		backoff = backoff * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : backoff * 2;
		rc = b ? run_one(r, b) : ops->sync(r->st);
	}
	return rc;
}

/* Make the applied batches of *pend durable, then complete them in order. */
static void finish(struct store_runner *r, struct store_batch **pend)
{
	const struct store_ops *ops = r->st->ops;
	bool any_ok = false;
	for (struct store_batch *b = *pend; b; b = b->next)
		any_ok |= b->status == HQ_OK;
	int last_err = HQ_OK;
	if (any_ok && ops->sync) {
		int rc = r->gave_up ? HQ_EIO : ops->sync(r->st);
		if (rc == HQ_EIO)
			rc = retry(r, NULL, rc);
		if (rc != HQ_OK)
			for (struct store_batch *b = *pend; b; b = b->next)
				if (b->status == HQ_OK)
					b->status = rc;
	}
	/* the flag reflects the end state: a later success heals it */
	bool ok = true;
	unsigned failed = 0;
	for (struct store_batch *b = *pend; b; b = b->next) {
		ok = b->status == HQ_OK;
		if (!ok) {
			failed++;
			last_err = b->status;
		}
	}
	if (!*pend)
		return;
	if (failed && ok)
		log_warning("store %s: %u batches failed (%s)", ops->name, failed, hq_strerror(last_err));
	set_health(r, ok, last_err);
	atomic_fetch_add_explicit(&r->failed, failed, memory_order_relaxed);
	struct store_batch *b = *pend;
	*pend = NULL;
	while (b) {
		struct store_batch *next = b->next;
		b->next = NULL;
		atomic_fetch_add_explicit(&r->completed, 1, memory_order_relaxed);
		r->done(r->arg, b);   /* ownership passes on */
		b = next;
	}
}

static bool has_rxid(const struct store_batch *b)
{
	for (uint32_t i = 0; i < b->n_ev; i++)
		if (b->ev[i].kind == STORE_EV_RXID_ADD)
			return true;
	return false;
}

/* The test hook: b alone, durable, then SIGKILL. */
static void kill_after(struct store_runner *r, struct store_batch **pend, struct store_batch *b)
{
	finish(r, pend);
	const struct store_ops *ops = r->st->ops;
	if (ops->apply(r->st, b) == HQ_OK && (!ops->sync || ops->sync(r->st) == HQ_OK)) {
		log_warning("store: HQ_TEST_STORE_KILL_AFTER_RXID: killed after a QoS 2 id was stored");
		raise(SIGKILL);
	}
}

static void run_group(struct store_runner *r, struct store_batch *group)
{
	int64_t t0 = clock_mono_us();
	atomic_fetch_add_explicit(&r->cancelled, store_cancel_group(group), memory_order_relaxed);
	struct store_batch *pend = NULL, **tail = &pend; /* applied, not yet synced */
	while (group) {
		struct store_batch *b = group;
		group = b->next;
		b->next = NULL;
		if (r->kill_after_rxid && !b->read && has_rxid(b)) {
			kill_after(r, &pend, b);
			tail = &pend;
		}
		int rc = r->gave_up ? HQ_EIO : run_one(r, b);
		if (rc == HQ_EIO && !r->gave_up) {
			/* what was applied before need not wait for the backend's return */
			finish(r, &pend);
			tail = &pend;
			rc = retry(r, b, rc);
		}
		b->status = rc;
		*tail = b;
		tail = &b->next;
	}
	finish(r, &pend);
	lat_record(r, clock_mono_us() - t0);
}

static void *runner_main(void *arg)
{
	struct store_runner *r = arg;
	pthread_setname_np(pthread_self(), "hamqtt-store");
	pthread_mutex_lock(&r->lock);
	for (;;) {
		while (!r->head && !r->stopping)
			pthread_cond_wait(&r->cond, &r->lock);
		if (!r->head)
			break; /* stopping, and everything submitted is done */
		struct store_batch *group = r->head;
		r->head = r->tail = NULL;
		pthread_mutex_unlock(&r->lock);
		run_group(r, group);
		pthread_mutex_lock(&r->lock);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

int store_runner_start(struct store *st, store_done_fn done, void *arg, struct store_runner **out)
{
	struct store_runner *r = hq_calloc(1, sizeof(*r));
	r->st = st;
	r->done = done;
	r->arg = arg;
	r->kill_after_rxid = getenv("HQ_TEST_STORE_KILL_AFTER_RXID") != NULL;
	const char *delay = getenv("HQ_TEST_STORE_READ_DELAY_MS");
	r->read_delay_ms = delay ? atoi(delay) : 0;
	if (r->read_delay_ms < 0 || r->read_delay_ms > 60000)
		r->read_delay_ms = 0; /* a hook, not a setting: nonsense is ignored */
	atomic_init(&r->healthy, true);
	atomic_init(&r->down_since, 0);
	atomic_init(&r->completed, 0);
	atomic_init(&r->retries, 0);
	atomic_init(&r->failed, 0);
	pthread_mutex_init(&r->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&r->thread, NULL, runner_main, r) != 0) {
		pthread_cond_destroy(&r->cond);
		pthread_mutex_destroy(&r->lock);
		hq_free(r);
		*out = NULL;
		return HQ_EIO;
	}
	*out = r;
	return HQ_OK;
}

void store_runner_submit(struct store_runner *r, struct store_batch *b)
{
	b->next = NULL;
	pthread_mutex_lock(&r->lock);
	r->submitted++;
	if (r->tail)
		r->tail->next = b;
	else
		r->head = b;
	r->tail = b;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

void store_runner_stop(struct store_runner *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	r->stopping = true;
	r->stop_at = clock_mono_ms();
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
	pthread_join(r->thread, NULL);
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
	hq_free(r);
}

bool store_runner_healthy(const struct store_runner *r)
{
	return atomic_load(&((struct store_runner *)r)->healthy);
}

uint64_t store_runner_completed(const struct store_runner *r)
{
	return atomic_load_explicit(&((struct store_runner *)r)->completed, memory_order_relaxed);
}

void store_runner_stats(const struct store_runner *r, uint64_t *retries, uint64_t *failed)
{
	struct store_runner *m = (struct store_runner *)r;
	*retries = atomic_load_explicit(&m->retries, memory_order_relaxed);
	*failed = atomic_load_explicit(&m->failed, memory_order_relaxed);
}

int64_t store_runner_down_since(const struct store_runner *r)
{
	return atomic_load(&((struct store_runner *)r)->down_since);
}
