/* Time parsing and bucket truncation. Strict on purpose: a field out of range is an error,
 * never normalised into another date, so what a client sends is what gets stored. */
#include "tm.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define US_PER_SEC INT64_C(1000000)
#define US_PER_DAY (INT64_C(86400) * US_PER_SEC)

/* Howard Hinnant's days_from_civil. */
int64_t tm_days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static unsigned days_in_month(int64_t y, unsigned m)
{
	static const unsigned dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return m == 2 && leap ? 29 : dim[m - 1];
}

bool tm_from_unix(double secs, int64_t *us)
{
	/* Near 2.5e11 doubles are ~30 us apart: compare whole seconds, not 9999's last microsecond. */
	if (!isfinite(secs) || secs < 0 || secs >= 253402300800.0)
		return false;
	int64_t v = (int64_t)floor(secs * 1e6 + 0.5);
	if (v > TM_MAX_US)
		v = TM_MAX_US;
	*us = v;
	return true;
}

/* Reads exactly n digits at *p. */
static bool digits(const char **p, const char *end, int n, unsigned *out)
{
	unsigned v = 0;
	for (int i = 0; i < n; i++) {
		if (*p >= end || (*p)[0] < '0' || (*p)[0] > '9')
			return false;
		v = v * 10 + (unsigned)((*p)[0] - '0');
		(*p)++;
	}
	*out = v;
	return true;
}

static bool lit(const char **p, const char *end, char c)
{
	if (*p >= end || **p != c)
		return false;
	(*p)++;
	return true;
}

static bool parse_unix_string(const char *s, size_t len, int64_t *us)
{
	char buf[64];
	if (len >= sizeof(buf))
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	char *end;
	errno = 0;
	double v = strtod(buf, &end);
	if (errno != 0 || end != buf + len)
		return false;
	return tm_from_unix(v, us);
}

bool tm_parse(const char *s, size_t len, int64_t *us)
{
	const char *p = s, *end = s + len;
	unsigned y, mo, d, h, mi, sec, frac_us = 0;

	/* Bounded by len: s need not be NUL-terminated (strspn read past the end). */
	size_t num = 0;
	while (num < len && ((s[num] >= '0' && s[num] <= '9') || s[num] == '.'))
		num++;
	if (len > 0 && num == len)
		return parse_unix_string(s, len, us);
	if (!digits(&p, end, 4, &y) || !lit(&p, end, '-') || !digits(&p, end, 2, &mo) ||
	    !lit(&p, end, '-') || !digits(&p, end, 2, &d))
		return false;
	if (p >= end || (*p != 'T' && *p != 't' && *p != ' '))
		return false;
	p++;
	if (!digits(&p, end, 2, &h) || !lit(&p, end, ':') || !digits(&p, end, 2, &mi) ||
	    !lit(&p, end, ':') || !digits(&p, end, 2, &sec))
		return false;
	if (p < end && *p == '.') {
		p++;
		int n = 0;
		while (p < end && *p >= '0' && *p <= '9') {
			if (n < 6)
				frac_us = frac_us * 10 + (unsigned)(*p - '0');
			n++;
			p++;
		}
		if (n == 0)
			return false;
		for (; n < 6; n++)
			frac_us *= 10;
	}
	if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 59)
		return false;

	/* Zone: Z, +HH:MM, -HH:MM, or after a space UTC, +HHMM, -HHMM (Ruby's Time#to_s). */
	int64_t offset_s = 0;
	if (p < end && *p == ' ')
		p++;
	size_t rest = (size_t)(end - p);
	if (rest == 1 && (*p == 'Z' || *p == 'z')) {
		p++;
	} else if ((rest == 3 && strncasecmp(p, "UTC", 3) == 0) ||
		   (rest == 3 && strncasecmp(p, "GMT", 3) == 0)) {
		p += 3;
	} else if (rest >= 5 && (*p == '+' || *p == '-')) {
		int sign = *p == '-' ? -1 : 1;
		unsigned oh, om;
		p++;
		if (!digits(&p, end, 2, &oh))
			return false;
		if (p < end && *p == ':')
			p++;
		if (!digits(&p, end, 2, &om) || oh > 23 || om > 59)
			return false;
		offset_s = sign * (int64_t)(oh * 3600 + om * 60);
	} else {
		return false;
	}
	if (p != end)
		return false;

	int64_t secs = tm_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset_s;
	int64_t v = secs * US_PER_SEC + frac_us;
	if (v < TM_MIN_US || v > TM_MAX_US)
		return false;
	*us = v;
	return true;
}

bool tm_parse_resolution(const char *s, TmRes *res)
{
	static const struct {
		const char *name;
		TmRes res;
	} names[] = {
		{"second", TM_SECOND}, {"s", TM_SECOND},   {"sec", TM_SECOND}, {"minute", TM_MINUTE},
		{"m", TM_MINUTE},      {"min", TM_MINUTE}, {"hour", TM_HOUR},  {"h", TM_HOUR},
		{"day", TM_DAY},       {"d", TM_DAY},      {"week", TM_WEEK},  {"w", TM_WEEK},
		{"month", TM_MONTH},   {"mo", TM_MONTH},   {"year", TM_YEAR},  {"y", TM_YEAR},
	};
	for (size_t i = 0; i < ARRAY_LEN(names); i++) {
		if (strcmp(s, names[i].name) == 0) {
			*res = names[i].res;
			return true;
		}
	}
	return false;
}

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int64_t tm_truncate(int64_t us, TmRes res)
{
	int64_t days, y;
	unsigned m, d;
	switch (res) {
	case TM_SECOND:
		return floor_div(us, US_PER_SEC) * US_PER_SEC;
	case TM_MINUTE:
		return floor_div(us, 60 * US_PER_SEC) * 60 * US_PER_SEC;
	case TM_HOUR:
		return floor_div(us, 3600 * US_PER_SEC) * 3600 * US_PER_SEC;
	case TM_DAY:
		return floor_div(us, US_PER_DAY) * US_PER_DAY;
	case TM_WEEK:
		/* 1970-01-01 was a Thursday; Monday 1969-12-29 is day -3. */
		days = floor_div(us, US_PER_DAY);
		return (floor_div(days + 3, 7) * 7 - 3) * US_PER_DAY;
	case TM_MONTH:
	case TM_YEAR:
		civil_from_days(floor_div(us, US_PER_DAY), &y, &m, &d);
		return tm_days_from_civil(y, res == TM_YEAR ? 1 : m, 1) * US_PER_DAY;
	}
	return us;
}

static size_t format(int64_t us, char *buf, char sep, const char *zone)
{
	int64_t days = floor_div(us, US_PER_DAY), y;
	int64_t rem = us - days * US_PER_DAY;
	unsigned m, d;
	civil_from_days(days, &y, &m, &d);
	int64_t secs = rem / US_PER_SEC;
	int n = snprintf(buf, 32, "%04lld-%02u-%02u%c%02lld:%02lld:%02lld.%06lld%s", (long long)y, m, d, sep,
			 (long long)(secs / 3600), (long long)(secs / 60 % 60), (long long)(secs % 60),
			 (long long)(rem % US_PER_SEC), zone);
	return (size_t)n;
}

size_t tm_format_pg(int64_t us, char *buf)
{
	return format(us, buf, ' ', "+00");
}

size_t tm_format_rfc3339(int64_t us, char *buf)
{
	return format(us, buf, 'T', "Z");
}

int64_t tm_next(int64_t start, TmRes res)
{
	int64_t y;
	unsigned m, d;
	switch (res) {
	case TM_SECOND: return start + US_PER_SEC;
	case TM_MINUTE: return start + 60 * US_PER_SEC;
	case TM_HOUR: return start + 3600 * US_PER_SEC;
	case TM_DAY: return start + US_PER_DAY;
	case TM_WEEK: return start + 7 * US_PER_DAY;
	case TM_MONTH:
	case TM_YEAR:
		civil_from_days(floor_div(start, US_PER_DAY), &y, &m, &d);
		if (res == TM_YEAR)
			return tm_days_from_civil(y + 1, 1, 1) * US_PER_DAY;
		return (m == 12 ? tm_days_from_civil(y + 1, 1, 1) : tm_days_from_civil(y, m + 1, 1)) * US_PER_DAY;
	}
	return start;
}

const char *tm_res_unit(TmRes res)
{
	static const char *const units[] = {"second", "minute", "hour", "day", "week", "month", "year"};
	return units[res];
}

bool tm_parse_duration(const char *s, int64_t *us)
{
	char *end;
	errno = 0;
	long long n = strtoll(s, &end, 10);
	if (errno || end == s || n < 0 || !(s[0] >= '0' && s[0] <= '9'))
		return false;
	int64_t unit;
	if (strcmp(end, "s") == 0)
		unit = US_PER_SEC;
	else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
		unit = 60 * US_PER_SEC;
	else if (strcmp(end, "h") == 0)
		unit = 3600 * US_PER_SEC;
	else if (strcmp(end, "d") == 0)
		unit = US_PER_DAY;
	else if (strcmp(end, "w") == 0)
		unit = 7 * US_PER_DAY;
	else
		return false;
	if (n > TM_MAX_US / unit)
		return false;
	*us = n * unit;
	return true;
}
