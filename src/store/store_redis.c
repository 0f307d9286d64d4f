/* store_redis.c - placeholder until the backend lands (issue 9). */
#include "store/store.h"
#include "core/err.h"

#include <stdio.h>

int store_redis_open(const struct hq_config *cfg, struct store **out, char *err, size_t errlen)
{
	(void)cfg;
	*out = NULL;
	snprintf(err, errlen, "session.store: the redis backend is not built yet; use memory");
	return HQ_EINVAL;
}
