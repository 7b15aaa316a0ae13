/* Librato's front-end. Writes go through librato.c's parser into the write path; each
 * measurement's id is derived from (name, source, measure_time), so l2met's retries are
 * stored once. Reads go through the read path, a series per source, and come back in
 * Librato's shape: {"name", "type", "resolution", "measurements": {"SOURCE": [{"measure_time",
 * "value", "count", "sum", "min", "max"}]}, "query": {...}}. m2pg keeps no metric types: every
 * name is reported as a gauge. */
#include "api_librato.h"

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jsonw.h"
#include "librato.h"
#include "query.h"
#include "read.h"
#include "write.h"

#define LIST_LENGTH_MAX 100 /* Librato's own page size limit */

/* ---------- POST /v1/metrics ---------- */

static void librato_stored(struct evhttp_request *req, const MetricBatch *batch, int64_t start_us)
{
	Buf b = {0};
	buf_addf(&b, "{\"measurements\": %zu}\n", batch->n);
	reply_json(req, 200, &b, start_us);
}

void api_librato_write(Web *w, struct evhttp_request *req, int64_t start_us)
{
	size_t len;
	const char *body = write_body(w, req, start_us, &len);
	if (!body)
		return;
	/* Librato's clients send JSON; older ones the form-encoded body. Without a Content-Type,
	 * a body that does not open with a brace is taken as a form. */
	const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
	bool form;
	if (ct) {
		form = strncasecmp(ct, "application/x-www-form-urlencoded", 33) == 0;
	} else {
		size_t i = 0;
		while (i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n'))
			i++;
		form = i < len && body[i] != '{';
	}
	MetricBatch batch;
	MetricError err;
	if (!librato_parse(body, len, form, now_wall_us(), &batch, &err)) {
		reply_error(req, 400, err.msg, err.field[0] ? err.field : NULL, err.index, start_us);
		return;
	}
	write_submit(w, req, start_us, &batch, librato_stored);
}

/* ---------- shared by the reads ---------- */

/* A regex matching exactly the bytes of s (anchored: whole), or containing them. */
static char *literal_regex(const char *s, size_t len, bool whole)
{
	char *re = malloc(2 * len + 3), *p = re;
	if (!re)
		fatal("at=oom");
	if (whole)
		*p++ = '^';
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		/* A backslash before an ASCII punctuation character is that character; before a letter
		 * or digit it would be an escape (\d), so those stay bare. */
		if (c < 0x80 && !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) && c != ' ')
			*p++ = '\\';
		*p++ = (char)c;
	}
	if (whole)
		*p++ = '$';
	*p = '\0';
	return re;
}

/* Librato's source patterns: a source name, where * matches any characters. */
static char *source_regex(const char *glob)
{
	size_t len = strlen(glob);
	char *re = malloc(3 * len + 3), *p = re;
	if (!re)
		fatal("at=oom");
	*p++ = '^';
	for (size_t i = 0; i < len; i++) {
		if (glob[i] == '*') {
			*p++ = '.';
			*p++ = '*';
		} else {
			if (glob[i] == '.' || glob[i] == '-' || glob[i] == ':')
				*p++ = '\\';
			*p++ = glob[i];
		}
	}
	*p++ = '$';
	*p = '\0';
	return re;
}

static const char *param(const QueryParams *q, int k)
{
	return q->val[k] && q->val[k][0] ? q->val[k] : NULL;
}

/* A non-negative integer of at most 18 digits. */
static bool parse_count(const char *s, int64_t *out)
{
	size_t n = strlen(s);
	if (n == 0 || n > 18 || strspn(s, "0123456789") != n)
		return false;
	*out = strtoll(s, NULL, 10);
	return true;
}

/* ---------- GET /v1/metrics ---------- */

typedef struct ListCtx {
	int64_t offset, length;
} ListCtx;

static void list_done(void *arg, struct evhttp_request *req, int64_t start_us, const ReadNames *names)
{
	ListCtx *lc = arg;
	if (req && names) {
		size_t from = (size_t)lc->offset < names->n ? (size_t)lc->offset : names->n;
		Buf b = {0};
		buf_addf(&b, "{\"query\": {\"offset\": %lld, \"length\": %zu, \"found\": %llu, \"total\": %llu}, \"metrics\": [",
			 (long long)lc->offset, names->n - from, (unsigned long long)names->matched,
			 (unsigned long long)names->total);
		for (size_t i = from; i < names->n; i++) {
			size_t len = strlen(names->names[i]);
			buf_adds(&b, i > from ? ", {\"name\": " : "{\"name\": ");
			jsonw_string(&b, names->names[i], len);
			buf_adds(&b, ", \"display_name\": ");
			jsonw_string(&b, names->names[i], len);
			buf_adds(&b, ", \"type\": \"gauge\", \"description\": null, \"period\": null, \"attributes\": {}}");
		}
		buf_adds(&b, "]}\n");
		char dbs[32];
		snprintf(dbs, sizeof(dbs), "%d/%d", names->answered, names->ndbs);
		evhttp_add_header(evhttp_request_get_output_headers(req), "M2pg-Databases", dbs);
		reply_json(req, 200, &b, start_us);
	}
	free(lc);
}

static const char *const LIST_KEYS[] = {"name", "offset", "length"};
enum { LK_NAME, LK_OFFSET, LK_LENGTH, LK_COUNT };

void api_librato_list(Web *w, struct evhttp_request *req, int64_t start_us)
{
	QueryParams q;
	char qerr[200], qfield[64];
	const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	if (!query_parse(query, LIST_KEYS, LK_COUNT, &q, qerr, sizeof(qerr), qfield, sizeof(qfield))) {
		reply_error(req, 400, qerr, qfield[0] ? qfield : NULL, -1, start_us);
		return;
	}
	const char *name = param(&q, LK_NAME), *offset = param(&q, LK_OFFSET), *length = param(&q, LK_LENGTH);
	int64_t off = 0, lim = LIST_LENGTH_MAX;
	const char *bad = NULL, *field = NULL;
	if (name && q.len[LK_NAME] > METRIC_NAME_MAX)
		bad = "name is longer than 255 bytes", field = "name";
	else if (offset && (!parse_count(offset, &off) || off > 1000000))
		bad = "offset must be an integer from 0 to 1000000", field = "offset";
	else if (length && (!parse_count(length, &lim) || lim < 1 || lim > LIST_LENGTH_MAX))
		bad = "length must be an integer from 1 to 100", field = "length";
	if (bad) {
		reply_error(req, 400, bad, field, -1, start_us);
		query_free(&q);
		return;
	}
	char *re = name ? literal_regex(name, q.len[LK_NAME], false) : NULL;
	query_free(&q);
	ListCtx *lc = malloc(sizeof(*lc));
	if (!lc)
		fatal("at=oom");
	lc->offset = off;
	lc->length = lim;
	read_names(w, req, start_us, re, (size_t)(off + lim), list_done, lc);
	free(re);
}

/* ---------- GET /v1/metrics/NAME ---------- */

typedef struct SeriesCtx {
	Web *web;
	char *name;
	ReadSpec spec;
	int resolution_s;
	bool summarize;
	bool in_series; /* the series' array is open */
	bool wrote;     /* a point of it is written */
} SeriesCtx;

static void series_ctx_free(void *arg)
{
	SeriesCtx *sc = arg;
	free(sc->name);
	free((char *)sc->spec.name_regex);
	free((char *)sc->spec.source_regex);
	free(sc);
}

static void lib_open(void *arg, Buf *out)
{
	SeriesCtx *sc = arg;
	size_t len = strlen(sc->name);
	buf_adds(out, "{\"name\": ");
	jsonw_string(out, sc->name, len);
	buf_adds(out, ", \"display_name\": ");
	jsonw_string(out, sc->name, len);
	buf_addf(out, ", \"type\": \"gauge\", \"attributes\": {}, \"resolution\": %d, \"measurements\": {",
		 sc->resolution_s);
}

static void put_num(Buf *out, const char *key, double v)
{
	buf_adds(out, key);
	jsonw_double(out, v);
}

static bool lib_series(void *arg, RollSeries *s, size_t index, Buf *out, size_t want)
{
	SeriesCtx *sc = arg;
	if (!sc->in_series) {
		const char *src;
		size_t slen;
		if (index > 0)
			buf_adds(out, ", ");
		if (sc->summarize || !rollseries_source(s, &src, &slen))
			buf_adds(out, "\"all\"");
		else if (slen == 0)
			buf_adds(out, "\"unassigned\"");
		else
			jsonw_string(out, src, slen);
		buf_adds(out, ": [");
		rollseries_rewind(s);
		sc->in_series = true;
		sc->wrote = false;
	}
	RollPoint p;
	while (out->len < want && rollseries_next(s, &p)) {
		buf_adds(out, sc->wrote ? ", {\"measure_time\": " : "{\"measure_time\": ");
		sc->wrote = true;
		buf_addf(out, "%lld", (long long)(p.group_us / 1000000));
		/* value: the mean, as Librato gives sum/count; a row without one offers its last. */
		static const int value_from[] = {METRIC_MEAN, METRIC_LAST, METRIC_MEDIAN};
		for (size_t k = 0; k < ARRAY_LEN(value_from); k++) {
			if (p.present & (1u << value_from[k])) {
				put_num(out, ", \"value\": ", p.v[value_from[k]]);
				break;
			}
		}
		if (p.present & (1u << METRIC_COUNT)) {
			put_num(out, ", \"count\": ", p.v[METRIC_COUNT]);
			if (p.present & (1u << METRIC_MEAN))
				put_num(out, ", \"sum\": ", p.v[METRIC_MEAN] * p.v[METRIC_COUNT]);
		}
		if (p.present & (1u << METRIC_MIN))
			put_num(out, ", \"min\": ", p.v[METRIC_MIN]);
		if (p.present & (1u << METRIC_MAX))
			put_num(out, ", \"max\": ", p.v[METRIC_MAX]);
		buf_addc(out, '}');
	}
	if (out->len >= want)
		return false;
	buf_addc(out, ']');
	sc->in_series = false;
	return true;
}

static const char *lib_close(void *arg, Buf *out, int answered, int ndbs)
{
	SeriesCtx *sc = arg;
	buf_addf(out, "}, \"query\": {\"start_time\": %lld, \"end_time\": %lld, \"resolution\": %d, "
		      "\"databases\": \"%d/%d\"}}\n",
		 (long long)(sc->spec.from_us / 1000000), (long long)(sc->spec.to_us / 1000000), sc->resolution_s,
		 answered, ndbs);
	return NULL;
}

static const ReadFormat librato_format = {lib_open, lib_series, lib_close, series_ctx_free};

/* The name is known to some database: read it. Otherwise 404. */
static void read_known(void *arg, struct evhttp_request *req, int64_t start_us, const ReadNames *names)
{
	SeriesCtx *sc = arg;
	if (!req) {
		series_ctx_free(sc);
		return;
	}
	if (names->n == 0) {
		char msg[320];
		snprintf(msg, sizeof(msg), "no metric named %s", sc->name);
		reply_error(req, 404, msg, "name", -1, start_us);
		series_ctx_free(sc);
		return;
	}
	read_series(sc->web, req, start_us, &sc->spec, &librato_format, sc);
}

static const char *const SERIES_KEYS[] = {"start_time", "end_time", "duration", "resolution", "source",
					  "summarize_sources"};
enum { SK_START, SK_END, SK_DURATION, SK_RES, SK_SOURCE, SK_SUMMARIZE, SK_COUNT };

void api_librato_read(Web *w, struct evhttp_request *req, int64_t start_us)
{
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	const char *raw = path + strlen("/v1/metrics/");
	size_t name_len = 0;
	char *name = evhttp_uridecode(raw, 0, &name_len);
	if (!name || strlen(name) != name_len || !metric_name_valid(name, name_len) ||
	    !query_utf8_valid(name, name_len)) {
		free(name);
		reply_error(req, 400, "the metric name in the path must be 1 to 255 bytes of UTF-8", "name", -1,
			    start_us);
		return;
	}
	QueryParams q;
	char qerr[200], qfield[64];
	const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	if (!query_parse(query, SERIES_KEYS, SK_COUNT, &q, qerr, sizeof(qerr), qfield, sizeof(qfield))) {
		free(name);
		reply_error(req, 400, qerr, qfield[0] ? qfield : NULL, -1, start_us);
		return;
	}
	const char *start = param(&q, SK_START), *end = param(&q, SK_END), *duration = param(&q, SK_DURATION);
	const char *res = param(&q, SK_RES), *source = param(&q, SK_SOURCE), *summarize = param(&q, SK_SUMMARIZE);
	int64_t from_us = 0, to_us = 0, dur_s = 0, res_s = 60;
	TmRes tres = TM_MINUTE;
	const char *bad = NULL, *field = NULL;
	if (start && !tm_parse(start, strlen(start), &from_us))
		bad = "start_time must be Unix seconds between 1970 and 9999", field = "start_time";
	else if (end && !tm_parse(end, strlen(end), &to_us))
		bad = "end_time must be Unix seconds between 1970 and 9999", field = "end_time";
	else if (duration && (!parse_count(duration, &dur_s) || dur_s < 1 || dur_s > 400LL * 366 * 86400))
		bad = "duration must be a number of seconds from 1 to 400 years", field = "duration";
	else if (!start && !duration)
		bad = "start_time or duration is required", field = "start_time";
	else if (start && end && duration)
		bad = "give two of start_time, end_time and duration, not all three", field = "duration";
	else if (res && (!parse_count(res, &res_s) ||
			 !(res_s == 1 || res_s == 60 || res_s == 3600 || res_s == 86400 || res_s == 604800)))
		bad = "resolution must be one of 1, 60, 3600, 86400, 604800 (seconds)", field = "resolution";
	else if (source && (q.len[SK_SOURCE] > METRIC_SOURCE_MAX ||
			    strspn(source, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.:-_*") !=
				    q.len[SK_SOURCE]))
		bad = "source must be a source name of A-Z a-z 0-9 . : - _, where * matches any characters",
		field = "source";
	else if (summarize && strcmp(summarize, "true") != 0 && strcmp(summarize, "false") != 0)
		bad = "summarize_sources must be true or false", field = "summarize_sources";
	if (!bad) {
		tres = res_s == 1 ? TM_SECOND : res_s == 60 ? TM_MINUTE : res_s == 3600 ? TM_HOUR : res_s == 86400 ? TM_DAY : TM_WEEK;
		if (!start) { /* the last duration before end_time, or before now */
			if (!end)
				to_us = now_wall_us();
			from_us = to_us - dur_s * 1000000 > 0 ? to_us - dur_s * 1000000 : 0;
		} else if (!end) {
			to_us = duration ? from_us + dur_s * 1000000 : now_wall_us();
		}
		if (from_us > to_us)
			bad = "start_time is after end_time", field = "start_time";
	}
	if (bad) {
		free(name);
		reply_error(req, 400, bad, field, -1, start_us);
		query_free(&q);
		return;
	}
	SeriesCtx *sc = calloc(1, sizeof(*sc));
	if (!sc)
		fatal("at=oom");
	sc->web = w;
	sc->name = name;
	sc->resolution_s = (int)res_s;
	sc->summarize = summarize && strcmp(summarize, "true") == 0;
	sc->spec.name_regex = literal_regex(name, name_len, true);
	sc->spec.source_regex = source ? source_regex(source) : NULL;
	sc->spec.from_us = from_us;
	sc->spec.to_us = to_us;
	sc->spec.res = tres;
	sc->spec.by_source = !sc->summarize;
	query_free(&q);
	read_names(w, req, start_us, sc->spec.name_regex, 1, read_known, sc);
}
