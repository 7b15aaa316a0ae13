/* Unit tests of pgarr's reader of binary records: a read takes each part's values from one, so
 * a record that is short, long or lies about a length must be refused, never read past. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "pgarr.h"

/* A record of n columns, each given as a length (-1: NULL) and that many bytes of fill. */
static size_t make_record(char *out, int n, const int32_t *lens, char fill)
{
	Buf b = {0};
	pgarr_put32(&b, (uint32_t)n);
	for (int k = 0; k < n; k++) {
		pgarr_put32(&b, 701); /* the type's oid: not checked */
		pgarr_put32(&b, (uint32_t)lens[k]);
		for (int32_t i = 0; i < lens[k]; i++)
			buf_addc(&b, (char)(fill + k));
	}
	memcpy(out, b.p, b.len);
	size_t len = b.len;
	buf_free(&b);
	return len;
}

static void test_record_columns_and_nulls(void **state)
{
	(void)state;
	char rec[256];
	int32_t want[4] = {8, -1, 16, 0};
	size_t len = make_record(rec, 4, want, 'a');
	const char *vals[4];
	int32_t lens[4];
	assert_true(pgarr_record(rec, len, 4, vals, lens));
	assert_int_equal(lens[0], 8);
	assert_int_equal(lens[1], -1);
	assert_int_equal(lens[2], 16);
	assert_int_equal(lens[3], 0);
	assert_memory_equal(vals[0], "aaaaaaaa", 8);
	assert_memory_equal(vals[2], "cccccccccccccccc", 16);
	assert_ptr_equal(vals[2] + 16, rec + len - 8); /* the last column's header follows */
}

static void test_record_refused_when_malformed(void **state)
{
	(void)state;
	char rec[256];
	int32_t want[3] = {8, 8, 8};
	size_t len = make_record(rec, 3, want, 'a');
	const char *vals[3];
	int32_t lens[3];
	assert_false(pgarr_record(rec, len, 2, vals, lens)); /* another column count */
	assert_false(pgarr_record(rec, len, 4, vals, lens));
	for (size_t cut = 0; cut < len; cut++) /* every truncation */
		assert_false(pgarr_record(rec, cut, 3, vals, lens));
	assert_false(pgarr_record(rec, len + 1, 3, vals, lens)); /* a byte after the last column */
	char bad[256];
	memcpy(bad, rec, len);
	pgarr_patch32(&(Buf){.p = bad, .len = len, .cap = len}, 8, 0x7fffffff); /* a length past the end */
	assert_false(pgarr_record(bad, len, 3, vals, lens));
	memcpy(bad, rec, len);
	pgarr_patch32(&(Buf){.p = bad, .len = len, .cap = len}, 8, (uint32_t)-2); /* below -1 */
	assert_false(pgarr_record(bad, len, 3, vals, lens));
	assert_true(pgarr_record(rec, len, 3, vals, lens));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record_columns_and_nulls),
		cmocka_unit_test(test_record_refused_when_malformed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
