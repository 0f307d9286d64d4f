/*
 * brk_store_shared.c - sessions in a store that every node shares (redis):
 * any node can resume a session another node stored.
 *
 * A CONNECT (clean start 0) whose client id no node holds in memory (the
 * registry missed, and with a cluster no peer answered that it has it)
 * reads the store before it is answered: the node that held the session may
 * have died. The read is a batch like the writes (store_batch_read), so it
 * sees every write this node submitted before it; the connection waits
 * (CS_WAIT, not read) meanwhile. What the read returns becomes a session
 * owned by this worker (brk_store_build), registered and routed here; its
 * first write names this node the owner in the store, after which the old
 * owner's late writes are ignored there (fencing in the backend).
 *
 * Ownership: struct store_wait entries belong to the worker's
 * w->store_waits and point at a connection of that worker; a connection that
 * closes while waiting removes its entry (brk_store_conn_free), so a late
 * read result finds nothing and is dropped.
 */
#include "broker/brk_int.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "store/store.h"

#include <string.h>

struct store_wait {
	uint64_t token;
	struct conn *c;
	UT_hash_handle hh;
};

bool brk_store_shared(const struct broker *b)
{
	return b->store_run && b->store->ops->load_session;
}

bool brk_store_connect_read(struct conn *c)
{
	WK_ASSERT_OWNER(c->w);
	struct worker *w = c->w;
	struct broker *b = w->b;
	if (!brk_store_shared(b) || c->clean_start || c->store_read)
		return false;
	struct store_wait *sw = hq_calloc(1, sizeof(*sw));
	sw->token = gate_token_new(w);
	sw->c = c;
	HASH_ADD(hh, w->store_waits, token, sizeof(sw->token), sw);
	/* not read until the answer: what the client pipelined waits in the socket */
	c->state = CS_WAIT;
	c->paused = true;
	c->store_wait = true;
	ev_io_set(w->loop, &c->io, 0);
	/* after this worker's writes so far: the read sees them */
	brk_store_flush(w);
	struct store_batch *sb = store_batch_read((uint32_t)w->id, STORE_READ_SESSION, c->client_id,
						  strlen(c->client_id));
	store_batch_add_token(sb, sw->token);
	store_runner_submit(b->store_run, sb);
	return true;
}

/* The wait of sw is over: c is read again. Returns c if its CONNECT goes on. */
static struct conn *wait_end(struct worker *w, struct store_wait *sw)
{
	struct conn *c = sw->c;
	HASH_DEL(w->store_waits, sw);
	hq_free(sw);
	c->store_wait = false;
	if (c->state != CS_WAIT)
		return NULL;
	c->paused = false;
	if (ev_io_set(w->loop, &c->io, EV_READ) != HQ_OK) {
		conn_close(c, -1, "epoll failed");
		return NULL;
	}
	return c;
}

void brk_store_read_done(struct worker *w, struct store_batch *sb)
{
	WK_ASSERT_OWNER(w);
	struct store_wait *sw = NULL;
	if (sb->n_tokens)
		HASH_FIND(hh, w->store_waits, &sb->tokens[0], sizeof(sb->tokens[0]), sw);
	struct conn *c = sw ? wait_end(w, sw) : NULL;
	if (!c)
		return; /* the client went meanwhile: the session stays in the store */
	c->store_read = true;
	if (sb->status != HQ_OK) {
		brk_connect_stored(c, NULL, true);
		return;
	}
	struct session *s = sb->n_ev ? brk_store_build(w, sb) : NULL;
	brk_connect_stored(c, s, false);
	if (c->state == CS_ACTIVE)
		conn_process_input(c); /* what was pipelined after CONNECT */
}

void brk_store_conn_free(struct conn *c)
{
	if (!c->store_wait)
		return;
	struct store_wait *sw, *tmp;
	HASH_ITER(hh, c->w->store_waits, sw, tmp) {
		if (sw->c == c) {
			HASH_DEL(c->w->store_waits, sw);
			hq_free(sw);
		}
	}
	c->store_wait = false;
}
