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
 * is built on the hot path. Persisted today: retained messages (every write,
 * this node's and the cluster's), persistent sessions' headers and
 * subscriptions. Messages, queue
 * entries and QoS 2 ids (and the PUBACK/PUBREC gate) come with issue 9.
 */
#include "broker/brk_int.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "store/store.h"

#include <stdio.h>
#include <string.h>

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
	int rc = store_open_backend(b->cfg, &b->store, err, errlen);
	if (rc != HQ_OK || !b->store->ops->durable)
		return rc;
	/* issue 9: rebuild sessions and retained messages from
	 * b->store->ops->load here, before any worker runs */
	rc = store_runner_start(b->store, store_done_post, b, &b->store_run);
	if (rc != HQ_OK)
		snprintf(err, errlen, "store %s: cannot start its thread", b->store->ops->name);
	return rc;
}

void brk_store_stop(struct broker *b)
{
	/* everything submitted is applied and posted back to the inboxes,
	 * which the caller drains afterwards */
	store_runner_stop(b->store_run);
	b->store_run = NULL;
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
	return w->store_batch;
}

void brk_store_flush(struct worker *w)
{
	WK_ASSERT_OWNER(w);
	struct store_batch *sb = w->store_batch;
	if (!sb)
		return;
	w->store_batch = NULL;
	if (!w->b->store_run) { /* stopping: nothing takes it any more */
		store_batch_free(sb);
		return;
	}
	store_runner_submit(w->b->store_run, sb);
}

void brk_store_hold(struct worker *w, uint64_t token)
{
	WK_ASSERT_OWNER(w);
	store_batch_add_token(batch(w), token);
}

void brk_store_done(struct worker *w, struct store_batch *sb)
{
	WK_ASSERT_OWNER(w);
	for (uint32_t i = 0; i < sb->n_tokens; i++) {
		if (sb->status == HQ_OK)
			gate_release(w, sb->tokens[i]);
		else
			gate_fail(w, sb->tokens[i], "store write failed");
	}
	if (sb->status != HQ_OK)
		log_warning("store: %u changes of worker %d not stored: %s", sb->n_ev, w->id,
			    hq_strerror(sb->status));
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
void brk_store_retain(struct broker *b, uint32_t owner, const struct brk_msg *m)
{
	/* any thread (workers, the cluster thread): serialised by retain_lock */
	/* $-topics ($SYS/brokers/<node>/...) are the node's live state */
	if (!b->store_run || m->topic[0] == '$')
		return;
	struct store_ev e = { .kind = m->payload_len ? STORE_EV_RETAIN_PUT : STORE_EV_RETAIN_DEL };
	msg_to_store(clock_mono_ms(), m, &e.u.msg);
	struct store_batch *sb = store_batch_new(owner);
	store_batch_add(sb, &e);
	store_runner_submit(b->store_run, sb);
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

void brk_store_session_put(struct session *s)
{
	WK_ASSERT_OWNER(s->w);
	struct worker *w = s->w;
	if (!w->b->store_run || s->remote)
		return;
	if (s->expiry == 0) {
		/* not persistent (any more): it ends with its connection */
		brk_store_session_delete(s);
		return;
	}
	struct store_ev e = sess_ev(s, STORE_EV_SESSION_PUT);
	e.u.sess.expiry = s->expiry;
	e.u.sess.expire_at = to_wall(w, s->expire_at);
	e.u.sess.will_at = to_wall(w, s->will_at);
	e.u.sess.will_delay = s->will_delay;
	e.u.sess.version = s->version;
	if (s->will) {
		e.u.sess.has_will = true;
		msg_to_store(ev_now_ms(w->loop), s->will, &e.u.sess.will);
	}
	store_batch_add(batch(w), &e);
	if (!s->stored) {
		/* first time in the store: what it already holds goes along */
		s->stored = true;
		struct sess_sub *sub, *tmp;
		HASH_ITER(hh, s->subs, sub, tmp)
			sub_put(w, s, sub);
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
	if (s->stored && s->w->b->store_run)
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
