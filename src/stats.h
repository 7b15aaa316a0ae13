/* Process-wide counters for operators, rendered by GET /stats in Prometheus' text format.
 * Pure (no libevent, no libpq): relaxed atomics, so every worker thread counts into the same
 * numbers without locks. Gauges that belong to one worker's connections (a database's state,
 * its queue, its hints) are rendered by the web layer next to these. */
#ifndef M2PG_STATS_H
#define M2PG_STATS_H

#include "buf.h"
#include "common.h"

typedef enum {
	STATS_ROUTE_READ,   /* GET /metrics */
	STATS_ROUTE_WRITE,  /* POST /metrics */
	STATS_ROUTE_HEALTH, /* /health */
	STATS_ROUTE_STATS,  /* /stats */
	STATS_ROUTE_LIBRATO_READ,  /* GET /v1/metrics, /v1/metrics/NAME */
	STATS_ROUTE_LIBRATO_WRITE, /* POST /v1/metrics */
	STATS_ROUTE_GRAPHITE_RENDER, /* /render */
	STATS_ROUTE_GRAPHITE_FIND,   /* /metrics/find */
	STATS_ROUTE_OTHER,
	STATS_NROUTES
} StatsRoute;

typedef enum {
	STATS_METRICS_ACCEPTED, /* metrics in requests answered 201 */
	STATS_WRITES_REFUSED,   /* metrics refused before anything was stored (503, stored: false) */
	STATS_WRITES_UNKNOWN,   /* metrics answered 503 with stored: unknown */
	STATS_READS_REFUSED,    /* reads refused past READ_CONCURRENCY */
	STATS_READS_ABORTED,    /* streamed answers cut off (a database failed, too many rows) */
	STATS_AUTH_DENIED,      /* requests answered 401: no API token, or an unknown one */
	STATS_AUTH_FORBIDDEN,   /* requests answered 403: a token without the scope */
	STATS_NCOUNTERS
} StatsCounter;

#define STATS_MAX_DATABASES 16

void stats_request(StatsRoute route, int status, int64_t us);
void stats_add(StatsCounter c, uint64_t n);
void stats_rows_inserted(int db_index, uint64_t n); /* 1-based, as in logs */
/* Appends the process-wide families to out. */
void stats_render(Buf *out);

#endif
