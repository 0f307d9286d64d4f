/*
 * broker.h - the MQTT broker node as main() sees it: build it from a config,
 * run its workers, stop it, free it. Everything else is private (brk_int.h).
 */
#ifndef HQ_BROKER_H
#define HQ_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct broker;
struct hq_config;

/* Build a broker and open its listeners (so a bind error fails the start).
 * cfg is borrowed and must outlive the broker. On error returns NULL and
 * writes a message into err. */
struct broker *broker_new(struct hq_config *cfg, char *err, size_t errlen);
/* Start the worker threads; returns HQ_OK or HQ_EIO. */
int broker_start(struct broker *b);
/* Ask every worker to close its connections and stop (thread safe). */
void broker_stop(struct broker *b);
/* Wait for the workers to finish, then release everything. */
void broker_free(struct broker *b);

/* A consistent-enough snapshot for the management side (HTTP API, $SYS),
 * safe to take from any thread: every field is read with relaxed atomics. */
struct broker_info {
	bool accepting;           /* listeners up and not shutting down */
	int workers;
	int64_t uptime_s;
	int64_t connections;      /* open sockets, including before CONNECT */
	uint64_t connects_total;  /* CONNACKs sent */
	uint64_t msgs_in, msgs_out, msgs_dropped;
	uint64_t bytes_in, bytes_out;
	uint64_t retained;        /* retained messages held */
};
void broker_get_info(struct broker *b, struct broker_info *out);

#endif
