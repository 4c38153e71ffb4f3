#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
#
# extremes.sh: unmodified programs under `upvm run` at the edges: stopped
# and continued mid-pageout, killed mid-write-back, 100 000 mappings, 64
# threads faulting at once, a 1 TiB sparse mapping, the smallest budget,
# RLIMIT_NOFILE and RLIMIT_AS limits, the swap's file system filled by
# another process and the swap directory removed while running.  Each
# case must end in correct paging (the program checks every page and says
# OK) or in one clear line; never a hang (each run is timed out), a crash
# or wrong data.  Ends with a Criterion-style synthesis line.
#
# usage: extremes.sh UPVM PAGES EXTREMES
set -u
UPVM=$(realpath "$1")
PAGES=$(realpath "$2")
EXTREMES=$(realpath "$3")
WORK=$(mktemp -d "${TMPDIR:-/tmp}/upvm-extremes.XXXXXX")
MNT=
# unmount: the kernel lets go of an exited program's io_uring files a
# moment after it exits (the ring's teardown is asynchronous)
unmount() {
	for _ in $(seq 50); do
		umount "$MNT" 2>/dev/null && { MNT=; return 0; }
		sleep 0.1
	done
	umount -l "$MNT" && MNT=
}
cleanup() {
	[ -n "$MNT" ] && unmount
	rm -rf "$WORK"
}
trap cleanup EXIT
export TMPDIR=$WORK
NPASS=0 NFAIL=0
SWAP=$WORK/swap
mkdir -p "$SWAP"

pass() { echo "ok   $*"; NPASS=$((NPASS + 1)); }
fail() { echo "FAIL $*"; NFAIL=$((NFAIL + 1)); }

# ok_run WHAT OUT: the run's output ends in the program's OK line
ok_run() {
	if grep -q "^\(pages\|extremes\): OK" "$2"; then
		pass "$1: $(grep "^\(pages\|extremes\): OK" "$2" | cut -c1-90)"
	else
		fail "$1:"
		grep -v '^upvm: warn' "$2" | tail -n 15
	fi
}

# 1. stopped and continued again and again while it pages
"$UPVM" run --budget 32M --swap "$SWAP" -- "$PAGES" 128 >"$WORK/out" 2>&1 &
pid=$!
stops=0
while kill -0 "$pid" 2>/dev/null; do
	sleep 0.2
	kill -STOP "$pid" 2>/dev/null && stops=$((stops + 1))
	sleep 0.1
	kill -CONT "$pid" 2>/dev/null
done
wait "$pid"
ok_run "SIGSTOP/SIGCONT x$stops mid-pageout" "$WORK/out"

# 2. killed mid-write-back: nothing left (no swap file, no process, no
# cgroup of its own)
cg0=$(ls /sys/fs/cgroup/memory 2>/dev/null | sort)
mkdir -p "$WORK/kill"
"$UPVM" run --budget 16M --swap "$WORK/kill" -- "$PAGES" 512 \
    >"$WORK/out" 2>&1 &
pid=$!
for _ in $(seq 100); do		# until it pages (a swap file is in use)
	grep -q 'kill.*deleted\|#' <(ls -l /proc/"$pid"/fd 2>/dev/null) &&
	    break
	sleep 0.05
done
sleep 0.5
kill -KILL "$pid"
wait "$pid" 2>/dev/null
sleep 0.2
left=$(ls -A "$WORK/kill")
if [ -n "$left" ]; then
	fail "SIGKILL mid-write-back: left in the swap directory: $left"
elif [ -e /proc/"$pid" ]; then
	fail "SIGKILL mid-write-back: process $pid is still there"
elif [ "$(ls /sys/fs/cgroup/memory 2>/dev/null | sort)" != "$cg0" ]; then
	fail "SIGKILL mid-write-back: the cgroups changed"
else
	pass "SIGKILL mid-write-back: no swap file, no process, no cgroup left"
fi

# 3. 100 000 mappings (64 KiB, all managed), half of them replaced
timeout 600 "$UPVM" run --budget 32M --swap "$SWAP" --threshold 64K -- \
    "$EXTREMES" maps 100000 >"$WORK/out" 2>&1
ok_run "100 000 managed mappings" "$WORK/out"

# 4. 64 threads faulting at once
timeout 600 "$UPVM" run --budget 32M --swap "$SWAP" -- \
    "$EXTREMES" threads 64 >"$WORK/out" 2>&1
ok_run "64 threads faulting at once" "$WORK/out"

# 5. a 1 TiB sparse mapping
timeout 600 "$UPVM" run --budget 32M --swap "$SWAP" -- \
    "$EXTREMES" sparse 1024 >"$WORK/out" 2>&1
ok_run "1 TiB sparse mapping" "$WORK/out"

# 5b. forks of a program whose heap (and allocator metadata) pages
timeout 600 "$UPVM" run --budget 16M --swap "$SWAP" -- \
    "$EXTREMES" forks 10 >"$WORK/out" 2>&1
ok_run "fork under a budget, heap paged" "$WORK/out"

# 5c. threads whose first act is fork(): the allocator maps an arena for
# the thread inside fork's handlers, while upvm holds its own lock
timeout 120 "$UPVM" run --budget 8M --swap "$SWAP" -- \
    "$EXTREMES" threadforks 12 >"$WORK/out" 2>&1
ok_run "fork as a new thread's first act" "$WORK/out"

# 6. the smallest budget works; a smaller one is one clear line
timeout 600 "$UPVM" run --budget 4M --swap "$SWAP" -- "$PAGES" 64 \
    >"$WORK/out" 2>&1
ok_run "budget 4M (the smallest)" "$WORK/out"
out=$("$UPVM" run --budget 1M --swap "$SWAP" -- "$PAGES" 64 2>&1)
rc=$?
if [ "$rc" -ne 0 ] && [ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] &&
    printf '%s\n' "$out" | grep -q "too small"; then
	pass "budget 1M (status $rc): $out"
else
	fail "budget 1M (status $rc): $out"
fi

# 7. RLIMIT_NOFILE 16: a soft limit is raised for upvm's descriptors; a
# hard one is said in one line
(ulimit -Sn 16 && exec "$UPVM" run --budget 32M --swap "$SWAP" -- \
    "$PAGES" 64) >"$WORK/out" 2>&1
ok_run "RLIMIT_NOFILE soft 16" "$WORK/out"
(ulimit -n 16 && exec "$UPVM" run --budget 32M --swap "$SWAP" -- \
    "$PAGES" 64) >"$WORK/out" 2>&1
if grep -q "RLIMIT_NOFILE.*ulimit -Hn" "$WORK/out"; then
	pass "RLIMIT_NOFILE hard 16: $(grep -m1 RLIMIT_NOFILE "$WORK/out" |
	    cut -c1-90)..."
else
	fail "RLIMIT_NOFILE hard 16: no line about it"
	tail -n 5 "$WORK/out"
fi

# 8. RLIMIT_AS: a limit the program fits in natively
(ulimit -v 1000000 && exec "$UPVM" run --budget 32M --swap "$SWAP" -- \
    "$PAGES" 128) >"$WORK/out" 2>&1
ok_run "RLIMIT_AS 1 GB" "$WORK/out"

# 9 and 10 need a small file system of their own (root)
if mkdir -p "$WORK/fs" && mount -t tmpfs -o size=96m none "$WORK/fs" \
    2>/dev/null; then
	MNT=$WORK/fs
	# 9. another process fills the swap's file system mid-run: the
	# pages that cannot go out stay resident, past the budget
	"$UPVM" run --budget 16M --swap "$MNT" -- "$PAGES" 256 \
	    >"$WORK/out" 2>&1 &
	pid=$!
	sleep 1
	dd if=/dev/zero of="$MNT/filler" bs=1M 2>/dev/null
	wait "$pid"
	if ! grep -q "^pages: OK" "$WORK/out"; then
		ok_run "swap file system filled mid-run" "$WORK/out"
	elif ! grep -qi "swap.*full\|no space" "$WORK/out"; then
		fail "swap file system filled mid-run: no line said so"
	else
		pass "swap file system filled mid-run, pages kept: $(grep -i \
		    -m1 'full\|no space' "$WORK/out" | cut -c1-70)..."
	fi
	rm -f "$MNT/filler"
	unmount
else
	echo "skip swap file system filled mid-run: mounting tmpfs needs root"
fi

# 10. the swap directory removed while running: the program goes on
# paging (its file has no name); a program started after says why it
# cannot start
mkdir -p "$WORK/gone"
"$UPVM" run --budget 16M --swap "$WORK/gone" -- sh -c "
    \"$EXTREMES\" threads 16 & sleep 0.5; rm -rf \"$WORK/gone\"; wait \$!
    \"$EXTREMES\" threads 2" >"$WORK/out" 2>&1
if ! grep -q "^extremes: OK: 16 threads" "$WORK/out"; then
	ok_run "swap directory removed mid-run" "$WORK/out"
elif grep -q "^extremes: OK: 2 threads" "$WORK/out" ||
    ! grep -q "cannot create a swap file in $WORK/gone/: No such file" \
    "$WORK/out"; then
	fail "swap directory removed mid-run: the next program:"
	tail -n 5 "$WORK/out"
else
	pass "swap directory removed mid-run: paged on; the next program" \
	    "says: $(grep -m1 'cannot create' "$WORK/out" | cut -c1-60)..."
fi

echo "[====] Synthesis: Tested: $((NPASS + NFAIL)) | Passing: $NPASS |" \
    "Failing: $NFAIL | Crashing: 0"
[ "$NFAIL" -eq 0 ]
