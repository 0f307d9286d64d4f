/*
 * brk_trace.c - traces to files (EMQX's /api/v5/trace): every packet in and
 * out of the connections of a client id or address, or every PUBLISH whose
 * topic matches a filter, one line each in <node.data_dir>/trace/<name>.log.
 *
 * Cost when no trace runs: one relaxed atomic load per packet read
 * (broker.trace_word, in brk_trace_in) and a plain field test per packet
 * written (conn.trace_mask). The word holds a generation (high 32 bits),
 * bumped by every start, stop and delete, and the mask of topic traces (low
 * 32 bits). A connection caches which client traces match it, with the
 * generation it decided at (brk_trace_refresh): at CONNACK and whenever the
 * generation moved. The mask is a hint: each write checks under the slot's
 * lock that the slot still is a live trace matching the connection, so a slot
 * reused meanwhile never gets another's lines.
 *
 * Ownership: the table (struct brk_traces) belongs to the broker. Its lock
 * guards the slots' layout (used, name, type, filter, times): taken by the
 * HTTP threads (start, stop, delete, list), the alarm thread's tick (end
 * times) and a worker refreshing a connection. Each slot's own lock guards its
 * file (fd, size): one writer at a time, one write(2) per line. Lock order:
 * the table's, then a slot's.
 */
#include "broker/brk_int.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct trace_slot {
	pthread_mutex_t lock;     /* the file: fd, size, truncated */
	bool used;                /* table lock */
	bool stopped;             /* table lock to change; read under either lock */
	struct broker_trace t;    /* name, type, filter, times: table lock */
	int fd;                   /* -1 once stopped */
	uint64_t size;
	bool truncated;
};

struct brk_traces {
	pthread_mutex_t lock;
	struct trace_slot s[BROKER_TRACE_MAX];
	uint32_t gen;             /* the generation in broker.trace_word (table lock) */
	char dir[4096];           /* <node.data_dir>/trace */
};

static const char *const type_names[] = { "clientid", "topic", "ip_address" };

const char *broker_trace_type_name(int type)
{
	return type >= 0 && type <= BRK_TRACE_IP ? type_names[type] : "?";
}

int broker_trace_type_parse(const char *s)
{
	for (int i = 0; s && i <= BRK_TRACE_IP; i++)
		if (!strcmp(s, type_names[i]))
			return i;
	return -1;
}

void brk_trace_new(struct broker *b)
{
	struct brk_traces *tr = hq_calloc(1, sizeof(*tr));
	pthread_mutex_init(&tr->lock, NULL);
	for (int i = 0; i < BROKER_TRACE_MAX; i++) {
		pthread_mutex_init(&tr->s[i].lock, NULL);
		tr->s[i].fd = -1;
	}
	snprintf(tr->dir, sizeof(tr->dir), "%s/trace", b->cfg->node_data_dir);
	b->traces = tr;
}

void brk_trace_free(struct broker *b)
{
	struct brk_traces *tr = b->traces;
	if (!tr)
		return;
	for (int i = 0; i < BROKER_TRACE_MAX; i++) {
		if (tr->s[i].fd >= 0)
			close(tr->s[i].fd);
		pthread_mutex_destroy(&tr->s[i].lock);
	}
	pthread_mutex_destroy(&tr->lock);
	HQ_FREE(b->traces);
}

/* After a change of the table (its lock held): a new generation and the mask
 * of topic traces not stopped, for every thread to see. */
static void publish_word(struct broker *b)
{
	struct brk_traces *tr = b->traces;
	uint32_t topics = 0;
	for (int i = 0; i < BROKER_TRACE_MAX; i++)
		if (tr->s[i].used && !tr->s[i].stopped && tr->s[i].t.type == BRK_TRACE_TOPIC)
			topics |= 1u << i;
	if (++tr->gen == 0)
		tr->gen = 1; /* 0 is "no trace ever": connections start there */
	atomic_store_explicit(&b->trace_word, ((uint64_t)tr->gen << 32) | topics,
			      memory_order_relaxed);
}

static bool running_now(const struct trace_slot *s, int64_t now_s)
{
	return s->used && !s->stopped && now_s >= s->t.start_s && now_s < s->t.end_s;
}

/* The host part of "ip:port" / "[v6]:port" equals ip. */
static bool addr_is(const char *addr, const char *ip)
{
	const char *colon = strrchr(addr, ':');
	size_t n = colon ? (size_t)(colon - addr) : strlen(addr);
	if (n >= 2 && addr[0] == '[' && addr[n - 1] == ']') {
		addr++;
		n -= 2;
	}
	return strlen(ip) == n && !memcmp(addr, ip, n);
}

static bool slot_matches_conn(const struct trace_slot *s, const struct conn *c)
{
	if (s->t.type == BRK_TRACE_CLIENTID)
		return c->client_id && !strcmp(c->client_id, s->t.filter);
	if (s->t.type == BRK_TRACE_IP)
		return addr_is(c->addr, s->t.filter);
	return false;
}

void brk_trace_refresh(struct conn *c, uint32_t gen)
{
	struct brk_traces *tr = c->w->b->traces;
	uint32_t mask = 0;
	pthread_mutex_lock(&tr->lock);
	for (int i = 0; i < BROKER_TRACE_MAX; i++)
		if (tr->s[i].used && !tr->s[i].stopped && slot_matches_conn(&tr->s[i], c))
			mask |= 1u << i;
	pthread_mutex_unlock(&tr->lock);
	c->trace_gen = gen;
	c->trace_mask = mask;
}

/* Text with control bytes as \xNN and spaces kept: a client id or topic
 * cannot forge a line of the file. */
static size_t esc(char *out, size_t cap, const char *s, size_t n)
{
	size_t o = 0;
	for (size_t i = 0; i < n && o + 5 < cap; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch < 0x20 || ch == 0x7f)
			o += (size_t)snprintf(out + o, cap - o, "\\x%02x", ch);
		else
			out[o++] = (char)ch;
	}
	out[o] = '\0';
	return o;
}

/* Append one line (time stamp first) to slot s, its lock held. */
static void slot_write(struct broker *b, struct trace_slot *s, const char *text)
{
	if (s->fd < 0 || s->truncated)
		return;
	char line[2048];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	int k = snprintf(line + n, sizeof(line) - n, ".%03ldZ %s\n", ts.tv_nsec / 1000000, text);
	if (k < 0)
		return;
	n += (size_t)k < sizeof(line) - n ? (size_t)k : sizeof(line) - n - 1;
	line[n - 1] = '\n';
	if (s->size + n > BROKER_TRACE_FILE_MAX) {
		s->truncated = true; /* bounded: the rest is not written, the listing says so */
		log_warning("trace %s: file limit of %llu bytes reached, no more lines", s->t.name,
			    (unsigned long long)BROKER_TRACE_FILE_MAX);
		return;
	}
	ssize_t w = write(s->fd, line, n);
	if (w > 0)
		s->size += (uint64_t)w;
	(void)b;
}

/* Write text to every client trace of c's mask that still matches c. */
static void conn_write(struct conn *c, const char *text)
{
	struct broker *b = c->w->b;
	struct brk_traces *tr = b->traces;
	int64_t now_s = clock_wall_ms() / 1000;
	for (uint32_t m = c->trace_mask; m; m &= m - 1) {
		struct trace_slot *s = &tr->s[__builtin_ctz(m)];
		pthread_mutex_lock(&tr->lock);
		bool ok = running_now(s, now_s) && slot_matches_conn(s, c);
		if (ok)
			pthread_mutex_lock(&s->lock);
		pthread_mutex_unlock(&tr->lock);
		if (ok) {
			slot_write(b, s, text);
			pthread_mutex_unlock(&s->lock);
		}
	}
}

void brk_trace_pkt(struct conn *c, const struct mqtt_packet *p, bool in)
{
	char text[1536], a[600], b2[600];
	/* the id was only checked for U+0000: escape its control bytes */
	esc(a, sizeof(a), c->client_id ? c->client_id : "", c->client_id ? strlen(c->client_id) : 0);
	size_t o = (size_t)snprintf(text, sizeof(text), "%s %s client_id=%s addr=%s", in ? "IN" : "OUT",
				    mqtt_type_name(p->type), a, c->addr);
	switch (p->type) {
	case MQTT_PUBLISH: {
		const struct mqtt_publish *pb = &p->u.publish;
		esc(b2, sizeof(b2), (const char *)pb->topic.p, pb->topic.len);
		snprintf(text + o, sizeof(text) - o, " topic=%s qos=%u id=%u retain=%d dup=%d payload=%u",
			 b2, pb->qos, pb->packet_id, pb->retain, pb->dup, pb->payload_len);
		break;
	}
	case MQTT_PUBACK: case MQTT_PUBREC: case MQTT_PUBREL: case MQTT_PUBCOMP:
		snprintf(text + o, sizeof(text) - o, " id=%u reason=0x%02x", p->u.ack.packet_id,
			 p->u.ack.reason);
		break;
	case MQTT_SUBSCRIBE: case MQTT_UNSUBSCRIBE: {
		const struct mqtt_subscribe *sb = &p->u.subscribe;
		o += (size_t)snprintf(text + o, sizeof(text) - o, " id=%u filters=", sb->packet_id);
		uint32_t cur = 0;
		struct mqtt_str f;
		uint8_t opts = 0;
		for (int i = 0; o < sizeof(text) - 1 && (p->type == MQTT_SUBSCRIBE ?
					mqtt_sub_next(sb, &cur, &f, &opts) : mqtt_unsub_next(sb, &cur, &f)); i++) {
			esc(b2, sizeof(b2), (const char *)f.p, f.len);
			o += (size_t)snprintf(text + o, sizeof(text) - o, "%s%s", i ? "," : "", b2);
			if (p->type == MQTT_SUBSCRIBE && o < sizeof(text) - 1)
				o += (size_t)snprintf(text + o, sizeof(text) - o, "(qos%u)", opts & 3);
		}
		break;
	}
	case MQTT_SUBACK: case MQTT_UNSUBACK: {
		const struct mqtt_suback *sa = &p->u.suback;
		o += (size_t)snprintf(text + o, sizeof(text) - o, " id=%u codes=", sa->packet_id);
		for (uint16_t i = 0; i < sa->count && o < sizeof(text) - 8; i++)
			o += (size_t)snprintf(text + o, sizeof(text) - o, "%s0x%02x", i ? "," : "",
					      sa->codes[i]);
		break;
	}
	case MQTT_CONNACK:
		snprintf(text + o, sizeof(text) - o, " reason=0x%02x session_present=%d%s",
			 p->u.connack.reason, p->u.connack.session_present,
			 p->u.connack.reason ? " (connection refused)" : "");
		break;
	case MQTT_DISCONNECT: case MQTT_AUTH:
		snprintf(text + o, sizeof(text) - o, " reason=0x%02x", p->u.disconnect.reason);
		break;
	default:
		break;
	}
	conn_write(c, text);
}

void brk_trace_ack(struct conn *c, uint8_t type, uint16_t pid, uint8_t reason, bool in)
{
	struct mqtt_packet p = { .type = type };
	p.u.ack.packet_id = pid;
	p.u.ack.reason = reason;
	if (type == MQTT_PINGREQ || type == MQTT_PINGRESP) {
		char text[700], a[600];
		esc(a, sizeof(a), c->client_id ? c->client_id : "", c->client_id ? strlen(c->client_id) : 0);
		snprintf(text, sizeof(text), "%s %s client_id=%s addr=%s", in ? "IN" : "OUT",
			 mqtt_type_name(type), a, c->addr);
		conn_write(c, text);
		return;
	}
	brk_trace_pkt(c, &p, in);
}

void brk_trace_pub_out(struct conn *c, const struct brk_msg *m, uint8_t qos, uint16_t pid,
		       bool retain)
{
	struct mqtt_packet p = { .type = MQTT_PUBLISH };
	p.u.publish.topic.p = (const uint8_t *)m->topic;
	p.u.publish.topic.len = m->topic_len;
	p.u.publish.qos = qos;
	p.u.publish.packet_id = pid;
	p.u.publish.retain = retain;
	p.u.publish.payload_len = m->payload_len;
	brk_trace_pkt(c, &p, false);
}

void brk_trace_connect(struct conn *c)
{
	uint64_t word = atomic_load_explicit(&c->w->b->trace_word, memory_order_relaxed);
	if (!word)
		return;
	brk_trace_refresh(c, (uint32_t)(word >> 32)); /* the client id is known now */
	if (!c->trace_mask)
		return;
	char text[1400], a[600], u[400];
	esc(a, sizeof(a), c->client_id ? c->client_id : "", c->client_id ? strlen(c->client_id) : 0);
	esc(u, sizeof(u), c->username ? c->username : "", c->username ? strlen(c->username) : 0);
	snprintf(text, sizeof(text), "IN CONNECT client_id=%s addr=%s proto=%u username=%s "
		 "clean_start=%d keepalive=%u", a, c->addr, c->version, u, c->clean_start, c->keepalive);
	conn_write(c, text);
}

void brk_trace_note(struct conn *c, const char *fmt, ...)
{
	char text[1400], what[600], w2[600], a[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	esc(w2, sizeof(w2), what, strlen(what));
	esc(a, sizeof(a), c->client_id ? c->client_id : "", c->client_id ? strlen(c->client_id) : 0);
	snprintf(text, sizeof(text), "NOTE client_id=%s addr=%s %s", a, c->addr, w2);
	conn_write(c, text);
}

void brk_deny_log(struct conn *c, const char *fmt, ...)
{
	char what[900];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (c->trace_mask)
		brk_trace_note(c, "%s", what);
	uint64_t skipped = 0;
	if (!log_rl_take(&c->w->b->deny_rl, clock_mono_ms(), &skipped))
		return; /* a flood: counted, told with the next line that goes out */
	if (skipped)
		log_notice("%s (%llu more refusal or denial lines were dropped before this one)",
			   what, (unsigned long long)skipped);
	else
		log_notice("%s", what);
}

void brk_trace_topic(struct worker *w, struct conn *c, const struct brk_msg *m, uint32_t matched)
{
	struct broker *b = w->b;
	struct brk_traces *tr = b->traces;
	uint32_t topics = (uint32_t)w->trace_word;
	int64_t now_s = clock_wall_ms() / 1000;
	char text[1400], tp[600], a[600];
	bool made = false;
	for (uint32_t mk = topics; mk; mk &= mk - 1) {
		struct trace_slot *s = &tr->s[__builtin_ctz(mk)];
		pthread_mutex_lock(&tr->lock);
		bool ok = running_now(s, now_s) && s->t.type == BRK_TRACE_TOPIC &&
			  topic_matches(s->t.filter, strlen(s->t.filter), m->topic, m->topic_len);
		if (ok)
			pthread_mutex_lock(&s->lock);
		pthread_mutex_unlock(&tr->lock);
		if (!ok)
			continue;
		if (!made) {
			esc(tp, sizeof(tp), m->topic, m->topic_len);
			esc(a, sizeof(a), c && c->client_id ? c->client_id : "",
			    c && c->client_id ? strlen(c->client_id) : 0);
			snprintf(text, sizeof(text), "PUBLISH topic=%s qos=%u retain=%d payload=%u "
				 "from client_id=%s matched_subscriptions=%u", tp, m->qos, m->retain, m->payload_len,
				 a, matched);
			made = true;
		}
		slot_write(b, s, text);
		pthread_mutex_unlock(&s->lock);
	}
}

static bool name_ok(const char *n)
{
	size_t len = strlen(n);
	if (!len || len >= sizeof(((struct broker_trace *)0)->name) || n[0] == '.')
		return false;
	for (size_t i = 0; i < len; i++)
		if (!(n[i] >= 'a' && n[i] <= 'z') && !(n[i] >= 'A' && n[i] <= 'Z') &&
		    !(n[i] >= '0' && n[i] <= '9') && !strchr("_-.", n[i]))
			return false;
	return true;
}

static struct trace_slot *find(struct brk_traces *tr, const char *name)
{
	for (int i = 0; i < BROKER_TRACE_MAX; i++)
		if (tr->s[i].used && !strcmp(tr->s[i].t.name, name))
			return &tr->s[i];
	return NULL;
}

int broker_trace_start(struct broker *b, const struct broker_trace *t, char *err, size_t errlen)
{
	struct brk_traces *tr = b->traces;
	if (!name_ok(t->name)) {
		snprintf(err, errlen, "name: 1 to 63 of [A-Za-z0-9_.-], not starting with '.'");
		return HQ_EINVAL;
	}
	size_t flen = strlen(t->filter);
	if (t->type < 0 || t->type > BRK_TRACE_IP || !flen) {
		snprintf(err, errlen, "type: clientid, topic or ip_address, with its value");
		return HQ_EINVAL;
	}
	if (t->type == BRK_TRACE_TOPIC && !topic_filter_valid(t->filter, flen, 0)) {
		snprintf(err, errlen, "topic: not a valid topic filter");
		return HQ_EINVAL;
	}
	if (t->end_s <= t->start_s) {
		snprintf(err, errlen, "end_at must be after start_at");
		return HQ_EINVAL;
	}
	pthread_mutex_lock(&tr->lock);
	struct trace_slot *s = NULL;
	int rc = HQ_OK;
	if (find(tr, t->name)) {
		snprintf(err, errlen, "a trace named %s exists", t->name);
		rc = HQ_EEXIST;
		goto out;
	}
	for (int i = 0; i < BROKER_TRACE_MAX && !s; i++)
		if (!tr->s[i].used)
			s = &tr->s[i];
	if (!s) {
		snprintf(err, errlen, "at most %d traces: delete one first", BROKER_TRACE_MAX);
		rc = HQ_ELIMIT;
		goto out;
	}
	char path[4200];
	snprintf(path, sizeof(path), "%s/%s.log", tr->dir, t->name);
	if (mkdir(tr->dir, 0750) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", tr->dir, strerror(errno));
		rc = HQ_EIO;
		goto out;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0640);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		rc = HQ_EIO;
		goto out;
	}
	pthread_mutex_lock(&s->lock);
	s->t = *t;
	s->fd = fd;
	s->size = 0;
	s->truncated = false;
	s->stopped = false;
	s->used = true;
	pthread_mutex_unlock(&s->lock);
	publish_word(b);
	log_notice("trace %s started: %s %s until %lld", t->name, type_names[t->type], t->filter,
		   (long long)t->end_s);
out:
	pthread_mutex_unlock(&tr->lock);
	return rc;
}

/* Stop s (table lock held): its file is closed, the listing says stopped. */
static void slot_stop(struct trace_slot *s)
{
	pthread_mutex_lock(&s->lock);
	s->stopped = true;
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	pthread_mutex_unlock(&s->lock);
}

int broker_trace_stop(struct broker *b, const char *name)
{
	struct brk_traces *tr = b->traces;
	pthread_mutex_lock(&tr->lock);
	struct trace_slot *s = find(tr, name);
	if (s && !s->stopped) {
		slot_stop(s);
		publish_word(b);
		log_notice("trace %s stopped", name);
	}
	pthread_mutex_unlock(&tr->lock);
	return s ? HQ_OK : HQ_ENOTFOUND;
}

int broker_trace_delete(struct broker *b, const char *name)
{
	struct brk_traces *tr = b->traces;
	pthread_mutex_lock(&tr->lock);
	struct trace_slot *s = find(tr, name);
	if (s) {
		slot_stop(s);
		char path[4200];
		snprintf(path, sizeof(path), "%s/%s.log", tr->dir, s->t.name);
		unlink(path);
		s->used = false;
		publish_word(b);
		log_notice("trace %s deleted", name);
	}
	pthread_mutex_unlock(&tr->lock);
	return s ? HQ_OK : HQ_ENOTFOUND;
}

int broker_trace_list(struct broker *b, struct broker_trace **out, size_t *n)
{
	struct brk_traces *tr = b->traces;
	int64_t now_s = clock_wall_ms() / 1000;
	struct broker_trace *v = malloc(BROKER_TRACE_MAX * sizeof(*v));
	if (!v)
		return HQ_ENOMEM;
	size_t k = 0;
	pthread_mutex_lock(&tr->lock);
	for (int i = 0; i < BROKER_TRACE_MAX; i++) {
		struct trace_slot *s = &tr->s[i];
		if (!s->used)
			continue;
		pthread_mutex_lock(&s->lock);
		v[k] = s->t;
		v[k].log_size = s->size;
		v[k].truncated = s->truncated;
		v[k].status = s->stopped || now_s >= s->t.end_s ? "stopped"
			    : now_s < s->t.start_s ? "waiting" : "running";
		pthread_mutex_unlock(&s->lock);
		k++;
	}
	pthread_mutex_unlock(&tr->lock);
	*out = v;
	*n = k;
	return HQ_OK;
}

int broker_trace_file(struct broker *b, const char *name, char *path, size_t len)
{
	struct brk_traces *tr = b->traces;
	pthread_mutex_lock(&tr->lock);
	struct trace_slot *s = find(tr, name);
	if (s)
		snprintf(path, len, "%s/%s.log", tr->dir, s->t.name);
	pthread_mutex_unlock(&tr->lock);
	return s ? HQ_OK : HQ_ENOTFOUND;
}

/* The alarm thread, once a second: traces past their end time stop. */
void brk_trace_tick(struct broker *b)
{
	struct brk_traces *tr = b->traces;
	int64_t now_s = clock_wall_ms() / 1000;
	pthread_mutex_lock(&tr->lock);
	bool changed = false;
	for (int i = 0; i < BROKER_TRACE_MAX; i++) {
		struct trace_slot *s = &tr->s[i];
		if (s->used && !s->stopped && now_s >= s->t.end_s) {
			slot_stop(s);
			changed = true;
			log_notice("trace %s ended (end_at reached)", s->t.name);
		}
	}
	if (changed)
		publish_word(b);
	pthread_mutex_unlock(&tr->lock);
}
