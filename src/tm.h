/* Time forms accepted from clients, rollup resolutions and bucket arithmetic. Pure: no I/O.
 * Instants are int64 microseconds since the Unix epoch, UTC. Valid input lies in the years
 * 1970..9999; a bucket start can still precede it (the week of 1970-01-01 starts on Monday
 * 1969-12-29), so arithmetic here is floor-based and correct for negative instants. */
#ifndef M2PG_TM_H
#define M2PG_TM_H

#include "common.h"

#define TM_MIN_US INT64_C(0)
#define TM_MAX_US INT64_C(253402300799999999) /* 9999-12-31T23:59:59.999999Z */

typedef enum { TM_SECOND, TM_MINUTE, TM_HOUR, TM_DAY, TM_WEEK, TM_MONTH, TM_YEAR } TmRes;

/* Unix seconds (integer or fractional) to an instant; false outside 1970..9999. */
bool tm_from_unix(double secs, int64_t *us) WARN_UNUSED;
/* "1355202720", "1355202720.5", RFC 3339, or "2012-12-11 05:19:00 UTC" (also "+0100"). */
bool tm_parse(const char *s, size_t len, int64_t *us) WARN_UNUSED;
bool tm_parse_resolution(const char *s, TmRes *res) WARN_UNUSED;
/* A duration like "30d", "12h", "90m", "45s" or "2w" (a whole number and a unit). */
bool tm_parse_duration(const char *s, int64_t *us) WARN_UNUSED;
/* Start of the bucket of resolution res holding us (weeks start on Monday). */
int64_t tm_truncate(int64_t us, TmRes res);
/* Start of the bucket after the one starting at start. */
int64_t tm_next(int64_t start, TmRes res);
/* The unit's name as PostgreSQL's date_trunc() knows it. */
const char *tm_res_unit(TmRes res);
/* "YYYY-MM-DDTHH:MM:SS.ffffffZ" (RFC 3339); buf >= 32 bytes. */
size_t tm_format_rfc3339(int64_t us, char *buf);
/* "YYYY-MM-DD HH:MM:SS.ffffff+00", what PostgreSQL reads as timestamptz; buf >= 32 bytes. */
size_t tm_format_pg(int64_t us, char *buf);
/* Days since 1970-01-01 of a proleptic Gregorian date. */
int64_t tm_days_from_civil(int64_t y, unsigned m, unsigned d);

#endif
