/*
 * arc_conf.c - archive.<name>.<leaf>: the archive's own schema. conf.c keeps
 * these lines raw with their origin (struct conf_raw); here each is checked
 * and applied, so a bad value is refused at start as "file:line: key: why",
 * like every other key. Any archive.<name>.* line creates archive <name>.
 */
#include "archive/arc_int.h"
#include "broker/topic.h"
#include "core/conf.h"
#include "core/err.h"
#include "core/mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_LEN 64

enum leaf_type { L_STR, L_BOOL, L_U32, L_SIZE, L_DUR, L_MS };

struct leaf {
	const char *name;
	enum leaf_type type;
	uint64_t min, max;
};

static const struct leaf leaves[] = {
	{ "backend", L_STR, 0, 0 },      { "server", L_STR, 0, 0 },
	{ "database", L_STR, 0, 0 },     { "username", L_STR, 0, 0 },
	{ "password", L_STR, 0, 0 },     { "tls", L_BOOL, 0, 1 },
	{ "tls_cafile", L_STR, 0, 0 },   { "topics", L_STR, 0, 0 },
	{ "table", L_STR, 0, 0 },        { "insert", L_STR, 0, 0 },
	{ "ack", L_STR, 0, 0 },          { "batch_size", L_U32, 1, 100000 },
	{ "batch_interval_ms", L_MS, 1, 60000 },
	{ "pool_size", L_U32, 1, 64 },
	{ "buffer_messages", L_U32, 1, 100000000 },
	{ "spill_max_bytes", L_SIZE, 0, UINT64_C(1) << 44 },
	{ "retry_min_ms", L_MS, 1, 3600000 },
	{ "retry_max_ms", L_MS, 1, 3600000 },
	{ "connect_timeout", L_DUR, 1, 3600 },
};

static void set_str(char **p, const char *v)
{
	hq_free(*p);
	*p = hq_strdup(v);
}

static void defaults(struct arc_conf *c, const char *name)
{
	memset(c, 0, sizeof(*c));
	c->name = hq_strdup(name);
	c->table = hq_strdup("mqtt_messages");
	c->batch_size = 1000;
	c->batch_interval_ms = 50;
	c->pool_size = 2;
	c->buffer_messages = 100000;
	c->spill_max_bytes = UINT64_C(1) << 30;
	c->retry_min_ms = 200;
	c->retry_max_ms = 10000;
	c->connect_timeout_s = 5;
}

void arc_conf_free(struct arc_conf *c)
{
	hq_free(c->name);
	hq_free(c->host);
	hq_free(c->database);
	hq_free(c->username);
	hq_free(c->password);
	hq_free(c->tls_cafile);
	for (uint32_t i = 0; i < c->n_filters; i++)
		hq_free(c->filters[i]);
	hq_free(c->filters);
	hq_free(c->table);
	hq_free(c->insert);
	memset(c, 0, sizeof(*c));
}

/* "a/b, c/#": each filter valid; "" is refused (an archive of nothing). */
static bool split_topics(struct arc_conf *c, const char *v)
{
	for (uint32_t i = 0; i < c->n_filters; i++)
		hq_free(c->filters[i]);
	HQ_FREE(c->filters);
	c->n_filters = 0;
	const char *p = v;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		const char *e = strchr(p, ',');
		const char *end = e ? e : p + strlen(p);
		const char *t = end;
		while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
			t--;
		char *f = hq_strndup(p, (size_t)(t - p));
		if (!topic_filter_valid(f, strlen(f), 0)) {
			hq_free(f);
			return false;
		}
		c->filters = hq_realloc(c->filters, (c->n_filters + 1) * sizeof(*c->filters));
		c->filters[c->n_filters++] = f;
		if (!e)
			return true;
		p = e + 1;
	}
}

/* SQL identifier for the default table: [A-Za-z_][A-Za-z0-9_]*, optionally
 * schema-qualified; it is spliced into DDL, so nothing else. */
static bool table_ok(const char *v)
{
	if (!*v || strlen(v) > 63 * 2 + 1)
		return false;
	bool start = true;
	int dots = 0;
	for (const char *p = v; *p; p++) {
		char ch = *p;
		bool alpha = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
		bool digit = ch >= '0' && ch <= '9';
		if (ch == '.' && !start && ++dots == 1) {
			start = true;
			continue;
		}
		if (!(alpha || (digit && !start)))
			return false;
		start = false;
	}
	return !start;
}

static int apply_leaf(struct arc_conf *c, const struct conf_raw *r, const struct leaf *l,
		      char *err, size_t errlen)
{
	const char *v = r->value;
	uint64_t num = 0;
	switch (l->type) {
	case L_BOOL: {
		bool b;
		if (!conf_parse_bool(v, &b))
			return conf_raw_fail(r, r->key, err, errlen, "expected true or false, got '%.100s'", v);
		num = b;
		break;
	}
	case L_U32:
	case L_MS: {
		char *end;
		unsigned long long x = strtoull(v, &end, 10);
		if (!*v || *end || *v == '-' || x < l->min || x > l->max)
			return conf_raw_fail(r, r->key, err, errlen, "expected an integer %llu..%llu, got '%.100s'",
				    (unsigned long long)l->min, (unsigned long long)l->max, v);
		num = x;
		break;
	}
	case L_SIZE:
		if (!conf_parse_size(v, &num) || num > l->max)
			return conf_raw_fail(r, r->key, err, errlen, "expected a size (e.g. 1GB, 0 = no spill), got '%.100s'", v);
		break;
	case L_DUR:
		if (!conf_parse_dur_s(v, &num) || num < l->min || num > l->max)
			return conf_raw_fail(r, r->key, err, errlen, "expected a duration (e.g. 5s), got '%.100s'", v);
		break;
	case L_STR:
		break;
	}
	const char *n = l->name;
	if (!strcmp(n, "backend")) {
		if (!strcmp(v, "postgresql"))
			c->ops = &arc_pg_ops;
		else if (!strcmp(v, "mysql"))
			c->ops = &arc_mysql_ops;
		else
			return conf_raw_fail(r, r->key, err, errlen, "expected postgresql or mysql, got '%.100s'", v);
	} else if (!strcmp(n, "server")) {
		char host[256];
		int port = 0;
		char tmp[300];
		/* host alone, or host:port */
		if (!strchr(v, ':') || (v[0] == '[' && !strstr(v, "]:")))
			snprintf(tmp, sizeof(tmp), "%s:0", v);
		else
			snprintf(tmp, sizeof(tmp), "%s", v);
		if (conf_parse_hostport(tmp, host, sizeof(host), &port) != HQ_OK || !*host)
			return conf_raw_fail(r, r->key, err, errlen, "expected host or host:port, got '%.100s'", v);
		set_str(&c->host, host);
		c->port = (uint16_t)port;
	} else if (!strcmp(n, "database")) {
		set_str(&c->database, v);
	} else if (!strcmp(n, "username")) {
		set_str(&c->username, v);
	} else if (!strcmp(n, "password")) {
		set_str(&c->password, v);
	} else if (!strcmp(n, "tls")) {
		c->tls = num;
	} else if (!strcmp(n, "tls_cafile")) {
		if (*v)
			set_str(&c->tls_cafile, v);
		else
			HQ_FREE(c->tls_cafile);
	} else if (!strcmp(n, "topics")) {
		if (!split_topics(c, v))
			return conf_raw_fail(r, r->key, err, errlen, "expected comma-separated MQTT topic filters, got '%.100s'", v);
	} else if (!strcmp(n, "table")) {
		if (!table_ok(v))
			return conf_raw_fail(r, r->key, err, errlen, "expected an SQL table name ([schema.]name of letters, digits and _), got '%.100s'", v);
		set_str(&c->table, v);
	} else if (!strcmp(n, "insert")) {
		if (*v)
			set_str(&c->insert, v);
		else
			HQ_FREE(c->insert);
	} else if (!strcmp(n, "ack")) {
		if (!strcmp(v, "none"))
			c->ack_stored = false;
		else if (!strcmp(v, "stored"))
			c->ack_stored = true;
		else
			return conf_raw_fail(r, r->key, err, errlen, "expected none or stored, got '%.100s'", v);
	} else if (!strcmp(n, "batch_size")) {
		c->batch_size = (uint32_t)num;
	} else if (!strcmp(n, "batch_interval_ms")) {
		c->batch_interval_ms = (uint32_t)num;
	} else if (!strcmp(n, "pool_size")) {
		c->pool_size = (uint32_t)num;
	} else if (!strcmp(n, "buffer_messages")) {
		c->buffer_messages = num;
	} else if (!strcmp(n, "spill_max_bytes")) {
		c->spill_max_bytes = num;
	} else if (!strcmp(n, "retry_min_ms")) {
		c->retry_min_ms = (uint32_t)num;
	} else if (!strcmp(n, "retry_max_ms")) {
		c->retry_max_ms = (uint32_t)num;
	} else if (!strcmp(n, "connect_timeout")) {
		c->connect_timeout_s = (uint32_t)num;
	}
	return HQ_OK;
}

/* After every line: what needs several keys. first: the archive's first
 * line (its origin names where the archive was made). */
static int check_whole(struct arc_conf *c, const struct conf_raw *first, char *err, size_t errlen)
{
	char key[128];
	snprintf(key, sizeof(key), "archive.%s.backend", c->name);
	if (!c->ops)
		return conf_raw_fail(first, key, err, errlen, "required (postgresql or mysql)");
	snprintf(key, sizeof(key), "archive.%s.server", c->name);
	if (!c->host)
		return conf_raw_fail(first, key, err, errlen, "required (host[:port])");
	if (!c->port)
		c->port = !strcmp(c->ops->name, "mysql") ? 3306 : 5432;
	snprintf(key, sizeof(key), "archive.%s.retry_max_ms", c->name);
	if (c->retry_max_ms < c->retry_min_ms)
		return conf_raw_fail(first, key, err, errlen, "must be at least retry_min_ms (%u)", c->retry_min_ms);
	if (!c->n_filters)
		split_topics(c, "#");
	return HQ_OK;
}

void arc_set_free_conf(struct archive_set *s)
{
	for (uint32_t i = 0; i < s->n; i++) {
		arc_conf_free(&s->v[i].c);
		if (s->v[i].tmpl)
			arc_tmpl_free(s->v[i].tmpl);
	}
	hq_free(s->v);
	hq_free(s);
}

int archive_conf(const struct hq_config *cfg, struct archive_set **out, char *err, size_t errlen)
{
	*out = NULL;
	if (!cfg->n_archive_kv)
		return HQ_OK;
	struct archive_set *s = hq_calloc(1, sizeof(*s));
	const struct conf_raw **firsts = hq_calloc((size_t)cfg->n_archive_kv, sizeof(*firsts));
	int rc = HQ_OK;
	for (int i = 0; i < cfg->n_archive_kv && rc == HQ_OK; i++) {
		const struct conf_raw *r = &cfg->archive_kv[i];
		const char *rest = r->key + strlen(CONF_ARCHIVE_PREFIX);
		const char *dot = strrchr(rest, '.');
		if (!dot || !conf_section_name_ok(rest, (size_t)(dot - rest), NAME_MAX_LEN)) {
			rc = conf_raw_fail(r, r->key, err, errlen,
				  "expected archive.<name>.<key>, <name> of letters, digits, _ and - "
				  "(at most %d)", NAME_MAX_LEN);
			break;
		}
		const struct leaf *l = NULL;
		for (size_t k = 0; k < sizeof(leaves) / sizeof(leaves[0]); k++)
			if (!strcmp(dot + 1, leaves[k].name))
				l = &leaves[k];
		if (!l) {
			rc = conf_raw_fail(r, r->key, err, errlen, "unknown key");
			break;
		}
		size_t nl = (size_t)(dot - rest);
		uint32_t a;
		for (a = 0; a < s->n; a++)
			if (strlen(s->v[a].c.name) == nl && !memcmp(s->v[a].c.name, rest, nl))
				break;
		if (a == s->n) {
			if (s->n == ARCHIVE_MAX) {
				rc = conf_raw_fail(r, r->key, err, errlen, "too many archives (at most %d)", ARCHIVE_MAX);
				break;
			}
			s->v = hq_realloc(s->v, (s->n + 1) * sizeof(*s->v));
			memset(&s->v[a], 0, sizeof(s->v[a]));
			char *nm = hq_strndup(rest, nl);
			defaults(&s->v[a].c, nm);
			hq_free(nm);
			firsts[a] = r;
			s->n++;
		}
		rc = apply_leaf(&s->v[a].c, r, l, err, errlen);
	}
	for (uint32_t a = 0; a < s->n && rc == HQ_OK; a++) {
		rc = check_whole(&s->v[a].c, firsts[a], err, errlen);
		if (rc == HQ_OK && s->v[a].c.insert) {
			char why[256] = "";
			if (arc_tmpl_parse(s->v[a].c.insert, &s->v[a].tmpl, why, sizeof(why)) != HQ_OK) {
				char key[128];
				snprintf(key, sizeof(key), "archive.%s.insert", s->v[a].c.name);
				rc = conf_raw_fail(firsts[a], key, err, errlen, "%s", why);
			}
		}
	}
	hq_free(firsts);
	if (rc != HQ_OK) {
		arc_set_free_conf(s);
		return rc;
	}
	for (uint32_t a = 0; a < s->n; a++) {
		s->v[a].set = s;
		s->v[a].idx = a;
	}
	*out = s;
	return HQ_OK;
}
