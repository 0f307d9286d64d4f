/*
 * clu_admin.c - the operator's requests (broker.h broker_cluster_*, through the
 * HTTP API and hamqtt-ctl): members, join, leave, force-leave.
 *
 * The caller's thread queues a struct clu_admin (on its own stack) and waits
 * on its condition variable; the cluster thread runs it (clu_admin_run) and
 * always answers: at once, when the join's link comes up or fails
 * (clu_join_done), at the join deadline (clu_admin_tick) or at shutdown.
 */
#include "cluster/clu_int.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void clu_admin_done(struct clu_admin *a, int rc, const char *err)
{
	pthread_mutex_lock(&a->mu);
	a->rc = rc;
	clu_fmt(a->err, sizeof(a->err), "%s", err ? err : "");
	a->done = true;
	pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->mu);
}

/* A join that failed leaves no member behind: the target was never ours. */
static void join_forget(struct clu_node *n, const char *name)
{
	for (size_t i = 1; i < n->n_m; i++) {
		struct clu_peer *m = n->m[i];
		if (!m->forgotten && !strcmp(m->name, name) && !m->link) {
			clu_member_forget(n, i);
			return;
		}
	}
}

void clu_join_done(struct clu_node *n, struct clu_peer *m, int rc, const char *err)
{
	struct clu_admin *a = n->join_wait;
	if (!a || (m && strcmp(a->node, m->name) != 0))
		return;
	n->join_wait = NULL;
	char copy[256];
	clu_fmt(copy, sizeof(copy), "%s", err ? err : ""); /* err may live in the member */
	err = copy;
	if (rc != HQ_OK) {
		join_forget(n, a->node);
		clu_members_save(n);
	}
	clu_admin_done(a, rc, err);
}

static int member_cmp(const void *x, const void *y)
{
	const struct broker_member *a = x, *b = y;
	if (a->self != b->self)
		return a->self ? -1 : 1;
	return strcmp(a->node, b->node);
}

static void admin_members(struct clu_node *n, struct clu_admin *a)
{
	struct broker_member *v = calloc(n->n_m, sizeof(*v));
	size_t k = 0;
	if (!v) {
		clu_admin_done(a, HQ_ENOMEM, "out of memory");
		return;
	}
	for (size_t i = 0; i < n->n_m; i++) {
		struct clu_peer *m = n->m[i];
		if (m->left || m->forgotten)
			continue;
		struct broker_member *o = &v[k++];
		clu_fmt(o->node, sizeof(o->node), "%s", m->name);
		clu_fmt(o->addr, sizeof(o->addr), "%s", m->addr);
		o->self = m->self;
		o->status = (m->self || m->link) ? "running" : "stopped";
		o->incarnation = m->incarnation;
	}
	qsort(v, k, sizeof(*v), member_cmp);
	a->members = v;
	a->n_members = k;
	clu_admin_done(a, HQ_OK, NULL);
}

static void admin_join(struct clu_node *n, struct clu_admin *a)
{
	struct clu_peer *self = n->m[0];
	if (!clu_name_valid(a->node, strlen(a->node))) {
		clu_admin_done(a, HQ_EINVAL, "expected a node name like hamqtt@10.0.0.1");
		return;
	}
	if (!strcmp(a->node, self->name)) {
		clu_admin_done(a, HQ_EINVAL, "that is this node");
		return;
	}
	if (n->join_wait) {
		clu_admin_done(a, HQ_EPROTOCOL, "another join is in progress");
		return;
	}
	struct clu_peer *m = clu_member_find(n, a->node, strlen(a->node));
	if (m && !m->left && m->link) {
		clu_admin_done(a, HQ_OK, NULL); /* already there */
		return;
	}
	if ((!m || m->left) && clu_has_members(n)) {
		log_notice("cluster: leaving the current cluster to join %s", a->node);
		clu_leave_cluster(n);
	}
	if (!m || m->left) {
		/* a new cluster: what we knew (tombstones of our own leave
		 * included) must not outvote its member list */
		for (size_t i = n->n_m; i-- > 1;)
			if (!n->m[i]->forgotten)
				clu_member_forget(n, i);
		m = NULL;
	}
	self->incarnation = clu_new_incarnation(self->incarnation);
	if (!m)
		m = clu_member_add(n, a->node, strlen(a->node), NULL, 1);
	m->left = false;
	m->last_error[0] = 0;
	if (m->dial)
		clu_link_close(m->dial, "joining afresh");
	a->deadline_ms = clu_now(n) + CLU_JOIN_TIMEOUT_MS;
	n->join_wait = a;
	log_notice("cluster: joining %s at %s", m->name, m->addr);
	clu_link_dial(n, m, true);
}

static void admin_force_leave(struct clu_node *n, struct clu_admin *a)
{
	struct clu_peer *m = clu_member_find(n, a->node, strlen(a->node));
	if (!m || m->left) {
		char err[320];
		clu_fmt(err, sizeof(err), "%s is not a member of this cluster", a->node);
		clu_admin_done(a, HQ_ENOTFOUND, err);
		return;
	}
	if (m->self) {
		clu_admin_done(a, HQ_EINVAL, "that is this node: use cluster leave");
		return;
	}
	if (m->link) {
		char err[320];
		clu_fmt(err, sizeof(err), "%s is running: run cluster leave on it instead", a->node);
		clu_admin_done(a, HQ_EPROTOCOL, err);
		return;
	}
	clu_member_remove(n, m, "force-left by an operator");
	struct clu_msg lv = { .type = CLU_MSG_LEAVE };
	lv.leave.force = true;
	lv.leave.node = clu_str(m->name);
	lv.leave.incarnation = m->incarnation ? m->incarnation : 1;
	for (struct clu_link *l = n->links; l; l = l->next)
		if (l->st == LS_UP)
			clu_link_send(l, &lv);
	clu_members_broadcast(n, NULL);
	clu_members_save(n);
	clu_admin_done(a, HQ_OK, NULL);
}

void clu_admin_run(struct clu_node *n, struct clu_admin *a)
{
	switch (a->kind) {
	case CA_MEMBERS:
		admin_members(n, a);
		break;
	case CA_JOIN:
		admin_join(n, a);
		break;
	case CA_LEAVE:
		if (clu_has_members(n)) {
			log_notice("cluster: leaving the cluster");
			clu_leave_cluster(n);
		}
		clu_admin_done(a, HQ_OK, NULL);
		break;
	case CA_FORCE_LEAVE:
		admin_force_leave(n, a);
		break;
	default:
		clu_admin_done(a, HQ_EINVAL, "unknown request");
	}
}

static int admin_call(struct clu_node *n, struct clu_admin *a)
{
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	pthread_mutex_lock(&n->admin_lock);
	bool open = n->started && !brk_clu_stopping(n->b);
	if (open) {
		a->next = n->admin_q;
		n->admin_q = a;
	}
	pthread_mutex_unlock(&n->admin_lock);
	if (!open) {
		a->rc = HQ_EPROTOCOL;
		clu_fmt(a->err, sizeof(a->err), "the node is not running");
	} else {
		if (inbox_want_wake(&n->inbox))
			ev_wakeup(n->loop);
		pthread_mutex_lock(&a->mu);
		while (!a->done)
			pthread_cond_wait(&a->cv, &a->mu);
		pthread_mutex_unlock(&a->mu);
	}
	pthread_cond_destroy(&a->cv);
	pthread_mutex_destroy(&a->mu);
	return a->rc;
}

int clu_admin_members(struct clu_node *n, struct broker_member **out, size_t *count)
{
	struct clu_admin a = { .kind = CA_MEMBERS };
	int rc = admin_call(n, &a);
	*out = a.members;
	*count = a.n_members;
	return rc;
}

static int admin_simple(struct clu_node *n, int kind, const char *node, char *err, size_t errlen)
{
	struct clu_admin a = { .kind = kind };
	if (node)
		clu_fmt(a.node, sizeof(a.node), "%s", node);
	int rc = admin_call(n, &a);
	if (rc != HQ_OK && err)
		clu_fmt(err, errlen, "%s", a.err);
	return rc;
}

int clu_admin_join(struct clu_node *n, const char *node, char *err, size_t errlen)
{
	if (strlen(node) > CLU_NAME_MAX) {
		clu_fmt(err, errlen, "node name too long");
		return HQ_EINVAL;
	}
	return admin_simple(n, CA_JOIN, node, err, errlen);
}

int clu_admin_leave(struct clu_node *n, char *err, size_t errlen)
{
	return admin_simple(n, CA_LEAVE, NULL, err, errlen);
}

int clu_admin_force_leave(struct clu_node *n, const char *node, char *err, size_t errlen)
{
	if (strlen(node) > CLU_NAME_MAX) {
		clu_fmt(err, errlen, "%.64s... is not a member of this cluster", node);
		return HQ_ENOTFOUND;
	}
	return admin_simple(n, CA_FORCE_LEAVE, node, err, errlen);
}


/* A join that found no link within CLU_JOIN_TIMEOUT_MS fails with why. */
void clu_admin_tick(struct clu_node *n, int64_t now)
{
	if (!n->join_wait || now <= n->join_wait->deadline_ms)
		return;
	struct clu_admin *a = n->join_wait;
	struct clu_peer *m = clu_member_find(n, a->node, strlen(a->node));
	char err[320];
	clu_fmt(err, sizeof(err), "no link to %s within %d s%s%s", a->node,
		CLU_JOIN_TIMEOUT_MS / 1000, m && m->last_error[0] ? ": " : "",
		m && m->last_error[0] ? m->last_error : "");
	n->join_wait = NULL;
	join_forget(n, a->node);
	clu_members_save(n);
	clu_admin_done(a, HQ_EIO, err);
}
