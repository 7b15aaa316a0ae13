/* Graphite's front-end. Paths are a metric's name and one of its statistics, so
 * `app.web.latency.perc95` is the perc95 of the name `app.web.latency`; a name is a branch
 * (of its statistics) and may be a leaf as well (web.latency.median is the median of
 * web.latency and the name l2met gives its own median).
 *
 * find asks the name catalogue (never the rows) with a regex made from the pattern's glob, and
 * matches each segment exactly here. render makes one read of every name its targets' paths
 * can match, at the finest resolution (a minute or coarser) that keeps each series within
 * maxDataPoints, so points are consolidated by m2pg's rollup rules (count sums, max is a
 * max, mean is count-weighted) rather than averaged; it keeps one array per (name, statistic)
 * a path asks for, then evaluates the targets' functions (graphite.c) over those arrays. */
#include "api_graphite.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graphite.h"
#include "jsonw.h"
#include "query.h"
#include "read.h"

#define FIND_NAMES_MAX 100000
#define MAX_SEGMENTS 64
/* A render holds at most this many points (8 bytes each) across its series before the
 * functions run, and answers at most as many (about 20 bytes each in JSON): 100 names x 8
 * statistics x 1,440 minutes is 1.2 million. */
#define RENDER_POINTS_MAX 2000000
#define DEFAULT_MAX_POINTS 10000

/* The segments of a name or a pattern, split at every dot: a valid pattern has none inside its
 * {...} or [...] (graphite_pattern_check). */
typedef struct Seg {
	const char *p;
	size_t len;
} Seg;

static size_t split_name(const char *s, size_t len, Seg *segs, size_t max)
{
	size_t n = 0, start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] != '.')
			continue;
		if (n == max)
			return max + 1;
		segs[n].p = s + start;
		segs[n].len = i - start;
		n++;
		start = i + 1;
	}
	return n;
}

/* The first k segments of a name match the first k of a pattern. */
static bool prefix_matches(const Seg *pat, const Seg *name, size_t k)
{
	for (size_t i = 0; i < k; i++)
		if (!graphite_glob_match(pat[i].p, pat[i].len, name[i].p, name[i].len))
			return false;
	return true;
}

/* The statistics (a bit each) a glob segment matches. */
static unsigned stats_matching(const Seg *glob)
{
	unsigned mask = 0;
	for (int i = 0; i < METRIC_NSTATS; i++)
		if (graphite_glob_match(glob->p, glob->len, metric_stat_names[i], strlen(metric_stat_names[i])))
			mask |= 1u << i;
	return mask;
}

/* Graphite's clients send forms: a GET's query string, a POST's body. false after answering 400. */
static bool read_params(struct evhttp_request *req, const char *const *keys, size_t nkeys, const char *multi,
			QueryParams *q, int64_t start_us)
{
	char err[200], field[64];
	bool ok;
	if (evhttp_request_get_command(req) == EVHTTP_REQ_POST) {
		struct evbuffer *in = evhttp_request_get_input_buffer(req);
		size_t len = evbuffer_get_length(in);
		const char *body = len ? (const char *)evbuffer_pullup(in, -1) : NULL;
		ok = query_parse_form(body, len, keys, nkeys, multi, q, err, sizeof(err), field, sizeof(field));
	} else {
		const char *qs = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
		ok = query_parse_form(qs, qs ? strlen(qs) : 0, keys, nkeys, multi, q, err, sizeof(err), field,
				      sizeof(field));
	}
	if (!ok)
		reply_error(req, 400, err, field[0] ? field : NULL, -1, start_us);
	return ok;
}

static const char *param(const QueryParams *q, int k)
{
	return q->val[k] && q->val[k][0] ? q->val[k] : NULL;
}

/* ---------- /metrics/find ---------- */

typedef struct FindCtx {
	char *pattern;
	size_t len;
} FindCtx;

typedef struct Node {
	size_t off, len; /* the path, in the arena */
	size_t text;     /* where its last segment starts, from off */
	bool leaf, branch;
} Node;

typedef struct NodeSet {
	Node *v;
	size_t n, cap;
	Buf arena;
} NodeSet;

static void node_add(NodeSet *ns, const char *a, size_t alen, const char *b, size_t blen, bool leaf)
{
	if (ns->n == ns->cap) {
		ns->cap = ns->cap ? ns->cap * 2 : 64;
		if (!(ns->v = realloc(ns->v, ns->cap * sizeof(Node))))
			fatal("at=oom");
	}
	Node *nd = &ns->v[ns->n++];
	nd->off = ns->arena.len;
	buf_add(&ns->arena, a, alen);
	if (b) {
		buf_addc(&ns->arena, '.');
		buf_add(&ns->arena, b, blen);
	}
	nd->len = ns->arena.len - nd->off;
	nd->text = b ? alen + 1 : 0;
	if (!b) {
		const char *dot = NULL;
		for (size_t i = 0; i < alen; i++)
			if (a[i] == '.')
				dot = a + i;
		nd->text = dot ? (size_t)(dot + 1 - a) : 0;
	}
	nd->leaf = leaf;
	nd->branch = !leaf;
}

/* ctx: the arena the paths are in (qsort_r: workers sort at once). */
static int node_cmp(const void *x, const void *y, void *ctx)
{
	const char *arena = ctx;
	const Node *a = x, *b = y;
	int c = memcmp(arena + a->off, arena + b->off, a->len < b->len ? a->len : b->len);
	return c ? c : (a->len > b->len) - (a->len < b->len);
}

static void find_done(void *arg, struct evhttp_request *req, int64_t start_us, const ReadNames *names)
{
	FindCtx *fc = arg;
	if (!req) {
		free(fc->pattern);
		free(fc);
		return;
	}
	Seg pat[MAX_SEGMENTS], seg[MAX_SEGMENTS];
	size_t k = split_name(fc->pattern, fc->len, pat, MAX_SEGMENTS);
	NodeSet ns = {0};
	unsigned leaf_stats = stats_matching(&pat[k - 1]);
	for (size_t i = 0; i < names->n; i++) {
		const char *name = names->names[i];
		size_t len = strlen(name);
		size_t m = split_name(name, len, seg, MAX_SEGMENTS);
		if (m > MAX_SEGMENTS || m < k - 1 || !prefix_matches(pat, seg, k - 1))
			continue;
		if (m == k - 1) /* the statistics of this name are the leaves at depth k */
			for (int s = 0; s < METRIC_NSTATS; s++)
				if (leaf_stats & (1u << s))
					node_add(&ns, name, len, metric_stat_names[s], strlen(metric_stat_names[s]), true);
		if (m >= k && graphite_glob_match(pat[k - 1].p, pat[k - 1].len, seg[k - 1].p, seg[k - 1].len))
			node_add(&ns, name, (size_t)(seg[k - 1].p + seg[k - 1].len - name), NULL, 0, false);
	}
	if (ns.n > 1)
		qsort_r(ns.v, ns.n, sizeof(Node), node_cmp, ns.arena.p);
	Buf b = {0};
	buf_addc(&b, '[');
	size_t out = 0;
	for (size_t i = 0; i < ns.n;) {
		Node nd = ns.v[i];
		size_t j = i + 1;
		for (; j < ns.n && node_cmp(&ns.v[j], &nd, ns.arena.p) == 0; j++) { /* a leaf and a branch at once */
			nd.leaf |= ns.v[j].leaf;
			nd.branch |= ns.v[j].branch;
		}
		const char *path = ns.arena.p + nd.off;
		buf_adds(&b, out++ ? ", {\"text\": " : "{\"text\": ");
		jsonw_string(&b, path + nd.text, nd.len - nd.text);
		buf_adds(&b, ", \"id\": ");
		jsonw_string(&b, path, nd.len);
		buf_addf(&b, ", \"leaf\": %d, \"expandable\": %d, \"allowChildren\": %d, \"context\": {}}", nd.leaf,
			 nd.branch, nd.branch);
		i = j;
	}
	buf_adds(&b, "]\n");
	char dbs[32];
	snprintf(dbs, sizeof(dbs), "%d/%d", names->answered, names->ndbs);
	evhttp_add_header(evhttp_request_get_output_headers(req), "M2pg-Databases", dbs);
	reply_json(req, 200, &b, start_us);
	free(ns.v);
	buf_free(&ns.arena);
	free(fc->pattern);
	free(fc);
}

static const char *const FIND_KEYS[] = {"query", "from", "until", "format", "wildcards", "jsonp"};
enum { FK_QUERY, FK_FROM, FK_UNTIL, FK_FORMAT, FK_COUNT = 6 };

void api_graphite_find(Web *w, struct evhttp_request *req, int64_t start_us)
{
	QueryParams q;
	if (!read_params(req, FIND_KEYS, FK_COUNT, NULL, &q, start_us))
		return;
	const char *query = param(&q, FK_QUERY), *format = param(&q, FK_FORMAT);
	char err[200] = "";
	Seg pat[MAX_SEGMENTS];
	size_t k = query ? split_name(query, q.len[FK_QUERY], pat, MAX_SEGMENTS) : 0;
	Buf re = {0};
	const char *bad = NULL, *field = "query";
	if (!query)
		bad = "query is required (a path with globs, like app.*.latency)";
	else if (k > MAX_SEGMENTS)
		bad = "query has more than 64 segments";
	else if (format && strcmp(format, "treejson") != 0 && strcmp(format, "json") != 0)
		bad = "format must be treejson", field = "format";
	else if (!graphite_glob_regex(query, (int)k - 1, &re, err, sizeof(err)))
		bad = err;
	if (bad) {
		reply_error(req, 400, bad, field, -1, start_us);
		buf_free(&re);
		query_free(&q);
		return;
	}
	FindCtx *fc = malloc(sizeof(*fc));
	if (!fc || !(fc->pattern = strndup(query, q.len[FK_QUERY])))
		fatal("at=oom");
	fc->len = q.len[FK_QUERY];
	query_free(&q);
	read_names(w, req, start_us, k > 1 ? re.p : NULL, FIND_NAMES_MAX, find_done, fc);
	buf_free(&re);
}

/* ---------- /render ---------- */

typedef struct Held {
	char *name;
	size_t len;
	double *v[METRIC_NSTATS]; /* per statistic a path asks for; NAN: no point */
} Held;

typedef struct RenderCtx {
	GraphiteExpr *exprs[QUERY_MAX_MULTI];
	size_t nexprs;
	char **patterns;
	size_t npatterns;
	int64_t start_s, step_s;
	size_t n, max_points;
	Held *held;
	size_t nheld, cap;
	size_t points;
	bool too_many;
	char err[600];
} RenderCtx;

static void render_free(void *arg)
{
	RenderCtx *rc = arg;
	for (size_t i = 0; i < rc->nexprs; i++)
		graphite_expr_free(rc->exprs[i]);
	for (size_t i = 0; i < rc->npatterns; i++)
		free(rc->patterns[i]);
	free(rc->patterns);
	for (size_t i = 0; i < rc->nheld; i++) {
		free(rc->held[i].name);
		for (int s = 0; s < METRIC_NSTATS; s++)
			free(rc->held[i].v[s]);
	}
	free(rc->held);
	free(rc);
}

static void render_open(void *arg, Buf *out)
{
	(void)arg;
	(void)out;
}

/* Keeps the statistics of this name that some path asks for, on the render's grid. */
static bool render_series(void *arg, RollSeries *s, size_t index, Buf *out, size_t want)
{
	RenderCtx *rc = arg;
	(void)index;
	(void)out;
	(void)want;
	size_t len = rollseries_name_len(s);
	Seg seg[MAX_SEGMENTS], pat[MAX_SEGMENTS];
	size_t m = split_name(s->name.p, len, seg, MAX_SEGMENTS);
	unsigned mask = 0;
	for (size_t i = 0; i < rc->npatterns && m <= MAX_SEGMENTS; i++) {
		size_t k = split_name(rc->patterns[i], strlen(rc->patterns[i]), pat, MAX_SEGMENTS);
		if (k == m + 1 && prefix_matches(pat, seg, m))
			mask |= stats_matching(&pat[m]);
	}
	if (!mask || rc->too_many)
		return true;
	for (int st = 0; st < METRIC_NSTATS; st++)
		rc->points += (mask >> st & 1) * rc->n;
	if (rc->points > RENDER_POINTS_MAX) {
		rc->too_many = true;
		return true;
	}
	if (rc->nheld == rc->cap) {
		rc->cap = rc->cap ? rc->cap * 2 : 16;
		if (!(rc->held = realloc(rc->held, rc->cap * sizeof(Held))))
			fatal("at=oom");
	}
	Held *h = &rc->held[rc->nheld++];
	memset(h, 0, sizeof(*h));
	if (!(h->name = strndup(s->name.p, len)))
		fatal("at=oom");
	h->len = len;
	for (int st = 0; st < METRIC_NSTATS; st++) {
		if (!(mask >> st & 1))
			continue;
		if (!(h->v[st] = malloc(rc->n * sizeof(double))))
			fatal("at=oom");
		for (size_t i = 0; i < rc->n; i++)
			h->v[st][i] = NAN;
	}
	RollPoint p;
	rollseries_rewind(s);
	while (rollseries_next(s, &p)) {
		int64_t t = p.group_us / 1000000;
		if (t < rc->start_s)
			continue;
		size_t i = (size_t)((t - rc->start_s) / rc->step_s);
		if (i >= rc->n)
			continue;
		for (int st = 0; st < METRIC_NSTATS; st++)
			if (h->v[st] && (p.present & (1u << st)))
				h->v[st][i] = p.v[st];
	}
	return true;
}

static int series_name_cmp(const void *x, const void *y)
{
	return strcmp(((const GraphiteSeries *)x)->name, ((const GraphiteSeries *)y)->name);
}

/* graphite.c asks for the series of a path pattern: every held (name, statistic) it matches,
 * sorted by path as Graphite fetches them. */
static bool render_fetch(void *arg, const char *pattern, GraphiteList *into, char *err, size_t errlen)
{
	RenderCtx *rc = arg;
	(void)err;
	(void)errlen;
	Seg pat[MAX_SEGMENTS], seg[MAX_SEGMENTS];
	size_t k = split_name(pattern, strlen(pattern), pat, MAX_SEGMENTS);
	if (k < 2 || k > MAX_SEGMENTS)
		return true;
	unsigned stats = stats_matching(&pat[k - 1]);
	size_t first = into->n;
	Buf path = {0};
	for (size_t i = 0; i < rc->nheld; i++) {
		Held *h = &rc->held[i];
		size_t m = split_name(h->name, h->len, seg, MAX_SEGMENTS);
		if (m != k - 1 || !prefix_matches(pat, seg, m))
			continue;
		for (int st = 0; st < METRIC_NSTATS; st++) {
			if (!(stats >> st & 1) || !h->v[st])
				continue;
			buf_reset(&path);
			buf_add(&path, h->name, h->len);
			buf_addc(&path, '.');
			buf_adds(&path, metric_stat_names[st]);
			GraphiteSeries *gs = graphite_list_add(into, path.p, NULL, rc->start_s, rc->step_s, rc->n);
			memcpy(gs->v, h->v[st], rc->n * sizeof(double));
		}
	}
	buf_free(&path);
	if (into->n - first > 1)
		qsort(into->s + first, into->n - first, sizeof(*into->s), series_name_cmp);
	return true;
}

static const char *render_close(void *arg, Buf *out, int answered, int ndbs)
{
	RenderCtx *rc = arg;
	(void)answered;
	(void)ndbs;
	if (rc->too_many) {
		snprintf(rc->err, sizeof(rc->err),
			 "the targets match more than %d points; narrow the paths or raise the step (maxDataPoints)",
			 RENDER_POINTS_MAX);
		return rc->err;
	}
	GraphiteList all = {0};
	for (size_t i = 0; i < rc->nexprs; i++) {
		GraphiteRange range = {rc->start_s, rc->step_s, rc->n};
		if (!graphite_eval_range(rc->exprs[i], &range, render_fetch, rc, &all, rc->err, sizeof(rc->err))) {
			graphite_list_free(&all);
			return rc->err;
		}
	}
	size_t points = 0;
	for (size_t i = 0; i < all.n; i++) {
		graphite_consolidate(&all.s[i], rc->max_points);
		points += all.s[i].n;
	}
	if (points > RENDER_POINTS_MAX) { /* functions can make more series than they read */
		graphite_list_free(&all);
		snprintf(rc->err, sizeof(rc->err),
			 "the answer would hold more than %d points; use fewer targets or a lower maxDataPoints",
			 RENDER_POINTS_MAX);
		return rc->err;
	}
	graphite_write_json(&all, out);
	graphite_list_free(&all);
	return NULL;
}

static const ReadFormat render_format = {render_open, render_series, render_close, render_free};

static const char *const RENDER_KEYS[] = {"from", "until", "format", "maxDataPoints", "noNullPoints", "tz",
					  "cacheTimeout", "noCache"};
enum { RK_FROM, RK_UNTIL, RK_FORMAT, RK_MAXPOINTS, RK_COUNT = 8 };

/* The steps a render may have: m2pg's fixed resolutions from a minute up (l2met sends a
 * summary a minute, so a finer step would be mostly nulls). */
static const struct {
	int64_t s;
	TmRes res;
} STEPS[] = {{60, TM_MINUTE}, {3600, TM_HOUR}, {86400, TM_DAY}, {604800, TM_WEEK}};

void api_graphite_render(Web *w, struct evhttp_request *req, int64_t start_us)
{
	QueryParams q;
	if (!read_params(req, RENDER_KEYS, RK_COUNT, "target", &q, start_us))
		return;
	RenderCtx *rc = calloc(1, sizeof(*rc));
	if (!rc)
		fatal("at=oom");
	const char *from = param(&q, RK_FROM), *until = param(&q, RK_UNTIL), *format = param(&q, RK_FORMAT);
	const char *maxp = param(&q, RK_MAXPOINTS);
	int64_t now_s = now_wall_us() / 1000000, from_s = now_s - 86400, until_s = now_s;
	char err[600] = "";
	const char *bad = NULL, *field = NULL;
	long long mp = DEFAULT_MAX_POINTS;
	char *end = NULL;
	if (format && strcmp(format, "json") != 0)
		bad = "format must be json", field = "format";
	else if (from && !graphite_parse_time(from, now_s, &from_s))
		bad = "from must be now, -6h (s, min, h, d, w, mon, y), HH:MM_YYYYMMDD, YYYYMMDD or Unix seconds",
		field = "from";
	else if (until && !graphite_parse_time(until, now_s, &until_s))
		bad = "until must be now, -6h (s, min, h, d, w, mon, y), HH:MM_YYYYMMDD, YYYYMMDD or Unix seconds",
		field = "until";
	else if (from_s > until_s)
		bad = "from is after until", field = "from";
	else if (maxp && ((mp = strtoll(maxp, &end, 10)) < 1 || mp > 1000000 || *end))
		bad = "maxDataPoints must be a whole number from 1 to 1000000", field = "maxDataPoints";
	for (size_t i = 0; !bad && i < q.nmulti; i++) {
		if (q.multi_len[i] == 0)
			continue; /* Grafana sends an empty target for a hidden query */
		if (!graphite_parse(q.multi[i], &rc->exprs[rc->nexprs], err, sizeof(err)))
			bad = err, field = "target";
		else
			rc->nexprs++;
	}
	/* The paths to read, each once, and one regex over names for all of them. */
	Buf re = {0};
	for (size_t i = 0; !bad && i < rc->nexprs; i++) {
		const char *paths[64];
		size_t np = graphite_paths(rc->exprs[i], paths, ARRAY_LEN(paths));
		for (size_t j = 0; !bad && j < np && j < ARRAY_LEN(paths); j++) {
			bool seen = false;
			for (size_t k = 0; k < rc->npatterns && !seen; k++)
				seen = strcmp(rc->patterns[k], paths[j]) == 0;
			Seg pat[MAX_SEGMENTS];
			size_t k = split_name(paths[j], strlen(paths[j]), pat, MAX_SEGMENTS);
			if (seen || k < 2 || k > MAX_SEGMENTS)
				continue; /* a path of one segment names no statistic: no series */
			Buf one = {0};
			if (!graphite_glob_regex(paths[j], (int)k - 1, &one, err, sizeof(err))) {
				bad = err, field = "target";
			} else {
				buf_adds(&re, re.len ? "|(" : "(");
				buf_add(&re, one.p, one.len);
				buf_addc(&re, ')');
				if (!(rc->patterns = realloc(rc->patterns, (rc->npatterns + 1) * sizeof(char *))) ||
				    !(rc->patterns[rc->npatterns++] = strdup(paths[j])))
					fatal("at=oom");
			}
			buf_free(&one);
		}
	}
	if (!bad && re.len > 64 * 1024)
		bad = "the targets' paths are too many or too long", field = "target";
	if (bad) {
		reply_error(req, 400, bad, field, -1, start_us);
		buf_free(&re);
		query_free(&q);
		render_free(rc);
		return;
	}
	query_free(&q);
	/* Points as Graphite lays them out: from the first bucket that starts after from to the
	 * bucket holding until (so -24h to now is 1,440 minutes), at the finest step that keeps
	 * them within maxDataPoints. */
	size_t si = 0;
	int64_t first_s = 0, last_s = 0;
	for (;; si++) {
		first_s = tm_truncate(from_s * 1000000, STEPS[si].res) / 1000000 + STEPS[si].s;
		last_s = tm_truncate(until_s * 1000000, STEPS[si].res) / 1000000;
		if (last_s < first_s) /* a range within one bucket: that bucket */
			first_s = last_s;
		if (si + 1 == ARRAY_LEN(STEPS) || (last_s - first_s) / STEPS[si].s + 1 <= mp)
			break;
	}
	rc->step_s = STEPS[si].s;
	rc->max_points = (size_t)mp;
	rc->start_s = first_s;
	rc->n = (size_t)((last_s - first_s) / rc->step_s + 1);
	if (rc->npatterns == 0) { /* nothing to read: the functions run over no series */
		Buf b = {0};
		const char *e = render_close(rc, &b, w->ndbs, w->ndbs);
		if (e)
			reply_error(req, 400, e, "target", -1, start_us);
		else
			reply_json(req, 200, &b, start_us);
		render_free(rc);
		buf_free(&re);
		return;
	}
	/* Whole buckets: the last point is the rollup of all of its bucket, as GET /metrics gives it. */
	ReadSpec spec = {.name_regex = re.p, .from_us = rc->start_s * 1000000,
			 .to_us = (last_s + rc->step_s) * 1000000 - 1, .res = STEPS[si].res};
	read_series(w, req, start_us, &spec, &render_format, rc);
	buf_free(&re);
}

/* ---------- what Grafana asks besides ---------- */

void api_graphite_functions(Web *w, struct evhttp_request *req, int64_t start_us)
{
	(void)w;
	Buf b = {0};
	graphite_functions_json(&b);
	reply_json(req, 200, &b, start_us);
}

/* m2pg keeps no tags: every tag query has no answer. */
void api_graphite_tags(Web *w, struct evhttp_request *req, int64_t start_us)
{
	(void)w;
	Buf b = {0};
	buf_adds(&b, "[]\n");
	reply_json(req, 200, &b, start_us);
}

void api_graphite_version(Web *w, struct evhttp_request *req, int64_t start_us)
{
	(void)w;
	Buf b = {0};
	buf_adds(&b, "1.1.10"); /* the Graphite version whose render API m2pg answers */
	reply_send(req, 200, "text/plain; charset=utf-8", &b, start_us);
}
