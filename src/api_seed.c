/* The seed's front-end: translates its bodies and queries into the write and read paths, and
 * writes its answers: ids for a write, and for a read an array of
 * {"name", "count": [{"bucket", "value"}...], "mean": [...], ...} in name order. */
#include "api_seed.h"

#include <event2/http.h>
#include <stdlib.h>
#include <string.h>

#include "query.h"
#include "read.h"
#include "write.h"

#define MAX_REGEX_BYTES 4096

static void seed_stored(struct evhttp_request *req, const MetricBatch *batch, int64_t start_us)
{
	Buf b = {0};
	buf_reserve(&b, batch->n * (UUID_STR_LEN + 4) + 4);
	if (batch->is_array)
		buf_addc(&b, '[');
	for (size_t i = 0; i < batch->n; i++) {
		char id[UUID_STR_LEN + 1];
		uuid_format(&batch->m[i].id, id);
		buf_adds(&b, i ? ", \"" : "\"");
		buf_add(&b, id, UUID_STR_LEN);
		buf_addc(&b, '"');
	}
	buf_adds(&b, batch->is_array ? "]\n" : "\n");
	reply_json(req, 201, &b, start_us);
}

void api_seed_write(Web *w, struct evhttp_request *req, int64_t start_us)
{
	size_t len;
	const char *body = write_body(w, req, start_us, &len);
	if (!body)
		return;
	MetricBatch batch;
	MetricError err;
	if (!metric_parse_body(body, len, &batch, &err)) {
		reply_error(req, err.status, err.msg, err.field[0] ? err.field : NULL, err.index, start_us);
		return;
	}
	write_submit(w, req, start_us, &batch, seed_stored);
}

/* ---------- GET /metrics ---------- */

static void seed_open(void *ctx, Buf *out)
{
	(void)ctx;
	buf_addc(out, '[');
}

/* ctx: the statistics asked for (stats=), as a bit set in the pointer's value; 0 is all. */
static bool seed_series(void *ctx, RollSeries *s, size_t index, Buf *out, size_t want)
{
	if (index > 0 && s->stat < 0)
		buf_adds(out, ",\n");
	s->stats_out = (uint8_t)(uintptr_t)ctx;
	return rollseries_write(s, out, want);
}

static const char *seed_close(void *ctx, Buf *out, int answered, int ndbs)
{
	(void)ctx;
	(void)answered;
	(void)ndbs;
	buf_adds(out, "]\n");
	return NULL;
}

static const ReadFormat seed_format = {seed_open, seed_series, seed_close, NULL};

/* The parameters a read takes; an empty value counts as absent. */
static const char *const READ_KEYS[] = {"name", "from", "to", "resolution", "source", "stats"};
enum { RK_NAME, RK_FROM, RK_TO, RK_RES, RK_SOURCE, RK_STATS, RK_COUNT };

/* stats=mean,perc95: the statistics to answer with, as bits; false if one is unknown. */
static bool parse_stats(const char *list, unsigned *mask)
{
	*mask = 0;
	for (const char *p = list; *p;) {
		size_t n = strcspn(p, ",");
		int found = -1;
		for (int i = 0; i < METRIC_NSTATS && found < 0; i++)
			if (strlen(metric_stat_names[i]) == n && memcmp(metric_stat_names[i], p, n) == 0)
				found = i;
		if (found < 0)
			return false;
		*mask |= 1u << found;
		p += n + (p[n] == ',');
	}
	return *mask != 0;
}

static const char *param(const QueryParams *q, int k)
{
	return q->val[k] && q->val[k][0] ? q->val[k] : NULL;
}

void api_seed_read(Web *w, struct evhttp_request *req, int64_t start_us)
{
	QueryParams q;
	char qerr[200], qfield[64];
	const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	if (!query_parse(query, READ_KEYS, RK_COUNT, &q, qerr, sizeof(qerr), qfield, sizeof(qfield))) {
		reply_error(req, 400, qerr, qfield[0] ? qfield : NULL, -1, start_us);
		return;
	}
	const char *name = param(&q, RK_NAME), *from = param(&q, RK_FROM);
	const char *to = param(&q, RK_TO), *res = param(&q, RK_RES), *source = param(&q, RK_SOURCE);
	const char *stats = param(&q, RK_STATS);
	unsigned mask = 0;
	ReadSpec spec = {.name_regex = name, .source_regex = source, .res = TM_MINUTE};
	const char *bad = NULL, *field = NULL;
	if (!name)
		bad = "name is required (a regular expression)", field = "name";
	else if (q.len[RK_NAME] > MAX_REGEX_BYTES)
		bad = "name is longer than 4096 bytes", field = "name";
	else if (!query_regex_check(name, q.len[RK_NAME], qerr, sizeof(qerr)))
		bad = qerr, field = "name";
	else if (source && q.len[RK_SOURCE] > MAX_REGEX_BYTES)
		bad = "source is longer than 4096 bytes", field = "source";
	else if (source && !query_regex_check(source, q.len[RK_SOURCE], qerr, sizeof(qerr)))
		bad = qerr, field = "source";
	else if (to && !tm_parse(to, strlen(to), &spec.to_us))
		bad = "to must be Unix seconds or an RFC 3339 time between 1970 and 9999", field = "to";
	else if (from && !tm_parse(from, strlen(from), &spec.from_us))
		bad = "from must be Unix seconds or an RFC 3339 time between 1970 and 9999", field = "from";
	else if (res && !tm_parse_resolution(res, &spec.res))
		bad = "resolution must be one of second, minute, hour, day, week, month, year", field = "resolution";
	else if (stats && !parse_stats(stats, &mask))
		bad = "stats must list some of count, mean, median, min, max, perc95, perc99, last, separated by commas",
		field = "stats";
	if (!bad) {
		if (!to)
			spec.to_us = now_wall_us();
		if (!from)
			spec.from_us = spec.to_us > 3600000000 ? spec.to_us - 3600000000 : 0;
		if (spec.from_us > spec.to_us)
			bad = "from is after to", field = "from";
	}
	if (bad)
		reply_error(req, 400, bad, field, -1, start_us);
	else
		read_series(w, req, start_us, &spec, &seed_format, (void *)(uintptr_t)mask);
	query_free(&q);
}
