/*
 * auth_chain.c - the authentication chain (auth.h) and the per-client ACL
 * context with its decision cache.
 */
#include "auth/auth.h"
#include "auth/auth_jwt.h"
#include "auth/auth_passwd.h"
#include "auth/auth_scram.h"
#include "auth/auth_async.h"
#include "auth/auth_builtin.h"
#include "auth/auth_acldb.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <uthash.h>

/* One method of the chain. check answers METHOD_IGNORE when it has nothing
 * to say about the client (the next method is asked). */
enum method_answer { METHOD_IGNORE = 0, METHOD_ALLOW, METHOD_DENY_CREDENTIALS, METHOD_DENY_NOT_AUTHORIZED };
struct auth_method {
	const char *name;
	enum method_answer (*check)(struct auth *a, const struct auth_req *r, const char **why);
};

struct auth {
	pthread_rwlock_t lock;     /* guards pw and acl (the pointers) */
	struct passwd_db *pw;      /* owned; NULL: no password file */
	struct acl_rules *acl;     /* one reference; NULL: no ACL file */
	char *password_file;       /* owned copies of the configuration */
	char *acl_file;
	bool allow_anonymous;
	bool no_match_allow;
	struct auth_jwt *jwt;      /* owned; NULL: no auth.jwt.* key set */
	/* the built-in user database (auth_builtin.c; owned, made by
	 * auth_set_repl); builtin_in_chain: auth.builtin_db.enable */
	struct auth_builtin *builtin;
	bool builtin_in_chain;
	/* ACL rules of the built-in database (auth_acldb.c; owned, made by
	 * auth_set_repl); NULL before */
	struct auth_acldb *acldb;
	const struct auth_method *methods[4];
	int n_methods;
	/* the methods that ask a server, on their own threads (owned; NULL:
	 * none configured), and the in-process methods' counters by index */
	struct auth_async *async;
	struct auth_mstat mstat[4];
};

static enum method_answer passwd_check(struct auth *a, const struct auth_req *r, const char **why)
{
	if (!r->username)
		return METHOD_IGNORE;
	pthread_rwlock_rdlock(&a->lock);
	enum passwd_result pr = passwd_db_check(a->pw, r->username,
						r->has_password ? r->password : (const uint8_t *)"",
						r->has_password ? r->password_len : 0);
	pthread_rwlock_unlock(&a->lock);
	if (pr == PASSWD_UNKNOWN_USER)
		return METHOD_IGNORE;
	if (pr == PASSWD_OK && r->has_password) {
		*why = "password file";
		return METHOD_ALLOW;
	}
	*why = r->has_password ? "wrong password (password file)" : "no password (password file)";
	return METHOD_DENY_CREDENTIALS;
}

static const struct auth_method method_passwd = { "password_file", passwd_check };

static enum method_answer jwt_check(struct auth *a, const struct auth_req *r, const char **why)
{
	struct jwt_cred cr = { .client_id = r->client_id, .username = r->username,
			       .password = r->password, .password_len = r->password_len,
			       .has_password = r->has_password };
	struct jwt_outcome o = { 0 };
	enum jwt_answer ans = auth_jwt_check(a->jwt, &cr, &o, why);
	if (r->out) {
		r->out->replace_username = o.token_in_username;
		r->out->username = o.username;
		r->out->acl = o.acl;
	} else {
		hq_free(o.username);
		acl_unref(o.acl);
	}
	if (ans == JWT_NOT_MINE)
		return METHOD_IGNORE;
	return ans == JWT_VALID ? METHOD_ALLOW : METHOD_DENY_CREDENTIALS;
}

static const struct auth_method method_jwt = { "jwt", jwt_check };

static enum method_answer builtin_check(struct auth *a, const struct auth_req *r, const char **why)
{
	if (!r->username || !auth_builtin_active(a->builtin))
		return METHOD_IGNORE;
	bool su = false;
	enum auth_builtin_verdict v = auth_builtin_check(a->builtin, r->username,
		r->has_password ? r->password : (const uint8_t *)"", r->has_password ? r->password_len : 0, &su);
	if (v == AB_UNKNOWN)
		return METHOD_IGNORE;
	if (v == AB_OK && r->has_password) {
		*why = su ? "built-in database (superuser)" : "built-in database";
		if (r->out)
			r->out->superuser = su;
		return METHOD_ALLOW;
	}
	*why = r->has_password ? "wrong password (built-in database)" : "no password (built-in database)";
	return METHOD_DENY_CREDENTIALS;
}

static const struct auth_method method_builtin = { "built_in_database", builtin_check };

/* Methods that take part now: the built-in database only while it has users. */
static int n_active(const struct auth *a)
{
	return a->n_methods - (a->builtin_in_chain && !auth_builtin_active(a->builtin));
}

void auth_set_repl(struct auth *a, struct repl *r)
{
	a->builtin = auth_builtin_new(r);
	a->acldb = auth_acldb_new(r);
}

struct auth_acldb *auth_acl_db(struct auth *a)
{
	return a ? a->acldb : NULL;
}

struct auth_builtin *auth_builtin_db(struct auth *a)
{
	return a ? a->builtin : NULL;
}

/* How long one check of the slowest entry takes: warn when a worker would
 * stall noticeably on each CONNECT (a file made with a large -I). */
static void warn_slow(const struct passwd_db *db, const char *path)
{
	uint32_t it = passwd_db_max_iter(db);
	if (it <= PASSWD_INLINE_ITER)
		return;
	struct passwd_hash h = { .type = 7, .iter = it, .salt_len = PASSWD_SALT_LEN };
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	(void)passwd_hash_verify(&h, (const uint8_t *)"x", 1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	log_warning("%s: an entry uses %u PBKDF2 iterations: each CONNECT of it costs %.1f ms "
		    "of a worker's loop (checks run inline; mosquitto_passwd's default is %d)",
		    path, it, ms, PASSWD_DEFAULT_ITER);
}

/* Read both files; on success the new tables are in *pw / *acl. */
static int load_files(const struct auth *a, struct passwd_db **pw, struct acl_rules **acl,
		      char *err, size_t errlen)
{
	*pw = NULL;
	*acl = NULL;
	if (a->password_file) {
		*pw = passwd_db_load(a->password_file, err, errlen);
		if (!*pw)
			return HQ_EINVAL;
		warn_slow(*pw, a->password_file);
	}
	if (a->acl_file) {
		*acl = acl_load(a->acl_file, err, errlen);
		if (!*acl) {
			passwd_db_free(*pw);
			*pw = NULL;
			return HQ_EINVAL;
		}
	}
	return HQ_OK;
}

struct auth *auth_new(const struct hq_config *cfg, char *err, size_t errlen)
{
	struct auth *a = hq_calloc(1, sizeof(*a));
	pthread_rwlock_init(&a->lock, NULL);
	a->allow_anonymous = cfg->auth_allow_anonymous;
	a->no_match_allow = cfg->auth_acl_no_match == CONF_ACL_ALLOW;
	if (cfg->auth_password_file && *cfg->auth_password_file)
		a->password_file = hq_strdup(cfg->auth_password_file);
	if (cfg->auth_acl_file && *cfg->auth_acl_file)
		a->acl_file = hq_strdup(cfg->auth_acl_file);
	if (load_files(a, &a->pw, &a->acl, err, errlen) != HQ_OK) {
		auth_free(a);
		return NULL;
	}
	if (a->pw)
		a->methods[a->n_methods++] = &method_passwd;
	if (cfg->auth_builtin_db_enable) {
		a->methods[a->n_methods++] = &method_builtin;
		a->builtin_in_chain = true;
	}
	if (auth_jwt_configured(cfg)) {
		if (!(a->jwt = auth_jwt_new(cfg, err, errlen))) {
			auth_free(a);
			return NULL;
		}
		a->methods[a->n_methods++] = &method_jwt;
	}
	if (a->pw)
		log_info("auth: password file %s: %u users", a->password_file, passwd_db_count(a->pw));
	a->async = auth_async_new(cfg, err, errlen);
	if (!a->async && err[0]) {
		auth_free(a);
		return NULL;
	}
	if (a->acl)
		log_info("auth: ACL file %s, no match = %s", a->acl_file,
			 a->no_match_allow ? "allow" : "deny");
	return a;
}

void auth_free(struct auth *a)
{
	if (!a)
		return;
	auth_async_free(a->async);
	auth_jwt_free(a->jwt);
	auth_builtin_free(a->builtin);
	auth_acldb_free(a->acldb);
	passwd_db_free(a->pw);
	acl_unref(a->acl);
	hq_free(a->password_file);
	hq_free(a->acl_file);
	pthread_rwlock_destroy(&a->lock);
	hq_free(a);
}

int auth_reload(struct auth *a, char *err, size_t errlen)
{
	struct passwd_db *pw;
	struct acl_rules *acl;
	/* each source on its own: a bad JWKS file does not hold back the
	 * password file (the first error is the one reported) */
	int jrc = a->jwt ? auth_jwt_reload(a->jwt, err, errlen) : HQ_OK;
	if (!a->password_file && !a->acl_file)
		return jrc;
	if (load_files(a, &pw, &acl, err, errlen) != HQ_OK)
		return HQ_EINVAL;
	pthread_rwlock_wrlock(&a->lock);
	struct passwd_db *old_pw = a->pw;
	struct acl_rules *old_acl = a->acl;
	a->pw = pw;
	a->acl = acl;
	pthread_rwlock_unlock(&a->lock);
	passwd_db_free(old_pw);
	acl_unref(old_acl); /* connections keep theirs until they close */
	if (pw)
		log_notice("auth: reloaded password file %s: %u users", a->password_file,
			   passwd_db_count(pw));
	if (acl)
		log_notice("auth: reloaded ACL file %s (for new connections)", a->acl_file);
	return jrc;
}

/* Enhanced authentication (auth_ext.c): user's password file entry, copied
 * under the read lock (the table may be swapped by a reload meanwhile).
 * 1: found; 0: no such user or no file. *max_iter: the largest $7$ count
 * in the file (a decoy's for unknown users). */
int auth_passwd_entry(struct auth *a, const char *user, struct passwd_hash *out, uint32_t *max_iter)
{
	int found = 0;
	*max_iter = 0;
	pthread_rwlock_rdlock(&a->lock);
	if (a->pw) {
		found = passwd_db_lookup(a->pw, user, out);
		*max_iter = passwd_db_max_iter(a->pw);
	}
	pthread_rwlock_unlock(&a->lock);
	return found;
}

bool auth_has_passwd(struct auth *a)
{
	return a->password_file != NULL;
}

const char *const auth_jwt_result_names[AUTH_JWT_RESULTS] = {
	"success", "expired", "signature", "algorithm", "unknown_kid", "claims", "malformed", "acl_claim",
};
_Static_assert(AUTH_JWT_RESULTS == JWT_R_N, "auth_jwt_result_names");

void auth_jwt_results(const struct auth *a, uint64_t out[AUTH_JWT_RESULTS])
{
	memset(out, 0, AUTH_JWT_RESULTS * sizeof(out[0]));
	if (a && a->jwt)
		auth_jwt_counts(a->jwt, out);
}

bool auth_connect_needed(const struct auth *a)
{
	return n_active(a) > 0 || !a->allow_anonymous || a->async;
}

/* The in-process methods in order: true and *rc when one decided. */
static bool run_methods(struct auth *a, const struct auth_req *r, const char **why, enum auth_rc *rc)
{
	for (int i = 0; i < a->n_methods; i++) {
		enum method_answer m = a->methods[i]->check(a, r, why);
		auth_mstat_count(&a->mstat[i], m == METHOD_ALLOW ? AV_ALLOW :
					       m == METHOD_IGNORE ? AV_IGNORE : AV_DENY);
		if (m != METHOD_ALLOW && r->out && r->out->acl) {
			acl_unref(r->out->acl); /* rules only ever come with an allow */
			r->out->acl = NULL;
		}
		switch (m) {
		case METHOD_IGNORE:
			continue;
		case METHOD_ALLOW:
			*rc = AUTH_ALLOW;
			return true;
		case METHOD_DENY_CREDENTIALS:
			*rc = AUTH_BAD_CREDENTIALS;
			return true;
		case METHOD_DENY_NOT_AUTHORIZED:
			*rc = AUTH_NOT_AUTHORIZED;
			return true;
		}
	}
	return false;
}

/* No method decided: anonymous clients by auth.allow_anonymous, a user name
 * by whether any credentials method is configured. */
static enum auth_rc chain_end(const struct auth *a, const struct auth_req *r, const char **why)
{
	if (r->username && (n_active(a) > 0 || a->async)) {
		*why = "unknown user name";
		return AUTH_BAD_CREDENTIALS;
	}
	if (a->allow_anonymous) {
		*why = "anonymous";
		return AUTH_ALLOW;
	}
	*why = "anonymous clients not allowed (auth.allow_anonymous = false)";
	return AUTH_NOT_AUTHORIZED;
}

enum auth_rc auth_connect(struct auth *a, const struct auth_req *r, const char **why)
{
	enum auth_rc rc;
	if (run_methods(a, r, why, &rc))
		return rc;
	return chain_end(a, r, why);
}

enum auth_rc auth_connect_async(struct auth *a, const struct auth_req *r, uint32_t worker,
				uint64_t token, const char **why)
{
	enum auth_rc rc;
	if (run_methods(a, r, why, &rc))
		return rc;
	rc = chain_end(a, r, why);
	if (!a->async)
		return rc;
	/* the end of the chain's answer travels with the request: it applies
	 * if every server method ignores the client */
	auth_async_submit(a->async, r, worker, token, rc, *why);
	*why = "pending";
	return AUTH_PENDING;
}

void auth_set_done(struct auth *a, auth_done_fn fn, void *arg)
{
	if (a->async)
		auth_async_set_done(a->async, fn, arg);
}

void auth_stop(struct auth *a)
{
	if (a)
		auth_async_stop(a->async);
}

void auth_metrics(struct auth *a, const char *node, struct buf *out)
{
	static const char head[] =
		"# HELP hamqtt_auth_method_total Answers of each authentication method: allow, deny, "
		"ignore (the next method asked) and timeout (a server method too slow; then ignored).\n"
		"# TYPE hamqtt_auth_method_total counter\n";
	buf_append(out, head, sizeof(head) - 1);
	char line[256];
	for (int i = 0; i < a->n_methods; i++) {
		const struct auth_mstat *m = &a->mstat[i];
		const char *res[3] = { "allow", "deny", "ignore" };
		uint64_t v[3] = { atomic_load(&m->allow), atomic_load(&m->deny), atomic_load(&m->ignore) };
		for (int k = 0; k < 3; k++) {
			int n = snprintf(line, sizeof(line),
					 "hamqtt_auth_method_total{node=\"%s\",method=\"%s\",result=\"%s\"} %" PRIu64 "\n",
					 node, a->methods[i]->name, res[k], v[k]);
			if (n > 0 && (size_t)n < sizeof(line))
				buf_append(out, line, (size_t)n);
		}
	}
	if (a->async)
		auth_async_metrics(a->async, node, out);
}

/* ---- per-client ACL context ---- */

#define ACL_CACHE_MAX 1024    /* topics remembered per client; then the cache restarts */

struct acl_cached {
	UT_hash_handle hh;
	uint8_t known;            /* ACL_READ / ACL_WRITE bits decided */
	uint8_t allowed;          /* of those, allowed */
	char topic[];
};

struct auth_client {
	struct acl_rules *own;    /* reference; NULL: none (a JWT's claims) */
	struct acl_rules *db;     /* reference; NULL: none (the built-in database's) */
	struct acl_rules *rules;  /* reference; NULL: no ACL file */
	char *username;           /* owned, NULL = anonymous */
	char *client_id;          /* owned */
	bool no_match_allow;
	uint32_t n_cached;
	uint64_t hits;
	struct acl_cached *cache; /* uthash by topic */
};

struct auth_client *auth_client_new(struct auth *a, const char *username, const char *client_id,
				    struct acl_rules **own)
{
	if (!a)
		return NULL;
	/* an atomic count when the database holds no rule: no cost then */
	struct acl_rules *db = auth_acldb_rules_for(a->acldb, username, client_id);
	if (!a->acl_file && !(own && *own) && !db)
		return NULL;
	struct auth_client *ac = hq_calloc(1, sizeof(*ac));
	ac->db = db;
	if (own) {
		ac->own = *own;
		*own = NULL;
	}
	pthread_rwlock_rdlock(&a->lock);
	ac->rules = a->acl ? acl_ref(a->acl) : NULL;
	pthread_rwlock_unlock(&a->lock);
	ac->username = username ? hq_strdup(username) : NULL;
	ac->client_id = hq_strdup(client_id ? client_id : "");
	ac->no_match_allow = a->no_match_allow;
	return ac;
}

static void cache_clear(struct auth_client *ac)
{
	struct acl_cached *e, *t;
	HASH_ITER(hh, ac->cache, e, t) {
		HASH_DEL(ac->cache, e);
		hq_free(e);
	}
	ac->n_cached = 0;
}

void auth_client_free(struct auth_client *ac)
{
	if (!ac)
		return;
	cache_clear(ac);
	acl_unref(ac->own);
	acl_unref(ac->db);
	acl_unref(ac->rules);
	hq_free(ac->username);
	hq_free(ac->client_id);
	hq_free(ac);
}

static bool decide(const struct auth_client *ac, unsigned access, const char *what, size_t len,
		   bool is_filter)
{
	char stack[256];
	char *z = len < sizeof(stack) ? stack : hq_malloc(len + 1);
	memcpy(z, what, len);
	z[len] = 0;
	/* the client's own rules (a JWT's claims) first, then the built-in
	 * database's (client id, user name, all), then the file's */
	enum acl_verdict v = ACL_NO_MATCH;
	if (ac->own)
		v = acl_check(ac->own, ac->username, ac->client_id, access, z, is_filter);
	if (v == ACL_NO_MATCH && ac->db)
		v = acl_check(ac->db, ac->username, ac->client_id, access, z, is_filter);
	if (v == ACL_NO_MATCH && ac->rules)
		v = acl_check(ac->rules, ac->username, ac->client_id, access, z, is_filter);
	if (z != stack)
		hq_free(z);
	return v == ACL_ALLOW || (v == ACL_NO_MATCH && ac->no_match_allow);
}

bool auth_client_allow(struct auth_client *ac, unsigned access, const char *topic, size_t n,
		       bool is_filter)
{
	if (is_filter)
		return decide(ac, access, topic, n, true);
	struct acl_cached *e;
	HASH_FIND(hh, ac->cache, topic, n, e);
	if (e && (e->known & access)) {
		ac->hits++;
		return (e->allowed & access) != 0;
	}
	bool ok = decide(ac, access, topic, n, false);
	if (!e) {
		if (ac->n_cached >= ACL_CACHE_MAX)
			cache_clear(ac);
		e = hq_calloc(1, sizeof(*e) + n + 1);
		memcpy(e->topic, topic, n);
		HASH_ADD_KEYPTR(hh, ac->cache, e->topic, n, e);
		ac->n_cached++;
	}
	e->known |= (uint8_t)access;
	if (ok)
		e->allowed |= (uint8_t)access;
	return ok;
}

uint64_t auth_client_cache_hits(const struct auth_client *ac)
{
	return ac->hits;
}
