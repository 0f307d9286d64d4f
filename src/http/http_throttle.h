/*
 * http_throttle.h - private to src/http/: login throttling per client address
 * (dashboard.login.*). A dashboard password is a human's, so it can be
 * guessed; API keys (256-bit secrets) and tokens (HMAC) cannot and are not
 * throttled. After max_failures wrong logins in a row from one address, every
 * login from it is answered 429 without checking the password (so a flood
 * does not buy PBKDF2 time either) for block_time, doubling with each further
 * block up to 64x; a good login, or an hour without a failure, starts the
 * address over. Logins in progress count against the budget, so concurrent
 * attempts cannot overshoot it.
 *
 * At most HTTP_THROTTLE_MAX addresses are tracked; past that the entry used
 * longest ago is forgotten (an attacker with that many addresses gets a few
 * more guesses, bounded by max_failures per address anyway).
 *
 * Threads: called from MHD's connection threads; one mutex guards the table.
 */
#ifndef HQ_HTTP_THROTTLE_H
#define HQ_HTTP_THROTTLE_H

#include <stdbool.h>
#include <stdint.h>

#define HTTP_THROTTLE_MAX 4096

struct http_throttle;

struct http_throttle_stats {
	uint64_t ok, failed, throttled; /* logins: accepted, refused, answered 429 */
	uint64_t blocks;                /* times an address was blocked */
};

/* max_failures 0 = throttling off (every call lets the login through). */
struct http_throttle *http_throttle_new(unsigned max_failures, unsigned block_s);
void http_throttle_free(struct http_throttle *t);
/* Before checking a login from addr: 0 = go ahead (and call _done after),
 * else the seconds the address is still blocked (answer 429, no _done). */
unsigned http_throttle_begin(struct http_throttle *t, const char *addr);
/* The login begun from addr succeeded (ok) or not. */
void http_throttle_done(struct http_throttle *t, const char *addr, bool ok);
void http_throttle_get_stats(struct http_throttle *t, struct http_throttle_stats *out);

#endif
