/*
 * sess_serial.h - the persistent form of a session: one self-contained,
 * versioned binary blob holding everything a session carries across a
 * restart or a move to another node (store backends, cluster transfer).
 * Layer: broker (reads struct session, brk_int.h); the store only sees bytes.
 *
 * Invariants: a blob never contains pointers, session ids (sid) or absolute
 * clock values; times are remaining intervals measured when it was written.
 * Reading validates every length and value against the input (a blob is
 * untrusted, like a packet) and builds nothing that the broker could not have
 * built itself.
 *
 * FORMAT, VERSION 3
 * -----------------
 * Notation: u8/u16/u32/u64 are unsigned big-endian fixed-width integers.
 * vi is an MQTT variable byte integer (1 to 4 bytes, 0..268435455, shortest
 * form only, spec 1.5.5). str is a vi length then that many bytes of UTF-8
 * (no terminator, no U+0000); bin is a vi length then that many bytes.
 * [x] is present only under the stated condition. Fields follow each other
 * with no padding and the blob ends exactly after its last field (trailing
 * bytes are an error).
 *
 *   blob     = magic:4 ("HQSS")  version:u8 (SESS_SERIAL_VERSION)  session
 *
 *   session  = client_id:str          client identifier (may be empty)
 *              proto:u8               protocol level of the last connection:
 *                                     0 (never attached), 3, 4 or 5
 *              expiry:u32             session expiry interval, s
 *                                     (0xFFFFFFFF = never, SESS_NEVER_EXPIRE)
 *              sflags:u8              SS_* below; other bits must be 0
 *              [expire_in:u64]        if SS_EXPIRE_AT: ms left until the
 *                                     session expires (session offline)
 *              next_pid:u16           next packet id to try, never 0
 *              [will]                 if SS_WILL
 *              n_subs:vi  sub * n_subs
 *              n_inflight:vi  deliv * n_inflight     in send order
 *              n_queued:vi  deliv * n_queued         oldest first
 *              n_rx_pids:vi  rx_pid:u16 * n_rx_pids  incoming QoS 2 packet ids
 *                                     between PUBREC and PUBREL; non-zero,
 *                                     distinct
 *              n_unconf:vi  unconf * n_unconf  those of them loaded from a
 *                                     store and not resent yet (brk_rxmark.c)
 *
 *   unconf   = pid:u16                one of rx_pid, distinct
 *              uflags:u8              UNREAD 0x01: the targets are not known
 *                                     (read them from the store); other bits 0
 *              n_targets:vi  target:str * n_targets   the targets that have
 *                                     the message stored: 'c' + client id or
 *                                     'g' + "$share/g/f", at least 2 bytes
 *
 *   will     = will_delay:u32         will delay interval, s
 *              [will_in:u64]          if SS_WILL_AT: ms left until the will
 *                                     is published (delayed will pending)
 *              message
 *
 *   sub      = filter:str             full filter ("$share/g/f" included);
 *                                     a valid filter, distinct within the
 *                                     session
 *              options:u8             subscription options byte; reserved
 *                                     bits 6-7 zero, QoS <= 2, retain
 *                                     handling <= 2
 *              sub_id:vi              subscription identifier, 0 = none
 *
 *   deliv    = pid:u16                packet id (in flight: non-zero and
 *                                     distinct; queued: as held, usually 0)
 *              qos:u8                 delivery QoS, <= 2 (in flight: 1 or 2)
 *              dflags:u8              DV_* of brk_int.h (RETAIN 0x01,
 *                                     SENT 0x02, PUBREL 0x04, SHARED 0x08);
 *                                     PUBREL only in flight with QoS 2
 *              n_sub_ids:u8  sub_id:vi * n_sub_ids   each non-zero
 *              [share_group:str]      if DV_SHARED: "$share/g/f"
 *              [message]              unless DV_PUBREL (the message was
 *                                     released when PUBREC arrived)
 *
 *   message  = the shared message encoding of core/msg_wire.h, the same
 *              bytes the cluster's FORWARD carries (u16/u32 lengths there):
 *              topic:u16 len + bytes  a valid topic name (1..65535 bytes)
 *              qos:u8                 <= 2
 *              mflags:u8              RETAIN 0x01, EXPIRY 0x02; other bits 0
 *              [expiry_left:u32]      if EXPIRY: remaining message expiry
 *                                     interval, s (0 = already expired)
 *              pub_hash:u32           hash of the publisher's client id
 *              props:u32 len + bytes  forwardable v5 properties, as received
 *              payload:u32 len + bytes
 *
 * The publisher's session id (origin_sid) is not kept: it is per process and
 * only matters before a message is matched. A message referenced by several
 * deliveries is written once per delivery.
 *
 * Versioning: any change to this layout bumps SESS_SERIAL_VERSION; a reader
 * refuses versions it does not know (HQ_EVERSION) rather than guessing.
 * Version 2 replaced version 1's message (mflags first, vi lengths) with the
 * shared message encoding; version 3 added the unconfirmed QoS 2 ids. Blobs are exchanged only between nodes of one
 * release (no rolling upgrade is promised) and the memory store does not
 * outlive the process, so no version 1 reader is kept.
 * Integrity against storage corruption is the backend's job (a corrupt blob is
 * rejected when it is malformed, not when it is merely different).
 */
#ifndef HQ_BROKER_SESS_SERIAL_H
#define HQ_BROKER_SESS_SERIAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

struct session;
struct worker;

#define SESS_SERIAL_MAGIC "HQSS"
#define SESS_SERIAL_VERSION 3

/* session flags (sflags) */
#define SS_EXPIRE_AT 0x01   /* expire_in present (session expiry scheduled) */
#define SS_WILL 0x02        /* will present */
#define SS_WILL_AT 0x04     /* will_in present (requires SS_WILL) */

/* unconfirmed QoS 2 id flags (uflags) */
#define SS_UNCONF_UNREAD 0x01

/*
 * Append the blob for s to out (caller-owned). s is borrowed and not changed.
 * Remaining times are taken against clock_mono_ms() now. Runs on s's worker
 * (it reads the session's plain fields).
 */
void sess_serialize(const struct session *s, struct buf *out);

/*
 * Build a session owned by worker w from the blob p[0..n) (borrowed). now_ms is
 * the reader's monotonic clock: remaining times become absolute against it.
 * On HQ_OK, *out holds the new session with one reference (the caller's):
 * conn NULL, online false, ended false, a fresh sid, not in the registry, no
 * routes, not in the worker's offline list (call sess_offline_update once it is
 * registered); routes are re-applied by the caller from (*out)->subs.
 * Errors: HQ_EMALFORMED for any truncated, trailing or invalid content,
 * HQ_EVERSION for an unknown format version; *out is then NULL and nothing is
 * leaked. Allocation is bounded by n.
 */
int sess_deserialize(struct worker *w, const uint8_t *p, size_t n, int64_t now_ms,
		     struct session **out);

#endif
