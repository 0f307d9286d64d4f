/*
 * brk_ratelimit.c - per-client message and byte rates (listener keys
 * messages_rate and bytes_rate, like EMQX's limiter).
 *
 * Two token buckets per connection, each holding at most one second's worth.
 * Reading costs a byte token per byte and a message token per PUBLISH; the
 * buckets may go into debt (a read is not cut short), and a connection in
 * debt is not read until the debt is paid back: the socket's receive buffer
 * fills, TCP's window closes, and the publisher itself slows down. Other
 * clients are not touched, and nothing is dropped. The worker's tick resumes
 * paused connections (every 250 ms; the debt makes the average exact).
 *
 * A client that is still over its rate every time it is resumed (its socket
 * never runs dry with budget left) for overload.rate_limit_disconnect is
 * disconnected: v5 DISCONNECT 0x96 (Message rate too high), v3 a close.
 *
 * Ownership: struct conn_rl is allocated only for connections on a listener
 * with a rate (the plain path tests c->rl == NULL), owned by the connection,
 * freed by conn_free (ovl_conn_release). While paused it is on its worker's
 * rl_paused list; conn_close takes it off. Rates count only once the
 * connection is active: before that it may move to another worker (CONNECT
 * hand-off), and its worker's list must not follow it.
 */
#include "broker/brk_int.h"
#include "core/log.h"
#include "core/mem.h"

#include <utlist.h>

#define RL_MIN_PAUSE_MS 10
#define RL_RUN_GAP_MS 1000

struct conn_rl {
	struct conn *c;
	double msg_rate, byte_rate;   /* per second; 0 = none */
	double msg_tokens, byte_tokens;
	int64_t last_ms;              /* last refill */
	int64_t over_since;           /* paused without running dry since; 0 = not over */
	int64_t resume_at;            /* while paused */
	struct conn_rl *prev, *next;  /* worker's rl_paused list (utlist DL) */
};

void rl_conn_init(struct conn *c, double msg_rate, double byte_rate)
{
	struct conn_rl *r = hq_calloc(1, sizeof(*r));
	r->c = c;
	r->msg_rate = msg_rate;
	r->byte_rate = byte_rate;
	r->msg_tokens = msg_rate < 1 ? 1 : msg_rate;
	r->byte_tokens = byte_rate;
	r->last_ms = ev_now_ms(c->w->loop);
	c->rl = r;
}

void rl_conn_free(struct conn *c)
{
	HQ_FREE(c->rl);
}

static void refill(struct conn_rl *r, int64_t now)
{
	double dt = (double)(now - r->last_ms) / 1000.0;
	r->last_ms = now;
	if (dt <= 0)
		return;
	if (r->msg_rate > 0) {
		double cap = r->msg_rate < 1 ? 1 : r->msg_rate;
		r->msg_tokens += dt * r->msg_rate;
		if (r->msg_tokens > cap)
			r->msg_tokens = cap;
	}
	if (r->byte_rate > 0) {
		r->byte_tokens += dt * r->byte_rate;
		if (r->byte_tokens > r->byte_rate)
			r->byte_tokens = r->byte_rate;
	}
}

/* ms until both buckets are out of debt; 0 if they are */
static int64_t debt_ms(const struct conn_rl *r)
{
	double ms = 0;
	if (r->msg_rate > 0 && r->msg_tokens < 0)
		ms = -r->msg_tokens * 1000.0 / r->msg_rate;
	if (r->byte_rate > 0 && r->byte_tokens < 0) {
		double b = -r->byte_tokens * 1000.0 / r->byte_rate;
		if (b > ms)
			ms = b;
	}
	return ms > 0 ? (int64_t)ms + 1 : 0;
}

static void pause_conn(struct conn *c, int64_t now)
{
	struct conn_rl *r = c->rl;
	struct worker *w = c->w;
	if (c->rl_paused || c->state != CS_ACTIVE)
		return;
	int64_t wait = debt_ms(r);
	if (!wait)
		return;
	/* over since the first pause of a run of pauses: one that comes long
	 * after the last resume starts a new run (no read since may have seen
	 * the socket run dry) */
	if (!r->over_since || now - r->resume_at > RL_RUN_GAP_MS)
		r->over_since = now;
	c->rl_paused = true;
	r->resume_at = now + (wait < RL_MIN_PAUSE_MS ? RL_MIN_PAUSE_MS : wait);
	DL_APPEND(w->rl_paused, r);
	ev_io_set(w->loop, &c->io, c->io.events & EV_WRITE);
	ovl_event(w->b, BRK_OVL_THROTTLED, "client_id=%s addr=%s over its %s rate: not read for "
		  "%lld ms", c->client_id ? c->client_id : "", c->addr,
		  r->msg_tokens < 0 ? "message" : "byte", (long long)wait);
}

void rl_bytes(struct conn *c, size_t n)
{
	struct conn_rl *r = c->rl;
	if (!(r->byte_rate > 0) || c->state != CS_ACTIVE)
		return;
	int64_t now = ev_now_ms(c->w->loop);
	refill(r, now);
	r->byte_tokens -= (double)n;
	if (r->byte_tokens < 0)
		pause_conn(c, now);
}

void rl_message(struct conn *c)
{
	struct conn_rl *r = c->rl;
	if (!(r->msg_rate > 0) || c->state != CS_ACTIVE)
		return;
	int64_t now = ev_now_ms(c->w->loop);
	refill(r, now);
	r->msg_tokens -= 1;
	if (r->msg_tokens < 0)
		pause_conn(c, now);
}

size_t rl_room(struct conn *c, size_t room)
{
	struct conn_rl *r = c->rl;
	if (!(r->byte_rate > 0) || c->state != CS_ACTIVE)
		return room;
	refill(r, ev_now_ms(c->w->loop));
	/* at least a little, so a read always makes progress; under TLS a whole
	 * record's plaintext (and for WebSocket a frame chunk), or the transport would
	 * hold bytes epoll never announces */
	size_t min = c->xp ? 16384 : 1024;
	size_t want = r->byte_tokens > (double)min ? (size_t)r->byte_tokens : min;
	return want < room ? want : room;
}

/* The socket ran dry: with budget left the client is under its rate. */
void rl_drained(struct conn *c)
{
	struct conn_rl *r = c->rl;
	if (!c->rl_paused && (!(r->msg_rate > 0) || r->msg_tokens >= 0) &&
	    (!(r->byte_rate > 0) || r->byte_tokens >= 0))
		r->over_since = 0;
}

void rl_conn_close(struct conn *c)
{
	if (c->rl_paused) {
		DL_DELETE(c->w->rl_paused, c->rl);
		c->rl_paused = false;
	}
}

static void resume(struct conn *c, int64_t now)
{
	struct worker *w = c->w;
	DL_DELETE(w->rl_paused, c->rl);
	c->rl_paused = false;
	c->last_rx_ms = now; /* the silence was ours, not the client's */
	if (c->partial_since)
		c->partial_since = now;
	ev_io_set(w->loop, &c->io, (conn_reading(c) ? EV_READ : 0) | (c->io.events & EV_WRITE));
	conn_process_input(c); /* packets read before the pause */
}

void wk_rl_tick(struct worker *w, int64_t now)
{
	WK_ASSERT_OWNER(w);
	uint32_t limit = w->b->cfg->ovl_rate_limit_disconnect;
	struct conn_rl *r, *tmp;
	/* a detached list: a resumed connection may be paused again at once */
	struct conn_rl *list = w->rl_paused;
	w->rl_paused = NULL;
	DL_FOREACH_SAFE(list, r, tmp) {
		DL_DELETE(list, r);
		DL_APPEND(w->rl_paused, r);
		struct conn *c = r->c;
		if (limit && now - r->over_since >= (int64_t)limit * 1000) {
			ovl_event(w->b, BRK_OVL_RATE_DISCONNECT, "client_id=%s addr=%s over its rate "
				  "for %u s: disconnected", c->client_id ? c->client_id : "", c->addr, limit);
			conn_close(c, MQTT_RC_MESSAGE_RATE_TOO_HIGH, "message rate too high");
			continue;
		}
		if (now >= r->resume_at) {
			refill(r, now);
			resume(c, now);
		}
	}
}
