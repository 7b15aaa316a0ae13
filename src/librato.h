/* The bodies Librato clients and l2met POST to Librato's POST /v1/metrics, read into m2pg's
 * metric model. Pure: links alone in unit tests and fuzz targets.
 *
 * JSON: {"gauges": [...] or {...}, "counters": [...] or {...}, "measure_time": s, "source": x}.
 * A list holds measurement objects with a "name"; a hash is keyed by name. A gauge has "value",
 * or "count" and "sum" (with "min", "max", "sum_squares"); a counter has "value". Each may
 * override "measure_time" (Unix seconds, a number or a string of digits) and "source".
 * Form (application/x-www-form-urlencoded): gauges[N][field]=x, counters[N][field]=x,
 * measure_time=s, source=x; N an integer below 10000, in any order.
 *
 * A value v becomes count 1 and every other statistic v; count and sum become count, mean =
 * sum / count, and min and max when given. bucket_us is measure_time; the id is
 * uuid_named(name, source, measure_time), so a retried post is stored once. */
#ifndef M2PG_LIBRATO_H
#define M2PG_LIBRATO_H

#include "common.h"
#include "metric.h"

/* Parses a Librato POST /v1/metrics body. form: the body is application/x-www-form-urlencoded
 * (the legacy form) rather than JSON. now_us: wall time, the default measure_time.
 * All or nothing: on failure err says why (status 400), and out holds nothing to free. */
bool librato_parse(const char *body, size_t len, bool form, int64_t now_us, MetricBatch *out,
		   MetricError *err) WARN_UNUSED;

#endif
