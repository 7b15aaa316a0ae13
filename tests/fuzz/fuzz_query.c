/* libFuzzer target: the query string of GET /metrics and the regex cost check. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "query.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const KEYS[] = {"name", "from", "to", "resolution"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *str = malloc(size + 1);
	char *exact = malloc(size ? size : 1);
	if (!str || !exact)
		abort();
	memcpy(str, data, size);
	str[size] = '\0';
	memcpy(exact, data, size);
	char err[200], field[64];
	QueryParams q;
	if (query_parse(str, KEYS, ARRAY_LEN(KEYS), &q, err, sizeof(err), field, sizeof(field))) {
		for (size_t k = 0; k < ARRAY_LEN(KEYS); k++) {
			if (!q.val[k])
				continue;
			/* A value handed on is exactly what the caller is promised: valid UTF-8, no NUL. */
			if (strlen(q.val[k]) != q.len[k] || !query_utf8_valid(q.val[k], q.len[k]))
				__builtin_trap();
			err[0] = '\0';
			if (!query_regex_check(q.val[k], q.len[k], err, sizeof(err)) && !err[0])
				__builtin_trap();
		}
		query_free(&q);
	} else if (!err[0] || strlen(field) >= sizeof(field)) {
		__builtin_trap();
	}
	/* The raw input as a pattern, without a terminator so that reading past the end is caught. */
	err[0] = '\0';
	if (!query_regex_check(exact, size, err, sizeof(err)) && !err[0])
		__builtin_trap();
	free(str);
	free(exact);
	return 0;
}
