/*
 * repl.h - replicated key/value tables: small tables that every node of a
 * cluster holds in full and that converge by last writer wins ("authdb" the
 * built-in MQTT user database, "mgmt" the management API's users, keys and
 * revoked tokens, "banned" the banned list).
 *
 * An entry is (key, value bytes, HLC timestamp, origin node, deleted,
 * expires_ms). A write anywhere is stamped with this node's hybrid logical
 * clock (cluster/clu_hlc.h) and wins over whatever a node holds for the key
 * when it orders after it by clu_hlc_cmp (time, then node name), so every
 * node keeps the same winner whatever the arrival order: the model of the
 * retained messages (clu_retain.c). A delete is a tombstone, kept
 * REPL_TOMB_TTL_MS so that an older write arriving late cannot bring the key
 * back; an entry whose expires_ms (wall clock) has passed is dropped by every
 * node alike, without a tombstone (bans and revoked tokens end by themselves).
 *
 * On a single node this is just the local persisted table. With a cluster,
 * the cluster thread (clu_repl.c) sends every local change to the linked
 * peers (repl_set_notify tells it which key changed; it reads the entry back
 * with repl_entry_get), applies theirs with repl_merge, and sends everything
 * (repl_dump) when a link comes up.
 *
 * Persistence: one file per table, <data_dir>/repl_<name>.tbl, rewritten
 * whole (temporary file, fsync, rename) after each local change and after
 * each batch of remote ones. Not LMDB: the node's store may be memory or a
 * shared Redis, where no LMDB environment exists, and the tables are small
 * (users, keys, bans), so a whole-file rewrite costs little and keeps the
 * table independent of store.backend.
 *
 * Threads: every function may be called from any thread. One read-write
 * lock per struct repl guards all of its tables: readers (a CONNECT checking
 * the built-in database, an HTTP request checking a key) share it and copy
 * what they need out; writers (the REST API, the cluster thread applying a
 * peer's write) hold it briefly; files are written under a separate mutex,
 * outside the table lock. A lock rather than RCU snapshots: reads are
 * per CONNECT or per HTTP request, not per message, and the tables are small.
 *
 * Ownership: struct repl belongs to the broker (broker_new makes it, after
 * locking the data dir; broker_free frees it). Values returned are copies
 * the caller frees (hq_free).
 */
#ifndef HQ_REPL_REPL_H
#define HQ_REPL_REPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/clu_hlc.h"

#define REPL_NAME_MAX 32        /* table names: 1..32 of [a-z0-9_] (clu_proto.h "table") */
#define REPL_KEY_MAX 1024       /* keys: 1..1024 bytes (clu_proto.h "rkey") */
#define REPL_VALUE_MAX (1u << 20)
#define REPL_TOMB_TTL_MS (24ull * 3600 * 1000)

struct repl;
struct repl_table;

/* One entry as the cluster sees it (borrowed fields). */
struct repl_entry {
	const char *table;
	const char *key;
	size_t klen;
	const uint8_t *val;     /* NULL when del */
	size_t vlen;
	struct clu_hlc_ts ts;
	const char *origin;
	size_t olen;
	bool del;
	uint64_t expires_ms;    /* wall ms, 0 = never */
};

/* Open the node's tables: every <dir>/repl_*.tbl is loaded now. NULL with
 * err on an unreadable or corrupt file (the start fails: a table silently
 * emptied would lose users or bans). node is this node's name (origin). */
struct repl *repl_open(const char *dir, const char *node, char *err, size_t errlen);
void repl_free(struct repl *r);

/* The table named name (created empty if new). Stays valid until repl_free. */
struct repl_table *repl_table(struct repl *r, const char *name);

/* Called, outside the lock, after a peer's write changed an entry of t (key
 * and value borrowed; val NULL when deleted). The owner of a cache (the
 * banned list, the management users) updates it here. One watcher per table. */
typedef void (*repl_watch_fn)(void *arg, const char *key, size_t klen, const uint8_t *val,
			      size_t vlen);
void repl_watch(struct repl_table *t, repl_watch_fn fn, void *arg);

/* ---- local writes (stamped now, persisted, then told to the peers) ---- */
/* HQ_OK, HQ_EINVAL (key or value outside its bounds), HQ_EIO (file; the
 * change holds in memory and replicates, the error is logged) */
int repl_put(struct repl_table *t, const char *key, size_t klen, const void *val, size_t vlen,
	     uint64_t expires_ms);
/* A default: written only when the key has no entry here (HQ_EEXIST), and
 * stamped as the oldest possible write (wall REPL_WEAK_WALL_MS), so any real
 * write or delete anywhere in the cluster wins over it (a fresh node's
 * default administrator must not reset the cluster's). */
#define REPL_WEAK_WALL_MS 1
int repl_put_weak(struct repl_table *t, const char *key, size_t klen, const void *val,
		  size_t vlen);
/* HQ_OK, or HQ_ENOTFOUND when there is no live entry */
int repl_del(struct repl_table *t, const char *key, size_t klen);

/* ---- reads ---- */
/* A copy of the live value (NUL-terminated past vlen, for text values). */
int repl_get(struct repl_table *t, const char *key, size_t klen, uint8_t **val, size_t *vlen);
/* Live entries in key order, under the read lock: fn must not call back into
 * this repl. fn returns false to stop. */
typedef bool (*repl_each_fn)(void *arg, const char *key, size_t klen, const uint8_t *val,
			     size_t vlen);
void repl_each(struct repl_table *t, repl_each_fn fn, void *arg);
size_t repl_count(struct repl_table *t);   /* live entries */
/* Entries that are not deletions, expired ones included until purged: one
 * relaxed load, no lock, for "is this table in use" checks on the CONNECT
 * path; any thread. */
size_t repl_count_hint(const struct repl_table *t);

/* ---- the cluster's side ---- */
/* Told (outside the lock, from the writing thread) that key of table changed
 * here; it reads the entry back with repl_entry_get. */
typedef void (*repl_notify_fn)(void *arg, const char *table, const char *key, size_t klen);
void repl_set_notify(struct repl *r, repl_notify_fn fn, void *arg);
/* The entry (live or tombstone) for (table, key) to fn, under the read lock;
 * HQ_ENOTFOUND when none (expired or swept). */
int repl_entry_get(struct repl *r, const char *table, const char *key, size_t klen,
		   void (*fn)(void *arg, const struct repl_entry *e), void *arg);
/* Every entry, tombstones included, of every table (full exchange). */
void repl_dump(struct repl *r, void (*fn)(void *arg, const struct repl_entry *e), void *arg);
/* A peer's write: applied when it orders after what is held (1), else 0;
 * HQ_EINVAL for a bad entry. The file is written by repl_flush. */
int repl_merge(struct repl *r, const struct repl_entry *e);
/* Write the tables changed by repl_merge since the last flush. */
void repl_flush(struct repl *r);
/* Forget expired entries and tombstones older than REPL_TOMB_TTL_MS. */
void repl_sweep(struct repl *r, uint64_t wall_ms);

#endif
