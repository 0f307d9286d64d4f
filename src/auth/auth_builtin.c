/*
 * auth_builtin.c - the built-in user database (auth_builtin.h) on the
 * replicated table "authdb": key = user id, value = "S$7$..." where S is
 * '1' for a superuser, '0' otherwise, followed by the password's hash.
 */
#include "auth/auth_builtin.h"
#include "auth/auth_passwd.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "repl/repl.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define HASH_MAX 256

struct auth_builtin {
	struct repl_table *t;
};

struct auth_builtin *auth_builtin_new(struct repl *r)
{
	struct repl_table *t = repl_table(r, "authdb");
	if (!t)
		return NULL;
	struct auth_builtin *db = hq_calloc(1, sizeof(*db));
	db->t = t;
	if (repl_count_hint(t))
		log_info("auth: built-in database: %zu users", repl_count_hint(t));
	return db;
}

void auth_builtin_free(struct auth_builtin *db)
{
	if (!db)
		return;
	hq_free(db);
}

bool auth_builtin_active(const struct auth_builtin *db)
{
	return db && repl_count_hint(db->t) > 0;
}

static bool id_ok(const char *user)
{
	size_t n = user ? strlen(user) : 0;
	return n >= 1 && n <= AUTH_BUILTIN_ID_MAX;
}

/* the stored value of user: a copy (caller frees), or NULL */
static char *lookup(struct auth_builtin *db, const char *user)
{
	uint8_t *v;
	size_t n;
	if (!id_ok(user) || repl_get(db->t, user, strlen(user), &v, &n) != HQ_OK)
		return NULL;
	if (n < 2 || (v[0] != '0' && v[0] != '1')) {
		hq_free(v);
		return NULL;
	}
	return (char *)v;
}

enum auth_builtin_verdict auth_builtin_check(struct auth_builtin *db, const char *user,
					     const uint8_t *pw, size_t pwlen, bool *superuser)
{
	char *v = lookup(db, user);
	if (!v)
		return AB_UNKNOWN;
	struct passwd_hash h;
	const char *why;
	bool ok = passwd_hash_parse(v + 1, strlen(v + 1), &h, &why) == 0 &&
		  passwd_hash_verify(&h, pw, pwlen);
	*superuser = v[0] == '1';
	hq_free(v);
	return ok ? AB_OK : AB_WRONG;
}

static int store(struct auth_builtin *db, const char *user, const char *hash, bool superuser)
{
	char v[HASH_MAX + 2];
	int n = snprintf(v, sizeof(v), "%c%s", superuser ? '1' : '0', hash);
	int rc = repl_put(db->t, user, strlen(user), v, (size_t)n, 0);
	return rc == HQ_EIO ? HQ_OK : rc;   /* held and replicated; the file error is logged */
}

static int make_hash(const char *pw, char out[HASH_MAX], const char **why)
{
	size_t n = strlen(pw);
	if (n < 1 || n > AUTH_BUILTIN_PW_MAX) {
		*why = "password must be 1..1024 bytes";
		return HQ_EINVAL;
	}
	if (passwd_hash_make((const uint8_t *)pw, n, AUTH_BUILTIN_ITER, out, HASH_MAX) != 0) {
		*why = "cannot hash the password (no random bytes)";
		return HQ_EIO;
	}
	return HQ_OK;
}

int auth_builtin_add(struct auth_builtin *db, const char *user, const char *pw, bool superuser,
		     const char **why)
{
	char hash[HASH_MAX];
	if (!id_ok(user)) {
		*why = "user_id must be 1..255 bytes";
		return HQ_EINVAL;
	}
	char *old = lookup(db, user);
	if (old) {
		hq_free(old);
		*why = "user already exists";
		return HQ_EEXIST;
	}
	int rc = make_hash(pw ? pw : "", hash, why);
	return rc ? rc : store(db, user, hash, superuser);
}

int auth_builtin_update(struct auth_builtin *db, const char *user, const char *pw, int superuser,
			const char **why)
{
	char *old = lookup(db, user);
	if (!old)
		return HQ_ENOTFOUND;
	char hash[HASH_MAX];
	snprintf(hash, sizeof(hash), "%s", old + 1);
	bool su = superuser < 0 ? old[0] == '1' : superuser > 0;
	hq_free(old);
	if (pw) {
		int rc = make_hash(pw, hash, why);
		if (rc)
			return rc;
	}
	return store(db, user, hash, su);
}

int auth_builtin_delete(struct auth_builtin *db, const char *user)
{
	if (!id_ok(user))
		return HQ_ENOTFOUND;
	int rc = repl_del(db->t, user, strlen(user));
	return rc == HQ_EIO ? HQ_OK : rc;
}

int auth_builtin_get(struct auth_builtin *db, const char *user, bool *superuser)
{
	char *v = lookup(db, user);
	if (!v)
		return HQ_ENOTFOUND;
	*superuser = v[0] == '1';
	hq_free(v);
	return HQ_OK;
}

struct lister {
	size_t offset, limit, seen;
	struct auth_builtin_user *v;
	size_t n;
};

static bool list_one(void *arg, const char *key, size_t klen, const uint8_t *val, size_t vlen)
{
	struct lister *l = arg;
	size_t i = l->seen++;
	if (i < l->offset || l->n >= l->limit || klen > AUTH_BUILTIN_ID_MAX || vlen < 1)
		return true;
	struct auth_builtin_user *u = &l->v[l->n++];
	memcpy(u->user_id, key, klen);
	u->user_id[klen] = 0;
	u->superuser = val[0] == '1';
	return true;
}

void auth_builtin_list(struct auth_builtin *db, size_t offset, size_t limit,
		       struct auth_builtin_user **out, size_t *n, size_t *total)
{
	struct lister l = { .offset = offset, .limit = limit };
	size_t cap = limit < 1000 ? limit : 1000;
	l.limit = cap;
	l.v = hq_calloc(cap ? cap : 1, sizeof(*l.v));
	repl_each(db->t, list_one, &l);
	*out = l.v;
	*n = l.n;
	*total = l.seen;
}
