/*
 * repl_int.h - private to src/repl/: the tables' structs, shared by repl.c
 * (entries, merge rules, reads) and repl_file.c (the files). Every table and
 * entry is guarded by repl.lock; the files by repl.file_mu.
 */
#ifndef HQ_REPL_REPL_INT_H
#define HQ_REPL_REPL_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <uthash.h>

#include "repl/repl.h"

#define REPL_ORIGIN_MAX 255

struct repl_ent {
	UT_hash_handle hh;              /* repl_table.ents by key */
	struct clu_hlc_ts ts;
	char origin[REPL_ORIGIN_MAX + 1];
	bool del;                       /* tombstone */
	uint64_t expires_ms;
	uint8_t *val;                   /* owned, NUL past vlen; NULL when del */
	size_t vlen;
	size_t klen;
	char key[];
};

struct repl_table {
	struct repl *r;
	char name[REPL_NAME_MAX + 1];
	char *path;                     /* owned: <dir>/repl_<name>.tbl */
	struct repl_ent *ents;          /* uthash */
	_Atomic size_t n_set;           /* entries that are not tombstones (written under
					   the write lock, read lock-free: repl_count_hint) */
	bool dirty;                     /* merged since the last write */
	repl_watch_fn watch;
	void *watch_arg;
	struct repl_table *next;
};

struct repl {
	pthread_rwlock_t lock;          /* tables, entries, hlc */
	pthread_mutex_t file_mu;        /* one writer of files at a time, in order */
	struct clu_hlc hlc;
	char node[REPL_ORIGIN_MAX + 1];
	char *dir;                      /* owned */
	struct repl_table *tables;
	repl_notify_fn notify;          /* set before the threads start */
	void *notify_arg;
};

bool repl_name_ok(const char *s, size_t n);
/* with the write lock: the table of that name, made if new */
struct repl_table *repl_table_locked(struct repl *r, const char *name, size_t n);
/* with the write lock: set key to (ts, origin, del, expires, val) */
void repl_ent_set(struct repl_table *t, const char *key, size_t klen, struct clu_hlc_ts ts,
		  const char *origin, size_t olen, bool del, uint64_t expires_ms,
		  const uint8_t *val, size_t vlen);

/* repl_file.c */
int repl_file_load_all(struct repl *r, char *err, size_t errlen);
/* serialise t (read lock taken inside) and write its file; logs failures */
int repl_file_save(struct repl_table *t);

#endif
