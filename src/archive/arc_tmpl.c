/*
 * arc_tmpl.c - the operator's INSERT template (archive.<name>.insert): parsed
 * once into SQL with parameter markers plus one descriptor per placeholder;
 * a row's values are produced on demand into a caller-owned scratch
 * (struct arc_tmpl_row), so one template serves every writer thread at once.
 * Pure: no I/O, no global state. Values are always bound by the backend,
 * never spliced into the SQL text: the parser refuses any shape where a
 * marker could land inside a literal, an identifier or a comment.
 */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "archive/arc_backend.h"
#include "core/err.h"

#define TMPL_MAX_TEXT 65536   /* a statement longer than this is a mistake */
#define TMPL_MAX_PARAMS 1024  /* far below MySQL's 65535 markers per statement */
#define TMPL_MAX_DEPTH 16     /* ${payload.a.b...} segments */

enum tmpl_kind {
	TK_TOPIC, TK_PAYLOAD, TK_CLIENTID, TK_USERNAME, TK_QOS, TK_RETAIN,
	TK_TIMESTAMP, TK_NODE, TK_ID, TK_JSON,
};

struct tmpl_param {
	enum tmpl_kind kind;
	char **path; /* TK_JSON: the segments after "payload.", owned */
	uint32_t depth;
};

struct arc_tmpl {
	char *sql_q;      /* with ? markers */
	char *sql_dollar; /* with $1, $2 ... */
	struct tmpl_param *params;
	uint32_t n;
};

static const struct {
	const char *name;
	enum tmpl_kind kind;
} tmpl_names[] = {
	{ "topic", TK_TOPIC }, { "payload", TK_PAYLOAD }, { "clientid", TK_CLIENTID },
	{ "username", TK_USERNAME }, { "qos", TK_QOS }, { "retain", TK_RETAIN },
	{ "timestamp", TK_TIMESTAMP }, { "node", TK_NODE }, { "id", TK_ID },
};

/* A growing output string; on allocation failure `bad` is set and kept. */
struct sbuf {
	char *s;
	size_t len, cap;
	bool bad;
};

static void sb_put(struct sbuf *b, const char *p, size_t n)
{
	if (b->bad)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *s = realloc(b->s, cap);
		if (!s) {
			b->bad = true;
			return;
		}
		b->s = s;
		b->cap = cap;
	}
	memcpy(b->s + b->len, p, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void tmpl_param_free(struct tmpl_param *p)
{
	for (uint32_t i = 0; i < p->depth; i++)
		free(p->path[i]);
	free(p->path);
}

void arc_tmpl_free(struct arc_tmpl *t)
{
	if (!t)
		return;
	for (uint32_t i = 0; i < t->n; i++)
		tmpl_param_free(&t->params[i]);
	free(t->params);
	free(t->sql_q);
	free(t->sql_dollar);
	free(t);
}

/* Split "a.b.c" (the text after "payload.") into segments; every segment non-empty. */
static int tmpl_path(const char *s, size_t len, struct tmpl_param *p, char *err, size_t errlen)
{
	size_t start = 0;
	p->path = calloc(TMPL_MAX_DEPTH, sizeof(*p->path));
	if (!p->path)
		return HQ_ENOMEM;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] != '.')
			continue;
		if (i == start) {
			snprintf(err, errlen, "empty field name in ${payload.%.*s}", (int)len, s);
			return HQ_EINVAL;
		}
		if (p->depth == TMPL_MAX_DEPTH) {
			snprintf(err, errlen, "${payload.%.*s} nests deeper than %d fields", (int)len, s,
				 TMPL_MAX_DEPTH);
			return HQ_EINVAL;
		}
		p->path[p->depth] = strndup(s + start, i - start);
		if (!p->path[p->depth])
			return HQ_ENOMEM;
		p->depth++;
		start = i + 1;
	}
	return HQ_OK;
}

/* The placeholder named s[0..len) into *p. */
static int tmpl_name(const char *s, size_t len, struct tmpl_param *p, char *err, size_t errlen)
{
	for (size_t i = 0; i < sizeof(tmpl_names) / sizeof(tmpl_names[0]); i++)
		if (strlen(tmpl_names[i].name) == len && !memcmp(tmpl_names[i].name, s, len)) {
			p->kind = tmpl_names[i].kind;
			return HQ_OK;
		}
	if (len > 8 && !memcmp(s, "payload.", 8)) {
		for (size_t i = 8; i < len; i++)
			if (isspace((unsigned char)s[i]) || s[i] == '$' || s[i] == '{') {
				snprintf(err, errlen, "bad character in placeholder ${%.*s}", (int)len, s);
				return HQ_EINVAL;
			}
		p->kind = TK_JSON;
		return tmpl_path(s + 8, len - 8, p, err, errlen);
	}
	snprintf(err, errlen, "unknown placeholder ${%.*s} (topic, payload, payload.<field>, "
		 "clientid, username, qos, retain, timestamp, node, id)", (int)(len > 64 ? 64 : len), s);
	return HQ_EINVAL;
}

/* True when text starts (after blanks) with the word INSERT. */
static bool tmpl_is_insert(const char *text)
{
	while (isspace((unsigned char)*text))
		text++;
	return !strncasecmp(text, "INSERT", 6) && isspace((unsigned char)text[6]);
}

/* Where the scanner is: outside any literal, or inside one that ends with `close`. */
struct scan {
	char close;       /* '\'', '"', '`', or 0 outside */
	const char *what; /* for the error message */
};

int arc_tmpl_parse(const char *text, struct arc_tmpl **out, char *err, size_t errlen)
{
	*out = NULL;
	size_t tlen = text ? strlen(text) : 0;
	if (!text || !tlen) {
		snprintf(err, errlen, "empty INSERT template");
		return HQ_EINVAL;
	}
	if (tlen > TMPL_MAX_TEXT) {
		snprintf(err, errlen, "INSERT template longer than %d bytes", TMPL_MAX_TEXT);
		return HQ_EINVAL;
	}
	if (!tmpl_is_insert(text)) {
		snprintf(err, errlen, "the template is not an INSERT statement");
		return HQ_EINVAL;
	}
	struct arc_tmpl *t = calloc(1, sizeof(*t));
	struct sbuf q = { 0 }, d = { 0 };
	uint32_t cap = 0;
	int rc = HQ_OK;
	struct scan sc = { 0, NULL };
	if (!t)
		return HQ_ENOMEM;
	for (size_t i = 0; i < tlen && rc == HQ_OK; i++) {
		char c = text[i];
		if (sc.close) {
			/* a doubled quote or (MySQL) a backslash escapes: either way
			 * the next character is still inside the literal */
			if (c == '\\' && sc.close != '`' && i + 1 < tlen) {
				sb_put(&q, text + i, 2);
				sb_put(&d, text + i, 2);
				i++;
				continue;
			}
			if (c == '$' && i + 1 < tlen && text[i + 1] == '{') {
				snprintf(err, errlen, "placeholder inside a quoted %s (values are bound, "
					 "never spliced: write ${...} without quotes)", sc.what);
				rc = HQ_EINVAL;
				break;
			}
			if (c == sc.close) {
				if (i + 1 < tlen && text[i + 1] == sc.close) {
					sb_put(&q, text + i, 2);
					sb_put(&d, text + i, 2);
					i++;
					continue;
				}
				sc.close = 0;
			}
			sb_put(&q, &c, 1);
			sb_put(&d, &c, 1);
			continue;
		}
		if (c == '\'' || c == '"' || c == '`') {
			sc.close = c;
			sc.what = c == '\'' ? "string literal" : "identifier";
			sb_put(&q, &c, 1);
			sb_put(&d, &c, 1);
			continue;
		}
		/* Comments could hide the markers after them from one server and
		 * not from the other ('#' is a comment in MySQL only), a bare
		 * marker would shift the numbering, a ';' would start a second
		 * statement: all refused rather than half understood. */
		if ((c == '-' && i + 1 < tlen && text[i + 1] == '-') ||
		    (c == '/' && i + 1 < tlen && text[i + 1] == '*') || c == '#') {
			snprintf(err, errlen, "comments are not allowed in an INSERT template");
			rc = HQ_EINVAL;
			break;
		}
		if (c == '?') {
			snprintf(err, errlen, "a bare '?' in the template (use ${...} placeholders)");
			rc = HQ_EINVAL;
			break;
		}
		if (c == ';') {
			size_t j = i + 1;
			while (j < tlen && isspace((unsigned char)text[j]))
				j++;
			if (j == tlen)
				break; /* a trailing ';' is dropped */
			snprintf(err, errlen, "more than one statement in the template");
			rc = HQ_EINVAL;
			break;
		}
		if (c != '$') {
			sb_put(&q, &c, 1);
			sb_put(&d, &c, 1);
			continue;
		}
		if (i + 1 >= tlen || text[i + 1] != '{') {
			snprintf(err, errlen, "a '$' that does not start a ${placeholder}");
			rc = HQ_EINVAL;
			break;
		}
		const char *name = text + i + 2;
		const char *end = memchr(name, '}', tlen - (i + 2));
		if (!end) {
			snprintf(err, errlen, "unterminated ${ in the template");
			rc = HQ_EINVAL;
			break;
		}
		if (t->n == TMPL_MAX_PARAMS) {
			snprintf(err, errlen, "more than %d placeholders", TMPL_MAX_PARAMS);
			rc = HQ_EINVAL;
			break;
		}
		if (t->n == cap) {
			uint32_t ncap = cap ? cap * 2 : 8;
			struct tmpl_param *np = realloc(t->params, ncap * sizeof(*np));
			if (!np) {
				rc = HQ_ENOMEM;
				break;
			}
			t->params = np;
			cap = ncap;
		}
		struct tmpl_param *p = &t->params[t->n];
		memset(p, 0, sizeof(*p));
		rc = tmpl_name(name, (size_t)(end - name), p, err, errlen);
		t->n++; /* counted even on error: freed with the template */
		if (rc != HQ_OK)
			break;
		char num[16];
		int nl = snprintf(num, sizeof(num), "$%" PRIu32, t->n);
		sb_put(&q, "?", 1);
		sb_put(&d, num, (size_t)nl);
		i = (size_t)(end - text);
	}
	if (rc == HQ_OK && sc.close) {
		snprintf(err, errlen, "unterminated quoted %s in the template", sc.what);
		rc = HQ_EINVAL;
	}
	if (rc == HQ_OK && t->n == 0) {
		snprintf(err, errlen, "the template has no ${...} placeholder");
		rc = HQ_EINVAL;
	}
	if (rc == HQ_OK && (q.bad || d.bad))
		rc = HQ_ENOMEM;
	if (rc == HQ_ENOMEM)
		snprintf(err, errlen, "out of memory parsing the template");
	t->sql_q = q.s;
	t->sql_dollar = d.s;
	if (rc != HQ_OK) {
		arc_tmpl_free(t);
		return rc;
	}
	*out = t;
	return HQ_OK;
}

const char *arc_tmpl_sql(const struct arc_tmpl *t, enum arc_marker style)
{
	return style == ARC_MARK_DOLLAR ? t->sql_dollar : t->sql_q;
}

uint32_t arc_tmpl_nparams(const struct arc_tmpl *t)
{
	return t->n;
}

void arc_tmpl_row_init(struct arc_tmpl_row *r, const struct arc_msg *m)
{
	memset(r, 0, sizeof(*r));
	r->m = m;
}

void arc_tmpl_row_done(struct arc_tmpl_row *r)
{
	for (uint32_t i = 0; i < r->n_texts; i++)
		free(r->texts[i]);
	free(r->texts);
	if (r->json)
		cJSON_Delete(r->json);
	memset(r, 0, sizeof(*r));
}

/* Keep s (malloc'd) in the row until done; NULL when it cannot. */
static const char *row_keep(struct arc_tmpl_row *r, char *s)
{
	if (!s)
		return NULL;
	char **nt = realloc(r->texts, (r->n_texts + 1) * sizeof(*nt));
	if (!nt) {
		free(s);
		return NULL;
	}
	r->texts = nt;
	r->texts[r->n_texts++] = s;
	return s;
}

static const cJSON *row_json(struct arc_tmpl_row *r)
{
	if (!r->json_tried) {
		r->json_tried = true;
		if (r->m->payload_len)
			r->json = cJSON_ParseWithLength((const char *)r->m->payload, r->m->payload_len);
	}
	return r->json;
}

/* A number as its shortest text that reads back the same (cJSON keeps a
 * double: an integer beyond 2^53 comes out rounded). */
static char *json_number(const cJSON *v)
{
	char buf[64];
	double d = v->valuedouble;
	if (d == (double)(int64_t)d && d > -9.2e18 && d < 9.2e18)
		snprintf(buf, sizeof(buf), "%" PRId64, (int64_t)d);
	else {
		snprintf(buf, sizeof(buf), "%.15g", d);
		if (strtod(buf, NULL) != d)
			snprintf(buf, sizeof(buf), "%.17g", d);
	}
	return strdup(buf);
}

static const char *param_json(const struct tmpl_param *p, struct arc_tmpl_row *r, size_t *len)
{
	const cJSON *v = row_json(r);
	for (uint32_t i = 0; v && i < p->depth; i++) {
		if (cJSON_IsObject(v))
			v = cJSON_GetObjectItemCaseSensitive(v, p->path[i]);
		else if (cJSON_IsArray(v)) {
			char *e;
			unsigned long k = strtoul(p->path[i], &e, 10);
			v = (*e || !isdigit((unsigned char)p->path[i][0]) || k > INT32_MAX) ? NULL
				: cJSON_GetArrayItem(v, (int)k);
		}
		else
			v = NULL;
	}
	const char *s = NULL;
	if (!v || cJSON_IsNull(v) || cJSON_IsInvalid(v))
		return NULL;
	if (cJSON_IsString(v))
		s = v->valuestring;
	else if (cJSON_IsBool(v))
		s = cJSON_IsTrue(v) ? "true" : "false";
	else if (cJSON_IsNumber(v))
		s = row_keep(r, json_number(v));
	else
		s = row_keep(r, cJSON_PrintUnformatted(v));
	if (s)
		*len = strlen(s);
	return s;
}

const char *arc_tmpl_param(const struct arc_tmpl *t, struct arc_tmpl_row *r, uint32_t i,
			   size_t *len, bool *binary)
{
	const struct arc_msg *m = r->m;
	char buf[32];
	*len = 0;
	*binary = false;
	if (i >= t->n)
		return NULL;
	const struct tmpl_param *p = &t->params[i];
	switch (p->kind) {
	case TK_TOPIC:
		*len = m->topic_len;
		return m->topic ? m->topic : "";
	case TK_PAYLOAD:
		*binary = true;
		*len = m->payload_len;
		return m->payload ? (const char *)m->payload : "";
	case TK_CLIENTID:
		*len = m->clientid_len;
		return m->clientid ? m->clientid : "";
	case TK_USERNAME:
		if (!m->username)
			return NULL;
		*len = m->username_len;
		return m->username;
	case TK_QOS:
		*len = 1;
		return m->qos == 0 ? "0" : m->qos == 1 ? "1" : "2";
	case TK_RETAIN:
		/* 1/0 rather than true/false: a boolean (PostgreSQL) and a
		 * TINYINT (MySQL's BOOLEAN) column both take it */
		*len = 1;
		return m->retain ? "1" : "0";
	case TK_TIMESTAMP: {
		snprintf(buf, sizeof(buf), "%" PRId64, m->ts_ms);
		const char *s = row_keep(r, strdup(buf));
		if (s)
			*len = strlen(s);
		return s;
	}
	case TK_NODE:
		*len = m->node ? strlen(m->node) : 0;
		return m->node ? m->node : "";
	case TK_ID:
		*len = strnlen(m->id, ARC_ID_HEX);
		return m->id;
	case TK_JSON:
		return param_json(p, r, len);
	}
	return NULL;
}
