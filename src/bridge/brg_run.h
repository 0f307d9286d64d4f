/*
 * brg_run.h - a running bridge and its two directions (brg_run.c, brg_pipe.c).
 * Bridge thread only, except `stat` (under bridges.lock).
 */
#ifndef HQ_BRG_RUN_H
#define HQ_BRG_RUN_H

#include "bridge/brg_int.h"

#define BRG_MARKER_KEY "hamqtt-bridge"
#define BRG_PEND_MAX 10000        /* QoS 0 copies waiting for room, at most */

enum { BRG_FWD = 0, BRG_RECV = 1 };

/* A PUBLISH waiting for room on `to` (a copy of the whole packet). */
struct brg_pend {
	struct brg_pend *next;
	size_t len;
	uint8_t raw[];
};

struct brg;

struct brg_pipe {
	struct brg *g;
	int dir;                  /* BRG_FWD: local -> remote; BRG_RECV: remote -> local */
	struct brg_link *from, *to;
	const struct brg_rule *rules;
	int n_rules;
	/* by `to`'s packet id: MAP_LIVE | from's QoS << 16 | from's packet id */
	uint32_t *map;            /* 65536 entries, owned */
	uint32_t inflight;
	struct brg_pend *head, *tail;
	uint32_t npend;
};

enum brg_state { BS_STANDBY = 0, BS_DOWN, BS_CONNECTING, BS_UP };

struct bridges {
	struct broker *b;
	struct brg_conf *confs;   /* owned */
	int n;
	struct brg *v;            /* n entries, owned */
	struct ev_loop *loop;
	pthread_t th;
	bool started;
	bool clustered;
	pthread_mutex_t lock;     /* every brg's stat and leader_node */
	char leader_node[256];    /* the member running the bridges ("" unknown) */
	char self[256];
	int64_t next_members_ms;
	bool leader;
};

struct brg {
	struct brg_conf *c;
	struct bridges *all;
	struct brg_link remote, local;
	struct brg_pipe fwd, recv;
	struct tls_cli *tls;      /* owned, NULL without ssl */
	enum brg_state st;
	int64_t retry_at_ms;
	uint32_t backoff_ms;
	int64_t down_since_ms;    /* monotonic; 0 while up or standby */
	bool alarm;               /* bridge_down:<name> raised */
	bool local_made;          /* the local session exists (subscribed once) */
	char marker[320];         /* <cluster.name>/<bridge name> */
	struct bridge_status stat; /* under all->lock */
};

void brg_pipe_reset(struct brg_pipe *p);
void brg_pipe_free(struct brg_pipe *p);
void brg_pipe_publish(struct brg_pipe *p, const struct mqtt_packet *pkt, const uint8_t *raw,
		      size_t len);
void brg_pipe_ack(struct brg_pipe *p, const struct mqtt_packet *pkt);
void brg_pipe_ready(struct brg_pipe *p);

#endif
