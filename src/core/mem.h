/*
 * mem.h - allocation wrappers. They abort the process on out-of-memory (Redis
 * zmalloc policy): broker code never checks for NULL. Anything a peer can make us
 * allocate is capped by an explicit limit before it reaches these functions.
 */
#ifndef HQ_CORE_MEM_H
#define HQ_CORE_MEM_H

#include <stddef.h>

void *hq_malloc(size_t n);
void *hq_calloc(size_t count, size_t size);
void *hq_realloc(void *p, size_t n);
char *hq_strdup(const char *s);
char *hq_strndup(const char *s, size_t n);
void *hq_memdup(const void *p, size_t n);
#define hq_free(p) free(p)
/* free and set NULL, so a dangling pointer cannot survive in a struct */
#define HQ_FREE(p) do { free(p); (p) = NULL; } while (0)

#include <stdlib.h>

#endif
