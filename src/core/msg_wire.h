/*
 * msg_wire.h - the one binary encoding of an application message, shared by
 * the cluster link protocol (FORWARD, RETAIN_SET: clu_proto.h) and the
 * session blob (sess_serial.h), so a message crosses a link or a store in
 * the same bytes. Layer: core, pure: it works on a plain struct of borrowed
 * fields, knows no broker or cluster type.
 *
 * LAYOUT (u8/u16/u32 big-endian, no padding; pinned by the cluster protocol
 * version 1, see clu_proto.h "mbody", and by tests/unit/test_msg_wire.c):
 *
 *   topic    = len:u16  bytes           1..65535 bytes (content checked by
 *                                       the caller: each layer has its rules)
 *   mbody    = qos:u8                   0..2
 *              mflags:u8                RETAIN 0x01, EXPIRY 0x02; others 0
 *              [expiry:u32]             if EXPIRY: remaining message expiry
 *                                       interval, s
 *              pub_hash:u32             hash of the publisher's client id
 *              props:  len:u32 bytes    forwardable v5 properties, opaque
 *              payload:len:u32 bytes
 *   message  = topic mbody              (the cluster's RETAIN_SET puts its
 *                                       kind byte between the two)
 *
 * Errors go to the cursors (core/bytes.h): encoding an invalid message is
 * HQ_EINVAL (HQ_ETOOLARGE for a length beyond u32); decoding anything out of
 * range is HQ_EMALFORMED. Decoded pointers borrow from the input.
 */
#ifndef HQ_CORE_MSG_WIRE_H
#define HQ_CORE_MSG_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/bytes.h"

#define MSG_WIRE_RETAIN 0x01
#define MSG_WIRE_EXPIRY 0x02

struct msg_wire {
	uint8_t qos;
	bool retain;
	bool has_expiry;
	uint32_t expiry;              /* s left, if has_expiry */
	uint32_t pub_hash;
	const uint8_t *topic;
	size_t topic_len;
	const uint8_t *props;
	size_t props_len;
	const uint8_t *payload;
	size_t payload_len;
};

void msg_wire_put_topic(struct bytes_wr *w, const struct msg_wire *m);
void msg_wire_put_body(struct bytes_wr *w, const struct msg_wire *m);
/* topic then body */
void msg_wire_put(struct bytes_wr *w, const struct msg_wire *m);

/* Fill m's topic / the other fields; on error they are zero or NULL. */
void msg_wire_get_topic(struct bytes_rd *r, struct msg_wire *m);
void msg_wire_get_body(struct bytes_rd *r, struct msg_wire *m);
void msg_wire_get(struct bytes_rd *r, struct msg_wire *m);

#endif
