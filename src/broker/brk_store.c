/*
 * brk_store.c - the broker's side of persistence: which state is written to
 * the store and when. A persistent session is written when it goes offline
 * and deleted when it ends; volatile backends (memory) are skipped, since the
 * live session already is the in-memory copy.
 */
#include "broker/brk_int.h"
#include "broker/sess_serial.h"
#include "core/err.h"
#include "core/log.h"
#include "store/store.h"

#include <string.h>

int brk_store_open(struct broker *b, char *err, size_t errlen)
{
	return store_open_backend(b->cfg, &b->store, err, errlen);
}

void brk_store_close(struct broker *b)
{
	store_free(b->store);
	b->store = NULL;
}

void brk_store_session_save(struct broker *b, struct session *s)
{
	if (!b->store || !b->store->ops->durable)
		return;
	struct buf blob = { 0 };
	sess_serialize(s, &blob);
	int rc = store_put(b->store, STORE_NS_SESSION, s->client_id, strlen(s->client_id),
			   blob.data, blob.len);
	if (rc != HQ_OK)
		log_error("store: cannot save session client_id=%s: %s", s->client_id, hq_strerror(rc));
	buf_free(&blob);
}

void brk_store_session_delete(struct broker *b, struct session *s)
{
	if (!b->store || !b->store->ops->durable)
		return;
	store_del(b->store, STORE_NS_SESSION, s->client_id, strlen(s->client_id));
}
