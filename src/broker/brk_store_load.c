/*
 * brk_store_load.c - rebuilding the node from its store at start
 * (ARCHITECTURE.md "Persistence", load path).
 *
 * Runs once on the main thread in broker_new, after the cluster node is
 * created and before any worker thread runs: the main thread acts as each
 * worker in turn (wk_act_as) to build the sessions it will own, so the
 * ownership checks hold. The backend replays its state as put events
 * (store.h: every MSG_PUT, then per session its header, subscriptions,
 * queue entries and QoS 2 ids, then every retained message); this file turns
 * them back into sessions, routes in every worker's replica (and cluster
 * routes), and retained messages. No store thread runs yet, so nothing built
 * here is written back.
 *
 * Times: the store keeps wall-clock ms; the broker runs on the monotonic
 * clock. A session that was online when the node stopped (no expiry time
 * stored) is offline now: its expiry starts now, and its will (the
 * connection ended without DISCONNECT) is due after its will delay.
 */
#include "broker/brk_int.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "store/store.h"

#include <stdio.h>
#include <string.h>

struct loaded_msg {
	uint64_t id;
	struct brk_msg *m;        /* reference, dropped at the end of the load */
	UT_hash_handle hh;
};

struct load {
	struct broker *b;
	struct worker *w;         /* a read at run time (brk_store_build): its worker */
	int64_t now_mono, now_wall;
	struct loaded_msg *msgs;  /* by id */
	struct session *s;        /* the session being rebuilt (reference) */
	uint32_t n_sess, n_subs, n_qents, n_retained, n_missing;
};

static int64_t wall_to_mono(const struct load *L, int64_t wall)
{
	return wall ? wall - L->now_wall + L->now_mono : 0;
}

static struct brk_msg *msg_from_store(const struct load *L, const struct store_msg *sm)
{
	struct brk_msg *m = msg_new((const char *)sm->topic.p, sm->topic.len, sm->props.p,
				    sm->props.len, sm->payload.p, sm->payload.len, sm->qos,
				    sm->retain, sm->has_expiry, sm->expiry, L->now_mono);
	if (sm->has_expiry)
		m->expire_at = wall_to_mono(L, sm->expire_at);
	m->pub_hash = sm->pub_hash;
	return m;
}

/* A node name as the retained stamp keeps it: borrowed for the broker's life. */
static const char *origin_intern(struct broker *b, struct store_bytes o)
{
	const char *self = b->cfg->node_name;
	if (!o.len || (o.len == strlen(self) && !memcmp(o.p, self, o.len)))
		return self;
	for (uint32_t i = 0; i < b->n_origins; i++)
		if (strlen(b->origins[i]) == o.len && !memcmp(b->origins[i], o.p, o.len))
			return b->origins[i];
	b->origins = hq_realloc(b->origins, (b->n_origins + 1) * sizeof(*b->origins));
	b->origins[b->n_origins] = hq_strndup((const char *)o.p, o.len);
	return b->origins[b->n_origins++];
}

static void session_done(struct load *L)
{
	struct session *s = L->s;
	if (!s || L->w)
		return; /* run time: the caller keeps it */
	sess_offline_update(s);
	sess_unref(s);
	L->s = NULL;
}

static void session_begin(struct load *L, const struct store_ev *ev)
{
	struct broker *b = L->b;
	const struct store_sess *h = &ev->u.sess;
	uint32_t hash = brk_hash((const char *)ev->client_id.p, ev->client_id.len);
	struct worker *w = L->w ? L->w : &b->workers[hash % (uint32_t)b->n_workers];
	if (!L->w)
		wk_act_as(w);
	struct session *s = sess_new(w, (const char *)ev->client_id.p, ev->client_id.len);
	s->expiry = h->expiry;
	s->version = h->version;
	s->stored = true;
	if (h->has_will) {
		s->will = msg_from_store(L, &h->will);
		s->will_delay = h->will_delay;
	}
	if (h->expire_at) {
		s->expire_at = wall_to_mono(L, h->expire_at);
		s->will_at = wall_to_mono(L, h->will_at);
	} else {
		/* online when the node stopped: its connection is gone now */
		if (s->expiry != SESS_NEVER_EXPIRE)
			s->expire_at = L->now_mono + (int64_t)s->expiry * 1000;
		if (s->will)
			s->will_at = L->now_mono + (int64_t)s->will_delay * 1000;
	}
	if (s->will && !s->will_at && s->will_delay == 0 && h->expire_at == 0)
		s->will_at = L->now_mono;
	if (s->expire_at == 0 && s->will_at == 0 && s->will) {
		/* offline with a will that is not pending: it was for a
		 * connection that ended normally */
		msg_unref(s->will);
		s->will = NULL;
	}
	if (L->w) { /* run time: the caller registers it */
		L->s = s;
		L->n_sess++;
		return;
	}
	pthread_mutex_lock(&b->reg_lock);
	struct session *e;
	HASH_FIND(reg_hh, b->registry, s->client_id, ev->client_id.len, e);
	if (!e) {
		s->in_registry = true;
		sess_ref(s); /* the registry's (not inside HASH_ADD: a macro evaluates it often) */
		HASH_ADD_KEYPTR(reg_hh, b->registry, s->client_id, ev->client_id.len, s);
	}
	pthread_mutex_unlock(&b->reg_lock);
	if (e) {
		log_warning("store: client_id=%s stored twice: the second copy is ignored", s->client_id);
		sess_unref(s);
		return;
	}
	L->s = s;
	L->n_sess++;
}

static void sub_add(struct load *L, const struct store_sub *su)
{
	struct session *s = L->s;
	struct broker *b = L->b;
	char *filter = hq_strndup((const char *)su->filter.p, su->filter.len);
	struct sess_sub *sub;
	HASH_FIND(hh, s->subs, filter, su->filter.len, sub);
	if (sub) {
		hq_free(filter);
		return;
	}
	sub = hq_calloc(1, sizeof(*sub));
	sub->filter = filter;
	sub->options = su->options;
	sub->sub_id = su->sub_id;
	HASH_ADD_KEYPTR(hh, s->subs, sub->filter, su->filter.len, sub);
	s->n_subs++;
	brk_prom_subs(s, 1);
	L->n_subs++;
	if (L->w)
		return; /* run time: routed by the caller once registered */
	/* every replica at once: no worker runs, none may miss a message */
	for (int i = 0; i < b->n_workers; i++) {
		wk_act_as(&b->workers[i]);
		brk_route_apply(&b->workers[i], WQ_ROUTE_ADD, s, sub->filter, sub->options, sub->sub_id);
	}
	wk_act_as(s->w);
	brk_cluster_route(s->w, true, sub->filter);
}

static void qent_add(struct load *L, const struct store_qent *q)
{
	struct session *s = L->s;
	struct deliv d = { .seq = q->seq, .qos = q->qos, .pid = q->pid };
	if (q->seq > s->store_seq)
		s->store_seq = q->seq;
	if (q->flags & STORE_QF_RETAIN)
		d.flags |= DV_RETAIN;
	if (q->flags & STORE_QF_SENT)
		d.flags |= DV_SENT;
	if (q->state == STORE_Q_PUBREL) {
		d.flags |= DV_PUBREL;
	} else {
		struct loaded_msg *lm;
		HASH_FIND(hh, L->msgs, &q->msg_id, sizeof(q->msg_id), lm);
		if (!lm) {
			L->n_missing++;
			return;
		}
		d.msg = msg_ref(lm->m);
	}
	uint32_t n = q->sub_ids.len / (uint32_t)sizeof(uint32_t);
	if (n > 255)
		n = 255;
	if (n == 1) {
		memcpy(&d.sub_id, q->sub_ids.p, sizeof(uint32_t));
	} else if (n > 1) {
		d.sub_ids = hq_malloc(n * sizeof(uint32_t));
		memcpy(d.sub_ids, q->sub_ids.p, n * sizeof(uint32_t));
	}
	d.n_sub_ids = (uint8_t)n;
	if (q->share_group.len) {
		d.flags |= DV_SHARED;
		d.share_group = hq_strndup((const char *)q->share_group.p, q->share_group.len);
	}
	sess_load_deliv(s, &d, q->state != STORE_Q_QUEUED);
	L->n_qents++;
}

static int load_cb(void *ctx, const struct store_ev *ev)
{
	struct load *L = ctx;
	struct loaded_msg *lm;
	switch (ev->kind) {
	case STORE_EV_MSG_PUT:
		lm = hq_malloc(sizeof(*lm));
		lm->id = ev->u.msg.id;
		lm->m = msg_from_store(L, &ev->u.msg);
		atomic_store_explicit(&lm->m->store_id, lm->id, memory_order_relaxed);
		HASH_ADD(hh, L->msgs, id, sizeof(lm->id), lm);
		break;
	case STORE_EV_SESSION_PUT:
		if (L->w && L->s)
			break; /* a read returns one session */
		session_done(L);
		session_begin(L, ev);
		break;
	case STORE_EV_SUB_PUT:
		if (L->s)
			sub_add(L, &ev->u.sub);
		break;
	case STORE_EV_QENT_PUT:
		if (L->s)
			qent_add(L, &ev->u.qent);
		break;
	case STORE_EV_RXID_ADD:
		/* unconfirmed: a resend goes to the targets without a mark */
		if (L->s) {
			sess_rx_pid_add(L->s, ev->u.pid);
			sess_rx_unconf_add(L->s, ev->u.pid);
		}
		break;
	case STORE_EV_RXID_MARK:
		if (L->s)
			sess_rx_unconf_mark(L->s, ev->u.mark.pid, ev->u.mark.target.p,
					    ev->u.mark.target.len);
		break;
	case STORE_EV_RETAIN_PUT: {
		if (L->w)
			break;
		session_done(L);
		const struct store_msg *sm = &ev->u.msg;
		struct brk_msg *m = msg_from_store(L, sm);
		m->retain = true;
		if (m->has_expiry && msg_expired(m, L->now_mono)) {
			msg_unref(m);
			break;
		}
		struct clu_hlc_ts ts = { sm->ts_wall, sm->ts_logical };
		brk_retain_load(L->b, m, ts, origin_intern(L->b, sm->origin));
		L->n_retained++;
		break;
	}
	default:
		log_warning("store: unexpected %s event in the load: ignored", store_ev_kind_name(ev->kind));
		break;
	}
	return HQ_OK;
}

static void free_msgs(struct load *L);

int brk_store_load(struct broker *b, char *err, size_t errlen)
{
	struct store *st = b->store;
	if (!st->ops->durable)
		return HQ_OK;
	struct load L = { .b = b, .now_mono = clock_mono_ms(), .now_wall = clock_wall_ms() };
	int rc = st->ops->load(st, load_cb, &L);
	session_done(&L);
	wk_act_as(NULL);
	free_msgs(&L);
	if (rc != HQ_OK) {
		snprintf(err, errlen, "store %s: cannot load the stored sessions: %s", st->ops->name,
			 hq_strerror(rc));
		return rc;
	}
	atomic_store(&b->next_msg_id, st->ops->next_msg_id(st));
	if (L.n_missing)
		log_warning("store %s: %u queued messages refer to a message that is not stored: "
			    "skipped", st->ops->name, L.n_missing);
	log_notice("store %s: loaded %u sessions (%u subscriptions, %u queued or in-flight "
		   "messages) and %u retained messages in %lld ms", st->ops->name, L.n_sess,
		   L.n_subs, L.n_qents, L.n_retained, (long long)(clock_mono_ms() - L.now_mono));
	return brk_store_start(b, err, errlen);
}

static void free_msgs(struct load *L)
{
	struct loaded_msg *lm, *tmp;
	HASH_ITER(hh, L->msgs, lm, tmp) {
		HASH_DEL(L->msgs, lm);
		msg_unref(lm->m);
		hq_free(lm);
	}
}

struct session *brk_store_build(struct worker *w, const struct store_batch *sb)
{
	WK_ASSERT_OWNER(w);
	struct load L = { .b = w->b, .w = w, .now_mono = ev_now_ms(w->loop),
			  .now_wall = clock_wall_ms() };
	for (uint32_t i = 0; i < sb->n_ev; i++)
		load_cb(&L, &sb->ev[i]);
	free_msgs(&L);
	if (L.n_missing && L.s)
		log_warning("store: client_id=%s: %u queued messages refer to a message that is not "
			    "stored: skipped", L.s->client_id, L.n_missing);
	return L.s;
}
