/* Graphite's render API without I/O, for Grafana's Graphite data source (version 1.1): path
 * globs and their PostgreSQL pre-filter, Graphite's time forms, the target language, the
 * functions over in-memory series, consolidation for maxDataPoints, and the JSON of /render and
 * /functions. Pure: links alone in unit tests and fuzz targets.
 *
 * The model: a metric's name split on dots is a branch and its statistics are leaves, so the
 * path app.web.latency.mean is the statistic mean of the metric app.web.latency.
 *
 * Patterns (globs), per dot-separated segment: '*' any run of characters, '?' one character
 * (a UTF-8 character, not a byte), '[a-z0-9_]' a class, '[!a]' or '[^a]' a negated class (a
 * ']' first in a class is literal), '{a,b*,c[0-9]}' alternatives that may hold '*', '?' and
 * classes. Valid patterns (graphite_pattern_check): 1..GRAPHITE_PATTERN_MAX bytes of UTF-8
 * without control characters, no empty segment, balanced '[...]' and '{...}', no '.' inside
 * either, braces not nested, no range whose end comes before its start ([z-a]). There is no
 * escape character: a name holding '*', '[' or '{' is reached through a wildcard. */
#ifndef M2PG_GRAPHITE_H
#define M2PG_GRAPHITE_H

#include "buf.h"
#include "common.h"

#define GRAPHITE_PATTERN_MAX 1024
#define GRAPHITE_TARGET_MAX 4096
#define GRAPHITE_DEPTH_MAX 32     /* nested function calls */
#define GRAPHITE_ARGS_MAX 64      /* arguments of one call */
#define GRAPHITE_NODES_MAX 1000   /* calls, paths and constants in one target */
#define GRAPHITE_REGEX_QUANTIFIERS 16
#define GRAPHITE_POINTS_MAX 1000000 /* points of one series built by a function */
#define GRAPHITE_STEP_MAX INT64_C(31536000) /* a common step (lcm) above a year is refused */
#define GRAPHITE_TIME_MAX INT64_C(253402300799) /* 9999-12-31T23:59:59Z */

/* ---------- paths and globs ---------- */

/* pattern[0..len) is a valid pattern (rules above); otherwise false and a message in err. */
bool graphite_pattern_check(const char *pattern, size_t len, char *err, size_t errlen) WARN_UNUSED;
/* Number of dot-separated segments of s[0..len) ("a.b" has 2, "" has 1). */
size_t graphite_nsegs(const char *s, size_t len);
/* Segment i of s (0-based; negative counts from the end, -1 the last) into *seg, *seglen;
 * false when there is no such segment. */
bool graphite_seg(const char *s, size_t len, long i, const char **seg, size_t *seglen);
/* The glob glob[0..glen) matches all of s[0..slen), one segment (a '.' in s is an ordinary
 * character here). Linear in glen * slen whatever the glob (no backtracking). An invalid glob
 * does not fail: an unclosed '[' or '{' is an ordinary character. */
bool graphite_glob_match(const char *glob, size_t glen, const char *s, size_t slen);
/* The whole dotted path matches the whole pattern: the same number of segments, each segment
 * matching its glob. */
bool graphite_path_match(const char *pattern, size_t plen, const char *path, size_t len);
/* A PostgreSQL regular expression (an ARE, for the ~ operator on a UTF8 database) matching
 * names whose first nsegs segments match the first nsegs segments of the NUL-terminated
 * pattern: ^seg1\.seg2(\.|$). nsegs <= 0 gives "" (every name); nsegs beyond the pattern's
 * segments is the whole pattern. out is reset first.
 * The regex is a pre-filter, never the answer: it may match more names than the pattern (a
 * class with a punctuation range becomes [^.], and past GRAPHITE_REGEX_QUANTIFIERS '*' the
 * remaining segments are left out, leaving ^seg1\.seg2\. ), never fewer, so the caller
 * matches each name again with graphite_glob_match/graphite_path_match. It uses only
 * literals, bracket expressions, [^.]* and (?:a|b) alternation, with at most
 * GRAPHITE_REGEX_QUANTIFIERS quantifiers and none nested, so PostgreSQL runs it in linear
 * time, and it passes query_regex_check. An invalid pattern: false and a message. */
bool graphite_glob_regex(const char *pattern, int nsegs, Buf *out, char *err, size_t errlen) WARN_UNUSED;

/* ---------- time ---------- */

/* Graphite's from/until, UTC, in seconds: "now"; an offset from now "-30s", "-5min", "+1h",
 * "now-6h", compound "-1h30min" (units s sec secs second seconds, m min mins minute minutes,
 * h hour hours, d day days, w week weeks, mon month months (30 days), y year years (365 days),
 * case-insensitive); "HH:MM_YYYYMMDD" (or "HH:MMYYYYMMDD"); "YYYYMMDD" (midnight); Unix
 * seconds (digits). Eight digits that form a date in 1970..9999 are that date, other digit
 * strings are Unix seconds (Graphite's rule). A date may carry an offset ("20240101+1d").
 * '_', ',' and ' ' are ignored as Graphite does. The result must lie in 1970..9999. */
bool graphite_parse_time(const char *s, int64_t now_s, int64_t *out_s) WARN_UNUSED;
/* An interval for summarize and movingAverage: "1h", "5min", "1d", "1h30min" (the units
 * above, no sign), more than zero seconds. */
bool graphite_parse_interval(const char *s, int64_t *out_s) WARN_UNUSED;

/* ---------- series ---------- */

/* How points are merged (consolidation, summarize, combining series of different steps). */
typedef enum {
	GRAPHITE_AVERAGE, /* the default: zero-initialised series average */
	GRAPHITE_SUM,
	GRAPHITE_MIN,
	GRAPHITE_MAX,
	GRAPHITE_LAST,
	GRAPHITE_FIRST,
	GRAPHITE_COUNT, /* non-null points; summarize only */
} GraphiteAgg;

/* Point i is at start + i * step (seconds); v[i] is NAN for null. */
typedef struct GraphiteSeries {
	char *name; /* the "target" clients see */
	char *path; /* metric path: aliasByNode and aliasByMetric read it; kept through renames */
	char *expr; /* Graphite's pathExpression: the pattern a fetched series came from, or the
		     * name a function gave; sumSeries(a.*) is named from it. Set by graphite_eval. */
	int64_t start, step; /* step > 0 */
	size_t n;
	double *v;
	GraphiteAgg consolidate; /* set by consolidateBy; used by graphite_consolidate and when
				  * series of different steps are combined */
} GraphiteSeries;

typedef struct GraphiteList {
	GraphiteSeries *s;
	size_t n, cap;
} GraphiteList; /* zero-initialise; every series owns its strings and values */

/* Appends a series with copies of name and path (path NULL: the name), expr NULL, n points all
 * null (NAN) for the caller to fill, consolidate average. The pointer is valid until the next
 * append. */
GraphiteSeries *graphite_list_add(GraphiteList *l, const char *name, const char *path, int64_t start, int64_t step,
				  size_t n);
/* Frees every series and the array, and leaves l empty. */
void graphite_list_free(GraphiteList *l);

/* ---------- targets ---------- */

/* A parsed target: a path pattern or a function call whose arguments are targets, numbers
 * (integers or floats, negative), strings in '...' or "..." (a backslash keeps the next
 * character), True/False (any case) and None. Keyword arguments (func='max') name a
 * parameter, after the positional ones. Whitespace may surround arguments; commas inside
 * {...} belong to the path. */
typedef struct GraphiteExpr GraphiteExpr;

/* Parses and checks a target: GRAPHITE_TARGET_MAX bytes of UTF-8 without control characters
 * (tab, newline and carriage return are whitespace between tokens, never inside a string),
 * at most GRAPHITE_DEPTH_MAX nested calls, GRAPHITE_ARGS_MAX arguments per call and
 * GRAPHITE_NODES_MAX nodes; known functions ("unknown function foo; supported: alias, ...");
 * argument count and types ("scale: argument factor must be a number"); path patterns
 * (graphite_pattern_check); interval strings and function names given as strings. On success
 * *out is freed with graphite_expr_free; on failure *out is NULL and err holds why. */
bool graphite_parse(const char *target, GraphiteExpr **out, char *err, size_t errlen) WARN_UNUSED;
void graphite_expr_free(GraphiteExpr *e);
/* The distinct path patterns e reads, in the order evaluation asks for them: stores up to max
 * of them (pointers into e) and returns how many there are. */
size_t graphite_paths(const GraphiteExpr *e, const char **paths, size_t max);

/* Appends to into a copy of every series whose path matches pattern (one of graphite_paths),
 * in name order as Graphite fetches them (graphite_list_add). false and a message in err stop
 * the evaluation; so does a series without a name, with a step <= 0 or with more than
 * GRAPHITE_POINTS_MAX points. Called once per occurrence of a pattern in the target. */
typedef bool (*GraphiteFetch)(void *ctx, const char *pattern, GraphiteList *into, char *err, size_t errlen);

/* Evaluates e, appending its series to out (each named as Graphite names it). Functions, with
 * Graphite's semantics unless noted in graphite_functions_json's descriptions:
 *   alias aliasByNode aliasByMetric sumSeries (sum) averageSeries (avg) maxSeries minSeries
 *   scale offset summarize consolidateBy movingAverage derivative nonNegativeDerivative
 *   perSecond asPercent highestMax limit sortByMaxima
 * Series of different steps are combined on the least common multiple of their steps, each
 * merged by its own consolidate function. On failure (GRAPHITE_POINTS_MAX, GRAPHITE_STEP_MAX,
 * asPercent's pairing, or fetch) false, a message in err, and out as it was. */
bool graphite_eval(const GraphiteExpr *e, GraphiteFetch fetch, void *ctx, GraphiteList *out, char *err,
		   size_t errlen) WARN_UNUSED;

/* ---------- output ---------- */

/* maxDataPoints: when s has more than max_points points (max_points > 0), merges groups of
 * ceil(n / max_points) points with s->consolidate. Groups are aligned to multiples of their
 * width from the epoch, so that bands stay put as a dashboard refreshes, and each merged point
 * is stamped with its group's start; a partial first group is dropped only when keeping it
 * would exceed max_points. max_points 1 merges the whole series into one point at its start. */
void graphite_consolidate(GraphiteSeries *s, size_t max_points);
/* [{"target": "name", "datapoints": [[1.5, 1700000000], [null, 1700000060]]}, ...] */
void graphite_write_json(const GraphiteList *l, Buf *out);
/* What Graphite's GET /functions answers, for the functions above: an object keyed by name,
 * each with name, function (the signature), description, module, group and params (name, type,
 * required, and multiple, default, options, suggestions when they apply). */
void graphite_functions_json(Buf *out);

#endif
