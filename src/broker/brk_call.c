/*
 * brk_call.c - run a function on a worker's thread for another thread (the
 * management API's HTTP threads) and wait for it, bounded.
 *
 * Why: a worker owns its sessions and connections (brk_int.h); another
 * thread reading their plain fields would race the owner. So a query posts
 * a WQ_CALL entry to the worker's inbox and the worker runs it between two
 * events, where its state is consistent.
 *
 * A call (struct brk_call) is shared by the caller and the inbox entry: two
 * references, the last one frees it, under the call's mutex. The caller
 * waits at most BRK_API_WAIT_MS; if it gives up while the call is still
 * pending, it marks it abandoned and the worker skips it (the caller's arg
 * may be gone by then); if the call is running, the caller waits for its end
 * (a query runs for a bounded time: it only reads what the worker owns).
 * While the node stops, nothing is posted (HQ_ECLOSED); an entry left in an
 * inbox is either run by the shutdown drain (the main thread acting as the
 * worker) or cancelled by broker_free: the caller then answers "stopping".
 */
#include "broker/brk_int.h"
#include "broker/broker_api.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/mem.h"

#include <errno.h>
#include <time.h>

enum { CALL_PENDING = 0, CALL_RUNNING, CALL_DONE, CALL_CANCELLED, CALL_ABANDONED };

struct brk_call {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int state;
	int refs;                 /* under mu */
	brk_call_fn fn;
	void *arg;
};

static void call_unref_locked(struct brk_call *c)
{
	bool last = --c->refs == 0;
	pthread_mutex_unlock(&c->mu);
	if (last) {
		pthread_mutex_destroy(&c->mu);
		pthread_cond_destroy(&c->cv);
		hq_free(c);
	}
}

void brk_call_run(struct worker *w, struct brk_call *c)
{
	WK_ASSERT_OWNER(w);
	pthread_mutex_lock(&c->mu);
	if (c->state == CALL_PENDING) {
		c->state = CALL_RUNNING;
		pthread_mutex_unlock(&c->mu);
		c->fn(w, c->arg);
		pthread_mutex_lock(&c->mu);
		c->state = CALL_DONE;
		pthread_cond_broadcast(&c->cv);
	}
	call_unref_locked(c);
}

void brk_call_cancel(struct brk_call *c)
{
	pthread_mutex_lock(&c->mu);
	if (c->state == CALL_PENDING) {
		c->state = CALL_CANCELLED;
		pthread_cond_broadcast(&c->cv);
	}
	call_unref_locked(c);
}

static struct brk_call *call_post(struct broker *b, struct worker *w, brk_call_fn fn, void *arg)
{
	struct brk_call *c = hq_calloc(1, sizeof(*c));
	pthread_mutex_init(&c->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cv, &ca);
	pthread_condattr_destroy(&ca);
	c->refs = 2; /* the caller's and the inbox entry's */
	c->fn = fn;
	c->arg = arg;
	struct wq_entry e = { .kind = WQ_CALL, .u.call = c };
	(void)b;
	wk_inbox_append(w, &e, 1);
	return c;
}

/* Wait for c until deadline (monotonic ms); drops the caller's reference. */
static int call_wait(struct brk_call *c, int64_t deadline)
{
	struct timespec ts = { .tv_sec = deadline / 1000, .tv_nsec = (deadline % 1000) * 1000000L };
	pthread_mutex_lock(&c->mu);
	while (c->state == CALL_PENDING || c->state == CALL_RUNNING) {
		if (c->state == CALL_PENDING &&
		    pthread_cond_timedwait(&c->cv, &c->mu, &ts) == ETIMEDOUT &&
		    c->state == CALL_PENDING) {
			c->state = CALL_ABANDONED; /* the worker will skip it */
			break;
		}
		if (c->state == CALL_RUNNING) /* it ends soon: arg stays valid until then */
			pthread_cond_wait(&c->cv, &c->mu);
	}
	int rc = c->state == CALL_DONE ? HQ_OK : c->state == CALL_CANCELLED ? HQ_ECLOSED : HQ_EIO;
	call_unref_locked(c);
	return rc;
}

static bool running(struct broker *b)
{
	return atomic_load(&b->ready) && !atomic_load(&b->stopping);
}

int brk_call_one(struct broker *b, struct worker *w, brk_call_fn fn, void *arg)
{
	if (!running(b))
		return HQ_ECLOSED;
	struct brk_call *c = call_post(b, w, fn, arg);
	return call_wait(c, clock_mono_ms() + BRK_API_WAIT_MS);
}

int brk_call_all(struct broker *b, brk_call_fn fn, void *arg)
{
	if (!running(b))
		return HQ_ECLOSED;
	struct brk_call **v = hq_calloc((size_t)b->n_workers, sizeof(*v));
	for (int i = 0; i < b->n_workers; i++)
		v[i] = call_post(b, &b->workers[i], fn, arg);
	int64_t deadline = clock_mono_ms() + BRK_API_WAIT_MS;
	int rc = HQ_OK;
	for (int i = 0; i < b->n_workers; i++) {
		int r = call_wait(v[i], deadline); /* every call waited for: arg is shared */
		if (r != HQ_OK && rc == HQ_OK)
			rc = r;
	}
	hq_free(v);
	return rc;
}
