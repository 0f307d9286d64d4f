/*
 * fuzz_conf.c - libFuzzer harness for the configuration parser
 * (conf_load_string, the same code path as a file), then conf_validate.
 * Built and run by `make fuzz`.
 *
 * Contract checked besides "no crash, no leak, no overread" (ASan): the
 * parser answers HQ_OK or HQ_EINVAL with a non-empty, NUL-terminated error,
 * and whatever it left in cfg can be validated and freed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/conf.h"
#include "core/err.h"
#include "core/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s (line %d)\n", #c, __LINE__); abort(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65536)
		return 0;
	log_set_level(LOG_NONE);
	char *text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0'; /* a file's text: the parser sees a C string */
	struct hq_config cfg;
	char err[CONF_ERR_MAX];
	conf_defaults(&cfg);
	err[0] = '\0';
	int rc = conf_load_string(&cfg, "fuzz.conf", text, err, sizeof(err));
	CHECK(rc == HQ_OK || rc == HQ_EINVAL);
	if (rc != HQ_OK)
		CHECK(err[0] && memchr(err, '\0', sizeof(err)));
	else
		(void)conf_validate(&cfg, err, sizeof(err));
	conf_free(&cfg);
	free(text);
	return 0;
}
