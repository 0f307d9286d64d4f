/*
 * hist.c - latency histogram, HDR style: log-linear buckets in fixed memory.
 *
 * Values (nanoseconds) below HIST_SUB are counted exactly. Above, each power
 * of two [2^k, 2^(k+1)) is split into HIST_HALF equal buckets, so a reported
 * percentile is within 1/HIST_HALF (0.8 %) of the true value. min, max and the
 * mean are exact.
 */
#include "bench.h"

#include <string.h>

static unsigned bucket_of(uint64_t v)
{
	if (v < HIST_SUB)
		return (unsigned)v;
	unsigned msb = 63u - (unsigned)__builtin_clzll(v);
	unsigned e = msb - (HIST_SUB_BITS - 1);   /* v >> e is in [HIST_HALF, HIST_SUB) */
	return HIST_SUB + (e - 1) * HIST_HALF + (unsigned)((v >> e) - HIST_HALF);
}

/* the middle of bucket i */
static uint64_t value_of(unsigned i)
{
	if (i < HIST_SUB)
		return i;
	unsigned e = (i - HIST_SUB) / HIST_HALF + 1;
	uint64_t m = (i - HIST_SUB) % HIST_HALF + HIST_HALF;
	return (m << e) + ((uint64_t)1 << (e - 1));
}

void hist_reset(struct hist *h)
{
	memset(h, 0, sizeof(*h));
}

void hist_add(struct hist *h, uint64_t v)
{
	if (v >> 62)
		v = (uint64_t)1 << 62;
	h->counts[bucket_of(v)]++;
	if (h->n == 0 || v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	h->n++;
	h->sum += (double)v;
}

uint64_t hist_pct(const struct hist *h, double p)
{
	if (h->n == 0)
		return 0;
	if (p >= 100.0)
		return h->max;
	uint64_t want = (uint64_t)((double)h->n * p / 100.0 + 0.5);
	if (want < 1)
		want = 1;
	uint64_t seen = 0;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->counts[i];
		if (seen >= want) {
			uint64_t v = value_of(i);
			if (v > h->max)
				v = h->max;
			if (v < h->min)
				v = h->min;
			return v;
		}
	}
	return h->max;
}
