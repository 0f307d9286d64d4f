/*
 * brk_retained_out.c - retained messages sent on subscribe [MQTT-3.3.1-6],
 * paced by the subscriber's in-flight window.
 *
 * At SUBSCRIBE, the matching retained messages are snapshotted (references
 * taken under retain_lock, which is then released) into a cursor owned by
 * the session. sess_pump (brk_deliver.c) takes from the cursors before the
 * queue whenever the window and the socket have room, so thousands of
 * retained messages reach a subscriber that acknowledges them, however small
 * its queue limit: the cursor costs one pointer per message, whose memory the
 * retained store holds anyway. Nothing of it runs under retain_lock.
 *
 * Order: the retained messages of a subscription go out before any message
 * that arrives after the SUBSCRIBE (sess_deliver queues behind a pending
 * cursor), as when they were queued at once; messages that were already
 * queued (the window was full) now follow them too.
 *
 * Lifetime: the cursors are the session's (its worker only). They survive a
 * disconnect of a persistent session and continue on reconnect; a session
 * handed to another node or saved to the store carries the pending ones as
 * queue entries (sess_serial.c); they are freed when the session ends. A new
 * SUBSCRIBE of the same filter replaces its pending cursor (the new snapshot
 * holds the current retained messages), so a session holds at most one
 * cursor per subscription.
 */
#include "broker/brk_int.h"
#include "core/mem.h"

#include <string.h>

static bool collect(void *ctx, const char *topic, size_t len, void *value)
{
	struct ret_cursor *rc = ctx;
	(void)topic;
	(void)len;
	if (rc->n == rc->next) { /* next doubles as the capacity while collecting */
		rc->next = rc->next ? rc->next * 2 : 16;
		rc->v = hq_realloc(rc->v, rc->next * sizeof(*rc->v));
	}
	rc->v[rc->n++] = msg_ref(value);
	return true;
}

static void cursor_free(struct ret_cursor *rc)
{
	for (uint32_t i = rc->next; i < rc->n; i++)
		msg_unref(rc->v[i]);
	hq_free(rc->v);
	hq_free(rc->filter);
	hq_free(rc);
}

void sess_retained_start(struct session *s, const char *filter, uint8_t options, uint32_t sub_id)
{
	WK_ASSERT_OWNER(s->w);
	struct broker *b = s->w->b;
	struct ret_cursor *rc = hq_calloc(1, sizeof(*rc));
	pthread_mutex_lock(&b->retain_lock);
	retain_tree_match(b->retained, filter, strlen(filter), collect, rc);
	pthread_mutex_unlock(&b->retain_lock);
	rc->next = 0;
	rc->granted = options & MQTT_SUBOPT_QOS_MASK;
	rc->sub_id = sub_id;
	rc->filter = hq_strdup(filter);
	/* replace a pending cursor of the same filter, else append */
	struct ret_cursor **pp = &s->retained_out;
	while (*pp && strcmp((*pp)->filter, filter))
		pp = &(*pp)->link;
	if (*pp) {
		struct ret_cursor *old = *pp;
		rc->link = old->link;
		cursor_free(old);
	}
	*pp = rc;
	if (!rc->n) {
		*pp = rc->link;
		cursor_free(rc);
	}
}

static void fill(const struct ret_cursor *rc, struct brk_msg *m, struct deliv *d)
{
	memset(d, 0, sizeof(*d));
	d->msg = m;
	d->qos = m->qos < rc->granted ? m->qos : rc->granted;
	d->flags = DV_RETAIN; /* [MQTT-3.3.1-8] sent because of a new subscription */
	if (rc->sub_id) {
		d->sub_id = rc->sub_id;
		d->n_sub_ids = 1;
	}
}

bool sess_retained_peek(const struct session *s, uint8_t *qos)
{
	const struct ret_cursor *rc = s->retained_out;
	if (!rc)
		return false;
	const struct brk_msg *m = rc->v[rc->next];
	*qos = m->qos < rc->granted ? m->qos : rc->granted;
	return true;
}

void sess_retained_take(struct session *s, struct deliv *d)
{
	WK_ASSERT_OWNER(s->w);
	struct ret_cursor *rc = s->retained_out;
	fill(rc, rc->v[rc->next], d); /* the reference moves to d */
	rc->v[rc->next++] = NULL;
	if (rc->next == rc->n) {
		s->retained_out = rc->link;
		cursor_free(rc);
	}
}

uint32_t sess_retained_pending(const struct session *s)
{
	uint32_t n = 0;
	for (const struct ret_cursor *rc = s->retained_out; rc; rc = rc->link)
		n += rc->n - rc->next;
	return n;
}

void sess_retained_each(const struct session *s, void (*fn)(void *ctx, const struct deliv *d),
			void *ctx)
{
	for (const struct ret_cursor *rc = s->retained_out; rc; rc = rc->link)
		for (uint32_t i = rc->next; i < rc->n; i++) {
			struct deliv d;
			fill(rc, rc->v[i], &d); /* borrowed: fn must not keep it */
			fn(ctx, &d);
		}
}

void sess_retained_free(struct session *s)
{
	while (s->retained_out) {
		struct ret_cursor *rc = s->retained_out;
		s->retained_out = rc->link;
		cursor_free(rc);
	}
}
