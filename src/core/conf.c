/*
 * conf.c - the configuration parsers (core layer): file, environment,
 * --set, validation and conf_get, over the schema in conf_keys.c.
 *
 * Every key is one row of conf_keys[]: name, type, range or value names, field
 * in struct hq_config, default (as text, parsed by the same code as a file
 * value) and a one-line doc. conf_defaults, the file / env / --set parsers and
 * conf_get all walk that one table, so no key can be defaulted, parsed or
 * printed differently in two places.
 *
 * Rows flagged KEY_LISTENER are templates for listeners.<type>.<name>.<leaf>:
 * their field offset is into struct conf_listener, their ltype says which
 * listener type has the key, and their name is spelled with the listener called
 * "default" (conf_defaults creates tcp "default"; ssl "default" exists once a
 * key names it).
 *
 * Invariant: after any call, cfg is consistent enough for conf_free, even when a
 * call fails half way through a file (earlier lines stay applied).
 */
#include "core/conf.h"
#include "core/conf_int.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define N_KEYS conf_n_keys

/* ---- errors ---- */

/* Where a value came from: "file" + line, or "env HAMQTT_X" / "--set" (line 0). */
struct origin {
	const char *name;
	int line;
};

/* Write "origin:line: key: message" into err; returns HQ_EINVAL. */
static int fail(const struct origin *o, const char *key, char *err, size_t errlen,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int fail(const struct origin *o, const char *key, char *err, size_t errlen,
		const char *fmt, ...)
{
	if (!err || !errlen)
		return HQ_EINVAL;
	int n = 0;
	if (o && o->line > 0)
		n = snprintf(err, errlen, "%s:%d: ", o->name, o->line);
	else if (o)
		n = snprintf(err, errlen, "%s: ", o->name);
	if (n >= 0 && (size_t)n < errlen && key)
		n += snprintf(err + n, errlen - (size_t)n, "%s: ", key);
	if (n >= 0 && (size_t)n < errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return HQ_EINVAL;
}

/* "what is expected" for a row, without the leading "expected ". */
static void expect_text(const struct conf_key *k, char *out, size_t len)
{
	switch (k->type) {
	case KT_STR:
		snprintf(out, len, "%s", k->expect ? k->expect : "a string");
		break;
	case KT_INT:
		snprintf(out, len, "an integer %lld..%lld", (long long)k->min, (long long)k->max);
		break;
	case KT_BOOL:
		snprintf(out, len, "true or false (also on/off, yes/no, 1/0)");
		break;
	case KT_ENUM: {
		size_t n = (size_t)snprintf(out, len, "one of ");
		for (size_t i = 0; k->names[i] && n < len; i++)
			n += (size_t)snprintf(out + n, len - n, "%s%s", i ? "|" : "", k->names[i]);
		break;
	}
	case KT_SIZE:
		snprintf(out, len, "a size %lld..%lld bytes (suffix KB, MB or GB allowed)",
			 (long long)k->min, (long long)k->max);
		break;
	case KT_DUR:
		snprintf(out, len, "a duration %lld..%lld seconds (suffix s, m or h allowed)",
			 (long long)k->min, (long long)k->max);
		break;
	}
}

/* ---- value parsing ---- */

/* Decimal digits at *s into *out; advances *s. False on no digits or overflow. */
static bool parse_digits(const char **s, uint64_t *out)
{
	const char *p = *s;
	uint64_t v = 0;
	if (*p < '0' || *p > '9')
		return false;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*s = p;
	*out = v;
	return true;
}

/* A number with an optional unit suffix from units[] (case-insensitive). */
struct unit {
	const char *suffix;
	uint64_t mul;
};

static bool parse_with_units(const char *s, const struct unit *units, uint64_t *out)
{
	uint64_t v;
	if (!parse_digits(&s, &v))
		return false;
	while (*s == ' ' || *s == '\t')
		s++;
	uint64_t mul = 1;
	if (*s) {
		size_t i;
		for (i = 0; units[i].suffix; i++)
			if (strcasecmp(s, units[i].suffix) == 0)
				break;
		if (!units[i].suffix)
			return false;
		mul = units[i].mul;
	}
	if (v && mul > UINT64_MAX / v)
		return false;
	*out = v * mul;
	return true;
}

static const struct unit size_units[] = {
	{ "b", 1 }, { "k", 1024 }, { "kb", 1024 }, { "m", 1024 * 1024 }, { "mb", 1024 * 1024 },
	{ "g", 1024ull * 1024 * 1024 }, { "gb", 1024ull * 1024 * 1024 }, { NULL, 0 },
};
static const struct unit dur_units[] = {
	{ "s", 1 }, { "m", 60 }, { "h", 3600 }, { NULL, 0 },
};
static const struct unit no_units[] = { { NULL, 0 } };

static bool parse_bool(const char *s, bool *out)
{
	static const char *const t[] = { "true", "on", "yes", "1" };
	static const char *const f[] = { "false", "off", "no", "0" };
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, t[i]) == 0) {
			*out = true;
			return true;
		}
		if (strcasecmp(s, f[i]) == 0) {
			*out = false;
			return true;
		}
	}
	return false;
}

/* Parse v per row k into *num (non-string types). False if v does not fit. */
static bool parse_value(const struct conf_key *k, const char *v, uint64_t *num)
{
	bool b;
	switch (k->type) {
	case KT_STR:
		return !k->check || k->check(v);
	case KT_BOOL:
		if (!parse_bool(v, &b))
			return false;
		*num = b;
		return true;
	case KT_ENUM:
		for (size_t i = 0; k->names[i]; i++) {
			if (strcmp(v, k->names[i]) == 0) {
				*num = i;
				return true;
			}
		}
		return false;
	case KT_INT:
	case KT_SIZE:
	case KT_DUR: {
		const struct unit *u = k->type == KT_SIZE ? size_units :
				       k->type == KT_DUR ? dur_units : no_units;
		if (!parse_with_units(v, u, num))
			return false;
		return *num >= (uint64_t)k->min && *num <= (uint64_t)k->max;
	}
	}
	return false;
}

static void store_num(void *p, size_t width, uint64_t v)
{
	if (width == 8) {
		memcpy(p, &v, 8);
	} else if (width == 4) {
		uint32_t x = (uint32_t)v;
		memcpy(p, &x, 4);
	} else {
		assert(width == sizeof(bool));
		bool b = v != 0;
		memcpy(p, &b, sizeof(b));
	}
}

static uint64_t load_num(const void *p, size_t width)
{
	if (width == 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		return v;
	}
	if (width == 4) {
		uint32_t x;
		memcpy(&x, p, 4);
		return x;
	}
	bool b;
	memcpy(&b, p, sizeof(b));
	return b;
}

static void store_str(void *p, const char *v)
{
	char *old;
	memcpy(&old, p, sizeof(old));
	hq_free(old);
	char *s = hq_strdup(v);
	memcpy(p, &s, sizeof(s));
}

/* ---- key lookup ---- */

bool conf_section_name_ok(const char *s, size_t n, size_t max)
{
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

int conf_raw_fail(const struct conf_raw *r, const char *key, char *err, size_t errlen,
		  const char *fmt, ...)
{
	int n = snprintf(err, errlen, "%s%s: ", r ? r->origin : "", key);
	if (n >= 0 && (size_t)n < errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return HQ_EINVAL;
}

static const char *leaf_of(const char *name)
{
	return strrchr(name, '.') + 1;
}

static const char *const ltype_names[CONF_LT_COUNT] = { "tcp", "ssl", "ws", "wss" };

const char *conf_listener_type_name(enum conf_listener_type t)
{
	return (unsigned)t < CONF_LT_COUNT ? ltype_names[t] : "?";
}

/* Find the row for key. For listener keys the <name> part is copied into lname
 * and the type into *ltype. Returns NULL if unknown; *bad_name is set if it is
 * a listener key whose name is not valid. */
static const struct conf_key *find_key(const char *key, char *lname, int *ltype, bool *bad_name)
{
	*bad_name = false;
	for (size_t i = 0; i < N_KEYS; i++)
		if (!(conf_keys[i].flags & KEY_LISTENER) && strcmp(key, conf_keys[i].name) == 0)
			return &conf_keys[i];
	size_t plen = strlen(LISTENER_PREFIX);
	if (strncmp(key, LISTENER_PREFIX, plen) != 0)
		return NULL;
	const char *rest = key + plen;
	int t = -1;
	for (int j = 0; j < CONF_LT_COUNT; j++) {
		size_t n = strlen(ltype_names[j]);
		if (strncmp(rest, ltype_names[j], n) == 0 && rest[n] == '.') {
			t = j;
			rest += n + 1;
			break;
		}
	}
	if (t < 0)
		return NULL;
	const char *dot = strrchr(rest, '.');
	if (!dot)
		return NULL;
	for (size_t i = 0; i < N_KEYS; i++) {
		const struct conf_key *k = &conf_keys[i];
		if (!(k->flags & KEY_LISTENER) || k->ltype != t ||
		    strcmp(dot + 1, leaf_of(k->name)) != 0)
			continue;
		size_t n = (size_t)(dot - rest);
		if (!conf_section_name_ok(rest, n, LISTENER_NAME_MAX)) {
			*bad_name = true;
			return NULL;
		}
		memcpy(lname, rest, n);
		lname[n] = '\0';
		*ltype = t;
		return k;
	}
	return NULL;
}

static int find_listener(const struct hq_config *cfg, int type, const char *name)
{
	for (int i = 0; i < cfg->n_listeners; i++)
		if ((int)cfg->listeners[i].type == type && strcmp(cfg->listeners[i].name, name) == 0)
			return i;
	return -1;
}

/* Append a listener with the table's defaults for its type (the fields of
 * other types stay zero / NULL); the caller checked there is room. */
static struct conf_listener *add_listener(struct hq_config *cfg, int type, const char *name)
{
	struct conf_listener *l = &cfg->listeners[cfg->n_listeners++];
	memset(l, 0, sizeof(*l));
	l->name = hq_strdup(name);
	l->type = (enum conf_listener_type)type;
	bool is_default = strcmp(name, "default") == 0;
	for (size_t i = 0; i < N_KEYS; i++) {
		const struct conf_key *k = &conf_keys[i];
		if (!(k->flags & KEY_LISTENER) || k->ltype != type)
			continue;
		const char *def = (k->flags & KEY_DEFAULT_ONLY) && !is_default ? "" : k->def;
		uint64_t num = 0;
		if (k->type == KT_STR) {
			store_str((char *)l + k->off, def);
		} else {
			bool ok = parse_value(k, def, &num);
			assert(ok);
			(void)ok;
			store_num((char *)l + k->off, k->width, num);
		}
	}
	return l;
}

/* issue 12: the value syntaxes of the table, for the archive's own keys */
bool conf_parse_size(const char *s, uint64_t *out)
{
	return parse_with_units(s, size_units, out);
}

bool conf_parse_dur_s(const char *s, uint64_t *out)
{
	return parse_with_units(s, dur_units, out);
}

bool conf_parse_bool(const char *s, bool *out)
{
	return parse_bool(s, out);
}

/* issue 12: archive.<name>.<leaf> and bridges.mqtt.<name>.<leaf> lines are
 * kept as written (a later line for the same key wins there too); those
 * modules own their schemas, so leaves and values are checked when they
 * parse them, with this origin. */
static int keep_raw(struct conf_raw **v, int *n, const struct origin *o, const char *key,
		    const char *value)
{
	char where[512];
	if (o && o->line > 0)
		snprintf(where, sizeof(where), "%s:%d: ", o->name, o->line);
	else
		snprintf(where, sizeof(where), "%s: ", o ? o->name : "?");
	*v = hq_realloc(*v, ((size_t)*n + 1) * sizeof(**v));
	struct conf_raw *r = &(*v)[(*n)++];
	r->key = hq_strdup(key);
	r->value = hq_strdup(value);
	r->origin = hq_strdup(where);
	return HQ_OK;
}

static void free_raw(struct conf_raw *v, int n)
{
	for (int j = 0; j < n; j++) {
		hq_free(v[j].key);
		hq_free(v[j].value);
		hq_free(v[j].origin);
	}
	hq_free(v);
}

/* Apply one key = value. Value is already unquoted and trimmed. */
static int apply(struct hq_config *cfg, const struct origin *o, const char *key,
		 const char *value, char *err, size_t errlen)
{
	if (!strncmp(key, CONF_ARCHIVE_PREFIX, strlen(CONF_ARCHIVE_PREFIX)))
		return keep_raw(&cfg->archive_kv, &cfg->n_archive_kv, o, key, value);
	char lname[LISTENER_NAME_MAX + 1];
	bool bad_name;
	int ltype = 0;
	const struct conf_key *k = find_key(key, lname, &ltype, &bad_name);
	if (!k && strncmp(key, "bridges.", 8) == 0) /* for src/bridge/ */
		return keep_raw(&cfg->bridge_raw, &cfg->n_bridge_raw, o, key, value);
	if (!k) {
		if (bad_name)
			return fail(o, key, err, errlen,
				    "invalid listener name (letters, digits, _ and -, at most %d)",
				    LISTENER_NAME_MAX);
		return fail(o, key, err, errlen, "unknown key");
	}
	uint64_t num = 0;
	if (!parse_value(k, value, &num)) {
		char exp[160];
		expect_text(k, exp, sizeof(exp));
		return fail(o, key, err, errlen, "expected %s, got '%.100s'", exp, value);
	}
	char *base = (char *)cfg;
	if (k->flags & KEY_LISTENER) {
		int i = find_listener(cfg, ltype, lname);
		if (i < 0) {
			if (cfg->n_listeners >= CONF_MAX_LISTENERS)
				return fail(o, key, err, errlen, "too many listeners (at most %d)",
					    CONF_MAX_LISTENERS);
			i = (int)(add_listener(cfg, ltype, lname) - cfg->listeners);
		}
		base = (char *)&cfg->listeners[i];
	}
	if (k->type == KT_STR)
		store_str(base + k->off, value);
	else
		store_num(base + k->off, k->width, num);
	return HQ_OK;
}

/* ---- public API ---- */

void conf_defaults(struct hq_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < N_KEYS; i++) {
		const struct conf_key *k = &conf_keys[i];
		assert(k->min >= 0 && k->min <= k->max);
		assert(k->type == KT_STR ? k->width == sizeof(char *) :
		       k->type == KT_BOOL ? k->width == sizeof(bool) :
		       (k->width == 4 && k->max <= CONF_U32) || k->width == 8);
		if (k->flags & KEY_LISTENER)
			continue;
		uint64_t num = 0;
		bool ok = parse_value(k, k->def, &num);
		assert(ok);
		(void)ok;
		if (k->type == KT_STR)
			store_str((char *)cfg + k->off, k->def);
		else
			store_num((char *)cfg + k->off, k->width, num);
	}
	add_listener(cfg, CONF_LT_TCP, "default");
}

void conf_free(struct hq_config *cfg)
{
	for (size_t i = 0; i < N_KEYS; i++) {
		const struct conf_key *k = &conf_keys[i];
		if (k->type != KT_STR)
			continue;
		if (k->flags & KEY_LISTENER) {
			for (int j = 0; j < cfg->n_listeners; j++) {
				if ((int)cfg->listeners[j].type != k->ltype)
					continue; /* rows of several types share a field (bind) */
				char **p = (char **)((char *)&cfg->listeners[j] + k->off);
				HQ_FREE(*p);
			}
		} else {
			char **p = (char **)((char *)cfg + k->off);
			HQ_FREE(*p);
		}
	}
	for (int j = 0; j < cfg->n_listeners; j++)
		HQ_FREE(cfg->listeners[j].name);
	free_raw(cfg->archive_kv, cfg->n_archive_kv);
	free_raw(cfg->bridge_raw, cfg->n_bridge_raw);
	memset(cfg, 0, sizeof(*cfg));
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static bool is_key_char(char c)
{
	return conf_is_name_char(c);
}

/* Parse one line [p, end) (no '\n'). Blank and comment lines are fine. */
static int parse_line(struct hq_config *cfg, const struct origin *o, const char *p,
		      const char *end, char *err, size_t errlen)
{
	while (p < end && is_space(*p))
		p++;
	if (p == end || *p == '#')
		return HQ_OK;
	const char *ks = p;
	while (p < end && is_key_char(*p))
		p++;
	const char *ke = p;
	while (p < end && is_space(*p))
		p++;
	if (ke == ks || p == end || *p != '=')
		return fail(o, NULL, err, errlen, "expected 'key = value'");
	p++;
	char *key = hq_strndup(ks, (size_t)(ke - ks));
	char *val = hq_malloc((size_t)(end - p) + 1);
	size_t n = 0;
	int rc = HQ_OK;

	while (p < end && is_space(*p))
		p++;
	if (p < end && *p == '"') {
		p++;
		bool closed = false;
		while (p < end) {
			char c = *p++;
			if (c == '"') {
				closed = true;
				break;
			}
			if (c == '\\' && p < end && (*p == '"' || *p == '\\'))
				c = *p++;
			val[n++] = c;
		}
		if (!closed) {
			rc = fail(o, key, err, errlen, "unterminated quoted value");
			goto out;
		}
		while (p < end && is_space(*p))
			p++;
		if (p < end && *p != '#') {
			rc = fail(o, key, err, errlen, "unexpected text after the closing quote");
			goto out;
		}
	} else {
		/* '#' starts a comment only after a blank, so topic filters such
		 * as sensors/# need no quotes (a value that is only '#' does) */
		const char *vs = p;
		while (p < end && !(*p == '#' && (p == vs || is_space(p[-1]))))
			p++;
		while (p > vs && is_space(p[-1]))
			p--;
		n = (size_t)(p - vs);
		memcpy(val, vs, n);
	}
	val[n] = '\0';
	if (strlen(val) != n) {
		rc = fail(o, key, err, errlen, "value contains a NUL byte");
		goto out;
	}
	rc = apply(cfg, o, key, val, err, errlen);
out:
	hq_free(key);
	hq_free(val);
	return rc;
}

static int load_text(struct hq_config *cfg, const char *name, const char *text, size_t len,
		     char *err, size_t errlen)
{
	struct origin o = { name, 0 };
	const char *p = text, *end = text + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		o.line++;
		int rc = parse_line(cfg, &o, p, le, err, errlen);
		if (rc != HQ_OK)
			return rc;
		p = nl ? nl + 1 : end;
	}
	return HQ_OK;
}

int conf_load_string(struct hq_config *cfg, const char *name, const char *text,
		     char *err, size_t errlen)
{
	return load_text(cfg, name, text, strlen(text), err, errlen);
}

/* A relative node.data_dir names a directory next to the config file (as
 * HAProxy's `default-path config`): the node and hamqtt-ctl, started from
 * different directories, must agree on it (ctl reads data_dir/ctl.key). */
static void data_dir_from_file(struct hq_config *cfg, const char *path)
{
	const char *slash = strrchr(path, '/');
	const char *d = cfg->node_data_dir;
	if (!slash || !d || !*d || *d == '/')
		return; /* the file is in the working directory, or nothing to do */
	size_t dl = (size_t)(slash - path) + 1, n = dl + strlen(d) + 1;
	char *abs = hq_malloc(n);
	memcpy(abs, path, dl);
	memcpy(abs + dl, d, strlen(d) + 1);
	hq_free(cfg->node_data_dir);
	cfg->node_data_dir = abs;
}

int conf_load_file(struct hq_config *cfg, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		int e = errno;
		struct origin o = { path, 0 };
		fail(&o, NULL, err, errlen, "cannot open: %s", strerror(e));
		errno = e;
		return HQ_EIO;
	}
	size_t cap = 4096, len = 0;
	char *text = hq_malloc(cap);
	for (;;) {
		if (len == cap) {
			cap *= 2;
			text = hq_realloc(text, cap);
		}
		size_t n = fread(text + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	int rc;
	if (ferror(f)) {
		int e = errno;
		struct origin o = { path, 0 };
		fail(&o, NULL, err, errlen, "read error: %s", strerror(e));
		rc = HQ_EIO;
	} else {
		rc = load_text(cfg, path, text, len, err, errlen);
	}
	fclose(f);
	hq_free(text);
	if (rc == HQ_OK)
		data_dir_from_file(cfg, path);
	return rc;
}

/* Copy [s, s+n) with surrounding whitespace removed into a new string. */
static char *trimmed_dup(const char *s, size_t n)
{
	while (n && is_space(*s)) {
		s++;
		n--;
	}
	while (n && is_space(s[n - 1]))
		n--;
	return hq_strndup(s, n);
}

int conf_load_env(struct hq_config *cfg, char *const *envp, char *err, size_t errlen)
{
	static const char prefix[] = "HAMQTT_";
	const size_t plen = sizeof(prefix) - 1;
	if (!envp)
		return HQ_OK;
	for (; *envp; envp++) {
		const char *e = *envp;
		const char *eq = strchr(e, '=');
		if (!eq || strncmp(e, prefix, plen) != 0)
			continue;
		size_t vlen = (size_t)(eq - e);
		/* origin "env HAMQTT_X", key: lowercase, "__" -> "." */
		char *origin = hq_malloc(vlen + 5);
		memcpy(origin, "env ", 4);
		memcpy(origin + 4, e, vlen);
		origin[vlen + 4] = '\0';
		char *key = hq_malloc(vlen - plen + 1);
		size_t k = 0;
		for (const char *p = e + plen; p < eq; p++) {
			if (p[0] == '_' && p + 1 < eq && p[1] == '_') {
				key[k++] = '.';
				p++;
			} else {
				char c = *p;
				key[k++] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
			}
		}
		key[k] = '\0';
		char *val = trimmed_dup(eq + 1, strlen(eq + 1));
		struct origin o = { origin, 0 };
		int rc = apply(cfg, &o, key, val, err, errlen);
		hq_free(origin);
		hq_free(key);
		hq_free(val);
		if (rc != HQ_OK)
			return rc;
	}
	return HQ_OK;
}

int conf_set(struct hq_config *cfg, const char *origin, const char *kv, char *err, size_t errlen)
{
	struct origin o = { origin ? origin : "--set", 0 };
	const char *eq = strchr(kv, '=');
	if (!eq)
		return fail(&o, NULL, err, errlen, "expected 'key=value', got '%.100s'", kv);
	char *key = trimmed_dup(kv, (size_t)(eq - kv));
	int rc;
	if (!*key) {
		rc = fail(&o, NULL, err, errlen, "expected 'key=value', got '%.100s'", kv);
	} else {
		char *val = trimmed_dup(eq + 1, strlen(eq + 1));
		rc = apply(cfg, &o, key, val, err, errlen);
		hq_free(val);
	}
	hq_free(key);
	return rc;
}

/* Normalized (host, port) of a bind for duplicate detection: "" means 0.0.0.0. */
static bool bind_key(const char *bind, char *host, size_t hostlen, int *port)
{
	if (!bind || conf_parse_hostport(bind, host, hostlen, port) != HQ_OK)
		return false;
	if (!*host)
		snprintf(host, hostlen, "0.0.0.0");
	return true;
}

int conf_validate(const struct hq_config *cfg, char *err, size_t errlen)
{
	char key[128];
	if (!cfg->node_name || !conf_check_nodename(cfg->node_name))
		return fail(NULL, "node.name", err, errlen, "expected name@host, got '%.100s'",
			    cfg->node_name ? cfg->node_name : "");
	if (cfg->cluster_discovery == CONF_DISC_STATIC &&
	    (!cfg->cluster_static_seeds || !*cfg->cluster_static_seeds))
		return fail(NULL, "cluster.static.seeds", err, errlen,
			    "required when cluster.discovery_strategy = static");
	if (cfg->cluster_discovery == CONF_DISC_DNS &&
	    (!cfg->cluster_dns_name || !*cfg->cluster_dns_name))
		return fail(NULL, "cluster.dns.name", err, errlen,
			    "required when cluster.discovery_strategy = dns");

	int enabled = 0;
	for (int i = 0; i < cfg->n_listeners; i++) {
		const struct conf_listener *l = &cfg->listeners[i];
		if (!l->enabled)
			continue;
		enabled++;
		const char *tn = conf_listener_type_name(l->type);
		snprintf(key, sizeof(key), LISTENER_PREFIX "%s.%s.bind", tn, l->name);
		char h1[256], h2[256];
		int p1, p2;
		if (!bind_key(l->bind, h1, sizeof(h1), &p1))
			return fail(NULL, key, err, errlen, "expected host:port, got '%.100s'",
				    l->bind ? l->bind : "");
		if (CONF_LT_HAS_TLS(l->type) && (!l->certfile[0] || !l->keyfile[0])) {
			snprintf(key, sizeof(key), LISTENER_PREFIX "%s.%s.%s", tn, l->name,
				 l->certfile[0] ? "keyfile" : "certfile");
			return fail(NULL, key, err, errlen, "required for %s %s listener",
				    tn[0] == 's' ? "an" : "a", tn);
		}
		if (CONF_LT_HAS_TLS(l->type) && l->verify == CONF_VERIFY_PEER && !l->cacertfile[0]) {
			snprintf(key, sizeof(key), LISTENER_PREFIX "%s.%s.cacertfile", tn, l->name);
			return fail(NULL, key, err, errlen, "required with verify = peer");
		}
		if (CONF_LT_HAS_TLS(l->type) && l->peer_cert_as_username == CONF_PCU_CN &&
		    l->verify != CONF_VERIFY_PEER) {
			/* a CN nobody checked would let anyone pick a username */
			snprintf(key, sizeof(key), LISTENER_PREFIX "%s.%s.peer_cert_as_username", tn,
				 l->name);
			return fail(NULL, key, err, errlen, "cn requires verify = peer");
		}
		if (p1 == 0)
			continue; /* ephemeral ports never collide */
		for (int j = 0; j < i; j++) {
			const struct conf_listener *m = &cfg->listeners[j];
			if (m->enabled && bind_key(m->bind, h2, sizeof(h2), &p2) && p1 == p2 &&
			    strcmp(h1, h2) == 0)
				return fail(NULL, key, err, errlen, "%s is already used by "
					    LISTENER_PREFIX "%s.%s", l->bind,
					    conf_listener_type_name(m->type), m->name);
		}
		if (bind_key(cfg->dashboard_bind, h2, sizeof(h2), &p2) && p1 == p2 &&
		    strcmp(h1, h2) == 0)
			return fail(NULL, key, err, errlen,
				    "%s is already used by dashboard.listeners.http.bind", l->bind);
	}
	if (enabled == 0)
		return fail(NULL, "listeners.tcp", err, errlen, "no enabled listener");
	/* The compiled-in cookie is public: with it anyone who reaches the cluster
	 * port joins the cluster (every message, every session). Refused rather
	 * than warned about, since a warning scrolls by and the fix is one line;
	 * loopback-only nodes (make run, tests) keep working. */
	if (cfg->cluster_port != 0 && cfg->node_cookie &&
	    !strcmp(cfg->node_cookie, CONF_DEFAULT_COOKIE)) {
		const char *at = strrchr(cfg->node_name, '@');
		char host[256];
		int port;
		char hp[300];
		snprintf(hp, sizeof(hp), "%s:%d", at + 1, cfg->cluster_port);
		if (conf_parse_hostport(hp, host, sizeof(host), &port) != HQ_OK ||
		    !conf_host_is_loopback(host))
			return fail(NULL, "node.cookie", err, errlen,
				    "the built-in default cookie is public and the cluster port "
				    "listens on %.100s (host of node.name), not loopback: set a "
				    "secret of your own on every node (e.g. openssl rand -hex 32), "
				    "or cluster.port = 0 for a standalone node", hp);
	}
	/* cluster.tls: mutual, so every node needs all three files */
	if (cfg->cluster_tls_enable && (!cfg->cluster_tls_certfile[0] ||
					!cfg->cluster_tls_keyfile[0] || !cfg->cluster_tls_cacertfile[0]))
		return fail(NULL, !cfg->cluster_tls_certfile[0] ? "cluster.tls.certfile"
				  : !cfg->cluster_tls_keyfile[0] ? "cluster.tls.keyfile"
								 : "cluster.tls.cacertfile",
			    err, errlen, "required with cluster.tls.enable = true");
	return HQ_OK;
}

bool conf_host_is_loopback(const char *host)
{
	if (!strcmp(host, "localhost") || !strcmp(host, "::1"))
		return true;
	/* 127.0.0.0/8 written as a dotted quad */
	unsigned a, b, c, d;
	char end;
	return sscanf(host, "%u.%u.%u.%u%c", &a, &b, &c, &d, &end) == 4 && a == 127 &&
	       b < 256 && c < 256 && d < 256;
}

/* host and port may be NULL to only check the syntax. Ports are 0..65535 (0 = ephemeral). */
int conf_parse_hostport(const char *s, char *host, size_t hostlen, int *port)
{
	const char *hs, *he, *colon;
	if (!s)
		return HQ_EINVAL;
	if (*s == '[') {
		hs = s + 1;
		he = strchr(hs, ']');
		if (!he || he == hs || he[1] != ':')
			return HQ_EINVAL;
		colon = he + 1;
		bool zone = false; /* after '%': an interface name */
		for (const char *p = hs; p < he; p++) {
			if (*p == '%' && !zone)
				zone = true;
			else if (zone ? !conf_is_name_char(*p) :
				 !((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') ||
				   (*p >= 'A' && *p <= 'F') || *p == ':' || *p == '.'))
				return HQ_EINVAL;
		}
	} else {
		colon = strchr(s, ':');
		if (!colon || strchr(colon + 1, ':'))
			return HQ_EINVAL; /* no port, or a bare IPv6 address */
		hs = s;
		he = colon;
		for (const char *p = hs; p < he; p++)
			if (!conf_is_name_char(*p))
				return HQ_EINVAL;
	}
	const char *ps = colon + 1;
	uint64_t v;
	if (!parse_digits(&ps, &v) || *ps || v > 65535)
		return HQ_EINVAL;
	size_t hn = (size_t)(he - hs);
	if (host) {
		if (hn >= hostlen)
			return HQ_EINVAL;
		memcpy(host, hs, hn);
		host[hn] = '\0';
	}
	if (port)
		*port = (int)v;
	return HQ_OK;
}

int conf_get(const struct hq_config *cfg, const char *key, char *out, size_t outlen)
{
	char lname[LISTENER_NAME_MAX + 1];
	bool bad_name;
	int ltype = 0;
	const struct conf_key *k = find_key(key, lname, &ltype, &bad_name);
	if (!k)
		return HQ_ENOTFOUND;
	const char *base = (const char *)cfg;
	if (k->flags & KEY_LISTENER) {
		int i = find_listener(cfg, ltype, lname);
		if (i < 0)
			return HQ_ENOTFOUND;
		base = (const char *)&cfg->listeners[i];
	}
	const void *p = base + k->off;
	int n;
	if (k->type == KT_STR) {
		const char *s;
		memcpy(&s, p, sizeof(s));
		n = snprintf(out, outlen, "%s", s ? s : "");
	} else {
		uint64_t v = load_num(p, k->width);
		switch (k->type) {
		case KT_BOOL:
			n = snprintf(out, outlen, "%s", v ? "true" : "false");
			break;
		case KT_ENUM: {
			size_t cnt = 0;
			while (k->names[cnt])
				cnt++;
			n = snprintf(out, outlen, "%s", v < cnt ? k->names[v] : "?");
			break;
		}
		case KT_DUR:
			n = snprintf(out, outlen, "%llus", (unsigned long long)v);
			break;
		default:
			n = snprintf(out, outlen, "%llu", (unsigned long long)v);
			break;
		}
	}
	return n >= 0 && (size_t)n < outlen ? HQ_OK : HQ_ELIMIT;
}
