/*
 * brk_clu.c - the broker services of brk_clu.h, for the cluster thread.
 *
 * Everything the cluster needs of broker state goes through here: lookups
 * under the broker's locks, views of messages, and entries for the workers'
 * inboxes (struct brk_post). The retained writer is brk_retain.c.
 */
#include "broker/brk_clu.h"
#include "broker/brk_int.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

#include <string.h>

int brk_clu_n_workers(const struct broker *b)
{
	return b->n_workers;
}

struct repl *brk_clu_repl(struct broker *b)
{
	return b->repl;
}

struct repl *broker_repl(struct broker *b)
{
	return b->repl;
}

struct hq_config *brk_clu_config(struct broker *b)
{
	return b->cfg;
}

bool brk_clu_stopping(const struct broker *b)
{
	return atomic_load(&b->stopping);
}

struct clu_hlc_ts brk_clu_hlc_now(struct broker *b)
{
	pthread_mutex_lock(&b->retain_lock); /* the node's clock lives under it */
	struct clu_hlc_ts ts = clu_hlc_now(&b->hlc, (uint64_t)clock_wall_ms());
	pthread_mutex_unlock(&b->retain_lock);
	return ts;
}

/* ---- sessions ---- */

struct session *brk_clu_node_session_new(struct broker *b, const char *name, struct clu_peer *m)
{
	return sess_new_remote(b, name, m);
}

struct session *brk_clu_session_ref(struct session *s)
{
	return sess_ref(s);
}

void brk_clu_session_unref(struct session *s)
{
	sess_unref(s);
}

struct session *brk_clu_session_find(struct broker *b, const char *client_id, size_t len,
				     int *worker)
{
	struct session *s;
	pthread_mutex_lock(&b->reg_lock);
	HASH_FIND(reg_hh, b->registry, client_id, len, s);
	if (s) {
		sess_ref(s);
		*worker = s->w->id;
	}
	pthread_mutex_unlock(&b->reg_lock);
	return s;
}

bool brk_clu_session_connected(const struct session *s, struct clu_hlc_ts *since)
{
	uint64_t ts = atomic_load_explicit(&s->conn_hlc, memory_order_relaxed);
	if (!ts || !atomic_load_explicit(&s->online, memory_order_relaxed))
		return false;
	*since = clu_hlc_unpack(ts);
	return true;
}

const char *brk_clu_session_client_id(const struct session *s)
{
	return s->client_id;
}

void brk_clu_clients_each(struct broker *b, brk_clu_client_fn *fn, void *ctx)
{
	struct session *s, *tmp;
	pthread_mutex_lock(&b->reg_lock);
	HASH_ITER(reg_hh, b->registry, s, tmp) {
		struct clu_hlc_ts since;
		if (brk_clu_session_connected(s, &since))
			fn(ctx, s->client_id, since);
	}
	pthread_mutex_unlock(&b->reg_lock);
}

/* ---- messages ---- */

void brk_clu_msg_view(const struct brk_msg *m, int64_t now_ms, struct brk_msg_view *v)
{
	*v = (struct brk_msg_view){
		.topic = m->topic, .topic_len = m->topic_len,
		.props = m->props, .props_len = m->props_len,
		.payload = m->payload, .payload_len = m->payload_len,
		.pub_hash = m->pub_hash, .qos = m->qos, .retain = m->retain,
		.has_expiry = m->has_expiry, .mid = m->mid, .fwd_origin = m->fwd_origin,
	};
	if (m->stamp) {
		v->ts = m->stamp->ts;
		v->origin = m->stamp->origin;
	}
	if (m->has_expiry) {
		uint32_t left = msg_remaining(m, now_ms);
		v->expiry = left ? left : 1;
	}
	if (m->rx) {
		v->rx_client = m->rx->client_id;
		v->rx_client_len = (uint32_t)strlen(m->rx->client_id);
		v->rx_pid = m->rx->pid;
	}
}

struct brk_msg *brk_clu_msg_new(const struct brk_msg_view *v, int64_t now_ms)
{
	struct brk_msg *m = msg_new(v->topic, v->topic_len, v->props, v->props_len, v->payload,
				    v->payload_len, v->qos, v->retain, v->has_expiry, v->expiry,
				    now_ms);
	m->origin_sid = 0;
	m->pub_hash = v->pub_hash;
	m->mid = v->mid;
	m->fwd_origin = v->fwd_origin;
	if (v->rx_client_len) {
		struct msg_rx *rx = hq_malloc(sizeof(*rx) + v->rx_client_len + 1);
		rx->pid = v->rx_pid;
		memcpy(rx->client_id, v->rx_client, v->rx_client_len);
		rx->client_id[v->rx_client_len] = '\0';
		m->rx = rx;
	}
	return m;
}

struct rx_unconf *brk_clu_skip_new(uint16_t pid)
{
	return rx_unconf_new(pid);
}

void brk_clu_skip_add(struct rx_unconf *u, const char *target, size_t len)
{
	rx_unconf_add_target(u, (const uint8_t *)target, len);
}

void brk_clu_msg_unref(struct brk_msg *m)
{
	msg_unref(m);
}

/* ---- retained ---- */

struct snap {
	struct brk_msg **v;
	size_t n, cap;
};

static bool snap_one(void *ctx, const char *topic, size_t len, void *value)
{
	struct snap *c = ctx;
	(void)topic;
	(void)len;
	struct brk_msg *m = value;
	if (!m->stamp)
		return true; /* stored before it was stamped: not ours to spread */
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 256;
		c->v = hq_realloc(c->v, c->cap * sizeof(*c->v));
	}
	c->v[c->n++] = msg_ref(m);
	return true;
}

struct brk_msg **brk_clu_retained_snapshot(struct broker *b, size_t *n)
{
	struct snap c = { 0 };
	pthread_mutex_lock(&b->retain_lock);
	retain_tree_match(b->retained, "#", 1, snap_one, &c);
	pthread_mutex_unlock(&b->retain_lock);
	*n = c.n;
	return c.v;
}

/* ---- entries for the workers ---- */

struct brk_post {
	struct broker *b;
	struct wq_vec *q;         /* one per worker */
};

struct brk_post *brk_post_new(struct broker *b)
{
	struct brk_post *p = hq_calloc(1, sizeof(*p));
	p->b = b;
	p->q = hq_calloc((size_t)b->n_workers, sizeof(*p->q));
	return p;
}

void brk_post_free(struct brk_post *p)
{
	if (!p)
		return;
	for (int i = 0; i < p->b->n_workers; i++) {
		for (uint32_t k = 0; k < p->q[i].len; k++)
			wq_entry_release(&p->q[i].v[k]);
		hq_free(p->q[i].v);
	}
	hq_free(p->q);
	hq_free(p);
}

static void push(struct brk_post *p, int worker, const struct wq_entry *e)
{
	struct wq_vec *q = &p->q[worker];
	if (q->len == q->cap) {
		q->cap = q->cap ? q->cap * 2 : 64;
		q->v = hq_realloc(q->v, q->cap * sizeof(*q->v));
	}
	q->v[q->len++] = *e;
}

void brk_post_flush(struct brk_post *p)
{
	for (int i = 0; i < p->b->n_workers; i++) {
		struct wq_vec *q = &p->q[i];
		if (q->len) {
			wk_inbox_append(&p->b->workers[i], q->v, q->len);
			q->len = 0;
		}
	}
}

void brk_post_route(struct brk_post *p, struct session *s, const char *filter, bool add,
		    uint8_t options, uint32_t sub_id)
{
	for (int i = 0; i < p->b->n_workers; i++) {
		struct wq_entry e = { .kind = add ? WQ_ROUTE_ADD : WQ_ROUTE_DEL, .options = options,
				      .sub_id = sub_id, .sess = sess_ref(s) };
		e.u.filter = hq_strdup(filter);
		push(p, i, &e);
	}
}

void brk_post_forward(struct brk_post *p, int worker, struct fwd_in *f)
{
	struct wq_entry e = { .kind = WQ_FWD_IN };
	e.u.fwd = *f;
	memset(f, 0, sizeof(*f));
	push(p, worker, &e);
}

void brk_post_forward_target(struct brk_post *p, const char *client_id, struct session *s)
{
	for (int i = 0; i < p->b->n_workers; i++) {
		struct wq_vec *q = &p->q[i];
		for (uint32_t k = 0; k < q->len; k++) {
			struct fwd_in *f = &q->v[k].u.fwd;
			if (q->v[k].kind == WQ_FWD_IN && f->client_id && !f->target &&
			    !strcmp(f->client_id, client_id))
				f->target = sess_ref(s);
		}
	}
}

void brk_post_switch(struct brk_post *p, uint64_t token)
{
	for (int i = 0; i < p->b->n_workers; i++) {
		struct wq_entry e = { .kind = WQ_SWITCH_MARK };
		e.u.token = token;
		push(p, i, &e);
	}
}

void brk_post_gate_release(struct brk_post *p, int worker, uint64_t token)
{
	if (!token || worker < 0 || worker >= p->b->n_workers)
		return;
	struct wq_entry e = { .kind = WQ_GATE_RELEASE };
	e.u.token = token;
	push(p, worker, &e);
}

void brk_post_gate_fail(struct brk_post *p, int worker, uint64_t token)
{
	if (!token || worker < 0 || worker >= p->b->n_workers)
		return;
	struct wq_entry e = { .kind = WQ_GATE_RELEASE, .options = 1 };
	e.u.token = token;
	push(p, worker, &e);
}

void brk_post_listen(struct brk_post *p)
{
	for (int i = 0; i < p->b->n_workers; i++) {
		struct wq_entry e = { .kind = WQ_LISTEN };
		push(p, i, &e);
	}
}

void brk_post_adopt(struct brk_post *p, const char *owner)
{
	struct wq_entry e = { .kind = WQ_ADOPT_NODE };
	e.u.filter = hq_strdup(owner);
	push(p, 0, &e);
}

void brk_clu_node_session_up(struct session *node_sess, bool up)
{
	atomic_store_explicit(&node_sess->online, up, memory_order_relaxed);
}

bool brk_clu_store_shared(const struct broker *b)
{
	return brk_store_shared(b);
}

void brk_post_kill(struct brk_post *p, struct session *s)
{
	struct wq_entry e = { .kind = WQ_KILL, .sess = s };
	push(p, s->w->id, &e);
}

void brk_post_takeover_done(struct brk_post *p, int worker, uint64_t token, uint8_t status,
			    struct session *imported)
{
	struct wq_entry e = { .kind = WQ_TAKEOVER_DONE, .sess = imported };
	e.u.takeover.id = token;
	e.u.takeover.status = status;
	push(p, worker, &e);
}

void brk_post_takeover_out(struct brk_post *p, int worker, struct session *s,
			   const char *client_id, size_t id_len, struct clu_peer *member,
			   struct session *node_sess, uint64_t req_id, uint32_t link_gen,
			   bool clean_start)
{
	struct wq_entry e = { .kind = WQ_TAKEOVER_OUT, .sess = s };
	if (!s)
		e.u.takeover.client_id = hq_strndup(client_id, id_len);
	e.u.takeover.member = member;
	e.u.takeover.node_sess = node_sess;
	e.u.takeover.id = req_id;
	e.u.takeover.link_gen = link_gen;
	e.u.takeover.clean_start = clean_start;
	push(p, s ? s->w->id : worker, &e);
}

void brk_post_takeover_import(struct brk_post *p, int worker, uint64_t id, const uint8_t *blob,
			      size_t len, const char *client_id)
{
	struct wq_entry e = { .kind = WQ_TAKEOVER_IMPORT };
	e.u.takeover.id = id;
	e.u.takeover.blob = hq_malloc(len ? len : 1);
	memcpy(e.u.takeover.blob, blob, len);
	e.u.takeover.blob_len = (uint32_t)len;
	e.u.takeover.client_id = hq_strdup(client_id);
	push(p, worker, &e);
	/* at once and alone: the caller holds every other worker's entries
	 * until the import is answered */
	struct wq_vec *q = &p->q[worker];
	wk_inbox_append(&p->b->workers[worker], q->v, q->len);
	q->len = 0;
}
