/* Schema SQL and insert parameters. */
#include "schema.h"

#include <string.h>

#include "pgarr.h"

/* One statement per batch: the rows, plus the names this process has not yet seen in the
 * database's catalogue ($12, usually empty), in one transaction so the catalogue never lacks a
 * name that has rows. Parameters are binary arrays. */
const char SCHEMA_INSERT_SQL[] =
	"WITH new_names AS (INSERT INTO metric_names (name) SELECT unnest($12::text[]) "
	"ON CONFLICT DO NOTHING) "
	"INSERT INTO metrics (id, bucket, name, count, mean, median, min, max, perc95, perc99, last) "
	"SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::float8[], $5::float8[], "
	"$6::float8[], $7::float8[], $8::float8[], $9::float8[], $10::float8[], $11::float8[]) "
	"ON CONFLICT (id) DO NOTHING";

/* Brings a database to m2pg's schema, idempotently, under an advisory lock so that several
 * processes can start at once. A table made by the original m2pg (bucket int, numeric values,
 * a plain index on id) is converted in place and keeps its rows. */
const char SCHEMA_SETUP_SQL[] =
	"SET client_min_messages = warning;"
	"BEGIN;"
	"SELECT pg_advisory_xact_lock(7235188473);"
	"CREATE TABLE IF NOT EXISTS metrics ("
	" id uuid NOT NULL, bucket timestamptz NOT NULL, name text NOT NULL,"
	" count double precision, mean double precision, median double precision,"
	" min double precision, max double precision, perc95 double precision,"
	" perc99 double precision, last double precision);"
	"DO $m2pg$ DECLARE col text; t text; BEGIN"
	"  SELECT format_type(atttypid, NULL) INTO t FROM pg_attribute"
	"   WHERE attrelid = 'metrics'::regclass AND attname = 'bucket';"
	"  IF t IN ('integer', 'bigint', 'numeric', 'double precision') THEN"
	"   ALTER TABLE metrics ALTER COLUMN bucket TYPE timestamptz USING to_timestamp(bucket);"
	"  END IF;"
	"  FOREACH col IN ARRAY ARRAY['count','mean','median','min','max','perc95','perc99','last'] LOOP"
	"   SELECT format_type(atttypid, NULL) INTO t FROM pg_attribute"
	"    WHERE attrelid = 'metrics'::regclass AND attname = col;"
	"   IF t <> 'double precision' THEN"
	"    EXECUTE format('ALTER TABLE metrics ALTER COLUMN %I TYPE double precision', col);"
	"   END IF;"
	"  END LOOP;"
	"  IF to_regclass('metrics_id_key') IS NULL THEN"
	"   DELETE FROM metrics a USING metrics b WHERE a.id = b.id AND a.ctid < b.ctid;"
	"   CREATE UNIQUE INDEX metrics_id_key ON metrics (id);"
	"   DROP INDEX IF EXISTS metrics_by_id;"
	"  END IF;"
	"  IF to_regclass('metric_names') IS NULL THEN"
	"   CREATE TABLE metric_names (name text PRIMARY KEY);"
	"   INSERT INTO metric_names SELECT DISTINCT name FROM metrics;"
	"  END IF;"
	"  IF to_regclass('metrics_bucket_brin') IS NULL THEN"
	"   CREATE INDEX metrics_bucket_brin ON metrics USING brin (bucket);"
	"  END IF;"
	"  IF to_regclass('metrics_by_name_bucket') IS NULL THEN"
	"   CREATE INDEX metrics_by_name_bucket ON metrics (name, bucket);"
	"  END IF;"
	" END $m2pg$;"
	"COMMIT;";

void schema_insert_begin(SchemaInsert *ins)
{
	static const uint32_t oids[SCHEMA_INSERT_PARAMS] = {
		PGARR_OID_UUID,   PGARR_OID_TIMESTAMPTZ, PGARR_OID_TEXT,   PGARR_OID_FLOAT8,
		PGARR_OID_FLOAT8, PGARR_OID_FLOAT8,      PGARR_OID_FLOAT8, PGARR_OID_FLOAT8,
		PGARR_OID_FLOAT8, PGARR_OID_FLOAT8,      PGARR_OID_FLOAT8, PGARR_OID_TEXT};
	for (int k = 0; k < SCHEMA_INSERT_PARAMS; k++)
		pgarr_begin(&ins->cols[k], oids[k]);
	memset(ins->has_null, 0, sizeof(ins->has_null));
	ins->n = ins->nnew = 0;
}

void schema_insert_add(SchemaInsert *ins, const Metric *m, bool new_name)
{
	pgarr_put32(&ins->cols[0], 16);
	buf_add(&ins->cols[0], m->id.b, 16);
	pgarr_add_timestamptz(&ins->cols[1], m->bucket_us);
	pgarr_add_text(&ins->cols[2], m->name, m->name_len);
	for (int s = 0; s < METRIC_NSTATS; s++) {
		Buf *b = &ins->cols[3 + s];
		if (!(m->present & (1u << s))) {
			pgarr_put32(b, UINT32_MAX); /* -1: NULL */
			ins->has_null[s] = true;
			continue;
		}
		uint64_t bits;
		memcpy(&bits, &m->v[s], 8);
		pgarr_put32(b, 8);
		pgarr_put64(b, bits);
	}
	if (new_name) { /* duplicates within a batch are harmless: ON CONFLICT DO NOTHING */
		pgarr_add_text(&ins->cols[11], m->name, m->name_len);
		ins->nnew++;
	}
	ins->n++;
}

void schema_insert_end(SchemaInsert *ins)
{
	for (int k = 0; k < SCHEMA_INSERT_COLUMNS; k++)
		pgarr_end(&ins->cols[k], ins->n, k >= 3 && ins->has_null[k - 3]);
	pgarr_end(&ins->cols[11], ins->nnew, false);
}

void schema_insert_params(const SchemaInsert *ins, const char *values[SCHEMA_INSERT_PARAMS],
			  int lengths[SCHEMA_INSERT_PARAMS], int formats[SCHEMA_INSERT_PARAMS])
{
	for (int k = 0; k < SCHEMA_INSERT_PARAMS; k++) {
		values[k] = ins->cols[k].p;
		lengths[k] = (int)ins->cols[k].len;
		formats[k] = 1;
	}
}

void schema_insert_free(SchemaInsert *ins)
{
	for (int k = 0; k < SCHEMA_INSERT_PARAMS; k++)
		buf_free(&ins->cols[k]);
}
