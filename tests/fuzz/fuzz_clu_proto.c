/*
 * fuzz_clu_proto.c - libFuzzer harness for the cluster link decoder
 * (src/cluster/clu_proto.c). Links are authenticated, but a frame is parsed
 * before authentication ends, and a peer may be buggy: decoding must never
 * crash, overread or allocate. Built and run by `make fuzz`.
 *
 * Checks beyond ASan/UBSan: a decoded frame's length lies within the input,
 * every batched list walks exactly its declared entries, and a non-batched
 * message re-encodes to bytes that decode again to the same type.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/clu_proto.h"
#include "core/buf.h"
#include "core/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s (line %d)\n", #c, __LINE__); abort(); } } while (0)

/* Walk a decoded list with the iterator of its frame type; count entries. */
static void walk(const struct clu_msg *m)
{
	struct clu_list l;
	uint32_t n = 0, want;

	switch (m->type) {
	case CLU_MSG_MEMBERS: {
		struct clu_member e;
		l = m->list;
		want = l.n;
		while (clu_next_member(&l, &e))
			n++;
		break;
	}
	case CLU_MSG_ROUTE_ADD:
	case CLU_MSG_ROUTE_DEL: {
		struct clu_route e;
		l = m->list;
		want = l.n;
		while (clu_next_route(&l, &e))
			n++;
		break;
	}
	case CLU_MSG_FORWARD_ACK: {
		struct clu_ack_range e;
		l = m->list;
		want = l.n;
		while (clu_next_ack(&l, &e)) {
			CHECK(e.first > 0 && e.first <= e.last);
			n++;
		}
		break;
	}
	case CLU_MSG_RETAIN_SET: {
		struct clu_retained e;
		l = m->list;
		want = l.n;
		while (clu_next_retained(&l, &e))
			n++;
		break;
	}
	case CLU_MSG_CLIENTS: {
		struct clu_client e;
		l = m->list;
		want = l.n;
		while (clu_next_client(&l, &e))
			n++;
		break;
	}
	case CLU_MSG_REPL_SET: {      /* version 3: replicated table entries */
		struct clu_rentry e;
		l = m->list;
		want = l.n;
		while (clu_next_rentry(&l, &e)) {
			CHECK(e.key.len >= 1 && e.key.len <= CLU_RKEY_MAX && (!e.del || !e.value.len));
			n++;
		}
		break;
	}
	case CLU_MSG_FORWARD: {
		struct clu_group e;
		l = m->fwd.glist;
		want = l.n;
		while (clu_next_group(&l, &e))
			n++;
		CHECK(want == m->fwd.n_groups);
		/* the skip set (version 2): every target readable */
		struct clu_str t;
		struct clu_list sl = m->fwd.slist;
		uint32_t k = 0;
		while (clu_next_target(&sl, &t))
			k++;
		CHECK(k == m->fwd.n_skip);
		break;
	}
	default:
		return;
	}
	CHECK(n == want);
}

static bool batched(int type)
{
	return type == CLU_MSG_MEMBERS || type == CLU_MSG_ROUTE_ADD || type == CLU_MSG_ROUTE_DEL ||
	       type == CLU_MSG_FORWARD_ACK || type == CLU_MSG_RETAIN_SET || type == CLU_MSG_CLIENTS ||
	       type == CLU_MSG_FORWARD || type == CLU_MSG_REPL_SET;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct clu_msg m;
	size_t used = 0;
	int rc = clu_decode(data, size, CLU_MAX_BODY, &m, &used);

	if (rc != HQ_OK)
		return 0;
	CHECK(used >= CLU_HDR_LEN && used <= size);
	walk(&m);
	if (batched(m.type))
		return 0;
	struct buf out = { 0 };
	if (clu_encode(&out, &m) == HQ_OK) {
		struct clu_msg m2;
		size_t used2 = 0;
		CHECK(clu_decode(out.data, out.len, CLU_MAX_BODY, &m2, &used2) == HQ_OK);
		CHECK(used2 == out.len && m2.type == m.type);
	}
	buf_free(&out);
	return 0;
}
