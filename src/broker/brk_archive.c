/*
 * brk_archive.c - the broker's side of the message archive (issue 12,
 * docs/architecture/archive.md): which PUBLISHes are archived, their ids,
 * the hand-over to the archives, and the ack = stored completions.
 *
 * Only what this node took is archived (a client's PUBLISH, a will, a REST
 * publish), never what another node forwarded: every message is archived
 * once, where it was published. On the worker: a topic match against each
 * archive's few filters and one copy per archive into this turn's list
 * (w->arc_pend); the before-sleep hook hands each list over with one mutex
 * (archive_offer). No database call, no disk, no wait. Without archives
 * b->arc is NULL and the publish path tests only that.
 *
 * Ids: 32 hex digits, a random 64-bit prefix drawn at start (unique per
 * node and run) then the worker and its counter: unique cluster-wide and
 * across restarts, and the same on every retry of the row.
 */
#include "broker/brk_int.h"
#include "archive/archive.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/rand.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct brk_arc_pend {
	struct archive_item *head, *tail;
	uint32_t n;
};

void broker_set_archive(struct broker *b, struct archive_set *s)
{
	b->arc = s;
	uint8_t r[8] = { 0 };
	if (rand_bytes(r, sizeof(r)) != 0) {
		/* no randomness: the start time and pid still differ between runs */
		uint64_t t = (uint64_t)clock_wall_ms() ^ ((uint64_t)getpid() << 40);
		memcpy(r, &t, sizeof(r));
	}
	for (int i = 0; i < 8; i++)
		snprintf(b->arc_prefix + 2 * i, 3, "%02x", r[i]);
	if (!s)
		return;
	for (int i = 0; i < b->n_workers; i++)
		b->workers[i].arc_pend = hq_calloc(archive_count(s), sizeof(struct brk_arc_pend));
}

struct archive_set *broker_archive(struct broker *b)
{
	return b->arc;
}

void broker_archive_ack(void *arg, uint32_t worker, uint64_t token, bool stored)
{
	struct broker *b = arg;
	if ((int)worker >= b->n_workers)
		return;
	struct wq_entry e = { .kind = WQ_GATE_RELEASE, .options = !stored };
	e.u.token = token;
	wk_inbox_append(&b->workers[worker], &e, 1);
}

int brk_archive_hold(struct worker *w, const char *topic, size_t tlen)
{
	struct archive_set *s = w->b->arc;
	uint32_t m = archive_match(s, topic, tlen) & archive_ack_mask(s);
	int n = 0;
	for (uint32_t i = 0; m; i++, m >>= 1) {
		if (!(m & 1))
			continue;
		if (archive_full(s, i))
			return -1;
		n++;
	}
	return n;
}

uint32_t brk_archive_take(struct worker *w, const struct brk_msg *msg, const char *clientid,
			  const char *username, uint64_t tok)
{
	WK_ASSERT_OWNER(w);
	struct broker *b = w->b;
	struct archive_set *s = b->arc;
	uint32_t mask = archive_match(s, msg->topic, msg->topic_len);
	if (!mask)
		return 0;
	uint32_t acks = tok && msg->qos ? archive_ack_mask(s) : 0, held = 0;
	struct arc_msg m = {
		.topic = msg->topic, .topic_len = msg->topic_len,
		.payload = msg->payload, .payload_len = msg->payload_len,
		.clientid = clientid ? clientid : "", .clientid_len = clientid ? (uint16_t)strlen(clientid) : 0,
		.username = username, .username_len = username ? (uint16_t)strlen(username) : 0,
		.qos = msg->qos, .retain = msg->retain, .ts_ms = clock_wall_ms(),
		.node = b->cfg->node_name,
	};
	uint64_t seq = ++w->arc_seq;
	snprintf(m.id, sizeof(m.id), "%s%02x%014llx", b->arc_prefix, (unsigned)w->id & 0xff,
		 (unsigned long long)(seq & UINT64_C(0xffffffffffffff)));
	for (uint32_t i = 0; mask; i++, mask >>= 1) {
		if (!(mask & 1))
			continue;
		struct archive_item *it = archive_item_new(&m);
		if (acks & (1u << i)) {
			it->token = tok;
			it->worker = (uint32_t)w->id;
			held++;
		}
		struct brk_arc_pend *p = &w->arc_pend[i];
		if (p->tail)
			p->tail->next = it;
		else
			p->head = it;
		p->tail = it;
		p->n++;
	}
	return held;
}

void brk_archive_flush(struct worker *w)
{
	struct archive_set *s = w->b->arc;
	if (!s)
		return;
	for (uint32_t i = 0; i < archive_count(s); i++) {
		struct brk_arc_pend *p = &w->arc_pend[i];
		if (!p->n)
			continue;
		archive_offer(s, i, p->head, p->tail, p->n);
		*p = (struct brk_arc_pend){ 0 };
	}
}

void brk_archive_worker_free(struct worker *w)
{
	struct archive_set *s = w->b->arc;
	if (!w->arc_pend)
		return;
	for (uint32_t i = 0; s && i < archive_count(s); i++) {
		struct archive_item *it = w->arc_pend[i].head;
		while (it) {
			struct archive_item *next = it->next;
			archive_item_free(it);
			it = next;
		}
	}
	HQ_FREE(w->arc_pend);
}
