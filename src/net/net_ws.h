/*
 * net_ws.h - the WebSocket transport of ws and wss listeners (RFC 6455 data
 * framing by libwslay, server side), as a transport layer (net/xport.h).
 *
 * Layer: net/. No MQTT and no broker types. The opening handshake is
 * net_ws_hs.h; once it is accepted (ws_conn_open), the connection is a byte
 * stream again: reads return the payload of binary frames (fragmented or
 * not, whatever their boundaries: an MQTT packet may span frames and a frame
 * may hold several packets), writes become binary frames. libwslay answers
 * pings, completes the close handshake and checks that client frames are
 * masked; a text frame is refused with close code 1003 (MQTT over WebSocket
 * is binary only, MQTT 5.0 section 6), any other protocol error with 1002.
 * Reads end (0) when the client's close frame arrived; ws_close_code says
 * which code it sent.
 *
 * Memory: decoded payload is handed out as it arrives (libwslay's
 * no-buffering mode), so a large frame never sits in memory whole; at most
 * WS_IN_HIGH bytes plus one read of libwslay's (4 KiB) wait between the
 * socket and the caller. A write takes at most WS_OUT_MAX bytes into one
 * frame (copied by libwslay) and takes nothing more until that frame left:
 * the caller's own output buffer stays the measure of what is queued.
 *
 * Ownership: the broker's connection owns its struct ws_conn (freed with it),
 * the layer below (a TLS connection, or NULL for the socket fd) stays the
 * caller's and must outlive it. Used by one thread at a time.
 */
#ifndef HQ_NET_WS_H
#define HQ_NET_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct xport;
struct ws_conn;

#define WS_IN_HIGH (64 * 1024)
#define WS_OUT_MAX (64 * 1024)

/* A connection before its handshake, reading and writing through lower (NULL:
 * the socket fd itself), on the listener called name ("ws.default") that
 * serves path (borrowed: the configuration outlives every connection). */
struct ws_conn *ws_conn_new(int fd, struct xport *lower, const char *name, const char *path);
const char *ws_conn_name(const struct ws_conn *ws);
const char *ws_conn_path(const struct ws_conn *ws);
void ws_conn_free(struct ws_conn *ws);

/* Raw bytes below the WebSocket layer, for the handshake (recv/send-like;
 * after -1 with EAGAIN, ws_raw_wants says the direction). */
ssize_t ws_raw_read(struct ws_conn *ws, void *p, size_t n);
ssize_t ws_raw_write(struct ws_conn *ws, const void *p, size_t n);
unsigned ws_raw_wants(const struct ws_conn *ws);
const char *ws_raw_error(const struct ws_conn *ws);

/* The handshake was accepted: resp[0..rn) (the 101 answer) goes out first,
 * pre[0..pn) are stream bytes that came with the request. HQ_OK or HQ_ENOMEM. */
int ws_conn_open(struct ws_conn *ws, const void *resp, size_t rn, const void *pre, size_t pn);
bool ws_conn_is_open(const struct ws_conn *ws);

/* The transport view (net/xport.h), valid once open. */
struct xport *ws_xport(struct ws_conn *ws);

/* The close code the client sent (0: none yet). */
unsigned ws_close_code(const struct ws_conn *ws);

#endif
