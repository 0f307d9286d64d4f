/*
 * arc_core.c - the set of archives: start/stop, the bounded memory buffer
 * fed by the workers (archive_offer), the spiller thread, items, acks,
 * counters and the state lines.
 *
 * The buffer: workers append under the archive's mutex once per loop turn.
 * Up to buffer_messages items wait in memory; beyond that the spiller moves
 * the oldest ones into the spill file (fsync'd), so memory keeps the newest
 * and the file the oldest, and the writers replay the file first: arrival
 * order is kept. Without a spill file (spill_max_bytes = 0), or with a full
 * one, an item that finds the buffer full is dropped (counted; an ack =
 * stored publish is refused instead, archive_full). The queue may exceed
 * the bound by up to another buffer_messages while the spiller catches up;
 * beyond that, drops too: a worker never waits for a disk.
 */
#include "archive/arc_int.h"
#include "broker/topic.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/fs.h"
#include "core/mem.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#define STILL_DOWN_MS 30000

int64_t arc_now_ms(void)
{
	return clock_mono_ms();
}

uint32_t archive_count(const struct archive_set *s)
{
	return s ? s->n : 0;
}

const char *archive_name(const struct archive_set *s, uint32_t i)
{
	return s->v[i].c.name;
}

uint32_t archive_match(const struct archive_set *s, const char *topic, size_t len)
{
	if (len >= 5 && !memcmp(topic, "$SYS/", 5))
		return 0;
	uint32_t mask = 0;
	for (uint32_t i = 0; i < s->n; i++) {
		const struct arc_conf *c = &s->v[i].c;
		for (uint32_t k = 0; k < c->n_filters; k++)
			if (topic_matches(c->filters[k], strlen(c->filters[k]), topic, len)) {
				mask |= 1u << i;
				break;
			}
	}
	return mask;
}

uint32_t archive_ack_mask(const struct archive_set *s)
{
	uint32_t mask = 0;
	for (uint32_t i = 0; i < s->n; i++)
		if (s->v[i].c.ack_stored)
			mask |= 1u << i;
	return mask;
}

bool archive_full(const struct archive_set *s, uint32_t i)
{
	return atomic_load_explicit(&s->v[i].full, memory_order_relaxed);
}

struct archive_item *archive_item_new(const struct arc_msg *m)
{
	size_t nl = strlen(m->node), ul = m->username ? m->username_len : 0;
	size_t size = sizeof(struct archive_item) + m->topic_len + 1 + m->payload_len +
		      m->clientid_len + 1 + ul + 1 + nl + 1;
	struct archive_item *it = hq_malloc(size);
	memset(it, 0, sizeof(*it));
	it->size = (uint32_t)size;
	it->m = *m;
	char *p = (char *)(it + 1);
	memcpy(p, m->topic, m->topic_len);
	p[m->topic_len] = '\0';
	it->m.topic = p;
	p += m->topic_len + 1;
	if (m->payload_len)
		memcpy(p, m->payload, m->payload_len);
	it->m.payload = (const uint8_t *)p;
	p += m->payload_len;
	if (m->clientid_len)
		memcpy(p, m->clientid, m->clientid_len);
	p[m->clientid_len] = '\0';
	it->m.clientid = p;
	p += m->clientid_len + 1;
	if (m->username) {
		memcpy(p, m->username, ul);
		p[ul] = '\0';
		it->m.username = p;
	}
	p += ul + 1;
	memcpy(p, m->node, nl + 1);
	it->m.node = p;
	return it;
}

void archive_item_free(struct archive_item *it)
{
	hq_free(it);
}

void arc_free_items(struct archive_item *head)
{
	while (head) {
		struct archive_item *next = head->next;
		hq_free(head);
		head = next;
	}
}

void arc_ack_items(struct archive *a, struct archive_item *head, bool stored)
{
	for (struct archive_item *it = head; it; it = it->next)
		if (it->token)
			a->set->ack(a->set->ack_ctx, it->worker, it->token, stored);
}

/* How many items memory may hold: twice the bound while the spiller can
 * move the excess to a file with room, the bound otherwise. */
static uint64_t queue_cap(struct archive *a)
{
	bool room = a->spill && !atomic_load_explicit(&a->spill_full, memory_order_relaxed);
	return a->c.buffer_messages * (room ? 2 : 1);
}

/* archive_full: an ack = stored publish would find no room. */
static void update_full(struct archive *a)
{
	atomic_store_explicit(&a->full, a->n >= queue_cap(a), memory_order_relaxed);
}

struct archive_item *arc_take_locked(struct archive *a, uint32_t k)
{
	assert(k >= 1 && k <= a->n);
	struct archive_item *head = a->head, *last = head;
	for (uint32_t j = 1; j < k; j++)
		last = last->next;
	a->head = last->next;
	if (!a->head)
		a->tail = NULL;
	last->next = NULL;
	a->n -= k;
	atomic_store_explicit(&a->buffered, a->n, memory_order_relaxed);
	update_full(a);
	return head;
}

void arc_set_state(struct archive *a, bool up, const char *why)
{
	bool was = atomic_exchange_explicit(&a->up, up, memory_order_relaxed);
	if (up) {
		atomic_store_explicit(&a->down_since, 0, memory_order_relaxed);
		if (!was)
			log_notice("archive %s: database %s:%u reachable, writing", a->c.name,
				   a->c.host, a->c.port);
		return;
	}
	int64_t zero = 0, now = arc_now_ms();
	atomic_compare_exchange_strong(&a->down_since, &zero, now);
	/* the change, then a reminder every STILL_DOWN_MS, not every retry */
	int64_t last = atomic_load_explicit(&a->down_logged, memory_order_relaxed);
	if ((was || now - last >= STILL_DOWN_MS) &&
	    atomic_compare_exchange_strong(&a->down_logged, &last, now))
		log_warning("archive %s: database %s:%u %s: %s (buffering, retrying)", a->c.name,
			    a->c.host, a->c.port, was ? "down" : "still down", why);
}

void arc_spill_items(struct archive *a, struct archive_item *head, uint32_t n, const char *why)
{
	if (!head)
		return;
	char err[256] = "";
	int rc = a->spill ? arc_spill_put(a->spill, head, n, err, sizeof(err)) : HQ_ENOTFOUND;
	atomic_store_explicit(&a->spill_full, rc == HQ_ELIMIT, memory_order_relaxed);
	if (rc == HQ_OK) {
		atomic_fetch_add_explicit(&a->spilled, n, memory_order_relaxed);
		arc_ack_items(a, head, true);
	} else {
		atomic_fetch_add_explicit(&a->dropped, n, memory_order_relaxed);
		uint64_t skipped = 0;
		if (log_rl_take(&a->rl, arc_now_ms(), &skipped))
			log_error("archive %s: %u messages dropped (%s): %s", a->c.name, n, why,
				  rc == HQ_ELIMIT ? "the spill file is full (spill_max_bytes)" :
				  rc == HQ_ENOTFOUND ? "no spill file (spill_max_bytes = 0)" : err);
		arc_ack_items(a, head, false);
	}
	arc_free_items(head);
}

void archive_offer(struct archive_set *s, uint32_t i, struct archive_item *head,
		   struct archive_item *tail, uint32_t n)
{
	struct archive *a = &s->v[i];
	pthread_mutex_lock(&a->lock);
	uint64_t cap = queue_cap(a);
	struct archive_item *drop = NULL;
	uint32_t n_drop = 0;
	if (a->stopping || a->n >= cap) {
		drop = head;
		n_drop = n;
	} else {
		/* take what fits, drop the rest (newest) */
		uint64_t room = cap - a->n;
		if (room < n) {
			struct archive_item *last = head;
			for (uint64_t k = 1; k < room; k++)
				last = last->next;
			drop = last->next;
			n_drop = n - (uint32_t)room;
			last->next = NULL;
			tail = last;
			n = (uint32_t)room;
		}
		if (a->tail)
			a->tail->next = head;
		else
			a->head = head;
		a->tail = tail;
		a->n += n;
		atomic_store_explicit(&a->buffered, a->n, memory_order_relaxed);
		update_full(a);
		pthread_cond_signal(&a->work);
		if (a->spill && a->n > a->c.buffer_messages)
			pthread_cond_signal(&a->spill_cv);
	}
	pthread_mutex_unlock(&a->lock);
	if (drop) {
		atomic_fetch_add_explicit(&a->dropped, n_drop, memory_order_relaxed);
		uint64_t skipped = 0;
		if (log_rl_take(&a->rl, arc_now_ms(), &skipped))
			log_error("archive %s: %u messages dropped: the buffer is full "
				  "(buffer_messages %llu%s)", a->c.name, n_drop,
				  (unsigned long long)a->c.buffer_messages,
				  a->spill ? ", the spill file behind" : ", no spill file");
		arc_ack_items(a, drop, false);
		arc_free_items(drop);
	}
}

/* The spiller: the oldest items beyond buffer_messages go to the file. */
static void *spiller_main(void *arg)
{
	struct archive *a = arg;
	pthread_mutex_lock(&a->lock);
	for (;;) {
		while (!a->stopping && a->n <= a->c.buffer_messages)
			pthread_cond_wait(&a->spill_cv, &a->lock);
		if (a->stopping)
			break;
		uint64_t over = a->n - a->c.buffer_messages;
		uint32_t k = over > a->c.batch_size ? a->c.batch_size : (uint32_t)over;
		struct archive_item *head = arc_take_locked(a, k);
		pthread_mutex_unlock(&a->lock);
		arc_spill_items(a, head, k, "buffer full");
		pthread_mutex_lock(&a->lock);
	}
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

static void db_view(struct archive *a)
{
	struct arc_conf *c = &a->c;
	a->db = (struct arc_db){
		.name = c->name, .host = c->host, .port = c->port, .database = c->database,
		.username = c->username, .password = c->password, .tls = c->tls,
		.tls_cafile = c->tls_cafile, .table = c->table, .insert = a->tmpl,
		.connect_timeout_s = c->connect_timeout_s,
	};
}

int archive_start(struct archive_set *s, const char *data_dir, archive_ack_fn *ack, void *ack_ctx,
		  char *err, size_t errlen)
{
	s->ack = ack;
	s->ack_ctx = ack_ctx;
	for (uint32_t i = 0; i < s->n; i++) {
		struct archive *a = &s->v[i];
		db_view(a);
		pthread_mutex_init(&a->lock, NULL);
		pthread_condattr_t ca;
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&a->work, &ca);
		pthread_cond_init(&a->spill_cv, NULL);
		pthread_cond_init(&a->stop_cv, &ca);
		pthread_condattr_destroy(&ca);
		if (a->c.spill_max_bytes) {
			char dir[4096];
			snprintf(dir, sizeof(dir), "%s/archive/%s", data_dir, a->c.name);
			char why[256];
			if (arc_spill_open(dir, a->c.spill_max_bytes, &a->spill, why, sizeof(why)) != HQ_OK) {
				snprintf(err, errlen, "archive %s: spill file %s: %s", a->c.name, dir, why);
				return HQ_EIO;
			}
			uint64_t rows = arc_spill_rows(a->spill);
			if (rows)
				log_notice("archive %s: %llu messages in the spill file, written first",
					   a->c.name, (unsigned long long)rows);
		}
		atomic_store(&a->up, true); /* until the first failure says otherwise */
		a->writers = hq_calloc(a->c.pool_size, sizeof(*a->writers));
		for (uint32_t w = 0; w < a->c.pool_size; w++) {
			if (pthread_create(&a->writers[w], NULL, arc_writer_main, a)) {
				snprintf(err, errlen, "archive %s: cannot start a writer thread", a->c.name);
				return HQ_ENOMEM;
			}
			a->n_writers++;
		}
		if (a->spill) {
			if (pthread_create(&a->spiller, NULL, spiller_main, a)) {
				snprintf(err, errlen, "archive %s: cannot start its spill thread", a->c.name);
				return HQ_ENOMEM;
			}
			a->spiller_on = true;
		}
		log_notice("archive %s: %s at %s:%u, topics %s%s, %u writers", a->c.name,
			   a->c.ops->name, a->c.host, a->c.port, a->c.filters[0],
			   a->c.n_filters > 1 ? ",..." : "", a->c.pool_size);
	}
	return HQ_OK;
}

void archive_stop(struct archive_set *s)
{
	if (!s)
		return;
	for (uint32_t i = 0; i < s->n; i++) {
		struct archive *a = &s->v[i];
		if (!a->writers)
			continue;
		pthread_mutex_lock(&a->lock);
		a->stopping = true;
		pthread_cond_broadcast(&a->work);
		pthread_cond_broadcast(&a->spill_cv);
		pthread_cond_broadcast(&a->stop_cv);
		pthread_mutex_unlock(&a->lock);
		for (uint32_t w = 0; w < a->n_writers; w++)
			pthread_join(a->writers[w], NULL);
		if (a->spiller_on)
			pthread_join(a->spiller, NULL);
		a->n_writers = 0;
		a->spiller_on = false;
		HQ_FREE(a->writers);
		/* what is left in memory goes to the file, read first at the next start */
		struct archive_item *head = a->head;
		uint64_t n = a->n;
		a->head = a->tail = NULL;
		a->n = 0;
		atomic_store(&a->buffered, 0);
		while (head) {
			struct archive_item *last = head;
			uint32_t k = 1;
			while (k < a->c.batch_size && last->next) {
				last = last->next;
				k++;
			}
			struct archive_item *rest = last->next;
			last->next = NULL;
			arc_spill_items(a, head, k, "stopping");
			head = rest;
		}
		if (n)
			log_notice("archive %s: %llu buffered messages %s at shutdown", a->c.name,
				   (unsigned long long)n, a->spill ? "spilled" : "dropped (no spill file)");
	}
}

void archive_free(struct archive_set *s)
{
	if (!s)
		return;
	archive_stop(s);
	for (uint32_t i = 0; i < s->n; i++) {
		struct archive *a = &s->v[i];
		if (a->spill)
			arc_spill_close(a->spill);
		a->spill = NULL;
		if (a->c.name && a->db.name) {
			pthread_mutex_destroy(&a->lock);
			pthread_cond_destroy(&a->work);
			pthread_cond_destroy(&a->spill_cv);
			pthread_cond_destroy(&a->stop_cv);
		}
	}
	arc_set_free_conf(s);
}

void archive_stats(const struct archive_set *s, uint32_t i, struct archive_stats *st)
{
	struct archive *a = &s->v[i];
	st->written = atomic_load_explicit(&a->written, memory_order_relaxed);
	st->spilled = atomic_load_explicit(&a->spilled, memory_order_relaxed);
	st->dropped = atomic_load_explicit(&a->dropped, memory_order_relaxed);
	st->failed = atomic_load_explicit(&a->failed, memory_order_relaxed);
	st->buffered = atomic_load_explicit(&a->buffered, memory_order_relaxed);
	st->spill_bytes = a->spill ? arc_spill_bytes(a->spill) : 0;
	st->up = atomic_load_explicit(&a->up, memory_order_relaxed);
	int64_t since = atomic_load_explicit(&a->down_since, memory_order_relaxed);
	st->down_ms = since ? arc_now_ms() - since : 0;
}
