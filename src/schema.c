/* Schema SQL and insert parameters. */
#include "schema.h"

#include <stdlib.h>
#include <string.h>

#include "pgarr.h"

/* The columns of metrics, in the order every statement here writes them. */
#define METRICS_COLUMNS "id, bucket, name, count, mean, median, min, max, perc95, perc99, last, source"

/* One statement per batch: the rows, plus the names this process has not yet seen in the
 * database's catalogue ($12, usually empty), in one transaction so the catalogue never lacks a
 * name that has rows. Parameters are binary arrays.
 *
 * The catalogue may be edited behind m2pg's back (a DELETE, a TRUNCATE), and then the names
 * the process caches as present are not. Every such edit bumps metric_names_gen (a trigger,
 * below); the statement is sent with the generation the process knows ($13) and returns the
 * one it saw: when they differ it adds every name of its batch ($3) itself, and the process
 * empties its cache, all in the same round trip. Costs one read of a one-row table.
 *
 * The rows are unnest()s in the select list, not unnest(a, b, ..) in FROM: the latter is a
 * function scan that first copies every row into a tuplestore and then reads it back. The
 * select list's unnests run in step (the arrays are of one length). On the loaded databases of
 * make bench-scale, batch ingest went from 0.81x to 0.97x of the m2pg before partitions, whose
 * insert was otherwise the same; statement triggers on metrics (the rollups' dirty hours)
 * cost most of what is left. */
#define INSERT_SQL_ROWS \
	"WITH g AS (SELECT coalesce((SELECT gen FROM metric_names_gen LIMIT 1), -1) AS gen), " \
	"new_names AS (INSERT INTO metric_names (name) " \
	"SELECT unnest($13::text[]) WHERE (SELECT gen FROM g) = $14::int8 " \
	"UNION ALL (SELECT DISTINCT n COLLATE \"C\" FROM unnest($3::text[]) n " \
	"WHERE (SELECT gen FROM g) <> $14::int8 ORDER BY 1) " \
	"ON CONFLICT DO NOTHING), " \
	"ins AS (INSERT INTO metrics (" METRICS_COLUMNS ") " \
	"SELECT unnest($1::uuid[]), unnest($2::timestamptz[]), unnest($3::text[]), unnest($4::float8[]), " \
	"unnest($5::float8[]), unnest($6::float8[]), unnest($7::float8[]), unnest($8::float8[]), " \
	"unnest($9::float8[]), unnest($10::float8[]), unnest($11::float8[]), unnest($12::text[])"
#define INSERT_SQL_HEAD INSERT_SQL_ROWS " ON CONFLICT (id, bucket) DO NOTHING"

const char SCHEMA_INSERT_SQL[] = INSERT_SQL_HEAD ") SELECT gen FROM g";

/* The rows of a write whose every id m2pg just made, sent for the first time: no row can be
 * there yet, and without ON CONFLICT the insert skips the probe of the unique index before each
 * row and the speculative insertion around it: 10.1 ms -> 7.3 ms of server time for 1,000 rows
 * (the p50 of 56 statements each, on one partition of 300,000 rows). A unique violation is
 * then a surprise, and the batch is sent again as SCHEMA_INSERT_SQL (db.c). */
const char SCHEMA_INSERT_NEW_SQL[] = INSERT_SQL_ROWS ") SELECT gen FROM g";

/* Counting the rows inserted (RETURNING into a CTE) measured a third more server CPU for a
 * one-row batch, so only repair, which reports it, asks. */
const char SCHEMA_COPY_SQL[] = INSERT_SQL_HEAD " RETURNING 1) SELECT (SELECT gen FROM g), (SELECT count(*) FROM ins)";

/* Every name that has rows and no catalogue entry, added from the partitions written since
 * the last fill (m2pg_names_fill_changed, below): names added, partitions scanned, of all. */
const char SCHEMA_NAMES_FILL_SQL[] = "SELECT added, scanned, partitions FROM m2pg_names_fill_changed()";

/* The UTC hour or day of a timestamp. date_bin is plain arithmetic, where date_trunc in a time
 * zone looks the zone up at each call: 2 us a row, the most of a trigger's or a rollup's work
 * per row. TRUNC_TO(res, col) is date_trunc(res, col, 'UTC') for res from a read; a read is
 * planned for its own parameters, so the CASE is decided then. */
#define BIN(width, col) "date_bin('1 " width "', " col ", '2000-01-01 00:00:00+00')"
#define HOUR_OF(col) BIN("hour", col)
#define TRUNC_TO(res, col) "CASE " res " WHEN 'hour' THEN " BIN("hour", col) " WHEN 'day' THEN " \
	BIN("day", col) " ELSE date_trunc(" res ", " col ", 'UTC') END"

/* ---------- downsampled rollups ----------
 *
 * metrics_hour and metrics_day hold, per (name, source, hour or UTC day), what the rollup rules
 * need to combine rows (ROLLUP_PARTS below: the row count and id digest reads compare across
 * databases, count, the count-weighted sums of mean and median, min, max, the maxima of perc95
 * and perc99, and last with the bucket and id that order it), so that a group of any
 * resolution from an hour up is the same combination of rollup rows as of the rows they hold.
 *
 * rollup_state.watermark: every hour before it is rolled up, unless rollup_dirty lists it.
 * gc claims the hours to roll (those closed since the watermark, and the dirty ones), waits for
 * the writes in flight when it claimed them, then computes them from the rows. A write that
 * lands before the watermark (a late metric, a hint handed off, repair, an INSERT or COPY by
 * hand) marks its hours dirty in the same transaction (a statement trigger on metrics), and
 * resets a claim gc is working on, so the hour is computed again. Reads use a rollup only
 * where it is clean and read rows for the rest (m2pg_rollup_plan).
 *
 * rollup_state.kept_from: before it (rows older than RETENTION when rollups started, rollups
 * older than ROLLUP_RETENTION) there are no rollups, and reads use rows. An hour starting
 * before RETENTION's cutoff is never computed again: its rows are no longer all there. */
#define ROLLUP_COLUMNS "name, source, bucket, " ROLLUP_PART_COLUMNS
#define ROLLUP_PART_COLUMNS "n, h1, h2, count_n, count_sum, " \
	"mean_n, mean_min, mean_wsum, mean_wcount, mean_nc, mean_sum, " \
	"median_n, median_min, median_wsum, median_wcount, median_nc, median_sum, " \
	"min, max, perc95, perc99, last, last_bucket, last_id"
#define ROLLUP_TABLE(t) \
	"   CREATE TABLE " t " (name text NOT NULL, source text, bucket timestamptz NOT NULL," \
	"    n bigint NOT NULL, h1 bigint NOT NULL, h2 bigint NOT NULL, count_n bigint NOT NULL, count_sum float8," \
	"    mean_n bigint NOT NULL, mean_min float8, mean_wsum float8, mean_wcount float8, mean_nc bigint NOT NULL," \
	"    mean_sum float8, median_n bigint NOT NULL, median_min float8, median_wsum float8," \
	"    median_wcount float8, median_nc bigint NOT NULL, median_sum float8, min float8, max float8," \
	"    perc95 float8, perc99 float8, last float8, last_bucket timestamptz, last_id uuid);" \
	"   CREATE UNIQUE INDEX " t "_key ON " t " (name, bucket, source) NULLS NOT DISTINCT;" \
	"   CREATE INDEX " t "_bucket ON " t " (bucket);"
/* A rollup row's parts as one value, for reads to send (column vals of both tables, generated
 * from the others; a read makes the same of the rows it sums itself): the row count and the two
 * digests as int8, a format byte (1), then ROLLUP_VALUES_OF's 21 columns in order, each a byte
 * 0 for NULL or 1 and its binary value (8 bytes, the id 16). Sent as a record, a part was 21
 * fields, each with its type and length and a send function call: a database spent more time
 * sending 17,500 parts that way than finding them (bench-scale, read (a)). Prefix p: "r." or "". */
#define ROLLUP_VALS_OF(p) \
	"int8send(" p "n) || int8send(" p "h1) || int8send(" p "h2) || '\\x01'::bytea" \
	VALS_I8(p "count_n") VALS_F8(p "count_sum") VALS_STAT(p "mean") VALS_STAT(p "median") \
	VALS_F8(p "min") VALS_F8(p "max") VALS_F8(p "perc95") VALS_F8(p "perc99") VALS_F8(p "last") \
	VALS_ONE("timestamptz_send", p "last_bucket") VALS_ONE("uuid_send", p "last_id")
/* Both rollup tables have vals. */
#define ROLLUP_VALS_PRESENT "(SELECT count(*) FROM pg_attribute WHERE attname = 'vals' " \
	"AND attrelid IN (to_regclass('metrics_hour'), to_regclass('metrics_day'))) = 2"
#define VALS_ONE(send, col) " || coalesce('\\x01'::bytea || " send "(" col "), '\\x00'::bytea)"
#define VALS_I8(col) VALS_ONE("int8send", col)
#define VALS_F8(col) VALS_ONE("float8send", col)
#define VALS_STAT(s) VALS_I8(s "_n") VALS_F8(s "_min") VALS_F8(s "_wsum") VALS_F8(s "_wcount") \
	VALS_I8(s "_nc") VALS_F8(s "_sum")
/* A statistic's parts from rows m: how many have it, the smallest (the value when there is one),
 * the count-weighted sum and its weight, how many have it without a count, the plain sum. */
#define RAW_STAT_PARTS(s) \
	"count(m." s "), min(m." s "), sum(m." s " * m.count), sum(m.count) FILTER (WHERE m." s " IS NOT NULL), " \
	"count(*) FILTER (WHERE m." s " IS NOT NULL AND m.count IS NULL), sum(m." s "), "
/* A group's last value, with its row's bucket and id (field f of m2pg_last): the largest
 * (bucket, id, value) record of the rows that have one, as ORDER BY bucket DESC, id DESC would
 * pick, without a sort per group (array_agg(... ORDER BY) sorted each group on its own: 5 us a
 * group, most of a read of 33,600 hours). The three fields are one aggregate: PostgreSQL
 * computes identical aggregates of a query once. */
#define LAST_OF(b, id, v, f) "((max(ARRAY[ROW(" b ", " id ", " v ")::m2pg_last]) FILTER (WHERE " v " IS NOT NULL))[1])." f
#define RAW_LAST(f) LAST_OF("m.bucket", "m.id", "m.last", f)
/* ROLLUP_PARTS (after name, source, bucket) of the rows m of a group. */
#define RAW_PARTS \
	"count(*), bit_xor(uuid_hash_extended(m.id, 0)), bit_xor(uuid_hash_extended(m.id, 1)), " \
	"count(m.count), sum(m.count), " RAW_STAT_PARTS("mean") RAW_STAT_PARTS("median") \
	"min(m.min), max(m.max), max(m.perc95), max(m.perc99), " \
	RAW_LAST("value") ", " RAW_LAST("bucket") ", " RAW_LAST("id")
#define SUM_STAT_PARTS(s) \
	"sum(r." s "_n)::int8, min(r." s "_min), sum(r." s "_wsum), sum(r." s "_wcount), sum(r." s "_nc)::int8, " \
	"sum(r." s "_sum), "
#define SUM_LAST(f) LAST_OF("r.last_bucket", "r.last_id", "r.last", f)
/* The same parts of a group of rollup rows r; up to last, the columns of an aggregate read. */
#define SUM_PARTS_TO_LAST \
	"sum(r.n)::int8, bit_xor(r.h1), bit_xor(r.h2), sum(r.count_n)::int8, sum(r.count_sum), " \
	SUM_STAT_PARTS("mean") SUM_STAT_PARTS("median") \
	"min(r.min), max(r.max), max(r.perc95), max(r.perc99), " SUM_LAST("value")
#define SUM_PARTS SUM_PARTS_TO_LAST ", " SUM_LAST("bucket") ", " SUM_LAST("id")

/* Advisory locks (transaction-scoped): one migration or partition maker at a time, and one
 * computing of rollups at a time (the migration takes it too before it rewrites them). */
#define LOCK_SCHEMA "pg_advisory_xact_lock(7235188473)"
#define LOCK_ROLLUPS "pg_advisory_xact_lock(7235188474)"
#define ROLLUP_DO \
	"  IF to_regclass('rollup_state') IS NULL THEN" \
	"   CREATE TABLE rollup_state (watermark timestamptz NOT NULL, kept_from timestamptz NOT NULL);" \
	"   INSERT INTO rollup_state VALUES ('-infinity', '-infinity');" \
	"   CREATE TABLE rollup_dirty (bucket timestamptz PRIMARY KEY, claimed boolean NOT NULL DEFAULT false);" \
	ROLLUP_TABLE("metrics_hour") ROLLUP_TABLE("metrics_day") \
	"  END IF;" \
	/* Stored, so rollups made before it are rewritten once, here. The tables are locked first \
	 * in the order reads take them (day, then hour), after the rollups' computing (which takes \
	 * hour, then day, under its advisory lock): neither waits on the migration holding what it \
	 * needs next. */ \
	"  IF NOT " ROLLUP_VALS_PRESENT " THEN" \
	"   PERFORM " LOCK_ROLLUPS ";" \
	"   LOCK TABLE metrics_day, metrics_hour IN ACCESS EXCLUSIVE MODE;" \
	"   ALTER TABLE metrics_hour ADD COLUMN IF NOT EXISTS vals bytea GENERATED ALWAYS AS (" ROLLUP_VALS_OF("") ") STORED;" \
	"   ALTER TABLE metrics_day ADD COLUMN IF NOT EXISTS vals bytea GENERATED ALWAYS AS (" ROLLUP_VALS_OF("") ") STORED;" \
	"   IF kind = 'p' AND EXISTS (SELECT 1 FROM metrics_hour) THEN" \
	"    done := concat_ws('; ', nullif(done, ''), format('packed the values of the rollups in one column for reads" \
	" (%s hour and %s day rollups rewritten)', (SELECT count(*) FROM metrics_hour), (SELECT count(*) FROM metrics_day)));" \
	"   END IF;" \
	"  END IF;" \
	"  IF to_regtype('m2pg_last') IS NULL THEN" \
	"   CREATE TYPE m2pg_last AS (bucket timestamptz, id uuid, value float8);" \
	"  END IF;" \
	/* Marks the hours of the rows a statement wrote or removed that are before the \
	 * watermark, sorted so that concurrent writers take the keys in one order; an hour \
	 * already dirty and not claimed is left alone, without a lock that would make writers of \
	 * the same hour wait for each other's commits. Most writes are for the open hour: a test \
	 * that reads only the rows and the watermark sends them away at the least cost. */ \
	"  CREATE OR REPLACE FUNCTION m2pg_rollup_mark() RETURNS trigger LANGUAGE plpgsql AS $f$" \
	"  BEGIN" \
	"   IF NOT EXISTS (SELECT 1 FROM m2pg_rows r, rollup_state s WHERE r.bucket < s.watermark) THEN" \
	"    RETURN NULL;" \
	"   END IF;" \
	"   INSERT INTO rollup_dirty (bucket) SELECT x.h FROM (SELECT DISTINCT " HOUR_OF("r.bucket") " AS h" \
	"    FROM m2pg_rows r, rollup_state s WHERE r.bucket < s.watermark) x" \
	"    WHERE NOT EXISTS (SELECT 1 FROM rollup_dirty d WHERE d.bucket = x.h AND NOT d.claimed) ORDER BY 1" \
	"    ON CONFLICT (bucket) DO UPDATE SET claimed = false WHERE rollup_dirty.claimed;" \
	"   RETURN NULL;" \
	"  END $f$;" \
	/* An UPDATE can move a row from one hour to another: both are marked. */ \
	"  CREATE OR REPLACE FUNCTION m2pg_rollup_mark_update() RETURNS trigger LANGUAGE plpgsql AS $f$" \
	"  BEGIN" \
	"   INSERT INTO rollup_dirty (bucket) SELECT x.h FROM (SELECT DISTINCT " HOUR_OF("r.bucket") " AS h" \
	"    FROM (SELECT bucket FROM m2pg_rows UNION ALL SELECT bucket FROM m2pg_new) r, rollup_state s" \
	"    WHERE r.bucket < s.watermark) x" \
	"    WHERE NOT EXISTS (SELECT 1 FROM rollup_dirty d WHERE d.bucket = x.h AND NOT d.claimed) ORDER BY 1" \
	"    ON CONFLICT (bucket) DO UPDATE SET claimed = false WHERE rollup_dirty.claimed;" \
	"   RETURN NULL;" \
	"  END $f$;" \
	"  IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'm2pg_rollup_insert' AND tgrelid = 'metrics'::regclass) THEN" \
	"   CREATE TRIGGER m2pg_rollup_insert AFTER INSERT ON metrics REFERENCING NEW TABLE AS m2pg_rows" \
	"    FOR EACH STATEMENT EXECUTE FUNCTION m2pg_rollup_mark();" \
	"   CREATE TRIGGER m2pg_rollup_delete AFTER DELETE ON metrics REFERENCING OLD TABLE AS m2pg_rows" \
	"    FOR EACH STATEMENT EXECUTE FUNCTION m2pg_rollup_mark();" \
	"  END IF;" \
	"  DROP TRIGGER IF EXISTS m2pg_rollup_update ON metrics;" \
	"  CREATE TRIGGER m2pg_rollup_update AFTER UPDATE ON metrics" \
	"   REFERENCING OLD TABLE AS m2pg_rows NEW TABLE AS m2pg_new" \
	"   FOR EACH STATEMENT EXECUTE FUNCTION m2pg_rollup_mark_update();" \
	/* Claims the hours to compute: the dirty ones, and those closed before p_until since the \
	 * watermark (on the first run, the hours holding rows, found by one scan, and every hour \
	 * of the last week, where writes land; and none before p_cut, RETENTION's cutoff, where \
	 * rollups start). First it forgets the dirty hours that start before p_cut: they were \
	 * rolled up when their rows were all there. Hours reached for the first time are rolled up \
	 * from what rows are left, even before p_cut (a gc stopped for longer than RETENTION), so \
	 * that their rollups answer what their rows would. Returns the claimed hours in order. */ \
	"  CREATE OR REPLACE FUNCTION m2pg_rollup_claim(p_until timestamptz, p_cut timestamptz)" \
	"   RETURNS SETOF timestamptz LANGUAGE plpgsql AS $f$" \
	"   DECLARE wm timestamptz; s timestamptz;" \
	"   BEGIN" \
	"    SELECT watermark INTO wm FROM rollup_state FOR UPDATE;" \
	"    p_until := date_trunc('hour', p_until, 'UTC');" \
	"    DELETE FROM rollup_dirty WHERE bucket < p_cut;" \
	"    IF wm < p_until THEN" \
	"     s := wm;" \
	"     IF wm = '-infinity' THEN" \
	"      s := date_trunc('hour', p_cut - interval '1 microsecond', 'UTC') + interval '1 hour';" \
	"      SELECT greatest(s, date_trunc('hour', min(bucket), 'UTC')) INTO s FROM metrics;" \
	"      UPDATE rollup_state SET kept_from = coalesce(s, p_until);" \
	"      INSERT INTO rollup_dirty (bucket, claimed)" \
	"       SELECT DISTINCT " HOUR_OF("bucket") ", true FROM metrics" \
	"       WHERE bucket >= s AND bucket < p_until - interval '168 hours'" \
	"       ON CONFLICT (bucket) DO UPDATE SET claimed = true;" \
	"      s := greatest(s, p_until - interval '168 hours');" \
	"     END IF;" \
	"     INSERT INTO rollup_dirty (bucket, claimed)" \
	"      SELECT g, true FROM generate_series(s, p_until - interval '1 hour', interval '1 hour') g" \
	"      ON CONFLICT (bucket) DO UPDATE SET claimed = true;" \
	"     UPDATE rollup_state SET watermark = p_until;" \
	"    END IF;" \
	"    UPDATE rollup_dirty SET claimed = true WHERE NOT claimed;" \
	"    RETURN QUERY SELECT bucket FROM rollup_dirty WHERE claimed ORDER BY bucket;" \
	"   END $f$;" \
	/* Computes claimed hours (sorted) from the rows, a run of consecutive hours of one day in \
	 * one statement, then the days they fall in that are before the watermark from the hours. \
	 * A run whose rows cannot be summed (a float underflow) stays dirty: reads use its rows. \
	 * Returns the hours computed and the hours that failed. Two gc processes compute one \
	 * after the other (an advisory lock), not into each other's rows. */ \
	"  CREATE OR REPLACE FUNCTION m2pg_rollup_compute(p_hours timestamptz[], OUT done int, OUT failed int)" \
	"   LANGUAGE plpgsql AS $f$" \
	"   DECLARE i int := 1; n int := coalesce(cardinality(p_hours), 0); lo timestamptz; hi timestamptz;" \
	"    d timestamptz; wm timestamptz;" \
	"   BEGIN" \
	"    PERFORM " LOCK_ROLLUPS ";" \
	"    done := 0; failed := 0;" \
	"    WHILE i <= n LOOP" \
	"     lo := p_hours[i]; hi := lo + interval '1 hour'; i := i + 1;" \
	"     WHILE i <= n AND p_hours[i] = hi AND date_trunc('day', hi, 'UTC') = date_trunc('day', lo, 'UTC') LOOP" \
	"      hi := hi + interval '1 hour'; i := i + 1;" \
	"     END LOOP;" \
	"     BEGIN" \
	"      DELETE FROM metrics_hour WHERE bucket >= lo AND bucket < hi;" \
	"      INSERT INTO metrics_hour (" ROLLUP_COLUMNS ")" \
	"       SELECT m.name, m.source, " HOUR_OF("m.bucket") ", " RAW_PARTS \
	"       FROM metrics m WHERE m.bucket >= lo AND m.bucket < hi GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;" \
	"      DELETE FROM rollup_dirty WHERE bucket >= lo AND bucket < hi AND claimed;" \
	"      done := done + (extract(epoch FROM hi - lo) / 3600)::int;" \
	"     EXCEPTION WHEN data_exception THEN" \
	"      failed := failed + (extract(epoch FROM hi - lo) / 3600)::int;" \
	"      RAISE WARNING 'm2pg: the rows of % to % cannot be rolled up: %', lo, hi, SQLERRM;" \
	"     END;" \
	"    END LOOP;" \
	"    SELECT watermark INTO wm FROM rollup_state;" \
	"    FOR d IN SELECT DISTINCT date_trunc('day', h, 'UTC') FROM unnest(p_hours) h LOOP" \
	"     CONTINUE WHEN d + interval '24 hours' > wm;" \
	"     DELETE FROM metrics_day WHERE bucket = d;" \
	"     INSERT INTO metrics_day (" ROLLUP_COLUMNS ")" \
	"      SELECT r.name, r.source, d, " SUM_PARTS " FROM metrics_hour r" \
	"      WHERE r.bucket >= d AND r.bucket < d + interval '24 hours' GROUP BY 1, 2;" \
	"    END LOOP;" \
	"   END $f$;" \
	/* Removes the rollups of the days before p_cut (ROLLUP_RETENTION's cutoff); rows there \
	 * are read again, if any are left. Returns the rollup rows removed. */ \
	"  CREATE OR REPLACE FUNCTION m2pg_rollup_expire(p_cut timestamptz) RETURNS bigint LANGUAGE plpgsql AS $f$" \
	"   DECLARE c timestamptz := date_trunc('day', p_cut, 'UTC'); a bigint; b bigint;" \
	"   BEGIN" \
	"    UPDATE rollup_state SET kept_from = c WHERE kept_from < c;" \
	"    DELETE FROM metrics_hour WHERE bucket < c;" \
	"    GET DIAGNOSTICS a = ROW_COUNT;" \
	"    DELETE FROM metrics_day WHERE bucket < c;" \
	"    GET DIAGNOSTICS b = ROW_COUNT;" \
	"    RETURN a + b;" \
	"   END $f$;" \
	/* How a read of [p_from, p_to] is answered: ranges [a, b) of kind d (day rollups; when \
	 * p_days), h (hour rollups) or r (rows), in order, covering the range once. A rollup \
	 * serves a whole hour (or UTC day) inside the range, after kept_from, before the watermark \
	 * and not dirty. A few ranges, as the planner is told (ROWS): at its default of 1,000, a \
	 * read's sums of rows sized their hash table for 17,000 groups and cleared it, 5 ms of a \
	 * database's 40 in bench-scale's hour read, for 100. */ \
	"  CREATE OR REPLACE FUNCTION m2pg_rollup_plan(p_from timestamptz, p_to timestamptz, p_days boolean)" \
	"   RETURNS TABLE (kind \"char\", a timestamptz, b timestamptz) LANGUAGE plpgsql STABLE ROWS 4 AS $f$" \
	"   DECLARE wm timestamptz; kf timestamptz; e timestamptz := p_to + interval '1 microsecond';" \
	"    dirty timestamptz[]; nd int; di int := 1; t timestamptz; nxt timestamptz; k \"char\"; ck \"char\";" \
	"    ca timestamptz; nx timestamptz; lim timestamptz; d0 timestamptz; d1 timestamptz;" \
	"   BEGIN" \
	"    SELECT s.watermark, s.kept_from INTO wm, kf FROM rollup_state s;" \
	"    wm := coalesce(wm, '-infinity'); kf := coalesce(kf, 'infinity');" \
	"    dirty := ARRAY(SELECT x.bucket FROM rollup_dirty x WHERE x.bucket >= p_from - interval '1 hour'" \
	"     AND x.bucket < e ORDER BY 1);" \
	"    nd := cardinality(dirty);" \
	"    t := p_from;" \
	"    WHILE t < e LOOP" \
	"     IF t >= wm THEN" \
	"      k := 'r'; nxt := e;" \
	"     ELSIF t < kf THEN" \
	"      k := 'r'; nxt := least(kf, e);" \
	"     ELSIF date_trunc('hour', t, 'UTC') <> t THEN" \
	"      k := 'r'; nxt := least(date_trunc('hour', t, 'UTC') + interval '1 hour', e);" \
	"     ELSE" \
	"      WHILE di <= nd AND dirty[di] < t LOOP di := di + 1; END LOOP;" \
	"      nx := CASE WHEN di <= nd THEN dirty[di] ELSE 'infinity' END;" \
	"      lim := least(nx, wm, date_trunc('hour', e, 'UTC'));" \
	"      IF nx = t THEN" \
	"       k := 'r'; nxt := least(t + interval '1 hour', e);" \
	"      ELSIF lim <= t THEN" \
	"       k := 'r'; nxt := e;" \
	"      ELSE" \
	"       k := 'h'; nxt := lim;" \
	"       d0 := date_trunc('day', t - interval '1 microsecond', 'UTC') + interval '24 hours';" \
	"       d1 := date_trunc('day', lim, 'UTC');" \
	"       IF p_days AND d0 < d1 THEN" \
	"        IF t < d0 THEN nxt := d0; ELSE k := 'd'; nxt := d1; END IF;" \
	"       END IF;" \
	"      END IF;" \
	"     END IF;" \
	"     IF ck IS DISTINCT FROM k THEN" \
	"      IF ck IS NOT NULL THEN kind := ck; a := ca; b := t; RETURN NEXT; END IF;" \
	"      ck := k; ca := t;" \
	"     END IF;" \
	"     t := nxt;" \
	"    END LOOP;" \
	"    IF ck IS NOT NULL THEN kind := ck; a := ca; b := e; RETURN NEXT; END IF;" \
	"   END $f$;"

/* Brings a database to m2pg's schema under an advisory lock, so that several processes can
 * start at once. The check that comes first is all a database already migrated costs (a few
 * catalogue lookups: SCHEMA_IS_CURRENT, the last objects each version added), so every
 * connection's setup runs it; the work is done once.
 *
 * metrics is partitioned by range of bucket, with a default partition for what arrives outside
 * the partitions made ahead (m2pg_partitions_make, below). An unpartitioned table (m2pg's own
 * before partitions, or the original m2pg's: bucket int, numeric values, a plain index on id)
 * is converted in place: its types first (as before partitions: that rewrites, once), then it
 * is renamed metrics_legacy and attached as the partition of every bucket before the next UTC
 * midnight after its last row. A CHECK constraint proved by one scan lets SET NOT NULL and
 * ATTACH skip theirs, and the parent's indexes adopt the ones it has (renamed out of the way),
 * so no row is rewritten. An empty table is simply replaced.
 *
 * The unique key is (id, bucket): a partitioned table's unique keys must hold the partition
 * key. Retries resend the same bucket, so a retried metric is still stored once. What it did
 * is left in the setting m2pg.migrated for `m2pg migrate` to report. */
#define SCHEMA_IS_CURRENT "to_regtype('m2pg_last') IS NOT NULL AND to_regclass('metric_names_bytewise') IS NOT NULL " \
	"AND " ROLLUP_VALS_PRESENT
#define MIGRATE_DO \
	"DO $m2pg$ DECLARE col text; t text; kind text; upper timestamptz; est bigint; done text := ''; BEGIN" \
	"  IF (SELECT relkind FROM pg_class WHERE oid = to_regclass('metrics')) = 'p'" \
	"     AND " SCHEMA_IS_CURRENT " THEN" \
	"   RETURN;" \
	"  END IF;" \
	"  PERFORM " LOCK_SCHEMA ";" \
	"  SELECT relkind::text INTO kind FROM pg_class WHERE oid = to_regclass('metrics');" \
	"  IF kind = 'p' AND " SCHEMA_IS_CURRENT " THEN" \
	"   RETURN;" \
	"  END IF;" \
	"  IF kind = 'r' THEN" \
	/* Nullable and without a default: adding it rewrites nothing, and rows written before \
	 * sources existed are unassigned. */ \
	"   ALTER TABLE metrics ADD COLUMN IF NOT EXISTS source text;" \
	"   SELECT format_type(atttypid, NULL) INTO t FROM pg_attribute" \
	"    WHERE attrelid = 'metrics'::regclass AND attname = 'bucket';" \
	"   IF t IN ('integer', 'bigint', 'numeric', 'double precision') THEN" \
	"    ALTER TABLE metrics ALTER COLUMN bucket TYPE timestamptz USING to_timestamp(bucket);" \
	"   END IF;" \
	"   FOREACH col IN ARRAY ARRAY['count','mean','median','min','max','perc95','perc99','last'] LOOP" \
	"    SELECT format_type(atttypid, NULL) INTO t FROM pg_attribute" \
	"     WHERE attrelid = 'metrics'::regclass AND attname = col;" \
	"    IF t <> 'double precision' THEN" \
	"     EXECUTE format('ALTER TABLE metrics ALTER COLUMN %I TYPE double precision', col);" \
	"    END IF;" \
	"   END LOOP;" \
	"   IF to_regclass('metric_names') IS NULL THEN" \
	"    CREATE TABLE metric_names (name text PRIMARY KEY);" \
	"    INSERT INTO metric_names SELECT DISTINCT name FROM metrics WHERE name IS NOT NULL;" \
	"   END IF;" \
	"   IF NOT EXISTS (SELECT 1 FROM metrics) THEN" \
	"    DROP TABLE metrics;" \
	"    kind := NULL;" \
	"    done := 'replaced the empty unpartitioned table';" \
	"   ELSE" \
	"    DELETE FROM metrics WHERE id IS NULL OR bucket IS NULL OR name IS NULL;" \
	"    IF to_regclass('metrics_id_key') IS NULL THEN" \
	"     DELETE FROM metrics a USING metrics b WHERE a.id = b.id AND a.ctid < b.ctid;" \
	"    END IF;" \
	"    CREATE UNIQUE INDEX metrics_legacy_id_bucket_key ON metrics (id, bucket);" \
	"    DROP INDEX IF EXISTS metrics_id_key;" \
	"    DROP INDEX IF EXISTS metrics_by_id;" \
	"    IF to_regclass('metrics_by_name_bucket') IS NOT NULL THEN" \
	"     ALTER INDEX metrics_by_name_bucket RENAME TO metrics_legacy_name_bucket;" \
	"    END IF;" \
	"    IF to_regclass('metrics_bucket_brin') IS NOT NULL THEN" \
	"     ALTER INDEX metrics_bucket_brin RENAME TO metrics_legacy_bucket_brin;" \
	"    END IF;" \
	"    SELECT date_trunc('day', max(bucket), 'UTC') + interval '1 day' INTO upper FROM metrics;" \
	"    ALTER TABLE metrics RENAME TO metrics_legacy;" \
	"    EXECUTE format('ALTER TABLE metrics_legacy ADD CONSTRAINT metrics_legacy_range CHECK (id IS NOT NULL" \
	"     AND bucket IS NOT NULL AND name IS NOT NULL AND bucket < %L)', upper);" \
	"    ALTER TABLE metrics_legacy ALTER COLUMN id SET NOT NULL, ALTER COLUMN bucket SET NOT NULL," \
	"     ALTER COLUMN name SET NOT NULL;" \
	"   END IF;" \
	"  END IF;" \
	"  IF kind IS NULL OR kind = 'r' THEN" \
	"   CREATE TABLE metrics (" \
	"    id uuid NOT NULL, bucket timestamptz NOT NULL, name text NOT NULL," \
	"    count double precision, mean double precision, median double precision," \
	"    min double precision, max double precision, perc95 double precision," \
	"    perc99 double precision, last double precision, source text) PARTITION BY RANGE (bucket);" \
	"   CREATE UNIQUE INDEX metrics_id_bucket_key ON metrics (id, bucket);" \
	"   CREATE INDEX metrics_by_name_bucket ON metrics (name, bucket);" \
	"   CREATE INDEX metrics_bucket_brin ON metrics USING brin (bucket);" \
	"   IF kind = 'r' THEN" \
	"    EXECUTE format('ALTER TABLE metrics ATTACH PARTITION metrics_legacy FOR VALUES FROM (MINVALUE) TO (%L)', upper);" \
	"    ALTER TABLE metrics_legacy DROP CONSTRAINT metrics_legacy_range;" \
	"    SELECT greatest(reltuples, 0)::bigint INTO est FROM pg_class WHERE oid = 'metrics_legacy'::regclass;" \
	"    done := format('converted the unpartitioned table in place: partition metrics_legacy holds every bucket" \
	" before %s (about %s rows, none rewritten)', upper, est);" \
	"   ELSIF done = '' THEN" \
	"    done := 'created the partitioned table';" \
	"   END IF;" \
	"   CREATE TABLE metrics_default PARTITION OF metrics DEFAULT;" \
	"  END IF;" \
	"  IF to_regclass('metric_names') IS NULL THEN" \
	"   CREATE TABLE metric_names (name text PRIMARY KEY);" \
	"   INSERT INTO metric_names SELECT DISTINCT name FROM metrics;" \
	"  END IF;" \
	/* A trigram index lets the name regex skip most of the catalogue, even in a prepared \
	 * statement's generic plan. pg_trgm ships with PostgreSQL and is trusted since 13; where \
	 * it cannot be had, names are scanned. */ \
	"  IF to_regclass('metric_names_trgm') IS NULL THEN" \
	"   BEGIN" \
	"    CREATE EXTENSION IF NOT EXISTS pg_trgm;" \
	"    CREATE INDEX metric_names_trgm ON metric_names USING gin (name gin_trgm_ops);" \
	"   EXCEPTION WHEN OTHERS THEN" \
	"    RAISE NOTICE 'no trigram index on metric_names: %', SQLERRM;" \
	"   END;" \
	"  END IF;" \
	/* In byte order (collation "C"), an index lets the planner read an anchored regex's \
	 * literal prefix as a range: ^scale\.s00 reads the names from scale.s00 to scale.s01. \
	 * PostgreSQL 15 cannot do that with the primary key, which is in the database's collation \
	 * (C.UTF-8 too): a read of 100 of 10,400 names matched the regex against every one, 3.9 ms \
	 * a read in each database, where the range takes 0.1 ms. The regex still decides. */ \
	"  IF to_regclass('metric_names_bytewise') IS NULL THEN" \
	"   CREATE INDEX metric_names_bytewise ON metric_names (name COLLATE \"C\");" \
	"   IF done = '' AND kind = 'p' THEN" \
	"    done := 'added the index of metric_names in byte order';" \
	"   END IF;" \
	"  END IF;" \
	/* An edit of the catalogue behind m2pg's back: before it, wait for the inserts in flight \
	 * (they hold ROW EXCLUSIVE on metric_names), keep new ones out until it commits, and bump \
	 * the generation, so an insert either ran before the edit or sees the new generation; after \
	 * it, put back every name that still has rows. */ \
	"  IF to_regclass('metric_names_gen') IS NULL THEN" \
	"   CREATE TABLE metric_names_gen (gen bigint NOT NULL);" \
	"   INSERT INTO metric_names_gen VALUES (0);" \
	"  END IF;" \
	/* A loose index scan of a partition's (name, bucket) index: one descent per distinct \
	 * name, adding those the catalogue lacks. Over the partitioned table each step descended \
	 * every partition's index again (3 s a database at 14 days of 1,000 series, against 0.7 s). \
	 * A partition dropped by another gc meanwhile is passed over (NULL). */ \
	"  CREATE OR REPLACE FUNCTION m2pg_names_fill_part(p text) RETURNS bigint LANGUAGE plpgsql AS $f$" \
	"   DECLARE c bigint;" \
	"   BEGIN" \
	"    EXECUTE format('INSERT INTO metric_names (name) SELECT name FROM (WITH RECURSIVE n(name) AS (" \
	"     (SELECT name FROM %1$s ORDER BY name LIMIT 1) UNION ALL" \
	"     SELECT (SELECT m.name FROM %1$s m WHERE m.name > n.name ORDER BY m.name LIMIT 1)" \
	"     FROM n WHERE n.name IS NOT NULL) SELECT name FROM n) x WHERE name IS NOT NULL" \
	"     AND NOT EXISTS (SELECT 1 FROM metric_names c WHERE c.name = x.name) ON CONFLICT DO NOTHING', p);" \
	"    GET DIAGNOSTICS c = ROW_COUNT;" \
	"    RETURN c;" \
	"   EXCEPTION WHEN undefined_table THEN" \
	"    RETURN NULL;" \
	"   END $f$;" \
	"  CREATE OR REPLACE FUNCTION m2pg_names_fill() RETURNS bigint LANGUAGE sql AS $f$" \
	"   SELECT coalesce(sum(m2pg_names_fill_part(inhrelid::regclass::text)), 0)::bigint" \
	"   FROM pg_inherits WHERE inhparent = 'metrics'::regclass" \
	"  $f$;" \
	/* What gc fills: the partitions written since they were last filled, told by the \
	 * server's own counters, which count every insert and update, COPY and writes with \
	 * triggers off included: a partition whose file, inserted or updated rows changed. \
	 * Everything when the catalogue itself was edited (a delete, an update, a truncate), \
	 * when counters are off, or once a day whatever they say (a crash resets them). The \
	 * counters are read before the scans: a write they have not counted yet changes them \
	 * later, and its partition is filled by the next gc. One gc fills at a time: two could \
	 * scan different partitions and add the same new names in different orders, waiting on \
	 * each other; the other skips (scanned 0), and the next cycle catches up. */ \
	"  IF to_regclass('metric_names_filled') IS NULL THEN" \
	"   CREATE TABLE metric_names_filled (rel oid PRIMARY KEY, sig text NOT NULL, at timestamptz NOT NULL);" \
	"  END IF;" \
	"  CREATE OR REPLACE FUNCTION m2pg_names_fill_changed(OUT added bigint, OUT scanned integer, OUT partitions integer)" \
	"   LANGUAGE plpgsql AS $f$" \
	"   DECLARE v_rels oid[]; v_names text[]; v_sigs text[]; v_cat text; v_all boolean; c bigint;" \
	"   BEGIN" \
	"    added := 0; scanned := 0; partitions := 0;" \
	"    IF NOT pg_try_advisory_xact_lock(7235188475) THEN RETURN; END IF;" \
	"    SELECT coalesce(array_agg(x.rel ORDER BY x.rel), '{}'), coalesce(array_agg(x.rel::regclass::text ORDER BY x.rel), '{}')," \
	"     coalesce(array_agg(concat_ws(' ', pg_relation_filenode(x.rel)," \
	"      pg_stat_get_tuples_inserted(x.rel), pg_stat_get_tuples_updated(x.rel)) ORDER BY x.rel), '{}')" \
	"     INTO v_rels, v_names, v_sigs FROM (SELECT i.inhrelid AS rel FROM pg_inherits i" \
	"     WHERE i.inhparent = 'metrics'::regclass) x;" \
	"    v_cat := concat_ws(' ', pg_relation_filenode('metric_names'), pg_stat_get_tuples_updated('metric_names'::regclass)," \
	"     pg_stat_get_tuples_deleted('metric_names'::regclass));" \
	"    v_all := current_setting('track_counts') <> 'on' OR NOT EXISTS (SELECT 1 FROM metric_names_filled" \
	"     WHERE rel = 'metric_names'::regclass AND sig = v_cat AND at > now() - interval '1 day');" \
	"    partitions := coalesce(array_length(v_rels, 1), 0);" \
	"    FOR k IN 1 .. partitions LOOP" \
	"     CONTINUE WHEN NOT v_all AND EXISTS (SELECT 1 FROM metric_names_filled WHERE rel = v_rels[k] AND sig = v_sigs[k]);" \
	"     c := m2pg_names_fill_part(v_names[k]);" \
	"     CONTINUE WHEN c IS NULL;" \
	"     added := added + c;" \
	"     scanned := scanned + 1;" \
	"     INSERT INTO metric_names_filled VALUES (v_rels[k], v_sigs[k], now())" \
	"      ON CONFLICT (rel) DO UPDATE SET sig = excluded.sig, at = excluded.at;" \
	"    END LOOP;" \
	"    DELETE FROM metric_names_filled WHERE rel <> 'metric_names'::regclass AND rel <> ALL (v_rels);" \
	"    IF v_all THEN" \
	"     INSERT INTO metric_names_filled VALUES ('metric_names'::regclass, v_cat, now())" \
	"      ON CONFLICT (rel) DO UPDATE SET sig = excluded.sig, at = excluded.at;" \
	"    END IF;" \
	"   END $f$;" \
	"  CREATE OR REPLACE FUNCTION m2pg_names_edit() RETURNS trigger LANGUAGE plpgsql AS $f$" \
	"  BEGIN" \
	"   IF TG_WHEN = 'BEFORE' THEN" \
	"    LOCK TABLE metric_names IN SHARE ROW EXCLUSIVE MODE;" \
	"    UPDATE metric_names_gen SET gen = gen + 1;" \
	"   ELSE" \
	"    PERFORM m2pg_names_fill();" \
	"   END IF;" \
	"   RETURN NULL;" \
	"  END $f$;" \
	"  IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'm2pg_names_edit_before'" \
	"                 AND tgrelid = 'metric_names'::regclass) THEN" \
	"   CREATE TRIGGER m2pg_names_edit_before BEFORE DELETE OR UPDATE OR TRUNCATE ON metric_names" \
	"    FOR EACH STATEMENT EXECUTE FUNCTION m2pg_names_edit();" \
	"   CREATE TRIGGER m2pg_names_edit_after AFTER DELETE OR UPDATE OR TRUNCATE ON metric_names" \
	"    FOR EACH STATEMENT EXECUTE FUNCTION m2pg_names_edit();" \
	"  END IF;" \
	/* The partitions of metrics and their bounds (-infinity and infinity for MINVALUE and \
	 * MAXVALUE; NULL for the default partition), read back from the catalogue's text of each \
	 * bound, which this session's own timestamptz input reads back exactly. */ \
	"  CREATE OR REPLACE FUNCTION m2pg_partitions() RETURNS TABLE (partition text, lo timestamptz," \
	"   hi timestamptz, is_default boolean, est_rows bigint) LANGUAGE sql STABLE AS $f$" \
	"   SELECT relname::text," \
	"    CASE WHEN b IS NULL THEN NULL WHEN b[1] = 'MINVALUE' THEN '-infinity' ELSE btrim(b[1], '''')::timestamptz END," \
	"    CASE WHEN b IS NULL THEN NULL WHEN b[2] = 'MAXVALUE' THEN 'infinity' ELSE btrim(b[2], '''')::timestamptz END," \
	"    b IS NULL, greatest(reltuples, 0)::bigint" \
	"   FROM (SELECT c.relname, c.reltuples," \
	"          regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \\((.*)\\) TO \\((.*)\\)') AS b" \
	"         FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid" \
	"         WHERE i.inhparent = to_regclass('metrics')) p" \
	"  $f$;" \
	/* Makes the partitions of a grid of p_days-wide ranges (from the Unix epoch, in UTC) \
	 * that cover [p_from, p_to], leaving out what existing partitions cover (metrics_legacy, \
	 * or a grid of another width), and returns the partitions made with the rows each took \
	 * over from the default partition. A partition cannot be attached over rows the default \
	 * partition holds for its range, so those rows move in the same transaction: they are \
	 * deleted from the default partition (locked against inserts until the commit) into the \
	 * new table before it is attached. Each table is made alone and then attached: ATTACH \
	 * takes a lock on metrics that reads and inserts do not wait for (CREATE TABLE PARTITION \
	 * OF would block them both), and lock_timeout keeps it from queueing them behind a long \
	 * statement: a partition not made now is made by the next call, days ahead of need. */ \
	"  CREATE OR REPLACE FUNCTION m2pg_partitions_make(p_from timestamptz, p_to timestamptz, p_days integer)" \
	"   RETURNS TABLE (partition text, moved bigint) LANGUAGE plpgsql AS $f$" \
	"   DECLARE w bigint := 86400::bigint * greatest(p_days, 1); v_s timestamptz; v_e timestamptz;" \
	"    v_lo timestamptz; v_up timestamptz; v_nb timestamptz;" \
	"   BEGIN" \
	"    PERFORM " LOCK_SCHEMA ";" \
	"    PERFORM set_config('lock_timeout', '5s', true);" \
	"    v_s := to_timestamp(floor(extract(epoch FROM p_from) / w) * w);" \
	"    WHILE v_s <= p_to LOOP" \
	"     v_e := v_s + make_interval(secs => w);" \
	"     v_lo := v_s;" \
	"     WHILE v_lo < v_e LOOP" \
	"      SELECT p.hi INTO v_up FROM m2pg_partitions() p WHERE NOT p.is_default AND p.lo <= v_lo AND p.hi > v_lo;" \
	"      IF FOUND THEN" \
	"       v_lo := v_up;" \
	"       CONTINUE;" \
	"      END IF;" \
	"      SELECT min(p.lo) INTO v_nb FROM m2pg_partitions() p WHERE NOT p.is_default AND p.lo > v_lo;" \
	"      v_up := least(v_e, coalesce(v_nb, v_e));" \
	"      partition := 'metrics_p' || to_char(v_lo AT TIME ZONE 'UTC', 'YYYYMMDD');" \
	"      EXECUTE format('CREATE TABLE %I (LIKE metrics INCLUDING DEFAULTS)', partition);" \
	"      moved := 0;" \
	"      IF to_regclass('metrics_default') IS NOT NULL THEN" \
	"       LOCK TABLE metrics_default IN SHARE ROW EXCLUSIVE MODE;" \
	"       EXECUTE format('WITH m AS (DELETE FROM metrics_default WHERE bucket >= $1 AND bucket < $2" \
	"        RETURNING " METRICS_COLUMNS ") INSERT INTO %I (" METRICS_COLUMNS ") SELECT * FROM m'," \
	"        partition) USING v_lo, v_up;" \
	"       GET DIAGNOSTICS moved = ROW_COUNT;" \
	"      END IF;" \
	"      EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (bucket >= %L AND bucket < %L)'," \
	"       partition, partition || '_range', v_lo, v_up);" \
	"      EXECUTE format('ALTER TABLE metrics ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)'," \
	"       partition, v_lo, v_up);" \
	"      EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', partition, partition || '_range');" \
	"      RETURN NEXT;" \
	"      v_lo := v_up;" \
	"     END LOOP;" \
	"     v_s := v_e;" \
	"    END LOOP;" \
	"   END $f$;" \
	ROLLUP_DO \
	"  PERFORM set_config('m2pg.migrated', done, true);" \
	" END $m2pg$"

const char SCHEMA_SETUP_SQL[] = "SET client_min_messages = warning;" MIGRATE_DO ";";

/* JIT compiles a plan whose estimated cost passes jit_above_cost, and a read of 14 days
 * estimates its rows part high whatever it finds: bench-scale measured the same aggregate at
 * 532 ms with JIT and 285 ms without (190 and 36 ms at day resolution), the compiling being
 * most of it. m2pg's statements are short, so its sessions never compile. A read of 100 names
 * over 14 days at hour resolution sorts 33,600 groups (8 MB), which spilled to disk at the
 * default 4 MB of work_mem. */
const char SCHEMA_SESSION_SQL[] = "SET jit = off; SET work_mem = '32MB';";

/* Without BEGIN: the statements of one simple query are one transaction, so the setting the
 * migration leaves (transaction-local) is still there for the SELECT that reports it. */
const char SCHEMA_MIGRATE_SQL[] =
	"SET client_min_messages = warning;" MIGRATE_DO "; SELECT coalesce(current_setting('m2pg.migrated', true), '')";

const char SCHEMA_PARTITIONS_MAKE_SQL[] =
	"SELECT partition, moved FROM m2pg_partitions_make(now(), now() + make_interval(days => $1::int), $2::int)";

const char SCHEMA_PARTITIONS_OLD_SQL[] =
	"SELECT partition, is_default, est_rows, hi <= $1::timestamptz, "
	"NOT is_default AND lo > '-infinity' AND hi < 'infinity' AND $1::timestamptz - lo < (hi - lo) / 4 "
	"FROM m2pg_partitions() "
	"WHERE is_default OR lo < $1::timestamptz ORDER BY lo NULLS LAST";

const char SCHEMA_ROLLUP_CLAIM_SQL[] = "SELECT h FROM m2pg_rollup_claim($1::timestamptz, $2::timestamptz) h";

/* A write to metrics holds a lock on it until it ends, and every transaction that wrote holds
 * the lock on its own id: the ids of those holding both. */
const char SCHEMA_ROLLUP_WRITERS_SQL[] =
	"SELECT coalesce(array_agg(DISTINCT t.transactionid::text), '{}') FROM pg_locks r JOIN pg_locks t "
	"ON t.pid = r.pid AND t.locktype = 'transactionid' AND t.mode = 'ExclusiveLock' AND t.granted "
	"WHERE r.locktype = 'relation' AND r.relation = 'metrics'::regclass AND r.pid <> pg_backend_pid()";
const char SCHEMA_ROLLUP_WRITERS_LEFT_SQL[] =
	"SELECT count(*) FROM pg_locks WHERE locktype = 'transactionid' AND mode = 'ExclusiveLock' AND granted "
	"AND transactionid::text = ANY ($1::text[])";
const char SCHEMA_ROLLUP_COMPUTE_SQL[] = "SELECT done, failed FROM m2pg_rollup_compute($1::timestamptz[])";
const char SCHEMA_ROLLUP_EXPIRE_SQL[] = "SELECT m2pg_rollup_expire($1::timestamptz)";
const char SCHEMA_STORE_STATUS_SQL[] =
	"SELECT count(*) FILTER (WHERE NOT p.is_default), coalesce(sum(p.est_rows) FILTER (WHERE p.is_default), 0)::int8, "
	"(SELECT CASE WHEN watermark = '-infinity' THEN -1 ELSE extract(epoch FROM now() - watermark)::int8 END "
	"FROM rollup_state), (SELECT count(*) FROM rollup_dirty) FROM m2pg_partitions() p";

/* ---------- repair by rollups ----------
 *
 * An hour that is clean in every database (after kept_from, before the watermark, not dirty)
 * has, in metrics_hour, each group's row count and id digest: repair compares those instead
 * of reading rows, and reads the ids of the groups that differ only. Timestamps are binary
 * results (PostgreSQL microseconds, infinities as the extreme int8). */
const char SCHEMA_REPAIR_STATE_SQL[] =
	"SELECT s.watermark, s.kept_from, d.bucket FROM (SELECT * FROM rollup_state LIMIT 1) s "
	"LEFT JOIN rollup_dirty d ON d.bucket >= $1::timestamptz AND d.bucket < $2::timestamptz";
const char SCHEMA_REPAIR_HOURS_SQL[] =
	"SELECT bucket, sum(n)::int8, bit_xor(h1), bit_xor(h2) FROM metrics_hour "
	"WHERE bucket >= $1::timestamptz AND bucket < $2::timestamptz GROUP BY 1 ORDER BY 1";
/* The same totals per UTC day, from the day rollups (gc computes a day from its hours). */
const char SCHEMA_REPAIR_DAYS_SQL[] =
	"SELECT bucket, sum(n)::int8, bit_xor(h1), bit_xor(h2) FROM metrics_day "
	"WHERE bucket >= $1::timestamptz AND bucket < $2::timestamptz GROUP BY 1 ORDER BY 1";
/* Unsorted: repair sorts them in byte order, unassigned first, the same for every database. */
const char SCHEMA_REPAIR_GROUPS_SQL[] =
	"SELECT bucket, name, source, n, h1, h2 FROM metrics_hour WHERE bucket = ANY ($1::timestamptz[])";
/* A UTC day's series, from the day rollups, in the columns of SCHEMA_REPAIR_GROUPS_SQL; and
 * the hour groups of some names ($3) in [$1, $2). */
const char SCHEMA_REPAIR_DAY_SERIES_SQL[] =
	"SELECT bucket, name, source, n, h1, h2 FROM metrics_day WHERE bucket = $1::timestamptz";
const char SCHEMA_REPAIR_SERIES_GROUPS_SQL[] =
	"SELECT bucket, name, source, n, h1, h2 FROM metrics_hour WHERE name = ANY ($3::text[]) "
	"AND bucket >= $1::timestamptz AND bucket < $2::timestamptz";
/* The rows of groups ($1 names, $2 and $3 their hours, $4 sources), all inside [$5, $6), id first: an index
 * descent per group, in the partitions of [$5, $6) only. As a join, the planner misjudged the
 * groups' rows and hashed them against a scan of every partition: 6.8 s for 636 groups of one
 * day at 20 million rows, where the descents take 0.14 s. */
const char SCHEMA_REPAIR_IDS_SQL[] =
	"SELECT m.* FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[], $4::text[]) "
	"AS g(name, lo, hi, source) CROSS JOIN LATERAL (SELECT " METRICS_COLUMNS " FROM metrics m WHERE m.name = g.name "
	"AND m.bucket >= g.lo AND m.bucket < g.hi AND m.bucket >= $5::timestamptz AND m.bucket < $6::timestamptz "
	"AND m.source IS NOT DISTINCT FROM g.source OFFSET 0) m";
/* Rows by id ($1) in [$2, $3), in the columns of METRICS_COLUMNS. */
const char SCHEMA_REPAIR_FETCH_SQL[] =
	"SELECT m.* FROM unnest($1::uuid[]) AS k(id) CROSS JOIN LATERAL (SELECT " METRICS_COLUMNS " FROM metrics m "
	"WHERE m.id = k.id AND m.bucket >= $2::timestamptz AND m.bucket < $3::timestamptz OFFSET 0) m";
/* The same groups' ids from one scan of [$5, $6): where they hold much of its rows, one scan
 * beats an index descent per group, which reads a group's rows from as many pages when rows are
 * stored in time order. Run with nested loops and merge joins off, it is a hash semi-join on
 * (name, hour). */
const char SCHEMA_REPAIR_RANGE_IDS_SQL[] =
	"DECLARE m2pg_repair_ids NO SCROLL CURSOR FOR SELECT m.id FROM metrics m "
	"WHERE m.bucket >= $5::timestamptz AND m.bucket < $6::timestamptz AND EXISTS (SELECT FROM "
	"unnest($1::text[], $2::timestamptz[], $3::timestamptz[], $4::text[]) AS g(name, lo, hi, source) "
	"WHERE g.name = m.name AND g.lo = " HOUR_OF("m.bucket") " "
	"AND g.source IS NOT DISTINCT FROM m.source)";
/* No index has bucket first, so min(bucket) reads every row: the rollups know the earliest
 * hour of what they cover, and only the rows outside it are read (the pruned partitions
 * before kept_from; after the watermark only when the rollups hold nothing). It may be an
 * hour early, never late. */
const char SCHEMA_REPAIR_EARLIEST_SQL[] =
	"SELECT (extract(epoch FROM coalesce(least("
	"(SELECT min(bucket) FROM metrics WHERE bucket < (SELECT kept_from FROM rollup_state)), "
	"(SELECT min(bucket) FROM metrics_hour), (SELECT min(bucket) FROM rollup_dirty)), "
	"(SELECT min(bucket) FROM metrics WHERE bucket >= (SELECT watermark FROM rollup_state)))) "
	"* 1000000)::bigint";

/* Reads: the catalogue narrows the regex to names, then the (name, bucket) index finds rows.
 * $5 (or $6 in the aggregate) is a regex on sources, NULL for any: a read is planned for its
 * own parameters each time (see below), so the test of NULL costs nothing. By source: a
 * series per (name, source), unassigned first, so the merge sees each one's rows together. */
#define ROW_COLUMNS "m.id, m.bucket, m.name, m.count, m.mean, m.median, m.min, m.max, m.perc95, " \
		    "m.perc99, m.last, m.source"
#define NAME_MATCH "m.name = ANY (ARRAY(SELECT name FROM metric_names WHERE name ~ $1))"
#define SOURCE_MATCH(p) " AND (" p "::text IS NULL OR m.source ~ " p ")"
#define ROWS_SQL(order) \
	"SELECT " ROW_COLUMNS " FROM metrics m " \
	"WHERE " NAME_MATCH " AND m.bucket >= $2 AND m.bucket <= $3" SOURCE_MATCH("$5") \
	" ORDER BY m.name COLLATE \"C\", " order "m.bucket, m.id LIMIT $4"

const char SCHEMA_ROWS_SQL[] = ROWS_SQL("");
const char SCHEMA_ROWS_BY_SOURCE_SQL[] = ROWS_SQL("m.source COLLATE \"C\" NULLS FIRST, ");

/* An aggregate: per group of resolution $5 (an hour or coarser), the ROLLUP_PARTS up to last,
 * from the day and hour rollups where they serve (m2pg_rollup_plan) and from the rows for the
 * rest, which are the same sums: a group's row count and id digest are those of its rows
 * whichever answers, so the databases are compared as before. AGG_PARTS are those parts, one
 * row per rollup row or group of rows, each with its source and group of the resolution. */
/* The sums' parts: per range of the plan, a join. */
#define AGG_PART(table, kind) "SELECT r.name, r.source, r.bucket, " ROLLUP_PARTS_OF("r") " FROM p " ROLLUP_JOIN(table, kind)
#define ROLLUP_JOIN(table, kind) \
	"JOIN " table " r ON r.name = ANY ((SELECT a FROM nm)::text[]) AND r.bucket >= p.a AND r.bucket < p.b " \
	"WHERE p.kind = '" kind "'" SOURCE_MATCH_OF("r", "$6")
#define ROLLUP_PARTS_OF(r) r ".n, " r ".h1, " r ".h2, " ROLLUP_VALUES_OF(r)
#define ROLLUP_VALUES_OF(r) r ".count_n, " r ".count_sum, " \
	r ".mean_n, " r ".mean_min, " r ".mean_wsum, " r ".mean_wcount, " r ".mean_nc, " r ".mean_sum, " \
	r ".median_n, " r ".median_min, " r ".median_wsum, " r ".median_wcount, " r ".median_nc, " r ".median_sum, " \
	r ".min, " r ".max, " r ".perc95, " r ".perc99, " r ".last, " r ".last_bucket, " r ".last_id"
#define SOURCE_MATCH_OF(r, p) " AND (" p "::text IS NULL OR " r ".source ~ " p ")"
#define AGG_PARTS \
	"WITH nm AS MATERIALIZED (SELECT ARRAY(SELECT name FROM metric_names WHERE name ~ $1) AS a), " \
	"p AS MATERIALIZED (SELECT * FROM m2pg_rollup_plan($2, $3, $5 <> 'hour')), " \
	"u AS (" AGG_PART("metrics_day", "d") " UNION ALL " AGG_PART("metrics_hour", "h") " UNION ALL " \
	"SELECT m.name, m.source, " TRUNC_TO("$5", "m.bucket") ", " RAW_PARTS " FROM p JOIN metrics m " \
	"ON m.name = ANY ((SELECT a FROM nm)::text[]) AND m.bucket >= p.a AND m.bucket < p.b " \
	"WHERE p.kind = 'r'" SOURCE_MATCH("$6") " GROUP BY 1, 2, 3) "
/* The parts sent one by one: the same, for a plan (plan) of ranges whose parts' values are
 * wanted or not (v), each part with its range's kind (k). Hours and rows are lateral
 * subqueries (OFFSET 0 keeps them so), with the range's bounds in their index scans: as
 * joins to a plan of three calls (then estimated at 1,000 rows each), the rows of every hour
 * of the names were read and filtered after. Days are few and found by name. The sums keep the
 * joins: with these columns and subqueries the planner hashed their groups, and took twice as
 * long. */
#define SLICE_COLS "SELECT r.name, r.source, r.bucket, p.kind AS k, p.v, r.vals FROM p "
#define SLICE_PARTS_OF(plan) \
	"WITH nm AS MATERIALIZED (SELECT ARRAY(SELECT name FROM metric_names WHERE name ~ $1) AS a), " \
	"p AS MATERIALIZED (" plan "), " \
	"u AS (" SLICE_COLS ROLLUP_JOIN("metrics_day", "d") " UNION ALL " SLICE_COLS "CROSS JOIN LATERAL " \
	"(SELECT * FROM metrics_hour r WHERE r.name = ANY ((SELECT a FROM nm)::text[]) AND r.bucket >= p.a " \
	"AND r.bucket < p.b" SOURCE_MATCH_OF("r", "$6") " OFFSET 0) r WHERE p.kind = 'h' UNION ALL " \
	"SELECT x.name, x.source, x.bucket, x.k, x.v, " ROLLUP_VALS_OF("x.") " FROM (SELECT m.name, m.source, " \
	TRUNC_TO("$5", "m.bucket") ", p.kind, p.v, " RAW_PARTS " FROM p CROSS JOIN LATERAL " \
	"(SELECT * FROM metrics m WHERE m.name = ANY ((SELECT a FROM nm)::text[]) AND m.bucket >= p.a " \
	"AND m.bucket < p.b" SOURCE_MATCH("$6") " OFFSET 0) m WHERE p.kind = 'r' GROUP BY 1, 2, 3, 4, 5) " \
	"x (name, source, bucket, k, v, " ROLLUP_PART_COLUMNS ")) "
/* The parts are sorted by group first, so that each group's sums are computed when its parts
 * have passed: the planner's other choice, a hash table of every group's sums, took twice as
 * long at 33,600 groups (bench-scale's read (a) summed in SQL, 400 ms against 245). */
#define AGG_SQL(source, group, order) AGG_PARTS \
	"SELECT r.k, " source ", r.g, " SUM_PARTS_TO_LAST " FROM (SELECT u.*, u.name COLLATE \"C\" AS k, " \
	"u.source COLLATE \"C\" AS s, " TRUNC_TO("$5", "u.bucket") " AS g FROM u ORDER BY " order ") r " \
	"GROUP BY " group " ORDER BY " order " LIMIT $4"

const char SCHEMA_AGG_SQL[] = AGG_SQL("NULL::text", "r.k, r.g", "k, g");
const char SCHEMA_AGG_BY_SOURCE_SQL[] = AGG_SQL("r.s", "r.k, r.s, r.g", "k, s NULLS FIRST, g");
/* The parts themselves, unsorted, for m2pg to sort and add up: at an hour or a day, where a
 * group is mostly one part, this skips the server's sort (names by byte) and aggregate, which
 * at 100 names x 14 days of hours took 95 of the statement's 155 ms. m2pg gives each database
 * a slice of the range, [$7, $8): there it sends its parts at the read's resolution with their
 * values, its rollup row's vals; outside only their first 24 bytes, each part's row count and
 * id digest, from the day rollups where whole days are served (at an hour, a 25th byte of 1
 * marks such a day), so that every database sends what the comparison needs and a share of the
 * values. Sending is what a part costs, per field more than per byte: 100 names x 14 days of
 * hours took a database 110 ms as 27 columns, 76 ms with the values as a record, 51 ms with
 * half of them, 45 ms with the digests one field, 40 ms with days outside its slice; on
 * bench-scale's 20 million rows, 56 to 64 ms with the values as a record and 40 to 43 ms as
 * vals (4.5 MB where it was 7.1). */
const char SCHEMA_AGG_PARTS_SQL[] = SLICE_PARTS_OF(
	"SELECT *, true AS v FROM m2pg_rollup_plan(greatest($2::timestamptz, $7::timestamptz), "
	"least($3::timestamptz, $8::timestamptz - interval '1 microsecond'), $5 <> 'hour') UNION ALL "
	"SELECT *, false FROM m2pg_rollup_plan($2, least($3::timestamptz, $7::timestamptz - interval '1 microsecond'), true) "
	"UNION ALL SELECT *, false FROM m2pg_rollup_plan(greatest($2::timestamptz, $8::timestamptz), $3, true)")
	"SELECT r.name, r.source, " TRUNC_TO("$5", "r.bucket") ", CASE WHEN r.v THEN r.vals ELSE substr(r.vals, 1, 24) || "
	"CASE WHEN r.k = 'd' AND $5 = 'hour' THEN '\\x01'::bytea ELSE '\\x'::bytea END END FROM u r LIMIT $4";

/* Rows of the groups that differ: $1 names, $2 and $3 inclusive bounds, as binary arrays; $5
 * the source regex, or by source the groups' sources (binary, NULL: unassigned). */
const char SCHEMA_GROUP_ROWS_SQL[] =
	"SELECT " ROW_COLUMNS " FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS g(name, lo, hi) "
	"JOIN metrics m ON m.name = g.name AND m.bucket >= g.lo AND m.bucket <= g.hi" SOURCE_MATCH("$5")
	" LIMIT $4";
const char SCHEMA_GROUP_ROWS_BY_SOURCE_SQL[] =
	"SELECT " ROW_COLUMNS " FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[], $5::text[]) "
	"AS g(name, lo, hi, source) JOIN metrics m ON m.name = g.name AND m.bucket >= g.lo "
	"AND m.bucket <= g.hi AND m.source IS NOT DISTINCT FROM g.source LIMIT $4";

/* Names in the catalogue matching $1 (a regex; NULL: every name), in byte order, at most $2;
 * with how many names the catalogue holds and how many matched. Always at least one row (a
 * NULL name when none matched), so the sizes come back whatever the match. */
const char SCHEMA_NAMES_SQL[] =
	"SELECT n.name, t.total, coalesce(n.matched, 0) FROM (SELECT count(*) AS total FROM metric_names) t "
	"LEFT JOIN LATERAL (SELECT name COLLATE \"C\" AS name, count(*) OVER () AS matched FROM metric_names "
	"WHERE $1::text IS NULL OR name ~ $1 ORDER BY 1 LIMIT $2) n ON true";

/* Only the insert is prepared. Reads stay unnamed statements, planned for their own regex
 * and range each time: after five runs a prepared read may switch to a generic plan that
 * cannot see the regex, and make bench measured it scanning every catalogue name (4 ms ->
 * 14 ms per read); planning costs well under a millisecond. */
const SchemaStmt schema_statements[] = {
	{SCHEMA_STMT_INSERT, SCHEMA_INSERT_SQL},
	{SCHEMA_STMT_INSERT_NEW, SCHEMA_INSERT_NEW_SQL},
};
const int schema_nstatements = (int)ARRAY_LEN(schema_statements);

void schema_insert_begin(SchemaInsert *ins)
{
	static const uint32_t oids[SCHEMA_INSERT_ARRAYS] = {
		PGARR_OID_UUID,   PGARR_OID_TIMESTAMPTZ, PGARR_OID_TEXT,   PGARR_OID_FLOAT8,
		PGARR_OID_FLOAT8, PGARR_OID_FLOAT8,      PGARR_OID_FLOAT8, PGARR_OID_FLOAT8,
		PGARR_OID_FLOAT8, PGARR_OID_FLOAT8,      PGARR_OID_FLOAT8, PGARR_OID_TEXT,
		PGARR_OID_TEXT};
	for (int k = 0; k < SCHEMA_INSERT_ARRAYS; k++)
		pgarr_begin(&ins->cols[k], oids[k]);
	memset(ins->has_null, 0, sizeof(ins->has_null));
	ins->source_null = false;
	ins->n = 0;
	ins->nnew = 0;
	ins->names_gen = SCHEMA_NAMES_GEN_UNKNOWN;
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
	if (m->source) {
		pgarr_add_text(&ins->cols[11], m->source, m->source_len);
	} else {
		pgarr_put32(&ins->cols[11], UINT32_MAX);
		ins->source_null = true;
	}
	if (new_name) {
		if (ins->nnew == ins->cap_new) {
			ins->cap_new = ins->cap_new ? ins->cap_new * 2 : 64;
			ins->new_names = realloc(ins->new_names, ins->cap_new * sizeof(*ins->new_names));
			if (!ins->new_names)
				fatal("at=oom");
		}
		ins->new_names[ins->nnew++] = m;
	}
	ins->n++;
}

static int cmp_name(const void *a, const void *b)
{
	const Metric *x = *(const Metric *const *)a, *y = *(const Metric *const *)b;
	int c = memcmp(x->name, y->name, x->name_len < y->name_len ? x->name_len : y->name_len);
	return c ? c : (x->name_len > y->name_len) - (x->name_len < y->name_len);
}

void schema_insert_end(SchemaInsert *ins)
{
	for (int k = 0; k < 3 + METRIC_NSTATS; k++)
		pgarr_end(&ins->cols[k], ins->n, k >= 3 && ins->has_null[k - 3]);
	pgarr_end(&ins->cols[11], ins->n, ins->source_null);
	/* Sorted and unique: concurrent batches then take the catalogue's index locks in the same
	 * order, so two of them adding the same new names cannot deadlock (40P01). */
	if (ins->nnew > 1)
		qsort(ins->new_names, ins->nnew, sizeof(*ins->new_names), cmp_name);
	uint32_t unique = 0;
	for (size_t i = 0; i < ins->nnew; i++) {
		const Metric *m = ins->new_names[i];
		if (i > 0 && cmp_name(&ins->new_names[i - 1], &ins->new_names[i]) == 0)
			continue;
		pgarr_add_text(&ins->cols[12], m->name, m->name_len);
		unique++;
	}
	pgarr_end(&ins->cols[12], unique, false);
	ins->cols[13].len = 0;
	pgarr_put64(&ins->cols[13], (uint64_t)ins->names_gen);
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
	free(ins->new_names);
	ins->new_names = NULL;
	ins->nnew = ins->cap_new = 0;
}
