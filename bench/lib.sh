# Plumbing shared by bench/run.sh (`make bench`) and bench/scale.sh (`make bench-scale`),
# sourced from the repository's root. BENCH_NAME names the script in messages.

die() { # also from a $(...) subshell: the main shell is told to exit (trap USR1)
	printf '%s: %s\n' "$BENCH_NAME" "$*" >&2
	[ "$BASHPID" != "$$" ] && kill -USR1 $$
	exit 1
}

# run IN OUT CMD...: runs CMD as a job, its stdin from file IN (- for /dev/null) and its stdout
# to file OUT (- for the script's), and waits for it, so that a signal interrupts the wait at once
# and cleanup() can stop the job's whole process group. The redirections belong to the job alone:
# a trap that fires during the wait writes where the script writes. Callers bound CMD (timeout).
run() {
	local in=$1 out=$2
	shift 2
	[ "$in" = - ] && in=/dev/null
	if [ "$out" = - ]; then "$@" <"$in" & else "$@" <"$in" >"$out" & fi
	CHILD=$!
	wait "$CHILD"
	local rc=$?
	CHILD=""
	return $rc
}

stop_m2pg() {
	[ -n "$M2PG_PID" ] || return 0
	local pid=$M2PG_PID i
	M2PG_PID=""
	kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < 150; i++)); do # 15 s: it answers what is in flight, then exits
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	STOP_KILLED=0
	kill -0 "$pid" 2>/dev/null && STOP_KILLED=1
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

calc() { awk "BEGIN { printf \"%.${2:-2}f\", ($1) }"; } # EXPR [DECIMALS]; also 1/0 for a comparison
now_ns() { date +%s%N; }
pf() { if [ "$1" = 1 ]; then echo PASS; else echo MISS; fi; }
