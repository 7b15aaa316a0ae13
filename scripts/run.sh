#!/bin/sh
# `make run`: serves m2pg on PORT. With DATABASE_URLS unset it starts two local PostgreSQL
# clusters under ./var first, so the redundant path is real from the first minute. Ctrl-C
# stops m2pg and the clusters it started.
set -eu
cd "$(dirname "$0")/.."
PORT=${PORT:-8080}
export PORT
started=""
cleanup() {
	trap - INT TERM EXIT
	[ -n "${pid:-}" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
	for d in $started; do scripts/pg.sh stop "$d"; done
}
trap cleanup INT TERM EXIT
if [ -z "${DATABASE_URLS:-}" ] && [ -z "${DATABASE_URL:-}" ]; then
	mkdir -p var
	[ "$(id -u)" -eq 0 ] && chmod 755 var
	for i in 1 2; do
		port=$((25430 + i))
		scripts/pg.sh start "$PWD/var/pg$i" "$port"
		started="$started $PWD/var/pg$i"
	done
	export DATABASE_URLS="postgres://postgres@127.0.0.1:25431/postgres|postgres://postgres@127.0.0.1:25432/postgres"
	echo "started two PostgreSQL clusters: var/pg1 (port 25431), var/pg2 (port 25432)"
fi
export HOST=${HOST:-127.0.0.1}
cat <<EOT
m2pg on http://$HOST:$PORT — try:
  curl -i -X POST http://$HOST:$PORT/metrics -d '{"bucket": "$(date -u +%Y-%m-%dT%H:%M:00Z)", "name": "hello.world", "count": 1, "mean": 2.5}'
  curl -s 'http://$HOST:$PORT/metrics?name=hello&resolution=minute'
  open http://$HOST:$PORT/ for charts (Graphite's API for Grafana is at the same address)
Ctrl-C stops everything.
EOT
./m2pg web &
pid=$!
wait "$pid"
