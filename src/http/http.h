/*
 * http.h - the management HTTP server of a node, on dashboard.listeners.http.bind
 * (default 0.0.0.0:18083): health (/api/v5/status), later the REST API
 * (/api/v5/...), the dashboard and Prometheus metrics (/metrics).
 *
 * Layer: above broker/. It reads the broker only through broker.h's public,
 * thread-safe API (broker_get_info, broker_cluster_*) and never touches broker
 * structs.
 * Threads: libmicrohttpd runs its own threads (one per connection); handlers
 * run there, concurrently, so a slow one (cluster join) blocks no other request.
 */
#ifndef HQ_HTTP_H
#define HQ_HTTP_H

#include <stddef.h>

struct broker;
struct hq_config;
struct http_server;

/* Bind cfg->dashboard_bind and start serving. cfg and b are borrowed and must
 * outlive the server (stop it before broker_free). On error (bad address,
 * port in use, ...) returns NULL and writes a message naming
 * dashboard.listeners.http.bind into err. */
struct http_server *http_server_start(const struct hq_config *cfg, struct broker *b,
				      char *err, size_t errlen);
/* Before the broker starts: HQ_OK if cfg->dashboard_bind parses and nothing
 * listens there, else a message naming dashboard.listeners.http.bind in err
 * ("... is already in use"), so a second node on the port stops before its
 * MQTT listeners and cluster link come up rather than after. */
int http_server_check(const struct hq_config *cfg, char *err, size_t errlen);
/* Close the listening socket and every connection, join the server thread and
 * free everything. NULL is a no-op. */
void http_server_stop(struct http_server *s);

#endif
