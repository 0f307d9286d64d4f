/*
 * auth_async.c - the server methods' pipeline (auth_async.h): jobs in, the
 * stages in the chain's order (HTTP hook, then Redis), answers out through
 * the done callback. Owns the stages and their counters.
 */
#include "auth/auth_async.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/mem.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

enum { STAGE_HTTP = 0, STAGE_REDIS, STAGE_N };

struct auth_async {
	struct auth_http *http;   /* owned; NULL: not configured */
	struct auth_redis *redis; /* owned; NULL: not configured */
	auth_done_fn done;        /* set before the first job, read-only after */
	void *done_arg;
	struct auth_mstat st[STAGE_N];
};

int64_t auth_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void auth_mstat_count(struct auth_mstat *m, enum auth_verdict v)
{
	_Atomic uint64_t *f = v == AV_ALLOW ? &m->allow : v == AV_DENY ? &m->deny :
			      v == AV_TIMEOUT ? &m->timeout : &m->ignore;
	atomic_fetch_add_explicit(f, 1, memory_order_relaxed);
}

struct auth_async *auth_async_new(const struct hq_config *cfg, char *err, size_t errlen)
{
	err[0] = 0;
	bool http = cfg->auth_http_url && *cfg->auth_http_url;
	bool redis = cfg->auth_redis_server && *cfg->auth_redis_server;
	if (!http && !redis)
		return NULL;
	struct auth_async *aa = hq_calloc(1, sizeof(*aa));
	/* a name marks a configured method (read by /metrics, set once here) */
	aa->st[STAGE_HTTP].name = http ? "http" : NULL;
	aa->st[STAGE_REDIS].name = redis ? "redis" : NULL;
	if (http && !(aa->http = auth_http_new(cfg, aa, &aa->st[STAGE_HTTP], err, errlen)))
		goto fail;
	if (redis && !(aa->redis = auth_redis_new(cfg, aa, &aa->st[STAGE_REDIS], err, errlen)))
		goto fail;
	return aa;
fail:
	auth_async_free(aa);
	return NULL;
}

void auth_async_set_done(struct auth_async *aa, auth_done_fn fn, void *arg)
{
	aa->done = fn;
	aa->done_arg = arg;
}

void auth_job_free(struct auth_job *j)
{
	if (!j)
		return;
	if (j->password) {
		explicit_bzero(j->password, j->password_len);
		hq_free(j->password);
	}
	hq_free(j->client_id);
	hq_free(j->username);
	hq_free(j->peerhost);
	hq_free(j);
}

/* Hand j to the first configured stage at or after `from`; false: none left. */
static bool to_stage(struct auth_async *aa, struct auth_job *j, int from)
{
	if (from <= STAGE_HTTP && aa->http) {
		j->stage = STAGE_HTTP;
		auth_http_submit(aa->http, j);
		return true;
	}
	if (from <= STAGE_REDIS && aa->redis) {
		j->stage = STAGE_REDIS;
		auth_redis_submit(aa->redis, j);
		return true;
	}
	return false;
}

static void finish(struct auth_async *aa, struct auth_job *j, enum auth_rc rc, const char *why)
{
	struct auth_answer *ans = hq_calloc(1, sizeof(*ans));
	ans->token = j->token;
	ans->worker = j->worker;
	ans->rc = rc;
	ans->superuser = rc == AUTH_ALLOW && j->superuser;
	snprintf(ans->why, sizeof(ans->why), "%s", why);
	auth_job_free(j);
	if (aa->done)
		aa->done(aa->done_arg, ans); /* the callee's now */
	else
		hq_free(ans);
}

void auth_async_submit(struct auth_async *aa, const struct auth_req *r, uint32_t worker,
		       uint64_t token, enum auth_rc fallback, const char *fallback_why)
{
	struct auth_job *j = hq_calloc(1, sizeof(*j));
	j->client_id = hq_strdup(r->client_id ? r->client_id : "");
	j->username = r->username ? hq_strdup(r->username) : NULL;
	j->peerhost = hq_strdup(r->peerhost ? r->peerhost : "");
	j->has_password = r->has_password;
	j->password_len = r->has_password ? r->password_len : 0;
	j->password = hq_malloc(j->password_len + 1);
	if (j->password_len)
		memcpy(j->password, r->password, j->password_len);
	j->password[j->password_len] = 0;
	j->worker = worker;
	j->token = token;
	j->submitted_ms = auth_now_ms();
	j->fallback = fallback;
	j->fallback_why = fallback_why;
	if (!to_stage(aa, j, 0))
		finish(aa, j, fallback, fallback_why);
}

void auth_async_answer(struct auth_async *aa, struct auth_job *j, enum auth_verdict v,
		       const char *why)
{
	auth_mstat_count(&aa->st[j->stage], v);
	if (v == AV_ALLOW) {
		finish(aa, j, AUTH_ALLOW, why);
		return;
	}
	if (v == AV_DENY) {
		finish(aa, j, AUTH_BAD_CREDENTIALS, why);
		return;
	}
	/* ignore, timeout, error: the next method (EMQX's "ignore"). Each
	 * stage logs its outages itself, once each (auth_http.c outage_note,
	 * auth_redis.c): per CONNECT only at debug, or a failing hook under
	 * load would write a line per CONNECT. */
	log_debug("auth: %s for client_id=%s: next method", why, j->client_id);
	if (to_stage(aa, j, j->stage + 1))
		return;
	/* the end of the chain decides; a refusal says what the last method said */
	char buf[sizeof(((struct auth_answer *)0)->why)];
	snprintf(buf, sizeof(buf), "%s (%s)", j->fallback_why, why);
	finish(aa, j, j->fallback, j->fallback == AUTH_ALLOW ? j->fallback_why : buf);
}

void auth_async_stop(struct auth_async *aa)
{
	if (!aa)
		return;
	/* the HTTP stage hands jobs to Redis: it stops first */
	auth_http_free(aa->http);
	aa->http = NULL;
	auth_redis_free(aa->redis);
	aa->redis = NULL;
}

void auth_async_free(struct auth_async *aa)
{
	if (!aa)
		return;
	auth_async_stop(aa);
	hq_free(aa);
}

void auth_async_metrics(struct auth_async *aa, const char *node, struct buf *out)
{
	char line[256];
	for (int i = 0; i < STAGE_N; i++) {
		struct auth_mstat *m = &aa->st[i];
		if (!m->name)
			continue;
		const char *res[4] = { "allow", "deny", "ignore", "timeout" };
		uint64_t v[4] = { atomic_load(&m->allow), atomic_load(&m->deny),
				  atomic_load(&m->ignore), atomic_load(&m->timeout) };
		for (int k = 0; k < 4; k++) {
			int n = snprintf(line, sizeof(line),
					 "hamqtt_auth_method_total{node=\"%s\",method=\"%s\",result=\"%s\"} %" PRIu64 "\n",
					 node, m->name, res[k], v[k]);
			if (n > 0 && (size_t)n < sizeof(line))
				buf_append(out, line, (size_t)n);
		}
	}
}
