/*
 * fuzz_arc_tmpl.c - libFuzzer harness for the archive's INSERT template
 * (src/archive/arc_tmpl.c): archive.<name>.insert is operator text parsed
 * at start, and each row's values come from a publisher's payload (JSON
 * fields via cJSON). Built and run by `make fuzz`.
 *
 * Input: the template text, a NUL byte, then the payload. Besides "no crash,
 * no leak, no overread" (ASan): a refused template has a reason; an
 * accepted one has 1..1024 parameters, its $-style SQL ends its numbering at
 * exactly $nparams, and every parameter of a row is NULL or a value whose
 * length matches (text has no NUL before its end; only ${payload} is bytes).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive/arc_backend.h"
#include "core/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s (line %d)\n", #c, __LINE__); abort(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 70000)
		return 0;
	const uint8_t *nul = memchr(data, 0, size);
	size_t tlen = nul ? (size_t)(nul - data) : size;
	char *text = malloc(tlen + 1);
	memcpy(text, data, tlen);
	text[tlen] = '\0';
	struct arc_tmpl *t = NULL;
	char err[256] = "";
	int rc = arc_tmpl_parse(text, &t, err, sizeof(err));
	free(text);
	if (rc != HQ_OK) {
		CHECK(t == NULL && err[0]);
		return 0;
	}
	uint32_t n = arc_tmpl_nparams(t);
	CHECK(n >= 1 && n <= 1024);
	char last[16];
	snprintf(last, sizeof(last), "$%u", n);
	const char *dollar = arc_tmpl_sql(t, ARC_MARK_DOLLAR);
	CHECK(strstr(dollar, last) != NULL);
	CHECK(arc_tmpl_sql(t, ARC_MARK_QUESTION) != NULL);

	size_t plen = nul ? size - tlen - 1 : 0;
	uint8_t *payload = malloc(plen ? plen : 1); /* exact size: overreads show */
	if (plen)
		memcpy(payload, nul + 1, plen);
	struct arc_msg m = { .topic = "a/b", .topic_len = 3, .payload = payload,
			     .payload_len = (uint32_t)plen, .clientid = "c", .clientid_len = 1,
			     .qos = 1, .ts_ms = -1234, .node = "n" };
	memcpy(m.id, "0123456789abcdef0123456789abcdef", ARC_ID_HEX + 1);
	struct arc_tmpl_row r;
	arc_tmpl_row_init(&r, &m);
	for (uint32_t i = 0; i < n; i++) {
		size_t len = 0;
		bool bin = false;
		const char *v = arc_tmpl_param(t, &r, i, &len, &bin);
		if (!v)
			continue;
		if (bin)
			CHECK(v == (const char *)payload || len == 0);
		else
			CHECK(strnlen(v, len + 1) == len);
	}
	arc_tmpl_row_done(&r);
	free(payload);
	arc_tmpl_free(t);
	return 0;
}
