/*
 * auth_acldb.c - authorization rules from the built-in database
 * (auth_acldb.h) on the replicated table "acldb".
 */
#include "auth/auth_acldb.h"
#include "auth/auth_acl.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "repl/repl.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#define KEY_MAX (2 + ACLDB_NAME_MAX)

struct auth_acldb {
	struct repl_table *t;
};

struct auth_acldb *auth_acldb_new(struct repl *r)
{
	struct repl_table *t = repl_table(r, "acldb");
	if (!t)
		return NULL;
	struct auth_acldb *db = hq_calloc(1, sizeof(*db));
	db->t = t;
	if (repl_count_hint(t))
		log_info("auth: built-in database: %zu ACL rule lists", repl_count_hint(t));
	return db;
}

void auth_acldb_free(struct auth_acldb *db)
{
	if (!db)
		return;
	hq_free(db);
}

bool auth_acldb_active(const struct auth_acldb *db)
{
	return db && repl_count_hint(db->t) > 0;
}

bool auth_acldb_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	return n >= 1 && n <= ACLDB_NAME_MAX;
}

/* the table's key of (k, name) into key[KEY_MAX + 1]; its length, 0 if bad */
static size_t make_key(enum acldb_kind k, const char *name, char *key)
{
	if (k == ACLDB_ALL) {
		key[0] = 'a';
		key[1] = 0;
		return 1;
	}
	if (!auth_acldb_name_ok(name))
		return 0;
	return (size_t)snprintf(key, KEY_MAX + 1, "%c:%s", (char)k, name);
}

/* ---- at CONNECT ---- */

/* Append the stored list of key to r; false when a stored list is bad. */
static bool append_key(struct auth_acldb *db, struct acl_rules *r, const char *key, size_t klen,
		       bool *found)
{
	uint8_t *v;
	size_t n;
	if (repl_get(db->t, key, klen, &v, &n) != HQ_OK)
		return true;
	*found = true;
	cJSON *list = cJSON_ParseWithLength((const char *)v, n);
	char err[160];
	bool ok = list && acl_ordered_append(r, list, ACLDB_MAX_RULES, err, sizeof(err));
	if (!ok)
		log_warning("auth: built-in database ACL list %.*s cannot be read (%s): the client "
			    "is denied everything", (int)(klen < 64 ? klen : 64), key,
			    list ? err : "not JSON");
	cJSON_Delete(list);
	hq_free(v);
	return ok;
}

struct acl_rules *auth_acldb_rules_for(struct auth_acldb *db, const char *username,
				       const char *client_id)
{
	if (!auth_acldb_active(db))
		return NULL;
	char key[KEY_MAX + 1];
	size_t kn[3];
	const char *names[3] = { client_id, username, NULL };
	const enum acldb_kind kinds[3] = { ACLDB_CLIENT, ACLDB_USER, ACLDB_ALL };
	struct acl_rules *r = acl_ordered_new();
	bool found = false, ok = true;
	for (int i = 0; i < 3 && ok; i++) {
		if (kinds[i] != ACLDB_ALL && !names[i])
			continue;
		if ((kn[i] = make_key(kinds[i], names[i], key)))
			ok = append_key(db, r, key, kn[i], &found);
	}
	if (!ok) {
		/* fail closed: deny before anything else, $SYS included */
		acl_unref(r);
		r = acl_ordered_new();
		cJSON *deny = cJSON_Parse("[{\"topic\":\"#\",\"permission\":\"deny\",\"action\":\"all\"},"
					  "{\"topic\":\"$SYS/#\",\"permission\":\"deny\",\"action\":\"all\"}]");
		char err[64];
		(void)acl_ordered_append(r, deny, 2, err, sizeof(err));
		cJSON_Delete(deny);
		return r;
	}
	/* empty lists are no rules: they must not put the client under
	 * auth.acl.no_match */
	if (!found || !acl_ordered_count(r)) {
		acl_unref(r);
		return NULL;
	}
	return r;
}

/* ---- validation ---- */

static const char *const members[] = { "topic", "permission", "action" };

int auth_acldb_validate(const cJSON *rules, char **text, char *why, size_t whylen)
{
	*text = NULL;
	if (!cJSON_IsArray(rules)) {
		snprintf(why, whylen, "rules must be an array");
		return HQ_EINVAL;
	}
	int i = 0;
	const cJSON *e;
	cJSON_ArrayForEach(e, rules) {
		i++;
		if (!cJSON_IsObject(e)) {
			snprintf(why, whylen, "rule %d: must be an object", i);
			return HQ_EINVAL;
		}
		const cJSON *m;
		cJSON_ArrayForEach(m, e) {
			size_t k = 0;
			while (k < 3 && strcmp(m->string, members[k]))
				k++;
			if (k == 3) {
				snprintf(why, whylen, "rule %d: unsupported member \"%.40s\" (topic, "
					 "permission and action only)", i, m->string);
				return HQ_EINVAL;
			}
		}
	}
	/* the evaluator's own parser decides what is valid */
	struct acl_rules *r = acl_ordered_new();
	bool ok = acl_ordered_append(r, rules, ACLDB_MAX_RULES, why, whylen);
	acl_unref(r);
	if (!ok)
		return HQ_EINVAL;
	cJSON *out = cJSON_CreateArray();
	cJSON_ArrayForEach(e, rules) {
		cJSON *o = cJSON_CreateObject();
		if (!o || !out) {
			cJSON_Delete(o);
			break;
		}
		cJSON_AddItemToArray(out, o);
		for (size_t k = 0; k < 3; k++)
			if (!cJSON_AddStringToObject(o, members[k],
				cJSON_GetObjectItemCaseSensitive(e, members[k])->valuestring))
				goto oom;
	}
	char *s = out ? cJSON_PrintUnformatted(out) : NULL;
	cJSON_Delete(out);
	if (!s) {
		snprintf(why, whylen, "out of memory");
		return HQ_ENOMEM;
	}
	*text = hq_strdup(s);
	cJSON_free(s);
	return HQ_OK;
oom:
	cJSON_Delete(out);
	snprintf(why, whylen, "out of memory");
	return HQ_ENOMEM;
}

/* ---- management ---- */

int auth_acldb_set(struct auth_acldb *db, enum acldb_kind k, const char *name,
		   const cJSON *rules, bool create_only, char *why, size_t whylen)
{
	char key[KEY_MAX + 1];
	size_t kn = make_key(k, name, key);
	if (!kn) {
		snprintf(why, whylen, "%s must be 1..%d bytes", k == ACLDB_USER ? "username" : "clientid",
			 ACLDB_NAME_MAX);
		return HQ_EINVAL;
	}
	char *text;
	int rc = auth_acldb_validate(rules, &text, why, whylen);
	if (rc)
		return rc;
	uint8_t *old;
	size_t on;
	if (create_only && repl_get(db->t, key, kn, &old, &on) == HQ_OK) {
		hq_free(old);
		hq_free(text);
		snprintf(why, whylen, "rules for %.200s already exist", name);
		return HQ_EEXIST;
	}
	rc = repl_put(db->t, key, kn, text, strlen(text), 0);
	hq_free(text);
	return rc == HQ_EIO ? HQ_OK : rc;   /* held and replicated; the file error is logged */
}

int auth_acldb_get(struct auth_acldb *db, enum acldb_kind k, const char *name, cJSON **rules)
{
	char key[KEY_MAX + 1];
	size_t kn = make_key(k, name, key);
	uint8_t *v;
	size_t n;
	*rules = NULL;
	if (!kn || repl_get(db->t, key, kn, &v, &n) != HQ_OK)
		return HQ_ENOTFOUND;
	*rules = cJSON_ParseWithLength((const char *)v, n);
	hq_free(v);
	return *rules ? HQ_OK : HQ_ENOMEM;
}

int auth_acldb_delete(struct auth_acldb *db, enum acldb_kind k, const char *name)
{
	char key[KEY_MAX + 1];
	size_t kn = make_key(k, name, key);
	if (!kn)
		return HQ_ENOTFOUND;
	int rc = repl_del(db->t, key, kn);
	return rc == HQ_EIO ? HQ_OK : rc;
}

struct lister {
	char prefix[2];
	size_t offset, limit, seen;
	struct auth_acldb_entry *v;
	size_t n;
};

static bool list_one(void *arg, const char *key, size_t klen, const uint8_t *val, size_t vlen)
{
	struct lister *l = arg;
	if (klen < 3 || memcmp(key, l->prefix, 2))
		return true;
	size_t i = l->seen++;
	if (i < l->offset || l->n >= l->limit)
		return true;
	cJSON *rules = cJSON_ParseWithLength((const char *)val, vlen);
	if (!rules)
		return true;
	l->v[l->n].name = hq_strndup(key + 2, klen - 2);
	l->v[l->n++].rules = rules;
	return true;
}

void auth_acldb_list(struct auth_acldb *db, enum acldb_kind k, size_t offset, size_t limit,
		     struct auth_acldb_entry **out, size_t *n, size_t *total)
{
	struct lister l = { .prefix = { (char)k, ':' }, .offset = offset };
	l.limit = limit < 1000 ? limit : 1000;
	l.v = hq_calloc(l.limit ? l.limit : 1, sizeof(*l.v));
	repl_each(db->t, list_one, &l);
	*out = l.v;
	*n = l.n;
	*total = l.seen;
}

void auth_acldb_entries_free(struct auth_acldb_entry *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		hq_free(v[i].name);
		cJSON_Delete(v[i].rules);
	}
	hq_free(v);
}
