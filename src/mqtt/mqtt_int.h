/*
 * mqtt_int.h - private declarations shared by the src/mqtt/ files: the MQTT
 * string reads and writes on top of the core byte cursors (core/bytes.h), and
 * the one MQTT 5 property table.
 *
 * Every decoder is a straight sequence of reads on a struct bytes_rd (sticky
 * errors, never out of bounds). Every encoder runs twice over the same code,
 * once on a count-only struct bytes_wr to size the packet and once into a
 * single buf_reserve, so the size and the bytes cannot disagree.
 */
#ifndef HQ_MQTT_INT_H
#define HQ_MQTT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/bytes.h"
#include "core/err.h"
#include "mqtt/mqtt.h"

#define MQTT_VARINT_MAX BYTES_VARINT_MAX  /* largest variable byte integer (spec 1.5.5) */
#define MQTT_PROP_ID_MAX 0x2A       /* highest property id defined by MQTT 5.0 */

/* The cursors are core/bytes.h's (sticky first error, bounds-checked,
 * count-only writer for the sizing pass); below are the MQTT-specific reads. */

/* Two-byte length + bytes (binary data). */
struct mqtt_str mqtt_rd_bin(struct bytes_rd *r);
/* Two-byte length + UTF-8 text, validated [MQTT-1.5.4-1] [MQTT-1.5.4-2];
 * `why` names the field when it is not valid UTF-8. */
struct mqtt_str mqtt_rd_utf8(struct bytes_rd *r, const char *why);

/* two-byte length + bytes */
static inline void mqtt_wr_str(struct bytes_wr *w, const uint8_t *s, uint16_t len)
{
	bytes_wr_u16(w, len);
	bytes_wr_bytes(w, s, len);
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
void mqtt_props_read(struct bytes_rd *r, int ptype, struct mqtt_props *out);
/* Write property length + properties (present bits in id order, then extra).
 * HQ_EINVAL if a property is not allowed in ptype or cannot be encoded. */
int mqtt_props_write(struct bytes_wr *w, int ptype, const struct mqtt_props *p);

#endif
