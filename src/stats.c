/* Counters behind GET /stats. Latencies go into fixed histogram buckets (seconds, as
 * Prometheus expects); statuses into a small table of the codes m2pg answers with. */
#include "stats.h"

#include <stdatomic.h>

static const int statuses[] = {200, 201, 400, 401, 403, 404, 405, 408, 413, 422, 429, 503};
#define NSTATUS ((int)ARRAY_LEN(statuses) + 1) /* the last slot: any other code */

static const double bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define NBOUNDS ((int)ARRAY_LEN(bounds))

static const char *const route_names[STATS_NROUTES] = {"read", "write", "health", "stats",
								  "librato_read", "librato_write",
								  "graphite_render", "graphite_find", "other"};
static const char *const counter_names[STATS_NCOUNTERS][2] = {
	{"m2pg_metrics_accepted_total", "Metrics in writes answered 201 (200 for Librato's)."},
	{"m2pg_writes_refused_total", "Metrics refused before anything was stored (503, stored: false)."},
	{"m2pg_writes_unknown_total", "Metrics answered 503 that may still be stored (stored: unknown)."},
	{"m2pg_reads_refused_total", "Reads refused past READ_CONCURRENCY (503)."},
	{"m2pg_reads_aborted_total", "Streamed read answers cut off before their end."},
	{"m2pg_auth_denied_total", "Requests answered 401: no API token, or one not in API_TOKENS."},
	{"m2pg_auth_forbidden_total", "Requests answered 403: an API token without the scope the route needs."},
};

static atomic_uint_fast64_t requests[STATS_NROUTES][NSTATUS];
static atomic_uint_fast64_t latency[STATS_NROUTES][NBOUNDS + 1]; /* per bucket, not cumulative */
static atomic_uint_fast64_t latency_us_sum[STATS_NROUTES];
static atomic_uint_fast64_t counters[STATS_NCOUNTERS];
static atomic_uint_fast64_t rows_inserted[STATS_MAX_DATABASES];
static atomic_int_fast64_t store[STATS_MAX_DATABASES][STATS_NSTORE];
static atomic_bool store_known[STATS_MAX_DATABASES];
static const char *const store_names[STATS_NSTORE][2] = {
	{"m2pg_partitions", "Partitions of metrics in each database, the default one aside."},
	{"m2pg_default_partition_rows", "Rows in each database's default partition (estimated): "
					"metrics outside the partitions made."},
	{"m2pg_rollup_lag_seconds", "Seconds since the end of the last hour rolled up in each database "
				    "(-1: gc has not rolled any up)."},
	{"m2pg_rollup_dirty_hours", "Hours each database's gc will roll up again (late writes)."},
};

static void inc(atomic_uint_fast64_t *a, uint64_t n)
{
	atomic_fetch_add_explicit(a, n, memory_order_relaxed);
}

static uint64_t get(atomic_uint_fast64_t *a)
{
	return atomic_load_explicit(a, memory_order_relaxed);
}

void stats_request(StatsRoute route, int status, int64_t us)
{
	int s = 0;
	while (s < NSTATUS - 1 && statuses[s] != status)
		s++;
	inc(&requests[route][s], 1);
	double secs = (double)us / 1e6;
	int b = 0;
	while (b < NBOUNDS && secs > bounds[b])
		b++;
	inc(&latency[route][b], 1);
	inc(&latency_us_sum[route], us > 0 ? (uint64_t)us : 0);
}

void stats_add(StatsCounter c, uint64_t n)
{
	inc(&counters[c], n);
}

void stats_rows_inserted(int db_index, uint64_t n)
{
	if (db_index >= 1 && db_index <= STATS_MAX_DATABASES)
		inc(&rows_inserted[db_index - 1], n);
}

void stats_store_set(int db_index, StatsStore what, int64_t v)
{
	if (db_index < 1 || db_index > STATS_MAX_DATABASES)
		return;
	atomic_store_explicit(&store[db_index - 1][what], v, memory_order_relaxed);
	atomic_store_explicit(&store_known[db_index - 1], true, memory_order_relaxed);
}

void stats_render(Buf *out)
{
	buf_adds(out, "# HELP m2pg_requests_total HTTP requests answered, by route and status.\n"
		      "# TYPE m2pg_requests_total counter\n");
	for (int r = 0; r < STATS_NROUTES; r++)
		for (int s = 0; s < NSTATUS; s++) {
			uint64_t n = get(&requests[r][s]);
			if (!n)
				continue;
			if (s < NSTATUS - 1)
				buf_addf(out, "m2pg_requests_total{route=\"%s\",status=\"%d\"} %llu\n", route_names[r],
					 statuses[s], (unsigned long long)n);
			else
				buf_addf(out, "m2pg_requests_total{route=\"%s\",status=\"other\"} %llu\n",
					 route_names[r], (unsigned long long)n);
		}
	buf_adds(out, "# HELP m2pg_request_seconds Time to answer a request (to its last byte for "
		      "streamed reads), by route.\n# TYPE m2pg_request_seconds histogram\n");
	for (int r = 0; r < STATS_NROUTES; r++) {
		uint64_t cum = 0;
		for (int b = 0; b <= NBOUNDS; b++) {
			cum += get(&latency[r][b]);
			if (b < NBOUNDS)
				buf_addf(out, "m2pg_request_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
					 route_names[r], bounds[b], (unsigned long long)cum);
			else
				buf_addf(out, "m2pg_request_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n",
					 route_names[r], (unsigned long long)cum);
		}
		buf_addf(out, "m2pg_request_seconds_sum{route=\"%s\"} %.6f\n", route_names[r],
			 (double)get(&latency_us_sum[r]) / 1e6);
		buf_addf(out, "m2pg_request_seconds_count{route=\"%s\"} %llu\n", route_names[r],
			 (unsigned long long)cum);
	}
	for (int c = 0; c < STATS_NCOUNTERS; c++)
		buf_addf(out, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", counter_names[c][0],
			 counter_names[c][1], counter_names[c][0], counter_names[c][0],
			 (unsigned long long)get(&counters[c]));
	buf_adds(out, "# HELP m2pg_rows_inserted_total Metrics in the insert batches each database "
		      "committed (a retried id counts again; the database stores it once).\n"
		      "# TYPE m2pg_rows_inserted_total counter\n");
	for (int i = 0; i < STATS_MAX_DATABASES; i++) {
		uint64_t n = get(&rows_inserted[i]);
		if (n)
			buf_addf(out, "m2pg_rows_inserted_total{db=\"%d\"} %llu\n", i + 1, (unsigned long long)n);
	}
	for (int k = 0; k < STATS_NSTORE; k++) {
		buf_addf(out, "# HELP %s %s\n# TYPE %s gauge\n", store_names[k][0], store_names[k][1], store_names[k][0]);
		for (int i = 0; i < STATS_MAX_DATABASES; i++)
			if (atomic_load_explicit(&store_known[i], memory_order_relaxed))
				buf_addf(out, "%s{db=\"%d\"} %lld\n", store_names[k][0], i + 1,
					 (long long)atomic_load_explicit(&store[i][k], memory_order_relaxed));
	}
}
