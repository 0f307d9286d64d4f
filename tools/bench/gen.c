/*
 * gen.c - publishers: what to send, when, and the QoS 1/2 flows.
 *
 * Each publisher owns a pre-encoded PUBLISH (codec: mqtt_pub_out_encode) whose
 * payload header is blank. Generating a message is a copy of that template
 * into the client's output buffer plus three patches: packet id (QoS > 0),
 * send time, and sequence number. All messages generated in one loop turn
 * carry the same send time: they leave in the same write().
 *
 * How many a publisher may generate in a turn is the minimum of
 *   - the rate schedule (-r): messages due since the run began, the schedules
 *     of the publishers staggered over one interval;
 *   - the window (-w): QoS > 0 flows not yet completed (PUBACK / PUBCOMP),
 *     capped by the broker's v5 receive maximum; at QoS 0 with no rate limit
 *     in pubsub, messages sent but not yet received by every subscriber of
 *     this process that should get them (end-to-end window), reopened after
 *     E2E_STALL_MS without progress, since QoS 0 messages may be lost;
 *   - --count, and the output backlog (BENCH_OUT_HIGH): a publisher whose
 *     socket is full waits for EV_WRITE.
 * QoS > 0 packet ids are slot numbers 1..window taken from a free stack, so an
 * id is never reused while its flow is open.
 *
 * A topic pattern with %n (sequence number) names one topic per message, e.g.
 * N retained topics: each PUBLISH is then encoded on its own (slower, but such
 * runs are about what the broker does with the topics, not about rate).
 */
#include "bench.h"
#include "core/mem.h"
#include "mqtt/mqtt.h"

#include <string.h>

#define E2E_STALL_MS 1000

void gen_init(struct bench *b, struct client *c)
{
	struct pubstate *p = &b->pubs[c->idx];
	uint32_t size = b->o.size;
	uint8_t *payload = hq_malloc(size);
	struct buf t = { 0 };

	p->id = b->o.id_base + c->idx;
	memset(payload, 0, BENCH_HDR);
	for (uint32_t i = BENCH_HDR; i < size; i++)
		payload[i] = (uint8_t)('a' + i % 26);
	struct mqtt_pub_out po = {
		.topic = (const uint8_t *)c->topic,
		.topic_len = (uint16_t)strlen(c->topic),
		.packet_id = 1,
		.qos = (uint8_t)b->o.qos,
		.retain = b->o.retain,
		.payload = payload,
		.payload_len = size,
	};
	mqtt_pub_out_encode(&t, (uint8_t)b->o.version, &po);
	if (b->o.topic_seq)
		p->payload = payload;   /* kept for the per-message encoding */
	else
		hq_free(payload);
	p->tmpl = t.data;
	p->tmpl_len = (uint32_t)t.len;
	p->off_payload = p->tmpl_len - size;
	/* the packet id precedes the v5 property length (one byte: 0) */
	p->off_pid = p->off_payload - 2 - (b->o.version == MQTT_V5 ? 1 : 0);
	if (b->o.qos > 0) {
		uint32_t w = b->o.window;
		p->free_ids = hq_malloc(w * sizeof(*p->free_ids));
		p->slot_state = hq_calloc(w + 1, 1);
		for (uint32_t i = 0; i < w; i++)
			p->free_ids[i] = (uint16_t)(w - i);
		p->n_free = w;
	}
	c->pub = p;
	c->window = b->o.window;
}

void gen_free(struct pubstate *p)
{
	hq_free(p->tmpl);
	hq_free(p->payload);
	hq_free(p->free_ids);
	hq_free(p->slot_state);
}

/* How many messages c may generate now. */
static uint64_t allowance(struct bench *b, struct client *c, int64_t t)
{
	struct pubstate *p = c->pub;
	const struct opts *o = &b->o;
	uint64_t n = UINT32_MAX;

	if (o->count)
		n = o->count > p->seq ? o->count - p->seq : 0;
	if (o->rate > 0) {
		if (t < p->start_ns)
			return 0;
		uint64_t due = (uint64_t)((double)(t - p->start_ns) * o->rate / 1e9) + 1;
		n = due > p->seq ? (n < due - p->seq ? n : due - p->seq) : 0;
	}
	if (o->qos > 0) {
		uint64_t room = c->window > p->inflight ? c->window - p->inflight : 0;
		if (room < n)
			n = room;
	} else if (o->mode == MODE_PUBSUB && o->rate <= 0 && p->fanout) {
		uint64_t want = (uint64_t)p->seq * p->fanout;
		uint64_t got = p->delivered + p->e2e_credit;
		uint64_t out = want > got ? want - got : 0;
		uint64_t limit = (uint64_t)o->window * p->fanout;
		uint64_t room = out < limit ? (limit - out) / p->fanout : 0;
		if (room == 0 && n) {
			int64_t ms = t / 1000000;
			if (!p->stall_ms) {
				p->stall_ms = ms;
			} else if (ms - p->stall_ms >= E2E_STALL_MS) {
				/* the missing deliveries are lost (QoS 0): reopen */
				p->e2e_credit += out;
				p->stall_ms = 0;
				b->c.e2e_stalls++;
				room = o->window;
			}
		}
		if (room < n)
			n = room;
	}
	if (n) {
		size_t backlog = buf_avail(&c->out);
		uint64_t fit = backlog < BENCH_OUT_HIGH ? (BENCH_OUT_HIGH - backlog) / p->tmpl_len : 0;
		if (fit == 0 && backlog == 0)
			fit = 1;
		if (fit < n)
			n = fit;
	}
	return n;
}

static uint16_t take_pid(struct pubstate *p)
{
	uint16_t pid = p->free_ids[--p->n_free];
	p->slot_state[pid] = 1;
	return pid;
}

/* topic with %n: encode each message with its own topic */
static void generate_seq(struct bench *b, struct client *c, uint32_t n, int64_t t)
{
	struct pubstate *p = c->pub;
	bool acked = b->o.qos > 0;

	for (uint32_t i = 0; i < n; i++) {
		char *topic = topic_expand(b->o.topic, p->id, p->seq);
		memcpy(p->payload, &t, 8);
		memcpy(p->payload + 8, &p->id, 4);
		memcpy(p->payload + 12, &p->seq, 4);
		struct mqtt_pub_out po = {
			.topic = (const uint8_t *)topic,
			.topic_len = (uint16_t)strlen(topic),
			.packet_id = acked ? take_pid(p) : 0,
			.qos = (uint8_t)b->o.qos,
			.retain = b->o.retain,
			.payload = p->payload,
			.payload_len = b->o.size,
		};
		mqtt_pub_out_encode(&c->out, (uint8_t)b->o.version, &po);
		hq_free(topic);
		p->seq++;
	}
}

/* copies of the template with the packet id and payload header patched */
static void generate_tmpl(struct bench *b, struct client *c, uint32_t n, int64_t t)
{
	struct pubstate *p = c->pub;
	size_t len = p->tmpl_len;
	uint8_t *w = buf_reserve(&c->out, (size_t)n * len);

	for (uint32_t i = 0; i < n; i++) {
		memcpy(w, p->tmpl, len);
		if (b->o.qos > 0) {
			uint16_t pid = take_pid(p);
			w[p->off_pid] = (uint8_t)(pid >> 8);
			w[p->off_pid + 1] = (uint8_t)pid;
		}
		uint8_t *h = w + p->off_payload;
		memcpy(h, &t, 8);
		memcpy(h + 8, &p->id, 4);
		memcpy(h + 12, &p->seq, 4);
		p->seq++;
		w += len;
	}
	c->out.len += (size_t)n * len;
}

static void generate(struct bench *b, struct client *c, uint32_t n, int64_t t)
{
	struct pubstate *p = c->pub;

	if (b->o.topic_seq)
		generate_seq(b, c, n, t);
	else
		generate_tmpl(b, c, n, t);
	if (b->o.qos > 0)
		p->inflight += n;
	b->c.sent += n;
	if (b->measuring)
		b->cm.sent += n;
	b->expected += (uint64_t)n * p->fanout;
	c->last_tx_ms = t / 1000000;
	cli_mark_dirty(c);
}

void gen_turn(struct bench *b)
{
	int64_t t = b->now_ns;

	if (b->phase != PH_WARMUP && b->phase != PH_MEASURE)
		return;
	for (uint32_t i = 0; i < b->n_pubs; i++) {
		struct client *c = &b->cl[b->n_subs + i];
		if (c->state != CS_READY || c->wr_blocked)
			continue;
		uint64_t n = allowance(b, c, t);
		if (n)
			generate(b, c, (uint32_t)n, t);
	}
}

static void flow_end(struct bench *b, struct client *c, uint16_t pid, uint8_t reason)
{
	struct pubstate *p = c->pub;

	p->slot_state[pid] = 0;
	p->free_ids[p->n_free++] = pid;
	p->inflight--;
	p->acked++;
	b->c.acked++;
	if (b->measuring)
		b->cm.acked++;
	if (reason >= 0x80) {
		b->c.nacked++;
		if (b->c.nacked == 1)
			cli_error(b, "publisher %u: the broker refused a message: reason 0x%02x",
				  c->idx, reason);
	}
}

void gen_on_ack(struct client *c, int type, uint16_t pid, uint8_t reason)
{
	struct bench *b = c->b;
	struct pubstate *p = c->pub;
	uint8_t want = type == MQTT_PUBCOMP ? 2 : 1;

	if (b->o.qos == 0 || pid == 0 || pid > b->o.window || p->slot_state[pid] != want ||
	    (type == MQTT_PUBACK) != (b->o.qos == 1)) {
		b->err.protocol++;
		cli_error(b, "publisher %u: unexpected %s for packet id %u", c->idx,
			  mqtt_type_name(type), pid);
		return;
	}
	if (type == MQTT_PUBREC && reason < 0x80) {
		uint8_t *w = buf_reserve(&c->out, 4);
		w[0] = MQTT_PUBREL << 4 | 0x02;
		w[1] = 2;
		w[2] = (uint8_t)(pid >> 8);
		w[3] = (uint8_t)pid;
		c->out.len += 4;
		cli_mark_dirty(c);
		p->slot_state[pid] = 2;
		return;
	}
	flow_end(b, c, pid, reason);
}

bool gen_done(const struct bench *b)
{
	if (!b->o.count)
		return false;
	for (uint32_t i = 0; i < b->n_pubs; i++) {
		const struct client *c = &b->cl[b->n_subs + i];
		if (c->state == CS_READY && c->pub->seq < b->o.count)
			return false;
	}
	return true;
}

bool gen_acks_done(const struct bench *b)
{
	for (uint32_t i = 0; i < b->n_pubs; i++) {
		const struct client *c = &b->cl[b->n_subs + i];
		if (c->state == CS_READY && c->pub->inflight)
			return false;
	}
	return true;
}
