/*
 * arc_writer.c - one writer thread of an archive: its own database
 * connection, batches of up to batch_size rows (or what batch_interval_ms
 * gathered), the spill file's rows first, retries with exponential backoff.
 *
 * A batch is held by its writer until the database took it (committed: the
 * rows count as written, ack = stored publishes are released, spilled rows
 * are deleted from the file) or refused it for good (HQ_EINVAL: counted as
 * failed, dropped). A transient failure (HQ_EAGAIN) keeps the batch and
 * retries it, so rows may reach the database twice: the message id makes the
 * second write a no-op. At stop, a held batch from memory is spilled; one
 * read from the file is still in the file.
 */
#include "archive/arc_int.h"
#include "core/err.h"
#include "core/mem.h"

#include <errno.h>
#include <string.h>
#include <time.h>

static struct timespec abs_mono(int64_t ms_from_now)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms_from_now / 1000;
	ts.tv_nsec += (long)(ms_from_now % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

/* Wait for a batch from memory: batch_size items, or what is there once
 * batch_interval_ms passed since the first one; returns with none after a
 * second of nothing (the caller looks at the spill file again) or at stop. */
static struct archive_item *take_memory(struct archive *a, uint32_t *n)
{
	*n = 0;
	pthread_mutex_lock(&a->lock);
	int64_t deadline = 0;
	for (;;) {
		if (a->stopping)
			break;
		if (a->n >= a->c.batch_size)
			break;
		int64_t now = arc_now_ms();
		if (a->n) {
			if (!deadline)
				deadline = now + a->c.batch_interval_ms;
			if (now >= deadline)
				break;
			struct timespec ts = abs_mono(deadline - now);
			pthread_cond_timedwait(&a->work, &a->lock, &ts);
			continue;
		}
		struct timespec ts = abs_mono(1000);
		if (pthread_cond_timedwait(&a->work, &a->lock, &ts) == ETIMEDOUT && !a->n) {
			pthread_mutex_unlock(&a->lock);
			return NULL;
		}
	}
	struct archive_item *head = NULL;
	if (!a->stopping && a->n) {
		uint32_t k = a->n < a->c.batch_size ? (uint32_t)a->n : a->c.batch_size;
		head = arc_take_locked(a, k);
		*n = k;
		if (a->n)
			pthread_cond_signal(&a->work); /* another writer can take the rest */
	}
	pthread_mutex_unlock(&a->lock);
	return head;
}

/* Sleep the backoff (doubling from retry_min_ms to retry_max_ms); false
 * when the archive is stopping. */
static bool backoff(struct archive *a, uint32_t *delay)
{
	*delay = *delay ? *delay * 2 : a->c.retry_min_ms;
	if (*delay > a->c.retry_max_ms)
		*delay = a->c.retry_max_ms;
	struct timespec ts = abs_mono(*delay);
	pthread_mutex_lock(&a->lock);
	while (!a->stopping && pthread_cond_timedwait(&a->stop_cv, &a->lock, &ts) != ETIMEDOUT)
		;
	bool go = !a->stopping;
	pthread_mutex_unlock(&a->lock);
	return go;
}

static bool stopping(struct archive *a)
{
	pthread_mutex_lock(&a->lock);
	bool s = a->stopping;
	pthread_mutex_unlock(&a->lock);
	return s;
}

void *arc_writer_main(void *arg)
{
	struct archive *a = arg;
	void *db = NULL;
	uint32_t delay = 0;
	struct archive_item *batch = NULL;
	uint32_t n = 0;
	bool from_spill = false;
	struct arc_msg *rows = hq_malloc(a->c.batch_size * sizeof(*rows));
	char err[512];

	for (;;) {
		if (!batch) {
			if (stopping(a))
				break;
			n = 0;
			if (a->spill)
				arc_spill_take(a->spill, a->c.batch_size, &batch, &n);
			from_spill = n > 0;
			if (!batch)
				batch = take_memory(a, &n);
			if (!batch)
				continue;
		}
		if (!db) {
			err[0] = '\0';
			if (a->c.ops->open(&a->db, &db, err, sizeof(err)) != HQ_OK) {
				db = NULL;
				arc_set_state(a, false, err);
				if (!backoff(a, &delay))
					break;
				continue;
			}
		}
		uint32_t i = 0;
		for (struct archive_item *it = batch; it; it = it->next)
			rows[i++] = it->m;
		err[0] = '\0';
		int rc = a->c.ops->write(db, rows, n, err, sizeof(err));
		if (rc == HQ_EAGAIN) {
			a->c.ops->close(db);
			db = NULL;
			arc_set_state(a, false, err);
			if (!backoff(a, &delay))
				break;
			continue;
		}
		delay = 0;
		if (from_spill)
			arc_spill_del(a->spill, batch);
		if (rc == HQ_OK) {
			arc_set_state(a, true, NULL);
			atomic_fetch_add_explicit(&a->written, n, memory_order_relaxed);
			arc_ack_items(a, batch, true);
		} else {
			atomic_fetch_add_explicit(&a->failed, n, memory_order_relaxed);
			log_error("archive %s: %u messages refused by the database, dropped: %s",
				  a->c.name, n, err);
			arc_ack_items(a, batch, false);
		}
		arc_free_items(batch);
		batch = NULL;
	}
	if (batch && from_spill)
		arc_free_items(batch); /* still in the file: read again at the next start */
	else if (batch)
		arc_spill_items(a, batch, n, "stopping");
	if (db)
		a->c.ops->close(db);
	hq_free(rows);
	return NULL;
}
