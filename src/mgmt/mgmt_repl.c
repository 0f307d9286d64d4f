/*
 * mgmt_repl.c - the management API's users, API keys and revoked tokens on
 * the replicated table "mgmt" (repl/repl.h), so a login, an API key, a
 * password change, a delete and a logout hold on every node of a cluster.
 *
 * Entries: "u:<name>" -> the user's JSON (as in mgmt_users.json: PBKDF2
 * hash, role, pwd_changed_ms, ...), "k:<name>" -> the API key's JSON (salted
 * SHA-256 of the secret, never the secret), "r:<jti>" -> "" for a token
 * revoked by logout, expiring with the token (every node forgets it then).
 *
 * The lists in struct mgmt_users stay the working copy (and mgmt_users.json
 * its file, read before the broker and its tables exist). Every local change
 * publishes the one entity it changed (mgmt_repl_user/key, under u->mu); a
 * peer's change rebuilds the lists from the table (under u->mu), so the
 * lists always equal the table plus nothing. Lock order: u->mu, then the
 * table's lock (the watch runs outside the table's lock).
 *
 * The default administrator a fresh node makes ("public", must change) is
 * published as a weak entry (repl_put_weak: the oldest possible stamp), so
 * joining a cluster never resets the cluster's administrator: any real
 * write or delete of "admin" anywhere wins. A node that had a
 * mgmt_users.json before (an upgrade) publishes it when its table is empty.
 */
#include "mgmt/mgmt_int.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "repl/repl.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX (2 + MGMT_NAME_MAX)

static void publish(struct mgmt_users *u, char kind, const char *name, cJSON *o, bool weak)
{
	char key[KEY_MAX + MGMT_JTI_LEN];
	int kl = snprintf(key, sizeof(key), "%c:%s", kind, name);
	if (!o) {
		repl_del(u->repl, key, (size_t)kl);   /* HQ_ENOTFOUND: never published */
		return;
	}
	char *text = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (!text) {
		log_error("mgmt: %s not replicated (out of memory)", name);
		return;
	}
	if (weak)
		repl_put_weak(u->repl, key, (size_t)kl, text, strlen(text));
	else
		repl_put(u->repl, key, (size_t)kl, text, strlen(text), 0);
	free(text);
}

void mgmt_repl_user(struct mgmt_users *u, const char *name)
{
	if (!u->repl)
		return;
	struct user *x = u->users;
	while (x && strcmp(x->name, name))
		x = x->next;
	publish(u, 'u', name, x ? mgmt_user_to_json(x) : NULL, false);
}

void mgmt_repl_key(struct mgmt_users *u, const char *name)
{
	if (!u->repl)
		return;
	struct apikey *k = u->keys;
	while (k && strcmp(k->name, name))
		k = k->next;
	publish(u, 'k', name, k ? mgmt_key_to_json(k) : NULL, false);
}

struct rebuild {
	struct user *users;
	struct apikey *keys;
	size_t n_users, n_keys;
};

static bool collect(void *arg, const char *key, size_t klen, const uint8_t *val, size_t vlen)
{
	struct rebuild *r = arg;
	(void)vlen;
	if (klen < 3 || key[1] != ':' || (key[0] != 'u' && key[0] != 'k'))
		return true;
	cJSON *o = cJSON_Parse((const char *)val);
	const char *why = "not JSON";
	if (o && key[0] == 'u') {
		struct user *x = mgmt_user_from_json(o, &why);
		if (x) {
			x->next = r->users;
			r->users = x;
			r->n_users++;
		}
		o = x ? o : (cJSON_Delete(o), NULL);
	} else if (o) {
		struct apikey *k = mgmt_key_from_json(o, &why);
		if (k) {
			k->next = r->keys;
			r->keys = k;
			r->n_keys++;
		}
		o = k ? o : (cJSON_Delete(o), NULL);
	}
	if (!o)
		log_warning("mgmt: replicated entry %.*s ignored: %s", (int)klen, key, why);
	cJSON_Delete(o);
	return true;
}

static void free_lists(struct user *x, struct apikey *k)
{
	for (struct user *n; x; x = n) {
		n = x->next;
		free(x->desc);
		free(x);
	}
	for (struct apikey *n; k; k = n) {
		n = k->next;
		free(k->desc);
		free(k);
	}
}

/* With u->mu: the lists become the table's. A table without users (every
 * node still on its own default admin) leaves the users alone: the node
 * keeps a way in. Returns whether the table had users. */
static bool rebuild_locked(struct mgmt_users *u)
{
	struct rebuild r = { 0 };
	repl_each(u->repl, collect, &r);
	if (r.n_users) {
		free_lists(u->users, NULL);
		u->users = r.users;
	}
	free_lists(NULL, u->keys);
	u->keys = r.keys;
	mgmt_save_locked(u);
	return r.n_users > 0;
}

static void on_remote(void *arg, const char *key, size_t klen, const uint8_t *val, size_t vlen)
{
	struct mgmt_users *u = arg;
	(void)val;
	(void)vlen;
	if (klen >= 2 && key[0] == 'r')
		return;                  /* revocations are read from the table */
	pthread_mutex_lock(&u->mu);
	rebuild_locked(u);
	pthread_mutex_unlock(&u->mu);
}

int mgmt_users_attach(struct mgmt_users *u, struct repl *r)
{
	if (!u || !r)
		return HQ_EINVAL;
	struct repl_table *t = repl_table(r, "mgmt");
	if (!t)
		return HQ_EINVAL;
	pthread_mutex_lock(&u->mu);
	u->repl = t;
	struct rebuild probe = { 0 };
	repl_each(t, collect, &probe);
	bool table_has = probe.n_users || probe.n_keys;
	free_lists(probe.users, probe.keys);
	if (u->created_now) {
		/* a fresh default admin: weak (see the top) */
		for (struct user *x = u->users; x; x = x->next)
			publish(u, 'u', x->name, mgmt_user_to_json(x), true);
		rebuild_locked(u);
	} else if (table_has) {
		rebuild_locked(u);
	} else {
		/* an upgrade: what this node had becomes the cluster's */
		for (struct user *x = u->users; x; x = x->next)
			mgmt_repl_user(u, x->name);
		for (struct apikey *k = u->keys; k; k = k->next)
			mgmt_repl_key(u, k->name);
	}
	pthread_mutex_unlock(&u->mu);
	repl_watch(t, on_remote, u);
	return HQ_OK;
}

void mgmt_users_detach(struct mgmt_users *u)
{
	if (!u || !u->repl)
		return;
	repl_watch(u->repl, NULL, NULL);
	pthread_mutex_lock(&u->mu);
	u->repl = NULL;
	pthread_mutex_unlock(&u->mu);
}

int mgmt_users_revoke(struct mgmt_users *u, const char *jti, int64_t exp_s)
{
	pthread_mutex_lock(&u->mu);
	struct repl_table *t = u->repl;
	pthread_mutex_unlock(&u->mu);
	if (!t)
		return HQ_OK;            /* this node's own list (http_authz.c) holds it */
	char key[2 + MGMT_JTI_LEN + 1];
	int kl = snprintf(key, sizeof(key), "r:%s", jti);
	int rc = repl_put(t, key, (size_t)kl, "", 0, exp_s > 0 ? (uint64_t)exp_s * 1000 : 0);
	return rc == HQ_EIO ? HQ_OK : rc;
}

bool mgmt_users_revoked(struct mgmt_users *u, const char *jti)
{
	pthread_mutex_lock(&u->mu);
	struct repl_table *t = u->repl;
	pthread_mutex_unlock(&u->mu);
	if (!t)
		return false;
	char key[2 + MGMT_JTI_LEN + 1];
	int kl = snprintf(key, sizeof(key), "r:%s", jti);
	uint8_t *v;
	size_t n;
	if (repl_get(t, key, (size_t)kl, &v, &n) != HQ_OK)
		return false;
	hq_free(v);
	return true;
}
