#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
#
# benchprocs.sh: upvm-bench --procs for real, at a small size: three
# processes at once under one budget in each mode (kernel-swap: one memory
# cgroup; upvmd: one upvmd that upvm-bench starts; upvm: budget / 3 each),
# every page checked (--verify), and what each mode must show: a record
# per mode and workload with its three processes, their aggregate, and the
# RssAnon they summed to within the budget plus the slack the README
# states for RssAnon (per process and fault thread, one per CPU from 2 to
# 8: a 2 MiB window of fault slack and 4 MiB of pagein buffers upvm keeps
# mapped; and 4 MiB, under upvmd the floor of a process that attaches).
# Then
# what a user gets wrong: one line and status 2, nothing started.  And an
# interrupted run: status 130, and nothing left behind (swap, cgroup,
# upvmd, its directory) after any of it.
#
# usage: benchprocs.sh UPVM-BENCH UPVMD   (root: kernel-swap; skipped,
#        status 77, without root or a cgroup v1 memory controller)
set -u
BENCH=$1
UPVMD=$2
WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/upvm-benchprocs.XXXXXX")
SWAPDIR=$WORK/swap
OUT=$WORK/out
mkdir "$SWAPDIR" || exit 1
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

[ "$(id -u)" = 0 ] || { echo "SKIP: kernel-swap needs root"; exit 77; }
[ -e /sys/fs/cgroup/memory/memory.limit_in_bytes ] ||
    { echo "SKIP: no cgroup v1 memory controller"; exit 77; }

# nothing_left: no swap file, cgroup, upvmd or socket directory of ours
nothing_left() {
	! grep -q "upvm-bench-swap" /proc/swaps ||
	    fail "$1: a swap file is still on: $(cat /proc/swaps)"
	! ls -d /sys/fs/cgroup/memory/upvm-bench.* 2>/dev/null ||
	    fail "$1: a cgroup is left"
	! pgrep -f "upvmd --socket $SWAPDIR" >/dev/null ||
	    fail "$1: upvmd still runs"
	[ -z "$(ls "$SWAPDIR")" ] ||
	    fail "$1: left in the swap dir: $(ls "$SWAPDIR")"
}

BUDGET=48
"$BENCH" --procs 3 -s 64M -b ${BUDGET}M -w seq-write,rand-read --ops 2000 \
    -r 1 -m kernel-swap,upvmd,upvm --verify --swap-dir "$SWAPDIR" \
    --upvmd "$UPVMD" -f json >"$OUT" 2>"$OUT.err" ||
    fail "upvm-bench --procs exited $?: $(tail -3 "$OUT.err")"
python3 - "$OUT" "$BUDGET" <<'PY' || exit 1
import json, os, sys
recs = json.load(open(sys.argv[1]))
budget = int(sys.argv[2])
seen = set()
for r in recs:
    key = (r["workload"], r["mode"])
    seen.add(key)
    if r.get("procs") != 3 or r["repeats"] != 3:
        sys.exit(f"FAIL: {key}: procs {r.get('procs')}, runs "
                 f"{r['repeats']}, not 3 and 3")
    if not r["aggregate_gib_per_s"] > 0:
        sys.exit(f"FAIL: {key}: no aggregate throughput")
    # kernel-swap: the cgroup holds it; upvm and upvmd: see the header
    per = max(2, min(os.cpu_count() or 2, 8)) * 6 + 4
    slack = 0 if r["mode"] == "kernel-swap" else 3 * per
    if r["rss_sum_max_mib"] > budget + slack + 2:
        sys.exit(f"FAIL: {key}: RssAnon summed to "
                 f"{r['rss_sum_max_mib']} MiB, over {budget} + {slack}")
    if not r["rss_sum_max_mib"] > 0:
        sys.exit(f"FAIL: {key}: RssAnon was not sampled")
    print(f"{key[0]:10s} {key[1]:12s} per-process {r['gib_per_s']:.3f} "
          f"aggregate {r['aggregate_gib_per_s']:.3f} GiB/s, RssAnon "
          f"summed {r['rss_sum_max_mib']:.0f} MiB")
want = {(w, m) for w in ("seq-write", "rand-read")
        for m in ("kernel-swap", "upvmd", "upvm")}
if seen != want:
    sys.exit(f"FAIL: records {sorted(seen)}, not {sorted(want)}")
PY
nothing_left "a whole run"

# bad usage: one line, status 2, nothing started
bad() {
	local err
	err=$("$BENCH" "$@" --swap-dir "$SWAPDIR" 2>&1 >/dev/null)
	local rc=$?
	[ $rc = 2 ] || fail "upvm-bench $*: status $rc, not 2 ($err)"
	[ "$(printf '%s\n' "$err" | wc -l)" = 1 ] ||
	    fail "upvm-bench $*: not one line: $err"
	echo "refused: upvm-bench $*: $err"
}
bad -m upvmd -b 32M -s 64M
bad --procs 2 -m upvmd -s 64M
bad --procs 2 -m upvmd -b 32M -s 64M --upvmd /nonexistent/upvmd
bad --procs 2 -m upvm --backing file -s 64M
bad --procs 65 -m upvm -s 64M
nothing_left "refused runs"

# interrupted mid-run: 130, everything removed
"$BENCH" --procs 2 -s 256M -b 64M -w seq-write,seq-read -r 5 \
    -m kernel-swap,upvmd --swap-dir "$SWAPDIR" --upvmd "$UPVMD" \
    >/dev/null 2>"$OUT.err" &
pid=$!
sleep 3
kill -INT $pid
wait $pid
rc=$?
[ $rc = 130 ] || fail "interrupted: status $rc, not 130: $(tail -2 "$OUT.err")"
nothing_left "an interrupted run"
echo "OK"
