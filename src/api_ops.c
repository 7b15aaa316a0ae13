/* The operators' endpoints: each database's state as this worker sees it, and the process's
 * counters. */
#include "api_ops.h"

#include <event2/http.h>
#include <string.h>

#include "hint.h"
#include "jsonw.h"
#include "stats.h"

void api_ops_health(Web *w, struct evhttp_request *req, int64_t start_us)
{
	int up = 0;
	for (int i = 0; i < w->ndbs; i++)
		up += db_connected(w->dbs[i]) > 0;
	Buf b = {0};
	buf_addf(&b, "{\"status\": \"ok\", \"databases\": %d, \"connected\": %d, \"states\": [", w->ndbs, up);
	for (int i = 0; i < w->ndbs; i++) {
		Db *db = w->dbs[i];
		buf_addf(&b, "%s{\"db\": %d, \"host\": ", i ? ", " : "", i + 1);
		jsonw_string(&b, db_label(db), strlen(db_label(db)));
		buf_addf(&b, ", \"state\": \"%s\", \"connections\": %d, \"queued\": %zu, \"hints\": %zu}",
			 db_health_name(db_health(db)), db_connected(db), db_queued_metrics(db),
			 hints_count(w->hints[i]));
	}
	buf_adds(&b, "]}\n");
	reply_json(req, 200, &b, start_us);
}

/* GET /stats: the process's counters, and this worker's view of each database. */
void api_ops_stats(Web *w, struct evhttp_request *req, int64_t start_us)
{
	Buf b = {0};
	stats_render(&b);
	buf_adds(&b, "# HELP m2pg_database_state Each database's health as this worker sees it (1: current).\n"
		     "# TYPE m2pg_database_state gauge\n");
	for (int i = 0; i < w->ndbs; i++)
		for (int h = DB_UP; h <= DB_DOWN; h++)
			buf_addf(&b, "m2pg_database_state{db=\"%d\",state=\"%s\"} %d\n", i + 1,
				 db_health_name((DbHealth)h), db_health(w->dbs[i]) == (DbHealth)h);
	static const char *const gauges[][2] = {
		{"m2pg_database_connections", "Connections ready for work."},
		{"m2pg_database_queued_metrics", "Metrics waiting for or in an insert."},
		{"m2pg_hints", "Metrics waiting as hints for a database that failed them."},
		{"m2pg_hints_dropped_total", "Hints dropped past HINTS_MAX (counter)."},
	};
	for (size_t g = 0; g < ARRAY_LEN(gauges); g++) {
		buf_addf(&b, "# HELP %s %s\n# TYPE %s %s\n", gauges[g][0], gauges[g][1], gauges[g][0],
			 g == 3 ? "counter" : "gauge");
		for (int i = 0; i < w->ndbs; i++) {
			uint64_t v = g == 0 ? (uint64_t)db_connected(w->dbs[i])
				     : g == 1 ? db_queued_metrics(w->dbs[i])
				     : g == 2 ? hints_count(w->hints[i])
						: hints_dropped(w->hints[i]);
			buf_addf(&b, "%s{db=\"%d\"} %llu\n", gauges[g][0], i + 1, (unsigned long long)v);
		}
	}
	buf_addf(&b, "# HELP m2pg_reads_in_flight Reads being answered by this worker.\n"
		     "# TYPE m2pg_reads_in_flight gauge\nm2pg_reads_in_flight %d\n", w->reads_inflight);
	reply_send(req, 200, "text/plain; version=0.0.4; charset=utf-8", &b, start_us);
}
