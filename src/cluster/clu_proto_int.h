/*
 * clu_proto_int.h - private to the cluster codec (clu_proto.c, clu_proto_enc.c,
 * clu_proto_dec.c): wire constants and fixed layouts of clu_proto.h's table,
 * and the checks the encoder and the decoder share, so what we encode is
 * exactly what we accept.
 */
#ifndef HQ_CLUSTER_CLU_PROTO_INT_H
#define HQ_CLUSTER_CLU_PROTO_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/clu_proto.h"
#include "core/bytes.h"
#include "core/err.h"
#include "core/msg_wire.h"

/* fixed-size bodies and entries, as on the wire */
struct clu_wire_auth {
	uint8_t proof[CLU_PROOF_LEN];
};
struct clu_wire_heartbeat {
	uint8_t wall_ms[8];
	uint8_t echo_ms[8];
};
struct clu_wire_sync_begin {
	uint8_t incarnation[8];
	uint8_t sync_id[4];
};
struct clu_wire_sync_end {
	uint8_t sync_id[4];
	uint8_t count[4];
};
struct clu_wire_ack_range {
	uint8_t first[8];
	uint8_t last[8];
	uint8_t rc;
};

#define CLU_FF_PLAIN 0x01    /* FORWARD fflags */
#define CLU_FF_CLIENT 0x02
#define CLU_FF_RX 0x04       /* version 2 */
#define CLU_FF_SKIP 0x08     /* version 2 */
#define CLU_RK_DELETE 0      /* RETAIN_SET kind */
#define CLU_RK_SET 1

/* string domains of clu_proto.h's table */
enum clu_dom {
	CLU_D_NAME, CLU_D_CLUSTER, CLU_D_ADDR, CLU_D_TOPIC, CLU_D_FILTER, CLU_D_GROUP,
	CLU_D_GROUP0, CLU_D_TEXT, CLU_D_CID, CLU_D_TARGET, CLU_D_TABLE,
	CLU_D_METHOD, CLU_D_PATH, CLU_D_QUERY,
};

bool clu_dom_ok(enum clu_dom d, struct clu_str s);
bool clu_known_type(int type);
bool clu_is_batched(int type);
/* a valid PUBACK/PUBREC reason code: success, no matching subscribers, or a failure */
bool clu_ack_rc_ok(uint8_t rc);

/* a message's fields as the shared message encoding sees them (borrowed) */
static inline struct msg_wire clu_msg_wire(const struct clu_message *m)
{
	return (struct msg_wire){
		.qos = m->qos, .retain = m->retain, .has_expiry = m->has_expiry,
		.expiry = m->expiry, .pub_hash = m->pub_hash,
		.topic = (const uint8_t *)m->topic.p, .topic_len = m->topic.len,
		.props = m->props.p, .props_len = m->props.len,
		.payload = m->payload.p, .payload_len = m->payload.len,
	};
}

#endif
