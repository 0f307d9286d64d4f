/*
 * brk_int_ovl.h - private to src/broker/ (included at the end of brk_int.h,
 * never on its own): the functions broker files share for overload
 * protection at the door (brk_overload.c), the banned list and flapping
 * detection (brk_banned.c) and per-client rates (brk_ratelimit.c). The
 * objects and the ownership rules are brk_int.h's.
 */
#ifndef HQ_BRK_INT_OVL_H
#define HQ_BRK_INT_OVL_H

/* brk_overload.c: overload protection (its header comment says who owns what) */
int ovl_new(struct broker *b, char *err, size_t errlen);   /* sets b->ovl */
void ovl_free(struct broker *b);
/* Count one event of that kind; log it unless a line went out in the last
 * interval (then the next line says how many more). Any thread. */
void ovl_event(struct broker *b, enum broker_overload_event ev, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void ovl_tick(struct broker *b, int64_t now);   /* worker 0's tick */
void ovl_info(struct broker *b, struct broker_info *out);
uint64_t ovl_rss_now(void);
/* Listener li's connection rate: 0 = accept one now (token taken), else ms
 * to wait (the listener pauses, the kernel backlog holds the clients). */
int64_t ovl_conn_rate_take(struct broker *b, int li, int64_t now);
void ovl_conn_rate_refund(struct broker *b, int li);   /* taken, nothing accepted */
/* Stop watching w's listening socket k for wait_ms; the tick resumes it. */
void ovl_listener_pause(struct worker *w, int k, int64_t wait_ms);
void ovl_listener_tick(struct worker *w, int64_t now);
/* conn_new: listener and per-address limits; false: c must be closed. */
bool ovl_conn_admit(struct conn *c);
/* After a PROXY header set c->addr: the per-address limit; false: close c. */
bool ovl_proxy_admit(struct conn *c);
void ovl_conn_release(struct conn *c);                 /* conn_free */
/* Shed load above the memory watermark: a QoS 0 delivery to s (connection c
 * or none) is dropped when s is behind: a queue, a socket that is full, or
 * output not yet written (a burst delivered in one loop turn is all in
 * c->out before the first write can find the socket full). */
#define OVL_SHED_OUTBUF (64 * 1024)
static inline bool ovl_mem_shed(const struct session *s, const struct conn *c)
{
	return (!c || s->queue.len || (c->io.events & EV_WRITE) ||
		buf_avail(&c->out) >= OVL_SHED_OUTBUF) &&
	       atomic_load_explicit(&s->w->b->mem_high, memory_order_relaxed);
}

/* brk_banned.c: the banned list and flapping detection */
void banned_new(struct broker *b);
void banned_free(struct broker *b);
/* Load the list from the replicated table "banned" and follow its changes
 * (broker_new, after repl_open). */
int banned_repl_attach(struct broker *b);
enum { BAN_OK = 0, BAN_BANNED, BAN_FLAPPING };
/* At CONNECT (client id set; user = the user name or NULL): banned, or
 * banned now for flapping? */
int banned_connect(struct conn *c, const char *user, size_t user_len);
/* Is user banned by user name now? For a name learnt after banned_connect
 * (v5 enhanced authentication, brk_eauth.c); no flapping count. */
bool banned_username(struct broker *b, const char *user);
void banned_tick(struct broker *b, int64_t now);     /* worker 0 */

/* brk_ratelimit.c: per-client messages_rate / bytes_rate (c->rl set) */
void rl_conn_init(struct conn *c, double msg_rate, double byte_rate);
void rl_conn_free(struct conn *c);
void rl_bytes(struct conn *c, size_t n);      /* n bytes read */
size_t rl_room(struct conn *c, size_t room);  /* how much the next read may take */
void rl_message(struct conn *c);              /* one PUBLISH read */
void rl_drained(struct conn *c);              /* the socket had no more */
void rl_conn_close(struct conn *c);
void wk_rl_tick(struct worker *w, int64_t now);

#endif
