/*
 * store_mem.c - the in-memory store backend: one hash table per namespace,
 * guarded by a mutex (callers may be any worker). Not durable: the broker
 * keeps live sessions in memory anyway, so it skips writes to this backend;
 * it exists so the interface has a complete reference implementation and so
 * serialisation round trips can be tested.
 */
#include "store/store.h"
#include "core/conf.h"
#include "core/err.h"
#include "core/mem.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <uthash.h>

struct mem_item {
	char *key;
	size_t klen;
	uint8_t *val;
	size_t vlen;
	UT_hash_handle hh;
};

struct mem_store {
	pthread_mutex_t lock;
	struct mem_item *ns[STORE_NS_COUNT];
};

static int mem_put(struct store *st, enum store_ns ns, const char *key, size_t klen,
		   const void *val, size_t vlen)
{
	struct mem_store *m = st->impl;
	struct mem_item *it;
	pthread_mutex_lock(&m->lock);
	HASH_FIND(hh, m->ns[ns], key, klen, it);
	if (!it) {
		it = hq_calloc(1, sizeof(*it));
		it->key = hq_memdup(key, klen);
		it->klen = klen;
		HASH_ADD_KEYPTR(hh, m->ns[ns], it->key, it->klen, it);
	} else {
		hq_free(it->val);
	}
	it->val = hq_memdup(val, vlen);
	it->vlen = vlen;
	pthread_mutex_unlock(&m->lock);
	return HQ_OK;
}

static int mem_get(struct store *st, enum store_ns ns, const char *key, size_t klen, struct buf *out)
{
	struct mem_store *m = st->impl;
	struct mem_item *it;
	int rc = HQ_ENOTFOUND;
	pthread_mutex_lock(&m->lock);
	HASH_FIND(hh, m->ns[ns], key, klen, it);
	if (it) {
		buf_append(out, it->val, it->vlen);
		rc = HQ_OK;
	}
	pthread_mutex_unlock(&m->lock);
	return rc;
}

static void item_free(struct mem_item *it)
{
	hq_free(it->key);
	hq_free(it->val);
	hq_free(it);
}

static int mem_del(struct store *st, enum store_ns ns, const char *key, size_t klen)
{
	struct mem_store *m = st->impl;
	struct mem_item *it;
	pthread_mutex_lock(&m->lock);
	HASH_FIND(hh, m->ns[ns], key, klen, it);
	if (it)
		HASH_DEL(m->ns[ns], it);
	pthread_mutex_unlock(&m->lock);
	if (!it)
		return HQ_ENOTFOUND;
	item_free(it);
	return HQ_OK;
}

static int mem_iter(struct store *st, enum store_ns ns, store_iter_cb cb, void *ctx)
{
	struct mem_store *m = st->impl;
	struct mem_item *it, *tmp;
	pthread_mutex_lock(&m->lock);
	HASH_ITER(hh, m->ns[ns], it, tmp)
		if (!cb(ctx, it->key, it->klen, it->val, it->vlen))
			break;
	pthread_mutex_unlock(&m->lock);
	return HQ_OK;
}

static size_t mem_count(struct store *st, enum store_ns ns)
{
	struct mem_store *m = st->impl;
	pthread_mutex_lock(&m->lock);
	size_t n = HASH_COUNT(m->ns[ns]);
	pthread_mutex_unlock(&m->lock);
	return n;
}

static void mem_close(struct store *st)
{
	struct mem_store *m = st->impl;
	for (int ns = 0; ns < STORE_NS_COUNT; ns++) {
		struct mem_item *it, *tmp;
		HASH_ITER(hh, m->ns[ns], it, tmp) {
			HASH_DEL(m->ns[ns], it);
			item_free(it);
		}
	}
	pthread_mutex_destroy(&m->lock);
	hq_free(m);
}

static const struct store_ops mem_ops = {
	.name = "memory",
	.durable = false,
	.put = mem_put,
	.get = mem_get,
	.del = mem_del,
	.iter = mem_iter,
	.count = mem_count,
	.close = mem_close,
};

struct store *store_mem_new(void)
{
	struct store *st = hq_calloc(1, sizeof(*st));
	struct mem_store *m = hq_calloc(1, sizeof(*m));
	pthread_mutex_init(&m->lock, NULL);
	st->ops = &mem_ops;
	st->impl = m;
	return st;
}

int store_open_backend(const struct hq_config *cfg, struct store **out, char *err, size_t errlen)
{
	switch (cfg->session_store) {
	case CONF_STORE_MEMORY:
		*out = store_mem_new();
		return HQ_OK;
	case CONF_STORE_LOCAL:
	case CONF_STORE_REDIS:
		break;
	}
	snprintf(err, errlen, "session.store = %s: this backend is not built yet; use memory",
		 cfg->session_store == CONF_STORE_LOCAL ? "local" : "redis");
	*out = NULL;
	return HQ_EINVAL;
}

void store_free(struct store *st)
{
	if (!st)
		return;
	st->ops->close(st);
	hq_free(st);
}
