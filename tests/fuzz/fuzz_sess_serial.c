/*
 * fuzz_sess_serial.c - libFuzzer harness for the session blob reader
 * (src/broker/sess_serial.c, sess_deserialize; the format is in
 * sess_serial.h). Blobs arrive from another node at a cluster hand-over and
 * from the store at a restart: a malformed one must be refused cleanly (an
 * error, nothing leaked, nothing half-built left behind). Built and run by
 * `make fuzz`.
 *
 * Beyond ASan/UBSan: an accepted blob gives a session the broker could hold:
 * it serialises again (the writer asserts the invariants), the result reads
 * back with the same counts, and serialising that gives the same bytes (a
 * fixed point: the reader and the writer agree on the format; times are
 * "ms left", so both happen within one tick of the clock). The worker is
 * a bare struct worker + struct broker as in tests/unit/test_sess_serial.c:
 * nothing here touches routes, the registry, connections or the event loop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/brk_int.h"
#include "broker/sess_serial.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s (line %d)\n", #c, __LINE__); abort(); } } while (0)

static struct broker fb;
static struct worker fw;

static void survivor(struct session *s)
{
	struct buf a = { 0 }, b = { 0 };
	struct session *s2 = NULL;

	sess_serialize(s, &a);
	/* times are written as "ms left" against the clock: read back and write
	 * again within one clock tick, retrying when the tick changed under us */
	for (int tries = 0;; tries++) {
		CHECK(sess_deserialize(&fw, a.data, a.len, clock_mono_ms(), &s2) == HQ_OK);
		buf_reset(&b);
		sess_serialize(s2, &b);
		if ((b.len == a.len && !memcmp(a.data, b.data, a.len)) || tries == 3)
			break;
		sess_unref(s2);
	}
	CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
	CHECK(s2->n_inflight == s->n_inflight && s2->queue.len == s->queue.len);
	for (uint32_t i = 0; i < s->n_inflight; i++) {
		const struct deliv *d = &s->inflight[i];
		CHECK(d->pid != 0 && d->qos >= 1 && d->qos <= 2);
		CHECK(!!d->msg != !!(d->flags & DV_PUBREL));
	}
	for (uint32_t i = 0; i < s->queue.len; i++)
		CHECK(dq_at(&s->queue, i)->msg != NULL);
	sess_unref(s2);
	buf_free(&a);
	buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65536)
		return 0;
	if (!wk_cur) { /* this thread plays the worker that owns the sessions */
		log_set_level(LOG_NONE);
		atomic_init(&fb.next_id, 1);
		fw.b = &fb;
		wk_cur = &fw;
	}
	/* an exact-size heap copy so ASan catches a read one past the end */
	uint8_t *p = malloc(size ? size : 1);
	memcpy(p, data, size);
	struct session *s = NULL;
	int rc = sess_deserialize(&fw, p, size, clock_mono_ms(), &s);
	free(p); /* the session must not borrow from the blob */
	if (rc != HQ_OK) {
		CHECK(s == NULL);
		return 0;
	}
	CHECK(s != NULL);
	survivor(s);
	sess_unref(s);
	return 0;
}
