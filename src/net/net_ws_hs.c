/*
 * net_ws_hs.c - the WebSocket opening handshake, server side (net_ws_hs.h).
 *
 * The request is parsed in place and strictly: one request line
 * "GET <target> HTTP/1.1", then "Name: value" lines, CRLF line ends, no
 * obsolete line folding. Everything else is a refusal with a status and a
 * one-line reason that the caller logs.
 */
#include "net/net_ws_hs.h"
#include "core/err.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

static const char *const protos[] = { "mqtt", "mqttv3.1", NULL };

static int refuse(struct ws_hs *h, int status, const char *reason)
{
	h->status = status;
	h->reason = reason;
	h->proto = NULL;
	return HQ_OK;
}

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* Does the comma separated list v[0..n) hold token tok (case-insensitive)? */
static bool list_has(const char *v, size_t n, const char *tok)
{
	size_t tl = strlen(tok), i = 0;
	while (i < n) {
		while (i < n && (is_ows(v[i]) || v[i] == ','))
			i++;
		size_t s = i;
		while (i < n && v[i] != ',')
			i++;
		size_t e = i;
		while (e > s && is_ows(v[e - 1]))
			e--;
		if (e - s == tl && strncasecmp(v + s, tok, tl) == 0)
			return true;
	}
	return false;
}

/* The first subprotocol of list v[0..n) we support (case-sensitive, RFC 6455
 * 4.1: the values are tokens compared as sent), NULL if none. */
static const char *pick_proto(const char *v, size_t n)
{
	size_t i = 0;
	while (i < n) {
		while (i < n && (is_ows(v[i]) || v[i] == ','))
			i++;
		size_t s = i;
		while (i < n && v[i] != ',')
			i++;
		size_t e = i;
		while (e > s && is_ows(v[e - 1]))
			e--;
		for (int k = 0; protos[k]; k++)
			if (e - s == strlen(protos[k]) && memcmp(v + s, protos[k], e - s) == 0)
				return protos[k];
	}
	return NULL;
}

static bool is_b64(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

/* 16 random bytes in base64: 22 characters and "==" */
static bool key_ok(const char *v, size_t n)
{
	if (n != 24 || v[22] != '=' || v[23] != '=')
		return false;
	for (size_t i = 0; i < 22; i++)
		if (!is_b64(v[i]))
			return false;
	return true;
}

static const char *find_crlf(const char *p, const char *end)
{
	for (; p + 1 < end; p++)
		if (p[0] == '\r' && p[1] == '\n')
			return p;
	return NULL;
}

int ws_hs_parse(const uint8_t *bytes, size_t n, const char *path, struct ws_hs *h)
{
	memset(h, 0, sizeof(*h));
	const char *p = (const char *)bytes;
	/* not HTTP at all (e.g. an MQTT client on the WebSocket port): say so at
	 * once rather than at the connect timeout */
	if (n > 0 && !(p[0] >= 'A' && p[0] <= 'Z')) {
		h->len = n;
		return refuse(h, 400, "not an HTTP request");
	}
	size_t lim = n < WS_HS_MAX ? n : WS_HS_MAX;
	const char *end = NULL;
	for (size_t i = 0; i + 3 < lim; i++)
		if (memcmp(p + i, "\r\n\r\n", 4) == 0) {
			end = p + i + 2; /* the blank line's CRLF stays outside the headers */
			h->len = i + 4;
			break;
		}
	if (!end) {
		if (n < WS_HS_MAX)
			return HQ_EAGAIN;
		h->len = n;
		return refuse(h, 431, "request headers larger than 8 KiB");
	}
	/* request line */
	const char *eol = find_crlf(p, end);
	const char *sp1 = memchr(p, ' ', (size_t)(eol - p));
	const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
	if (!sp1 || !sp2 || sp2 == sp1 + 1)
		return refuse(h, 400, "malformed request line");
	size_t tlen = (size_t)(sp2 - sp1 - 1);
	snprintf(h->target, sizeof(h->target), "%.*s", (int)(tlen < sizeof(h->target) ? tlen : sizeof(h->target) - 1),
		 sp1 + 1);
	for (size_t i = 0; i < strlen(h->target); i++)
		if ((unsigned char)h->target[i] < 0x20 || (unsigned char)h->target[i] >= 0x7f)
			h->target[i] = '?'; /* the log line stays one printable line */
	size_t vlen = (size_t)(eol - sp2 - 1);
	if (vlen != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0 || sp2[8] < '1' || sp2[8] > '9')
		return refuse(h, 400, "not HTTP/1.1");
	if (sp1 - p != 3 || memcmp(p, "GET", 3) != 0)
		return refuse(h, 405, "method is not GET");
	const char *q = memchr(sp1 + 1, '?', tlen);
	size_t plen = q ? (size_t)(q - sp1 - 1) : tlen;
	if (plen != strlen(path) || memcmp(sp1 + 1, path, plen) != 0)
		return refuse(h, 404, "wrong path");
	/* headers */
	bool upgrade = false, connection = false, version = false, has_key = false;
	bool offered = false, bad_version = false;
	const char *chosen = NULL;
	for (const char *l = eol + 2; l < end; l = eol + 2) {
		eol = find_crlf(l, end + 2);
		if (!eol || eol > end)
			return refuse(h, 400, "malformed header");
		if (is_ows(*l))
			return refuse(h, 400, "obsolete header line folding");
		const char *colon = memchr(l, ':', (size_t)(eol - l));
		if (!colon || colon == l)
			return refuse(h, 400, "malformed header");
		size_t nlen = (size_t)(colon - l);
		const char *v = colon + 1, *ve = eol;
		while (v < ve && is_ows(*v))
			v++;
		while (ve > v && is_ows(ve[-1]))
			ve--;
		size_t vn = (size_t)(ve - v);
#define IS(name) (nlen == sizeof(name) - 1 && strncasecmp(l, name, nlen) == 0)
		if (IS("Upgrade")) {
			upgrade = upgrade || list_has(v, vn, "websocket");
		} else if (IS("Connection")) {
			connection = connection || list_has(v, vn, "upgrade");
		} else if (IS("Sec-WebSocket-Version")) {
			if (vn == 2 && memcmp(v, "13", 2) == 0)
				version = true;
			else
				bad_version = true;
		} else if (IS("Sec-WebSocket-Key")) {
			if (has_key || !key_ok(v, vn))
				return refuse(h, 400, "bad Sec-WebSocket-Key");
			memcpy(h->key, v, vn);
			h->key[vn] = '\0';
			has_key = true;
		} else if (IS("Sec-WebSocket-Protocol")) {
			offered = true;
			if (!chosen)
				chosen = pick_proto(v, vn);
		}
#undef IS
	}
	if (!upgrade)
		return refuse(h, 426, "not a WebSocket upgrade request");
	if (!connection)
		return refuse(h, 400, "Connection header without upgrade");
	if (bad_version || !version)
		return refuse(h, 426, "Sec-WebSocket-Version is not 13");
	if (!has_key)
		return refuse(h, 400, "no Sec-WebSocket-Key");
	if (offered && !chosen)
		return refuse(h, 400, "no supported subprotocol (mqtt, mqttv3.1)");
	h->status = 101;
	h->proto = chosen;
	return HQ_OK;
}

void ws_hs_accept_key(const char *key, char out[29])
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	char buf[64 + sizeof(guid)];
	int n = snprintf(buf, sizeof(buf), "%s%s", key, guid);
	unsigned char md[SHA_DIGEST_LENGTH];
	SHA1((const unsigned char *)buf, (size_t)n, md);
	EVP_EncodeBlock((unsigned char *)out, md, SHA_DIGEST_LENGTH); /* 28 + NUL */
}

static const char *status_text(int status)
{
	switch (status) {
	case 101: return "Switching Protocols";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 426: return "Upgrade Required";
	case 431: return "Request Header Fields Too Large";
	default: return "Bad Request";
	}
}

size_t ws_hs_response(const struct ws_hs *h, char *out, size_t outlen)
{
	int n;
	if (h->status == 101) {
		char acc[29];
		ws_hs_accept_key(h->key, acc);
		n = snprintf(out, outlen,
			     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
			     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s%s%s\r\n",
			     acc, h->proto ? "Sec-WebSocket-Protocol: " : "",
			     h->proto ? h->proto : "", h->proto ? "\r\n" : "");
	} else {
		const char *why = h->reason ? h->reason : "bad request";
		n = snprintf(out, outlen,
			     "HTTP/1.1 %d %s\r\nConnection: close\r\nContent-Type: text/plain\r\n"
			     "Content-Length: %zu\r\n%s%s\r\n%s\n",
			     h->status, status_text(h->status), strlen(why) + 1,
			     h->status == 426 ? "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n" : "",
			     h->status == 405 ? "Allow: GET\r\n" : "", why);
	}
	return n > 0 && (size_t)n < outlen ? (size_t)n : 0;
}
