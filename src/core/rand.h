/*
 * rand.h - bytes from the kernel's CSPRNG (getrandom(2)), for values a peer
 * must not be able to guess (assigned client ids). Not for load balancing:
 * the workers' xorshift is cheaper and need not be secret.
 */
#ifndef HQ_CORE_RAND_H
#define HQ_CORE_RAND_H

#include <stddef.h>

/* Fill buf with n random bytes. HQ_OK, or HQ_EIO (errno set) if the kernel
 * gave none; buf is then unspecified and must not be used. Interrupted and
 * short reads are retried. May block only before the kernel's pool is first
 * initialised (early boot). */
int rand_bytes(void *buf, size_t n);

#endif
