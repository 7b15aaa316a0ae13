#!/bin/sh
# Local PostgreSQL 15 clusters for `make run` and `make bench`, in a directory of their own and
# on loopback only.
#   scripts/pg.sh start DIR PORT   initialise DIR if needed, then start a server on PORT
#   scripts/pg.sh stop DIR         stop it (fast shutdown)
# As root the server runs as the `postgres` user, as PostgreSQL requires.
set -eu
BIN=/usr/lib/postgresql/15/bin
cmd=$1 dir=$2
as_pg() {
	if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case "$cmd" in
start)
	port=$3
	mkdir -p "$dir"
	[ "$(id -u)" -eq 0 ] && chown postgres "$dir"
	if [ ! -f "$dir/PG_VERSION" ]; then
		as_pg "$BIN/initdb" -D "$dir" -U postgres -A trust --no-sync -E UTF8 >"$dir.initdb.log" 2>&1 ||
			{ cat "$dir.initdb.log"; exit 1; }
	fi
	as_pg "$BIN/pg_ctl" -D "$dir" -l "$dir/server.log" -w -o \
		"-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir -c max_connections=200" \
		start >/dev/null
	;;
stop)
	[ -f "$dir/postmaster.pid" ] && as_pg "$BIN/pg_ctl" -D "$dir" -m fast -w stop >/dev/null || true
	;;
*)
	echo "usage: $0 start DIR PORT | stop DIR" >&2
	exit 2
	;;
esac
