/*
 * archive.h - the message archive (issue 12, docs/architecture/archive.md):
 * what main.c, the broker's hook (broker/brk_archive.c) and the HTTP server
 * see of src/archive/.
 *
 * A set of archives (archive.<name>.*), each with its memory buffer, its
 * writer threads (one database connection each), its spill file and its
 * counters. The broker copies each matching PUBLISH into an item on the
 * worker thread and hands a worker's items to the archive once per loop turn
 * (archive_offer: one mutex, no I/O); everything after that runs on the
 * archive's threads.
 *
 * Ownership: main owns the set (archive_conf .. archive_free); an item is
 * owned by whoever holds it: the worker's list, then the archive.
 */
#ifndef HQ_ARCHIVE_H
#define HQ_ARCHIVE_H

#include "archive/arc_backend.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hq_config;
struct archive_set;

#define ARCHIVE_MAX 32 /* archives per node: a topic's matches are one uint32_t */

/* One message for one archive: one allocation, the arc_msg's views point
 * into the bytes after the struct. */
struct archive_item {
	struct archive_item *next;
	uint64_t token;     /* ack = stored: the publisher's gate token; 0: none */
	uint64_t spill_key; /* read back from the spill file: its key; 0: not */
	uint32_t worker;    /* the publisher's worker (with token) */
	uint32_t size;      /* bytes of the allocation */
	struct arc_msg m;
};

/* An ack = stored item's fate: stored (committed in the database or fsync'd
 * in the spill file) or refused (dropped). Called on an archive thread, or
 * on the worker calling archive_offer; must only post. */
typedef void archive_ack_fn(void *ctx, uint32_t worker, uint64_t token, bool stored);

/* Parse and check cfg's archive.* lines (file:line and key in err). *out
 * is NULL when none is configured: the broker then pays one NULL test. */
int archive_conf(const struct hq_config *cfg, struct archive_set **out, char *err, size_t errlen);
/* Open the spill files (node.data_dir/archive/<name>/) and start the
 * threads; the database may be down (writers retry). */
int archive_start(struct archive_set *s, const char *data_dir, archive_ack_fn *ack, void *ack_ctx,
		  char *err, size_t errlen);
/* After the broker's workers stopped (no more offers): stop the writers
 * and spill what is still in memory. */
void archive_stop(struct archive_set *s);
void archive_free(struct archive_set *s);

uint32_t archive_count(const struct archive_set *s);
const char *archive_name(const struct archive_set *s, uint32_t i);
/* Bit i set: archive i takes topic (its filters; never a $SYS topic). */
uint32_t archive_match(const struct archive_set *s, const char *topic, size_t len);
/* Bit i set: archive i has ack = stored. */
uint32_t archive_ack_mask(const struct archive_set *s);
/* Archive i can take nothing more (buffer full, spill full or disabled):
 * an ack = stored publish is refused. One relaxed load. */
bool archive_full(const struct archive_set *s, uint32_t i);

/* A copy of m (node and id included) as a new item, owned by the caller. */
struct archive_item *archive_item_new(const struct arc_msg *m);
void archive_item_free(struct archive_item *it);
/* Hand the list head..tail (n items) to archive i; items it cannot take
 * are dropped (counted, acked as refused). */
void archive_offer(struct archive_set *s, uint32_t i, struct archive_item *head,
		   struct archive_item *tail, uint32_t n);

/* For /metrics and the alarms; any thread. */
struct archive_stats {
	uint64_t written, spilled, dropped, failed; /* messages, since start */
	uint64_t buffered;                          /* in memory now */
	uint64_t spill_bytes;                       /* in the spill file now */
	bool up;                                    /* the last write or connect worked */
	int64_t down_ms;                            /* unreachable for this long; 0: up */
};
void archive_stats(const struct archive_set *s, uint32_t i, struct archive_stats *st);

/*
 * Read back archive `name` (NULL or "": the only one configured) on the
 * caller's thread, through a connection of its own opened and closed here
 * (bounded by connect_timeout): q's rows in (ts, id) order to each, the
 * count of rows matching q without its window in *total. Errors, with the
 * reason in err: HQ_ENOTFOUND no such archive (or none configured),
 * HQ_EINVAL a bad query or several archives and no name, HQ_ETOPIC a bad
 * filter, HQ_EEXIST the archive writes an operator's template table (not
 * ours to read), HQ_EAGAIN the database is unreachable; others from the
 * backend. The set must be started (archive_start).
 */
int archive_read(const struct archive_set *s, const char *name, const struct arc_query *q,
		 arc_row_fn each, void *ctx, uint64_t *total, char *err, size_t errlen);

#endif
