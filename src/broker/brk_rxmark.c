/*
 * brk_rxmark.c - exactly once for a QoS 2 message across a crash, whichever
 * workers hold its subscribers (ARCHITECTURE.md "Persistence", "Exactly
 * once across workers").
 *
 * A QoS 2 PUBLISH of a persistent session is stored in several batches: the
 * publisher's worker stores its packet id (RXID_ADD) and the entries of its
 * own sessions; every other worker stores the entries of its sessions in its
 * own batch, later. A crash in between leaves the id stored and some entries
 * missing: the publisher's resend must reach exactly the sessions that lack
 * the message. So each entry stored for such a message carries a mark (store
 * event RXID_MARK: publisher, packet id, target) in the same batch, and the
 * marks live as long as the id. An id loaded from the store is
 * "unconfirmed" (struct rx_unconf: its marks): its resend is routed again,
 * skipping the marked targets (brk_route), instead of being acknowledged as
 * a duplicate.
 *
 * Ownership: msg_rx belongs to its message (freed with it, immutable once
 * the message is shared); a session's unconfirmed list belongs to the
 * session and is touched only by its owning worker (or the loader before
 * workers run); a list taken for a resend belongs to the publish path until
 * it frees it.
 */
#include "broker/brk_int.h"
#include "core/mem.h"

#include <string.h>

struct rx_target {
	UT_hash_handle hh;
	char name[];              /* client id or "$share/g/f", NUL terminated */
};

void brk_rxmark_msg(struct session *pub, struct brk_msg *m, uint16_t pid)
{
	/* the publisher's id is stored only for a persistent session: without
	 * it a resend is new anyway, and marks would have nothing to live by */
	if (m->qos != 2 || !brk_store_persisting(pub))
		return;
	size_t n = strlen(pub->client_id);
	struct msg_rx *rx = hq_malloc(sizeof(*rx) + n + 1);
	rx->pid = pid;
	memcpy(rx->client_id, pub->client_id, n + 1);
	m->rx = rx;
}

size_t brk_rxmark_target(const struct session *s, const struct deliv *d, char *out, size_t cap)
{
	const char *name = d->share_group ? d->share_group : s->client_id;
	size_t n = strlen(name);
	if (n + 1 > cap)
		return 0;
	out[0] = d->share_group ? 'g' : 'c';
	memcpy(out + 1, name, n);
	return n + 1;
}

static struct rx_unconf *find(struct session *s, uint16_t pid, struct rx_unconf ***link)
{
	struct rx_unconf **p = &s->rx_unconf;
	for (; *p; p = &(*p)->next)
		if ((*p)->pid == pid)
			break;
	if (link)
		*link = p;
	return *p;
}

void sess_rx_unconf_add(struct session *s, uint16_t pid)
{
	if (find(s, pid, NULL))
		return;
	struct rx_unconf *u = hq_calloc(1, sizeof(*u));
	u->pid = pid;
	u->next = s->rx_unconf;
	s->rx_unconf = u;
}

struct rx_unconf *rx_unconf_new(uint16_t pid)
{
	struct rx_unconf *u = hq_calloc(1, sizeof(*u));
	u->pid = pid;
	return u;
}

void sess_rx_unconf_mark(struct session *s, uint16_t pid, const uint8_t *target, size_t len)
{
	struct rx_unconf *u = find(s, pid, NULL);
	if (u) /* else a mark of an id not loaded: nothing to skip */
		rx_unconf_add_target(u, target, len);
}

void rx_unconf_add_target(struct rx_unconf *u, const uint8_t *target, size_t len)
{
	if (len < 2 || (target[0] != 'c' && target[0] != 'g'))
		return; /* not a mark of ours */
	struct rx_target **set = target[0] == 'g' ? &u->groups : &u->clients;
	struct rx_target *t;
	HASH_FIND(hh, *set, target + 1, len - 1, t);
	if (t)
		return;
	t = hq_malloc(sizeof(*t) + len);
	memcpy(t->name, target + 1, len - 1);
	t->name[len - 1] = '\0';
	HASH_ADD_KEYPTR(hh, *set, t->name, len - 1, t);
	u->n_marks++;
}

void sess_rx_unconf_unread(struct session *s, uint16_t pid)
{
	sess_rx_unconf_drop(s, pid); /* whatever was known is read again */
	sess_rx_unconf_add(s, pid);
	s->rx_unconf->unread = true;
}

struct rx_unconf *sess_rx_unconf_take(struct session *s, uint16_t pid)
{
	struct rx_unconf **link;
	struct rx_unconf *u = find(s, pid, &link);
	if (u) {
		*link = u->next;
		u->next = NULL;
	}
	return u;
}

void sess_rx_unconf_give_back(struct session *s, struct rx_unconf *u)
{
	u->next = s->rx_unconf;
	s->rx_unconf = u;
}

static void free_set(struct rx_target **set)
{
	struct rx_target *t, *tmp;
	HASH_ITER(hh, *set, t, tmp) {
		HASH_DEL(*set, t);
		hq_free(t);
	}
}

void rx_unconf_free(struct rx_unconf *u)
{
	if (!u)
		return;
	free_set(&u->clients);
	free_set(&u->groups);
	hq_free(u);
}

void sess_rx_unconf_drop(struct session *s, uint16_t pid)
{
	rx_unconf_free(sess_rx_unconf_take(s, pid));
}

void sess_rx_unconf_free_all(struct session *s)
{
	while (s->rx_unconf) {
		struct rx_unconf *u = s->rx_unconf;
		s->rx_unconf = u->next;
		rx_unconf_free(u);
	}
}

bool sess_rx_unconf_has(struct session *s, uint16_t pid)
{
	return find(s, pid, NULL) != NULL;
}

static void each_in(const struct rx_target *set, char kind,
		    void (*cb)(void *ctx, const uint8_t *target, size_t len), void *ctx)
{
	char small[256];
	for (const struct rx_target *t = set; t; t = t->hh.next) {
		size_t n = strlen(t->name) + 1;
		char *buf = n <= sizeof(small) ? small : hq_malloc(n);
		buf[0] = kind;
		memcpy(buf + 1, t->name, n - 1);
		cb(ctx, (const uint8_t *)buf, n);
		if (buf != small)
			hq_free(buf);
	}
}

void rx_unconf_each(const struct rx_unconf *u,
		    void (*cb)(void *ctx, const uint8_t *target, size_t len), void *ctx)
{
	each_in(u->clients, 'c', cb, ctx);
	each_in(u->groups, 'g', cb, ctx);
}

bool rx_unconf_has(const struct rx_unconf *u, const char *client_id, const char *share_group)
{
	struct rx_target *t;
	const char *name = share_group ? share_group : client_id;
	struct rx_target *set = share_group ? u->groups : u->clients;
	HASH_FIND(hh, set, name, strlen(name), t);
	return t != NULL;
}

static void targets_of(struct rx_target *set, char kind, char **out, uint32_t *n)
{
	struct rx_target *t, *tmp;
	HASH_ITER(hh, set, t, tmp) {
		size_t len = strlen(t->name);
		char *e = hq_malloc(len + 2);
		e[0] = kind;
		memcpy(e + 1, t->name, len + 1);
		out[(*n)++] = e;
	}
}

char **rx_unconf_targets(const struct rx_unconf *u, uint32_t *n)
{
	*n = 0;
	uint32_t total = HASH_COUNT(u->clients) + HASH_COUNT(u->groups);
	if (!total)
		return NULL;
	char **v = hq_malloc(total * sizeof(*v));
	targets_of(u->clients, 'c', v, n);
	targets_of(u->groups, 'g', v, n);
	return v;
}
