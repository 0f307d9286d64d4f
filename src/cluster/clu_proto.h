/*
 * clu_proto.h - the cluster link protocol: frames exchanged between hamqtt
 * nodes over their authenticated TCP links (cluster.port, default 4370).
 * Layer: cluster, pure codec. No sockets, threads or broker structs: bytes in,
 * structs out and back. Encoders append to a struct buf (core/buf.h); decoders
 * read a borrowed byte range, validate every length and value, and return
 * HQ_EMALFORMED for anything that is not exactly a valid frame (peer input is
 * untrusted until authenticated and fuzzed regardless). Decoding allocates
 * nothing: strings, blobs and batched entries point into the input.
 *
 * LINK PROTOCOL, VERSION 5 (CLU_PROTO_VERSION)
 * ============================================
 * Version 5 added RPC_REQ and RPC_RESP (the cluster-wide REST API: a node
 * asks its peers to answer an HTTP request for themselves, clu_rpc.c): a new
 * message type bumps the version, since a version 4 node would close the link
 * on the first RPC_REQ it cannot read.
 * Version 4 (two changes merged): FORWARD's mid (the origin's message id: a
 * session that just moved here drops the second copy of a message that
 * reached it both straight and through its old node, ARCHITECTURE.md
 * "Takeover") and REPL_SET (replicated tables). Version 3 existed on two
 * branches with one of them each and never shipped. Version 2 added
 * FORWARD's RX and SKIP (exactly once for QoS 2 across nodes, see FORWARD
 * below); version 1 had neither.
 *
 * Notation: u8/u16/u32/u64 are unsigned big-endian integers. str is a u16
 * length then that many bytes (no terminator); bin is a u32 length then that
 * many bytes. [x] is present only under the stated condition; x * n is x
 * repeated n times. No padding, no alignment; a body ends exactly after its
 * last field (trailing bytes are malformed). Reserved bits must be 0.
 *
 * Frame: an 8-byte header, then the body (struct clu_wire_hdr pins the layout).
 *
 *   offset size field
 *   0      1    magic    0xC1 (CLU_MAGIC: not the first byte of any MQTT packet
 *                        we accept, of TLS (0x16) or of an HTTP request, so a
 *                        misdirected client is refused at once)
 *   1      1    version  CLU_PROTO_VERSION; anything else: HQ_EVERSION
 *   2      1    type     CLU_MSG_* below; unknown: malformed
 *   3      1    flags    reserved, 0 in versions 1 to 3
 *   4      4    length   body length, u32; at most the receiver's limit and
 *                        never more than CLU_MAX_BODY: HQ_ETOOLARGE
 *
 * String domains (checked by both the encoder and the decoder):
 *   name     node name "name@host": 3..255 bytes of printable ASCII
 *            (0x21..0x7E), exactly one '@', neither first nor last
 *   cluster  cluster name: 1..255 bytes of printable ASCII
 *   addr     "host:port" where the node accepts links: 3..255 bytes of
 *            printable ASCII, host non-empty ("[v6]" allowed), port 1..65535
 *   topic    MQTT topic name: 1..65535 bytes of UTF-8, no U+0000, no '+' '#'
 *   filter   MQTT topic filter: 1..65535 bytes of UTF-8, no U+0000, '+' and
 *            '#' only as whole levels, '#' only last (no "$share/" prefix:
 *            the share group travels apart)
 *   group    share group name: 1..65535 bytes of UTF-8, no U+0000, no '/' '+' '#'
 *   text     UTF-8, 0..255 bytes, no U+0000 (for log lines only)
 *   table    replicated table name: 1..32 bytes of [a-z0-9_]
 *   rkey     replicated table key: 1..1024 bytes, any (opaque to the codec)
 *   cid      MQTT client identifier: 1..65535 bytes of UTF-8, no U+0000
 *   method   HTTP method: 1..16 bytes of 'A'..'Z'
 *   path     HTTP path (decoded): 1..4096 bytes of UTF-8, no U+0000, first '/'
 *   query    encoded query string: 0..65535 bytes of printable ASCII (0x21..0x7E)
 *   target   a stored QoS 2 message's target, the store's mark encoding
 *            (store.h RXID_MARK): 'c' then a client id, or 'g' then a share
 *            group "$share/g/f"; 2..65535 bytes, UTF-8 after the first, no U+0000
 * UTF-8 is well formed (shortest form, no surrogates, <= U+10FFFF).
 *
 * Shared pieces (mbody and the topic before it are the shared message
 * encoding, core/msg_wire.h, also used by the session blob):
 *   hlc      = wall_ms:u64  logical:u16       hybrid logical clock (clu_hlc.h)
 *   mbody    = qos:u8                         0..2
 *              mflags:u8                      RETAIN 0x01, EXPIRY 0x02
 *              [expiry:u32]                   if EXPIRY: remaining message
 *                                             expiry interval, s
 *              pub_hash:u32                   hash of the publisher's client id
 *                                             (shared subscription strategy)
 *              props:bin                      forwardable v5 properties as
 *                                             received (validated by the
 *                                             MQTT layer, opaque here)
 *              payload:bin
 *
 * Messages (type: body). Sizes are of the body.
 *
 * type name                 body                                          dir
 * ---- -------------------- --------------------------------------------- ----
 * 0x01 HELLO                proto:u16 (!= 0)  node:name  cluster:cluster   both
 *                           addr:addr  incarnation:u64 (!= 0)
 *                           nonce:32 bytes  hflags:u8 (JOIN 0x01)
 * 0x02 AUTH                 proof:32 bytes (see AUTHENTICATION)             both
 * 0x03 REFUSE               reason:u8 (CLU_REFUSE_*, 1..7)  why:text       both
 * 0x04 HEARTBEAT            wall_ms:u64  echo_ms:u64 (last wall_ms seen     both
 *                           from the peer, 0 if none; for RTT)
 * 0x05 LEAVE                lflags:u8 (FORCE 0x01)  node:name               both
 *                           incarnation:u64 (!= 0)
 * 0x06 BARRIER              id:u64                                          both
 * 0x07 BARRIER_ACK          id:u64 (the id of a BARRIER received)           both
 * 0x10 MEMBERS              n:u32  member * n                               both
 *                             member = node:name  addr:addr
 *                                      state:u8 (RUNNING 1, STOPPED 2, LEFT 3)
 *                                      incarnation:u64 (!= 0)
 * 0x20 ROUTE_ADD            n:u32  route * n                                both
 * 0x21 ROUTE_DEL            n:u32  route * n                                both
 *                             route = filter:filter  group:str (empty: not
 *                                     shared, else a group)
 * 0x22 ROUTE_SYNC_BEGIN     incarnation:u64 (the sender's, != 0)  sync_id:u32 both
 * 0x23 ROUTE_SYNC_END       sync_id:u32  count:u32 (routes sent since BEGIN) both
 * 0x30 FORWARD              seq:u64  fflags:u8 (PLAIN 0x01, CLIENT 0x02,     both
 *                           RX 0x04, SKIP 0x08)
 *                           origin:name  mid:u64 (0: none)
 *                           [client:cid] if CLIENT
 *                           [rx_client:cid  rx_pid:u16 (!= 0)] if RX
 *                           [n_skip:u32 (>= 1)  target:target * n_skip] if SKIP
 *                           n_groups:u16  (group:group filter:filter) * n
 *                           topic:topic  mbody
 * 0x31 FORWARD_ACK          n:u32  range * n                                both
 *                             range = first:u64  last:u64  rc:u8
 * 0x40 RETAIN_SET           n:u32  retained * n                             both
 *                             retained = hlc  origin:name  topic:topic
 *                                        kind:u8 (DELETE 0, SET 1)
 *                                        [mbody] if SET
 * 0x50 SESSION_TAKEOVER_REQ req_id:u64  tflags:u8 (CLEAN_START 0x01)        both
 *                           hlc (of the new connection)  client_id:cid
 * 0x51 SESSION_TAKEOVER_RESP req_id:u64  status:u8 (CLU_TAKEOVER_*, 0..2)        both
 *                           client_id:cid  session:bin (sess_serial blob;
 *                           empty unless status OK)
 * 0x52 CLIENTS              n:u32  client * n                               both
 *                             client = client_id:cid  hlc (when it connected)
 * 0x60 REPL_SET             n:u32  rentry * n                               both
 *                             rentry = table:table  key:rkey  hlc  origin:name
 *                                      kind:u8 (DELETE 0, SET 1)
 *                                      expires_ms:u64 (wall ms; 0 = never)
 *                                      [value:bin] if SET
 * 0x70 RPC_REQ              id:u64  method:method  path:path  query:query   both
 *                           caller:text (the HTTP client's address, for logs)
 *                           body:bin (<= CLU_RPC_REQ_BODY_MAX)
 * 0x71 RPC_RESP             id:u64 (an RPC_REQ's)  status:u16 (100..599)     both
 *                           body:bin (<= CLU_RPC_RESP_BODY_MAX)
 *
 * Semantics the codec enforces, and those it leaves to the runtime:
 * - HELLO: proto is the highest version the sender speaks. HELLO's body never
 *   changes across versions, so a node can always read a peer's HELLO (decode
 *   the body even when clu_frame_parse said HQ_EVERSION) and log the refusal.
 *   incarnation identifies one run of a node (its start time in ms): routes
 *   and members of an older incarnation are stale and ignored. JOIN says the
 *   initiator is joining on an operator's request (`cluster join`, static or
 *   DNS seeds): the acceptor admits it even if it had removed that node,
 *   whereas a plain reconnect of a removed node is refused (REMOVED).
 * - Link setup: the initiator sends HELLO; the acceptor answers HELLO (or
 *   REFUSE for a wrong cluster name or version); the initiator sends AUTH;
 *   the acceptor verifies it and answers AUTH (or REFUSE); the initiator
 *   verifies. Only then may any other frame flow; a node never reveals its
 *   proof to a peer that has not proven itself. The acceptor refuses a peer
 *   that claims its own name.
 * - BARRIER: the receiver answers BARRIER_ACK with the same id once every
 *   frame it received before the BARRIER has taken effect (routes are in
 *   every worker's index). A node sends SUBACK only after its peers
 *   acknowledged a BARRIER sent after the new routes, so a subscription
 *   holds cluster-wide once its SUBACK is out.
 * - MEMBERS carries the whole list after authentication and changed entries
 *   afterwards; entries merge by incarnation (runtime rules).
 * - Routes are owned by the sending node and replace nothing until
 *   ROUTE_SYNC_END: between BEGIN and END the ROUTE_ADD frames carry the full
 *   set; at END the receiver drops the sender's routes not re-added.
 * - FORWARD: the receiving node delivers to its own subscribers only: to the
 *   non-shared ones if PLAIN, and to one member of each listed (group, filter)
 *   the sender chose this node for. At least one of the two (else malformed),
 *   unless CLIENT: then it is for that client's session only (a delivery
 *   that reached the session's old node after the session moved here; its
 *   mbody QoS is the delivery's), and neither PLAIN nor groups may be set.
 *   seq is 0 exactly when qos is 0 (no acknowledgement); otherwise it is
 *   strictly increasing per link direction. origin is the publishing node
 *   and mid its id of the message (unique per origin run, 0: none); a
 *   CLIENT forward relaying a message another node forwarded keeps that
 *   node's origin and mid, so a session that moved gets a message that
 *   reached it both straight and relayed once (the codec checks neither).
 *   RX (only with mbody qos 2, never with CLIENT) names the publisher's
 *   session and packet id of a QoS 2 message whose id its node stored: each
 *   queue entry the receiver stores for it carries a mark (store.h
 *   RXID_MARK) in the same batch. SKIP (only with RX) lists the targets
 *   that have the message stored already (the publisher's resend of an id
 *   loaded from the store): the receiver delivers to none of them. The
 *   targets' wire size (sum of 2 + length) is at most CLU_FWD_SKIP_MAX; a
 *   sender whose set is larger sends without SKIP (a duplicate, not a loss).
 * - FORWARD_ACK: ranges of acknowledged seqs, first <= last, first != 0,
 *   strictly ascending and disjoint within one frame; rc is the MQTT v5
 *   reason code for the publisher (0x00 accepted, 0x10 no matching
 *   subscribers, 0x97 quota exceeded; only 0x00, 0x10 or >= 0x80).
 * - RETAIN_SET: last writer wins by clu_hlc_cmp(hlc, origin); DELETE is a
 *   tombstone (an empty retained publish). A batch serves both live updates
 *   and resynchronisation after a (re)connect.
 * - SESSION_TAKEOVER_REQ asks the node holding client_id to close that
 *   connection (reason 0x8E) and hand the session over (none if
 *   CLEAN_START). RESP status: OK 0 (session follows; empty when there was
 *   none or CLEAN_START), NONE 1 (not here), REFUSED 2 (the responder's own
 *   connection of that id is newer by hlc: the requester drops its client).
 * - REPL_SET (version 4): entries of the replicated key/value tables
 *   (src/repl/repl.h): last writer wins per (table, key) by clu_hlc_cmp(hlc,
 *   origin); DELETE is a tombstone. Like RETAIN_SET a batch serves both live
 *   updates and the full exchange when a link comes up. An entry whose
 *   expires_ms has passed is dropped by every node alike (no tombstone).
 * - RPC_REQ (version 5) asks the receiver to answer an HTTP request of the
 *   management API for itself only (the forwarded request of a cluster-wide
 *   route, src/http/http_fanout.c); RPC_RESP carries its HTTP status and body.
 *   Every RPC_REQ gets exactly one RPC_RESP on the same link (an error status
 *   when the receiver is busy or has no API); a link that goes down answers
 *   its requests in flight on the caller's side ("unreachable").
 * - CLIENTS, sent when a link comes up, lists the sender's connected client
 *   ids: after a partition, the receiver closes (0x8E) its own connection of
 *   any listed id that is older by clu_hlc_cmp (ties by node name), so no
 *   client id stays connected twice.
 *
 * AUTHENTICATION (clu_auth.c): both nodes share node.cookie, which never
 * crosses the wire. A proof is
 *     HMAC-SHA256(key = cookie, CLU_AUTH_LABEL || u16 len(prover) || prover
 *                 || u16 len(verifier) || verifier || nonce_a || nonce_b)
 * where nonce_a is the initiator's HELLO nonce and nonce_b the acceptor's
 * (both 32 random bytes, fresh per link), prover is the node sending AUTH
 * and verifier the node receiving it. Naming the prover first stops a proof
 * from being reflected back; fresh nonces stop replay. Proofs are compared in
 * constant time (CRYPTO_memcmp).
 *
 * VERSIONING: the frame header never changes. Any change to a body, a new
 * message type or a new flag bumps CLU_PROTO_VERSION; a node refuses other
 * versions (REFUSE VERSION after reading HELLO) rather than guessing, so a
 * cluster is upgraded across a version bump by restarting every node (a
 * version 1 node and a version 2 node do not link).
 * Message type numbers and fixed layouts are pinned by static_assert in
 * clu_proto.c. The encoder is clu_proto_enc.c, the decoder clu_proto_dec.c.
 */
#ifndef HQ_CLUSTER_CLU_PROTO_H
#define HQ_CLUSTER_CLU_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/clu_types.h"
#include "core/buf.h"

#define CLU_PROTO_VERSION 5
#define CLU_MAGIC 0xC1
#define CLU_HDR_LEN 8
/* an MQTT packet (256 MiB) plus room for the FORWARD envelope */
#define CLU_MAX_BODY ((1u << 28) + (1u << 20))
/* FORWARD's skip set on the wire, at most: well inside the envelope room */
#define CLU_FWD_SKIP_MAX (1u << 19)
#define CLU_NONCE_LEN 32
#define CLU_PROOF_LEN 32
#define CLU_NAME_MAX 255          /* node name, cluster name, addr */
#define CLU_TEXT_MAX 255
#define CLU_AUTH_LABEL "hamqtt cluster auth v1"

/* The frame header as it lies on the wire (layout pinned in clu_proto.c). */
struct clu_wire_hdr {
	uint8_t magic;     /* CLU_MAGIC */
	uint8_t version;   /* CLU_PROTO_VERSION */
	uint8_t type;      /* enum clu_type */
	uint8_t flags;     /* reserved: 0 */
	uint8_t len[4];    /* body length, big-endian */
};

enum clu_type {
	CLU_MSG_HELLO = 0x01,
	CLU_MSG_AUTH = 0x02,
	CLU_MSG_REFUSE = 0x03,
	CLU_MSG_HEARTBEAT = 0x04,
	CLU_MSG_LEAVE = 0x05,
	CLU_MSG_BARRIER = 0x06,
	CLU_MSG_BARRIER_ACK = 0x07,
	CLU_MSG_MEMBERS = 0x10,
	CLU_MSG_ROUTE_ADD = 0x20,
	CLU_MSG_ROUTE_DEL = 0x21,
	CLU_MSG_ROUTE_SYNC_BEGIN = 0x22,
	CLU_MSG_ROUTE_SYNC_END = 0x23,
	CLU_MSG_FORWARD = 0x30,
	CLU_MSG_FORWARD_ACK = 0x31,
	CLU_MSG_RETAIN_SET = 0x40,
	CLU_MSG_TAKEOVER_REQ = 0x50,
	CLU_MSG_TAKEOVER_RESP = 0x51,
	CLU_MSG_CLIENTS = 0x52,
	CLU_MSG_REPL_SET = 0x60,
	CLU_MSG_RPC_REQ = 0x70,
	CLU_MSG_RPC_RESP = 0x71,
};

enum clu_refuse_reason {
	CLU_REFUSE_VERSION = 1,    /* protocol version not spoken */
	CLU_REFUSE_CLUSTER = 2,    /* cluster name differs */
	CLU_REFUSE_AUTH = 3,       /* wrong proof: cookies differ */
	CLU_REFUSE_NAME = 4,       /* node name clash (our own, or already linked) */
	CLU_REFUSE_REMOVED = 5,    /* the peer was force-left from this cluster */
	CLU_REFUSE_BUSY = 6,       /* starting or shutting down; retry later */
	CLU_REFUSE_TLS = 7,        /* cluster.tls differs: TLS required or not spoken,
				    * or the certificate does not name the node's host */
};

enum clu_member_state {
	CLU_MEMBER_RUNNING = 1,
	CLU_MEMBER_STOPPED = 2,
	CLU_MEMBER_LEFT = 3,       /* tombstone: left or force-left */
};

/* enum clu_takeover_status: clu_types.h (the broker needs it too) */

#define CLU_LEAVE_FORCE 0x01
#define CLU_HELLO_JOIN 0x01
#define CLU_TAKEOVER_CLEAN_START 0x01

/* Borrowed byte ranges. Decoded ones point into the frame and live as long as it. */
struct clu_str {
	const char *p;
	size_t len;
};
struct clu_bin {
	const uint8_t *p;
	size_t len;
};

/* A NUL-terminated C string as a clu_str (borrowed). */
struct clu_str clu_str(const char *s);

/*
 * A validated run of batched entries inside a decoded frame: read them with
 * the clu_next_* function of the frame's type. A value: copy it to iterate
 * twice.
 */
struct clu_list {
	uint32_t n;          /* entries left */
	const uint8_t *p;    /* the next entry */
	size_t len;          /* bytes left */
};

struct clu_hello {
	uint16_t proto;                   /* highest version the sender speaks */
	struct clu_str node, cluster, addr;
	uint64_t incarnation;             /* != 0 */
	uint8_t nonce[CLU_NONCE_LEN];
	bool join;                        /* CLU_HELLO_JOIN */
};

struct clu_refuse {
	uint8_t reason;                   /* enum clu_refuse_reason */
	struct clu_str why;               /* text */
};

struct clu_heartbeat {
	uint64_t wall_ms;
	uint64_t echo_ms;
};

struct clu_leave {
	bool force;                       /* force-leave of another node */
	struct clu_str node;
	uint64_t incarnation;
};

struct clu_member {
	struct clu_str node, addr;
	uint8_t state;                    /* enum clu_member_state */
	uint64_t incarnation;
};

struct clu_route {
	struct clu_str filter;
	struct clu_str group;             /* len 0: not a shared subscription */
};

struct clu_sync {
	uint64_t incarnation;             /* ROUTE_SYNC_BEGIN only */
	uint32_t sync_id;
	uint32_t count;                   /* ROUTE_SYNC_END only */
};

/* a share group the receiving node must serve */
struct clu_group {
	struct clu_str group, filter;
};

/* a message: topic + mbody of the wire format */
struct clu_message {
	uint8_t qos;
	bool retain;
	bool has_expiry;
	uint32_t expiry;                  /* s left, if has_expiry */
	uint32_t pub_hash;
	struct clu_str topic;
	struct clu_bin props, payload;
};

struct clu_forward {
	uint64_t seq;                     /* 0 iff msg.qos == 0 */
	bool plain;                       /* deliver to non-shared subscribers */
	struct clu_str origin;            /* publishing node (a relay: the first one) */
	uint64_t mid;                     /* origin's message id, unique per run; 0: none */
	struct clu_str client;            /* len > 0: for this client's session only */
	struct clu_str rx_client;         /* len > 0 (RX): the QoS 2 publisher's client id */
	uint16_t rx_pid;                  /* RX: its packet id */
	uint32_t n_skip;                  /* > 0 (SKIP): targets that have it stored */
	const struct clu_str *skip;       /* encode: n_skip targets */
	struct clu_list slist;            /* decode: clu_next_target */
	uint16_t n_groups;
	const struct clu_group *groups;   /* encode: n_groups entries */
	struct clu_list glist;            /* decode: clu_next_group */
	struct clu_message msg;
};

struct clu_ack_range {
	uint64_t first, last;             /* inclusive, 0 < first <= last */
	uint8_t rc;                       /* MQTT v5 reason code */
};

struct clu_retained {
	struct clu_hlc_ts ts;
	struct clu_str origin;            /* node that wrote it; LWW tie-break */
	bool del;                         /* tombstone: msg holds only topic */
	struct clu_message msg;
};

/* one entry of a replicated table (REPL_SET) */
#define CLU_TABLE_MAX 32
#define CLU_RKEY_MAX 1024
struct clu_rentry {
	struct clu_str table;             /* table domain */
	struct clu_bin key;               /* rkey domain */
	struct clu_hlc_ts ts;
	struct clu_str origin;            /* node that wrote it; LWW tie-break */
	bool del;                         /* tombstone: no value */
	uint64_t expires_ms;              /* wall ms, 0 = never */
	struct clu_bin value;             /* SET only */
};

struct clu_takeover_req {
	uint64_t req_id;
	bool clean_start;
	struct clu_hlc_ts ts;             /* when the new connection arrived */
	struct clu_str client_id;
};

struct clu_client {
	struct clu_str client_id;
	struct clu_hlc_ts ts;
};

/* RPC_REQ / RPC_RESP (version 5): the cluster-wide REST API */
#define CLU_RPC_METHOD_MAX 16
#define CLU_RPC_PATH_MAX 4096
#define CLU_RPC_REQ_BODY_MAX (64u * 1024)       /* HTTP_MAX_BODY */
#define CLU_RPC_RESP_BODY_MAX (8u * 1024 * 1024)
struct clu_rpc_req {
	uint64_t id;
	struct clu_str method, path, query, caller;
	struct clu_bin body;
};
struct clu_rpc_resp {
	uint64_t id;
	uint16_t status;                  /* HTTP status, 100..599 */
	struct clu_bin body;
};

struct clu_takeover_resp {
	uint64_t req_id;
	uint8_t status;                   /* enum clu_takeover_status */
	struct clu_str client_id;
	struct clu_bin session;           /* sess_serial blob, opaque here */
};

/* One decoded frame, or one frame to encode (non-batched types). */
struct clu_msg {
	uint8_t type;                     /* enum clu_type */
	union {
		struct clu_hello hello;
		uint8_t proof[CLU_PROOF_LEN];         /* AUTH */
		struct clu_refuse refuse;
		struct clu_heartbeat hb;
		struct clu_leave leave;
		uint64_t barrier_id;                  /* BARRIER, BARRIER_ACK */
		struct clu_list list;                 /* MEMBERS, ROUTE_ADD/DEL, FORWARD_ACK,
						       * RETAIN_SET, CLIENTS, REPL_SET
						       * (decode only) */
		struct clu_sync sync;                 /* ROUTE_SYNC_BEGIN/END */
		struct clu_forward fwd;
		struct clu_takeover_req treq;
		struct clu_takeover_resp tresp;
		struct clu_rpc_req rpcq;              /* RPC_REQ */
		struct clu_rpc_resp rpcr;             /* RPC_RESP */
	};
};

/* Parsed frame header. */
struct clu_frame {
	uint8_t version, type, flags;
	uint32_t len;                     /* body bytes */
};

/* ---- decoding ---- */

/*
 * Parse the header at p[0..n) (borrowed), checking in this order:
 * HQ_EMALFORMED for a wrong magic (as soon as n >= 1); HQ_EAGAIN if
 * n < CLU_HDR_LEN; HQ_ETOOLARGE if the body exceeds max_body or CLU_MAX_BODY;
 * HQ_EVERSION for another version; HQ_EMALFORMED for an unknown type or
 * non-zero flags. *h is filled for every result from HQ_ETOOLARGE on.
 */
int clu_frame_parse(const uint8_t *p, size_t n, size_t max_body, struct clu_frame *h);

/*
 * Decode the body p[0..n) of a frame of the given type into *m. Everything in
 * *m borrows from p. HQ_EMALFORMED on any invalid, truncated or trailing
 * content (and for an unknown type); *m is then unspecified.
 */
int clu_decode_body(int type, const uint8_t *p, size_t n, struct clu_msg *m);

/*
 * Decode the frame at the start of p[0..n): on HQ_OK *used is its length
 * (header + body) and *m borrows from p. HQ_EAGAIN while the frame is
 * incomplete; otherwise the errors of clu_frame_parse and clu_decode_body.
 */
int clu_decode(const uint8_t *p, size_t n, size_t max_body, struct clu_msg *m, size_t *used);

/*
 * Next entry of a decoded list (MEMBERS, ROUTE_ADD/DEL, FORWARD_ACK,
 * RETAIN_SET, FORWARD groups and skip set): false when none is left. The list was
 * validated when the frame was decoded; call only the function matching the
 * frame's type.
 */
bool clu_next_member(struct clu_list *l, struct clu_member *out);
bool clu_next_route(struct clu_list *l, struct clu_route *out);
bool clu_next_ack(struct clu_list *l, struct clu_ack_range *out);
bool clu_next_retained(struct clu_list *l, struct clu_retained *out);
bool clu_next_group(struct clu_list *l, struct clu_group *out);
bool clu_next_target(struct clu_list *l, struct clu_str *out);   /* FORWARD skip set */
bool clu_next_client(struct clu_list *l, struct clu_client *out);
bool clu_next_rentry(struct clu_list *l, struct clu_rentry *out);   /* REPL_SET */

/* ---- encoding ---- */

/*
 * Append the frame for m (a non-batched type; m borrowed) to out. The
 * encoder checks what the decoder checks, so a frame we send is one the peer
 * accepts: HQ_EINVAL for an invalid field or a batched type, HQ_ETOOLARGE if
 * the body would exceed CLU_MAX_BODY. On error out is unchanged.
 */
int clu_encode(struct buf *out, const struct clu_msg *m);

/*
 * Batched frames (MEMBERS, ROUTE_ADD, ROUTE_DEL, FORWARD_ACK, RETAIN_SET):
 * begin, add entries (each validated; HQ_EINVAL / HQ_ETOOLARGE leave the
 * batch as it was), then end, which completes the frame in out. Nothing else
 * may be appended to out between begin and end. clu_batch_size tells the
 * frame's size so far, to flush at a threshold; an empty batch is a valid
 * frame. clu_batch_abort removes the unfinished frame.
 */
struct clu_batch {
	struct buf *out;
	size_t start;         /* frame offset from out->off (survives compaction) */
	uint32_t n;           /* entries added */
	uint8_t type;
	uint64_t last_seq;    /* FORWARD_ACK: last of the previous range */
};

int clu_batch_begin(struct clu_batch *b, struct buf *out, int type);
int clu_batch_member(struct clu_batch *b, const struct clu_member *m);
int clu_batch_route(struct clu_batch *b, const struct clu_route *r);
int clu_batch_ack(struct clu_batch *b, const struct clu_ack_range *r);
int clu_batch_retained(struct clu_batch *b, const struct clu_retained *r);
int clu_batch_client(struct clu_batch *b, const struct clu_client *c);
int clu_batch_rentry(struct clu_batch *b, const struct clu_rentry *e);
size_t clu_batch_size(const struct clu_batch *b);
void clu_batch_end(struct clu_batch *b);
void clu_batch_abort(struct clu_batch *b);

/* Name of a message type for logs ("FORWARD"); "UNKNOWN" otherwise. */
const char *clu_type_name(int type);

/* ---- authentication (clu_auth.c, OpenSSL libcrypto) ---- */

/* Fill a fresh nonce from the OpenSSL CSPRNG. HQ_EIO if it fails. */
int clu_auth_nonce(uint8_t out[CLU_NONCE_LEN]);

/*
 * The proof that local_name knows cookie (NUL-terminated, non-empty), for a
 * link to remote_name where nonce_a is the initiator's nonce and nonce_b the
 * acceptor's (the same order on both sides). Names must be valid node names.
 * HQ_EINVAL for an empty cookie or invalid name, HQ_EIO if libcrypto fails.
 */
int clu_auth_proof(const char *cookie, struct clu_str local_name, struct clu_str remote_name,
		   const uint8_t nonce_a[CLU_NONCE_LEN], const uint8_t nonce_b[CLU_NONCE_LEN],
		   uint8_t out[CLU_PROOF_LEN]);

/*
 * Check a proof received from remote_name on a link where we are local_name
 * (same nonce order as clu_auth_proof): HQ_OK if it matches, HQ_EAUTH if not
 * (constant-time compare), or the errors of clu_auth_proof.
 */
int clu_auth_verify(const char *cookie, struct clu_str local_name, struct clu_str remote_name,
		    const uint8_t nonce_a[CLU_NONCE_LEN], const uint8_t nonce_b[CLU_NONCE_LEN],
		    const uint8_t proof[CLU_PROOF_LEN]);

/* Domain checks of the table above (also used by config validation). */
bool clu_name_valid(const char *p, size_t n);
bool clu_cluster_valid(const char *p, size_t n);
bool clu_addr_valid(const char *p, size_t n);

#endif
