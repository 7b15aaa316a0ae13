/* Unit tests of uuid: version 7 ids (RFC 9562), their text form, their order, and name-based
 * version 8 ids. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
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

/* ---- name-based ids (version 8) ---- */

static void named_str(const char *name, size_t name_len, const char *source, int64_t ms,
		      char out[UUID_STR_LEN + 1])
{
	Uuid u;
	uuid_named(&u, name, name_len, source, source ? strlen(source) : 0, ms);
	uuid_format(&u, out);
}

/* Known ids, worked out apart from uuid.c (Python's hashlib over the same bytes: the prefix
 * "m2pg-named-id-v1", name, NUL, source or \x01 when none, NUL, unix_ms as 8 bytes big-endian).
 * The name lengths put the hashed message at SHA-1's padding edges (55, 56, 63, 64, 119, 120,
 * 128 bytes) and past four blocks. A change here changes the id of every stored measurement,
 * so a client's retry across an upgrade would be stored twice. */
static void test_named_known(void **state)
{
	(void)state;
	const struct {
		char fill; /* 0: name is given */
		size_t fill_len;
		const char *name, *source;
		int64_t ms;
		const char *want;
	} cases[] = {
		{0, 0, "web.hits", "web.1", INT64_C(1796220544000), "01a23716-6400-8460-8796-859968211e14"},
		{0, 0, "web.hits", NULL, INT64_C(1796220544000), "01a23716-6400-8bcc-a54a-bea29850221e"},
		{0, 0, "a", "", 0, "00000000-0000-8d7a-ae0f-1759310d39c0"},
		{'n', 28, NULL, NULL, INT64_C(1355202720000), "013b8860-7100-8406-98ef-eebc8b973a2a"},
		{'n', 29, NULL, NULL, INT64_C(1355202720000), "013b8860-7100-8990-9157-0cfe44f30803"},
		{'n', 36, NULL, NULL, INT64_C(1355202720000), "013b8860-7100-81e4-89e3-1f05b8bfdf34"},
		{'n', 37, NULL, NULL, INT64_C(1355202720000), "013b8860-7100-8161-8bf6-d763fb2a7d90"},
		{'n', 92, NULL, NULL, INT64_C(1355202720000), "013b8860-7100-8882-9d08-26c15ef5950a"},
		{'n', 93, NULL, NULL, INT64_C(1355202720000), "013b8860-7100-868c-8f93-d3a4098f42c1"},
		{'n', 101, NULL, NULL, INT64_C(1355202720000), "013b8860-7100-8b59-ac1b-2f5398de429c"},
		{'n', 255, NULL, NULL, INT64_C(1355202720000), "013b8860-7100-81e3-b727-5e683a416e37"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char name[256], got[UUID_STR_LEN + 1];
		size_t len = cases[i].fill_len;
		if (cases[i].fill)
			memset(name, cases[i].fill, len);
		else
			memcpy(name, cases[i].name, len = strlen(cases[i].name));
		named_str(name, len, cases[i].source, cases[i].ms, got);
		if (strcmp(got, cases[i].want) != 0)
			print_error("case %zu\n", i);
		assert_string_equal(got, cases[i].want);
	}
	/* Longest name and source, latest millisecond allowed. */
	char name[255], source[256], got[UUID_STR_LEN + 1];
	memset(name, 'x', sizeof(name));
	memset(source, 's', 255);
	source[255] = '\0';
	named_str(name, sizeof(name), source, INT64_C(253402300799000), got);
	assert_string_equal(got, "e677d21f-d818-8b49-8cb5-64a1a2d10f51");
}

/* Only the bytes [name, name + len) count, not what follows them. */
static void test_named_uses_lengths(void **state)
{
	(void)state;
	Uuid a, b;
	uuid_named(&a, "web.hits.more", 8, "web.1 and more", 5, INT64_C(1796220544000));
	uuid_named(&b, "web.hits", 8, "web.1", 5, INT64_C(1796220544000));
	assert_int_equal(uuid_cmp(&a, &b), 0);
}

static void test_named_layout(void **state)
{
	(void)state;
	const int64_t times[] = {0, 1, 255, 256, INT64_C(1355202720000), INT64_C(1796220544123),
				 INT64_C(253402300799999)};
	for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
		Uuid u, again;
		uuid_named(&u, "web.latency", 11, "web.1", 5, times[i]);
		assert_int_equal(ms_of(&u), times[i]);
		assert_int_equal(u.b[6] >> 4, 8); /* version */
		assert_int_equal(u.b[8] >> 6, 2); /* variant 10xx */
		uuid_named(&again, "web.latency", 11, "web.1", 5, times[i]);
		assert_int_equal(uuid_cmp(&u, &again), 0);
		char s[UUID_STR_LEN + 1];
		uuid_format(&u, s);
		assert_int_equal(s[14], '8');
	}
}

/* Any difference in name, source or millisecond gives another id. */
static void test_named_distinct(void **state)
{
	(void)state;
	const struct {
		const char *name, *source;
		int64_t ms;
	} cases[] = {
		{"web.hits", "web.1", INT64_C(1796220544000)},
		{"web.hits", "web.2", INT64_C(1796220544000)},
		{"web.hits", NULL, INT64_C(1796220544000)},
		{"web.hits", "", INT64_C(1796220544000)},
		{"web.hit", "web.1", INT64_C(1796220544000)},
		{"web.hitsweb.1", NULL, INT64_C(1796220544000)},
		{"web.hits", "web.1", INT64_C(1796220544001)},
		{"web.hits", "web.1", INT64_C(1796220545000)},
		{"web.1", "web.hits", INT64_C(1796220544000)},
	};
	const size_t n = sizeof(cases) / sizeof(cases[0]);
	Uuid ids[sizeof(cases) / sizeof(cases[0])];
	for (size_t i = 0; i < n; i++)
		uuid_named(&ids[i], cases[i].name, strlen(cases[i].name), cases[i].source,
			   cases[i].source ? strlen(cases[i].source) : 0, cases[i].ms);
	for (size_t i = 0; i < n; i++)
		for (size_t k = i + 1; k < n; k++) {
			if (uuid_cmp(&ids[i], &ids[k]) == 0)
				print_error("cases %zu and %zu give the same id\n", i, k);
			assert_int_not_equal(uuid_cmp(&ids[i], &ids[k]), 0);
		}
}

static int cmp_ids(const void *a, const void *b)
{
	return uuid_cmp(a, b);
}

/* Over many names the hashed bits look random: no two of 20,000 ids in one millisecond meet,
 * and each of the 74 bits is set in about half of them. */
static void test_named_spread(void **state)
{
	(void)state;
	enum { N = 20000 };
	Uuid *ids = calloc(N, sizeof(Uuid));
	assert_non_null(ids);
	unsigned ones[128] = {0};
	for (int i = 0; i < N; i++) {
		char name[32];
		int len = snprintf(name, sizeof(name), "metric.%d", i);
		uuid_named(&ids[i], name, (size_t)len, "host", 4, INT64_C(1796220544000));
		for (int bit = 0; bit < 128; bit++)
			ones[bit] += (ids[i].b[bit / 8] >> (7 - bit % 8)) & 1;
	}
	qsort(ids, N, sizeof(Uuid), cmp_ids);
	for (int i = 1; i < N; i++)
		assert_int_not_equal(uuid_cmp(&ids[i - 1], &ids[i]), 0);
	for (int bit = 52; bit < 128; bit++) {
		if (bit == 64 || bit == 65) /* the variant */
			continue;
		assert_in_range(ones[bit], N / 2 - N / 20, N / 2 + N / 20);
	}
	free(ids);
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
		cmocka_unit_test(test_named_known),
		cmocka_unit_test(test_named_uses_lengths),
		cmocka_unit_test(test_named_layout),
		cmocka_unit_test(test_named_distinct),
		cmocka_unit_test(test_named_spread),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
