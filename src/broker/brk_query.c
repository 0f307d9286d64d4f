/*
 * brk_query.c - the management API's client, subscription and route queries
 * (broker_api.h). Retained messages and publish are in brk_query_msg.c.
 *
 * How a query runs (ARCHITECTURE.md "The broker's query services"):
 *  1. Under reg_lock, on the calling thread: the registry is walked in its
 *     own order (insertion order: stable between pages while nothing
 *     changes) and filtered on what may be read there: the client id
 *     (immutable), the online flag (a relaxed atomic). A plain page needs
 *     nothing more: only the window's sessions are referenced.
 *  2. A filter on what the worker owns (user name, address, protocol
 *     version, subscriptions) references every candidate and asks every
 *     worker at once (brk_call_all) to judge its own sessions.
 *  3. The window's details are filled by each session's owner (brk_call_all
 *     again; every worker skips what is not its own).
 * A page is O(sessions) reads of the registry under reg_lock, never a sort.
 */
#include "broker/brk_int.h"
#include "broker/broker_api.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/mem.h"

#include <stdio.h>
#include <string.h>

/* ---- the registry walk (calling thread, reg_lock) ---- */

struct sess_vec {
	struct session **v;       /* references */
	size_t n, cap;
};

static void sv_push(struct sess_vec *sv, struct session *s)
{
	if (sv->n == sv->cap) {
		sv->cap = sv->cap ? sv->cap * 2 : 64;
		sv->v = hq_realloc(sv->v, sv->cap * sizeof(*sv->v));
	}
	sv->v[sv->n++] = sess_ref(s);
}

static void sv_free(struct sess_vec *sv)
{
	for (size_t i = 0; i < sv->n; i++)
		sess_unref(sv->v[i]);
	hq_free(sv->v);
}

/* A client query's test on what any thread may read under reg_lock. */
static bool client_lockfree_match(struct session *s, const struct broker_client_filter *f)
{
	if (s->remote)
		return false;
	if (f->clientid && strcmp(s->client_id, f->clientid))
		return false;
	if (f->like_clientid && !strstr(s->client_id, f->like_clientid))
		return false;
	if (f->conn_state >= 0 &&
	    atomic_load_explicit(&s->online, memory_order_relaxed) != (f->conn_state == 1))
		return false;
	return true;
}

static bool client_needs_owner(const struct broker_client_filter *f)
{
	return f->username || f->ip_address || f->like_username || f->proto_ver >= 0;
}

/* Reference the registry's sessions that pass keep (all if NULL): with
 * window_only, only those of [offset, offset + limit) of them, *total the
 * count. clientid: look it up instead of walking. */
static void registry_collect(struct broker *b, const char *clientid,
			     const struct broker_client_filter *f, bool window_only,
			     size_t offset, size_t limit, struct sess_vec *out, size_t *total)
{
	size_t idx = 0;
	pthread_mutex_lock(&b->reg_lock);
	if (clientid) {
		struct session *s = NULL;
		HASH_FIND(reg_hh, b->registry, clientid, strlen(clientid), s);
		if (s && (!f || client_lockfree_match(s, f)) && !s->remote) {
			if (!window_only || offset == 0)
				sv_push(out, s);
			idx = 1;
		}
	} else {
		struct session *s, *tmp;
		HASH_ITER(reg_hh, b->registry, s, tmp) {
			if (f ? !client_lockfree_match(s, f) : s->remote)
				continue;
			if (!window_only || (idx >= offset && idx - offset < limit))
				sv_push(out, s);
			idx++;
		}
	}
	pthread_mutex_unlock(&b->reg_lock);
	if (total)
		*total = idx;
}

/* ---- clients: on the owner ---- */

static uint8_t proto_num(uint8_t version)
{
	return version ? version : MQTT_V311;
}

/* "1.2.3.4:5" or "[::1]:5" into ip and port */
static void addr_split(const char *addr, char *ip, size_t iplen, int *port)
{
	const char *colon = strrchr(addr, ':');
	size_t n = colon ? (size_t)(colon - addr) : strlen(addr);
	if (n >= 2 && addr[0] == '[' && addr[n - 1] == ']') {
		addr++;
		n -= 2;
	}
	snprintf(ip, iplen, "%.*s", (int)n, addr);
	*port = colon ? atoi(colon + 1) : 0;
}

static bool client_owner_match(struct session *s, const struct broker_client_filter *f)
{
	struct conn *c = s->conn;
	const char *user = c ? c->username : NULL;
	if (f->username && (!user || strcmp(user, f->username)))
		return false;
	if (f->like_username && (!user || !strstr(user, f->like_username)))
		return false;
	if (f->ip_address) {
		char ip[64];
		int port;
		if (!c)
			return false;
		addr_split(c->addr, ip, sizeof(ip), &port);
		if (strcmp(ip, f->ip_address))
			return false;
	}
	if (f->proto_ver >= 0 && proto_num(c ? c->version : s->version) != f->proto_ver)
		return false;
	return true;
}

static void client_fill(struct worker *w, struct session *s, struct broker_client *o)
{
	struct conn *c = s->conn;
	memset(o, 0, sizeof(*o));
	o->clientid = hq_strdup(s->client_id);
	o->proto_ver = proto_num(c ? c->version : s->version);
	o->expiry_interval = s->expiry;
	o->created_at = s->created_wall_ms;
	o->subscriptions_cnt = s->n_subs;
	o->mqueue_len = s->queue.len;
	o->mqueue_dropped = s->dropped;
	o->inflight_cnt = s->n_inflight;
	o->inflight_max = sess_window(s);
	if (c && c->state != CS_CLOSED) {
		const struct hq_config *cfg = w->b->cfg;
		o->connected = true;
		o->username = c->username ? hq_strdup(c->username) : NULL;
		addr_split(c->addr, o->ip, sizeof(o->ip), &o->port);
		if (c->internal)
			snprintf(o->listener, sizeof(o->listener), "bridge");
		else if (c->lidx < cfg->n_listeners)
			snprintf(o->listener, sizeof(o->listener), "%s:%s",
				 conf_listener_type_name(cfg->listeners[c->lidx].type),
				 cfg->listeners[c->lidx].name);
		o->keepalive = c->keepalive;
		o->clean_start = c->clean_start;
		o->connected_at = clock_wall_ms() - (ev_now_ms(w->loop) - c->connected_ms);
	} else {
		o->disconnected_at = s->detached_wall_ms;
	}
}

struct client_job {
	struct sess_vec *sv;
	const struct broker_client_filter *f;
	bool *keep;               /* judge: per sv entry */
	struct broker_client *out; /* fill: per sv entry; clientid NULL = gone */
};

static void client_judge_on(struct worker *w, void *arg)
{
	struct client_job *j = arg;
	for (size_t i = 0; i < j->sv->n; i++) {
		struct session *s = j->sv->v[i];
		if (s->w == w)
			j->keep[i] = !s->ended && client_owner_match(s, j->f);
	}
}

static void client_fill_on(struct worker *w, void *arg)
{
	struct client_job *j = arg;
	for (size_t i = 0; i < j->sv->n; i++) {
		struct session *s = j->sv->v[i];
		if (s->w == w && !s->ended)
			client_fill(w, s, &j->out[i]);
	}
}

/* Fill the details of sv's sessions (by their owners) into *out. */
static int clients_fill(struct broker *b, struct sess_vec *sv, struct broker_client **out,
			size_t *n)
{
	struct client_job j = { .sv = sv, .out = hq_calloc(sv->n ? sv->n : 1, sizeof(*j.out)) };
	int rc = sv->n ? brk_call_all(b, client_fill_on, &j) : HQ_OK;
	size_t k = 0;
	for (size_t i = 0; i < sv->n; i++)
		if (j.out[i].clientid)
			j.out[k++] = j.out[i];
	if (rc != HQ_OK) {
		broker_clients_free(j.out, k);
		return rc;
	}
	*out = j.out;
	*n = k;
	return HQ_OK;
}

int broker_clients_list(struct broker *b, const struct broker_client_filter *f, size_t offset,
			size_t limit, struct broker_client **out, size_t *n, size_t *total)
{
	*out = NULL;
	*n = *total = 0;
	struct sess_vec sv = { 0 };
	int rc;
	if (!client_needs_owner(f)) {
		registry_collect(b, f->clientid, f, true, offset, limit, &sv, total);
		rc = clients_fill(b, &sv, out, n);
		sv_free(&sv);
		return rc;
	}
	registry_collect(b, f->clientid, f, false, 0, 0, &sv, NULL);
	struct client_job j = { .sv = &sv, .f = f, .keep = hq_calloc(sv.n ? sv.n : 1, 1) };
	rc = sv.n ? brk_call_all(b, client_judge_on, &j) : HQ_OK;
	struct sess_vec win = { 0 };
	size_t idx = 0;
	for (size_t i = 0; rc == HQ_OK && i < sv.n; i++) {
		if (!j.keep[i])
			continue;
		if (idx >= offset && idx - offset < limit)
			sv_push(&win, sv.v[i]);
		idx++;
	}
	hq_free(j.keep);
	sv_free(&sv);
	*total = idx;
	if (rc == HQ_OK)
		rc = clients_fill(b, &win, out, n);
	sv_free(&win);
	return rc;
}

int broker_client_get(struct broker *b, const char *clientid, struct broker_client *out)
{
	struct broker_client_filter f = { .clientid = clientid, .conn_state = -1, .proto_ver = -1 };
	struct broker_client *v;
	size_t n, total;
	int rc = broker_clients_list(b, &f, 0, 1, &v, &n, &total);
	if (rc != HQ_OK)
		return rc;
	if (!n) {
		hq_free(v);
		return HQ_ENOTFOUND;
	}
	*out = v[0];
	hq_free(v);
	return HQ_OK;
}

void broker_clients_free(struct broker_client *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		hq_free(v[i].clientid);
		hq_free(v[i].username);
	}
	hq_free(v);
}

struct kick_job {
	struct session *s;
	bool found;
};

static void kick_on(struct worker *w, void *arg)
{
	struct kick_job *j = arg;
	struct session *s = j->s;
	(void)w;
	if (s->ended)
		return;
	j->found = true;
	if (s->conn)
		conn_close(s->conn, MQTT_RC_ADMIN_ACTION, "kicked by the management API");
	/* EMQX discards a kicked client's session too, offline or not */
	if (!s->ended)
		sess_end(s, false);
}

int broker_client_kick(struct broker *b, const char *clientid)
{
	struct sess_vec sv = { 0 };
	registry_collect(b, clientid, NULL, false, 0, 0, &sv, NULL);
	if (!sv.n) {
		sv_free(&sv);
		return HQ_ENOTFOUND;
	}
	struct kick_job j = { .s = sv.v[0] };
	int rc = brk_call_one(b, j.s->w, kick_on, &j);
	sv_free(&sv);
	return rc != HQ_OK ? rc : j.found ? HQ_OK : HQ_ENOTFOUND;
}

/* ---- subscriptions ---- */

static bool sub_match(const struct sess_sub *sub, const struct broker_sub_filter *f)
{
	const char *filter = sub->filter;
	size_t len = strlen(filter);
	const char *group = NULL, *inner = filter;
	size_t glen = 0, ilen = len;
	bool shared = topic_filter_shared(filter, len, &group, &glen, &inner, &ilen);
	if (f->topic && strcmp(filter, f->topic))
		return false;
	if (f->qos >= 0 && (sub->options & MQTT_SUBOPT_QOS_MASK) != f->qos)
		return false;
	if (f->share_group && (!shared || strlen(f->share_group) != glen ||
			       memcmp(group, f->share_group, glen)))
		return false;
	if (f->match_topic && !topic_matches(inner, ilen, f->match_topic, strlen(f->match_topic)))
		return false;
	return true;
}

static void sub_fill(const struct session *s, const struct sess_sub *sub, struct broker_sub *o)
{
	o->clientid = hq_strdup(s->client_id);
	o->topic = hq_strdup(sub->filter);
	o->qos = sub->options & MQTT_SUBOPT_QOS_MASK;
	o->nl = (sub->options & MQTT_SUBOPT_NO_LOCAL) ? 1 : 0;
	o->rap = (sub->options & MQTT_SUBOPT_RAP) ? 1 : 0;
	o->rh = (uint8_t)((sub->options & MQTT_SUBOPT_RH_MASK) >> MQTT_SUBOPT_RH_SHIFT);
}

struct sub_job {
	struct sess_vec *sv;
	const struct broker_sub_filter *f;
	size_t *cnt;              /* count: matches per session */
	size_t *skip, *take, *pos; /* fill: per session */
	struct broker_sub *out;
};

static void sub_count_on(struct worker *w, void *arg)
{
	struct sub_job *j = arg;
	for (size_t i = 0; i < j->sv->n; i++) {
		struct session *s = j->sv->v[i];
		if (s->w != w || s->ended)
			continue;
		struct sess_sub *sub, *tmp;
		HASH_ITER(hh, s->subs, sub, tmp)
			j->cnt[i] += sub_match(sub, j->f);
	}
}

static void sub_fill_on(struct worker *w, void *arg)
{
	struct sub_job *j = arg;
	for (size_t i = 0; i < j->sv->n; i++) {
		struct session *s = j->sv->v[i];
		if (s->w != w || s->ended || !j->take[i])
			continue;
		size_t seen = 0, put = 0;
		struct sess_sub *sub, *tmp;
		HASH_ITER(hh, s->subs, sub, tmp) {
			if (put == j->take[i])
				break;
			if (!sub_match(sub, j->f) || seen++ < j->skip[i])
				continue;
			sub_fill(s, sub, &j->out[j->pos[i] + put++]);
		}
	}
}

int broker_subs_list(struct broker *b, const struct broker_sub_filter *f, size_t offset,
		     size_t limit, struct broker_sub **out, size_t *n, size_t *total)
{
	*out = NULL;
	*n = *total = 0;
	struct sess_vec sv = { 0 };
	registry_collect(b, f->clientid, NULL, false, 0, 0, &sv, NULL);
	size_t m = sv.n ? sv.n : 1;
	struct sub_job j = { .sv = &sv, .f = f, .cnt = hq_calloc(m, sizeof(size_t)),
			     .skip = hq_calloc(m, sizeof(size_t)), .take = hq_calloc(m, sizeof(size_t)),
			     .pos = hq_calloc(m, sizeof(size_t)) };
	int rc = sv.n ? brk_call_all(b, sub_count_on, &j) : HQ_OK;
	size_t idx = 0, want = 0;
	for (size_t i = 0; rc == HQ_OK && i < sv.n; i++) {
		size_t lo = idx, hi = idx + j.cnt[i];
		idx = hi;
		if (hi <= offset || lo >= offset + limit)
			continue;
		j.skip[i] = offset > lo ? offset - lo : 0;
		size_t end = hi < offset + limit ? hi : offset + limit;
		j.take[i] = end - (lo + j.skip[i]);
		j.pos[i] = want;
		want += j.take[i];
	}
	*total = idx;
	j.out = hq_calloc(want ? want : 1, sizeof(*j.out));
	if (rc == HQ_OK && want)
		rc = brk_call_all(b, sub_fill_on, &j);
	size_t k = 0; /* a session that changed between the two passes leaves holes */
	for (size_t i = 0; i < want; i++)
		if (j.out[i].topic)
			j.out[k++] = j.out[i];
	hq_free(j.cnt);
	hq_free(j.skip);
	hq_free(j.take);
	hq_free(j.pos);
	sv_free(&sv);
	if (rc != HQ_OK) {
		broker_subs_free(j.out, k);
		return rc;
	}
	*out = j.out;
	*n = k;
	return HQ_OK;
}

int broker_client_subs(struct broker *b, const char *clientid, struct broker_sub **out, size_t *n)
{
	struct sess_vec sv = { 0 };
	registry_collect(b, clientid, NULL, false, 0, 0, &sv, NULL);
	bool found = sv.n > 0;
	sv_free(&sv);
	if (!found)
		return HQ_ENOTFOUND;
	struct broker_sub_filter f = { .clientid = clientid, .qos = -1 };
	size_t total;
	return broker_subs_list(b, &f, 0, SIZE_MAX / 2, out, n, &total);
}

void broker_subs_free(struct broker_sub *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		hq_free(v[i].clientid);
		hq_free(v[i].topic);
	}
	hq_free(v);
}

/* ---- routes: worker 0's replica, this node's own sessions ---- */

struct route_seen {
	UT_hash_handle hh;
	char filter[];
};

struct topics_job {
	const char *topic;
	struct route_seen *seen;  /* uthash by filter, in visit order via the vector */
	char **v;
	size_t n, cap;
};

static void topic_visit(void *ctx, const char *filter, size_t len, const struct topic_sub *sub)
{
	struct topics_job *j = ctx;
	const struct session *s = sub->owner;
	if (s->remote || (sub->options & BRK_SUBOPT_FWD_ONLY))
		return; /* another node's routes, or a session handed over */
	if (j->topic && (strlen(j->topic) != len || memcmp(j->topic, filter, len)))
		return;
	struct route_seen *e;
	HASH_FIND(hh, j->seen, filter, len, e);
	if (e)
		return;
	e = hq_malloc(sizeof(*e) + len + 1);
	memcpy(e->filter, filter, len);
	e->filter[len] = '\0';
	HASH_ADD(hh, j->seen, filter[0], len, e);
	if (j->n == j->cap) {
		j->cap = j->cap ? j->cap * 2 : 64;
		j->v = hq_realloc(j->v, j->cap * sizeof(*j->v));
	}
	j->v[j->n++] = hq_strndup(filter, len);
}

static void topics_on(struct worker *w, void *arg)
{
	topic_tree_visit(w->routes, topic_visit, arg);
}

int broker_topics_list(struct broker *b, const char *topic, size_t offset, size_t limit,
		       char ***out, size_t *n, size_t *total)
{
	struct topics_job j = { .topic = topic };
	*out = NULL;
	*n = *total = 0;
	int rc = brk_call_one(b, &b->workers[0], topics_on, &j);
	struct route_seen *e, *tmp;
	HASH_ITER(hh, j.seen, e, tmp) {
		HASH_DEL(j.seen, e);
		hq_free(e);
	}
	if (rc != HQ_OK) {
		broker_strings_free(j.v, j.n);
		return rc;
	}
	*total = j.n;
	size_t k = 0;
	for (size_t i = 0; i < j.n; i++) {
		if (i >= offset && i - offset < limit)
			j.v[k++] = j.v[i];
		else
			hq_free(j.v[i]);
	}
	*out = j.v;
	*n = k;
	return HQ_OK;
}

void broker_strings_free(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		hq_free(v[i]);
	hq_free(v);
}
