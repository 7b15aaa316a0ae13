#!/bin/sh
# Runs one libFuzzer target for some seconds over a scratch copy of its committed seed corpus
# (so that the inputs it generates stay out of git) and prints one line. Any finding (a crash,
# a sanitizer report, a leak, an input slower than 10 s) fails with the log and the input kept.
# usage: tests/fuzz/run.sh build/fuzz/fuzz_body 5
set -u
bin=$1
secs=$2
name=$(basename "$bin")
work=build/fuzz/work/$name
rm -rf "$work"
mkdir -p "$work/corpus" "$work/artifacts"
cp tests/fuzz/corpus/"$name"/* "$work/corpus/"
"$bin" -max_total_time="$secs" -timeout=10 -max_len=16384 -rss_limit_mb=1024 \
	-artifact_prefix="$work/artifacts/" "$work/corpus" >"$work/log" 2>&1
rc=$?
runs=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1 runs in \2 s/p' "$work/log")
if [ "$rc" -eq 0 ] && [ -n "$runs" ]; then
	echo "$name: $runs, no crash"
	exit 0
fi
# The report itself, not libFuzzer's banner.
grep -m1 -A30 -E 'ERROR: |runtime error|deadly signal|Test unit written' "$work/log" || tail -n 30 "$work/log"
echo "$name: FAILED (exit $rc); log in $work/log, the input in $work/artifacts/"
exit 1
