/*
 * brk_qbound.c - the node-wide bound on queued bytes
 * (mqtt.max_queued_bytes_total) and the per-reason drop counters.
 *
 * What is counted: the topic + payload bytes of every entry in every session
 * queue of the node (s->queued_bytes summed), the same measure as the
 * per-session mqtt.max_queued_bytes. A message queued for several sessions
 * counts once per session, so the count is an upper bound of the memory the
 * queues hold. In-flight windows are not counted: they are bounded per
 * session by mqtt.max_inflight.
 *
 * Cost on the publish path: each worker adds its changes to its own counter
 * (queued_local, one writer, relaxed load + store, no locked instruction) and
 * moves it into the node total with one relaxed atomic add once it reaches
 * QUEUED_BATCH either way. A worker compares the total plus its own pending
 * part with the bound, so the bound is exceeded by at most QUEUED_BATCH per
 * other worker (plus the one message that crossed it). No lock anywhere.
 *
 * Drop policy (enqueue in brk_deliver.c): a message that would take the node
 * past the bound first makes room in its own session's queue exactly as the
 * session's own limit does (its oldest QoS 0 message, else its oldest
 * message; a QoS 0 newcomer never evicts a QoS 1/2 message); with nothing of
 * its own to give up, the newcomer is dropped. Offline sessions are held to
 * 3/4 of the bound, so sessions nobody reads (the usual way to fill a node)
 * always leave a quarter of it to connected subscribers that are briefly
 * behind. Every such drop is counted as BRK_DROP_NODE_FULL and logged at most
 * once per NODE_FULL_LOG_MS, with the count since the previous line.
 */
#include "broker/brk_int.h"
#include "core/log.h"

#define QUEUED_BATCH (256 * 1024)
#define NODE_FULL_LOG_MS 10000

static const char *const drop_names[BRK_DROP_N] = {
	[BRK_DROP_QUEUE_FULL] = "queue_full",
	[BRK_DROP_NODE_FULL] = "node_full",
	[BRK_DROP_SLOW_READER] = "slow_reader",
	[BRK_DROP_TOO_LARGE] = "too_large",
	[BRK_DROP_SESSION_GONE] = "session_gone",
	[BRK_DROP_MEMORY] = "memory",
};

const char *broker_drop_reason_name(int reason)
{
	return reason >= 0 && reason < BRK_DROP_N ? drop_names[reason] : "unknown";
}

/* One line per interval, from whichever worker drops first after it. */
static void node_full_log(struct worker *w)
{
	struct broker *b = w->b;
	int64_t now = ev_now_ms(w->loop);
	int64_t last = atomic_load_explicit(&b->node_full_log_ms, memory_order_relaxed);
	if (last && now - last < NODE_FULL_LOG_MS)
		return;
	if (!atomic_compare_exchange_strong_explicit(&b->node_full_log_ms, &last, now,
						     memory_order_relaxed, memory_order_relaxed))
		return; /* another worker logs this interval */
	uint64_t total = atomic_load_explicit(&b->node_full_drops, memory_order_relaxed);
	uint64_t before = atomic_exchange_explicit(&b->node_full_logged, total, memory_order_relaxed);
	log_warning("node queue limit reached: %lld of %llu bytes queued "
		    "(mqtt.max_queued_bytes_total); %llu messages dropped since the last "
		    "such line, %llu in all",
		    (long long)brk_queued_total(b), (unsigned long long)b->cfg->max_queued_bytes_total,
		    (unsigned long long)(total - before), (unsigned long long)total);
}

void brk_drop_count(struct worker *w, enum broker_drop_reason reason)
{
	WK_ASSERT_OWNER(w);
	STAT_ADD(w->st.msgs_dropped, 1);
	STAT_ADD(w->st.dropped_by[reason], 1);
	if (reason == BRK_DROP_NODE_FULL) {
		/* only while the node is full: a locked add is fine here */
		atomic_fetch_add_explicit(&w->b->node_full_drops, 1, memory_order_relaxed);
		node_full_log(w);
	}
}

void brk_queued_add(struct worker *w, int64_t delta)
{
	WK_ASSERT_OWNER(w);
	int64_t v = atomic_load_explicit(&w->queued_local, memory_order_relaxed) + delta;
	if (v >= QUEUED_BATCH || v <= -QUEUED_BATCH) {
		atomic_fetch_add_explicit(&w->b->queued_total, v, memory_order_relaxed);
		v = 0;
	}
	atomic_store_explicit(&w->queued_local, v, memory_order_relaxed);
}

void brk_queued_add_shared(struct broker *b, int64_t delta)
{
	if (delta)
		atomic_fetch_add_explicit(&b->queued_total, delta, memory_order_relaxed);
}

bool brk_queued_over(const struct session *s, uint64_t need)
{
	struct worker *w = s->w;
	uint64_t limit = w->b->cfg->max_queued_bytes_total;
	if (!limit)
		return false;
	if (!s->conn)
		limit -= limit / 4;
	int64_t now = atomic_load_explicit(&w->b->queued_total, memory_order_relaxed) +
		      atomic_load_explicit(&w->queued_local, memory_order_relaxed);
	return now + (int64_t)need > (int64_t)limit; /* need < 256 MiB, limit <= INT64_MAX */
}

int64_t brk_queued_total(struct broker *b)
{
	int64_t t = atomic_load_explicit(&b->queued_total, memory_order_relaxed);
	for (int i = 0; i < b->n_workers; i++)
		t += atomic_load_explicit(&b->workers[i].queued_local, memory_order_relaxed);
	return t;
}
