/*
 * auth_jwt_fetch.h - the JWKS URL (auth.jwt.jwks_url): fetched with libcurl
 * on this module's own thread, never on a worker; every `interval` seconds
 * and, rate limited (at most once per JWT_FETCH_MIN_GAP seconds), when a
 * CONNECT brought a kid we do not know. Each good set is handed to
 * on_keys (on the fetch thread), which takes ownership.
 */
#ifndef HQ_AUTH_AUTH_JWT_FETCH_H
#define HQ_AUTH_AUTH_JWT_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth_jwk.h"

#define JWT_FETCH_MIN_GAP 5   /* seconds between two fetches an unknown kid asks for */

struct jwt_fetch;
typedef void (*jwt_fetch_cb)(void *ctx, struct jwk_set *keys);

/* One fetch, blocking (at most ~5 s): the main thread at start. */
struct jwk_set *jwt_fetch_once(const char *url, char *err, size_t errlen);
/* Start the thread; the first fetch is due `interval` seconds from now, or
 * JWT_FETCH_MIN_GAP when `failing` (the start's fetch failed), as after
 * every failed fetch. */
struct jwt_fetch *jwt_fetch_start(const char *url, uint32_t interval, bool failing,
				  jwt_fetch_cb cb, void *ctx);
/* Ask for an early fetch (any thread; cheap; rate limited by the thread). */
void jwt_fetch_request(struct jwt_fetch *f);
/* Stop and join the thread (waits for a fetch in flight, <= its timeout). */
void jwt_fetch_stop(struct jwt_fetch *f);

#endif
