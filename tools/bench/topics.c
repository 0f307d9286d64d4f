/*
 * topics.c - hamqtt-bench's topic helpers: pattern expansion (%i, %n) and
 * filter matching, to know which subscriber expects which message.
 */
#include "bench.h"
#include "core/buf.h"

#include <stdio.h>
#include <string.h>

char *topic_expand(const char *pat, uint32_t i, uint32_t seq)
{
	struct buf out = { 0 };
	char num[16];

	for (const char *p = pat; *p; p++) {
		if (p[0] == '%' && (p[1] == 'i' || p[1] == 'n')) {
			int n = snprintf(num, sizeof(num), "%u", p[1] == 'i' ? i : seq);
			buf_append(&out, num, (size_t)n);
			p++;
		} else if (p[0] == '%' && p[1] == '%') {
			buf_append(&out, "%", 1);
			p++;
		} else {
			buf_append(&out, p, 1);
		}
	}
	buf_append(&out, "", 1);
	return (char *)out.data;
}

bool topic_match(const char *f, const char *n)
{
	if (n[0] == '$' && (f[0] == '+' || f[0] == '#'))
		return false;   /* [MQTT-4.7.2-1] */
	for (;;) {
		if (f[0] == '#' && f[1] == 0)
			return true;
		if (f[0] == '+' && (f[1] == '/' || f[1] == 0)) {
			f++;
			while (*n && *n != '/')
				n++;
		} else {
			while (*f && *f != '/' && *f == *n) {
				f++;
				n++;
			}
			if ((*f && *f != '/') || (*n && *n != '/'))
				return false;
		}
		if (*f == 0 && *n == 0)
			return true;
		if (*f == 0 || *n == 0)   /* "a/#" also matches "a" */
			return *n == 0 && strcmp(f, "/#") == 0;
		f++;
		n++;
	}
}
