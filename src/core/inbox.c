/* inbox.c - the mutex-swapped hand-off of inbox.h. */
#include "core/inbox.h"
#include "core/mem.h"

#include <string.h>

void inbox_init(struct inbox *q, size_t esize)
{
	memset(q, 0, sizeof(*q));
	pthread_mutex_init(&q->lock, NULL);
	q->esize = esize;
	atomic_init(&q->wake_pending, false);
}

void inbox_destroy(struct inbox *q)
{
	hq_free(q->cur.v);
	hq_free(q->spare.v);
	q->cur = q->spare = (struct inbox_vec){ 0 };
	pthread_mutex_destroy(&q->lock);
}

bool inbox_append(struct inbox *q, const void *v, uint32_t n)
{
	pthread_mutex_lock(&q->lock);
	struct inbox_vec *in = &q->cur;
	if (in->len + n > in->cap) {
		while (in->len + n > in->cap)
			in->cap = in->cap ? in->cap * 2 : 64;
		in->v = hq_realloc(in->v, in->cap * q->esize);
	}
	memcpy((char *)in->v + (size_t)in->len * q->esize, v, (size_t)n * q->esize);
	in->len += n;
	pthread_mutex_unlock(&q->lock);
	return inbox_want_wake(q);
}

bool inbox_want_wake(struct inbox *q)
{
	/* one wakeup outstanding at most */
	return !atomic_exchange(&q->wake_pending, true);
}

struct inbox_vec inbox_take(struct inbox *q)
{
	/* cleared before taking the batch: a producer appending after this
	 * point asks for a wakeup again */
	atomic_store(&q->wake_pending, false);
	pthread_mutex_lock(&q->lock);
	struct inbox_vec batch = q->cur;
	q->cur = q->spare;
	q->spare = (struct inbox_vec){ 0 };
	pthread_mutex_unlock(&q->lock);
	return batch;
}

void inbox_give_back(struct inbox *q, struct inbox_vec batch)
{
	batch.len = 0;
	pthread_mutex_lock(&q->lock);
	if (!q->spare.v)
		q->spare = batch;
	else
		hq_free(batch.v); /* taken twice without giving back: keep one */
	pthread_mutex_unlock(&q->lock);
}

uint32_t inbox_pending(struct inbox *q)
{
	pthread_mutex_lock(&q->lock);
	uint32_t n = q->cur.len;
	pthread_mutex_unlock(&q->lock);
	return n;
}
