/*
 * store_batch.c - building and freeing batches of store events, and deep
 * copies of single events for backends (store_ev_clone).
 *
 * A batch copies every byte string of an event into its arena: chunks that
 * are never reallocated, so the copies' addresses stay valid while the batch
 * grows and the event array can keep plain pointers. The arena is freed with
 * the batch.
 */
#include "store/store.h"
#include "core/mem.h"

#include <string.h>

#define CHUNK_MIN 16384

struct store_chunk {
	struct store_chunk *next;
	size_t used, cap;
	uint8_t data[];
};

static const uint8_t empty[1];

/* Pointers to the byte strings ev's kind uses (at most 7). */
static int ev_strings(struct store_ev *ev, struct store_bytes **v)
{
	int n = 0;
	struct store_msg *m = NULL;
	switch (ev->kind) {
	case STORE_EV_SESSION_PUT:
		v[n++] = &ev->client_id;
		v[n++] = &ev->u.sess.owner;
		if (ev->u.sess.has_will)
			m = &ev->u.sess.will;
		break;
	case STORE_EV_SESSION_DEL:
	case STORE_EV_QENT_UPDATE:
	case STORE_EV_QENT_DEL:
	case STORE_EV_RXID_ADD:
	case STORE_EV_RXID_DEL:
		v[n++] = &ev->client_id;
		break;
	case STORE_EV_SUB_PUT:
	case STORE_EV_SUB_DEL:
		v[n++] = &ev->client_id;
		v[n++] = &ev->u.sub.filter;
		break;
	case STORE_EV_MSG_PUT:
	case STORE_EV_RETAIN_PUT:
		m = &ev->u.msg;
		break;
	case STORE_EV_QENT_PUT:
		v[n++] = &ev->client_id;
		v[n++] = &ev->u.qent.sub_ids;
		v[n++] = &ev->u.qent.share_group;
		break;
	case STORE_EV_RETAIN_DEL:
		v[n++] = &ev->u.msg.topic;
		break;
	case STORE_EV_RXID_MARK:
		v[n++] = &ev->client_id;
		v[n++] = &ev->u.mark.target;
		break;
	default:
		break;
	}
	if (m) {
		v[n++] = &m->topic;
		v[n++] = &m->props;
		v[n++] = &m->payload;
		v[n++] = &m->origin;
	}
	return n;
}

/* A copy of ev holding only what its kind uses (stale pointers of other
 * kinds' fields are not carried along). */
static struct store_ev ev_trim(const struct store_ev *ev)
{
	struct store_ev e = { .kind = ev->kind, .client_id = ev->client_id };
	switch (ev->kind) {
	case STORE_EV_SESSION_PUT:
		e.u.sess = ev->u.sess;
		if (!e.u.sess.has_will)
			memset(&e.u.sess.will, 0, sizeof(e.u.sess.will));
		break;
	case STORE_EV_SUB_PUT:
	case STORE_EV_SUB_DEL:
		e.u.sub = ev->u.sub;
		break;
	case STORE_EV_MSG_PUT:
	case STORE_EV_RETAIN_PUT:
		e.u.msg = ev->u.msg;
		break;
	case STORE_EV_RETAIN_DEL:
		e.u.msg.topic = ev->u.msg.topic;
		break;
	case STORE_EV_QENT_PUT:
	case STORE_EV_QENT_UPDATE:
	case STORE_EV_QENT_DEL:
		e.u.qent = ev->u.qent;
		if (ev->kind != STORE_EV_QENT_PUT)
			e.u.qent.sub_ids = e.u.qent.share_group = (struct store_bytes){ 0 };
		break;
	case STORE_EV_RXID_ADD:
	case STORE_EV_RXID_DEL:
		e.u.pid = ev->u.pid;
		break;
	case STORE_EV_RXID_MARK:
		e.u.mark = ev->u.mark;
		break;
	default:
		break;
	}
	if (ev->kind == STORE_EV_MSG_PUT || ev->kind == STORE_EV_RETAIN_PUT ||
	    ev->kind == STORE_EV_RETAIN_DEL)
		e.client_id = (struct store_bytes){ 0 };
	return e;
}

static uint8_t *arena_alloc(struct store_batch *b, size_t n)
{
	struct store_chunk *c = b->chunks;
	if (!c || c->cap - c->used < n) {
		size_t cap = n > CHUNK_MIN ? n : CHUNK_MIN;
		c = hq_malloc(sizeof(*c) + cap);
		c->used = 0;
		c->cap = cap;
		c->next = b->chunks;
		b->chunks = c;
	}
	uint8_t *p = c->data + c->used;
	c->used += n;
	return p;
}

struct store_batch *store_batch_new(uint32_t owner)
{
	struct store_batch *b = hq_calloc(1, sizeof(*b));
	b->owner = owner;
	return b;
}

void store_batch_free(struct store_batch *b)
{
	if (!b)
		return;
	struct store_chunk *c = b->chunks;
	while (c) {
		struct store_chunk *next = c->next;
		hq_free(c);
		c = next;
	}
	hq_free(b->ev);
	hq_free(b->tokens);
	hq_free(b);
}

void store_batch_add(struct store_batch *b, const struct store_ev *ev)
{
	if (b->n_ev == b->cap_ev) {
		b->cap_ev = b->cap_ev ? b->cap_ev * 2 : 16;
		b->ev = hq_realloc(b->ev, b->cap_ev * sizeof(*b->ev));
	}
	struct store_ev *e = &b->ev[b->n_ev++];
	*e = ev_trim(ev);
	struct store_bytes *v[8];
	int n = ev_strings(e, v);
	for (int i = 0; i < n; i++) {
		if (!v[i]->len) {
			v[i]->p = empty; /* never NULL: memcmp/memcpy on it stay defined */
			continue;
		}
		uint8_t *p = arena_alloc(b, v[i]->len);
		memcpy(p, v[i]->p, v[i]->len);
		v[i]->p = p;
	}
}

void store_batch_add_token(struct store_batch *b, uint64_t token)
{
	if (b->n_tokens == b->cap_tokens) {
		b->cap_tokens = b->cap_tokens ? b->cap_tokens * 2 : 8;
		b->tokens = hq_realloc(b->tokens, b->cap_tokens * sizeof(*b->tokens));
	}
	b->tokens[b->n_tokens++] = token;
}

struct store_ev *store_ev_clone(const struct store_ev *ev)
{
	struct store_ev e = ev_trim(ev);
	struct store_bytes *v[8];
	int n = ev_strings(&e, v);
	size_t total = sizeof(e);
	for (int i = 0; i < n; i++)
		total += v[i]->len;
	struct store_ev *out = hq_malloc(total);
	uint8_t *p = (uint8_t *)(out + 1);
	for (int i = 0; i < n; i++) {
		if (!v[i]->len) {
			v[i]->p = empty;
			continue;
		}
		memcpy(p, v[i]->p, v[i]->len);
		v[i]->p = p;
		p += v[i]->len;
	}
	*out = e;
	return out;
}

const char *store_ev_kind_name(uint8_t kind)
{
	static const char *const names[] = {
		[STORE_EV_SESSION_PUT] = "session_put", [STORE_EV_SESSION_DEL] = "session_del",
		[STORE_EV_SUB_PUT] = "sub_put",         [STORE_EV_SUB_DEL] = "sub_del",
		[STORE_EV_MSG_PUT] = "msg_put",         [STORE_EV_QENT_PUT] = "qent_put",
		[STORE_EV_QENT_UPDATE] = "qent_update", [STORE_EV_QENT_DEL] = "qent_del",
		[STORE_EV_RXID_ADD] = "rxid_add",       [STORE_EV_RXID_DEL] = "rxid_del",
		[STORE_EV_RETAIN_PUT] = "retain_put",   [STORE_EV_RETAIN_DEL] = "retain_del",
		[STORE_EV_RXID_MARK] = "rxid_mark",
	};
	if (kind == 0 || kind > STORE_EV_KIND_MAX)
		return "unknown";
	return names[kind];
}

struct store_batch *store_batch_read(uint32_t owner, uint8_t kind, const void *key, size_t len)
{
	struct store_batch *b = store_batch_new(owner);
	b->read = kind;
	uint8_t *p = arena_alloc(b, len ? len : 1);
	if (len)
		memcpy(p, key, len);
	b->read_key = (struct store_bytes){ p, (uint32_t)len };
	return b;
}
