/*
 * store_open.c - the backend chosen by session.store, and freeing a store.
 */
#include "store/store.h"
#include "core/conf.h"
#include "core/err.h"
#include "core/mem.h"

int store_open_backend(const struct hq_config *cfg, struct store **out, char *err, size_t errlen)
{
	*out = NULL;
	switch (cfg->session_store) {
	case CONF_STORE_MEMORY:
		*out = store_mem_new();
		return HQ_OK;
	case CONF_STORE_LOCAL:
		return store_lmdb_open(cfg, out, err, errlen);
	case CONF_STORE_REDIS:
		return store_redis_open(cfg, out, err, errlen);
	}
	return HQ_EINVAL;
}

void store_free(struct store *st)
{
	if (!st)
		return;
	st->ops->close(st);
	hq_free(st);
}
