/* Unit tests of jsonw: the numbers, strings and error objects every answer is made of. Output
 * is checked against exact text where the contract fixes it, and read back with jansson and
 * strtod everywhere. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"

/* Significant digits of the shortest decimal that strtod reads back as v (1..17), found by
 * trying every precision: an oracle independent of the code under test. */
static int shortest_digits(double v)
{
	char tmp[40];
	for (int p = 1; p <= 17; p++) {
		snprintf(tmp, sizeof(tmp), "%.*e", p - 1, v);
		if (strtod(tmp, NULL) == v)
			return p;
	}
	return 17;
}

/* Significant digits written in a decimal number's text: leading and trailing zeros and the
 * point do not count. */
static int written_digits(const char *s)
{
	const char *end = s + strcspn(s, "eE");
	const char *first = NULL, *last = NULL;
	for (const char *p = s; p < end; p++) {
		if (*p >= '1' && *p <= '9') {
			if (!first)
				first = p;
			last = p;
		}
	}
	if (!first)
		return 1; /* "0" */
	int n = 0;
	for (const char *p = first; p <= last; p++)
		n += *p >= '0' && *p <= '9';
	return n;
}

/* The text is one JSON number and jansson reads it as v. */
static bool json_number_reads_as(const char *s, double v)
{
	json_error_t err;
	json_t *j = json_loads(s, JSON_DECODE_ANY, &err);
	if (!j)
		return false;
	bool ok = json_is_number(j) && json_number_value(j) == v;
	json_decref(j);
	return ok;
}

static void test_format_double_exact(void **state)
{
	(void)state;
	const struct {
		double v;
		const char *want;
	} cases[] = {
		{3.14, "3.14"},
		{0.1, "0.1"},
		{0.1 + 0.2, "0.30000000000000004"},
		{-0.5, "-0.5"},
		{42, "42"},
		{-42, "-42"},
		{0, "0"},
		{1, "1"},
		{100, "100"},
		{1.5, "1.5"},
		{123.456, "123.456"},
		{1.0 / 3, "0.3333333333333333"},
		{2.0 / 3, "0.6666666666666666"},
		{1355202720, "1355202720"},
		{1355202720.5, "1355202720.5"},
		/* the short-decimal path: fraction digits only as many as needed */
		{0.0001, "0.0001"},
		{0.00025, "0.00025"},
		{-0.025, "-0.025"},
		{2.675, "2.675"},
		{123456.789, "123456.789"},
		{999999999.5, "999999999.5"},
		{0.123456789, "0.123456789"},
		{9007199254740991.0, "9007199254740991"},
		{9007199254740992.0, "9007199254740992"},
		{-9007199254740991.0, "-9007199254740991"},
		{1e15, "1000000000000000"},
		{DBL_MAX, "1.7976931348623157e+308"},
		{-DBL_MAX, "-1.7976931348623157e+308"},
		{DBL_MIN, "2.2250738585072014e-308"},
		/* rounded from 17 digits: a carry through every 9 (15 digits would be "1", not v), and
		 * a 16th digit of 5 then zeros, where printf decides */
		{0.99999999999999989, "0.9999999999999999"},
		{1e23, "1e+23"},
		{7.6377461897661405, "7.6377461897661405"},
		/* not JSON numbers: never stored, but the output must stay valid JSON */
		{INFINITY, "null"},
		{-INFINITY, "null"},
		{NAN, "null"},
	};
	int failures = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char buf[32];
		memset(buf, 'x', sizeof(buf));
		size_t n = jsonw_format_double(cases[i].v, buf);
		if (strcmp(buf, cases[i].want) != 0 || n != strlen(buf)) {
			print_error("case %zu %.17g: got \"%s\" (n=%zu) want \"%s\"\n", i, cases[i].v, buf,
				    n, cases[i].want);
			failures++;
		}
	}
	assert_int_equal(failures, 0);
}

/* Numbers in exponent form: any JSON spelling of the exponent is fine, but the text must read
 * back as the same double with the fewest significant digits that can. */
static void check_shortest(const double *vals, size_t n, int *failures)
{
	for (size_t i = 0; i < n; i++) {
		char buf[32];
		size_t len = jsonw_format_double(vals[i], buf);
		bool same = strtod(buf, NULL) == vals[i] && len == strlen(buf);
		bool json = json_number_reads_as(buf, vals[i]);
		int want = shortest_digits(vals[i]), got = written_digits(buf);
		if (!same || !json || got != want) {
			print_error("%.17g -> \"%s\": reads back %s, JSON %s, %d significant digits "
				    "where %d suffice\n",
				    vals[i], buf, same ? "ok" : "WRONG", json ? "ok" : "INVALID", got, want);
			(*failures)++;
		}
	}
}

static void test_format_double_shortest(void **state)
{
	(void)state;
	const double vals[] = {
		1e300, -1e300, 1e21, 1e22, 1e16, 1e17, 1.2345678901234568e+17, 1e-7, 0.000001,
		1.5e-10, 2.2250738585072009e-308 /* largest subnormal */, 6.02214076e23,
		1.7976931348623157e308, 0.1 + 0.2, 1e23, 5e-5, -2.5e-9, 123456789.123456789,
	};
	int failures = 0;
	check_shortest(vals, sizeof(vals) / sizeof(vals[0]), &failures);
	assert_int_equal(failures, 0);
}

/* Subnormal doubles have fewer than 15 significant digits of precision: 5e-324 (the smallest
 * double) must come out as "5e-324", not as the 15-digit "4.94065645841247e-324". */
static void test_format_double_subnormal(void **state)
{
	(void)state;
	const struct {
		double v;
		const char *want; /* the shortest text; an exponent spelled e-324 or e-0324 is fine */
	} cases[] = {
		{5e-324, "5e-324"},
		{-5e-324, "-5e-324"},
		{1e-323, "1e-323"},
		{1e-310, "1e-310"},
	};
	int failures = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char buf[32];
		jsonw_format_double(cases[i].v, buf);
		bool same = strtod(buf, NULL) == cases[i].v;
		int want = shortest_digits(cases[i].v), got = written_digits(buf);
		if (!same || got != want || strtod(buf, NULL) != strtod(cases[i].want, NULL)) {
			print_error("%.17g -> \"%s\" (%d digits), want \"%s\" (%d digits)\n", cases[i].v,
				    buf, got, cases[i].want, want);
			failures++;
		}
	}
	assert_int_equal(failures, 0);
}

/* Many doubles across the whole normal range round-trip with the fewest digits. */
static void test_format_double_random_round_trip(void **state)
{
	(void)state;
	uint64_t x = 0x9e3779b97f4a7c15u;
	int failures = 0, checked = 0;
	while (checked < 200000) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		double v;
		memcpy(&v, &x, sizeof(v));
		if (!isnormal(v))
			continue;
		checked++;
		char buf[32];
		size_t n = jsonw_format_double(v, buf);
		if (n != strlen(buf) || n >= 32 || strtod(buf, NULL) != v ||
		    written_digits(buf) != shortest_digits(v)) {
			if (failures++ < 10)
				print_error("%.17g -> \"%s\"\n", v, buf);
		}
	}
	assert_int_equal(failures, 0);
}

/* What jsonw_format_double promises for a double with a fraction, by printf and strtod: the
 * first of %.15g, %.16g and %.17g that reads back as v. */
static void reference_g(double v, char *buf)
{
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(buf, 32, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			return;
	}
}

/* Values a read writes most (means, rates, sums in 1e-5..1e15, where m2pg computes digits in
 * integers rather than with printf) are byte for byte printf's: random mantissas at every
 * exponent of the range, quotients of small integers, and values next to powers of two, of
 * ten and to ties at the 15th and 16th digit. */
static void test_format_double_matches_printf(void **state)
{
	(void)state;
	uint64_t x = 0x2545f4914f6cdd1du;
	int failures = 0, checked = 0;
	for (int i = 0; i < 1500000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		double v;
		switch (i % 6) {
		case 0: { /* any mantissa, exponent of 1e-5..1e15 */
			uint64_t bits = (x & ((UINT64_C(1) << 52) - 1)) | (uint64_t)(1006 + (x >> 52) % 44) << 52;
			memcpy(&v, &bits, sizeof(v));
			break;
		}
		case 1: /* a mean: a sum over a count */
			v = (double)(x % 100000000) / (double)(1 + (x >> 40) % 5000);
			break;
		case 2: /* short decimals and their neighbours */
			v = nextafter((double)(x % 10000000) / 1000.0, (x >> 63) ? 1e300 : -1e300);
			break;
		case 3: { /* powers of two and their neighbours */
			v = ldexp(1.0, (int)((x >> 8) % 66) - 16);
			int steps = (int)(x % 5) - 2;
			for (; steps > 0; steps--)
				v = nextafter(v, 1e300);
			for (; steps < 0; steps++)
				v = nextafter(v, 0);
			break;
		}
		case 4: { /* 15 or 16 digits then a 5: ties, or next to them, at the rounding digit */
			double base = (double)(x % 1000000000000000u) * 10.0 + 5.0;
			v = base * pow(10.0, -(double)(1 + (x >> 50) % 19));
			break;
		}
		default: /* next to powers of ten */
			v = nextafter(pow(10.0, (double)((int)((x >> 20) % 20) - 5)), (x & 1) ? 1e300 : 0);
			break;
		}
		if (x & 0x100)
			v = -v;
		if (!isfinite(v) || v == 0 || v == (double)(int64_t)v)
			continue;
		checked++;
		char got[32], want[32];
		jsonw_format_double(v, got);
		reference_g(v, want);
		/* a short decimal comes out shorter than %.15g's zeros allow: compare values then */
		bool same = strcmp(got, want) == 0 || (strlen(got) < strlen(want) && strtod(got, NULL) == v);
		if (!same && failures++ < 10)
			print_error("%a: \"%s\", printf \"%s\"\n", v, got, want);
	}
	assert_int_equal(failures, 0);
	assert_true(checked > 1000000);
}

/* jsonw_double appends to what the buffer holds, -0 included as a JSON number equal to 0. */
static void test_double_appends(void **state)
{
	(void)state;
	Buf b = {0};
	buf_adds(&b, "[");
	const double vals[] = {1, 3.14, -0.0, 1e21, 0.1 + 0.2};
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		if (i)
			buf_adds(&b, ",");
		jsonw_double(&b, vals[i]);
	}
	buf_adds(&b, "]");
	json_error_t err;
	json_t *a = json_loads(b.p, 0, &err);
	assert_non_null(a);
	assert_int_equal(json_array_size(a), sizeof(vals) / sizeof(vals[0]));
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++)
		assert_true(json_number_value(json_array_get(a, i)) == vals[i]);
	assert_string_equal(b.p, "[1,3.14,0,1e+21,0.30000000000000004]");
	json_decref(a);
	buf_free(&b);
}

/* ---- jsonw_string ---- */

static void test_string_exact(void **state)
{
	(void)state;
	const struct {
		const char *in;
		size_t len;
		const char *want;
	} cases[] = {
		{"", 0, "\"\""},
		{"abc", 3, "\"abc\""},
		{"requests.count", 14, "\"requests.count\""},
		{"a\"b", 3, "\"a\\\"b\""},
		{"a\\b", 3, "\"a\\\\b\""},
		{"\"\\\"", 3, "\"\\\"\\\\\\\"\""},
		{"C:\\path\\", 8, "\"C:\\\\path\\\\\""},
		{"/slash/", 7, "\"/slash/\""},
		{"caf\xc3\xa9", 5, "\"caf\xc3\xa9\""},                  /* é kept as bytes */
		{"\xe6\x97\xa5\xe6\x9c\xac", 6, "\"\xe6\x97\xa5\xe6\x9c\xac\""}, /* 日本 */
		{"\xf0\x9f\x98\x80", 4, "\"\xf0\x9f\x98\x80\""},          /* U+1F600 */
		{"\xe2\x80\xa8", 3, "\"\xe2\x80\xa8\""},                /* U+2028 */
		{"abcdef", 3, "\"abc\""},                               /* len bytes only */
	};
	int failures = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		Buf b = {0};
		jsonw_string(&b, cases[i].in, cases[i].len);
		if (strcmp(b.p, cases[i].want) != 0 || b.len != strlen(cases[i].want)) {
			print_error("case %zu: got [%s] want [%s]\n", i, b.p, cases[i].want);
			failures++;
		}
		buf_free(&b);
	}
	assert_int_equal(failures, 0);
}

/* Every control character comes out escaped (no raw byte below 0x20) and reads back as itself. */
static void test_string_controls(void **state)
{
	(void)state;
	int failures = 0;
	for (int c = 0; c < 0x20; c++) {
		const char in[3] = {'a', (char)c, 'z'};
		Buf b = {0};
		jsonw_string(&b, in, 3);
		for (size_t k = 0; k < b.len; k++) {
			if ((unsigned char)b.p[k] < 0x20) {
				print_error("0x%02x written raw: [%s]\n", c, b.p);
				failures++;
			}
		}
		json_error_t err;
		json_t *j = json_loads(b.p, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
		if (!j || !json_is_string(j) || json_string_length(j) != 3 ||
		    memcmp(json_string_value(j), in, 3) != 0) {
			print_error("0x%02x does not read back: [%s]\n", c, b.p);
			failures++;
		}
		json_decref(j);
		buf_free(&b);
	}
	assert_int_equal(failures, 0);
}

/* Whatever valid UTF-8 goes in reads back byte for byte, however long. */
static void test_string_round_trip(void **state)
{
	(void)state;
	static char big[20000];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = "ab\"\\\n\x01\x7f"[i % 7];
#define S(lit) {lit, sizeof(lit) - 1}
	const struct {
		const char *in;
		size_t len;
	} cases[] = {
		S("plain"),
		S("tab\there"),
		S("del\x7f"),
		S("mix \"q\" \\ \r\n \xc3\xa9 \xf0\x9f\x98\x80 \x1f"),
		S("nul \0 inside"),
		{big, sizeof(big)},
	};
#undef S
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		Buf b = {0};
		buf_adds(&b, "prefix ");
		jsonw_string(&b, cases[i].in, cases[i].len);
		assert_memory_equal(b.p, "prefix ", 7);
		assert_int_equal(strlen(b.p), b.len);
		json_error_t err;
		json_t *j = json_loads(b.p + 7, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
		assert_non_null(j);
		assert_true(json_is_string(j));
		assert_int_equal(json_string_length(j), cases[i].len);
		assert_memory_equal(json_string_value(j), cases[i].in, cases[i].len);
		json_decref(j);
		buf_free(&b);
	}
}

/* ---- jsonw_error ---- */

static void test_error_shape(void **state)
{
	(void)state;
	const struct {
		const char *msg, *field;
		long index;
		const char *want;
	} cases[] = {
		{"name is required", NULL, -1, "{\"error\": \"name is required\"}\n"},
		{"name is required", "name", -1,
		 "{\"error\": \"name is required\", \"field\": \"name\"}\n"},
		{"the batch is empty", NULL, 3, "{\"error\": \"the batch is empty\", \"index\": 3}\n"},
		{"count must not be negative", "count", 0,
		 "{\"error\": \"count must not be negative\", \"field\": \"count\", \"index\": 0}\n"},
		{"x", "bucket", 9999, "{\"error\": \"x\", \"field\": \"bucket\", \"index\": 9999}\n"},
		{"bucket must be 'YYYY' \"quoted\"", NULL, -1,
		 "{\"error\": \"bucket must be 'YYYY' \\\"quoted\\\"\"}\n"},
	};
	int failures = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		Buf b = {0};
		jsonw_error(&b, cases[i].msg, cases[i].field, cases[i].index);
		if (strcmp(b.p, cases[i].want) != 0) {
			print_error("case %zu: got [%s] want [%s]\n", i, b.p, cases[i].want);
			failures++;
		}
		/* and as JSON: exactly the keys given, with their values */
		json_error_t err;
		json_t *o = json_loads(b.p, 0, &err);
		assert_non_null(o);
		size_t keys = 1 + (cases[i].field != NULL) + (cases[i].index >= 0);
		assert_int_equal(json_object_size(o), keys);
		assert_string_equal(json_string_value(json_object_get(o, "error")), cases[i].msg);
		if (cases[i].field)
			assert_string_equal(json_string_value(json_object_get(o, "field")),
					    cases[i].field);
		else
			assert_null(json_object_get(o, "field"));
		if (cases[i].index >= 0)
			assert_int_equal(json_integer_value(json_object_get(o, "index")),
					 cases[i].index);
		else
			assert_null(json_object_get(o, "index"));
		json_decref(o);
		buf_free(&b);
	}
	assert_int_equal(failures, 0);
}

/* Integers as printf writes them: every digit count, both signs, the extremes. */
static void test_format_int(void **state)
{
	(void)state;
	int64_t vs[200];
	size_t n = 0;
	vs[n++] = 0;
	vs[n++] = INT64_MAX;
	vs[n++] = INT64_MIN;
	vs[n++] = INT64_MIN + 1;
	for (int64_t p = 1; p <= INT64_MAX / 10; p *= 10) {
		int64_t near[] = {p - 1, p, p + 1, p * 5, -p, -(p - 1), -(p + 1)};
		for (size_t k = 0; k < sizeof(near) / sizeof(near[0]); k++)
			vs[n++] = near[k];
	}
	uint64_t x = 88172645463325252ull; /* xorshift: values of every length */
	while (n < sizeof(vs) / sizeof(vs[0])) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		vs[n++] = (int64_t)(x >> (x % 64));
	}
	for (size_t i = 0; i < n; i++) {
		char want[32], got[32];
		snprintf(want, sizeof(want), "%lld", (long long)vs[i]);
		memset(got, 'x', sizeof(got));
		size_t len = jsonw_format_int(vs[i], got);
		assert_string_equal(got, want);
		assert_int_equal(len, strlen(want));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_int),
		cmocka_unit_test(test_format_double_exact),
		cmocka_unit_test(test_format_double_shortest),
		cmocka_unit_test(test_format_double_subnormal),
		cmocka_unit_test(test_format_double_random_round_trip),
		cmocka_unit_test(test_format_double_matches_printf),
		cmocka_unit_test(test_double_appends),
		cmocka_unit_test(test_string_exact),
		cmocka_unit_test(test_string_controls),
		cmocka_unit_test(test_string_round_trip),
		cmocka_unit_test(test_error_shape),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
