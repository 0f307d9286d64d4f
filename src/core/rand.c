/* rand.c - kernel random bytes (see rand.h). */
#include "core/rand.h"
#include "core/err.h"

#include <errno.h>
#include <stdint.h>
#include <sys/random.h>

int rand_bytes(void *buf, size_t n)
{
	uint8_t *p = buf;
	while (n > 0) {
		/* requests up to 256 bytes are never short once the pool is
		 * initialised, but a signal may still interrupt a larger one */
		ssize_t r = getrandom(p, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return HQ_EIO;
		}
		if (r == 0) {
			errno = EIO; /* never documented; do not spin on it */
			return HQ_EIO;
		}
		p += r;
		n -= (size_t)r;
	}
	return HQ_OK;
}
