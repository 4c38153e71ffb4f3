#!/bin/sh
# bench.sh: the far-memory figures of the README: upvm-bench with the
# local swap file, with three loopback memcached servers (-m 4000 -t 2,
# replicas 1; with_servers.sh starts and stops them) and the kernel's own
# swap (-m kernel-swap), alternating, three rounds, CSV to stdout.  The servers are first warmed by one
# untimed write of the size (a running store's state).
#   usage: bench.sh UPVM-BENCH [SIZE [BUDGET [WORKLOADS [THREADS]]]]
#   (defaults 4G 1G seq-write,seq-read,rand-read 1,4)
set -u
if [ -z "${BENCH_SWAP:-}" ]; then
	MC_MEM=4000 MC_THREADS=2 MC_REPLICAS=1 exec \
	    "$(dirname "$0")/with_servers.sh" sh -c \
	    'BENCH_SWAP=$UPVM_SWAP; unset UPVM_SWAP; export BENCH_SWAP;
	     exec "$0" "$@"' "$0" "$@"
fi
bench=$1 size=${2:-4G} budget=${3:-1G}
work=${4:-seq-write,seq-read,rand-read} threads=${5:-1,4}
"$bench" -s "$size" -b "$budget" -w seq-write -t 1 -m upvm -r 1 \
    --swap "$BENCH_SWAP" -f csv >/dev/null 2>&1
echo "swap,round,mode,workload,threads,bytes,repeats,seconds,gib_per_s"
for round in 1 2 3; do
	"$bench" -s "$size" -b "$budget" -w "$work" -t "$threads" -m upvm \
	    -r 1 --ops 50000 -f csv | grep -v '^mode' | cut -d, -f1-7 |
	    sed "s/^/file,$round,/"
	"$bench" -s "$size" -b "$budget" -w "$work" -t "$threads" -m upvm \
	    -r 1 --ops 50000 --swap "$BENCH_SWAP" -f csv | grep -v '^mode' |
	    cut -d, -f1-7 | sed "s/^/memcached,$round,/"
	"$bench" -s "$size" -b "$budget" -w "$work" -t "$threads" \
	    -m kernel-swap -r 1 --ops 50000 -f csv | grep -v '^mode' |
	    cut -d, -f1-7 | sed "s/^/kernel,$round,/"
done
