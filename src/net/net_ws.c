/*
 * net_ws.c - the WebSocket transport over libwslay's event API (net_ws.h).
 *
 * libwslay does the framing: unmasking and the mask check, fragmentation,
 * control frames (pings answered with pongs, the close handshake), and the
 * frame headers of what we send. It reads and writes through our callbacks,
 * which go to the layer below (TLS, or the socket), so ws and wss are the
 * same code. No-buffering mode hands payload chunks to on_chunk as they are
 * decoded instead of collecting whole messages.
 *
 * Output order: the 101 answer first (raw, before any frame), then whatever
 * libwslay queued; libwslay puts control frames only between frames, never
 * inside one.
 */
#include "net/net_ws.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/mem.h"
#include "net/ev.h"
#include "net/xport.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <wslay/wslay.h>

struct ws_conn {
	struct xport xp;          /* first: the transport view */
	int fd;
	struct xport *lower;      /* NULL: the socket fd */
	wslay_event_context_ptr ctx; /* NULL until open */
	struct buf in;            /* decoded payload the caller has not read yet */
	uint8_t *pre;             /* stream bytes that came with the request (owned) */
	size_t pre_len, pre_off;
	uint8_t *raw;             /* the 101 answer still to send (owned) */
	size_t raw_len, raw_off;
	uint8_t msg_op;           /* opcode of the data message in progress */
	uint8_t frame_op;         /* opcode of the frame in progress */
	bool eagain;              /* the layer below would block (this read) */
	bool refused;             /* we closed the stream (text frame) */
	bool blocked;             /* the layer below would block (this send) */
	bool lower_eof, lower_err;
	unsigned wants;
	const char *path;         /* borrowed from the configuration */
	char name[80];            /* "ws.<name>" or "wss.<name>" */
	char err[160];
};

static const struct xport_ops ws_xport_ops;

/* ---- the layer below ---- */

ssize_t ws_raw_read(struct ws_conn *ws, void *p, size_t n)
{
	ssize_t r = ws->lower ? xp_read(ws->lower, p, n) : recv(ws->fd, p, n, 0);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
		errno = EAGAIN;
		ws->wants = ws->lower ? xp_wants(ws->lower) : EV_READ;
	} else if (r < 0) {
		snprintf(ws->err, sizeof(ws->err), "%s",
			 ws->lower ? xp_error(ws->lower) : strerror(errno));
	}
	return r;
}

ssize_t ws_raw_write(struct ws_conn *ws, const void *p, size_t n)
{
	ssize_t r = ws->lower ? xp_write(ws->lower, p, n) : send(ws->fd, p, n, MSG_NOSIGNAL);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
		errno = EAGAIN;
		ws->wants = ws->lower ? xp_wants(ws->lower) : EV_WRITE;
	} else if (r < 0) {
		snprintf(ws->err, sizeof(ws->err), "%s",
			 ws->lower ? xp_error(ws->lower) : strerror(errno));
	}
	return r;
}

unsigned ws_raw_wants(const struct ws_conn *ws)
{
	return ws->wants;
}

const char *ws_raw_error(const struct ws_conn *ws)
{
	return ws->err[0] ? ws->err : "WebSocket error";
}

/* ---- libwslay callbacks ---- */

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
		       void *user)
{
	(void)flags;
	struct ws_conn *ws = user;
	if (ws->pre_off < ws->pre_len) {
		size_t k = ws->pre_len - ws->pre_off < len ? ws->pre_len - ws->pre_off : len;
		memcpy(buf, ws->pre + ws->pre_off, k);
		ws->pre_off += k;
		if (ws->pre_off == ws->pre_len)
			HQ_FREE(ws->pre);
		return (ssize_t)k;
	}
	/* the caller has enough to chew on, or we are done reading: stop here
	 * (libwslay resumes in the middle of a frame just as well) */
	if (buf_avail(&ws->in) >= WS_IN_HIGH || ws->refused) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	ssize_t r = ws_raw_read(ws, buf, len);
	if (r > 0)
		return r;
	if (r < 0 && errno == EAGAIN) {
		ws->eagain = true;
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	if (r == 0)
		ws->lower_eof = true;
	else
		ws->lower_err = true;
	wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
	return -1;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
		       void *user)
{
	(void)flags;
	struct ws_conn *ws = user;
	ssize_t r = ws_raw_write(ws, data, len);
	if (r > 0)
		return r;
	if (r < 0 && errno == EAGAIN) {
		ws->blocked = true;
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	if (r == 0)
		snprintf(ws->err, sizeof(ws->err), "send returned 0");
	ws->lower_err = true;
	wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
	return -1;
}

/* A random mask is only for client frames; a server never masks. */
static int genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *user)
{
	(void)ctx;
	(void)user;
	memset(buf, 0, len);
	return 0;
}

static void frame_start_cb(wslay_event_context_ptr ctx,
			   const struct wslay_event_on_frame_recv_start_arg *arg, void *user)
{
	struct ws_conn *ws = user;
	ws->frame_op = arg->opcode;
	if (arg->opcode == WSLAY_BINARY_FRAME)
		ws->msg_op = WSLAY_BINARY_FRAME;
	if (arg->opcode == WSLAY_TEXT_FRAME && !ws->refused) {
		/* MQTT over WebSocket is binary only [MQTT-6.0.0-1] */
		ws->refused = true;
		snprintf(ws->err, sizeof(ws->err),
			 "text frame (MQTT over WebSocket is binary only): close 1003");
		wslay_event_queue_close(ctx, WSLAY_CODE_UNSUPPORTED_DATA,
					(const uint8_t *)"binary frames only", 18);
		wslay_event_shutdown_read(ctx);
	}
}

static void frame_chunk_cb(wslay_event_context_ptr ctx,
			   const struct wslay_event_on_frame_recv_chunk_arg *arg, void *user)
{
	(void)ctx;
	struct ws_conn *ws = user;
	if (ws->refused)
		return;
	if (ws->frame_op == WSLAY_BINARY_FRAME ||
	    (ws->frame_op == WSLAY_CONTINUATION_FRAME && ws->msg_op == WSLAY_BINARY_FRAME))
		buf_append(&ws->in, arg->data, arg->data_length);
}

/* ---- lifecycle ---- */

struct ws_conn *ws_conn_new(int fd, struct xport *lower, const char *name, const char *path)
{
	struct ws_conn *ws = hq_calloc(1, sizeof(*ws));
	ws->xp.ops = &ws_xport_ops;
	ws->fd = fd;
	ws->lower = lower;
	ws->path = path;
	snprintf(ws->name, sizeof(ws->name), "%s", name);
	return ws;
}

const char *ws_conn_name(const struct ws_conn *ws)
{
	return ws->name;
}

const char *ws_conn_path(const struct ws_conn *ws)
{
	return ws->path;
}

void ws_conn_free(struct ws_conn *ws)
{
	if (!ws)
		return;
	if (ws->ctx)
		wslay_event_context_free(ws->ctx);
	buf_free(&ws->in);
	hq_free(ws->pre);
	hq_free(ws->raw);
	hq_free(ws);
}

int ws_conn_open(struct ws_conn *ws, const void *resp, size_t rn, const void *pre, size_t pn)
{
	static const struct wslay_event_callbacks cbs = {
		.recv_callback = recv_cb,
		.send_callback = send_cb,
		.genmask_callback = genmask_cb,
		.on_frame_recv_start_callback = frame_start_cb,
		.on_frame_recv_chunk_callback = frame_chunk_cb,
	};
	if (wslay_event_context_server_init(&ws->ctx, &cbs, ws) != 0) {
		ws->ctx = NULL;
		return HQ_ENOMEM;
	}
	wslay_event_config_set_no_buffering(ws->ctx, 1);
	/* data frames are not collected (no buffering): their size is bounded
	 * by mqtt.max_packet_size on the stream, not here. Control frames are
	 * at most 125 bytes by RFC 6455 5.5 (libwslay checks). */
	wslay_event_config_set_max_recv_msg_length(ws->ctx, UINT64_C(1) << 62);
	if (rn) {
		ws->raw = hq_malloc(rn);
		memcpy(ws->raw, resp, rn);
		ws->raw_len = rn;
	}
	if (pn) {
		ws->pre = hq_malloc(pn);
		memcpy(ws->pre, pre, pn);
		ws->pre_len = pn;
	}
	return HQ_OK;
}

bool ws_conn_is_open(const struct ws_conn *ws)
{
	return ws->ctx != NULL;
}

struct xport *ws_xport(struct ws_conn *ws)
{
	return &ws->xp;
}

unsigned ws_close_code(const struct ws_conn *ws)
{
	return ws->ctx && wslay_event_get_close_received(ws->ctx)
		       ? wslay_event_get_status_code_received(ws->ctx)
		       : 0;
}

/* ---- the transport ---- */

/* Send what is waiting: the 101 answer, then libwslay's frames. HQ_OK when
 * nothing is left, HQ_EAGAIN (ws->wants set), HQ_EIO (ws->err set). */
static int out_push(struct ws_conn *ws)
{
	while (ws->raw_off < ws->raw_len) {
		ssize_t n = ws_raw_write(ws, ws->raw + ws->raw_off, ws->raw_len - ws->raw_off);
		if (n > 0) {
			ws->raw_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EAGAIN)
			return HQ_EAGAIN;
		return HQ_EIO;
	}
	if (ws->raw) {
		HQ_FREE(ws->raw);
		ws->raw_len = ws->raw_off = 0;
	}
	if (!ws->ctx)
		return HQ_OK;
	/* libwslay stops after a partial write without telling why: go on
	 * until the layer below would block (bounded: a full socket buffer
	 * blocks long before) */
	for (int i = 0; i < 256; i++) {
		ws->blocked = false;
		if (wslay_event_send(ws->ctx) != 0) {
			if (!ws->err[0])
				snprintf(ws->err, sizeof(ws->err), "WebSocket send failed");
			return HQ_EIO;
		}
		if (!wslay_event_want_write(ws->ctx))
			return HQ_OK;
		if (ws->blocked)
			return HQ_EAGAIN; /* ws->wants set by ws_raw_write */
	}
	ws->wants = EV_WRITE;
	return HQ_EAGAIN;
}

static ssize_t fail_io(void)
{
	errno = EIO;
	return -1;
}

static ssize_t xp_ws_read(struct xport *x, void *p, size_t n)
{
	struct ws_conn *ws = (struct ws_conn *)x;
	ws->eagain = false;
	int push = out_push(ws); /* the 101 answer, pongs, the close reply */
	if (push == HQ_EIO)
		return fail_io();
	for (int round = 0; round < 3; round++) {
		size_t have = buf_avail(&ws->in);
		if (have) {
			size_t k = have < n ? have : n;
			memcpy(p, buf_head(&ws->in), k);
			buf_consume(&ws->in, k);
			if (!buf_avail(&ws->in))
				buf_free(&ws->in); /* an idle connection keeps no buffer */
			return (ssize_t)k;
		}
		if (ws->refused) {
			(void)out_push(ws); /* the close frame, best effort */
			return fail_io();
		}
		if (ws->lower_err)
			return fail_io();
		if (ws->lower_eof)
			return 0; /* MQTT clients may drop TCP without a close frame */
		if (wslay_event_get_close_received(ws->ctx)) {
			(void)out_push(ws); /* our close reply */
			return 0;
		}
		if (!wslay_event_get_read_enabled(ws->ctx)) {
			snprintf(ws->err, sizeof(ws->err),
				 "WebSocket protocol error (unmasked frame, reserved bits or bad "
				 "opcode): close 1002");
			(void)out_push(ws);
			return fail_io();
		}
		if (ws->eagain)
			break;
		int r = wslay_event_recv(ws->ctx);
		push = out_push(ws);
		if (push == HQ_EIO)
			return fail_io();
		if (r != 0 && !ws->lower_eof && !ws->lower_err) {
			snprintf(ws->err, sizeof(ws->err), "WebSocket receive failed (%d)", r);
			return fail_io();
		}
	}
	/* our own output (a pong, the 101) waits for the socket: ask for both */
	if (push == HQ_EAGAIN)
		ws->wants = EV_WRITE;
	else if (!ws->eagain)
		ws->wants = EV_READ;
	errno = EAGAIN;
	return -1;
}

static ssize_t xp_ws_write(struct xport *x, const void *p, size_t n)
{
	struct ws_conn *ws = (struct ws_conn *)x;
	if (!ws->ctx) {
		errno = EAGAIN;
		ws->wants = EV_READ;
		return -1;
	}
	int r = out_push(ws);
	if (r == HQ_EAGAIN) {
		errno = EAGAIN;
		return -1;
	}
	if (r != HQ_OK)
		return fail_io();
	if (!wslay_event_get_write_enabled(ws->ctx)) {
		snprintf(ws->err, sizeof(ws->err), "WebSocket closed");
		errno = EPIPE;
		return -1;
	}
	size_t k = n < WS_OUT_MAX ? n : WS_OUT_MAX;
	struct wslay_event_msg m = { .opcode = WSLAY_BINARY_FRAME, .msg = p, .msg_length = k };
	if (wslay_event_queue_msg(ws->ctx, &m) != 0) { /* copies the bytes */
		snprintf(ws->err, sizeof(ws->err), "WebSocket queue failed");
		return fail_io();
	}
	if (out_push(ws) == HQ_EIO)
		return fail_io();
	return (ssize_t)k; /* taken: what did not go out yet, flush sends */
}

static int xp_ws_flush(struct xport *x)
{
	return out_push((struct ws_conn *)x);
}

static bool xp_ws_pending(const struct xport *x)
{
	const struct ws_conn *ws = (const struct ws_conn *)x;
	return ws->raw_off < ws->raw_len || (ws->ctx && wslay_event_want_write(ws->ctx));
}

static unsigned xp_ws_wants(const struct xport *x)
{
	return ((const struct ws_conn *)x)->wants;
}

static const char *xp_ws_error(const struct xport *x)
{
	return ws_raw_error((const struct ws_conn *)x);
}

/* A close frame (1000, or the code of our refusal already queued) once,
 * then the layer below says goodbye too. */
static void xp_ws_shutdown(struct xport *x)
{
	struct ws_conn *ws = (struct ws_conn *)x;
	if (ws->ctx && !ws->lower_err) {
		wslay_event_queue_close(ws->ctx, WSLAY_CODE_NORMAL_CLOSURE, NULL, 0);
		(void)out_push(ws);
	}
	if (ws->lower)
		xp_shutdown(ws->lower);
}

static const struct xport_ops ws_xport_ops = {
	.read = xp_ws_read, .write = xp_ws_write, .flush = xp_ws_flush,
	.pending = xp_ws_pending, .wants = xp_ws_wants, .error = xp_ws_error,
	.shutdown = xp_ws_shutdown,
};
