/*
 * mqtt.h - the MQTT codec: pure functions from bytes to packets and back, for
 * MQTT 3.1 ("MQIsdp", level 3), 3.1.1 (level 4) and 5.0 (level 5).
 *
 * Layer: mqtt/ knows no sockets, no broker state, no threads. Everything here is
 * fuzzable.
 *
 * Ownership: decoding is zero-copy. Every struct mqtt_str / pointer in a decoded
 * packet BORROWS the input bytes and is valid only as long as they are. Callers
 * that keep anything copy it. Encoding appends to a caller-owned struct buf.
 *
 * Errors (core/err.h): HQ_EAGAIN (need more bytes), HQ_EMALFORMED (v5 0x81),
 * HQ_EPROTOCOL (v5 0x82), HQ_ETOOLARGE (0x95), HQ_EVERSION (CONNACK 0x84),
 * HQ_ETOPIC (0x90). The decoder validates everything the specification lets a
 * receiver check without session state: reserved flag bits, remaining length,
 * UTF-8 (well-formed, no U+0000, no surrogates) [MQTT-1.5.4-1..3], property ids
 * valid for the packet type, duplicated properties, property value ranges, QoS 3,
 * DUP on QoS 0, wildcards in PUBLISH topic names, packet id 0, empty SUBSCRIBE /
 * UNSUBSCRIBE, reserved subscription option bits, CONNECT flag consistency.
 * Checks that need session state (topic alias range, receive maximum, second
 * CONNECT, ...) are the broker's.
 */
#ifndef HQ_MQTT_H
#define HQ_MQTT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* protocol levels */
#define MQTT_V31 3
#define MQTT_V311 4
#define MQTT_V5 5

enum mqtt_type {
	MQTT_CONNECT = 1,
	MQTT_CONNACK = 2,
	MQTT_PUBLISH = 3,
	MQTT_PUBACK = 4,
	MQTT_PUBREC = 5,
	MQTT_PUBREL = 6,
	MQTT_PUBCOMP = 7,
	MQTT_SUBSCRIBE = 8,
	MQTT_SUBACK = 9,
	MQTT_UNSUBSCRIBE = 10,
	MQTT_UNSUBACK = 11,
	MQTT_PINGREQ = 12,
	MQTT_PINGRESP = 13,
	MQTT_DISCONNECT = 14,
	MQTT_AUTH = 15,
};

const char *mqtt_type_name(int type);

/* MQTT 5 property identifiers (spec 2.2.2.2) */
enum mqtt_prop_id {
	MQTT_PROP_PAYLOAD_FORMAT = 0x01,
	MQTT_PROP_MESSAGE_EXPIRY = 0x02,
	MQTT_PROP_CONTENT_TYPE = 0x03,
	MQTT_PROP_RESPONSE_TOPIC = 0x08,
	MQTT_PROP_CORRELATION_DATA = 0x09,
	MQTT_PROP_SUBSCRIPTION_ID = 0x0B,
	MQTT_PROP_SESSION_EXPIRY = 0x11,
	MQTT_PROP_ASSIGNED_CLIENT_ID = 0x12,
	MQTT_PROP_SERVER_KEEP_ALIVE = 0x13,
	MQTT_PROP_AUTH_METHOD = 0x15,
	MQTT_PROP_AUTH_DATA = 0x16,
	MQTT_PROP_REQUEST_PROBLEM_INFO = 0x17,
	MQTT_PROP_WILL_DELAY = 0x18,
	MQTT_PROP_REQUEST_RESPONSE_INFO = 0x19,
	MQTT_PROP_RESPONSE_INFO = 0x1A,
	MQTT_PROP_SERVER_REFERENCE = 0x1C,
	MQTT_PROP_REASON_STRING = 0x1F,
	MQTT_PROP_RECEIVE_MAX = 0x21,
	MQTT_PROP_TOPIC_ALIAS_MAX = 0x22,
	MQTT_PROP_TOPIC_ALIAS = 0x23,
	MQTT_PROP_MAX_QOS = 0x24,
	MQTT_PROP_RETAIN_AVAILABLE = 0x25,
	MQTT_PROP_USER = 0x26,
	MQTT_PROP_MAX_PACKET_SIZE = 0x27,
	MQTT_PROP_WILDCARD_SUB_AVAIL = 0x28,
	MQTT_PROP_SUB_ID_AVAIL = 0x29,
	MQTT_PROP_SHARED_SUB_AVAIL = 0x2A,
};
#define MQTT_PROP_BIT(id) ((uint64_t)1 << (id))

/* v5 reason codes (spec 2.4) */
enum mqtt_rc {
	MQTT_RC_SUCCESS = 0x00,           /* also normal disconnection, granted QoS 0 */
	MQTT_RC_GRANTED_QOS1 = 0x01,
	MQTT_RC_GRANTED_QOS2 = 0x02,
	MQTT_RC_DISCONNECT_WITH_WILL = 0x04,
	MQTT_RC_NO_MATCHING_SUBSCRIBERS = 0x10,
	MQTT_RC_NO_SUBSCRIPTION_EXISTED = 0x11,
	MQTT_RC_CONTINUE_AUTH = 0x18,
	MQTT_RC_REAUTHENTICATE = 0x19,
	MQTT_RC_UNSPECIFIED = 0x80,
	MQTT_RC_MALFORMED_PACKET = 0x81,
	MQTT_RC_PROTOCOL_ERROR = 0x82,
	MQTT_RC_IMPL_SPECIFIC = 0x83,
	MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION = 0x84,
	MQTT_RC_CLIENT_ID_NOT_VALID = 0x85,
	MQTT_RC_BAD_USERNAME_OR_PASSWORD = 0x86,
	MQTT_RC_NOT_AUTHORIZED = 0x87,
	MQTT_RC_SERVER_UNAVAILABLE = 0x88,
	MQTT_RC_SERVER_BUSY = 0x89,
	MQTT_RC_BANNED = 0x8A,
	MQTT_RC_SERVER_SHUTTING_DOWN = 0x8B,
	MQTT_RC_BAD_AUTH_METHOD = 0x8C,
	MQTT_RC_KEEP_ALIVE_TIMEOUT = 0x8D,
	MQTT_RC_SESSION_TAKEN_OVER = 0x8E,
	MQTT_RC_TOPIC_FILTER_INVALID = 0x8F,
	MQTT_RC_TOPIC_NAME_INVALID = 0x90,
	MQTT_RC_PACKET_ID_IN_USE = 0x91,
	MQTT_RC_PACKET_ID_NOT_FOUND = 0x92,
	MQTT_RC_RECEIVE_MAX_EXCEEDED = 0x93,
	MQTT_RC_TOPIC_ALIAS_INVALID = 0x94,
	MQTT_RC_PACKET_TOO_LARGE = 0x95,
	MQTT_RC_MESSAGE_RATE_TOO_HIGH = 0x96,
	MQTT_RC_QUOTA_EXCEEDED = 0x97,
	MQTT_RC_ADMIN_ACTION = 0x98,
	MQTT_RC_PAYLOAD_FORMAT_INVALID = 0x99,
	MQTT_RC_RETAIN_NOT_SUPPORTED = 0x9A,
	MQTT_RC_QOS_NOT_SUPPORTED = 0x9B,
	MQTT_RC_USE_ANOTHER_SERVER = 0x9C,
	MQTT_RC_SERVER_MOVED = 0x9D,
	MQTT_RC_SHARED_SUB_NOT_SUPPORTED = 0x9E,
	MQTT_RC_CONNECTION_RATE_EXCEEDED = 0x9F,
	MQTT_RC_MAX_CONNECT_TIME = 0xA0,
	MQTT_RC_SUB_IDS_NOT_SUPPORTED = 0xA1,
	MQTT_RC_WILDCARD_SUB_NOT_SUPPORTED = 0xA2,
};

/* v3.1/3.1.1 CONNACK return codes */
enum mqtt_v3_rc {
	MQTT_V3_ACCEPTED = 0,
	MQTT_V3_BAD_VERSION = 1,
	MQTT_V3_ID_REJECTED = 2,
	MQTT_V3_SERVER_UNAVAILABLE = 3,
	MQTT_V3_BAD_USER_PASS = 4,
	MQTT_V3_NOT_AUTHORIZED = 5,
};

/* A borrowed view of a length-prefixed UTF-8 string or binary data. */
struct mqtt_str {
	const uint8_t *p;
	uint16_t len;
};

#define MQTT_MAX_SUB_IDS 16 /* sub ids kept when decoding a server->client PUBLISH */

/*
 * Decoded (or to-be-encoded) MQTT 5 properties. `present` has MQTT_PROP_BIT(id)
 * set for every property that appeared (decode) or must be written (encode).
 * Decode: raw/raw_len is the whole property section (borrowed) so user properties
 * can be walked in order with mqtt_props_user_next(); n_user counts them.
 * Encode: properties flagged in `present` are written in id order (user
 * properties excluded), then `extra` (already-encoded properties, e.g. user
 * properties or a forwardable blob) verbatim.
 */
struct mqtt_props {
	uint64_t present;
	uint8_t payload_format;
	uint8_t request_problem_info;
	uint8_t request_response_info;
	uint8_t max_qos;
	uint8_t retain_available;
	uint8_t wildcard_sub_avail;
	uint8_t sub_id_avail;
	uint8_t shared_sub_avail;
	uint16_t server_keep_alive;
	uint16_t receive_max;
	uint16_t topic_alias_max;
	uint16_t topic_alias;
	uint32_t message_expiry;
	uint32_t session_expiry;
	uint32_t will_delay;
	uint32_t max_packet_size;
	struct mqtt_str content_type;
	struct mqtt_str response_topic;
	struct mqtt_str correlation_data;
	struct mqtt_str assigned_client_id;
	struct mqtt_str auth_method;
	struct mqtt_str auth_data;
	struct mqtt_str response_info;
	struct mqtt_str server_reference;
	struct mqtt_str reason_string;
	uint32_t sub_ids[MQTT_MAX_SUB_IDS]; /* subscription identifiers, in order */
	uint8_t n_sub_ids;
	uint16_t n_user;                    /* decode: number of user properties */
	const uint8_t *raw;                 /* decode: property bytes (no length prefix) */
	uint32_t raw_len;
	const uint8_t *extra;               /* encode: appended verbatim */
	uint32_t extra_len;
};

struct mqtt_will {
	struct mqtt_props props;
	struct mqtt_str topic;
	const uint8_t *payload;
	uint16_t payload_len;
	uint8_t qos;
	bool retain;
};

struct mqtt_connect {
	struct mqtt_str proto_name;   /* "MQTT" or "MQIsdp" */
	uint8_t version;              /* MQTT_V31 / MQTT_V311 / MQTT_V5 */
	bool clean_start;             /* clean session (v3) / clean start (v5) */
	uint16_t keepalive;           /* seconds */
	struct mqtt_props props;
	struct mqtt_str client_id;
	bool has_will;
	struct mqtt_will will;
	bool has_username;
	struct mqtt_str username;
	bool has_password;
	struct mqtt_str password;
};

struct mqtt_connack {
	bool session_present;
	uint8_t reason;               /* v5 reason code or v3 return code */
	struct mqtt_props props;
};

struct mqtt_publish {
	bool dup;
	uint8_t qos;
	bool retain;
	struct mqtt_str topic;        /* may be empty in v5 when a topic alias is used */
	uint16_t packet_id;           /* 0 for QoS 0 */
	struct mqtt_props props;
	const uint8_t *payload;
	uint32_t payload_len;
};

/* PUBACK, PUBREC, PUBREL, PUBCOMP */
struct mqtt_ack {
	uint16_t packet_id;
	uint8_t reason;               /* v5 only; 0 when absent */
	struct mqtt_props props;
};

/* subscription options byte (v5 3.8.3.1; v3 uses only the QoS bits) */
#define MQTT_SUBOPT_QOS_MASK 0x03
#define MQTT_SUBOPT_NO_LOCAL 0x04
#define MQTT_SUBOPT_RAP 0x08
#define MQTT_SUBOPT_RH_SHIFT 4
#define MQTT_SUBOPT_RH_MASK 0x30

/* SUBSCRIBE and UNSUBSCRIBE: the topic list is validated by the decoder and
 * walked with mqtt_sub_next() / mqtt_unsub_next(). */
struct mqtt_subscribe {
	uint16_t packet_id;
	struct mqtt_props props;
	const uint8_t *list;          /* payload bytes */
	uint32_t list_len;
	uint16_t count;               /* number of entries (>= 1) */
};

/* SUBACK and UNSUBACK: one reason/return code byte per entry
 * (v3.1.1 UNSUBACK has none: count = 0). */
struct mqtt_suback {
	uint16_t packet_id;
	struct mqtt_props props;
	const uint8_t *codes;
	uint16_t count;
};

/* DISCONNECT and AUTH */
struct mqtt_disconnect {
	uint8_t reason;
	struct mqtt_props props;
};

struct mqtt_packet {
	uint8_t type;                 /* enum mqtt_type */
	uint8_t flags;                /* low nibble of the fixed header */
	union {
		struct mqtt_connect connect;
		struct mqtt_connack connack;
		struct mqtt_publish publish;
		struct mqtt_ack ack;
		struct mqtt_subscribe subscribe;   /* also UNSUBSCRIBE */
		struct mqtt_suback suback;         /* also UNSUBACK */
		struct mqtt_disconnect disconnect; /* also AUTH */
	} u;
};

/* ---- framing ---- */

/*
 * Parse the fixed header at p[0..n). On HQ_OK, *hdr_len is the size of the fixed
 * header and *rem_len the remaining length; the whole packet is hdr_len+rem_len
 * bytes (which may not all be in p yet). HQ_EAGAIN: header incomplete.
 * HQ_EMALFORMED: remaining length varint longer than 4 bytes.
 * HQ_ETOOLARGE: hdr_len + rem_len > max_size (max_size 0 = no limit).
 */
int mqtt_frame(const uint8_t *p, size_t n, uint32_t max_size, size_t *hdr_len,
	       uint32_t *rem_len);

/*
 * Decode one whole packet p[0..n) (fixed header included; n must equal
 * hdr_len + rem_len from mqtt_frame). `version` is the protocol level negotiated
 * on the connection (ignored for CONNECT, which carries its own). Fields of
 * `out` borrow p. Returns HQ_OK or an error as listed at the top of this file.
 * `why` (may be NULL) receives a static description of the violation, for logs.
 */
int mqtt_decode(const uint8_t *p, size_t n, uint8_t version, struct mqtt_packet *out,
		const char **why);

/* Walk SUBSCRIBE entries. *cursor starts at 0. Returns true and fills filter and
 * options while entries remain. Only valid on a packet mqtt_decode accepted. */
bool mqtt_sub_next(const struct mqtt_subscribe *s, uint32_t *cursor,
		   struct mqtt_str *filter, uint8_t *options);
/* Walk UNSUBSCRIBE entries the same way. */
bool mqtt_unsub_next(const struct mqtt_subscribe *s, uint32_t *cursor,
		     struct mqtt_str *filter);
/* Walk user properties in their original order. *cursor starts at 0. */
bool mqtt_props_user_next(const struct mqtt_props *p, uint32_t *cursor,
			  struct mqtt_str *key, struct mqtt_str *val);

/* ---- encoding ---- */

/*
 * Append the encoding of pkt for protocol `version` to out. Properties are
 * written only for MQTT_V5. For SUBSCRIBE/UNSUBSCRIBE, list/list_len/count are
 * the already-encoded entry list (see mqtt_sub_append). Returns HQ_OK, or
 * HQ_EINVAL when a field cannot be encoded (string > 65535, packet > 256 MiB).
 */
int mqtt_encode(struct buf *out, uint8_t version, const struct mqtt_packet *pkt);

/* Append one SUBSCRIBE entry (filter + options byte) / UNSUBSCRIBE entry to a
 * list being built for mqtt_encode. */
void mqtt_sub_append(struct buf *list, const char *filter, uint8_t options);
void mqtt_unsub_append(struct buf *list, const char *filter);
/* Append one encoded user property (id 0x26, key, value) to a blob for `extra`. */
void mqtt_props_user_append(struct buf *blob, const char *key, const char *val);

/*
 * Outgoing PUBLISH, the broker's hot path: everything the broker has for one
 * delivery, encoded without building a struct mqtt_packet.
 */
struct mqtt_pub_out {
	const uint8_t *topic;         /* may be NULL/0 when an established alias is used */
	uint16_t topic_len;
	uint16_t packet_id;
	uint8_t qos;
	bool dup;
	bool retain;
	uint16_t topic_alias;         /* 0: no alias property */
	bool has_expiry;
	uint32_t expiry;              /* remaining message expiry interval, seconds */
	const uint32_t *sub_ids;      /* subscription identifiers to attach */
	uint8_t n_sub_ids;
	const uint8_t *props;         /* forwardable property blob (mqtt_props_forwardable) */
	uint32_t props_len;
	const uint8_t *payload;
	uint32_t payload_len;
};
/* Size in bytes of the encoded packet, fixed header included. */
size_t mqtt_pub_out_size(uint8_t version, const struct mqtt_pub_out *p);
void mqtt_pub_out_encode(struct buf *out, uint8_t version, const struct mqtt_pub_out *p);
/* The same packet without its payload bytes (the remaining length still counts
 * them): for a sender that writes the payload from where it already is. */
void mqtt_pub_out_encode_head(struct buf *out, uint8_t version, const struct mqtt_pub_out *p);

/*
 * Append to out the encoded properties of a received PUBLISH (or will) that a
 * broker forwards unchanged: payload format, content type, response topic,
 * correlation data and user properties (in order). Topic alias, subscription
 * identifiers and message expiry are left out: they are per delivery.
 */
void mqtt_props_forwardable(const struct mqtt_props *p, struct buf *out);

/* ---- primitives (also used by the store serialisation) ---- */

/* Encode v (< 268435456) as a variable byte integer into p (>= 4 bytes); returns bytes. */
size_t mqtt_varint_encode(uint8_t *p, uint32_t v);
/* Decode; returns bytes used (1..4), 0 if incomplete, -1 if malformed. */
int mqtt_varint_decode(const uint8_t *p, size_t n, uint32_t *v);
size_t mqtt_varint_size(uint32_t v);

/* true if p[0..n) is well-formed UTF-8 with no U+0000 and no surrogates
 * [MQTT-1.5.4-1] [MQTT-1.5.4-2]. */
bool mqtt_utf8_valid(const uint8_t *p, size_t n);

#endif
