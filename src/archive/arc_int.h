/*
 * arc_int.h - inside src/archive/: one archive's settings and state, the
 * spill file's API, the topic filter match. Only the files of src/archive/ include it.
 *
 * Threads of one archive: pool_size writers (arc_writer.c), each with its
 * own database connection, and one spiller (arc_core.c) that moves the
 * oldest items beyond buffer_messages into the spill file. The queue, its
 * count and `stopping` are under `lock`; the counters are relaxed atomics
 * (read by /metrics and the alarm thread).
 */
#ifndef HQ_ARC_INT_H
#define HQ_ARC_INT_H

#include "archive/archive.h"
#include "core/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct arc_spill;

/* archive.<name>.* (arc_conf.c); strings owned. */
struct arc_conf {
	char *name;
	const struct arc_backend_ops *ops;
	char *host;
	uint16_t port;
	char *database, *username, *password;
	bool tls;
	char *tls_cafile;
	char **filters; /* `topics`, split */
	uint32_t n_filters;
	char *table;
	char *insert;   /* the template's text, or NULL */
	bool ack_stored;
	uint32_t batch_size, batch_interval_ms, pool_size;
	uint64_t buffer_messages, spill_max_bytes;
	uint32_t retry_min_ms, retry_max_ms, connect_timeout_s;
};

struct archive {
	struct archive_set *set;
	uint32_t idx;
	struct arc_conf c;
	struct arc_db db;          /* views into c, for the backend */
	struct arc_tmpl *tmpl;     /* c.insert parsed, or NULL; owned */

	pthread_mutex_t lock;
	pthread_cond_t work;       /* writers: items or stop */
	pthread_cond_t spill_cv;   /* spiller: over the bound or stop */
	pthread_cond_t stop_cv;    /* backoff sleeps: stop */
	struct archive_item *head, *tail;
	uint64_t n;                /* items in the queue */
	bool stopping;
	uint32_t n_failing;        /* writers whose last attempt failed */

	struct arc_spill *spill;   /* NULL: spill_max_bytes = 0 */
	pthread_t *writers;
	uint32_t n_writers;
	pthread_t spiller;
	bool spiller_on;

	_Atomic uint64_t written, spilled, dropped, failed;
	_Atomic uint64_t buffered;
	_Atomic bool full;         /* archive_full */
	_Atomic bool spill_full;   /* the last spill put found no room */
	_Atomic bool up;
	_Atomic int64_t down_since; /* monotonic ms of the first failure; 0: up */
	_Atomic int64_t down_logged; /* when the last "down" line was written */
	struct log_rl rl;          /* the drop lines */
};

struct archive_set {
	struct archive *v;
	uint32_t n;
	archive_ack_fn *ack;
	void *ack_ctx;
};

/* arc_conf.c */
void arc_conf_free(struct arc_conf *c);
/* the set and each archive's settings and template (what archive_conf made) */
void arc_set_free_conf(struct archive_set *s);

/* `topics` are checked and matched with broker/topic.h's pure functions
 * (topic_filter_valid, topic_matches: the MQTT rules in one place). */

/* arc_core.c, for the writers */
void arc_ack_items(struct archive *a, struct archive_item *head, bool stored);
void arc_free_items(struct archive_item *head);
/* Spill a list (the writers' held batch at stop, the spiller's chunk);
 * on success the items are acked and freed; on failure dropped (counted). */
void arc_spill_items(struct archive *a, struct archive_item *head, uint32_t n, const char *why);
void arc_set_state(struct archive *a, bool up, const char *why);
/* Detach the first k (1..n) items of the buffer; the caller holds a->lock. */
struct archive_item *arc_take_locked(struct archive *a, uint32_t k);
int64_t arc_now_ms(void);

/* arc_writer.c */
void *arc_writer_main(void *arg);

/* arc_spill.c: a separate LMDB env, rows keyed by an increasing sequence
 * (arrival order), each put committed (fsync'd) before it returns. Used
 * under the caller's serialisation: its own mutex inside. */
int arc_spill_open(const char *dir, uint64_t max_bytes, struct arc_spill **out, char *err,
		   size_t errlen);
void arc_spill_close(struct arc_spill *sp);
/* HQ_ELIMIT: the rows would not fit in max_bytes (nothing written). */
int arc_spill_put(struct arc_spill *sp, const struct archive_item *head, uint32_t n, char *err,
		  size_t errlen);
/* Up to max rows not yet taken, oldest first, as items with spill_key set
 * (owned by the caller); *n = 0 when none is left. */
int arc_spill_take(struct arc_spill *sp, uint32_t max, struct archive_item **head, uint32_t *n);
/* Remove rows written to the database (their keys, from the items). */
int arc_spill_del(struct arc_spill *sp, const struct archive_item *head);
/* Rows taken but not written (a writer stopped holding them): read again at
 * the next start, not in this run. */
uint64_t arc_spill_bytes(const struct arc_spill *sp);
uint64_t arc_spill_rows(const struct arc_spill *sp);

#endif
