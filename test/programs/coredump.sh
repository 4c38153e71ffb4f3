#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
#
# coredump.sh: a program under `upvm run` that dies with a core dump
# (abort(), a segmentation fault, SIGQUIT) after writing 4x its budget:
# the core holds every page it wrote, the paged-out ones included
# (runtime/face/coredump.c).  Natively first, to check the checker; and
# with `ulimit -c 0` no page-in is done and the program still dies by its
# signal.  Skips (77) when core_pattern sends cores to a program or to
# another directory: the test must not change the machine's setting.
# Ends with a Criterion-style synthesis line.
#
# usage: coredump.sh UPVM CRASH
set -u
UPVM=$(realpath "$1")
CRASH=$(realpath "$2")
pattern=$(cat /proc/sys/kernel/core_pattern)
case "$pattern" in
*/* | \|*)
	echo "skip: core_pattern is '$pattern' (a pipe or another" \
	    "directory): the cores cannot be read here"
	exit 77
	;;
esac
WORK=$(mktemp -d "${TMPDIR:-/tmp}/upvm-coredump.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$WORK" || exit 1
export TMPDIR=$WORK
NPASS=0 NFAIL=0
pass() { echo "ok   $*"; NPASS=$((NPASS + 1)); }
fail() { echo "FAIL $*"; NFAIL=$((NFAIL + 1)); }

# dies WHAT EXPECT_RC CMD...: run CMD (crash MODE MIB), which must die
# with status EXPECT_RC and leave a core holding every page it wrote
dies() {
	local what=$1 want=$2 rc core
	shift 2
	rm -f core core.*
	# (the inner shell's "Aborted (core dumped)" goes to /dev/null)
	( (ulimit -c unlimited; exec "$@") >out 2>err ) 2>/dev/null
	rc=$?
	core=$(ls core core.* 2>/dev/null | head -n 1)
	read -r _ addr npages <out
	if [ "$rc" != "$want" ]; then
		fail "$what: exit status $rc, not $want"
		tail -n 5 err
	elif [ -z "$core" ]; then
		fail "$what: no core file (core_pattern '$pattern')"
		tail -n 5 err
	elif "$CRASH" check "$core" "$addr" "$npages" >check 2>&1; then
		pass "$what: $(cat check); $(grep -o 'SIG.*dump.*' err)"
	else
		fail "$what: $(cat check)"
		tail -n 5 err
	fi
	rm -f core core.*
}

dies "natively, abort()" 134 "$CRASH" abort 64
for mode in abort:134 segv:139 quit:131; do
	dies "upvm run --budget 16M, ${mode%:*} after writing 64M" \
	    "${mode#*:}" "$UPVM" run --budget 16M -- "$CRASH" "${mode%:*}" 64
done

# no core wanted: no page-in, the same death
( (ulimit -c 0; exec "$UPVM" run --budget 16M -- "$CRASH" abort 64) \
    >out 2>err ) 2>/dev/null
rc=$?
if [ "$rc" = 134 ] && ! ls core core.* >/dev/null 2>&1 &&
    ! grep -q "read back in" err; then
	pass "ulimit -c 0: killed by SIGABRT, no core, no page-in"
else
	fail "ulimit -c 0: status $rc, $(ls core* 2>/dev/null)"
	cat err
fi

echo "[====] Synthesis: Tested: $((NPASS + NFAIL)) | Passing: $NPASS |" \
    "Failing: $NFAIL | Crashing: 0"
[ "$NFAIL" = 0 ]
