/*
 * brk_cluster.c - the broker's side of the cluster runtime (cluster.h).
 *
 * What a worker tells the cluster thread (through w->clu.out, handed over
 * once per loop turn): a local route appeared or disappeared, a SUBACK waits
 * for a barrier, a message goes to another node. What the cluster thread
 * tells a worker (through its inbox): a route of another node (WQ_ROUTE_*
 * naming that node's node session), a message forwarded to this node
 * (WQ_FWD_IN), a confirmation (WQ_GATE_RELEASE).
 */
#include "broker/brk_int.h"
#include "broker/brk_store.h"
#include "broker/sess_serial.h"
#include "cluster/cluster.h"
#include "cluster/clu_types.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct session *sess_new_remote(struct broker *b, const char *name, struct clu_peer *m)
{
	struct session *s = hq_calloc(1, sizeof(*s));
	atomic_init(&s->refs, 1);
	atomic_init(&s->online, true);
	s->sid = atomic_fetch_add(&b->next_id, 1);
	s->client_id = hq_strdup(name);
	s->client_hash = brk_hash(name, strlen(name));
	s->remote = true;
	s->clu = hq_calloc(1, sizeof(*s->clu));
	s->clu->member = m;
	return s;
}

void brk_cluster_route(struct worker *w, bool add, const char *filter)
{
	WK_ASSERT_OWNER(w);
	if (!w->b->clu)
		return;
	struct clu_req r = { .kind = add ? CRQ_ROUTE_ADD : CRQ_ROUTE_DEL };
	r.key = hq_strdup(filter);
	clu_req_push(&w->clu.out, &r);
}

void brk_cluster_barrier(struct conn *c)
{
	WK_ASSERT_OWNER(c->w);
	struct worker *w = c->w;
	/* alone: nobody to wait for. A peer that links later gets every route in
	 * its resynchronisation before it can forward anything to us. */
	if (!w->b->clu || !clu_peers_up(w->b->clu))
		return;
	uint64_t tok = gate_token_new(w);
	gate_open(c, tok, 1);
	struct clu_req r = { .kind = CRQ_BARRIER, .worker = (uint16_t)w->id, .token = tok };
	clu_req_push(&w->clu.out, &r);
}

/* brk_cluster_hold */
struct clu_held {
	uint64_t token;         /* store token awaited; 0 once stored */
	int64_t since;          /* monotonic ms */
	struct clu_req_vec v;   /* owned */
	struct clu_held *next;
};

/* A store in trouble retries a batch until it is back: the requests behind
 * it (other publishers' forwards, route changes) would wait as long. After
 * this they go anyway: exactly once may lapse, the cluster keeps working. */
#define HELD_MAX_MS 2000

void brk_cluster_flush(struct worker *w)
{
	WK_ASSERT_OWNER(w);
	if (!w->clu.out.len)
		return;
	struct clu_held *t = w->clu.held_tail;
	if (!t) {
		clu_submit(w->b->clu, &w->clu.out);
		return;
	}
	/* behind what is held: requests keep their order */
	for (uint32_t i = 0; i < w->clu.out.len; i++)
		clu_req_push(&t->v, &w->clu.out.v[i]);
	w->clu.out.len = 0;
}

/*
 * Exactly once across nodes with a shared store: a QoS 2 PUBLISH's packet
 * id is stored by this node's store thread, the message's queue entries for
 * sessions of other nodes by theirs. If another node stored its entries and
 * this one died before the id was stored, the publisher's resend (to any
 * node) looks new and every session gets the message twice. So the
 * forwards of a loop turn that received a QoS 2 PUBLISH leave only once the
 * batch holding its id is stored (one store round trip more for them).
 */
uint64_t brk_cluster_hold(struct worker *w)
{
	WK_ASSERT_OWNER(w);
	struct broker *b = w->b;
	if (!b->clu || !brk_store_shared(b) || !w->clu.out.len)
		return 0; /* (later requests queue behind anything held already) */
	struct clu_held *h = hq_calloc(1, sizeof(*h));
	h->token = gate_token_new(w);
	h->since = ev_now_ms(w->loop);
	h->v = w->clu.out;
	w->clu.out = (struct clu_req_vec){ 0 };
	if (w->clu.held_tail)
		w->clu.held_tail->next = h;
	else
		w->clu.held_head = h;
	w->clu.held_tail = h;
	return h->token;
}

static void held_submit_done(struct worker *w)
{
	struct clu_held *h;
	while ((h = w->clu.held_head) && !h->token) {
		w->clu.held_head = h->next;
		if (!h->next)
			w->clu.held_tail = NULL;
		if (h->v.len)
			clu_submit(w->b->clu, &h->v);
		hq_free(h->v.v);
		hq_free(h);
	}
}

bool brk_cluster_held_release(struct worker *w, uint64_t token)
{
	WK_ASSERT_OWNER(w);
	struct clu_held *h = w->clu.held_head;
	while (h && h->token != token)
		h = h->next;
	if (!h || !token)
		return false;
	h->token = 0; /* stored (or failed: the forwards go anyway, a loss is worse) */
	held_submit_done(w);
	return true;
}

void brk_cluster_held_tick(struct worker *w, int64_t now)
{
	WK_ASSERT_OWNER(w);
	struct clu_held *h = w->clu.held_head;
	if (!h || now - h->since < HELD_MAX_MS)
		return;
	log_warning("cluster: forwards held %lld ms for the store: sent without waiting more",
		    (long long)(now - h->since));
	for (; h && now - h->since >= HELD_MAX_MS; h = h->next)
		h->token = 0; /* its token, when it comes, finds nothing */
	held_submit_done(w);
}

void brk_cluster_held_free(struct worker *w)
{
	struct clu_held *h;
	while ((h = w->clu.held_head)) {
		w->clu.held_head = h->next;
		for (uint32_t k = 0; k < h->v.len; k++)
			clu_req_release(&h->v.v[k]);
		hq_free(h->v.v);
		hq_free(h);
	}
	w->clu.held_tail = NULL;
}

void brk_cluster_forward_moved(struct session *s, struct deliv *d)
{
	WK_ASSERT_OWNER(s->w);
	struct worker *w = s->w;
	struct clu_req r = { .kind = CRQ_FORWARD, .worker = (uint16_t)w->id,
			     .member = s->clu->moved_to->clu->member, .msg = d->msg,
			     .dqos = d->qos, .dretain = d->flags & DV_RETAIN };
	r.key = hq_strdup(s->client_id);
	if (d->qos) {
		/* whoever waits for this delivery (the publisher's PUBACK, a
		 * FORWARD_ACK to a third node) waits for the new owner's
		 * acknowledgement of the relay: once acknowledged, a message is
		 * queued there, and a publisher that waits for it keeps its order
		 * across the relay and the straight path (brk_handover.c) */
		if (w->clu.relay_ack) {
			int wid;
			brk_store_tok_split(w->clu.relay_ack, w->id, &wid, &r.token);
			r.worker = (uint16_t)wid;
			w->clu.relay_ack = 0; /* taken: the relay releases it */
		} else if (w->clu.fwd_token) {
			r.token = w->clu.fwd_token;
			w->clu.fwd_pending++;
		} else if (w->store_tok) {
			r.token = w->store_tok;
			w->store_tok_remote++;
		}
	}
	d->msg = NULL; /* the reference moves to the request */
	deliv_release(d);
	clu_req_push(&w->clu.out, &r);
}

/*
 * Per-publisher order across a hand-over [MQTT-4.6.0-6] (the protocol is in
 * clu_fence.c). Behind the route changes just posted (the session's filters
 * now go to its new node, no longer to it), in the same batch, so every
 * other worker switches paths at one point of its stream: what it delivered
 * before is in our inbox, ahead of its fence coming back.
 */
static void move_fence_post(struct worker *w)
{
	for (int i = 0; i < w->b->n_workers; i++) {
		if (i == w->id)
			continue; /* our own deliveries went (or go) in order already */
		struct wq_entry e = { .kind = WQ_MOVE_FENCE, .sub_id = (uint32_t)w->id };
		wk_post(w, &w->b->workers[i], &e);
	}
}

void brk_cluster_move_fence(struct worker *w, int owner)
{
	WK_ASSERT_OWNER(w);
	uint64_t tok = gate_token_new(w); /* unique on this worker */
	struct clu_req r = { .kind = CRQ_FENCE_START, .worker = (uint16_t)w->id, .token = tok };
	clu_req_push(&w->clu.out, &r);
	struct wq_entry e = { .kind = WQ_MOVE_FENCE_BACK, .sub_id = (uint32_t)w->id };
	e.u.token = tok;
	wk_post(w, &w->b->workers[owner], &e);
}

void brk_cluster_move_fence_back(struct worker *w, int from, uint64_t token)
{
	WK_ASSERT_OWNER(w);
	/* behind our forwards of what `from` delivered to the moved session */
	struct clu_req r = { .kind = CRQ_FENCE_MARK, .worker = (uint16_t)from, .token = token };
	clu_req_push(&w->clu.out, &r);
}

/* A shared-group delivery whose member left, to the group's members on the
 * node of node_sess: one FORWARD naming only that group (no plain
 * subscribers), so the receiving node picks one of its own members, as for
 * a fresh publish. The publisher was acknowledged long ago: nobody waits
 * (token 0), and a duplicate is possible, a loss is not (at least once). */
void brk_cluster_forward_shared(struct worker *w, struct session *node_sess, struct deliv *d)
{
	WK_ASSERT_OWNER(w);
	struct clu_req r = { .kind = CRQ_FORWARD, .worker = (uint16_t)w->id,
			     .member = node_sess->clu->member, .msg = d->msg, .n_groups = 1 };
	r.groups = hq_calloc(1, sizeof(*r.groups));
	r.groups[0] = d->share_group; /* the string moves to the request */
	d->share_group = NULL;
	d->msg = NULL; /* and the reference */
	deliv_release(d);
	clu_req_push(&w->clu.out, &r);
}

void fwd_in_release(struct fwd_in *f)
{
	if (f->msg)
		msg_unref(f->msg);
	for (uint16_t k = 0; k < f->n_groups; k++)
		hq_free(f->groups[k]);
	hq_free(f->groups);
	hq_free(f->client_id);
	if (f->target)
		sess_unref(f->target);
	rx_unconf_free(f->skip);
	memset(f, 0, sizeof(*f));
}

/* A delivery that followed its session here (FORWARD with CLIENT). */
static void deliver_to_client(struct worker *w, struct fwd_in *f)
{
	struct broker *b = w->b;
	struct session *s = f->target ? sess_ref(f->target) : NULL;
	if (!s) {
		pthread_mutex_lock(&b->reg_lock);
		HASH_FIND(reg_hh, b->registry, f->client_id, strlen(f->client_id), s);
		if (s)
			sess_ref(s);
		pthread_mutex_unlock(&b->reg_lock);
	}
	if (!s) {
		log_warning("client_id=%s: a message on %s followed the session here, which is gone",
			    f->client_id, f->msg->topic);
		brk_drop_count(w, BRK_DROP_SESSION_GONE);
		return;
	}
	struct deliv d = { .msg = msg_ref(f->msg), .qos = f->msg->qos,
			   .flags = f->msg->retain ? DV_RETAIN : 0 };
	brk_deliver_to(w, s, &d);
	sess_unref(s);
}

/* A FORWARD_ACK held until what the forwarded message stored here is stored
 * (the origin acknowledges its publisher on it). */
struct fwd_wait {
	uint64_t token;           /* this worker's gate token */
	uint32_t remaining;       /* store confirmations still awaited */
	struct clu_req r;         /* the CRQ_FWD_DONE to send then */
	UT_hash_handle hh;
};

void brk_route_forwarded(struct worker *w, struct fwd_in *f)
{
	WK_ASSERT_OWNER(w);
	/* a durable store: deliveries to persistent sessions (here and on the
	 * other workers) hold the acknowledgement until they are stored */
	uint64_t tok = f->seq && (w->b->store_run ||
				  atomic_load_explicit(&w->b->ghosts, memory_order_relaxed))
			       ? gate_token_new(w) : 0;
	w->store_tok = tok;
	w->store_tok_remote = 0;
	uint32_t mark = brk_store_mark(w);
	if (f->client_id) {
		deliver_to_client(w, f);
	} else {
		w->congested = NULL;
		w->clu.fwd_from = f;
		/* exactly once for QoS 2 across nodes (FORWARD RX/SKIP,
		 * brk_rxmark.c): what it stores here carries its marks, as on
		 * the origin (sess_deliver_posted marks the other workers'
		 * entries: they carry tok); the targets that have it are skipped */
		w->rx_mark = f->msg->rx ? f->msg : NULL;
		w->route_skip = f->skip;
		brk_route(w, f->msg);
		w->rx_mark = NULL;
		w->route_skip = NULL;
		w->clu.fwd_from = NULL;
		w->congested = NULL; /* no publisher here to slow down */
	}
	w->store_tok = 0;
	if (f->seq) {
		/* accepted: it is in the queues of this node's subscribers */
		struct clu_req r = { .kind = CRQ_FWD_DONE, .member = f->member,
				     .link_gen = f->link_gen, .token = f->seq };
		bool local = brk_store_mark(w) != mark;
		uint32_t pending = w->store_tok_remote + local;
		if (!pending) {
			clu_req_push(&w->clu.out, &r);
		} else {
			if (local)
				brk_store_hold(w, tok);
			struct fwd_wait *fw = hq_calloc(1, sizeof(*fw));
			fw->token = tok;
			fw->remaining = pending;
			fw->r = r;
			HASH_ADD(hh, w->clu.fwd_waits, token, sizeof(fw->token), fw);
		}
	}
	w->store_tok_remote = 0;
	fwd_in_release(f);
}

bool brk_cluster_fwd_wait_done(struct worker *w, uint64_t token, bool failed)
{
	WK_ASSERT_OWNER(w);
	struct fwd_wait *fw;
	HASH_FIND(hh, w->clu.fwd_waits, &token, sizeof(token), fw);
	if (!fw)
		return false;
	if (!failed && --fw->remaining)
		return true;
	HASH_DEL(w->clu.fwd_waits, fw);
	/* not stored: no acknowledgement, the origin fails its publisher's
	 * gate when the link goes (the publisher sends again) */
	if (!failed)
		clu_req_push(&w->clu.out, &fw->r);
	hq_free(fw);
	return true;
}

void brk_cluster_fwd_waits_free(struct worker *w)
{
	struct fwd_wait *fw, *tmp;
	HASH_ITER(hh, w->clu.fwd_waits, fw, tmp) {
		HASH_DEL(w->clu.fwd_waits, fw);
		hq_free(fw);
	}
}

/* Shutdown: the replicas' entries of node sessions hold references. */
struct remote_visit {
	struct session **v;
	char **filters;
	size_t n, cap;
};

static void collect_remote(void *ctx, const char *filter, size_t len, const struct topic_sub *sub)
{
	struct remote_visit *rv = ctx;
	struct session *t = sub->owner;
	if (!t->remote && !(sub->options & BRK_SUBOPT_FWD_ONLY))
		return; /* (a ghost's entries too: its session ended long ago) */
	if (rv->n == rv->cap) {
		rv->cap = rv->cap ? rv->cap * 2 : 16;
		rv->v = hq_realloc(rv->v, rv->cap * sizeof(*rv->v));
		rv->filters = hq_realloc(rv->filters, rv->cap * sizeof(*rv->filters));
	}
	rv->v[rv->n] = t;
	rv->filters[rv->n] = hq_strndup(filter, len);
	rv->n++;
}

void brk_cluster_drop_remote_routes(struct worker *w)
{
	struct remote_visit rv = { 0 };
	topic_tree_visit(w->routes, collect_remote, &rv);
	for (size_t i = 0; i < rv.n; i++) {
		brk_route_apply(w, WQ_ROUTE_DEL, rv.v[i], rv.filters[i], 0, 0);
		hq_free(rv.filters[i]);
	}
	hq_free(rv.v);
	hq_free(rv.filters);
}

/* ---- broker.h: cluster administration ---- */

static int cluster_off(char *err, size_t errlen)
{
	snprintf(err, errlen, "clustering is disabled on this node (cluster.port = 0)");
	return HQ_EPROTOCOL;
}

int broker_cluster_members(struct broker *b, struct broker_member **out, size_t *n)
{
	if (b->clu)
		return clu_admin_members(b->clu, out, n);
	/* a standalone node: a cluster of one */
	struct broker_member *m = calloc(1, sizeof(*m));
	if (!m)
		return HQ_ENOMEM;
	snprintf(m->node, sizeof(m->node), "%s", b->cfg->node_name);
	m->status = "running";
	m->self = true;
	m->incarnation = (uint64_t)b->start_wall_ms;
	*out = m;
	*n = 1;
	return HQ_OK;
}

int broker_cluster_join(struct broker *b, const char *node, char *err, size_t errlen)
{
	return b->clu ? clu_admin_join(b->clu, node, err, errlen) : cluster_off(err, errlen);
}

int broker_cluster_leave(struct broker *b, char *err, size_t errlen)
{
	return b->clu ? clu_admin_leave(b->clu, err, errlen) : cluster_off(err, errlen);
}

int broker_cluster_force_leave(struct broker *b, const char *node, char *err, size_t errlen)
{
	return b->clu ? clu_admin_force_leave(b->clu, node, err, errlen) : cluster_off(err, errlen);
}

/* ---- one session per client id in the cluster ---- */

bool brk_cluster_takeover_begin(struct conn *c)
{
	WK_ASSERT_OWNER(c->w);
	struct worker *w = c->w;
	struct broker *b = w->b;
	if (!b->clu || !clu_peers_up(b->clu))
		return false;
	struct conn_wait *cw = hq_calloc(1, sizeof(*cw));
	cw->token = gate_token_new(w);
	cw->c = c;
	HASH_ADD(hh, w->clu.waits, token, sizeof(cw->token), cw);
	/* not read until the answer: what the client pipelined waits in the socket */
	c->state = CS_WAIT;
	c->paused = true;
	c->cluster_wait = true;
	ev_io_set(w->loop, &c->io, 0);
	struct clu_req r = { .kind = CRQ_TAKEOVER, .worker = (uint16_t)w->id, .token = cw->token,
			     .plain = c->clean_start };
	r.key = hq_strdup(c->client_id);
	clu_req_push(&w->clu.out, &r);
	return true;
}

void brk_cluster_conn_free(struct conn *c)
{
	if (!c->cluster_wait)
		return;
	struct conn_wait *cw, *tmp;
	HASH_ITER(hh, c->w->clu.waits, cw, tmp) {
		if (cw->c == c) {
			HASH_DEL(c->w->clu.waits, cw);
			if (cw->sess)
				sess_unref(cw->sess);
			hq_free(cw);
		}
	}
	c->cluster_wait = false;
}

/* A session taken over from another node: its CONNACK (session present)
 * waits, like a SUBACK, until every peer has its routes, so a message
 * published anywhere after the CONNACK reaches it. */
void brk_cluster_attach_after_barrier(struct conn *c, struct session *s)
{
	WK_ASSERT_OWNER(c->w);
	struct worker *w = c->w;
	if (!w->b->clu || !clu_peers_up(w->b->clu)) {
		brk_connect_attach(c, s);
		return;
	}
	struct conn_wait *cw = hq_calloc(1, sizeof(*cw));
	cw->token = gate_token_new(w);
	cw->c = c;
	cw->sess = sess_ref(s);
	HASH_ADD(hh, w->clu.waits, token, sizeof(cw->token), cw);
	c->state = CS_WAIT;
	c->paused = true;
	c->cluster_wait = true;
	ev_io_set(w->loop, &c->io, 0);
	struct clu_req r = { .kind = CRQ_BARRIER, .worker = (uint16_t)w->id, .token = cw->token };
	clu_req_push(&w->clu.out, &r);
}

/* The wait of cw is over: c is read again. Returns c if its CONNECT goes on. */
static struct conn *wait_end(struct worker *w, struct conn_wait *cw)
{
	struct conn *c = cw->c;
	HASH_DEL(w->clu.waits, cw);
	hq_free(cw);
	c->cluster_wait = false;
	if (c->state != CS_WAIT)
		return NULL;
	c->paused = false;
	if (ev_io_set(w->loop, &c->io, EV_READ) != HQ_OK) {
		conn_close(c, -1, "epoll failed");
		return NULL;
	}
	return c;
}

bool brk_cluster_wait_release(struct worker *w, uint64_t token)
{
	WK_ASSERT_OWNER(w);
	struct conn_wait *cw;
	HASH_FIND(hh, w->clu.waits, &token, sizeof(token), cw);
	if (!cw || !cw->sess)
		return false;
	struct session *s = cw->sess;
	struct conn *c = wait_end(w, cw);
	if (c) {
		brk_connect_attach(c, s);
		if (c->state == CS_ACTIVE)
			conn_process_input(c); /* what was pipelined after CONNECT */
	}
	sess_unref(s);
	return true;
}

void brk_cluster_takeover_done(struct worker *w, struct session *imported, struct takeover_msg *t)
{
	WK_ASSERT_OWNER(w);
	struct conn_wait *cw;
	HASH_FIND(hh, w->clu.waits, &t->id, sizeof(t->id), cw);
	struct conn *c = cw ? wait_end(w, cw) : NULL;
	if (!c && imported) {
		/* the connection went meanwhile: the session stays, offline (unless
		 * a newer connection elsewhere won it) */
		if (t->status == CLU_TAKEOVER_REFUSED)
			sess_end(imported, false);
		else
			brk_session_import(w, imported);
	} else if (c) {
		brk_connect_resume(c, t->status, imported);
		/* what was pipelined after CONNECT (unless it waits again) */
		if (c->state == CS_ACTIVE)
			conn_process_input(c);
	}
	hq_free(t->blob);
	t->blob = NULL;
}

/* Another node takes over s: close its connection (0x8E) and hand the
 * session over, unless it ends here (clean start, or a session that does not
 * outlive its connection). */
void brk_cluster_takeover_out(struct worker *w, struct session *given, struct takeover_msg *t)
{
	WK_ASSERT_OWNER(w);
	struct clu_req r = { .kind = CRQ_TAKEOVER_RESP, .member = t->member, .link_gen = t->link_gen,
			     .token = t->id, .rc = CLU_TAKEOVER_OK };
	struct session *s = given;
	if (!s) {
		/* a connect of this id just completed here: the registry has its
		 * session now (this inbox runs in order) */
		struct broker *b = w->b;
		pthread_mutex_lock(&b->reg_lock);
		HASH_FIND(reg_hh, b->registry, t->client_id, strlen(t->client_id), s);
		if (s)
			sess_ref(s);
		pthread_mutex_unlock(&b->reg_lock);
		if (s && s->w != w) {
			/* resumed on another worker: its owner answers */
			struct wq_entry e = { .kind = WQ_TAKEOVER_OUT, .sess = s };
			e.u.takeover = *t;
			e.u.takeover.client_id = NULL;
			t->node_sess = NULL; /* the reference moves on */
			wk_post(w, s->w, &e);
			return;
		}
	}
	r.key = hq_strdup(s ? s->client_id : t->client_id);
	hq_free(t->client_id);
	t->client_id = NULL;
	if (!s) {
		r.rc = CLU_TAKEOVER_NONE;
	} else if (s->ended) {
		r.rc = CLU_TAKEOVER_NONE;
	} else if (t->clean_start || s->expiry == 0) {
		log_info("client_id=%s taken over by a connection on another node", s->client_id);
		sess_kill(s, MQTT_RC_SESSION_TAKEN_OVER);
	} else {
		if (s->conn) {
			s->conn->taken_over = true;
			conn_close(s->conn, MQTT_RC_SESSION_TAKEN_OVER, "session taken over by another node");
		}
		struct buf blob = { 0 };
		sess_serialize(s, &blob);
		/* until the new owner's own routes arrive, what this node matches for
		 * the session goes to the new owner: no gap in delivery. The cluster
		 * thread keeps these routes provisional (clu_takeover_resp_req). */
		struct session *ns = t->node_sess;
		if (ns && s->n_subs) {
			struct sess_sub *sub, *tmp;
			r.groups = hq_calloc(s->n_subs, sizeof(*r.groups));
			HASH_ITER(hh, s->subs, sub, tmp) {
				if (r.n_groups == s->n_subs || r.n_groups == UINT16_MAX)
					break;
				brk_route_broadcast(w, WQ_ROUTE_ADD, ns, sub->filter, 2, 0);
				r.groups[r.n_groups++] = hq_strdup(sub->filter);
			}
		}
		r.blob = blob.data; /* owned by the request now */
		r.blob_len = (uint32_t)blob.len;
		log_info("client_id=%s session handed over to another node (%zu bytes)", s->client_id,
			 blob.len);
		if (ns && !sess_moved_to(s)) {
			if (!s->clu)
				s->clu = hq_calloc(1, sizeof(*s->clu));
			s->clu->moved_to = sess_ref(ns);
			/* what third nodes still forward here follows it too */
			brk_handover_ghost(w, s);
		}
		sess_end(s, false);
		if (ns && r.n_groups)
			move_fence_post(w);
	}
	clu_req_push(&w->clu.out, &r);
	/* on its way now: the routes handed to the other workers above (in the
	 * outboxes) must not let them forward to the new owner before it has
	 * the session */
	brk_cluster_flush(w);
	if (s && !given)
		sess_unref(s);
}

/*
 * A session handed over by another node, rebuilt on the worker that will own
 * it, and its routes put in every replica (this worker's at once, the others
 * through the outboxes, flushed in this turn's before-sleep ahead of the
 * answer to the cluster thread). The cluster thread holds everything else it
 * has for the workers until this answer arrives (clu_takeover.c), so a
 * message forwarded right behind the session finds its routes on every
 * worker.
 */
void brk_cluster_takeover_import(struct worker *w, struct takeover_msg *t)
{
	WK_ASSERT_OWNER(w);
	struct session *s = NULL;
	if (sess_deserialize(w, t->blob, t->blob_len, ev_now_ms(w->loop), &s) != HQ_OK ||
	    strcmp(s->client_id, t->client_id) != 0) {
		log_warning("cluster: client_id=%s: the session handed over is unreadable: starting "
			    "afresh", t->client_id);
		if (s)
			sess_unref(s);
		s = NULL;
	}
	if (s) {
		struct sess_sub *sub, *tmp;
		HASH_ITER(hh, s->subs, sub, tmp) {
			brk_route_broadcast(w, WQ_ROUTE_ADD, s, sub->filter, sub->options, sub->sub_id);
			brk_cluster_route(w, true, sub->filter);
		}
		/* a third node's messages may come both straight and relayed by
		 * the old owner for a while: each once (brk_handover.c) */
		brk_handover_dedup_start(s, ev_now_ms(w->loop));
	}
	struct clu_req r = { .kind = CRQ_TAKEOVER_IMPORTED, .worker = (uint16_t)w->id,
			     .token = t->id, .sess = s }; /* the reference moves */
	clu_req_push(&w->clu.out, &r);
	hq_free(t->blob);
	t->blob = NULL;
	hq_free(t->client_id);
	t->client_id = NULL;
}
