/*
 * clu_route.c - routes and messages between nodes, on the cluster thread.
 *
 * Local routes: workers report each (filter, group) that gains its first or
 * loses its last subscription of any session of this node; we count them
 * per key and tell peers only the 0 <-> 1 transitions, as ROUTE_ADD /
 * ROUTE_DEL deltas, in order. A new link gets the full set between
 * ROUTE_SYNC_BEGIN and ROUTE_SYNC_END.
 *
 * Remote routes: what a peer sent us is mirrored into every worker's replica
 * as subscriptions of the peer's node session (brk_post_route), and all of
 * it is withdrawn when its link goes down: a node that is gone gets nothing
 * routed to it, and a returning one resends everything.
 *
 * Messages: a worker's CRQ_FORWARD becomes one FORWARD frame to that node. A
 * QoS > 0 one carries a sequence number; the destination acknowledges it once
 * its workers have queued it for every local subscriber (CRQ_FWD_DONE ->
 * FORWARD_ACK, batched per loop turn), and the publisher's held PUBACK/PUBREC
 * is released (brk_post_gate_release). A link that dies releases what it held
 * (counted as lost forwards): the destination's subscribers are gone with
 * it, and the publisher must not wait forever.
 *
 * Barriers: a SUBACK waits until every peer answered a BARRIER sent after the
 * new routes; a peer answers once the routes are in its workers' inboxes,
 * which every worker drains before reading its next PUBLISH.
 */
#include "cluster/clu_int.h"
#include "core/conf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- local routes ---- */

static void ops_push(struct clu_node *n, char *key, bool add)
{
	if (n->n_ops == n->cap_ops) {
		n->cap_ops = n->cap_ops ? n->cap_ops * 2 : 32;
		n->ops = hq_realloc(n->ops, n->cap_ops * sizeof(*n->ops));
	}
	n->ops[n->n_ops].key = key;
	n->ops[n->n_ops].add = add;
	n->n_ops++;
}

/* A route key as the wire wants it: filter + group ("" when not shared). */
static struct clu_route route_of(const char *key)
{
	struct clu_route r = { .filter = clu_str(key) };
	const char *g, *f;
	size_t gl, fl;
	if (topic_filter_shared(key, strlen(key), &g, &gl, &f, &fl)) {
		r.group.p = g;
		r.group.len = gl;
		r.filter.p = f;
		r.filter.len = fl;
	}
	return r;
}

void clu_route_local(struct clu_node *n, char *key, bool add)
{
	struct clu_lroute *lr;
	HASH_FIND_STR(n->lroutes, key, lr);
	if (add) {
		atomic_fetch_add_explicit(&n->st_subs, 1, memory_order_relaxed);
		if (lr) {
			lr->count++;
			hq_free(key);
			return;
		}
		atomic_fetch_add_explicit(&n->st_topics, 1, memory_order_relaxed);
		lr = hq_calloc(1, sizeof(*lr));
		lr->key = hq_strdup(key);
		lr->count = 1;
		HASH_ADD_KEYPTR(hh, n->lroutes, lr->key, strlen(lr->key), lr);
		ops_push(n, key, true);
		return;
	}
	if (!lr) {
		hq_free(key);
		return;
	}
	atomic_fetch_sub_explicit(&n->st_subs, 1, memory_order_relaxed);
	if (--lr->count) {
		hq_free(key);
		return;
	}
	atomic_fetch_sub_explicit(&n->st_topics, 1, memory_order_relaxed);
	HASH_DEL(n->lroutes, lr);
	hq_free(lr->key);
	hq_free(lr);
	ops_push(n, key, false);
}

/* Tell every linked peer the changes of this turn, in order, batched in runs. */
void clu_route_flush_ops(struct clu_node *n)
{
	if (!n->n_ops)
		return;
	for (struct clu_link *l = n->links; l; l = l->next) {
		if (l->st != LS_UP)
			continue;
		struct clu_batch b;
		bool open = false, open_add = false;
		for (uint32_t i = 0; i < n->n_ops; i++) {
			struct clu_route_op *op = &n->ops[i];
			if (open && (op->add != open_add || clu_batch_size(&b) > 60000)) {
				clu_batch_end(&b);
				open = false;
			}
			if (!open) {
				clu_batch_begin(&b, &l->out, op->add ? CLU_MSG_ROUTE_ADD : CLU_MSG_ROUTE_DEL);
				open = true;
				open_add = op->add;
			}
			struct clu_route r = route_of(op->key);
			if (clu_batch_route(&b, &r) != HQ_OK)
				log_warning("cluster: route %s not sent to %s", op->key, l->peer);
		}
		if (open)
			clu_batch_end(&b);
	}
	for (uint32_t i = 0; i < n->n_ops; i++)
		hq_free(n->ops[i].key);
	n->n_ops = 0;
}

void clu_route_sync(struct clu_node *n, struct clu_link *l)
{
	/* pending deltas first, so the full set below is the latest state */
	clu_route_flush_ops(n);
	uint32_t id = ++n->next_sync_id;
	struct clu_msg m = { .type = CLU_MSG_ROUTE_SYNC_BEGIN };
	m.sync.incarnation = n->m[0]->incarnation;
	m.sync.sync_id = id;
	clu_link_send(l, &m);
	uint32_t count = 0;
	struct clu_batch b;
	bool open = false;
	struct clu_lroute *lr, *tmp;
	HASH_ITER(hh, n->lroutes, lr, tmp) {
		if (open && clu_batch_size(&b) > 60000) {
			clu_batch_end(&b);
			open = false;
		}
		if (!open) {
			clu_batch_begin(&b, &l->out, CLU_MSG_ROUTE_ADD);
			open = true;
		}
		struct clu_route r = route_of(lr->key);
		if (clu_batch_route(&b, &r) == HQ_OK)
			count++;
	}
	if (open)
		clu_batch_end(&b);
	m = (struct clu_msg){ .type = CLU_MSG_ROUTE_SYNC_END };
	m.sync.sync_id = id;
	m.sync.count = count;
	clu_link_send(l, &m);
}

/* ---- remote routes ---- */

static void post_route(struct clu_node *n, struct clu_peer *m, const char *key, bool add)
{
	/* QoS 2: the node applies its own */
	brk_post_route(n->wout, m->node_sess, key, add, 2, 0);
}

/* The replicas' key of a wire route: the filter, or "$share/group/filter". */
static bool route_key(const struct clu_route *r, char *key, size_t size)
{
	int k = r->group.len ? snprintf(key, size, "$share/%.*s/%.*s", (int)r->group.len,
					r->group.p, (int)r->filter.len, r->filter.p)
			     : snprintf(key, size, "%.*s", (int)r->filter.len, r->filter.p);
	return k >= 0 && (size_t)k < size;
}

static void remote_add(struct clu_node *n, struct clu_peer *m, const struct clu_route *r)
{
	char key[65536 + 300];
	if (!route_key(r, key, sizeof(key)))
		return;
	struct clu_remote_route *rr;
	HASH_FIND_STR(m->routes, key, rr);
	if (rr) {
		rr->gen = m->sync_gen;
		if (rr->provisional_until) {
			rr->provisional_until = 0; /* confirmed by its owner */
			m->n_provisional--;
		}
		return;
	}
	rr = hq_calloc(1, sizeof(*rr));
	rr->key = hq_strdup(key);
	rr->gen = m->sync_gen;
	HASH_ADD_KEYPTR(hh, m->routes, rr->key, strlen(rr->key), rr);
	post_route(n, m, rr->key, true);
	clu_switch_route_added(n, m, rr->key);
}

static void remote_del(struct clu_node *n, struct clu_peer *m, struct clu_remote_route *rr)
{
	if (rr->provisional_until)
		m->n_provisional--;
	HASH_DEL(m->routes, rr);
	post_route(n, m, rr->key, false);
	hq_free(rr->key);
	hq_free(rr);
}

static void remote_del_route(struct clu_node *n, struct clu_peer *m, const struct clu_route *r)
{
	char key[65536 + 300];
	if (!route_key(r, key, sizeof(key)))
		return;
	struct clu_remote_route *rr;
	HASH_FIND_STR(m->routes, key, rr);
	if (rr)
		remote_del(n, m, rr);
}

/* ---- forwarding ---- */

static void pend_push(struct clu_peer *m, uint64_t seq, uint64_t token, uint16_t worker)
{
	if (m->ph && m->ph == m->pn) {
		m->ph = m->pn = 0;
	} else if (m->ph && m->pn == m->pcap && m->ph >= m->pcap / 2) {
		memmove(m->pend, m->pend + m->ph, (m->pn - m->ph) * sizeof(*m->pend));
		m->pn -= m->ph;
		m->ph = 0;
	}
	if (m->pn == m->pcap) {
		m->pcap = m->pcap ? m->pcap * 2 : 64;
		m->pend = hq_realloc(m->pend, m->pcap * sizeof(*m->pend));
	}
	m->pend[m->pn++] = (struct clu_pending){ .seq = seq, .token = token, .worker = worker };
}

/* Release the held responses of every forward acknowledged in [first, last]. */
static void pend_ack(struct clu_node *n, struct clu_peer *m, uint64_t first, uint64_t last)
{
	/* seqs ascend: binary search the first >= first */
	uint32_t lo = m->ph, hi = m->pn;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (m->pend[mid].seq < first)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (uint32_t i = lo; i < m->pn && m->pend[i].seq <= last; i++) {
		struct clu_pending *p = &m->pend[i];
		if (p->done)
			continue;
		p->done = true;
		clu_gate_release(n, p->worker, p->token);
	}
	while (m->ph < m->pn && m->pend[m->ph].done)
		m->ph++;
}

/* FORWARD RX and SKIP (clu_proto.h): only with a shared store, where the
 * publisher's packet id and the receiver's marks live in one place; only
 * for the first delivery of a QoS 2 publish (r->rx), never for a delivery
 * that follows its session (key). The skip set borrows r's strings: the
 * returned array is the caller's to free. */
static struct clu_str *fwd_rx(struct clu_node *n, const struct clu_req *r,
			      const struct brk_msg_view *msg, struct clu_forward *f)
{
	if (!r->rx || r->key || msg->qos != 2 || !msg->rx_client_len || !msg->rx_pid ||
	    !brk_clu_store_shared(n->b))
		return NULL;
	f->rx_client.p = msg->rx_client;
	f->rx_client.len = msg->rx_client_len;
	f->rx_pid = msg->rx_pid;
	if (!r->n_skip)
		return NULL;
	struct clu_str *skip = hq_calloc(r->n_skip, sizeof(*skip));
	for (uint32_t i = 0; i < r->n_skip; i++)
		skip[i] = clu_str(r->skip[i]);
	f->skip = skip;
	f->n_skip = r->n_skip;
	return skip;
}

void clu_route_forward(struct clu_node *n, struct clu_req *r)
{
	struct clu_peer *m = r->member;
	struct clu_link *l = m ? m->link : NULL;
	struct brk_msg_view msg;
	brk_clu_msg_view(r->msg, clu_now(n), &msg);
	bool sent = false;
	if (l && l->st == LS_UP) {
		size_t queued = buf_avail(&l->out);
		if (queued < (msg.qos ? CLU_LINK_QUEUE_MAX : CLU_QOS0_QUEUE_MAX)) {
			struct clu_group *groups = NULL;
			if (r->n_groups)
				groups = hq_calloc(r->n_groups, sizeof(*groups));
			uint16_t ng = 0;
			for (uint16_t i = 0; i < r->n_groups; i++) {
				const char *g, *f;
				size_t gl, fl;
				if (!topic_filter_shared(r->groups[i], strlen(r->groups[i]), &g, &gl, &f, &fl))
					continue;
				groups[ng].group.p = g;
				groups[ng].group.len = gl;
				groups[ng].filter.p = f;
				groups[ng].filter.len = fl;
				ng++;
			}
			struct clu_msg fm = { .type = CLU_MSG_FORWARD };
			uint8_t qos = r->key ? r->dqos : msg.qos;
			fm.fwd.seq = qos ? m->next_seq + 1 : 0;
			fm.fwd.plain = r->plain && !r->key;
			if (r->key)
				fm.fwd.client = clu_str(r->key);
			/* a relay names the node the message came from, with its id:
			 * the session's new node may get it straight from there too
			 * and keeps one copy (brk_handover.c) */
			fm.fwd.origin = clu_str(msg.fwd_origin ? msg.fwd_origin->name : n->m[0]->name);
			fm.fwd.mid = msg.mid;
			fm.fwd.n_groups = ng;
			fm.fwd.groups = groups;
			fm.fwd.msg.qos = qos;
			fm.fwd.msg.retain = r->key ? r->dretain : msg.retain;
			fm.fwd.msg.has_expiry = msg.has_expiry;
			fm.fwd.msg.expiry = msg.expiry;
			fm.fwd.msg.pub_hash = msg.pub_hash;
			fm.fwd.msg.topic.p = msg.topic;
			fm.fwd.msg.topic.len = msg.topic_len;
			fm.fwd.msg.props.p = msg.props;
			fm.fwd.msg.props.len = msg.props_len;
			fm.fwd.msg.payload.p = msg.payload;
			fm.fwd.msg.payload.len = msg.payload_len;
			struct clu_str *skip = fwd_rx(n, r, &msg, &fm.fwd);
			int rc = HQ_EINVAL;
			if (fm.fwd.plain || ng || r->key) {
				rc = clu_encode(&l->out, &fm);
				if (rc != HQ_OK && fm.fwd.n_skip) {
					/* (larger than CLU_FWD_SKIP_MAX) a duplicate
					 * rather than a loss */
					log_warning("cluster: a resent QoS 2 message on %s to %s: its "
						    "%u stored targets do not fit the frame (%s): "
						    "sent without them (they may get it twice)",
						    msg.topic, m->name, fm.fwd.n_skip,
						    hq_strerror(rc));
					fm.fwd.n_skip = 0;
					fm.fwd.skip = NULL;
					rc = clu_encode(&l->out, &fm);
				}
			}
			hq_free(skip);
			if (rc == HQ_OK) {
				sent = true;
				atomic_fetch_add_explicit(&n->st_fwd_out, 1, memory_order_relaxed);
				if (qos) {
					m->next_seq++;
					pend_push(m, m->next_seq, r->token, r->worker);
				}
			}
			hq_free(groups);
		}
	}
	if (!sent) {
		atomic_fetch_add_explicit(&n->st_fwd_lost, 1, memory_order_relaxed);
		/* one line per 10 s at most: a dead peer under load must not flood the log */
		n->drops_unlogged++;
		int64_t now = clu_now(n);
		if (now - n->drops_logged_ms >= 10000) {
			log_warning("cluster: %llu message(s) not forwarded (latest: %s to %s: %s); "
				    "see hamqtt_cluster_forwards_lost_total",
				    (unsigned long long)n->drops_unlogged, msg.topic, m ? m->name : "?",
				    l ? "link queue full" : "no link");
			n->drops_logged_ms = now;
			n->drops_unlogged = 0;
		}
		clu_gate_undelivered(n, r->worker, r->token);
	}
}

void clu_route_fwd_done(struct clu_node *n, struct clu_req *r)
{
	struct clu_peer *m = r->member;
	if (!m || !m->link || m->link_gen != r->link_gen)
		return; /* that link is gone: the origin released it already */
	if (m->n_acks == m->cap_acks) {
		m->cap_acks = m->cap_acks ? m->cap_acks * 2 : 64;
		m->acks = hq_realloc(m->acks, m->cap_acks * sizeof(*m->acks));
	}
	m->acks[m->n_acks++] = r->token;
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

void clu_route_flush_acks(struct clu_node *n)
{
	for (size_t i = 1; i < n->n_m; i++) {
		struct clu_peer *m = n->m[i];
		if (!m->n_acks)
			continue;
		if (!m->link) {
			m->n_acks = 0;
			continue;
		}
		/* workers finish in any order: sort, then send ascending ranges */
		qsort(m->acks, m->n_acks, sizeof(*m->acks), u64_cmp);
		struct clu_batch b;
		clu_batch_begin(&b, &m->link->out, CLU_MSG_FORWARD_ACK);
		uint32_t k = 0;
		while (k < m->n_acks) {
			struct clu_ack_range ar = { .first = m->acks[k], .last = m->acks[k], .rc = 0 };
			k++;
			while (k < m->n_acks && m->acks[k] <= ar.last + 1) {
				if (m->acks[k] > ar.last)
					ar.last = m->acks[k];
				k++;
			}
			clu_batch_ack(&b, &ar);
		}
		clu_batch_end(&b);
		m->n_acks = 0;
	}
}

/* ---- barriers ---- */

static void barrier_ack(struct clu_node *n, uint64_t id)
{
	for (struct clu_barrier **p = &n->barriers; *p; p = &(*p)->next) {
		struct clu_barrier *bar = *p;
		if (bar->id != id)
			continue;
		if (--bar->remaining == 0) {
			clu_gate_release(n, bar->worker, bar->token);
			*p = bar->next;
			hq_free(bar);
		}
		return;
	}
}

void clu_route_barrier(struct clu_node *n, struct clu_req *r)
{
	clu_route_flush_ops(n); /* the routes go first */
	uint32_t links = 0;
	for (struct clu_link *l = n->links; l; l = l->next)
		links += l->st == LS_UP;
	if (!links) {
		clu_gate_release(n, r->worker, r->token);
		return;
	}
	struct clu_barrier *bar = hq_calloc(1, sizeof(*bar));
	bar->id = ++n->next_barrier;
	bar->token = r->token;
	bar->worker = r->worker;
	bar->remaining = links;
	bar->next = n->barriers;
	n->barriers = bar;
	struct clu_msg m = { .type = CLU_MSG_BARRIER };
	m.barrier_id = bar->id;
	for (struct clu_link *l = n->links; l; l = l->next) {
		if (l->st != LS_UP)
			continue;
		clu_link_send(l, &m);
		if (l->bn == l->bcap) {
			if (l->bh) {
				memmove(l->bars, l->bars + l->bh, (l->bn - l->bh) * sizeof(*l->bars));
				l->bn -= l->bh;
				l->bh = 0;
			}
			if (l->bn == l->bcap) {
				l->bcap = l->bcap ? l->bcap * 2 : 16;
				l->bars = hq_realloc(l->bars, l->bcap * sizeof(*l->bars));
			}
		}
		l->bars[l->bn++] = bar->id;
	}
}

/* ---- frames from peers ---- */

static void on_forward(struct clu_node *n, struct clu_link *l, const struct clu_forward *f)
{
	struct clu_peer *m = l->m;
	const struct clu_message *cm = &f->msg;
	struct brk_msg_view v = {
		.topic = cm->topic.p, .topic_len = (uint32_t)cm->topic.len,
		.props = cm->props.p, .props_len = (uint32_t)cm->props.len,
		.payload = cm->payload.p, .payload_len = (uint32_t)cm->payload.len,
		.qos = cm->qos, .retain = cm->retain, .has_expiry = cm->has_expiry,
		.expiry = cm->expiry, .pub_hash = cm->pub_hash,
		.rx_client = f->rx_client.p, .rx_client_len = (uint32_t)f->rx_client.len,
		.rx_pid = f->rx_pid, .mid = f->mid, .fwd_origin = m,
	};
	if (f->origin.len != strlen(m->name) || memcmp(f->origin.p, m->name, f->origin.len)) {
		/* relayed: the id is the origin's (an unknown origin: no id) */
		v.fwd_origin = clu_member_find(n, f->origin.p, f->origin.len);
		if (!v.fwd_origin)
			v.mid = 0;
	}
	struct fwd_in fw = { .msg = brk_clu_msg_new(&v, clu_now(n)) };
	if (f->n_skip) {
		/* the targets that have it stored: skipped here (brk_route) */
		struct clu_list sl = f->slist;
		struct clu_str t;
		fw.skip = brk_clu_skip_new(f->rx_pid);
		while (clu_next_target(&sl, &t))
			brk_clu_skip_add(fw.skip, t.p, t.len);
	}
	fw.member = m;
	fw.seq = f->seq;
	fw.link_gen = m->link_gen;
	fw.plain = f->plain;
	if (f->n_groups) {
		struct clu_list gl = f->glist;
		struct clu_group g;
		fw.groups = hq_calloc(f->n_groups, sizeof(char *));
		while (clu_next_group(&gl, &g)) {
			size_t len = 8 + g.group.len + g.filter.len;
			char *s = hq_malloc(len + 1);
			snprintf(s, len + 1, "$share/%.*s/%.*s", (int)g.group.len, g.group.p,
				 (int)g.filter.len, g.filter.p);
			fw.groups[fw.n_groups++] = s;
		}
	}
	atomic_fetch_add_explicit(&n->st_fwd_in, 1, memory_order_relaxed);
	/* one publisher's messages always go to the same worker, those that
	 * followed a session handed over (CLIENT) too: its worker passes them
	 * to the session's in order with the ones it routes itself */
	int n_workers = brk_clu_n_workers(n->b);
	int worker = (int)(cm->pub_hash % (uint32_t)n_workers);
	if (f->client.len) {
		fw.client_id = hq_strndup(f->client.p, f->client.len);
		fw.target = clu_takeover_target(n, f->client);
	}
	brk_post_forward(n->wout, worker, &fw);
}

void clu_route_frame(struct clu_node *n, struct clu_link *l, const struct clu_msg *msg)
{
	struct clu_peer *m = l->m;
	struct clu_list list;
	struct clu_route r;
	switch (msg->type) {
	case CLU_MSG_ROUTE_ADD:
		list = msg->list;
		while (clu_next_route(&list, &r))
			remote_add(n, m, &r);
		clu_switch_frame_end(n);
		break;
	case CLU_MSG_ROUTE_DEL:
		list = msg->list;
		while (clu_next_route(&list, &r))
			remote_del_route(n, m, &r);
		break;
	case CLU_MSG_ROUTE_SYNC_BEGIN:
		m->sync_gen++;
		break;
	case CLU_MSG_ROUTE_SYNC_END: {
		/* what was not re-sent since BEGIN is gone */
		struct clu_remote_route *rr, *tmp;
		HASH_ITER(hh, m->routes, rr, tmp)
			if (rr->gen != m->sync_gen)
				remote_del(n, m, rr);
		log_debug("cluster: %u routes of %s", HASH_COUNT(m->routes), m->name);
		clu_start_peer_known(n, m, "routes known");
		break;
	}
	case CLU_MSG_FORWARD:
		on_forward(n, l, &msg->fwd);
		break;
	case CLU_MSG_FORWARD_ACK: {
		struct clu_ack_range ar;
		list = msg->list;
		while (clu_next_ack(&list, &ar))
			pend_ack(n, m, ar.first, ar.last);
		clu_switch_check(n);
		break;
	}
	case CLU_MSG_BARRIER: {
		if (n->imports_pending) {
			/* the hand-off is held (a session is being imported):
			 * answer once it is flushed, in order */
			if (n->n_owed_acks == n->cap_owed_acks) {
				n->cap_owed_acks = n->cap_owed_acks ? n->cap_owed_acks * 2 : 8;
				n->owed_acks = hq_realloc(n->owed_acks,
							  n->cap_owed_acks * sizeof(*n->owed_acks));
			}
			n->owed_acks[n->n_owed_acks++] = (struct clu_owed_ack){
				.m = m, .link_gen = m->link_gen, .id = msg->barrier_id };
			break;
		}
		/* everything before it is in our workers' hands once they get
		 * this turn's hand-off: flush it now, then answer */
		clu_wout_flush(n);
		struct clu_msg ack = { .type = CLU_MSG_BARRIER_ACK };
		ack.barrier_id = msg->barrier_id;
		clu_link_send(l, &ack);
		break;
	}
	case CLU_MSG_BARRIER_ACK:
		if (l->bh < l->bn && l->bars[l->bh] == msg->barrier_id) {
			l->bh++;
			barrier_ack(n, msg->barrier_id);
		}
		break;
	default:
		log_debug("cluster: %s from %s ignored", clu_type_name(msg->type), l->peer);
	}
}

void clu_route_owed_acks(struct clu_node *n)
{
	for (uint32_t i = 0; i < n->n_owed_acks; i++) {
		struct clu_owed_ack *oa = &n->owed_acks[i];
		if (!oa->m->link || oa->m->link_gen != oa->link_gen)
			continue; /* that link is gone; its barrier with it */
		struct clu_msg ack = { .type = CLU_MSG_BARRIER_ACK };
		ack.barrier_id = oa->id;
		clu_link_send(oa->m->link, &ack);
	}
	n->n_owed_acks = 0;
}

void clu_route_link_down(struct clu_node *n, struct clu_peer *m, struct clu_link *l)
{
	if (brk_clu_store_shared(n->b) && !n->stopping) {
		/* its sessions are in the shared store: what matches them is not
		 * acknowledged (the publisher sends again) until the node is
		 * back or its sessions are adopted (clu_route_tick) */
		m->routes_down_ms = clu_now(n);
	} else {
		struct clu_remote_route *rr, *tmp;
		HASH_ITER(hh, m->routes, rr, tmp)
			remote_del(n, m, rr);
	}
	/* forwards it will never acknowledge */
	uint64_t lost = 0;
	for (uint32_t i = m->ph; i < m->pn; i++) {
		if (!m->pend[i].done) {
			clu_gate_undelivered(n, m->pend[i].worker, m->pend[i].token);
			lost++;
		}
	}
	if (lost) {
		atomic_fetch_add_explicit(&n->st_fwd_lost, lost, memory_order_relaxed);
		log_warning("cluster: %llu forwarded message(s) to %s unacknowledged when its link "
			    "went down", (unsigned long long)lost, m->name);
	}
	m->ph = m->pn = 0;
	m->n_acks = 0;
	/* barriers stop waiting for this link */
	for (uint32_t i = l->bh; i < l->bn; i++)
		barrier_ack(n, l->bars[i]);
	l->bh = l->bn = 0;
	clu_switch_check(n); /* nor do forwards elsewhere for its acknowledgements */
}

void clu_route_free(struct clu_node *n)
{
	struct clu_lroute *lr, *tmp;
	HASH_ITER(hh, n->lroutes, lr, tmp) {
		HASH_DEL(n->lroutes, lr);
		hq_free(lr->key);
		hq_free(lr);
	}
	for (uint32_t i = 0; i < n->n_ops; i++)
		hq_free(n->ops[i].key);
	hq_free(n->ops);
	hq_free(n->owed_acks);
	while (n->barriers) {
		struct clu_barrier *b = n->barriers;
		n->barriers = b->next;
		hq_free(b);
	}
	for (size_t i = 0; i < n->n_m; i++) {
		struct clu_remote_route *rr, *t2;
		HASH_ITER(hh, n->m[i]->routes, rr, t2) {
			HASH_DEL(n->m[i]->routes, rr);
			hq_free(rr->key);
			hq_free(rr);
		}
	}
}

#define PROVISIONAL_MS 10000

void clu_route_provisional(struct clu_node *n, struct clu_peer *m, uint32_t link_gen,
			   char **keys, uint16_t n_keys)
{
	bool live = m->link && m->link_gen == link_gen;
	for (uint16_t i = 0; i < n_keys; i++) {
		struct clu_remote_route *rr;
		HASH_FIND_STR(m->routes, keys[i], rr);
		if (rr)
			continue; /* m had it already: the worker's add only refreshed it */
		if (!live) {
			/* the link went down meanwhile, its routes were withdrawn:
			 * withdraw this one too */
			post_route(n, m, keys[i], false);
			continue;
		}
		rr = hq_calloc(1, sizeof(*rr));
		rr->key = hq_strdup(keys[i]);
		rr->gen = m->sync_gen;
		rr->provisional_until = clu_now(n) + PROVISIONAL_MS;
		HASH_ADD_KEYPTR(hh, m->routes, rr->key, strlen(rr->key), rr);
		m->n_provisional++;
	}
}

/* Provisional routes the new owner never confirmed (it failed to take the
 * session, or had nothing to add) go after PROVISIONAL_MS. */
/* Of the nodes that are up, the one that adopts a dead node's sessions: the
 * first name in order, so every survivor picks the same one. */
static bool adopter_is_self(struct clu_node *n)
{
	const char *self = n->m[0]->name;
	for (size_t i = 1; i < n->n_m; i++) {
		struct clu_peer *m = n->m[i];
		if (m->link && !m->left && strcmp(m->name, self) < 0)
			return false;
	}
	return true;
}

static void withdraw(struct clu_node *n, struct clu_peer *m, const char *why)
{
	unsigned k = HASH_COUNT(m->routes);
	struct clu_remote_route *rr, *tmp;
	HASH_ITER(hh, m->routes, rr, tmp)
		remote_del(n, m, rr);
	m->routes_down_ms = 0;
	m->adopting = false;
	log_notice("cluster: %s: its %u routes withdrawn (%s)", m->name, k, why);
}

/* A node unreachable for the heartbeat timeout with a shared store: one
 * survivor (the first name up) resumes its sessions from the store, and
 * only once their routes are in every worker (CRQ_ADOPTED) are the dead
 * node's withdrawn there, so no publish falls between the two. The other
 * survivors withdraw them ADOPT_GRACE_MS later, by when the adopter's routes
 * have reached them (until then a matching publish is refused, not lost). */
#define ADOPT_GRACE_MS 3000
static void routes_down_tick(struct clu_node *n, struct clu_peer *m, int64_t now)
{
	if (m->link) {
		m->routes_down_ms = 0; /* back: its route sync replaced them */
		m->adopting = false;
		return;
	}
	int64_t down = now - m->routes_down_ms;
	int64_t limit = (int64_t)n->cfg->cluster_heartbeat_timeout * 1000;
	if (m->adopting || down < limit)
		return;
	if (adopter_is_self(n)) {
		m->adopting = true;
		log_notice("cluster: %s unreachable for %d s: this node resumes its sessions from "
			   "the store", m->name, n->cfg->cluster_heartbeat_timeout);
		brk_post_adopt(n->wout, m->name);
		return;
	}
	if (down >= limit + ADOPT_GRACE_MS)
		withdraw(n, m, "unreachable; another node resumed its sessions");
}

void clu_route_adopted(struct clu_node *n, const char *name)
{
	struct clu_peer *m = clu_member_find(n, name, strlen(name));
	if (!m || m->link || !m->adopting)
		return; /* back meanwhile: its route sync replaced its routes */
	withdraw(n, m, "its sessions resumed here");
}

void clu_route_tick(struct clu_node *n, int64_t now)
{
	for (size_t i = 1; i < n->n_m; i++) {
		struct clu_peer *m = n->m[i];
		if (m->routes_down_ms)
			routes_down_tick(n, m, now);
		if (!m->n_provisional)
			continue;
		struct clu_remote_route *rr, *tmp;
		HASH_ITER(hh, m->routes, rr, tmp)
			if (rr->provisional_until && now > rr->provisional_until)
				remote_del(n, m, rr);
	}
}
