/* The schema m2pg keeps in every database, and the statement that writes metrics. Pure: the
 * SQL texts and the binary parameters of an insert, shared by the web process and the
 * maintenance commands (repair copies rows with the same statement). */
#ifndef M2PG_SCHEMA_H
#define M2PG_SCHEMA_H

#include "buf.h"
#include "metric.h"

#define SCHEMA_INSERT_COLUMNS 12
#define SCHEMA_INSERT_ARRAYS 13 /* the columns, then the catalogue's new names */
#define SCHEMA_INSERT_PARAMS 14 /* and the catalogue generation the process knows */
#define SCHEMA_NAMES_GEN_UNKNOWN INT64_MIN

/* Creates or upgrades the tables and indexes when the database needs it (a check of two
 * catalogue entries otherwise, cheap enough for every connection's setup); idempotent; one
 * simple-query string. */
extern const char SCHEMA_SETUP_SQL[];
/* Settings of the web process's sessions. */
extern const char SCHEMA_SESSION_SQL[];
/* The same, for `m2pg migrate`: its last result is one row, what the migration did (empty when
 * the database needed nothing). */
extern const char SCHEMA_MIGRATE_SQL[];
/* $1 days ahead, $2 partition width in days (text): makes the partitions of metrics from now
 * to $1 days ahead that are missing; rows of (partition, rows moved from the default one). */
extern const char SCHEMA_PARTITIONS_MAKE_SQL[];
/* $1 a cutoff (text timestamptz): the partitions that hold buckets before it, oldest first,
 * the default partition last; rows of (partition, is_default, estimated rows, whether every
 * bucket it can hold is before the cutoff, whether the cutoff is in the first quarter of its
 * range). */
extern const char SCHEMA_PARTITIONS_OLD_SQL[];
/* $1..$12 the columns as binary arrays (id, bucket, name, the statistics, source), $13 names
 * to add to the catalogue, $14 the catalogue generation the sender knows (int8). Returns one row: the generation the statement saw
 * (text; when it differs from $14, every name of the batch was added). */
extern const char SCHEMA_INSERT_SQL[];
/* The same without ON CONFLICT, for rows no database can hold yet (DbJob.fresh). */
extern const char SCHEMA_INSERT_NEW_SQL[];
/* The same, for repair: the row has a second column, the count of rows inserted. */
extern const char SCHEMA_COPY_SQL[];
/* Adds to the catalogue every name that has rows and is missing from it; cheap (one index
 * descent per distinct name). */
extern const char SCHEMA_NAMES_FILL_SQL[];

/* Rollups (see schema.c). CLAIM: $1 the end of the hours to roll now, $2 RETENTION's cutoff
 * ('-infinity' without); rows of the claimed hours, in order. WRITERS: the transactions
 * writing to metrics now (a text array). WRITERS_LEFT: $1 such an array; how many of them are
 * still open. COMPUTE: $1 claimed hours (a text array); one row of the hours done and failed.
 * EXPIRE: $1 ROLLUP_RETENTION's cutoff; the rollup rows removed. */
extern const char SCHEMA_ROLLUP_CLAIM_SQL[];
extern const char SCHEMA_ROLLUP_WRITERS_SQL[];
extern const char SCHEMA_ROLLUP_WRITERS_LEFT_SQL[];
extern const char SCHEMA_ROLLUP_COMPUTE_SQL[];
extern const char SCHEMA_ROLLUP_EXPIRE_SQL[];
/* One row of int8: partitions of metrics (the default aside), rows in the default partition
 * (estimated), seconds since the rollups' watermark (-1: none yet), dirty hours. */
extern const char SCHEMA_STORE_STATUS_SQL[];

/* Repair by rollups (binary results). STATE: $1, $2 a range; rows of (watermark, kept_from, a
 * dirty hour in the range or NULL), one per dirty hour, in no order. HOURS: $1, $2 a range; per hour
 * (bucket, rows, digest h1, h2), in order. GROUPS: $1 hours (an array); the rollup rows of those
 * hours (bucket, name, source, rows, h1, h2) in one defined order. IDS: $1 names, $2 and $3
 * [lo, hi), $4 sources (arrays, one element per group); the ids of those groups' rows, in no
 * order. RANGE_IDS: the same, and $5, $6 a range holding the groups: declares the cursor
 * m2pg_repair_ids of their ids. EARLIEST (text): the earliest bucket, perhaps an hour early, as
 * Unix microseconds. */
extern const char SCHEMA_REPAIR_STATE_SQL[];
extern const char SCHEMA_REPAIR_HOURS_SQL[];
extern const char SCHEMA_REPAIR_DAYS_SQL[];
extern const char SCHEMA_REPAIR_GROUPS_SQL[];
extern const char SCHEMA_REPAIR_DAY_SERIES_SQL[];
extern const char SCHEMA_REPAIR_FETCH_SQL[];
extern const char SCHEMA_REPAIR_SERIES_GROUPS_SQL[];
extern const char SCHEMA_REPAIR_IDS_SQL[];
extern const char SCHEMA_REPAIR_RANGE_IDS_SQL[];
extern const char SCHEMA_REPAIR_EARLIEST_SQL[];

/* Reads take $1 regex, $2 and $3 inclusive time bounds, $4 a row limit, $5 a source regex
 * (NULL: any); the aggregate takes a date_trunc() unit as $5 and the source regex as $6; the
 * group rows take $1 names, $2 and $3 bounds (binary arrays), $4, and $5 the source regex or,
 * by source, the sources (a binary array). Results are binary; rows are ROW_COLUMNS (below),
 * aggregates start with name, source, group. BY_SOURCE: a series per (name, source). */
extern const char SCHEMA_ROWS_SQL[];
extern const char SCHEMA_ROWS_BY_SOURCE_SQL[];
extern const char SCHEMA_AGG_SQL[];
extern const char SCHEMA_AGG_BY_SOURCE_SQL[];
extern const char SCHEMA_AGG_PARTS_SQL[];
extern const char SCHEMA_GROUP_ROWS_SQL[];
extern const char SCHEMA_GROUP_ROWS_BY_SOURCE_SQL[];
/* The columns of a row read back: id, bucket, name, the statistics, source. */
enum { SCHEMA_COL_ID, SCHEMA_COL_BUCKET, SCHEMA_COL_NAME, SCHEMA_COL_STATS,
       SCHEMA_COL_SOURCE = SCHEMA_COL_STATS + METRIC_NSTATS, SCHEMA_ROW_COLUMNS };
/* $1 regex (NULL: all), $2 limit: rows of (name, catalogue size, names matched); the name is
 * NULL when none matched. */
extern const char SCHEMA_NAMES_SQL[];

/* Statements every connection prepares. */
#define SCHEMA_STMT_INSERT "m2pg_insert"
#define SCHEMA_STMT_INSERT_NEW "m2pg_insert_new" /* without ON CONFLICT: DbJob.fresh */

typedef struct SchemaStmt {
	const char *name;
	const char *sql;
} SchemaStmt;

extern const SchemaStmt schema_statements[];
extern const int schema_nstatements;

typedef struct SchemaInsert {
	Buf cols[SCHEMA_INSERT_PARAMS];
	bool has_null[METRIC_NSTATS];
	bool source_null;
	uint32_t n;
	const Metric **new_names; /* sorted and de-duplicated at the end */
	size_t nnew, cap_new;
	int64_t names_gen; /* $14: set before schema_insert_end (SCHEMA_NAMES_GEN_UNKNOWN: add all) */
} SchemaInsert;

void schema_insert_begin(SchemaInsert *ins);
/* new_name: also add the metric's name to the catalogue (harmless when it is there). */
void schema_insert_add(SchemaInsert *ins, const Metric *m, bool new_name);
void schema_insert_end(SchemaInsert *ins);
void schema_insert_params(const SchemaInsert *ins, const char *values[SCHEMA_INSERT_PARAMS],
			  int lengths[SCHEMA_INSERT_PARAMS], int formats[SCHEMA_INSERT_PARAMS]);
void schema_insert_free(SchemaInsert *ins);

#endif
