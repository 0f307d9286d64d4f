/*
 * conf_rate.c - the value syntaxes of the overload protection keys: rates
 * ("1000/s", "1MB/s", like EMQX's limiter) and the memory watermark ("512MB",
 * "80%"). Parsed once at start (brk_overload.c); checked by the key table.
 */
#include "core/conf.h"
#include "core/err.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A size suffix at *p (KB, MB, GB, K, M, G, B, case-insensitive): its
 * multiplier, *p moved past it; 1 when there is none. */
static double size_suffix(const char **p)
{
	const char *s = *p;
	double m = 1;
	switch (toupper((unsigned char)*s)) {
	case 'K': m = 1024.0; s++; break;
	case 'M': m = 1024.0 * 1024; s++; break;
	case 'G': m = 1024.0 * 1024 * 1024; s++; break;
	default: break;
	}
	if (toupper((unsigned char)*s) == 'B')
		s++;
	*p = s;
	return m;
}

int conf_parse_rate(const char *v, double *per_s)
{
	*per_s = 0;
	if (!*v || strcmp(v, "0") == 0 || strcasecmp(v, "infinity") == 0)
		return HQ_OK;
	char *end;
	double n = strtod(v, &end);
	if (end == v || !(n > 0) || n > 1e15)
		return HQ_EINVAL;
	const char *p = end;
	n *= size_suffix(&p);
	if (*p != '/')
		return HQ_EINVAL;
	p++;
	double period = 1;
	if (isdigit((unsigned char)*p)) {
		period = strtod(p, &end);
		if (!(period > 0))
			return HQ_EINVAL;
		p = end;
	}
	switch (*p) {
	case 's': break;
	case 'm': period *= 60; break;
	case 'h': period *= 3600; break;
	default: return HQ_EINVAL;
	}
	if (p[1])
		return HQ_EINVAL;
	*per_s = n / period;
	return HQ_OK;
}

bool conf_check_rate(const char *v)
{
	double r;
	return conf_parse_rate(v, &r) == HQ_OK;
}

int conf_parse_watermark(const char *v, uint64_t *val, bool *pct)
{
	*val = 0;
	*pct = false;
	char *end;
	double n = strtod(v, &end);
	if (end == v || n < 0)
		return HQ_EINVAL;
	const char *p = end;
	if (*p == '%') {
		if (n <= 0 || n > 100 || p[1])
			return HQ_EINVAL;
		*pct = true;
		*val = (uint64_t)n;
		return HQ_OK;
	}
	n *= size_suffix(&p);
	if (*p || n > 1e18)
		return HQ_EINVAL;
	*val = (uint64_t)n;
	return HQ_OK;
}

bool conf_check_watermark(const char *v)
{
	uint64_t x;
	bool pct;
	return conf_parse_watermark(v, &x, &pct) == HQ_OK;
}
