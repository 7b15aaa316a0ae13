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
/* The database the next rows come from (0 = the first in DATABASE_URLS): when two copies of
 * one id differ, the copy of the lowest source counts, whatever order the rows came in. */
void rollup_set_source(Rollup *r, unsigned source);

/* What a group accumulates: enough to apply the rollup rules, whether rows are added one by
 * one here or a database aggregated them (the same sums, over the same rows). */
typedef struct RollMean {
	uint32_t n;          /* rows with a value */
	uint32_t unweighted; /* of them, rows without a count */
	double single;       /* the value, exact, when n == 1 */
	double plain;        /* sum of values */
	double wsum;         /* sum of value * count */
	double wcount;       /* sum of count */
} RollMean;

typedef struct RollAcc {
	uint32_t count_n;
	double count_sum;
	RollMean avg[2];    /* mean, median */
	uint8_t ext_present; /* bit k: ext[k] holds a value */
	double ext[4];      /* min, max, perc95, perc99 */
	bool has_last;
	int64_t last_bucket_us;
	Uuid last_id;
	double last;
} RollAcc;

void rollup_acc_row(RollAcc *acc, const Uuid *id, int64_t bucket_us, uint8_t present,
		    const double v[METRIC_NSTATS]);
/* Adds the sums of more rows of the same group (another rollup row of it, say). */
void rollup_acc_merge(RollAcc *acc, const RollAcc *more);
/* Adds a group a database aggregated itself; false past max_rows groups. */
bool rollup_add_group(Rollup *r, const char *name, size_t name_len, int64_t group_us,
		      const RollAcc *acc) WARN_UNUSED;
/* The same by the series' number: rollup_series() gives each distinct name (series key) one,
 * from 0 up, in the order they are first seen. */
uint32_t rollup_series(Rollup *r, const char *name, size_t name_len);
bool rollup_add_group_of(Rollup *r, uint32_t series, int64_t group_us, const RollAcc *acc) WARN_UNUSED;

/* One bucket of the answer: the rollup of a group's rows. */
typedef struct RollPoint {
	int64_t group_us;
	uint8_t present;
	double v[METRIC_NSTATS];
} RollPoint;

/* One name's series, built from its rows in (bucket, id) order with duplicates already removed,
 * and written as JSON in parts of a chosen size: the text in memory is one part, and the
 * points are kept packed (about 35 to 70 bytes a bucket: the bucket as a delta, and each value
 * in 4 bytes when a float holds it exactly), so a read of 300,000 buckets holds about 20 MB. */
typedef struct RollSeries {
	TmRes res;
	Buf name;
	uint8_t **blocks;
	size_t nblocks, used; /* used: bytes of the last block */
	size_t n;             /* points */
	int64_t first_group;  /* buckets are stored as deltas from here */
	int64_t last_group;   /* the encoder's previous bucket */
	RollAcc acc;
	bool acc_open;
	int64_t acc_group;
	int stat;     /* writer: the statistic being written, -1 before the name */
	uint8_t stats_out; /* writer: the statistics rollseries_write writes (bit per statistic; 0: all) */
	bool wrote;   /* writer: a point of that statistic is written */
	size_t next;  /* writer: points of that statistic read so far */
	size_t rblock, roff;
	int64_t rgroup;
	struct RollBucketText *btext; /* writer: buckets as text, each written once per statistic */
} RollSeries;

void rollseries_init(RollSeries *s, TmRes res);
void rollseries_free(RollSeries *s);
/* Starts a name; its points replace the previous name's. */
void rollseries_begin(RollSeries *s, const char *name, size_t len);
void rollseries_add(RollSeries *s, const Uuid *id, int64_t bucket_us, uint8_t present,
		    const double v[METRIC_NSTATS]);
/* No more rows for this name: closes its last bucket. */
void rollseries_end(RollSeries *s);
/* Appends the name's JSON object in the seed's shape until out holds want bytes; true once it
 * is all written. */
bool rollseries_write(RollSeries *s, Buf *out, size_t want);
/* Reading the points back in order, for other shapes of answer. */
void rollseries_rewind(RollSeries *s);
bool rollseries_next(RollSeries *s, RollPoint *p);
/* A series' key is its name, or for a read by source its name, a NUL and its source (empty:
 * unassigned). The name's length, and whether the series is one source's (its source). */
size_t rollseries_name_len(const RollSeries *s);
bool rollseries_source(const RollSeries *s, const char **source, size_t *len);

/* Sorts, de-duplicates and rolls up (no more rows or groups may be added after). */
void rollup_prepare(Rollup *r);
/* After rollup_prepare(): the next name's points into s, in name order; false at the end. */
bool rollup_next_series(Rollup *r, RollSeries *s);
/* rollup_prepare() and the whole answer at once. Call once. */
void rollup_write_json(Rollup *r, Buf *out);

#endif
