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

/*
 * The health check follows the node's phases (main.c drives them):
 *   starting  from http_server_start until the broker accepts MQTT: 503
 *             {"status":"starting"} (the broker may not exist yet)
 *   running   the attached broker accepts MQTT: 200
 *   stopping  from http_server_set_stopping (SIGTERM) until
 *             http_server_stop: 503 {"status":"stopping"}, never 200 again
 * The HTTP server is started before the broker and stopped after it wound
 * down, so a load balancer sees 503 for as long as the node is not serving.
 */

/* Bind cfg->dashboard_bind and start serving, with no broker yet. cfg is
 * borrowed and must outlive the server. On error (bad address, port in use,
 * ...) returns NULL and writes a message naming dashboard.listeners.http.bind
 * into err. */
struct http_server *http_server_start(const struct hq_config *cfg, char *err, size_t errlen);
/* The broker exists: /metrics and the cluster endpoints use it from now on
 * (before, they answer 503). b is borrowed: stop the server before broker_free. */
void http_server_attach(struct http_server *s, struct broker *b);
/* The node is shutting down: the health check answers 503 "stopping" from
 * now on, whatever the broker says. Thread safe; NULL is a no-op. */
void http_server_set_stopping(struct http_server *s);
/* Before the broker starts: HQ_OK if cfg->dashboard_bind parses and nothing
 * listens there, else a message naming dashboard.listeners.http.bind in err
 * ("... is already in use"), so a second node on the port stops before its
 * MQTT listeners and cluster link come up rather than after. */
int http_server_check(const struct hq_config *cfg, char *err, size_t errlen);
/* Close the listening socket and every connection, join the server thread and
 * free everything. NULL is a no-op. */
void http_server_stop(struct http_server *s);

#endif
