/*
 * store_lmdb_env.c - opening the local store: the LMDB environment in
 * node.data_dir/store, its named databases and the format record.
 *
 * The format record (meta "format" = LMDB_FORMAT) is written when the store
 * is created. A store whose record names another format, or a non-empty one
 * without the record, is refused with the path and both versions: never
 * read with the wrong layout, never silently dropped. A database added to
 * the layout without changing what the others hold (like "mark") needs no
 * new format: an older store simply has none of it, and open creates it.
 */
#include "store/store_lmdb_int.h"
#include "core/bytes.h"
#include "core/conf.h"
#include "core/err.h"
#include "core/fs.h"
#include "core/mem.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char format_key[] = "format";

/* Check the format record of a store that has content. */
static int check_format(struct lmdb_store *l, MDB_txn *t, char *err, size_t errlen)
{
	int rc = mdb_dbi_open(t, "meta", 0, &l->meta);
	MDB_val k = { sizeof(format_key) - 1, (void *)format_key }, v;
	if (rc == 0)
		rc = mdb_get(t, l->meta, &k, &v);
	if (rc == MDB_NOTFOUND) {
		snprintf(err, errlen, "session.store = local: %s/data.mdb has data but no format "
			 "record (this build writes format %d): not a hamqtt store, or damaged; "
			 "refusing to start (move it away to start empty)", l->dir, LMDB_FORMAT);
		return HQ_EINVAL;
	}
	if (rc) {
		snprintf(err, errlen, "session.store = local: %s: %s", l->dir, mdb_strerror(rc));
		return HQ_EIO;
	}
	const uint8_t *p = v.mv_data;
	uint32_t found = v.mv_size != 4 ? 0 :
		(uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	if (found != LMDB_FORMAT) {
		snprintf(err, errlen, "session.store = local: %s/data.mdb is store format %u, this "
			 "build supports format %d: refusing to start (run the hamqttd that wrote it, "
			 "or move the store away to start empty)", l->dir, found, LMDB_FORMAT);
		return HQ_EINVAL;
	}
	return HQ_OK;
}

static int open_dbs(struct lmdb_store *l, char *err, size_t errlen)
{
	MDB_txn *t;
	int rc = mdb_txn_begin(l->env, NULL, 0, &t);
	if (rc) {
		snprintf(err, errlen, "session.store = local: %s: %s", l->dir, mdb_strerror(rc));
		return HQ_EIO;
	}
	/* the main database lists the named ones: empty = a new store */
	MDB_dbi main_db;
	MDB_stat ms;
	rc = mdb_dbi_open(t, NULL, 0, &main_db);
	if (rc == 0)
		rc = mdb_stat(t, main_db, &ms);
	int hrc = HQ_OK;
	bool fresh = rc == 0 && ms.ms_entries == 0;
	if (rc == 0 && !fresh)
		hrc = check_format(l, t, err, errlen);
	struct { const char *name; MDB_dbi *dbi; } dbs[] = {
		{ "meta", &l->meta }, { "sess", &l->sess }, { "sub", &l->sub },
		{ "qent", &l->qent }, { "rxid", &l->rxid }, { "mark", &l->mark },
		{ "msg", &l->msg },
		{ "mref", &l->mref }, { "ret", &l->ret },
	};
	for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]) && rc == 0 && hrc == HQ_OK; i++)
		rc = mdb_dbi_open(t, dbs[i].name, MDB_CREATE, dbs[i].dbi);
	if (rc == 0 && hrc == HQ_OK && fresh) {
		uint8_t b[4];
		bytes_st_u32(b, LMDB_FORMAT);
		MDB_val k = { sizeof(format_key) - 1, (void *)format_key }, v = { 4, b };
		rc = mdb_put(t, l->meta, &k, &v, 0);
	}
	if (rc == 0 && hrc == HQ_OK)
		rc = mdb_txn_commit(t);
	else
		mdb_txn_abort(t);
	if (rc && hrc == HQ_OK) {
		snprintf(err, errlen, "session.store = local: %s: %s", l->dir, mdb_strerror(rc));
		hrc = rc == MDB_MAP_FULL || rc == ENOSPC ? HQ_EIO : HQ_EINVAL;
	}
	return hrc;
}

int lmdb_env_open(struct lmdb_store *l, const struct hq_config *cfg, char *err, size_t errlen)
{
	size_t n = strlen(cfg->node_data_dir) + sizeof("/store");
	l->dir = hq_malloc(n);
	snprintf(l->dir, n, "%s/store", cfg->node_data_dir);
	l->fsync = cfg->session_local_fsync;
	long page = sysconf(_SC_PAGESIZE);
	if (page <= 0)
		page = 4096;
	l->max_size = (cfg->session_local_max_size + (uint64_t)page - 1) / (uint64_t)page * (uint64_t)page;
	if (fs_mkdir_p(l->dir) != HQ_OK) {
		snprintf(err, errlen, "session.store = local: cannot create %s: %s", l->dir, strerror(errno));
		return HQ_EIO;
	}
	int rc = mdb_env_create(&l->env);
	if (rc) {
		l->env = NULL;
	} else if ((rc = mdb_env_set_maxdbs(l->env, 16)) == 0 &&
		   (rc = mdb_env_set_mapsize(l->env, l->max_size)) == 0) {
		/* MDB_NOTLS: the runner thread writes, the main thread loads;
		 * MDB_NOSYNC without fsync: see store_lmdb.c */
		unsigned flags = MDB_NOTLS | (l->fsync ? 0 : MDB_NOSYNC);
		rc = mdb_env_open(l->env, l->dir, flags, 0600);
	}
	if (rc) {
		snprintf(err, errlen, "session.store = local: cannot open the store in %s: %s", l->dir,
			 mdb_strerror(rc));
		if (l->env)
			mdb_env_close(l->env);
		l->env = NULL;
		return HQ_EIO;
	}
	if (mdb_env_get_maxkeysize(l->env) < LMDB_KEY_MAX) {
		snprintf(err, errlen, "session.store = local: liblmdb's key limit is %d bytes, the "
			 "store needs %d", mdb_env_get_maxkeysize(l->env), LMDB_KEY_MAX);
		return HQ_EINVAL;
	}
	return open_dbs(l, err, errlen);
}
