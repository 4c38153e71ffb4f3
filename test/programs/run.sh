#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
#
# run.sh: unmodified programs under `upvm run`, their output compared with
# a native run.  Each program runs natively (timed, its peak RssAnon
# sampled every 20 ms), under upvm with no budget (its footprint with
# upvm's allocator, jemalloc, which is what the budget acts on), then under
# upvm with a budget of a quarter of that footprint; the three outputs must
# match and the program must have paged (pageouts in its --stats, or its
# peak RssAnon halved).  A program that is not installed is skipped.
#
# usage: run.sh UPVM PAGES [PROGRAM...]   (UPVM: the upvm binary; PAGES:
#        test/programs/pages; PROGRAMs: pages sort python3 sqlite3 xz
#        stress-ng, all by default)
# Prints a table: native and budgeted upvm seconds, the slowdown, the peak
# RssAnon (MiB) of the largest process natively, under upvm without a
# budget (the footprint) and with one, and the budget.  Exit 1 on any
# mismatch or failure.
set -u
UPVM=$(realpath "$1")
PAGES=$(realpath "$2")
shift 2
PROGS=${*:-pages sort python3 sqlite3 xz stress-ng}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/upvm-programs.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export TMPDIR=$WORK
FAILED=0

# peak_run OUT -- CMD...: run CMD (stdout to OUT), sample the largest
# RssAnon (kB) of it and its descendants; sets RC, SECS, PEAK_KB
peak_run() {
	local out=$1 pids p v t0 t1
	shift 2
	t0=$(date +%s.%N)
	"$@" >"$out" 2>"$out.err" &
	local pid=$!
	PEAK_KB=0
	while kill -0 "$pid" 2>/dev/null; do
		pids=$(descendants "$pid")
		for p in $pids; do
			v=$(awk '/^RssAnon/ {print $2}' /proc/"$p"/status \
			    2>/dev/null)
			[ -n "$v" ] && [ "$v" -gt "$PEAK_KB" ] && PEAK_KB=$v
		done
		sleep 0.02
	done
	wait "$pid"
	RC=$?
	t1=$(date +%s.%N)
	SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
}

# descendants PID: PID and every process below it (no procps needed)
descendants() {
	local p c
	echo "$1"
	for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
		descendants "$c"
	done
}

# the programs: each a function printing its command line's output
prog_pages() { "$PAGES" 128; }
prog_sort() {
	[ -s "$WORK/lines" ] || awk 'BEGIN { srand(7); for (i = 0; i < 400000; i++)
	    printf "%08x %d %s\n", int(rand() * 4294967295), i,
	    substr("abcdefghijklmnopqrstuvwxyz", 1 + i % 26) }' >"$WORK/lines"
	sort -S 64M --parallel=2 "$WORK/lines" | sha256sum
}
prog_python3() {
	python3 -c '
import hashlib
d = {i: str(i * 7919) * 3 for i in range(600000)}
l = [bytes([i % 251]) * 1024 for i in range(60000)]
h = hashlib.sha256()
for k in range(0, 600000, 997):
    h.update(d[k].encode())
for b in l[::13]:
    h.update(b)
print(len(d), len(l), h.hexdigest())'
}
prog_sqlite3() {
	sqlite3 :memory: <<-'SQL'
	PRAGMA cache_size = -400000;
	CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT, c REAL);
	WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n
	    WHERE x < 100000)
	INSERT INTO t SELECT x, printf('%048d', (x * 2654435761) % 1000000007),
	    x * 0.5 FROM n;
	CREATE INDEX tb ON t(b);
	SELECT count(*), sum(c), sum(length(b)) FROM t;
	SELECT a FROM t ORDER BY b LIMIT 3 OFFSET 50000;
	SQL
}
prog_xz() {
	[ -s "$WORK/xzin" ] || { head -c 1500000 "$WORK/lines" 2>/dev/null ||
	    awk 'BEGIN { srand(3); for (i = 0; i < 400000; i++)
	    printf "%d %d\n", i, int(rand() * 1000) }'; } >"$WORK/xzin"
	xz -9e -T1 -c "$WORK/xzin" | sha256sum
}
prog_stress_ng() {
	stress-ng --vm 1 --vm-bytes 96M --vm-method all --vm-ops 20 \
	    --verify --vm-keep --timeout 60s --quiet && echo "stress-ng: passed"
}

tool_of() {
	case $1 in
	pages) echo "$PAGES" ;;
	stress-ng) echo stress-ng ;;
	*) echo "$1" ;;
	esac
}

NPASS=0 NFAIL=0
printf '%-10s %8s %8s %8s %9s %9s %9s %9s  %s\n' program native_s upvm_s \
    slowdown nat_MiB foot_MiB budget upvm_MiB result
for prog in $PROGS; do
	if ! command -v "$(tool_of "$prog")" >/dev/null; then
		echo "$prog: SKIPPED: not installed (apt-get install $prog)"
		continue
	fi
	fn=prog_${prog//-/_}
	export -f "$fn" prog_sort
	export PAGES WORK
	peak_run "$WORK/$prog.native" -- bash -c "$fn"
	nrc=$RC nsecs=$SECS npeak=$PEAK_KB
	# the footprint with upvm's allocator (jemalloc), nothing paged
	peak_run "$WORK/$prog.free" -- "$UPVM" run -- bash -c "$fn"
	frc=$RC fpeak=$PEAK_KB
	budget=$(( fpeak / 4 / 1024 ))
	[ "$budget" -lt 4 ] && budget=4
	peak_run "$WORK/$prog.upvm" -- "$UPVM" run --budget "${budget}M" \
	    --stats="$WORK/$prog.stats.%p" -- bash -c "$fn"
	urc=$RC usecs=$SECS upeak=$PEAK_KB
	result=ok
	if [ "$nrc" -ne 0 ] || [ "$frc" -ne 0 ] || [ "$urc" -ne 0 ]; then
		result="FAILED: exit status native $nrc, upvm $frc, with a"
		result="$result budget $urc"
	elif ! cmp -s "$WORK/$prog.native" "$WORK/$prog.upvm" ||
	    ! cmp -s "$WORK/$prog.native" "$WORK/$prog.free"; then
		result="FAILED: output differs"
	elif ! cat "$WORK/$prog".stats.* 2>/dev/null |
	    grep -q '"pageouts": [1-9]' && [ $((upeak * 2)) -ge "$fpeak" ]; then
		# (stress-ng's workers _exit: no stats; their RSS tells)
		result="FAILED: nothing paged out"
	fi
	printf '%-10s %8.2f %8.2f %7.2fx %9d %9d %9d %9d  %s\n' "$prog" \
	    "$nsecs" "$usecs" "$(awk -v a="$usecs" -v b="$nsecs" \
	    'BEGIN { print (b > 0 ? a / b : 0) }')" $((npeak / 1024)) \
	    $((fpeak / 1024)) "$budget" $((upeak / 1024)) "$result"
	if [ "$result" = ok ]; then
		NPASS=$((NPASS + 1))
	else
		NFAIL=$((NFAIL + 1))
		FAILED=1
		for v in native free upvm; do
			echo "--- $v output"
			head -5 "$WORK/$prog.$v" "$WORK/$prog.$v.err"
		done
	fi
done
# the line setup.sh counts, as Criterion's suites print it
echo "[====] Synthesis: Tested: $((NPASS + NFAIL)) | Passing: $NPASS |" \
    "Failing: $NFAIL | Crashing: 0"
exit $FAILED
