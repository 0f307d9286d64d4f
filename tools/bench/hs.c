/*
 * hs.c - the hs sub-command: full connection set-ups per second (S13).
 *
 * -c slots each run cycles of: TCP connect -> TLS handshake (with --cafile;
 * a full one every time: tls.c keeps no session) -> CONNECT -> CONNACK ->
 * DISCONNECT -> the broker closes -> the slot starts again. The broker
 * closes first so that TIME_WAIT lands on its side, not on our ephemeral
 * ports (the same reason as PH_CLOSING). A cycle counts when its CONNACK
 * arrives; its latency is connect() to CONNACK. Slots start only during the
 * warm-up and the measured period, and at most --count cycles in all.
 *
 * A slot whose cycle failed (refused, timed out, broken handshake) stays
 * closed: the error is counted once and the run ends when no slot is left,
 * instead of hammering a broker that refuses.
 */
#include "bench.h"

void hs_turn(struct bench *b)
{
	if (b->phase != PH_WARMUP && b->phase != PH_MEASURE)
		return;
	for (uint32_t i = 0; i < b->n_cl; i++) {
		struct client *c = &b->cl[i];
		if (c->state != CS_IDLE)
			continue;
		if (b->o.count && b->hs_started >= b->o.count)
			return;
		b->hs_started++;
		cli_start(b, c);
	}
}

void hs_on_connack(struct client *c)
{
	struct bench *b = c->b;
	int64_t t = now_ns();

	b->pending--;
	b->established++;
	b->conn_t1_ns = t;
	b->last_progress_ns = t;
	b->c.hs++;
	if (b->measuring) {
		uint64_t lat = t > c->t_start_ns ? (uint64_t)(t - c->t_start_ns) : 0;
		b->cm.hs++;
		hist_add(&b->lat, lat);
		hist_add(&b->lat_tick, lat);
	}
	c->state = CS_BYE;
	cli_send_disconnect(c);
}

void hs_on_closed(struct client *c)
{
	cli_close(c);
	c->state = CS_IDLE;   /* hs_turn starts it again */
}
