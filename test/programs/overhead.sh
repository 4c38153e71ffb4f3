#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
#
# overhead.sh: what upvm costs a compute-bound program when nothing pages
# (a budget larger than its footprint): the program natively and under
# `upvm run --budget BUDGET`, alternately, N times each; the medians and
# their ratio.  (Measurements for the notes; not a test: timings never are.)
#
# usage: overhead.sh UPVM N BUDGET -- COMMAND...
set -eu
UPVM=$(realpath "$1")
N=$2
BUDGET=$3
shift 4
run() {	# run CMD...: seconds
	local t0 t1
	t0=$(date +%s.%N)
	"$@" >/dev/null
	t1=$(date +%s.%N)
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }'
}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
: >"${TMPDIR:-/tmp}/overhead.native"
: >"${TMPDIR:-/tmp}/overhead.upvm"
for i in $(seq "$N"); do
	run "$@" >>"${TMPDIR:-/tmp}/overhead.native"
	run "$UPVM" run --budget "$BUDGET" -- "$@" >>"${TMPDIR:-/tmp}/overhead.upvm"
done
n=$(median <"${TMPDIR:-/tmp}/overhead.native")
u=$(median <"${TMPDIR:-/tmp}/overhead.upvm")
echo "native: $(tr '\n' ' ' <"${TMPDIR:-/tmp}/overhead.native")(median $n s)"
echo "upvm:   $(tr '\n' ' ' <"${TMPDIR:-/tmp}/overhead.upvm")(median $u s)"
awk -v n="$n" -v u="$u" 'BEGIN { printf "upvm/native: %.3fx (%+.1f%%)\n",
    u / n, (u / n - 1) * 100 }'
rm -f "${TMPDIR:-/tmp}/overhead.native" "${TMPDIR:-/tmp}/overhead.upvm"
