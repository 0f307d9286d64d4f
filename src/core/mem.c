/* mem.c - abort-on-OOM allocation wrappers (see mem.h). */
#include "core/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(size_t n)
{
	fprintf(stderr, "hamqtt: out of memory allocating %zu bytes\n", n);
	abort();
}

void *hq_malloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom(n);
	return p;
}

void *hq_calloc(size_t count, size_t size)
{
	void *p = calloc(count ? count : 1, size ? size : 1);
	if (!p)
		oom(count * size);
	return p;
}

void *hq_realloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		oom(n);
	return q;
}

char *hq_strdup(const char *s)
{
	return hq_memdup(s, strlen(s) + 1);
}

char *hq_strndup(const char *s, size_t n)
{
	char *p = hq_malloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

void *hq_memdup(const void *src, size_t n)
{
	void *p = hq_malloc(n);
	if (n)
		memcpy(p, src, n);
	return p;
}
