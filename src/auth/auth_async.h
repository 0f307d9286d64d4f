/*
 * auth_async.h - the methods that ask a server (HTTP hook, Redis), inside
 * src/auth/ only. The broker sees them through auth.h (auth_connect_async).
 *
 * A request is copied into a struct auth_job on the worker and goes, in the
 * chain's order, through each configured stage: the HTTP hook's thread
 * (auth_http.c, libcurl multi: many calls in flight at once), then the Redis
 * thread (auth_redis.c, one blocking connection). A stage answers each job
 * with auth_async_answer; a definite answer, or the last stage's ignore (the
 * end of the chain decides: job->fallback), goes back through the done
 * callback.
 *
 * Ownership: a job belongs to the stage holding it, then to auth_async_answer,
 * which frees it (the password is wiped first).
 */
#ifndef HQ_AUTH_AUTH_ASYNC_H
#define HQ_AUTH_AUTH_ASYNC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth.h"
#include "core/conf.h"

struct auth_job {
	struct auth_job *next;    /* in the queue of the stage holding it */
	char *client_id;          /* owned */
	char *username;           /* owned; NULL: none */
	char *peerhost;           /* owned */
	uint8_t *password;        /* owned (password_len bytes, NUL after them) */
	size_t password_len;
	bool has_password;
	uint32_t worker;
	uint64_t token;
	int64_t submitted_ms;     /* monotonic */
	int stage;                /* index of the stage holding it */
	bool superuser;           /* set by the stage that allows it as a superuser */
	enum auth_rc fallback;    /* the end of the chain's answer if every stage ignores */
	const char *fallback_why; /* static */
};

/* What a stage says about one job. */
enum auth_verdict { AV_IGNORE = 0, AV_ALLOW, AV_DENY, AV_TIMEOUT };

/* Per method counters (/metrics); any thread adds, relaxed. */
struct auth_mstat {
	const char *name;
	_Atomic uint64_t allow, deny, ignore, timeout;
};
void auth_mstat_count(struct auth_mstat *m, enum auth_verdict v);

struct auth_async;
/* NULL with err "" when no server method is configured; NULL with a message
 * on a bad configuration. Starts the threads. */
struct auth_async *auth_async_new(const struct hq_config *cfg, char *err, size_t errlen);
void auth_async_set_done(struct auth_async *aa, auth_done_fn fn, void *arg);
/* The worker's side: copy r into a job and hand it to the first stage. */
void auth_async_submit(struct auth_async *aa, const struct auth_req *r, uint32_t worker,
		       uint64_t token, enum auth_rc fallback, const char *fallback_why);
/* A stage's answer for j (consumed): the next stage, or the done callback. */
void auth_async_answer(struct auth_async *aa, struct auth_job *j, enum auth_verdict v,
		       const char *why);
void auth_async_stop(struct auth_async *aa);
void auth_async_free(struct auth_async *aa);
void auth_async_metrics(struct auth_async *aa, const char *node, struct buf *out);
void auth_job_free(struct auth_job *j);
int64_t auth_now_ms(void);

/* ---- the stages ---- */
struct auth_http;
struct auth_http *auth_http_new(const struct hq_config *cfg, struct auth_async *aa,
				struct auth_mstat *st, char *err, size_t errlen);
void auth_http_submit(struct auth_http *h, struct auth_job *j);
void auth_http_free(struct auth_http *h);   /* stops and joins its thread first */

struct auth_redis;
struct auth_redis *auth_redis_new(const struct hq_config *cfg, struct auth_async *aa,
				  struct auth_mstat *st, char *err, size_t errlen);
void auth_redis_submit(struct auth_redis *r, struct auth_job *j);
void auth_redis_free(struct auth_redis *r);

/* ---- templates (auth_tmpl.c): ${clientid} ${username} ${password} ${peerhost} ---- */
enum tmpl_esc { TMPL_RAW = 0, TMPL_JSON, TMPL_URL };
/* An owned NUL-terminated string. */
char *auth_tmpl_render(const char *tmpl, const struct auth_job *j, enum tmpl_esc esc);
/* NULL if every ${...} in tmpl is known, else a static message. */
const char *auth_tmpl_check(const char *tmpl);

/* ---- password hashes stored in Redis (auth_hash.c) ---- */
enum auth_hash_alg { AH_PLAIN = 0, AH_SHA256, AH_SHA512, AH_PBKDF2 };
enum auth_salt_pos { AS_PREFIX = 0, AS_SUFFIX, AS_DISABLE };
/* Does password (with salt) give stored? stored: the plain password or the
 * hash in hex (either case); pbkdf2: PBKDF2-HMAC-SHA512 with iter rounds,
 * the derived key as long as stored says. */
bool auth_hash_match(enum auth_hash_alg alg, enum auth_salt_pos pos, uint32_t iter,
		     const uint8_t *password, size_t plen, const char *salt, const char *stored);

/* ---- what a server answered, as a verdict: pure functions (fuzzed) ---- */
/* The HTTP hook's answer: status and body (len bytes, need not be NUL
 * terminated); *superuser set on an allow that says so; why: a log reason;
 * *failed set when the hook misbehaved (a status other than 200/204, a 200
 * without a result), for the outage log (a deliberate ignore is no failure). */
enum auth_verdict auth_http_verdict(long status, const char *body, size_t len, bool *superuser,
				    char *why, size_t wl, bool *failed);
/* The Redis command's reply: which element is which (-1: not asked) and how
 * the stored hash is made (auth.redis.*). Sets j->superuser. */
struct auth_redis_rule {
	int f_hash, f_salt, f_super;
	enum auth_hash_alg alg;
	enum auth_salt_pos salt_pos;
	uint32_t iter;
};
struct redisReply;
enum auth_verdict auth_redis_verdict(const struct auth_redis_rule *rule, const struct redisReply *rep,
				     struct auth_job *j, char *why, size_t wl);

#endif
