/*
 * arc_topic.c - an archive's `topics` filters against a PUBLISH's topic
 * name: MQTT's matching rules, nothing more (the broker's subscription tree
 * is worker-owned and shaped for many filters; an archive has a few).
 */
#include "archive/arc_int.h"

#include <string.h>

bool arc_filter_valid(const char *f)
{
	size_t n = strlen(f);
	if (!n || n > 65535)
		return false;
	for (size_t i = 0; i < n; i++) {
		bool start = i == 0 || f[i - 1] == '/';
		bool end = i + 1 == n || f[i + 1] == '/';
		if (f[i] == '+' && !(start && end))
			return false; /* [MQTT-4.7.1-3] '+' fills a whole level */
		if (f[i] == '#' && !(start && i + 1 == n))
			return false; /* [MQTT-4.7.1-2] '#' last, alone in its level */
	}
	return true;
}

bool arc_topic_match(const char *filter, const char *topic, size_t len)
{
	const char *f = filter, *t = topic, *te = topic + len;
	/* [MQTT-4.7.2-1] a wildcard first level never matches a '$' topic */
	if (len && topic[0] == '$' && (f[0] == '+' || f[0] == '#'))
		return false;
	for (;;) {
		if (f[0] == '#')
			return true; /* the rest, parent level included ("a/#" matches "a") */
		const char *fe = strchr(f, '/');
		size_t fl = fe ? (size_t)(fe - f) : strlen(f);
		const char *ts = memchr(t, '/', (size_t)(te - t));
		size_t tl = ts ? (size_t)(ts - t) : (size_t)(te - t);
		if (!(fl == 1 && f[0] == '+') && (fl != tl || memcmp(f, t, fl)))
			return false;
		if (!fe && !ts)
			return true;
		if (!fe)
			return false; /* topic has more levels */
		if (!ts)
			return !strcmp(fe + 1, "#"); /* "a/#" matches "a" */
		f = fe + 1;
		t = ts + 1;
	}
}
