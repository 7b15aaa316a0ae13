#!/bin/bash
# `make bench-scale`: m2pg on two databases that hold weeks of data, not minutes. On two local
# PostgreSQL 15 clusters of its own (durable: fsync and synchronous_commit stay on), it
#
#   1. loads SCALE_SERIES (1,000) series x SCALE_DAYS (14) days of minute data into each
#      database with COPY, the same rows and ids in both: in time order into database 1, one
#      series after the other into database 2, so both physical layouts are measured; plus
#      SCALE_EXTRA_NAMES (9,000) more names of 3 rows each, so a regex runs over 10,000 names;
#   2. copies database 1's rows into metrics_flat, an unpartitioned table without rollups
#      indexed as metrics was before partitions, and times the reads of step 4 on it with the
#      aggregate m2pg sent before rollups (bench/scale_flat_agg.sql): the baseline; then drops it;
#   3. times the first `m2pg gc --once`, which rolls up every hour and day of the data;
#   4. times GET /metrics (p50 of SCALE_RUNS after warm-ups) against that baseline and against
#      the rollup aggregate m2pg sends now (taken from src/schema.c) run directly on database 1;
#   5. times a repair of the whole range that finds nothing;
#   6. times the gc of one expired day (RETENTION such that exactly the oldest day expires) and
#      shows the dead rows left;
#   7. repair: rows deleted from database 2, then from database 1, gc to refresh the rollups,
#      and `m2pg repair` timed;
#   8. ingest (bench/run.sh's single-metric and batch phases, on these loaded databases) against
#      the last m2pg before partitions (built once under build/scale-base/) on empty
#      databases of the same clusters, two windows each (new, base, base, new);
# then prints a summary of the figures and their targets. Clusters on 127.0.0.1:24341/24342 under
# var/scale (recreated on every run, their data removed at the end unless SCALE_KEEP=1), m2pg on
# 18191. Like make bench it is not a test: it exits 0 when it ran to the end, whatever the
# figures. It stops m2pg and both clusters on every exit.
#
# Knobs (environment): SCALE_SERIES, SCALE_DAYS, SCALE_EXTRA_NAMES (a small run to try the script:
# SCALE_SERIES=50 SCALE_DAYS=2 SCALE_EXTRA_NAMES=900), SCALE_RUNS (20: timed GETs per read),
# SCALE_SQL_BUDGET (20: seconds of timed runs of each read, at least 5 GETs and 3 SQL runs),
# SCALE_INGEST_SECONDS (10), SCALE_INGEST=0 to skip step 8, M2PG_BIN (./m2pg), SCALE_PG_PORT1,
# SCALE_PG_PORT2, SCALE_HTTP_PORT, SCALE_KEEP=1 (keep the clusters' data),
# SCALE_MAINT_TIMEOUT_MS (900000: MAINT_TIMEOUT_MS of every gc and repair), SCALE_REPAIR_SECONDS
# (120: a repair of the deleted rows is stopped after this long).
set -u
set -m # every child is a job with its own process group: cleanup can stop a whole pipeline
cd "$(dirname "$0")/.."
BENCH_NAME=bench-scale
. bench/lib.sh
ROOT=$PWD
VAR=$ROOT/var/scale
PGBIN=/usr/lib/postgresql/15/bin
PY=/usr/bin/python3
PGPORT1=${SCALE_PG_PORT1:-24341}
PGPORT2=${SCALE_PG_PORT2:-24342}
HTTP_PORT=${SCALE_HTTP_PORT:-18191}
URL=http://127.0.0.1:$HTTP_PORT
DBURLS="postgres://postgres@127.0.0.1:$PGPORT1/postgres|postgres://postgres@127.0.0.1:$PGPORT2/postgres"
BASE_DB=scale_base # the empty databases of the pre-partition m2pg
BASE_URLS="postgres://postgres@127.0.0.1:$PGPORT1/$BASE_DB|postgres://postgres@127.0.0.1:$PGPORT2/$BASE_DB"

SERIES=${SCALE_SERIES:-1000}
DAYS=${SCALE_DAYS:-14}
EXTRA=${SCALE_EXTRA_NAMES:-9000}
RUNS=${SCALE_RUNS:-20}
SQL_BUDGET=${SCALE_SQL_BUDGET:-20}
INGEST_SECONDS=${SCALE_INGEST_SECONDS:-10}
INGEST=${SCALE_INGEST:-1}
# A repair that copies slower than this many seconds allow is stopped (SIGTERM: it reports what it
# copied) and its rate taken from what it did; the rest is copied with SQL, so that the next step
# starts from equal databases.
REPAIR_SECONDS=${SCALE_REPAIR_SECONDS:-120}
# m2pg's default (60000) cancels a statement of gc that runs longer; at this scale its first
# rollup computes a week of rows per statement. Raised so that the bench can go on; the longest
# statement of each gc or repair is reported, against the default.
MAINT_TIMEOUT=${SCALE_MAINT_TIMEOUT_MS:-900000}
WARMUP=3
# Cluster settings beyond the defaults, for a load of 40 million rows and a table copy of 20
# million: memory for index builds, fewer forced checkpoints; and statements over 10 s logged,
# to report gc's longest. Durability is the default's. The buffers stay modest: the two
# databases hold about 13 GB, which the kernel's cache holds better than twice.
PG_SETTINGS=(shared_buffers=1GB max_wal_size=2GB maintenance_work_mem=512MB log_min_duration_statement=10s)

for v in SERIES DAYS EXTRA RUNS SQL_BUDGET INGEST_SECONDS MAINT_TIMEOUT REPAIR_SECONDS; do
	[[ ${!v} =~ ^[0-9]+$ ]] || { echo "bench-scale: SCALE_$v must be a whole number" >&2; exit 2; }
done
[ "$SERIES" -ge 40 ] && [ "$SERIES" -le 4000 ] || { echo "bench-scale: SCALE_SERIES from 40 to 4000" >&2; exit 2; }
[ "$DAYS" -ge 2 ] && [ "$DAYS" -le 60 ] || { echo "bench-scale: SCALE_DAYS from 2 to 60" >&2; exit 2; }
[ "$EXTRA" -le 99999 ] && [ "$RUNS" -ge 1 ] || { echo "bench-scale: SCALE_EXTRA_NAMES up to 99999, SCALE_RUNS at least 1" >&2; exit 2; }

# The data: DAYS whole UTC days of minute buckets, ending at the last midnight at least an hour
# ago, so every hour of it is closed for gc's rollup (it waits 5 minutes after an hour).
NOW0=$(date +%s)
DAYEND=$(((NOW0 - 3600) / 86400 * 86400))
D0=$((DAYEND - DAYS * 86400))
MINUTES=$((DAYS * 1440))
ROWS=$((SERIES * MINUTES))
iso() { date -u -d "@$1" +%FT%TZ; }
LO_ISO=$(iso "$D0")
HI_ISO=$(iso $((DAYEND - 1)))

BENCH_START=$(date +%s)
for v in $(compgen -e | grep '^PG'); do unset "$v"; done # psql and pgbench: no PGOPTIONS etc.
M2PG_PID=""
CHILD=""
BG=""
CLUSTERS=""

# ---------- plumbing (as in bench/run.sh) ----------

# Each step notes the machine's load average: on a shared machine, the figures of a step taken
# under load from elsewhere are read with that in mind.
progress() {
	local l
	l=$(cut -d' ' -f1 /proc/loadavg)
	printf '[%4ds] %s (load %s)\n' $(($(date +%s) - BENCH_START)) "$*" "$l" >&2
	[ -d "$VAR" ] && echo "$l" >>"$VAR/loadavg.txt"
}




cleanup() {
	local rc=$? p d
	trap - EXIT INT TERM HUP USR1
	set +m
	[ -n "$CHILD" ] && kill -TERM -- "-$CHILD" 2>/dev/null
	for p in $BG; do kill -TERM -- "-$p" 2>/dev/null; done
	stop_m2pg
	for d in $CLUSTERS; do timeout 60 scripts/pg.sh stop "$d" || true; done
	for d in 1 2; do [ -f "$VAR/pg$d/server.log" ] && cp "$VAR/pg$d/server.log" "$VAR/pg$d.server.log"; done
	if [ "$rc" -eq 0 ] && [ "${SCALE_KEEP:-0}" != 1 ]; then
		rm -rf "$VAR/pg1" "$VAR/pg2" # tens of GB; the logs stay
	fi
	[ "$rc" -ne 0 ] && printf 'bench-scale: stopped (status %d); m2pg and both clusters are stopped. Logs: var/scale\n' "$rc" >&2
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
trap 'exit 1' USR1

PSQL_TIMEOUT=1800 # one statement of the load or the copy; a bound, not an expectation
psql_on() { # PORT ARGS...: psql on one cluster (database postgres unless -d), unaligned
	local port=$1
	shift
	timeout "$PSQL_TIMEOUT" "$PGBIN/psql" -X -qAt -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres "$@"
}
sql1() { psql_on "$PGPORT1" -c "$1" || die "SQL failed on database 1: $1"; }
sql2() { psql_on "$PGPORT2" -c "$1" || die "SQL failed on database 2: $1"; }
sql_on() { # DB(1|2) SQL
	if [ "$1" = 1 ]; then sql1 "$2"; else sql2 "$2"; fi
}
port_of() { if [ "$1" = 1 ]; then echo "$PGPORT1"; else echo "$PGPORT2"; fi; }

field() { printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -1; }
secs_since() { calc "($(now_ns) - $1) / 1e9" "${2:-2}"; }

REPORT=$VAR/report.txt
say() { printf '%s\n' "$*" | tee -a "$REPORT"; }
sayf() { printf "$@" | tee -a "$REPORT"; }
SUMMARY=()
summ() { SUMMARY+=("$(printf '%-58s %-36s %-16s %s' "$1" "$2" "$3" "$4")"); } # WHAT MEASURED TARGET RESULT

# m2pg's maintenance commands (gc, repair, migrate) with a clean environment: m2pg's defaults but
# MAINT_TIMEOUT_MS (see MAINT_TIMEOUT), LOG_LEVEL=info for the figures it logs, plus the given
# VAR=VALUE; stopped with SIGTERM after MAINT_CAP seconds (status 124). Sets MAINT_S, MAINT_LOG and MAINT_LONGEST (seconds of the longest statement on
# either cluster, from the servers' log_min_duration_statement lines; 0 when none took 10 s).
maint() { # NAME [VAR=VALUE...] -- ARGS...
	local name=$1 envs=() t0 rc i off=()
	shift
	while [ "$1" != -- ]; do envs+=("$1"); shift; done
	shift
	MAINT_LOG=$VAR/$name.log
	for i in 1 2; do off[$i]=$(stat -c %s "$VAR/pg$i/server.log" 2>/dev/null || echo 0); done
	t0=$(now_ns)
	run - "$MAINT_LOG" timeout "${MAINT_CAP:-3600}" env -i PATH="$PATH" LOG_LEVEL=info DATABASE_URLS="$DBURLS" \
		MAINT_TIMEOUT_MS="$MAINT_TIMEOUT" "${envs[@]}" "$SERVER" "$@" 2>&1
	rc=$?
	MAINT_S=$(secs_since "$t0")
	MAINT_LONGEST=$(for i in 1 2; do tail -c +$((off[i] + 1)) "$VAR/pg$i/server.log"; done |
		sed -n 's/.* duration: \([0-9.]*\) ms .*/\1/p' | awk '$1 > m { m = $1 } END { printf "%.1f", m / 1000 }')
	[ "$(calc "$MAINT_LONGEST > $LONGEST_ALL" 0)" = 1 ] && LONGEST_ALL=$MAINT_LONGEST LONGEST_WHERE=$name
	return $rc
}
LONGEST_ALL=0
LONGEST_WHERE=""
logv() { # KEY LINE-PATTERN FILE: KEY's value in the last line of FILE matching the pattern
	grep -E "$2" "$3" | tail -1 | tr ' ' '\n' | sed -n "s/^$1=//p" | head -1
}

start_web() { # BINARY URLS
	! curl -s --max-time 1 -o /dev/null "$URL/health" 2>/dev/null || die "something already answers on $URL"
	printf '\n== %s %s\n' "$1" "$(date -u +%FT%TZ)" >>"$VAR/web.log"
	env -i PATH="$PATH" LOG_LEVEL=warn DATABASE_URLS="$2" PORT="$HTTP_PORT" HOST=127.0.0.1 \
		"$1" web >>"$VAR/web.log" 2>&1 </dev/null &
	M2PG_PID=$!
	local i
	for ((i = 0; i < 300; i++)); do # 30 s: the pre-partition m2pg makes its schema at start
		kill -0 "$M2PG_PID" 2>/dev/null || { tail -5 "$VAR/web.log" >&2; M2PG_PID=""; die "m2pg web exited at start (var/scale/web.log)"; }
		curl -s --max-time 1 "$URL/health" 2>/dev/null | grep -q '"connected": 2' && return 0
		sleep 0.1
	done
	tail -5 "$VAR/web.log" >&2
	die "m2pg did not report \"connected\": 2 on /health within 30 s"
}
check_web() {
	kill -0 "$M2PG_PID" 2>/dev/null && return 0
	tail -5 "$VAR/web.log" >&2
	M2PG_PID=""
	die "m2pg web died during $1 (var/scale/web.log)"
}

# ---------- setup ----------

for d in "$VAR/pg1" "$VAR/pg2"; do
	[ -f "$d/postmaster.pid" ] && timeout 60 scripts/pg.sh stop "$d"
done
rm -rf "$VAR"
mkdir -p "$VAR" || die "cannot create var/scale"
if [ "$(id -u)" -eq 0 ]; then chmod 755 "$ROOT/var" "$VAR"; fi
M2PG_SRC=${M2PG_BIN:-$ROOT/m2pg}
SERVER=$VAR/server-under-scale # a copy, named so that no `pkill m2pg` elsewhere stops it
cp "$M2PG_SRC" "$SERVER" && "$SERVER" --version >/dev/null 2>&1 || die "$M2PG_SRC is missing or broken (make m2pg)"
for tool in wrk curl gcc git "$PGBIN/pgbench" "$PGBIN/psql" "$PY"; do
	command -v "$tool" >/dev/null || die "$tool is not installed (make deps)"
done

progress "starting two PostgreSQL clusters (var/scale/pg1:$PGPORT1, var/scale/pg2:$PGPORT2)"
for i in 1 2; do
	port=$(port_of $i)
	CLUSTERS="$CLUSTERS $VAR/pg$i"
	timeout 120 scripts/pg.sh start "$VAR/pg$i" "$port" >"$VAR/pg$i.start.log" 2>&1 ||
		{ cat "$VAR/pg$i.start.log" >&2; die "cluster $i did not start on port $port (var/scale/pg$i/server.log)"; }
	for s in "${PG_SETTINGS[@]}"; do psql_on "$port" -c "ALTER SYSTEM SET ${s%%=*} = '${s#*=}'" || die "ALTER SYSTEM $s"; done
	timeout 60 scripts/pg.sh stop "$VAR/pg$i" && timeout 120 scripts/pg.sh start "$VAR/pg$i" "$port" >>"$VAR/pg$i.start.log" 2>&1 ||
		die "cluster $i did not restart with its settings (var/scale/pg$i/server.log)"
done

: >"$REPORT"
say "m2pg at scale — $("$SERVER" --version)$( [ -n "${M2PG_BIN:-}" ] && echo " ($M2PG_BIN)"), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$( [ -n "$(git status --porcelain src 2>/dev/null)" ] && echo ' + uncommitted src changes'), $(date -u +%FT%TZ)"
say "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo), load average at start $(cut -d' ' -f1-3 /proc/loadavg); $("$PGBIN/postgres" --version)"
say "two clusters, defaults (fsync, synchronous_commit, full_page_writes on) but ${PG_SETTINGS[*]}"
say "data: $SERIES series x $DAYS days of minute buckets ($ROWS rows) + $EXTRA names x 3 rows, per database;"
say "      buckets $LO_ISO to $HI_ISO; 10% of the series have a source (10 sources), the rest none"
load=$(cut -d' ' -f1 /proc/loadavg)
[ "$(calc "$load > 0.5" 0)" = 1 ] && say "NOTE: load average $load when the bench started (other work on the machine): expect noise"

progress "m2pg migrate"
maint migrate -- migrate || { cat "$MAINT_LOG" >&2; die "m2pg migrate failed (var/scale/migrate.log)"; }

# ---------- 1. load ----------

COLS="id, bucket, name, count, mean, median, min, max, perc95, perc99, last, source"
# The rows of day k, minute t of series s: in time order (database 1) or series after series
# (database 2). The id of (s, t) is the same in both: a UUIDv7 whose time is the bucket's
# milliseconds plus s (unique per row, time-ordered as m2pg's are), version 7, s in rand_a,
# variant 10 and t in rand_b (made of two int8s: text functions would double the cost of a row).
UUID_LO_MIN=-9223372036854775808 # variant 10 in the top bits of rand_b
gen_sql() { # DAY ORDER
	local st per=$((SERIES * 1440))
	if [ "$2" = time ]; then st="$1 * 1440 + j / $SERIES AS t, j % $SERIES AS s"; else st="$1 * 1440 + j % 1440 AS t, j / 1440 AS s"; fi
	printf '%s' "COPY (SELECT encode(int8send((($D0 + t * 60)::int8 * 1000 + s) << 16 | 28672 | s)
		|| int8send(($UUID_LO_MIN)::int8 | t), 'hex')::uuid, to_timestamp($D0 + t * 60), 'scale.s' || lpad(s::text, 4, '0'),
		((s + t) % 50 + 1)::float8, (1.5 + t % 7)::float8, (1 + t % 3)::float8, 0.5::float8, (9 + t % 5)::float8,
		8::float8, 8.5::float8, t::float8, CASE WHEN s % 10 = 0 THEN 'host' || (s / 10 % 10) END
		FROM (SELECT $st FROM generate_series(0, $((per - 1))) j) x) TO STDOUT (FORMAT binary)"
}
# The extra names: 3 rows each, at minutes spread over the days; ids apart from the series' ones
# (2^40 set in rand_b, which t never reaches).
EXTRA_SQL="COPY (SELECT encode(int8send((($D0 + t * 60)::int8 * 1000) << 16 | 28672 | j)
	|| int8send(($UUID_LO_MIN)::int8 | 1099511627776 | k), 'hex')::uuid, to_timestamp($D0 + t * 60),
	'scale.x' || lpad(k::text, 5, '0'), (k % 9 + 1)::float8, 2.5::float8, 2::float8, 1::float8, 4::float8,
	3.5::float8, 3.75::float8, j::float8, NULL::text
	FROM (SELECT k, j, (k * 7919 + j * 104729) % $MINUTES AS t FROM generate_series(0, $EXTRA - 1) k,
	generate_series(0, 2) j) x ORDER BY k, j) TO STDOUT (FORMAT binary)"
NAMES_SQL="INSERT INTO metric_names SELECT 'scale.s' || lpad(s::text, 4, '0') FROM generate_series(0, $SERIES - 1) s
	UNION ALL SELECT 'scale.x' || lpad(k::text, 5, '0') FROM generate_series(0, $EXTRA - 1) k ON CONFLICT DO NOTHING"

# One day at a time, as a bulk load is done: COPY FREEZE into a new table (its rows frozen and
# all-visible, as autovacuum leaves old rows), then attached as the day's partition, which
# builds its indexes (sorted, not row by row) and, thanks to the CHECK, scans nothing (as
# m2pg_partitions_make does). Then the extra names' rows through metrics, m2pg's triggers on.
# Prints the seconds it took.
load_db() { # DB ORDER
	set -o pipefail
	local db=$1 port k t0 lo hi part
	port=$(port_of "$db")
	t0=$(now_ns)
	for ((k = 0; k < DAYS; k++)); do
		lo=$(iso $((D0 + k * 86400)))
		hi=$(iso $((D0 + (k + 1) * 86400)))
		part=metrics_p$(date -u -d "@$((D0 + k * 86400))" +%Y%m%d)
		psql_on "$port" -c "$(gen_sql "$k" "$2")" |
			psql_on "$port" -c "BEGIN" -c "CREATE TABLE $part (LIKE metrics INCLUDING DEFAULTS)" \
				-c "COPY $part ($COLS) FROM STDIN (FORMAT binary, FREEZE)" \
				-c "ALTER TABLE $part ADD CONSTRAINT ${part}_range CHECK (bucket >= '$lo' AND bucket < '$hi')" \
				-c "ALTER TABLE metrics ATTACH PARTITION $part FOR VALUES FROM ('$lo') TO ('$hi')" \
				-c "ALTER TABLE $part DROP CONSTRAINT ${part}_range" -c "COMMIT" || return 1
		[ $((k % 4)) = 3 ] && progress "database $db: $((k + 1)) of $DAYS days loaded"
	done
	psql_on "$port" -c "$EXTRA_SQL" | psql_on "$port" -c "COPY metrics ($COLS) FROM STDIN (FORMAT binary)" || return 1
	psql_on "$port" -c "$NAMES_SQL" || return 1
	psql_on "$port" -c "ANALYZE metrics" -c "ANALYZE metric_names" -c "CHECKPOINT" || return 1
	secs_since "$t0"
}

progress "loading $ROWS + $((EXTRA * 3)) rows into each database with COPY, both at once"
t0=$(now_ns)
load_db 1 time >"$VAR/load1.txt" 2>"$VAR/load1.err" &
P1=$!
load_db 2 series >"$VAR/load2.txt" 2>"$VAR/load2.err" &
P2=$!
BG="$P1 $P2"
wait "$P1"
rc1=$?
wait "$P2"
rc2=$?
BG=""
LOAD_WALL=$(secs_since "$t0")
[ "$rc1" = 0 ] || { cat "$VAR/load1.err" >&2; die "loading database 1 failed (var/scale/load1.err)"; }
[ "$rc2" = 0 ] || { cat "$VAR/load2.err" >&2; die "loading database 2 failed (var/scale/load2.err)"; }
LOAD_S1=$(tail -1 "$VAR/load1.txt")
LOAD_S2=$(tail -1 "$VAR/load2.txt")
WANT_ROWS=$((ROWS + EXTRA * 3))
R1=$(sql1 "SELECT count(*) FROM metrics")
R2=$(sql2 "SELECT count(*) FROM metrics")
RD1=$(sql1 "SELECT count(*) FROM metrics_default")
[ "$R1" = "$WANT_ROWS" ] && [ "$R2" = "$WANT_ROWS" ] && [ "$RD1" = 0 ] ||
	die "after the load: $R1 and $R2 rows ($RD1 in database 1's default partition), expected $WANT_ROWS"
SIZE1=$(sql1 "SELECT pg_size_pretty(sum(pg_total_relation_size(relid))) FROM pg_partition_tree('metrics')")
SIZE2=$(sql2 "SELECT pg_size_pretty(sum(pg_total_relation_size(relid))) FROM pg_partition_tree('metrics')")

say ""
say "1. Load: rows generated by SQL on each cluster, piped through psql into COPY (binary, FREEZE) of a new"
say "   table per day, attached as that day's partition (indexes built then); then ANALYZE, CHECKPOINT;"
say "   both databases at once (2 cores). (m2pg's own inserts would build the indexes row by row.)"
sayf '   %-44s %9s s %12s rows/s   (%s rows, %s with indexes)\n' "database 1, time order" "$LOAD_S1" "$(calc "$WANT_ROWS / $LOAD_S1" 0)" "$R1" "$SIZE1"
sayf '   %-44s %9s s %12s rows/s   (%s rows, %s with indexes)\n' "database 2, series order" "$LOAD_S2" "$(calc "$WANT_ROWS / $LOAD_S2" 0)" "$R2" "$SIZE2"
sayf '   %-44s %9s s %12s rows/s\n' "both, wall time" "$LOAD_WALL" "$(calc "2 * $WANT_ROWS / $LOAD_WALL" 0)"
summ "load, COPY, both databases at once" "$(calc "2 * $WANT_ROWS / $LOAD_WALL" 0) rows/s ($LOAD_WALL s)" "-" ""

# ---------- 2. the flat baseline ----------

progress "metrics_flat: an unpartitioned copy of database 1's rows, indexed as before partitions"
t0=$(now_ns)
copy_flat() { # database 1's rows, in its order, into a new table (COPY FREEZE, as the load)
	set -o pipefail
	psql_on "$PGPORT1" -c "COPY (SELECT * FROM metrics) TO STDOUT (FORMAT binary)" |
		psql_on "$PGPORT1" -c "BEGIN" -c "CREATE TABLE metrics_flat (LIKE metrics)" \
			-c "COPY metrics_flat FROM STDIN (FORMAT binary, FREEZE)" -c "COMMIT" >/dev/null
}
run - - copy_flat || die "copying metrics into metrics_flat failed"
sql1 "CREATE UNIQUE INDEX metrics_flat_id_key ON metrics_flat (id);
	CREATE INDEX metrics_flat_by_name_bucket ON metrics_flat (name, bucket);
	CREATE INDEX metrics_flat_bucket_brin ON metrics_flat USING brin (bucket)" >/dev/null
sql1 "ANALYZE metrics_flat" >/dev/null
sql1 "CHECKPOINT" >/dev/null
FLAT_S=$(secs_since "$t0")
sql2 "CHECKPOINT" >/dev/null
say ""
say "2. metrics_flat in database 1 (COPY FREEZE of metrics' rows in their order, then unique (id),"
say "   (name, bucket), brin (bucket), ANALYZE): $FLAT_S s, $(sql1 "SELECT pg_size_pretty(pg_total_relation_size('metrics_flat'))")"

# The reads. Their expected answers are computed from the generator's formulas (no table read):
# names, points (buckets with a count) and the sum of the counts.
A=$((SERIES < 100 ? SERIES : 100)) # the 100 series of reads (a) and (b): scale.s0000 to s0099
count7() { echo $((($1 + 2) / 10)); } # how many of 0..N-1 end in 7
S7=$(count7 "$SERIES")
X7=$(count7 "$EXTRA")
X7_POINTS=$(sql1 "SELECT count(DISTINCT (k, ((k * 7919 + j * 104729) % $MINUTES) / 60)) FROM generate_series(0, $EXTRA - 1) k,
	generate_series(0, 2) j WHERE k % 10 = 7")
series_sum() { # PREDICATE on s: the sum of the counts of those series
	sql1 "SELECT coalesce(sum((s + t) % 50 + 1), 0)::int8 FROM generate_series(0, $SERIES - 1) s, generate_series(0, $MINUTES - 1) t WHERE $1"
}
declare -A R_RUNS R_DESC R_RE R_RES R_HI R_NAMES R_POINTS R_TARGET R_P50 R_P90 R_FLAT R_FLATN R_AGG R_DFLT R_ANS R_SUM R_PY
R_DESC[a]="(a) $A series x $DAYS days, hour"
R_RE[a]='^scale\.s00[0-9][0-9]$' R_RES[a]=hour R_NAMES[a]=$A R_POINTS[a]=$((A * DAYS * 24)) R_TARGET[a]=100
R_SUM[a]=$(series_sum "s < 100")
R_DESC[b]="(b) $A series x $DAYS days, day"
R_RE[b]=${R_RE[a]} R_RES[b]=day R_NAMES[b]=$A R_POINTS[b]=$((A * DAYS)) R_TARGET[b]=50 R_SUM[b]=${R_SUM[a]}
R_DESC[c]="(c) 1 series x $DAYS days, hour"
R_RE[c]='^scale\.s0042$' R_RES[c]=hour R_NAMES[c]=1 R_POINTS[c]=$((DAYS * 24)) R_TARGET[c]=20
R_SUM[c]=$(series_sum "s = 42")
R_DESC[d]="(d) regex, $((S7 + X7)) of $((SERIES + EXTRA)) names, hour"
R_RE[d]='^scale\..*7$' R_RES[d]=hour R_NAMES[d]=$((S7 + X7)) R_POINTS[d]=$((S7 * DAYS * 24 + X7_POINTS)) R_TARGET[d]=
R_SUM[d]=$(($(series_sum "s % 10 = 7") + $(sql1 "SELECT coalesce(sum(k % 9 + 1) * 3, 0)::int8 FROM generate_series(0, $EXTRA - 1) k WHERE k % 10 = 7")))
# Not a target: (a) again with \`to\` at the last microsecond, so the range is whole hours. With
# \`to\` at a whole second (or now), m2pg reads its last, partial hour from rows.
R_DESC[e]="(a') as (a), to=...:59.999999"
R_RE[e]=${R_RE[a]} R_RES[e]=hour R_NAMES[e]=$A R_POINTS[e]=${R_POINTS[a]} R_SUM[e]=${R_SUM[a]}
for k in a b c d e; do
	R_HI[$k]=$HI_ISO
done
R_HI[e]=$(date -u -d "@$((DAYEND - 1))" +%FT%T.999999Z)
LIMIT=1000001 # m2pg's READ_MAX_ROWS + 1

# pgbench, one client, per-transaction log: sets P50 (ms) and N. After a warm-up run, as many
# runs as fit in BUDGET seconds, from 3 to RUNS; a warm-up slower than BUDGET is the only run
# (its data does not stay in memory: more runs would only take longer).
pgb_p50() { # SCRIPT KEY TAG BUDGET
	local script=$1 k=$2 tag=$3 budget=$4 t0 one n out=$VAR/pgbench-$3-$2
	local args=(-n -M extended -f "$script" -c 1 -D "re=${R_RE[$k]}" -D "lo=$LO_ISO" -D "hi=${R_HI[$k]}"
		-D "res=${R_RES[$k]}" -D "lim=$LIMIT" -h 127.0.0.1 -p "$PGPORT1" -U postgres postgres)
	t0=$(now_ns)
	run - "$out.warm.txt" timeout 900 "$PGBIN/pgbench" "${args[@]}" -t 1 2>&1 || { cat "$out.warm.txt" >&2; die "pgbench failed ($out.warm.txt)"; }
	one=$(calc "($(now_ns) - $t0) / 1e9" 3)
	if [ "$(calc "$one > $budget" 0)" = 1 ]; then
		P50=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' "$out.warm.txt")
		N=1
		return 0
	fi
	n=$(calc "$budget / $one" 0)
	[ "$n" -lt 3 ] && n=3
	[ "$n" -gt "$RUNS" ] && n=$RUNS
	rm -f "$out".log.*
	run - "$out.txt" timeout 1800 "$PGBIN/pgbench" "${args[@]}" -t "$n" -l --log-prefix="$out.log" 2>&1 ||
		{ cat "$out.txt" >&2; die "pgbench failed ($out.txt)"; }
	P50=$(cat "$out".log.* | awk '{ print $3 / 1000 }' | sort -n | awk '{ v[NR] = $1 } END { printf "%.2f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
	N=$n
}


# The baseline is measured now, while metrics_flat is in memory as it was just written, then
# dropped: the rest of the run has the machine's memory to itself.
progress "the reads in SQL on metrics_flat: the aggregate m2pg sent before rollups"
for k in a b c d; do
	pgb_p50 bench/scale_flat_agg.sql "$k" flat "$SQL_BUDGET"
	R_FLAT[$k]=$P50 R_FLATN[$k]=$N
done
R_FLAT[e]=${R_FLAT[a]} R_FLATN[e]="(a)" # the same rows
sql1 "DROP TABLE metrics_flat" >/dev/null
sql1 "CHECKPOINT" >/dev/null

# ---------- 3. the first gc: the rollups of every hour ----------

progress "m2pg gc --once: the first rollup of $DAYS days in each database"
maint gc-first -- gc --once || { tail -5 "$MAINT_LOG" >&2; die "m2pg gc --once failed (var/scale/gc-first.log)"; }
GC1_S=$MAINT_S
say ""
say "3. First m2pg gc --once (m2pg's defaults but MAINT_TIMEOUT_MS=$MAINT_TIMEOUT): $GC1_S s; its longest statement"
say "   took $MAINT_LONGEST s (m2pg's default MAINT_TIMEOUT_MS cancels a statement after 60 s)"
for i in 1 2; do
	line=$(grep -E "at=rollup db=$i " "$MAINT_LOG" | tail -1)
	say "   database $i: hours claimed $(field claimed "$line"), rolled up $(field rolled_up "$line"), failed $(field failed "$line"), $(field 'measure#m2pg.rollup.ms' "$line") ms"
done
HR1=$(sql1 "SELECT count(*) FROM metrics_hour")
DR1=$(sql1 "SELECT count(*) FROM metrics_day")
DIRTY1=$(sql1 "SELECT count(*) FROM rollup_dirty")
DIRTY2=$(sql2 "SELECT count(*) FROM rollup_dirty")
say "   database 1 holds $HR1 hour and $DR1 day rollups; hours still dirty: $DIRTY1 in database 1, $DIRTY2 in database 2"
nerr=$(grep -cE '^level=(warn|error)' "$MAINT_LOG")
[ "$nerr" -gt 0 ] && say "   WARNING: gc logged $nerr warnings/errors, first: $(grep -E '^level=(warn|error)' "$MAINT_LOG" | head -1 | cut -c1-200)"
GC1_FAILED=$(grep -E "at=rollup db=" "$MAINT_LOG" | tr ' ' '\n' | sed -n 's/^failed=//p' | awk '{ s += $1 } END { print s + 0 }')
summ "first gc --once (rollup of all $DAYS days, 2 databases)" "$GC1_S s" "-" "$([ "$DIRTY1$DIRTY2" = 00 ] && [ "${GC1_FAILED:-0}" = 0 ] && [ "$nerr" = 0 ] || echo 'see 3.')"
for i in 1 2; do
	sql_on $i "VACUUM (ANALYZE) metrics_hour, metrics_day, rollup_dirty, rollup_state" >/dev/null
	sql_on $i "CHECKPOINT" >/dev/null
done

# ---------- 4. reads ----------

"$PY" bench/scale_sql.py src/schema.c SCHEMA_AGG_SQL >"$VAR/agg.sql" || die "bench/scale_sql.py could not read SCHEMA_AGG_SQL"
SESSION_SQL=$("$PY" bench/scale_sql.py src/schema.c SCHEMA_SESSION_SQL) || die "bench/scale_sql.py could not read SCHEMA_SESSION_SQL"
SESSION_SQL=${SESSION_SQL%;}
# As m2pg sends it: in a session set up as its own are (SCHEMA_SESSION_SQL: JIT off, work_mem).
{ echo "$SESSION_SQL"; cat "$VAR/agg.sql"; } >"$VAR/agg-m2pg.sql"
progress "GET /metrics: $WARMUP warm-ups and $RUNS timed GETs of each read"
start_web "$SERVER" "$DBURLS"
WARN=()
for k in a b c d e; do
	path="/metrics?name=$("$PY" -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "${R_RE[$k]}")&from=$LO_ISO&to=${R_HI[$k]}&resolution=${R_RES[$k]}"
	run - "$VAR/get-$k.txt" timeout 900 "$PY" bench/scale_get.py 127.0.0.1 "$HTTP_PORT" "$path" "$WARMUP" "$RUNS" "$SQL_BUDGET" ||
		{ cat "$VAR/get-$k.txt" >&2; die "bench/scale_get.py failed (var/scale/get-$k.txt)"; }
	check_web "read ($k)"
	line=$(sed -n 's/^BENCH //p' "$VAR/get-$k.txt")
	R_P50[$k]=$(field p50_ms "$line")
	R_P90[$k]=$(field p90_ms "$line")
	R_RUNS[$k]=$(field runs "$line")
	R_PY[$k]=$(field py_p50_ms "$line")
	got="$(field status "$line") $(field dbs "$line") $(field names "$line") $(field points "$line") $(field count_sum "$line") $(field not200 "$line")"
	want="200 2/2 ${R_NAMES[$k]} ${R_POINTS[$k]} ${R_SUM[$k]} 0"
	if [ "$got" = "$want" ]; then R_ANS[$k]="OK"; else
		R_ANS[$k]="UNEXPECTED"
		WARN+=("WARNING: ${R_DESC[$k]}: got '$got', expected '$want' (status, M2pg-Databases, names, points, sum of counts, non-200s)")
	fi
done
stop_m2pg
progress "the same reads in SQL on database 1: the rollup aggregate in m2pg's session settings, and in PostgreSQL's defaults"
for k in a b c d e; do
	pgb_p50 "$VAR/agg-m2pg.sql" "$k" agg "$SQL_BUDGET"
	R_AGG[$k]=$P50
	pgb_p50 "$VAR/agg.sql" "$k" default "$SQL_BUDGET"
	R_DFLT[$k]=$P50
done
# Where the rollup SQL spends its time, for (a) and (a'): with psql's quoting of variables.
sed -e "s/:re\b/:'re'/; s/:lo\b/:'lo'/g; s/:hi\b/:'hi'/g; s/:res\b/:'res'/g" "$VAR/agg.sql" >"$VAR/agg-psql.sql"
for k in a e; do
	{ echo "$SESSION_SQL"; echo "EXPLAIN (ANALYZE, BUFFERS)"; cat "$VAR/agg-psql.sql"; } |
		psql_on "$PGPORT1" -v re="${R_RE[$k]}" -v lo="$LO_ISO" -v hi="${R_HI[$k]}" -v res="${R_RES[$k]}" -v lim=$LIMIT \
		>"$VAR/explain-$k.txt" 2>&1 || say "   (EXPLAIN of ($k) failed: var/scale/explain-$k.txt)"
done
say ""
say "4. GET /metrics over the whole $DAYS days (m2pg reads both databases; p50 and p90 of GETs in a row on one"
say "   keep-alive connection, after $WARMUP warm-ups (1 for a read over a second): $RUNS, or as many as fit in"
say "   ${SQL_BUDGET} s but at least 5), against the same read in SQL on database 1 (pgbench -M extended, one client,"
say "   p50 after a warm-up; runs: as many as fit in ${SQL_BUDGET} s, 3 to $RUNS, or the warm-up alone when it took"
say "   longer): flat = the aggregate m2pg sent before rollups, on metrics_flat (measured before the first gc,"
say "   the table fresh in memory); rollup = the whole answer in SQL, SCHEMA_AGG_SQL of now (the rollup rules'"
say "   sums per group, sorted), on database 1's metrics and rollups, in m2pg's session settings ($SESSION_SQL)"
say "   and in PostgreSQL's defaults (JIT on). At an hour or a day m2pg itself sends SCHEMA_AGG_PARTS_SQL (the"
say "   same parts, neither added up nor sorted) and adds them up"
sayf '   %-40s %4s %8s %8s %9s %4s %9s %9s %9s %9s  %s\n' read runs "p50 ms" "p90 ms" "flat ms" runs "flat/m2pg" "rollup ms" "m2pg/rlp" "dflt ms" answer
for k in a b c d e; do
	sayf '   %-40s %4s %8s %8s %9s %4s %9s %9s %9s %9s  %s\n' "${R_DESC[$k]}" "${R_RUNS[$k]}" "${R_P50[$k]}" "${R_P90[$k]}" "${R_FLAT[$k]}" "${R_FLATN[$k]}" \
		"$(calc "${R_FLAT[$k]} / ${R_P50[$k]}" 1)x" "${R_AGG[$k]}" "$(calc "${R_P50[$k]} / ${R_AGG[$k]}")x" "${R_DFLT[$k]}" "${R_ANS[$k]}"
done
say "   (to=$HI_ISO except (a'), to=${R_HI[e]}: the range is then whole hours, all served by rollups,"
say "   where with to at a whole second m2pg reads the rows of the last hour. flat/m2pg: how many times faster"
say "   m2pg answers than the flat SQL; m2pg/rlp: m2pg's p50 over its rollup SQL's. EXPLAIN ANALYZE of the"
say "   rollup SQL of (a) and (a'), in m2pg's session settings: var/scale/explain-a.txt, explain-e.txt)"
say "   GETs are timed by curl; the bench's own Python client, which earlier runs timed with, took p50 of"
say "   $(for k in a b c d e; do printf '%s ms (%s) ' "${R_PY[$k]}" "$k"; done)"
for w in "${WARN[@]}"; do say "   $w"; done
for k in a b c; do
	summ "GET ${R_DESC[$k]}" "${R_P50[$k]} ms (flat SQL ${R_FLAT[$k]} ms)" "<= ${R_TARGET[$k]} ms" "$(pf "$(calc "${R_P50[$k]} <= ${R_TARGET[$k]}" 0)")"
done
summ "GET ${R_DESC[d]}" "$(calc "${R_P50[d]} / ${R_AGG[d]}")x its SQL (${R_P50[d]} vs ${R_AGG[d]} ms)" "<= 1.5x" "$(pf "$(calc "${R_P50[d]} <= 1.5 * ${R_AGG[d]}" 0)")"

# ---------- 5. a repair that finds nothing ----------

progress "m2pg repair of the whole range, with nothing to copy"
maint repair0 -- repair --from "$LO_ISO" --to "$HI_ISO" || { tail -5 "$MAINT_LOG" >&2; die "m2pg repair failed (var/scale/repair0.log)"; }
RP_S0=$MAINT_S
RP_COPIED0="$(logv copied_db1 'at=repair-done' "$MAINT_LOG") and $(logv copied_db2 'at=repair-done' "$MAINT_LOG")"
RP_WIN0="$(logv windows 'at=repair-done' "$MAINT_LOG") windows, $(logv differing 'at=repair-done' "$MAINT_LOG") differing"
say ""
say "5. m2pg repair --from $LO_ISO --to $HI_ISO, the databases equal and the rollups up to date:"
say "   $RP_S0 s ($RP_WIN0; copied $RP_COPIED0 rows; longest statement ${MAINT_LONGEST} s)"
summ "repair that finds nothing ($DAYS days)" "$RP_S0 s" "< 1 s" "$(pf "$(calc "$RP_S0 < 1" 0)")"

# ---------- 6. gc of one expired day ----------

part_stats() { # DB: partitions, live rows, dead rows, size of metrics' partitions
	sql_on "$1" "SELECT count(*) || ' partitions, ' || sum(n_live_tup) || ' live rows, ' || sum(n_dead_tup) || ' dead rows, '
		|| pg_size_pretty(sum(pg_total_relation_size(relid))) FROM pg_stat_user_tables
		WHERE relid IN (SELECT relid FROM pg_partition_tree('metrics') WHERE isleaf)"
}
# Before the repairs (whose rows would leave every hour to roll up again in this gc): the repairs
# then run over the days left.
progress "gc of the oldest day: RETENTION such that exactly the partition of $LO_ISO expires"
BEFORE1=$(part_stats 1)
BEFORE2=$(part_stats 2)
# A cutoff at the end of the oldest day (plus the moment gc takes to start): its partition is
# dropped whole, and the next one loses the rows of its first instant.
RET=$(($(date +%s) - D0 - 86400))
maint gc-expire RETENTION="${RET}s" -- gc --once || { tail -5 "$MAINT_LOG" >&2; die "m2pg gc --once failed (var/scale/gc-expire.log)"; }
GCX_S=$MAINT_S
sleep 1 # the statistics of the last statements reach pg_stat_user_tables
AFTER1=$(part_stats 1)
AFTER2=$(part_stats 2)
say ""
say "6. gc of one expired day: RETENTION=${RET}s m2pg gc --once (cutoff $(iso $((D0 + 86400))) + the moment gc took"
say "   to start): $GCX_S s in all"
for i in 1 2; do
	line=$(grep -E "at=gc db=$i " "$MAINT_LOG" | tail -1)
	say "   database $i: dropped $(grep -cE "at=gc-drop-partition db=$i " "$MAINT_LOG") partition(s) ($(grep -E "at=gc-drop-partition db=$i " "$MAINT_LOG" | tr ' ' '\n' | sed -n 's/^partition=//p' | paste -sd,)), deleted $(field deleted "$line") rows: $(field 'measure#m2pg.gc.ms' "$line") ms; names-fill $(logv 'measure#m2pg.names_fill.ms' "at=names-fill db=$i " "$MAINT_LOG") ms; rollup $(logv 'measure#m2pg.rollup.ms' "at=rollup db=$i " "$MAINT_LOG" | grep . || echo "(nothing to roll up)")"
done
say "   partitions of database 1 before: $BEFORE1"
say "                             after: $AFTER1"
say "   partitions of database 2 before: $BEFORE2"
say "                             after: $AFTER2"
GCX_MS1=$(logv 'measure#m2pg.gc.ms' 'at=gc db=1 ' "$MAINT_LOG")
GCX_MS2=$(logv 'measure#m2pg.gc.ms' 'at=gc db=2 ' "$MAINT_LOG")
summ "gc of one expired day (whole gc --once)" "$GCX_S s (drop+delete $GCX_MS1 / $GCX_MS2 ms)" "<= 1 s" "$(pf "$(calc "$GCX_S <= 1" 0)")"
DEAD_AFTER=$(printf '%s\n%s\n' "$AFTER1" "$AFTER2" | sed -n 's/.* \([0-9]*\) dead rows.*/\1/p' | awk '{ s += $1 } END { print s + 0 }')
summ "  dead rows left in the partitions (both databases)" "${DEAD_AFTER:-?}" "-" ""

# ---------- 7. repair ----------

# Waits, up to 60 s, until neither cluster runs an autovacuum worker: the vacuum and analyze that
# the steps before left to do (the analyze of metrics_hour after gc rewrote it, the other build's
# window) falls in no timed step. Prints the wait.
autovacuum_idle() {
	local t0 n
	t0=$(date +%s)
	while [ $(($(date +%s) - t0)) -lt 60 ]; do
		n=$(($(sql1 "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'") +
			$(sql2 "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'")))
		[ "$n" = 0 ] && break
		sleep 0.5
	done
	echo $(($(date +%s) - t0))
}

# Over the days left: two of the 100 series over every day, and 6 hours of the 100 (the two's
# hours counted once). The two series lose their rows from the second hour of the days left on:
# the first holds step 6's cutoff, and gc keeps its rollups from before the cutoff (its rows are
# no longer all there) in both databases, where the gc before the repair, which has no RETENTION,
# would compute it again in the database the rows went from only. Repair would then find every
# series of that hour differing and compare its 60,000 rows, which are the same.
RLO_ISO=$(iso $((D0 + 86400)))
RP_S0_ISO=$(iso $((D0 + 86400 + 3600)))
RP_H0=$((D0 + DAYS / 2 * 86400))
RP_H0_ISO=$(iso "$RP_H0")
RP_H1_ISO=$(iso $((RP_H0 + 6 * 3600)))
RP_PRED="(name IN ('scale.s0013', 'scale.s0037') AND bucket >= '$RP_S0_ISO') OR (name ~ '${R_RE[a]}' AND bucket >= '$RP_H0_ISO' AND bucket < '$RP_H1_ISO')"
RP_COLS="id, bucket, name, count, mean, median, min, max, perc95, perc99, last, source"
# The rows of the predicate that database DB lacks, copied from the other one with SQL.
restore_rows() { # DB
	set -o pipefail
	local from=1
	[ "$1" = 1 ] && from=2
	psql_on "$(port_of $from)" -c "COPY (SELECT $RP_COLS FROM metrics WHERE $RP_PRED) TO STDOUT (FORMAT binary)" |
		psql_on "$(port_of "$1")" -c "CREATE TEMP TABLE r (LIKE metrics)" -c "COPY r ($RP_COLS) FROM STDIN (FORMAT binary)" \
			-c "INSERT INTO metrics ($RP_COLS) SELECT $RP_COLS FROM r ON CONFLICT (id, bucket) DO NOTHING" >/dev/null
}
declare -A RP_LAYOUT RP_DEL RP_GC RP_GCL RP_S RP_L RP_COPIED RP_RATE RP_WIN RP_AFTER RP_STOP RP_WAIT
for db in 2 1; do
	RP_LAYOUT[$db]=time
	[ "$db" = 2 ] && RP_LAYOUT[$db]=series
	progress "repair: deleting rows from database $db, gc --once, then m2pg repair (stopped after $REPAIR_SECONDS s)"
	RP_DEL[$db]=$(sql_on $db "WITH d AS (DELETE FROM metrics WHERE $RP_PRED RETURNING 1) SELECT count(*) FROM d")
	# gc without repair, so that the rollups are up to date again
	maint "gc-before-repair$db" REPAIR_LOOKBACK=0s -- gc --once || { tail -5 "$MAINT_LOG" >&2; die "m2pg gc --once failed (var/scale/gc-before-repair$db.log)"; }
	RP_GC[$db]=$MAINT_S
	RP_GCL[$db]=$MAINT_LONGEST
	RP_STOP[$db]=""
	RP_WAIT[$db]=$(autovacuum_idle)
	MAINT_CAP=$REPAIR_SECONDS maint "repair$db" -- repair --from "$RLO_ISO" --to "$HI_ISO"
	rc=$?
	[ "$rc" = 124 ] && RP_STOP[$db]=" (stopped)"
	[ "$rc" = 0 ] || [ "$rc" = 124 ] || { tail -5 "$MAINT_LOG" >&2; die "m2pg repair failed (var/scale/repair$db.log)"; }
	RP_S[$db]=$MAINT_S
	RP_L[$db]=$MAINT_LONGEST
	RP_COPIED[$db]=$(logv "copied_db$db" 'at=repair-done' "$MAINT_LOG")
	RP_WIN[$db]="$(logv windows 'at=repair-done' "$MAINT_LOG") windows, $(logv differing 'at=repair-done' "$MAINT_LOG") differing"
	RP_RATE[$db]=$(calc "${RP_COPIED[$db]:-0} / ${RP_S[$db]}" 0)
	if [ -n "${RP_STOP[$db]}" ]; then
		progress "repair stopped after $REPAIR_SECONDS s; copying the rest with SQL"
		run - - restore_rows "$db" || die "copying the deleted rows back with SQL failed"
	fi
	RP_AFTER[$db]="$(sql1 "SELECT count(*) FROM metrics") / $(sql2 "SELECT count(*) FROM metrics")"
done
say ""
say "7. Repair: rows deleted through metrics from one database (series s0013 and s0037 from $RP_S0_ISO, the"
say "   second hour of the $((DAYS - 1)) days left, and $RP_H0_ISO to $RP_H1_ISO of the $A series of read (a)), then gc --once with"
say "   REPAIR_LOOKBACK=0s to bring the rollups up to date (every hour is dirty), then, once no autovacuum"
say "   worker runs (up to 60 s: the analyze of metrics_hour, which that gc rewrote; waited ${RP_WAIT[2]} s / ${RP_WAIT[1]} s),"
say "   m2pg repair --from $RLO_ISO --to $HI_ISO, stopped (SIGTERM) if still at it after $REPAIR_SECONDS s: its rate is"
say "   then that of what it copied, and the rest is copied back with SQL before the next step"
sayf '   %-26s %8s %8s %8s %19s %10s %9s  %-30s %s\n' "deleted from" deleted "gc s" "longest" "repair s" rows/s longest "copied (windows)" "rows db1 / db2 after"
for db in 2 1; do
	sayf '   %-26s %8s %8s %8s %19s %10s %9s  %-30s %s\n' "database $db (${RP_LAYOUT[$db]} order)" "${RP_DEL[$db]}" "${RP_GC[$db]}" "${RP_GCL[$db]}" \
		"${RP_S[$db]}${RP_STOP[$db]}" "${RP_RATE[$db]}" "${RP_L[$db]}" "${RP_COPIED[$db]} (${RP_WIN[$db]})" "${RP_AFTER[$db]}"
done
say "   (longest: the longest single statement, s; gc s of database 1's round includes database 2's hours, which"
say "   its repair wrote)"
for db in 2 1; do
	summ "repair of ${RP_DEL[$db]} rows missing in db $db (${RP_LAYOUT[$db]} order)" "${RP_RATE[$db]} rows/s (${RP_COPIED[$db]} in ${RP_S[$db]} s${RP_STOP[$db]})" ">= 20000 rows/s" \
		"$(pf "$(calc "${RP_RATE[$db]} >= 20000 && ${RP_COPIED[$db]:-0} == ${RP_DEL[$db]}" 0)")"
done
summ "gc --once after the delete (rollups of every hour again)" "${RP_GC[2]} s, ${RP_GC[1]} s" "-" ""

# ---------- 8. ingest ----------

declare -A I_RATE I_P50 I_P99 I_OK I_OTHER I_ROWS I_CHECK I_SUMOK I_SUMS
# KEY(new|base) DATABASE PHASE(single|batch) ROUND: single POSTs at 64 connections, or batches of
# 1,000 at 8, through the m2pg running.
ingest_phase() {
	local key=$1 base line end prev cur ph=$3 round=$4 waited
	local conns=64 script=bench/scale_post.lua extra=() prefix="ingest.$key.$ph.$4" per=1 id="$1$3$4"
	[ "$ph" = batch ] && conns=8 script=bench/scale_batch.lua extra=(1000) per=1000
	sql1 "CHECKPOINT" >/dev/null
	sql2 "CHECKPOINT" >/dev/null
	waited=$(autovacuum_idle)
	progress "ingest, $key m2pg, round $round: $ph POSTs, $conns connections ($INGEST_SECONDS s; autovacuum idle after ${waited} s)"
	base=$(date +%s)
	run - "$VAR/wrk-$key-$ph-$round.txt" timeout -k 5 $((INGEST_SECONDS + 30)) wrk -t2 -c"$conns" -d"${INGEST_SECONDS}s" --latency \
		-s "$script" "$URL/metrics" -- "$(calc "$INGEST_SECONDS - 1.2" 1)" "$base" "$prefix" "${extra[@]}" ||
		{ cat "$VAR/wrk-$key-$ph-$round.txt" >&2; die "wrk failed (var/scale/wrk-$key-$ph-$round.txt)"; }
	check_web "ingest ($key, $ph)"
	line=$(sed -n 's/^BENCH //p' "$VAR/wrk-$key-$ph-$round.txt")
	[ -n "$line" ] || die "wrk printed no BENCH line (var/scale/wrk-$key-$ph-$round.txt)"
	I_OK[$id]=$(field ok "$line")
	I_OTHER[$id]=$(field other "$line")
	I_RATE[$id]=$(calc "$(field ok "$line") * $per / $(field window_s "$line")" 0)
	I_P50[$id]=$(calc "$(field p50_ms "$line")")
	I_P99[$id]=$(calc "$(field p99_ms "$line")")
	I_SUMOK[$key$ph]=$((${I_SUMOK[$key$ph]:-0} + $(field ok "$line") * per))
	I_SUMS[$key$ph]=$(calc "${I_SUMS[$key$ph]:-0} + $(field window_s "$line")" 3)
	# The slower database goes on after the answer: count until two counts agree.
	end=$(($(date +%s) + 10)) prev=""
	while :; do
		cur="$(psql_on "$PGPORT1" -d "$2" -c "SELECT count(*) FROM metrics WHERE name LIKE '$prefix.%'") $(psql_on "$PGPORT2" -d "$2" -c "SELECT count(*) FROM metrics WHERE name LIKE '$prefix.%'")"
		[ "$cur" = "$prev" ] || [ "$(date +%s)" -ge "$end" ] && break
		prev=$cur
		sleep 0.5
	done
	I_ROWS[$id]="${cur% *} / ${cur#* }"
	if [ "${cur% *}" = $((I_OK[$id] * per)) ] && [ "${cur#* }" = $((I_OK[$id] * per)) ]; then I_CHECK[$id]=OK; else I_CHECK[$id]=MISMATCH; fi
}
if [ "$INGEST" = 1 ]; then
	# The last commit before partitions: the parent of the one that made src/partman.c.
	PART_REV=$(git log --format=%H -- src/partman.c | tail -1)
	BASE_REV=$(git rev-parse "$PART_REV~1" 2>/dev/null) || die "cannot find the commit before partitions"
	BASE_BIN=$ROOT/build/scale-base/m2pg-${BASE_REV:0:12}
	if [ ! -x "$BASE_BIN" ]; then
		progress "building the m2pg of ${BASE_REV:0:12} (before partitions) in a temporary worktree, once"
		WT=$ROOT/build/scale-base/src-${BASE_REV:0:12}
		mkdir -p "$ROOT/build/scale-base"
		rm -rf "$WT"
		git worktree prune
		run - "$VAR/base-build.log" git worktree add --detach "$WT" "$BASE_REV" 2>&1 || die "git worktree add failed (var/scale/base-build.log)"
		run - "$VAR/base-build.log" make -C "$WT" -j2 m2pg 2>&1 || { git worktree remove --force "$WT"; die "building ${BASE_REV:0:12} failed (var/scale/base-build.log)"; }
		cp "$WT/m2pg" "$BASE_BIN.tmp" && mv "$BASE_BIN.tmp" "$BASE_BIN"
		git worktree remove --force "$WT"
	fi
	BASE_SERVER=$VAR/base-under-scale
	cp "$BASE_BIN" "$BASE_SERVER" || die "cannot copy $BASE_BIN"
	sql1 "CREATE DATABASE $BASE_DB" >/dev/null
	sql2 "CREATE DATABASE $BASE_DB" >/dev/null

	# The two builds take turns, phase by phase, each window with a fresh process, in the order
	# new, base, base, new: a drift in the load of a shared machine falls on both alike.
	for ph in single batch; do
		round=0
		for key in new base base new; do
			round=$((round + 1))
			if [ "$key" = new ]; then start_web "$SERVER" "$DBURLS"; else start_web "$BASE_SERVER" "$BASE_URLS"; fi
			if [ "$key" = new ]; then ingest_phase new postgres $ph $round; else ingest_phase base "$BASE_DB" $ph $round; fi
			stop_m2pg
		done
	done
	say ""
	say "8. Ingest, as make bench's phases 1 and 2 (wrk, 2 threads, ${INGEST_SECONDS} s, drained; buckets in the last"
	say "   hour, so rows land in today's partition): m2pg of now on the loaded databases against m2pg"
	say "   ${BASE_REV:0:12} (the last before partitions, no rollups) on empty databases of the same clusters;"
	say "   the two take turns, a fresh process each window, in the order new, base, base, new, each window"
	say "   after a CHECKPOINT and once no autovacuum worker runs (up to 60 s); the ratio is of the totals"
	sayf '   %-34s %10s %8s %8s %8s %6s %-20s %s\n' phase metrics/s "p50 ms" "p99 ms" 201s other "rows db1 / db2" check
	for ph in single batch; do
		round=0
		for key in new base base new; do
			round=$((round + 1))
			id=$key$ph$round
			sayf '   %-34s %10s %8s %8s %8s %6s %-20s %s\n' "$ph, m2pg $key, round $round" "${I_RATE[$id]}" "${I_P50[$id]}" "${I_P99[$id]}" \
				"${I_OK[$id]}" "${I_OTHER[$id]}" "${I_ROWS[$id]}" "${I_CHECK[$id]}"
		done
		for key in new base; do
			I_RATE[$key$ph]=$(calc "${I_SUMOK[$key$ph]} / ${I_SUMS[$key$ph]}" 0)
		done
		ratio=$(calc "${I_RATE[new$ph]} / ${I_RATE[base$ph]}")
		say "   $ph: now / before partitions = ${ratio}x (${I_RATE[new$ph]} vs ${I_RATE[base$ph]} metrics/s over both windows of each)"
		what="single POSTs, 64 connections"
		[ "$ph" = batch ] && what="batch POSTs of 1,000, 8 connections"
		summ "ingest: $what, now vs before" "${ratio}x (${I_RATE[new$ph]} vs ${I_RATE[base$ph]}/s)" ">= 0.90x" "$(pf "$(calc "$ratio >= 0.9" 0)")"
	done
fi

# ---------- summary ----------

summ "longest statement of any gc or repair (${LONGEST_WHERE:-none over 10 s})" "$LONGEST_ALL s" "< 60 s (default)" "$(pf "$(calc "$LONGEST_ALL < 60" 0)")"
progress "done"
say ""
say "Summary (MAINT_TIMEOUT_MS=$MAINT_TIMEOUT for every gc and repair; m2pg's defaults otherwise)"
sayf '   %-58s %-36s %-16s %s\n' what measured target result
for s in "${SUMMARY[@]}"; do say "   $s"; done
say ""
say "load average at end $(cut -d' ' -f1-3 /proc/loadavg), over the steps $(awk '{ s += $1; if ($1 > m) m = $1 } END { printf "%.1f on average, %.1f at most", s / NR, m }' "$VAR/loadavg.txt") (2 cores); the run took $(($(date +%s) - BENCH_START)) s; logs in var/scale"
