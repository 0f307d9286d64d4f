/* clu_hlc.c - hybrid logical clock for retained last-writer-wins (see clu_hlc.h). */
#include "cluster/clu_hlc.h"

#include <string.h>

#include "core/err.h"

void clu_hlc_init(struct clu_hlc *c)
{
	c->last.wall_ms = 0;
	c->last.logical = 0;
	c->max_drift_ms = CLU_HLC_MAX_DRIFT_MS;
}

/*
 * Store {wall, logical} as c->last, where logical may be 0x10000 (the +1 of
 * the HLC rules overflowed): then the next millisecond starts at 0. Saturates
 * at the end of time rather than wrapping.
 */
static struct clu_hlc_ts hlc_set(struct clu_hlc *c, uint64_t wall, uint32_t logical)
{
	if (logical > UINT16_MAX) {
		if (wall == UINT64_MAX) {
			logical = UINT16_MAX;
		} else {
			wall++;
			logical = 0;
		}
	}
	c->last.wall_ms = wall;
	c->last.logical = (uint16_t)logical;
	return c->last;
}

struct clu_hlc_ts clu_hlc_now(struct clu_hlc *c, uint64_t wall_ms)
{
	if (wall_ms > c->last.wall_ms)
		return hlc_set(c, wall_ms, 0);
	return hlc_set(c, c->last.wall_ms, (uint32_t)c->last.logical + 1);
}

int clu_hlc_update(struct clu_hlc *c, struct clu_hlc_ts remote, uint64_t wall_ms,
		   struct clu_hlc_ts *out)
{
	struct clu_hlc_ts ts;
	uint64_t l = wall_ms;

	if (remote.wall_ms > wall_ms && remote.wall_ms - wall_ms > c->max_drift_ms)
		return HQ_EINVAL;
	if (c->last.wall_ms > l)
		l = c->last.wall_ms;
	if (remote.wall_ms > l)
		l = remote.wall_ms;

	if (l == c->last.wall_ms && l == remote.wall_ms) {
		uint32_t m = c->last.logical > remote.logical ? c->last.logical : remote.logical;
		ts = hlc_set(c, l, m + 1);
	} else if (l == c->last.wall_ms) {
		ts = hlc_set(c, l, (uint32_t)c->last.logical + 1);
	} else if (l == remote.wall_ms) {
		ts = hlc_set(c, l, (uint32_t)remote.logical + 1);
	} else {
		ts = hlc_set(c, l, 0);
	}
	if (out)
		*out = ts;
	return HQ_OK;
}

int clu_hlc_ts_cmp(struct clu_hlc_ts a, struct clu_hlc_ts b)
{
	if (a.wall_ms != b.wall_ms)
		return a.wall_ms < b.wall_ms ? -1 : 1;
	if (a.logical != b.logical)
		return a.logical < b.logical ? -1 : 1;
	return 0;
}

int clu_hlc_cmp(struct clu_hlc_ts a, const char *a_node, size_t a_len,
		struct clu_hlc_ts b, const char *b_node, size_t b_len)
{
	int r = clu_hlc_ts_cmp(a, b);
	size_t n = a_len < b_len ? a_len : b_len;

	if (r)
		return r;
	r = n ? memcmp(a_node, b_node, n) : 0;
	if (r)
		return r < 0 ? -1 : 1;
	if (a_len != b_len)
		return a_len < b_len ? -1 : 1;
	return 0;
}
