#!/bin/sh
# `make test`'s system suites: the plain build and the ASan/UBSan build at once. Each suite is
# mostly waiting (servers starting and stopping, fault timeouts), so on two cores the pair takes
# about 15 minutes where one after the other took 17. The ASan suite's output is kept in a file
# and printed when both are done; the status is a failure if either suite failed.
set -u
cd "$(dirname "$0")/.."
log=$(mktemp "${TMPDIR:-/tmp}/m2pg-system-asan.XXXXXX")
make --no-print-directory system-asan >"$log" 2>&1 &
asan=$!
make --no-print-directory system
plain=$?
wait "$asan"
sanitized=$?
echo "== system tests under ASan/UBSan (build/asan/m2pg)"
cat "$log"
rm -f "$log"
[ "$plain" -eq 0 ] && [ "$sanitized" -eq 0 ]
