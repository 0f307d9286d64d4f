/*
 * http_query.h - a request's query string as decoded name/value pairs, and
 * back. Pure (no MHD, no broker): http_server.c fills one from MHD's decoded
 * arguments; a request a peer node forwards over the cluster carries the
 * encoded form (http_query_encode) and is parsed back with http_query_parse.
 *
 * Ownership: a struct http_query owns every name and value (malloc'd);
 * http_query_free releases them. Lookups return borrowed pointers valid
 * until the query is freed.
 */
#ifndef HQ_HTTP_QUERY_H
#define HQ_HTTP_QUERY_H

#include <stddef.h>

#define HTTP_QUERY_MAX_ARGS 64 /* more arguments than this: HQ_ELIMIT (400) */

struct http_qarg {
	char *name;
	char *value; /* "" for a bare "?name" */
};

struct http_query {
	struct http_qarg *v; /* owned */
	size_t n;
};

/* Append a copy of name=value (value NULL is taken as ""). HQ_OK or HQ_ELIMIT. */
int http_query_add(struct http_query *q, const char *name, const char *value);
/* Parse "a=1&b=x%20y" (len bytes, no leading '?'): %XX and '+' decoded.
 * HQ_OK, HQ_EINVAL (bad escape, NUL byte) or HQ_ELIMIT. q is left holding the
 * arguments read before the error; free it either way. */
int http_query_parse(struct http_query *q, const char *qs, size_t len);
/* The first value of name, or NULL. q may be NULL (no query). */
const char *http_query_get(const struct http_query *q, const char *name);
/* "a=1&b=x%20y", every byte outside [A-Za-z0-9-._~] escaped; arguments whose
 * name starts with skip_prefix (if not NULL) are left out. malloc'd (the
 * caller frees), "" for none; NULL only on allocation failure. */
char *http_query_encode(const struct http_query *q, const char *skip_prefix);
void http_query_free(struct http_query *q);

#endif
