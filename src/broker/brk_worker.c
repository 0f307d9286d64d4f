/*
 * brk_worker.c - the node and its worker threads.
 *
 * Each worker runs one event loop with its own SO_REUSEPORT listening sockets,
 * so the kernel spreads new connections over workers. Work for another worker
 * is appended to a per-destination outbox during the loop turn and handed over
 * in one locked append + one eventfd write per destination in before-sleep
 * (batched hand-off: no lock and no syscall per message).
 */
#include "broker/brk_int.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/lockfile.h"
#include "core/log.h"
#include "core/mem.h"
#include "net/sock.h"
#include "repl/repl.h"
#include "store/store.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <utlist.h>

_Thread_local struct worker *wk_cur;

/* Start-up load and shutdown only (brk_store_load, broker_shutdown,
 * broker_free): no worker thread runs (yet, or any more), and the main
 * thread does worker w's work as w itself, so
 * the ownership checks (WK_ASSERT_OWNER) hold as they do on a worker.
 * Shutdown: every worker thread has
 * ended, and the main thread does worker w's remaining work as w itself, so
 * the ownership checks (WK_ASSERT_OWNER) hold as they do on a worker. NULL:
 * back to a thread that owns nothing. */
void wk_act_as(struct worker *w)
{
	wk_cur = w;
}

static void wq_vec_push(struct wq_vec *q, const struct wq_entry *e)
{
	if (q->len == q->cap) {
		q->cap = q->cap ? q->cap * 2 : 64;
		q->v = hq_realloc(q->v, q->cap * sizeof(*q->v));
	}
	q->v[q->len++] = *e;
}

void wk_post(struct worker *from, struct worker *to, const struct wq_entry *e)
{
	WK_ASSERT_OWNER(from);
	wq_vec_push(&from->outbox[to->id], e);
}

void wk_conn_add(struct worker *w, struct conn *c)
{
	WK_ASSERT_OWNER(w);
	c->w = w;
	DL_APPEND(w->conns, c);
}

void wk_conn_remove(struct worker *w, struct conn *c)
{
	WK_ASSERT_OWNER(w);
	DL_DELETE(w->conns, c);
	c->prev = c->next = NULL;
}

void wq_entry_release(struct wq_entry *e)
{
	switch (e->kind) {
	case WQ_DELIVER:
		sess_deliver_posted(e->sess, &e->u.d, false, e->ack_token);
		break;
	case WQ_ROUTE_ADD:
	case WQ_ROUTE_DEL:
	case WQ_ADOPT_NODE:
		hq_free(e->u.filter);
		break;
	case WQ_ADOPT:
		conn_free(e->u.conn);
		break;
	case WQ_FWD_IN:
		fwd_in_release(&e->u.fwd);
		break;
	case WQ_STORE_DONE:
		store_batch_free(e->u.batch);
		break;
	case WQ_AUTH_DONE:
		hq_free(e->u.auth);
		break;
	case WQ_CALL:
		brk_call_cancel(e->u.call);
		break;
	case WQ_TAKEOVER_IMPORT:
	case WQ_TAKEOVER_DONE:
	case WQ_TAKEOVER_OUT:
		hq_free(e->u.takeover.blob);
		hq_free(e->u.takeover.client_id);
		if (e->u.takeover.node_sess)
			sess_unref(e->u.takeover.node_sess);
		break;
	default:
		break;
	}
	if (e->sess)
		sess_unref(e->sess);
}

static void listeners_close(struct worker *w);
static void listeners_watch(struct worker *w, bool on);

static void wq_entry_run(struct worker *w, struct wq_entry *e)
{
	switch (e->kind) {
	case WQ_DELIVER:
		sess_deliver_posted(e->sess, &e->u.d, true, e->ack_token);
		break;
	case WQ_ROUTE_ADD:
	case WQ_ROUTE_DEL:
		brk_route_apply(w, e->kind, e->sess, e->u.filter, e->options, e->sub_id);
		hq_free(e->u.filter);
		break;
	case WQ_ADOPT:
		/* brk_adopt consumes the entry's session reference; the CONNECT
		 * was consumed by the sending worker, so read what follows it */
		brk_adopt(w, e->u.conn, e->sess);
		if (e->u.conn->state == CS_ACTIVE)
			conn_process_input(e->u.conn);
		return;
	case WQ_KILL:
		if (e->options) /* replaced by a session that rewrites the store itself */
			e->sess->stored = false;
		sess_kill(e->sess, MQTT_RC_SESSION_TAKEN_OVER);
		break;
	case WQ_KICK:
		if (e->sess->conn)
			conn_close(e->sess->conn, MQTT_RC_ADMIN_ACTION, "kicked");
		break;
	case WQ_FWD_IN:
		brk_route_forwarded(w, &e->u.fwd);
		break;
	case WQ_GATE_RELEASE:
		/* options: what the token waited for failed (not stored, or a
		 * forward that never arrived) */
		brk_token_done(w, e->u.token, e->options);
		break;
	case WQ_TAKEOVER_IMPORT:
		brk_cluster_takeover_import(w, &e->u.takeover);
		break;
	case WQ_TAKEOVER_DONE:
		brk_cluster_takeover_done(w, e->sess, &e->u.takeover);
		break;
	case WQ_TAKEOVER_OUT:
		brk_cluster_takeover_out(w, e->sess, &e->u.takeover);
		hq_free(e->u.takeover.client_id);
		if (e->u.takeover.node_sess)
			sess_unref(e->u.takeover.node_sess);
		break;
	case WQ_STORE_DONE:
		brk_store_done(w, e->u.batch);
		break;
	case WQ_CLOSE_LISTENERS:
		listeners_close(w);
		break;
	case WQ_LISTEN:
		listeners_watch(w, true); /* closed by a drain meanwhile: none left */
		atomic_store(&w->b->start_hold, false);
		break;
	case WQ_ADOPT_NODE:
		brk_store_adopt_node(w, e->u.filter);
		hq_free(e->u.filter);
		break;
	case WQ_MOVE_FENCE:
		brk_cluster_move_fence(w, (int)e->sub_id);
		break;
	case WQ_MOVE_FENCE_BACK:
		brk_cluster_move_fence_back(w, (int)e->sub_id, e->u.token);
		break;
	case WQ_AUTH_DONE:
		brk_auth_answer(w, e->u.auth);
		break;
	case WQ_CALL:
		brk_call_run(w, e->u.call);
		break;
	case WQ_SWITCH_MARK: {
		struct clu_req r = { .kind = CRQ_SWITCH_MARK, .worker = (uint16_t)w->id,
				     .token = e->u.token };
		clu_req_push(&w->clu.out, &r);
		break;
	}
	}
	if (e->sess)
		sess_unref(e->sess);
}

static void on_wakeup(struct ev_loop *l, void *arg)
{
	struct worker *w = arg;
	(void)l;
	struct inbox_vec batch = inbox_take(&w->inbox);
	struct wq_entry *v = batch.v;
	for (uint32_t i = 0; i < batch.len; i++)
		wq_entry_run(w, &v[i]);
	inbox_give_back(&w->inbox, batch);
}

/*
 * Before reading any socket, take what other workers handed over. A route
 * change is appended to our inbox before its SUBACK leaves the subscriber's
 * worker, so a PUBLISH sent after that SUBACK is read only after the route is
 * in our replica: "subscribed" holds on every worker once SUBACK is out.
 */
static void after_wait(struct ev_loop *l, void *arg)
{
	struct worker *w = arg;
	if (inbox_wake_pending(&w->inbox))
		on_wakeup(l, w);
}

void wk_inbox_append(struct worker *to, const struct wq_entry *v, uint32_t n)
{
	/* one eventfd write per wakeup, however many batches come meanwhile */
	if (inbox_append(&to->inbox, v, n))
		ev_wakeup(to->loop);
}

void wk_flush_outboxes(struct worker *w)
{
	WK_ASSERT_OWNER(w);
	struct broker *b = w->b;
	for (int i = 0; i < b->n_workers; i++) {
		struct wq_vec *ob = &w->outbox[i];
		if (!ob->len)
			continue;
		wk_inbox_append(&b->workers[i], ob->v, ob->len);
		ob->len = 0;
	}
}

/* One send per connection that has output (batched writes). */
static void flush_dirty(struct worker *w)
{
	while (w->dirty) {
		struct conn *c = w->dirty;
		w->dirty = c->dirty_next;
		c->dirty_next = NULL;
		c->dirty = false;
		if (c->state != CS_CLOSED)
			conn_flush(c);
	}
}

/*
 * Deliveries to other workers and nodes leave after the store batch holding
 * an incoming QoS 2 id (w->store_first, brk_store_rxid): this node's store
 * thread applies batches in submission order, and other nodes get the
 * forwards once it is stored (brk_cluster_hold).
 */
static void flush_ordered(struct worker *w)
{
	if (w->store_first) {
		uint64_t tok = brk_cluster_hold(w);
		if (tok)
			brk_store_hold(w, tok);
		brk_store_flush(w);
	}
	wk_flush_outboxes(w);
	brk_cluster_flush(w);
}

static void before_sleep(struct ev_loop *l, void *arg)
{
	struct worker *w = arg;
	if (w->throttled)
		wk_check_throttled(w, ev_now_ms(l));
	/* own-worker entries (e.g. route changes to self are applied at once,
	 * but a loop turn may post to self through wk_post) */
	if (w->outbox[w->id].len) {
		struct wq_vec self = w->outbox[w->id];
		w->outbox[w->id] = (struct wq_vec){ 0 };
		for (uint32_t i = 0; i < self.len; i++)
			wq_entry_run(w, &self.v[i]);
		hq_free(self.v);
	}
	flush_ordered(w);
	brk_store_flush(w);
	if (w->arc_pend)
		brk_archive_flush(w); /* issue 12: this turn's archive copies */
	flush_dirty(w);
	while (w->closed) {
		struct conn *c = w->closed;
		w->closed = c->free_next;
		conn_free(c);
	}
	linger_reap(w->linger);
}

/*
 * Inside a long batch of events (a burst over many connections), write what
 * is ready every MID_BATCH_EVENTS events instead of only at the end of the
 * turn: the first messages of a burst then leave without waiting for the last
 * ones to be read. Writes stay batched (at most one send per connection per
 * MID_BATCH_EVENTS events).
 */
#define MID_BATCH_EVENTS 8

/*
 * Lingering closes per worker (net/linger.h). A lingering socket is no longer
 * a connection: it does not count against mqtt.max_connections (the client
 * may reconnect at once), it holds no session and ~100 bytes. This cap bounds
 * the descriptors they hold (a burst of misbehaving clients beyond it is
 * closed at once), and they are given up first when descriptors run out.
 */
#define LINGER_PER_WORKER 256

static void mid_batch(struct ev_loop *l, void *arg)
{
	struct worker *w = arg;
	flush_ordered(w);
	flush_dirty(w);
}

/* Stop or resume watching every listening socket of w (accept_guard.h). */
static void listeners_watch(struct worker *w, bool on)
{
	for (int i = 0; i < w->n_lfds; i++)
		ev_io_set(w->loop, &w->lios[i], on ? EV_READ : 0);
}

/* Shutdown drain: close w's listening sockets, so the kernel refuses new
 * connections (a load balancer retries them on another node) while the
 * connections already here are still served. Each worker closes its own:
 * the ev_io watchers belong to its loop. */
static void listeners_close(struct worker *w)
{
	for (int i = 0; i < w->n_lfds; i++) {
		ev_io_set(w->loop, &w->lios[i], 0);
		close(w->lfds[i]);
	}
	w->n_lfds = 0;
}

static void accept_cb(struct ev_loop *l, struct ev_io *io, unsigned events)
{
	struct worker *w = io->arg;
	struct broker *b = w->b;
	int k = (int)(io - w->lios), li = w->lcfg[k];
	char addr[64];
	/* bounded batch per wakeup so one busy listener cannot starve clients */
	for (int i = 0; i < 64; i++) {
		int64_t wait = ovl_conn_rate_take(b, li, ev_now_ms(l));
		if (wait) {
			ovl_listener_pause(w, k, wait);
			return;
		}
		int fd = sock_accept(io->fd, addr, sizeof(addr));
		if (fd < 0) {
			int err = errno;
			ovl_conn_rate_refund(b, li);
			if (err == EMFILE || err == ENFILE)
				linger_close_all(w->linger); /* optional: real clients first */
			enum accept_verdict v = accept_guard_failed(&w->accept, io->fd, err,
								    ev_now_ms(l));
			if (v == ACCEPT_NEXT)
				continue;
			if (v == ACCEPT_PAUSE)
				listeners_watch(w, false); /* the tick resumes them */
			return;
		}
		if (atomic_load(&b->stopping)) {
			close(fd);
			continue;
		}
		conn_new(w, fd, addr, w->lproxy[k], w->ltls[k], li);
	}
}

static void tick_cb(struct ev_loop *l, void *arg)
{
	struct worker *w = arg;
	struct broker *b = w->b;
	int64_t now = ev_now_ms(l);
	struct conn *c, *tmp;
	DL_FOREACH_SAFE(w->conns, c, tmp) {
		if (c->state == CS_NEW || c->auth_wait) {
			/* an authentication server's slowness counts against it too */
			if (now - c->connected_ms > (int64_t)b->cfg->connect_timeout * 1000)
				conn_close(c, -1, c->auth_wait ? "authentication not answered within "
								  "mqtt.connect_timeout"
						  : c->eauth ? "enhanced authentication not finished within "
							       "mqtt.connect_timeout"
							     : "no CONNECT within mqtt.connect_timeout");
		} else if (c->closing && now - c->closing_since > CONN_CLOSING_MAX_MS) {
			conn_close(c, c->closing_reason, c->closing_why);
			continue;
		} else if (c->state == CS_ACTIVE && c->keepalive && !c->thr && !c->rl_paused &&
			   now - c->last_rx_ms > (int64_t)c->keepalive * 1500) {
			/* [MQTT-3.1.2-24] 1.5 times the keep alive */
			conn_close(c, MQTT_RC_KEEP_ALIVE_TIMEOUT, "keep alive timeout");
			continue;
		} else if (c->partial_since && conn_reading(c) &&
			   now - c->partial_since > (int64_t)b->cfg->ovl_incomplete_packet_timeout * 1000) {
			/* trickled bytes keep the keep alive happy: this does not
			 * (no DISCONNECT can follow half a packet: a plain close) */
			ovl_event(b, BRK_OVL_INCOMPLETE, "client_id=%s addr=%s: a packet not complete "
				  "within overload.incomplete_packet_timeout (%u s): closed",
				  c->client_id ? c->client_id : "", c->addr,
				  b->cfg->ovl_incomplete_packet_timeout);
			conn_close(c, -1, "packet not complete within overload.incomplete_packet_timeout");
			continue;
		}
		/* idle connections give their output buffer back */
		if (c->state != CS_CLOSED && !c->dirty && !buf_avail(&c->out))
			buf_free(&c->out);
	}
	if (w->rl_paused)
		wk_rl_tick(w, now);
	ovl_listener_tick(w, now);
	if (w->id == 0) {
		ovl_tick(b, now);
		banned_tick(b, now);
	}
	sess_timers(w, now);
	brk_cluster_held_tick(w, now);
	brk_handover_tick(w, now);
	linger_tick(w->linger, now);
	if (accept_guard_tick(&w->accept, now))
		listeners_watch(w, true);
	if (w->id == 0 && b->cfg->sys_interval && now >= w->next_sys_ms) {
		w->next_sys_ms = now + (int64_t)b->cfg->sys_interval * 1000;
		brk_sys_publish(w);
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	char name[16];
	snprintf(name, sizeof(name), "hamqtt-w%d", w->id);
	pthread_setname_np(pthread_self(), name);
	wk_cur = w; /* this thread owns w's state (WK_ASSERT_OWNER) */
	if (ev_run(w->loop) != HQ_OK)
		log_error("worker %d: event loop failed: %s", w->id, strerror(errno));
	return NULL;
}

/*
 * One node per node.data_dir: two nodes writing one member list (and, later,
 * one session store) would corrupt each other. Refused if another process
 * holds the lock; if the directory cannot be locked at all (read-only, no
 * permission) the node runs without the guard, as it did before, and says so.
 */
static int lock_data_dir(struct broker *b, char *err, size_t errlen)
{
	char why[CONF_ERR_MAX];
	int fd = lockfile_acquire(b->cfg->node_data_dir, why, sizeof(why));
	if (fd == HQ_EEXIST) {
		snprintf(err, errlen, "%s", why);
		return HQ_EEXIST;
	}
	if (fd < 0) {
		log_warning("%s (a second node on this directory would not be detected)", why);
		return HQ_OK;
	}
	if (why[0])
		log_warning("%s", why);
	b->data_lock_fd = fd;
	return HQ_OK;
}

static int open_listeners(struct broker *b, char *err, size_t errlen)
{
	struct hq_config *cfg = b->cfg;
	for (int li = 0; li < cfg->n_listeners; li++) {
		struct conf_listener *L = &cfg->listeners[li];
		if (!L->enabled)
			continue;
		char host[256];
		int port;
		const char *tn = conf_listener_type_name(L->type);
		if (conf_parse_hostport(L->bind, host, sizeof(host), &port) != HQ_OK) {
			snprintf(err, errlen, "listeners.%s.%s.bind: bad address '%s'", tn, L->name,
				 L->bind);
			return HQ_EINVAL;
		}
		/* certificates first: a bad file fails the start before any port opens */
		if (CONF_LT_HAS_TLS(L->type)) {
			b->tls[li] = tls_srv_new(L, err, errlen);
			if (!b->tls[li])
				return HQ_EINVAL;
		}
		/* every worker binds with SO_REUSEPORT, which would as gladly share
		 * the port with another hamqttd (the kernel then splits the clients
		 * between the two): a plain bind first says whether anyone has it */
		if (port != 0 && sock_port_free(host, port) != HQ_OK) {
			if (errno == EADDRINUSE)
				snprintf(err, errlen, "listeners.%s.%s.bind: %s is already in use "
					 "(another hamqttd or another program listens there)",
					 tn, L->name, L->bind);
			else
				snprintf(err, errlen, "listeners.%s.%s.bind: cannot listen on %s: %s",
					 tn, L->name, L->bind, strerror(errno));
			return HQ_EIO;
		}
		for (int i = 0; i < b->n_workers; i++) {
			struct worker *w = &b->workers[i];
			int fd = sock_listen_tcp(host, port, 1024, 1);
			if (fd < 0) {
				snprintf(err, errlen, "listeners.%s.%s.bind: cannot listen on %s: %s",
					 tn, L->name, L->bind, strerror(errno));
				return HQ_EIO;
			}
			if (port == 0)
				port = sock_local_port(fd); /* the other workers share it */
			w->lfds[w->n_lfds] = fd;
			w->lproxy[w->n_lfds] = L->proxy_protocol;
			w->ltls[w->n_lfds] = b->tls[li];
			w->lcfg[w->n_lfds] = li;
			ev_io_init(&w->lios[w->n_lfds], fd, accept_cb, w);
			ev_io_set(w->loop, &w->lios[w->n_lfds], EV_READ);
			w->n_lfds++;
		}
		bool ws = L->type == CONF_LT_WS || L->type == CONF_LT_WSS;
		log_notice("listener %s.%s on %s:%d%s%s%s", tn, L->name, *host ? host : "0.0.0.0", port,
			   ws ? " path " : "", ws ? L->ws_path : "",
			   L->proxy_protocol ? " (PROXY protocol)" : "");
	}
	return HQ_OK;
}

struct broker *broker_new(struct hq_config *cfg, char *err, size_t errlen)
{
	struct broker *b = hq_calloc(1, sizeof(*b));
	b->cfg = cfg;
	b->data_lock_fd = -1;
	b->n_workers = cfg->node_workers > 0 ? cfg->node_workers : (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (b->n_workers < 1)
		b->n_workers = 1;
	b->start_ms = clock_mono_ms();
	b->start_wall_ms = clock_wall_ms();
	atomic_init(&b->next_id, 1);
	brk_alarm_new(b);
	brk_trace_new(b);
	clu_hlc_init(&b->hlc);
	pthread_mutex_init(&b->reg_lock, NULL);
	pthread_mutex_init(&b->retain_lock, NULL);
	pthread_mutex_init(&b->store_info_lock, NULL);
	pthread_mutex_init(&b->prom_lock, NULL);
	pthread_mutex_init(&b->api_lock, NULL);
	b->retained = retain_tree_new();
	b->topic_alias_max = cfg->topic_alias_maximum;
	b->workers = hq_calloc((size_t)b->n_workers, sizeof(*b->workers));
	/* before anything can fail: broker_free releases every worker's guard */
	for (int i = 0; i < b->n_workers; i++)
		accept_guard_init(&b->workers[i].accept, "MQTT");
	for (int i = 0; i < b->n_workers; i++) {
		struct worker *w = &b->workers[i];
		w->id = i;
		w->b = b;
		w->loop = ev_loop_new();
		if (!w->loop) {
			snprintf(err, errlen, "cannot create event loop: %s", strerror(errno));
			goto fail;
		}
		w->routes = topic_tree_new();
		inbox_init(&w->inbox, sizeof(struct wq_entry));
		w->outbox = hq_calloc((size_t)b->n_workers, sizeof(*w->outbox));
		w->lfds = hq_calloc(CONF_MAX_LISTENERS, sizeof(int));
		w->lios = hq_calloc(CONF_MAX_LISTENERS, sizeof(struct ev_io));
		w->lproxy = hq_calloc(CONF_MAX_LISTENERS, sizeof(bool));
		w->ltls = hq_calloc(CONF_MAX_LISTENERS, sizeof(*w->ltls));
		w->lcfg = hq_calloc(CONF_MAX_LISTENERS, sizeof(*w->lcfg));
		w->rand_state = 0x9e3779b9u * (unsigned)(i + 1);
		w->linger = linger_set_new(w->loop, LINGER_PER_WORKER);
		ev_set_before_sleep(w->loop, before_sleep, w);
		ev_set_wakeup(w->loop, on_wakeup, w);
		ev_set_mid_batch(w->loop, MID_BATCH_EVENTS, mid_batch, w);
		ev_set_after_wait(w->loop, after_wait, w);
		ev_timer_every(w->loop, 250, tick_cb, w);
		w->next_sys_ms = b->start_ms; /* first $SYS publish right away */
	}
	/* first: a bad password or ACL file stops the start with file:line */
	b->auth = auth_new(cfg, err, errlen);
	if (!b->auth)
		goto fail;
	auth_set_done(b->auth, brk_auth_done_cb, b);
	banned_new(b);
	if (ovl_new(b, err, errlen) != HQ_OK)
		goto fail;
	if (lock_data_dir(b, err, errlen) != HQ_OK)
		goto fail;
	/* after the lock: one node's tables per data dir; before the cluster
	 * node (it sends them) and the banned list's load */
	b->repl = repl_open(cfg->node_data_dir, cfg->node_name, err, errlen);
	if (!b->repl)
		goto fail;
	if (banned_repl_attach(b) != HQ_OK)
		goto fail;
	auth_set_repl(b->auth, b->repl);
	if (brk_store_open(b, err, errlen) != HQ_OK)
		goto fail;
	if (open_listeners(b, err, errlen) != HQ_OK)
		goto fail;
	err[0] = 0;
	b->clu = clu_node_new(b, err, errlen);
	if (!b->clu && err[0])
		goto fail;
	/* a restarted node learns its peers' routes from their links: a
	 * PUBLISH read before would be acknowledged without reaching their
	 * subscribers; the cluster thread starts the accepting (clu_start.c) */
	if (clu_start_held(b->clu)) {
		atomic_store(&b->start_hold, true); /* health: 503 "starting" meanwhile */
		for (int i = 0; i < b->n_workers; i++)
			listeners_watch(&b->workers[i], false);
	}
	/* after the cluster node: loaded subscriptions become cluster routes */
	if (brk_store_load(b, err, errlen) != HQ_OK)
		goto fail;
	return b;
fail:
	broker_free(b);
	return NULL;
}

int broker_reload(struct broker *b)
{
	char err[CONF_ERR_MAX];
	int rc = auth_reload(b->auth, err, sizeof(err));
	if (rc != HQ_OK)
		log_error("reload refused, the old files stay in force: %s", err);
	return rc;
}

int broker_start(struct broker *b)
{
	for (int i = 0; i < b->n_workers; i++) {
		if (pthread_create(&b->workers[i].thread, NULL, worker_main, &b->workers[i]) != 0)
			return HQ_EIO;
	}
	atomic_store(&b->ready, true);
	if (b->clu && clu_node_start(b->clu) != HQ_OK)
		return HQ_EIO;
	if (brk_alarm_start(b) != HQ_OK)
		return HQ_EIO;
	log_notice("hamqttd started: %d workers", b->n_workers);
	return HQ_OK;
}

void broker_drain(struct broker *b)
{
	if (atomic_exchange(&b->stopping, true))
		return;
	if (!atomic_load(&b->ready)) /* no thread runs the loops: broker_shutdown closes them */
		return;
	for (int i = 0; i < b->n_workers; i++) {
		struct wq_entry e = { .kind = WQ_CLOSE_LISTENERS };
		wk_inbox_append(&b->workers[i], &e, 1);
	}
}

void broker_stop(struct broker *b)
{
	atomic_store(&b->stopping, true);
	for (int i = 0; i < b->n_workers; i++)
		if (b->workers[i].loop)
			ev_stop(b->workers[i].loop);
}

/* Close every connection of every worker (single-threaded shutdown). */
static void close_all_conns(struct broker *b)
{
	for (int i = 0; i < b->n_workers; i++) {
		struct worker *w = &b->workers[i];
		if (!w->loop)
			continue;
		wk_act_as(w);
		struct conn *c, *tmp;
		DL_FOREACH_SAFE(w->conns, c, tmp)
			conn_close(c, MQTT_RC_SERVER_SHUTTING_DOWN, "server shutting down");
	}
}

/* Run every worker's pending hand-offs until none is left (bounded). */
static void drain_all(struct broker *b)
{
	for (int round = 0; round < 16; round++) {
		bool work = false;
		for (int i = 0; i < b->n_workers; i++)
			if (b->workers[i].loop) {
				wk_act_as(&b->workers[i]);
				before_sleep(b->workers[i].loop, &b->workers[i]);
			}
		/* only now are all outboxes flushed into the inboxes */
		for (int i = 0; i < b->n_workers; i++) {
			struct worker *w = &b->workers[i];
			if (!w->loop)
				continue;
			/* under the lock: the store thread may still post completions */
			if (!inbox_pending(&w->inbox))
				continue;
			work = true;
			wk_act_as(w);
			on_wakeup(w->loop, w);
		}
		if (!work)
			return;
	}
}

/* After broker_stop: wait for the threads, close connections, end sessions.
 * Nothing is freed that broker_get_info or the cluster administration calls
 * read, so the HTTP server keeps answering meanwhile. */
void broker_shutdown(struct broker *b)
{
	if (!b || b->wound_down)
		return;
	b->wound_down = true;
	broker_stop(b); /* idempotent: a caller that did not stop first would hang below */
	brk_alarm_stop(b); /* it asks the cluster thread: before that stops */
	bool started = atomic_load(&b->ready);
	if (started)
		for (int i = 0; i < b->n_workers; i++)
			pthread_join(b->workers[i].thread, NULL);
	/* the auth threads: no answer reaches a worker's inbox after this */
	auth_stop(b->auth);
	/* the cluster thread next: nothing reaches the workers' inboxes after it */
	if (b->clu)
		clu_node_stop(b->clu);
	/* Single-threaded from here on: every worker is stopped. */
	for (int i = 0; i < b->n_workers && b->workers; i++) {
		struct worker *w = &b->workers[i];
		for (int j = 0; j < w->n_lfds; j++)
			close(w->lfds[j]);
		w->n_lfds = 0;
	}
	if (b->workers) {
		close_all_conns(b);
		drain_all(b);
		/* a hand-off in flight may have attached a connection meanwhile */
		close_all_conns(b);
		drain_all(b);
	}
	/* the store thread applies what the closes produced and posts it back
	 * (drained below); it takes nothing more, so ending the sessions next
	 * frees memory without deleting persistent ones from the store. What is
	 * drained after that pass must create no session and submit nothing:
	 * the answers of an adoption's reads stop the adoption there
	 * (brk_store_shared.c, adoption_stopped) */
	brk_store_stop(b);
	/* end every session still registered (persistent ones included) */
	struct session *e, *etmp;
	HASH_ITER(reg_hh, b->registry, e, etmp) {
		struct session *s = sess_ref(e);
		wk_act_as(s->w);
		if (!s->ended)
			sess_end(s, false);
		sess_unref(s);
	}
	if (b->workers)
		drain_all(b);
	wk_act_as(NULL);
}

int broker_reload_tls(struct broker *b)
{
	int failed = 0;
	for (int i = 0; i < b->cfg->n_listeners; i++) {
		if (!b->tls[i])
			continue;
		char err[CONF_ERR_MAX];
		if (tls_srv_reload(b->tls[i], &b->cfg->listeners[i], err, sizeof(err)) == HQ_OK) {
			log_notice("listener %s: certificates reloaded", tls_srv_name(b->tls[i]));
		} else {
			log_error("listener %s: reload failed, the previous certificates stay: %s",
				  tls_srv_name(b->tls[i]), err);
			failed++;
		}
	}
	failed += clu_reload_tls(b->clu); /* cluster.tls: 0 when off */
	return failed;
}

/* After broker_shutdown (run here if the caller did not): free everything. */
void broker_free(struct broker *b)
{
	if (!b)
		return;
	broker_shutdown(b);
	for (int i = 0; i < b->n_workers && b->workers; i++) {
		struct worker *w = &b->workers[i];
		wk_act_as(w); /* what is left in its queues is w's to release */
		struct inbox_vec left = inbox_take(&w->inbox);
		for (uint32_t k = 0; k < left.len; k++)
			wq_entry_release((struct wq_entry *)left.v + k);
		inbox_give_back(&w->inbox, left);
		for (int j = 0; j < b->n_workers && w->outbox; j++) {
			for (uint32_t k = 0; k < w->outbox[j].len; k++)
				wq_entry_release(&w->outbox[j].v[k]);
			hq_free(w->outbox[j].v);
		}
		hq_free(w->outbox);
		for (uint32_t k = 0; k < w->clu.out.len; k++)
			clu_req_release(&w->clu.out.v[k]);
		hq_free(w->clu.out.v);
		brk_cluster_held_free(w);
		store_batch_free(w->store_batch);
		brk_cluster_fwd_waits_free(w);
		brk_handover_free(w);
		if (w->routes) {
			brk_cluster_drop_remote_routes(w);
			topic_tree_free(w->routes);
		}
		hq_free(w->hits);
		hq_free(w->lfds);
		hq_free(w->lios);
		hq_free(w->lproxy);
		hq_free(w->ltls);
		hq_free(w->lcfg);
		linger_set_free(w->linger);
		brk_archive_worker_free(w);
		accept_guard_free(&w->accept);
		ev_loop_free(w->loop);
		inbox_destroy(&w->inbox);
	}
	wk_act_as(NULL);
	if (b->clu)
		clu_node_free(b->clu);
	/* every connection (and its SSL) is gone: the contexts can go */
	for (int i = 0; i < CONF_MAX_LISTENERS; i++)
		tls_srv_free(b->tls[i]);
	brk_store_close(b);
	retain_tree_free(b->retained, msg_unref_cb);
	auth_free(b->auth); /* sessions keep their ACL rules by reference */
	ovl_free(b);        /* after the last connection: conn_free gives counts back */
	brk_alarm_free(b);  /* its thread ended in broker_shutdown */
	brk_trace_free(b);  /* no connection writes to a trace any more */
	banned_free(b);
	repl_free(b->repl);   /* last: the cluster node and the HTTP server are gone */
	for (uint32_t i = 0; i < b->n_origins; i++)
		hq_free(b->origins[i]);
	hq_free(b->origins);
	hq_free(b->workers);
	pthread_mutex_destroy(&b->reg_lock);
	pthread_mutex_destroy(&b->retain_lock);
	pthread_mutex_destroy(&b->store_info_lock);
	brk_prom_free(b);   /* the sample and prom_lock: the HTTP server is gone */
	pthread_mutex_destroy(&b->api_lock);
	/* last: everything written to data_dir is closed */
	lockfile_release(b->data_lock_fd);
	hq_free(b);
}
