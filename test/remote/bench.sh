#!/bin/sh
# bench.sh: the far-memory figures of the README: upvm-bench with the
# local swap file and with three loopback memcached servers (-m 4000
# -t 2, replicas 1), alternating, three rounds, CSV to stdout.  The
# servers start once and are warmed by one untimed write of the size
# (a running store's state); they are stopped afterwards.
#   usage: bench.sh UPVM-BENCH [SIZE [BUDGET [WORKLOADS [THREADS]]]]
#   (defaults 4G 1G seq-write,seq-read,rand-read 1,4)
set -u
bench=$1 size=${2:-4G} budget=${3:-1G}
work=${4:-seq-write,seq-read,rand-read} threads=${5:-1,4}
command -v memcached >/dev/null 2>&1 || {
	echo "bench.sh: needs memcached (Debian's memcached)" >&2
	exit 2
}
pids=""
cleanup() { for p in $pids; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; }
trap cleanup EXIT INT TERM
user=""
[ "$(id -u)" = 0 ] && user="-u nobody"
url="memcached://"
sep=""
for i in 1 2 3; do
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	# shellcheck disable=SC2086
	memcached $user -l 127.0.0.1 -p "$port" -m 4000 -t 2 &
	pids="$pids $!"
	url="${url}${sep}127.0.0.1:${port}"
	sep=","
	for _ in $(seq 100); do
		python3 -c "import socket; socket.create_connection(('127.0.0.1',$port))" 2>/dev/null && break
		sleep 0.05
	done
done
"$bench" -s "$size" -b "$budget" -w seq-write -t 1 -m upvm -r 1 \
    --swap "$url" -f csv >/dev/null 2>&1
echo "swap,round,mode,workload,threads,bytes,repeats,seconds,gib_per_s"
for round in 1 2 3; do
	"$bench" -s "$size" -b "$budget" -w "$work" -t "$threads" -m upvm \
	    -r 1 --ops 50000 -f csv | grep -v '^mode' | cut -d, -f1-7 |
	    sed "s/^/file,$round,/"
	"$bench" -s "$size" -b "$budget" -w "$work" -t "$threads" -m upvm \
	    -r 1 --ops 50000 --swap "$url" -f csv | grep -v '^mode' |
	    cut -d, -f1-7 | sed "s/^/memcached,$round,/"
done
