/*
 * repl_file.c - a replicated table's file, <data_dir>/repl_<name>.tbl: the
 * whole table (tombstones included, so a restarted node still refuses an
 * older write of a key deleted before it stopped), written to a temporary
 * file, fsync'ed and renamed over the old one: a crash leaves the old or the
 * new table, never half of one.
 *
 * Format (integers big-endian):
 *   "HQREPL1\n"
 *   entry* = klen:u16 key  wall_ms:u64 logical:u16  olen:u8 origin
 *            del:u8 (0|1)  expires_ms:u64  vlen:u32 value
 * Anything else (short, trailing, out-of-range lengths) is a corrupt file:
 * the start fails naming it, rather than running with a table emptied.
 */
#include "repl/repl_int.h"
#include "core/bytes.h"
#include "core/err.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/mem.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC "HQREPL1\n"
#define FILE_MAX (256u << 20)

struct wbuf {
	uint8_t *p;
	size_t len, cap;
};

static void put(struct wbuf *w, const void *src, size_t n)
{
	if (w->len + n > w->cap) {
		w->cap = (w->len + n) * 2 + 256;
		w->p = hq_realloc(w->p, w->cap);
	}
	if (n)
		memcpy(w->p + w->len, src, n);
	w->len += n;
}

static void put_be(struct wbuf *w, uint64_t v, int bytes)
{
	uint8_t b[8];
	for (int i = 0; i < bytes; i++)
		b[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
	put(w, b, (size_t)bytes);
}

/* Serialised under the read lock, written under file_mu only: writes reach
 * the disk in the order of their serialisation, so the newest table wins. */
int repl_file_save(struct repl_table *t)
{
	struct repl *r = t->r;
	struct wbuf w = { 0 };
	pthread_mutex_lock(&r->file_mu);
	pthread_rwlock_rdlock(&r->lock);
	put(&w, MAGIC, strlen(MAGIC));
	struct repl_ent *e, *tmp;
	HASH_ITER(hh, t->ents, e, tmp) {
		size_t olen = strlen(e->origin);
		put_be(&w, e->klen, 2);
		put(&w, e->key, e->klen);
		put_be(&w, e->ts.wall_ms, 8);
		put_be(&w, e->ts.logical, 2);
		put_be(&w, olen, 1);
		put(&w, e->origin, olen);
		put_be(&w, e->del, 1);
		put_be(&w, e->expires_ms, 8);
		put_be(&w, e->vlen, 4);
		put(&w, e->val, e->vlen);
	}
	pthread_rwlock_unlock(&r->lock);
	int rc = fs_write_atomic(t->path, w.p, w.len, 0600);
	pthread_mutex_unlock(&r->file_mu);
	if (rc != HQ_OK)
		log_error("replicated table %s: cannot write %s: %s (the change holds in memory)",
			  t->name, t->path, strerror(errno));
	hq_free(w.p);
	return rc;
}

static int parse(struct repl_table *t, const uint8_t *p, size_t n)
{
	struct bytes_rd rd;
	bytes_rd_init(&rd, p, n);
	const uint8_t *m = bytes_rd_take(&rd, strlen(MAGIC));
	if (!bytes_rd_ok(&rd) || memcmp(m, MAGIC, strlen(MAGIC)))
		return HQ_EMALFORMED;
	while (bytes_rd_ok(&rd) && bytes_rd_left(&rd)) {
		size_t klen = bytes_rd_u16(&rd);
		const char *key = (const char *)bytes_rd_take(&rd, klen);
		struct clu_hlc_ts ts;
		ts.wall_ms = bytes_rd_u64(&rd);
		ts.logical = bytes_rd_u16(&rd);
		size_t olen = bytes_rd_u8(&rd);
		const char *origin = (const char *)bytes_rd_take(&rd, olen);
		uint8_t del = bytes_rd_u8(&rd);
		uint64_t expires = bytes_rd_u64(&rd);
		size_t vlen = bytes_rd_u32(&rd);
		const uint8_t *val = bytes_rd_take(&rd, vlen);
		bytes_rd_check(&rd, klen >= 1 && klen <= REPL_KEY_MAX && olen >= 1 && del <= 1 &&
				    vlen <= REPL_VALUE_MAX && (!del || !vlen), "bad entry");
		if (!bytes_rd_ok(&rd))
			break;
		repl_ent_set(t, key, klen, ts, origin, olen, del, expires, val, vlen);
		/* later local writes order after everything loaded */
		if (clu_hlc_ts_cmp(ts, t->r->hlc.last) > 0)
			t->r->hlc.last = ts;
	}
	return bytes_rd_ok(&rd) ? HQ_OK : HQ_EMALFORMED;
}

static int load_one(struct repl *r, const char *name, size_t n, char *err, size_t errlen)
{
	struct repl_table *t = repl_table_locked(r, name, n);
	if (!t)
		return HQ_OK;          /* not a table name of ours: left alone */
	FILE *f = fopen(t->path, "rb");
	if (!f) {
		snprintf(err, errlen, "cannot read %s: %s", t->path, strerror(errno));
		return HQ_EIO;
	}
	struct wbuf w = { 0 };
	uint8_t chunk[65536];
	size_t k;
	while ((k = fread(chunk, 1, sizeof(chunk), f)) > 0 && w.len <= FILE_MAX)
		put(&w, chunk, k);
	bool bad_read = ferror(f);
	fclose(f);
	int rc = bad_read || w.len > FILE_MAX ? HQ_EIO : parse(t, w.p, w.len);
	hq_free(w.p);
	if (rc != HQ_OK)
		snprintf(err, errlen, "replicated table %s: %s (move it away to start "
			 "with an empty table)", t->path, rc == HQ_EIO ? "cannot read" : "corrupt file");
	return rc;
}

int repl_file_load_all(struct repl *r, char *err, size_t errlen)
{
	DIR *d = opendir(r->dir);
	if (!d) {
		snprintf(err, errlen, "cannot open %s: %s", r->dir, strerror(errno));
		return HQ_EIO;
	}
	int rc = HQ_OK;
	struct dirent *de;
	while (rc == HQ_OK && (de = readdir(d))) {
		size_t n = strlen(de->d_name);
		if (n > 9 && !strncmp(de->d_name, "repl_", 5) && !strcmp(de->d_name + n - 4, ".tbl"))
			rc = load_one(r, de->d_name + 5, n - 9, err, errlen);
	}
	closedir(d);
	return rc;
}
