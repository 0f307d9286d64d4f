/*
 * store_test.h - the local (LMDB) store in a fresh temporary data dir, for
 * test_store.c (its backend table) and test_store_lmdb.c. Static inline:
 * each test file uses what it needs.
 */
#ifndef HQ_TEST_STORE_TEST_H
#define HQ_TEST_STORE_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/conf.h"
#include "core/err.h"
#include "store/store.h"

struct lmdb_tmp {
	char dir[64];             /* node.data_dir; the store is dir/store */
	struct hq_config cfg;     /* only the fields the backend reads */
};

static inline void lmdb_tmp_init(struct lmdb_tmp *t, uint64_t max_size, bool fsync)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->dir, sizeof(t->dir), "/tmp/test_store_lmdb_XXXXXX");
	if (!mkdtemp(t->dir))
		abort();
	t->cfg.node_data_dir = t->dir;
	t->cfg.session_store = CONF_STORE_LOCAL;
	t->cfg.session_local_max_size = max_size;
	t->cfg.session_local_fsync = fsync;
}

/* Open (or reopen) the store of t: NULL on error, with err printed. */
static inline struct store *lmdb_tmp_open(struct lmdb_tmp *t)
{
	char err[512] = "";
	struct store *st = NULL;
	int rc = store_lmdb_open(&t->cfg, &st, err, sizeof(err));
	if (rc != HQ_OK) {
		fprintf(stderr, "store_lmdb_open: %s (%s)\n", err, hq_strerror(rc));
		return NULL;
	}
	return st;
}

static inline void lmdb_tmp_remove(struct lmdb_tmp *t)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", t->dir);
}

#endif
