/*
 * topic_valid.c - topic name and topic filter syntax, and the reference matcher.
 *
 * Layer: broker, pure functions (no state, no allocation). Works on (pointer,
 * length) views; strings need not be NUL-terminated.
 *
 * Invariants:
 *   - A level is the text between '/' separators; "a//b" has an empty middle
 *     level and "/x" an empty first one. Empty levels are legal everywhere.
 *   - topic_matches() is the specification of matching: topic_tree_match() and
 *     retain_tree_match() must agree with it (the unit tests compare them).
 */
#include "broker/topic.h"

#include <string.h>

#define SHARE_PREFIX_LEN (sizeof(TOPIC_SHARE_PREFIX) - 1)

static bool has_share_prefix(const char *f, size_t len)
{
	return len >= SHARE_PREFIX_LEN && memcmp(f, TOPIC_SHARE_PREFIX, SHARE_PREFIX_LEN) == 0;
}

bool topic_name_valid(const char *t, size_t len, unsigned max_levels)
{
	size_t levels = 1;

	if (len == 0)	/* [MQTT-4.7.3-1] */
		return false;
	for (size_t i = 0; i < len; i++) {
		switch (t[i]) {
		case '+':
		case '#':	/* [MQTT-3.3.2-2] wildcards are for filters only */
		case '\0':	/* [MQTT-4.7.3-2] */
			return false;
		case '/':
			levels++;
			break;
		default:
			break;
		}
	}
	return max_levels == 0 || levels <= max_levels;
}

/* A plain (non-shared) filter: wildcards only as whole levels, '#' last. */
static bool plain_filter_valid(const char *f, size_t len, unsigned max_levels)
{
	size_t levels = 1;
	size_t lstart = 0;	/* start of the current level */

	if (len == 0)	/* [MQTT-4.7.3-1] */
		return false;
	for (size_t i = 0; i < len; i++) {
		switch (f[i]) {
		case '/':
			levels++;
			lstart = i + 1;
			break;
		case '+':	/* must be the whole level [MQTT-4.7.1-2] */
			if (i != lstart || (i + 1 < len && f[i + 1] != '/'))
				return false;
			break;
		case '#':	/* whole level and the last one [MQTT-4.7.1-1] */
			if (i != lstart || i + 1 != len)
				return false;
			break;
		case '\0':	/* [MQTT-4.7.3-2] */
			return false;
		default:
			break;
		}
	}
	return max_levels == 0 || levels <= max_levels;
}

bool topic_filter_shared(const char *f, size_t len, const char **group, size_t *group_len,
			 const char **filter, size_t *filter_len)
{
	if (!has_share_prefix(f, len))
		return false;
	const char *g = f + SHARE_PREFIX_LEN;
	const char *end = f + len;
	const char *slash = memchr(g, '/', (size_t)(end - g));
	if (!slash)
		return false;
	*group = g;
	*group_len = (size_t)(slash - g);
	*filter = slash + 1;
	*filter_len = (size_t)(end - slash - 1);
	return true;
}

bool topic_filter_valid(const char *f, size_t len, unsigned max_levels)
{
	const char *g, *sf;
	size_t glen, sflen;

	if (!has_share_prefix(f, len))
		return plain_filter_valid(f, len, max_levels);
	/* Every filter starting with "$share/" is a shared one, so a malformed one is
	 * invalid rather than a literal filter. */
	if (!topic_filter_shared(f, len, &g, &glen, &sf, &sflen))
		return false;	/* no '/' after the share name [MQTT-4.8.2-2] */
	if (glen == 0)		/* [MQTT-4.8.2-1] */
		return false;
	for (size_t i = 0; i < glen; i++)
		if (g[i] == '+' || g[i] == '#' || g[i] == '\0')	/* [MQTT-4.8.2-2] */
			return false;
	return plain_filter_valid(sf, sflen, max_levels);
}

bool topic_matches(const char *filter, size_t flen, const char *topic, size_t tlen)
{
	const char *g, *sf;
	size_t glen, sflen;

	/* A shared filter matches what its inner filter matches [MQTT-4.8.2]. */
	if (topic_filter_shared(filter, flen, &g, &glen, &sf, &sflen)) {
		filter = sf;
		flen = sflen;
	}
	/* [MQTT-4.7.2-1] leading wildcards do not match "$SYS/..." and friends */
	if (tlen > 0 && topic[0] == '$' && flen > 0 && (filter[0] == '+' || filter[0] == '#'))
		return false;

	size_t fi = 0, ti = 0;	/* starts of the current filter and topic levels */
	for (;;) {
		const char *fs = memchr(filter + fi, '/', flen - fi);
		size_t fe = fs ? (size_t)(fs - filter) : flen;
		size_t fl = fe - fi;

		/* '#' also matches the parent level: "sport/#" matches "sport"
		 * [MQTT-4.7.1-2], which is handled by the tail check below. */
		if (fl == 1 && filter[fi] == '#')
			return true;

		const char *ts = memchr(topic + ti, '/', tlen - ti);
		size_t te = ts ? (size_t)(ts - topic) : tlen;
		bool plus = fl == 1 && filter[fi] == '+';
		if (!plus && (fl != te - ti || memcmp(filter + fi, topic + ti, fl) != 0))
			return false;

		bool flast = fe == flen, tlast = te == tlen;
		if (flast || tlast) {
			if (flast && tlast)
				return true;
			if (flast)
				return false;
			/* topic exhausted: only a final "/#" still matches */
			return flen - fe == 2 && filter[fe + 1] == '#';
		}
		fi = fe + 1;
		ti = te + 1;
	}
}
