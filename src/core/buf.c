/* buf.c - growable byte buffer (see buf.h). */
#include "core/buf.h"
#include "core/mem.h"

#include <string.h>

uint8_t *buf_reserve(struct buf *b, size_t n)
{
	if (b->off && b->off == b->len) {
		b->off = b->len = 0;
	}
	if (b->cap - b->len >= n) /* NULL + 0 is undefined behaviour too: no data, no room */
		return b->data ? b->data + b->len : NULL;
	/* compact before growing when at least half is consumed */
	if (b->off && b->off >= b->cap / 2) {
		memmove(b->data, b->data + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
		if (b->cap - b->len >= n)
			return b->data + b->len;
	}
	size_t ncap = b->cap ? b->cap : 256;
	while (ncap - b->len < n)
		ncap *= 2;
	b->data = hq_realloc(b->data, ncap);
	b->cap = ncap;
	return b->data + b->len;
}

void buf_append(struct buf *b, const void *p, size_t n)
{
	uint8_t *d = buf_reserve(b, n);
	/* n == 0 on a buf that never held data: d is NULL, and memcpy to NULL
	 * is undefined behaviour even for 0 bytes (found by fuzz_auth_answer) */
	if (n)
		memcpy(d, p, n);
	b->len += n;
}

void buf_consume(struct buf *b, size_t n)
{
	b->off += n;
	if (b->off >= b->len)
		b->off = b->len = 0;
}

void buf_reset(struct buf *b)
{
	b->off = b->len = 0;
}

void buf_free(struct buf *b)
{
	HQ_FREE(b->data);
	b->off = b->len = b->cap = 0;
}

void buf_shrink(struct buf *b, size_t keep)
{
	if (b->off == b->len && b->cap > keep)
		buf_free(b);
}
