/* Helpers shared by the unit tests. */
#ifndef M2PG_TESTS_UNIT_H
#define M2PG_TESTS_UNIT_H

#include <stdint.h>
#include <time.h>

#define US INT64_C(1000000)

/* Microseconds since the epoch of a UTC civil time, computed by glibc (not by tm.c). */
static inline int64_t utc(int y, int mo, int d, int h, int mi, int s)
{
	struct tm t = {0};
	t.tm_year = y - 1900;
	t.tm_mon = mo - 1;
	t.tm_mday = d;
	t.tm_hour = h;
	t.tm_min = mi;
	t.tm_sec = s;
	return (int64_t)timegm(&t) * US;
}

#endif
