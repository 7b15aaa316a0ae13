/* libFuzzer target: the time forms clients send (bucket, from, to), durations and resolutions. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* tm_parse takes a length: give it a copy without a terminator so that reading past the end
	 * is caught. The other two take C strings. */
	char *exact = malloc(size ? size : 1);
	char *str = malloc(size + 1);
	if (!exact || !str)
		abort();
	memcpy(exact, data, size);
	memcpy(str, data, size);
	str[size] = '\0';
	int64_t us;
	if (tm_parse(exact, size, &us)) {
		if (us < TM_MIN_US || us > TM_MAX_US)
			__builtin_trap();
		char buf[40];
		if (tm_format_rfc3339(us, buf) >= sizeof(buf) || tm_format_pg(us, buf) >= sizeof(buf))
			__builtin_trap();
		for (TmRes r = TM_SECOND; r <= TM_YEAR; r++) {
			int64_t start = tm_truncate(us, r);
			if (start > us || tm_next(start, r) <= us)
				__builtin_trap();
		}
	}
	if (tm_parse_duration(str, &us) && us < 0)
		__builtin_trap();
	TmRes res;
	if (tm_parse_resolution(str, &res) && (res < TM_SECOND || res > TM_YEAR))
		__builtin_trap();
	free(exact);
	free(str);
	return 0;
}
