#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
#
# errors.sh: `upvm run` with bad options or environment exits non-zero with
# one line that names the problem, before the program starts (a program
# that would leave a marker file behind never runs).  Ends with a
# Criterion-style synthesis line, which setup.sh's tally reads.
#
# usage: errors.sh UPVM
set -u
UPVM=$(realpath "$1")
WORK=$(mktemp -d "${TMPDIR:-/tmp}/upvm-errors.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
MARK=$WORK/started
NPASS=0 NFAIL=0

fail() { echo "FAIL $*"; NFAIL=$((NFAIL + 1)); }

# expect WHAT PATTERN [ENV=VAL...] -- ARGS...: upvm run ARGS fails, prints
# exactly one line, and that line matches PATTERN
expect() {
	local what=$1 pattern=$2 envs=() out rc
	shift 2
	while [ "$1" != "--" ]; do envs+=("$1"); shift; done
	shift
	out=$(env "${envs[@]}" "$UPVM" run "$@" 2>&1)
	rc=$?
	if [ "$rc" -eq 0 ]; then
		fail "$what: exit status 0"
	elif [ -e "$MARK" ]; then
		fail "$what: the program started"
	elif [ "$(printf '%s\n' "$out" | wc -l)" -ne 1 ]; then
		fail "$what: not one line:"; printf '%s\n' "$out"
	elif ! printf '%s\n' "$out" | grep -q -- "$pattern"; then
		fail "$what: '$out' does not say '$pattern'"
	else
		echo "ok   $what (status $rc): $out"
		NPASS=$((NPASS + 1))
	fi
	rm -f "$MARK"
}

PROG=(touch "$MARK")
expect "--budget abc" "abc" -- --budget abc -- "${PROG[@]}"
expect "--budget 1K" "budget" -- --budget 1K -- "${PROG[@]}"
expect "--swap /nonexistent/dir" "/nonexistent/dir" -- \
    --swap /nonexistent/dir -- "${PROG[@]}"
expect "--swap /nonexistent/dir with a budget" "/nonexistent/dir" -- \
    --budget 64M --swap /nonexistent/dir -- "${PROG[@]}"
expect "missing program" "no-such-program" -- --budget 64M -- \
    no-such-program-upvm
expect "no program" "no program" --
expect "unknown option" "--frobnicate" -- --frobnicate -- "${PROG[@]}"
expect "--cluster 3" "power of two" -- --cluster 3 -- "${PROG[@]}"
expect "--numa bind:63" "bind:63" -- --numa bind:63 -- "${PROG[@]}"
expect "--node-budget 0=abc" "abc" -- --node-budget 0=abc -- "${PROG[@]}"
expect "--numa-promote without node budgets" "node_budget" -- \
    --numa-promote -- "${PROG[@]}"
expect "UPVM_SWAP_MAX=lots" "UPVM_SWAP_MAX" UPVM_SWAP_MAX=lots -- \
    -- "${PROG[@]}"
expect "UPVM_BOGUS=1" "UPVM_BOGUS" UPVM_BOGUS=1 -- -- "${PROG[@]}"

# and a good one runs the program
if "$UPVM" run --budget 64M --swap "$WORK" -- "${PROG[@]}" &&
    [ -e "$MARK" ]; then
	echo "ok   a valid command line runs the program"
	NPASS=$((NPASS + 1))
else
	fail "a valid command line did not run the program"
fi
# --stats on stderr reaches it even from a program that closes its stderr
# before it exits (sort(1), as every gnulib program, in an atexit handler
# that runs before upvm's summary)
if printf 'b\na\n' | "$UPVM" run --budget 64M --swap "$WORK" --stats -- \
    sort 2>"$WORK/stats.err" >"$WORK/sorted" &&
    [ "$(tr '\n' ' ' <"$WORK/sorted")" = "a b " ] &&
    grep -q "^upvm: pid [0-9]*: [0-9]* faults" "$WORK/stats.err"; then
	echo "ok   --stats: the summary of sort, which closes its stderr"
	NPASS=$((NPASS + 1))
else
	fail "--stats: no summary from sort: $(head -c 300 "$WORK/stats.err")"
fi
echo "[====] Synthesis: Tested: $((NPASS + NFAIL)) | Passing: $NPASS |" \
    "Failing: $NFAIL | Crashing: 0"
[ "$NFAIL" -eq 0 ]
