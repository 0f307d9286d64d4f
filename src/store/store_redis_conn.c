/*
 * store_redis_conn.c - the redis backend's one synchronous hiredis
 * connection: finding the master (session.redis.server, or asking each
 * Sentinel in turn for session.redis.master_name), AUTH, SELECT, checking
 * ROLE is master, loading the scripts, and reconnecting.
 *
 * Synchronous on purpose: every call runs on the store runner thread (or on
 * main before it starts), never on a worker, and a batch is one script call.
 * Every connect and command is bounded by session.redis.timeout
 * (redisConnectWithTimeout + redisSetTimeout). Any sign that this is not a
 * usable master (I/O error, timeout, READONLY after a failover, LOADING,
 * MASTERDOWN, BUSY) drops the connection and is HQ_EIO, transient: the next
 * call reconnects, but not sooner than a backoff of 100 ms doubling to 2 s
 * after each failed attempt, so a dead Redis costs one refused attempt per
 * backoff, not one per batch.
 */
#include "store/store_redis_int.h"
#include "core/clock.h"
#include "core/conf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000

static void set_desc(struct rconn *rc, const char *why)
{
	pthread_mutex_lock(&rc->desc_lock);
	int n = rc->host[0] ? snprintf(rc->desc, sizeof(rc->desc), "redis %s:%d db %d", rc->host, rc->port,
				       rc->db)
			    : snprintf(rc->desc, sizeof(rc->desc), "redis (master not found yet) db %d", rc->db);
	if (n > 0 && (size_t)n < sizeof(rc->desc) && rc->n_sentinels)
		n += snprintf(rc->desc + n, sizeof(rc->desc) - (size_t)n, " (via sentinel %s)",
			      rc->master_name);
	if (n > 0 && (size_t)n < sizeof(rc->desc) && why)
		snprintf(rc->desc + n, sizeof(rc->desc) - (size_t)n, " disconnected: %s", why);
	pthread_mutex_unlock(&rc->desc_lock);
}

void rconn_describe(struct rconn *rc, char *buf, size_t n)
{
	pthread_mutex_lock(&rc->desc_lock);
	snprintf(buf, n, "%s", rc->desc);
	pthread_mutex_unlock(&rc->desc_lock);
}

int rconn_init(struct rconn *rc, const struct hq_config *cfg, char *err, size_t errlen)
{
	memset(rc, 0, sizeof(*rc));
	pthread_mutex_init(&rc->desc_lock, NULL);
	rc->server = hq_strdup(cfg->session_redis_server ? cfg->session_redis_server : "");
	rc->master_name = hq_strdup(cfg->session_redis_master_name ? cfg->session_redis_master_name : "");
	rc->password = hq_strdup(cfg->session_redis_password ? cfg->session_redis_password : "");
	rc->db = cfg->session_redis_database;
	rc->timeout_ms = cfg->session_redis_timeout > 0 ? cfg->session_redis_timeout * 1000 : 2000;
	/* "a:1, b:2" -> each host:port, checked now so a typo refuses to start */
	const char *s = cfg->session_redis_sentinels ? cfg->session_redis_sentinels : "";
	while (*s) {
		while (*s == ' ' || *s == ',')
			s++;
		size_t len = strcspn(s, ", ");
		if (!len)
			break;
		char *one = hq_strndup(s, len);
		char host[256];
		int port;
		if (conf_parse_hostport(one, host, sizeof(host), &port) != HQ_OK || !host[0] || port <= 0) {
			snprintf(err, errlen, "session.redis.sentinels: expected host:port, got '%.100s'", one);
			hq_free(one);
			return HQ_EINVAL;
		}
		rc->sentinels = hq_realloc(rc->sentinels, (size_t)(rc->n_sentinels + 1) * sizeof(char *));
		rc->sentinels[rc->n_sentinels++] = one;
		s += len;
	}
	if (rc->n_sentinels && !rc->master_name[0]) {
		snprintf(err, errlen, "session.redis.master_name: needed with session.redis.sentinels");
		return HQ_EINVAL;
	}
	if (!rc->n_sentinels &&
	    (conf_parse_hostport(rc->server, rc->host, sizeof(rc->host), &rc->port) != HQ_OK ||
	     !rc->host[0] || rc->port <= 0)) {
		snprintf(err, errlen, "session.redis.server: expected host:port, got '%.100s'", rc->server);
		return HQ_EINVAL;
	}
	set_desc(rc, "not connected yet");
	return HQ_OK;
}

void rconn_fini(struct rconn *rc)
{
	if (rc->c)
		redisFree(rc->c);
	for (int i = 0; i < rc->n_sentinels; i++)
		hq_free(rc->sentinels[i]);
	hq_free(rc->sentinels);
	hq_free(rc->server);
	hq_free(rc->master_name);
	hq_free(rc->password);
	pthread_mutex_destroy(&rc->desc_lock);
}

void rconn_drop(struct rconn *rc, const char *why)
{
	if (rc->c) {
		log_warning("store redis: connection to %s:%d lost: %s", rc->host, rc->port, why);
		redisFree(rc->c);
		rc->c = NULL;
	}
	set_desc(rc, why);
}

static struct timeval tv_of(int ms)
{
	return (struct timeval){ .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
}

/* A context to host:port with both timeouts set, or NULL with why set. */
static redisContext *dial(struct rconn *rc, const char *host, int port, char *why, size_t wlen)
{
	redisContext *c = redisConnectWithTimeout(host, port, tv_of(rc->timeout_ms));
	if (!c) {
		snprintf(why, wlen, "%s:%d: out of memory", host, port);
		return NULL;
	}
	if (c->err || redisSetTimeout(c, tv_of(rc->timeout_ms)) != REDIS_OK) {
		snprintf(why, wlen, "%s:%d: %s", host, port, c->err ? c->errstr : "cannot set timeout");
		redisFree(c);
		return NULL;
	}
	return c;
}

/* Ask the Sentinels in turn where the master is: rc->host/port. */
static int discover(struct rconn *rc, char *why, size_t wlen)
{
	snprintf(why, wlen, "no sentinel answered");
	for (int i = 0; i < rc->n_sentinels; i++) {
		char host[256];
		int port;
		if (conf_parse_hostport(rc->sentinels[i], host, sizeof(host), &port) != HQ_OK)
			continue;
		char w[200];
		redisContext *c = dial(rc, host, port, w, sizeof(w));
		if (!c) {
			snprintf(why, wlen, "sentinel %s", w);
			continue;
		}
		redisReply *r = redisCommand(c, "SENTINEL get-master-addr-by-name %s", rc->master_name);
		bool ok = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
			  r->element[0]->type == REDIS_REPLY_STRING && r->element[1]->type == REDIS_REPLY_STRING;
		if (ok) {
			snprintf(rc->host, sizeof(rc->host), "%s", r->element[0]->str);
			rc->port = atoi(r->element[1]->str);
		} else {
			snprintf(why, wlen, "sentinel %s: %s", rc->sentinels[i],
				 !r ? c->errstr : r->type == REDIS_REPLY_ERROR ? r->str
									: "does not know the master");
		}
		if (r)
			freeReplyObject(r);
		redisFree(c);
		if (ok)
			return HQ_OK;
	}
	return HQ_EIO;
}

/* One command expecting a non-error reply; its text in why on failure. */
static bool cmd_ok(redisContext *c, char *why, size_t wlen, redisReply **keep, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	redisReply *r = redisvCommand(c, fmt, ap);
	va_end(ap);
	if (!r || r->type == REDIS_REPLY_ERROR) {
		snprintf(why, wlen, "%s", r ? r->str : c->errstr);
		if (r)
			freeReplyObject(r);
		return false;
	}
	if (keep)
		*keep = r;
	else
		freeReplyObject(r);
	return true;
}

/* Connect to the master and prepare the session; HQ_OK or why set. */
static int connect_master(struct rconn *rc, char *why, size_t wlen)
{
	if (rc->n_sentinels && discover(rc, why, wlen) != HQ_OK)
		return HQ_EIO;
	redisContext *c = dial(rc, rc->host, rc->port, why, wlen);
	if (!c)
		return HQ_EIO;
	redisReply *r = NULL;
	char w[200] = "";
	bool ok = (!rc->password[0] || cmd_ok(c, w, sizeof(w), NULL, "AUTH %s", rc->password)) &&
		  cmd_ok(c, w, sizeof(w), NULL, "SELECT %d", rc->db) &&
		  cmd_ok(c, w, sizeof(w), &r, "ROLE");
	if (ok && !(r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
		    r->element[0]->type == REDIS_REPLY_STRING && !strcmp(r->element[0]->str, "master"))) {
		/* right after a failover a Sentinel may still name the old master */
		snprintf(w, sizeof(w), "not a master (ROLE %s)",
			 r->elements && r->element[0]->type == REDIS_REPLY_STRING ? r->element[0]->str : "?");
		ok = false;
	}
	if (r)
		freeReplyObject(r);
	for (int i = 0; ok && i < RSCRIPT_N; i++) {
		r = NULL;
		ok = cmd_ok(c, w, sizeof(w), &r, "SCRIPT LOAD %s", rscript_text[i]);
		if (ok && r->type == REDIS_REPLY_STRING && r->len == 40)
			memcpy(rc->sha[i], r->str, 41);
		else if (ok) {
			snprintf(w, sizeof(w), "SCRIPT LOAD: unexpected reply");
			ok = false;
		}
		if (r)
			freeReplyObject(r);
	}
	if (!ok) {
		snprintf(why, wlen, "%.100s:%d: %.190s", rc->host, rc->port, w);
		redisFree(c);
		return HQ_EIO;
	}
	rc->c = c;
	return HQ_OK;
}

int rconn_ensure(struct rconn *rc)
{
	if (rc->c)
		return HQ_OK;
	int64_t now = clock_mono_ms();
	if (now < rc->next_try_ms)
		return HQ_EIO;
	char why[320];
	if (connect_master(rc, why, sizeof(why)) != HQ_OK) {
		if (!rc->backoff_ms)
			log_warning("store redis: cannot connect: %s (retrying with backoff)", why);
		rc->backoff_ms = rc->backoff_ms ? rc->backoff_ms * 2 : BACKOFF_MIN_MS;
		if (rc->backoff_ms > BACKOFF_MAX_MS)
			rc->backoff_ms = BACKOFF_MAX_MS;
		rc->next_try_ms = now + rc->backoff_ms;
		set_desc(rc, why);
		return HQ_EIO;
	}
	if (rc->backoff_ms)
		log_notice("store redis: connected to %s:%d again", rc->host, rc->port);
	rc->backoff_ms = 0;
	rc->gen++;
	set_desc(rc, NULL);
	return HQ_OK;
}

static bool starts(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

int rconn_verdict(struct rconn *rc, const redisReply *r)
{
	if (!r) {
		char why[200];
		snprintf(why, sizeof(why), "%s", rc->c && rc->c->errstr[0] ? rc->c->errstr : "I/O error");
		if (rc->c && rc->c->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK))
			snprintf(why, sizeof(why), "no reply within %d ms", rc->timeout_ms);
		rconn_drop(rc, why);
		return HQ_EIO;
	}
	if (r->type != REDIS_REPLY_ERROR)
		return HQ_OK;
	if (starts(r->str, "NOTFOUND"))
		return HQ_ENOTFOUND;
	if (starts(r->str, "READONLY") || starts(r->str, "LOADING") || starts(r->str, "MASTERDOWN") ||
	    starts(r->str, "BUSY") || starts(r->str, "TRYAGAIN") || starts(r->str, "CLUSTERDOWN") ||
	    starts(r->str, "NOAUTH") || starts(r->str, "OOM") || starts(r->str, "NOREPLICAS")) {
		/* not (or no longer) a master that can take writes: find it again */
		char why[200];
		snprintf(why, sizeof(why), "%.190s", r->str);
		rconn_drop(rc, why);
		return HQ_EIO;
	}
	log_error("store redis: %s", r->str);
	return HQ_EINVAL;
}

int rconn_eval(struct rconn *rc, int which, int argc, const char **argv, size_t *lens,
	       redisReply **out)
{
	*out = NULL;
	if (rconn_ensure(rc) != HQ_OK)
		return HQ_EIO;
	/* argv[0..2) are ours: the command and the script */
	argv[0] = "EVALSHA";
	size_t *l = lens;
	l[0] = 7;
	argv[1] = rc->sha[which];
	l[1] = 40;
	redisReply *r = redisCommandArgv(rc->c, argc, argv, lens);
	if (r && r->type == REDIS_REPLY_ERROR && starts(r->str, "NOSCRIPT")) {
		/* flushed (SCRIPT FLUSH, a restart without our reconnect noticing) */
		freeReplyObject(r);
		argv[0] = "EVAL";
		l[0] = 4;
		argv[1] = rscript_text[which];
		l[1] = strlen(rscript_text[which]);
		r = redisCommandArgv(rc->c, argc, argv, lens);
	}
	int rc2 = rconn_verdict(rc, r);
	if (rc2 == HQ_OK)
		*out = r;
	else if (r)
		freeReplyObject(r);
	return rc2;
}

int rconn_pipeline(struct rconn *rc, int n, const int *argc, const char *const *const *argv,
		   const size_t *const *lens, redisReply **out)
{
	if (rconn_ensure(rc) != HQ_OK)
		return HQ_EIO;
	for (int i = 0; i < n; i++)
		if (redisAppendCommandArgv(rc->c, argc[i], (const char **)argv[i], lens[i]) != REDIS_OK)
			return rconn_verdict(rc, NULL);
	for (int i = 0; i < n; i++) {
		void *r = NULL;
		if (redisGetReply(rc->c, &r) != REDIS_OK || !r) {
			for (int j = 0; j < i; j++)
				freeReplyObject(out[j]);
			return rconn_verdict(rc, NULL);
		}
		out[i] = r;
		if (((redisReply *)r)->type == REDIS_REPLY_ERROR && rconn_verdict(rc, r) == HQ_EIO) {
			/* the rest of the replies cannot be trusted: the connection is gone */
			for (int j = 0; j <= i; j++)
				freeReplyObject(out[j]);
			return HQ_EIO;
		}
	}
	return HQ_OK;
}
