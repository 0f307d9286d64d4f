/*
 * brk_auth.c - a CONNECT waiting for a server authentication method (the
 * HTTP hook, Redis: src/auth/auth_async.h), without blocking its worker.
 *
 * The worker hands the request to the auth threads with (worker id, token)
 * and parks the connection: CS_WAIT, not read (what the client pipelined
 * after CONNECT waits in c->in and the socket, and is read in order once
 * CONNACK is out), still under mqtt.connect_timeout (brk_worker.c tick_cb).
 * The answer comes back through the worker's inbox (WQ_AUTH_DONE), like a
 * store read's. The token is the generation check: a connection that closes
 * meanwhile drops its entry (brk_auth_conn_free), so a late answer finds
 * nothing and is dropped, even if a new connection reuses the memory.
 *
 * Ownership: struct auth_wait entries belong to the worker's w->auth_waits
 * and point at a connection of that worker (a waiting connection never
 * moves: it is handed to another worker only after CONNECT goes on).
 */
#include "broker/brk_int.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

#include <string.h>

struct auth_wait {
	uint64_t token;
	struct conn *c;
	UT_hash_handle hh;
};

/* "ip:port" or "[v6]:port" without the port and brackets. */
static void peer_host(const char *addr, char *out, size_t cap)
{
	const char *colon = strrchr(addr, ':');
	size_t n = colon ? (size_t)(colon - addr) : strlen(addr);
	if (n >= 2 && addr[0] == '[' && addr[n - 1] == ']') {
		addr++;
		n -= 2;
	}
	if (n >= cap)
		n = cap - 1;
	memcpy(out, addr, n);
	out[n] = 0;
}

enum auth_rc brk_auth_begin(struct conn *c, const struct auth_req *r0, const char **why)
{
	WK_ASSERT_OWNER(c->w);
	struct worker *w = c->w;
	char host[sizeof(c->addr)];
	peer_host(c->addr, host, sizeof(host));
	struct auth_req r = *r0;
	r.peerhost = host;
	uint64_t token = gate_token_new(w);
	enum auth_rc rc = auth_connect_async(w->b->auth, &r, (uint32_t)w->id, token, why);
	if (rc != AUTH_PENDING)
		return rc;
	struct auth_wait *aw = hq_calloc(1, sizeof(*aw));
	aw->token = token;
	aw->c = c;
	HASH_ADD(hh, w->auth_waits, token, sizeof(aw->token), aw);
	c->state = CS_WAIT;
	c->paused = true;
	c->auth_wait = true;
	ev_io_set(w->loop, &c->io, 0);
	return AUTH_PENDING;
}

void brk_auth_done_cb(void *arg, struct auth_answer *ans)
{
	struct broker *b = arg;
	if (ans->worker >= (uint32_t)b->n_workers) {
		hq_free(ans);
		return;
	}
	struct wq_entry e = { .kind = WQ_AUTH_DONE };
	e.u.auth = ans;
	wk_inbox_append(&b->workers[ans->worker], &e, 1);
}

void brk_auth_answer(struct worker *w, struct auth_answer *ans)
{
	WK_ASSERT_OWNER(w);
	struct auth_wait *aw;
	HASH_FIND(hh, w->auth_waits, &ans->token, sizeof(ans->token), aw);
	if (!aw) {
		log_debug("auth: an answer for a connection that is gone (token %llu): dropped",
			  (unsigned long long)ans->token);
		hq_free(ans);
		return;
	}
	struct conn *c = aw->c;
	HASH_DEL(w->auth_waits, aw);
	hq_free(aw);
	c->auth_wait = false;
	if (c->state != CS_WAIT) { /* cannot happen: a closed conn dropped its entry */
		hq_free(ans);
		return;
	}
	c->paused = false;
	if (ev_io_set(w->loop, &c->io, EV_READ) != HQ_OK) {
		hq_free(ans);
		conn_close(c, -1, "epoll failed");
		return;
	}
	brk_connect_auth_done(c, ans);
	hq_free(ans);
	if (c->state == CS_ACTIVE)
		conn_process_input(c); /* what was pipelined after CONNECT, in order */
}

void brk_auth_conn_free(struct conn *c)
{
	if (!c->auth_wait)
		return;
	struct auth_wait *aw, *tmp;
	HASH_ITER(hh, c->w->auth_waits, aw, tmp) {
		if (aw->c == c) {
			HASH_DEL(c->w->auth_waits, aw);
			hq_free(aw);
		}
	}
	c->auth_wait = false;
}

struct auth *broker_auth(struct broker *b)
{
	return b->auth;
}
