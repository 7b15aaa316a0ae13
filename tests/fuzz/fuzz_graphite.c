/* libFuzzer target: what Grafana sends to the Graphite API. The whole input is tried as a target
 * (parsed, then evaluated over a small fake store and written as JSON), as a from/until time
 * and as a summarize interval; split at its first newline it is a glob and a name to match, and
 * the glob's PostgreSQL regex must pass the project's regex cost check. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <math.h>

#include "graphite.h"
#include "query.h"

#define NOW INT64_C(1700000000)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Three series for any pattern: different steps and starts, nulls, a counter reset. */
static bool fetch(void *ctx, const char *pattern, GraphiteList *into, char *err, size_t errlen)
{
	(void)ctx;
	(void)err;
	(void)errlen;
	char err2[200];
	if (!graphite_pattern_check(pattern, strlen(pattern), err2, sizeof(err2)))
		__builtin_trap(); /* the parser let an invalid pattern through */
	static const double a[] = {1, 2, NAN, 4, 3, 1e100, -5, NAN};
	GraphiteSeries *s = graphite_list_add(into, "app.web.requests.count", NULL, NOW - 480, 60, 8);
	memcpy(s->v, a, sizeof(a));
	s = graphite_list_add(into, "app.db.requests.count", NULL, NOW - 450, 30, 8);
	memcpy(s->v, a, sizeof(a));
	s->v[0] = NAN;
	graphite_list_add(into, "app.idle.x", NULL, NOW - 3600, 3600, 1);
	return true;
}

static void check_err(const char *err, size_t size)
{
	if (!memchr(err, '\0', size) || !err[0])
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';

	char err[512];
	GraphiteExpr *e = NULL;
	if (graphite_parse(s, &e, err, sizeof(err))) {
		const char *paths[8];
		size_t n = graphite_paths(e, paths, 8);
		if (n > GRAPHITE_NODES_MAX)
			__builtin_trap();
		GraphiteList l = {0};
		if (graphite_eval(e, fetch, NULL, &l, err, sizeof(err))) {
			Buf b = {0};
			for (size_t i = 0; i < l.n; i++) {
				if (l.s[i].step <= 0 || !l.s[i].name || !l.s[i].path || !l.s[i].expr)
					__builtin_trap();
				graphite_consolidate(&l.s[i], 3);
				if (l.s[i].n > 3)
					__builtin_trap();
			}
			graphite_write_json(&l, &b);
			json_t *j = json_loads(b.p, 0, NULL);
			if (!j || !json_is_array(j) || json_array_size(j) != l.n)
				__builtin_trap();
			json_decref(j);
			buf_free(&b);
		} else {
			check_err(err, sizeof(err));
			if (l.n)
				__builtin_trap(); /* a failed evaluation leaves the list as it was */
		}
		graphite_list_free(&l);
		graphite_expr_free(e);
	} else {
		check_err(err, sizeof(err));
		if (e)
			__builtin_trap();
	}

	int64_t t;
	if (graphite_parse_time(s, NOW, &t) && (t < 0 || t > GRAPHITE_TIME_MAX))
		__builtin_trap();
	if (graphite_parse_interval(s, &t) && t <= 0)
		__builtin_trap();

	char *nl = memchr(s, '\n', size);
	if (nl) {
		*nl = '\0';
		const char *glob = s, *name = nl + 1;
		size_t glen = strlen(glob), slen = strlen(name);
		bool seg = graphite_glob_match(glob, glen, name, slen);
		bool path = graphite_path_match(glob, glen, name, slen);
		if (!memchr(glob, '.', glen) && !memchr(name, '.', slen) && seg != path)
			__builtin_trap();
		Buf re = {0};
		for (int nsegs = 0; nsegs <= 3; nsegs++) {
			bool valid = graphite_pattern_check(glob, glen, err, sizeof(err));
			if (graphite_glob_regex(glob, nsegs, &re, err, sizeof(err)) != valid)
				__builtin_trap();
			if (valid && re.len && !query_regex_check(re.p, re.len, err, sizeof(err)))
				__builtin_trap();
		}
		buf_free(&re);
	}
	free(s);
	return 0;
}
