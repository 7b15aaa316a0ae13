/* Unit tests of pgarr's reader of flagged values: a read takes each rollup part's values from
 * them, so values that are short, long or carry a flag that is neither 0 nor 1 must be
 * refused, never read past. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "pgarr.h"

/* n values, each given as NULL (-1) or a width (widths[k]) of fill bytes. */
static size_t make_flagged(char *out, int n, const int32_t *lens, char fill)
{
	Buf b = {0};
	for (int k = 0; k < n; k++) {
		buf_addc(&b, lens[k] < 0 ? 0 : 1);
		for (int32_t i = 0; i < lens[k]; i++)
			buf_addc(&b, (char)(fill + k));
	}
	memcpy(out, b.p, b.len);
	size_t len = b.len;
	buf_free(&b);
	return len;
}

static void test_flagged_values_and_nulls(void **state)
{
	(void)state;
	char in[256];
	static const uint8_t widths[4] = {8, 8, 16, 8};
	int32_t want[4] = {8, -1, 16, -1};
	size_t len = make_flagged(in, 4, want, 'a');
	const char *vals[4];
	int32_t lens[4];
	assert_true(pgarr_flagged(in, len, 4, widths, vals, lens));
	assert_int_equal(lens[0], 8);
	assert_int_equal(lens[1], -1);
	assert_int_equal(lens[2], 16);
	assert_int_equal(lens[3], -1);
	assert_memory_equal(vals[0], "aaaaaaaa", 8);
	assert_memory_equal(vals[2], "cccccccccccccccc", 16);
	assert_ptr_equal(vals[2] + 16, in + len - 1); /* the last value's flag follows */
}

static void test_flagged_refused_when_malformed(void **state)
{
	(void)state;
	char in[256];
	static const uint8_t widths[3] = {8, 8, 8};
	int32_t want[3] = {8, 8, 8};
	size_t len = make_flagged(in, 3, want, 'a');
	const char *vals[4];
	int32_t lens[4];
	assert_false(pgarr_flagged(in, len, 2, widths, vals, lens)); /* fewer values than sent */
	static const uint8_t widths4[4] = {8, 8, 8, 8};
	assert_false(pgarr_flagged(in, len, 4, widths4, vals, lens)); /* more */
	for (size_t cut = 0; cut < len; cut++) /* every truncation */
		assert_false(pgarr_flagged(in, cut, 3, widths, vals, lens));
	assert_false(pgarr_flagged(in, len + 1, 3, widths, vals, lens)); /* a byte after the last value */
	char bad[256];
	memcpy(bad, in, len);
	bad[9] = 2; /* the second value's flag: neither NULL nor a value */
	assert_false(pgarr_flagged(bad, len, 3, widths, vals, lens));
	bad[9] = 0; /* NULL: its 8 bytes are then read as the next flag, which is none */
	assert_false(pgarr_flagged(bad, len, 3, widths, vals, lens));
	assert_true(pgarr_flagged(in, len, 3, widths, vals, lens));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flagged_values_and_nulls),
		cmocka_unit_test(test_flagged_refused_when_malformed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
