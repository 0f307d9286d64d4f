/*
 * clu_node.c - the cluster thread: its event loop, the listener on
 * host:cluster.port, the requests of workers (core/inbox.h) and the hand-off
 * to the workers (brk_post, broker/brk_clu.h), the periodic tick, start and
 * stop. The member list is clu_member.c; the operator's requests
 * clu_admin.c; static and DNS discovery clu_discover.c.
 */
#include "cluster/clu_int.h"
#include "core/clock.h"
#include "core/conf.h"
#include "core/err.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/mem.h"
#include "net/sock.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void clu_fmt(char *dst, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(dst, n, fmt, ap);
	va_end(ap);
}

int64_t clu_now(const struct clu_node *n)
{
	return ev_now_ms(n->loop);
}

/* ---- worker hand-off ---- */

/* Held while a session handed over is being rebuilt on its worker
 * (clu_takeover.c): nothing may reach another worker before its routes. */
void clu_wout_flush(struct clu_node *n)
{
	if (n->imports_pending)
		return;
	brk_post_flush(n->wout);
}

void clu_gate_release(struct clu_node *n, uint16_t worker, uint64_t token)
{
	brk_post_gate_release(n->wout, worker, token);
}

void clu_gate_undelivered(struct clu_node *n, uint16_t worker, uint64_t token)
{
	if (brk_clu_store_shared(n->b))
		brk_post_gate_fail(n->wout, worker, token);
	else
		brk_post_gate_release(n->wout, worker, token);
}

/* ---- worker requests ---- */

void clu_req_push(struct clu_req_vec *v, const struct clu_req *r)
{
	if (v->len == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 64;
		v->v = hq_realloc(v->v, v->cap * sizeof(*v->v));
	}
	v->v[v->len++] = *r;
}

void clu_req_release(struct clu_req *r)
{
	hq_free(r->key);
	hq_free(r->blob);
	if (r->msg)
		brk_clu_msg_unref(r->msg);
	if (r->sess)
		brk_clu_session_unref(r->sess);
	for (uint16_t i = 0; i < r->n_groups; i++)
		hq_free(r->groups[i]);
	hq_free(r->groups);
	for (uint32_t i = 0; i < r->n_skip; i++)
		hq_free(r->skip[i]);
	hq_free(r->skip);
	if (r->job)
		broker_rpc_job_free(r->job);
	memset(r, 0, sizeof(*r));
}

void clu_submit(struct clu_node *n, struct clu_req_vec *v)
{
	bool wake = inbox_append(&n->inbox, v->v, v->len);
	v->len = 0;
	if (wake)
		ev_wakeup(n->loop);
}

int clu_peers_up(const struct clu_node *n)
{
	return atomic_load_explicit(&n->peers_up, memory_order_relaxed);
}

void clu_get_stats(const struct clu_node *n, struct clu_stats *out)
{
	out->forwards_out = atomic_load_explicit(&n->st_fwd_out, memory_order_relaxed);
	out->forwards_in = atomic_load_explicit(&n->st_fwd_in, memory_order_relaxed);
	out->forwards_lost = atomic_load_explicit(&n->st_fwd_lost, memory_order_relaxed);
	out->running = atomic_load_explicit(&n->n_running, memory_order_relaxed);
	out->members = 0;
	out->subscriptions = atomic_load_explicit(&n->st_subs, memory_order_relaxed);
	out->topics = atomic_load_explicit(&n->st_topics, memory_order_relaxed);
	memset(&out->accept, 0, sizeof(out->accept));
	accept_guard_counts_add(&n->accept, &out->accept);
}

/* One request of a worker, to the module that owns its state. */
static void req_run(struct clu_node *n, struct clu_req *r)
{
	switch (r->kind) {
	case CRQ_ROUTE_ADD:
	case CRQ_ROUTE_DEL:
		clu_route_local(n, r->key, r->kind == CRQ_ROUTE_ADD);
		r->key = NULL;
		break;
	case CRQ_BARRIER:
		clu_route_barrier(n, r);
		break;
	case CRQ_FORWARD:
		if (!clu_fence_hold(n, r) && !clu_switch_hold(n, r))
			clu_route_forward(n, r);
		break;
	case CRQ_FWD_DONE:
		clu_route_fwd_done(n, r);
		break;
	case CRQ_RETAIN:
		clu_retain_req(n, r);
		break;
	case CRQ_TAKEOVER:
		clu_takeover_req(n, r);
		break;
	case CRQ_TAKEOVER_RESP:
		clu_takeover_resp_req(n, r);
		break;
	case CRQ_TAKEOVER_IMPORTED:
		clu_takeover_imported(n, r);
		break;
	case CRQ_ADOPTED:
		clu_route_adopted(n, r->key);
		break;
	case CRQ_FENCE_START:
		clu_fence_start(n, r->worker, r->token);
		break;
	case CRQ_FENCE_MARK:
		clu_fence_mark(n, r->worker, r->token);
		break;
	case CRQ_REPL:
		clu_repl_req(n, r);
		break;
	case CRQ_SWITCH_MARK:
		clu_switch_mark(n, r->worker, r->token);
		break;
	case CRQ_RPC_ANSWER:
		clu_rpc_answer_req(n, r);
		break;
	}
	clu_req_release(r);
}

static void on_wakeup(struct ev_loop *loop, void *arg)
{
	struct clu_node *n = arg;
	(void)loop;
	struct inbox_vec batch = inbox_take(&n->inbox);
	pthread_mutex_lock(&n->admin_lock);
	struct clu_admin *admin = n->admin_q;
	n->admin_q = NULL;
	pthread_mutex_unlock(&n->admin_lock);
	struct clu_req *v = batch.v;
	for (uint32_t i = 0; i < batch.len; i++)
		req_run(n, &v[i]);
	inbox_give_back(&n->inbox, batch);
	/* oldest first: the list was built by prepending */
	struct clu_admin *rev = NULL;
	while (admin) {
		struct clu_admin *next = admin->next;
		admin->next = rev;
		rev = admin;
		admin = next;
	}
	while (rev) {
		struct clu_admin *next = rev->next;
		clu_admin_run(n, rev);
		rev = next;
	}
	clu_rpc_run_queued(n);
}

static void after_wait(struct ev_loop *loop, void *arg)
{
	struct clu_node *n = arg;
	if (inbox_wake_pending(&n->inbox))
		on_wakeup(loop, n);
}

static void before_sleep(struct ev_loop *loop, void *arg)
{
	struct clu_node *n = arg;
	(void)loop;
	clu_route_flush_ops(n);
	clu_route_flush_acks(n);
	/* workers first: a BARRIER_ACK written below must not overtake the
	 * routes it vouches for */
	clu_wout_flush(n);
	for (struct clu_link *l = n->links; l; l = l->next)
		if (buf_avail(&l->out))
			clu_link_write(l);
	while (n->closed) {
		struct clu_link *l = n->closed;
		n->closed = l->free_next;
		clu_link_free(l);
	}
}

static void tick(struct ev_loop *loop, void *arg)
{
	struct clu_node *n = arg;
	int64_t now = ev_now_ms(loop);
	clu_link_tick(n, now);
	clu_takeover_tick(n, now);
	clu_route_tick(n, now);
	clu_start_tick(n, now);
	clu_switch_check(n);
	clu_retain_tick(n, now);
	clu_repl_tick(n, now);
	clu_rpc_tick(n, now);
	clu_discover_tick(n, now);
	for (size_t i = 1; i < n->n_m; i++) {
		struct clu_peer *m = n->m[i];
		if (m->left || m->link || m->dial || now < m->next_dial_ms)
			continue;
		m->next_dial_ms = now + CLU_DIAL_BACKOFF_MS;
		bool join = m->seed || (n->join_wait && !strcmp(n->join_wait->node, m->name));
		clu_link_dial(n, m, join);
	}
	clu_admin_tick(n, now);
	clu_stats_publish(n, now);
	if (accept_guard_tick(&n->accept, now))
		ev_io_set(loop, &n->lio, EV_READ);
}

static void accept_cb(struct ev_loop *loop, struct ev_io *io, unsigned events)
{
	struct clu_node *n = io->arg;
	(void)events;
	for (int i = 0; i < 16; i++) {
		char addr[64];
		int fd = sock_accept(io->fd, addr, sizeof(addr));
		if (fd < 0) {
			enum accept_verdict v = accept_guard_failed(&n->accept, io->fd, errno,
								    ev_now_ms(loop));
			if (v == ACCEPT_NEXT)
				continue;
			if (v == ACCEPT_PAUSE)
				ev_io_set(loop, &n->lio, 0); /* the tick resumes it */
			return;
		}
		clu_link_accept(n, fd, addr);
	}
}

/* ---- lifecycle ---- */

/* mkdir -p: node.data_dir may be a fresh nested path (/var/lib/hamqtt). */
struct clu_node *clu_node_new(struct broker *b, char *err, size_t errlen)
{
	struct hq_config *cfg = brk_clu_config(b);
	err[0] = 0;
	if (cfg->cluster_port == 0)
		return NULL; /* clustering off: a standalone node */
	struct clu_node *n = hq_calloc(1, sizeof(*n));
	n->b = b;
	n->cfg = cfg;
	n->lfd = -1;
	accept_guard_init(&n->accept, "cluster");
	inbox_init(&n->inbox, sizeof(struct clu_req));
	pthread_mutex_init(&n->admin_lock, NULL);
	pthread_mutex_init(&n->dns_lock, NULL);
	clu_stats_init(n);
	n->loop = ev_loop_new();
	if (!n->loop) {
		clu_fmt(err, errlen, "cluster: cannot create event loop: %s", strerror(errno));
		goto fail;
	}
	if (clu_tls_init(n, err, errlen) != HQ_OK)
		goto fail;
	struct clu_peer *self = clu_member_add(n, cfg->node_name, strlen(cfg->node_name), NULL,
					       (uint64_t)clock_wall_ms());
	self->self = true;
	char host[CLU_NAME_MAX + 1];
	int port;
	if (conf_parse_hostport(self->addr, host, sizeof(host), &port) != HQ_OK) {
		clu_fmt(err, errlen, "node.name: cannot derive the cluster address from '%s'",
			 cfg->node_name);
		goto fail;
	}
	n->lfd = sock_listen_tcp(host, port, 128, 0);
	if (n->lfd < 0) {
		clu_fmt(err, errlen, "cluster.port: cannot listen on %s (host of node.name): %s",
			 self->addr, strerror(errno));
		goto fail;
	}
	ev_io_init(&n->lio, n->lfd, accept_cb, n);
	ev_io_set(n->loop, &n->lio, EV_READ);
	n->wout = brk_post_new(b);
	if (fs_mkdir_p(cfg->node_data_dir) != HQ_OK)
		log_warning("cluster: cannot create node.data_dir %s: %s (the member list will not "
			    "be kept)", cfg->node_data_dir, strerror(errno));
	clu_fmt(n->data_path, sizeof(n->data_path), "%s/%s", cfg->node_data_dir, CLU_MEMBERS_FILE);
	clu_members_load(n);
	clu_count_running(n);
	clu_start_init(n);
	ev_set_before_sleep(n->loop, before_sleep, n);
	ev_set_after_wait(n->loop, after_wait, n);
	ev_set_wakeup(n->loop, on_wakeup, n);
	ev_timer_every(n->loop, 100, tick, n);
	clu_repl_init(n);
	log_notice("cluster: %s listening for links on %s (cluster %s%s)", self->name, self->addr,
		   cfg->cluster_name, n->tls_srv ? ", TLS" : "");
	return n;
fail:
	clu_node_free(n);
	return NULL;
}

static void *clu_main(void *arg)
{
	struct clu_node *n = arg;
	pthread_setname_np(pthread_self(), "hamqtt-cluster");
	if (ev_run(n->loop) != HQ_OK)
		log_error("cluster: event loop failed: %s", strerror(errno));
	/* closing: peers see the links close, which marks us stopped at once */
	n->stopping = true;
	while (n->links)
		clu_link_close(n->links, "shutting down");
	before_sleep(n->loop, n);
	return NULL;
}

int clu_node_start(struct clu_node *n)
{
	if (pthread_create(&n->thread, NULL, clu_main, n) != 0)
		return HQ_EIO;
	pthread_mutex_lock(&n->admin_lock);
	n->started = true;
	pthread_mutex_unlock(&n->admin_lock);
	return HQ_OK;
}

void clu_node_stop(struct clu_node *n)
{
	pthread_mutex_lock(&n->admin_lock);
	bool started = n->started;
	n->started = false;
	struct clu_admin *admin = n->admin_q;
	n->admin_q = NULL;
	pthread_mutex_unlock(&n->admin_lock);
	if (!started)
		return;
	ev_stop(n->loop);
	pthread_join(n->thread, NULL);
	clu_discover_stop(n);
	/* callers still waiting get an answer */
	while (admin) {
		struct clu_admin *next = admin->next;
		clu_admin_done(admin, HQ_EPROTOCOL, "the node is shutting down");
		admin = next;
	}
	if (n->join_wait) {
		clu_admin_done(n->join_wait, HQ_EPROTOCOL, "the node is shutting down");
		n->join_wait = NULL;
	}
	clu_rpc_stop(n);
}

void clu_node_free(struct clu_node *n)
{
	if (!n)
		return;
	clu_repl_free(n);  /* no more local writes to this node (HTTP and workers stopped) */
	while (n->links)
		clu_link_close(n->links, NULL);
	while (n->closed) {
		struct clu_link *l = n->closed;
		n->closed = l->free_next;
		clu_link_free(l);
	}
	struct inbox_vec left = inbox_take(&n->inbox);
	for (uint32_t i = 0; i < left.len; i++)
		clu_req_release((struct clu_req *)left.v + i);
	inbox_give_back(&n->inbox, left);
	clu_route_free(n);
	clu_retain_free(n);
	clu_takeover_free(n);
	clu_fence_free(n);
	clu_switch_free(n);
	brk_post_free(n->wout); /* what never reached a worker */
	for (size_t i = 0; i < n->n_m; i++) {
		struct clu_peer *m = n->m[i];
		if (m->node_sess)
			brk_clu_session_unref(m->node_sess);
		hq_free(m->pend);
		hq_free(m->acks);
		hq_free(m);
	}
	hq_free(n->m);
	if (n->lfd >= 0)
		close(n->lfd);
	accept_guard_free(&n->accept);
	clu_tls_free(n); /* after the links: their SSLs hold their own references */
	if (n->loop)
		ev_loop_free(n->loop);
	inbox_destroy(&n->inbox);
	pthread_mutex_destroy(&n->admin_lock);
	pthread_mutex_destroy(&n->dns_lock);
	clu_stats_free(n);
	hq_free(n);
}
