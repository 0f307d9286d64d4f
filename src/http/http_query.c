/*
 * http_query.c - query strings as name/value pairs (see http_query.h).
 */
#include "http/http_query.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/mem.h"

int http_query_add(struct http_query *q, const char *name, const char *value)
{
	if (q->n >= HTTP_QUERY_MAX_ARGS)
		return HQ_ELIMIT;
	q->v = hq_realloc(q->v, (q->n + 1) * sizeof(*q->v));
	q->v[q->n].name = hq_strdup(name);
	q->v[q->n].value = hq_strdup(value ? value : "");
	q->n++;
	return HQ_OK;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode s[0..n) into a new NUL-terminated string; NULL on a bad escape or
 * an encoded NUL (a C string cannot carry it, and no argument needs one). */
static char *decode(const char *s, size_t n)
{
	char *out = hq_malloc(n + 1);
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			int h = i + 2 < n ? hexval(s[i + 1]) : -1;
			int l = i + 2 < n ? hexval(s[i + 2]) : -1;
			if (h < 0 || l < 0) {
				free(out);
				return NULL;
			}
			c = (char)(h * 16 + l);
			i += 2;
		}
		if (c == '\0') {
			free(out);
			return NULL;
		}
		out[o++] = c;
	}
	out[o] = '\0';
	return out;
}

int http_query_parse(struct http_query *q, const char *qs, size_t len)
{
	size_t i = 0;
	while (i < len) {
		size_t end = i;
		while (end < len && qs[end] != '&')
			end++;
		if (end > i) { /* "a&&b": empty pieces are skipped */
			size_t eq = i;
			while (eq < end && qs[eq] != '=')
				eq++;
			char *name = decode(qs + i, eq - i);
			char *value = eq < end ? decode(qs + eq + 1, end - eq - 1) : hq_strdup("");
			int rc = name && value ? HQ_OK : HQ_EINVAL;
			if (rc == HQ_OK && q->n >= HTTP_QUERY_MAX_ARGS)
				rc = HQ_ELIMIT;
			if (rc != HQ_OK) {
				free(name);
				free(value);
				return rc;
			}
			q->v = hq_realloc(q->v, (q->n + 1) * sizeof(*q->v));
			q->v[q->n].name = name;   /* ownership moves to q */
			q->v[q->n].value = value;
			q->n++;
		}
		i = end + 1;
	}
	return HQ_OK;
}

const char *http_query_get(const struct http_query *q, const char *name)
{
	for (size_t i = 0; q && i < q->n; i++)
		if (!strcmp(q->v[i].name, name))
			return q->v[i].value;
	return NULL;
}

static void encode_into(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~') {
			buf_append(b, s, 1);
		} else {
			char e[3] = { '%', hex[c >> 4], hex[c & 15] };
			buf_append(b, e, 3);
		}
	}
}

char *http_query_encode(const struct http_query *q, const char *skip_prefix)
{
	struct buf b = { 0 };
	size_t skip = skip_prefix ? strlen(skip_prefix) : 0;
	bool first = true;
	for (size_t i = 0; q && i < q->n; i++) {
		if (skip && !strncmp(q->v[i].name, skip_prefix, skip))
			continue;
		if (!first)
			buf_append(&b, "&", 1);
		first = false;
		encode_into(&b, q->v[i].name);
		buf_append(&b, "=", 1);
		encode_into(&b, q->v[i].value);
	}
	char *out = hq_malloc(b.len + 1);
	if (b.len)
		memcpy(out, b.data, b.len);
	out[b.len] = '\0';
	buf_free(&b);
	return out;
}

void http_query_free(struct http_query *q)
{
	for (size_t i = 0; i < q->n; i++) {
		free(q->v[i].name);
		free(q->v[i].value);
	}
	free(q->v);
	q->v = NULL;
	q->n = 0;
}
