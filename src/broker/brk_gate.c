/*
 * brk_gate.c - responses held until the cluster confirms (struct conn_gate).
 *
 * A QoS 1/2 PUBLISH whose message goes to other nodes is acknowledged only
 * once each of them accepted it; a SUBACK leaves only once every peer has the
 * new routes. Both are "gates": a token (unique in the worker) awaited
 * `remaining` times. While a connection has a gate open, every response it
 * is sent (PUBACK, PUBREC, PUBCOMP, SUBACK, UNSUBACK) queues behind it, so
 * responses keep the order of the requests [MQTT-4.6.0-2]. A
 * connection that is never gated pays one NULL test per response.
 * The store uses gates too (brk_store.c): a response waits until what its
 * request changed is stored, and an outgoing QoS 2 PUBLISH to a persistent
 * session waits until its packet id is stored (gate_open_out), so a crash
 * cannot make the node send it again under another id; every later write
 * to that connection queues behind it, keeping the order of deliveries.
 *
 * Ownership: the items belong to their connection (c->gate); the worker's
 * hash (w->gates) only indexes the ones with a token, so a confirmation for
 * a connection that closed meanwhile finds nothing and is dropped.
 */
#include "broker/brk_int.h"
#include "core/mem.h"

#include <assert.h>
#include <string.h>

uint64_t gate_token_new(struct worker *w)
{
	WK_ASSERT_OWNER(w);
	return ++w->next_token;
}

static struct gate_item *item_new(struct conn *c, uint64_t token, uint32_t remaining)
{
	struct gate_item *it = hq_calloc(1, sizeof(*it));
	it->token = token;
	it->remaining = remaining;
	it->c = c;
	if (!c->gate)
		c->gate = hq_calloc(1, sizeof(*c->gate));
	if (c->gate->tail)
		c->gate->tail->next = it;
	else
		c->gate->head = it;
	c->gate->tail = it;
	if (token)
		HASH_ADD(hh, c->w->gates, token, sizeof(it->token), it);
	return it;
}

static void item_free(struct worker *w, struct gate_item *it)
{
	if (it->out && it->c->gate)
		it->c->gate->n_out--;
	if (it->token)
		HASH_DEL(w->gates, it);
	buf_free(&it->bytes);
	hq_free(it);
}

void gate_open(struct conn *c, uint64_t token, uint32_t remaining)
{
	WK_ASSERT_OWNER(c->w);
	item_new(c, token, remaining);
}

void gate_open_out(struct conn *c, uint64_t token)
{
	WK_ASSERT_OWNER(c->w);
	struct gate_item *it = item_new(c, token, 1);
	it->out = true;
	c->gate->n_out++;
}

void gate_capture(struct conn *c, size_t mark)
{
	WK_ASSERT_OWNER(c->w);
	if (!c->gate)
		return;
	size_t avail = buf_avail(&c->out);
	if (avail <= mark)
		return;
	/* the newest response waits behind everything held before it */
	struct gate_item *tail = c->gate->tail;
	buf_append(&tail->bytes, buf_head(&c->out) + mark, avail - mark);
	c->out.len = c->out.off + mark;
}

/* Send what is no longer waiting, in order. */
static void gate_drain(struct conn *c)
{
	struct worker *w = c->w;
	struct conn_gate *g = c->gate;
	while (g->head && g->head->remaining == 0) {
		struct gate_item *it = g->head;
		g->head = it->next;
		if (!g->head)
			g->tail = NULL;
		if (buf_avail(&it->bytes) && c->state != CS_CLOSED) {
			buf_append(&c->out, buf_head(&it->bytes), buf_avail(&it->bytes));
			conn_mark_dirty(c);
		}
		item_free(w, it);
	}
	if (!g->head) {
		hq_free(g);
		c->gate = NULL;
		if (c->closing)
			conn_close(c, c->closing_reason, c->closing_why);
	}
}

bool gate_release(struct worker *w, uint64_t token)
{
	WK_ASSERT_OWNER(w);
	struct gate_item *it;
	HASH_FIND(hh, w->gates, &token, sizeof(token), it);
	if (!it)
		return false; /* its connection closed meanwhile, or not a gate */
	if (it->remaining)
		it->remaining--;
	gate_drain(it->c);
	return true;
}

bool gate_fail(struct worker *w, uint64_t token, const char *why)
{
	WK_ASSERT_OWNER(w);
	struct gate_item *it;
	HASH_FIND(hh, w->gates, &token, sizeof(token), it);
	if (!it)
		return false;
	struct conn *c = it->c;
	/* The QoS 2 PUBLISHes still waiting were received but perhaps not
	 * delivered everywhere (a node died holding a forward, a write
	 * failed). With a shared store, which holds every node's marks
	 * (brk_rxmark.c), the id stays and its resend goes to the targets
	 * the store has no mark of, once they are read. Otherwise the id is
	 * forgotten, so that the resend is delivered again rather than
	 * acknowledged as a duplicate: a session that did store the first
	 * copy gets a second one; none loses it. */
	bool marks = brk_store_shared(w->b) && c->sess && brk_store_persisting(c->sess);
	for (struct gate_item *g = c->gate->head; g; g = g->next) {
		if (!g->rx_pid || !g->remaining || !c->sess)
			continue;
		if (marks)
			sess_rx_unconf_unread(c->sess, g->rx_pid);
		else
			sess_rx_pid_del(c->sess, g->rx_pid);
	}
	/* the held responses go first, so the DISCONNECT is not held too */
	gate_conn_free(c);
	conn_close(c, MQTT_RC_UNSPECIFIED, why);
	return true;
}

void gate_tail_rx_pid(struct conn *c, uint16_t pid)
{
	WK_ASSERT_OWNER(c->w);
	assert(c->gate && c->gate->tail);
	c->gate->tail->rx_pid = pid;
}

void gate_conn_free(struct conn *c)
{
	if (!c->gate)
		return;
	struct gate_item *it = c->gate->head;
	while (it) {
		struct gate_item *next = it->next;
		item_free(c->w, it);
		it = next;
	}
	hq_free(c->gate);
	c->gate = NULL;
}

void brk_token_done(struct worker *w, uint64_t token, bool failed)
{
	WK_ASSERT_OWNER(w);
	if (brk_cluster_held_release(w, token))
		return;
	if (failed) {
		if (!gate_fail(w, token, "a message could not be stored or forwarded: send again"))
			brk_cluster_fwd_wait_done(w, token, true);
		return;
	}
	if (!gate_release(w, token) && !brk_cluster_wait_release(w, token))
		brk_cluster_fwd_wait_done(w, token, false);
}
