/* Unit tests of metric: what a POST body may hold, what is stored from it, and the status, field
 * and index of the error a client gets back when it is refused. Bodies are written with single
 * quotes for readability; q() turns them into double quotes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metric.h"
#include "tm.h"

#define US INT64_C(1000000)
#define T_2012 (INT64_C(1355202720) * US)      /* 2012-12-11T05:12:00Z */
#define T_RFC (INT64_C(1355203140) * US)       /* 2012-12-11T05:19:00Z */
#define BIT(i) (uint8_t)(1u << (i))

/* One batch and one scratch body per test, released by the teardown even when a test fails. */
static MetricBatch batch;
static char *body;

static int teardown(void **state)
{
	(void)state;
	metric_batch_free(&batch);
	free(body);
	body = NULL;
	return 0;
}

/* The body with every ' turned into ". */
static const char *q(const char *s)
{
	free(body);
	body = strdup(s);
	for (char *p = body; *p; p++)
		if (*p == '\'')
			*p = '"';
	return body;
}

/* "[one,one,...]" with n copies, into body. */
static const char *repeat_array(const char *one, size_t n)
{
	size_t one_len = strlen(one);
	free(body);
	body = malloc(n * (one_len + 1) + 3);
	assert_non_null(body);
	char *p = body;
	*p++ = '[';
	for (size_t k = 0; k < n; k++) {
		if (k)
			*p++ = ',';
		memcpy(p, one, one_len);
		p += one_len;
	}
	*p++ = ']';
	*p = '\0';
	return body;
}

static bool parse(const char *text, MetricError *err)
{
	metric_batch_free(&batch);
	memset(err, 0x55, sizeof(*err));
	return metric_parse_body(text, strlen(text), &batch, err);
}

static void expect_v7(const Uuid *u)
{
	assert_int_equal(u->b[6] >> 4, 7);
	assert_int_equal(u->b[8] >> 6, 2);
}

/* ---- accepted bodies ---- */

static void test_one_object(void **state)
{
	(void)state;
	MetricError err;
	assert_true(parse(q("{'name': 'requests', 'bucket': 1355202720, 'count': 12, 'mean': 3.14}"),
			  &err));
	assert_false(batch.is_array);
	assert_int_equal(batch.n, 1);
	const Metric *m = &batch.m[0];
	assert_string_equal(m->name, "requests");
	assert_int_equal(m->name_len, 8);
	assert_int_equal(m->bucket_us, T_2012);
	assert_int_equal(m->present, BIT(METRIC_COUNT) | BIT(METRIC_MEAN));
	assert_true(m->v[METRIC_COUNT] == 12);
	assert_true(m->v[METRIC_MEAN] == 3.14);
	assert_false(m->has_id);
	expect_v7(&m->id);
}

/* Whitespace around the value (curl's trailing newline) is fine. */
static void test_whitespace_around_body(void **state)
{
	(void)state;
	const char *const bodies[] = {
		" {'name': 'a', 'bucket': 0, 'count': 1}",
		"{'name': 'a', 'bucket': 0, 'count': 1}\n",
		"\r\n\t[{'name': 'a', 'bucket': 0, 'count': 1}]  \n\n",
	};
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		MetricError err;
		assert_true(parse(q(bodies[i]), &err));
		assert_int_equal(batch.n, 1);
		assert_string_equal(batch.m[0].name, "a");
	}
}

static void test_array_in_order(void **state)
{
	(void)state;
	const struct {
		const char *body;
		size_t n;
		const char *names[4];
		double counts[4];
	} cases[] = {
		{"[{'name': 'a', 'bucket': 0, 'count': 1}]", 1, {"a"}, {1}},
		{"[{'name': 'c', 'bucket': 0, 'count': 3}, {'name': 'a', 'bucket': 0, 'count': 1},"
		 " {'name': 'b', 'bucket': 0, 'count': 2}]",
		 3, {"c", "a", "b"}, {3, 1, 2}},
		{"[{'name': 'same', 'bucket': 0, 'count': 1}, {'name': 'same', 'bucket': 0, 'count': 1},"
		 " {'name': 'x\\u00e9', 'bucket': 60, 'count': 7}, {'name': 'same', 'bucket': 0, 'count': 0}]",
		 4, {"same", "same", "x\xc3\xa9", "same"}, {1, 1, 7, 0}},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		MetricError err;
		assert_true(parse(q(cases[i].body), &err));
		assert_true(batch.is_array);
		assert_int_equal(batch.n, cases[i].n);
		for (size_t k = 0; k < cases[i].n; k++) {
			assert_string_equal(batch.m[k].name, cases[i].names[k]);
			assert_int_equal(batch.m[k].name_len, strlen(cases[i].names[k]));
			assert_true(batch.m[k].v[METRIC_COUNT] == cases[i].counts[k]);
			expect_v7(&batch.m[k].id);
		}
	}
}

static void test_bucket_forms(void **state)
{
	(void)state;
	const struct {
		const char *bucket; /* JSON text of the value */
		int64_t want;
	} cases[] = {
		{"1355202720", T_2012},
		{"1355202720.5", T_2012 + 500000},
		{"1.35520272e9", T_2012},
		{"0", 0},
		{"'1355202720'", T_2012},
		{"'1355202720.5'", T_2012 + 500000},
		{"'2012-12-11T05:19:00Z'", T_RFC},
		{"'2012-12-11t05:19:00z'", T_RFC},
		{"'2012-12-11T05:19:00.25Z'", T_RFC + 250000},
		{"'2012-12-11T06:19:00+01:00'", T_RFC},
		{"'2012-12-10T23:49:00-05:30'", T_RFC},
		{"'2012-12-11 05:19:00 UTC'", T_RFC},
		{"'2012-12-11 06:19:00 +0100'", T_RFC},
		{"'2012-02-29T00:00:00Z'", INT64_C(1330473600) * US},
		{"'9999-12-31T23:59:59Z'", INT64_C(253402300799) * US},
		{"253402300799", INT64_C(253402300799) * US},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[200];
		snprintf(text, sizeof(text), "{'name': 'a', 'bucket': %s, 'count': 1}", cases[i].bucket);
		MetricError err;
		bool ok = parse(q(text), &err);
		if (!ok)
			print_error("bucket %s refused: %d %s\n", cases[i].bucket, err.status, err.msg);
		assert_true(ok);
		assert_int_equal(batch.m[0].bucket_us, cases[i].want);
	}
}

static void test_client_id_kept(void **state)
{
	(void)state;
	static const uint8_t want[16] = {0x01, 0x89, 0x0a, 0x5d, 0xac, 0x96, 0x77, 0x4b,
					 0xbc, 0xce, 0xb3, 0x02, 0x09, 0x9a, 0x80, 0x57};
	const char *const ids[] = {
		"'01890a5d-ac96-774b-bcce-b302099a8057'",
		"'01890A5D-AC96-774B-BCCE-B302099A8057'",
	};
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		char text[200];
		snprintf(text, sizeof(text), "{'id': %s, 'name': 'a', 'bucket': 0, 'count': 1}", ids[i]);
		MetricError err;
		assert_true(parse(q(text), &err));
		assert_true(batch.m[0].has_id);
		assert_memory_equal(batch.m[0].id.b, want, 16);
	}
	/* a null id is no id: one is made */
	MetricError err;
	assert_true(parse(q("{'id': null, 'name': 'a', 'bucket': 0, 'count': 1}"), &err));
	assert_false(batch.m[0].has_id);
	expect_v7(&batch.m[0].id);
	/* in a batch, only the metrics that bring an id keep theirs */
	assert_true(parse(q("[{'name': 'a', 'bucket': 0, 'count': 1},"
			    " {'id': '01890a5d-ac96-774b-bcce-b302099a8057', 'name': 'b', 'bucket': 0, 'count': 1}]"),
			  &err));
	assert_false(batch.m[0].has_id);
	assert_true(batch.m[1].has_id);
	assert_memory_equal(batch.m[1].id.b, want, 16);
}

/* Absent and null statistics are not present; given ones are stored as sent. */
static void test_stats_present(void **state)
{
	(void)state;
	const struct {
		const char *stats;
		uint8_t present;
		double v[METRIC_NSTATS];
	} cases[] = {
		{"'count': 1", BIT(METRIC_COUNT), {1}},
		{"'count': null, 'mean': 2.5", BIT(METRIC_MEAN), {0, 2.5}},
		{"'last': -7", BIT(METRIC_LAST), {[METRIC_LAST] = -7}},
		{"'min': 0, 'max': 0", BIT(METRIC_MIN) | BIT(METRIC_MAX), {0}},
		{"'count': 0", BIT(METRIC_COUNT), {0}},
		{"'count': 3, 'mean': null, 'median': null, 'min': null, 'max': null, 'perc95': null, "
		 "'perc99': null, 'last': null",
		 BIT(METRIC_COUNT), {3}},
		{"'count': 10, 'mean': 1.5, 'median': 1.25, 'min': -1e100, 'max': 1e100, 'perc95': 9.5, "
		 "'perc99': 9.9, 'last': 5e-300",
		 0xff, {10, 1.5, 1.25, -1e100, 1e100, 9.5, 9.9, 5e-300}},
		{"'perc95': 95, 'perc99': 99", BIT(METRIC_PERC95) | BIT(METRIC_PERC99),
		 {[METRIC_PERC95] = 95, [METRIC_PERC99] = 99}},
		{"'count': 4.5, 'median': -0.001", BIT(METRIC_COUNT) | BIT(METRIC_MEDIAN), {4.5, 0, -0.001}},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[400];
		snprintf(text, sizeof(text), "{'name': 'a', 'bucket': 0, %s}", cases[i].stats);
		MetricError err;
		bool ok = parse(q(text), &err);
		if (!ok)
			print_error("case %zu refused: %s\n", i, err.msg);
		assert_true(ok);
		assert_int_equal(batch.m[0].present, cases[i].present);
		for (int k = 0; k < METRIC_NSTATS; k++)
			if (cases[i].present & BIT(k))
				assert_true(batch.m[0].v[k] == cases[i].v[k]);
	}
}

static void test_unknown_fields_ignored(void **state)
{
	(void)state;
	const char *const bodies[] = {
		"{'name': 'a', 'bucket': 0, 'count': 1, 'source': 'web.1'}",
		"{'name': 'a', 'bucket': 0, 'count': 1, 'extra': {'nested': [1, 2, {'x': null}]}}",
		"{'units': 'ms', 'name': 'a', 'bucket': 0, 'count': 1, 'sum': 'not a stat'}",
		"{'name': 'a', 'bucket': 0, 'count': 1, 'Count': 'x', 'NAME': 5}",
	};
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		MetricError err;
		bool ok = parse(q(bodies[i]), &err);
		if (!ok)
			print_error("case %zu refused: %s\n", i, err.msg);
		assert_true(ok);
		assert_string_equal(batch.m[0].name, "a");
		assert_int_equal(batch.m[0].present, BIT(METRIC_COUNT));
	}
}

/* Names: 1..255 bytes of UTF-8 without control characters, stored byte for byte. */
static void test_name_accepted(void **state)
{
	(void)state;
	char n255[256], n253e[264];
	memset(n255, 'n', 255);
	n255[255] = '\0';
	memset(n253e, 'n', 253);
	memcpy(n253e + 253, "\\u00e9", 7); /* 253 bytes + é (2 bytes) = 255 */
	const struct {
		const char *json; /* as written in the body */
		size_t len;       /* stored bytes */
	} cases[] = {
		{"a", 1},
		{"requests.count", 14},
		{"a b\\u00a0c", 6},            /* NBSP is not a control character */
		{"\\u65e5\\u672c", 6},         /* 日本 */
		{"\\ud83d\\ude00", 4},         /* U+1F600 */
		{"quote \\\" back \\\\", 14},
		{n255, 255},
		{n253e, 255},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[400];
		snprintf(text, sizeof(text), "{\"name\": \"%s\", \"bucket\": 0, \"count\": 1}", cases[i].json);
		MetricError err;
		bool ok = parse(text, &err);
		if (!ok)
			print_error("name case %zu refused: %s\n", i, err.msg);
		assert_true(ok);
		assert_int_equal(batch.m[0].name_len, cases[i].len);
		assert_int_equal(strlen(batch.m[0].name), cases[i].len);
	}
}

/* ---- refused bodies ---- */

static void test_malformed_json_is_400(void **state)
{
	(void)state;
	const char *const bodies[] = {
		"",
		" ",
		"{",
		"not json",
		"{'name': 'a', 'bucket': 0, 'count': 1",
		"{'name': 'a', 'bucket': 0, 'count': 1} x",        /* trailing garbage */
		"{'name': 'a', 'bucket': 0, 'count': 1}}",
		"{'name': 'a', 'bucket': 0, 'count': 1} {'name': 'b', 'bucket': 0, 'count': 1}",
		"[{'name': 'a', 'bucket': 0, 'count': 1},]",
		"{'name': 'a', 'bucket': 0, 'count': NaN}",
		"{'name': 'a', 'bucket': 0, 'count': Infinity}",
		"{'name': 'a', 'bucket': 0, 'count': 1e999}",     /* overflows a double */
		"{name: 'a', 'bucket': 0, 'count': 1}",
		"{'name': 'a\\ud800', 'bucket': 0, 'count': 1}",  /* lone surrogate */
		"{'name': '\xff', 'bucket': 0, 'count': 1}",      /* invalid UTF-8 */
	};
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		MetricError err;
		bool ok = parse(q(bodies[i]), &err);
		if (ok || err.status != 400)
			print_error("case %zu [%s]: ok=%d status=%d\n", i, bodies[i], ok, ok ? 0 : err.status);
		assert_false(ok);
		assert_int_equal(err.status, 400);
		assert_int_equal(err.index, -1);
		assert_string_equal(err.field, "");
		assert_true(strlen(err.msg) > 0);
		/* all or nothing: nothing is left in the batch */
		assert_null(batch.m);
		assert_int_equal(batch.n, 0);
	}
}

/* Every invalid metric: 422, the field to fix ("" when none applies) and the index in the batch
 * (-1 for a single object or the body as a whole). */
static void test_invalid_metric_is_422(void **state)
{
	(void)state;
	const struct {
		const char *body;
		const char *field;
		long index;
	} cases[] = {
		/* bucket */
		{"{'name': 'a', 'count': 1}", "bucket", -1},
		{"{'name': 'a', 'bucket': null, 'count': 1}", "bucket", -1},
		{"{'name': 'a', 'bucket': true, 'count': 1}", "bucket", -1},
		{"{'name': 'a', 'bucket': false, 'count': 1}", "bucket", -1},
		{"{'name': 'a', 'bucket': {}, 'count': 1}", "bucket", -1},
		{"{'name': 'a', 'bucket': [0], 'count': 1}", "bucket", -1},
		{"{'name': 'a', 'bucket': '', 'count': 1}", "bucket", -1},
		{"{'name': 'a', 'bucket': 'yesterday', 'count': 1}", "bucket", -1},
		{"{'name': 'a', 'bucket': -1, 'count': 1}", "bucket", -1},
		{"{'name': 'a', 'bucket': -1355202720, 'count': 1}", "bucket", -1},
		{"{'name': 'a', 'bucket': '-1', 'count': 1}", "bucket", -1},
		{"{'name': 'a', 'bucket': '1969-12-31T23:59:59Z', 'count': 1}", "bucket", -1},
		{"{'name': 'a', 'bucket': '1900-01-01 00:00:00 UTC', 'count': 1}", "bucket", -1},
		{"{'name': 'a', 'bucket': '1970-01-01T00:30:00+01:00', 'count': 1}", "bucket", -1},
		{"{'name': 'a', 'bucket': '10000-01-01T00:00:00Z', 'count': 1}", "bucket", -1},
		{"{'name': 'a', 'bucket': 1e12, 'count': 1}", "bucket", -1},
		{"{'name': 'a', 'bucket': 1e300, 'count': 1}", "bucket", -1},
		{"{'name': 'a', 'bucket': '1e9', 'count': 1}", "bucket", -1},
		{"{'name': 'a', 'bucket': '2013-02-29T00:00:00Z', 'count': 1}", "bucket", -1},
		{"{'name': 'a', 'bucket': '2012-12-11T05:19:00', 'count': 1}", "bucket", -1},
		/* name */
		{"{'bucket': 0, 'count': 1}", "name", -1},
		{"{'name': null, 'bucket': 0, 'count': 1}", "name", -1},
		{"{'name': 42, 'bucket': 0, 'count': 1}", "name", -1},
		{"{'name': true, 'bucket': 0, 'count': 1}", "name", -1},
		{"{'name': ['a'], 'bucket': 0, 'count': 1}", "name", -1},
		{"{'name': {'a': 1}, 'bucket': 0, 'count': 1}", "name", -1},
		{"{'name': '', 'bucket': 0, 'count': 1}", "name", -1},
		{"{'name': 'a\\u0001', 'bucket': 0, 'count': 1}", "name", -1},
		{"{'name': '\\u001fa', 'bucket': 0, 'count': 1}", "name", -1},
		{"{'name': 'a\\nb', 'bucket': 0, 'count': 1}", "name", -1},
		{"{'name': 'a\\tb', 'bucket': 0, 'count': 1}", "name", -1},
		{"{'name': 'a\\u007f', 'bucket': 0, 'count': 1}", "name", -1},
		{"{'name': 'a\\u0085', 'bucket': 0, 'count': 1}", "name", -1},
		{"{'name': '\\u0080', 'bucket': 0, 'count': 1}", "name", -1},
		{"{'name': 'a\\u009fb', 'bucket': 0, 'count': 1}", "name", -1},
		/* statistics */
		{"{'name': 'a', 'bucket': 0, 'count': '5'}", "count", -1},
		{"{'name': 'a', 'bucket': 0, 'mean': '5'}", "mean", -1},
		{"{'name': 'a', 'bucket': 0, 'median': true}", "median", -1},
		{"{'name': 'a', 'bucket': 0, 'min': []}", "min", -1},
		{"{'name': 'a', 'bucket': 0, 'max': {}}", "max", -1},
		{"{'name': 'a', 'bucket': 0, 'perc95': 'x'}", "perc95", -1},
		{"{'name': 'a', 'bucket': 0, 'perc99': false}", "perc99", -1},
		{"{'name': 'a', 'bucket': 0, 'last': '1.5'}", "last", -1},
		{"{'name': 'a', 'bucket': 0, 'count': 1, 'mean': '5'}", "mean", -1},
		{"{'name': 'a', 'bucket': 0, 'count': -1}", "count", -1},
		{"{'name': 'a', 'bucket': 0, 'count': -0.5}", "count", -1},
		{"{'name': 'a', 'bucket': 0}", "", -1},
		{"{'name': 'a', 'bucket': 0, 'count': null, 'mean': null, 'median': null, 'min': null,"
		 " 'max': null, 'perc95': null, 'perc99': null, 'last': null}",
		 "", -1},
		{"{'name': 'a', 'bucket': 0, 'sum': 5, 'avg': 1}", "", -1},
		/* id */
		{"{'id': 'nope', 'name': 'a', 'bucket': 0, 'count': 1}", "id", -1},
		{"{'id': 42, 'name': 'a', 'bucket': 0, 'count': 1}", "id", -1},
		{"{'id': true, 'name': 'a', 'bucket': 0, 'count': 1}", "id", -1},
		{"{'id': '', 'name': 'a', 'bucket': 0, 'count': 1}", "id", -1},
		{"{'id': '01890a5d-ac96-774b-bcce-b302099a805', 'name': 'a', 'bucket': 0, 'count': 1}", "id", -1},
		{"{'id': '01890a5dac96774bbcceb302099a8057', 'name': 'a', 'bucket': 0, 'count': 1}", "id", -1},
		{"{'id': '01890a5g-ac96-774b-bcce-b302099a8057', 'name': 'a', 'bucket': 0, 'count': 1}", "id", -1},
		/* the body as a whole */
		{"[]", "", -1},
		{"'a string'", "", -1},
		{"42", "", -1},
		{"null", "", -1},
		{"true", "", -1},
		/* elements of a batch: the index is the first bad one */
		{"[1]", "", 0},
		{"[{'name': 'a', 'bucket': 0, 'count': 1}, null]", "", 1},
		{"[{'name': 'a', 'bucket': 0, 'count': 1}, 'x']", "", 1},
		{"[{'name': 'a', 'bucket': 0, 'count': 1}, [{'name': 'a', 'bucket': 0, 'count': 1}]]", "", 1},
		{"[{'name': 'a', 'bucket': 0, 'count': 1}, {'name': 'a', 'bucket': 0, 'count': 1},"
		 " {'name': 'a', 'count': 1}]",
		 "bucket", 2},
		{"[{'name': 'a', 'bucket': 0, 'count': 1}, {'name': '', 'bucket': 0, 'count': 1},"
		 " {'name': 'a', 'bucket': 0, 'count': -1}]",
		 "name", 1},
		{"[{'name': 'a', 'bucket': 0, 'count': -1}, {'name': '', 'bucket': 0, 'count': 1}]", "count", 0},
		{"[{'name': 'a', 'bucket': 0, 'count': 1}, {'name': 'b', 'bucket': 0}]", "", 1},
		{"[{'name': 'a', 'bucket': 0, 'count': 1}, {'id': 'x', 'name': 'b', 'bucket': 0, 'count': 1}]",
		 "id", 1},
	};
	int failures = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		MetricError err;
		bool ok = parse(q(cases[i].body), &err);
		if (ok || err.status != 422 || strcmp(err.field, cases[i].field) != 0 ||
		    err.index != cases[i].index || batch.m != NULL || batch.n != 0) {
			print_error("case %zu [%s]: ok=%d status=%d field=\"%s\" index=%ld msg=\"%s\"; "
				    "want 422 field=\"%s\" index=%ld\n",
				    i, cases[i].body, ok, ok ? 0 : err.status, ok ? "" : err.field,
				    ok ? 0 : err.index, ok ? "" : err.msg, cases[i].field, cases[i].index);
			failures++;
			continue;
		}
		if (strlen(err.msg) == 0) {
			print_error("case %zu: empty message\n", i);
			failures++;
		}
	}
	assert_int_equal(failures, 0);
}

/* Names just over the limit, counted in bytes, not characters. */
static void test_name_too_long(void **state)
{
	(void)state;
	char n256[300], n254e[300], n1000[1100];
	memset(n256, 'n', 256);
	n256[256] = '\0';
	memset(n254e, 'n', 254);
	memcpy(n254e + 254, "\\u00e9", 7); /* 254 bytes + é = 256 bytes in 255 characters */
	memset(n1000, 'n', 1000);
	n1000[1000] = '\0';
	const char *const names[] = {n256, n254e, n1000};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char text[1200];
		snprintf(text, sizeof(text), "[{\"name\": \"ok\", \"bucket\": 0, \"count\": 1}, "
					     "{\"name\": \"%s\", \"bucket\": 0, \"count\": 1}]",
			 names[i]);
		MetricError err;
		assert_false(parse(text, &err));
		assert_int_equal(err.status, 422);
		assert_string_equal(err.field, "name");
		assert_int_equal(err.index, 1);
	}
}

/* A name with U+0000 is refused whichever way (jansson refuses \u0000 as JSON). */
static void test_name_with_nul_refused(void **state)
{
	(void)state;
	MetricError err;
	assert_false(parse(q("{'name': 'a\\u0000b', 'bucket': 0, 'count': 1}"), &err));
	assert_true(err.status == 400 || err.status == 422);
	assert_null(batch.m);
}

/* The year 10000 is out of range also when it comes as Unix seconds (253402300800 is
 * 10000-01-01T00:00:00Z): 422 on bucket, like '10000-01-01T00:00:00Z'. */
static void test_bucket_year_10000_as_unix_seconds(void **state)
{
	(void)state;
	const char *const buckets[] = {"253402300800", "'253402300800'", "253402300800.0"};
	int failures = 0;
	for (size_t i = 0; i < sizeof(buckets) / sizeof(buckets[0]); i++) {
		char text[200];
		snprintf(text, sizeof(text), "{'name': 'a', 'bucket': %s, 'count': 1}", buckets[i]);
		MetricError err;
		bool ok = parse(q(text), &err);
		if (ok || err.status != 422 || strcmp(err.field, "bucket") != 0) {
			print_error("bucket %s: ok=%d bucket_us=%lld (TM_MAX_US=%lld)\n", buckets[i], ok,
				    ok ? (long long)batch.m[0].bucket_us : 0LL, (long long)TM_MAX_US);
			failures++;
		}
	}
	assert_int_equal(failures, 0);
}

/* Batch size: 10,000 metrics are fine, 10,001 are refused as a whole. */
static void test_batch_limit(void **state)
{
	(void)state;
	const struct {
		size_t n;
		bool ok;
	} cases[] = {{1, true}, {METRIC_BATCH_MAX, true}, {METRIC_BATCH_MAX + 1, false}, {20000, false}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		MetricError err;
		bool ok = parse(repeat_array("{\"name\": \"m\", \"bucket\": 1355202720, \"count\": 1}",
					     cases[i].n),
				&err);
		assert_int_equal(ok, cases[i].ok);
		if (ok) {
			assert_true(batch.is_array);
			assert_int_equal(batch.n, cases[i].n);
			assert_string_equal(batch.m[cases[i].n - 1].name, "m");
		} else {
			assert_int_equal(err.status, 422);
			assert_int_equal(err.index, -1);
			assert_string_equal(err.field, "");
			assert_null(batch.m);
		}
	}
}

/* Ids made for a batch are v7, of about now, and all distinct (in fact increasing). */
static void test_generated_ids(void **state)
{
	(void)state;
	const size_t n = 2000;
	int64_t before_ms = now_wall_us() / 1000;
	MetricError err;
	assert_true(parse(repeat_array("{\"name\": \"m\", \"bucket\": 0, \"count\": 1}", n), &err));
	int64_t after_ms = now_wall_us() / 1000;
	assert_int_equal(batch.n, n);
	for (size_t k = 0; k < n; k++) {
		const Uuid *u = &batch.m[k].id;
		assert_false(batch.m[k].has_id);
		expect_v7(u);
		int64_t ms = 0;
		for (int b = 0; b < 6; b++)
			ms = ms << 8 | u->b[b];
		assert_true(ms >= before_ms - 1 && ms <= after_ms + 10);
		if (k > 0)
			assert_true(uuid_cmp(&batch.m[k - 1].id, u) < 0);
	}
	/* and a second request gets new ones */
	Uuid first = batch.m[0].id;
	assert_true(parse(q("{'name': 'm', 'bucket': 0, 'count': 1}"), &err));
	assert_true(uuid_cmp(&first, &batch.m[0].id) != 0);
}

/* metric_name_valid itself, on raw bytes. */
static void test_name_valid_bytes(void **state)
{
	(void)state;
	static char n255[255], n256[256];
	memset(n255, 'x', sizeof(n255));
	memset(n256, 'x', sizeof(n256));
	const struct {
		const char *s;
		size_t len;
		bool ok;
	} cases[] = {
		{"a", 1, true},
		{"", 0, false},
		{n255, 255, true},
		{n256, 256, false},
		{"a\x01", 2, false},
		{"a\x1f", 2, false},
		{"a\x7f", 2, false},
		{"a\0b", 3, false},
		{"\xc2\x80", 2, false}, /* U+0080 */
		{"\xc2\x85", 2, false}, /* U+0085 NEL */
		{"\xc2\x9f", 2, false}, /* U+009F */
		{"\xc2\xa0", 2, true},  /* U+00A0 */
		{"\xc3\xa9", 2, true},  /* é */
		{"\xe2\x80\xa8", 3, true},
		{"a b~", 4, true},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool ok = metric_name_valid(cases[i].s, cases[i].len);
		if (ok != cases[i].ok)
			print_error("case %zu: got %d\n", i, ok);
		assert_int_equal(ok, cases[i].ok);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_one_object, teardown),
		cmocka_unit_test_teardown(test_whitespace_around_body, teardown),
		cmocka_unit_test_teardown(test_array_in_order, teardown),
		cmocka_unit_test_teardown(test_bucket_forms, teardown),
		cmocka_unit_test_teardown(test_client_id_kept, teardown),
		cmocka_unit_test_teardown(test_stats_present, teardown),
		cmocka_unit_test_teardown(test_unknown_fields_ignored, teardown),
		cmocka_unit_test_teardown(test_name_accepted, teardown),
		cmocka_unit_test_teardown(test_malformed_json_is_400, teardown),
		cmocka_unit_test_teardown(test_invalid_metric_is_422, teardown),
		cmocka_unit_test_teardown(test_name_too_long, teardown),
		cmocka_unit_test_teardown(test_name_with_nul_refused, teardown),
		cmocka_unit_test_teardown(test_bucket_year_10000_as_unix_seconds, teardown),
		cmocka_unit_test_teardown(test_batch_limit, teardown),
		cmocka_unit_test_teardown(test_generated_ids, teardown),
		cmocka_unit_test_teardown(test_name_valid_bytes, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
