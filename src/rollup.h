/* Merging rows from every database into the answer of a read. Pure: links alone in tests.
 * Rows go in as they arrive from each database, in any order and with duplicates (the same
 * metric stored in several databases); rollup_write_json() removes duplicates by id, groups by
 * (name, bucket of the resolution) and writes the seed's response shape. */
#ifndef M2PG_ROLLUP_H
#define M2PG_ROLLUP_H

#include "buf.h"
#include "metric.h"
#include "tm.h"

typedef struct Rollup Rollup;

Rollup *rollup_new(TmRes res, size_t max_rows);
void rollup_free(Rollup *r);
/* Adds one stored row; false once max_rows rows are held (the row is not added). */
bool rollup_add(Rollup *r, const Uuid *id, int64_t bucket_us, const char *name, size_t name_len,
		uint8_t present, const double v[METRIC_NSTATS]) WARN_UNUSED;
size_t rollup_count(const Rollup *r);
/* Sorts, de-duplicates and rolls up; appends the JSON array to out. Call once. */
void rollup_write_json(Rollup *r, Buf *out);

#endif
