/*
 * bytes.h - the one byte cursor pair of the code base: a bounds-checked
 * reader and a writer, big-endian fixed widths plus MQTT variable byte
 * integers (spec 1.5.5). Used by the MQTT codec (the hot path: everything
 * here that runs per field is inline), the session serialiser and the
 * cluster codec.
 *
 * Errors are sticky (SQLite's pRC idiom). The first failure records a code
 * and a static reason text, and every later call is harmless: a reader
 * returns zeros and NULL pointers and never reads out of bounds; a writer
 * writes nothing more but keeps counting. So a codec is a straight sequence
 * of calls judged once at the end, and the reason logged is the first cause,
 * not one of its consequences.
 *
 * Writer targets (chosen at init, same calls for all three):
 *   fixed      a caller's memory of known capacity (running past it is an
 *              error, HQ_ETOOLARGE, never an overflow)
 *   count      no memory: only n advances (an encoder's sizing pass, so the
 *              size and the bytes come from the same code and cannot differ)
 *   buf        a growable struct buf (core/buf.h), appended at its len;
 *              bytes_wr_end() commits the new len, or on error restores it
 * Every put takes one compare on the fast path (n + k <= cap), count mode
 * one more; growth, running out of room and errors go through one
 * out-of-line function.
 */
#ifndef HQ_CORE_BYTES_H
#define HQ_CORE_BYTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"

#define BYTES_VARINT_MAX 268435455u   /* largest MQTT variable byte integer */

#if defined(__GNUC__)
#define BYTES_LIKELY(x) __builtin_expect(!!(x), 1)
#else
#define BYTES_LIKELY(x) (x)
#endif

/* ---- MQTT variable byte integers ---- */

static inline size_t bytes_varint_size(uint32_t v)
{
	return v < 128 ? 1 : v < 16384 ? 2 : v < 2097152 ? 3 : 4;
}

/* Encode v (<= BYTES_VARINT_MAX; larger values are truncated to 4 bytes)
 * into p[0..4); returns the bytes used. */
static inline size_t bytes_varint_put(uint8_t *p, uint32_t v)
{
	size_t n = 0;

	do {
		uint8_t b = v & 0x7F;
		v >>= 7;
		if (v)
			b |= 0x80;
		p[n++] = b;
	} while (v && n < 4);
	return n;
}

/*
 * Decode the varint at p[0..n): bytes used (1..4), 0 if p ends before the
 * last byte, -1 if it is invalid: a continuation bit on the 4th byte, or a
 * multi-byte form ending in 0 (longer than needed, which [MQTT-1.5.5-1]
 * forbids: two encodings of one value would let bytes be smuggled past
 * anything comparing encodings).
 */
int bytes_varint_get(const uint8_t *p, size_t n, uint32_t *v);

/* ---- bare stores ----
 * Big-endian stores into memory already sized for them, no checks; each
 * returns the position after what it stored. Only for an encoder that
 * computes its exact size first and asserts it after (the outgoing PUBLISH
 * of mqtt_pub_out_encode, once per delivery): there the writer's per-put
 * bounds check is pure overhead. Everything else uses the writer below. */

static inline uint8_t *bytes_st_u8(uint8_t *q, uint8_t v)
{
	*q = v;
	return q + 1;
}

static inline uint8_t *bytes_st_u16(uint8_t *q, uint16_t v)
{
	q[0] = (uint8_t)(v >> 8);
	q[1] = (uint8_t)v;
	return q + 2;
}

static inline uint8_t *bytes_st_u32(uint8_t *q, uint32_t v)
{
	q[0] = (uint8_t)(v >> 24);
	q[1] = (uint8_t)(v >> 16);
	q[2] = (uint8_t)(v >> 8);
	q[3] = (uint8_t)v;
	return q + 4;
}

static inline uint8_t *bytes_st_varint(uint8_t *q, uint32_t v)
{
	return q + bytes_varint_put(q, v);
}

static inline uint8_t *bytes_st_mem(uint8_t *q, const void *src, size_t n)
{
	if (n)
		memcpy(q, src, n);
	return q + n;
}

/* ---- reader ---- */

struct bytes_rd {
	const uint8_t *p;
	size_t len;                 /* end of readable bytes */
	size_t pos;                 /* next byte to read */
	int rc;                     /* first error, HQ_OK while none */
	const char *why;            /* static text for rc, NULL while none */
};

static inline void bytes_rd_init(struct bytes_rd *r, const void *p, size_t len)
{
	r->p = p;
	r->len = len;
	r->pos = 0;
	r->rc = HQ_OK;
	r->why = NULL;
}

static inline bool bytes_rd_ok(const struct bytes_rd *r)
{
	return r->rc == HQ_OK;
}

/* Record an error unless one is already recorded, and jump to the end so
 * nothing more is read. */
static inline void bytes_rd_fail(struct bytes_rd *r, int rc, const char *why)
{
	if (r->rc == HQ_OK) {
		r->rc = rc;
		r->why = why;
	}
	r->pos = r->len;
}

/* A value check: HQ_EMALFORMED with why unless ok. */
static inline void bytes_rd_check(struct bytes_rd *r, bool ok, const char *why)
{
	if (!ok)
		bytes_rd_fail(r, HQ_EMALFORMED, why);
}

static inline size_t bytes_rd_left(const struct bytes_rd *r)
{
	return r->len - r->pos;
}

/* the next unread byte (the end after an error) */
static inline const uint8_t *bytes_rd_cur(const struct bytes_rd *r)
{
	return r->p + r->pos;
}

/* true if n more bytes are there; otherwise records a truncation */
static inline bool bytes_rd_need(struct bytes_rd *r, size_t n)
{
	if (BYTES_LIKELY(r->rc == HQ_OK && r->len - r->pos >= n))
		return true;
	bytes_rd_fail(r, HQ_EMALFORMED, "field runs past the end of the input");
	return false;
}

static inline uint8_t bytes_rd_u8(struct bytes_rd *r)
{
	if (!bytes_rd_need(r, 1))
		return 0;
	return r->p[r->pos++];
}

static inline uint16_t bytes_rd_u16(struct bytes_rd *r)
{
	if (!bytes_rd_need(r, 2))
		return 0;
	const uint8_t *q = r->p + r->pos;
	r->pos += 2;
	return (uint16_t)(q[0] << 8 | q[1]);
}

static inline uint32_t bytes_rd_u32(struct bytes_rd *r)
{
	if (!bytes_rd_need(r, 4))
		return 0;
	const uint8_t *q = r->p + r->pos;
	r->pos += 4;
	return (uint32_t)q[0] << 24 | (uint32_t)q[1] << 16 | (uint32_t)q[2] << 8 | q[3];
}

static inline uint64_t bytes_rd_u64(struct bytes_rd *r)
{
	uint64_t hi = bytes_rd_u32(r);
	return hi << 32 | bytes_rd_u32(r);
}

/* n bytes, borrowed from the input (non-NULL even for n == 0 while the input
 * is), or NULL after an error */
static inline const uint8_t *bytes_rd_take(struct bytes_rd *r, size_t n)
{
	if (!bytes_rd_need(r, n))
		return NULL;
	const uint8_t *q = r->p + r->pos;
	r->pos += n;
	return q;
}

/* An MQTT variable byte integer (shortest form only). */
uint32_t bytes_rd_varint(struct bytes_rd *r);

/* ---- writer ---- */

struct bytes_wr {
	uint8_t *p;                 /* fixed: the target; buf: b->data; count: NULL */
	size_t n;                   /* next write offset in p (buf: b's len) */
	size_t cap;                 /* the fast path holds while n + k <= cap */
	struct buf *b;              /* buf target, else NULL */
	size_t start;               /* buf: len - off at init, restored on error
				     * (relative to off: buf_reserve may compact) */
	int rc;                     /* first error, HQ_OK while none */
	const char *why;            /* static text for rc */
};

static inline void bytes_wr_fixed(struct bytes_wr *w, void *p, size_t cap)
{
	*w = (struct bytes_wr){ p, 0, cap, NULL, 0, HQ_OK, NULL };
}

static inline void bytes_wr_count(struct bytes_wr *w)
{
	*w = (struct bytes_wr){ NULL, 0, 0, NULL, 0, HQ_OK, NULL };
}

/* Append to b from its len; nothing is visible in b until bytes_wr_end. */
static inline void bytes_wr_buf(struct bytes_wr *w, struct buf *b)
{
	*w = (struct bytes_wr){ b->data, b->len, b->cap, b, b->len - b->off, HQ_OK, NULL };
}

/* Record an error unless one is already recorded; from now on nothing is
 * written (n still counts). */
void bytes_wr_fail(struct bytes_wr *w, int rc, const char *why);

/* A value check: HQ_EINVAL with why unless ok. */
static inline void bytes_wr_check(struct bytes_wr *w, bool ok, const char *why)
{
	if (!ok)
		bytes_wr_fail(w, HQ_EINVAL, why);
}

/* Finish: the first error, or HQ_OK. A buf target's len then covers what was
 * written, or on error is back where it was at bytes_wr_buf (growth may have
 * moved it meanwhile; its storage may have grown). */
static inline int bytes_wr_end(struct bytes_wr *w)
{
	if (w->b)
		w->b->len = w->rc == HQ_OK ? w->n : w->b->off + w->start;
	return w->rc;
}

/* count mode: inline too, an encoder's sizing pass is on the hot path */
static inline bool bytes_wr_counting(const struct bytes_wr *w)
{
	return ((uintptr_t)w->p | (uintptr_t)w->b) == 0;
}

/* growth, running out of fixed room, and writes after an error */
void bytes_wr_slow(struct bytes_wr *w, const void *src, size_t k);

/* k (> 0, usually a constant) bytes from src */
static inline void bytes_wr_put(struct bytes_wr *w, const void *src, size_t k)
{
	if (BYTES_LIKELY(w->n + k <= w->cap)) {
		memcpy(w->p + w->n, src, k);
		w->n += k;
	} else if (bytes_wr_counting(w)) {
		w->n += k;
	} else {
		bytes_wr_slow(w, src, k);
	}
}

static inline void bytes_wr_u8(struct bytes_wr *w, uint8_t v)
{
	bytes_wr_put(w, &v, 1);
}

static inline void bytes_wr_u16(struct bytes_wr *w, uint16_t v)
{
	uint8_t t[2] = { (uint8_t)(v >> 8), (uint8_t)v };
	bytes_wr_put(w, t, 2);
}

static inline void bytes_wr_u32(struct bytes_wr *w, uint32_t v)
{
	uint8_t t[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };
	bytes_wr_put(w, t, 4);
}

static inline void bytes_wr_u64(struct bytes_wr *w, uint64_t v)
{
	bytes_wr_u32(w, (uint32_t)(v >> 32));
	bytes_wr_u32(w, (uint32_t)v);
}

/* n raw bytes (n may be 0, src then may be NULL) */
static inline void bytes_wr_bytes(struct bytes_wr *w, const void *src, size_t n)
{
	if (n)
		bytes_wr_put(w, src, n);
}

/* An MQTT variable byte integer; HQ_EINVAL above BYTES_VARINT_MAX. */
static inline void bytes_wr_varint(struct bytes_wr *w, uint32_t v)
{
	uint8_t t[4];

	if (v > BYTES_VARINT_MAX)
		bytes_wr_fail(w, HQ_EINVAL, "value too large for a variable byte integer");
	/* encoded in place when 4 bytes fit: no variable-length memcpy */
	if (BYTES_LIKELY(w->n + 4 <= w->cap))
		w->n += bytes_varint_put(w->p + w->n, v);
	else if (bytes_wr_counting(w))
		w->n += bytes_varint_size(v);
	else
		bytes_wr_slow(w, t, bytes_varint_put(t, v));
}

#endif
