#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
#
# run.sh: the chaos model test (chaos.c), bounded for CI.  First natively,
# every operation, several threads and fork: the model itself must hold on
# the kernel.  Then under `upvm run` with a budget a sixth of the
# footprint, every operation (fork too), on both pageout protocols, each
# seed printed so that a failure replays (chaos --seed N --threads 1
# replays exactly).
#
# usage: run.sh UPVM CHAOS [SECONDS]   (SECONDS per run, default 12)
set -u
UPVM=$1
CHAOS=$2
SECS=${3:-12}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/upvm-chaos.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export TMPDIR=$WORK
FAILED=0
SEED0=${CHAOS_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}

run() {	# run NAME CMD...: one run, its last line, its status
	name=$1
	shift
	if timeout $((SECS * 4 + 60)) "$@" >"$WORK/out" 2>&1; then
		echo "ok   $name: $(tail -n 1 "$WORK/out")"
	else
		echo "FAIL $name (status $?):"
		# every failure's first line (a fork child's comes long before
		# its parent's), then the end of the output
		grep '^chaos: FAILED' "$WORK/out"
		grep -v '^upvm: warn' "$WORK/out" | tail -n 60
		FAILED=1
	fi
}

run "native, 3 threads, every operation" \
    "$CHAOS" --seed "$SEED0" --threads 3 --seconds "$SECS" --dir "$WORK"
run "native, 1 thread, every operation" \
    "$CHAOS" --seed $((SEED0 + 1)) --threads 1 --seconds "$SECS" --dir "$WORK"
for proto in wp move; do
	threads=3
	for k in 2 3; do
		run "upvm --pageout $proto, $threads threads, seed $((SEED0 + k))" \
		    env UPVM_PAGEOUT=$proto "$UPVM" run --budget 16M -- \
		    "$CHAOS" --seed $((SEED0 + k)) --threads $threads \
		    --seconds "$SECS" --dir "$WORK" --check-uffd
	done
done
exit $FAILED
