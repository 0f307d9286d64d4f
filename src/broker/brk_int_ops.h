/*
 * brk_int_ops.h - private to src/broker/ (included at the end of brk_int.h,
 * never on its own): the functions broker files share for the management side
 * of issue 11 — calls run on a worker for another thread (brk_call.c), alarms
 * (brk_alarm.c), traces (brk_trace.c) and the denial log lines. The objects
 * and the ownership rules are brk_int.h's.
 */
#ifndef HQ_BRK_INT_OPS_H
#define HQ_BRK_INT_OPS_H

/* brk_call.c: run a function on workers for another thread and wait
 * (the management API's queries, broker_api.h). fn(w, arg) runs on w's
 * thread (WK_ASSERT_OWNER holds there); arg is the caller's and is not
 * touched after brk_call_* returns. */
typedef void (*brk_call_fn)(struct worker *w, void *arg);
/* Run fn on every worker (all posted at once), wait for all; HQ_OK,
 * HQ_ECLOSED (stopping: some or none ran), HQ_EIO (timeout). */
int brk_call_all(struct broker *b, brk_call_fn fn, void *arg);
/* The same on one worker. */
int brk_call_one(struct broker *b, struct worker *w, brk_call_fn fn, void *arg);
void brk_call_run(struct worker *w, struct brk_call *c);   /* WQ_CALL */
void brk_call_cancel(struct brk_call *c);                  /* WQ_CALL released unrun */
/* ---- issue 11 "ops": alarms, traces, denial lines ---- */
/* brk_alarm.c: the table and the thread that checks it once a second */
void brk_alarm_new(struct broker *b);
int brk_alarm_start(struct broker *b);   /* broker_start */
void brk_alarm_stop(struct broker *b);   /* broker_shutdown, before the cluster stops */
void brk_alarm_free(struct broker *b);
/* brk_trace.c (see there for the locking) */
void brk_trace_new(struct broker *b);
void brk_trace_free(struct broker *b);
void brk_trace_tick(struct broker *b);   /* the alarm thread: end times */
void brk_trace_refresh(struct conn *c, uint32_t gen);
void brk_trace_pkt(struct conn *c, const struct mqtt_packet *p, bool in);
void brk_trace_ack(struct conn *c, uint8_t type, uint16_t pid, uint8_t reason, bool in);
void brk_trace_pub_out(struct conn *c, const struct brk_msg *m, uint8_t qos, uint16_t pid,
		       bool retain);
void brk_trace_connect(struct conn *c);  /* before CONNACK: decides c's traces */
void brk_trace_note(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A PUBLISH from c (NULL: none) routed to `matched` targets: the topic traces. */
void brk_trace_topic(struct worker *w, struct conn *c, const struct brk_msg *m, uint32_t matched);
/* A packet read from c: the one relaxed load when no trace ever ran; the
 * connection's traces are decided again when the generation moved. */
static inline void brk_trace_in(struct conn *c, const struct mqtt_packet *p)
{
	uint64_t word = atomic_load_explicit(&c->w->b->trace_word, memory_order_relaxed);
	c->w->trace_word = word;
	if (__builtin_expect(!word, 1))
		return;
	if ((uint32_t)(word >> 32) != c->trace_gen && c->state != CS_NEW)
		brk_trace_refresh(c, (uint32_t)(word >> 32));
	if (c->trace_mask)
		brk_trace_pkt(c, p, true);
}
/* A line about a refused connection or an ACL denial: notice, flood-guarded
 * (log_rl on broker.deny_rl), and into c's traces. */
void brk_deny_log(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* the store hooks: their own header */

#endif
