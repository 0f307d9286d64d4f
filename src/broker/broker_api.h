/*
 * broker_api.h - the broker's query services for the management API
 * (src/http/): clients, subscriptions, routes, retained messages, publish.
 * http/ includes this header and broker.h, never brk_int.h.
 *
 * Threads: every call may be made from any thread that is not a worker (the
 * HTTP threads). What a worker owns (a session's subscriptions, queue and
 * in-flight window, its connection's details) is read by that worker: the
 * call posts a function to the worker's inbox and waits for it, bounded by
 * BRK_API_WAIT_MS. What is shared under a lock (the client-id registry, the
 * retained set) is read under that lock. ARCHITECTURE.md "The broker's
 * query services" says why.
 *
 * Errors: HQ_OK, HQ_ENOTFOUND (no such client / retained topic), HQ_EINVAL or
 * HQ_ETOPIC (bad argument), HQ_ECLOSED (the node is stopping: nothing was
 * done), HQ_EIO (a worker did not answer within BRK_API_WAIT_MS).
 *
 * Ownership: every array handed back is malloc'd and the caller's, freed
 * with the matching *_free function (strings inside included).
 */
#ifndef HQ_BROKER_API_H
#define HQ_BROKER_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct broker;

#define BRK_API_WAIT_MS 2000 /* longest wait for a worker's answer */

/* One client: a connected one, or an offline persistent session (EMQX's
 * names; times are wall clock ms since the epoch, 0 = none). */
struct broker_client {
	char *clientid;           /* owned */
	char *username;           /* owned; NULL when unknown (offline) */
	char ip[64];              /* "" when offline */
	int port;                 /* 0 when offline */
	char listener[80];        /* "tcp:default"; "" offline */
	uint8_t proto_ver;        /* 3, 4, 5 (the last connection's) */
	uint16_t keepalive;
	bool clean_start;
	bool connected;
	uint32_t expiry_interval; /* session expiry, s (UINT32_MAX: never) */
	int64_t connected_at, disconnected_at, created_at;
	uint32_t subscriptions_cnt, mqueue_len, inflight_cnt, inflight_max;
	uint64_t mqueue_dropped;
};

/* Filters of GET /clients; NULL / -1 = not filtered. like_*: substring. */
struct broker_client_filter {
	const char *clientid, *username, *ip_address, *like_clientid, *like_username;
	int conn_state;           /* 1 connected, 0 disconnected, -1 any */
	int proto_ver;            /* 3, 4, 5, -1 any */
};

/* The clients of this node matching f, in a stable order (the registry's,
 * while nothing changes): items [offset, offset + limit) in *out (*n of
 * them), *total = every match. */
int broker_clients_list(struct broker *b, const struct broker_client_filter *f, size_t offset,
			size_t limit, struct broker_client **out, size_t *n, size_t *total);
int broker_client_get(struct broker *b, const char *clientid, struct broker_client *out);
void broker_clients_free(struct broker_client *v, size_t n);
/* Kick: a connected client is closed (v5: DISCONNECT 0x98 administrative
 * action) and its session discarded; an offline session is discarded. */
int broker_client_kick(struct broker *b, const char *clientid);

/* One subscription. */
struct broker_sub {
	char *clientid;           /* owned */
	char *topic;              /* owned, as subscribed ("$share/g/f" included) */
	uint8_t qos, nl, rap, rh;
};
struct broker_sub_filter {
	const char *clientid;     /* NULL = any */
	const char *topic;        /* the filter exactly as subscribed */
	const char *share_group;  /* only $share/<group>/... */
	const char *match_topic;  /* filters matching this topic name */
	int qos;                  /* -1 any */
};
int broker_subs_list(struct broker *b, const struct broker_sub_filter *f, size_t offset,
		     size_t limit, struct broker_sub **out, size_t *n, size_t *total);
/* One client's subscriptions (all of them). */
int broker_client_subs(struct broker *b, const char *clientid, struct broker_sub **out, size_t *n);
void broker_subs_free(struct broker_sub *v, size_t n);

/* The node's routes: the distinct filters its own sessions subscribed.
 * topic: only that filter (NULL = all). *out: owned strings. */
int broker_topics_list(struct broker *b, const char *topic, size_t offset, size_t limit,
		       char ***out, size_t *n, size_t *total);
void broker_strings_free(char **v, size_t n);

/* One retained message (payload only from broker_retained_get). */
struct broker_retained {
	char *topic;              /* owned */
	uint8_t *payload;         /* owned; NULL in a list */
	size_t payload_len;
	uint8_t qos;
	char from_clientid[64];   /* "" when not known */
	int64_t publish_at;       /* wall ms */
};
int broker_retained_list(struct broker *b, size_t offset, size_t limit,
			 struct broker_retained **out, size_t *n, size_t *total);
int broker_retained_get(struct broker *b, const char *topic, struct broker_retained *out);
/* Delete: the same write as an empty retained PUBLISH, so the cluster
 * replicates the delete. HQ_ENOTFOUND: no retained message here. */
int broker_retained_delete(struct broker *b, const char *topic);
void broker_retained_free(struct broker_retained *v, size_t n);

/* A message published by the administrator (no ACL), as if a client
 * "http_api" published it: routing, cluster forward, retained, store. */
struct broker_user_prop {
	const char *key, *value;
};
struct broker_publish {
	const char *topic;
	const uint8_t *payload;
	size_t payload_len;
	uint8_t qos;
	bool retain;
	/* v5 properties; NULL / 0 = absent */
	bool has_expiry;
	uint32_t message_expiry;
	int payload_format;       /* -1 absent, 0 bytes, 1 UTF-8 */
	const char *content_type, *response_topic;
	const uint8_t *correlation_data;
	size_t correlation_len;
	const struct broker_user_prop *user_props;
	size_t n_user_props;
};
/* HQ_OK with *id (the message's id) and *matched (some subscriber, here or
 * on another node, matched); HQ_ETOPIC (invalid topic name), HQ_EINVAL
 * (qos, a property too long). */
int broker_publish_msg(struct broker *b, const struct broker_publish *p, uint64_t *id,
		       bool *matched);

#endif
