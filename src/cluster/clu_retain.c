/*
 * clu_retain.c - retained messages on every node (cluster thread).
 *
 * Every node keeps the full retained set in its own retained tree (reads stay
 * local and lock-light). A write on any node is stamped with the node's
 * hybrid logical clock (brk_retain_store, under retain_lock) and sent to
 * every peer as RETAIN_SET; a peer applies it only if it is newer than what
 * it holds for that topic by clu_hlc_cmp (timestamp, then node name), so all
 * nodes pick the same last writer whatever the arrival order. A delete (an
 * empty retained publish) is a tombstone kept here, so that a delete and an
 * older set crossing each other converge to the delete. When a link comes
 * up both sides send everything they hold: after a partition heals, every
 * node ends with the newest write of every topic.
 *
 * Tombstones are kept for CLU_TOMB_TTL_MS (one small entry per deleted
 * topic): a partition longer than that could bring a deleted message back
 * when it heals; shorter ones cannot.
 */
#include "cluster/clu_int.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

#include <string.h>

static void tomb_set(struct clu_node *n, const char *topic, size_t len, struct clu_hlc_ts ts,
		     const char *origin, size_t olen)
{
	struct clu_tomb *t;
	HASH_FIND(hh, n->tombs, topic, len, t);
	if (!t) {
		t = hq_calloc(1, sizeof(*t));
		t->topic = hq_strndup(topic, len);
		HASH_ADD_KEYPTR(hh, n->tombs, t->topic, len, t);
	}
	t->ts = ts;
	clu_fmt(t->origin, sizeof(t->origin), "%.*s", (int)olen, origin);
}

static void tomb_del(struct clu_node *n, const char *topic, size_t len)
{
	struct clu_tomb *t;
	HASH_FIND(hh, n->tombs, topic, len, t);
	if (t) {
		HASH_DEL(n->tombs, t);
		hq_free(t->topic);
		hq_free(t);
	}
}

static struct clu_retained retained_of(const struct brk_msg *m, int64_t now)
{
	struct clu_retained r = { .ts = m->ts, .origin = clu_str(m->origin) };
	r.del = m->payload_len == 0;
	r.msg.qos = m->qos;
	r.msg.retain = true;
	r.msg.has_expiry = m->has_expiry;
	if (m->has_expiry) {
		uint32_t left = msg_remaining(m, now);
		r.msg.expiry = left ? left : 1;
	}
	r.msg.pub_hash = m->pub_hash;
	r.msg.topic.p = m->topic;
	r.msg.topic.len = m->topic_len;
	r.msg.props.p = m->props;
	r.msg.props.len = m->props_len;
	r.msg.payload.p = m->payload;
	r.msg.payload.len = m->payload_len;
	return r;
}

static void send_one(struct clu_link *l, const struct clu_retained *r)
{
	struct clu_batch b;
	if (clu_batch_begin(&b, &l->out, CLU_MSG_RETAIN_SET) != HQ_OK)
		return;
	if (clu_batch_retained(&b, r) != HQ_OK) {
		clu_batch_abort(&b);
		log_warning("cluster: retained message on %.*s not sent to %s", (int)r->msg.topic.len,
			    r->msg.topic.p, l->peer);
		return;
	}
	clu_batch_end(&b);
}

/* A retained write on this node: remember deletes, tell every peer. */
void clu_retain_req(struct clu_node *n, struct clu_req *r)
{
	struct brk_msg *m = r->msg;
	if (m->payload_len == 0)
		tomb_set(n, m->topic, m->topic_len, m->ts, m->origin, strlen(m->origin));
	else
		tomb_del(n, m->topic, m->topic_len);
	struct clu_retained rr = retained_of(m, clu_now(n));
	for (struct clu_link *l = n->links; l; l = l->next)
		if (l->st == LS_UP)
			send_one(l, &rr);
}

/* Apply one write from a peer if it is the newest we know of. */
static void apply(struct clu_node *n, struct clu_peer *from, const struct clu_retained *e)
{
	struct broker *b = n->b;
	const struct clu_message *cm = &e->msg;
	struct clu_hlc_ts ts;
	if (cm->topic.len && cm->topic.p[0] == '$')
		return; /* $-topics are node-local (see brk_retain_store) */
	pthread_mutex_lock(&b->retain_lock);
	if (clu_hlc_update(&b->hlc, e->ts, (uint64_t)clock_wall_ms(), &ts) != HQ_OK)
		log_warning("cluster: retained write from %s is %llu ms ahead of this clock "
			    "(clocks out of sync?)", from->name,
			    (unsigned long long)(e->ts.wall_ms - (uint64_t)clock_wall_ms()));
	struct brk_msg *cur = retain_tree_get(b->retained, cm->topic.p, cm->topic.len);
	bool newer = true;
	if (cur && cur->origin)
		newer = clu_hlc_cmp(e->ts, e->origin.p, e->origin.len, cur->ts, cur->origin,
				    strlen(cur->origin)) > 0;
	struct clu_tomb *t;
	HASH_FIND(hh, n->tombs, cm->topic.p, cm->topic.len, t);
	if (newer && t)
		newer = clu_hlc_cmp(e->ts, e->origin.p, e->origin.len, t->ts, t->origin,
				    strlen(t->origin)) > 0;
	if (!newer) {
		pthread_mutex_unlock(&b->retain_lock);
		return;
	}
	/* the origin's name must outlive the message: the member's (never freed) */
	struct clu_peer *om = clu_member_find(n, e->origin.p, e->origin.len);
	const char *origin = om ? om->name : from->name;
	void *old = NULL;
	if (e->del) {
		retain_tree_set(b->retained, cm->topic.p, cm->topic.len, NULL, &old);
		pthread_mutex_unlock(&b->retain_lock);
		tomb_set(n, cm->topic.p, cm->topic.len, e->ts, e->origin.p, e->origin.len);
	} else {
		struct brk_msg *m = msg_new(cm->topic.p, cm->topic.len, cm->props.p, cm->props.len,
					    cm->payload.p, cm->payload.len, cm->qos, true,
					    cm->has_expiry, cm->expiry, clu_now(n));
		m->pub_hash = cm->pub_hash;
		m->ts = e->ts;
		m->origin = origin;
		retain_tree_set(b->retained, cm->topic.p, cm->topic.len, m, &old);
		pthread_mutex_unlock(&b->retain_lock);
		tomb_del(n, cm->topic.p, cm->topic.len);
	}
	if (old)
		msg_unref(old);
}

void clu_retain_frame(struct clu_node *n, struct clu_link *l, struct clu_list list)
{
	struct clu_retained e;
	while (clu_next_retained(&list, &e))
		apply(n, l->m, &e);
}

/* ---- resynchronisation: everything we hold, to a new link ---- */

struct sync_ctx {
	struct brk_msg **v;
	size_t n, cap;
};

static bool collect(void *ctx, const char *topic, size_t len, void *value)
{
	struct sync_ctx *c = ctx;
	(void)topic;
	(void)len;
	struct brk_msg *m = value;
	if (!m->origin)
		return true; /* stored before it was stamped: not ours to spread */
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 256;
		c->v = hq_realloc(c->v, c->cap * sizeof(*c->v));
	}
	c->v[c->n++] = msg_ref(m);
	return true;
}

/* Open a RETAIN_SET batch on l, or start a new one past 1 MiB. */
static void batch_room(struct clu_batch *b, bool *open, struct clu_link *l)
{
	if (*open && clu_batch_size(b) > (1u << 20)) {
		clu_batch_end(b);
		*open = false;
	}
	if (!*open) {
		clu_batch_begin(b, &l->out, CLU_MSG_RETAIN_SET);
		*open = true;
	}
}

void clu_retain_sync(struct clu_node *n, struct clu_link *l)
{
	struct sync_ctx c = { 0 };
	pthread_mutex_lock(&n->b->retain_lock);
	retain_tree_match(n->b->retained, "#", 1, collect, &c);
	pthread_mutex_unlock(&n->b->retain_lock);
	int64_t now = clu_now(n);
	struct clu_batch b;
	bool open = false;
	for (size_t i = 0; i < c.n; i++) {
		batch_room(&b, &open, l);
		struct clu_retained r = retained_of(c.v[i], now);
		clu_batch_retained(&b, &r);
		msg_unref(c.v[i]);
	}
	struct clu_tomb *t, *tmp;
	HASH_ITER(hh, n->tombs, t, tmp) {
		batch_room(&b, &open, l);
		struct clu_retained r = { .ts = t->ts, .origin = clu_str(t->origin), .del = true };
		r.msg.topic = clu_str(t->topic);
		clu_batch_retained(&b, &r);
	}
	if (open)
		clu_batch_end(&b);
	hq_free(c.v);
}

void clu_retain_free(struct clu_node *n)
{
	struct clu_tomb *t, *tmp;
	HASH_ITER(hh, n->tombs, t, tmp) {
		HASH_DEL(n->tombs, t);
		hq_free(t->topic);
		hq_free(t);
	}
}

/* Forget tombstones older than CLU_TOMB_TTL_MS (by their wall clock). */
void clu_retain_tick(struct clu_node *n, int64_t now)
{
	if (now < n->next_tomb_sweep_ms)
		return;
	n->next_tomb_sweep_ms = now + 60000;
	uint64_t wall = (uint64_t)clock_wall_ms();
	if (wall < CLU_TOMB_TTL_MS)
		return;
	struct clu_tomb *t, *tmp;
	HASH_ITER(hh, n->tombs, t, tmp) {
		if (t->ts.wall_ms < wall - CLU_TOMB_TTL_MS) {
			HASH_DEL(n->tombs, t);
			hq_free(t->topic);
			hq_free(t);
		}
	}
}
