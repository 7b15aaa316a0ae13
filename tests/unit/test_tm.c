/* Unit tests of tm: the time forms clients send, rollup resolutions, bucket truncation and the
 * text handed to PostgreSQL. Expected instants come from glibc's timegm(), an implementation
 * independent of the one under test. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tm.h"

#include "unit.h"

static bool parse(const char *s, int64_t *us)
{
	return tm_parse(s, strlen(s), us);
}

/* ---- tm_parse: accepted forms ---- */

static void test_parse_accepts(void **state)
{
	(void)state;
	const int64_t base = utc(2012, 12, 11, 5, 19, 0);
	const struct {
		const char *in;
		int64_t want;
	} cases[] = {
		/* Unix seconds */
		{"1355202720", INT64_C(1355202720) * US},
		{"1355202720.5", INT64_C(1355202720) * US + 500000},
		{"1355202720.000001", INT64_C(1355202720) * US + 1},
		{"0", 0},
		{"0.0", 0},
		{"253402300799", utc(9999, 12, 31, 23, 59, 59)},
		/* RFC 3339 */
		{"2012-12-11T05:19:00Z", base},
		{"2012-12-11t05:19:00z", base},
		{"2012-12-11T05:19:00+01:00", base - 3600 * US},
		{"2012-12-11T05:19:00-05:30", base + (5 * 3600 + 30 * 60) * US},
		{"2012-12-11T05:19:00+00:00", base},
		{"2012-12-11T05:19:00-00:00", base},
		{"2012-12-11T23:30:00-01:00", utc(2012, 12, 12, 0, 30, 0)}, /* crosses midnight */
		{"2013-01-01T00:30:00+01:00", utc(2012, 12, 31, 23, 30, 0)}, /* crosses a year */
		{"2012-12-11T05:19:00.5Z", base + 500000},
		{"2012-12-11T05:19:00.123Z", base + 123000},
		{"2012-12-11T05:19:00.123456Z", base + 123456},
		{"2012-12-11T05:19:00.000001Z", base + 1},
		{"2012-12-11T05:19:00.1234567Z", base + 123456}, /* truncated, not rounded */
		{"2012-12-11T05:19:00.999999999Z", base + 999999},
		{"2012-12-11T05:19:00.25+01:00", base - 3600 * US + 250000},
		/* Ruby's Time#to_s */
		{"2012-12-11 05:19:00 UTC", base},
		{"2012-12-11 05:19:00 +0100", base - 3600 * US},
		{"2012-12-11 05:19:00 -0530", base + (5 * 3600 + 30 * 60) * US},
		/* calendar edges */
		{"1970-01-01T00:00:00Z", 0},
		{"1970-01-01T01:00:00+01:00", 0},
		{"2012-02-29T00:00:00Z", utc(2012, 2, 29, 0, 0, 0)},
		{"2000-02-29T12:00:00Z", utc(2000, 2, 29, 12, 0, 0)},
		{"2012-12-31T23:59:59Z", utc(2012, 12, 31, 23, 59, 59)},
		{"2012-04-30T00:00:00Z", utc(2012, 4, 30, 0, 0, 0)},
		{"9999-12-31T23:59:59.999999Z", TM_MAX_US},
	};
	int failures = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t got = -42;
		bool ok = parse(cases[i].in, &got);
		if (!ok || got != cases[i].want) {
			print_error("case %zu \"%s\": ok=%d got=%lld want=%lld\n", i, cases[i].in, ok,
				    (long long)got, (long long)cases[i].want);
			failures++;
		}
	}
	assert_int_equal(failures, 0);
}

/* ---- tm_parse: rejected forms ---- */

static void test_parse_rejects(void **state)
{
	(void)state;
	const char *const cases[] = {
		"",
		" ",
		"garbage",
		"now",
		"2012-13-11T05:19:00Z",  /* month 13 */
		"2012-00-11T05:19:00Z",  /* month 0 */
		"2012-12-00T05:19:00Z",  /* day 0 */
		"2012-12-32T05:19:00Z",  /* day 32 */
		"2012-04-31T05:19:00Z",  /* April 31 */
		"2012-02-30T05:19:00Z",  /* Feb 30 */
		"2013-02-29T05:19:00Z",  /* not a leap year */
		"2100-02-29T05:19:00Z",  /* century, not a leap year */
		"2012-12-11T24:00:00Z",  /* hour 24 */
		"2012-12-11T05:60:00Z",  /* minute 60 */
		"2012-12-11T05:19:60Z",  /* second 60 */
		"2012-12-11T05:19:00",   /* missing zone */
		"2012-12-11 05:19:00",   /* missing zone, Ruby form */
		"2012-12-11",            /* date only */
		"2012-12-11T05:19Z",     /* no seconds */
		"2012-12-11T05:19:00ZZ", /* trailing junk */
		"2012-12-11T05:19:00Z ",
		"2012-12-11T05:19:00+01:00x",
		"2012-12-11 05:19:00 UTCx",
		"2012-12-11 05:19:00 PST",
		"2012-12-11T05:19:00+01",    /* offset without minutes */
		"2012-12-11T05:19:00+24:00", /* offset hour out of range */
		"2012-12-11T05:19:00+01:60", /* offset minute out of range */
		"2012-12-11T05:19:00.Z",     /* empty fraction */
		"2012-12-11X05:19:00Z",      /* bad separator */
		"12-12-11T05:19:00Z",        /* two-digit year */
		"2012-1-11T05:19:00Z",       /* one-digit month */
		"1969-12-31T23:59:59Z",      /* before 1970 */
		"1969-12-31 23:59:59 UTC",
		"0000-01-01T00:00:00Z",
		"1970-01-01T00:30:00+01:00", /* the offset pushes it before the epoch */
		"9999-12-31T23:59:59-00:01", /* the offset pushes it after 9999 */
		"10000-01-01T00:00:00Z",     /* after 9999 */
		"253402300801",              /* Unix seconds after 9999 */
		"1000000000000",
		"-1",                        /* negative */
		"-1355202720",
		"-0.5",
		"1e9",
		"1E9",
		"+1355202720",
		"0x10",
		".",
		"1.2.3",
		"1355202720abc",
		"inf",
		"nan",
	};
	int failures = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t got = -42;
		if (parse(cases[i], &got)) {
			print_error("case %zu \"%s\" accepted as %lld\n", i, cases[i], (long long)got);
			failures++;
		}
	}
	assert_int_equal(failures, 0);
}

/* Only the len bytes given count: a time followed by other bytes in the same buffer. */
static void test_parse_uses_len(void **state)
{
	(void)state;
	const struct {
		const char *buf;
		size_t len;
		bool ok;
		int64_t want;
	} cases[] = {
		{"2012-12-11T05:19:00Zjunk", 20, true, utc(2012, 12, 11, 5, 19, 0)},
		{"2012-12-11T05:19:00Zjunk", 19, false, 0},
		{"2012-12-11T05:19:00Z", 0, false, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t got = -42;
		bool ok = tm_parse(cases[i].buf, cases[i].len, &got);
		assert_int_equal(ok, cases[i].ok);
		if (ok)
			assert_int_equal(got, cases[i].want);
	}
}

/* ---- tm_from_unix ---- */

static void test_from_unix(void **state)
{
	(void)state;
	const struct {
		double secs;
		bool ok;
		int64_t want;
	} cases[] = {
		{0, true, 0},
		{1355202720, true, INT64_C(1355202720) * US},
		{1355202720.5, true, INT64_C(1355202720) * US + 500000},
		{1355202720.25, true, INT64_C(1355202720) * US + 250000},
		{0.000001, true, 1},
		{253402300799.0, true, utc(9999, 12, 31, 23, 59, 59)},
		{253402300801.0, false, 0},
		{1e18, false, 0},
		{-1, false, 0},
		{-0.000001, false, 0},
		{-1e18, false, 0},
		{INFINITY, false, 0},
		{-INFINITY, false, 0},
		{NAN, false, 0},
	};
	int failures = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t got = -42;
		bool ok = tm_from_unix(cases[i].secs, &got);
		if (ok != cases[i].ok || (ok && got != cases[i].want)) {
			print_error("case %zu %.17g: ok=%d got=%lld\n", i, cases[i].secs, ok,
				    (long long)got);
			failures++;
		}
	}
	assert_int_equal(failures, 0);
}

/* The first second of the year 10000 is out of range whichever way it comes, and nothing
 * accepted lies past 9999-12-31T23:59:59.999999Z. Near 2.5e11 a double is only precise to
 * about 30 us (253402300799.999999 is the same double as 253402300800), so this edge is where
 * a floating-point bound check can slip. */
static void test_unix_seconds_end_of_9999(void **state)
{
	(void)state;
	const struct {
		const char *text; /* through tm_parse when set, else tm_from_unix(secs) */
		double secs;
		bool ok;
		int64_t want;
	} cases[] = {
		{"253402300799", 0, true, TM_MAX_US - 999999},
		{NULL, 253402300799.0, true, TM_MAX_US - 999999},
		{NULL, 253402300799.5, true, TM_MAX_US - 499999},
		{"253402300800", 0, false, 0},
		{"253402300800.0", 0, false, 0},
		{NULL, 253402300800.0, false, 0},
		{NULL, 253402300800.00003, false, 0},
	};
	int failures = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t got = -42;
		bool ok = cases[i].text ? parse(cases[i].text, &got) : tm_from_unix(cases[i].secs, &got);
		if (ok != cases[i].ok || (ok && got != cases[i].want)) {
			char what[40];
			if (cases[i].text)
				snprintf(what, sizeof(what), "tm_parse(\"%s\")", cases[i].text);
			else
				snprintf(what, sizeof(what), "tm_from_unix(%.17g)", cases[i].secs);
			print_error("case %zu %s: ok=%d got=%lld, want ok=%d (TM_MAX_US=%lld)\n", i, what,
				    ok, (long long)got, cases[i].ok, (long long)TM_MAX_US);
			failures++;
		}
	}
	assert_int_equal(failures, 0);
}

/* ---- tm_parse_resolution ---- */

static void test_parse_resolution(void **state)
{
	(void)state;
	const struct {
		const char *in;
		TmRes want;
	} ok_cases[] = {
		{"second", TM_SECOND}, {"s", TM_SECOND}, {"minute", TM_MINUTE}, {"m", TM_MINUTE},
		{"min", TM_MINUTE},    {"hour", TM_HOUR}, {"h", TM_HOUR},       {"day", TM_DAY},
		{"d", TM_DAY},         {"week", TM_WEEK}, {"w", TM_WEEK},       {"month", TM_MONTH},
		{"mo", TM_MONTH},      {"year", TM_YEAR}, {"y", TM_YEAR},
	};
	for (size_t i = 0; i < sizeof(ok_cases) / sizeof(ok_cases[0]); i++) {
		TmRes got = (TmRes)-1;
		bool ok = tm_parse_resolution(ok_cases[i].in, &got);
		if (!ok || got != ok_cases[i].want)
			print_error("resolution \"%s\": ok=%d got=%d\n", ok_cases[i].in, ok, (int)got);
		assert_true(ok);
		assert_int_equal(got, ok_cases[i].want);
	}
	const char *const bad[] = {
		"", "x", "ms", "seconds", "minutes", "hours", "days", "weeks", "months", "years",
		"quarter", "fortnight", "decade", "1m", "m ", " m", "month\n", "yr",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		TmRes got = TM_DAY;
		bool ok = tm_parse_resolution(bad[i], &got);
		if (ok)
			print_error("resolution \"%s\" accepted as %d\n", bad[i], (int)got);
		assert_false(ok);
		assert_int_equal(got, TM_DAY); /* left alone */
	}
}

/* ---- tm_truncate ---- */

static void test_truncate(void **state)
{
	(void)state;
	const int64_t t = utc(2012, 12, 11, 5, 19, 42) + 123456; /* a Tuesday */
	const struct {
		const char *what;
		int64_t in;
		TmRes res;
		int64_t want;
	} cases[] = {
		{"second", t, TM_SECOND, utc(2012, 12, 11, 5, 19, 42)},
		{"minute", t, TM_MINUTE, utc(2012, 12, 11, 5, 19, 0)},
		{"hour", t, TM_HOUR, utc(2012, 12, 11, 5, 0, 0)},
		{"day", t, TM_DAY, utc(2012, 12, 11, 0, 0, 0)},
		{"week of a Tuesday", t, TM_WEEK, utc(2012, 12, 10, 0, 0, 0)},
		{"month", t, TM_MONTH, utc(2012, 12, 1, 0, 0, 0)},
		{"year", t, TM_YEAR, utc(2012, 1, 1, 0, 0, 0)},
		/* weeks start on Monday */
		{"Wednesday", utc(2024, 1, 3, 15, 0, 0), TM_WEEK, utc(2024, 1, 1, 0, 0, 0)},
		{"Sunday", utc(2024, 1, 7, 23, 59, 59) + 999999, TM_WEEK, utc(2024, 1, 1, 0, 0, 0)},
		{"Monday midnight", utc(2024, 1, 8, 0, 0, 0), TM_WEEK, utc(2024, 1, 8, 0, 0, 0)},
		{"Monday noon", utc(2024, 1, 8, 12, 0, 0), TM_WEEK, utc(2024, 1, 8, 0, 0, 0)},
		{"week across a year", utc(2013, 1, 1, 9, 0, 0), TM_WEEK, utc(2012, 12, 31, 0, 0, 0)},
		{"week across a month", utc(2012, 3, 2, 9, 0, 0), TM_WEEK, utc(2012, 2, 27, 0, 0, 0)},
		{"first Monday of 1970", utc(1970, 1, 5, 1, 0, 0), TM_WEEK, utc(1970, 1, 5, 0, 0, 0)},
		/* month and year starts, leap years */
		{"leap day, month", utc(2012, 2, 29, 23, 59, 59), TM_MONTH, utc(2012, 2, 1, 0, 0, 0)},
		{"leap day, year", utc(2012, 2, 29, 23, 59, 59), TM_YEAR, utc(2012, 1, 1, 0, 0, 0)},
		{"after leap day", utc(2012, 3, 1, 0, 0, 1), TM_MONTH, utc(2012, 3, 1, 0, 0, 0)},
		{"2000 leap day", utc(2000, 2, 29, 6, 0, 0), TM_MONTH, utc(2000, 2, 1, 0, 0, 0)},
		{"2100 March 1", utc(2100, 3, 1, 6, 0, 0), TM_MONTH, utc(2100, 3, 1, 0, 0, 0)},
		{"Dec 31 month", utc(2012, 12, 31, 23, 59, 59), TM_MONTH, utc(2012, 12, 1, 0, 0, 0)},
		{"Dec 31 year", utc(2012, 12, 31, 23, 59, 59), TM_YEAR, utc(2012, 1, 1, 0, 0, 0)},
		{"Dec 31 leap year day", utc(2012, 12, 31, 23, 0, 0), TM_DAY, utc(2012, 12, 31, 0, 0, 0)},
		{"last of Feb 2013", utc(2013, 2, 28, 12, 0, 0), TM_MONTH, utc(2013, 2, 1, 0, 0, 0)},
		{"last instant", TM_MAX_US, TM_YEAR, utc(9999, 1, 1, 0, 0, 0)},
		{"last instant month", TM_MAX_US, TM_MONTH, utc(9999, 12, 1, 0, 0, 0)},
		{"last instant second", TM_MAX_US, TM_SECOND, utc(9999, 12, 31, 23, 59, 59)},
		{"epoch year", 0, TM_YEAR, 0},
		{"epoch month", 0, TM_MONTH, 0},
		{"epoch day", 0, TM_DAY, 0},
		{"epoch second", 999999, TM_SECOND, 0},
	};
	int failures = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t got = tm_truncate(cases[i].in, cases[i].res);
		if (got != cases[i].want) {
			print_error("case %zu (%s): got %lld want %lld\n", i, cases[i].what,
				    (long long)got, (long long)cases[i].want);
			failures++;
		}
	}
	assert_int_equal(failures, 0);
}

/* An instant exactly on a boundary is its own bucket, at every resolution it starts. */
static void test_truncate_on_boundary(void **state)
{
	(void)state;
	const struct {
		int64_t at;
		TmRes res[7];
		size_t nres;
	} cases[] = {
		{utc(2012, 12, 11, 5, 19, 42), {TM_SECOND}, 1},
		{utc(2012, 12, 11, 5, 19, 0), {TM_SECOND, TM_MINUTE}, 2},
		{utc(2012, 12, 11, 5, 0, 0), {TM_SECOND, TM_MINUTE, TM_HOUR}, 3},
		{utc(2012, 12, 11, 0, 0, 0), {TM_SECOND, TM_MINUTE, TM_HOUR, TM_DAY}, 4},
		{utc(2012, 12, 10, 0, 0, 0), {TM_SECOND, TM_MINUTE, TM_HOUR, TM_DAY, TM_WEEK}, 5},
		{utc(2012, 12, 1, 0, 0, 0), {TM_SECOND, TM_MINUTE, TM_HOUR, TM_DAY, TM_MONTH}, 5},
		{utc(2024, 1, 1, 0, 0, 0),
		 {TM_SECOND, TM_MINUTE, TM_HOUR, TM_DAY, TM_WEEK, TM_MONTH, TM_YEAR},
		 7}, /* a Monday, Jan 1 */
		{utc(2012, 3, 1, 0, 0, 0), {TM_SECOND, TM_MINUTE, TM_HOUR, TM_DAY, TM_MONTH}, 5},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (size_t k = 0; k < cases[i].nres; k++) {
			int64_t got = tm_truncate(cases[i].at, cases[i].res[k]);
			if (got != cases[i].at)
				print_error("case %zu res %d: got %lld\n", i, (int)cases[i].res[k],
					    (long long)got);
			assert_int_equal(got, cases[i].at);
			/* one microsecond earlier belongs to the previous bucket */
			assert_true(tm_truncate(cases[i].at - 1, cases[i].res[k]) < cases[i].at);
		}
	}
}

/* Every day of a year: weeks start on a Monday at most 6 days earlier, truncation is idempotent. */
static void test_truncate_week_every_day(void **state)
{
	(void)state;
	for (int64_t day = utc(2012, 1, 1, 0, 0, 0); day < utc(2013, 1, 1, 0, 0, 0); day += 86400 * US) {
		int64_t at = day + 13 * 3600 * US;
		int64_t w = tm_truncate(at, TM_WEEK);
		time_t secs = (time_t)(w / US);
		struct tm t;
		gmtime_r(&secs, &t);
		assert_int_equal(t.tm_wday, 1);
		assert_int_equal(t.tm_hour, 0);
		assert_true(w <= at && at - w < 7 * 86400 * US);
		assert_int_equal(tm_truncate(w, TM_WEEK), w);
	}
}

/* ---- tm_format_pg ---- */

static void test_format_pg(void **state)
{
	(void)state;
	const struct {
		int64_t us;
		const char *want;
	} cases[] = {
		{0, "1970-01-01 00:00:00.000000+00"},
		{INT64_C(1355202720) * US, "2012-12-11 05:12:00.000000+00"},
		{INT64_C(1355202720) * US + 500000, "2012-12-11 05:12:00.500000+00"},
		{utc(2012, 12, 11, 5, 19, 0) + 1, "2012-12-11 05:19:00.000001+00"},
		{utc(2012, 2, 29, 23, 59, 59) + 123456, "2012-02-29 23:59:59.123456+00"},
		{utc(2000, 1, 1, 0, 0, 0), "2000-01-01 00:00:00.000000+00"},
		{TM_MAX_US, "9999-12-31 23:59:59.999999+00"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char buf[32];
		memset(buf, 'x', sizeof(buf));
		size_t n = tm_format_pg(cases[i].us, buf);
		assert_string_equal(buf, cases[i].want);
		assert_int_equal(n, strlen(cases[i].want));
	}
}

/* What the parser reads, the formatter writes back in PostgreSQL's form, and back again. */
static void test_parse_format_round_trip(void **state)
{
	(void)state;
	const struct {
		const char *in;
		const char *pg;
	} cases[] = {
		{"2012-12-11T05:19:00.25+01:00", "2012-12-11 04:19:00.250000+00"},
		{"2012-12-11 05:19:00 -0530", "2012-12-11 10:49:00.000000+00"},
		{"1355202720.5", "2012-12-11 05:12:00.500000+00"},
		{"2013-01-01T00:30:00+01:00", "2012-12-31 23:30:00.000000+00"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t us, again;
		char buf[32];
		assert_true(parse(cases[i].in, &us));
		tm_format_pg(us, buf);
		assert_string_equal(buf, cases[i].pg);
		/* "YYYY-MM-DD HH:MM:SS.ffffff+00" reads back with the offset spelled +0000 */
		char ruby[40];
		snprintf(ruby, sizeof(ruby), "%.26s +0000", buf);
		assert_true(parse(ruby, &again));
		assert_int_equal(again, us);
	}
}

/* ---- tm_next and tm_res_unit ---- */

/* The bucket after one: a fixed step up to weeks, the next first day for months and years. */
static void test_next(void **state)
{
	(void)state;
	const struct {
		int64_t start;
		TmRes res;
		int64_t want;
	} cases[] = {
		{utc(2012, 12, 11, 5, 19, 42), TM_SECOND, utc(2012, 12, 11, 5, 19, 43)},
		{utc(2012, 12, 31, 23, 59, 59), TM_SECOND, utc(2013, 1, 1, 0, 0, 0)},
		{utc(2012, 12, 11, 5, 59, 0), TM_MINUTE, utc(2012, 12, 11, 6, 0, 0)},
		{utc(2012, 12, 11, 23, 0, 0), TM_HOUR, utc(2012, 12, 12, 0, 0, 0)},
		{utc(2012, 2, 28, 0, 0, 0), TM_DAY, utc(2012, 2, 29, 0, 0, 0)},
		{utc(2012, 2, 29, 0, 0, 0), TM_DAY, utc(2012, 3, 1, 0, 0, 0)},
		{utc(2012, 12, 31, 0, 0, 0), TM_WEEK, utc(2013, 1, 7, 0, 0, 0)},
		{utc(2024, 1, 1, 0, 0, 0), TM_WEEK, utc(2024, 1, 8, 0, 0, 0)},
		{utc(2012, 1, 1, 0, 0, 0), TM_MONTH, utc(2012, 2, 1, 0, 0, 0)},
		{utc(2012, 2, 1, 0, 0, 0), TM_MONTH, utc(2012, 3, 1, 0, 0, 0)},
		{utc(2013, 2, 1, 0, 0, 0), TM_MONTH, utc(2013, 3, 1, 0, 0, 0)},
		{utc(2012, 12, 1, 0, 0, 0), TM_MONTH, utc(2013, 1, 1, 0, 0, 0)},
		{utc(2012, 1, 1, 0, 0, 0), TM_YEAR, utc(2013, 1, 1, 0, 0, 0)},
		{utc(1970, 1, 1, 0, 0, 0), TM_YEAR, utc(1971, 1, 1, 0, 0, 0)},
		{utc(9999, 12, 1, 0, 0, 0), TM_MONTH, TM_MAX_US + 1},
	};
	int failures = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t got = tm_next(cases[i].start, cases[i].res);
		if (got != cases[i].want) {
			print_error("case %zu: got %lld want %lld\n", i, (long long)got,
				    (long long)cases[i].want);
			failures++;
		}
		/* the next bucket starts on a boundary, right after the last instant of this one */
		if (tm_truncate(got, cases[i].res) != got ||
		    tm_truncate(got - 1, cases[i].res) != cases[i].start) {
			print_error("case %zu: %lld is not the next boundary\n", i, (long long)got);
			failures++;
		}
	}
	assert_int_equal(failures, 0);
}

/* Units as PostgreSQL's date_trunc() names them. */
static void test_res_unit(void **state)
{
	(void)state;
	const struct {
		TmRes res;
		const char *unit;
	} cases[] = {
		{TM_SECOND, "second"}, {TM_MINUTE, "minute"}, {TM_HOUR, "hour"}, {TM_DAY, "day"},
		{TM_WEEK, "week"},     {TM_MONTH, "month"},   {TM_YEAR, "year"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_string_equal(tm_res_unit(cases[i].res), cases[i].unit);
		/* and the unit reads back as the resolution */
		TmRes back;
		assert_true(tm_parse_resolution(tm_res_unit(cases[i].res), &back));
		assert_int_equal(back, cases[i].res);
	}
}

/* ---- tm_days_from_civil ---- */

static void test_parse_duration(void **state)
{
	(void)state;
	const struct {
		const char *s;
		bool ok;
		int64_t us;
	} cases[] = {
		{"30d", true, INT64_C(30) * 86400 * 1000000}, {"12h", true, INT64_C(12) * 3600 * 1000000},
		{"90m", true, INT64_C(90) * 60 * 1000000},    {"45s", true, INT64_C(45) * 1000000},
		{"2w", true, INT64_C(14) * 86400 * 1000000},  {"0s", true, 0},
		{"10min", true, INT64_C(600) * 1000000},       {"", false, 0},
		{"d", false, 0},                              {"30", false, 0},
		{"30x", false, 0},                            {"-1d", false, 0},
		{"1.5h", false, 0},                           {" 1h", false, 0},
		{"1h ", false, 0},                            {"99999999999999w", false, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t us = -1;
		bool ok = tm_parse_duration(cases[i].s, &us);
		if (ok != cases[i].ok || (ok && us != cases[i].us))
			fail_msg("tm_parse_duration(\"%s\"): got ok=%d us=%lld", cases[i].s, ok, (long long)us);
	}
}

static void test_days_from_civil(void **state)
{
	(void)state;
	const struct {
		int y;
		unsigned m, d;
	} cases[] = {
		{1970, 1, 1}, {1970, 1, 2}, {1972, 2, 29}, {2000, 2, 29}, {2000, 3, 1},
		{2012, 12, 11}, {2100, 3, 1}, {9999, 12, 31}, {2024, 1, 1},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t want = utc(cases[i].y, (int)cases[i].m, (int)cases[i].d, 0, 0, 0) / US / 86400;
		assert_int_equal(tm_days_from_civil(cases[i].y, cases[i].m, cases[i].d), want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_accepts),
		cmocka_unit_test(test_parse_rejects),
		cmocka_unit_test(test_parse_uses_len),
		cmocka_unit_test(test_from_unix),
		cmocka_unit_test(test_unix_seconds_end_of_9999),
		cmocka_unit_test(test_parse_resolution),
		cmocka_unit_test(test_truncate),
		cmocka_unit_test(test_truncate_on_boundary),
		cmocka_unit_test(test_truncate_week_every_day),
		cmocka_unit_test(test_format_pg),
		cmocka_unit_test(test_parse_format_round_trip),
		cmocka_unit_test(test_next),
		cmocka_unit_test(test_res_unit),
		cmocka_unit_test(test_days_from_civil),
		cmocka_unit_test(test_parse_duration),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
