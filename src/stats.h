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

/* What a database's tables look like, as last asked (every minute, by the web process). */
typedef enum {
	STATS_STORE_PARTITIONS,   /* partitions of metrics, the default one aside */
	STATS_STORE_DEFAULT_ROWS, /* rows in the default partition (estimated) */
	STATS_STORE_ROLLUP_LAG,   /* seconds since the end of the last hour rolled up; -1: none yet */
	STATS_STORE_DIRTY_HOURS,  /* hours to roll up again */
	STATS_NSTORE
} StatsStore;
void stats_store_set(int db_index, StatsStore what, int64_t v); /* 1-based */
/* Appends the process-wide families to out. */
void stats_render(Buf *out);

#endif
