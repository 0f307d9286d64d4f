/*
 * brg_int.h - what the bridge's files share (src/bridge/ only).
 *
 * Threading: everything here belongs to the bridge thread (brg_run.c) except
 * struct brg_stat, which other threads read through bridges_status() under
 * bridges.lock.
 */
#ifndef HQ_BRG_INT_H
#define HQ_BRG_INT_H

#include "bridge/bridge.h"
#include "core/buf.h"
#include "mqtt/mqtt.h"
#include "net/ev.h"

#include <pthread.h>
#include <stdatomic.h>

struct tls_cli;
struct tls_conn;
struct brg_link;

enum brg_link_state {
	LK_IDLE = 0,      /* no socket */
	LK_DIAL,          /* TCP connect in progress */
	LK_TLS,           /* TLS handshake in progress */
	LK_MQTT,          /* CONNECT sent, waiting for CONNACK */
	LK_UP,            /* CONNACK accepted */
};

typedef void (*brg_pkt_fn)(struct brg_link *l, const struct mqtt_packet *p, const uint8_t *raw,
			   size_t len);
typedef void (*brg_ready_fn)(struct brg_link *l);   /* transport up: send CONNECT */
typedef void (*brg_close_fn)(struct brg_link *l, const char *why);

/* One MQTT client connection of the bridge: the remote broker (TCP or TLS)
 * or this node (a socketpair). Embedded in struct brg. */
struct brg_link {
	struct ev_io io;
	struct ev_loop *loop;
	struct tls_conn *tls;     /* owned, or NULL */
	struct buf in, out;
	enum brg_link_state st;
	const char *what;         /* "remote" / "local", for logs */
	void *owner;              /* the struct brg */
	brg_pkt_fn on_packet;
	brg_ready_fn on_ready;
	brg_close_fn on_close;
	int64_t since_ms;         /* monotonic: state entered */
	int64_t last_rx_ms, last_tx_ms;
	uint16_t keepalive;       /* s */
	uint16_t next_pid;
	uint16_t peer_recv_max;   /* from CONNACK (65535 without) */
	uint8_t peer_max_qos;
	uint8_t version;
	bool hello;               /* on_ready was called (CONNECT queued) */
};

/* Connect l to host:port (blocking name lookup, non-blocking connect); with
 * tls, a TLS client on top (sni: the name checked and sent, or NULL).
 * HQ_OK (in progress) or HQ_EIO with a reason in why. */
int brg_link_dial(struct brg_link *l, const char *host, int port, struct tls_cli *tls,
		  const char *sni, char *why, size_t whylen);
/* l on an already connected socket (the local socketpair end): ready now. */
int brg_link_attach(struct brg_link *l, int fd);
/* Encode and queue p, writing what the socket takes now. HQ_OK or an error
 * after which the link was closed (on_close called). */
int brg_link_send(struct brg_link *l, const struct mqtt_packet *p);
/* Close without calling on_close (the owner decided). */
void brg_link_close(struct brg_link *l);
uint16_t brg_link_pid(struct brg_link *l);  /* the next packet id, never 0 */

/* brg_run.c helpers shared with brg_pipe.c */
bool brg_topic_match(const char *filter, const uint8_t *topic, size_t len);

#endif
