/*
 * fuzz_store_codec.c - libFuzzer harness for the record codecs of the
 * persistent stores: LMDB values (src/store/store_lmdb_codec.c, lmdb_dec and
 * lmdb_dec_full_key) and Redis records (src/store/store_redis_codec.c,
 * rdecode_*). A node reads these at start from a disk or a Redis it may share
 * with a broken or older node: a bad record must be refused, never crash,
 * overread or yield a field pointing outside the value. Built and run by
 * `make fuzz`.
 *
 * Input: byte 0 picks the codec and the record kind; LMDB takes the rest as
 * one value; Redis takes [n1][key part of n1 bytes][n2][field of n2 bytes]
 * [value] (client id, filter / seq / pid / target, value) as the store's
 * hashes hand them over. Checks beyond ASan: every decoded byte range lies in
 * the input, and an accepted LMDB value re-encodes to exactly the same bytes
 * (the format has no slack: a decoder that accepts two spellings of one
 * record, or drops a field, shows up here).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/bytes.h"
#include "core/err.h"
#include "store/store.h"
#include "store/store_lmdb_int.h"
#include "store/store_redis_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s (line %d)\n", #c, __LINE__); abort(); } } while (0)

static const uint8_t *lo, *hi; /* the input copy: every decoded range lies in it */

static void in_input(struct store_bytes b)
{
	if (!b.len)
		return;
	CHECK(b.p >= lo && b.p + b.len <= hi);
}

static void msg_in_input(const struct store_msg *m)
{
	in_input(m->topic);
	in_input(m->props);
	in_input(m->payload);
	in_input(m->origin);
}

static void fuzz_lmdb(uint8_t kind, const uint8_t *p, size_t n)
{
	struct store_ev ev;
	struct buf scratch = { 0 };
	const char *why = NULL;
	struct store_bytes full;

	(void)lmdb_dec_full_key(p, n, &full);
	int rc = lmdb_dec(kind, p, n, &ev, &scratch, &why);
	if (rc != HQ_OK) {
		CHECK(why != NULL);
		buf_free(&scratch);
		return;
	}
	CHECK(ev.kind == kind);
	switch (kind) {
	case STORE_EV_SESSION_PUT:
		in_input(ev.client_id);
		in_input(ev.u.sess.owner);
		if (ev.u.sess.has_will)
			msg_in_input(&ev.u.sess.will);
		break;
	case STORE_EV_MSG_PUT: case STORE_EV_RETAIN_PUT:
		msg_in_input(&ev.u.msg);
		break;
	case STORE_EV_SUB_PUT:
		in_input(ev.u.sub.filter);
		break;
	case STORE_EV_QENT_PUT:
		in_input(ev.u.qent.share_group);
		CHECK(ev.u.qent.sub_ids.len % 4 == 0);
		break;
	case STORE_EV_RXID_MARK:
		in_input(ev.u.mark.target);
		break;
	}
	/* the value written for what was read is the value read */
	struct buf out = { 0 };
	struct bytes_wr w;
	bytes_wr_buf(&w, &out);
	lmdb_enc(&w, &ev);
	CHECK(bytes_wr_end(&w) == HQ_OK);
	CHECK(out.len == n && memcmp(out.data, p, n) == 0);
	buf_free(&out);
	buf_free(&scratch);
}

static void fuzz_redis(uint8_t which, const uint8_t *p, size_t n)
{
	/* [n1][a: n1 bytes][n2][b: n2 bytes][value] */
	if (n < 2 || (size_t)p[0] + 2 > n || (size_t)p[0] + 2 + p[p[0] + 1] > n)
		return;
	const char *a = (const char *)p + 1, *b = a + p[0] + 1;
	size_t alen = p[0], blen = p[p[0] + 1];
	const char *v = b + blen;
	size_t vlen = n - (alen + blen + 2);
	struct store_ev ev;
	int rc;

	switch (which % 6) {
	case 0:
		rc = rdecode_sess(&ev, a, alen, v, vlen);
		if (rc == HQ_OK) {
			in_input(ev.u.sess.owner);
			if (ev.u.sess.has_will)
				msg_in_input(&ev.u.sess.will);
		}
		break;
	case 1:
		rc = rdecode_sub(&ev, a, alen, b, blen, v, vlen);
		break;
	case 2:
		rc = rdecode_qent(&ev, a, alen, b, blen, v, vlen);
		if (rc == HQ_OK) {
			in_input(ev.u.qent.share_group);
			in_input(ev.u.qent.sub_ids);
			CHECK(ev.u.qent.sub_ids.len % 4 == 0);
		}
		break;
	case 3:
		rc = rdecode_rx(&ev, a, alen, b, blen);
		break;
	case 4:
		rc = rdecode_mark(&ev, a, alen, b, blen, v, vlen);
		if (rc == HQ_OK)
			in_input(ev.u.mark.target);
		break;
	default:
		/* a stored or retained message: the id is 8 bytes of the key */
		rc = rdecode_msg(&ev, blen & 1 ? STORE_EV_RETAIN_PUT : STORE_EV_MSG_PUT,
				 alen == 8 ? a : NULL, v, vlen);
		if (rc == HQ_OK)
			msg_in_input(&ev.u.msg);
		break;
	}
	CHECK(rc == HQ_OK || rc == HQ_EMALFORMED);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 65536)
		return 0;
	uint8_t mode = data[0];
	/* an exact-size heap copy so ASan catches a read one past the end */
	uint8_t *p = malloc(size > 1 ? size - 1 : 1);
	memcpy(p, data + 1, size - 1);
	lo = p;
	hi = p + size - 1;
	if (mode < 128)
		fuzz_lmdb((uint8_t)(1 + mode % STORE_EV_KIND_MAX), p, size - 1);
	else
		fuzz_redis(mode, p, size - 1);
	free(p);
	return 0;
}
