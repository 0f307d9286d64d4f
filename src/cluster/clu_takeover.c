/*
 * clu_takeover.c - one connection per client id in the whole cluster
 * (cluster thread).
 *
 * A CONNECT on this node, while peers are linked, first asks every peer
 * (SESSION_TAKEOVER_REQ, stamped with this node's hybrid logical clock). A
 * peer that holds the client id closes that connection with 0x8E and, unless
 * the new connection has clean start (or the session does not outlive its
 * connection), hands the session over as a sess_serial blob; the session then
 * continues here (subscriptions, queued and in-flight messages). Only when
 * every peer answered (or its link went down, or 3 s passed: AP, the client
 * is served anyway) does the connection get its CONNACK.
 *
 * Racing connects of one id on two nodes: each node, asked about an id it is
 * itself asking about, compares the two requests' timestamps (clu_hlc_cmp,
 * ties broken by node name, so both nodes decide alike): the older request
 * is REFUSED and its connection gets CONNACK 0x89 (server busy), the newer
 * proceeds. Exactly one connection survives.
 *
 * Known window: messages published between the old node ending the session
 * and the new node's routes reaching the publisher's node are not delivered
 * (a route-handover protocol would close it).
 */
#include "cluster/clu_int.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

#include <string.h>

static void tko_finish(struct clu_node *n, struct clu_tko *t)
{
	for (struct clu_tko **p = &n->tkos; *p; p = &(*p)->next) {
		if (*p == t) {
			*p = t->next;
			break;
		}
	}
	struct wq_entry e = { .kind = WQ_TKO_DONE };
	e.u.tko.id = t->token;
	e.u.tko.status = t->refused ? CLU_TKO_REFUSED : t->blob ? CLU_TKO_OK : CLU_TKO_NONE;
	e.u.tko.blob = t->blob; /* moved */
	e.u.tko.blob_len = t->blob_len;
	clu_wout_push(n, t->worker, &e);
	hq_free(t->client_id);
	hq_free(t->wait);
	hq_free(t);
}

static void tko_answered(struct clu_node *n, struct clu_tko *t, struct clu_peer *m)
{
	for (uint32_t i = 0; i < t->n_wait; i++) {
		if (t->wait[i] == m) {
			t->wait[i] = t->wait[--t->n_wait];
			break;
		}
	}
	if (!t->n_wait)
		tko_finish(n, t);
}

/* A CONNECT here: ask every linked peer. */
void clu_tko_req(struct clu_node *n, struct clu_req *r)
{
	struct clu_tko *t = hq_calloc(1, sizeof(*t));
	t->id = ++n->next_tko;
	t->token = r->token;
	t->worker = r->worker;
	t->clean_start = r->plain;
	t->client_id = r->key;
	r->key = NULL;
	t->deadline_ms = clu_now(n) + CLU_TAKEOVER_TIMEOUT_MS;
	pthread_mutex_lock(&n->b->retain_lock); /* the node's clock lives under it */
	t->ts = clu_hlc_now(&n->b->hlc, (uint64_t)clock_wall_ms());
	pthread_mutex_unlock(&n->b->retain_lock);
	t->wait = hq_calloc(n->n_m, sizeof(*t->wait));
	t->next = n->tkos;
	n->tkos = t;
	struct clu_msg m = { .type = CLU_MSG_TAKEOVER_REQ };
	m.treq.req_id = t->id;
	m.treq.clean_start = t->clean_start;
	m.treq.ts = t->ts;
	m.treq.client_id = clu_str(t->client_id);
	for (size_t i = 1; i < n->n_m; i++) {
		struct clu_peer *p = n->m[i];
		if (!p->link || p->left)
			continue;
		clu_link_send(p->link, &m);
		t->wait[t->n_wait++] = p;
	}
	if (!t->n_wait)
		tko_finish(n, t);
}

static void send_resp(struct clu_link *l, uint64_t req_id, uint8_t status, struct clu_str cid,
		      const uint8_t *blob, size_t blob_len)
{
	struct clu_msg m = { .type = CLU_MSG_TAKEOVER_RESP };
	m.tresp.req_id = req_id;
	m.tresp.status = status;
	m.tresp.client_id = cid;
	m.tresp.session.p = blob;
	m.tresp.session.len = blob_len;
	clu_link_send(l, &m);
}

/* A peer asks about a client id connecting there. */
static void on_req(struct clu_node *n, struct clu_link *l, const struct clu_takeover_req *q)
{
	struct clu_peer *self = n->m[0];
	/* one of ours for the same id in flight: the newer connection wins */
	for (struct clu_tko *t = n->tkos; t; t = t->next) {
		if (strlen(t->client_id) != q->client_id.len ||
		    memcmp(t->client_id, q->client_id.p, q->client_id.len))
			continue;
		if (clu_hlc_cmp(t->ts, self->name, strlen(self->name), q->ts, l->peer,
				strlen(l->peer)) > 0) {
			send_resp(l, q->req_id, CLU_TKO_REFUSED, q->client_id, NULL, 0);
			return;
		}
		t->refused = true;
	}
	struct broker *b = n->b;
	struct session *s;
	pthread_mutex_lock(&b->reg_lock);
	HASH_FIND(reg_hh, b->registry, q->client_id.p, q->client_id.len, s);
	if (s)
		sess_ref(s);
	pthread_mutex_unlock(&b->reg_lock);
	if (!s) {
		send_resp(l, q->req_id, CLU_TKO_NONE, q->client_id, NULL, 0);
		return;
	}
	/* its worker closes the connection and answers (clu_tko_resp_req) */
	struct wq_entry e = { .kind = WQ_TKO_OUT, .sess = s };
	e.u.tko.member = l->m;
	e.u.tko.id = q->req_id;
	e.u.tko.link_gen = l->m->link_gen;
	e.u.tko.clean_start = q->clean_start;
	clu_wout_push(n, s->w->id, &e);
}

/* The worker's answer to a peer's request. */
void clu_tko_resp_req(struct clu_node *n, struct clu_req *r)
{
	struct clu_peer *m = r->member;
	if (!m->link || m->link_gen != r->link_gen)
		return; /* the asking node is gone; the session ended here */
	send_resp(m->link, r->token, r->rc, clu_str(r->key), r->blob, r->blob_len);
}

static void on_resp(struct clu_node *n, struct clu_link *l, const struct clu_takeover_resp *p)
{
	struct clu_tko *t = n->tkos;
	while (t && t->id != p->req_id)
		t = t->next;
	if (!t)
		return; /* timed out already */
	if (p->status == CLU_TKO_REFUSED) {
		t->refused = true;
	} else if (p->status == CLU_TKO_OK && p->session.len && !t->blob) {
		t->blob = hq_malloc(p->session.len);
		memcpy(t->blob, p->session.p, p->session.len);
		t->blob_len = (uint32_t)p->session.len;
	}
	tko_answered(n, t, l->m);
}

void clu_tko_frame(struct clu_node *n, struct clu_link *l, const struct clu_msg *m)
{
	if (m->type == CLU_MSG_TAKEOVER_REQ)
		on_req(n, l, &m->treq);
	else
		on_resp(n, l, &m->tresp);
}

void clu_tko_link_down(struct clu_node *n, struct clu_peer *m)
{
	struct clu_tko *t = n->tkos, *next;
	for (; t; t = next) {
		next = t->next;
		for (uint32_t i = 0; i < t->n_wait; i++) {
			if (t->wait[i] == m) {
				tko_answered(n, t, m);
				break;
			}
		}
	}
}

void clu_tko_tick(struct clu_node *n, int64_t now)
{
	struct clu_tko *t = n->tkos, *next;
	for (; t; t = next) {
		next = t->next;
		if (now > t->deadline_ms) {
			log_warning("cluster: client_id=%s: %u node(s) did not answer within %d ms; "
				    "connecting anyway", t->client_id, t->n_wait, CLU_TAKEOVER_TIMEOUT_MS);
			tko_finish(n, t);
		}
	}
}

void clu_tko_free(struct clu_node *n)
{
	while (n->tkos) {
		struct clu_tko *t = n->tkos;
		n->tkos = t->next;
		hq_free(t->client_id);
		hq_free(t->wait);
		hq_free(t->blob);
		hq_free(t);
	}
}
