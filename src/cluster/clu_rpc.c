/*
 * clu_rpc.c - the cluster-wide REST API's transport (cluster thread): a node
 * asks other members to answer an HTTP request for themselves (RPC_REQ) and
 * gets their answers (RPC_RESP); semantics in broker.h
 * broker_cluster_call_many, the frames in clu_proto.h.
 *
 * Caller side: an HTTP thread queues a struct clu_rpc_call (on its own stack)
 * under admin_lock and waits on its condition variable; the cluster thread
 * sends one RPC_REQ per member with a link, answers the others at once
 * (unreachable), and always completes the call: when the last answer comes,
 * when a link goes down (its requests: unreachable), at the deadline (the
 * 100 ms tick: timeout) or at shutdown (clu_rpc_stop). A call never outlives
 * its caller's wait, so pending entries may point into it.
 *
 * Peer side: the cluster thread never runs a handler (one may wait for the
 * workers, which may wait for this thread): it copies the request into a
 * struct broker_rpc_job and hands it to the HTTP server's executor
 * (brk_clu_api_call); the answer comes back as CRQ_RPC_ANSWER and is sent on
 * the link it came from, if that link is still the member's current one.
 *
 * Bounds: at most CLU_RPC_INFLIGHT_MAX requests in flight per link and
 * direction (more: answered 503 at once, never dropped); request bodies
 * CLU_RPC_REQ_BODY_MAX, answers CLU_RPC_RESP_BODY_MAX (a larger one: 500).
 */
#include "cluster/clu_int.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct clu_rpc_call {
	struct broker_rpc *reqs;          /* the caller's, filled here */
	size_t n;
	int timeout_ms;
	uint32_t remaining;               /* requests not answered yet */
	bool done;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct clu_rpc_call *next;        /* n->rpc_q */
};

struct clu_rpc_pending {              /* one RPC_REQ sent, awaiting its RPC_RESP */
	uint64_t id;
	struct clu_rpc_call *call;
	size_t idx;                       /* call->reqs[idx] */
	struct clu_peer *m;
	uint32_t link_gen;
	int64_t deadline_ms;              /* clu_now */
	UT_hash_handle hh;
};

static void call_finish(struct clu_rpc_call *c)
{
	pthread_mutex_lock(&c->mu);
	c->done = true;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

/* One request answered: status, and a copy of body (len bytes) as resp. */
static void slot_done(struct clu_rpc_call *c, size_t idx, int status, const void *body, size_t len)
{
	struct broker_rpc *r = &c->reqs[idx];
	r->status = status;
	r->resp = NULL;
	r->resp_len = 0;
	if (len) {
		r->resp = malloc(len + 1);
		if (r->resp) {
			memcpy(r->resp, body, len);
			r->resp[len] = 0;
			r->resp_len = len;
		} else {
			r->status = 500;
		}
	}
	if (--c->remaining == 0)
		call_finish(c);
}

static void pending_done(struct clu_node *n, struct clu_rpc_pending *p, int status,
			 const void *body, size_t len)
{
	HASH_DEL(n->rpc_pend, p);
	if (p->m->link_gen == p->link_gen && p->m->rpc_out)
		p->m->rpc_out--;
	slot_done(p->call, p->idx, status, body, len);
	hq_free(p);
}

static void call_start(struct clu_node *n, struct clu_rpc_call *c)
{
	int64_t deadline = clu_now(n) + (c->timeout_ms > 0 ? c->timeout_ms : BROKER_RPC_TIMEOUT_MS);
	/* the last slot_done wakes the caller, whose stack holds c: from then on
	 * c is gone, so the loop must not read c->n (nor anything of c) again */
	size_t count = c->n;
	c->remaining = (uint32_t)count;
	if (!count) {
		call_finish(c);
		return;
	}
	for (size_t i = 0; i < count; i++) {
		struct broker_rpc *r = &c->reqs[i];
		struct clu_peer *m = r->node ? clu_member_find(n, r->node, strlen(r->node)) : NULL;
		if (!m || m->self || m->left || m->forgotten || !m->link || m->link->st != LS_UP) {
			slot_done(c, i, BROKER_RPC_UNREACHABLE, NULL, 0);
			continue;
		}
		if (m->rpc_out >= CLU_RPC_INFLIGHT_MAX) {
			static const char busy[] = "{\"code\":\"BUSY\",\"message\":\"too many "
						   "requests in flight to this node\"}";
			slot_done(c, i, 503, busy, sizeof(busy) - 1);
			continue;
		}
		struct clu_msg q = { .type = CLU_MSG_RPC_REQ };
		q.rpcq.id = ++n->next_rpc_id;
		q.rpcq.method = clu_str(r->method);
		q.rpcq.path = clu_str(r->path);
		q.rpcq.query = clu_str(r->query ? r->query : "");
		q.rpcq.caller = clu_str(r->caller ? r->caller : "");
		if (q.rpcq.caller.len > CLU_TEXT_MAX)
			q.rpcq.caller.len = 0;
		q.rpcq.body = (struct clu_bin){ (const uint8_t *)r->body, r->body ? r->body_len : 0 };
		struct buf *out = &m->link->out;
		size_t before = buf_avail(out);
		clu_link_send(m->link, &q);
		if (buf_avail(out) == before) { /* refused by the encoder: bad path or method */
			static const char bad[] = "{\"code\":\"BAD_REQUEST\",\"message\":\"request "
						  "cannot be forwarded\"}";
			slot_done(c, i, 400, bad, sizeof(bad) - 1);
			continue;
		}
		struct clu_rpc_pending *p = hq_calloc(1, sizeof(*p));
		p->id = q.rpcq.id;
		p->call = c;
		p->idx = i;
		p->m = m;
		p->link_gen = m->link_gen;
		p->deadline_ms = deadline;
		m->rpc_out++;
		HASH_ADD(hh, n->rpc_pend, id, sizeof(p->id), p);
	}
}

void clu_rpc_run_queued(struct clu_node *n)
{
	pthread_mutex_lock(&n->admin_lock);
	struct clu_rpc_call *c = n->rpc_q;
	n->rpc_q = NULL;
	pthread_mutex_unlock(&n->admin_lock);
	while (c) {
		struct clu_rpc_call *next = c->next;
		call_start(n, c);
		c = next;
	}
}

int clu_rpc_call_many(struct clu_node *n, struct broker_rpc *reqs, size_t count, int timeout_ms)
{
	struct clu_rpc_call c = { .reqs = reqs, .n = count, .timeout_ms = timeout_ms };
	for (size_t i = 0; i < count; i++) {
		reqs[i].status = BROKER_RPC_UNREACHABLE;
		reqs[i].resp = NULL;
		reqs[i].resp_len = 0;
	}
	if (!count)
		return HQ_OK;
	pthread_mutex_init(&c.mu, NULL);
	pthread_cond_init(&c.cv, NULL);
	pthread_mutex_lock(&n->admin_lock);
	bool open = n->started && !brk_clu_stopping(n->b);
	if (open) {
		c.next = n->rpc_q;
		n->rpc_q = &c;
	}
	pthread_mutex_unlock(&n->admin_lock);
	if (open) {
		if (inbox_want_wake(&n->inbox))
			ev_wakeup(n->loop);
		pthread_mutex_lock(&c.mu);
		while (!c.done)
			pthread_cond_wait(&c.cv, &c.mu);
		pthread_mutex_unlock(&c.mu);
	}
	pthread_cond_destroy(&c.cv);
	pthread_mutex_destroy(&c.mu);
	return HQ_OK;
}

/* ---- peer side ---- */

static void send_resp(struct clu_link *l, uint64_t id, int status, const void *body, size_t len)
{
	struct clu_msg r = { .type = CLU_MSG_RPC_RESP };
	r.rpcr.id = id;
	r.rpcr.status = (uint16_t)status;
	r.rpcr.body = (struct clu_bin){ body, len };
	clu_link_send(l, &r);
}

static char *dup_n(const void *p, size_t len)
{
	char *s = hq_malloc(len + 1);
	if (len)
		memcpy(s, p, len);
	s[len] = 0;
	return s;
}

static void on_req(struct clu_node *n, struct clu_link *l, const struct clu_rpc_req *q)
{
	struct clu_peer *m = l->m;
	if (m->rpc_in >= CLU_RPC_INFLIGHT_MAX) {
		static const char busy[] = "{\"code\":\"BUSY\",\"message\":\"too many requests "
					   "in flight from this node\"}";
		send_resp(l, q->id, 503, busy, sizeof(busy) - 1);
		return;
	}
	struct broker_rpc_job *j = hq_calloc(1, sizeof(*j));
	clu_fmt(j->node, sizeof(j->node), "%s", m->name);
	clu_fmt(j->caller, sizeof(j->caller), "%.*s", (int)q->caller.len, q->caller.p);
	j->method = dup_n(q->method.p, q->method.len);
	j->path = dup_n(q->path.p, q->path.len);
	j->query = dup_n(q->query.p, q->query.len);
	if (q->body.len) {
		j->body = dup_n(q->body.p, q->body.len);
		j->body_len = q->body.len;
	}
	j->member = m;
	j->link_gen = m->link_gen;
	j->id = q->id;
	if (log_enabled(LOG_DEBUG))
		log_debug("cluster: %s asks for %s %s (its HTTP caller %s)", m->name, j->method,
			  j->path, j->caller[0] ? j->caller : "?");
	if (!brk_clu_api_call(n->b, j)) {
		static const char off[] = "{\"code\":\"NOT_RUNNING\",\"message\":\"the management "
					  "API does not run on this node\"}";
		broker_rpc_job_free(j);
		send_resp(l, q->id, 503, off, sizeof(off) - 1);
		return;
	}
	m->rpc_in++;
}

void clu_rpc_answer(struct clu_node *n, struct broker_rpc_job *job)
{
	struct clu_req r = { .kind = CRQ_RPC_ANSWER, .job = job };
	struct clu_req_vec v = { 0 };
	clu_req_push(&v, &r);
	clu_submit(n, &v);
	hq_free(v.v);
}

void clu_rpc_answer_req(struct clu_node *n, struct clu_req *r)
{
	(void)n;
	struct broker_rpc_job *j = r->job;
	struct clu_peer *m = j->member;
	/* the link it came on is gone: the caller was answered "unreachable" */
	if (!m->link || m->link_gen != j->link_gen || m->link->st != LS_UP)
		return;
	if (m->rpc_in)
		m->rpc_in--;
	int status = j->status >= 100 && j->status <= 599 ? j->status : 500;
	if (j->resp_len > CLU_RPC_RESP_BODY_MAX) {
		static const char big[] = "{\"code\":\"INTERNAL_ERROR\",\"message\":\"the answer "
					  "is too large to cross the cluster\"}";
		log_warning("cluster: answer of %zu bytes to %s for %s not sent (at most %u)",
			    j->resp_len, m->name, j->path, CLU_RPC_RESP_BODY_MAX);
		send_resp(m->link, j->id, 500, big, sizeof(big) - 1);
		return;
	}
	send_resp(m->link, j->id, status, j->resp, j->resp_len);
}

void clu_rpc_frame(struct clu_node *n, struct clu_link *l, const struct clu_msg *m)
{
	if (m->type == CLU_MSG_RPC_REQ) {
		on_req(n, l, &m->rpcq);
		return;
	}
	struct clu_rpc_pending *p;
	uint64_t id = m->rpcr.id;
	HASH_FIND(hh, n->rpc_pend, &id, sizeof(id), p);
	if (!p || p->m != l->m) { /* timed out meanwhile, or not ours */
		log_debug("cluster: RPC_RESP %llu from %s matches no request",
			  (unsigned long long)id, l->peer);
		return;
	}
	pending_done(n, p, m->rpcr.status, m->rpcr.body.p, m->rpcr.body.len);
}

void clu_rpc_link_down(struct clu_node *n, struct clu_peer *m)
{
	struct clu_rpc_pending *p, *tmp;
	HASH_ITER(hh, n->rpc_pend, p, tmp)
		if (p->m == m)
			pending_done(n, p, BROKER_RPC_UNREACHABLE, NULL, 0);
	m->rpc_out = 0;
	m->rpc_in = 0;   /* answers still due on the old link are dropped (link_gen) */
}

void clu_rpc_tick(struct clu_node *n, int64_t now)
{
	struct clu_rpc_pending *p, *tmp;
	HASH_ITER(hh, n->rpc_pend, p, tmp)
		if (now >= p->deadline_ms)
			pending_done(n, p, BROKER_RPC_TIMEOUT, NULL, 0);
}

void clu_rpc_stop(struct clu_node *n)
{
	pthread_mutex_lock(&n->admin_lock);
	struct clu_rpc_call *c = n->rpc_q;
	n->rpc_q = NULL;
	pthread_mutex_unlock(&n->admin_lock);
	while (c) { /* never started: nothing pending points into them */
		struct clu_rpc_call *next = c->next; /* c is gone once finished */
		size_t count = c->n; /* c is gone after its last slot_done */
		c->remaining = (uint32_t)count;
		for (size_t i = 0; i < count; i++)
			slot_done(c, i, BROKER_RPC_UNREACHABLE, NULL, 0);
		c = next;
	}
	struct clu_rpc_pending *p, *tmp;
	HASH_ITER(hh, n->rpc_pend, p, tmp)
		pending_done(n, p, BROKER_RPC_UNREACHABLE, NULL, 0);
}
