/* bytes.c - the out-of-line parts of the byte cursors (see bytes.h). */
#include "core/bytes.h"

int bytes_varint_get(const uint8_t *p, size_t n, uint32_t *v)
{
	uint32_t val = 0;

	for (size_t i = 0; i < 4; i++) {
		if (i >= n)
			return 0;
		val |= (uint32_t)(p[i] & 0x7F) << (7 * i);
		if (!(p[i] & 0x80)) {
			if (i > 0 && p[i] == 0)
				return -1;
			*v = val;
			return (int)i + 1;
		}
	}
	return -1;  /* continuation bit on the 4th byte */
}

uint32_t bytes_rd_varint(struct bytes_rd *r)
{
	uint32_t v = 0;

	if (r->rc != HQ_OK)
		return 0;
	int used = bytes_varint_get(r->p + r->pos, r->len - r->pos, &v);
	if (used == 0) {
		bytes_rd_fail(r, HQ_EMALFORMED, "variable byte integer runs past the end");
		return 0;
	}
	if (used < 0) {
		bytes_rd_fail(r, HQ_EMALFORMED, "invalid variable byte integer");
		return 0;
	}
	r->pos += (size_t)used;
	return v;
}

void bytes_wr_fail(struct bytes_wr *w, int rc, const char *why)
{
	if (w->rc == HQ_OK) {
		w->rc = rc;
		w->why = why;
	}
	w->cap = 0;   /* every later put takes the slow path, which only counts */
}

void bytes_wr_slow(struct bytes_wr *w, const void *src, size_t k)
{
	if (w->rc != HQ_OK || (!w->p && !w->b)) {
		w->n += k;   /* after an error, or count mode */
		return;
	}
	if (w->b) {
		/* buf_reserve may move the data (compaction, realloc): resync */
		w->b->len = w->n;
		memcpy(buf_reserve(w->b, k), src, k);
		w->b->len += k;
		w->p = w->b->data;
		w->n = w->b->len;
		w->cap = w->b->cap;
		return;
	}
	if (w->n + k <= w->cap) {   /* fits; a varint's 4-byte fast check did not */
		memcpy(w->p + w->n, src, k);
		w->n += k;
		return;
	}
	bytes_wr_fail(w, HQ_ETOOLARGE, "write past the end of the output");
	w->n += k;
}
