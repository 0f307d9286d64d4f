/*
 * fuzz_mqtt_roundtrip.c - libFuzzer harness for the symmetry of the MQTT
 * codec (src/mqtt/): decode a packet, encode what was decoded, decode that
 * again and compare every field, then encode the second packet and compare
 * the bytes with the first encoding. fuzz_mqtt_decode checks that a
 * re-encoding is accepted; this one checks that nothing is lost, added or
 * changed on the way (a property the encoder forgets, a flag it spells
 * another way, a string cut short). Built and run by `make fuzz`; seeds in
 * tests/fuzz/corpus/fuzz_mqtt_roundtrip/ (3.1.1 and 5.0: CONNECT with every
 * property and a will, PUBLISH with properties, SUBSCRIBE with options, AUTH).
 *
 * Input: byte 0 picks the connection's protocol level (3, 4 or 5), the rest is
 * one packet. User properties are re-encoded through the `extra` blob, in
 * their order, as the broker forwards them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "mqtt/mqtt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s (line %d)\n", #c, __LINE__); abort(); } } while (0)

static struct mqtt_props *props_of(struct mqtt_packet *p)
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

static void same_str(struct mqtt_str a, struct mqtt_str b)
{
	CHECK(a.len == b.len);
	CHECK(a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

/* The user properties of pr as an `extra` blob, in order. */
static void users_to_blob(const struct mqtt_props *pr, struct buf *blob)
{
	uint32_t cur = 0;
	struct mqtt_str k, v;
	while (mqtt_props_user_next(pr, &cur, &k, &v)) {
		uint8_t h[2] = { (uint8_t)(k.len >> 8), (uint8_t)k.len };
		uint8_t id = MQTT_PROP_USER;
		buf_append(blob, &id, 1);
		buf_append(blob, h, 2);
		buf_append(blob, k.p, k.len);
		h[0] = (uint8_t)(v.len >> 8);
		h[1] = (uint8_t)v.len;
		buf_append(blob, h, 2);
		buf_append(blob, v.p, v.len);
	}
}

static void same_users(const struct mqtt_props *a, const struct mqtt_props *b)
{
	uint32_t ca = 0, cb = 0;
	struct mqtt_str ka, va, kb, vb;
	for (;;) {
		bool ha = mqtt_props_user_next(a, &ca, &ka, &va);
		bool hb = mqtt_props_user_next(b, &cb, &kb, &vb);
		CHECK(ha == hb);
		if (!ha)
			break;
		same_str(ka, kb);
		same_str(va, vb);
	}
	CHECK(a->n_user == b->n_user);
}

static void same_props(const struct mqtt_props *a, const struct mqtt_props *b)
{
	CHECK(a->present == b->present);
	CHECK(a->payload_format == b->payload_format);
	CHECK(a->request_problem_info == b->request_problem_info);
	CHECK(a->request_response_info == b->request_response_info);
	CHECK(a->max_qos == b->max_qos && a->retain_available == b->retain_available);
	CHECK(a->wildcard_sub_avail == b->wildcard_sub_avail);
	CHECK(a->sub_id_avail == b->sub_id_avail && a->shared_sub_avail == b->shared_sub_avail);
	CHECK(a->server_keep_alive == b->server_keep_alive && a->receive_max == b->receive_max);
	CHECK(a->topic_alias_max == b->topic_alias_max && a->topic_alias == b->topic_alias);
	CHECK(a->message_expiry == b->message_expiry && a->session_expiry == b->session_expiry);
	CHECK(a->will_delay == b->will_delay && a->max_packet_size == b->max_packet_size);
	same_str(a->content_type, b->content_type);
	same_str(a->response_topic, b->response_topic);
	same_str(a->correlation_data, b->correlation_data);
	same_str(a->assigned_client_id, b->assigned_client_id);
	same_str(a->auth_method, b->auth_method);
	same_str(a->auth_data, b->auth_data);
	same_str(a->response_info, b->response_info);
	same_str(a->server_reference, b->server_reference);
	same_str(a->reason_string, b->reason_string);
	CHECK(a->n_sub_ids == b->n_sub_ids);
	CHECK(memcmp(a->sub_ids, b->sub_ids, sizeof(a->sub_ids[0]) * a->n_sub_ids) == 0);
	same_users(a, b);
}

static void same_packet(const struct mqtt_packet *a, const struct mqtt_packet *b, uint8_t version)
{
	CHECK(a->type == b->type);
	/* MQTT 3.1 left the flags of other packets "not used" (the decoder takes
	 * any, the encoder writes the 3.1.1 ones) */
	if (version != MQTT_V31 || a->type == MQTT_PUBLISH || a->type == MQTT_CONNECT)
		CHECK(a->flags == b->flags);
	switch (a->type) {
	case MQTT_CONNECT: {
		const struct mqtt_connect *x = &a->u.connect, *y = &b->u.connect;
		same_str(x->proto_name, y->proto_name);
		CHECK(x->version == y->version && x->clean_start == y->clean_start);
		CHECK(x->keepalive == y->keepalive);
		same_str(x->client_id, y->client_id);
		CHECK(x->has_will == y->has_will);
		if (x->has_will) {
			same_props(&x->will.props, &y->will.props);
			same_str(x->will.topic, y->will.topic);
			CHECK(x->will.payload_len == y->will.payload_len);
			CHECK(!x->will.payload_len ||
			      !memcmp(x->will.payload, y->will.payload, x->will.payload_len));
			CHECK(x->will.qos == y->will.qos && x->will.retain == y->will.retain);
		}
		CHECK(x->has_username == y->has_username && x->has_password == y->has_password);
		same_str(x->username, y->username);
		same_str(x->password, y->password);
		break;
	}
	case MQTT_CONNACK:
		CHECK(a->u.connack.session_present == b->u.connack.session_present);
		CHECK(a->u.connack.reason == b->u.connack.reason);
		break;
	case MQTT_PUBLISH: {
		const struct mqtt_publish *x = &a->u.publish, *y = &b->u.publish;
		CHECK(x->dup == y->dup && x->qos == y->qos && x->retain == y->retain);
		same_str(x->topic, y->topic);
		CHECK(x->packet_id == y->packet_id && x->payload_len == y->payload_len);
		CHECK(!x->payload_len || !memcmp(x->payload, y->payload, x->payload_len));
		break;
	}
	case MQTT_PUBACK: case MQTT_PUBREC: case MQTT_PUBREL: case MQTT_PUBCOMP:
		CHECK(a->u.ack.packet_id == b->u.ack.packet_id && a->u.ack.reason == b->u.ack.reason);
		break;
	case MQTT_SUBSCRIBE: case MQTT_UNSUBSCRIBE: {
		const struct mqtt_subscribe *x = &a->u.subscribe, *y = &b->u.subscribe;
		CHECK(x->packet_id == y->packet_id && x->count == y->count);
		uint32_t cx = 0, cy = 0;
		struct mqtt_str fx, fy;
		uint8_t ox = 0, oy = 0;
		for (;;) {
			bool hx = a->type == MQTT_SUBSCRIBE ? mqtt_sub_next(x, &cx, &fx, &ox)
							    : mqtt_unsub_next(x, &cx, &fx);
			bool hy = a->type == MQTT_SUBSCRIBE ? mqtt_sub_next(y, &cy, &fy, &oy)
							    : mqtt_unsub_next(y, &cy, &fy);
			CHECK(hx == hy);
			if (!hx)
				break;
			same_str(fx, fy);
			CHECK(ox == oy);
		}
		break;
	}
	case MQTT_SUBACK: case MQTT_UNSUBACK:
		CHECK(a->u.suback.packet_id == b->u.suback.packet_id);
		CHECK(a->u.suback.count == b->u.suback.count);
		CHECK(!a->u.suback.count ||
		      !memcmp(a->u.suback.codes, b->u.suback.codes, a->u.suback.count));
		break;
	case MQTT_DISCONNECT: case MQTT_AUTH:
		CHECK(a->u.disconnect.reason == b->u.disconnect.reason);
		break;
	}
	const struct mqtt_props *pa = props_of((struct mqtt_packet *)a);
	if (pa)
		same_props(pa, props_of((struct mqtt_packet *)b));
}

/* Encode p (user properties through `extra`) into out. */
static void encode(struct mqtt_packet *p, uint8_t version, struct buf *out, struct buf *blob,
		   struct buf *wblob)
{
	struct mqtt_props *pr = props_of(p);
	if (pr) {
		users_to_blob(pr, blob);
		pr->extra = blob->data;
		pr->extra_len = (uint32_t)blob->len;
	}
	if (p->type == MQTT_CONNECT && p->u.connect.has_will) {
		users_to_blob(&p->u.connect.will.props, wblob);
		p->u.connect.will.props.extra = wblob->data;
		p->u.connect.will.props.extra_len = (uint32_t)wblob->len;
	}
	CHECK(mqtt_encode(out, version, p) == HQ_OK);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t version = (uint8_t)(MQTT_V31 + data[0] % 3);
	size--;
	/* an exact-size heap copy so ASan catches a read one past the end */
	uint8_t *in = malloc(size ? size : 1);
	memcpy(in, data + 1, size);
	struct mqtt_packet p1, p2, p3;
	struct buf b1 = { 0 }, b2 = { 0 }, u1 = { 0 }, w1 = { 0 }, u2 = { 0 }, w2 = { 0 };
	const char *why = NULL;

	if (mqtt_decode(in, size, version, &p1, &why) != HQ_OK)
		goto out;
	if (p1.type == MQTT_CONNECT)
		version = p1.u.connect.version;
	encode(&p1, version, &b1, &u1, &w1);
	int rc = mqtt_decode(b1.data, b1.len, version, &p2, &why);
	if (rc != HQ_OK)
		fprintf(stderr, "re-decode of %s v%d failed: %s\n", mqtt_type_name(p1.type), version, why);
	CHECK(rc == HQ_OK);
	same_packet(&p1, &p2, version);
	encode(&p2, version, &b2, &u2, &w2);
	CHECK(b1.len == b2.len && memcmp(b1.data, b2.data, b1.len) == 0);
	/* the first encoding is canonical: it decodes to itself again */
	CHECK(mqtt_decode(b2.data, b2.len, version, &p3, &why) == HQ_OK);
	same_packet(&p2, &p3, version);
out:
	buf_free(&b1);
	buf_free(&b2);
	buf_free(&u1);
	buf_free(&w1);
	buf_free(&u2);
	buf_free(&w2);
	free(in);
	return 0;
}
