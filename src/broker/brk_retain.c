/*
 * brk_retain.c - the one writer of the retained set.
 *
 * Every change of b->retained goes through retain_write, under retain_lock:
 * a retained PUBLISH on this node (brk_retain_store, stamped with the node's
 * clock) and a write another node sent (brk_retain_apply, from the cluster
 * thread, kept only if its stamp is the newest: the cluster's last-writer-
 * wins rule, decided by its callback under the same lock). Both reach the
 * store (brk_store_retain) in the order they were applied.
 */
#include "broker/brk_clu.h"
#include "broker/brk_int.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/mem.h"

#include <string.h>

/* Under retain_lock: topic's message becomes m (a reference, consumed; NULL:
 * removed). m's stamp (ts, origin) is set. token: a gate of worker `owner`
 * released once stored (0: none); true if the store took it. */
static bool retain_write(struct broker *b, uint32_t owner, const char *topic, size_t len,
			 struct brk_msg *m, const struct brk_msg *stamped, uint64_t token)
{
	void *old = NULL;
	retain_tree_set(b->retained, topic, len, m, &old);
	bool held = brk_store_retain(b, owner, stamped, token);
	if (old)
		msg_unref(old);
	return held;
}

/* Stamp m (not yet shared with another thread, or under retain_lock). */
static void msg_stamp_set(struct brk_msg *m, struct clu_hlc_ts ts, const char *origin)
{
	if (!m->stamp)
		m->stamp = hq_malloc(sizeof(*m->stamp));
	m->stamp->ts = ts;
	m->stamp->origin = origin;
}

bool brk_retain_store(struct worker *w, struct brk_msg *msg)
{
	WK_ASSERT_OWNER(w);
	struct broker *b = w->b;
	pthread_mutex_lock(&b->retain_lock);
	msg_stamp_set(msg, clu_hlc_now(&b->hlc, (uint64_t)clock_wall_ms()), b->cfg->node_name);
	/* [MQTT-3.3.1-10] an empty payload removes the retained message */
	/* a QoS > 0 publisher's acknowledgement waits for the store too */
	if (retain_write(b, (uint32_t)w->id, msg->topic, msg->topic_len,
			 msg->payload_len ? msg_ref(msg) : NULL, msg, w->store_tok))
		w->store_tok_remote++;
	pthread_mutex_unlock(&b->retain_lock);
	/* $-topics ($SYS/brokers/<node>/...) belong to their node */
	if (!b->clu || msg->topic[0] == '$')
		return false;
	struct clu_req r = { .kind = CRQ_RETAIN, .msg = msg_ref(msg) };
	clu_req_push(&w->clu.out, &r);
	return true;
}

bool brk_retain_apply(struct broker *b, const struct brk_msg_view *v, bool del,
		      struct clu_hlc_ts ts, const char *origin, brk_retain_newer_fn *newer,
		      void *ctx, int64_t *ahead_ms)
{
	int64_t now = clock_mono_ms();
	/* built outside the lock; dropped if an older write */
	struct brk_msg *m = brk_clu_msg_new(v, now);
	m->retain = true;
	msg_stamp_set(m, ts, origin);
	if (del)
		m->payload_len = 0; /* what the store sees: a delete */
	struct clu_hlc_ts seen;
	*ahead_ms = 0;
	pthread_mutex_lock(&b->retain_lock);
	if (clu_hlc_update(&b->hlc, ts, (uint64_t)clock_wall_ms(), &seen) != HQ_OK)
		*ahead_ms = (int64_t)(ts.wall_ms - (uint64_t)clock_wall_ms());
	struct brk_msg *cur = retain_tree_get(b->retained, v->topic, v->topic_len);
	const struct msg_stamp *cs = cur ? cur->stamp : NULL;
	bool write = newer(ctx, cs ? cs->ts : (struct clu_hlc_ts){ 0, 0 }, cs ? cs->origin : NULL);
	if (write)
		retain_write(b, 0, v->topic, v->topic_len, del ? NULL : msg_ref(m), m, 0);
	pthread_mutex_unlock(&b->retain_lock);
	msg_unref(m);
	return write;
}

void brk_retain_load(struct broker *b, struct brk_msg *m, struct clu_hlc_ts ts, const char *origin)
{
	msg_stamp_set(m, ts, origin);
	pthread_mutex_lock(&b->retain_lock);
	struct clu_hlc_ts seen;
	/* the node's clock stays ahead of every stamp it has written */
	(void)clu_hlc_update(&b->hlc, ts, (uint64_t)clock_wall_ms(), &seen);
	void *old = NULL;
	retain_tree_set(b->retained, m->topic, m->topic_len, m, &old);
	pthread_mutex_unlock(&b->retain_lock);
	if (old)
		msg_unref(old);
}
