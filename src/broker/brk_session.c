/*
 * brk_session.c - session lifecycle: create, attach a connection, detach,
 * expire, end; wills (with v5 will delay); incoming QoS 2 packet ids.
 *
 * All functions run on the session's owner worker (s->w).
 * A session ends (sess_end) when: a clean session's connection closes, its
 * expiry interval elapses while offline, a clean-start connect replaces it
 * (sess_kill), or the node stops. Ending removes its routes from every
 * replica, releases its messages and drops the registry's reference.
 */
#include "broker/brk_int.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "store/store.h"

#include <string.h>
#include <utlist.h>

struct session *sess_new(struct worker *w, const char *client_id, size_t id_len)
{
	struct session *s = hq_calloc(1, sizeof(*s));
	atomic_init(&s->refs, 1);
	atomic_init(&s->online, false);
	s->sid = atomic_fetch_add(&w->b->next_id, 1);
	s->w = w;
	s->client_id = hq_strndup(client_id, id_len);
	s->client_hash = brk_hash(client_id, id_len);
	s->next_pid = 1;
	s->created_wall_ms = clock_wall_ms();
	return s;
}

static void sess_free_contents(struct session *s)
{
	struct sess_sub *sub, *tmp;
	HASH_ITER(hh, s->subs, sub, tmp) {
		HASH_DEL(s->subs, sub);
		hq_free(sub->filter);
		hq_free(sub);
	}
	brk_prom_subs(s, -(int64_t)s->n_subs);
	s->n_subs = 0;
	for (uint32_t i = 0; i < s->n_inflight; i++)
		deliv_release(&s->inflight[i]);
	HQ_FREE(s->inflight_base);
	s->inflight = NULL;
	s->n_inflight = s->cap_inflight = 0;
	dq_free(&s->queue);
	/* may run on any thread (the last reference): straight to the total;
	 * node sessions (no worker) never queue */
	if (s->queued_bytes)
		brk_queued_add_shared(s->w->b, -(int64_t)s->queued_bytes);
	sess_retained_free(s);
	s->queued_bytes = 0;
	s->queued_qos0 = 0;
	atomic_store_explicit(&s->qlen_pub, 0, memory_order_relaxed);
	HQ_FREE(s->rx_pids);
	s->n_rx_pids = s->cap_rx_pids = 0;
	sess_rx_unconf_free_all(s);
	auth_client_free(s->acl);
	s->acl = NULL;
	if (s->will) {
		msg_unref(s->will);
		s->will = NULL;
	}
}

void sess_unref(struct session *s)
{
	if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
		return;
	sess_free_contents(s);
	if (s->clu) {
		if (s->clu->moved_to)
			sess_unref(s->clu->moved_to);
		brk_handover_dedup_free(s);
		hq_free(s->clu);
		s->clu = NULL;
	}
	hq_free(s->client_id);
	hq_free(s);
}

static void offline_remove(struct session *s)
{
	if (!s->in_offline_list)
		return;
	DL_DELETE2(s->w->offline, s, off_prev, off_next);
	s->in_offline_list = false;
}

/* Keep s in its worker's offline list while it has a timer pending. */
void sess_offline_update(struct session *s)
{
	WK_ASSERT_OWNER(s->w);
	bool want = !s->ended && !s->conn && (s->expire_at || s->will_at);
	if (want && !s->in_offline_list) {
		DL_APPEND2(s->w->offline, s, off_prev, off_next);
		s->in_offline_list = true;
	} else if (!want) {
		offline_remove(s);
	}
}

void sess_set_will(struct session *s, struct brk_msg *will, uint32_t delay)
{
	WK_ASSERT_OWNER(s->w);
	if (s->will)
		msg_unref(s->will);
	s->will = will;
	s->will_delay = delay;
	s->will_at = 0;
}

void sess_publish_will(struct session *s)
{
	WK_ASSERT_OWNER(s->w);
	struct brk_msg *m = s->will;
	if (!m)
		return;
	s->will = NULL;
	s->will_at = 0;
	/* not shared yet, so still ours to finish: the publisher is the client,
	 * and the will's expiry interval runs from publication, not CONNECT */
	m->origin_sid = s->sid;
	m->mid = brk_handover_mid(s->w);
	if (m->has_expiry)
		m->expire_at = ev_now_ms(s->w->loop) + (int64_t)m->expiry * 1000;
	log_info("publishing will client_id=%s topic=%s", s->client_id, m->topic);
	if (m->retain)
		brk_retain_store(s->w, m);
	brk_route(s->w, m);
	if (s->w->b->arc)
		brk_archive_take(s->w, m, s->client_id, NULL, 0); /* the session keeps no user name */
	msg_unref(m);
}

void sess_attach(struct session *s, struct conn *c, bool present)
{
	WK_ASSERT_OWNER(s->w);
	s->conn = c;
	c->sess = sess_ref(s);
	/* one copy of the id: the connection borrows the session's from now on
	 * (the session outlives every use: conn_close logs before detaching) */
	if (!c->client_id_borrowed) {
		hq_free(c->client_id);
		c->client_id = s->client_id;
		c->client_id_borrowed = true;
	}
	atomic_store_explicit(&s->progress_ms, ev_now_ms(s->w->loop), memory_order_relaxed);
	atomic_store(&s->online, true);
	s->version = c->version;
	if (c->internal)
		s->qmax = c->int_qmax; /* a bridge's buffer: bridges.mqtt.<name>.max_buffered */
	/* the ACL context of this connection (its user name) from now on;
	 * NULL without an ACL file */
	auth_client_free(s->acl);
	s->acl = c->acl;
	c->acl = NULL;
	s->expiry = c->req_expiry;
	s->expire_at = 0;
	/* [MQTT-3.1.3-9] reconnecting within the will delay cancels the old will */
	sess_set_will(s, c->will, c->will_delay);
	c->will = NULL;
	offline_remove(s);
	brk_store_session_put(s);
	(void)present;
}

void reg_remove_if(struct broker *b, struct session *s)
{
	bool drop = false;
	pthread_mutex_lock(&b->reg_lock);
	if (s->in_registry) {
		HASH_DELETE(reg_hh, b->registry, s);
		s->in_registry = false;
		drop = true;
	}
	pthread_mutex_unlock(&b->reg_lock);
	if (drop)
		sess_unref(s);
}

void sess_end(struct session *s, bool publish_will)
{
	WK_ASSERT_OWNER(s->w);
	if (s->ended)
		return;
	sess_ref(s); /* keep s alive through its own teardown */
	if (publish_will)
		sess_publish_will(s);
	sess_set_will(s, NULL, 0);
	s->ended = true;
	offline_remove(s);
	struct sess_sub *sub, *tmp;
	HASH_ITER(hh, s->subs, sub, tmp) {
		if (brk_handover_keeps(s, sub->filter))
			continue; /* handed over: withdrawn later (brk_handover.c) */
		brk_route_broadcast(s->w, WQ_ROUTE_DEL, s, sub->filter, 0, 0);
		brk_cluster_route(s->w, false, sub->filter);
	}
	sess_redispatch_shared(s);
	sess_free_contents(s);
	brk_store_session_delete(s);
	reg_remove_if(s->w->b, s);
	log_debug("session ended client_id=%s", s->client_id);
	sess_unref(s);
}

void sess_detach(struct session *s, struct conn *c)
{
	WK_ASSERT_OWNER(s->w);
	int64_t now = ev_now_ms(s->w->loop);
	s->conn = NULL;
	c->sess = NULL;
	atomic_store(&s->online, false);
	s->detached_wall_ms = clock_wall_ms();
	if (c->taken_over) {
		/* the new connection resumes the session (clean start 0): the old
		 * will goes out only without a delay [MQTT-3.1.4-3] */
		if (s->will && s->will_delay == 0)
			sess_publish_will(s);
		sess_set_will(s, NULL, 0);
		sess_unref(s);
		return;
	}
	bool send_will = !c->disconnect_normal && s->will;
	if (s->expiry == 0) {
		sess_end(s, send_will);
	} else {
		if (send_will && s->will_delay == 0)
			sess_publish_will(s);
		else if (send_will)
			s->will_at = now + (int64_t)s->will_delay * 1000;
		else
			sess_set_will(s, NULL, 0);
		if (s->expiry != SESS_NEVER_EXPIRE)
			s->expire_at = now + (int64_t)s->expiry * 1000;
		sess_offline_update(s);
		sess_redispatch_shared(s);
		brk_store_session_put(s);
	}
	sess_unref(s);
}

/* End s because a clean-start connection replaced it in the registry. */
void sess_kill(struct session *s, uint8_t reason)
{
	WK_ASSERT_OWNER(s->w);
	if (s->ended)
		return;
	sess_ref(s);
	struct conn *c = s->conn;
	if (c) {
		s->conn = NULL;
		c->sess = NULL;
		atomic_store(&s->online, false);
		sess_unref(s); /* the connection's reference */
		conn_close(c, reason, "session taken over");
	}
	/* the new connection has clean start 1: the will goes out now */
	sess_end(s, true);
	sess_unref(s);
}

void sess_timers(struct worker *w, int64_t now)
{
	WK_ASSERT_OWNER(w);
	struct session *s, *tmp;
	DL_FOREACH_SAFE2(w->offline, s, tmp, off_next) {
		if (s->will_at && now >= s->will_at) {
			sess_publish_will(s);
			brk_store_session_put(s); /* published: not again after a restart */
		}
		if (s->expire_at && now >= s->expire_at) {
			log_info("session expired client_id=%s", s->client_id);
			sess_end(s, true);
			continue;
		}
		sess_offline_update(s);
	}
}

int sess_rx_pid_add(struct session *s, uint16_t pid)
{
	WK_ASSERT_OWNER(s->w);
	for (uint32_t i = 0; i < s->n_rx_pids; i++)
		if (s->rx_pids[i] == pid)
			return HQ_EEXIST;
	if (s->n_rx_pids == s->cap_rx_pids) {
		s->cap_rx_pids = s->cap_rx_pids ? s->cap_rx_pids * 2 : 4;
		s->rx_pids = hq_realloc(s->rx_pids, s->cap_rx_pids * sizeof(*s->rx_pids));
	}
	s->rx_pids[s->n_rx_pids++] = pid;
	brk_store_rxid(s, pid, true);
	return HQ_OK;
}

bool sess_rx_pid_del(struct session *s, uint16_t pid)
{
	WK_ASSERT_OWNER(s->w);
	for (uint32_t i = 0; i < s->n_rx_pids; i++)
		if (s->rx_pids[i] == pid) {
			s->rx_pids[i] = s->rx_pids[--s->n_rx_pids];
			brk_store_rxid(s, pid, false);
			sess_rx_unconf_drop(s, pid);
			return true;
		}
	return false;
}
