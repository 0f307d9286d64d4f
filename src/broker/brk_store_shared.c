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
 * A node unreachable for cluster.heartbeat_timeout (clu_route.c) has its
 * sessions adopted by one survivor (the first name among the nodes up): it
 * lists the sessions the store still names the dead node owner of, reads
 * each, and resumes it here offline (routes, expiry, a pending will: a
 * client connected to the dead node lost its connection without DISCONNECT,
 * so its will goes out after its delay). From then on what is published for
 * them is queued here, and the dead node, when it returns, loads none of
 * them.
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

#include <stdatomic.h>
#include <string.h>

struct store_wait {
	uint64_t token;
	struct conn *c;
	UT_hash_handle hh;
};

/* A read without a waiting connection says what it is for: sb->user points
 * at one of these structs, whose first member is the purpose. */
enum read_purpose { READ_ADOPT = 1, READ_MARKS };

/* A QoS 2 id's marks: its session's read (the client id is the read key). */
struct marks_read {
	uint8_t purpose;          /* READ_MARKS */
	uint16_t pid;
};

/* A resend asks again if an answer took longer than this (the session
 * moved to another worker meanwhile, whose inbox never got the answer). */
#define READ_AGAIN_MS 3000

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

bool brk_store_take(struct worker *w, struct session *s)
{
	WK_ASSERT_OWNER(w);
	struct broker *b = w->b;
	size_t idlen = strlen(s->client_id);
	struct session *e;
	pthread_mutex_lock(&b->reg_lock);
	HASH_FIND(reg_hh, b->registry, s->client_id, idlen, e);
	if (!e) {
		s->in_registry = true;
		sess_ref(s); /* the registry's */
		HASH_ADD_KEYPTR(reg_hh, b->registry, s->client_id, idlen, s);
	}
	pthread_mutex_unlock(&b->reg_lock);
	if (e) {
		sess_unref(s); /* never registered nor routed: just freed */
		return false;
	}
	/* this node owns it now, in the store too (the old owner's late
	 * writes are dropped there) */
	brk_store_session_take(s);
	struct sess_sub *sub, *tmp;
	HASH_ITER(hh, s->subs, sub, tmp) {
		brk_route_broadcast(w, WQ_ROUTE_ADD, s, sub->filter, sub->options, sub->sub_id);
		brk_cluster_route(w, true, sub->filter);
	}
	return true;
}

static void adopt_list_done(struct worker *w, struct store_batch *sb);
static void adopt_session_done(struct worker *w, struct store_batch *sb);

void brk_store_marks_read(struct session *s, struct rx_unconf *u, int64_t now_ms)
{
	struct worker *w = s->w;
	WK_ASSERT_OWNER(w);
	if (!w->b->store_run || (u->read_at && now_ms - u->read_at < READ_AGAIN_MS))
		return;
	u->read_at = now_ms ? now_ms : 1;
	brk_store_flush(w); /* the read sees this worker's writes so far */
	struct store_batch *rb = store_batch_read((uint32_t)w->id, STORE_READ_SESSION, s->client_id,
						  strlen(s->client_id));
	struct marks_read *mr = hq_calloc(1, sizeof(*mr));
	mr->purpose = READ_MARKS;
	mr->pid = u->pid;
	rb->user = mr;
	store_runner_submit(w->b->store_run, rb);
}

/* The read of brk_store_marks_read: the marks of the id become its skip set. */
static void marks_read_done(struct worker *w, struct store_batch *sb)
{
	struct marks_read *mr = sb->user;
	uint16_t pid = mr->pid;
	hq_free(mr);
	struct broker *b = w->b;
	struct session *s;
	pthread_mutex_lock(&b->reg_lock);
	HASH_FIND(reg_hh, b->registry, sb->read_key.p, sb->read_key.len, s);
	if (s)
		sess_ref(s);
	pthread_mutex_unlock(&b->reg_lock);
	if (!s)
		return;
	struct rx_unconf *u = s->w == w ? sess_rx_unconf_take(s, pid) : NULL;
	if (u) {
		u->read_at = 0;
		if (u->unread && sb->status == HQ_OK) {
			u->unread = false;
			sess_rx_unconf_give_back(s, u);
			for (uint32_t i = 0; i < sb->n_ev; i++) {
				const struct store_ev *ev = &sb->ev[i];
				if (ev->kind == STORE_EV_RXID_MARK && ev->u.mark.pid == pid)
					sess_rx_unconf_mark(s, pid, ev->u.mark.target.p,
							    ev->u.mark.target.len);
			}
			log_info("client_id=%s: QoS 2 packet id %u is stored for %u targets: its "
				 "resend goes to the others", s->client_id, pid, u->n_marks);
		} else {
			sess_rx_unconf_give_back(s, u); /* the next resend asks again */
		}
	}
	sess_unref(s);
}

void brk_store_read_done(struct worker *w, struct store_batch *sb)
{
	WK_ASSERT_OWNER(w);
	if (sb->read == STORE_READ_OWNED) {
		adopt_list_done(w, sb);
		return;
	}
	if (!sb->n_tokens) {
		const uint8_t *purpose = sb->user;
		if (purpose && *purpose == READ_MARKS)
			marks_read_done(w, sb);
		else
			adopt_session_done(w, sb);
		return;
	}
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

/* ---- adopting a dead node's sessions ---- */

/* One adoption: the dead node's name and the session reads still out (any
 * worker completes one: atomic). The last one tells the cluster. */
struct adoption {
	uint8_t purpose;          /* READ_ADOPT */
	atomic_uint left;
	char *owner;              /* owned */
};

/* Shutdown stops the store thread (brk_store_stop) before it drains the
 * inboxes, so the answers of an adoption's reads may arrive after it: the
 * store takes no more reads, and broker_shutdown has ended (or is about to
 * end) every session it will ever free. An adoption that meets this stops
 * where it is: what it did not take stays in the store, still owned by the
 * dead node (nothing is lost: a later adopter, a reconnecting client or the
 * dead node itself reads it there). */
static bool adoption_stopped(const struct worker *w)
{
	return !w->b->store_run;
}

static void adoption_done(struct worker *w, struct adoption *a)
{
	if (adoption_stopped(w)) {
		/* the cluster thread is gone too: nobody to tell */
		log_notice("store: shutting down: the sessions of %s not resumed yet stay in the "
			   "store", a->owner);
		hq_free(a->owner);
		hq_free(a);
		return;
	}
	/* every worker has the adopted routes in its inbox before the cluster
	 * withdraws the dead node's (clu_route_adopted): no publish between */
	wk_flush_outboxes(w);
	if (w->b->clu) {
		struct clu_req r = { .kind = CRQ_ADOPTED };
		r.key = a->owner; /* moves */
		clu_req_push(&w->clu.out, &r);
	} else {
		hq_free(a->owner);
	}
	hq_free(a);
}

void brk_store_adopt_node(struct worker *w, const char *owner)
{
	WK_ASSERT_OWNER(w);
	struct broker *b = w->b;
	if (!brk_store_shared(b))
		return;
	brk_store_flush(w);
	store_runner_submit(b->store_run,
			    store_batch_read((uint32_t)w->id, STORE_READ_OWNED, owner, strlen(owner)));
}

static void adopt_list_done(struct worker *w, struct store_batch *sb)
{
	struct broker *b = w->b;
	struct adoption *a = hq_calloc(1, sizeof(*a));
	a->purpose = READ_ADOPT;
	a->owner = hq_strndup((const char *)sb->read_key.p, sb->read_key.len);
	if (sb->status != HQ_OK) {
		log_error("store: the sessions of %s could not be listed: %s", a->owner,
			  hq_strerror(sb->status));
		adoption_done(w, a); /* its routes go all the same: a stall is worse */
		return;
	}
	uint32_t n = 0;
	for (uint32_t i = 0; i < sb->n_ev; i++)
		n += sb->ev[i].kind == STORE_EV_SESSION_PUT;
	atomic_init(&a->left, n);
	if (adoption_stopped(w)) {
		adoption_done(w, a); /* its reads would go to a store thread that has ended */
		return;
	}
	log_notice("store: resuming %u sessions of %s", n, a->owner);
	if (!n) {
		adoption_done(w, a);
		return;
	}
	for (uint32_t i = 0; i < sb->n_ev; i++) {
		const struct store_ev *ev = &sb->ev[i];
		if (ev->kind != STORE_EV_SESSION_PUT)
			continue;
		/* each on the worker its client id hashes to, like a load */
		uint32_t hash = brk_hash((const char *)ev->client_id.p, ev->client_id.len);
		struct store_batch *rb = store_batch_read(hash % (uint32_t)b->n_workers,
							  STORE_READ_SESSION, ev->client_id.p,
							  ev->client_id.len);
		rb->user = a;
		store_runner_submit(b->store_run, rb);
	}
}

static void adopt_one(struct worker *w, struct store_batch *sb)
{
	if (sb->status != HQ_OK || !sb->n_ev)
		return; /* gone meanwhile (its client reconnected elsewhere and ended it) */
	struct session *s = brk_store_build(w, sb);
	if (!s)
		return;
	if (!brk_store_take(w, s))
		return; /* its client is back here already: that session wins */
	sess_offline_update(s);
	log_info("client_id=%s session of a dead node resumed here (%u subscriptions, %u queued, "
		 "%u in flight)", s->client_id, s->n_subs, s->queue.len, s->n_inflight);
	sess_unref(s);
}

static void adopt_session_done(struct worker *w, struct store_batch *sb)
{
	struct adoption *a = sb->user;
	/* stopped: a session built now would outlive shutdown's end of them all */
	if (!adoption_stopped(w))
		adopt_one(w, sb);
	/* its routes into every inbox before the count says so: the last
	 * reader's CRQ_ADOPTED must find every adopted route delivered */
	wk_flush_outboxes(w);
	if (a && atomic_fetch_sub_explicit(&a->left, 1, memory_order_acq_rel) == 1)
		adoption_done(w, a);
}
