#!/bin/bash
# `make bench`: measures m2pg against two local PostgreSQL 15 clusters and against the raw
# ceilings of the same clusters (pgbench single-row INSERTs, COPY), all in one run, on the same
# table definition (m2pg's own, created by m2pg), with PostgreSQL's default durability settings.
#
#   1. single-metric POSTs with wrk at 8, 64 and 256 connections (and 64 with WORKERS=2), each
#      answer counted (201) against the rows then found in each database;
#   2. batch POSTs of 1,000 metrics per request;
#   3. the raw ceilings into database 1: pgbench single-row INSERTs, COPY of 500,000 rows;
#   4. GET latency on data loaded with SQL into both databases, next to the equivalent single SQL
#      aggregate on database 1;
#   5. m2pg's peak RSS;
#   6. concurrent large reads: 4 clients at once each GET one name of 300,000 minute buckets
#      (loaded with SQL into both databases), while /health is probed every 50 ms and m2pg's RSS
#      sampled: every point is counted, and the RSS growth and worst /health latency reported;
#   7. overload: 1,000-metric batch POSTs at 8 and at 64 connections, acknowledged metrics/s at
#      each, 503s split by their "stored" field, and rows against acknowledged metrics;
# then a summary of the targets. Everything listens on 127.0.0.1 only: clusters on 24331/24332
# under var/bench (recreated on every run), m2pg on 18181. The bench is not a test: it exits 0
# when it ran to the end, whatever the numbers, and non-zero only when something broke (a
# cluster or m2pg did not start, m2pg died, a tool failed). It stops m2pg and both clusters on
# every exit, interrupted or not. Raw outputs (wrk, pgbench, m2pg's log) stay in var/bench.
# M2PG_BIN=path benchmarks another build than ./m2pg.
# BENCH_ONLY=list runs only some phases (comma-separated: single, batch, ceilings, gets, render,
# reads, overload; e.g. BENCH_ONLY=reads,overload) and reports only the targets those phases
# measure.
set -u
set -m # every child is a job with its own process group: cleanup can stop a whole pipeline
cd "$(dirname "$0")/.."
BENCH_NAME=bench
. bench/lib.sh
ROOT=$PWD
VAR=$ROOT/var/bench
PGBIN=/usr/lib/postgresql/15/bin
PY=/usr/bin/python3
# Ports (overridable): below Linux's ephemeral range (32768-60999), so no client socket holds them.
PGPORT1=${BENCH_PG_PORT1:-24331}
PGPORT2=${BENCH_PG_PORT2:-24332}
HTTP_PORT=${BENCH_HTTP_PORT:-18181}
URL=http://127.0.0.1:$HTTP_PORT
DBURLS="postgres://postgres@127.0.0.1:$PGPORT1/postgres|postgres://postgres@127.0.0.1:$PGPORT2/postgres"

WRITE_SECONDS=10   # wrk -d of every write phase
ACTIVE_SECONDS=8.8 # requests are sent for this long, then in-flight ones drain (> WRITE_TIMEOUT_MS)
GET_SECONDS=5
LARGE_NAMES=4      # phase 6: names read at once,
LARGE_POINTS=300000 # each with this many minute buckets (one row each)
BENCH_ONLY=${BENCH_ONLY:-}
for p in ${BENCH_ONLY//,/ }; do
	case $p in single | batch | ceilings | gets | render | reads | overload) ;; *)
		printf 'bench: unknown phase "%s" in BENCH_ONLY (single, batch, ceilings, gets, render, reads, overload)\n' "$p" >&2
		exit 2
		;;
	esac
done
COPY_ROWS=500000
T0=1699999200      # 2023-11-14 22:00:00 UTC, on the hour: the GET data starts here

BENCH_START=$(date +%s)
# libpq reads PG* variables (PGOPTIONS could turn synchronous_commit off): psql and pgbench run
# with none of them.
for v in $(compgen -e | grep '^PG'); do unset "$v"; done
M2PG_PID=""
STOP_KILLED=0
CHILD=""
CLUSTERS=""

# ---------- plumbing ----------

progress() { printf '[%3ds] %s\n' $(($(date +%s) - BENCH_START)) "$*" >&2; }




cleanup() {
	local rc=$?
	trap - EXIT INT TERM HUP USR1
	set +m # no job notices for what is stopped here
	[ -n "$CHILD" ] && kill -TERM -- "-$CHILD" 2>/dev/null
	stop_m2pg
	for d in $CLUSTERS; do timeout 60 scripts/pg.sh stop "$d" || true; done
	[ "$rc" -ne 0 ] && printf 'bench: stopped (status %d); m2pg and both clusters are stopped. Logs: var/bench\n' "$rc" >&2
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
trap 'exit 1' USR1

psql_on() { # PORT ARGS...: psql on one cluster, unaligned, stops at the first error
	local port=$1
	shift
	timeout 120 "$PGBIN/psql" -X -qAt -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres "$@"
}
sql1() { psql_on "$PGPORT1" -c "$1" || die "SQL failed on database 1: $1"; }
sql2() { psql_on "$PGPORT2" -c "$1" || die "SQL failed on database 2: $1"; }
sql_both() { sql1 "$1" >/dev/null && sql2 "$1" >/dev/null; }

field() { printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; } # KEY "k=v k=v ..."
want() { [ -z "$BENCH_ONLY" ] || [[ ",$BENCH_ONLY," == *",$1,"* ]]; } # PHASE: is it run?

start_m2pg() { # WORKERS
	# SO_REUSEPORT would let a stray m2pg on our port share the load with ours: refuse.
	! curl -s --max-time 1 -o /dev/null "$URL/health" 2>/dev/null || die "something already answers on $URL"
	printf '\n== m2pg WORKERS=%s, %s\n' "$1" "$(date -u +%FT%TZ)" >>"$VAR/m2pg.log"
	# A clean environment: m2pg's defaults, whatever the caller exports (timeouts, BATCH_MAX,
	# M2PG_SPOOL_DIR, libpq's PG* variables...).
	env -i PATH="$PATH" WORKERS="$1" LOG_LEVEL=warn DATABASE_URLS="$DBURLS" PORT="$HTTP_PORT" HOST=127.0.0.1 \
		"$SERVER" web >>"$VAR/m2pg.log" 2>&1 </dev/null &
	M2PG_PID=$!
	local i
	for ((i = 0; i < 150; i++)); do # 15 s
		if ! kill -0 "$M2PG_PID" 2>/dev/null; then
			m2pg_gone
			tail -5 "$VAR/m2pg.log" >&2
			die "m2pg $HOW at start (var/bench/m2pg.log)"
		fi
		curl -s --max-time 1 "$URL/health" 2>/dev/null | grep -q '"connected": 2' && return 0
		sleep 0.1
	done
	tail -5 "$VAR/m2pg.log" >&2
	die "m2pg did not report \"connected\": 2 on /health within 15 s"
}

m2pg_gone() { # reaps m2pg; sets HOW to how it ended
	local rc
	wait "$M2PG_PID" 2>/dev/null
	rc=$?
	M2PG_PID=""
	if [ "$rc" -gt 128 ]; then HOW="was killed by SIG$(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128)))"; else HOW="exited with status $rc"; fi
}

check_m2pg() { # PHASE: dies when m2pg is gone
	kill -0 "$M2PG_PID" 2>/dev/null && return 0
	m2pg_gone
	tail -5 "$VAR/m2pg.log" >&2
	die "m2pg $HOW during $1 (var/bench/m2pg.log)"
}

vmhwm_mb() { awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$M2PG_PID/status"; }

count_rows() { psql_on "$1" -c "SELECT count(*) FROM metrics" || die "counting rows on port $1 failed"; }

# Polls both databases' row counts until two reads 0.5 s apart agree (the slower database goes
# on after the answer), for at most 10 s. Sets ROWS1 and ROWS2.
settle_counts() {
	local end=$(($(date +%s) + 10)) prev="" cur
	while :; do
		cur="$(count_rows $PGPORT1) $(count_rows $PGPORT2)"
		[ "$cur" = "$prev" ] && break
		[ "$(date +%s)" -ge "$end" ] && break
		prev=$cur
		sleep 0.5
	done
	ROWS1=${cur% *}
	ROWS2=${cur#* }
}

fresh_tables() { # empty tables, and checkpoints so that no phase inherits another's dirty pages
	sql_both "TRUNCATE metrics, metric_names"
	sql_both "CHECKPOINT"
}

# wrk SCRIPT CONNS THREADS SECONDS URL OUTFILE [SCRIPT ARGS...]: runs wrk (plus the options in
# the array WRK_OPTS), sets LINE to its BENCH line (bench/wrk_common.lua).
WRK_OPTS=()
run_wrk() {
	local script=$1 conns=$2 threads=$3 secs=$4 url=$5 out=$6
	shift 6
	run - "$out" timeout -k 5 $((secs + 30)) wrk -t"$threads" -c"$conns" -d"${secs}s" --latency "${WRK_OPTS[@]}" -s "$script" "$url" -- "$@" ||
		{ cat "$out" >&2; die "wrk failed (var/bench/$(basename "$out"))"; }
	LINE=$(sed -n 's/^BENCH //p' "$out")
	[ -n "$LINE" ] || { cat "$out" >&2; die "wrk printed no BENCH line (var/bench/$(basename "$out"))"; }
}

# ---------- report ----------

REPORT=$VAR/report.txt
say() { printf '%s\n' "$*" >>"$REPORT"; }
sayf() { printf "$@" >>"$REPORT"; }

# ---------- setup ----------

for d in "$VAR/pg1" "$VAR/pg2"; do # a previous run that could not clean up
	[ -f "$d/postmaster.pid" ] && timeout 60 scripts/pg.sh stop "$d"
done
rm -rf "$VAR"
mkdir -p "$VAR" || die "cannot create var/bench"
if [ "$(id -u)" -eq 0 ]; then chmod 755 "$ROOT/var" "$VAR"; fi
# A copy of the binary: ./m2pg may be rebuilt while the bench runs. Its name leaves out "m2pg"
# so that a `pkill m2pg` or `killall m2pg` run elsewhere on a shared machine does not stop it.
M2PG_SRC=${M2PG_BIN:-$ROOT/m2pg}
SERVER=$VAR/server-under-bench
cp "$M2PG_SRC" "$SERVER" && "$SERVER" --version >/dev/null 2>&1 || die "$M2PG_SRC is missing or broken (make m2pg)"
for tool in wrk curl "$PGBIN/pgbench" "$PGBIN/psql" "$PY"; do
	command -v "$tool" >/dev/null || die "$tool is not installed (make deps)"
done

progress "starting two PostgreSQL clusters (var/bench/pg1:$PGPORT1, var/bench/pg2:$PGPORT2)"
for i in 1 2; do
	port=$PGPORT1
	[ "$i" = 2 ] && port=$PGPORT2
	CLUSTERS="$CLUSTERS $VAR/pg$i"
	# 5433x lies in Linux's ephemeral range: a client socket elsewhere on the machine may hold
	# the port for a while. Retry a few times (bounded), then say so.
	for try in 1 2 3 4 5; do
		timeout 120 scripts/pg.sh start "$VAR/pg$i" "$port" >"$VAR/pg$i.start.log" 2>&1 && break
		if [ "$try" = 5 ] || ! grep -qs "Address already in use" "$VAR/pg$i/server.log"; then
			cat "$VAR/pg$i.start.log" >&2
			grep -qs "Address already in use" "$VAR/pg$i/server.log" &&
				die "cluster $i: port $port is in use (set BENCH_PG_PORT$i to another port)"
			die "cluster $i did not start (var/bench/pg$i/server.log)"
		fi
		progress "port $port is in use, retrying in 2 s"
		sleep 2
	done
done
sql1 "SELECT 1" >/dev/null
sql2 "SELECT 1" >/dev/null

: >"$REPORT"
say "m2pg benchmark — $("$SERVER" --version)$( [ -n "${M2PG_BIN:-}" ] && echo " ($M2PG_BIN)"), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$( [ -n "$(git -C "$ROOT" status --porcelain src 2>/dev/null)" ] && echo ' + uncommitted src changes'), $(date -u +%FT%TZ)"
say "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo), load average at start $(cut -d' ' -f1-3 /proc/loadavg); $("$PGBIN/postgres" --version)"
say "two clusters on 127.0.0.1:$PGPORT1 and :$PGPORT2, default settings (fsync, synchronous_commit on); m2pg with its defaults"
load=$(cut -d' ' -f1 /proc/loadavg)
[ "$(calc "$load > 0.5" 0)" = 1 ] &&
	say "NOTE: load average $load when the bench started (other processes, or a run just before): expect noise"

# ---------- 1. single-metric POSTs ----------

declare -A RATE P50 P99 OK OTHER LOST R1 R2 CHECK
ALL_OK=1
PHASES_OK=0

single_phase() { # KEY WORKERS CONNS
	local key=$1 workers=$2 conns=$3 line
	progress "single POSTs: $conns connections, WORKERS=$workers ($WRITE_SECONDS s)"
	fresh_tables
	run_wrk bench/post.lua "$conns" 2 "$WRITE_SECONDS" "$URL/metrics" "$VAR/wrk-single-$key.txt" "$ACTIVE_SECONDS"
	line=$LINE
	check_m2pg "the $conns-connection phase"
	settle_counts
	OK[$key]=$(field ok "$line")
	OTHER[$key]=$(field other "$line")
	LOST[$key]=$(($(field sent "$line") - OK[$key] - OTHER[$key]))
	RATE[$key]=$(calc "$(field ok "$line") / $(field window_s "$line")" 0)
	P50[$key]=$(calc "$(field p50_ms "$line")")
	P99[$key]=$(calc "$(field p99_ms "$line")")
	R1[$key]=$ROWS1
	R2[$key]=$ROWS2
	if [ "${R1[$key]}" = "${OK[$key]}" ] && [ "${R2[$key]}" = "${OK[$key]}" ]; then
		CHECK[$key]=OK
		PHASES_OK=$((PHASES_OK + 1))
	else
		CHECK[$key]=MISMATCH
		ALL_OK=0
	fi
}

NPHASES=0 # write phases run, for "rows = 201s"
if want single; then
	start_m2pg 1
	single_phase w1c8 1 8
	single_phase w1c64 1 64
	single_phase w1c256 1 256
	RSS_256=$(vmhwm_mb)
	stop_m2pg

	start_m2pg 2
	single_phase w2c64 2 64
	stop_m2pg
	NPHASES=$((NPHASES + 4))
fi

# ---------- 2. batch POSTs ----------

# One m2pg for the batch phase and the GETs (idle during the raw ceilings); it creates the tables.
if want batch || want ceilings || want gets || want render; then start_m2pg 1; fi
if want batch; then
	progress "batch POSTs: 1000 metrics per request, 8 connections ($WRITE_SECONDS s)"
	fresh_tables
	run_wrk bench/batch.lua 8 2 "$WRITE_SECONDS" "$URL/metrics" "$VAR/wrk-batch.txt" "$ACTIVE_SECONDS" 1000
	line=$LINE
	check_m2pg "the batch phase"
	settle_counts
	B_OK=$(field ok "$line")
	B_OTHER=$(field other "$line")
	B_LOST=$(($(field sent "$line") - B_OK - B_OTHER))
	B_REQS=$(calc "$B_OK / $(field window_s "$line")" 1)
	B_METRICS=$(calc "$B_OK * 1000 / $(field window_s "$line")" 0)
	B_P50=$(calc "$(field p50_ms "$line")")
	B_P99=$(calc "$(field p99_ms "$line")")
	B_R1=$ROWS1
	B_R2=$ROWS2
	if [ "$B_R1" = $((B_OK * 1000)) ] && [ "$B_R2" = $((B_OK * 1000)) ]; then
		B_CHECK=OK
		PHASES_OK=$((PHASES_OK + 1))
	else
		B_CHECK=MISMATCH
		ALL_OK=0
	fi
	NPHASES=$((NPHASES + 1))
fi

# ---------- 3. raw ceilings into database 1 (m2pg idle) ----------

if want ceilings; then
	progress "pgbench: single-row prepared INSERTs into database 1, 32 clients (10 s)"
	fresh_tables
	run - "$VAR/pgbench-insert.txt" timeout -k 5 60 "$PGBIN/pgbench" -n -M prepared -f bench/insert.sql \
		-c 32 -j 2 -T 10 -h 127.0.0.1 -p $PGPORT1 -U postgres postgres ||
		{ cat "$VAR/pgbench-insert.txt" >&2; die "pgbench failed (var/bench/pgbench-insert.txt)"; }
	PGB_TPS=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$VAR/pgbench-insert.txt")
	[ -n "$PGB_TPS" ] || die "no tps in var/bench/pgbench-insert.txt"
	PGB_TPS=$(calc "$PGB_TPS" 0)
	PGB_ROWS=$(count_rows $PGPORT1)

	progress "COPY: $COPY_ROWS rows into database 1"
	run - "$VAR/copy.csv" psql_on $PGPORT1 -c "COPY (SELECT gen_random_uuid(), to_timestamp($T0 + i),
		'bench.copy.' || (i % 100), i % 50 + 1, 1.5, 1.0, 0.5, 9.0, 8.0, 8.5, 2.0
		FROM generate_series(1, $COPY_ROWS) i) TO STDOUT (FORMAT csv)" || die "generating the COPY data failed"
	fresh_tables
	t0=$(now_ns)
	run "$VAR/copy.csv" - psql_on $PGPORT1 -c "COPY metrics (id, bucket, name, count, mean, median, min, max, perc95, perc99, last) FROM STDIN (FORMAT csv)" || die "COPY failed"
	t1=$(now_ns)
	COPY_S=$(calc "($t1 - $t0) / 1e9" 3)
	COPY_ROWS_FOUND=$(count_rows $PGPORT1)
	COPY_RATE=$(calc "$COPY_ROWS_FOUND / $COPY_S" 0)
	rm -f "$VAR/copy.csv"
fi

# ---------- 4. GET latency ----------

WARNINGS=()
if want gets; then
	progress "loading GET data into database 1 (1,011,000 rows), copying it to database 2"
	fresh_tables
	cat >"$VAR/get-data.sql" <<EOF
INSERT INTO metrics SELECT gen_random_uuid(), to_timestamp($T0 + i * 60), 'bench.get.minute',
	i % 50 + 1, 1.5 + i % 7, 1.0 + i % 3, 0.5, 9.0 + i % 5, 8.0, 8.5, i FROM generate_series(0, 999) i;
INSERT INTO metrics SELECT gen_random_uuid(), to_timestamp($T0 + i % 3600),
	'bench.regex.' || lpad(i::text, 5, '0'), i % 50 + 1, 1.5, 1.0, 0.5, 9.0, 8.0, 8.5, 2.0
	FROM generate_series(0, 9999) i;
INSERT INTO metrics SELECT gen_random_uuid(), to_timestamp($T0 + i), 'bench.big',
	i % 50 + 1, 1.5 + i % 7, 1.0 + i % 3, 0.5, 9.0 + i % 5, 8.0, 8.5, i FROM generate_series(0, 999999) i;
INSERT INTO metric_names SELECT DISTINCT name FROM metrics ON CONFLICT DO NOTHING;
EOF
	run "$VAR/get-data.sql" /dev/null psql_on $PGPORT1 || die "loading the GET data failed"
	copy_table() { # TABLE: database 1 to database 2, the same rows and ids (metrics is partitioned:
		# COPY reads it through a query)
		psql_on $PGPORT1 -c "COPY (SELECT * FROM $1) TO STDOUT (FORMAT binary)" |
			psql_on $PGPORT2 -c "COPY $1 FROM STDIN (FORMAT binary)"
	}
	run - - copy_table metrics || die "copying the GET data to database 2 failed"
	run - - copy_table metric_names || die "copying metric_names to database 2 failed"
	sql_both "ANALYZE metrics; ANALYZE metric_names"
	sql_both "CHECKPOINT"
	G_R1=$(count_rows $PGPORT1)
	G_R2=$(count_rows $PGPORT2)
	[ "$G_R1" = 1011000 ] && [ "$G_R2" = 1011000 ] || die "GET data: $G_R1 and $G_R2 rows, expected 1011000 in each"

	declare -A G_DESC G_RE G_LO G_HI G_RES G_NAMES G_BUCKETS G_SQLN G_URL G_SUM G_P50 G_P99 G_HOW G_SQL G_ANS
	G_DESC[a]="(a) 1 name, 1,000 rows, minute res."
	G_RE[a]='^bench\.get\.minute$' G_LO[a]=$T0 G_HI[a]=$((T0 + 59999)) G_RES[a]=minute G_NAMES[a]=1 G_BUCKETS[a]=1000 G_SQLN[a]=300
	G_DESC[a2]="(a) again, Connection: close"
	G_RE[a2]=${G_RE[a]} G_LO[a2]=${G_LO[a]} G_HI[a2]=${G_HI[a]} G_RES[a2]=${G_RES[a]} G_NAMES[a2]=1 G_BUCKETS[a2]=1000
	G_DESC[b]="(b) regex, 10,000 names, hour res."
	G_RE[b]='^bench\.regex\.' G_LO[b]=$T0 G_HI[b]=$((T0 + 3599)) G_RES[b]=hour G_NAMES[b]=10000 G_BUCKETS[b]=10000 G_SQLN[b]=20
	G_DESC[c]="(c) 1 name, 1,000,000 rows, hour res."
	G_RE[c]='^bench\.big$' G_LO[c]=$T0 G_HI[c]=$((T0 + 999999)) G_RES[c]=hour G_NAMES[c]=1 G_BUCKETS[c]=278 G_SQLN[c]=5
	for k in a a2 b c; do
		G_URL[$k]="$URL/metrics?name=$("$PY" -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "${G_RE[$k]}")&from=${G_LO[$k]}&to=${G_HI[$k]}&resolution=${G_RES[$k]}"
		G_SUM[$k]=$(sql1 "SELECT coalesce(sum(count), 0)::bigint FROM metrics WHERE name ~ '${G_RE[$k]}'
			AND bucket BETWEEN to_timestamp(${G_LO[$k]}) AND to_timestamp(${G_HI[$k]})")
	done

	# One GET with curl: checks the status, M2pg-Databases, the names, the buckets and the sum of the
	# counts (against SQL on database 1). Sets GET_MS.
	get_check() { # KEY
		local k=$1 out code want got
		out=$(curl -s --max-time 60 -o "$VAR/get-$k.json" -D "$VAR/get-$k.headers" -w '%{http_code} %{time_total}' "${G_URL[$k]}")
		code=${out% *}
		GET_MS=$(calc "${out#* } * 1000")
		want="200 2/2 ${G_NAMES[$k]} ${G_BUCKETS[$k]} ${G_SUM[$k]}"
		got=$("$PY" - "$VAR/get-$k.json" "$VAR/get-$k.headers" "$code" <<'EOF'
import json, re, sys
body, headers, code = sys.argv[1:4]
dbs = "?"
try:
    m = re.search(r"(?im)^M2pg-Databases:\s*(\S+)", open(headers).read())
    dbs = m.group(1) if m else "none"
    d = json.load(open(body))
    print(code, dbs, len(d), sum(len(x["count"]) for x in d),
          "%.0f" % sum(p["value"] for x in d for p in x["count"]))
except Exception as e:
    print(code, dbs, "unreadable:", type(e).__name__)
EOF
	)
		if [ "$got" = "$want" ]; then
			G_ANS[$k]="OK: ${G_NAMES[$k]} name(s), ${G_BUCKETS[$k]} bucket(s)"
		else
			G_ANS[$k]="UNEXPECTED (see warning)"
			WARNINGS+=("WARNING: GET ${G_DESC[$k]}: got '$got', expected '$want' (status, M2pg-Databases, names, buckets, sum of counts)")
		fi
	}

	sql_avg() { # KEY: sets G_SQL[KEY], pgbench's latency average of the equivalent SQL on database 1, ms
		local k=$1 f="$VAR/pgbench-get-$1.txt" v
		run - "$f" timeout -k 5 120 "$PGBIN/pgbench" -n -M extended -f bench/rollup.sql -c 1 -t "${G_SQLN[$k]}" \
			-D "re=${G_RE[$k]}" -D "lo=${G_LO[$k]}" -D "hi=${G_HI[$k]}" -D "res=${G_RES[$k]}" \
			-h 127.0.0.1 -p $PGPORT1 -U postgres postgres || { cat "$f" >&2; die "pgbench failed ($f)"; }
		v=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' "$f")
		[ -n "$v" ] || die "no latency average in $f"
		G_SQL[$k]=$(calc "$v")
	}

	for k in a a2 b; do
		progress "GET ${G_DESC[$k]}: wrk, 2 connections ($GET_SECONDS s), then its SQL"
		get_check "$k"
		WRK_OPTS=()
		[ "$k" = a2 ] && WRK_OPTS=(-H "Connection: close")
		run_wrk bench/get.lua 2 1 "$GET_SECONDS" "${G_URL[$k]}" "$VAR/wrk-get-$k.txt"
		WRK_OPTS=()
		check_m2pg "GET ${G_DESC[$k]}"
		G_P50[$k]=$(calc "$(field p50_ms "$LINE")")
		G_P99[$k]=$(calc "$(field p99_ms "$LINE")")
		G_HOW[$k]="wrk, $(field ok "$LINE") x 200"
		[ "$(field other "$LINE")" = 0 ] && [ "$(field sock_errors "$LINE")" = 0 ] ||
			WARNINGS+=("WARNING: GET ${G_DESC[$k]}: $(field other "$LINE") answers other than 200, $(field sock_errors "$LINE") socket errors under wrk")
		if [ "$k" = a2 ]; then G_SQL[a2]=${G_SQL[a]}; else sql_avg "$k"; fi
	done

	progress "GET ${G_DESC[c]}: 5 sequential requests, then its SQL"
	times=()
	for i in 1 2 3 4 5; do
		get_check c
		times+=("$GET_MS")
	done
	check_m2pg "GET ${G_DESC[c]}"
	sorted=($(printf '%s\n' "${times[@]}" | sort -n))
	G_P50[c]=${sorted[2]}
	G_P99[c]=${sorted[4]}
	G_HOW[c]="curl, 5 in a row"
	sql_avg c
fi
# ---------- 4b. Graphite's /render against GET /metrics ----------

declare -A R_URL R_ANS R_P50 R_P99 R_N
if want render; then
	progress "loading render data (100 names x 1,440 minutes) into database 1, copying it to database 2"
	want gets || fresh_tables
	cat >"$VAR/render-data.sql" <<EOF
INSERT INTO metrics SELECT gen_random_uuid(), to_timestamp($T0 + (i % 1440) * 60),
	'bench.render.' || lpad((i / 1440)::text, 3, '0'), i % 50 + 1, 1.5 + i % 7, 1.0 + i % 3, 0.5,
	9.0 + i % 5, 8.0, 8.5, i FROM generate_series(0, 143999) i;
INSERT INTO metric_names SELECT DISTINCT name FROM metrics WHERE name LIKE 'bench.render.%' ON CONFLICT DO NOTHING;
EOF
	run "$VAR/render-data.sql" /dev/null psql_on $PGPORT1 || die "loading the render data failed"
	copy_rows() { # the render rows, database 1 to database 2, the same ids
		psql_on $PGPORT1 -c "COPY (SELECT * FROM metrics WHERE name LIKE 'bench.render.%') TO STDOUT (FORMAT binary)" |
			psql_on $PGPORT2 -c "COPY metrics FROM STDIN (FORMAT binary)" &&
			psql_on $PGPORT2 -c "INSERT INTO metric_names SELECT 'bench.render.' || lpad(i::text, 3, '0') FROM generate_series(0, 99) i ON CONFLICT DO NOTHING"
	}
	run - - copy_rows || die "copying the render data to database 2 failed"
	sql_both "ANALYZE metrics; ANALYZE metric_names"
	sql_both "CHECKPOINT"
	R_HI=$((T0 + 86399))
	R_URL[get]="$URL/metrics?name=%5Ebench%5C.render%5C.&from=$T0&to=$R_HI&resolution=minute&stats=mean"
	# Graphite's points start at the first step after from: from one second before T0, T0 is the first.
	R_URL[render]="$URL/render?target=bench.render.*.mean&from=$((T0 - 1))&until=$R_HI&maxDataPoints=1440&format=json"
	R_SUM=$(sql1 "SELECT round(sum(mean)::numeric, 3) FROM metrics WHERE name LIKE 'bench.render.%'")
	for k in get render; do
		curl -s --max-time 60 -o "$VAR/render-$k.json" "${R_URL[$k]}"
		# The same data both ways: 100 series of 1,440 means, summing to the rows' means.
		R_ANS[$k]=$("$PY" bench/render_check.py "$VAR/render-$k.json" "$k" "$R_SUM")
		[[ "${R_ANS[$k]}" == OK* ]] || WARNINGS+=("WARNING: render phase, $k: ${R_ANS[$k]} (want 100 x 1440, sum $R_SUM)")
		progress "render phase: $k, wrk, 2 connections ($GET_SECONDS s)"
		run_wrk bench/get.lua 2 1 "$GET_SECONDS" "${R_URL[$k]}" "$VAR/wrk-render-$k.txt"
		check_m2pg "the render phase ($k)"
		R_P50[$k]=$(calc "$(field p50_ms "$LINE")")
		R_P99[$k]=$(calc "$(field p99_ms "$LINE")")
		R_N[$k]=$(field ok "$LINE")
	done
	R_RATIO=$(calc "${R_P50[render]} / ${R_P50[get]}" 3)
fi
if want batch || want gets; then
	RSS_END=$(vmhwm_mb)
	RSS_NOW=$(awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$M2PG_PID/status")
fi
stop_m2pg

# ---------- 6. concurrent large reads ----------

if want reads; then
	start_m2pg 1 # a process of its own: the RSS before the reads is that of an idle m2pg
	progress "loading $LARGE_NAMES names x $LARGE_POINTS minute buckets into both databases at once"
	fresh_tables
	# Ids made of (n, i), not gen_random_uuid(): both databases hold the same rows, as after m2pg's
	# writes; and in order, as m2pg's UUIDv7 are, so the unique index is appended to, which loads
	# faster than random ids.
	L_SQL="INSERT INTO metrics SELECT (lpad(to_hex(n), 8, '0') || '-0000-7000-8000-' || lpad(to_hex(i), 12, '0'))::uuid,
		to_timestamp($T0 + i * 60),
		'bench.large.' || n, i % 50 + 1, 1.5 + i % 7, 1.0 + i % 3, 0.5, 9.0 + i % 5, 8.0, 8.5, i
		FROM generate_series(1, $LARGE_NAMES) n, generate_series(0, $((LARGE_POINTS - 1))) i;
		INSERT INTO metric_names SELECT 'bench.large.' || n FROM generate_series(1, $LARGE_NAMES) n
		ON CONFLICT DO NOTHING"
	load_large() { # both databases at once, one core each
		local p1 rc2
		psql_on $PGPORT1 -c "$L_SQL" >/dev/null &
		p1=$!
		psql_on $PGPORT2 -c "$L_SQL" >/dev/null
		rc2=$?
		wait "$p1" && [ "$rc2" = 0 ]
	}
	run - - load_large || die "loading the large-read data failed"
	sql_both "ANALYZE metrics; ANALYZE metric_names"
	sql_both "CHECKPOINT"
	L_R1=$(count_rows $PGPORT1)
	L_R2=$(count_rows $PGPORT2)
	[ "$L_R1" = $((LARGE_NAMES * LARGE_POINTS)) ] && [ "$L_R2" = $((LARGE_NAMES * LARGE_POINTS)) ] ||
		die "large-read data: $L_R1 and $L_R2 rows, expected $((LARGE_NAMES * LARGE_POINTS)) in each"
	L_PATHS=()
	for ((n = 1; n <= LARGE_NAMES; n++)); do
		L_PATHS+=("/metrics?name=%5Ebench%5C.large%5C.$n%24&from=$T0&to=$((T0 + (LARGE_POINTS - 1) * 60))&resolution=minute")
	done
	progress "large reads: $LARGE_NAMES clients at once, /health probed every 50 ms"
	# reads.py bounds each read to 60 s and its own run to about 70 s.
	run - "$VAR/reads.txt" timeout -k 5 120 "$PY" bench/reads.py "$URL" "$M2PG_PID" "$LARGE_POINTS" 60 "${L_PATHS[@]}" ||
		{ cat "$VAR/reads.txt" >&2; die "bench/reads.py failed (var/bench/reads.txt)"; }
	check_m2pg "the concurrent large reads"
	L_LINE=$(sed -n 's/^BENCH //p' "$VAR/reads.txt")
	[ -n "$L_LINE" ] || { cat "$VAR/reads.txt" >&2; die "bench/reads.py printed no BENCH line (var/bench/reads.txt)"; }
	L_GROWTH=$(calc "$(field hwm_after_mb "$L_LINE") - $(field rss_before_mb "$L_LINE")" 1)
	stop_m2pg
fi

# ---------- 7. overload with batches ----------

declare -A O_STOP O_OK O_503 O_FALSE O_UNKNOWN O_NONE O_NOT503 O_LOST O_RATE O_P50 O_P99 O_R1 O_R2 O_D1 O_D2 O_STRICT O_LENIENT
O_ROWS_OK=1
within() { # ROWS ACKED EXTRA: 0 <= ROWS - ACKED <= EXTRA
	[ $(($1 - $2)) -ge 0 ] && [ $(($1 - $2)) -le "$3" ]
}
overload_phase() { # CONNS
	local c=$1 line ack t0
	start_m2pg 1
	progress "overload: 1000-metric batch POSTs, $c connections ($WRITE_SECONDS s)"
	fresh_tables
	run_wrk bench/batch.lua "$c" 2 "$WRITE_SECONDS" "$URL/metrics" "$VAR/wrk-overload-$c.txt" "$ACTIVE_SECONDS" 1000
	line=$LINE
	check_m2pg "the $c-connection overload phase"
	# SIGTERM: m2pg delivers its pending hints before it exits, so whatever it would still store
	# of this phase is in the databases before they are counted.
	t0=$(now_ns)
	stop_m2pg
	O_STOP[$c]="$(calc "($(now_ns) - $t0) / 1e9" 1) s"
	[ "$STOP_KILLED" = 1 ] && O_STOP[$c]="${O_STOP[$c]}, then SIGKILL (hints lost)"
	settle_counts
	O_OK[$c]=$(field ok "$line")
	O_503[$c]=$(field s503 "$line")
	O_FALSE[$c]=$(field stored_false "$line")
	O_UNKNOWN[$c]=$(field stored_unknown "$line")
	O_NONE[$c]=$(field stored_none "$line")
	O_NOT503[$c]=$(($(field other "$line") - O_503[$c]))
	O_LOST[$c]=$(($(field sent "$line") - O_OK[$c] - $(field other "$line")))
	O_RATE[$c]=$(calc "${O_OK[$c]} * 1000 / $(field window_s "$line")" 0)
	O_P50[$c]=$(calc "$(field p50_ms "$line")")
	O_P99[$c]=$(calc "$(field p99_ms "$line")")
	O_R1[$c]=$ROWS1
	O_R2[$c]=$ROWS2
	ack=$((O_OK[$c] * 1000))
	O_D1[$c]=$((ROWS1 - ack))
	O_D2[$c]=$((ROWS2 - ack))
	# In flight when the load stopped: requests never answered, and 503s that say the metrics
	# may still land ("stored": "unknown"). Strict: a 503 without the field counts as refused,
	# so nothing of it may be stored; lenient: as "unknown".
	local strict=$(((O_LOST[$c] + O_UNKNOWN[$c]) * 1000)) lenient=$(((O_LOST[$c] + O_UNKNOWN[$c] + O_NONE[$c]) * 1000))
	if within "$ROWS1" $ack $strict && within "$ROWS2" $ack $strict; then O_STRICT[$c]=yes; else O_STRICT[$c]=no; O_ROWS_OK=0; fi
	if within "$ROWS1" $ack $lenient && within "$ROWS2" $ack $lenient; then O_LENIENT[$c]=yes; else O_LENIENT[$c]=no; fi
}
if want overload; then
	overload_phase 8
	overload_phase 64
	O_RATIO=$(calc "(${O_RATE[8]} > 0) ? ${O_RATE[64]} / ${O_RATE[8]} : 0" 2)
fi

# ---------- report ----------

progress "done"
if want single; then
	say ""
	say "1. Single-metric POSTs: wrk, 2 threads, keep-alive, ${WRITE_SECONDS} s per phase (requests sent for ${ACTIVE_SECONDS} s,"
	say "   then the ones in flight drain so none is abandoned); POSTs/s = 201s over first request to last answer."
	say "   Tables truncated before each phase; rows counted in each database once their counts stop changing."
	sayf '   %-7s %5s %9s %8s %8s %9s %6s %6s %9s %9s  %s\n' workers conns POSTs/s "p50 ms" "p99 ms" 201s other lost "rows db1" "rows db2" "rows = 201s"
	for key in w1c8 w1c64 w1c256 w2c64; do
		w=${key:1:1} c=${key#*c}
		sayf '   %-7s %5s %9s %8s %8s %9s %6s %6s %9s %9s  %s\n' "$w" "$c" "${RATE[$key]}" "${P50[$key]}" "${P99[$key]}" \
			"${OK[$key]}" "${OTHER[$key]}" "${LOST[$key]}" "${R1[$key]}" "${R2[$key]}" "${CHECK[$key]}"
	done
	say "   (other: answers other than 201; lost: requests wrk sent but got no answer to before it stopped)"
	say "   WORKERS=2 vs 1 at 64 connections: $(calc "${RATE[w2c64]} / ${RATE[w1c64]}") x the POSTs/s"
fi

if want batch; then
	say ""
	say "2. Batch POSTs: 1,000 metrics per request (one pre-built body, 100 names), 8 connections, ${WRITE_SECONDS} s"
	sayf '   %10s %10s %8s %8s %7s %6s %6s %10s %10s %10s  %s\n' requests/s metrics/s "p50 ms" "p99 ms" 201s other lost "201s x1000" "rows db1" "rows db2" "check"
	sayf '   %10s %10s %8s %8s %7s %6s %6s %10s %10s %10s  %s\n' "$B_REQS" "$B_METRICS" "$B_P50" "$B_P99" "$B_OK" "$B_OTHER" "$B_LOST" \
		$((B_OK * 1000)) "$B_R1" "$B_R2" "$B_CHECK"
fi

if want ceilings; then
	want single && RATIO_POST=$(calc "${RATE[w1c64]} / $PGB_TPS" 3)
	want batch && RATIO_BATCH=$(calc "$B_METRICS / $COPY_RATE" 3)
	say ""
	say "3. Raw ceilings into database 1 alone (table metrics, same definition, truncated first; m2pg idle)"
	sayf '   %-58s %10s inserts/s  (%s rows)\n' "pgbench, 1 prepared INSERT per transaction, -c 32 -j 2, 10 s" "$PGB_TPS" "$PGB_ROWS"
	sayf '   %-58s %10s rows/s     (%s rows in %s s)\n' "COPY metrics FROM STDIN (CSV, through psql)" "$COPY_RATE" "$COPY_ROWS_FOUND" "$COPY_S"
	want single && sayf '   %-58s %10s\n' "single POSTs/s at 64 connections / pgbench inserts/s" "$RATIO_POST"
	want batch && sayf '   %-58s %10s\n' "batch metrics/s / COPY rows/s" "$RATIO_BATCH"
	say "   (m2pg writes every metric to both databases; the ceilings write to one)"
fi

if want gets; then
	say ""
	say "4. GET /metrics on data loaded with SQL into both databases (same ids): m2pg reads both databases;"
	say "   SQL = the equivalent single aggregate on database 1 (bench/rollup.sql, pgbench -c 1, latency average)"
	sayf '   %-38s %9s %9s %9s %8s  %-17s %s\n' query "p50 ms" "p99 ms" "SQL ms" m2pg/SQL samples "answer (checked once)"
	for k in a a2 b c; do
		sayf '   %-38s %9s %9s %9s %8s  %-17s %s\n' "${G_DESC[$k]}" "${G_P50[$k]}" "${G_P99[$k]}" "${G_SQL[$k]}" \
			"$(calc "${G_P50[$k]} / ${G_SQL[$k]}")" "${G_HOW[$k]}" "${G_ANS[$k]}"
	done
	for w in "${WARNINGS[@]}"; do say "   $w"; done
	say "   (p50/p99 of m2pg; with 5 samples p99 is the slowest. m2pg/SQL = p50 / SQL. (a) runs over keep-alive"
	say "   connections, as wrk does; the row below repeats it with a new connection per request)"
fi

if want render; then
	say ""
	say "4b. The same 100 series x 1,440 minute points (the mean of 100 names) through Graphite's /render"
	say "    (maxDataPoints=1440) and through GET /metrics (stats=mean); wrk, 2 connections, ${GET_SECONDS} s"
	sayf '   %-10s %9s %9s %8s  %s\n' route "p50 ms" "p99 ms" answers "answer (checked once)"
	for k in get render; do
		sayf '   %-10s %9s %9s %8s  %s\n' "$k" "${R_P50[$k]}" "${R_P99[$k]}" "${R_N[$k]}" "${R_ANS[$k]}"
	done
	want gets || for w in "${WARNINGS[@]}"; do say "   $w"; done
	say "   /render p50 / GET p50: $R_RATIO x"
fi

RSS_MAX=""
if want single || want batch || want gets; then
	say ""
	say "5. m2pg peak RSS (VmHWM)"
	want single && sayf '   %-58s %7s MB\n' "after the 256-connection phase (process of phase 1)" "$RSS_256"
	want batch || want gets && sayf '   %-58s %7s MB  (VmRSS now %s MB)\n' "at the end (process of the batch phase and the GETs)" "$RSS_END" "$RSS_NOW"
	RSS_MAX=$(calc "(${RSS_256:-0} > ${RSS_END:-0}) ? ${RSS_256:-0} : ${RSS_END:-0}" 1)
fi

if want reads; then
	say ""
	say "6. Concurrent large reads: $LARGE_NAMES clients at once, each GETs one name over its $LARGE_POINTS minute buckets"
	say "   (loaded with SQL into both databases, same ids; resolution=minute, so one point per row and statistic);"
	say "   /health GET every 50 ms on a new connection meanwhile; a fresh m2pg process, idle before the reads"
	sayf '   %4s %6s %6s %-40s %8s %7s\n' read status names "points per statistic (want $LARGE_POINTS)" MB s
	while read -r tag i rest; do
		[ "$tag" = READ ] || continue
		pts=$(field points "$rest" | tr ',' '\n' | cut -d: -f2 | sort -u)
		# one figure when every statistic has the same number of points, else each
		[ "$(printf '%s\n' "$pts" | wc -l)" = 1 ] && pts="each of the 8: $pts" || pts=$(field points "$rest" | tr ',' ' ')
		sayf '   %4s %6s %6s %-40s %8s %7s\n' "$i" "$(field status "$rest")" "$(field names "$rest")" "$pts" \
			"$(calc "$(field bytes "$rest") / 1048576" 1)" "$(field seconds "$rest")"
		err=$(printf '%s\n' "$rest" | sed -n 's/.* error=//p')
		[ -n "$err" ] && say "        error: $err"
	done <"$VAR/reads.txt"
	sayf '   %-58s %s of %s\n' "reads answered 200 with every point" "$(field ok "$L_LINE")" "$(field reads "$L_LINE")"
	sayf '   %-58s %s s\n' "wall time, first request to last answer" "$(field wall_s "$L_LINE")"
	sayf '   %-58s %s MB (VmRSS %s MB before, peak VmHWM %s MB)\n' "peak RSS growth over the RSS before the reads" "$L_GROWTH" \
		"$(field rss_before_mb "$L_LINE")" "$(field hwm_after_mb "$L_LINE")"
	sayf '   %-58s %s MB\n' "VmRSS 2 s after the last answer" "$(field rss_after_mb "$L_LINE")"
	sayf '   %-58s %s ms (p50 %s ms; %s probes, %s not 200)\n' "/health worst latency" "$(field health_max_ms "$L_LINE")" \
		"$(field health_p50_ms "$L_LINE")" "$(field health_n "$L_LINE")" "$(field health_failed "$L_LINE")"
fi

if want overload; then
	say ""
	say "7. Overload: 1,000-metric batch POSTs (bench/batch.lua), wrk, 2 threads, ${WRITE_SECONDS} s per phase (sent for"
	say "   ${ACTIVE_SECONDS} s, then drained), a fresh m2pg for each, stopped with SIGTERM (pending hints delivered)"
	say "   before both databases are counted. acked = 201s x 1000; 503s by their \"stored\" field: false (refused),"
	say "   \"unknown\" (timed out), - (no field). In flight at the end = (lost + 503 \"unknown\") x 1000: strict counts a"
	say "   503 without the field as refused, lenient as unknown."
	sayf '   %5s %10s %8s %8s %6s %15s %5s %5s %9s %9s %9s %9s %9s  %s\n' conns acked/s "p50 ms" "p99 ms" 201s "503 (f/u/-)" other lost acked \
		"rows db1" "rows db2" "+db1" "+db2" "rows<=acked+in flight (strict/lenient)"
	for c in 8 64; do
		ack=$((O_OK[$c] * 1000))
		sayf '   %5s %10s %8s %8s %6s %15s %5s %5s %9s %9s %9s %9s %9s  %s\n' "$c" "${O_RATE[$c]}" "${O_P50[$c]}" "${O_P99[$c]}" "${O_OK[$c]}" \
			"${O_503[$c]} (${O_FALSE[$c]}/${O_UNKNOWN[$c]}/${O_NONE[$c]})" "${O_NOT503[$c]}" "${O_LOST[$c]}" "$ack" \
			"${O_R1[$c]}" "${O_R2[$c]}" "${O_D1[$c]}" "${O_D2[$c]}" "${O_STRICT[$c]}/${O_LENIENT[$c]}"
	done
	say "   (+db: rows beyond the acknowledged metrics; other: answers neither 201 nor 503)"
	say "   m2pg took ${O_STOP[8]} to stop after 8 connections, ${O_STOP[64]} after 64"
	say "   acknowledged metrics/s at 64 / at 8 connections: $O_RATIO x"
fi

say ""
say "Targets"
sayf '   %-54s %-32s %s\n' target measured result
if want single && want ceilings; then
	sayf '   %-54s %-32s %s\n' "single POSTs at 64 conns >= 1.0 x pgbench inserts/s" "${RATE[w1c64]}/s = ${RATIO_POST} x" "$(pf "$(calc "${RATE[w1c64]} >= 1.0 * $PGB_TPS" 0)")"
fi
want single && sayf '   %-54s %-32s %s\n' "single POST p99 at 64 conns < 20 ms" "${P99[w1c64]} ms" "$(pf "$(calc "${P99[w1c64]} < 20" 0)")"
if want batch && want ceilings; then
	sayf '   %-54s %-32s %s\n' "batch metrics/s >= 0.45 x COPY rows/s" "${B_METRICS}/s = ${RATIO_BATCH} x" "$(pf "$(calc "$B_METRICS >= 0.45 * $COPY_RATE" 0)")"
fi
if want gets; then
	sayf '   %-54s %-32s %s\n' "GET 1 name over 1,000 buckets p50 < 5 ms" "${G_P50[a]} ms" "$(pf "$(calc "${G_P50[a]} < 5" 0)")"
	sayf '   %-54s %-32s %s\n' "GET 1,000,000 rows, hour res. <= 1.5 x SQL aggregate" "$(calc "${G_P50[c]} / ${G_SQL[c]}" 3) x (${G_P50[c]} vs ${G_SQL[c]} ms)" "$(pf "$(calc "${G_P50[c]} <= 1.5 * ${G_SQL[c]}" 0)")"
fi
if want render; then
	sayf '   %-54s %-32s %s\n' "/render 100 x 1,440 points <= 1.5 x GET /metrics" "$R_RATIO x (${R_P50[render]} vs ${R_P50[get]} ms)" "$(pf "$(calc "${R_P50[render]} <= 1.5 * ${R_P50[get]}" 0)")"
fi
[ -n "$RSS_MAX" ] && sayf '   %-54s %-32s %s\n' "peak RSS < 64 MB" "${RSS_MAX} MB" "$(pf "$(calc "$RSS_MAX < 64" 0)")"
[ "$NPHASES" -gt 0 ] && sayf '   %-54s %-32s %s\n' "rows = 201s in each database, every write phase" "$PHASES_OK of $NPHASES phases" "$(pf "$ALL_OK")"
if want reads; then
	sayf '   %-54s %-32s %s\n' "$LARGE_NAMES reads at once of $LARGE_POINTS buckets: 200, all points" \
		"$(field ok "$L_LINE") of $(field reads "$L_LINE")" "$(pf "$([ "$(field ok "$L_LINE")" = "$(field reads "$L_LINE")" ] && echo 1)")"
	sayf '   %-54s %-32s %s\n' "  peak RSS growth during them < 96 MB" "$L_GROWTH MB" "$(pf "$(calc "$L_GROWTH < 96" 0)")"
	sayf '   %-54s %-32s %s\n' "  /health < 200 ms throughout" "worst $(field health_max_ms "$L_LINE") ms" \
		"$(pf "$(calc "$(field health_max_ms "$L_LINE") < 200 && $(field health_failed "$L_LINE") == 0" 0)")"
fi
if want overload; then
	sayf '   %-54s %-32s %s\n' "overload: acked metrics/s at 64 conns >= 0.8 x at 8" "${O_RATE[64]}/s = $O_RATIO x" "$(pf "$(calc "$O_RATIO >= 0.8" 0)")"
	sayf '   %-54s %-32s %s\n' "  rows <= acked + in flight, each database (strict)" "+${O_D1[8]}/+${O_D2[8]} at 8, +${O_D1[64]}/+${O_D2[64]} at 64" "$(pf "$O_ROWS_OK")"
fi
say ""
nlog=$(grep -cE '^level=(warn|error)' "$VAR/m2pg.log")
say "m2pg logged $nlog warning/error lines (LOG_LEVEL=warn, var/bench/m2pg.log)$( [ "$nlog" -gt 0 ] && echo ', most frequent:')"
grep -E '^level=(warn|error)' "$VAR/m2pg.log" | sed -E 's/(rows|metrics|inflight)=[0-9]+/\1=N/g' | sort | uniq -c | sort -rn | head -3 |
	cut -c1-160 | while read -r line; do say "   $line"; done
say "load average at end $(cut -d' ' -f1-3 /proc/loadavg); bench took $(($(date +%s) - BENCH_START)) s; raw outputs in var/bench"
cat "$REPORT"
