/*
 * bench.h - hamqtt-bench, the MQTT load generator: shared types.
 *
 * One process, one thread, one epoll loop (net/ev.h) drives every client:
 * publishers, subscribers and idle connections. The MQTT codec (mqtt/mqtt.h)
 * encodes the control packets and decodes everything received; the publish
 * hot path copies a pre-encoded PUBLISH template and patches its packet id and
 * payload header in place, so nothing is allocated per message.
 *
 * Payload header (first BENCH_HDR bytes of every payload, host byte order,
 * sender and receiver on the same host):
 *   0..7   send time, CLOCK_MONOTONIC nanoseconds
 *   8..11  publisher id
 *   12..15 per-publisher sequence number, from 0
 *
 * Files: main.c (options, phases, main), client.c (connections, reading,
 * packet handling, writing), gen.c (publishers: rate, windows, templates),
 * track.c (per subscriber x publisher sequence tracking: lost, dup, reorder),
 * hist.c (latency histogram), report.c (/proc sampling, progress, summary,
 * RESULT line), tls.c (the TLS client: --cafile), hs.c (the hs sub-command:
 * full handshakes per second).
 */
#ifndef HQ_BENCH_H
#define HQ_BENCH_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "core/buf.h"
#include "net/ev.h"

#define BENCH_HDR 16               /* payload header bytes (minimum payload) */
#define BENCH_OUT_HIGH (64 * 1024) /* a publisher stops generating above this backlog */
#define BENCH_RX_CHUNK (256 * 1024) /* bytes per read() */
#define BENCH_MAX_PENDING 512      /* handshakes in progress at once */

enum bench_mode { MODE_PUB, MODE_SUB, MODE_PUBSUB, MODE_CONN, MODE_HS };
enum role { ROLE_PUB, ROLE_SUB, ROLE_IDLE };

/* client state, in order */
enum cstate {
	CS_IDLE,     /* not started yet */
	CS_TCP,      /* connect() in progress */
	CS_TLS,      /* TLS handshake in progress (--cafile) */
	CS_CONNACK,  /* CONNECT sent */
	CS_SUBACK,   /* SUBSCRIBE sent (subscribers) */
	CS_READY,    /* established: publishing, receiving or idling */
	CS_BYE,      /* hs mode: DISCONNECT sent, waiting for the broker to close */
	CS_CLOSED,   /* failed, dropped or closed by us; fd closed */
};

enum phase {
	PH_CONNECT,  /* opening connections */
	PH_WARMUP,   /* publishing, not measured */
	PH_MEASURE,  /* publishing, measured */
	PH_DRAIN,    /* publishing stopped: waiting for acks and deliveries */
	PH_HOLD,     /* conn mode: holding idle connections */
	PH_CLOSING,  /* DISCONNECT sent: waiting for the broker to close first, so
	              * TIME_WAIT lands on its side, not on our ephemeral ports */
	PH_DONE,
};

/* ---- latency histogram (hist.c): log-linear, fixed memory ---- */

#define HIST_SUB_BITS 8
#define HIST_SUB (1u << HIST_SUB_BITS)       /* exact below this */
#define HIST_HALF (HIST_SUB / 2)
#define HIST_BUCKETS (HIST_SUB + 55 * HIST_HALF) /* up to 2^63 ns, < 0.8 % error */

struct hist {
	uint64_t n;
	uint64_t min, max;        /* ns */
	double sum;               /* ns */
	uint64_t counts[HIST_BUCKETS];
};

void hist_reset(struct hist *h);
void hist_add(struct hist *h, uint64_t v_ns);
/* value (ns) at percentile p (0..100); 0 when empty */
uint64_t hist_pct(const struct hist *h, double p);

/* ---- sequence tracking (track.c) ---- */

struct gap {
	uint32_t lo, hi;          /* missing sequence numbers [lo, hi) */
};

/* what one tracker saw of one publisher */
struct track {
	uint32_t pub_id;          /* UINT32_MAX: empty hash slot */
	uint32_t next;            /* 1 + highest sequence number seen */
	uint32_t unique;          /* distinct sequence numbers seen */
	uint32_t n_gaps, cap_gaps;
	struct gap *gaps;         /* sorted, all below next */
	uint64_t *seen;           /* bitmap mode: one bit per sequence number */
};

/*
 * A tracker is what must see every message once: one subscriber, or with
 * --shared every subscriber of one shared subscription (same group and filter).
 * It maps publisher id -> struct track in an open-addressing table.
 */
struct tracker {
	char *filter;             /* as subscribed (with $share/ prefix) */
	struct track *tab;
	uint32_t cap, n;          /* cap is a power of two */
	struct track *last;       /* lookup cache */
	uint64_t dup, reorder;
	uint64_t forgotten;       /* gaps dropped when a gap list overflowed */
	uint32_t bitmap_bits;     /* > 0: tracks keep a bitmap of this many sequence
	                           * numbers instead of gap lists (any arrival order,
	                           * e.g. retained messages); beyond it: gap lists */
};

enum seen { SEEN_NEW, SEEN_REORDER, SEEN_DUP };

void trk_init(struct tracker *t, const char *filter, uint32_t bitmap_bits);
void trk_free(struct tracker *t);
/* The track for pub_id, created if absent / NULL if absent. */
struct track *trk_get(struct tracker *t, uint32_t pub_id);
struct track *trk_find(struct tracker *t, uint32_t pub_id);
enum seen trk_seen(struct tracker *t, struct track *k, uint32_t seq);
/* Missing sequence numbers below k->next (gaps), not counting forgotten ones. */
uint64_t trk_gap_total(const struct track *k);

/* ---- clients ---- */

struct bench;

struct pubstate {
	uint32_t id;              /* publisher id in the payload header */
	uint32_t seq;             /* next sequence number = messages sent */
	uint32_t acked;           /* QoS > 0 flows completed */
	uint32_t inflight;        /* QoS > 0 flows open */
	uint32_t fanout;          /* trackers in this process matching the topic */
	uint64_t delivered;       /* deliveries of this publisher's messages seen here */
	uint64_t e2e_credit;      /* deliveries written off after a stall (QoS 0) */
	int64_t stall_ms;         /* since when the e2e window is shut, 0 = open */
	int64_t start_ns;         /* rate schedule origin */
	uint16_t *free_ids;       /* QoS > 0: stack of free packet ids (slot + 1) */
	uint32_t n_free;
	uint8_t *slot_state;      /* QoS 2: 1 waiting PUBREC, 2 waiting PUBCOMP */
	uint8_t *tmpl;            /* encoded PUBLISH with a blank payload header */
	uint8_t *payload;         /* topic with %n: payload encoded per message */
	uint32_t tmpl_len;
	uint32_t off_pid;         /* packet id offset in tmpl (QoS > 0) */
	uint32_t off_payload;     /* payload offset in tmpl */
};

struct client {
	struct ev_io io;
	struct bench *b;
	uint32_t idx;             /* index within its role */
	uint8_t role;             /* enum role */
	uint8_t state;            /* enum cstate */
	bool dirty;               /* on the flush list */
	bool wr_blocked;          /* last write hit EAGAIN: waiting for EV_WRITE */
	bool bye;                 /* DISCONNECT queued */
	uint8_t tls_wait;         /* TLS: what the last call that must be retried waits
	                           * for, EV_READ or EV_WRITE (tls.c) */
	uint8_t wr_wait;          /* wr_blocked: EV_WRITE, or EV_READ (a TLS write that
	                           * needs input first) */
	bool rd_wait_write;       /* TLS: a read waits for output room */
	uint16_t sub_pid;         /* SUBSCRIBE packet id */
	uint32_t window;          /* QoS > 0 in-flight limit (v5 receive maximum applied) */
	struct client *dirty_next;
	int64_t t_start_ns;       /* connect() called */
	int64_t last_tx_ms;       /* for PINGREQ */
	char *topic;              /* publish topic or subscription filter */
	struct buf in;            /* partial packet kept between reads */
	struct buf out;           /* pending output */
	struct pubstate *pub;     /* publishers */
	struct tracker *trk;      /* subscribers */
	struct ssl_st *ssl;       /* TLS (owned; NULL on TCP) */
};

/* ---- options ---- */

struct opts {
	int mode;                 /* enum bench_mode */
	const char *host;
	int port;
	uint32_t clients;
	uint32_t pubs, subs;      /* pubsub shapes (default: clients each) */
	int qos, sub_qos;
	int version;              /* 3, 4 or 5 */
	uint32_t size;            /* payload bytes */
	double rate;              /* msg/s per publisher, 0 = max */
	uint32_t window;
	const char *topic, *sub_topic;
	bool topic_seq;           /* topic has %n: one topic per message */
	bool retain;              /* publish with the RETAIN flag */
	uint64_t expect;          /* sub: stop once this many distinct messages arrived;
	                           * measured from the first SUBSCRIBE */
	double duration, warmup, drain;
	bool duration_set;
	uint64_t count;           /* messages per publisher, 0 = use duration */
	double conn_rate;
	int keepalive;
	bool clean;
	long long session_expiry; /* -1: not sent */
	int cpu;                  /* -1: not pinned */
	bool bind_spread;
	int broker_pid;           /* 0: none */
	const char *shared;       /* group or NULL */
	const char *id_prefix;
	uint32_t id_base;         /* pub: first publisher id */
	double timeout;           /* handshake timeout, and stall timeout */
	const char *cafile;       /* set: TLS, the server certificate checked against it */
	const char *certfile, *keyfile; /* client certificate (optional) */
	const char *tls_version;  /* "1.2", "1.3" or NULL (both) */
	const char *ciphers;      /* TLS 1.3 suites (TLS_*) or TLS 1.2 cipher list */
	const char *username, *password; /* CONNECT credentials, NULL = none */
	int progress;             /* -1 auto, 0 off, 1 on */
};

/* ---- counters and errors ---- */

struct counters {
	uint64_t sent;            /* PUBLISH written by publishers */
	uint64_t acked;           /* QoS 1 PUBACK / QoS 2 PUBCOMP received */
	uint64_t nacked;          /* of which with a v5 failure reason */
	uint64_t delivered;       /* PUBLISH received by subscribers */
	uint64_t dup, reorder;
	uint64_t stray;           /* no bench header, or publisher not expected */
	uint64_t e2e_stalls;      /* QoS 0 windows reopened after a stall */
	uint64_t bytes_in, bytes_out;
	uint64_t hs;              /* hs mode: cycles completed (CONNACK received) */
};

struct errors {
	uint32_t connect_fail;    /* socket/connect/handshake timeout */
	uint32_t refused;         /* CONNACK with a failure code */
	uint32_t sub_refused;     /* SUBACK with a failure code */
	uint32_t dropped;         /* closed by the broker once established */
	uint32_t protocol;        /* undecodable or unexpected packets */
	char first[256];          /* first error message */
};

/* CPU and memory samples (report.c) */
struct sample {
	int64_t t_ns;
	struct counters c;
	uint32_t established;
	double self_cpu_s;        /* utime + stime of this process */
	double broker_cpu_s;      /* -1 when unknown */
	long broker_rss_kb;       /* -1 when unknown */
};

struct bench {
	struct opts o;
	struct ev_loop *loop;
	struct sockaddr_storage addr;
	socklen_t addrlen;

	struct client *cl;        /* subscribers first, then publishers (or idle) */
	uint32_t n_cl, n_subs, n_pubs;
	struct pubstate *pubs;    /* n_pubs */
	struct tracker *trk;      /* n_trk */
	uint32_t n_trk;
	uint32_t known_pubs;      /* publisher ids 0..known_pubs-1 expected; 0 = any */
	uint64_t expected;        /* deliveries expected so far (known publishers) */
	uint64_t unique;          /* distinct deliveries received */

	/* connection phase */
	uint32_t next_conn;       /* next client to start */
	uint32_t pending;         /* handshakes in progress */
	uint32_t established;     /* reached CS_READY */
	uint32_t alive;           /* CS_READY and not closed since */
	uint64_t hs_started;      /* hs mode: cycles started (bounded by --count) */
	int64_t conn_t0_ns, conn_t1_ns; /* first connect() / last established */

	int phase;                /* enum phase */
	int64_t phase_ns;         /* when the phase began */
	int64_t run_t0_ns;        /* publishing began */
	int64_t measure_t0_ns, measure_t1_ns;
	int64_t expect_t_ns;      /* --expect: when the last expected message arrived */
	int64_t last_progress_ns; /* last delivery or ack */
	bool measuring;
	bool stalled;
	uint32_t alive_end;       /* alive when the run finished */

	struct client *dirty;     /* flush list */
	struct buf rx;            /* shared read scratch */
	int64_t now_ns;           /* cached per generation turn */

	struct counters c;
	struct counters cm;       /* counted while measuring */
	struct errors err;
	struct hist lat;          /* measured deliveries */
	struct hist lat_tick;     /* since the last progress line */

	struct sample s_base;     /* before the first connect (broker RSS) */
	struct sample s_m0, s_m1; /* measured period */
	struct sample s_tick;     /* last progress line */
	long broker_rss_max_kb;
	long broker_rss_conn_kb;  /* conn mode: after all connections */

	volatile int *sigflag;
};

/* ---- client.c ---- */
void cli_start(struct bench *b, struct client *c);
void cli_flush_all(struct bench *b);
void cli_mark_dirty(struct client *c);
void cli_close(struct client *c);
void cli_send_disconnect(struct client *c);  /* queue DISCONNECT; the broker closes */
void cli_disconnect(struct client *c);   /* DISCONNECT if it fits the socket, close */
/* once a second: PINGREQ after keepalive/2 idle, handshake timeouts */
void cli_tick(struct bench *b, int64_t now_ms);
void cli_error(struct bench *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int64_t now_ns(void);

/* ---- gen.c ---- */
void gen_init(struct bench *b, struct client *c);
void gen_free(struct pubstate *p);
/* generate what every publisher may send now */
void gen_turn(struct bench *b);
/* QoS > 0 acknowledgement handling on a publisher */
void gen_on_ack(struct client *c, int type, uint16_t pid, uint8_t reason);
bool gen_done(const struct bench *b);        /* every publisher finished --count */
bool gen_acks_done(const struct bench *b);   /* no QoS > 0 flow open */

/* ---- report.c ---- */
void rep_sample(struct bench *b, struct sample *s);
void rep_progress(struct bench *b);
int rep_final(struct bench *b);              /* prints summary + RESULT, returns exit code */
long rep_broker_rss_kb(int pid);
/* expected deliveries, lost, and lost after the last received (tail) */
void rep_expect(const struct bench *b, uint64_t *expected, uint64_t *lost, uint64_t *tail);

/* ---- main.c ---- */
/* sub --expect: the measured period starts at the first SUBSCRIBE and ends at
 * the expect-th distinct message */
void bench_expect_start(struct bench *b, int64_t t);
void bench_expect_reached(struct bench *b, int64_t t);

/* ---- tls.c ---- */
/* The process's TLS context from the options (nothing without --cafile);
 * -1: error printed. */
int btls_init(const struct opts *o);
void btls_free(void);
bool btls_on(void);
int btls_start(struct client *c);            /* SSL for c->io.fd; -1: error counted */
/* 1 done, 0 in progress (c->tls_wait), -1 failed (why) */
int btls_handshake(struct client *c, char *why, size_t n);
/* like recv/send: > 0, 0 = end (read), -1 + errno (EAGAIN: retry on c->tls_wait) */
ssize_t btls_read(struct client *c, void *p, size_t len, char *why, size_t n);
ssize_t btls_write(struct client *c, const void *p, size_t len, char *why, size_t n);
bool btls_pending(const struct client *c);
void btls_shutdown(struct client *c);        /* close_notify, not waited for */
void btls_close(struct client *c);           /* frees the SSL */

/* ---- hs.c ---- */
/* hs mode: start idle slots while the run wants more handshakes */
void hs_turn(struct bench *b);
void hs_on_connack(struct client *c);        /* cycle done: DISCONNECT, wait for close */
void hs_on_closed(struct client *c);         /* the broker closed after DISCONNECT */

/* ---- opts.c ---- */
/* 0: run; 1: help printed, exit 0; -1: usage error printed, exit 1 */
int bench_parse_opts(struct opts *o, int argc, char **argv);

/* ---- topics.c ---- */
/* pattern with %i = i, %n = n (sequence number), %% = % */
char *topic_expand(const char *pattern, uint32_t i, uint32_t n);
bool topic_match(const char *filter, const char *name);

#endif
