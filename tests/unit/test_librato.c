/* Unit tests of librato: what Librato clients and l2met post to /v1/metrics (JSON and the
 * legacy form encoding), what is stored from it, and the field, index and words of the error a
 * client gets back when it is refused. JSON bodies are written with single quotes for
 * readability; q() turns them into double quotes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "librato.h"
#include "unit.h"

#define T_L2MET INT64_C(1796220544) /* what l2met stamped its measurements with */
#define NOW_US (INT64_C(1796300000) * US + 678901)
#define ALL_STATS (uint8_t)((1u << METRIC_NSTATS) - 1)
#define BIT(i) (uint8_t)(1u << (i))

#define NAME_RULE "name must be 1 to 255 characters of A-Z a-z 0-9 . : - _"
#define SOURCE_RULE "source must be 1 to 255 characters of A-Z a-z 0-9 . : - _"
#define TIME_FORM "measure_time must be Unix seconds, as a number or a string of digits"
#define TIME_RANGE "measure_time must be between 1970 and 9999"
#define VALUE_WITH "a gauge with value cannot also have count, sum, min, max or sum_squares"

static const char L2MET[] =
	"{\"gauges\":[{\"name\":\"web.latency\",\"measure_time\":1796220544,\"count\":5,\"sum\":140,"
	"\"max\":50,\"min\":10,\"source\":\"web.1\",\"attributes\":{\"display_min\":0,"
	"\"display_units_long\":\"ms\"}},{\"name\":\"web.latency.median\",\"measure_time\":1796220544,"
	"\"value\":30,\"source\":\"web.1\",\"attributes\":{\"display_min\":0,\"display_units_long\":"
	"\"ms\"}},{\"name\":\"web.latency.perc95\",\"measure_time\":1796220544,\"value\":50,\"source\":"
	"\"web.1\",\"attributes\":{\"display_min\":0,\"display_units_long\":\"ms\"}},{\"name\":"
	"\"web.latency.perc99\",\"measure_time\":1796220544,\"value\":50,\"source\":\"web.1\","
	"\"attributes\":{\"display_min\":0,\"display_units_long\":\"ms\"}},{\"name\":\"web.hits\","
	"\"measure_time\":1796220544,\"value\":4,\"source\":\"web.1\",\"attributes\":{\"display_min\":0,"
	"\"display_units_long\":\"\"}}]}";

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
	char *copy = strdup(s); /* s may be body itself (q(fmt(...))) */
	free(body);
	body = copy;
	for (char *p = body; *p; p++)
		if (*p == '\'')
			*p = '"';
	return body;
}

/* A body built with printf, into body. */
PRINTF_LIKE(1, 2)
static const char *fmt(const char *f, ...)
{
	va_list ap;
	va_start(ap, f);
	int n = vsnprintf(NULL, 0, f, ap);
	va_end(ap);
	free(body);
	body = malloc((size_t)n + 1);
	assert_non_null(body);
	va_start(ap, f);
	vsnprintf(body, (size_t)n + 1, f, ap);
	va_end(ap);
	return body;
}

/* n copies of c, in a static buffer (at most 300). */
static const char *rep(char c, size_t n)
{
	static char s[301];
	assert_true(n < sizeof(s));
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

static bool parse_len(const char *text, size_t len, bool form, MetricError *err)
{
	metric_batch_free(&batch);
	memset(err, 0x55, sizeof(*err));
	memset(&batch, 0x55, sizeof(batch));
	bool ok = librato_parse(text, len, form, NOW_US, &batch, err);
	if (!ok) { /* nothing to free, and a reason */
		assert_null(batch.m);
		assert_null(batch.arena);
		assert_int_equal(batch.n, 0);
		assert_int_equal(err->status, 400);
		assert_non_null(memchr(err->field, '\0', sizeof(err->field)));
		assert_true(strlen(err->msg) > 0);
	}
	return ok;
}

static bool parse(const char *text, bool form, MetricError *err)
{
	return parse_len(text, strlen(text), form, err);
}

static void must_parse(const char *text, bool form)
{
	MetricError err;
	if (!parse(text, form, &err))
		fail_msg("refused (%s: %s): %s", err.field, err.msg, text);
}

static int64_t ms_of(const Uuid *u)
{
	int64_t ms = 0;
	for (int i = 0; i < 6; i++)
		ms = ms << 8 | u->b[i];
	return ms;
}

/* What every stored measurement carries whatever its form: names and sources NUL-terminated
 * in the arena with their lengths, and the name-based id of (name, source, measure_time). */
static void expect_well_formed(void)
{
	for (size_t i = 0; i < batch.n; i++) {
		const Metric *m = &batch.m[i];
		assert_int_equal(strlen(m->name), m->name_len);
		assert_true(m->name >= batch.arena);
		if (m->source) {
			assert_int_equal(strlen(m->source), m->source_len);
			assert_true(m->source >= batch.arena);
		}
		assert_true(m->has_id);
		Uuid want;
		uuid_named(&want, m->name, m->name_len, m->source, m->source_len, m->bucket_us / 1000);
		assert_int_equal(uuid_cmp(&m->id, &want), 0);
		assert_int_equal(ms_of(&m->id), m->bucket_us / 1000);
		assert_int_equal(m->id.b[6] >> 4, 8);
	}
}

static void expect_all_stats(const Metric *m, double v)
{
	assert_int_equal(m->present, ALL_STATS);
	assert_true(m->v[METRIC_COUNT] == 1);
	for (int i = METRIC_MEAN; i < METRIC_NSTATS; i++)
		assert_true(m->v[i] == v);
}

static void expect_source(const Metric *m, const char *source)
{
	if (!source)
		assert_null(m->source);
	else
		assert_string_equal(m->source, source);
}

/* ---- accepted bodies ---- */

static void test_l2met_payload(void **state)
{
	(void)state;
	must_parse(L2MET, false);
	assert_int_equal(batch.n, 5);
	expect_well_formed();
	const struct {
		const char *name;
		double value; /* 0: the summary */
	} want[] = {{"web.latency", 0}, {"web.latency.median", 30}, {"web.latency.perc95", 50},
		    {"web.latency.perc99", 50}, {"web.hits", 4}};
	for (size_t i = 0; i < 5; i++) {
		const Metric *m = &batch.m[i];
		assert_string_equal(m->name, want[i].name);
		expect_source(m, "web.1");
		assert_int_equal(m->source_len, 5);
		assert_int_equal(m->bucket_us, T_L2MET * US);
		if (want[i].value)
			expect_all_stats(m, want[i].value);
	}
	const Metric *s = &batch.m[0];
	assert_int_equal(s->present, BIT(METRIC_COUNT) | BIT(METRIC_MEAN) | BIT(METRIC_MIN) | BIT(METRIC_MAX));
	assert_true(s->v[METRIC_COUNT] == 5);
	assert_true(s->v[METRIC_MEAN] == 28);
	assert_true(s->v[METRIC_MIN] == 10);
	assert_true(s->v[METRIC_MAX] == 50);
}

/* Older l2met versions send every number as a string, formatted with five decimals. */
static void test_l2met_strings(void **state)
{
	(void)state;
	must_parse(q("{'gauges': [{'name': 'web.latency', 'measure_time': 1796220544, 'source': 'web.1', "
		     "'min': '10.00000', 'max': '50.00000', 'sum': '140.00000', 'count': '5'}, "
		     "{'name': 'web.latency.count', 'measure_time': 1796220544, 'value': '5'}]}"),
		   false);
	assert_int_equal(batch.n, 2);
	const Metric *s = &batch.m[0];
	assert_int_equal(s->present, BIT(METRIC_COUNT) | BIT(METRIC_MEAN) | BIT(METRIC_MIN) | BIT(METRIC_MAX));
	assert_true(s->v[METRIC_COUNT] == 5);
	assert_true(s->v[METRIC_MEAN] == 28);
	assert_true(s->v[METRIC_MIN] == 10);
	assert_true(s->v[METRIC_MAX] == 50);
	expect_all_stats(&batch.m[1], 5);
}

/* A retried post gets the ids it had; any change of name, source or time gets others. */
static void test_ids_stable(void **state)
{
	(void)state;
	Uuid first[5];
	must_parse(L2MET, false);
	for (size_t i = 0; i < 5; i++)
		first[i] = batch.m[i].id;
	must_parse(L2MET, false);
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(uuid_cmp(&first[i], &batch.m[i].id), 0);
	for (size_t i = 1; i < 5; i++)
		assert_int_not_equal(uuid_cmp(&first[0], &first[i]), 0);

	const char *const variants[] = {
		"{'gauges': [{'name': 'web.hits', 'measure_time': 1796220544, 'value': 4, 'source': 'web.1'}]}",
		"{'gauges': {'web.hits': {'measure_time': 1796220544, 'value': 99, 'source': 'web.1'}}}",
		"{'source': 'web.1', 'measure_time': '1796220544', 'counters': [{'name': 'web.hits', 'value': 1}]}",
	};
	for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
		must_parse(q(variants[i]), false);
		assert_int_equal(uuid_cmp(&first[4], &batch.m[0].id), 0); /* same name, source, time */
	}
	must_parse("gauges[0][name]=web.hits&gauges[0][value]=4&source=web.1&measure_time=1796220544", true);
	assert_int_equal(uuid_cmp(&first[4], &batch.m[0].id), 0);

	const char *const others[] = {
		"{'gauges': [{'name': 'web.hits', 'measure_time': 1796220545, 'value': 4, 'source': 'web.1'}]}",
		"{'gauges': [{'name': 'web.hits', 'measure_time': 1796220544, 'value': 4, 'source': 'web.2'}]}",
		"{'gauges': [{'name': 'web.hits', 'measure_time': 1796220544, 'value': 4}]}",
		"{'gauges': [{'name': 'web.hitz', 'measure_time': 1796220544, 'value': 4, 'source': 'web.1'}]}",
	};
	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
		must_parse(q(others[i]), false);
		assert_int_not_equal(uuid_cmp(&first[4], &batch.m[0].id), 0);
	}
}

/* The hash form: keys are names (a "name" inside is ignored), in the order of the body. */
static void test_hash_form(void **state)
{
	(void)state;
	must_parse(q("{'gauges': {'web.hits': {'value': 3}, 'web.lat': {'count': 2, 'sum': 5, 'max': 4},"
		     " 'x': {'name': 'other', 'value': 0}},"
		     " 'counters': {'jobs.done': {'value': 7, 'source': 'w:1'}}}"),
		   false);
	expect_well_formed();
	assert_int_equal(batch.n, 4);
	assert_string_equal(batch.m[0].name, "web.hits");
	expect_all_stats(&batch.m[0], 3);
	assert_string_equal(batch.m[1].name, "web.lat");
	assert_int_equal(batch.m[1].present, BIT(METRIC_COUNT) | BIT(METRIC_MEAN) | BIT(METRIC_MAX));
	assert_true(batch.m[1].v[METRIC_MEAN] == 2.5);
	assert_true(batch.m[1].v[METRIC_MAX] == 4);
	assert_string_equal(batch.m[2].name, "x");
	expect_all_stats(&batch.m[2], 0);
	assert_string_equal(batch.m[3].name, "jobs.done");
	expect_all_stats(&batch.m[3], 7);
	expect_source(&batch.m[3], "w:1");
	for (size_t i = 0; i < 3; i++)
		expect_source(&batch.m[i], NULL);
}

/* Counters are stored like gauge values; gauges come first, then counters, each in order. */
static void test_counters(void **state)
{
	(void)state;
	must_parse(q("{'counters': [{'name': 'c.b', 'value': 12.5, 'period': 60},"
		     " {'name': 'c.a', 'value': -3, 'count': 'ignored', 'attributes': {'x': 1}}],"
		     " 'gauges': [{'name': 'g', 'value': 1e100}]}"),
		   false);
	expect_well_formed();
	assert_int_equal(batch.n, 3);
	assert_string_equal(batch.m[0].name, "g");
	expect_all_stats(&batch.m[0], 1e100);
	assert_string_equal(batch.m[1].name, "c.b");
	expect_all_stats(&batch.m[1], 12.5);
	assert_string_equal(batch.m[2].name, "c.a");
	expect_all_stats(&batch.m[2], -3);
}

/* measure_time and source: per measurement, else the top level's, else now and none. */
static void test_defaults_and_overrides(void **state)
{
	(void)state;
	const int64_t now_s = NOW_US / US; /* whole seconds */
	const struct {
		const char *body;
		bool form;
		int64_t secs[3];
		const char *sources[3];
	} cases[] = {
		{"{'gauges': [{'name': 'a', 'value': 1}]}", false, {now_s}, {NULL}},
		{"{'measure_time': 1355202720, 'source': 'top', 'gauges': [{'name': 'a', 'value': 1},"
		 " {'name': 'b', 'value': 1, 'measure_time': 1355202780, 'source': 'own'}],"
		 " 'counters': [{'name': 'c', 'value': 1, 'source': 'c1'}]}",
		 false, {1355202720, 1355202780, 1355202720}, {"top", "own", "c1"}},
		{"{'source': null, 'measure_time': null, 'gauges': {'a': {'value': 1, 'source': null,"
		 " 'measure_time': 0}}}",
		 false, {0}, {NULL}},
		{"gauges[0][name]=a&gauges[0][value]=1", true, {now_s}, {NULL}},
		{"measure_time=1355202720&source=top&gauges[0][name]=a&gauges[0][value]=1&"
		 "gauges[1][name]=b&gauges[1][value]=1&gauges[1][measure_time]=1355202780&"
		 "gauges[1][source]=own&counters[0][name]=c&counters[0][value]=1&counters[0][source]=c1",
		 true, {1355202720, 1355202780, 1355202720}, {"top", "own", "c1"}},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		must_parse(cases[i].form ? cases[i].body : q(cases[i].body), cases[i].form);
		expect_well_formed();
		for (size_t k = 0; k < batch.n; k++) {
			assert_int_equal(batch.m[k].bucket_us, cases[i].secs[k] * US);
			expect_source(&batch.m[k], cases[i].sources[k]);
		}
	}
}

/* measure_time: whole seconds (a fraction is dropped), as a number or a string of digits. */
static void test_measure_time_forms(void **state)
{
	(void)state;
	const struct {
		const char *t; /* as written in JSON */
		int64_t secs;
	} cases[] = {
		{"1796220544", 1796220544},
		{"1796220544.999", 1796220544},
		{"1.7962205445e9", 1796220544},
		{"'1796220544'", 1796220544},
		{"'0001796220544'", 1796220544},
		{"0", 0},
		{"-0.5", 0},
		{"'0'", 0},
		{"253402300799", INT64_C(253402300799)},
		{"253402300799.99", INT64_C(253402300799)},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		must_parse(q(fmt("{'gauges': [{'name': 'a', 'value': 1, 'measure_time': %s}]}", cases[i].t)),
			   false);
		assert_int_equal(batch.m[0].bucket_us, cases[i].secs * US);
		expect_well_formed();
		must_parse(q(fmt("{'measure_time': %s, 'gauges': {'a': {'value': 1}}}", cases[i].t)), false);
		assert_int_equal(batch.m[0].bucket_us, cases[i].secs * US);
	}
}

/* A value fills every statistic (count 1); count and sum give count and mean, and min and
 * max only when given: what was not measured stays absent. */
static void test_statistics_mapping(void **state)
{
	(void)state;
	const struct {
		const char *m;
		uint8_t present;
		double count, mean, min, max;
	} cases[] = {
		{"'value': 2.5", ALL_STATS, 1, 2.5, 2.5, 2.5},
		{"'value': 0", ALL_STATS, 1, 0, 0, 0},
		{"'value': -1e-100", ALL_STATS, 1, -1e-100, -1e-100, -1e-100},
		{"'count': 4, 'sum': 10", BIT(METRIC_COUNT) | BIT(METRIC_MEAN), 4, 2.5, 0, 0},
		{"'count': 4, 'sum': 10, 'min': 1", BIT(METRIC_COUNT) | BIT(METRIC_MEAN) | BIT(METRIC_MIN), 4, 2.5, 1, 0},
		{"'count': 4, 'sum': 10, 'max': 5, 'sum_squares': 30, 'period': 60",
		 BIT(METRIC_COUNT) | BIT(METRIC_MEAN) | BIT(METRIC_MAX), 4, 2.5, 0, 5},
		{"'count': 1, 'sum': -7, 'min': -7, 'max': -7",
		 BIT(METRIC_COUNT) | BIT(METRIC_MEAN) | BIT(METRIC_MIN) | BIT(METRIC_MAX), 1, -7, -7, -7},
		{"'count': 3, 'sum': 0, 'min': 0, 'max': 0",
		 BIT(METRIC_COUNT) | BIT(METRIC_MEAN) | BIT(METRIC_MIN) | BIT(METRIC_MAX), 3, 0, 0, 0},
		{"'count': 1e100, 'sum': 1e100", BIT(METRIC_COUNT) | BIT(METRIC_MEAN), 1e100, 1, 0, 0},
		{"'count': 2, 'sum': 2e-100", BIT(METRIC_COUNT) | BIT(METRIC_MEAN), 2, 1e-100, 0, 0},
		{"'value': null, 'count': 2, 'sum': 4, 'min': null", BIT(METRIC_COUNT) | BIT(METRIC_MEAN), 2, 2, 0, 0},
		{"'value': 1, 'count': null, 'unknown': [1, 2], 'attributes': null", ALL_STATS, 1, 1, 1, 1},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		must_parse(q(fmt("{'gauges': [{'name': 'a', %s}]}", cases[i].m)), false);
		const Metric *m = &batch.m[0];
		if (m->present != cases[i].present)
			print_error("case %zu: present %#x\n", i, m->present);
		assert_int_equal(m->present, cases[i].present);
		assert_true(m->v[METRIC_COUNT] == cases[i].count);
		assert_true(m->v[METRIC_MEAN] == cases[i].mean);
		if (m->present & BIT(METRIC_MIN))
			assert_true(m->v[METRIC_MIN] == cases[i].min);
		if (m->present & BIT(METRIC_MAX))
			assert_true(m->v[METRIC_MAX] == cases[i].max);
		if (m->present == ALL_STATS)
			expect_all_stats(m, cases[i].mean);
	}
}

/* The legacy form encoding: the example, as a client sends it. */
static void test_form_example(void **state)
{
	(void)state;
	must_parse("gauges[0][name]=a&gauges[0][value]=1&gauges[1][name]=b&gauges[1][count]=2&"
		   "gauges[1][sum]=5&counters[0][name]=c&counters[0][value]=3&measure_time=1796220544&"
		   "source=web.1",
		   true);
	expect_well_formed();
	assert_int_equal(batch.n, 3);
	assert_string_equal(batch.m[0].name, "a");
	expect_all_stats(&batch.m[0], 1);
	assert_string_equal(batch.m[1].name, "b");
	assert_int_equal(batch.m[1].present, BIT(METRIC_COUNT) | BIT(METRIC_MEAN));
	assert_true(batch.m[1].v[METRIC_COUNT] == 2);
	assert_true(batch.m[1].v[METRIC_MEAN] == 2.5);
	assert_string_equal(batch.m[2].name, "c");
	expect_all_stats(&batch.m[2], 3);
	for (size_t i = 0; i < 3; i++) {
		expect_source(&batch.m[i], "web.1");
		assert_int_equal(batch.m[i].bucket_us, T_L2MET * US);
	}
}

/* Indices in any order and sparse; keys and values percent-encoded; '+' a space; empty pairs,
 * pairs without '=', attributes and unknown keys skipped. */
static void test_form_shapes(void **state)
{
	(void)state;
	const struct {
		const char *body;
		size_t n;
		const char *names[3];
		double values[3];
		const char *sources[3];
	} cases[] = {
		{"gauges[7][name]=b&counters[3][value]=3&gauges[7][value]=2&counters[3][name]=c&"
		 "gauges[2][value]=1&gauges[2][name]=a",
		 3, {"a", "b", "c"}, {1, 2, 3}, {NULL}},
		{"gauges[9999][name]=z&gauges[9999][value]=9&gauges[0][name]=y&gauges[0][value]=8",
		 2, {"y", "z"}, {8, 9}, {NULL}},
		{"gauges%5B0%5D%5Bname%5D=web%2Ehits&gauges%5b0%5d%5bvalue%5d=%2D1.5e2&"
		 "gauges[0][source]=web%3a1",
		 1, {"web.hits"}, {-150}, {"web:1"}},
		{"&&gauges[0][name]=a&&gauges[0][value]=1&&", 1, {"a"}, {1}, {NULL}},
		{"flag&gauges[0][name]=a&gauges[0][value]=1&empty=", 1, {"a"}, {1}, {NULL}},
		{"gauges[0][name]=a&gauges[0][value]=1&gauges[0][attributes][display_units_long]=ms+total&"
		 "gauges[0][attributes][x][y]=%FF&attributes[z]=1&gauges[0][color]=red&gaugesx=1&"
		 "counters[0][name]=c&counters[0][value]=2&counters[0][count]=junk",
		 2, {"a", "c"}, {1, 2}, {NULL}},
		{"gauges[0][name]=a&gauges[0][value]=%2B1&gauges[1][name]=b&gauges[1][value]=.5&"
		 "gauges[2][name]=c&gauges[2][value]=5.",
		 3, {"a", "b", "c"}, {1, 0.5, 5}, {NULL}},
		{"gauges[0][name]=a&gauges[0][value]=1E3&gauges[1][name]=b&gauges[1][value]=-2.5e-3&"
		 "gauges[01][period]=60&gauges[2][name]=c&gauges[2][value]=0",
		 3, {"a", "b", "c"}, {1000, -0.0025, 0}, {NULL}},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		must_parse(cases[i].body, true);
		expect_well_formed();
		assert_int_equal(batch.n, cases[i].n);
		for (size_t k = 0; k < cases[i].n; k++) {
			assert_string_equal(batch.m[k].name, cases[i].names[k]);
			expect_all_stats(&batch.m[k], cases[i].values[k]);
			expect_source(&batch.m[k], cases[i].sources[k]);
		}
	}
}

/* A form's summary gauge: min, max, sum_squares and the per-measurement overrides. */
static void test_form_summary(void **state)
{
	(void)state;
	must_parse("gauges[0][name]=web.latency&gauges[0][count]=5&gauges[0][sum]=140&gauges[0][min]=10&"
		   "gauges[0][max]=50&gauges[0][sum_squares]=4500&gauges[0][measure_time]=1796220544&"
		   "gauges[0][source]=web.1",
		   true);
	expect_well_formed();
	const Metric *m = &batch.m[0];
	assert_int_equal(m->present, BIT(METRIC_COUNT) | BIT(METRIC_MEAN) | BIT(METRIC_MIN) | BIT(METRIC_MAX));
	assert_true(m->v[METRIC_COUNT] == 5);
	assert_true(m->v[METRIC_MEAN] == 28);
	assert_true(m->v[METRIC_MIN] == 10);
	assert_true(m->v[METRIC_MAX] == 50);
	assert_int_equal(m->bucket_us, T_L2MET * US);
	expect_source(m, "web.1");
	/* the same measurement as l2met posts it in JSON: the same id */
	Uuid form_id = m->id;
	must_parse(L2MET, false);
	assert_int_equal(uuid_cmp(&form_id, &batch.m[0].id), 0);
}

/* Names and sources: 1..255 characters of A-Z a-z 0-9 . : - _, in every form. */
static void test_name_and_source_lengths(void **state)
{
	(void)state;
	MetricError err;
	const size_t lens[] = {1, 254, 255};
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		char name[302];
		snprintf(name, sizeof(name), "%s", rep('n', lens[i]));
		const char *source = rep('s', lens[i]);
		must_parse(q(fmt("{'gauges': [{'name': '%s', 'source': '%s', 'value': 1}]}", name, source)), false);
		assert_int_equal(batch.m[0].name_len, lens[i]);
		assert_int_equal(batch.m[0].source_len, lens[i]);
		expect_well_formed();
		must_parse(q(fmt("{'source': '%s', 'counters': {'%s': {'value': 1}}}", source, name)), false);
		assert_int_equal(batch.m[0].name_len, lens[i]);
		assert_int_equal(batch.m[0].source_len, lens[i]);
		must_parse(fmt("gauges[0][name]=%s&gauges[0][value]=1&source=%s", name, source), true);
		assert_int_equal(batch.m[0].name_len, lens[i]);
		assert_int_equal(batch.m[0].source_len, lens[i]);
	}
	const char *n256 = fmt("%s", rep('n', 256));
	char long_name[302];
	snprintf(long_name, sizeof(long_name), "%s", n256);

	assert_false(parse(q(fmt("{'gauges': [{'name': '%s', 'value': 1}]}", long_name)), false, &err));
	assert_string_equal(err.field, "gauges[0].name");
	assert_string_equal(err.msg, NAME_RULE);
	assert_false(parse(q(fmt("{'gauges': [{'name': 'a', 'source': '%s', 'value': 1}]}", long_name)), false, &err));
	assert_string_equal(err.field, "gauges[0].source");
	assert_string_equal(err.msg, SOURCE_RULE);
	assert_false(parse(fmt("counters[4][name]=%s&counters[4][value]=1", long_name), true, &err));
	assert_string_equal(err.field, "counters[4].name");
	assert_int_equal(err.index, 4);
	assert_string_equal(err.msg, NAME_RULE);

	/* A hash key too long for the field is cut so the field still shows; 63 bytes in all. */
	assert_false(parse(q(fmt("{'gauges': {'%s': {'value': 1}}}", long_name)), false, &err));
	assert_string_equal(err.msg, NAME_RULE);
	assert_int_equal(strlen(err.field), sizeof(err.field) - 1);
	assert_memory_equal(err.field, "gauges.nnnn", 11);
	assert_string_equal(err.field + strlen(err.field) - 8, "....name");
	assert_false(parse(q(fmt("{'counters': {'%s': {'value': 'x'}}}", rep('c', 255))), false, &err));
	assert_string_equal(err.msg, "value must be a number");
	assert_int_equal(strlen(err.field), sizeof(err.field) - 1);
	assert_memory_equal(err.field, "counters.cccc", 13);
	assert_string_equal(err.field + strlen(err.field) - 9, "....value");
}

/* 10,000 measurements in all, over both lists and in both encodings. */
static void test_batch_limit(void **state)
{
	(void)state;
	MetricError err;
	const struct {
		size_t gauges, counters;
		bool ok;
	} cases[] = {{10000, 0, true}, {0, 10000, true}, {5000, 5000, true},
		     {10001, 0, false}, {5000, 5001, false}, {10000, 1, false}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (int form = 0; form < 2; form++) {
			if (form && (cases[i].gauges > 10000 || cases[i].counters > 10000))
				continue; /* indices stop at 9999 */
			size_t total = cases[i].gauges + cases[i].counters, cap = total * 64 + 64, len = 0;
			char *b = malloc(cap);
			assert_non_null(b);
			if (!form)
				len += (size_t)snprintf(b + len, cap - len, "{\"gauges\": [");
			for (size_t k = 0; k < total; k++) {
				bool counter = k >= cases[i].gauges;
				size_t idx = counter ? k - cases[i].gauges : k;
				if (form)
					len += (size_t)snprintf(b + len, cap - len, "%s[%zu][name]=m%zu&%s[%zu][value]=%zu&",
								counter ? "counters" : "gauges", idx, k,
								counter ? "counters" : "gauges", idx, k);
				else
					len += (size_t)snprintf(b + len, cap - len, "%s{\"name\": \"m%zu\", \"value\": %zu}",
								counter && idx == 0 ? "], \"counters\": [" : k ? "," : "", k, k);
			}
			if (!form)
				len += (size_t)snprintf(b + len, cap - len, "]}");
			bool ok = parse_len(b, len, form, &err);
			free(b);
			assert_int_equal(ok, cases[i].ok);
			if (ok) {
				assert_int_equal(batch.n, total);
				assert_string_equal(batch.m[total - 1].name, fmt("m%zu", total - 1));
				assert_true(batch.m[total - 1].v[METRIC_MEAN] == (double)(total - 1));
			} else {
				assert_string_equal(err.msg, "a post holds at most 10000 gauges and counters");
				assert_string_equal(err.field, "");
				assert_int_equal(err.index, -1);
			}
		}
	}
	/* A form of many tiny pairs is refused before it costs memory. */
	size_t n = 200001;
	char *b = malloc(n * 2 + 1);
	assert_non_null(b);
	for (size_t k = 0; k < n; k++)
		memcpy(b + 2 * k, "a&", 2);
	assert_false(parse_len(b, n * 2, true, &err));
	free(b);
	assert_string_equal(err.msg, "a form body holds at most 200000 fields");
}

/* ---- refused bodies ---- */

typedef struct Reject {
	const char *body;
	const char *field;
	long index;
	const char *msg; /* exact, or a prefix when it ends in '*' */
} Reject;

static void expect_rejects(const Reject *cases, size_t n, bool form)
{
	for (size_t i = 0; i < n; i++) {
		MetricError err;
		const char *text = form ? cases[i].body : q(cases[i].body);
		if (parse(text, form, &err)) {
			print_error("case %zu accepted: %s\n", i, text);
			fail();
		}
		size_t ml = strlen(cases[i].msg);
		bool prefix = ml && cases[i].msg[ml - 1] == '*';
		bool same = strcmp(err.field, cases[i].field) == 0 && err.index == cases[i].index &&
			    (prefix ? strncmp(err.msg, cases[i].msg, ml - 1) == 0 : strcmp(err.msg, cases[i].msg) == 0);
		if (!same)
			print_error("case %zu: %s\n  got field '%s' index %ld: %s\n", i, text, err.field, err.index,
				    err.msg);
		assert_true(same);
	}
}

static void test_rejects_json(void **state)
{
	(void)state;
	static const Reject cases[] = {
		/* nothing to store */
		{"", "", -1, "no gauges or counters"},
		{" \r\n\t", "", -1, "no gauges or counters"},
		{"{}", "", -1, "no gauges or counters"},
		{"{'gauges': [], 'counters': {}}", "", -1, "no gauges or counters"},
		{"{'gauges': null, 'measure_time': 1796220544}", "", -1, "no gauges or counters"},
		/* the containers */
		{"[]", "", -1, "the body must be a JSON object with gauges or counters"},
		{"[{'name': 'a', 'value': 1}]", "", -1, "the body must be a JSON object with gauges or counters"},
		{"3", "", -1, "the body must be a JSON object with gauges or counters"},
		{"{'gauges': 3}", "gauges", -1, "gauges must be an array or an object"},
		{"{'gauges': 'a'}", "gauges", -1, "gauges must be an array or an object"},
		{"{'gauges': [], 'counters': true}", "counters", -1, "counters must be an array or an object"},
		{"{'gauges': [3]}", "gauges[0]", 0, "a gauge must be a JSON object"},
		{"{'gauges': [{'name': 'a', 'value': 1}, []]}", "gauges[1]", 1, "a gauge must be a JSON object"},
		{"{'counters': {'c': 3}}", "counters.c", 0, "a counter must be a JSON object"},
		{"{'gauges': [{'name': 'a', 'value': 1, 'attributes': 'ms'}]}", "gauges[0].attributes", 0,
		 "attributes must be an object"},
		/* malformed */
		{"{'gauges': [", "", -1, "malformed JSON at line 1 column 12: *"},
		{"{'gauges': [\n{'name': 'a',, }]}", "", -1, "malformed JSON at line 2 column 14: string or '}' expected near ','"},
		{"{'gauges': [{'name': 'a', 'value': 1}]} x", "", -1, "malformed JSON at line 1 column 41: *"},
		{"{'gauges': {'a': {'value': 1}, 'a': {'value': 2}}}", "", -1,
		 "malformed JSON at line 1 column 34: duplicate object key*"},
		{"{'gauges': [{'name': 'a\\u0000b', 'value': 1}]}", "", -1, "malformed JSON at *"},
		{"{'gauges': [{'name': 'a', 'value': 1e400}]}", "", -1, "malformed JSON at *"},
		/* names */
		{"{'gauges': [{'value': 1}]}", "gauges[0].name", 0, "name is required"},
		{"{'gauges': [{'name': null, 'value': 1}]}", "gauges[0].name", 0, "name is required"},
		{"{'gauges': [{'name': 'a', 'value': 1}, {'name': 'a b', 'value': 1}]}", "gauges[1].name", 1, NAME_RULE},
		{"{'gauges': [{'name': '', 'value': 1}]}", "gauges[0].name", 0, NAME_RULE},
		{"{'gauges': [{'name': 5, 'value': 1}]}", "gauges[0].name", 0, NAME_RULE},
		{"{'gauges': [{'name': 'w\\u00e9b', 'value': 1}]}", "gauges[0].name", 0, NAME_RULE},
		{"{'gauges': [{'name': 'a/b', 'value': 1}]}", "gauges[0].name", 0, NAME_RULE},
		{"{'counters': [{'name': 'a,b', 'value': 1}]}", "counters[0].name", 0, NAME_RULE},
		{"{'gauges': {'ok': {'value': 1}, 'a b': {'value': 1}}}", "gauges.a b.name", 1, NAME_RULE},
		{"{'gauges': {'': {'value': 1}}}", "gauges..name", 0, NAME_RULE},
		{"{'gauges': {'w\\u00e9b\\n': {'value': 1}}}", "gauges.w??b?.name", 0, NAME_RULE},
		/* sources */
		{"{'gauges': [{'name': 'a', 'value': 1, 'source': 'a/b'}]}", "gauges[0].source", 0, SOURCE_RULE},
		{"{'gauges': [{'name': 'a', 'value': 1, 'source': ''}]}", "gauges[0].source", 0, SOURCE_RULE},
		{"{'gauges': [{'name': 'a', 'value': 1, 'source': 7}]}", "gauges[0].source", 0, SOURCE_RULE},
		{"{'gauges': {'a': {'value': 1, 'source': ['x']}}}", "gauges.a.source", 0, SOURCE_RULE},
		{"{'source': 'x y', 'gauges': [{'name': 'a', 'value': 1}]}", "source", -1, SOURCE_RULE},
		{"{'source': 3, 'gauges': [{'name': 'a', 'value': 1}]}", "source", -1, SOURCE_RULE},
		/* measure_time */
		{"{'gauges': [{'name': 'a', 'value': 1, 'measure_time': true}]}", "gauges[0].measure_time", 0, TIME_FORM},
		{"{'gauges': [{'name': 'a', 'value': 1, 'measure_time': '12a'}]}", "gauges[0].measure_time", 0, TIME_FORM},
		{"{'gauges': [{'name': 'a', 'value': 1, 'measure_time': ''}]}", "gauges[0].measure_time", 0, TIME_FORM},
		{"{'gauges': [{'name': 'a', 'value': 1, 'measure_time': '-5'}]}", "gauges[0].measure_time", 0, TIME_FORM},
		{"{'gauges': [{'name': 'a', 'value': 1, 'measure_time': '1796220544.5'}]}", "gauges[0].measure_time", 0,
		 TIME_FORM},
		{"{'gauges': [{'name': 'a', 'value': 1, 'measure_time': '2026-12-02T00:00:00Z'}]}",
		 "gauges[0].measure_time", 0, TIME_FORM},
		{"{'gauges': [{'name': 'a', 'value': 1, 'measure_time': -1}]}", "gauges[0].measure_time", 0, TIME_RANGE},
		{"{'gauges': [{'name': 'a', 'value': 1, 'measure_time': 253402300800}]}", "gauges[0].measure_time", 0,
		 TIME_RANGE},
		{"{'gauges': [{'name': 'a', 'value': 1, 'measure_time': '253402300800'}]}", "gauges[0].measure_time", 0,
		 TIME_RANGE},
		{"{'gauges': [{'name': 'a', 'value': 1, 'measure_time': 1e300}]}", "gauges[0].measure_time", 0, TIME_RANGE},
		{"{'gauges': [{'name': 'a', 'value': 1, 'measure_time': '99999999999999999999999'}]}",
		 "gauges[0].measure_time", 0, TIME_RANGE},
		{"{'counters': {'c': {'value': 1, 'measure_time': {}}}}", "counters.c.measure_time", 0, TIME_FORM},
		{"{'measure_time': [], 'gauges': [{'name': 'a', 'value': 1}]}", "measure_time", -1, TIME_FORM},
		{"{'measure_time': -86400, 'gauges': [{'name': 'a', 'value': 1}]}", "measure_time", -1, TIME_RANGE},
		/* value */
		{"{'gauges': [{'name': 'a', 'value': '3 '}]}", "gauges[0].value", 0, "value must be a number"},
		{"{'gauges': [{'name': 'a', 'value': '0x10'}]}", "gauges[0].value", 0, "value must be a number"},
		{"{'gauges': [{'name': 'a', 'value': 'nan'}]}", "gauges[0].value", 0, "value must be a number"},
		{"{'gauges': [{'name': 'a', 'value': ''}]}", "gauges[0].value", 0, "value must be a number"},
		{"{'gauges': [{'name': 'a', 'value': true}]}", "gauges[0].value", 0, "value must be a number"},
		{"{'gauges': [{'name': 'a', 'value': 1.1e100}]}", "gauges[0].value", 0,
		 "value must be between -1e100 and 1e100"},
		{"{'gauges': [{'name': 'a', 'value': -1e101}]}", "gauges[0].value", 0,
		 "value must be between -1e100 and 1e100"},
		{"{'gauges': [{'name': 'a', 'value': 1e-101}]}", "gauges[0].value", 0,
		 "value must be 0 or of magnitude at least 1e-100"},
		{"{'gauges': [{'name': 'a', 'value': -9e-101}]}", "gauges[0].value", 0,
		 "value must be 0 or of magnitude at least 1e-100"},
		{"{'gauges': {'a': {'value': 1, 'count': 1}}}", "gauges.a.count", 0, VALUE_WITH},
		{"{'gauges': [{'name': 'a', 'value': 1, 'count': 1, 'sum': 1}]}", "gauges[0].count", 0, VALUE_WITH},
		{"{'gauges': [{'name': 'a', 'value': 1, 'sum': 1}]}", "gauges[0].sum", 0, VALUE_WITH},
		{"{'gauges': [{'name': 'a', 'value': 1, 'min': 1}]}", "gauges[0].min", 0, VALUE_WITH},
		{"{'gauges': [{'name': 'a', 'value': 1, 'sum_squares': 1}]}", "gauges[0].sum_squares", 0, VALUE_WITH},
		/* count and sum */
		{"{'gauges': [{'name': 'a'}]}", "gauges[0].value", 0, "a gauge needs value, or count and sum"},
		{"{'gauges': [{'name': 'a', 'min': 1, 'max': 2}]}", "gauges[0].value", 0,
		 "a gauge needs value, or count and sum"},
		{"{'gauges': [{'name': 'a', 'count': 2}]}", "gauges[0].sum", 0, "sum is required with count"},
		{"{'gauges': [{'name': 'a', 'sum': 2}]}", "gauges[0].count", 0, "count is required with sum"},
		{"{'gauges': [{'name': 'a', 'count': 0, 'sum': 0}]}", "gauges[0].count", 0,
		 "count must be a whole number of at least 1"},
		{"{'gauges': [{'name': 'a', 'count': 1.5, 'sum': 3}]}", "gauges[0].count", 0,
		 "count must be a whole number of at least 1"},
		{"{'gauges': [{'name': 'a', 'count': -2, 'sum': 3}]}", "gauges[0].count", 0,
		 "count must be a whole number of at least 1"},
		{"{'gauges': [{'name': 'a', 'count': 1e101, 'sum': 3}]}", "gauges[0].count", 0,
		 "count must be between -1e100 and 1e100"},
		{"{'gauges': [{'name': 'a', 'count': 'two', 'sum': 3}]}", "gauges[0].count", 0, "count must be a number"},
		{"{'gauges': [{'name': 'a', 'count': 2, 'sum': null}]}", "gauges[0].sum", 0, "sum is required with count"},
		{"{'gauges': [{'name': 'a', 'count': 2, 'sum': 2e100}]}", "gauges[0].sum", 0,
		 "sum must be between -1e100 and 1e100"},
		{"{'gauges': [{'name': 'a', 'count': 10, 'sum': 1e-100}]}", "gauges[0].sum", 0,
		 "sum / count must be 0 or of magnitude at least 1e-100"},
		{"{'gauges': [{'name': 'a', 'count': 1e100, 'sum': -1e-10}]}", "gauges[0].sum", 0,
		 "sum / count must be 0 or of magnitude at least 1e-100"},
		{"{'gauges': [{'name': 'a', 'count': 2, 'sum': 3, 'min': 2, 'max': 1}]}", "gauges[0].min", 0,
		 "min must not be more than max"},
		{"{'gauges': [{'name': 'a', 'count': 2, 'sum': 3, 'min': 'x'}]}", "gauges[0].min", 0,
		 "min must be a number"},
		{"{'gauges': [{'name': 'a', 'count': 2, 'sum': 3, 'max': 2e100}]}", "gauges[0].max", 0,
		 "max must be between -1e100 and 1e100"},
		{"{'gauges': [{'name': 'a', 'count': 2, 'sum': 3, 'sum_squares': {}}]}", "gauges[0].sum_squares", 0,
		 "sum_squares must be a number"},
		{"{'gauges': [{'name': 'a', 'value': 1, 'period': '60s'}]}", "gauges[0].period", 0,
		 "period must be a number"},
		/* counters */
		{"{'counters': [{'name': 'c'}]}", "counters[0].value", 0, "value is required"},
		{"{'counters': [{'name': 'c', 'count': 2, 'sum': 4}]}", "counters[0].value", 0, "value is required"},
		{"{'counters': [{'name': 'c', 'value': 'x'}]}", "counters[0].value", 0, "value must be a number"},
		{"{'counters': [{'name': 'c', 'value': 1e-200}]}", "counters[0].value", 0,
		 "value must be 0 or of magnitude at least 1e-100"},
		/* positions are counted within each list */
		{"{'gauges': [{'name': 'a', 'value': 1}], 'counters': [{'name': 'b', 'value': 1}, {'name': 'c'}]}",
		 "counters[1].value", 1, "value is required"},
		{"{'gauges': {'a': {'value': 1}, 'b': {'value': 1}, 'c': {'count': 0, 'sum': 1}}}", "gauges.c.count", 2,
		 "count must be a whole number of at least 1"},
	};
	expect_rejects(cases, sizeof(cases) / sizeof(cases[0]), false);
}

static void test_rejects_form(void **state)
{
	(void)state;
	static const Reject cases[] = {
		{"", "", -1, "no gauges or counters"},
		{"&&&", "", -1, "no gauges or counters"},
		{"measure_time=1796220544&source=web.1", "", -1, "no gauges or counters"},
		/* encoding */
		{"gauges[0][name]=a%zz&gauges[0][value]=1", "", -1,
		 "bad percent-encoding at offset 17 (% must be followed by two hex digits)"},
		{"gauges[0][value]=1&gauges[0][name]=a%", "", -1,
		 "bad percent-encoding at offset 36 (% must be followed by two hex digits)"},
		{"gauges[0][value]=1&gauges[0][name]=a%4", "", -1,
		 "bad percent-encoding at offset 36 (% must be followed by two hex digits)"},
		{"gauges[0][value]=1&gauges[0][name]=a%4&x=1", "", -1,
		 "bad percent-encoding at offset 36 (% must be followed by two hex digits)"},
		{"gauges%5[0][name]=a", "", -1, "bad percent-encoding at offset 6 (% must be followed by two hex digits)"},
		{"gauges[0][name]=a%00b&gauges[0][value]=1", "", -1, "a NUL byte at offset 17"},
		{"x%00=1&gauges[0][name]=a&gauges[0][value]=1", "", -1, "a NUL byte at offset 1"},
		/* duplicates, also when spelled apart */
		{"gauges[0][name]=a&gauges[0][value]=1&gauges[0][value]=2", "gauges[0].value", 0,
		 "gauges[0].value is given more than once"},
		{"gauges[1][name]=a&gauges[01][name]=b&gauges[1][value]=1", "gauges[1].name", 1,
		 "gauges[1].name is given more than once"},
		{"gauges%5B0%5D%5Bname%5D=a&gauges[0][name]=a&gauges[0][value]=1", "gauges[0].name", 0,
		 "gauges[0].name is given more than once"},
		{"source=a&source=b&gauges[0][name]=a&gauges[0][value]=1", "source", -1,
		 "source is given more than once"},
		{"measure_time=1&gauges[0][name]=a&gauges[0][value]=1&measure_time=1", "measure_time", -1,
		 "measure_time is given more than once"},
		{"foo=1&gauges[0][name]=a&gauges[0][value]=1&foo", "foo", -1, "foo is given more than once"},
		{"gauges[0][name]=a&gauges[0][value]=1&gauges[0][attributes][x]=1&gauges[0][attributes][x]=2",
		 "gauges[0][attributes][x]", 0, "gauges[0][attributes][x] is given more than once"},
		/* keys */
		{"gauges[10000][name]=a&gauges[10000][value]=1", "gauges[10000][name]", -1,
		 "the index must be a whole number below 10000"},
		{"counters[99999999999999999999][name]=a", "counters[99999999999999999999][name]", -1,
		 "the index must be a whole number below 10000"},
		{"gauges[x][name]=a", "gauges[x][name]", -1, "a key must look like gauges[0][name]"},
		{"gauges[-1][name]=a", "gauges[-1][name]", -1, "a key must look like gauges[0][name]"},
		{"gauges[][name]=a", "gauges[][name]", -1, "a key must look like gauges[0][name]"},
		{"gauges=1", "gauges", -1, "a key must look like gauges[0][name]"},
		{"gauges[=1", "gauges[", -1, "a key must look like gauges[0][name]"},
		{"gauges[0]=1", "gauges[0]", -1, "a key must look like gauges[0][name]"},
		{"gauges[0]name=1", "gauges[0]name", -1, "a key must look like gauges[0][name]"},
		{"gauges[0][name=a", "gauges[0][name", -1, "a key must look like gauges[0][name]"},
		{"gauges[0][name]x=a", "gauges[0][name]x", -1, "a key must look like gauges[0][name]"},
		{"counters[0][value][x]=1", "counters[0][value][x]", -1, "a key must look like counters[0][name]"},
		{"counters=%0A", "counters", -1, "a key must look like counters[0][name]"},
		{"gauges[0]%0A=1", "gauges[0]?", -1, "a key must look like gauges[0][name]"},
		/* fields */
		{"gauges[0][value]=1", "gauges[0].name", 0, "name is required"},
		{"gauges[3][attributes][x]=1", "gauges[3].name", 3, "name is required"},
		{"gauges[0][name]=a+b&gauges[0][value]=1", "gauges[0].name", 0, NAME_RULE},
		{"gauges[0][name]=&gauges[0][value]=1", "gauges[0].name", 0, NAME_RULE},
		{"gauges[0][name]=a&gauges[0][value]=1&gauges[0][source]=a%2Fb", "gauges[0].source", 0, SOURCE_RULE},
		{"source=&gauges[0][name]=a&gauges[0][value]=1", "source", -1, SOURCE_RULE},
		{"measure_time=1796220544.5&gauges[0][name]=a&gauges[0][value]=1", "measure_time", -1, TIME_FORM},
		{"measure_time=&gauges[0][name]=a&gauges[0][value]=1", "measure_time", -1, TIME_FORM},
		{"measure_time=253402300800&gauges[0][name]=a&gauges[0][value]=1", "measure_time", -1, TIME_RANGE},
		{"gauges[2][name]=a&gauges[2][value]=1&gauges[2][measure_time]=soon", "gauges[2].measure_time", 2,
		 TIME_FORM},
		{"gauges[0][name]=a&gauges[0][value]=abc", "gauges[0].value", 0, "value must be a number"},
		{"gauges[0][name]=a&gauges[0][value]=", "gauges[0].value", 0, "value must be a number"},
		{"gauges[0][name]=a&gauges[0][value]=1e", "gauges[0].value", 0, "value must be a number"},
		{"gauges[0][name]=a&gauges[0][value]=0x10", "gauges[0].value", 0, "value must be a number"},
		{"gauges[0][name]=a&gauges[0][value]=+1", "gauges[0].value", 0, "value must be a number"},
		{"gauges[0][name]=a&gauges[0][value]=inf", "gauges[0].value", 0, "value must be a number"},
		{"gauges[0][name]=a&gauges[0][value]=nan", "gauges[0].value", 0, "value must be a number"},
		{"gauges[0][name]=a&gauges[0][value]=.", "gauges[0].value", 0, "value must be a number"},
		{"gauges[0][name]=a&gauges[0][value]=1.2.3", "gauges[0].value", 0, "value must be a number"},
		{"gauges[0][name]=a&gauges[0][value]=1e400", "gauges[0].value", 0,
		 "value must be between -1e100 and 1e100"},
		{"gauges[0][name]=a&gauges[0][value]=1e-150", "gauges[0].value", 0,
		 "value must be 0 or of magnitude at least 1e-100"},
		{"gauges[0][name]=a&gauges[0][value]=1&gauges[0][count]=1", "gauges[0].count", 0, VALUE_WITH},
		{"gauges[0][name]=a&gauges[0][count]=2.5&gauges[0][sum]=5", "gauges[0].count", 0,
		 "count must be a whole number of at least 1"},
		{"gauges[0][name]=a&gauges[0][count]=2&gauges[0][sum]=5&gauges[0][sum_squares]=1e999",
		 "gauges[0].sum_squares", 0, "sum_squares must be a number"},
		{"gauges[0][name]=a&gauges[0][count]=2", "gauges[0].sum", 0, "sum is required with count"},
		{"gauges[0][name]=a&gauges[0][count]=2&gauges[0][sum]=5&gauges[0][min]=3&gauges[0][max]=2",
		 "gauges[0].min", 0, "min must not be more than max"},
		{"counters[0][name]=c&counters[0][count]=1", "counters[0].value", 0, "value is required"},
		{"gauges[5][name]=a&gauges[5][value]=1&counters[7][name]=c", "counters[7].value", 7, "value is required"},
	};
	expect_rejects(cases, sizeof(cases) / sizeof(cases[0]), true);
}

/* A NUL byte sent as is, and bodies not NUL-terminated: only len bytes are read. */
static void test_raw_bytes(void **state)
{
	(void)state;
	MetricError err;
	static const char with_nul[] = "gauges[0][name]=a\0b&gauges[0][value]=1";
	assert_false(parse_len(with_nul, sizeof(with_nul) - 1, true, &err));
	assert_string_equal(err.msg, "a NUL byte at offset 17");
	assert_false(parse_len("{\"gauges\": [{\"name\": \"a\", \"value\": 1}]}\0", 40, false, &err));
	assert_true(strncmp(err.msg, "malformed JSON", 14) == 0);

	const char form[] = "gauges[0][name]=ab&gauges[0][value]=12";
	char *exact = malloc(sizeof(form) - 1); /* ASan notices a read past the end */
	assert_non_null(exact);
	memcpy(exact, form, sizeof(form) - 1);
	assert_true(parse_len(exact, sizeof(form) - 1, true, &err));
	expect_all_stats(&batch.m[0], 12);
	assert_true(parse_len(exact, sizeof(form) - 2, true, &err));
	expect_all_stats(&batch.m[0], 1);
	assert_true(parse_len(exact, 18, true, &err) == false);
	assert_string_equal(err.msg, "a gauge needs value, or count and sum");
	free(exact);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_l2met_payload, teardown),
		cmocka_unit_test_teardown(test_l2met_strings, teardown),
		cmocka_unit_test_teardown(test_ids_stable, teardown),
		cmocka_unit_test_teardown(test_hash_form, teardown),
		cmocka_unit_test_teardown(test_counters, teardown),
		cmocka_unit_test_teardown(test_defaults_and_overrides, teardown),
		cmocka_unit_test_teardown(test_measure_time_forms, teardown),
		cmocka_unit_test_teardown(test_statistics_mapping, teardown),
		cmocka_unit_test_teardown(test_form_example, teardown),
		cmocka_unit_test_teardown(test_form_shapes, teardown),
		cmocka_unit_test_teardown(test_form_summary, teardown),
		cmocka_unit_test_teardown(test_name_and_source_lengths, teardown),
		cmocka_unit_test_teardown(test_batch_limit, teardown),
		cmocka_unit_test_teardown(test_rejects_json, teardown),
		cmocka_unit_test_teardown(test_rejects_form, teardown),
		cmocka_unit_test_teardown(test_raw_bytes, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
