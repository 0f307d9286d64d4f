/*
 * auth_acl.c - Mosquitto ACL files: parse and evaluate (auth_acl.h).
 */
#include "auth/auth_acl.h"
#include "core/mem.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <uthash.h>

struct acl_rule {
	char *filter;              /* owned */
	unsigned access;           /* ACL_READ | ACL_WRITE; 0 = deny */
	bool subst;                /* a pattern with %u or %c */
	bool deny;                 /* ordered (claims) rules: deny `access` */
};

struct acl_list {
	struct acl_rule *v;
	uint32_t n, cap;
};

struct acl_user {
	char *name;                /* owned */
	struct acl_list rules;
	UT_hash_handle hh;
};

struct acl_rules {
	atomic_uint refs;
	struct acl_list anon;      /* before any `user` line */
	struct acl_list patterns;
	struct acl_user *users;    /* uthash by name */
	struct acl_list ordered;   /* a JWT's claims (acl_from_claim): first match decides */
};

bool acl_covers(const char *p, const char *f)
{
	if (f[0] == '$' && (p[0] == '+' || p[0] == '#'))
		return false; /* [MQTT-4.7.2-1] */
	for (;;) {
		const char *pe = strchr(p, '/');
		size_t pl = pe ? (size_t)(pe - p) : strlen(p);
		if (pl == 1 && p[0] == '#')
			return true; /* the rest, and the parent level itself */
		const char *fe = strchr(f, '/');
		size_t fl = fe ? (size_t)(fe - f) : strlen(f);
		if (pl == 1 && p[0] == '+') {
			if (fl == 1 && f[0] == '#')
				return false; /* # spans levels + does not */
		} else if (pl != fl || memcmp(p, f, pl) != 0 ||
			   (fl == 1 && (f[0] == '+' || f[0] == '#'))) {
			return false;
		}
		if (!pe || !fe) {
			if (!pe && !fe)
				return true;
			/* "a/#" covers "a"; anything else ran out on one side */
			return pe && !fe && !strcmp(pe + 1, "#");
		}
		p = pe + 1;
		f = fe + 1;
	}
}

bool acl_overlaps(const char *p, const char *f)
{
	if ((f[0] == '$' && (p[0] == '+' || p[0] == '#')) ||
	    (p[0] == '$' && (f[0] == '+' || f[0] == '#')))
		return false; /* [MQTT-4.7.2-1] either side's wildcard skips $-topics */
	for (;;) {
		const char *pe = strchr(p, '/'), *fe = strchr(f, '/');
		size_t pl = pe ? (size_t)(pe - p) : strlen(p);
		size_t fl = fe ? (size_t)(fe - f) : strlen(f);
		if ((pl == 1 && p[0] == '#') || (fl == 1 && f[0] == '#'))
			return true;
		bool any = (pl == 1 && p[0] == '+') || (fl == 1 && f[0] == '+');
		if (!any && (pl != fl || memcmp(p, f, pl) != 0))
			return false;
		if (!pe || !fe)
			return (!pe && !fe) || (pe && !strcmp(pe + 1, "#")) || (fe && !strcmp(fe + 1, "#"));
		p = pe + 1;
		f = fe + 1;
	}
}

static void list_push(struct acl_list *l, const char *filter, size_t n, unsigned access, bool subst)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 4;
		l->v = hq_realloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n++] = (struct acl_rule){ .filter = hq_strndup(filter, n), .access = access,
					  .subst = subst };
}

static void list_free(struct acl_list *l)
{
	for (uint32_t i = 0; i < l->n; i++)
		hq_free(l->v[i].filter);
	hq_free(l->v);
}

static void rules_free(struct acl_rules *r)
{
	list_free(&r->anon);
	list_free(&r->patterns);
	list_free(&r->ordered);
	struct acl_user *u, *t;
	HASH_ITER(hh, r->users, u, t) {
		HASH_DEL(r->users, u);
		list_free(&u->rules);
		hq_free(u->name);
		hq_free(u);
	}
	hq_free(r);
}

struct acl_rules *acl_ref(struct acl_rules *r)
{
	atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
	return r;
}

void acl_unref(struct acl_rules *r)
{
	if (r && atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1)
		rules_free(r);
}

static struct acl_rules *fail(struct acl_rules *r, const char *name, int line, const char *why,
			      char *err, size_t errlen)
{
	snprintf(err, errlen, "%s:%d: %s", name, line, why);
	rules_free(r);
	return NULL;
}

static const char *skip_ws(const char *p, const char *e)
{
	while (p < e && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

static const char *word_end(const char *p, const char *e)
{
	while (p < e && *p != ' ' && *p != '\t')
		p++;
	return p;
}

static bool word_is(const char *p, const char *e, const char *w)
{
	return (size_t)(e - p) == strlen(w) && !memcmp(p, w, (size_t)(e - p));
}

/* A filter as the rule writes it: valid MQTT filter syntax (a pattern's
 * %u/%c stand inside a level). */
static bool filter_ok(const char *f, size_t n)
{
	if (n == 0 || n > 65535)
		return false;
	for (size_t i = 0; i < n; i++) {
		bool start = i == 0 || f[i - 1] == '/';
		bool end = i + 1 == n || f[i + 1] == '/';
		if (f[i] == '+' && !(start && end))
			return false;
		if (f[i] == '#' && !(start && i + 1 == n))
			return false;
		if (f[i] == 0)
			return false;
	}
	return true;
}

struct acl_rules *acl_parse(const char *name, const char *text, size_t len, char *err, size_t errlen)
{
	struct acl_rules *r = hq_calloc(1, sizeof(*r));
	atomic_init(&r->refs, 1);
	struct acl_list *cur = &r->anon;
	const char *p = text, *end = text + len;
	for (int line = 1; p < end; line++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl : end;
		const char *next = nl ? nl + 1 : end;
		while (e > p && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
			e--;
		p = skip_ws(p, e);
		if (p == e || *p == '#') {
			p = next;
			continue;
		}
		const char *we = word_end(p, e);
		bool is_topic = word_is(p, we, "topic"), is_pattern = word_is(p, we, "pattern");
		if (word_is(p, we, "user")) {
			const char *u = skip_ws(we, e);
			if (u == e)
				return fail(r, name, line, "user: expected a user name", err, errlen);
			/* a name may hold spaces: the rest of the line */
			struct acl_user *au;
			HASH_FIND(hh, r->users, u, (size_t)(e - u), au);
			if (!au) {
				au = hq_calloc(1, sizeof(*au));
				au->name = hq_strndup(u, (size_t)(e - u));
				HASH_ADD_KEYPTR(hh, r->users, au->name, strlen(au->name), au);
			}
			cur = &au->rules;
			p = next;
			continue;
		}
		if (!is_topic && !is_pattern)
			return fail(r, name, line, "expected topic, pattern or user", err, errlen);
		const char *a = skip_ws(we, e);
		const char *ae = word_end(a, e);
		unsigned access = ACL_READ | ACL_WRITE;
		const char *f = a;
		if (word_is(a, ae, "read"))
			access = ACL_READ;
		else if (word_is(a, ae, "write"))
			access = ACL_WRITE;
		else if (word_is(a, ae, "readwrite"))
			access = ACL_READ | ACL_WRITE;
		else if (word_is(a, ae, "deny"))
			access = 0;
		else
			ae = NULL; /* no access word: the filter starts here */
		if (ae) {
			f = skip_ws(ae, e);
			/* "topic read" alone names the topic "read", as Mosquitto reads it */
			if (f == e) {
				f = a;
				access = ACL_READ | ACL_WRITE;
			}
		}
		if (f == e)
			return fail(r, name, line, "expected a topic filter", err, errlen);
		/* the filter is the rest of the line (a topic level may hold spaces) */
		if (!filter_ok(f, (size_t)(e - f)))
			return fail(r, name, line, "invalid topic filter", err, errlen);
		if (is_pattern) {
			bool subst = memmem(f, (size_t)(e - f), "%u", 2) || memmem(f, (size_t)(e - f), "%c", 2);
			list_push(&r->patterns, f, (size_t)(e - f), access, subst);
		} else {
			list_push(cur, f, (size_t)(e - f), access, false);
		}
		p = next;
	}
	return r;
}

struct acl_rules *acl_load(const char *path, char *err, size_t errlen)
{
	FILE *fp = fopen(path, "rb");
	if (!fp) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	size_t cap = 4096, len = 0, got;
	char *buf = hq_malloc(cap);
	while ((got = fread(buf + len, 1, cap - len, fp)) > 0) {
		len += got;
		if (len == cap)
			buf = hq_realloc(buf, cap *= 2);
	}
	int rerr = ferror(fp);
	fclose(fp);
	struct acl_rules *r = NULL;
	if (rerr)
		snprintf(err, errlen, "%s: read error", path);
	else
		r = acl_parse(path, buf, len, err, errlen);
	hq_free(buf);
	return r;
}

/* A substituted value must stay inside one level: no '/', '+', '#' (a user
 * named "a/b" would otherwise reach devices/a's topics). */
static bool subst_ok(const char *v)
{
	return v && *v && !strpbrk(v, "/+#");
}

/* The pattern with %u/%c replaced into out; false when it cannot apply. */
static bool substitute(const char *pat, const char *user, const char *cid, char *out, size_t cap)
{
	size_t o = 0;
	for (const char *p = pat; *p; p++) {
		const char *v = NULL;
		if (p[0] == '%' && (p[1] == 'u' || p[1] == 'c')) {
			v = p[1] == 'u' ? user : cid;
			if (!subst_ok(v))
				return false;
			size_t n = strlen(v);
			if (o + n >= cap)
				return false;
			memcpy(out + o, v, n);
			o += n;
			p++;
			continue;
		}
		if (o + 1 >= cap)
			return false;
		out[o++] = *p;
	}
	out[o] = 0;
	return true;
}

/* One pass over a list: a deny rule covering `what` (want_deny), or a rule
 * granting access that covers it (or, overlap, shares a topic with it). */
static bool list_hit(const struct acl_list *l, const char *user, const char *cid, unsigned access,
		     const char *what, bool want_deny, bool overlap)
{
	char buf[1024];
	for (uint32_t i = 0; i < l->n; i++) {
		const struct acl_rule *x = &l->v[i];
		if (want_deny ? x->access != 0 : !(x->access & access))
			continue;
		const char *f = x->filter;
		if (x->subst) {
			if (!substitute(f, user, cid, buf, sizeof(buf)))
				continue;
			f = buf;
		}
		if (overlap ? acl_overlaps(f, what) : acl_covers(f, what))
			return true;
	}
	return false;
}

/* Claims rules in order: the first that covers the request decides. */
static enum acl_verdict ordered_check(const struct acl_list *l, const char *user, const char *cid,
				      unsigned access, const char *what, bool is_filter)
{
	char buf[1024];
	bool overlap = false;
	for (uint32_t i = 0; i < l->n; i++) {
		const struct acl_rule *x = &l->v[i];
		if (!(x->access & access))
			continue;
		const char *f = x->filter;
		if (x->subst) {
			if (!substitute(f, user, cid, buf, sizeof(buf)))
				continue;
			f = buf;
		}
		if (acl_covers(f, what))
			return x->deny ? ACL_DENY : ACL_ALLOW;
		if (!x->deny && is_filter && strpbrk(what, "+#") && acl_overlaps(f, what))
			overlap = true;
	}
	return overlap ? ACL_ALLOW : ACL_NO_MATCH;
}

enum acl_verdict acl_check(const struct acl_rules *r, const char *user, const char *client_id,
			   unsigned access, const char *what, bool is_filter)
{
	if (r->ordered.n) {
		enum acl_verdict v = ordered_check(&r->ordered, user, client_id, access, what, is_filter);
		if (v != ACL_NO_MATCH)
			return v;
	}
	/* a topic is a filter without wildcards: one "covers" serves both */
	const struct acl_list *own = &r->anon;
	if (user) {
		struct acl_user *u;
		HASH_FIND_STR(r->users, user, u);
		own = u ? &u->rules : NULL;
	}
	if ((own && list_hit(own, user, client_id, access, what, true, false)) ||
	    list_hit(&r->patterns, user, client_id, access, what, true, false))
		return ACL_DENY;
	if ((own && list_hit(own, user, client_id, access, what, false, false)) ||
	    list_hit(&r->patterns, user, client_id, access, what, false, false))
		return ACL_ALLOW;
	/* a wildcard filter part of which is readable: granted, and each
	 * message through it is checked on delivery */
	if (is_filter && strpbrk(what, "+#") &&
	    ((own && list_hit(own, user, client_id, access, what, false, true)) ||
	     list_hit(&r->patterns, user, client_id, access, what, false, true)))
		return ACL_ALLOW;
	return ACL_NO_MATCH;
}

/* ---- rules from a JWT claim ---- */

#define CLAIM_MAX_RULES 256

/* ${username} / ${clientid} -> %u / %c; false when the result is no filter. */
static bool claim_push(struct acl_list *l, const cJSON *topic, unsigned access, bool deny,
		       uint32_t cap)
{
	if (!cJSON_IsString(topic) || l->n >= cap)
		return false;
	const char *t = topic->valuestring;
	size_t n = strlen(t);
	char *f = hq_malloc(n + 1);
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		if (!strncmp(t + i, "${username}", 11)) {
			memcpy(f + o, "%u", 2);
			o += 2;
			i += 11;
		} else if (!strncmp(t + i, "${clientid}", 11)) {
			memcpy(f + o, "%c", 2);
			o += 2;
			i += 11;
		} else {
			f[o++] = t[i++];
		}
	}
	f[o] = 0;
	bool ok = filter_ok(f, o);
	if (ok) {
		bool subst = strstr(f, "%u") || strstr(f, "%c");
		list_push(l, f, o, access, subst);
		l->v[l->n - 1].deny = deny;
	}
	hq_free(f);
	return ok;
}

static bool claim_object(struct acl_list *l, const cJSON *claim, char *err, size_t errlen)
{
	static const struct { const char *key; unsigned access; } kinds[] = {
		{ "pub", ACL_WRITE }, { "sub", ACL_READ }, { "all", ACL_READ | ACL_WRITE },
	};
	const cJSON *e;
	cJSON_ArrayForEach(e, claim) {
		size_t k = 0;
		while (k < 3 && strcmp(e->string, kinds[k].key))
			k++;
		if (k == 3) {
			snprintf(err, errlen, "ACL claim: unknown member (pub, sub, all)");
			return false;
		}
		if (!cJSON_IsArray(e)) {
			snprintf(err, errlen, "ACL claim: %s is not an array", kinds[k].key);
			return false;
		}
		const cJSON *t;
		cJSON_ArrayForEach(t, e) {
			if (!claim_push(l, t, kinds[k].access, false, CLAIM_MAX_RULES)) {
				snprintf(err, errlen, "ACL claim: %s: an invalid topic filter or too many rules",
					 kinds[k].key);
				return false;
			}
		}
	}
	return true;
}

/* EMQX's list form into l, at most cap rules in l; what names the source
 * in err ("ACL claim", "rule"). */
static bool claim_list(struct acl_list *l, const cJSON *claim, uint32_t cap, const char *what,
		       char *err, size_t errlen)
{
	const cJSON *e;
	int i = 0;
	cJSON_ArrayForEach(e, claim) {
		i++;
		const cJSON *perm = cJSON_GetObjectItemCaseSensitive(e, "permission");
		const cJSON *act = cJSON_GetObjectItemCaseSensitive(e, "action");
		const cJSON *topic = cJSON_GetObjectItemCaseSensitive(e, "topic");
		bool deny = cJSON_IsString(perm) && !strcmp(perm->valuestring, "deny");
		if (!cJSON_IsString(perm) || (!deny && strcmp(perm->valuestring, "allow"))) {
			snprintf(err, errlen, "%s %d: permission must be allow or deny", what, i);
			return false;
		}
		unsigned access = 0;
		if (cJSON_IsString(act) && !strcmp(act->valuestring, "publish"))
			access = ACL_WRITE;
		else if (cJSON_IsString(act) && !strcmp(act->valuestring, "subscribe"))
			access = ACL_READ;
		else if (cJSON_IsString(act) && !strcmp(act->valuestring, "all"))
			access = ACL_READ | ACL_WRITE;
		if (!access) {
			snprintf(err, errlen, "%s %d: action must be publish, subscribe or all", what, i);
			return false;
		}
		if (!claim_push(l, topic, access, deny, cap)) {
			snprintf(err, errlen, "%s %d: %s", what, i,
				 l->n >= cap ? "too many rules" : "topic must be a valid topic filter");
			return false;
		}
	}
	return true;
}

struct acl_rules *acl_from_claim(const cJSON *claim, char *err, size_t errlen)
{
	struct acl_rules *r = hq_calloc(1, sizeof(*r));
	atomic_init(&r->refs, 1);
	bool ok;
	if (cJSON_IsObject(claim)) {
		ok = claim_object(&r->ordered, claim, err, errlen);
	} else if (cJSON_IsArray(claim)) {
		ok = claim_list(&r->ordered, claim, CLAIM_MAX_RULES, "ACL claim rule", err, errlen);
	} else {
		snprintf(err, errlen, "ACL claim is neither an object nor an array");
		ok = false;
	}
	if (!ok) {
		rules_free(r);
		return NULL;
	}
	return r;
}

/* ---- ordered rules made piecewise (the built-in database's) ---- */

struct acl_rules *acl_ordered_new(void)
{
	struct acl_rules *r = hq_calloc(1, sizeof(*r));
	atomic_init(&r->refs, 1);
	return r;
}

bool acl_ordered_append(struct acl_rules *r, const cJSON *list, unsigned max, char *err,
			size_t errlen)
{
	if (!cJSON_IsArray(list)) {
		snprintf(err, errlen, "rules must be an array");
		return false;
	}
	uint32_t had = r->ordered.n;
	if (claim_list(&r->ordered, list, had + max, "rule", err, errlen))
		return true;
	/* leave r as it was */
	while (r->ordered.n > had)
		hq_free(r->ordered.v[--r->ordered.n].filter);
	return false;
}

unsigned acl_ordered_count(const struct acl_rules *r)
{
	return r->ordered.n;
}
