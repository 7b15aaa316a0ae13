/* Unit tests of uuid: version 7 ids (RFC 9562), their text form, and their order. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "uuid.h"

/* The generator keeps per-thread state (the last millisecond used), so every test takes its
 * own range of milliseconds, later than any used before. */
static int64_t fresh_ms(void)
{
	static int64_t next = INT64_C(1700000000000); /* 2023-11-14 */
	next += 1000000000; /* about 11 days */
	return next;
}

static int64_t ms_of(const Uuid *u)
{
	int64_t ms = 0;
	for (int i = 0; i < 6; i++)
		ms = ms << 8 | u->b[i];
	return ms;
}

static void test_v7_layout(void **state)
{
	(void)state;
	const int64_t offsets[] = {0, 1, 2, 1000, 86400000};
	const int64_t base = fresh_ms();
	for (size_t i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++) {
		for (int k = 0; k < 100; k++) {
			Uuid u;
			uuid_v7(&u, base + offsets[i]);
			assert_int_equal(u.b[6] >> 4, 7);       /* version */
			assert_int_equal(u.b[8] >> 6, 2);       /* variant 10xx */
			if (k == 0)                             /* first of its millisecond */
				assert_int_equal(ms_of(&u), base + offsets[i]);
			char s[UUID_STR_LEN + 1];
			uuid_format(&u, s);
			assert_int_equal(s[14], '7');
			assert_non_null(strchr("89ab", s[19]));
		}
	}
}

/* The 48-bit timestamp is the big-endian Unix millisecond count. */
static void test_v7_timestamp_bytes(void **state)
{
	(void)state;
	const int64_t base = fresh_ms();
	const struct {
		int64_t ms;
	} cases[] = {{base}, {base + 255}, {base + 256}, {base + 65536}, {base + 16777216}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		Uuid u;
		uuid_v7(&u, cases[i].ms);
		assert_int_equal(ms_of(&u), cases[i].ms);
		char s[UUID_STR_LEN + 1], want[13];
		uuid_format(&u, s);
		snprintf(want, sizeof(want), "%012llx", (unsigned long long)cases[i].ms);
		assert_memory_equal(s, want, 8);
		assert_memory_equal(s + 9, want + 8, 4);
	}
}

static void test_format_known(void **state)
{
	(void)state;
	const struct {
		uint8_t b[16];
		const char *s;
	} cases[] = {
		{{0}, "00000000-0000-0000-0000-000000000000"},
		{{0x01, 0x89, 0x0a, 0x5d, 0xac, 0x96, 0x77, 0x4b, 0xbc, 0xce, 0xb3, 0x02, 0x09, 0x9a, 0x80,
		  0x57},
		 "01890a5d-ac96-774b-bcce-b302099a8057"},
		{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		  0xff},
		 "ffffffff-ffff-ffff-ffff-ffffffffffff"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		Uuid u, back;
		memcpy(u.b, cases[i].b, 16);
		char s[UUID_STR_LEN + 1];
		memset(s, 'x', sizeof(s));
		uuid_format(&u, s);
		assert_string_equal(s, cases[i].s);
		assert_true(uuid_parse(cases[i].s, strlen(cases[i].s), &back));
		assert_memory_equal(back.b, cases[i].b, 16);
	}
}

static void test_parse_accepts(void **state)
{
	(void)state;
	static const uint8_t want[16] = {0x01, 0x89, 0x0a, 0x5d, 0xac, 0x96, 0x77, 0x4b,
					 0xbc, 0xce, 0xb3, 0x02, 0x09, 0x9a, 0x80, 0x57};
	const struct {
		const char *s;
		size_t len; /* 0: strlen */
	} cases[] = {
		{"01890a5d-ac96-774b-bcce-b302099a8057", 0},
		{"01890A5D-AC96-774B-BCCE-B302099A8057", 0}, /* upper case */
		{"01890a5D-Ac96-774b-BCCE-b302099a8057", 0}, /* mixed */
		{"01890a5d-ac96-774b-bcce-b302099a8057 and more", 36}, /* only len bytes count */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		Uuid u;
		size_t len = cases[i].len ? cases[i].len : strlen(cases[i].s);
		assert_true(uuid_parse(cases[i].s, len, &u));
		assert_memory_equal(u.b, want, 16);
	}
}

static void test_parse_rejects(void **state)
{
	(void)state;
	const struct {
		const char *s;
		size_t len; /* 0: strlen */
		const char *why;
	} cases[] = {
		{"", 0, "empty"},
		{"01890a5d-ac96-774b-bcce-b302099a805", 0, "35 chars"},
		{"01890a5d-ac96-774b-bcce-b302099a80577", 0, "37 chars"},
		{"01890a5d-ac96-774b-bcce-b302099a8057", 35, "len short of the text"},
		{"01890a5dac96774bbccb302099a8057", 0, "no dashes, 31"},
		{"01890a5dac96774bbcceb302099a8057", 0, "no dashes, 32"},
		{"{01890a5d-ac96-774b-bcce-b302099a8057}", 0, "braces"},
		{"urn:uuid:01890a5d-ac96-774b-bcce-b302099a8057", 0, "urn"},
		{"01890a5g-ac96-774b-bcce-b302099a8057", 0, "g"},
		{"01890a5d-ac96-774b-bcce-b302099a805z", 0, "z at the end"},
		{"x1890a5d-ac96-774b-bcce-b302099a8057", 0, "x at the start"},
		{"01890a5d-ac96-774b-bcce-b302099a 057", 0, "space"},
		{"01890a5d-ac96-774b-bcce-b302099a+057", 0, "plus"},
		{"0189-0a5dac96-774b-bcce-b302099a8057", 0, "dash at 4"},
		{"01890a5-dac96-774b-bcce-b302099a8057", 0, "dash at 7"},
		{"01890a5da-c96-774b-bcce-b302099a8057", 0, "dash at 9"},
		{"01890a5d-ac96774b--bcce-b302099a8057", 0, "dashes at 17, 18"},
		{"01890a5d-ac96-774b-bcceb-302099a8057", 0, "dash at 24"},
		{"01890a5dxac96-774b-bcce-b302099a8057", 0, "x for a dash"},
		{"01890a5d-ac96-774b-bcce-b302099a8057\n", 0, "newline"},
		{"------------------------------------", 0, "all dashes"},
		{"01890a5d-ac96-774b-bcce-b302099a80\xc3\xa9", 0, "UTF-8"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		Uuid u;
		size_t len = cases[i].len ? cases[i].len : strlen(cases[i].s);
		bool ok = uuid_parse(cases[i].s, len, &u);
		if (ok)
			print_error("case %zu (%s) accepted\n", i, cases[i].why);
		assert_false(ok);
	}
}

static void test_format_parse_round_trip(void **state)
{
	(void)state;
	int64_t ms = fresh_ms();
	for (int i = 0; i < 1000; i++) {
		Uuid u, back;
		uuid_v7(&u, ms + i / 10);
		char s[UUID_STR_LEN + 1];
		uuid_format(&u, s);
		assert_int_equal(strlen(s), UUID_STR_LEN);
		for (size_t k = 0; k < UUID_STR_LEN; k++) {
			if (k == 8 || k == 13 || k == 18 || k == 23)
				assert_int_equal(s[k], '-');
			else
				assert_non_null(strchr("0123456789abcdef", s[k]));
		}
		memset(&back, 0, sizeof(back));
		assert_true(uuid_parse(s, UUID_STR_LEN, &back));
		assert_int_equal(uuid_cmp(&u, &back), 0);
	}
}

/* Ids made in one millisecond are strictly increasing, byte for byte, however many there are. */
static void test_same_ms_strictly_increasing(void **state)
{
	(void)state;
	static Uuid ids[20000];
	const size_t counts[] = {2, 100, 10000, 20000};
	for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
		const int64_t ms = fresh_ms();
		for (size_t i = 0; i < counts[c]; i++)
			uuid_v7(&ids[i], ms);
		for (size_t i = 1; i < counts[c]; i++) {
			if (memcmp(ids[i - 1].b, ids[i].b, 16) >= 0)
				print_error("count %zu: id %zu does not sort after id %zu\n", counts[c], i,
					    i - 1);
			assert_true(memcmp(ids[i - 1].b, ids[i].b, 16) < 0);
			assert_true(uuid_cmp(&ids[i - 1], &ids[i]) < 0);
			assert_int_equal(ids[i].b[6] >> 4, 7);
			assert_int_equal(ids[i].b[8] >> 6, 2);
		}
		/* they still carry (about) the millisecond they were made in */
		assert_int_equal(ms_of(&ids[0]), ms);
		assert_true(ms_of(&ids[counts[c] - 1]) - ms < 10);
	}
}

/* An id made in a later millisecond sorts after every id of an earlier one. */
static void test_later_ms_sorts_after(void **state)
{
	(void)state;
	const int64_t base = fresh_ms();
	const struct {
		int64_t first_ms, second_ms;
		int first_n; /* ids made at first_ms before the one compared */
	} cases[] = {
		{base, base + 1, 1},
		{base + 10, base + 11, 3000},
		{base + 100, base + 1000, 1},
		{base + 2000, base + 2000 + 86400000, 50},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		Uuid a, b;
		for (int k = 0; k < cases[i].first_n; k++)
			uuid_v7(&a, cases[i].first_ms);
		uuid_v7(&b, cases[i].second_ms);
		assert_true(memcmp(a.b, b.b, 16) < 0);
		assert_true(uuid_cmp(&a, &b) < 0);
		assert_true(uuid_cmp(&b, &a) > 0);
		assert_int_equal(ms_of(&b), cases[i].second_ms);
	}
}

/* A clock stepping back never makes an id sort before one already made. */
static void test_clock_step_back_stays_ordered(void **state)
{
	(void)state;
	const int64_t base = fresh_ms();
	const int64_t steps[] = {base + 500, base + 100, base, base + 499, base + 500, base + 501};
	Uuid prev;
	uuid_v7(&prev, steps[0]);
	for (size_t i = 1; i < sizeof(steps) / sizeof(steps[0]); i++) {
		Uuid u;
		uuid_v7(&u, steps[i]);
		assert_true(uuid_cmp(&prev, &u) < 0);
		prev = u;
	}
}

static void test_cmp(void **state)
{
	(void)state;
	const struct {
		const char *a, *b;
		int sign;
	} cases[] = {
		{"01890a5d-ac96-774b-bcce-b302099a8057", "01890a5d-ac96-774b-bcce-b302099a8057", 0},
		{"01890a5d-ac96-774b-bcce-b302099a8057", "01890a5d-ac96-774b-bcce-b302099a8058", -1},
		{"ff890a5d-ac96-774b-bcce-b302099a8057", "01890a5d-ac96-774b-bcce-b302099a8057", 1},
		{"00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff", -1},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		Uuid a, b;
		assert_true(uuid_parse(cases[i].a, UUID_STR_LEN, &a));
		assert_true(uuid_parse(cases[i].b, UUID_STR_LEN, &b));
		int c = uuid_cmp(&a, &b);
		assert_int_equal((c > 0) - (c < 0), cases[i].sign);
		c = uuid_cmp(&b, &a);
		assert_int_equal((c > 0) - (c < 0), -cases[i].sign);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v7_layout),
		cmocka_unit_test(test_v7_timestamp_bytes),
		cmocka_unit_test(test_format_known),
		cmocka_unit_test(test_parse_accepts),
		cmocka_unit_test(test_parse_rejects),
		cmocka_unit_test(test_format_parse_round_trip),
		cmocka_unit_test(test_same_ms_strictly_increasing),
		cmocka_unit_test(test_later_ms_sorts_after),
		cmocka_unit_test(test_clock_step_back_stays_ordered),
		cmocka_unit_test(test_cmp),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
