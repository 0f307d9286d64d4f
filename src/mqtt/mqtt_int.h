/*
 * mqtt_int.h - private declarations shared by the src/mqtt/ files: the byte
 * reader used by every decoder, the byte writer used by every encoder, and the
 * one MQTT 5 property table.
 *
 * Reader: errors are sticky (SQLite's pRC idiom). The first failure records a
 * code and a static reason, jumps the cursor to the end, and every later read
 * returns zeros / empty strings, so a decoder is a straight sequence of reads
 * with no per-call checks and can still never read out of bounds.
 *
 * Writer: p == NULL means "count only". Every encoder runs twice over the same
 * code, once to size the packet and once to fill a single buf_reserve, so the
 * size and the bytes cannot disagree.
 */
#ifndef HQ_MQTT_INT_H
#define HQ_MQTT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/err.h"
#include "mqtt/mqtt.h"

#define MQTT_VARINT_MAX 268435455u  /* largest variable byte integer (spec 1.5.5) */
#define MQTT_PROP_ID_MAX 0x2A       /* highest property id defined by MQTT 5.0 */

/* ---- reader ---- */

struct mqtt_rd {
	const uint8_t *p;
	size_t len;                 /* end of readable bytes */
	size_t pos;                 /* next byte to read */
	int rc;                     /* first error, HQ_OK while none */
	const char *why;            /* static text for rc */
};

static inline void mqtt_rd_init(struct mqtt_rd *r, const uint8_t *p, size_t len)
{
	r->p = p;
	r->len = len;
	r->pos = 0;
	r->rc = HQ_OK;
	r->why = NULL;
}

/* Record an error unless one is already recorded: the first cause is the one
 * worth logging, later ones are usually consequences of it. */
static inline void mqtt_rd_fail(struct mqtt_rd *r, int rc, const char *why)
{
	if (r->rc == HQ_OK) {
		r->rc = rc;
		r->why = why;
	}
	r->pos = r->len;
}

static inline size_t mqtt_rd_left(const struct mqtt_rd *r)
{
	return r->len - r->pos;
}

/* true if n more bytes are there; otherwise records a truncation */
static inline bool mqtt_rd_need(struct mqtt_rd *r, size_t n)
{
	if (r->rc == HQ_OK && r->len - r->pos >= n)
		return true;
	mqtt_rd_fail(r, HQ_EMALFORMED, "field runs past the end of the packet");
	return false;
}

static inline uint8_t mqtt_rd_u8(struct mqtt_rd *r)
{
	if (!mqtt_rd_need(r, 1))
		return 0;
	return r->p[r->pos++];
}

static inline uint16_t mqtt_rd_u16(struct mqtt_rd *r)
{
	if (!mqtt_rd_need(r, 2))
		return 0;
	uint16_t v = (uint16_t)(r->p[r->pos] << 8 | r->p[r->pos + 1]);
	r->pos += 2;
	return v;
}

static inline uint32_t mqtt_rd_u32(struct mqtt_rd *r)
{
	if (!mqtt_rd_need(r, 4))
		return 0;
	const uint8_t *q = r->p + r->pos;
	r->pos += 4;
	return (uint32_t)q[0] << 24 | (uint32_t)q[1] << 16 | (uint32_t)q[2] << 8 | q[3];
}

uint32_t mqtt_rd_varint(struct mqtt_rd *r);
/* Two-byte length + bytes (binary data). */
struct mqtt_str mqtt_rd_bin(struct mqtt_rd *r);
/* Two-byte length + UTF-8 text, validated [MQTT-1.5.4-1] [MQTT-1.5.4-2];
 * `why` names the field when it is not valid UTF-8. */
struct mqtt_str mqtt_rd_utf8(struct mqtt_rd *r, const char *why);

/* ---- writer ---- */

struct mqtt_wr {
	uint8_t *p;                 /* NULL: count only */
	size_t n;                   /* bytes written (or counted) so far */
};

static inline void mqtt_wr_u8(struct mqtt_wr *w, uint8_t v)
{
	if (w->p)
		w->p[w->n] = v;
	w->n += 1;
}

static inline void mqtt_wr_u16(struct mqtt_wr *w, uint16_t v)
{
	if (w->p) {
		w->p[w->n] = (uint8_t)(v >> 8);
		w->p[w->n + 1] = (uint8_t)v;
	}
	w->n += 2;
}

static inline void mqtt_wr_u32(struct mqtt_wr *w, uint32_t v)
{
	if (w->p) {
		uint8_t *q = w->p + w->n;
		q[0] = (uint8_t)(v >> 24);
		q[1] = (uint8_t)(v >> 16);
		q[2] = (uint8_t)(v >> 8);
		q[3] = (uint8_t)v;
	}
	w->n += 4;
}

static inline void mqtt_wr_bytes(struct mqtt_wr *w, const void *src, size_t n)
{
	if (w->p && n)
		memcpy(w->p + w->n, src, n);
	w->n += n;
}

static inline void mqtt_wr_varint(struct mqtt_wr *w, uint32_t v)
{
	if (w->p)
		w->n += mqtt_varint_encode(w->p + w->n, v);
	else
		w->n += mqtt_varint_size(v);
}

/* two-byte length + bytes */
static inline void mqtt_wr_str(struct mqtt_wr *w, const uint8_t *s, uint16_t len)
{
	mqtt_wr_u16(w, len);
	mqtt_wr_bytes(w, s, len);
}

/* ---- helpers ---- */

static inline bool mqtt_has_wildcard(const uint8_t *p, size_t n)
{
	return memchr(p, '+', n) != NULL || memchr(p, '#', n) != NULL;
}

/* ---- properties (mqtt_props.c) ---- */

/* Packet-type mask bit: bit t for packet type t; bit 0 stands for the will
 * properties inside CONNECT, which have their own allowed set. */
#define MQTT_PK(t) ((uint16_t)(1u << (t)))
#define MQTT_PK_WILL 0

enum mqtt_prop_type {
	MQTT_PT_NONE = 0,           /* id not defined */
	MQTT_PT_BYTE,
	MQTT_PT_U16,
	MQTT_PT_U32,
	MQTT_PT_VARINT,
	MQTT_PT_UTF8,
	MQTT_PT_BIN,
	MQTT_PT_PAIR,               /* UTF-8 string pair (user property) */
};

enum mqtt_prop_check {
	MQTT_PC_NONE = 0,
	MQTT_PC_BOOL,               /* byte must be 0 or 1 */
	MQTT_PC_NONZERO,            /* value 0 is a protocol error */
	MQTT_PC_TOPIC,              /* a topic name: non-empty, no wildcards */
};

struct mqtt_prop_def {
	uint8_t type;               /* enum mqtt_prop_type */
	uint8_t check;              /* enum mqtt_prop_check */
	uint16_t allowed;           /* MQTT_PK() mask of packets it may appear in */
	uint16_t multi;             /* MQTT_PK() mask where it may repeat */
	uint16_t off;               /* offset of its field in struct mqtt_props; 0 = special */
	const char *name;
	const char *dup_why;        /* static texts for the decoder's `why` */
	const char *bad_why;
	const char *where_why;
};

/* Indexed by property id; entries with type MQTT_PT_NONE are undefined ids. */
extern const struct mqtt_prop_def mqtt_prop_defs[MQTT_PROP_ID_MAX + 1];

/* Read a property length and the properties that follow it into *out for
 * packet type ptype (MQTT_PK_WILL for will properties). Errors land in r. */
void mqtt_props_read(struct mqtt_rd *r, int ptype, struct mqtt_props *out);
/* Write property length + properties (present bits in id order, then extra).
 * HQ_EINVAL if a property is not allowed in ptype or cannot be encoded. */
int mqtt_props_write(struct mqtt_wr *w, int ptype, const struct mqtt_props *p);

#endif
