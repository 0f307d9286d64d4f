/*
 * auth_redis.c - Redis authentication (auth.redis.*), EMQX's layout: the
 * command (default "HMGET mqtt_user:${username} password_hash salt") returns
 * the stored password hash, and optionally the salt and is_superuser, named
 * by the fields the command lists. No hash (unknown user): ignore, the next
 * method asks; a hash that does not match: deny (bad user name or password).
 *
 * One thread with one blocking hiredis connection (hiredis 0.14's API, as
 * the store uses; every call bounded by auth.redis.timeout), fed by a queue
 * under a mutex. A lost connection is dialled again on the next request,
 * at most once per backoff period (0.5 s doubling to 8 s); meanwhile every
 * request is answered "ignore" at once. The outage is logged once when it
 * starts and once when it ends, not per CONNECT.
 *
 * Arguments are substituted one by one (the command is split on spaces at
 * start), so a user name holding spaces or quotes stays one argument.
 */
#include "auth/auth_async.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MAX_ARGS 16
#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 8000

struct auth_redis {
	struct auth_async *aa;
	/* configuration */
	char host[256];
	int port;
	char *password;
	uint32_t database;
	uint32_t timeout_ms;
	char *args[MAX_ARGS];     /* the command split on spaces (owned) */
	int n_args;
	struct auth_redis_rule rule; /* which reply field is which, how hashes are made */
	/* the queue */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct auth_job *q_head, *q_tail;
	bool stop;
	pthread_t thread;
	bool started;
	/* the thread's own */
	redisContext *c;
	bool down;                /* an outage is in progress (logged) */
	int64_t next_dial_ms;
	uint32_t backoff_ms;
};

static struct timeval tv_of(uint32_t ms)
{
	return (struct timeval){ .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
}

static void went_down(struct auth_redis *r, const char *why)
{
	if (r->c) {
		redisFree(r->c);
		r->c = NULL;
	}
	if (!r->down)
		log_warning("auth: redis %s:%d unavailable: %s; CONNECTs go to the next method "
			    "until it is back", r->host, r->port, why);
	r->down = true;
	r->backoff_ms = r->backoff_ms ? r->backoff_ms * 2 : BACKOFF_MIN_MS;
	if (r->backoff_ms > BACKOFF_MAX_MS)
		r->backoff_ms = BACKOFF_MAX_MS;
	r->next_dial_ms = auth_now_ms() + r->backoff_ms;
}

/* One command on the connection; NULL after went_down. */
static redisReply *command(struct auth_redis *r, int argc, const char **argv, const size_t *lens)
{
	redisReply *rep = redisCommandArgv(r->c, argc, argv, lens);
	if (!rep) {
		char why[160]; /* went_down frees the context holding errstr */
		snprintf(why, sizeof(why), "%s", r->c->errstr[0] ? r->c->errstr : "connection lost");
		went_down(r, why);
		return NULL;
	}
	return rep;
}

static bool dial(struct auth_redis *r)
{
	if (r->c)
		return true;
	if (auth_now_ms() < r->next_dial_ms)
		return false;
	r->c = redisConnectWithTimeout(r->host, r->port, tv_of(r->timeout_ms));
	if (!r->c || r->c->err || redisSetTimeout(r->c, tv_of(r->timeout_ms)) != REDIS_OK) {
		char why[160];
		snprintf(why, sizeof(why), "%s", r->c ? r->c->errstr : "out of memory");
		went_down(r, why);
		return false;
	}
	char db[16];
	snprintf(db, sizeof(db), "%u", r->database);
	const char *auth[2] = { "AUTH", r->password };
	const char *sel[2] = { "SELECT", db };
	for (int k = 0; k < 2; k++) {
		if (k == 0 && !*r->password)
			continue;
		const char **argv = k == 0 ? auth : sel;
		size_t lens[2] = { strlen(argv[0]), strlen(argv[1]) };
		redisReply *rep = command(r, 2, argv, lens);
		if (!rep)
			return false;
		bool err = rep->type == REDIS_REPLY_ERROR;
		char why[160];
		snprintf(why, sizeof(why), "%s: %s", argv[0], err ? rep->str : "");
		freeReplyObject(rep);
		if (err) {
			went_down(r, why);
			return false;
		}
	}
	if (r->down)
		log_notice("auth: redis %s:%d is back", r->host, r->port);
	r->down = false;
	r->backoff_ms = 0;
	return true;
}

static const char *field(const redisReply *rep, int i)
{
	if (i < 0 || rep->type != REDIS_REPLY_ARRAY || (size_t)i >= rep->elements)
		return NULL;
	const redisReply *e = rep->element[i];
	return e->type == REDIS_REPLY_STRING ? e->str : NULL;
}

enum auth_verdict auth_redis_verdict(const struct auth_redis_rule *rule, const struct redisReply *rep,
				     struct auth_job *j, char *why, size_t wl)
{
	const char *hash = field(rep, rule->f_hash);
	if (rep->type == REDIS_REPLY_ERROR) {
		snprintf(why, wl, "redis: %s", rep->str);
		return AV_IGNORE;
	}
	if (!hash) {
		snprintf(why, wl, "redis: no such user");
		return AV_IGNORE;
	}
	if (!j->has_password) {
		snprintf(why, wl, "no password (redis)");
		return AV_DENY;
	}
	const char *salt = field(rep, rule->f_salt);
	bool ok = auth_hash_match(rule->alg, rule->salt_pos, rule->iter, j->password, j->password_len,
				  salt ? salt : "", hash);
	snprintf(why, wl, ok ? "redis" : "wrong password (redis)");
	const char *su = field(rep, rule->f_super);
	j->superuser = ok && su && (!strcmp(su, "1") || !strcasecmp(su, "true"));
	return ok ? AV_ALLOW : AV_DENY;
}

static enum auth_verdict check(struct auth_redis *r, struct auth_job *j, char *why, size_t wl)
{
	if (!j->username) {
		snprintf(why, wl, "redis: no user name");
		return AV_IGNORE;
	}
	if (!dial(r)) {
		snprintf(why, wl, "redis: unavailable");
		return AV_IGNORE;
	}
	const char *argv[MAX_ARGS];
	size_t lens[MAX_ARGS];
	char *own[MAX_ARGS];
	for (int i = 0; i < r->n_args; i++) {
		own[i] = auth_tmpl_render(r->args[i], j, TMPL_RAW);
		argv[i] = own[i];
		lens[i] = strlen(own[i]);
	}
	redisReply *rep = command(r, r->n_args, argv, lens);
	for (int i = 0; i < r->n_args; i++)
		hq_free(own[i]);
	if (!rep) {
		snprintf(why, wl, "redis: unavailable");
		return AV_IGNORE;
	}
	enum auth_verdict v = auth_redis_verdict(&r->rule, rep, j, why, wl);
	freeReplyObject(rep);
	return v;
}

static void *redis_main(void *arg)
{
	struct auth_redis *r = arg;
	pthread_mutex_lock(&r->lock);
	for (;;) {
		while (!r->q_head && !r->stop)
			pthread_cond_wait(&r->cond, &r->lock);
		if (r->stop)
			break;
		struct auth_job *j = r->q_head;
		r->q_head = j->next;
		if (!r->q_head)
			r->q_tail = NULL;
		pthread_mutex_unlock(&r->lock);
		j->next = NULL;
		char why[160];
		enum auth_verdict v = check(r, j, why, sizeof(why));
		auth_async_answer(r->aa, j, v, why);
		pthread_mutex_lock(&r->lock);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/* Split the command; find which reply element is which field. */
static int parse_cmd(struct auth_redis *r, const char *cmd, char *err, size_t errlen)
{
	char *dup = hq_strdup(cmd);
	char *save = NULL;
	for (char *t = strtok_r(dup, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
		if (r->n_args == MAX_ARGS) {
			snprintf(err, errlen, "auth.redis.cmd: more than %d words", MAX_ARGS);
			hq_free(dup);
			return -1;
		}
		r->args[r->n_args++] = hq_strdup(t);
	}
	hq_free(dup);
	r->rule.f_hash = r->rule.f_salt = r->rule.f_super = -1;
	if (r->n_args < 3 || strcasecmp(r->args[0], "HMGET")) {
		snprintf(err, errlen, "auth.redis.cmd: expected HMGET <key> password_hash [salt] "
			 "[is_superuser]");
		return -1;
	}
	for (int i = 2; i < r->n_args; i++) {
		if (!strcmp(r->args[i], "password_hash") || !strcmp(r->args[i], "password"))
			r->rule.f_hash = i - 2;
		else if (!strcmp(r->args[i], "salt"))
			r->rule.f_salt = i - 2;
		else if (!strcmp(r->args[i], "is_superuser"))
			r->rule.f_super = i - 2;
	}
	const char *bad = NULL;
	for (int i = 0; i < r->n_args && !bad; i++)
		bad = auth_tmpl_check(r->args[i]);
	if (r->rule.f_hash < 0 || bad) {
		snprintf(err, errlen, "auth.redis.cmd: %s", bad ? bad : "no password_hash field");
		return -1;
	}
	return 0;
}

struct auth_redis *auth_redis_new(const struct hq_config *cfg, struct auth_async *aa,
				  struct auth_mstat *st, char *err, size_t errlen)
{
	(void)st; /* counted by auth_async_answer */
	struct auth_redis *r = hq_calloc(1, sizeof(*r));
	r->aa = aa;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	r->password = hq_strdup(cfg->auth_redis_password ? cfg->auth_redis_password : "");
	r->database = cfg->auth_redis_database;
	r->timeout_ms = cfg->auth_redis_timeout * 1000;
	r->rule.alg = (enum auth_hash_alg)cfg->auth_redis_password_hash;
	r->rule.salt_pos = (enum auth_salt_pos)cfg->auth_redis_salt_position;
	r->rule.iter = cfg->auth_redis_pbkdf2_iterations;
	if (conf_parse_hostport(cfg->auth_redis_server, r->host, sizeof(r->host), &r->port) != HQ_OK) {
		snprintf(err, errlen, "auth.redis.server: \"%s\" is not host:port", cfg->auth_redis_server);
		goto fail;
	}
	if (parse_cmd(r, cfg->auth_redis_cmd, err, errlen))
		goto fail;
	if (pthread_create(&r->thread, NULL, redis_main, r)) {
		snprintf(err, errlen, "auth.redis: cannot start its thread");
		goto fail;
	}
	r->started = true;
	log_info("auth: redis %s:%d db %u, %s hashes", r->host, r->port, r->database,
		 (const char *[]){ "plain", "sha256", "sha512", "pbkdf2" }[r->rule.alg]);
	return r;
fail:
	auth_redis_free(r);
	return NULL;
}

void auth_redis_submit(struct auth_redis *r, struct auth_job *j)
{
	j->next = NULL;
	pthread_mutex_lock(&r->lock);
	if (r->q_tail)
		r->q_tail->next = j;
	else
		r->q_head = j;
	r->q_tail = j;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

void auth_redis_free(struct auth_redis *r)
{
	if (!r)
		return;
	if (r->started) {
		pthread_mutex_lock(&r->lock);
		r->stop = true;
		pthread_cond_signal(&r->cond);
		pthread_mutex_unlock(&r->lock);
		pthread_join(r->thread, NULL);
	}
	while (r->q_head) {
		struct auth_job *n = r->q_head->next;
		auth_job_free(r->q_head);
		r->q_head = n;
	}
	if (r->c)
		redisFree(r->c);
	for (int i = 0; i < r->n_args; i++)
		hq_free(r->args[i]);
	if (r->password)
		explicit_bzero(r->password, strlen(r->password));
	hq_free(r->password);
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
	hq_free(r);
}
