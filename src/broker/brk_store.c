/*
 * brk_store.c - the broker's side of persistence (ARCHITECTURE.md
 * "Persistence"): which changes become store events, the worker's batch of
 * the current loop turn, and the completions coming back.
 *
 * Every hook is called on the thread owning the state it describes and
 * appends to that worker's batch (w->store_batch); the before-sleep hook
 * hands the batch to the store runner (brk_store_flush), whose thread applies
 * it and posts it back to the worker's inbox (WQ_STORE_DONE), where the gate
 * tokens it carried are released (brk_store_done).
 *
 * A backend that does not survive a restart (memory) gets no runner:
 * b->store_run stays NULL and every hook returns after one test, so nothing
 * is built on the hot path. Persisted: retained messages (every write, this
 * node's and the cluster's), persistent sessions' headers, subscriptions,
 * QoS >= 1 queue entries with their messages (one stored copy per message,
 * put again in every batch that references it: a batch never depends on
 * another worker's), and incoming QoS 2 ids.
 *
 * Gates: a request's response waits for what the request stored
 * (brk_store_gate: its worker's batch holds the token) and for the
 * deliveries it posted to other workers (their batches hold the token,
 * encoded with the publisher's worker id: brk_store_tok_remote; the
 * completion posts it back, brk_store_ack).
 */
#include "broker/brk_int.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "store/store.h"

#include <stdio.h>
#include <string.h>

/* A message id already put in the worker's current batch. */
struct store_seen {
	uint64_t id;
	UT_hash_handle hh;
};

#define TOK_WORKER_SHIFT 56
#define TOK_MASK ((UINT64_C(1) << TOK_WORKER_SHIFT) - 1)

#define BYTES(p, n) ((struct store_bytes){ (const uint8_t *)(p), (uint32_t)(n) })

/* Runner thread: hand the batch back to the worker that built it. */
static void store_done_post(void *arg, struct store_batch *sb)
{
	struct broker *b = arg;
	struct wq_entry e = { .kind = WQ_STORE_DONE, .u.batch = sb };
	wk_inbox_append(&b->workers[sb->owner], &e, 1);
}

int brk_store_open(struct broker *b, char *err, size_t errlen)
{
	return store_open_backend(b->cfg, &b->store, err, errlen);
}

/* After the load (brk_store_load.c): the store thread. */
int brk_store_start(struct broker *b, char *err, size_t errlen)
{
	if (!b->store->ops->durable)
		return HQ_OK;
	int rc = store_runner_start(b->store, store_done_post, b, &b->store_run);
	if (rc != HQ_OK)
		snprintf(err, errlen, "store %s: cannot start its thread", b->store->ops->name);
	return rc;
}

void brk_store_stop(struct broker *b)
{
	/* everything submitted is applied and posted back to the inboxes,
	 * which the caller drains afterwards; no worker runs any more, only
	 * the HTTP thread may still look (broker_store_info) */
	pthread_mutex_lock(&b->store_info_lock);
	struct store_runner *r = b->store_run;
	b->store_run = NULL;
	pthread_mutex_unlock(&b->store_info_lock);
	store_runner_stop(r);
}

void brk_store_close(struct broker *b)
{
	brk_store_stop(b);
	store_free(b->store);
	b->store = NULL;
}

static struct store_batch *batch(struct worker *w)
{
	if (!w->store_batch)
		w->store_batch = store_batch_new((uint32_t)w->id);
	w->store_nev++; /* for brk_store_mark: the caller appends one event */
	return w->store_batch;
}

/* A turn that fans out to many sessions would make one huge batch (one
 * publish to 10,000 offline sessions is 10,000 entries): past
 * BATCH_MAX_EVENTS the batch is handed over and a new one begins, so no
 * single apply (one Redis script, one LMDB transaction) runs for long.
 * Called only where a split is harmless: before a message and its entry. */
#define BATCH_MAX_EVENTS 4096
static void maybe_split(struct worker *w)
{
	if (w->store_batch && w->store_batch->n_ev >= BATCH_MAX_EVENTS)
		brk_store_flush(w);
}

static void seen_clear(struct worker *w)
{
	struct store_seen *e, *tmp;
	HASH_ITER(hh, w->store_msgs, e, tmp) {
		HASH_DEL(w->store_msgs, e);
		hq_free(e);
	}
}

void brk_store_flush(struct worker *w)
{
	WK_ASSERT_OWNER(w);
	struct store_batch *sb = w->store_batch;
	if (!sb)
		return;
	w->store_batch = NULL;
	w->store_first = false;
	seen_clear(w);
	if (!w->b->store_run) { /* stopping: nothing takes it any more */
		store_batch_free(sb);
		return;
	}
	store_runner_submit(w->b->store_run, sb);
}

void brk_store_hold(struct worker *w, uint64_t token)
{
	WK_ASSERT_OWNER(w);
	if (!w->store_batch)
		w->store_batch = store_batch_new((uint32_t)w->id);
	store_batch_add_token(w->store_batch, token); /* a token is not an event: no mark */
}

uint32_t brk_store_mark(const struct worker *w)
{
	return (uint32_t)w->store_nev; /* compared for equality only */
}

uint64_t brk_store_tok_remote(int wid, uint64_t token)
{
	assert(token <= TOK_MASK);
	return ((uint64_t)(wid + 1) << TOK_WORKER_SHIFT) | token;
}

void brk_store_tok_split(uint64_t remote_token, int self, int *wid, uint64_t *token)
{
	int id = (int)(remote_token >> TOK_WORKER_SHIFT) - 1;
	*wid = id < 0 ? self : id;
	*token = remote_token & TOK_MASK;
}

void brk_store_ack(struct worker *w, uint64_t remote_token, bool failed)
{
	WK_ASSERT_OWNER(w);
	int wid = (int)(remote_token >> TOK_WORKER_SHIFT) - 1;
	uint64_t token = remote_token & TOK_MASK;
	if (wid < 0 || wid == w->id) {
		brk_token_done(w, token, failed);
		return;
	}
	struct wq_entry e = { .kind = WQ_GATE_RELEASE, .options = failed };
	e.u.token = token;
	wk_post(w, &w->b->workers[wid], &e);
}

bool brk_store_gate(struct conn *c, uint32_t mark, uint64_t tok, uint32_t pending)
{
	struct worker *w = c->w;
	WK_ASSERT_OWNER(w);
	bool local = brk_store_mark(w) != mark;
	if (!local && !pending)
		return false;
	if (!tok)
		tok = gate_token_new(w);
	if (local)
		brk_store_hold(w, tok);
	gate_open(c, tok, pending + local);
	return true;
}

static struct store_ev sess_ev(const struct session *s, uint8_t kind);

/* A batch failed because the store lacks what it builds on (a session
 * header or message: the store lost data, e.g. a Redis that came back
 * empty): the sessions it touched are written again whole from memory, so
 * the store catches up instead of failing them for ever. */
static void rewrite_sessions(struct worker *w, const struct store_batch *sb)
{
	struct broker *b = w->b;
	struct session **done = NULL; /* rewritten already (once each) */
	uint32_t n_done = 0;
	for (uint32_t i = 0; i < sb->n_ev; i++) {
		const struct store_ev *ev = &sb->ev[i];
		if (!ev->client_id.len || ev->kind == STORE_EV_SESSION_DEL)
			continue;
		struct session *s;
		pthread_mutex_lock(&b->reg_lock);
		HASH_FIND(reg_hh, b->registry, ev->client_id.p, ev->client_id.len, s);
		if (s)
			sess_ref(s);
		pthread_mutex_unlock(&b->reg_lock);
		if (!s)
			continue;
		bool seen = false;
		for (uint32_t k = 0; k < n_done && !seen; k++)
			seen = done[k] == s;
		if (!seen && s->w == w && s->stored && !s->ended) {
			log_notice("store: client_id=%s written again whole (the store lacked it)",
				   s->client_id);
			s->stored = false;
			brk_store_session_put(s);
			done = hq_realloc(done, (n_done + 1) * sizeof(*done));
			done[n_done++] = s; /* compared only, never dereferenced */
		}
		sess_unref(s);
	}
	hq_free(done);
}

void brk_store_done(struct worker *w, struct store_batch *sb)
{
	WK_ASSERT_OWNER(w);
	if (sb->read) {
		brk_store_read_done(w, sb);
		store_batch_free(sb);
		return;
	}
	for (uint32_t i = 0; i < sb->n_tokens; i++)
		brk_store_ack(w, sb->tokens[i], sb->status != HQ_OK);
	if (sb->status != HQ_OK)
		log_warning("store: %u changes of worker %d not stored: %s", sb->n_ev, w->id,
			    hq_strerror(sb->status));
	if (sb->status == HQ_ENOTFOUND)
		rewrite_sessions(w, sb);
	store_batch_free(sb);
}

/* Monotonic ms (the broker's clock) as wall ms (the store's: it outlives
 * the process); 0 stays 0. now_mono: the caller's monotonic now. */
static int64_t mono_to_wall(int64_t now_mono, int64_t mono)
{
	if (!mono)
		return 0;
	return mono - now_mono + clock_wall_ms();
}

static int64_t to_wall(const struct worker *w, int64_t mono)
{
	return mono_to_wall(ev_now_ms(w->loop), mono);
}

static void msg_to_store(int64_t now_mono, const struct brk_msg *m, struct store_msg *out)
{
	*out = (struct store_msg){
		.topic = BYTES(m->topic, m->topic_len),
		.props = BYTES(m->props, m->props_len),
		.payload = BYTES(m->payload, m->payload_len),
		.expire_at = m->has_expiry ? mono_to_wall(now_mono, m->expire_at) : 0,
		.expiry = m->expiry,
		.pub_hash = m->pub_hash,
		.ts_wall = m->stamp ? m->stamp->ts.wall_ms : 0,
		.ts_logical = m->stamp ? m->stamp->ts.logical : 0,
		.origin = m->stamp ? BYTES(m->stamp->origin, strlen(m->stamp->origin))
				   : BYTES(NULL, 0),
		.qos = m->qos,
		.retain = m->retain,
		.has_expiry = m->has_expiry,
	};
}

/* Retained writes come from the workers and the cluster thread: each is its
 * own batch, submitted under retain_lock by the one writer (brk_retain.c),
 * so the store applies them in the order the retained tree saw them. */
bool brk_store_retain(struct broker *b, uint32_t owner, const struct brk_msg *m, uint64_t token)
{
	/* any thread (workers, the cluster thread): serialised by retain_lock */
	/* $-topics ($SYS/brokers/<node>/...) are the node's live state */
	if (!b->store_run || m->topic[0] == '$')
		return false;
	struct store_ev e = { .kind = m->payload_len ? STORE_EV_RETAIN_PUT : STORE_EV_RETAIN_DEL };
	msg_to_store(clock_mono_ms(), m, &e.u.msg);
	struct store_batch *sb = store_batch_new(owner);
	store_batch_add(sb, &e);
	if (token)
		store_batch_add_token(sb, token);
	store_runner_submit(b->store_run, sb);
	return token != 0;
}

static struct store_ev sess_ev(const struct session *s, uint8_t kind)
{
	return (struct store_ev){ .kind = kind, .client_id = BYTES(s->client_id, strlen(s->client_id)) };
}

static void sub_put(struct worker *w, const struct session *s, const struct sess_sub *sub)
{
	struct store_ev e = sess_ev(s, STORE_EV_SUB_PUT);
	e.u.sub.filter = BYTES(sub->filter, strlen(sub->filter));
	e.u.sub.options = sub->options;
	e.u.sub.sub_id = sub->sub_id;
	store_batch_add(batch(w), &e);
}

static void qent_put_any(struct session *s, struct deliv *d);

static void store_contents(struct worker *w, struct session *s)
{
	struct sess_sub *sub, *tmp;
	HASH_ITER(hh, s->subs, sub, tmp)
		sub_put(w, s, sub);
	for (uint32_t i = 0; i < s->n_inflight; i++)
		qent_put_any(s, &s->inflight[i]);
	for (uint32_t i = 0; i < s->queue.len; i++)
		qent_put_any(s, dq_at(&s->queue, i));
	for (uint32_t i = 0; i < s->n_rx_pids; i++)
		brk_store_rxid(s, s->rx_pids[i], true);
}

static void session_put(struct session *s, bool take);

void brk_store_session_put(struct session *s)
{
	session_put(s, false);
}

/* A session read from a shared store becomes this node's: a plain header
 * write, which moves the owner (its contents are in the store already). */
void brk_store_session_take(struct session *s)
{
	session_put(s, true);
}

static void session_put(struct session *s, bool take)
{
	WK_ASSERT_OWNER(s->w);
	struct worker *w = s->w;
	if (!w->b->store_run || s->remote)
		return;
	/* a session that ends with its connection is stored only while a will
	 * waits on that connection: if the node dies, the will still goes out
	 * (after a restart, or from the node that adopts it) */
	bool will_only = s->expiry == 0 && s->will && s->conn;
	if (s->expiry == 0 && !will_only) {
		/* not persistent (any more): it ends with its connection */
		if (!s->stored && brk_store_shared(w->b) && s->conn) {
			/* a clean start discards what any node stored for this id
			 * [MQTT-3.1.2-4]: take it (fencing) and drop it */
			struct store_ev put = sess_ev(s, STORE_EV_SESSION_PUT);
			const char *node = w->b->cfg->node_name;
			put.u.sess.owner = BYTES(node, strlen(node));
			store_batch_add(batch(w), &put);
			struct store_ev del = sess_ev(s, STORE_EV_SESSION_DEL);
			store_batch_add(batch(w), &del);
		}
		brk_store_session_delete(s);
		return;
	}
	struct store_ev e = sess_ev(s, STORE_EV_SESSION_PUT);
	const char *node = w->b->cfg->node_name;
	e.u.sess.owner = BYTES(node, strlen(node));
	e.u.sess.expiry = s->expiry;
	e.u.sess.expire_at = to_wall(w, s->expire_at);
	e.u.sess.will_at = to_wall(w, s->will_at);
	e.u.sess.will_delay = s->will_delay;
	e.u.sess.version = s->version;
	e.u.sess.update = s->stored && !take;
	if (s->will) {
		e.u.sess.has_will = true;
		msg_to_store(ev_now_ms(w->loop), s->will, &e.u.sess.will);
	}
	if (!s->stored) {
		/* records of this client id may exist (another node's with a
		 * shared store, a replaced stale copy here): take them (the
		 * header names this node: the fence), drop them, start afresh */
		store_batch_add(batch(w), &e);
		struct store_ev del = sess_ev(s, STORE_EV_SESSION_DEL);
		store_batch_add(batch(w), &del);
	}
	store_batch_add(batch(w), &e);
	if (!s->stored) {
		/* first time in the store: what it already holds goes along (a
		 * session handed over by another node, or one that just became
		 * persistent) */
		s->stored = true;
		if (!will_only)
			store_contents(w, s);
	}
}

void brk_store_session_delete(struct session *s)
{
	WK_ASSERT_OWNER(s->w);
	if (!s->stored)
		return;
	s->stored = false;
	if (!s->w->b->store_run)
		return;
	struct store_ev e = sess_ev(s, STORE_EV_SESSION_DEL);
	store_batch_add(batch(s->w), &e);
}

void brk_store_sub_put(struct session *s, const struct sess_sub *sub)
{
	WK_ASSERT_OWNER(s->w);
	if (s->stored && s->expiry && s->w->b->store_run)
		sub_put(s->w, s, sub);
}

void brk_store_sub_delete(struct session *s, const char *filter)
{
	WK_ASSERT_OWNER(s->w);
	if (!s->stored || !s->w->b->store_run)
		return;
	struct store_ev e = sess_ev(s, STORE_EV_SUB_DEL);
	e.u.sub.filter = BYTES(filter, strlen(filter));
	store_batch_add(batch(s->w), &e);
}

/* ---- queue entries, QoS 2 ids ---- */

bool brk_store_persisting(const struct session *s)
{
	/* expiry 0: stored for its will only (brk_store_session_put) */
	return s->stored && s->expiry && s->w->b->store_run && !s->remote;
}

/* The id of m's one stored copy: given once, by whichever worker asks first. */
static uint64_t msg_store_id(struct broker *b, struct brk_msg *m)
{
	uint64_t id = atomic_load_explicit(&m->store_id, memory_order_acquire);
	if (id)
		return id;
	uint64_t mine = atomic_fetch_add_explicit(&b->next_msg_id, 1, memory_order_relaxed);
	if (atomic_compare_exchange_strong_explicit(&m->store_id, &id, mine, memory_order_acq_rel,
						    memory_order_acquire))
		return mine;
	return id; /* another worker's, taken meanwhile */
}

/* MSG_PUT of m into w's batch unless this batch has it already. */
static uint64_t msg_put(struct worker *w, struct brk_msg *m)
{
	uint64_t id = msg_store_id(w->b, m);
	struct store_seen *e;
	HASH_FIND(hh, w->store_msgs, &id, sizeof(id), e);
	if (e)
		return id;
	e = hq_malloc(sizeof(*e));
	e->id = id;
	HASH_ADD(hh, w->store_msgs, id, sizeof(e->id), e);
	struct store_ev ev = { .kind = STORE_EV_MSG_PUT };
	msg_to_store(ev_now_ms(w->loop), m, &ev.u.msg);
	ev.u.msg.id = id;
	store_batch_add(batch(w), &ev);
	return id;
}

static void qent_state(const struct deliv *d, struct store_qent *q)
{
	q->seq = d->seq;
	q->qos = d->qos;
	q->pid = d->pid;
	q->flags = (d->flags & DV_RETAIN) ? STORE_QF_RETAIN : 0;
	if (d->flags & DV_PUBREL) {
		q->state = STORE_Q_PUBREL;
	} else if (d->pid) {
		q->state = STORE_Q_INFLIGHT;
		q->flags |= STORE_QF_SENT; /* sent (or being sent): a resend carries DUP */
	} else {
		q->state = STORE_Q_QUEUED;
	}
}

/* The entry just put holds a QoS 2 message delivered for the first time:
 * its mark goes into the same batch (brk_rxmark.c). Only then: a mark
 * written later (a session made persistent afterwards) could outlive its
 * id's PUBREL and hide a later message that reuses the id. */
static void rx_mark(struct worker *w, const struct session *s, const struct deliv *d)
{
	char small[256];
	size_t need = 2 + strlen(d->share_group ? d->share_group : s->client_id);
	char *target = need <= sizeof(small) ? small : hq_malloc(need);
	size_t n = brk_rxmark_target(s, d, target, need);
	const struct msg_rx *rx = d->msg->rx;
	struct store_ev e = { .kind = STORE_EV_RXID_MARK,
			      .client_id = BYTES(rx->client_id, strlen(rx->client_id)) };
	e.u.mark.pid = rx->pid;
	e.u.mark.target = BYTES(target, n);
	store_batch_add(batch(w), &e); /* copies target */
	if (target != small)
		hq_free(target);
}

void brk_store_qent_put(struct session *s, struct deliv *d)
{
	WK_ASSERT_OWNER(s->w);
	if (!d->qos || !d->msg || d->seq || !brk_store_persisting(s))
		return;
	struct worker *w = s->w;
	maybe_split(w); /* never between the message and its entry */
	struct store_ev e = sess_ev(s, STORE_EV_QENT_PUT);
	e.u.qent.msg_id = msg_put(w, d->msg);
	d->seq = ++s->store_seq;
	qent_state(d, &e.u.qent);
	e.u.qent.sub_ids = d->n_sub_ids ? BYTES(deliv_sub_ids(d), d->n_sub_ids * sizeof(uint32_t))
					: BYTES(NULL, 0);
	if (d->share_group)
		e.u.qent.share_group = BYTES(d->share_group, strlen(d->share_group));
	store_batch_add(batch(w), &e);
	if (d->msg->rx && w->rx_mark == d->msg)
		rx_mark(w, s, d);
}

void brk_store_qent_update(struct session *s, const struct deliv *d)
{
	WK_ASSERT_OWNER(s->w);
	if (!d->seq || !brk_store_persisting(s))
		return;
	struct store_ev e = sess_ev(s, STORE_EV_QENT_UPDATE);
	qent_state(d, &e.u.qent);
	store_batch_add(batch(s->w), &e);
}

void brk_store_qent_del(struct session *s, struct deliv *d)
{
	WK_ASSERT_OWNER(s->w);
	uint64_t seq = d->seq;
	d->seq = 0;
	if (!seq || !brk_store_persisting(s))
		return;
	struct store_ev e = sess_ev(s, STORE_EV_QENT_DEL);
	e.u.qent.seq = seq;
	store_batch_add(batch(s->w), &e);
}

void brk_store_rxid(struct session *s, uint16_t pid, bool add)
{
	WK_ASSERT_OWNER(s->w);
	if (!brk_store_persisting(s))
		return;
	struct store_ev e = sess_ev(s, add ? STORE_EV_RXID_ADD : STORE_EV_RXID_DEL);
	e.u.pid = pid;
	store_batch_add(batch(s->w), &e);
	/* Exactly once: the id must not be stored after the entries another
	 * worker stores for the same message, or a crash between the two
	 * leaves the message queued while the publisher's resend looks new.
	 * The runner applies batches in the order they are submitted, so this
	 * batch is submitted before the deliveries are posted (before_sleep,
	 * mid_batch in brk_worker.c). */
	if (add)
		s->w->store_first = true;
}

/* An entry the store has not seen, whatever its state (store_contents). */
static void qent_put_any(struct session *s, struct deliv *d)
{
	d->seq = 0;
	if (d->msg) {
		brk_store_qent_put(s, d);
		return;
	}
	if (!(d->flags & DV_PUBREL) || !brk_store_persisting(s))
		return;
	struct store_ev e = sess_ev(s, STORE_EV_QENT_PUT);
	d->seq = ++s->store_seq;
	qent_state(d, &e.u.qent);
	store_batch_add(batch(s->w), &e);
}

/* Management threads (broker.h). b->store lives until broker_free, after the
 * HTTP server stopped; the runner goes away in broker_shutdown, after
 * b->stopping is set, so it is read only before. */
void broker_store_info(struct broker *b, struct broker_store_info *out)
{
	memset(out, 0, sizeof(*out));
	out->backend = b->store->ops->name;
	out->durable = b->store->ops->durable;
	out->healthy = true;
	const char *d = b->store->ops->describe ? b->store->ops->describe(b->store) : NULL;
	snprintf(out->description, sizeof(out->description), "%s", d ? d : "");
	/* the HTTP thread: the runner is read under store_info_lock, which
	 * brk_store_stop takes to clear the pointer before freeing it */
	pthread_mutex_lock(&b->store_info_lock);
	struct store_runner *r = b->store_run;
	if (r) {
		out->healthy = store_runner_healthy(r);
		out->batches = store_runner_completed(r);
		store_runner_stats(r, &out->retries, &out->failed);
		int64_t since = store_runner_down_since(r);
		if (!out->healthy && since)
			out->down_ms = clock_mono_ms() - since;
	}
	pthread_mutex_unlock(&b->store_info_lock);
}
