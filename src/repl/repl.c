/*
 * repl.c - replicated key/value tables (repl.h): entries, the last writer
 * wins rule, local writes and reads. The files are repl_file.c; the cluster
 * side is src/cluster/clu_repl.c.
 */
#include "repl/repl_int.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool repl_name_ok(const char *s, size_t n)
{
	if (n < 1 || n > REPL_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

static bool expired(const struct repl_ent *e, uint64_t wall)
{
	return e->expires_ms && e->expires_ms <= wall;
}

static bool live(const struct repl_ent *e, uint64_t wall)
{
	return e && !e->del && !expired(e, wall);
}

struct repl *repl_open(const char *dir, const char *node, char *err, size_t errlen)
{
	if (fs_mkdir_p(dir) != HQ_OK) {
		snprintf(err, errlen, "node.data_dir: cannot create %s", dir);
		return NULL;
	}
	struct repl *r = hq_calloc(1, sizeof(*r));
	pthread_rwlock_init(&r->lock, NULL);
	pthread_mutex_init(&r->file_mu, NULL);
	clu_hlc_init(&r->hlc);
	snprintf(r->node, sizeof(r->node), "%s", node);
	r->dir = hq_strndup(dir, strlen(dir));
	if (repl_file_load_all(r, err, errlen) != HQ_OK) {
		repl_free(r);
		return NULL;
	}
	return r;
}

static void ent_free(struct repl_table *t, struct repl_ent *e)
{
	if (!e->del)
		atomic_fetch_sub_explicit(&t->n_set, 1, memory_order_relaxed);
	HASH_DEL(t->ents, e);
	hq_free(e->val);
	hq_free(e);
}

void repl_free(struct repl *r)
{
	if (!r)
		return;
	while (r->tables) {
		struct repl_table *t = r->tables;
		r->tables = t->next;
		struct repl_ent *e, *tmp;
		HASH_ITER(hh, t->ents, e, tmp)
			ent_free(t, e);
		hq_free(t->path);
		hq_free(t);
	}
	pthread_rwlock_destroy(&r->lock);
	pthread_mutex_destroy(&r->file_mu);
	hq_free(r->dir);
	hq_free(r);
}

struct repl_table *repl_table_locked(struct repl *r, const char *name, size_t n)
{
	for (struct repl_table *t = r->tables; t; t = t->next)
		if (strlen(t->name) == n && !memcmp(t->name, name, n))
			return t;
	if (!repl_name_ok(name, n))
		return NULL;
	struct repl_table *t = hq_calloc(1, sizeof(*t));
	t->r = r;
	memcpy(t->name, name, n);
	size_t plen = strlen(r->dir) + n + 16;
	t->path = hq_malloc(plen);
	snprintf(t->path, plen, "%s/repl_%s.tbl", r->dir, t->name);
	t->next = r->tables;
	r->tables = t;
	return t;
}

struct repl_table *repl_table(struct repl *r, const char *name)
{
	pthread_rwlock_wrlock(&r->lock);
	struct repl_table *t = repl_table_locked(r, name, strlen(name));
	pthread_rwlock_unlock(&r->lock);
	return t;
}

void repl_watch(struct repl_table *t, repl_watch_fn fn, void *arg)
{
	pthread_rwlock_wrlock(&t->r->lock);
	t->watch = fn;
	t->watch_arg = arg;
	pthread_rwlock_unlock(&t->r->lock);
}

void repl_set_notify(struct repl *r, repl_notify_fn fn, void *arg)
{
	pthread_rwlock_wrlock(&r->lock);
	r->notify = fn;
	r->notify_arg = arg;
	pthread_rwlock_unlock(&r->lock);
}

void repl_ent_set(struct repl_table *t, const char *key, size_t klen, struct clu_hlc_ts ts,
		  const char *origin, size_t olen, bool del, uint64_t expires_ms,
		  const uint8_t *val, size_t vlen)
{
	struct repl_ent *e;
	HASH_FIND(hh, t->ents, key, klen, e);
	if (!e) {
		e = hq_calloc(1, sizeof(*e) + klen + 1);
		memcpy(e->key, key, klen);
		e->klen = klen;
		e->del = true; /* counted as set below if it is */
		HASH_ADD(hh, t->ents, key[0], klen, e);
	}
	if (e->del != del)
		atomic_fetch_add_explicit(&t->n_set, del ? (size_t)-1 : 1, memory_order_relaxed);
	e->ts = ts;
	snprintf(e->origin, sizeof(e->origin), "%.*s", (int)olen, origin);
	e->del = del;
	e->expires_ms = expires_ms;
	hq_free(e->val);
	e->val = NULL;
	e->vlen = 0;
	if (!del) {
		e->val = hq_malloc(vlen + 1);
		if (vlen)
			memcpy(e->val, val, vlen);
		e->val[vlen] = 0;
		e->vlen = vlen;
	}
}

/* A local write: stamp, set, persist, tell the cluster. */
static int local_write(struct repl_table *t, const char *key, size_t klen, bool del,
		       const void *val, size_t vlen, uint64_t expires_ms, bool weak)
{
	struct repl *r = t->r;
	uint64_t wall = (uint64_t)clock_wall_ms();
	pthread_rwlock_wrlock(&r->lock);
	if (weak) {
		struct repl_ent *e;
		HASH_FIND(hh, t->ents, key, klen, e);
		if (e) {
			pthread_rwlock_unlock(&r->lock);
			return HQ_EEXIST;
		}
	}
	if (del) {
		struct repl_ent *e;
		HASH_FIND(hh, t->ents, key, klen, e);
		if (!live(e, wall)) {
			pthread_rwlock_unlock(&r->lock);
			return HQ_ENOTFOUND;
		}
	}
	struct clu_hlc_ts ts = weak ? (struct clu_hlc_ts){ REPL_WEAK_WALL_MS, 0 }
				    : clu_hlc_now(&r->hlc, wall);
	repl_ent_set(t, key, klen, ts, r->node, strlen(r->node), del, del ? 0 : expires_ms, val,
		     vlen);
	repl_notify_fn notify = r->notify;
	void *arg = r->notify_arg;
	pthread_rwlock_unlock(&r->lock);
	int rc = repl_file_save(t);
	if (notify)
		notify(arg, t->name, key, klen);
	return rc;
}

int repl_put(struct repl_table *t, const char *key, size_t klen, const void *val, size_t vlen,
	     uint64_t expires_ms)
{
	if (klen < 1 || klen > REPL_KEY_MAX || vlen > REPL_VALUE_MAX || (vlen && !val))
		return HQ_EINVAL;
	return local_write(t, key, klen, false, val, vlen, expires_ms, false);
}

int repl_put_weak(struct repl_table *t, const char *key, size_t klen, const void *val, size_t vlen)
{
	if (klen < 1 || klen > REPL_KEY_MAX || vlen > REPL_VALUE_MAX || (vlen && !val))
		return HQ_EINVAL;
	return local_write(t, key, klen, false, val, vlen, 0, true);
}

int repl_del(struct repl_table *t, const char *key, size_t klen)
{
	if (klen < 1 || klen > REPL_KEY_MAX)
		return HQ_ENOTFOUND;
	return local_write(t, key, klen, true, NULL, 0, 0, false);
}

int repl_get(struct repl_table *t, const char *key, size_t klen, uint8_t **val, size_t *vlen)
{
	uint64_t wall = (uint64_t)clock_wall_ms();
	int rc = HQ_ENOTFOUND;
	pthread_rwlock_rdlock(&t->r->lock);
	struct repl_ent *e;
	HASH_FIND(hh, t->ents, key, klen, e);
	if (live(e, wall)) {
		*val = hq_malloc(e->vlen + 1);
		memcpy(*val, e->val, e->vlen + 1);
		*vlen = e->vlen;
		rc = HQ_OK;
	}
	pthread_rwlock_unlock(&t->r->lock);
	return rc;
}

static int ent_cmp(const void *a, const void *b)
{
	const struct repl_ent *x = *(struct repl_ent *const *)a, *y = *(struct repl_ent *const *)b;
	size_t n = x->klen < y->klen ? x->klen : y->klen;
	int c = memcmp(x->key, y->key, n);
	return c ? c : (x->klen > y->klen) - (x->klen < y->klen);
}

void repl_each(struct repl_table *t, repl_each_fn fn, void *arg)
{
	uint64_t wall = (uint64_t)clock_wall_ms();
	pthread_rwlock_rdlock(&t->r->lock);
	size_t n = HASH_COUNT(t->ents), k = 0;
	struct repl_ent **v = hq_calloc(n ? n : 1, sizeof(*v));
	struct repl_ent *e, *tmp;
	HASH_ITER(hh, t->ents, e, tmp)
		if (live(e, wall))
			v[k++] = e;
	qsort(v, k, sizeof(*v), ent_cmp);
	for (size_t i = 0; i < k; i++)
		if (!fn(arg, v[i]->key, v[i]->klen, v[i]->val, v[i]->vlen))
			break;
	pthread_rwlock_unlock(&t->r->lock);
	hq_free(v);
}

size_t repl_count_hint(const struct repl_table *t)
{
	return atomic_load_explicit(&t->n_set, memory_order_relaxed);
}

size_t repl_count(struct repl_table *t)
{
	uint64_t wall = (uint64_t)clock_wall_ms();
	size_t n = 0;
	pthread_rwlock_rdlock(&t->r->lock);
	struct repl_ent *e, *tmp;
	HASH_ITER(hh, t->ents, e, tmp)
		n += live(e, wall);
	pthread_rwlock_unlock(&t->r->lock);
	return n;
}

static struct repl_entry view(const struct repl_table *t, const struct repl_ent *e)
{
	return (struct repl_entry){
		.table = t->name, .key = e->key, .klen = e->klen, .val = e->val, .vlen = e->vlen,
		.ts = e->ts, .origin = e->origin, .olen = strlen(e->origin), .del = e->del,
		.expires_ms = e->expires_ms,
	};
}

int repl_entry_get(struct repl *r, const char *table, const char *key, size_t klen,
		   void (*fn)(void *arg, const struct repl_entry *e), void *arg)
{
	uint64_t wall = (uint64_t)clock_wall_ms();
	int rc = HQ_ENOTFOUND;
	pthread_rwlock_rdlock(&r->lock);
	for (struct repl_table *t = r->tables; t; t = t->next) {
		if (strcmp(t->name, table))
			continue;
		struct repl_ent *e;
		HASH_FIND(hh, t->ents, key, klen, e);
		if (e && !expired(e, wall)) {
			struct repl_entry x = view(t, e);
			fn(arg, &x);
			rc = HQ_OK;
		}
	}
	pthread_rwlock_unlock(&r->lock);
	return rc;
}

void repl_dump(struct repl *r, void (*fn)(void *arg, const struct repl_entry *e), void *arg)
{
	uint64_t wall = (uint64_t)clock_wall_ms();
	pthread_rwlock_rdlock(&r->lock);
	for (struct repl_table *t = r->tables; t; t = t->next) {
		struct repl_ent *e, *tmp;
		HASH_ITER(hh, t->ents, e, tmp) {
			if (expired(e, wall))
				continue;
			struct repl_entry x = view(t, e);
			fn(arg, &x);
		}
	}
	pthread_rwlock_unlock(&r->lock);
}

int repl_merge(struct repl *r, const struct repl_entry *x)
{
	size_t tn = strlen(x->table);
	if (!repl_name_ok(x->table, tn) || x->klen < 1 || x->klen > REPL_KEY_MAX ||
	    x->vlen > REPL_VALUE_MAX || !x->olen || x->olen > REPL_ORIGIN_MAX)
		return HQ_EINVAL;
	uint64_t wall = (uint64_t)clock_wall_ms();
	if (x->expires_ms && x->expires_ms <= wall)
		return 0;               /* every node drops it alike */
	pthread_rwlock_wrlock(&r->lock);
	struct repl_table *t = repl_table_locked(r, x->table, tn);
	struct repl_ent *e;
	HASH_FIND(hh, t->ents, x->key, x->klen, e);
	if (e && clu_hlc_cmp(x->ts, x->origin, x->olen, e->ts, e->origin, strlen(e->origin)) <= 0) {
		pthread_rwlock_unlock(&r->lock);
		return 0;
	}
	/* later local writes order after it (a clock too far ahead is refused
	 * by the HLC but the write still applies, as for retained messages) */
	if (clu_hlc_update(&r->hlc, x->ts, wall, NULL) != HQ_OK)
		log_warning("replicated %s: a write from %.*s is more than %llu ms ahead of this "
			    "clock (clocks out of sync?)", x->table, (int)x->olen, x->origin,
			    (unsigned long long)r->hlc.max_drift_ms);
	repl_ent_set(t, x->key, x->klen, x->ts, x->origin, x->olen, x->del, x->expires_ms,
		     x->val, x->vlen);
	t->dirty = true;
	repl_watch_fn watch = t->watch;
	void *arg = t->watch_arg;
	pthread_rwlock_unlock(&r->lock);
	if (watch)
		watch(arg, x->key, x->klen, x->del ? NULL : x->val, x->del ? 0 : x->vlen);
	return 1;
}

void repl_flush(struct repl *r)
{
	for (;;) {
		struct repl_table *dirty = NULL;
		pthread_rwlock_wrlock(&r->lock);
		for (struct repl_table *t = r->tables; t && !dirty; t = t->next)
			if (t->dirty)
				dirty = t;
		if (dirty)
			dirty->dirty = false;
		pthread_rwlock_unlock(&r->lock);
		if (!dirty)
			return;
		repl_file_save(dirty);
	}
}

void repl_sweep(struct repl *r, uint64_t wall_ms)
{
	pthread_rwlock_wrlock(&r->lock);
	for (struct repl_table *t = r->tables; t; t = t->next) {
		struct repl_ent *e, *tmp;
		HASH_ITER(hh, t->ents, e, tmp) {
			if (expired(e, wall_ms) ||
			    (e->del && e->ts.wall_ms + REPL_TOMB_TTL_MS < wall_ms)) {
				ent_free(t, e);
				t->dirty = true;
			}
		}
	}
	pthread_rwlock_unlock(&r->lock);
	repl_flush(r);
}
