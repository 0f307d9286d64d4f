/*
 * brk_alarm.c - the node's alarms (EMQX's /api/v5/alarms shape) and the one
 * thread that checks them once a second.
 *
 * Ownership: the table (struct brk_alarms) belongs to the broker; its mutex
 * guards every entry. Only the alarm thread raises and clears (it is the
 * one writer of activation state); the HTTP threads copy entries out
 * (broker_alarm_list) and delete deactivated ones (broker_alarm_clear_history)
 * under the same mutex. The thread reads the broker only through what any
 * thread may call (broker_get_info, broker_store_info, broker_cluster_members)
 * and also runs the trace table's tick (end times, brk_trace.c).
 *
 * Alarms: store_down (the session store is unhealthy), node_down:<node> (a
 * cluster member this node sees stopped), memory_high (above
 * overload.memory_high_watermark), queue_drops (messages dropped for a full
 * queue, the session's or the node's, in the last minute), archive_down:<name>
 * and archive_drops:<name> (issue 12, check_archives). Raising logs a
 * warning, clearing a notice. The table is bounded: at most ALARM_MAX entries;
 * the oldest deactivated one goes first, and an alarm raised with the table
 * full of active ones is logged but not listed.
 */
#include "broker/brk_int.h"
#include "archive/archive.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ALARM_MAX 256
#define ALARM_TICK_MS 1000
#define ALARM_DROP_WINDOW 60      /* seconds the queue_drops alarm looks back */

struct brk_alarms {
	pthread_mutex_t lock;
	struct broker_alarm v[ALARM_MAX]; /* [0, n) in use, in raise order */
	size_t n;
	/* the thread */
	pthread_t thread;
	bool running;
	pthread_mutex_t stop_lock;
	pthread_cond_t stop_cond;
	bool stop;
	/* queue_drops: the queue-full drop count at each of the last seconds */
	uint64_t drops[ALARM_DROP_WINDOW];
	unsigned drops_at;
	bool drops_full;
	/* issue 12 archive_drops:<name>: each archive's drop count, the same way */
	uint64_t arc_drops[ARCHIVE_MAX][ALARM_DROP_WINDOW];
	unsigned arc_drops_at;
	bool arc_drops_full;
};

static struct broker_alarm *find_active(struct brk_alarms *a, const char *name)
{
	for (size_t i = 0; i < a->n; i++)
		if (a->v[i].activated && !strcmp(a->v[i].name, name))
			return &a->v[i];
	return NULL;
}

static void remove_at(struct brk_alarms *a, size_t i)
{
	memmove(&a->v[i], &a->v[i + 1], (a->n - i - 1) * sizeof(a->v[0]));
	a->n--;
}

/* Raise name (no-op while it is active: the first message stands). */
static void alarm_raise(struct brk_alarms *a, const char *name, const char *details,
			const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void alarm_raise(struct brk_alarms *a, const char *name, const char *details,
			const char *fmt, ...)
{
	pthread_mutex_lock(&a->lock);
	if (find_active(a, name)) {
		pthread_mutex_unlock(&a->lock);
		return;
	}
	if (a->n == ALARM_MAX) /* make room: the oldest deactivated entry */
		for (size_t i = 0; i < a->n; i++)
			if (!a->v[i].activated) {
				remove_at(a, i);
				break;
			}
	struct broker_alarm *e = a->n < ALARM_MAX ? &a->v[a->n++] : NULL;
	char msg[sizeof(e->message)];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (e) {
		memset(e, 0, sizeof(*e));
		snprintf(e->name, sizeof(e->name), "%s", name);
		snprintf(e->message, sizeof(e->message), "%s", msg);
		snprintf(e->details, sizeof(e->details), "%s", details ? details : "{}");
		e->activated = true;
		e->activate_at_ms = clock_wall_ms();
	}
	pthread_mutex_unlock(&a->lock);
	log_warning("alarm raised name=%s: %s%s", name, msg,
		    e ? "" : " (alarm table full: not listed)");
}

static void alarm_clear(struct brk_alarms *a, const char *name)
{
	pthread_mutex_lock(&a->lock);
	struct broker_alarm *e = find_active(a, name);
	int64_t dur = 0;
	if (e) {
		e->activated = false;
		e->deactivate_at_ms = clock_wall_ms();
		dur = e->deactivate_at_ms - e->activate_at_ms;
	}
	pthread_mutex_unlock(&a->lock);
	if (e)
		log_notice("alarm cleared name=%s after %lld s", name, (long long)(dur / 1000));
}

static void alarm_set(struct brk_alarms *a, const char *name, bool on, const char *details,
		      const char *msg)
{
	if (on)
		alarm_raise(a, name, details, "%s", msg);
	else
		alarm_clear(a, name);
}

/* A JSON string body: quotes, backslashes and control bytes escaped (the
 * text comes from a backend's error or a node name). */
static void json_esc(const char *in, char *out, size_t cap)
{
	size_t o = 0;
	for (; *in && o + 7 < cap; in++) {
		unsigned char ch = (unsigned char)*in;
		if (ch == '"' || ch == '\\') {
			out[o++] = '\\';
			out[o++] = (char)ch;
		} else if (ch < 0x20) {
			o += (size_t)snprintf(out + o, cap - o, "\\u%04x", ch);
		} else {
			out[o++] = (char)ch;
		}
	}
	out[o] = '\0';
}

static void check_store(struct broker *b)
{
	struct broker_store_info si;
	broker_store_info(b, &si);
	char desc[300], det[512];
	json_esc(si.description, desc, sizeof(desc));
	snprintf(det, sizeof(det), "{\"backend\":\"%s\",\"description\":\"%s\"}", si.backend, desc);
	alarm_set(b->alarms, "store_down", !si.healthy, det,
		  "the session store is down: nothing that needs it is acknowledged");
}

static void check_info(struct broker *b)
{
	struct brk_alarms *a = b->alarms;
	struct broker_info in;
	broker_get_info(b, &in);
	char det[512];
	snprintf(det, sizeof(det), "{\"rss_bytes\":%llu,\"high_watermark\":%llu}",
		 (unsigned long long)in.rss_bytes, (unsigned long long)in.mem_watermark);
	alarm_set(a, "memory_high", in.mem_high, det,
		  "memory above overload.memory_high_watermark: new connections refused");
	uint64_t drops = in.dropped_by[BRK_DROP_QUEUE_FULL] + in.dropped_by[BRK_DROP_NODE_FULL];
	/* the count ALARM_DROP_WINDOW ticks ago (the oldest kept), then this one */
	uint64_t old = a->drops_full ? a->drops[a->drops_at] : a->drops[0];
	a->drops[a->drops_at] = drops;
	a->drops_at = (a->drops_at + 1) % ALARM_DROP_WINDOW;
	if (!a->drops_at)
		a->drops_full = true;
	uint64_t recent = drops - old;
	snprintf(det, sizeof(det), "{\"dropped_last_minute\":%llu}", (unsigned long long)recent);
	alarm_set(a, "queue_drops", recent > 0, det,
		  "messages dropped for a full queue (mqtt.max_queued_messages, "
		  "mqtt.max_queued_bytes_total) in the last minute");
}

#define NODE_DOWN "node_down:"

static void check_nodes(struct broker *b)
{
	struct brk_alarms *a = b->alarms;
	if (!b->clu)
		return;
	struct broker_member *m = NULL;
	size_t n = 0;
	if (broker_cluster_members(b, &m, &n) != HQ_OK)
		return; /* the cluster thread is busy or stopping: next tick */
	char name[sizeof(a->v[0].name)], det[512], esc[300];
	for (size_t i = 0; i < n; i++) {
		snprintf(name, sizeof(name), NODE_DOWN "%s", m[i].node);
		json_esc(m[i].node, esc, sizeof(esc));
		snprintf(det, sizeof(det), "{\"node\":\"%s\"}", esc);
		if (!m[i].self && !strcmp(m[i].status, "stopped"))
			alarm_raise(a, name, det, "cluster member %s stopped", m[i].node);
		else
			alarm_clear(a, name);
	}
	/* members that left (or were forced out) are no longer down */
	for (;;) {
		bool found = false;
		pthread_mutex_lock(&a->lock);
		for (size_t i = 0; i < a->n && !found; i++) {
			if (!a->v[i].activated || strncmp(a->v[i].name, NODE_DOWN, strlen(NODE_DOWN)))
				continue;
			const char *node = a->v[i].name + strlen(NODE_DOWN);
			bool member = false;
			for (size_t k = 0; k < n && !member; k++)
				member = !strcmp(m[k].node, node);
			if (!member) {
				snprintf(name, sizeof(name), "%s", a->v[i].name);
				found = true;
			}
		}
		pthread_mutex_unlock(&a->lock);
		if (!found)
			break;
		alarm_clear(a, name);
	}
	free(m);
}

/* issue 12: archive_down:<name> (its database unreachable for more than
 * ARC_DOWN_MS) and archive_drops:<name> (messages dropped in the last
 * minute: the buffer and the spill file were full). */
#define ARC_DOWN_MS 10000

static void check_archives(struct broker *b)
{
	struct brk_alarms *a = b->alarms;
	struct archive_set *s = b->arc;
	for (uint32_t i = 0; s && i < archive_count(s) && i < ARCHIVE_MAX; i++) {
		struct archive_stats st;
		archive_stats(s, i, &st);
		char name[sizeof(a->v[0].name)], det[256], esc[160];
		json_esc(archive_name(s, i), esc, sizeof(esc));
		snprintf(name, sizeof(name), "archive_down:%s", archive_name(s, i));
		snprintf(det, sizeof(det), "{\"archive\":\"%s\",\"down_ms\":%lld,\"buffered\":%llu}",
			 esc, (long long)st.down_ms, (unsigned long long)st.buffered);
		if (st.down_ms > ARC_DOWN_MS)
			alarm_raise(a, name, det, "archive %s: its database is unreachable (buffering, "
				    "then spilling)", archive_name(s, i));
		else if (st.up)
			alarm_clear(a, name);
		uint64_t old = a->arc_drops_full ? a->arc_drops[i][a->arc_drops_at] : a->arc_drops[i][0];
		a->arc_drops[i][a->arc_drops_at] = st.dropped;
		uint64_t recent = st.dropped - old;
		snprintf(name, sizeof(name), "archive_drops:%s", archive_name(s, i));
		snprintf(det, sizeof(det), "{\"archive\":\"%s\",\"dropped_last_minute\":%llu}", esc,
			 (unsigned long long)recent);
		alarm_set(a, name, recent > 0, det, "archive: messages dropped, its buffer and spill "
			  "file full (buffer_messages, spill_max_bytes) in the last minute");
	}
	a->arc_drops_at = (a->arc_drops_at + 1) % ALARM_DROP_WINDOW;
	if (!a->arc_drops_at)
		a->arc_drops_full = true;
}

static void *alarm_main(void *arg)
{
	struct broker *b = arg;
	struct brk_alarms *a = b->alarms;
	pthread_mutex_lock(&a->stop_lock);
	while (!a->stop) {
		pthread_mutex_unlock(&a->stop_lock);
		check_store(b);
		check_info(b);
		check_nodes(b);
		check_archives(b);
		brk_trace_tick(b);
		pthread_mutex_lock(&a->stop_lock);
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += ALARM_TICK_MS / 1000;
		while (!a->stop && pthread_cond_timedwait(&a->stop_cond, &a->stop_lock, &ts) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&a->stop_lock);
	return NULL;
}

void brk_alarm_new(struct broker *b)
{
	struct brk_alarms *a = hq_calloc(1, sizeof(*a));
	pthread_mutex_init(&a->lock, NULL);
	pthread_mutex_init(&a->stop_lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&a->stop_cond, &ca);
	pthread_condattr_destroy(&ca);
	b->alarms = a;
}

int brk_alarm_start(struct broker *b)
{
	struct brk_alarms *a = b->alarms;
	if (pthread_create(&a->thread, NULL, alarm_main, b) != 0)
		return HQ_EIO;
	a->running = true;
	return HQ_OK;
}

void brk_alarm_stop(struct broker *b)
{
	struct brk_alarms *a = b ? b->alarms : NULL;
	if (!a || !a->running)
		return;
	pthread_mutex_lock(&a->stop_lock);
	a->stop = true;
	pthread_cond_signal(&a->stop_cond);
	pthread_mutex_unlock(&a->stop_lock);
	pthread_join(a->thread, NULL);
	a->running = false;
}

void brk_alarm_free(struct broker *b)
{
	struct brk_alarms *a = b->alarms;
	if (!a)
		return;
	brk_alarm_stop(b);
	pthread_mutex_destroy(&a->lock);
	pthread_mutex_destroy(&a->stop_lock);
	pthread_cond_destroy(&a->stop_cond);
	HQ_FREE(b->alarms);
}

int broker_alarm_list(struct broker *b, int activated, struct broker_alarm **out, size_t *n)
{
	struct brk_alarms *a = b->alarms;
	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&a->lock);
	struct broker_alarm *v = malloc((a->n ? a->n : 1) * sizeof(*v));
	if (!v) {
		pthread_mutex_unlock(&a->lock);
		return HQ_ENOMEM;
	}
	size_t k = 0;
	for (size_t i = 0; i < a->n; i++)
		if (activated < 0 || a->v[i].activated == (activated > 0))
			v[k++] = a->v[i];
	pthread_mutex_unlock(&a->lock);
	*out = v;
	*n = k;
	return HQ_OK;
}

size_t broker_alarm_clear_history(struct broker *b)
{
	struct brk_alarms *a = b->alarms;
	size_t gone = 0;
	pthread_mutex_lock(&a->lock);
	for (size_t i = 0; i < a->n;) {
		if (!a->v[i].activated) {
			remove_at(a, i);
			gone++;
		} else {
			i++;
		}
	}
	pthread_mutex_unlock(&a->lock);
	return gone;
}

void broker_alarm_set(struct broker *b, const char *name, bool on, const char *details,
		      const char *msg)
{
	if (b->alarms)
		alarm_set(b->alarms, name, on, details, msg);
}
