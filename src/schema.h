/* The schema m2pg keeps in every database, and the statement that writes metrics. Pure: the
 * SQL texts and the binary parameters of an insert, shared by the web process and the
 * maintenance commands (repair copies rows with the same statement). */
#ifndef M2PG_SCHEMA_H
#define M2PG_SCHEMA_H

#include "buf.h"
#include "metric.h"

#define SCHEMA_INSERT_COLUMNS 11
#define SCHEMA_INSERT_ARRAYS 12 /* the columns, then the catalogue's new names */
#define SCHEMA_INSERT_PARAMS 13 /* and the catalogue generation the process knows */
#define SCHEMA_NAMES_GEN_UNKNOWN INT64_MIN

/* Creates or upgrades the tables and indexes; idempotent; one simple-query string. */
extern const char SCHEMA_SETUP_SQL[];
/* $1..$11 the columns as binary arrays, $12 names to add to the catalogue, $13 the catalogue
 * generation the sender knows (int8). Returns one row: the generation the statement saw
 * (text; when it differs from $13, every name of the batch was added). */
extern const char SCHEMA_INSERT_SQL[];
/* The same, for repair: the row has a second column, the count of rows inserted. */
extern const char SCHEMA_COPY_SQL[];
/* Adds to the catalogue every name that has rows and is missing from it; cheap (one index
 * descent per distinct name). */
extern const char SCHEMA_NAMES_FILL_SQL[];

/* Reads take $1 regex, $2 and $3 inclusive time bounds, $4 a row limit; the aggregate also
 * $5, a date_trunc() unit; the group rows take $1 names, $2 and $3 bounds (binary arrays)
 * and $4. Results are binary. */
extern const char SCHEMA_ROWS_SQL[];
extern const char SCHEMA_AGG_SQL[];
extern const char SCHEMA_GROUP_ROWS_SQL[];

/* Statements every connection prepares. */
#define SCHEMA_STMT_INSERT "m2pg_insert"

typedef struct SchemaStmt {
	const char *name;
	const char *sql;
} SchemaStmt;

extern const SchemaStmt schema_statements[];
extern const int schema_nstatements;

typedef struct SchemaInsert {
	Buf cols[SCHEMA_INSERT_PARAMS];
	bool has_null[METRIC_NSTATS];
	uint32_t n;
	const Metric **new_names; /* sorted and de-duplicated at the end */
	size_t nnew, cap_new;
	int64_t names_gen; /* $13: set before schema_insert_end (SCHEMA_NAMES_GEN_UNKNOWN: add all) */
} SchemaInsert;

void schema_insert_begin(SchemaInsert *ins);
/* new_name: also add the metric's name to the catalogue (harmless when it is there). */
void schema_insert_add(SchemaInsert *ins, const Metric *m, bool new_name);
void schema_insert_end(SchemaInsert *ins);
void schema_insert_params(const SchemaInsert *ins, const char *values[SCHEMA_INSERT_PARAMS],
			  int lengths[SCHEMA_INSERT_PARAMS], int formats[SCHEMA_INSERT_PARAMS]);
void schema_insert_free(SchemaInsert *ins);

#endif
