/*
 * buf.h - a growable byte buffer with a read offset.
 *
 * Owner: whoever embeds the struct; buf_free releases the storage. Data lives in
 * data[off .. len); buf_consume advances off and compacts lazily.
 */
#ifndef HQ_CORE_BUF_H
#define HQ_CORE_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
	uint8_t *data;
	size_t off;   /* first unread byte */
	size_t len;   /* end of valid bytes */
	size_t cap;   /* allocated bytes */
};

static inline size_t buf_avail(const struct buf *b) { return b->len - b->off; }
static inline uint8_t *buf_head(const struct buf *b) { return b->data + b->off; }

/* Make room for at least n more bytes after len; returns pointer to the room. */
uint8_t *buf_reserve(struct buf *b, size_t n);
void buf_append(struct buf *b, const void *p, size_t n);
void buf_consume(struct buf *b, size_t n);
void buf_reset(struct buf *b);          /* drop contents, keep storage */
void buf_free(struct buf *b);           /* release storage */
/* Release storage if the buffer is empty and larger than keep bytes (idle conns). */
void buf_shrink(struct buf *b, size_t keep);

#endif
