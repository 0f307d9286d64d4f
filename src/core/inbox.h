/*
 * inbox.h - a multi-producer, single-consumer hand-off of fixed-size entries.
 *
 * Producers append whole batches under the mutex (one lock per batch, not per
 * entry). The consumer swaps the filled vector for a spare one under the same
 * mutex and runs the entries without holding it, then gives the vector back
 * as the next spare: in steady state nothing is allocated.
 *
 * Wakeups: inbox_append returns true when the consumer must be woken (its
 * eventfd written); at most one wakeup is outstanding however many batches
 * arrive meanwhile. The consumer clears the flag before it takes the batch,
 * so an append after that point asks for a new wakeup and nothing is left
 * unseen.
 *
 * Used by the worker inboxes (broker/brk_worker.c) and the cluster thread's
 * request inbox (cluster/clu_node.c). What an entry holds is the user's
 * business: the inbox copies bytes and never looks inside.
 */
#ifndef HQ_CORE_INBOX_H
#define HQ_CORE_INBOX_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct inbox_vec {
	void *v;                  /* len entries of esize bytes */
	uint32_t len, cap;
};

struct inbox {
	pthread_mutex_t lock;     /* guards cur and spare */
	struct inbox_vec cur;     /* filled by producers */
	struct inbox_vec spare;   /* the consumer's last batch, emptied */
	size_t esize;
	atomic_bool wake_pending; /* a wakeup was asked for and not yet taken */
};

void inbox_init(struct inbox *q, size_t esize);
/* Frees the storage; entries still inside are not released (drain first). */
void inbox_destroy(struct inbox *q);

/* Append n entries (copied). True: the caller must wake the consumer. Any thread. */
bool inbox_append(struct inbox *q, const void *v, uint32_t n);
/* Ask for a wakeup without appending (e.g. work queued elsewhere under the
 * caller's own lock). True: the caller must wake the consumer. */
bool inbox_want_wake(struct inbox *q);

/* Consumer: is a wakeup pending (the after-wait check)? */
static inline bool inbox_wake_pending(struct inbox *q)
{
	return atomic_load(&q->wake_pending);
}
/* Consumer: clear the wakeup and take everything appended so far. The batch
 * is the consumer's until inbox_give_back. */
struct inbox_vec inbox_take(struct inbox *q);
/* Consumer: hand an emptied batch back as the next spare. */
void inbox_give_back(struct inbox *q, struct inbox_vec batch);
/* Entries waiting (under the lock; any thread). */
uint32_t inbox_pending(struct inbox *q);

static inline void *inbox_at(const struct inbox_vec *b, size_t esize, uint32_t i)
{
	return (char *)b->v + (size_t)i * esize;
}

#endif
