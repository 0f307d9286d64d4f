/*
 * clu_retain.c - retained messages on every node (cluster thread).
 *
 * Every node keeps the full retained set in its own retained tree (reads stay
 * local and lock-light). A write on any node is stamped with the node's
 * hybrid logical clock (brk_retain_store, the broker's one retained writer) and sent to
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
	struct brk_msg_view v;
	brk_clu_msg_view(m, now, &v);
	struct clu_retained r = { .ts = v.ts, .origin = clu_str(v.origin) };
	r.del = v.payload_len == 0;
	r.msg.qos = v.qos;
	r.msg.retain = true;
	r.msg.has_expiry = v.has_expiry;
	r.msg.expiry = v.expiry;
	r.msg.pub_hash = v.pub_hash;
	r.msg.topic.p = v.topic;
	r.msg.topic.len = v.topic_len;
	r.msg.props.p = v.props;
	r.msg.props.len = v.props_len;
	r.msg.payload.p = v.payload;
	r.msg.payload.len = v.payload_len;
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
	struct clu_retained rr = retained_of(r->msg, clu_now(n));
	const struct clu_message *cm = &rr.msg;
	if (rr.del)
		tomb_set(n, cm->topic.p, cm->topic.len, rr.ts, rr.origin.p, rr.origin.len);
	else
		tomb_del(n, cm->topic.p, cm->topic.len);
	for (struct clu_link *l = n->links; l; l = l->next)
		if (l->st == LS_UP)
			send_one(l, &rr);
}

struct lww {
	struct clu_node *n;
	const struct clu_retained *e;
};

/* Last writer wins (run by the broker's retained writer, under its lock):
 * e is applied only if newer than what is held and than a tombstone. */
static bool lww_newer(void *ctx, struct clu_hlc_ts cur_ts, const char *cur_origin)
{
	struct lww *x = ctx;
	const struct clu_retained *e = x->e;
	if (cur_origin && clu_hlc_cmp(e->ts, e->origin.p, e->origin.len, cur_ts, cur_origin,
				      strlen(cur_origin)) <= 0)
		return false;
	struct clu_tomb *t;
	HASH_FIND(hh, x->n->tombs, e->msg.topic.p, e->msg.topic.len, t);
	return !t || clu_hlc_cmp(e->ts, e->origin.p, e->origin.len, t->ts, t->origin,
				 strlen(t->origin)) > 0;
}

/* Apply one write from a peer if it is the newest we know of. */
static void apply(struct clu_node *n, struct clu_peer *from, const struct clu_retained *e)
{
	const struct clu_message *cm = &e->msg;
	if (cm->topic.len && cm->topic.p[0] == '$')
		return; /* $-topics are node-local (see brk_retain_store) */
	/* the origin's name must outlive the message: the member's (never freed) */
	struct clu_peer *om = clu_member_find(n, e->origin.p, e->origin.len);
	const char *origin = om ? om->name : from->name;
	struct brk_msg_view v = {
		.topic = cm->topic.p, .topic_len = (uint32_t)cm->topic.len,
		.props = cm->props.p, .props_len = (uint32_t)cm->props.len,
		.payload = cm->payload.p, .payload_len = (uint32_t)cm->payload.len,
		.qos = cm->qos, .retain = true, .has_expiry = cm->has_expiry,
		.expiry = cm->expiry, .pub_hash = cm->pub_hash,
	};
	struct lww x = { n, e };
	int64_t ahead = 0;
	bool written = brk_retain_apply(n->b, &v, e->del, e->ts, origin, lww_newer, &x, &ahead);
	if (ahead > 0)
		log_warning("cluster: retained write from %s is %lld ms ahead of this clock "
			    "(clocks out of sync?)", from->name, (long long)ahead);
	if (!written)
		return;
	if (e->del)
		tomb_set(n, cm->topic.p, cm->topic.len, e->ts, e->origin.p, e->origin.len);
	else
		tomb_del(n, cm->topic.p, cm->topic.len);
}

void clu_retain_frame(struct clu_node *n, struct clu_link *l, struct clu_list list)
{
	struct clu_retained e;
	while (clu_next_retained(&list, &e))
		apply(n, l->m, &e);
}

/* ---- resynchronisation: everything we hold, to a new link ---- */

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
	struct {
		struct brk_msg **v;
		size_t n;
	} c;
	c.v = brk_clu_retained_snapshot(n->b, &c.n);
	int64_t now = clu_now(n);
	struct clu_batch b;
	bool open = false;
	for (size_t i = 0; i < c.n; i++) {
		batch_room(&b, &open, l);
		struct clu_retained r = retained_of(c.v[i], now);
		clu_batch_retained(&b, &r);
		brk_clu_msg_unref(c.v[i]);
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
