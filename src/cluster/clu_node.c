/*
 * clu_node.c - the cluster thread: its event loop, the listener on
 * host:cluster.port, the requests of workers, and the member list (gossip,
 * link events, leaving, persistence in node.data_dir). The operator's
 * requests are clu_admin.c; static and DNS discovery clu_discover.c.
 *
 * Membership rules (DESIGN.md "Cluster"; the protocol is clu_proto.h):
 *  - Every member is dialed while it is not linked (every second), so a
 *    restarted node, a healed partition or a two-node split reconnects with
 *    no manual step and no majority: membership is AP.
 *  - A member's incarnation is its start (or join, or leave) time: a higher
 *    one wins when lists merge; at equal incarnation a tombstone wins.
 *  - A node that left or was force-left is a tombstone: its plain reconnects
 *    are refused (REMOVED) and, told so, it drops that peer. Only an explicit
 *    join (HELLO with JOIN: `cluster join`, static or DNS seeds) brings it
 *    back.
 *  - Crossing dials between two nodes keep the one from the smaller name.
 */
#include "cluster/clu_int.h"
#include "core/clock.h"
#include "core/conf.h"
#include "core/err.h"
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

#define MEMBERS_FILE "cluster.members"

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

/* ---- members ---- */

struct clu_peer *clu_member_find(struct clu_node *n, const char *name, size_t len)
{
	for (size_t i = 0; i < n->n_m; i++)
		if (!n->m[i]->forgotten && strlen(n->m[i]->name) == len &&
		    !memcmp(n->m[i]->name, name, len))
			return n->m[i];
	return NULL;
}

/*
 * Forget member i as if never known (a join starts from the list of the
 * cluster joined). An entry workers may still name (its node session) stays
 * allocated but invisible; any other is freed.
 */
void clu_member_forget(struct clu_node *n, size_t i)
{
	struct clu_peer *m = n->m[i];
	if (m->dial)
		clu_link_close(m->dial, NULL);
	if (m->link)
		clu_link_close(m->link, "forgotten");
	if (m->node_sess) {
		m->left = true;
		m->forgotten = true;
		return;
	}
	memmove(&n->m[i], &n->m[i + 1], (n->n_m - i - 1) * sizeof(*n->m));
	n->n_m--;
	hq_free(m->pend);
	hq_free(m->acks);
	hq_free(m);
}

static void default_addr(const struct clu_node *n, const char *name, char *out, size_t outlen)
{
	const char *at = strchr(name, '@');
	const char *host = at ? at + 1 : name;
	if (strchr(host, ':'))
		clu_fmt(out, outlen, "[%s]:%d", host, n->cfg->cluster_port);
	else
		clu_fmt(out, outlen, "%s:%d", host, n->cfg->cluster_port);
}

struct clu_peer *clu_member_add(struct clu_node *n, const char *name, size_t len,
				const char *addr, uint64_t inc)
{
	struct clu_peer *m = hq_calloc(1, sizeof(*m));
	clu_fmt(m->name, sizeof(m->name), "%.*s", (int)len, name);
	if (addr && *addr)
		clu_fmt(m->addr, sizeof(m->addr), "%s", addr);
	else
		default_addr(n, m->name, m->addr, sizeof(m->addr));
	m->incarnation = inc;
	if (n->n_m == n->cap_m) {
		n->cap_m = n->cap_m ? n->cap_m * 2 : 8;
		n->m = hq_realloc(n->m, n->cap_m * sizeof(*n->m));
	}
	n->m[n->n_m++] = m;
	return m;
}

static void count_running(struct clu_node *n)
{
	int r = 0;
	for (size_t i = 0; i < n->n_m; i++)
		if (!n->m[i]->left && (n->m[i]->self || n->m[i]->link))
			r++;
	atomic_store_explicit(&n->n_running, r, memory_order_relaxed);
}

void clu_member_remove(struct clu_node *n, struct clu_peer *m, const char *why)
{
	if (m->self)
		return;
	bool was = !m->left;
	m->left = true;
	m->seed = false;
	if (m->dial)
		clu_link_close(m->dial, why);
	if (m->link)
		clu_link_close(m->link, why);
	if (was)
		log_notice("cluster: %s is no longer a member: %s", m->name, why);
	count_running(n);
}

static void send_members(struct clu_node *n, struct clu_link *l)
{
	struct clu_batch b;
	if (clu_batch_begin(&b, &l->out, CLU_MSG_MEMBERS) != HQ_OK)
		return;
	for (size_t i = 0; i < n->n_m; i++) {
		struct clu_peer *x = n->m[i];
		if (x->forgotten)
			continue;
		struct clu_member e = {
			.node = clu_str(x->name),
			.addr = clu_str(x->addr),
			.state = x->left ? CLU_MEMBER_LEFT
				 : (x->self || x->link) ? CLU_MEMBER_RUNNING : CLU_MEMBER_STOPPED,
			.incarnation = x->incarnation,
		};
		if (clu_batch_member(&b, &e) != HQ_OK)
			log_warning("cluster: member %s not sent to %s", x->name, l->peer);
	}
	clu_batch_end(&b);
}

void clu_members_broadcast(struct clu_node *n, struct clu_link *except)
{
	for (struct clu_link *l = n->links; l; l = l->next)
		if (l->st == LS_UP && l != except)
			send_members(n, l);
}

/* ---- persistence: <data_dir>/cluster.members ---- */

void clu_members_save(struct clu_node *n)
{
	char tmp[sizeof(n->data_path) + 8];
	clu_fmt(tmp, sizeof(tmp), "%s.tmp", n->data_path);
	FILE *f = fopen(tmp, "w");
	if (!f) {
		log_warning("cluster: cannot write %s: %s", tmp, strerror(errno));
		return;
	}
	fprintf(f, "# hamqtt cluster members, rewritten by hamqttd (a restarted node rejoins them)\n");
	fprintf(f, "cluster %s\n", n->cfg->cluster_name);
	for (size_t i = 1; i < n->n_m; i++) {
		struct clu_peer *x = n->m[i];
		if (x->forgotten)
			continue;
		fprintf(f, "member %s %s %llu %s\n", x->name, x->addr,
			(unsigned long long)x->incarnation, x->left ? "left" : "member");
	}
	bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
	ok = fclose(f) == 0 && ok;
	if (!ok || rename(tmp, n->data_path) != 0)
		log_warning("cluster: cannot write %s: %s", n->data_path, strerror(errno));
}

static void members_load(struct clu_node *n)
{
	FILE *f = fopen(n->data_path, "r");
	if (!f)
		return;
	char line[1024];
	int lineno = 0;
	bool ours = false;
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		char a[16], name[CLU_NAME_MAX + 1], addr[CLU_NAME_MAX + 1], st[16];
		unsigned long long inc;
		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (sscanf(line, "cluster %255s", name) == 1) {
			ours = !strcmp(name, n->cfg->cluster_name);
			if (!ours)
				log_warning("cluster: %s is for cluster '%s', not '%s': ignored",
					    n->data_path, name, n->cfg->cluster_name);
			continue;
		}
		if (sscanf(line, "%15s %255s %255s %llu %15s", a, name, addr, &inc, st) != 5 ||
		    strcmp(a, "member") || !clu_name_valid(name, strlen(name)) ||
		    !clu_addr_valid(addr, strlen(addr))) {
			log_warning("cluster: %s:%d: unreadable line ignored", n->data_path, lineno);
			continue;
		}
		if (!ours || clu_member_find(n, name, strlen(name)))
			continue;
		struct clu_peer *m = clu_member_add(n, name, strlen(name), addr, inc);
		m->left = !strcmp(st, "left");
	}
	fclose(f);
	size_t live = 0;
	for (size_t i = 1; i < n->n_m; i++)
		live += !n->m[i]->left;
	if (live)
		log_notice("cluster: %zu member(s) from %s: rejoining", live, n->data_path);
}

/* ---- worker hand-off ---- */

void clu_wout_push(struct clu_node *n, int worker, const struct wq_entry *e)
{
	struct wq_vec *q = &n->wout[worker];
	if (q->len == q->cap) {
		q->cap = q->cap ? q->cap * 2 : 64;
		q->v = hq_realloc(q->v, q->cap * sizeof(*q->v));
	}
	q->v[q->len++] = *e;
}

void clu_wout_flush(struct clu_node *n)
{
	for (int i = 0; i < n->b->n_workers; i++) {
		struct wq_vec *q = &n->wout[i];
		if (q->len) {
			wk_inbox_append(&n->b->workers[i], q->v, q->len);
			q->len = 0;
		}
	}
}

void clu_gate_release(struct clu_node *n, uint16_t worker, uint64_t token)
{
	if (!token || worker >= n->b->n_workers)
		return;
	struct wq_entry e = { .kind = WQ_GATE_RELEASE };
	e.u.token = token;
	clu_wout_push(n, worker, &e);
}

/* ---- link events ---- */

int clu_on_hello(struct clu_node *n, struct clu_link *l, const struct clu_hello *h,
		 uint8_t *refuse, char *why, size_t whylen)
{
	struct clu_peer *self = n->m[0];
	if (n->stopping) {
		*refuse = CLU_REFUSE_BUSY;
		clu_fmt(why, whylen, "shutting down");
		return HQ_EPROTOCOL;
	}
	if (h->node.len == strlen(self->name) && !memcmp(h->node.p, self->name, h->node.len)) {
		*refuse = CLU_REFUSE_NAME;
		clu_fmt(why, whylen, "%s is this node's own name", self->name);
		return HQ_EPROTOCOL;
	}
	struct clu_peer *m = clu_member_find(n, h->node.p, h->node.len);
	if (m && m->left && !h->join) {
		*refuse = CLU_REFUSE_REMOVED;
		clu_fmt(why, whylen, "%s is not a member of this cluster any more (left or force-left)",
			 m->name);
		return HQ_EPROTOCOL;
	}
	if (m && m->link) {
		if (h->incarnation > m->link->peer_inc) {
			/* it restarted before we noticed its old link died */
			clu_link_close(m->link, "the peer restarted");
		} else {
			*refuse = CLU_REFUSE_BUSY;
			clu_fmt(why, whylen, "already linked");
			return HQ_EPROTOCOL;
		}
	}
	if (m && m->dial) {
		if (strcmp(self->name, m->name) < 0) {
			*refuse = CLU_REFUSE_BUSY;
			clu_fmt(why, whylen, "crossing links: keeping the one from %s", self->name);
			return HQ_EPROTOCOL;
		}
		/* theirs wins: ours goes quietly (a join in progress completes
		 * when this link comes up) */
		struct clu_link *d = m->dial;
		m->dial = NULL;
		d->m = NULL;
		clu_link_close(d, NULL);
	}
	return HQ_OK;
}

void clu_on_link_up(struct clu_node *n, struct clu_link *l)
{
	struct clu_peer *m = clu_member_find(n, l->peer, strlen(l->peer));
	bool changed = false;
	if (!m) {
		m = clu_member_add(n, l->peer, strlen(l->peer), l->peer_addr, l->peer_inc);
		changed = true;
	}
	if (m->left) {
		/* only a JOIN gets this far for a tombstone (clu_on_hello) */
		m->left = false;
		changed = true;
	}
	if (strcmp(m->addr, l->peer_addr)) {
		clu_fmt(m->addr, sizeof(m->addr), "%s", l->peer_addr);
		changed = true;
	}
	if (m->incarnation != l->peer_inc) {
		m->incarnation = l->peer_inc;
		changed = true;
	}
	if (m->dial == l)
		m->dial = NULL;
	if (m->link && m->link != l)
		clu_link_close(m->link, "replaced by a new link");
	m->link = l;
	l->m = m;
	m->link_gen++;
	m->next_seq = 0;
	if (!m->node_sess)
		m->node_sess = sess_new_remote(n->b, m->name, m);
	atomic_fetch_add(&n->peers_up, 1);
	count_running(n);
	log_notice("cluster: linked with %s (%s, %s)", m->name, l->addr,
		   l->initiator ? "outgoing" : "incoming");
	/* what the peer must know: members, then our routes */
	send_members(n, l);
	clu_route_sync(n, l);
	clu_retain_sync(n, l);
	clu_takeover_send_clients(n, l);
	if (changed) {
		clu_members_broadcast(n, l);
		clu_members_save(n);
	}
	clu_link_write(l);
	clu_join_done(n, m, HQ_OK, NULL);
}

void clu_on_link_down(struct clu_node *n, struct clu_link *l, const char *why)
{
	struct clu_peer *m = l->m;
	if (!m || m->link != l)
		return;
	m->link = NULL;
	atomic_fetch_sub(&n->peers_up, 1);
	clu_route_link_down(n, m, l);
	clu_takeover_link_down(n, m);
	m->next_dial_ms = clu_now(n) + (n->stopping ? 0 : 200);
	count_running(n);
	if (!n->stopping)
		log_notice("cluster: link with %s lost: %s", m->name, why);
}

void clu_on_dial_failed(struct clu_node *n, struct clu_peer *m, uint8_t refuse_reason)
{
	m->next_dial_ms = clu_now(n) + CLU_DIAL_BACKOFF_MS;
	if (refuse_reason == CLU_REFUSE_REMOVED && !m->self) {
		/* it does not count us as a member any more: neither do we */
		clu_member_remove(n, m, "it removed this node from its cluster");
		clu_members_save(n);
	}
	if (refuse_reason == CLU_REFUSE_BUSY && n->join_wait &&
	    !strcmp(n->join_wait->node, m->name)) {
		m->next_dial_ms = clu_now(n) + 100; /* a crossing: retry soon, within the deadline */
		return;
	}
	clu_join_done(n, m, HQ_EIO, m->last_error[0] ? m->last_error : "link failed");
}

void clu_on_members(struct clu_node *n, struct clu_link *l, struct clu_list list)
{
	struct clu_member e;
	bool changed = false;
	while (clu_next_member(&list, &e)) {
		if (e.node.len == strlen(n->m[0]->name) && !memcmp(e.node.p, n->m[0]->name, e.node.len))
			continue; /* we know ourselves best */
		struct clu_peer *m = clu_member_find(n, e.node.p, e.node.len);
		bool left = e.state == CLU_MEMBER_LEFT;
		if (!m) {
			char addr[CLU_NAME_MAX + 1];
			clu_fmt(addr, sizeof(addr), "%.*s", (int)e.addr.len, e.addr.p);
			m = clu_member_add(n, e.node.p, e.node.len, addr, e.incarnation);
			m->left = left;
			m->next_dial_ms = clu_now(n);
			if (!left)
				log_notice("cluster: learned of member %s from %s", m->name, l->peer);
			changed = true;
			continue;
		}
		if (e.incarnation > m->incarnation) {
			m->incarnation = e.incarnation;
			clu_fmt(m->addr, sizeof(m->addr), "%.*s", (int)e.addr.len, e.addr.p);
			if (left && !m->left) {
				clu_member_remove(n, m, "left the cluster");
			} else if (!left && m->left) {
				m->left = false; /* joined again */
				m->next_dial_ms = clu_now(n);
			}
			changed = true;
		} else if (e.incarnation == m->incarnation && left && !m->left) {
			clu_member_remove(n, m, "left the cluster");
			changed = true;
		}
	}
	if (changed) {
		clu_members_broadcast(n, l);
		clu_members_save(n);
	}
}

void clu_on_leave(struct clu_node *n, struct clu_link *l, const struct clu_leave *lv)
{
	struct clu_peer *m = clu_member_find(n, lv->node.p, lv->node.len);
	if (!m || m->self) {
		if (m && m->self && lv->force)
			log_warning("cluster: %s says this node was force-left", l->peer);
		return;
	}
	if (m->left && m->incarnation >= lv->incarnation)
		return;
	if (lv->incarnation > m->incarnation)
		m->incarnation = lv->incarnation;
	clu_member_remove(n, m, lv->force ? "force-left" : "left the cluster");
	clu_members_broadcast(n, NULL);
	clu_members_save(n);
}

/* ---- leaving (clu_admin.c uses these) ---- */

uint64_t clu_new_incarnation(uint64_t old)
{
	uint64_t now = (uint64_t)clock_wall_ms();
	return now > old ? now : old + 1;
}

/* Leave gracefully: tell everyone, forget everyone. */
void clu_leave_cluster(struct clu_node *n)
{
	struct clu_peer *self = n->m[0];
	struct clu_msg lv = { .type = CLU_MSG_LEAVE };
	lv.leave.node = clu_str(self->name);
	lv.leave.incarnation = self->incarnation;
	for (struct clu_link *l = n->links; l; l = l->next) {
		if (l->st == LS_UP) {
			clu_link_send(l, &lv);
			clu_link_write(l);
		}
	}
	for (size_t i = 1; i < n->n_m; i++)
		clu_member_remove(n, n->m[i], "this node left the cluster");
	self->incarnation = clu_new_incarnation(self->incarnation);
	clu_members_save(n);
}

bool clu_has_members(const struct clu_node *n)
{
	for (size_t i = 1; i < n->n_m; i++)
		if (!n->m[i]->left)
			return true;
	return false;
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
		msg_unref(r->msg);
	for (uint16_t i = 0; i < r->n_groups; i++)
		hq_free(r->groups[i]);
	hq_free(r->groups);
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
	clu_retain_tick(n, now);
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
static int make_dir(const char *path)
{
	char tmp[4096];
	size_t n = strlen(path);
	if (n == 0 || n >= sizeof(tmp))
		return HQ_EINVAL;
	memcpy(tmp, path, n + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
			return HQ_EIO;
		*p = '/';
	}
	if (mkdir(tmp, 0755) == 0 || errno == EEXIST)
		return HQ_OK;
	return HQ_EIO;
}

struct clu_node *clu_node_new(struct broker *b, char *err, size_t errlen)
{
	struct hq_config *cfg = b->cfg;
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
	n->loop = ev_loop_new();
	if (!n->loop) {
		clu_fmt(err, errlen, "cluster: cannot create event loop: %s", strerror(errno));
		goto fail;
	}
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
	n->wout = hq_calloc((size_t)b->n_workers, sizeof(*n->wout));
	if (make_dir(cfg->node_data_dir) != HQ_OK)
		log_warning("cluster: cannot create node.data_dir %s: %s (the member list will not "
			    "be kept)", cfg->node_data_dir, strerror(errno));
	clu_fmt(n->data_path, sizeof(n->data_path), "%s/%s", cfg->node_data_dir, MEMBERS_FILE);
	members_load(n);
	count_running(n);
	ev_set_before_sleep(n->loop, before_sleep, n);
	ev_set_after_wait(n->loop, after_wait, n);
	ev_set_wakeup(n->loop, on_wakeup, n);
	ev_timer_every(n->loop, 100, tick, n);
	log_notice("cluster: %s listening for links on %s (cluster %s)", self->name, self->addr,
		   cfg->cluster_name);
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
}

void clu_node_free(struct clu_node *n)
{
	if (!n)
		return;
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
	if (n->wout) {
		for (int i = 0; i < n->b->n_workers; i++) {
			struct wq_vec *q = &n->wout[i];
			for (uint32_t k = 0; k < q->len; k++) {
				struct wq_entry *e = &q->v[k];
				if (e->kind == WQ_FWD_IN)
					fwd_in_release(&e->u.fwd);
				else if (e->kind == WQ_TAKEOVER_DONE || e->kind == WQ_TAKEOVER_OUT) {
					hq_free(e->u.takeover.blob);
					hq_free(e->u.takeover.client_id);
					if (e->u.takeover.node_sess)
						sess_unref(e->u.takeover.node_sess);
				}
				else if (e->kind == WQ_ROUTE_ADD || e->kind == WQ_ROUTE_DEL)
					hq_free(e->u.filter);
				if (e->sess)
					sess_unref(e->sess);
			}
			hq_free(q->v);
		}
		hq_free(n->wout);
	}
	for (size_t i = 0; i < n->n_m; i++) {
		struct clu_peer *m = n->m[i];
		if (m->node_sess)
			sess_unref(m->node_sess);
		hq_free(m->pend);
		hq_free(m->acks);
		hq_free(m);
	}
	hq_free(n->m);
	if (n->lfd >= 0)
		close(n->lfd);
	accept_guard_free(&n->accept);
	if (n->loop)
		ev_loop_free(n->loop);
	inbox_destroy(&n->inbox);
	pthread_mutex_destroy(&n->admin_lock);
	pthread_mutex_destroy(&n->dns_lock);
	hq_free(n);
}
