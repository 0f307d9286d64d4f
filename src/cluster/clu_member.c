/*
 * clu_member.c - the member list (cluster thread): gossip of the list, link
 * events that change it, leaving, and its persistence in
 * node.data_dir/cluster.members.
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
#include "core/fs.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/mem.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

void clu_count_running(struct clu_node *n)
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
	clu_count_running(n);
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
	struct buf b = { 0 };
	char line[1024];
	int k = snprintf(line, sizeof(line), "# hamqtt cluster members, rewritten by hamqttd "
			 "(a restarted node rejoins them)\ncluster %s\n", n->cfg->cluster_name);
	buf_append(&b, line, (size_t)k < sizeof(line) ? (size_t)k : sizeof(line) - 1);
	for (size_t i = 1; i < n->n_m; i++) {
		struct clu_peer *x = n->m[i];
		if (x->forgotten)
			continue;
		k = snprintf(line, sizeof(line), "member %s %s %llu %s\n", x->name, x->addr,
			     (unsigned long long)x->incarnation, x->left ? "left" : "member");
		buf_append(&b, line, (size_t)k < sizeof(line) ? (size_t)k : sizeof(line) - 1);
	}
	/* the cluster thread is the one writer of this file */
	if (fs_write_atomic(n->data_path, b.data, b.len, 0644) != HQ_OK)
		log_warning("cluster: cannot write %s: %s", n->data_path, strerror(errno));
	buf_free(&b);
}

void clu_members_load(struct clu_node *n)
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
		m->node_sess = brk_clu_node_session_new(n->b, m->name, m);
	brk_clu_node_session_up(m->node_sess, true);
	atomic_fetch_add(&n->peers_up, 1);
	clu_count_running(n);
	log_notice("cluster: linked with %s (%s, %s)", m->name, l->addr,
		   l->initiator ? "outgoing" : "incoming");
	/* what the peer must know: members, then our routes */
	send_members(n, l);
	clu_route_sync(n, l);
	clu_retain_sync(n, l);
	clu_repl_sync(n, l);
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
	if (m->node_sess)
		brk_clu_node_session_up(m->node_sess, false);
	atomic_fetch_sub(&n->peers_up, 1);
	clu_route_link_down(n, m, l);
	clu_takeover_link_down(n, m);
	clu_rpc_link_down(n, m);
	m->next_dial_ms = clu_now(n) + (n->stopping ? 0 : 200);
	clu_count_running(n);
	if (!n->stopping)
		log_notice("cluster: link with %s lost: %s", m->name, why);
}

void clu_on_dial_failed(struct clu_node *n, struct clu_peer *m, uint8_t refuse_reason)
{
	m->next_dial_ms = clu_now(n) + CLU_DIAL_BACKOFF_MS;
	/* down (not a crossing: that link comes up instead) */
	if (refuse_reason != CLU_REFUSE_BUSY)
		clu_start_peer_known(n, m, "not reachable");
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
