/*
 * http_metrics.h - the pieces of GET /metrics (Prometheus text format 0.0.4)
 * shared by its files: http_metrics.c (the handler, broker_info and store
 * health), http_metrics_broker.c (broker_prom.h: QoS, listeners, sessions,
 * cluster links, store commit times), http_metrics_proc.c (process_*).
 * Every family is written whole: HELP and TYPE once, then its samples.
 */
#ifndef HQ_HTTP_METRICS_H
#define HQ_HTTP_METRICS_H

#include <stddef.h>

struct buf;
struct broker;

/* printf into b; one line is at most 767 bytes (longer output is cut). */
void http_metrics_put(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A label value with \, " and newline escaped, as the format requires. */
void http_metrics_escape(const char *in, char *out, size_t outlen);
/* node: the escaped node name (every sample's node label) */
void http_metrics_broker(struct buf *b, const char *node, struct broker *br);
void http_metrics_process(struct buf *b, const char *node);
/* http_bridges.c: the MQTT bridges' lines (none when no bridge is configured) */
void http_bridge_metrics(struct buf *b, const char *node);

#endif
