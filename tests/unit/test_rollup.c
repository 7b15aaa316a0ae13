/* Unit tests of rollup: rows as the databases return them (in any order, the same metric from
 * several databases) go in; the JSON answer of a read comes out. Every test reads the answer
 * back with jansson and checks what a client would see. */
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rollup.h"

#include "unit.h"
#define BIT(stat) (uint8_t)(1u << (stat))
#define ALL_STATS (uint8_t)0xff

/* Ids that sort like the number they are made from. */
static Uuid id_of(uint32_t k)
{
	Uuid u = {{0}};
	u.b[0] = 0x01;
	u.b[6] = 0x70;
	u.b[8] = 0x80;
	for (int i = 0; i < 4; i++)
		u.b[12 + i] = (uint8_t)(k >> (24 - 8 * i));
	return u;
}

/* A row as a database returns it; copies > 1 is the same row from several databases. */
typedef struct TRow {
	const char *name; /* NULL: "m" */
	int64_t bucket_us;
	uint32_t id;
	uint8_t present;
	double v[METRIC_NSTATS];
	int copies;
} TRow;

/* A point of the answer: stat of name at bucket (Unix seconds). */
typedef struct TPoint {
	const char *name; /* NULL: "m" */
	int stat;
	int64_t bucket;
	double value;
} TPoint;

/* State of one test, released by the teardown even when it fails. */
static Rollup *roll;
static Buf out;
static json_t *answer;

static int teardown(void **state)
{
	(void)state;
	rollup_free(roll);
	roll = NULL;
	buf_free(&out);
	json_decref(answer);
	answer = NULL;
	return 0;
}

static void start(TmRes res, size_t max_rows)
{
	rollup_free(roll);
	roll = rollup_new(res, max_rows);
	assert_non_null(roll);
}

static void add_row(const TRow *r)
{
	const char *name = r->name ? r->name : "m";
	Uuid id = id_of(r->id);
	assert_true(rollup_add(roll, &id, r->bucket_us, name, strlen(name), r->present, r->v));
}

/* Adds rows forwards or backwards, every copy of a row one after the other or all copies at
 * the end (as when a second database answers after the first). */
static void add_rows(const TRow *rows, size_t n, bool reverse)
{
	for (int pass = 0; pass < 3; pass++) {
		for (size_t k = 0; k < n; k++) {
			const TRow *r = &rows[reverse ? n - 1 - k : k];
			int copies = r->copies ? r->copies : 1;
			if (pass < copies)
				add_row(r);
		}
	}
}

static void write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w <= 0)
			_exit(3);
		p += w;
		n -= (size_t)w;
	}
}

/* Writes the answer and reads it back: it must be one JSON array, nothing after it. The
 * writing runs in a child process, so that a crash or a sanitizer report in rollup_write_json
 * fails this test alone (with the report above it) instead of ending the whole run. */
static json_t *finish(void)
{
	int fd[2];
	assert_int_equal(pipe(fd), 0);
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fd[0]);
		Buf b = {0};
		rollup_write_json(roll, &b);
		write_all(fd[1], b.p ? b.p : "", b.len);
		_exit(0);
	}
	close(fd[1]);
	buf_reset(&out);
	char chunk[65536];
	ssize_t n;
	while ((n = read(fd[0], chunk, sizeof(chunk))) > 0)
		buf_add(&out, chunk, (size_t)n);
	close(fd[0]);
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		print_error("rollup_write_json did not return: %s %d (see the sanitizer report "
			    "above)\n",
			    WIFEXITED(status) ? "exit status" : "signal",
			    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
		fail();
	}
	assert_non_null(out.p);
	json_error_t err;
	json_decref(answer);
	answer = json_loads(out.p, 0, &err);
	if (!answer)
		print_error("answer is not JSON (%s): %s\n", err.text, out.p);
	assert_non_null(answer);
	assert_true(json_is_array(answer));
	return answer;
}

static json_t *find_name(const char *name)
{
	size_t i;
	json_t *o;
	json_array_foreach(answer, i, o) {
		if (strcmp(json_string_value(json_object_get(o, "name")), name) == 0)
			return o;
	}
	return NULL;
}

/* The points of one statistic of one name (an absent key counts as no points). */
static json_t *points(const char *name, int stat)
{
	json_t *o = find_name(name);
	if (!o)
		return NULL;
	return json_object_get(o, metric_stat_names[stat]);
}

/* Checks the answer holds exactly the expected points, every bucket an integer. */
static int check_points(const TPoint *want, size_t nwant, const char *what)
{
	int failures = 0;
	size_t i;
	json_t *o;
	json_array_foreach(answer, i, o) {
		const char *name = json_string_value(json_object_get(o, "name"));
		for (int s = 0; s < METRIC_NSTATS; s++) {
			json_t *pts = json_object_get(o, metric_stat_names[s]);
			size_t k;
			json_t *p;
			json_array_foreach(pts, k, p) {
				json_t *b = json_object_get(p, "bucket"), *v = json_object_get(p, "value");
				if (!json_is_integer(b) || !json_is_number(v)) {
					print_error("%s: %s %s point %zu: bucket not an integer or value not a "
						    "number\n",
						    what, name, metric_stat_names[s], k);
					failures++;
					continue;
				}
				const TPoint *match = NULL;
				for (size_t w = 0; w < nwant; w++) {
					const char *wname = want[w].name ? want[w].name : "m";
					if (strcmp(wname, name) == 0 && want[w].stat == s &&
					    want[w].bucket == json_integer_value(b))
						match = &want[w];
				}
				if (!match) {
					print_error("%s: unexpected point %s %s bucket %lld value %.17g\n", what,
						    name, metric_stat_names[s], (long long)json_integer_value(b),
						    json_number_value(v));
					failures++;
				} else if (json_number_value(v) != match->value) {
					print_error("%s: %s %s bucket %lld: value %.17g, want %.17g\n", what, name,
						    metric_stat_names[s], (long long)match->bucket,
						    json_number_value(v), match->value);
					failures++;
				}
			}
		}
	}
	/* and every expected point is there */
	for (size_t w = 0; w < nwant; w++) {
		const char *wname = want[w].name ? want[w].name : "m";
		json_t *pts = points(wname, want[w].stat);
		bool found = false;
		size_t k;
		json_t *p;
		json_array_foreach(pts, k, p) {
			if (json_integer_value(json_object_get(p, "bucket")) == want[w].bucket)
				found = true;
		}
		if (!found) {
			print_error("%s: missing point %s %s bucket %lld (want %.17g)\n", what, wname,
				    metric_stat_names[want[w].stat], (long long)want[w].bucket,
				    want[w].value);
			failures++;
		}
	}
	return failures;
}

/* ---- the roll-up rules, one group at a time ---- */

#define T0S INT64_C(1355203140) /* 2012-12-11T05:19:00Z */
#define T0 (T0S * US)

typedef struct RuleCase {
	const char *what;
	TRow rows[6];
	size_t nrows;
	TPoint want[16];
	size_t nwant;
} RuleCase;

static const RuleCase rule_cases[] = {
	{"one row: exact values",
	 {{NULL, T0 + 10 * US, 1, ALL_STATS, {3, 3.14, 0.1, 0.1, 3.14, 2.5, 3, 0.1}, 1}},
	 1,
	 {{NULL, METRIC_COUNT, T0S, 3}, {NULL, METRIC_MEAN, T0S, 3.14},
	  {NULL, METRIC_MEDIAN, T0S, 0.1}, {NULL, METRIC_MIN, T0S, 0.1},
	  {NULL, METRIC_MAX, T0S, 3.14}, {NULL, METRIC_PERC95, T0S, 2.5},
	  {NULL, METRIC_PERC99, T0S, 3}, {NULL, METRIC_LAST, T0S, 0.1}},
	 8},
	{"two rows: sum, weighted means, min, max, last of the latest bucket",
	 {{NULL, T0 + 50 * US, 1, ALL_STATS, {2, 10, 1, 5, 15, 14, 15, 7}, 1},
	  {NULL, T0 + 10 * US, 2, ALL_STATS, {6, 20, 3, 2, 30, 25, 28, 9}, 1}},
	 2,
	 {{NULL, METRIC_COUNT, T0S, 8}, {NULL, METRIC_MEAN, T0S, 17.5},
	  {NULL, METRIC_MEDIAN, T0S, 2.5}, {NULL, METRIC_MIN, T0S, 2},
	  {NULL, METRIC_MAX, T0S, 30}, {NULL, METRIC_PERC95, T0S, 25},
	  {NULL, METRIC_PERC99, T0S, 28}, {NULL, METRIC_LAST, T0S, 7}},
	 8},
	{"three rows, negative values",
	 {{NULL, T0 + 1 * US, 10, ALL_STATS, {1, -4, -4, -5, -3, -3, -3, -4}, 1},
	  {NULL, T0 + 2 * US, 11, ALL_STATS, {1, -2, -2, -2, -1, -1, -1, -2}, 1},
	  {NULL, T0 + 3 * US, 12, ALL_STATS, {2, -3, -3, -3, -2.5, -2, -1.5, -3}, 1}},
	 3,
	 {{NULL, METRIC_COUNT, T0S, 4}, {NULL, METRIC_MEAN, T0S, -3},
	  {NULL, METRIC_MEDIAN, T0S, -3}, {NULL, METRIC_MIN, T0S, -5},
	  {NULL, METRIC_MAX, T0S, -1}, {NULL, METRIC_PERC95, T0S, -1},
	  {NULL, METRIC_PERC99, T0S, -1}, {NULL, METRIC_LAST, T0S, -3}},
	 8},
	{"a row without count: plain mean",
	 {{NULL, T0, 1, BIT(METRIC_COUNT) | BIT(METRIC_MEAN), {2, 10}, 1},
	  {NULL, T0 + US, 2, BIT(METRIC_MEAN), {[METRIC_MEAN] = 20}, 1}},
	 2,
	 {{NULL, METRIC_COUNT, T0S, 2}, {NULL, METRIC_MEAN, T0S, 15}},
	 2},
	{"all counts 0: plain mean",
	 {{NULL, T0, 1, BIT(METRIC_COUNT) | BIT(METRIC_MEDIAN), {0, [METRIC_MEDIAN] = 10}, 1},
	  {NULL, T0 + US, 2, BIT(METRIC_COUNT) | BIT(METRIC_MEDIAN), {0, [METRIC_MEDIAN] = 20}, 1}},
	 2,
	 {{NULL, METRIC_COUNT, T0S, 0}, {NULL, METRIC_MEDIAN, T0S, 15}},
	 2},
	{"NULLs left out: one value of mean among two rows is exact",
	 {{NULL, T0, 1, BIT(METRIC_COUNT) | BIT(METRIC_MEAN), {3, 0.1}, 1},
	  {NULL, T0 + US, 2, BIT(METRIC_COUNT) | BIT(METRIC_MIN), {5, [METRIC_MIN] = 0.1}, 1}},
	 2,
	 {{NULL, METRIC_COUNT, T0S, 8}, {NULL, METRIC_MEAN, T0S, 0.1},
	  {NULL, METRIC_MIN, T0S, 0.1}},
	 3},
	{"a stat NULL in every row of a bucket has no point there",
	 {{NULL, T0, 1, BIT(METRIC_COUNT), {1}, 1},
	  {NULL, T0 + 30 * US, 2, BIT(METRIC_COUNT), {2}, 1},
	  {NULL, T0 + 60 * US, 3, BIT(METRIC_COUNT) | BIT(METRIC_MAX), {1, [METRIC_MAX] = 9}, 1}},
	 3,
	 {{NULL, METRIC_COUNT, T0S, 3}, {NULL, METRIC_COUNT, T0S + 60, 1},
	  {NULL, METRIC_MAX, T0S + 60, 9}},
	 3},
	{"last: the latest bucket wins over a greater id",
	 {{NULL, T0 + 59 * US, 1, BIT(METRIC_LAST), {[METRIC_LAST] = 1}, 1},
	  {NULL, T0 + 58 * US, 9, BIT(METRIC_LAST), {[METRIC_LAST] = 2}, 1},
	  {NULL, T0, 5, BIT(METRIC_LAST), {[METRIC_LAST] = 3}, 1}},
	 3,
	 {{NULL, METRIC_LAST, T0S, 1}},
	 1},
	{"last: same bucket, the greatest id wins",
	 {{NULL, T0 + 7 * US, 3, BIT(METRIC_LAST), {[METRIC_LAST] = 1}, 1},
	  {NULL, T0 + 7 * US, 7, BIT(METRIC_LAST), {[METRIC_LAST] = 2}, 1},
	  {NULL, T0 + 7 * US, 5, BIT(METRIC_LAST), {[METRIC_LAST] = 3}, 1}},
	 3,
	 {{NULL, METRIC_LAST, T0S, 2}},
	 1},
	{"last: rows without last do not count",
	 {{NULL, T0 + 50 * US, 2, BIT(METRIC_COUNT), {1}, 1},
	  {NULL, T0 + 10 * US, 1, BIT(METRIC_COUNT) | BIT(METRIC_LAST), {1, [METRIC_LAST] = 4}, 1}},
	 2,
	 {{NULL, METRIC_COUNT, T0S, 2}, {NULL, METRIC_LAST, T0S, 4}},
	 2},
	{"duplicates counted once",
	 {{NULL, T0 + 1 * US, 1, BIT(METRIC_COUNT) | BIT(METRIC_MEAN), {2, 10}, 2},
	  {NULL, T0 + 2 * US, 2, BIT(METRIC_COUNT) | BIT(METRIC_MEAN), {6, 20}, 3}},
	 2,
	 {{NULL, METRIC_COUNT, T0S, 8}, {NULL, METRIC_MEAN, T0S, 17.5}},
	 2},
	{"one row from two databases keeps its exact values",
	 {{NULL, T0 + 1 * US, 1, BIT(METRIC_COUNT) | BIT(METRIC_MEAN) | BIT(METRIC_LAST),
	   {3, 0.1, [METRIC_LAST] = 3.14}, 2}},
	 1,
	 {{NULL, METRIC_COUNT, T0S, 3}, {NULL, METRIC_MEAN, T0S, 0.1},
	  {NULL, METRIC_LAST, T0S, 3.14}},
	 3},
	{"duplicates under two names and two buckets",
	 {{"a", T0, 1, BIT(METRIC_COUNT), {1}, 3},
	  {"b", T0, 2, BIT(METRIC_COUNT), {10}, 2},
	  {"a", T0 + 60 * US, 3, BIT(METRIC_COUNT), {100}, 2},
	  {"a", T0 + 61 * US, 4, BIT(METRIC_COUNT), {1000}, 1}},
	 4,
	 {{"a", METRIC_COUNT, T0S, 1}, {"a", METRIC_COUNT, T0S + 60, 1100},
	  {"b", METRIC_COUNT, T0S, 10}},
	 3},
};

/* The rules, on rows as the databases return them. */
static void test_rules(void **state)
{
	(void)state;
	const RuleCase *cases = rule_cases;
	int failures = 0;
	for (size_t i = 0; i < sizeof(rule_cases) / sizeof(rule_cases[0]); i++) {
		for (int reverse = 0; reverse <= 1; reverse++) {
			start(TM_MINUTE, 1000);
			add_rows(cases[i].rows, cases[i].nrows, reverse);
			finish();
			char what[200];
			snprintf(what, sizeof(what), "case %zu (%s)%s", i, cases[i].what,
				 reverse ? " reversed" : "");
			failures += check_points(cases[i].want, cases[i].nwant, what);
		}
	}
	assert_int_equal(failures, 0);
}

/* The same rules when a database aggregated each group itself: the accumulator of
 * rollup_acc_row() over a group's rows (each once, as one database holds them), added with
 * rollup_add_group(), answers like the rows. One raw row of another name rides along. Split:
 * each row is a part of its own (a rollup row, say) and the parts are added up with
 * rollup_acc_merge(), as a read at an hour or a day adds the parts databases send. */
static void test_rules_from_aggregated_groups(void **state)
{
	(void)state;
	int failures = 0;
	for (size_t i = 0; i < sizeof(rule_cases) / sizeof(rule_cases[0]); i++) {
		const RuleCase *c = &rule_cases[i];
		for (int variant = 0; variant < 4; variant++) {
			int reverse = variant & 1, split = variant >> 1;
			start(TM_MINUTE, 1000);
			TRow raw = {"~raw", T0, 999999, BIT(METRIC_COUNT), {1}, 1};
			add_row(&raw);
			bool done[6] = {false};
			for (size_t a = 0; a < c->nrows; a++) {
				if (done[a])
					continue;
				const char *name = c->rows[a].name ? c->rows[a].name : "m";
				int64_t g = tm_truncate(c->rows[a].bucket_us, TM_MINUTE);
				RollAcc acc;
				memset(&acc, 0, sizeof(acc));
				for (size_t k = 0; k < c->nrows; k++) {
					size_t b = reverse ? c->nrows - 1 - k : k;
					const char *bname = c->rows[b].name ? c->rows[b].name : "m";
					if (done[b] || strcmp(bname, name) != 0 ||
					    tm_truncate(c->rows[b].bucket_us, TM_MINUTE) != g)
						continue;
					Uuid id = id_of(c->rows[b].id);
					RollAcc part;
					memset(&part, 0, sizeof(part));
					rollup_acc_row(split ? &part : &acc, &id, c->rows[b].bucket_us,
						       c->rows[b].present, c->rows[b].v);
					if (split)
						rollup_acc_merge(&acc, &part);
					done[b] = true;
				}
				assert_true(rollup_add_group(roll, name, strlen(name), g, &acc));
			}
			finish();
			TPoint want[17];
			memcpy(want, c->want, c->nwant * sizeof(TPoint));
			want[c->nwant] = (TPoint){"~raw", METRIC_COUNT, T0S, 1};
			char what[200];
			snprintf(what, sizeof(what), "case %zu (%s)%s, as groups%s", i, c->what,
				 reverse ? " reversed" : "", split ? " of parts" : "");
			failures += check_points(want, c->nwant + 1, what);
		}
	}
	assert_int_equal(failures, 0);
}

/* rollup_add_group is bounded by max_rows too. */
static void test_max_groups(void **state)
{
	(void)state;
	const struct {
		size_t max_rows, adds, held;
	} cases[] = {{0, 1, 0}, {1, 2, 1}, {3, 5, 3}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		start(TM_MINUTE, cases[i].max_rows);
		for (size_t k = 0; k < cases[i].adds; k++) {
			RollAcc acc;
			memset(&acc, 0, sizeof(acc));
			Uuid id = id_of((uint32_t)k + 1);
			const double v[METRIC_NSTATS] = {1};
			rollup_acc_row(&acc, &id, T0 + (int64_t)k * 60 * US, BIT(METRIC_COUNT), v);
			bool ok = rollup_add_group(roll, "g", 1, T0 + (int64_t)k * 60 * US, &acc);
			assert_int_equal(ok, k < cases[i].max_rows);
		}
		assert_int_equal(rollup_count(roll), cases[i].held);
	}
}

/* ---- buckets: the start of the group, in Unix seconds, for every resolution ---- */

static void test_group_buckets(void **state)
{
	(void)state;
	const struct {
		TmRes res;
		int64_t at[5];
		size_t nat;
		int64_t want_bucket[4]; /* ascending */
		double want_count[4];
		size_t nwant;
	} cases[] = {
		{TM_SECOND,
		 {utc(2012, 12, 11, 5, 19, 42) + 250000, utc(2012, 12, 11, 5, 19, 42) + 750000,
		  utc(2012, 12, 11, 5, 19, 43)},
		 3,
		 {utc(2012, 12, 11, 5, 19, 42) / US, utc(2012, 12, 11, 5, 19, 43) / US},
		 {2, 1},
		 2},
		{TM_MINUTE,
		 {utc(2012, 12, 11, 5, 20, 0), utc(2012, 12, 11, 5, 19, 0),
		  utc(2012, 12, 11, 5, 19, 59) + 999999},
		 3,
		 {utc(2012, 12, 11, 5, 19, 0) / US, utc(2012, 12, 11, 5, 20, 0) / US},
		 {2, 1},
		 2},
		{TM_HOUR,
		 {utc(2012, 12, 11, 5, 0, 0), utc(2012, 12, 11, 5, 59, 59), utc(2012, 12, 11, 6, 0, 0),
		  utc(2012, 12, 11, 4, 59, 59)},
		 4,
		 {utc(2012, 12, 11, 4, 0, 0) / US, utc(2012, 12, 11, 5, 0, 0) / US,
		  utc(2012, 12, 11, 6, 0, 0) / US},
		 {1, 2, 1},
		 3},
		{TM_DAY,
		 {utc(2012, 12, 11, 0, 0, 0), utc(2012, 12, 11, 23, 59, 59), utc(2012, 12, 12, 0, 0, 0)},
		 3,
		 {utc(2012, 12, 11, 0, 0, 0) / US, utc(2012, 12, 12, 0, 0, 0) / US},
		 {2, 1},
		 2},
		{TM_WEEK, /* Monday 2024-01-01: a Wednesday and a Sunday roll back to it */
		 {utc(2024, 1, 3, 12, 0, 0), utc(2024, 1, 7, 23, 59, 59), utc(2024, 1, 1, 0, 0, 0),
		  utc(2024, 1, 8, 0, 0, 0), utc(2023, 12, 31, 23, 59, 59)},
		 5,
		 {utc(2023, 12, 25, 0, 0, 0) / US, utc(2024, 1, 1, 0, 0, 0) / US,
		  utc(2024, 1, 8, 0, 0, 0) / US},
		 {1, 3, 1},
		 3},
		{TM_MONTH,
		 {utc(2012, 2, 1, 0, 0, 0), utc(2012, 2, 29, 23, 59, 59), utc(2012, 3, 1, 0, 0, 0),
		  utc(2012, 1, 31, 23, 59, 59)},
		 4,
		 {utc(2012, 1, 1, 0, 0, 0) / US, utc(2012, 2, 1, 0, 0, 0) / US,
		  utc(2012, 3, 1, 0, 0, 0) / US},
		 {1, 2, 1},
		 3},
		{TM_YEAR,
		 {utc(2012, 1, 1, 0, 0, 0), utc(2012, 12, 31, 23, 59, 59), utc(2013, 1, 1, 0, 0, 0),
		  utc(2000, 2, 29, 12, 0, 0)},
		 4,
		 {utc(2000, 1, 1, 0, 0, 0) / US, utc(2012, 1, 1, 0, 0, 0) / US,
		  utc(2013, 1, 1, 0, 0, 0) / US},
		 {1, 2, 1},
		 3},
	};
	int failures = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (int reverse = 0; reverse <= 1; reverse++) {
			start(cases[i].res, 1000);
			for (size_t k = 0; k < cases[i].nat; k++) {
				size_t j = reverse ? cases[i].nat - 1 - k : k;
				TRow r = {NULL, cases[i].at[j], (uint32_t)j + 1, BIT(METRIC_COUNT), {1}, 1};
				add_row(&r);
			}
			finish();
			json_t *pts = points("m", METRIC_COUNT);
			assert_non_null(pts);
			if (json_array_size(pts) != cases[i].nwant) {
				print_error("case %zu: %zu buckets, want %zu\n", i, json_array_size(pts),
					    cases[i].nwant);
				failures++;
				continue;
			}
			for (size_t k = 0; k < cases[i].nwant; k++) {
				json_t *p = json_array_get(pts, k);
				json_t *b = json_object_get(p, "bucket");
				double v = json_number_value(json_object_get(p, "value"));
				if (!json_is_integer(b) || json_integer_value(b) != cases[i].want_bucket[k] ||
				    v != cases[i].want_count[k]) {
					print_error("case %zu point %zu: bucket %s%lld count %g, want %lld "
						    "count %g\n",
						    i, k, json_is_integer(b) ? "" : "(not an integer) ",
						    (long long)json_integer_value(b), v,
						    (long long)cases[i].want_bucket[k], cases[i].want_count[k]);
					failures++;
				}
			}
		}
	}
	assert_int_equal(failures, 0);
}

/* Buckets come out ascending whatever order the rows arrive in, for every statistic. */
static void test_buckets_ascending(void **state)
{
	(void)state;
	const int order[] = {7, 2, 9, 0, 5, 3, 8, 1, 6, 4};
	const TmRes resolutions[] = {TM_SECOND, TM_MINUTE, TM_HOUR, TM_DAY};
	const int64_t step[] = {US, 60 * US, 3600 * US, 86400 * US};
	const int64_t base = utc(2012, 12, 10, 0, 0, 0); /* a boundary at every resolution used */
	for (size_t r = 0; r < sizeof(resolutions) / sizeof(resolutions[0]); r++) {
		start(resolutions[r], 1000);
		for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
			TRow row = {NULL, base + order[k] * step[r], (uint32_t)(100 - k), ALL_STATS,
				    {1, 2, 3, 4, 5, 6, 7, 8}, 1};
			add_row(&row);
		}
		finish();
		for (int s = 0; s < METRIC_NSTATS; s++) {
			json_t *pts = points("m", s);
			assert_int_equal(json_array_size(pts), 10);
			for (size_t k = 0; k < 10; k++) {
				json_t *b = json_object_get(json_array_get(pts, k), "bucket");
				assert_int_equal(json_integer_value(b), (base + (int64_t)k * step[r]) / US);
			}
		}
	}
}

/* ---- names ---- */

static void test_names_sorted_by_bytes(void **state)
{
	(void)state;
	const struct {
		const char *in[8];
		size_t n;
		const char *want[8];
	} cases[] = {
		{{"b", "a", "c"}, 3, {"a", "b", "c"}},
		{{"b", "a", "B", "A"}, 4, {"A", "B", "a", "b"}},
		{{"ab", "a", "a b", "a.b", "aa"}, 5, {"a", "a b", "a.b", "aa", "ab"}},
		{{"\xc3\xa9", "z", "~", "Z"}, 4, {"Z", "z", "~", "\xc3\xa9"}},
		{{"\xe6\x97\xa5", "\xc3\xa9", "\xf0\x9f\x98\x80"}, 3,
		 {"\xc3\xa9", "\xe6\x97\xa5", "\xf0\x9f\x98\x80"}},
		{{"a\"b", "a\\b", "a b"}, 3, {"a b", "a\"b", "a\\b"}},
		{{"requests.count", "requests", "request"}, 3, {"request", "requests", "requests.count"}},
		{{"only"}, 1, {"only"}},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		start(TM_MINUTE, 1000);
		for (size_t k = 0; k < cases[i].n; k++) {
			TRow r = {cases[i].in[k], T0, (uint32_t)k + 1, BIT(METRIC_COUNT), {(double)k}, 1};
			add_row(&r);
		}
		finish();
		assert_int_equal(json_array_size(answer), cases[i].n);
		for (size_t k = 0; k < cases[i].n; k++) {
			json_t *o = json_array_get(answer, k);
			const char *name = json_string_value(json_object_get(o, "name"));
			if (strcmp(name, cases[i].want[k]) != 0)
				print_error("case %zu position %zu: %s, want %s\n", i, k, name,
					    cases[i].want[k]);
			assert_string_equal(name, cases[i].want[k]);
		}
	}
}

/* Many names (the interning table grows several times), added in a scrambled order, each
 * with rows spread over the whole add sequence. */
static void test_many_names(void **state)
{
	(void)state;
	const int names = 1000;
	start(TM_MINUTE, 100000);
	uint32_t id = 1;
	for (int round = 0; round < 3; round++) {
		for (int k = 0; k < names; k++) {
			int n = (k * 7919 + round * 13) % names; /* 7919 is prime: a permutation */
			char name[32];
			snprintf(name, sizeof(name), "metric.%04d", n);
			TRow r = {name, T0 + round * 60 * US, id++, BIT(METRIC_COUNT), {(double)n}, 1};
			add_row(&r);
		}
	}
	assert_int_equal(rollup_count(roll), 3 * names);
	finish();
	assert_int_equal(json_array_size(answer), names);
	for (int k = 0; k < names; k++) {
		char name[32];
		snprintf(name, sizeof(name), "metric.%04d", k);
		json_t *o = json_array_get(answer, (size_t)k);
		assert_string_equal(json_string_value(json_object_get(o, "name")), name);
		json_t *pts = json_object_get(o, "count");
		assert_int_equal(json_array_size(pts), 3);
		for (size_t p = 0; p < 3; p++)
			assert_true(json_number_value(json_object_get(json_array_get(pts, p), "value")) ==
				    k);
	}
}

/* ---- a big batch against an oracle ---- */

static void test_against_oracle(void **state)
{
	(void)state;
	enum { NAMES = 7, MINUTES = 12, MAXROWS = 5 };
	static TRow rows[NAMES * MINUTES * MAXROWS];
	static char names[NAMES][16];
	double count[NAMES][MINUTES], wsum[NAMES][MINUTES], mn[NAMES][MINUTES], mx[NAMES][MINUTES];
	size_t n = 0;
	uint32_t id = 1;
	uint64_t x = 88172645463325252u;
	for (int a = 0; a < NAMES; a++) {
		snprintf(names[a], sizeof(names[a]), "n%d", (a * 3) % NAMES);
		for (int m = 0; m < MINUTES; m++) {
			int nrows = 1 + (a + m) % MAXROWS;
			count[a][m] = wsum[a][m] = 0;
			mn[a][m] = INFINITY;
			mx[a][m] = -INFINITY;
			for (int k = 0; k < nrows; k++) {
				x ^= x << 13, x ^= x >> 7, x ^= x << 17;
				double c = (double)(1 + x % 50), mean = (double)(x % 1000) - 500;
				double lo = mean - (double)(x % 7), hi = mean + (double)(x % 11);
				TRow *r = &rows[n++];
				*r = (TRow){names[a], T0 + m * 60 * US + (int64_t)(x % 60) * US, id++,
					    BIT(METRIC_COUNT) | BIT(METRIC_MEAN) | BIT(METRIC_MIN) |
						    BIT(METRIC_MAX),
					    {c, mean, 0, lo, hi}, 1 + (int)(x % 3)};
				count[a][m] += c;
				wsum[a][m] += c * mean;
				mn[a][m] = lo < mn[a][m] ? lo : mn[a][m];
				mx[a][m] = hi > mx[a][m] ? hi : mx[a][m];
			}
		}
	}
	/* scramble the order the rows arrive in */
	for (size_t k = n - 1; k > 0; k--) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		size_t j = x % (k + 1);
		TRow t = rows[k];
		rows[k] = rows[j];
		rows[j] = t;
	}
	start(TM_MINUTE, 100000);
	add_rows(rows, n, false);
	finish();
	assert_int_equal(json_array_size(answer), NAMES);
	int failures = 0;
	for (int a = 0; a < NAMES; a++) {
		for (int m = 0; m < MINUTES; m++) {
			const int stats[] = {METRIC_COUNT, METRIC_MEAN, METRIC_MIN, METRIC_MAX};
			const double want[] = {count[a][m], wsum[a][m] / count[a][m], mn[a][m], mx[a][m]};
			for (int s = 0; s < 4; s++) {
				json_t *p = json_array_get(points(names[a], stats[s]), (size_t)m);
				int64_t b = json_integer_value(json_object_get(p, "bucket"));
				double v = json_number_value(json_object_get(p, "value"));
				if (b != T0S + m * 60 || fabs(v - want[s]) > 1e-9 * fmax(1, fabs(want[s]))) {
					print_error("%s %s minute %d: bucket %lld value %.17g, want %.17g\n",
						    names[a], metric_stat_names[stats[s]], m, (long long)b, v,
						    want[s]);
					failures++;
				}
			}
			assert_int_equal(json_array_size(points(names[a], METRIC_MEDIAN)), 0);
		}
	}
	assert_int_equal(failures, 0);
}

/* ---- limits and the empty answer ---- */

static void test_max_rows(void **state)
{
	(void)state;
	const struct {
		size_t max_rows;
		size_t adds;
		size_t held;
	} cases[] = {{0, 1, 0}, {1, 1, 1}, {1, 2, 1}, {3, 5, 3}, {100, 100, 100}, {100, 250, 100}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		start(TM_SECOND, cases[i].max_rows);
		const double v[METRIC_NSTATS] = {1};
		for (size_t k = 0; k < cases[i].adds; k++) {
			Uuid id = id_of((uint32_t)k + 1);
			bool ok = rollup_add(roll, &id, T0 + (int64_t)k * US, "m", 1, BIT(METRIC_COUNT), v);
			assert_int_equal(ok, k < cases[i].max_rows);
			assert_int_equal(rollup_count(roll), k < cases[i].max_rows ? k + 1 : cases[i].max_rows);
		}
		assert_int_equal(rollup_count(roll), cases[i].held);
		if (cases[i].held == 0)
			continue; /* the empty answer is test_empty's */
		finish();
		/* only the rows held are in the answer */
		json_t *pts = points("m", METRIC_COUNT);
		assert_int_equal(pts ? json_array_size(pts) : 0, cases[i].held);
		assert_int_equal(json_array_size(answer), 1);
	}
}

/* No matching rows: the answer is []. */
static void test_empty(void **state)
{
	(void)state;
	const TmRes resolutions[] = {TM_SECOND, TM_MINUTE, TM_HOUR, TM_DAY, TM_WEEK, TM_MONTH, TM_YEAR};
	for (size_t i = 0; i < sizeof(resolutions) / sizeof(resolutions[0]); i++) {
		start(resolutions[i], 10);
		assert_int_equal(rollup_count(roll), 0);
		finish();
		assert_int_equal(json_array_size(answer), 0);
		size_t len = out.len;
		while (len > 0 && (out.p[len - 1] == '\n' || out.p[len - 1] == ' '))
			len--;
		assert_int_equal(len, 2);
		assert_memory_equal(out.p, "[]", 2);
	}
}

/* Only groups the databases aggregated, no raw row: the common read, when every database
 * agrees on every group. */
static void test_groups_without_rows(void **state)
{
	(void)state;
	start(TM_MINUTE, 10);
	RollAcc acc;
	memset(&acc, 0, sizeof(acc));
	Uuid id = id_of(1);
	const double v[METRIC_NSTATS] = {3, 3.14};
	rollup_acc_row(&acc, &id, T0 + US, BIT(METRIC_COUNT) | BIT(METRIC_MEAN), v);
	assert_true(rollup_add_group(roll, "g", 1, T0, &acc));
	finish();
	const TPoint want[] = {{"g", METRIC_COUNT, T0S, 3}, {"g", METRIC_MEAN, T0S, 3.14}};
	assert_int_equal(check_points(want, 2, "groups only"), 0);
}

/* Every object of the answer has its name and the eight statistics, as arrays. */
static void test_answer_shape(void **state)
{
	(void)state;
	start(TM_HOUR, 10);
	const TRow rows[] = {
		{"a", T0, 1, BIT(METRIC_COUNT), {1}, 1},
		{"b", T0, 2, BIT(METRIC_LAST), {[METRIC_LAST] = 2}, 1},
	};
	add_rows(rows, 2, false);
	finish();
	assert_int_equal(json_array_size(answer), 2);
	size_t i;
	json_t *o;
	json_array_foreach(answer, i, o) {
		assert_true(json_is_object(o));
		assert_true(json_is_string(json_object_get(o, "name")));
		for (int s = 0; s < METRIC_NSTATS; s++) {
			json_t *pts = json_object_get(o, metric_stat_names[s]);
			assert_true(pts == NULL || json_is_array(pts));
			size_t k;
			json_t *p;
			json_array_foreach(pts, k, p) {
				assert_int_equal(json_object_size(p), 2);
				assert_true(json_is_integer(json_object_get(p, "bucket")));
				assert_true(json_is_number(json_object_get(p, "value")));
			}
		}
	}
	assert_int_equal(json_array_size(points("a", METRIC_COUNT)), 1);
	assert_int_equal(json_array_size(points("a", METRIC_LAST)), 0);
	assert_int_equal(json_array_size(points("b", METRIC_COUNT)), 0);
	assert_int_equal(json_array_size(points("b", METRIC_LAST)), 1);
}


/* A series written in small parts says exactly what the whole-answer rollup says for the same
 * rows: every resolution, values a float holds and values it does not, tiny and huge ones,
 * statistics missing in some buckets, buckets before 1970 (weeks), and enough buckets to fill
 * several of the series' blocks. */
static void series_case(TmRes res, int nrows, int64_t step_us, size_t part)
{
	roll = rollup_new(res, (size_t)nrows + 1);
	RollSeries s;
	rollseries_init(&s, res);
	rollseries_begin(&s, "a.series", 8);
	int64_t t0 = utc(1970, 1, 1, 0, 0, 0) - 3 * 86400 * US;
	for (int i = 0; i < nrows; i++) {
		double v[METRIC_NSTATS];
		for (int k = 0; k < METRIC_NSTATS; k++)
			v[k] = (i % 3 == 0) ? (double)(i * 8 + k) : (i + k) * 0.1 + (k == 3 ? 1e-300 : 0) + (k == 4 ? 1e90 : 0);
		uint8_t present = (uint8_t)(i % 5 == 0 ? ALL_STATS & ~BIT(METRIC_MEDIAN) : ALL_STATS);
		Uuid id = id_of((uint32_t)i);
		int64_t b = t0 + (int64_t)i * step_us;
		assert_true(rollup_add(roll, &id, b, "a.series", 8, present, v));
		rollseries_add(&s, &id, b, present, v);
	}
	rollseries_end(&s);
	rollup_write_json(roll, &out);
	Buf got = {0};
	buf_addc(&got, '[');
	int parts = 0;
	while (!rollseries_write(&s, &got, got.len + part))
		parts++;
	buf_adds(&got, "]\n");
	assert_true(part > 100000 || parts > 0 || nrows < 10);
	assert_int_equal(got.len, out.len);
	assert_memory_equal(got.p, out.p, out.len);
	buf_free(&got);
	rollseries_free(&s);
	rollup_free(roll);
	roll = NULL;
	buf_reset(&out);
}

static void test_series_in_parts_equals_whole_answer(void **state)
{
	(void)state;
	series_case(TM_MINUTE, 20000, 60 * US, 1000);  /* one row a bucket, several blocks */
	series_case(TM_MINUTE, 5000, 7 * US, 333);     /* several rows a bucket */
	series_case(TM_SECOND, 3000, US / 2, 64);
	series_case(TM_HOUR, 4000, 61 * US, 4096);
	series_case(TM_WEEK, 300, 86400 * US, 10);     /* the first week starts before 1970 */
	series_case(TM_MONTH, 400, 86400 * US, 50);
	series_case(TM_YEAR, 50, 40 * 86400 * US, 1 << 20);
	series_case(TM_MINUTE, 1, 60 * US, 1);
}

static void test_series_reused_for_the_next_name(void **state)
{
	(void)state;
	RollSeries s;
	rollseries_init(&s, TM_MINUTE);
	double v[METRIC_NSTATS] = {1, 2, 3, 4, 5, 6, 7, 8};
	for (int n = 0; n < 2; n++) {
		rollseries_begin(&s, n ? "b" : "a", 1);
		for (int i = 0; i < (n ? 3 : 50000); i++) {
			Uuid id = id_of((uint32_t)i);
			rollseries_add(&s, &id, (int64_t)i * 60 * US, ALL_STATS, v);
		}
		rollseries_end(&s);
		buf_reset(&out);
		while (!rollseries_write(&s, &out, SIZE_MAX))
			;
	}
	json_error_t err;
	answer = json_loadb(out.p, out.len, 0, &err);
	assert_non_null(answer);
	assert_string_equal(json_string_value(json_object_get(answer, "name")), "b");
	assert_int_equal(json_array_size(json_object_get(answer, "count")), 3);
	rollseries_free(&s);
}

/* Two databases hold one id with different values (a row edited by hand in one of them): the
 * copy of the database listed first counts, whichever answered first. */
static void test_one_id_with_different_values_is_deterministic(void **state)
{
	(void)state;
	for (int order = 0; order < 2; order++) {
		start(TM_MINUTE, 10);
		Uuid id = id_of(7);
		double first[METRIC_NSTATS] = {1, 10, 0, 0, 0, 0, 0, 0};
		double second[METRIC_NSTATS] = {2, 20, 0, 0, 0, 0, 0, 0};
		for (int k = 0; k < 2; k++) {
			unsigned src = (unsigned)(order ? 1 - k : k);
			rollup_set_source(roll, src);
			assert_true(rollup_add(roll, &id, T0, "m", 1, BIT(METRIC_COUNT) | BIT(METRIC_MEAN),
					       src == 0 ? first : second));
		}
		buf_reset(&out);
		rollup_write_json(roll, &out);
		json_error_t err;
		json_t *a = json_loadb(out.p, out.len, 0, &err);
		assert_non_null(a);
		json_t *count = json_object_get(json_array_get(a, 0), "count");
		assert_int_equal(json_array_size(count), 1);
		assert_true(json_number_value(json_object_get(json_array_get(count, 0), "value")) == 1);
		json_decref(a);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_rules, teardown),
		cmocka_unit_test_teardown(test_rules_from_aggregated_groups, teardown),
		cmocka_unit_test_teardown(test_max_groups, teardown),
		cmocka_unit_test_teardown(test_group_buckets, teardown),
		cmocka_unit_test_teardown(test_buckets_ascending, teardown),
		cmocka_unit_test_teardown(test_names_sorted_by_bytes, teardown),
		cmocka_unit_test_teardown(test_many_names, teardown),
		cmocka_unit_test_teardown(test_against_oracle, teardown),
		cmocka_unit_test_teardown(test_max_rows, teardown),
		cmocka_unit_test_teardown(test_empty, teardown),
		cmocka_unit_test_teardown(test_groups_without_rows, teardown),
		cmocka_unit_test_teardown(test_answer_shape, teardown),
		cmocka_unit_test_teardown(test_series_in_parts_equals_whole_answer, teardown),
		cmocka_unit_test_teardown(test_series_reused_for_the_next_name, teardown),
		cmocka_unit_test_teardown(test_one_id_with_different_values_is_deterministic, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
