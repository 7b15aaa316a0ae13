/* Unit tests of graphite: the globs of Grafana's queries and the PostgreSQL regex that
 * pre-filters them, Graphite's from/until forms, target parsing and its errors, every function's
 * values and names on small hand-computed series with nulls (a fake fetch serves them), the
 * consolidation for maxDataPoints, and the JSON of /render and /functions as Grafana reads it.
 * N is a null point. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graphite.h"
#include "query.h"
#include "unit.h"

#define N NAN
#define NOW INT64_C(1700000000) /* 2023-11-14T22:13:20Z */
#define T0 INT64_C(1699999200)  /* an hour boundary before NOW: 2023-11-14T22:00:00Z */

/* ---------- globs ---------- */

static bool glob(const char *g, const char *s)
{
	return graphite_glob_match(g, strlen(g), s, strlen(s));
}

static void test_glob_match(void **state)
{
	(void)state;
	const struct {
		const char *glob, *s;
		bool want;
	} cases[] = {
		{"web", "web", true},
		{"web", "we", false},
		{"web", "webs", false},
		{"", "", true},
		/* * : any run, also empty */
		{"*", "", true},
		{"*", "anything", true},
		{"w*", "web", true},
		{"w*", "w", true},
		{"w*", "xweb", false},
		{"*b", "web", true},
		{"*b", "bee", false},
		{"w*b", "web", true},
		{"w*b", "wb", true},
		{"w*b", "webs", false},
		{"*e*", "web", true},
		{"*e*", "wb", false},
		{"a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaac", false}, /* no backtracking blow-up */
		{"a*a*a*a*b", "aaaaaaaaab", true},
		{"**", "x", true},
		/* ? : one character, a UTF-8 character rather than a byte */
		{"?", "a", true},
		{"?", "", false},
		{"?", "ab", false},
		{"w?b", "web", true},
		{"w?b", "wb", false},
		{"?", "\xc3\xa9", true},     /* é */
		{"??", "\xc3\xa9", false},
		{"caf?", "caf\xc3\xa9", true},
		{"?\xe2\x82\xac", "1\xe2\x82\xac", true}, /* ?€ */
		/* classes */
		{"[abc]", "b", true},
		{"[abc]", "d", false},
		{"[a-c]x", "bx", true},
		{"[a-c]x", "dx", false},
		{"host[0-9][0-9]", "host07", true},
		{"host[0-9][0-9]", "host7", false},
		{"[!a-c]", "d", true},
		{"[!a-c]", "b", false},
		{"[^a-c]", "d", true},
		{"[^a-c]", "a", false},
		{"[]a]", "]", true}, /* ']' first is a member */
		{"[]a]", "a", true},
		{"[!]]", "]", false},
		{"[!]]", "x", true},
		{"[a-]", "-", true},
		{"[a-]", "b", false},
		{"[\xc3\xa9\xc3\xa8]", "\xc3\xa8", true}, /* [éè] */
		{"[\xc3\xa0-\xc3\xbf]", "\xc3\xa9", true}, /* [à-ÿ] */
		{"[a-z]", "\xc3\xa9", false},
		{"[!a-z]", "\xc3\xa9", true},
		/* braces: alternatives with globs inside */
		{"{web,db}", "web", true},
		{"{web,db}", "db", true},
		{"{web,db}", "dbx", false},
		{"{web,db}", "", false},
		{"x{a,}", "x", true}, /* an empty alternative */
		{"x{a,}", "xa", true},
		{"{a*,b?c,[0-9]x}", "alpha", true},
		{"{a*,b?c,[0-9]x}", "bxc", true},
		{"{a*,b?c,[0-9]x}", "7x", true},
		{"{a*,b?c,[0-9]x}", "bc", false},
		{"{a*,b?c,[0-9]x}", "zx", false},
		{"{[,}],x}", ",", true}, /* a ',' or '}' in a class is a member, not structure */
		{"{[,}],x}", "}", true},
		{"{[,}],x}", "x", true},
		{"pre{1,2}post{a,b}", "pre2posta", true},
		{"pre{1,2}post{a,b}", "pre3posta", false},
		{"*{x,y}", "abcy", true},
		/* not a glob: unclosed [ and { are characters */
		{"a[b", "a[b", true},
		{"a{b", "a{b", true},
		{"a}b", "a}b", true},
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++)
		if (glob(cases[i].glob, cases[i].s) != cases[i].want)
			fail_msg("glob %s on '%s': want %d", cases[i].glob, cases[i].s, cases[i].want);
}

/* Globs at the length limit made of braces: every alternative is a state of the simulation. */
static void test_glob_match_long_braces(void **state)
{
	(void)state;
	char g[GRAPHITE_PATTERN_MAX + 1] = "", s[300];
	for (int i = 0; i < 256; i++) /* {a,}{a,}...: up to 256 a's */
		strcat(g, "{a,}");
	assert_int_equal(strlen(g), GRAPHITE_PATTERN_MAX);
	for (size_t n = 0; n <= 257; n++) {
		memset(s, 'a', n);
		if (graphite_glob_match(g, strlen(g), s, n) != (n <= 256))
			fail_msg("%zu a's", n);
	}
	strcpy(g, "{");
	while (strlen(g) < GRAPHITE_PATTERN_MAX - 2) /* {,,,,...,x} */
		strcat(g, ",");
	strcat(g, "x}");
	assert_true(graphite_glob_match(g, strlen(g), "", 0));
	assert_true(graphite_glob_match(g, strlen(g), "x", 1));
	assert_false(graphite_glob_match(g, strlen(g), "y", 1));
}

static void test_path_match(void **state)
{
	(void)state;
	const struct {
		const char *pattern, *path;
		bool want;
	} cases[] = {
		{"app.web.latency.mean", "app.web.latency.mean", true},
		{"app.*.latency.mean", "app.web.latency.mean", true},
		{"app.*.latency.mean", "app.web.latency.max", false},
		{"app.*.latency.*", "app.web.latency.perc95", true},
		{"app.*", "app.web.latency", false}, /* a glob segment never spans a dot */
		{"app.*.*", "app.web.latency", true},
		{"app.{web,db}.*.{mean,max}", "app.db.q.max", true},
		{"app.{web,db}.*.{mean,max}", "app.api.q.max", false},
		{"*", "app", true},
		{"*", "app.web", false},
		{"a.b", "a.b.c", false},
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		const char *p = cases[i].pattern, *s = cases[i].path;
		if (graphite_path_match(p, strlen(p), s, strlen(s)) != cases[i].want)
			fail_msg("pattern %s on %s: want %d", p, s, cases[i].want);
	}
}

static void test_segments(void **state)
{
	(void)state;
	const char *s = "app.web.latency";
	size_t len = strlen(s), n;
	const char *seg;
	assert_int_equal(graphite_nsegs(s, len), 3);
	assert_int_equal(graphite_nsegs("a", 1), 1);
	assert_int_equal(graphite_nsegs("a..b", 4), 3);
	const struct {
		long i;
		const char *want; /* NULL: no such segment */
	} cases[] = {{0, "app"}, {1, "web"}, {2, "latency"}, {3, NULL}, {-1, "latency"},
		     {-3, "app"}, {-4, NULL}, {100, NULL}};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		bool ok = graphite_seg(s, len, cases[i].i, &seg, &n);
		if (!cases[i].want) {
			assert_false(ok);
			continue;
		}
		assert_true(ok);
		assert_int_equal(n, strlen(cases[i].want));
		assert_memory_equal(seg, cases[i].want, n);
	}
	assert_true(graphite_seg("a..b", 4, 1, &seg, &n));
	assert_int_equal(n, 0);
}

static void test_pattern_check(void **state)
{
	(void)state;
	char err[200];
	const char *good[] = {"a", "app.web.*.mean", "{a,b}.c", "[a-z]x.[!0-9]", "[]].x", "a,b(c)", "caf\xc3\xa9.*",
			      "x{a,}", "{[,}],x}"};
	for (size_t i = 0; i < ARRAY_LEN(good); i++)
		if (!graphite_pattern_check(good[i], strlen(good[i]), err, sizeof(err)))
			fail_msg("refused %s: %s", good[i], err);
	const struct {
		const char *p, *why;
	} bad[] = {
		{"", "empty"},
		{"a..b", "empty segment"},
		{".a", "empty segment"},
		{"a.", "end with '.'"},
		{"a.[bc", "not closed"},
		{"a.b]", "has no ["},
		{"a.{b,c", "not closed"},
		{"a.b}", "has no {"},
		{"{a,{b,c}}", "nested"},
		{"{a.b,c}", "'.'"},
		{"[a.b]", "'.'"},
		{"[z-a]", "ends before it starts"},
		{"a\tb", "control"},
		{"a\x7f", "control"},
		{"a\xc2\x85", "control"}, /* U+0085, a C1 control */
		{"\xff", "UTF-8"},
	};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		err[0] = '\0';
		if (graphite_pattern_check(bad[i].p, strlen(bad[i].p), err, sizeof(err)))
			fail_msg("accepted %s", bad[i].p);
		if (!strstr(err, bad[i].why))
			fail_msg("%s: '%s' does not say %s", bad[i].p, err, bad[i].why);
	}
	char big[GRAPHITE_PATTERN_MAX + 2];
	memset(big, 'a', sizeof(big));
	assert_true(graphite_pattern_check(big, GRAPHITE_PATTERN_MAX, err, sizeof(err)));
	assert_false(graphite_pattern_check(big, GRAPHITE_PATTERN_MAX + 1, err, sizeof(err)));
	assert_non_null(strstr(err, "at most 1024 bytes"));
}

/* ---------- the PostgreSQL pre-filter ---------- */

static void test_glob_regex(void **state)
{
	(void)state;
	const struct {
		const char *pattern;
		int nsegs;
		const char *want;
	} cases[] = {
		{"a.b.c", 3, "^a\\.b\\.c(\\.|$)"},
		{"a.b.c", 2, "^a\\.b(\\.|$)"},
		{"a.b.c", 1, "^a(\\.|$)"},
		{"a.b.c", 0, ""},
		{"a.b.c", -1, ""},
		{"a.b.c", 9, "^a\\.b\\.c(\\.|$)"},
		{"app.*.latency", 3, "^app\\.[^.]*\\.latency(\\.|$)"},
		{"x**y", 1, "^x[^.]*y(\\.|$)"},
		{"b?", 1, "^b[^.](\\.|$)"},
		{"[a-c]x", 1, "^[a-c]x(\\.|$)"},
		{"h[0-9A-F]", 1, "^h[0-9A-F](\\.|$)"},
		{"[!a-c]", 1, "^[^.a-c](\\.|$)"},
		{"[^xy]", 1, "^[^.xy](\\.|$)"},
		{"[]a]", 1, "^[\\]a](\\.|$)"},
		{"[a^-]", 1, "^[a\\^\\-](\\.|$)"},
		{"[+-/]", 1, "^[^.](\\.|$)"}, /* a punctuation range: looser */
		{"{web,db}.*", 2, "^(?:web|db)\\.[^.]*(\\.|$)"},
		{"{a*,b?c,[0-9]x}", 1, "^(?:a[^.]*|b[^.]c|[0-9]x)(\\.|$)"},
		{"x{a,}", 1, "^x(?:a|)(\\.|$)"},
		{"a-b_c:d", 1, "^a\\-b_c\\:d(\\.|$)"},
		{"a(b)|c$^+\\", 1, "^a\\(b\\)\\|c\\$\\^\\+\\\\(\\.|$)"},
		{"caf\xc3\xa9?", 1, "^caf\xc3\xa9[^.](\\.|$)"},
		{"a,b", 1, "^a\\,b(\\.|$)"},
	};
	Buf b = {0};
	char err[200];
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		if (!graphite_glob_regex(cases[i].pattern, cases[i].nsegs, &b, err, sizeof(err)))
			fail_msg("%s: %s", cases[i].pattern, err);
		if (strcmp(b.p, cases[i].want) != 0)
			fail_msg("%s, %d: got %s, want %s", cases[i].pattern, cases[i].nsegs, b.p, cases[i].want);
		if (!query_regex_check(b.p, b.len, err, sizeof(err)))
			fail_msg("%s: %s fails the regex check: %s", cases[i].pattern, b.p, err);
	}
	/* "" into a buffer never used before is still a C string. */
	Buf fresh = {0};
	assert_true(graphite_glob_regex("a.b", 0, &fresh, err, sizeof(err)));
	assert_string_equal(fresh.p, "");
	buf_free(&fresh);
	assert_false(graphite_glob_regex("a..b", 2, &b, err, sizeof(err)));
	assert_non_null(strstr(err, "empty segment"));
	assert_false(graphite_glob_regex("[z-a]", 1, &b, err, sizeof(err)));
	buf_free(&b);
}

/* Past 16 '*' the regex keeps the segments that fit and requires that more follow. */
static void test_glob_regex_quantifier_budget(void **state)
{
	(void)state;
	Buf b = {0}, want = {0};
	char err[200], pattern[200] = "";
	for (int i = 0; i < 20; i++)
		strcat(pattern, i ? ".*" : "*");
	assert_true(graphite_glob_regex(pattern, 20, &b, err, sizeof(err)));
	buf_addc(&want, '^');
	for (int i = 0; i < 16; i++)
		buf_adds(&want, i ? "\\.[^.]*" : "[^.]*");
	buf_adds(&want, "\\.");
	assert_string_equal(b.p, want.p);
	assert_true(query_regex_check(b.p, b.len, err, sizeof(err)));
	/* Exactly 16 fit. */
	assert_true(graphite_glob_regex(pattern, 16, &b, err, sizeof(err)));
	assert_string_equal(b.p + b.len - 6, "(\\.|$)");
	/* One segment needing 17: no constraint at all, the C-side match decides. */
	assert_true(graphite_glob_regex("a*b*c*d*e*f*g*h*i*j*k*l*m*n*o*p*q*r.x", 2, &b, err, sizeof(err)));
	assert_string_equal(b.p, "");
	/* Runs of '*' and '*' in braces count once each. */
	assert_true(graphite_glob_regex("{a*,b*}**.*", 2, &b, err, sizeof(err)));
	assert_string_equal(b.p, "^(?:a[^.]*|b[^.]*)[^.]*\\.[^.]*(\\.|$)");
	buf_free(&b);
	buf_free(&want);
}

/* ---------- time ---------- */

static void test_parse_time(void **state)
{
	(void)state;
	const int64_t day = 86400;
	const struct {
		const char *in;
		int64_t want;
	} ok[] = {
		{"now", NOW},
		{"NOW", NOW},
		{"-30s", NOW - 30},
		{"-10sec", NOW - 10},
		{"-10secs", NOW - 10},
		{"-1second", NOW - 1},
		{"-3seconds", NOW - 3},
		{"-5min", NOW - 300},
		{"-5m", NOW - 300},
		{"-5mins", NOW - 300},
		{"-1minute", NOW - 60},
		{"-2minutes", NOW - 120},
		{"-6h", NOW - 6 * 3600},
		{"-1hour", NOW - 3600},
		{"-2hours", NOW - 7200},
		{"-7d", NOW - 7 * day},
		{"-1day", NOW - day},
		{"-2days", NOW - 2 * day},
		{"-2w", NOW - 14 * day},
		{"-1week", NOW - 7 * day},
		{"-2weeks", NOW - 14 * day},
		{"-1mon", NOW - 30 * day},
		{"-1month", NOW - 30 * day},
		{"-2months", NOW - 60 * day},
		{"-1y", NOW - 365 * day},
		{"-1year", NOW - 365 * day},
		{"-2years", NOW - 730 * day},
		{"now-6h", NOW - 6 * 3600},
		{"now+1h", NOW + 3600},
		{"+1h", NOW + 3600},
		{"-1h30min", NOW - 5400},
		{"-6H", NOW - 6 * 3600},
		{"12:30_20240101", utc(2024, 1, 1, 12, 30, 0) / US},
		{"12:3020240101", utc(2024, 1, 1, 12, 30, 0) / US},
		{"00:00_19700101", 0},
		{"23:59_99991231", utc(9999, 12, 31, 23, 59, 0) / US},
		{"20240101", utc(2024, 1, 1, 0, 0, 0) / US},
		{"20240229", utc(2024, 2, 29, 0, 0, 0) / US},
		{"19700101", 0},
		{"20240101+1d", utc(2024, 1, 2, 0, 0, 0) / US},
		{"20240101-1h", utc(2023, 12, 31, 23, 0, 0) / US},
		{"1700000000", 1700000000},
		{"0", 0},
		{"253402300799", 253402300799},
		{"12345678", 12345678},    /* not a date (month 56): Unix seconds, as in Graphite */
		{"20230230", 20230230},    /* February 30th is not a date either */
		{"19691231", 19691231},    /* before 1970 */
	};
	for (size_t i = 0; i < ARRAY_LEN(ok); i++) {
		int64_t got = -1;
		if (!graphite_parse_time(ok[i].in, NOW, &got))
			fail_msg("refused %s", ok[i].in);
		if (got != ok[i].want)
			fail_msg("%s: got %lld, want %lld", ok[i].in, (long long)got, (long long)ok[i].want);
	}
	const char *bad[] = {"", "yesterday", "-", "-h", "-5", "now-", "-5parsecs", "5min", "-1h-1h", "now+-1h",
			     "25:00_20240101", "12:60_20240101", "12:30_20241301", "12:30_2024010", "1234567890123",
			     "253402300800", "-100y", "-1.5h", "1e9"};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		int64_t got;
		if (graphite_parse_time(bad[i], NOW, &got))
			fail_msg("accepted %s as %lld", bad[i], (long long)got);
	}
}

static void test_parse_interval(void **state)
{
	(void)state;
	const struct {
		const char *in;
		int64_t want; /* 0: refused */
	} cases[] = {
		{"1h", 3600}, {"5min", 300}, {"5m", 300},   {"1d", 86400},      {"1h30min", 5400}, {"30s", 30},
		{"1w", 604800}, {"1mon", 2592000}, {"1y", 31536000}, {"10MIN", 600},
		{"0h", 0},    {"-1h", 0},   {"+1h", 0},     {"", 0},            {"h", 0},          {"10", 0},
		{"1fortnight", 0},
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		int64_t got = -1;
		bool ok = graphite_parse_interval(cases[i].in, &got);
		if (ok != (cases[i].want != 0) || (ok && got != cases[i].want))
			fail_msg("%s: ok %d got %lld, want %lld", cases[i].in, ok, (long long)got, (long long)cases[i].want);
	}
}

/* ---------- parsing targets ---------- */

static GraphiteExpr *parse_ok(const char *target)
{
	GraphiteExpr *e = NULL;
	char err[1024];
	if (!graphite_parse(target, &e, err, sizeof(err)))
		fail_msg("refused %s: %s", target, err);
	return e;
}

static void expect_parse_error(const char *target, const char *why)
{
	GraphiteExpr *e = (GraphiteExpr *)1;
	char err[2048] = "";
	if (graphite_parse(target, &e, err, sizeof(err)))
		fail_msg("accepted %s", target);
	assert_null(e);
	if (!strstr(err, why))
		fail_msg("%s: '%s' does not say '%s'", target, err, why);
}

static void test_parse_accepts(void **state)
{
	(void)state;
	const char *ok[] = {
		"app.web.*.mean",
		"sumSeries(app.{web,db}.requests.count)",
		"sumSeries(app.{web,db}.requests.count, app.api.requests.count)",
		"alias(app.web.x, 'a, b (c)')",
		"alias(app.web.x, \"it's\")",
		"alias(app.web.x, 'it\\'s')",
		"  scale ( app.web.x , 2 )  ",
		"scale(app.web.x,-1.5e3)",
		"offset(app.web.x, -1)",
		"aliasByNode(app.*.x.mean, 1, -1)",
		"summarize(app.web.x, '1h')",
		"summarize(app.web.x, \"1h\", \"max\", true)",
		"summarize(app.web.x, '1h', func='max')",
		"summarize(app.web.x, '1h', alignToFrom=True)",
		"summarize(app.web.x, intervalString='1d', func = 'avg', alignToFrom=FALSE)",
		"nonNegativeDerivative(app.web.x, None)",
		"nonNegativeDerivative(app.web.x, 100, 0)",
		"perSecond(app.web.x, maxValue=4294967295)",
		"asPercent(app.web.x, None)",
		"asPercent(app.web.x, 100)",
		"asPercent(app.web.x, '100')",
		"asPercent(app.web.x, sumSeries(app.*.x))",
		"movingAverage(app.web.x, 5)",
		"movingAverage(app.web.x, '5min')",
		"movingAverage(app.web.x, '-5min')",
		"consolidateBy(app.web.x, 'max')",
		"highestMax(app.*.x, 3)",
		"limit(app.*.x, 0)",
		"sortByMaxima(app.*.x)",
		"sum(app.*.x)",
		"avg(app.*.x)",
		"aliasByNode(perSecond(sumSeries(scale(app.*.x,2))),1)",
		"app.web-1.host_name:x.y",
		"app.[a-c]?.{x,y*}.*",
		"sumSeries(\n\tapp.web.x,\r\n\tapp.db.x\n)\n", /* typed on several lines */
	};
	for (size_t i = 0; i < ARRAY_LEN(ok); i++)
		graphite_expr_free(parse_ok(ok[i]));
}

static void test_parse_unknown_function_lists_all(void **state)
{
	(void)state;
	expect_parse_error("foo(app.web.x)",
			   "unknown function foo; supported: alias, aliasByMetric, aliasByNode, asPercent, averageSeries, "
			   "avg, consolidateBy, derivative, highestMax, limit, maxSeries, minSeries, movingAverage, "
			   "nonNegativeDerivative, offset, perSecond, scale, sortByMaxima, sum, sumSeries, summarize");
	expect_parse_error("scale(seriesByTag('name=x'), 2)", "unknown function seriesByTag");
}

static void test_parse_refuses(void **state)
{
	(void)state;
	const struct {
		const char *target, *why;
	} cases[] = {
		{"", "empty"},
		{"   ", "empty"},
		{"sumSeries(app.x", "unbalanced parentheses: the ( of sumSeries at offset 9 is not closed"},
		{"sumSeries(app.x))", "unbalanced parentheses: the ) at offset 16 has no ("},
		{"sumSeries(scale(app.x, 2)", "not closed"},
		{"scale(app.x)", "scale: argument factor is missing"},
		{"scale(app.x, 'x')", "scale: argument factor must be a number"},
		{"scale(app.x, 2, 3)", "scale takes at most 2 arguments: scale(seriesList, factor)"},
		{"scale(2, 3)", "scale: argument seriesList must be a series"},
		{"limit(app.x, 1.5)", "limit: argument n must be a whole number"},
		{"highestMax(app.x)", "highestMax: argument n is missing"},
		{"summarize(app.x)", "summarize: argument intervalString is missing"},
		{"summarize(app.x, 1)", "summarize: argument intervalString must be a quoted interval"},
		{"summarize(app.x, '1 fortnight')", "must be a quoted interval"},
		{"summarize(app.x, '1h', 'median')", "summarize: argument func must be one of"},
		{"summarize(app.x, '1h', 'sum', 'yes')", "summarize: argument alignToFrom must be true or false"},
		{"summarize(app.x, func='max', '1h')", "an argument without a name follows a named one"},
		{"summarize(app.x, '1h', bogus=1)", "summarize has no parameter bogus"},
		{"summarize(app.x, '1h', func='max', func='min')", "summarize: argument func is given twice"},
		{"summarize(app.x, '1h', 'sum', alignToFrom=true, 1)", "an argument without a name"},
		{"summarize(seriesList=app.x, '1h')", "an argument without a name"},
		{"consolidateBy(app.x, 'count')", "consolidateBy: argument consolidationFunc must be one of"},
		{"consolidateBy(app.x, max)", "consolidateBy: argument consolidationFunc must be one of"},
		{"movingAverage(app.x, 0)", "movingAverage: argument windowSize must be a number of points"},
		{"movingAverage(app.x, 2.5)", "movingAverage: argument windowSize"},
		{"movingAverage(app.x, 'often')", "movingAverage: argument windowSize"},
		{"alias(app.x, other.y)", "alias: argument newName must be a quoted string"},
		{"aliasByNode(app.x)", "aliasByNode: argument nodes is missing"},
		{"aliasByNode(app.x, 1, 'a')", "aliasByNode: argument nodes must be a whole number"},
		{"sumSeries()", "sumSeries: argument seriesLists is missing"},
		{"sumSeries(app.x, 2)", "sumSeries: argument seriesLists must be a series"},
		{"sumSeries(app.x, None)", "sumSeries: argument seriesLists must be a series"},
		{"scale(app.x, None)", "scale: argument factor is missing"},
		{"asPercent(app.x, 'half')", "asPercent: argument total must be a number, a series or None"},
		{"asPercent(app.x, true)", "asPercent: argument total"},
		{"nonNegativeDerivative(app.x, 'big')", "nonNegativeDerivative: argument maxValue must be a number"},
		{"sumSeries(app..x)", "the path app..x: a path pattern cannot have an empty segment"},
		{"sumSeries(app.{x,y)", "not closed"},
		{"sumSeries(app.[z-a])", "ends before it starts"},
		{"2", "a target must be a path or a function call"},
		{"'app.x'", "a target must be a path or a function call"},
		{"None", "a target must be a path or a function call"},
		{"app.x y", "unexpected 'y' at offset 6"},
		{"sumSeries(app.x,,app.y)", "an argument is missing at offset 16"},
		{"sumSeries(app.x,)", "an argument is missing at offset 16"},
		{"sumSeries(app.x app.y)", "sumSeries: expected ',' or ')' at offset 16, found 'a'"},
		{"alias(app.x, 'abc)", "unclosed string: the ' at offset 13 has no match"},
		{"app.x(2)", "'app.x' is not a function name"},
		{"scale(app.x, 1e999)", "the number 1e999 is out of range"},
		{"limit(app.x, 99999999999999999999)", "out of range"},
		{"app.\x01x", "UTF-8 without control characters"},
		{"app.\xffx", "UTF-8 without control characters"},
		{"alias(app.x, 'a\nb')", "a string cannot hold control characters (offset 15)"},
		{"app.x\ny", "unexpected 'y' at offset 6"},
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++)
		expect_parse_error(cases[i].target, cases[i].why);
}

static void test_parse_bounds(void **state)
{
	(void)state;
	Buf b = {0};
	/* 32 nested calls are fine, 33 are not. */
	for (int depth = 32; depth <= 33; depth++) {
		buf_reset(&b);
		for (int i = 0; i < depth; i++)
			buf_adds(&b, "scale(");
		buf_adds(&b, "a.b");
		for (int i = 0; i < depth; i++)
			buf_adds(&b, ",2)");
		if (depth == 32)
			graphite_expr_free(parse_ok(b.p));
		else
			expect_parse_error(b.p, "a target nests at most 32 function calls");
	}
	/* 64 arguments, not 65. */
	for (int n = 64; n <= 65; n++) {
		buf_reset(&b);
		buf_adds(&b, "sumSeries(");
		for (int i = 0; i < n; i++)
			buf_adds(&b, i ? ",a" : "a");
		buf_addc(&b, ')');
		if (n == 64)
			graphite_expr_free(parse_ok(b.p));
		else
			expect_parse_error(b.p, "sumSeries: at most 64 arguments");
	}
	/* 1000 nodes, not more: k inner sumSeries of 64 paths each, in one outer call. */
	for (int k = 15; k <= 16; k++) {
		buf_reset(&b);
		buf_adds(&b, "sumSeries(");
		for (int j = 0; j < k; j++) {
			buf_adds(&b, j ? ",sumSeries(" : "sumSeries(");
			for (int i = 0; i < 64; i++)
				buf_adds(&b, i ? ",a" : "a");
			buf_addc(&b, ')');
		}
		buf_addc(&b, ')');
		assert_true(b.len <= GRAPHITE_TARGET_MAX);
		if (k == 15) /* 1 + 15 * 65 = 976 nodes */
			graphite_expr_free(parse_ok(b.p));
		else /* 1041 */
			expect_parse_error(b.p, "a target has at most 1000 functions, paths and constants");
	}
	/* 4096 bytes, not more. */
	buf_reset(&b);
	buf_adds(&b, "alias(a.b,'");
	while (b.len < GRAPHITE_TARGET_MAX - 2)
		buf_addc(&b, 'x');
	buf_adds(&b, "')");
	assert_int_equal(b.len, GRAPHITE_TARGET_MAX);
	graphite_expr_free(parse_ok(b.p));
	buf_reset(&b);
	buf_adds(&b, "alias(a.b,'");
	while (b.len < GRAPHITE_TARGET_MAX - 1)
		buf_addc(&b, 'x');
	buf_adds(&b, "')");
	expect_parse_error(b.p, "a target is at most 4096 bytes");
	buf_free(&b);
}

static void test_paths(void **state)
{
	(void)state;
	GraphiteExpr *e = parse_ok("asPercent(app.*.x, sumSeries(app.*.x, b.{c,d}, alias(e.f, 'app.*.x')))");
	const char *paths[4];
	assert_int_equal(graphite_paths(e, paths, ARRAY_LEN(paths)), 3);
	assert_string_equal(paths[0], "app.*.x");
	assert_string_equal(paths[1], "b.{c,d}");
	assert_string_equal(paths[2], "e.f");
	assert_int_equal(graphite_paths(e, paths, 1), 3); /* how many there are, even past max */
	graphite_expr_free(e);
	e = parse_ok("a.b");
	assert_int_equal(graphite_paths(e, paths, 4), 1);
	assert_string_equal(paths[0], "a.b");
	graphite_expr_free(e);
}

/* ---------- evaluation over a fake store ---------- */

typedef struct Stored {
	const char *path;
	int64_t start, step;
	size_t n;
	double v[12];
} Stored;

static const Stored *store;
static size_t nstore;
static GraphiteList result;
static int fetches;

#define USE(s) (store = (s), nstore = ARRAY_LEN(s))

static bool fetch(void *ctx, const char *pattern, GraphiteList *into, char *err, size_t errlen)
{
	(void)ctx;
	fetches++;
	if (strcmp(pattern, "fail.*") == 0) {
		snprintf(err, errlen, "the store is down");
		return false;
	}
	for (size_t i = 0; i < nstore; i++) {
		const Stored *s = &store[i];
		if (!graphite_path_match(pattern, strlen(pattern), s->path, strlen(s->path)))
			continue;
		GraphiteSeries *g = graphite_list_add(into, s->path, NULL, s->start, s->step, s->n);
		memcpy(g->v, s->v, s->n * sizeof(double));
	}
	return true;
}

static int teardown(void **state)
{
	(void)state;
	graphite_list_free(&result);
	return 0;
}

static const GraphiteList *run(const char *target)
{
	graphite_list_free(&result);
	GraphiteExpr *e = parse_ok(target);
	char err[512];
	if (!graphite_eval(e, fetch, NULL, &result, err, sizeof(err)))
		fail_msg("%s: %s", target, err);
	graphite_expr_free(e);
	return &result;
}

static void expect_eval_error(const char *target, const char *why)
{
	graphite_list_free(&result);
	GraphiteExpr *e = parse_ok(target);
	char err[512] = "";
	graphite_list_add(&result, "before", NULL, 0, 60, 1);
	if (graphite_eval(e, fetch, NULL, &result, err, sizeof(err)))
		fail_msg("%s evaluated", target);
	graphite_expr_free(e);
	assert_int_equal(result.n, 1); /* the caller's list is as it was */
	assert_string_equal(result.s[0].name, "before");
	if (!strstr(err, why))
		fail_msg("%s: '%s' does not say '%s'", target, err, why);
}

static bool same(double a, double b)
{
	if (isnan(a) || isnan(b))
		return isnan(a) && isnan(b);
	return fabs(a - b) <= 1e-9 * fmax(1.0, fabs(b));
}

static void expect_series_at(const GraphiteSeries *s, const char *name, int64_t start, int64_t step, size_t n,
			     const double *v)
{
	if (strcmp(s->name, name) != 0)
		fail_msg("name %s, want %s", s->name, name);
	if (s->start != start || s->step != step || s->n != n)
		fail_msg("%s: start %lld step %lld n %zu, want %lld %lld %zu", name, (long long)s->start,
			 (long long)s->step, s->n, (long long)start, (long long)step, n);
	for (size_t i = 0; i < n; i++)
		if (!same(s->v[i], v[i]))
			fail_msg("%s: point %zu is %.17g, want %.17g", name, i, s->v[i], v[i]);
}

#define EXPECT(s, name, start, step, ...)                                                                        \
	do {                                                                                                     \
		const double want_[] = {__VA_ARGS__};                                                            \
		expect_series_at((s), (name), (start), (step), ARRAY_LEN(want_), want_);                         \
	} while (0)

static const Stored apps[] = {
	{"app.web.requests.count", T0, 60, 4, {1, 2, N, 4}},
	{"app.db.requests.count", T0, 60, 4, {10, N, N, 40}},
	{"app.web.latency.mean", T0, 60, 4, {100, 200, 300, 400}},
	{"app.db.latency.mean", T0, 60, 4, {N, 50, 70, N}},
	{"app.idle.latency.mean", T0, 60, 4, {N, N, N, N}},
	{"coarse.latency.mean", T0, 120, 2, {1000, 3000}},
};

static void test_fetch_and_names(void **state)
{
	(void)state;
	USE(apps);
	const GraphiteList *l = run("app.*.requests.count");
	assert_int_equal(l->n, 2);
	EXPECT(&l->s[0], "app.web.requests.count", T0, 60, 1, 2, N, 4);
	assert_string_equal(l->s[0].path, "app.web.requests.count");
	assert_string_equal(l->s[0].expr, "app.*.requests.count");
	EXPECT(&l->s[1], "app.db.requests.count", T0, 60, 10, N, N, 40);
	l = run("nothing.*");
	assert_int_equal(l->n, 0);
	expect_eval_error("sumSeries(fail.*)", "the store is down");
	expect_eval_error("asPercent(app.*.requests.count, fail.*)", "the store is down");
}

static void test_aggregates(void **state)
{
	(void)state;
	USE(apps);
	const GraphiteList *l = run("sumSeries(app.*.requests.count)");
	assert_int_equal(l->n, 1);
	EXPECT(&l->s[0], "sumSeries(app.*.requests.count)", T0, 60, 11, 2, N, 44);
	EXPECT(&run("sum(app.*.requests.count)")->s[0], "sumSeries(app.*.requests.count)", T0, 60, 11, 2, N, 44);
	EXPECT(&run("averageSeries(app.*.requests.count)")->s[0], "averageSeries(app.*.requests.count)", T0, 60, 5.5, 2,
	       N, 22);
	EXPECT(&run("avg(app.*.requests.count)")->s[0], "averageSeries(app.*.requests.count)", T0, 60, 5.5, 2, N, 22);
	EXPECT(&run("maxSeries(app.*.requests.count)")->s[0], "maxSeries(app.*.requests.count)", T0, 60, 10, 2, N, 40);
	EXPECT(&run("minSeries(app.*.requests.count)")->s[0], "minSeries(app.*.requests.count)", T0, 60, 1, 2, N, 4);
	/* Several arguments: named by each pattern as written, repeated ones once. */
	EXPECT(&run("sumSeries(app.web.requests.count, app.db.requests.count)")->s[0],
	       "sumSeries(app.web.requests.count,app.db.requests.count)", T0, 60, 11, 2, N, 44);
	EXPECT(&run("sumSeries(app.*.requests.count,app.*.requests.count)")->s[0], "sumSeries(app.*.requests.count)",
	       T0, 60, 22, 4, N, 88);
	EXPECT(&run("sumSeries(app.{web,db}.requests.count)")->s[0], "sumSeries(app.{web,db}.requests.count)", T0, 60,
	       11, 2, N, 44);
	/* Inputs that are functions are named by their names. */
	EXPECT(&run("sumSeries(scale(app.*.requests.count, 2))")->s[0],
	       "sumSeries(scale(app.web.requests.count,2),scale(app.db.requests.count,2))", T0, 60, 22, 4, N, 88);
	/* All null: null. Nothing matched: no series at all, as Graphite answers. */
	EXPECT(&run("sumSeries(app.idle.latency.mean)")->s[0], "sumSeries(app.idle.latency.mean)", T0, 60, N, N, N, N);
	assert_int_equal(run("sumSeries(nothing.*)")->n, 0);
	/* A combined series is averaged by default when consolidated. */
	assert_int_equal(run("sumSeries(app.*.requests.count)")->s[0].consolidate, GRAPHITE_AVERAGE);
}

/* Steps 60 and 120: the minute series is averaged into 2-minute points (the least common
 * multiple), or merged by its consolidateBy function. */
static void test_aggregates_of_different_steps(void **state)
{
	(void)state;
	USE(apps);
	EXPECT(&run("sumSeries(app.web.latency.mean, coarse.latency.mean)")->s[0],
	       "sumSeries(app.web.latency.mean,coarse.latency.mean)", T0, 120, 1150, 3350);
	EXPECT(&run("sumSeries(consolidateBy(app.web.latency.mean, 'sum'), coarse.latency.mean)")->s[0],
	       "sumSeries(consolidateBy(app.web.latency.mean,\"sum\"),coarse.latency.mean)", T0, 120, 1300, 3700);
	EXPECT(&run("maxSeries(consolidateBy(app.web.latency.mean, 'min'), coarse.latency.mean)")->s[0],
	       "maxSeries(consolidateBy(app.web.latency.mean,\"min\"),coarse.latency.mean)", T0, 120, 1000, 3000);
	/* One null in a pair of minutes: the other minute stands for both. */
	EXPECT(&run("sumSeries(app.db.latency.mean, coarse.latency.mean)")->s[0],
	       "sumSeries(app.db.latency.mean,coarse.latency.mean)", T0, 120, 1050, 3070);
	static const Stored odd[] = {
		{"a.x", T0, 7 * 86400, 1, {1}},
		{"a.y", T0, 7 * 86400 + 1, 1, {1}},
	};
	USE(odd);
	expect_eval_error("sumSeries(a.*)", "cannot be combined");
}

static void test_scale_offset(void **state)
{
	(void)state;
	USE(apps);
	const GraphiteList *l = run("scale(app.*.requests.count, 2.5)");
	assert_int_equal(l->n, 2);
	EXPECT(&l->s[0], "scale(app.web.requests.count,2.5)", T0, 60, 2.5, 5, N, 10);
	EXPECT(&l->s[1], "scale(app.db.requests.count,2.5)", T0, 60, 25, N, N, 100);
	EXPECT(&run("scale(app.web.requests.count, 10)")->s[0], "scale(app.web.requests.count,10)", T0, 60, 10, 20, N,
	       40);
	EXPECT(&run("scale(app.web.requests.count, 1e6)")->s[0], "scale(app.web.requests.count,1e+06)", T0, 60, 1e6,
	       2e6, N, 4e6);
	EXPECT(&run("offset(app.web.requests.count, -1)")->s[0], "offset(app.web.requests.count,-1)", T0, 60, 0, 1, N,
	       3);
	EXPECT(&run("offset(scale(app.web.requests.count, 2), 0.5)")->s[0],
	       "offset(scale(app.web.requests.count,2),0.5)", T0, 60, 2.5, 4.5, N, 8.5);
}

static void test_aliases(void **state)
{
	(void)state;
	USE(apps);
	const GraphiteList *l = run("alias(app.*.requests.count, 'requests')");
	assert_int_equal(l->n, 2);
	assert_string_equal(l->s[0].name, "requests");
	assert_string_equal(l->s[1].name, "requests");
	EXPECT(&l->s[1], "requests", T0, 60, 10, N, N, 40);
	assert_string_equal(run("alias(app.web.requests.count, '')")->s[0].name, "");
	const struct {
		const char *target;
		const char *names[2];
	} cases[] = {
		{"aliasByNode(app.*.requests.count, 1)", {"web", "db"}},
		{"aliasByNode(app.*.requests.count, 1, 3)", {"web.count", "db.count"}},
		{"aliasByNode(app.*.requests.count, -1)", {"count", "count"}},
		{"aliasByNode(app.*.requests.count, -3, 0)", {"web.app", "db.app"}},
		{"aliasByNode(app.*.requests.count, 7)", {"", ""}},
		{"aliasByNode(app.*.requests.count, 1, 9, 2)", {"web..requests", "db..requests"}},
		{"aliasByNode(perSecond(app.*.requests.count), 1)", {"web", "db"}},
		{"aliasByNode(alias(app.*.requests.count, 'x.y'), 1)", {"web", "db"}}, /* the metric path */
		{"aliasByMetric(app.*.requests.count)", {"count", "count"}},
		{"aliasByMetric(scale(app.*.requests.count, 2))", {"count", "count"}},
		{"alias(aliasByNode(app.*.requests.count, 1), 'r')", {"r", "r"}},
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		l = run(cases[i].target);
		assert_int_equal(l->n, 2);
		for (size_t k = 0; k < 2; k++)
			if (strcmp(l->s[k].name, cases[i].names[k]) != 0)
				fail_msg("%s: series %zu is %s, want %s", cases[i].target, k, l->s[k].name, cases[i].names[k]);
	}
	/* A combined series' nodes are those of its first path, as Graphite reads them. */
	assert_string_equal(run("aliasByNode(sumSeries(app.*.requests.count), 1, 2)")->s[0].name, "*.requests");
	assert_string_equal(run("aliasByMetric(sumSeries(app.*.requests.count))")->s[0].name, "count");
	assert_string_equal(run("aliasByNode(sumSeries(scale(app.{web,db}.requests.count, 2)), 1)")->s[0].name, "web");
	/* Renames keep the pathExpression: a sum of aliased series is named by the pattern. */
	assert_string_equal(run("sumSeries(alias(app.*.requests.count, 'r'))")->s[0].name,
			    "sumSeries(app.*.requests.count)");
}

static const Stored tenmin[] = {
	/* 10-minute points from half past an hour: 22:30 22:40 22:50 | 23:00 23:10 23:20 23:30 */
	{"s.hits.count", T0 + 1800, 600, 7, {1, 2, 3, N, 5, 6, 7}},
	{"s.none.count", T0 + 1800, 600, 7, {N, N, N, N, N, N, N}},
	{"s.days.count", T0, 86400, 12, {1}}, /* 12 days: over a million seconds */
};

static void test_summarize(void **state)
{
	(void)state;
	USE(tenmin);
	/* Hours from the epoch: [22:00, 23:00) holds 22:30..22:50, [23:00, 24:00) the rest. */
	const GraphiteList *l = run("summarize(s.hits.count, '1h')");
	assert_int_equal(l->n, 1);
	EXPECT(&l->s[0], "summarize(s.hits.count, \"1h\", \"sum\")", T0, 3600, 6, 18);
	const struct {
		const char *func;
		double a, b;
	} funcs[] = {{"sum", 6, 18},  {"total", 6, 18},  {"avg", 2, 6},     {"average", 2, 6}, {"max", 3, 7},
		     {"min", 1, 5},   {"last", 3, 7},    {"current", 3, 7}, {"count", 3, 3}};
	for (size_t i = 0; i < ARRAY_LEN(funcs); i++) {
		char target[100], name[100];
		snprintf(target, sizeof(target), "summarize(s.hits.count, \"1h\", \"%s\")", funcs[i].func);
		snprintf(name, sizeof(name), "summarize(s.hits.count, \"1h\", \"%s\")", funcs[i].func);
		EXPECT(&run(target)->s[0], name, T0, 3600, funcs[i].a, funcs[i].b);
	}
	EXPECT(&run("summarize(s.hits.count, '1h', func='max')")->s[0], "summarize(s.hits.count, \"1h\", \"max\")", T0,
	       3600, 3, 7);
	/* alignToFrom: hours from the series' start, 22:30. */
	EXPECT(&run("summarize(s.hits.count, '1h', 'sum', true)")->s[0], "summarize(s.hits.count, \"1h\", \"sum\", true)",
	       T0 + 1800, 3600, 17, 7);
	EXPECT(&run("summarize(s.hits.count, '1h', alignToFrom=false)")->s[0],
	       "summarize(s.hits.count, \"1h\", \"sum\")", T0, 3600, 6, 18);
	/* A bucket without points is null, whatever the function; count too. */
	EXPECT(&run("summarize(s.hits.count, '10min', 'count')")->s[0], "summarize(s.hits.count, \"10min\", \"count\")",
	       T0 + 1800, 600, 1, 1, 1, N, 1, 1, 1);
	EXPECT(&run("summarize(s.none.count, '1h')")->s[0], "summarize(s.none.count, \"1h\", \"sum\")", T0, 3600, N, N);
	/* 20 minutes from the epoch: 22:20 22:40 23:00 23:20, the first holding 22:30 alone. */
	EXPECT(&run("summarize(s.hits.count, '20min')")->s[0], "summarize(s.hits.count, \"20min\", \"sum\")", T0 + 1200,
	       1200, 1, 5, 5, 13);
	/* A day from the epoch: midnight UTC. */
	EXPECT(&run("summarize(s.hits.count, '1d', 'max')")->s[0], "summarize(s.hits.count, \"1d\", \"max\")",
	       T0 - 22 * 3600, 86400, 7);
	/* An interval finer than the step makes more points, bounded. */
	EXPECT(&run("summarize(s.hits.count, '5min')")->s[0], "summarize(s.hits.count, \"5min\", \"sum\")", T0 + 1800,
	       300, 1, N, 2, N, 3, N, N, N, 5, N, 6, N, 7, N);
	expect_eval_error("summarize(s.days.count, '1s')", "more than 1000000 points");
}

static void test_consolidate_by(void **state)
{
	(void)state;
	USE(apps);
	const GraphiteList *l = run("consolidateBy(app.web.requests.count, 'max')");
	EXPECT(&l->s[0], "consolidateBy(app.web.requests.count,\"max\")", T0, 60, 1, 2, N, 4);
	assert_int_equal(l->s[0].consolidate, GRAPHITE_MAX);
	const struct {
		const char *f;
		GraphiteAgg want;
	} cases[] = {{"sum", GRAPHITE_SUM},   {"average", GRAPHITE_AVERAGE}, {"avg", GRAPHITE_AVERAGE},
		     {"min", GRAPHITE_MIN},   {"max", GRAPHITE_MAX},         {"last", GRAPHITE_LAST},
		     {"first", GRAPHITE_FIRST}};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		char target[100];
		snprintf(target, sizeof(target), "consolidateBy(app.web.requests.count, '%s')", cases[i].f);
		assert_int_equal(run(target)->s[0].consolidate, cases[i].want);
	}
	/* Functions applied afterwards keep the consolidation. */
	assert_int_equal(run("scale(consolidateBy(app.web.requests.count, 'sum'), 2)")->s[0].consolidate, GRAPHITE_SUM);
}

static const Stored moving[] = {
	{"m.v.mean", T0, 60, 8, {1, 2, N, 4, 6, N, N, N}},
};

static void test_moving_average(void **state)
{
	(void)state;
	USE(moving);
	/* The window ends at each point and holds it; the first points average what exists. */
	EXPECT(&run("movingAverage(m.v.mean, 3)")->s[0], "movingAverage(m.v.mean,3)", T0, 60, 1, 1.5, 1.5, 3, 5, 5, 6,
	       N);
	EXPECT(&run("movingAverage(m.v.mean, 2)")->s[0], "movingAverage(m.v.mean,2)", T0, 60, 1, 1.5, 2, 4, 5, 6, N, N);
	EXPECT(&run("movingAverage(m.v.mean, 1)")->s[0], "movingAverage(m.v.mean,1)", T0, 60, 1, 2, N, 4, 6, N, N, N);
	EXPECT(&run("movingAverage(m.v.mean, 100)")->s[0], "movingAverage(m.v.mean,100)", T0, 60, 1, 1.5, 1.5,
	       7.0 / 3, 13.0 / 4, 13.0 / 4, 13.0 / 4, 13.0 / 4);
	/* An interval: interval / step points. */
	EXPECT(&run("movingAverage(m.v.mean, '3min')")->s[0], "movingAverage(m.v.mean,\"3min\")", T0, 60, 1, 1.5, 1.5,
	       3, 5, 5, 6, N);
	EXPECT(&run("movingAverage(m.v.mean, '-3min')")->s[0], "movingAverage(m.v.mean,\"-3min\")", T0, 60, 1, 1.5, 1.5,
	       3, 5, 5, 6, N);
	EXPECT(&run("movingAverage(m.v.mean, '150s')")->s[0], "movingAverage(m.v.mean,\"150s\")", T0, 60, 1, 1.5, 2, 4,
	       5, 6, N, N);
	/* Shorter than a step: the point itself. */
	EXPECT(&run("movingAverage(m.v.mean, '30s')")->s[0], "movingAverage(m.v.mean,\"30s\")", T0, 60, 1, 2, N, 4, 6,
	       N, N, N);
}

/* A huge value leaving the window must not wipe out the small ones after it. */
static void test_moving_average_precision(void **state)
{
	(void)state;
	static const Stored big[] = {{"b.v.mean", T0, 60, 6, {1e100, 1, 2, 3, 4, 5}}};
	USE(big);
	EXPECT(&run("movingAverage(b.v.mean, 2)")->s[0], "movingAverage(b.v.mean,2)", T0, 60, 1e100, 5e99, 1.5, 2.5,
	       3.5, 4.5);
}

static const Stored counters[] = {
	/* 15 -> 12: the counter went down */
	{"c.bytes.count", T0, 60, 7, {1, 3, N, 10, 15, 12, 13}},
};

static void test_derivatives(void **state)
{
	(void)state;
	USE(counters);
	/* Null next to a null, on either side. */
	EXPECT(&run("derivative(c.bytes.count)")->s[0], "derivative(c.bytes.count)", T0, 60, N, 2, N, N, 5, -3, 1);
	EXPECT(&run("nonNegativeDerivative(c.bytes.count)")->s[0], "nonNegativeDerivative(c.bytes.count)", T0, 60, N, 2,
	       N, N, 5, N, 1);
	EXPECT(&run("nonNegativeDerivative(c.bytes.count, None)")->s[0], "nonNegativeDerivative(c.bytes.count)", T0, 60,
	       N, 2, N, N, 5, N, 1);
	/* Wrapped at 20: 20 + 1 + 12 - 15 = 18. */
	EXPECT(&run("nonNegativeDerivative(c.bytes.count, 20)")->s[0], "nonNegativeDerivative(c.bytes.count)", T0, 60, N,
	       2, N, N, 5, 18, 1);
	/* Above maxValue: null, and the next point starts afresh. */
	EXPECT(&run("nonNegativeDerivative(c.bytes.count, 14)")->s[0], "nonNegativeDerivative(c.bytes.count)", T0, 60, N,
	       2, N, N, N, N, 1);
	/* Restarted from minValue 2: 12 - 2; both: 20 + 1 + 12 - 15 - 2. */
	EXPECT(&run("nonNegativeDerivative(c.bytes.count, minValue=2)")->s[0], "nonNegativeDerivative(c.bytes.count)",
	       T0, 60, N, N, N, N, 5, 10, 1);
	EXPECT(&run("nonNegativeDerivative(c.bytes.count, 20, 2)")->s[0], "nonNegativeDerivative(c.bytes.count)", T0, 60,
	       N, N, N, N, 5, 16, 1);
	/* perSecond: the same divided by the step, rounded to 6 decimals. */
	EXPECT(&run("perSecond(c.bytes.count)")->s[0], "perSecond(c.bytes.count)", T0, 60, N, 0.033333, N, N, 0.083333,
	       N, 0.016667);
	EXPECT(&run("perSecond(c.bytes.count, 20)")->s[0], "perSecond(c.bytes.count)", T0, 60, N, 0.033333, N, N,
	       0.083333, 0.3, 0.016667);
	/* Over 2-minute points {3, 10, 12, 13}: the step is 120. */
	EXPECT(&run("perSecond(summarize(c.bytes.count, '2min', 'last'))")->s[0],
	       "perSecond(summarize(c.bytes.count, \"2min\", \"last\"))", T0, 120, N, 0.058333, 0.016667, 0.008333);
}

static void test_as_percent(void **state)
{
	(void)state;
	USE(apps);
	/* Of the sum of all the series at each time. */
	const GraphiteList *l = run("asPercent(app.*.requests.count)");
	assert_int_equal(l->n, 2);
	EXPECT(&l->s[0], "asPercent(app.web.requests.count,sumSeries(app.*.requests.count))", T0, 60, 100.0 / 11, 100, N,
	       100.0 / 11);
	EXPECT(&l->s[1], "asPercent(app.db.requests.count,sumSeries(app.*.requests.count))", T0, 60, 1000.0 / 11, N, N,
	       1000.0 / 11);
	EXPECT(&run("asPercent(app.web.requests.count, None)")->s[0],
	       "asPercent(app.web.requests.count,sumSeries(app.web.requests.count))", T0, 60, 100, 100, N, 100);
	/* Of a number, written as Graphite prints it. */
	EXPECT(&run("asPercent(app.web.requests.count, 8)")->s[0], "asPercent(app.web.requests.count,8)", T0, 60, 12.5,
	       25, N, 50);
	EXPECT(&run("asPercent(app.web.requests.count, '8')")->s[0], "asPercent(app.web.requests.count,8)", T0, 60, 12.5,
	       25, N, 50);
	EXPECT(&run("asPercent(app.web.requests.count, 8.0)")->s[0], "asPercent(app.web.requests.count,8.0)", T0, 60,
	       12.5, 25, N, 50);
	EXPECT(&run("asPercent(app.web.requests.count, 0.5)")->s[0], "asPercent(app.web.requests.count,0.5)", T0, 60, 200,
	       400, N, 800);
	EXPECT(&run("asPercent(app.web.requests.count, 0)")->s[0], "asPercent(app.web.requests.count,0)", T0, 60, N, N, N,
	       N);
	/* Of one series: null where either is null. */
	EXPECT(&run("asPercent(app.web.requests.count, app.db.requests.count)")->s[0],
	       "asPercent(app.web.requests.count,app.db.requests.count)", T0, 60, 10, N, N, 10);
	l = run("asPercent(app.*.requests.count, app.db.requests.count)");
	assert_int_equal(l->n, 2);
	EXPECT(&l->s[1], "asPercent(app.db.requests.count,app.db.requests.count)", T0, 60, 100, N, N, 100);
	/* Of as many series: paired by rank of name (db with db, web with web). */
	l = run("asPercent(app.{web,db}.requests.count, app.{web,db}.latency.mean)");
	assert_int_equal(l->n, 2);
	EXPECT(&l->s[0], "asPercent(app.db.requests.count,app.db.latency.mean)", T0, 60, N, N, N, N);
	EXPECT(&l->s[1], "asPercent(app.web.requests.count,app.web.latency.mean)", T0, 60, 1, 1, N, 1);
	/* Of a total with a coarser step: both on 2-minute points. */
	EXPECT(&run("asPercent(app.web.latency.mean, coarse.latency.mean)")->s[0],
	       "asPercent(app.web.latency.mean,coarse.latency.mean)", T0, 120, 15, 350.0 / 30);
	expect_eval_error("asPercent(app.*.requests.count, app.*.latency.mean)",
			  "asPercent: the total must be one series or as many series as the first argument (2), not 3");
	assert_int_equal(run("asPercent(nothing.*)")->n, 0);
}

static void test_filters_and_sorting(void **state)
{
	(void)state;
	USE(apps);
	/* Maxima: web 400, db 70, idle none. */
	const GraphiteList *l = run("highestMax(app.*.latency.mean, 1)");
	assert_int_equal(l->n, 1);
	EXPECT(&l->s[0], "app.web.latency.mean", T0, 60, 100, 200, 300, 400);
	l = run("highestMax(app.*.latency.mean, 5)");
	assert_int_equal(l->n, 3);
	assert_string_equal(l->s[0].name, "app.web.latency.mean");
	assert_string_equal(l->s[1].name, "app.db.latency.mean");
	assert_string_equal(l->s[2].name, "app.idle.latency.mean");
	assert_int_equal(run("highestMax(app.*.latency.mean, 0)")->n, 0);
	l = run("sortByMaxima(app.{idle,db,web}.latency.mean)");
	assert_int_equal(l->n, 3);
	assert_string_equal(l->s[0].name, "app.web.latency.mean");
	assert_string_equal(l->s[1].name, "app.db.latency.mean");
	assert_string_equal(l->s[2].name, "app.idle.latency.mean");
	/* Ties keep their order. */
	l = run("sortByMaxima(scale(app.*.requests.count, 0))");
	assert_string_equal(l->s[0].name, "scale(app.web.requests.count,0)");
	assert_string_equal(l->s[1].name, "scale(app.db.requests.count,0)");
	/* limit: the first n; a negative n leaves out the last, as a Python slice does. */
	l = run("limit(app.*.latency.mean, 2)");
	assert_int_equal(l->n, 2);
	assert_string_equal(l->s[0].name, "app.web.latency.mean");
	assert_string_equal(l->s[1].name, "app.db.latency.mean");
	assert_int_equal(run("limit(app.*.latency.mean, 0)")->n, 0);
	assert_int_equal(run("limit(app.*.latency.mean, 10)")->n, 3);
	l = run("limit(app.*.latency.mean, -1)");
	assert_int_equal(l->n, 2);
	assert_string_equal(l->s[1].name, "app.db.latency.mean");
	assert_int_equal(run("limit(app.*.latency.mean, -5)")->n, 0);
}

static void test_nesting(void **state)
{
	(void)state;
	USE(apps);
	fetches = 0;
	const GraphiteList *l = run("aliasByNode(movingAverage(scale(sumSeries(app.*.requests.count), 0.5), 2), 1)");
	assert_int_equal(fetches, 1);
	EXPECT(&l->s[0], "*", T0, 60, 5.5, 3.25, 1, 22);
	l = run("limit(sortByMaxima(perSecond(app.*.requests.count)), 1)");
	assert_int_equal(l->n, 1);
	EXPECT(&l->s[0], "perSecond(app.web.requests.count)", T0, 60, N, 0.016667, N, N);
}

/* ---------- consolidation for maxDataPoints ---------- */

static GraphiteSeries series_of(int64_t start, int64_t step, size_t n, const double *v, GraphiteAgg f)
{
	GraphiteList l = {0};
	GraphiteSeries *s = graphite_list_add(&l, "x", NULL, start, step, n);
	memcpy(s->v, v, n * sizeof(double));
	s->consolidate = f;
	GraphiteSeries copy = *s;
	free(l.s);
	return copy;
}

static void free_series(GraphiteSeries *s)
{
	free(s->name);
	free(s->path);
	free(s->expr);
	free(s->v);
}

static void test_consolidate(void **state)
{
	(void)state;
	/* 7 minutes from an aligned start into 3 points of 3 minutes. */
	const double seven[] = {1, 2, 3, 4, 5, 6, N};
	const struct {
		GraphiteAgg f;
		double a, b, c;
	} cases[] = {{GRAPHITE_AVERAGE, 2, 5, N}, {GRAPHITE_SUM, 6, 15, N},  {GRAPHITE_MAX, 3, 6, N},
		     {GRAPHITE_MIN, 1, 4, N},     {GRAPHITE_LAST, 3, 6, N},  {GRAPHITE_FIRST, 1, 4, N}};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		GraphiteSeries s = series_of(T0, 60, 7, seven, cases[i].f);
		graphite_consolidate(&s, 3);
		EXPECT(&s, "x", T0, 180, cases[i].a, cases[i].b, cases[i].c);
		free_series(&s);
	}
	/* Bands stay on multiples of their width: a start a minute later keeps them. */
	GraphiteSeries s = series_of(T0 + 60, 60, 7, seven, GRAPHITE_AVERAGE);
	graphite_consolidate(&s, 3);
	EXPECT(&s, "x", T0, 180, 1.5, 4, 6);
	free_series(&s);
	/* When the partial first band would make one point too many it is left out. */
	const double nine[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
	s = series_of(T0 + 60, 60, 9, nine, GRAPHITE_AVERAGE);
	graphite_consolidate(&s, 3);
	EXPECT(&s, "x", T0 + 180, 180, 4, 7, 9);
	free_series(&s);
	s = series_of(T0, 60, 9, nine, GRAPHITE_SUM);
	graphite_consolidate(&s, 3);
	EXPECT(&s, "x", T0, 180, 6, 15, 24);
	free_series(&s);
	/* One point: the whole series. */
	s = series_of(T0 + 60, 60, 7, seven, GRAPHITE_SUM);
	graphite_consolidate(&s, 1);
	EXPECT(&s, "x", T0 + 60, 420, 21);
	free_series(&s);
	/* Enough room, or no limit: unchanged. */
	for (size_t max = 0; max <= 8; max += 7) {
		s = series_of(T0, 60, 7, seven, GRAPHITE_SUM);
		graphite_consolidate(&s, max);
		EXPECT(&s, "x", T0, 60, 1, 2, 3, 4, 5, 6, N);
		free_series(&s);
	}
	/* Never more than max_points, whatever the alignment. */
	double many[1000];
	for (size_t i = 0; i < ARRAY_LEN(many); i++)
		many[i] = (double)i;
	for (int64_t shift = 0; shift < 7; shift++)
		for (size_t max = 2; max < 50; max += 3) {
			s = series_of(T0 + shift * 60, 60, ARRAY_LEN(many), many, GRAPHITE_AVERAGE);
			graphite_consolidate(&s, max);
			assert_true(s.n <= max);
			assert_true(s.n >= max / 2);
			assert_int_equal(s.start % s.step, 0);
			free_series(&s);
		}
}

/* ---------- JSON ---------- */

static void test_write_json(void **state)
{
	(void)state;
	GraphiteList l = {0};
	Buf b = {0};
	graphite_write_json(&l, &b);
	assert_string_equal(b.p, "[]");
	GraphiteSeries *s = graphite_list_add(&l, "sumSeries(a.\"q\")", NULL, 1700000000, 60, 3);
	s->v[0] = 1.5;
	s->v[2] = -2;
	graphite_list_add(&l, "empty", NULL, 0, 60, 0);
	buf_reset(&b);
	graphite_write_json(&l, &b);
	assert_string_equal(b.p, "[{\"target\": \"sumSeries(a.\\\"q\\\")\", \"datapoints\": [[1.5, 1700000000], "
				 "[null, 1700000060], [-2, 1700000120]]}, {\"target\": \"empty\", \"datapoints\": []}]");
	json_error_t jerr;
	json_t *j = json_loads(b.p, 0, &jerr);
	assert_non_null(j);
	json_decref(j);
	graphite_list_free(&l);
	buf_free(&b);
}

/* What Grafana's graphite data source reads from /functions (gfunc.ts parseFuncDefs): every
 * function that takes series has a first parameter of type seriesList; params have a name, a
 * type, required; "multiple" and "default" only where they apply. Every function listed parses
 * with its required arguments, and the list is the parser's. */
static void test_functions_json(void **state)
{
	(void)state;
	Buf b = {0};
	graphite_functions_json(&b);
	json_error_t jerr;
	json_t *root = json_loads(b.p, 0, &jerr);
	if (!root)
		fail_msg("invalid JSON: %s", jerr.text);
	assert_true(json_is_object(root));
	assert_int_equal(json_object_size(root), 21);
	static const char *const groups[] = {"Combine", "Transform", "Calculate", "Filter Series", "Sorting", "Alias",
					     "Special"};
	static const char *const types[] = {"seriesList", "string", "integer", "float", "node", "boolean",
					    "intOrInterval", "aggFunc", "interval"};
	const char *key;
	json_t *f;
	json_object_foreach(root, key, f) {
		assert_string_equal(json_string_value(json_object_get(f, "name")), key);
		const char *sig = json_string_value(json_object_get(f, "function"));
		assert_non_null(sig);
		assert_memory_equal(sig, key, strlen(key));
		assert_int_equal(sig[strlen(key)], '(');
		assert_true(strlen(json_string_value(json_object_get(f, "description"))) > 10);
		assert_string_equal(json_string_value(json_object_get(f, "module")), "graphite.render.functions");
		const char *group = json_string_value(json_object_get(f, "group"));
		bool known = false;
		for (size_t i = 0; i < ARRAY_LEN(groups); i++)
			known |= strcmp(group, groups[i]) == 0;
		if (!known)
			fail_msg("%s: group %s", key, group);
		json_t *params = json_object_get(f, "params");
		assert_true(json_array_size(params) >= 1);
		json_t *first = json_array_get(params, 0);
		assert_string_equal(json_string_value(json_object_get(first, "type")), "seriesList");
		assert_true(json_is_true(json_object_get(first, "required")));
		Buf call = {0};
		buf_addf(&call, "%s(a.b", key);
		size_t i;
		json_t *p;
		json_array_foreach(params, i, p) {
			assert_non_null(json_string_value(json_object_get(p, "name")));
			const char *type = json_string_value(json_object_get(p, "type"));
			bool ok = false;
			for (size_t k = 0; k < ARRAY_LEN(types); k++)
				ok |= strcmp(type, types[k]) == 0;
			if (!ok)
				fail_msg("%s: type %s", key, type);
			assert_true(json_is_boolean(json_object_get(p, "required")));
			json_t *multiple = json_object_get(p, "multiple");
			assert_true(!multiple || json_is_true(multiple));
			if (multiple)
				assert_int_equal(i, json_array_size(params) - 1); /* only the last is variadic */
			json_t *options = json_object_get(p, "options");
			assert_true(!options || json_array_size(options) > 0);
			if (i == 0 || !json_is_true(json_object_get(p, "required")))
				continue;
			/* A required argument: the first option, suggestion, or a number. */
			json_t *s = json_array_get(options ? options : json_object_get(p, "suggestions"), 0);
			if (strcmp(type, "string") == 0 && !s)
				buf_adds(&call, ", 'x'");
			else if (json_is_string(s))
				buf_addf(&call, ", '%s'", json_string_value(s));
			else
				buf_adds(&call, ", 1");
		}
		buf_addc(&call, ')');
		graphite_expr_free(parse_ok(call.p));
		buf_free(&call);
	}
	/* Defaults are typed values: Grafana prints them as the editor's starting text. */
	json_t *sp = json_object_get(json_object_get(root, "summarize"), "params");
	assert_string_equal(json_string_value(json_object_get(json_array_get(sp, 2), "default")), "sum");
	assert_true(json_is_false(json_object_get(json_array_get(sp, 3), "default")));
	json_t *ap = json_object_get(json_object_get(root, "aliasByNode"), "params");
	assert_true(json_is_true(json_object_get(json_array_get(ap, 1), "multiple")));
	assert_string_equal(json_string_value(json_object_get(json_array_get(ap, 1), "type")), "node");
	json_t *sum = json_object_get(json_object_get(root, "sumSeries"), "params");
	assert_true(json_is_true(json_object_get(json_array_get(sum, 0), "multiple")));
	json_decref(root);
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_glob_match),
		cmocka_unit_test(test_glob_match_long_braces),
		cmocka_unit_test(test_path_match),
		cmocka_unit_test(test_segments),
		cmocka_unit_test(test_pattern_check),
		cmocka_unit_test(test_glob_regex),
		cmocka_unit_test(test_glob_regex_quantifier_budget),
		cmocka_unit_test(test_parse_time),
		cmocka_unit_test(test_parse_interval),
		cmocka_unit_test(test_parse_accepts),
		cmocka_unit_test(test_parse_unknown_function_lists_all),
		cmocka_unit_test(test_parse_refuses),
		cmocka_unit_test(test_parse_bounds),
		cmocka_unit_test(test_paths),
		cmocka_unit_test_teardown(test_fetch_and_names, teardown),
		cmocka_unit_test_teardown(test_aggregates, teardown),
		cmocka_unit_test_teardown(test_aggregates_of_different_steps, teardown),
		cmocka_unit_test_teardown(test_scale_offset, teardown),
		cmocka_unit_test_teardown(test_aliases, teardown),
		cmocka_unit_test_teardown(test_summarize, teardown),
		cmocka_unit_test_teardown(test_consolidate_by, teardown),
		cmocka_unit_test_teardown(test_moving_average, teardown),
		cmocka_unit_test_teardown(test_moving_average_precision, teardown),
		cmocka_unit_test_teardown(test_derivatives, teardown),
		cmocka_unit_test_teardown(test_as_percent, teardown),
		cmocka_unit_test_teardown(test_filters_and_sorting, teardown),
		cmocka_unit_test_teardown(test_nesting, teardown),
		cmocka_unit_test(test_consolidate),
		cmocka_unit_test(test_write_json),
		cmocka_unit_test(test_functions_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
