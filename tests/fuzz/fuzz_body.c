/* libFuzzer target: the body of POST /metrics, through the whole parser and validator. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "metric.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	MetricBatch b;
	MetricError err;
	memset(&err, 0, sizeof(err));
	if (metric_parse_body((const char *)data, size, &b, &err)) {
		/* What was accepted must hold what the model promises. */
		if (b.n == 0 || b.n > METRIC_BATCH_MAX)
			__builtin_trap();
		for (size_t i = 0; i < b.n; i++)
			if (!metric_name_valid(b.m[i].name, b.m[i].name_len) || strlen(b.m[i].name) != b.m[i].name_len ||
			    !b.m[i].present)
				__builtin_trap();
		metric_batch_free(&b);
	} else if (err.status != 400 && err.status != 422) {
		__builtin_trap();
	}
	return 0;
}
