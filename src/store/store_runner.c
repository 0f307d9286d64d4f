/*
 * store_runner.c - the store thread: applies batches in submission order,
 * off the workers, and reports each one back through a callback.
 *
 * Producers (workers) append to a FIFO under one mutex and signal a condition
 * variable. The thread takes the whole FIFO at once (a group), applies every
 * batch in order, makes the group durable with one ops->sync (group commit),
 * then calls done() for each batch in the same order. A failed sync fails
 * every batch of the group that had been applied: none of them may be
 * acknowledged. Stopping applies and completes everything already submitted.
 */
#include "store/store.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

#include <pthread.h>
#include <stdatomic.h>

struct store_runner {
	struct store *st;             /* borrowed */
	store_done_fn done;
	void *arg;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct store_batch *head, *tail;  /* under lock */
	bool stopping;                    /* under lock */
	atomic_bool healthy;
	_Atomic uint64_t completed;
};

static void set_health(struct store_runner *r, bool ok, int rc)
{
	bool was = atomic_exchange(&r->healthy, ok);
	if (was && !ok)
		log_error("store %s: write failed (%s): nothing depending on it is acknowledged",
			  r->st->ops->name, hq_strerror(rc));
	else if (!was && ok)
		log_notice("store %s: writes succeed again", r->st->ops->name);
}

static void run_group(struct store_runner *r, struct store_batch *group)
{
	const struct store_ops *ops = r->st->ops;
	int last_err = HQ_OK;
	bool any_ok = false;
	for (struct store_batch *b = group; b; b = b->next) {
		b->status = ops->apply(r->st, b);
		if (b->status == HQ_OK)
			any_ok = true;
		else
			last_err = b->status;
	}
	if (any_ok && ops->sync) {
		int rc = ops->sync(r->st);
		if (rc != HQ_OK) {
			last_err = rc;
			for (struct store_batch *b = group; b; b = b->next)
				if (b->status == HQ_OK)
					b->status = rc;
		}
	}
	/* the flag reflects the group's end state: a later success heals it */
	bool ok = true;
	unsigned failed = 0;
	for (struct store_batch *b = group; b; b = b->next) {
		ok = b->status == HQ_OK;
		failed += !ok;
	}
	if (failed && ok)
		log_warning("store %s: %u batches failed (%s)", ops->name, failed, hq_strerror(last_err));
	set_health(r, ok, last_err);
	while (group) {
		struct store_batch *next = group->next;
		group->next = NULL;
		atomic_fetch_add_explicit(&r->completed, 1, memory_order_relaxed);
		r->done(r->arg, group);   /* ownership passes on */
		group = next;
	}
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
	atomic_init(&r->healthy, true);
	atomic_init(&r->completed, 0);
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
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
