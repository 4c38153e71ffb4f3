#!/bin/sh
# with_servers.sh: run a command with UPVM_SWAP naming three memcached
# servers started here on free loopback ports (two copies of each page),
# and stop them afterwards, whatever happens.  Skips (exit 77) without
# memcached.  MC_MEM, MC_THREADS, MC_REPLICAS: each server's -m and -t,
# and the copies of each page (1024, 1, 2).
#   usage: with_servers.sh COMMAND [ARGS...]
set -u
command -v memcached >/dev/null 2>&1 || {
	echo "with_servers.sh: skipped: needs memcached (Debian's memcached)"
	exit 77
}
pids=""
cleanup() { for p in $pids; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; }
trap cleanup EXIT INT TERM
user=""
[ "$(id -u)" = 0 ] && user="-u nobody"
url="memcached://"
sep=""
for i in 1 2 3; do
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	# shellcheck disable=SC2086
	memcached $user -l 127.0.0.1 -p "$port" -U 0 -m "${MC_MEM:-1024}" \
	    -t "${MC_THREADS:-1}" &
	pids="$pids $!"
	url="${url}${sep}127.0.0.1:${port}"
	sep=","
	for _ in $(seq 100); do
		python3 -c "import socket; socket.create_connection(('127.0.0.1',$port))" 2>/dev/null && break
		sleep 0.05
	done
done
UPVM_SWAP="$url?replicas=${MC_REPLICAS:-2}" "$@"
