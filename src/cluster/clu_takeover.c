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
 * Waiting (ARCHITECTURE.md "The cluster"): only peers linked right now are
 * asked; a member whose link is lost (stopped) is not waited for, and a link
 * that closes while its answer is awaited (EOF or RST: a killed node's
 * kernel closes its sockets at once) releases the request at once
 * (clu_takeover_link_down). Only a peer that is linked but silent (frozen, cut
 * off without a FIN) holds a CONNACK, until its answer, the loss of its link
 * (cluster.heartbeat_timeout) or CLU_TAKEOVER_TIMEOUT_MS, whichever is first.
 *
 * A publisher on a third node: the old node keeps the session's routes a
 * while and relays what it receives for it; the new one keeps one copy of
 * what comes both ways (broker/brk_handover.c).
 */
#include "cluster/clu_int.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

#include <string.h>

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

/* Answer a peer's request from what this node holds: nothing (NONE), or the
 * session in the registry, which its worker closes and hands out (the worker
 * answers: clu_takeover_resp_req). */
static void answer_from_registry(struct clu_node *n, struct clu_peer *m, uint32_t gen,
				 uint64_t req_id, bool clean_start, struct clu_str cid)
{
	if (!m->link || m->link_gen != gen)
		return;
	int worker;
	struct session *s = brk_clu_session_find(n->b, cid.p, cid.len, &worker);
	if (!s) {
		send_resp(m->link, req_id, CLU_TAKEOVER_NONE, cid, NULL, 0);
		return;
	}
	brk_post_takeover_out(n->wout, worker, s, NULL, 0, m,
			      m->node_sess ? brk_clu_session_ref(m->node_sess) : NULL, req_id, gen,
			      clean_start);
}

/*
 * Build the session handed over, for worker t->worker, and put its routes in
 * every worker's replica now, ahead of any message forwarded after it: a
 * delivery that reaches this node right behind the session finds it.
 */
/*
 * Rebuild the session handed over on the worker that will own it (t->worker):
 * it puts the session's routes in every worker's replica and answers
 * (clu_takeover_imported). Until then everything else for the workers is
 * held (clu_wout_flush) and BARRIERs are answered late: whatever reaches a
 * worker after the session (a FORWARD right behind the answer) finds its
 * routes there, and whatever the owner does with the session next (a
 * ROUTE_DEL when it ends) comes after these adds on every worker.
 */
static void takeover_import(struct clu_node *n, struct clu_takeover *t)
{
	t->importing = true;
	n->imports_pending++;
	brk_post_takeover_import(n->wout, t->worker, t->id, t->blob, t->blob_len, t->client_id);
}

static void takeover_finish(struct clu_node *n, struct clu_takeover *t)
{
	for (struct clu_takeover **p = &n->takeovers; *p; p = &(*p)->next) {
		if (*p == t) {
			*p = t->next;
			break;
		}
	}
	if (t->pass_to) {
		/* a newer connection elsewhere won: it gets what we got */
		struct clu_peer *m = t->pass_to;
		struct clu_str cid = clu_str(t->client_id);
		t->refused = true;
		if (t->blob && m->link && m->link_gen == t->pass_gen)
			send_resp(m->link, t->pass_req, CLU_TAKEOVER_OK, cid, t->pass_clean ? NULL : t->blob,
				  t->pass_clean ? 0 : t->blob_len);
		else if (!t->blob)
			answer_from_registry(n, m, t->pass_gen, t->pass_req, t->pass_clean, cid);
		hq_free(t->blob);
		t->blob = NULL;
	}
	if (!t->refused) {
		/* until its worker has run this answer, the registry may not show
		 * the id: a request meanwhile must go through that worker */
		struct clu_takeover_recent *rc;
		HASH_FIND_STR(n->recent, t->client_id, rc);
		if (!rc) {
			rc = hq_calloc(1, sizeof(*rc));
			rc->client_id = hq_strdup(t->client_id);
			HASH_ADD_KEYPTR(hh, n->recent, rc->client_id, strlen(rc->client_id), rc);
		}
		rc->worker = t->worker;
		rc->until_ms = clu_now(n) + 2000;
		if (rc->sess)
			brk_clu_session_unref(rc->sess);
		rc->sess = t->imported ? brk_clu_session_ref(t->imported) : NULL;
	}
	log_debug("cluster: client_id=%s: takeover request settled in %lld ms (%s)", t->client_id,
		  (long long)(clu_now(n) - t->started_ms),
		  t->refused ? "refused" : t->blob ? "session handed over" : "no session elsewhere");
	uint8_t status = t->refused ? CLU_TAKEOVER_REFUSED
			 : t->blob ? CLU_TAKEOVER_OK : CLU_TAKEOVER_NONE;
	/* refused, it is ended there (brk_connect_resume), taking its routes along */
	brk_post_takeover_done(n->wout, t->worker, t->token, status, t->imported);
	t->imported = NULL;
	hq_free(t->blob);
	hq_free(t->client_id);
	hq_free(t->wait);
	hq_free(t);
}

static void takeover_answered(struct clu_node *n, struct clu_takeover *t, struct clu_peer *m)
{
	for (uint32_t i = 0; i < t->n_wait; i++) {
		if (t->wait[i] == m) {
			t->wait[i] = t->wait[--t->n_wait];
			break;
		}
	}
	if (!t->n_wait && !t->importing)
		takeover_finish(n, t);
}

/* A CONNECT here: ask every linked peer. */
void clu_takeover_req(struct clu_node *n, struct clu_req *r)
{
	struct clu_takeover *t = hq_calloc(1, sizeof(*t));
	t->id = ++n->next_takeover;
	t->token = r->token;
	t->worker = r->worker;
	t->clean_start = r->plain;
	t->client_id = r->key;
	r->key = NULL;
	t->started_ms = clu_now(n);
	t->deadline_ms = t->started_ms + CLU_TAKEOVER_TIMEOUT_MS;
	t->ts = brk_clu_hlc_now(n->b);
	t->wait = hq_calloc(n->n_m, sizeof(*t->wait));
	t->next = n->takeovers;
	n->takeovers = t;
	struct clu_msg m = { .type = CLU_MSG_TAKEOVER_REQ };
	m.treq.req_id = t->id;
	m.treq.clean_start = t->clean_start;
	m.treq.ts = t->ts;
	m.treq.client_id = clu_str(t->client_id);
	for (size_t i = 1; i < n->n_m; i++) {
		struct clu_peer *p = n->m[i];
		if (p->left || p->forgotten)
			continue;
		if (!p->link) {
			/* stopped: whatever it held is gone with it, or comes back
			 * through CLIENTS when its link does (a partition) */
			log_debug("cluster: client_id=%s: not waiting for %s (stopped)", t->client_id,
				  p->name);
			continue;
		}
		clu_link_send(p->link, &m);
		t->wait[t->n_wait++] = p;
	}
	if (!t->n_wait)
		takeover_finish(n, t);
}

/* A peer asks about a client id connecting there. */
static void on_req(struct clu_node *n, struct clu_link *l, const struct clu_takeover_req *q)
{
	struct clu_peer *self = n->m[0];
	/* one of ours for the same id in flight: the newer connection wins */
	for (struct clu_takeover *t = n->takeovers; t; t = t->next) {
		if (strlen(t->client_id) != q->client_id.len ||
		    memcmp(t->client_id, q->client_id.p, q->client_id.len))
			continue;
		if (clu_hlc_cmp(t->ts, self->name, strlen(self->name), q->ts, l->peer,
				strlen(l->peer)) > 0) {
			send_resp(l, q->req_id, CLU_TAKEOVER_REFUSED, q->client_id, NULL, 0);
			return;
		}
		/* theirs is newer: ours gives up, and whatever session ours is
		 * about to receive goes to them once it arrives */
		t->refused = true;
		if (t->pass_to) {
			struct clu_peer *old = t->pass_to;
			if (old->link && old->link_gen == t->pass_gen)
				send_resp(old->link, t->pass_req, CLU_TAKEOVER_REFUSED, q->client_id, NULL, 0);
		}
		t->pass_to = l->m;
		t->pass_req = q->req_id;
		t->pass_gen = l->m->link_gen;
		t->pass_clean = q->clean_start;
		return;
	}
	struct clu_takeover_recent *rc;
	HASH_FIND(hh, n->recent, q->client_id.p, q->client_id.len, rc);
	if (rc) {
		brk_post_takeover_out(n->wout, rc->worker, NULL, q->client_id.p, q->client_id.len, l->m,
				      l->m->node_sess ? brk_clu_session_ref(l->m->node_sess) : NULL,
				      q->req_id, l->m->link_gen, q->clean_start);
		return;
	}
	answer_from_registry(n, l->m, l->m->link_gen, q->req_id, q->clean_start, q->client_id);
}

/* The worker's answer to a peer's request. */
void clu_takeover_resp_req(struct clu_node *n, struct clu_req *r)
{
	struct clu_peer *m = r->member;
	clu_route_provisional(n, m, r->link_gen, r->groups, r->n_groups);
	if (!m->link || m->link_gen != r->link_gen)
		return; /* the asking node is gone; the session ended here */
	send_resp(m->link, r->token, r->rc, clu_str(r->key), r->blob, r->blob_len);
}

static void on_resp(struct clu_node *n, struct clu_link *l, const struct clu_takeover_resp *p)
{
	struct clu_takeover *t = n->takeovers;
	while (t && t->id != p->req_id)
		t = t->next;
	if (!t)
		return; /* timed out already */
	if (p->status == CLU_TAKEOVER_REFUSED) {
		t->refused = true;
	} else if (p->status == CLU_TAKEOVER_OK && p->session.len && !t->blob) {
		t->blob = hq_malloc(p->session.len);
		memcpy(t->blob, p->session.p, p->session.len);
		t->blob_len = (uint32_t)p->session.len;
		/* at once, not when every node answered: what the old node forwards
		 * right behind this answer must find the session's routes here */
		if (!t->clean_start)
			takeover_import(n, t);
	}
	takeover_answered(n, t, l->m);
}

void clu_takeover_frame(struct clu_node *n, struct clu_link *l, const struct clu_msg *m)
{
	if (m->type == CLU_MSG_TAKEOVER_REQ)
		on_req(n, l, &m->treq);
	else
		on_resp(n, l, &m->tresp);
}

/* A new link: our connected client ids, so duplicates from a partition end. */
struct clients_out {
	struct clu_link *l;
	struct clu_batch bt;
	bool open;
};

static void client_out(void *ctx, const char *client_id, struct clu_hlc_ts since)
{
	struct clients_out *o = ctx;
	if (o->open && clu_batch_size(&o->bt) > 60000) {
		clu_batch_end(&o->bt);
		o->open = false;
	}
	if (!o->open) {
		clu_batch_begin(&o->bt, &o->l->out, CLU_MSG_CLIENTS);
		o->open = true;
	}
	struct clu_client c = { .client_id = clu_str(client_id), .ts = since };
	clu_batch_client(&o->bt, &c);
}

void clu_takeover_send_clients(struct clu_node *n, struct clu_link *l)
{
	struct clients_out o = { .l = l };
	brk_clu_clients_each(n->b, client_out, &o);
	if (o.open)
		clu_batch_end(&o.bt);
}

/* The peer's connected ids: close ours where theirs is newer. */
void clu_takeover_clients(struct clu_node *n, struct clu_link *l, struct clu_list list)
{
	const char *self = n->m[0]->name;
	struct clu_client c;
	while (clu_next_client(&list, &c)) {
		int worker;
		struct session *s = brk_clu_session_find(n->b, c.client_id.p, c.client_id.len, &worker);
		if (!s)
			continue;
		struct clu_hlc_ts since;
		if (brk_clu_session_connected(s, &since) &&
		    clu_hlc_cmp(since, self, strlen(self), c.ts, l->peer, strlen(l->peer)) < 0) {
			log_notice("cluster: client_id=%s is connected here and, more recently, on %s "
				   "(a partition healed): closing it here", brk_clu_session_client_id(s),
				   l->peer);
			brk_post_kill(n->wout, s);
		} else {
			brk_clu_session_unref(s);
		}
	}
}

void clu_takeover_link_down(struct clu_node *n, struct clu_peer *m)
{
	struct clu_takeover *t = n->takeovers, *next;
	for (; t; t = next) {
		next = t->next;
		for (uint32_t i = 0; i < t->n_wait; i++) {
			if (t->wait[i] == m) {
				log_debug("cluster: client_id=%s: not waiting for %s (link lost)",
					  t->client_id, m->name);
				takeover_answered(n, t, m);
				break;
			}
		}
	}
}

void clu_takeover_tick(struct clu_node *n, int64_t now)
{
	struct clu_takeover_recent *rc, *rtmp;
	HASH_ITER(hh, n->recent, rc, rtmp) {
		if (now < rc->until_ms)
			continue;
		HASH_DEL(n->recent, rc);
		if (rc->sess)
			brk_clu_session_unref(rc->sess);
		hq_free(rc->client_id);
		hq_free(rc);
	}
	struct clu_takeover *t = n->takeovers, *next;
	for (; t; t = next) {
		next = t->next;
		if (now > t->deadline_ms && !t->importing) { /* a worker answers within a turn */
			log_warning("cluster: client_id=%s: %u node(s) did not answer within %d ms; "
				    "connecting anyway", t->client_id, t->n_wait, CLU_TAKEOVER_TIMEOUT_MS);
			takeover_finish(n, t);
		}
	}
}

void clu_takeover_free(struct clu_node *n)
{
	struct clu_takeover_recent *rc, *rtmp;
	HASH_ITER(hh, n->recent, rc, rtmp) {
		HASH_DEL(n->recent, rc);
		if (rc->sess)
			brk_clu_session_unref(rc->sess);
		hq_free(rc->client_id);
		hq_free(rc);
	}
	while (n->takeovers) {
		struct clu_takeover *t = n->takeovers;
		n->takeovers = t->next;
		hq_free(t->client_id);
		hq_free(t->wait);
		hq_free(t->blob);
		if (t->imported)
			brk_clu_session_unref(t->imported);
		hq_free(t);
	}
}

struct session *clu_takeover_target(struct clu_node *n, struct clu_str cid)
{
	for (struct clu_takeover *t = n->takeovers; t; t = t->next) {
		if (strlen(t->client_id) != cid.len || memcmp(t->client_id, cid.p, cid.len))
			continue;
		if (t->importing)
			return NULL; /* filled in when the import is answered */
		if (t->imported)
			return brk_clu_session_ref(t->imported);
	}
	/* connected moments ago: its worker may not have registered it yet */
	struct clu_takeover_recent *rc;
	HASH_FIND(hh, n->recent, cid.p, cid.len, rc);
	if (rc && rc->sess)
		return brk_clu_session_ref(rc->sess);
	int w;
	return brk_clu_session_find(n->b, cid.p, cid.len, &w);
}

/* The worker rebuilt (or failed to rebuild) a session handed over. */
void clu_takeover_imported(struct clu_node *n, struct clu_req *r)
{
	n->imports_pending--;
	struct clu_takeover *t = n->takeovers;
	while (t && t->id != r->token)
		t = t->next;
	if (t) {
		t->importing = false;
		t->imported = r->sess; /* the reference moves */
		r->sess = NULL;
		/* the FORWARDs that followed the session meanwhile are still in
		 * the held outboxes (imports_pending): they get it as target */
		if (t->imported)
			brk_post_forward_target(n->wout, t->client_id, t->imported);
	}
	if (!n->imports_pending) {
		/* the routes are in the inboxes: let the rest go, then answer */
		clu_wout_flush(n);
		clu_route_owed_acks(n);
	}
	if (t && !t->n_wait)
		takeover_finish(n, t);
}

