/*
 * store.h - the persistence interface: a key/value store with namespaces,
 * behind which session and retained-message state lives. Backends: memory
 * (this file's store_mem.c); the embedded on-disk and Redis backends plug in
 * through the same struct store_ops.
 *
 * Values are opaque serialised blobs (broker/sess_serial.c defines the session
 * format). Ownership: put copies key and value; get appends to a caller-owned
 * buf; iteration passes borrowed pointers valid during the callback only.
 */
#ifndef HQ_STORE_H
#define HQ_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

enum store_ns {
	STORE_NS_SESSION = 0,     /* client id -> serialised session */
	STORE_NS_RETAINED,        /* topic -> serialised message */
	STORE_NS_COUNT
};

struct store;
struct hq_config;

typedef bool (*store_iter_cb)(void *ctx, const char *key, size_t klen, const uint8_t *val,
			      size_t vlen);

struct store_ops {
	const char *name;
	bool durable;             /* survives a restart: worth writing to */
	int (*put)(struct store *st, enum store_ns ns, const char *key, size_t klen,
		   const void *val, size_t vlen);
	int (*get)(struct store *st, enum store_ns ns, const char *key, size_t klen, struct buf *out);
	int (*del)(struct store *st, enum store_ns ns, const char *key, size_t klen);
	int (*iter)(struct store *st, enum store_ns ns, store_iter_cb cb, void *ctx);
	size_t (*count)(struct store *st, enum store_ns ns);
	void (*close)(struct store *st);
};

struct store {
	const struct store_ops *ops;
	void *impl;
};

/* Open the backend chosen by session.store. HQ_OK, or HQ_EINVAL with err set. */
int store_open_backend(const struct hq_config *cfg, struct store **out, char *err, size_t errlen);
void store_free(struct store *st);
/* The in-memory backend (also used by unit tests). */
struct store *store_mem_new(void);

static inline int store_put(struct store *st, enum store_ns ns, const char *key, size_t klen,
			    const void *val, size_t vlen)
{
	return st->ops->put(st, ns, key, klen, val, vlen);
}
static inline int store_get(struct store *st, enum store_ns ns, const char *key, size_t klen,
			    struct buf *out)
{
	return st->ops->get(st, ns, key, klen, out);
}
static inline int store_del(struct store *st, enum store_ns ns, const char *key, size_t klen)
{
	return st->ops->del(st, ns, key, klen);
}

#endif
