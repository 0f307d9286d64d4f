/*
 * clu_hlc.h - hybrid logical clock (Kulkarni et al., "Logical Physical Clocks",
 * 2014) for last-writer-wins replication of retained messages across nodes.
 * Layer: cluster; pure (no I/O, no clock reads: the caller passes the wall
 * clock, so tests are deterministic).
 *
 * A timestamp is {wall_ms, logical}: wall_ms follows the largest physical time
 * seen (local or from any peer), logical orders events within one wall_ms.
 * Properties kept by this implementation:
 *   - every timestamp a clock hands out is strictly greater than every one it
 *     handed out or received before (monotonic, even if the wall clock steps
 *     back);
 *   - wall_ms stays within max_drift_ms of the local wall clock: a remote
 *     timestamp further in the future is refused (HQ_EINVAL) and not merged,
 *     so one node with a bad clock cannot drag the cluster forward;
 *   - when logical would overflow 0xFFFF, wall_ms advances by 1 ms instead.
 * Ties between equal timestamps from different nodes are broken by the origin
 * node name (bytewise, then shorter first), which makes clu_hlc_cmp a total
 * order: every node picks the same winner for the same pair of writes.
 *
 * A struct clu_hlc is not locked: the caller serialises access (one clock per
 * node, held under the retained-store lock).
 */
#ifndef HQ_CLUSTER_CLU_HLC_H
#define HQ_CLUSTER_CLU_HLC_H

#include <stddef.h>
#include <stdint.h>

struct clu_hlc_ts {
	uint64_t wall_ms;  /* physical component, ms since the Unix epoch */
	uint16_t logical;  /* counter within wall_ms */
};

struct clu_hlc {
	struct clu_hlc_ts last;   /* the greatest timestamp handed out or merged */
	uint64_t max_drift_ms;    /* remote wall_ms accepted up to local wall + this */
};

#define CLU_HLC_MAX_DRIFT_MS 60000   /* default max_drift_ms: 1 minute */

/* Start a clock at {0, 0} with the default drift bound. */
void clu_hlc_init(struct clu_hlc *c);

/*
 * A local event (a retained publish on this node) at wall clock wall_ms:
 * returns its timestamp, strictly greater than any earlier one of c.
 */
struct clu_hlc_ts clu_hlc_now(struct clu_hlc *c, uint64_t wall_ms);

/*
 * A remote timestamp arrived (a retained message from a peer) at local wall
 * clock wall_ms: merge it so that later local timestamps order after it.
 * On HQ_OK *out (if not NULL) is the receive event's timestamp, greater than
 * both remote and c's past. HQ_EINVAL if remote.wall_ms is more than
 * max_drift_ms ahead of wall_ms: c is left unchanged (the caller may still
 * apply the message with its own timestamp, and should log the peer's clock).
 */
int clu_hlc_update(struct clu_hlc *c, struct clu_hlc_ts remote, uint64_t wall_ms,
		   struct clu_hlc_ts *out);

/* A timestamp in one u64 (wall_ms in the high 48 bits: good until year 10889),
 * for fields read across threads with one atomic load. */
static inline uint64_t clu_hlc_pack(struct clu_hlc_ts t)
{
	return t.wall_ms << 16 | t.logical;
}
static inline struct clu_hlc_ts clu_hlc_unpack(uint64_t v)
{
	struct clu_hlc_ts t = { v >> 16, (uint16_t)v };
	return t;
}

/* <0, 0, >0 as a orders before, equal to, after b (wall_ms, then logical). */
int clu_hlc_ts_cmp(struct clu_hlc_ts a, struct clu_hlc_ts b);

/*
 * Total order of (timestamp, origin node name) pairs for last-writer-wins:
 * clu_hlc_ts_cmp, then the node names bytewise, then the shorter name first.
 * Returns 0 only for the same timestamp from the same node. Names are
 * borrowed, not NUL-terminated.
 */
int clu_hlc_cmp(struct clu_hlc_ts a, const char *a_node, size_t a_len,
		struct clu_hlc_ts b, const char *b_node, size_t b_len);

#endif
