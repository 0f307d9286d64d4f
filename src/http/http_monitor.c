/*
 * http_monitor.c - the node's recent history for the dashboard's charts:
 * GET /api/v5/monitor (a point per 10 s, an hour kept) and
 * /api/v5/monitor_current (rates per second now), EMQX v5 shaped.
 *
 * One sampler thread per HTTP server reads broker_get_info every second (a
 * relaxed read of counters: nothing on the MQTT path), keeps the rates of
 * the last second and closes a point at every 10 s boundary of wall time,
 * so the points of every node fall on the same time stamps and sum across
 * the cluster. A point's received/sent/dropped are the messages of its 10 s;
 * connections, sessions, subscriptions and topics are the values at its end.
 *
 * Memory: MON_KEEP points, fixed, owned by struct http_monitor; every field
 * under its mutex (the sampler writes, HTTP threads copy).
 */
#include "http/http_int.h"
#include "http/http_query.h"
#include "broker/broker.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MON_STEP_MS 10000
#define MON_KEEP 360                  /* an hour of points */
#define MON_SAMPLE_MS 1000

struct mon_point {
	int64_t ts;                       /* start of its 10 s, ms since the epoch */
	int64_t connections, sessions, subscriptions, topics, retained;
	uint64_t received, sent, dropped; /* during its 10 s */
};

struct http_monitor {
	struct http_ctx *ctx;             /* borrowed from the server */
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	pthread_mutex_t sample_mu;        /* one sample at a time (thread or first request) */
	struct mon_point pts[MON_KEEP];   /* ring, oldest at head */
	size_t head, len;
	struct mon_point cur;             /* the 10 s being sampled */
	uint64_t cur_in, cur_out, cur_drop;   /* the counters when cur began */
	bool have_cur;
	/* the last sample and the rates it gave */
	struct broker_info last;
	int64_t last_ms;
	bool have_last;
	double rate_in, rate_out, rate_drop;
	int64_t peak_conns, peak_sessions;
};

static void push(struct http_monitor *m, const struct mon_point *p)
{
	if (m->len == MON_KEEP) {
		m->head = (m->head + 1) % MON_KEEP;
		m->len--;
	}
	m->pts[(m->head + m->len) % MON_KEEP] = *p;
	m->len++;
}

static void sample(struct http_monitor *m, struct broker *b)
{
	struct broker_info in;
	pthread_mutex_lock(&m->sample_mu);
	broker_get_info(b, &in);
	int64_t now = clock_wall_ms(), bucket = now / MON_STEP_MS * MON_STEP_MS;
	pthread_mutex_lock(&m->mu);
	if (m->have_last && now > m->last_ms) {
		double dt = (double)(now - m->last_ms) / 1000.0;
		m->rate_in = (double)(in.msgs_in - m->last.msgs_in) / dt;
		m->rate_out = (double)(in.msgs_out - m->last.msgs_out) / dt;
		m->rate_drop = (double)(in.msgs_dropped - m->last.msgs_dropped) / dt;
	}
	if (m->have_cur && bucket != m->cur.ts) {
		push(m, &m->cur);
		m->have_cur = false;
	}
	if (!m->have_cur) {
		memset(&m->cur, 0, sizeof(m->cur));
		m->cur.ts = bucket;
		/* the first point starts from the previous sample, so the
		 * messages between the two are not lost */
		const struct broker_info *from = m->have_last ? &m->last : &in;
		m->cur_in = from->msgs_in;
		m->cur_out = from->msgs_out;
		m->cur_drop = from->msgs_dropped;
		m->have_cur = true;
	}
	m->cur.connections = in.connections;
	m->cur.sessions = in.sessions;
	m->cur.subscriptions = in.subscriptions;
	m->cur.topics = in.topics;
	m->cur.retained = (int64_t)in.retained;
	m->cur.received = in.msgs_in - m->cur_in;
	m->cur.sent = in.msgs_out - m->cur_out;
	m->cur.dropped = in.msgs_dropped - m->cur_drop;
	if (in.connections > m->peak_conns)
		m->peak_conns = in.connections;
	if (in.sessions > m->peak_sessions)
		m->peak_sessions = in.sessions;
	m->last = in;
	m->last_ms = now;
	m->have_last = true;
	pthread_mutex_unlock(&m->mu);
	pthread_mutex_unlock(&m->sample_mu);
}

static void *mon_main(void *arg)
{
	struct http_monitor *m = arg;
	pthread_setname_np(pthread_self(), "hamqtt-monitor");
	pthread_mutex_lock(&m->mu);
	while (!m->stop) {
		struct broker *b = atomic_load(&m->ctx->b);
		if (b) {
			pthread_mutex_unlock(&m->mu);
			sample(m, b);
			pthread_mutex_lock(&m->mu);
		}
		/* until the broker is attached, look again soon: the first
		 * sample is the series' first point */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		int64_t ns = (int64_t)ts.tv_nsec + (b ? MON_SAMPLE_MS : 50) * 1000000LL;
		ts.tv_sec += ns / 1000000000LL;
		ts.tv_nsec = ns % 1000000000LL;
		while (!m->stop && pthread_cond_timedwait(&m->cv, &m->mu, &ts) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&m->mu);
	return NULL;
}

struct http_monitor *http_monitor_new(struct http_ctx *ctx)
{
	struct http_monitor *m = hq_calloc(1, sizeof(*m));
	m->ctx = ctx;
	pthread_mutex_init(&m->mu, NULL);
	pthread_mutex_init(&m->sample_mu, NULL);
	pthread_cond_init(&m->cv, NULL);
	if (pthread_create(&m->th, NULL, mon_main, m) != 0) {
		log_error("http: cannot start the monitor thread (/api/v5/monitor stays empty)");
		pthread_cond_destroy(&m->cv);
		pthread_mutex_destroy(&m->mu);
		pthread_mutex_destroy(&m->sample_mu);
		hq_free(m);
		return NULL;
	}
	return m;
}

void http_monitor_free(struct http_monitor *m)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->mu);
	m->stop = true;
	pthread_cond_signal(&m->cv);
	pthread_mutex_unlock(&m->mu);
	pthread_join(m->th, NULL);
	pthread_cond_destroy(&m->cv);
	pthread_mutex_destroy(&m->mu);
	pthread_mutex_destroy(&m->sample_mu);
	hq_free(m);
}

void http_monitor_peaks(struct http_monitor *m, int64_t *conns, int64_t *sessions)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->mu);
	if (m->peak_conns > *conns)
		*conns = m->peak_conns;
	if (m->peak_sessions > *sessions)
		*sessions = m->peak_sessions;
	pthread_mutex_unlock(&m->mu);
}

static cJSON *point_json(const struct mon_point *p)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "time_stamp", (double)p->ts);
	cJSON_AddNumberToObject(o, "connections", (double)p->connections);
	cJSON_AddNumberToObject(o, "live_connections", (double)p->connections);
	cJSON_AddNumberToObject(o, "sessions", (double)p->sessions);
	cJSON_AddNumberToObject(o, "subscriptions", (double)p->subscriptions);
	cJSON_AddNumberToObject(o, "topics", (double)p->topics);
	cJSON_AddNumberToObject(o, "retained_msg_count", (double)p->retained);
	cJSON_AddNumberToObject(o, "received", (double)p->received);
	cJSON_AddNumberToObject(o, "sent", (double)p->sent);
	cJSON_AddNumberToObject(o, "dropped", (double)p->dropped);
	return o;
}

/* This node's points since since_ms (the one being sampled last). */
static cJSON *series(struct http_monitor *m, int64_t since_ms)
{
	cJSON *a = cJSON_CreateArray();
	if (!m)
		return a;
	pthread_mutex_lock(&m->mu);
	for (size_t i = 0; i < m->len; i++) {
		const struct mon_point *p = &m->pts[(m->head + i) % MON_KEEP];
		if (p->ts >= since_ms)
			cJSON_AddItemToArray(a, point_json(p));
	}
	if (m->have_cur && m->cur.ts >= since_ms)
		cJSON_AddItemToArray(a, point_json(&m->cur));
	pthread_mutex_unlock(&m->mu);
	return a;
}

/* The gauges now, the rates of the sampler's last second. */
static cJSON *current(struct http_ctx *ctx, struct broker *b, struct http_monitor *m)
{
	cJSON *o = cJSON_CreateObject();
	struct broker_info p;
	broker_get_info(b, &p);
	double in = 0, out = 0, drop = 0;
	if (m) {
		pthread_mutex_lock(&m->mu);
		in = m->rate_in;
		out = m->rate_out;
		drop = m->rate_drop;
		pthread_mutex_unlock(&m->mu);
	}
	cJSON_AddStringToObject(o, "node", ctx->cfg->node_name);
	cJSON_AddNumberToObject(o, "connections", (double)p.connections);
	cJSON_AddNumberToObject(o, "live_connections", (double)p.connections);
	cJSON_AddNumberToObject(o, "sessions", (double)p.sessions);
	cJSON_AddNumberToObject(o, "subscriptions", (double)p.subscriptions);
	cJSON_AddNumberToObject(o, "topics", (double)p.topics);
	cJSON_AddNumberToObject(o, "retained_msg_count", (double)p.retained);
	cJSON_AddNumberToObject(o, "received_msg_rate", in);
	cJSON_AddNumberToObject(o, "sent_msg_rate", out);
	cJSON_AddNumberToObject(o, "dropped_msg_rate", drop);
	cJSON_AddNumberToObject(o, "node_uptime", (double)p.uptime_s * 1000.0);
	return o;
}

/* Add the numbers of src to dst (fields of the same name), "time_stamp"
 * and "node_uptime" excepted: those take the larger. */
static void add_into(cJSON *dst, const cJSON *src)
{
	const cJSON *f;
	cJSON_ArrayForEach(f, src) {
		cJSON *d = cJSON_GetObjectItemCaseSensitive(dst, f->string);
		if (!cJSON_IsNumber(f) || !cJSON_IsNumber(d))
			continue;
		bool max = !strcmp(f->string, "time_stamp") || !strcmp(f->string, "node_uptime");
		cJSON_SetNumberValue(d, max ? (d->valuedouble > f->valuedouble ? d->valuedouble
									      : f->valuedouble)
					    : d->valuedouble + f->valuedouble);
	}
}

/* The members' answers to req (all, or ?node=), each a JSON value, in an
 * array; NULL with resp filled on error. */
static cJSON *gather(struct http_ctx *ctx, const struct http_req *req, http_handler fn,
		     struct http_resp *resp)
{
	struct http_member_ans *v = NULL;
	size_t n = 0;
	char *q = http_query_encode(req->query, "_");
	int rc = http_fanout_gather(ctx, req, fn, http_arg(req, "node"), q ? q : "", &v, &n, resp);
	free(q);
	if (rc != HQ_OK)
		return NULL;
	if (!n) {
		http_fanout_free(v, n);
		http_resp_error(resp, 404, "NOT_FOUND", "no such node");
		return NULL;
	}
	cJSON *all = cJSON_CreateArray();
	for (size_t i = 0; i < n; i++) {
		cJSON *doc = v[i].status == 200 ? cJSON_ParseWithLength(v[i].body, v[i].len) : NULL;
		if (doc)
			cJSON_AddItemToArray(all, doc);
		else if (v[i].status == 200)
			v[i].status = 502;
	}
	cJSON_Delete(http_fanout_unreachable(v, n, resp));
	http_fanout_free(v, n);
	return all;
}

void http_monitor_get(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	const char *lv = http_arg(req, "latest");
	long latest = 3600;
	if (lv) {
		char *end;
		latest = strtol(lv, &end, 10);
		if (!*lv || *end || latest < 1 || latest > 86400) {
			http_resp_error(resp, 400, "BAD_REQUEST", "latest: seconds, 1 to 86400");
			return;
		}
	}
	int64_t since = clock_wall_ms() - (int64_t)latest * 1000 - MON_STEP_MS;
	struct broker *b = http_broker(ctx, resp);
	if (!b)
		return;
	if (req->local) {
		struct http_monitor *m = ctx->monitor;
		if (m) { /* asked before the sampler's first turn: sample now */
			pthread_mutex_lock(&m->mu);
			bool none = !m->have_cur;
			pthread_mutex_unlock(&m->mu);
			if (none)
				sample(m, b);
		}
		http_resp_json(resp, 200, series(m, since));
		return;
	}
	cJSON *all = gather(ctx, req, http_monitor_get, resp);
	if (!all)
		return;
	/* sum the nodes' points that share a time stamp, in time order */
	cJSON *out = cJSON_CreateArray(), *node, *p;
	cJSON_ArrayForEach(node, all) {
		cJSON_ArrayForEach(p, node) {
			double ts = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(p, "time_stamp"));
			cJSON *have = NULL, *it;
			int pos = 0, at = 0;
			cJSON_ArrayForEach(it, out) {
				double t = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(it, "time_stamp"));
				if (t == ts)
					have = it;
				if (t < ts)
					at = pos + 1;
				pos++;
			}
			if (have)
				add_into(have, p);
			else
				cJSON_InsertItemInArray(out, at, cJSON_Duplicate(p, true));
		}
	}
	cJSON_Delete(all);
	http_resp_json(resp, 200, out);
}

void http_monitor_current(struct http_ctx *ctx, const struct http_req *req,
			  struct http_resp *resp)
{
	struct broker *b = http_broker(ctx, resp);
	if (!b)
		return;
	if (req->local) {
		http_resp_json(resp, 200, current(ctx, b, ctx->monitor));
		return;
	}
	cJSON *all = gather(ctx, req, http_monitor_current, resp);
	if (!all)
		return;
	cJSON *out = NULL, *o;
	cJSON_ArrayForEach(o, all) {
		if (!out) {
			out = cJSON_Duplicate(o, true);
			continue;
		}
		add_into(out, o);
	}
	cJSON_Delete(all);
	if (out && !http_arg(req, "node"))
		cJSON_DeleteItemFromObjectCaseSensitive(out, "node"); /* a sum of every node */
	if (!out)
		http_resp_error(resp, 503, "UNREACHABLE", "no node answered");
	else
		http_resp_json(resp, 200, out);
}
