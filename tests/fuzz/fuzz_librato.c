/* libFuzzer target: the bodies of Librato's POST /v1/metrics through librato_parse. The first
 * byte chooses the encoding (odd: form, even: JSON); the rest is the body. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "librato.h"

#define NOW_US (INT64_C(1796220544) * 1000000 + 123456)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	bool form = data[0] & 1;
	MetricBatch b;
	MetricError err;
	memset(&err, 0, sizeof(err));
	if (!librato_parse((const char *)data + 1, size - 1, form, NOW_US, &b, &err)) {
		/* All or nothing: a reason, a 400, and nothing to free. */
		if (err.status != 400 || b.m || b.arena || b.n || !memchr(err.field, '\0', sizeof(err.field)) ||
		    !err.msg[0])
			__builtin_trap();
		for (const char *p = err.field; *p; p++) /* echoed in a JSON answer */
			if (*p < 0x20 || *p > 0x7e)
				__builtin_trap();
		return 0;
	}
	/* What was accepted must hold what the model and the Librato rules promise. */
	if (b.n == 0 || b.n > METRIC_BATCH_MAX)
		__builtin_trap();
	for (size_t i = 0; i < b.n; i++) {
		const Metric *m = &b.m[i];
		if (!metric_source_valid(m->name, m->name_len) || strlen(m->name) != m->name_len)
			__builtin_trap();
		if (m->source && (!metric_source_valid(m->source, m->source_len) || strlen(m->source) != m->source_len))
			__builtin_trap();
		if (!m->present || !(m->present & 1u << METRIC_COUNT) || m->v[METRIC_COUNT] < 1 || !m->has_id)
			__builtin_trap();
		if (m->bucket_us < 0 || m->bucket_us % 1000000 != 0 || m->bucket_us > INT64_C(253402300799) * 1000000)
			__builtin_trap();
		for (int s = 0; s < METRIC_NSTATS; s++)
			if ((m->present & 1u << s) && (!(m->v[s] == m->v[s]) || m->v[s] > METRIC_VALUE_MAX ||
						       m->v[s] < -METRIC_VALUE_MAX))
				__builtin_trap();
		Uuid want;
		uuid_named(&want, m->name, m->name_len, m->source, m->source_len, m->bucket_us / 1000);
		if (uuid_cmp(&want, &m->id) != 0)
			__builtin_trap();
	}
	metric_batch_free(&b);
	return 0;
}
