/*
 * fuzz_mqtt_decode.c - libFuzzer harness for the MQTT decoder. Built and run
 * by `make fuzz` (FUZZ_TIME seconds; corpus in build-fuzz/corpus/).
 *
 * Input: byte 0 picks the connection's protocol level (3, 4 or 5), the rest is
 * one packet. Besides "no crash, no overread", each accepted packet is checked
 * for self-consistency: the walkers visit exactly what the decoder counted, and
 * re-encoding it yields bytes the decoder accepts again with the same fields.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "mqtt/mqtt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s (line %d)\n", #c, __LINE__); abort(); } } while (0)

static const struct mqtt_props *props_of(const struct mqtt_packet *p)
{
	switch (p->type) {
	case MQTT_CONNECT: return &p->u.connect.props;
	case MQTT_CONNACK: return &p->u.connack.props;
	case MQTT_PUBLISH: return &p->u.publish.props;
	case MQTT_PUBACK: case MQTT_PUBREC: case MQTT_PUBREL: case MQTT_PUBCOMP:
		return &p->u.ack.props;
	case MQTT_SUBSCRIBE: case MQTT_UNSUBSCRIBE: return &p->u.subscribe.props;
	case MQTT_SUBACK: case MQTT_UNSUBACK: return &p->u.suback.props;
	case MQTT_DISCONNECT: case MQTT_AUTH: return &p->u.disconnect.props;
	}
	return NULL;
}

/* Walk user properties; rebuild them as an `extra` blob in blob. */
static void users_to_blob(const struct mqtt_props *pr, struct buf *blob)
{
	uint32_t cur = 0;
	unsigned n = 0;
	struct mqtt_str k, v;

	while (mqtt_props_user_next(pr, &cur, &k, &v)) {
		CHECK(mqtt_utf8_valid(k.p, k.len) && mqtt_utf8_valid(v.p, v.len));
		uint8_t h[3] = { MQTT_PROP_USER, (uint8_t)(k.len >> 8), (uint8_t)k.len };
		buf_append(blob, h, 3);
		buf_append(blob, k.p, k.len);
		h[0] = (uint8_t)(v.len >> 8);
		h[1] = (uint8_t)v.len;
		buf_append(blob, h, 2);
		buf_append(blob, v.p, v.len);
		n++;
	}
	CHECK(n == pr->n_user || (pr->n_user == UINT16_MAX && n >= UINT16_MAX));
}

static void same_props(const struct mqtt_props *a, const struct mqtt_props *b)
{
	CHECK(a->present == b->present);
	CHECK(a->n_user == b->n_user);
	CHECK(a->n_sub_ids == b->n_sub_ids);
	CHECK(memcmp(a->sub_ids, b->sub_ids, sizeof(a->sub_ids[0]) * a->n_sub_ids) == 0);
	CHECK(a->topic_alias == b->topic_alias && a->message_expiry == b->message_expiry);
	CHECK(a->session_expiry == b->session_expiry && a->receive_max == b->receive_max);
	CHECK(a->reason_string.len == b->reason_string.len);
	CHECK(a->correlation_data.len == b->correlation_data.len);
}

static void check_accepted(const struct mqtt_packet *p, uint8_t version)
{
	struct buf blob = { 0 }, blob2 = { 0 }, out = { 0 }, fwd = { 0 };
	struct mqtt_packet copy = *p, again;
	struct mqtt_props *pr = (struct mqtt_props *)props_of(&copy);
	const char *why = NULL;

	if (p->type == MQTT_CONNECT)
		version = p->u.connect.version;
	if (p->type == MQTT_SUBSCRIBE || p->type == MQTT_UNSUBSCRIBE) {
		uint32_t cur = 0, n = 0;
		struct mqtt_str f;
		uint8_t o;
		while (p->type == MQTT_SUBSCRIBE ? mqtt_sub_next(&p->u.subscribe, &cur, &f, &o)
						 : mqtt_unsub_next(&p->u.subscribe, &cur, &f)) {
			CHECK(mqtt_utf8_valid(f.p, f.len));
			n++;
		}
		CHECK(n == p->u.subscribe.count && n > 0);
	}
	if (pr) {
		users_to_blob(pr, &blob);
		pr->extra = blob.data;
		pr->extra_len = (uint32_t)blob.len;
		mqtt_props_forwardable(pr, &fwd);
	}
	if (p->type == MQTT_CONNECT && p->u.connect.has_will) {
		users_to_blob(&p->u.connect.will.props, &blob2);
		copy.u.connect.will.props.extra = blob2.data;
		copy.u.connect.will.props.extra_len = (uint32_t)blob2.len;
	}

	int rc = mqtt_encode(&out, version, &copy);
	CHECK(rc == HQ_OK);
	rc = mqtt_decode(out.data, out.len, version, &again, &why);
	if (rc != HQ_OK)
		fprintf(stderr, "re-decode of %s v%d failed: %s\n", mqtt_type_name(p->type), version,
			why);
	CHECK(rc == HQ_OK);
	CHECK(again.type == p->type);
	if (pr)
		same_props(props_of(p), props_of(&again));
	switch (p->type) {
	case MQTT_CONNECT:
		CHECK(again.u.connect.client_id.len == p->u.connect.client_id.len);
		CHECK(again.u.connect.has_will == p->u.connect.has_will);
		CHECK(again.u.connect.will.topic.len == p->u.connect.will.topic.len);
		CHECK(again.u.connect.password.len == p->u.connect.password.len);
		if (p->u.connect.has_will)
			same_props(&p->u.connect.will.props, &again.u.connect.will.props);
		break;
	case MQTT_PUBLISH: {
		const struct mqtt_publish *a = &p->u.publish, *b = &again.u.publish;
		CHECK(a->qos == b->qos && a->dup == b->dup && a->retain == b->retain);
		CHECK(a->packet_id == b->packet_id && a->payload_len == b->payload_len);
		CHECK(a->topic.len == b->topic.len);
		CHECK(a->payload_len == 0 || memcmp(a->payload, b->payload, a->payload_len) == 0);
		/* the fast path, fed with what a broker would forward */
		struct mqtt_pub_out o = {
			.topic = a->topic.p, .topic_len = a->topic.len, .packet_id = a->packet_id,
			.qos = a->qos, .dup = a->dup, .retain = a->retain,
			.topic_alias = a->props.topic_alias,
			.has_expiry = a->props.present & MQTT_PROP_BIT(MQTT_PROP_MESSAGE_EXPIRY),
			.expiry = a->props.message_expiry,
			.sub_ids = a->props.sub_ids, .n_sub_ids = a->props.n_sub_ids,
			.props = fwd.data, .props_len = (uint32_t)fwd.len,
			.payload = a->payload, .payload_len = a->payload_len,
		};
		buf_reset(&out);
		size_t sz = mqtt_pub_out_size(version, &o);
		mqtt_pub_out_encode(&out, version, &o);
		CHECK(out.len == sz);
		rc = mqtt_decode(out.data, out.len, version, &again, &why);
		CHECK(rc == HQ_OK);
		CHECK(again.u.publish.payload_len == a->payload_len);
		break;
	}
	case MQTT_SUBACK: case MQTT_UNSUBACK:
		CHECK(again.u.suback.count == p->u.suback.count);
		break;
	case MQTT_SUBSCRIBE: case MQTT_UNSUBSCRIBE:
		CHECK(again.u.subscribe.count == p->u.subscribe.count);
		break;
	}
	buf_free(&blob);
	buf_free(&blob2);
	buf_free(&out);
	buf_free(&fwd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mqtt_packet pkt;
	const char *why = NULL;
	size_t hl;
	uint32_t rl;

	if (size < 1)
		return 0;
	uint8_t version = (uint8_t)(MQTT_V31 + data[0] % 3);
	data++;
	size--;

	/* an exact-size heap copy so ASan catches a read one past the end */
	uint8_t *p = malloc(size ? size : 1);
	memcpy(p, data, size);
	int frc = mqtt_frame(p, size, 0, &hl, &rl);
	int rc = mqtt_decode(p, size, version, &pkt, &why);
	if (rc == HQ_OK) {
		CHECK(frc == HQ_OK && hl + rl == size);
		check_accepted(&pkt, version);
	} else {
		CHECK(why != NULL);
	}
	free(p);
	return 0;
}
