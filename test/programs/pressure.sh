#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
#
# pressure.sh: real programs under memory pressure, each run three ways side
# by side: natively (no limit), under the kernel's own swap, and under
# `upvm run`.
#
# usage: pressure.sh UPVM [--scale F] [--only PROG,...]
#            [--modes native,kernel,upvm] [--budgets full,half] [--repeat N]
#
#   UPVM       the upvm binary (build/tools/upvm)
#   --scale F  multiplies every input size and budget (default 1; e.g.
#              0.05 for CI)
#   --only     programs among sort,xz,python3,sqlite3 (default: all)
#   --modes    among native,kernel,upvm (default: all three)
#   --budgets  full: the program's budget listed below, scaled; half: half its
#              native peak RssAnon (measured in this run's native runs,
#              else the table's peak), in MiB (default: both)
#   --repeat N each mode N times, the modes alternating within a repeat;
#              times are reported as min/median (default 1)
#   SWAPDIR    where the swap files go (default /var/tmp): the kernel
#              mode's swap file and upvm's --swap
#
# The programs, their inputs generated with fixed seeds into a mktemp
# directory under $TMPDIR (removed at exit), at --scale 1:
#   sort     LC_ALL=C sort -S 800M --parallel=2 of 300 MB of text, budget 200M
#   xz       xz -9e -T1 -c of 120 MB (40 MB random, 80 MB text), budget 160M
#            (below scale 1 the 64 MiB dictionary is scaled too, so that
#            the footprint scales with the input: --lzma2=preset=9e,dict=)
#   python3  a 1 GiB bytearray (every page written), a 3M-entry dict, random
#            reads of both and a checksum, budget 384M
#   sqlite3  sqlite3 :memory: with 800k rows of 900-byte blobs and an index,
#            a scan and a walk in index order, budget 192M
# A program that is not installed is skipped.
#
# Modes:
#   native  the program as it is
#   kernel  the program in a fresh memory cgroup v1
#           /sys/fs/cgroup/memory/upvm-pressure-$$ (memory.limit_in_bytes =
#           the budget, memory.memsw unlimited), paging to a swap file made
#           here in $SWAPDIR (fallocate or dd, mkswap, swapon -p 32767).
#           Root only; skipped with a message otherwise.  The swap file is
#           swapped off and deleted and the cgroup removed at exit, whatever
#           happens (trap).
#   upvm    UPVM run --budget B --swap $SWAPDIR --stats=FILE -- PROGRAM
#
# Output: one row per program and budget: seconds natively, under the kernel
# and under upvm (min/median with --repeat), upvm/kernel (medians), the
# kernel's pageins (the cgroup's pgmajfault and the machine's pswpin delta
# from /proc/vmstat), upvm's read I/Os (pagein_ios: faults that waited for
# a read) and pages read (pageins) from its --stats, the CPU seconds of
# upvm's own threads (cpu_fault_ns + cpu_pageout_ns of its --stats, "-"
# where this upvm does not report them), the kernel side's CPU seconds (the
# program's system time plus kswapd's utime+stime delta), and whether every
# run's output (sha256) is the same as the native one.  Counters are the
# median of the repeats.  A kernel run killed by its cgroup's OOM killer (it
# happens at small budgets: the swap-in readahead cannot be charged) shows
# as OOM, is noted under the table and counts as neither a time nor a
# failure.  Exits 1 if an output differs or a run fails (upvm not starting
# included), 2 on a usage error, else 0.  Stopped by a signal (e.g. by
# timeout(1)), it still ends its runs and undoes the swap and the cgroup.
#
# e.g.  sudo -E test/programs/pressure.sh build/tools/upvm --scale 0.05
set -u
export LC_ALL=C

PROG_ALL="sort xz python3 sqlite3"
# program | full budget MiB | native peak RssAnon MiB (largest process,
# sampled every 20 ms as run.sh does), all at --scale 1.  The half budget
# is half the peak measured by this run's native runs; this table's peak,
# scaled, stands in when native is not among --modes (and sizes the kernel's
# swap file).  The peaks were measured at --scale 0.02, 0.05 and 0.1 (sort
# 15/40/80, xz 17/39/77, python3 33/72/137, sqlite3 17/42/87 MiB) and
# extrapolated: linear, sort's capped by its -S 800M, xz's by the 674 MiB
# xz -9e reports needing.
TABLE="
sort	200	800
xz	160	676
python3	384	1307
sqlite3	192	880
"

usage() {
	awk '/^# usage:/ { on = 1 } /^# The programs/ { exit }
	    on { sub(/^# ?/, ""); print }' "$0" >&2
	exit 2
}
die() {
	echo "pressure.sh: $*" >&2
	exit 2
}

[ $# -ge 1 ] || usage
case $1 in -h|--help) usage ;; esac
UPVM=$1
shift
SCALE=1 ONLY=${PROG_ALL// /,} MODES=native,kernel,upvm BUDGETS=full,half
REPEAT=1
while [ $# -gt 0 ]; do
	case $1 in
	--scale|--only|--modes|--budgets|--repeat)
		[ $# -ge 2 ] || die "$1 needs a value"
		case $1 in
		--scale) SCALE=$2 ;;
		--only) ONLY=$2 ;;
		--modes) MODES=$2 ;;
		--budgets) BUDGETS=$2 ;;
		--repeat) REPEAT=$2 ;;
		esac
		shift 2 ;;
	--scale=*) SCALE=${1#*=}; shift ;;
	--only=*) ONLY=${1#*=}; shift ;;
	--modes=*) MODES=${1#*=}; shift ;;
	--budgets=*) BUDGETS=${1#*=}; shift ;;
	--repeat=*) REPEAT=${1#*=}; shift ;;
	-h|--help) usage ;;
	*) die "unknown argument '$1' (see --help)" ;;
	esac
done
[[ $SCALE =~ ^([0-9]+\.?[0-9]*|\.[0-9]+)$ ]] &&
    awk -v f="$SCALE" 'BEGIN { exit !(f > 0) }' ||
    die "--scale $SCALE: a positive number, please"
[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || die "--repeat $REPEAT: a count, please"
[ -x "$UPVM" ] && [ -f "$UPVM" ] ||
    die "$UPVM: not an executable (give build/tools/upvm)"
UPVM=$(realpath "$UPVM")
# setlist NAME LIST ALLOWED: the comma list LIST, checked, as words in NAME
setlist() {
	local w out=
	for w in ${2//,/ }; do
		[[ " $3 " == *" $w "* ]] || die "'$w': not one of: $3"
		[[ " $out " == *" $w "* ]] || out="$out $w"
	done
	[ -n "$out" ] || die "an empty list for $1"
	printf -v "$1" '%s' "${out# }"
}
setlist ONLY "$ONLY" "$PROG_ALL"
setlist MODES "$MODES" "native kernel upvm"
setlist BUDGETS "$BUDGETS" "full half"
has_mode() { [[ " $MODES " == *" $1 "* ]]; }

SWAPDIR=${SWAPDIR:-/var/tmp}
[ -d "$SWAPDIR" ] && [ -w "$SWAPDIR" ] ||
    die "SWAPDIR $SWAPDIR: not a writable directory"
SWAPDIR=$(realpath "$SWAPDIR")
CGROOT=/sys/fs/cgroup/memory
CG=$CGROOT/upvm-pressure-$$
SWAPFILE=$SWAPDIR/upvm-pressure-swap.$$
CG_MADE=0 SWAP_MADE=0 SWAP_ON=0
RUNPID='' SHAPID=''
WORK=$(mktemp -d "${TMPDIR:-/tmp}/upvm-pressure.XXXXXX") ||
    die "cannot make a directory in ${TMPDIR:-/tmp}"
export TMPDIR=$WORK		# sort's temporary files, if any, go there too

# tree PID: PID and every process below it (builtins only)
tree() {
	local f c kids
	echo "$1"
	for f in /proc/"$1"/task/*/children; do
		[ -r "$f" ] || continue
		read -r -a kids 2>/dev/null <"$f" || true
		for c in "${kids[@]}"; do
			tree "$c"
		done
	done
}

# cleanup: end the processes we started, swap off and delete the swap file,
# remove the cgroup and the work directory; complain about what is left
cleanup() {
	local p i rc=$?
	trap - EXIT INT TERM HUP
	for p in $RUNPID $SHAPID; do
		kill -0 "$p" 2>/dev/null || continue
		for i in $(tree "$p"); do
			kill -KILL "$i" 2>/dev/null
		done
	done
	[ -n "$RUNPID$SHAPID" ] && wait $RUNPID $SHAPID 2>/dev/null
	if [ "$CG_MADE" = 1 ] && [ -d "$CG" ]; then
		# only our runs ever joined it
		for p in $(cat "$CG/cgroup.procs" 2>/dev/null); do
			kill -KILL "$p" 2>/dev/null
		done
		for i in $(seq 100); do
			rmdir "$CG" 2>/dev/null && break
			[ -d "$CG" ] || break
			sleep 0.05
		done
	fi
	if [ "$SWAP_ON" = 1 ]; then
		swapoff "$SWAPFILE" || echo "pressure.sh: swapoff $SWAPFILE failed" >&2
	fi
	[ "$SWAP_MADE" = 1 ] && rm -f "$SWAPFILE"
	rm -rf "$WORK"
	if [ "$SWAP_MADE" = 1 ] && awk -v f="$SWAPFILE" '$1 == f { x = 1 }
	    END { exit !x }' /proc/swaps; then
		echo "pressure.sh: swap file $SWAPFILE is still on: run" \
		    "'swapoff $SWAPFILE; rm $SWAPFILE'" >&2
		rc=1
	elif [ "$SWAP_MADE" = 1 ] && [ -e "$SWAPFILE" ]; then
		echo "pressure.sh: cannot delete $SWAPFILE; delete it" >&2
		rc=1
	fi
	if [ "$CG_MADE" = 1 ] && [ -d "$CG" ]; then
		echo "pressure.sh: cgroup $CG is still there: 'rmdir $CG'" >&2
		rc=1
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# scaled V: V (MiB, or a count) times --scale, rounded, at least 1
scaled() {
	awk -v v="$1" -v f="$SCALE" \
	    'BEGIN { x = int(v * f + 0.5); print (x < 1 ? 1 : x) }'
}
table() {	# table PROG COLUMN: a column (2: full budget, 3: peak)
	awk -v p="$1" -v c="$2" '$1 == p { print $c }' <<<"$TABLE"
}

# --- the kernel mode's set-up
KSWAPD=
ktick_setup() {	# the pids of kswapd0..N
	local f c
	for f in /proc/[0-9]*/comm; do
		read -r c 2>/dev/null <"$f" || continue
		[[ $c == kswapd* ]] && { f=${f#/proc/}; KSWAPD="$KSWAPD ${f%/comm}"; }
	done
}
kswapd_ticks() {	# utime + stime of every kswapd, in clock ticks
	local p line f t=0
	for p in $KSWAPD; do
		read -r line 2>/dev/null <"/proc/$p/stat" || continue
		read -r -a f <<<"${line##*) }"
		t=$((t + f[11] + f[12]))
	done
	echo "$t"
}
vmstat() {	# vmstat NAME: a counter of /proc/vmstat
	local k v
	while read -r k v; do
		[ "$k" = "$1" ] && { echo "$v"; return; }
	done </proc/vmstat
	echo 0
}
cgstat() {	# cgstat NAME [FILE]: a counter of the cgroup's memory.stat
	local k v
	while read -r k v; do
		[ "$k" = "$1" ] && { echo "$v"; return; }
	done <"$CG/${2:-memory.stat}"
	echo 0
}
kernel_setup() {	# swap file and cgroup, or why not (and no kernel mode)
	local mib=$1 why=
	if [ "$(id -u)" != 0 ]; then
		why="root (for swapon and a memory cgroup)"
	elif [ ! -f "$CGROOT/memory.limit_in_bytes" ]; then
		why="a memory cgroup v1 at $CGROOT"
	elif ! command -v mkswap >/dev/null || ! command -v swapon >/dev/null
	then
		why="mkswap and swapon (util-linux)"
	elif [ -e "$SWAPFILE" ] || [ -e "$CG" ]; then
		why="$SWAPFILE and $CG not to exist"
	fi
	if [ -z "$why" ]; then
		SWAP_MADE=1
		(umask 077; : >"$SWAPFILE") && chmod 600 "$SWAPFILE" &&
		    { fallocate -l "${mib}M" "$SWAPFILE" 2>/dev/null ||
		    dd if=/dev/zero of="$SWAPFILE" bs=1M count="$mib" \
		    status=none; } || why="a $mib MiB swap file in $SWAPDIR"
	fi
	if [ -z "$why" ]; then
		mkswap -L upvm-pressure "$SWAPFILE" >/dev/null 2>"$WORK/mkswap" ||
		    why="mkswap $SWAPFILE: $(tail -1 "$WORK/mkswap")"
	fi
	if [ -z "$why" ]; then
		if swapon -p 32767 "$SWAPFILE" 2>"$WORK/swapon"; then
			SWAP_ON=1
		else
			why="swapon $SWAPFILE: $(tail -1 "$WORK/swapon")"
		fi
	fi
	if [ -z "$why" ]; then
		if mkdir "$CG" 2>"$WORK/mkdir"; then
			CG_MADE=1
			[ -f "$CG/memory.memsw.limit_in_bytes" ] &&
			    echo -1 >"$CG/memory.memsw.limit_in_bytes"
		else
			why="mkdir $CG: $(tail -1 "$WORK/mkdir")"
		fi
	fi
	if [ -n "$why" ]; then
		echo "kernel mode: SKIPPED: it needs $why"
		MODES=$(echo " $MODES " | sed 's/ kernel / /; s/^ //; s/ $//')
		return
	fi
	ktick_setup
	echo "kernel mode: cgroup v1 $CG, swap file $SWAPFILE of $mib MiB" \
	    "at priority 32767, kswapd pids:${KSWAPD:- none found}"
}

# --- the programs: prog_PROG sets CMD (an array) and IN (its stdin)
PY=
gen_text() {	# gen_text BYTES SEED: lines of text, deterministic
	awk -v n="$1" -v seed="$2" 'BEGIN { srand(seed)
	    nw = split("alpha bravo charlie delta echo foxtrot golf hotel " \
	    "india juliet kilo lima mike november oscar papa quebec romeo " \
	    "sierra tango uniform victor whiskey xray yankee zulu", w, " ")
	    for (t = 0; t < n; t += length(s) + 1) {
		s = sprintf("%08x %s %s %d", int(rand() * 4294967296),
		    w[1 + int(rand() * nw)], w[1 + int(rand() * nw)],
		    int(rand() * 1000000))
		print s
	    } }'
}
gen_random() {	# gen_random BYTES SEED: pseudo-random bytes, deterministic
	if [ -n "$PY" ]; then
		"$PY" -c 'import random, sys
n, seed = int(sys.argv[1]), int(sys.argv[2])
r = random.Random(seed)
while n > 0:
    k = min(n, 1 << 20)
    sys.stdout.buffer.write(r.randbytes(k))
    n -= k' "$1" "$2"
	else	# an LCG, the high byte; slower
		awk -v n="$1" -v x="$2" 'BEGIN { for (i = 0; i < n; i++) {
		    x = (x * 1103515245 + 12345) % 2147483648
		    printf "%c", 1 + int(x / 8388608) % 255 } }'
	fi
}
prog_sort() {
	local mb
	mb=$(scaled 300)
	[ -s "$WORK/sort.in" ] ||
	    gen_text $((mb * 1000000)) 7 >"$WORK/sort.in"
	CMD=(sort -S "$(scaled 800)M" --parallel=2 "$WORK/sort.in")
	IN=/dev/null
}
prog_xz() {
	[ -s "$WORK/xz.in" ] || {
		gen_random $(($(scaled 40) * 1000000)) 11
		gen_text $(($(scaled 80) * 1000000)) 13
	} >"$WORK/xz.in"
	CMD=(xz -9e -T1 -c)
	# the dictionary scales with the input below scale 1
	awk -v f="$SCALE" 'BEGIN { exit !(f < 1) }' &&
	    CMD+=("--lzma2=preset=9e,dict=$(awk -v f="$SCALE" 'BEGIN {
	    k = int(65536 * f); print (k < 64 ? 64 : k) }')KiB")
	CMD+=("$WORK/xz.in")
	IN=/dev/null
}
prog_python3() {
	cat >"$WORK/py.py" <<-'EOF'
	import hashlib, random, sys
	n, m = int(sys.argv[1]), int(sys.argv[2])
	b = bytearray(n)
	for i in range(0, n, 4096):
	    b[i] = (i >> 12) * 2654435761 % 251
	d = {}
	for i in range(m):
	    d[i * 2654435761 % 4294967291] = i
	r = random.Random(7)
	s = 0
	for _ in range(m // 4):
	    s += d[r.randrange(m) * 2654435761 % 4294967291]
	for _ in range(n >> 14):
	    s += b[r.randrange(n)]
	print(n, len(d), s, hashlib.sha256(b).hexdigest())
	EOF
	CMD=("$PY" "$WORK/py.py" "$(($(scaled 1024) << 20))"
	    "$(scaled 3000000)")
	IN=/dev/null
}
prog_sqlite3() {
	local n
	n=$(scaled 800000)
	cat >"$WORK/sqlite.sql" <<-EOF
	CREATE TABLE t(a INTEGER PRIMARY KEY, k INTEGER, b BLOB);
	WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n
	    WHERE x < $n)
	INSERT INTO t SELECT x, (x * 2654435761) % 1000000007,
	    CAST(printf('%0900d', (x * 2654435761) % 1000000007) AS BLOB)
	    FROM n;
	CREATE INDEX tk ON t(k);
	SELECT count(*), sum(length(b)), sum(k) FROM t;
	SELECT count(*), sum(length(b)), sum(a) FROM
	    (SELECT a, b FROM t ORDER BY k LIMIT $((n / 2)));
	SELECT a, k, substr(b, 890) FROM t ORDER BY k LIMIT 3
	    OFFSET $((n / 3));
	EOF
	CMD=(sqlite3 :memory:)
	IN=$WORK/sqlite.sql
}

# --- one run
# run_one MODE BUDGET_MiB TAG: run CMD; sets R_RC R_SECS R_SYS R_PEAK_KB
# R_SHA and, per mode, R_MAJFLT R_PSWPIN R_KCPU (kernel) or R_PAGEINS
# R_UCPU (upvm)
run_one() {
	local mode=$1 budget=$2 tag=$3 pre=() p line v t0 t1
	local maj0 in0 ks0 files
	local oom0
	R_MAJFLT=- R_PSWPIN=- R_KCPU=- R_PAGEINS=- R_PAGEIN_IOS=- R_UCPU=- R_OOM=0
	case $mode in
	upvm) pre=("$UPVM" run --budget "${budget}M" --swap "$SWAPDIR"
	    --stats="$WORK/$tag.stats.%p" --) ;;
	kernel)
		echo 0 >"$CG/memory.force_empty" 2>/dev/null
		echo $((budget << 20)) >"$CG/memory.limit_in_bytes" || return 1
		maj0=$(cgstat total_pgmajfault) in0=$(vmstat pswpin)
		oom0=$(cgstat oom_kill memory.oom_control)
		ks0=$(kswapd_ticks) ;;
	esac
	rm -f "$WORK/fifo"
	mkfifo "$WORK/fifo" || return 1
	sha256sum <"$WORK/fifo" >"$WORK/$tag.sha" &
	SHAPID=$!
	[ -n "$TIMEBIN" ] || times >"$WORK/times0"
	t0=$EPOCHREALTIME
	(
		if [ "$mode" = kernel ]; then
			echo "$BASHPID" >"$CG/cgroup.procs" || exit 125
		fi
		if [ -n "$TIMEBIN" ]; then
			exec "$TIMEBIN" -f '%e %U %S' -o "$WORK/$tag.time" \
			    "${pre[@]}" "${CMD[@]}"
		fi
		exec "${pre[@]}" "${CMD[@]}"
	) >"$WORK/fifo" <"$IN" 2>"$WORK/$tag.err" &
	RUNPID=$!
	R_PEAK_KB=0
	# Only native runs are sampled: their peak sizes the half budget.
	# Under pressure the sampling itself is noise that upvm feels and the
	# kernel does not (measured 2026-12-06, sqlite3 at --scale 0.5 and
	# 220M, a shell reading /proc/PID/status every 20 ms: upvm 29.1 s
	# against 25.8-26.4 without; a `cat` of /proc/1/status every 20 ms:
	# upvm 33.6 s, the kernel 22.5 against 23.2 without): the other
	# modes are waited for without it.
	while [ "$mode" = native ] && kill -0 "$RUNPID" 2>/dev/null; do
		for p in $(tree "$RUNPID"); do
			while read -r line; do
				[[ $line == RssAnon:* ]] || continue
				v=${line//[^0-9]/}
				[ "$v" -gt "$R_PEAK_KB" ] && R_PEAK_KB=$v
				break
			done 2>/dev/null <"/proc/$p/status"
		done
		# (not read -t: its SIGALRM longjmp can abort bash 5.2 when a
		# trap exits meanwhile, leaving the swap file on)
		sleep 0.02
	done
	wait "$RUNPID"
	R_RC=$?
	t1=$EPOCHREALTIME
	[ -n "$TIMEBIN" ] || times >"$WORK/times1"
	RUNPID=
	wait "$SHAPID"
	SHAPID=
	R_SHA=$(cut -c1-64 "$WORK/$tag.sha")
	if [ -n "$TIMEBIN" ] && [ -s "$WORK/$tag.time" ]; then
		read -r R_SECS v R_SYS < <(tail -1 "$WORK/$tag.time")
	else	# bash's times: the children's system time, to the ms
		R_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
		R_SYS=$(tail -qn1 "$WORK/times0" "$WORK/times1" | awk '
		    function s(x) { split(x, f, /[ms]/); return f[1] * 60 + f[2] }
		    { v[NR] = s($2) } END { printf "%.2f", v[2] - v[1] }')
	fi
	case $mode in
	kernel)
		[ "$(cgstat oom_kill memory.oom_control)" != "$oom0" ] &&
		    R_OOM=1
		R_MAJFLT=$(($(cgstat total_pgmajfault) - maj0))
		R_PSWPIN=$(($(vmstat pswpin) - in0))
		R_KCPU=$(awk -v s="$R_SYS" -v t=$(($(kswapd_ticks) - ks0)) \
		    -v hz="$HZ" 'BEGIN { printf "%.2f", s + t / hz }') ;;
	upvm)
		files=("$WORK/$tag".stats.*)
		if [ -e "${files[0]}" ]; then
			R_PAGEINS=$(cat "${files[@]}" | grep -o '"pageins": [0-9]*' |
			    awk '{ s += $2 } END { print s + 0 }')
			R_PAGEIN_IOS=$(cat "${files[@]}" |
			    grep -o '"pagein_ios": [0-9]*' |
			    awk '{ s += $2 } END { print s + 0 }')
			R_UCPU=$(cat "${files[@]}" |
			    grep -oE '"cpu_(fault|pageout)_ns": [0-9]+' |
			    awk '{ s += $2; n++ } END {
			    if (n) printf "%.2f", s / 1e9; else print "-" }')
		fi ;;
	esac
	return 0
}

# minmed "V V ...": "min/median" of numbers ("-" if none); med: the median
# alone (a whole number if the values are, else two decimals)
minmed() {
	tr ' ' '\n' <<<"$1" | grep -E '^[0-9.]+$' | sort -g | awk -v all="${2:-}" '
	    { v[NR] = $1; if ($1 ~ /\./) frac = 1 }
	    END { if (!NR) { print "-"; exit }
	    m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
	    if (all == "med") { printf(frac ? "%.2f\n" : "%.0f\n", m); exit }
	    if (NR == 1) printf "%.2f\n", v[1]
	    else printf "%.2f/%.2f\n", v[1], m }'
}
med() { minmed "$1" med; }

TIMEBIN=
[ -x /usr/bin/time ] && TIMEBIN=/usr/bin/time
HZ=$(getconf CLK_TCK 2>/dev/null || echo 100)

# what runs: the programs installed
PROGS=
for prog in $ONLY; do
	tool=$prog
	if [ "$prog" = python3 ] && command -v python3 >/dev/null; then
		PY=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null)
		[ -x "$PY" ] && tool=$PY
	fi
	if ! command -v "$tool" >/dev/null; then
		echo "$prog: SKIPPED: not installed (apt-get install $prog)"
		continue
	fi
	PROGS="$PROGS $prog"
done
[ -z "$PY" ] && command -v python3 >/dev/null &&
    PY=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null)
[ -n "$PROGS" ] || { echo "nothing to run"; exit 0; }

echo "pressure.sh: scale $SCALE, modes $MODES, budgets $BUDGETS," \
    "repeat $REPEAT, upvm $UPVM, swap dir $SWAPDIR, work dir $WORK"
if has_mode kernel; then
	# room for the largest footprint, twice, and some
	max=0
	for prog in $PROGS; do
		v=$(table "$prog" 3)
		[ "$v" -gt "$max" ] && max=$v
	done
	kernel_setup $(($(scaled $((max * 2))) + 512))
fi
[ -n "$TIMEBIN" ] || echo "no /usr/bin/time: seconds from bash, system" \
    "time from bash's times"
# upvm must start at all (a bad build, no userfaultfd): say so at once
if has_mode upvm && ! "$UPVM" run --budget 64M --swap "$SWAPDIR" -- true \
    2>"$WORK/preflight"; then
	echo "upvm mode: $UPVM cannot run a program:"
	cat "$WORK/preflight"
	exit 1
fi

FAILED=0 OUT=() NOTES=()
hdr=$(printf '%-8s %-6s %6s %6s %11s %11s %11s %9s %9s %9s %9s %9s %8s %8s %5s' \
    program budget MiB peakMiB native_s kernel_s upvm_s upvm/kern \
    k_majflt k_pswpin u_readios u_pageins u_cpu_s k_cpu_s same)
for prog in $PROGS; do
	"prog_$prog" || { echo "$prog: cannot make its input"; FAILED=1; continue; }
	declare -A T=() C=()	# T[mode.budget]: seconds; C[...]: counters
	REF='' PEAK=0 NATIVE_N=0 MISMATCH=() FAILS=()
	for ((r = 1; r <= REPEAT; r++)); do
		if has_mode native; then
			run_one native 0 "$prog.native.$r"
			if [ "$R_RC" -ne 0 ]; then
				FAILS+=("native (exit $R_RC)")
				echo "--- $prog native: exit $R_RC"
				tail -3 "$WORK/$prog.native.$r.err"
			else
				T[native]="${T[native]:-} $R_SECS"
				[ "$R_PEAK_KB" -gt "$PEAK" ] && PEAK=$R_PEAK_KB
				[ -z "$REF" ] && REF=$R_SHA
				[ "$R_SHA" != "$REF" ] && MISMATCH+=(native)
				NATIVE_N=$((NATIVE_N + 1))
			fi
		fi
		for b in $BUDGETS; do
			if [ -n "${C[mib.$b]:-}" ]; then	# fixed at repeat 1
				mib=${C[mib.$b]}
			elif [ "$b" = full ]; then
				mib=$(scaled "$(table "$prog" 2)")
			elif [ "$PEAK" -gt 0 ]; then
				mib=$(((PEAK / 1024 + 1) / 2))
			else
				mib=$(scaled "$(table "$prog" 3)")
				mib=$(((mib + 1) / 2))
			fi
			[ "$mib" -lt 4 ] && mib=4
			C[mib.$b]=$mib
			for mode in kernel upvm; do
				has_mode $mode || continue
				tag=$prog.$mode.$b.$r
				if ! run_one $mode "$mib" "$tag"; then
					FAILS+=("$mode $b (set-up)")
					continue
				fi
				if [ "$R_OOM" = 1 ]; then
					# the kernel's failure, not the program's
					C[OOM.$b]=$((${C[OOM.$b]:-0} + 1))
					NOTES+=("$prog $b, run $r: the kernel mode was killed by its cgroup's OOM killer (exit $R_RC): no time, not compared")
					continue
				fi
				if [ "$R_RC" -ne 0 ]; then
					FAILS+=("$mode $b (exit $R_RC)")
					echo "--- $prog $mode $b: exit $R_RC"
					tail -3 "$WORK/$tag.err"
					continue
				fi
				T[$mode.$b]="${T[$mode.$b]:-} $R_SECS"
				for k in MAJFLT PSWPIN KCPU PAGEINS PAGEIN_IOS UCPU; do
					v=R_$k
					C[$k.$mode.$b]="${C[$k.$mode.$b]:-} ${!v}"
				done
				[ -z "$REF" ] && REF=$R_SHA
				[ "$R_SHA" != "$REF" ] && MISMATCH+=("$mode.$b")
				C[N.$b]=$((${C[N.$b]:-0} + 1))
			done
		done
	done
	for b in $BUDGETS; do
		same=yes
		# fewer than two outputs: nothing was compared
		[ $((NATIVE_N + ${C[N.$b]:-0})) -lt 2 ] && same=-
		for m in "${MISMATCH[@]}"; do
			[[ $m == native || $m == *.$b ]] && same=no
		done
		for m in "${FAILS[@]}"; do
			[[ $m == native* || $m == *" $b "* ]] && same=FAIL
		done
		case $same in no|FAIL) FAILED=1 ;; esac
		kmed=$(med "${T[kernel.$b]:-}") umed=$(med "${T[upvm.$b]:-}")
		ratio=-
		[ "$kmed" != - ] && [ "$umed" != - ] && ratio=$(awk -v u="$umed" \
		    -v k="$kmed" 'BEGIN { printf("%.2fx", (k > 0 ? u / k : 0)) }')
		kt=$(minmed "${T[kernel.$b]:-}")
		[ -n "${C[OOM.$b]:-}" ] && [ "$kt" = - ] && kt=OOM
		pk=-
		[ "$PEAK" -gt 0 ] && pk=$((PEAK / 1024))
		OUT+=("$(printf '%-8s %-6s %6s %6s %11s %11s %11s %9s %9s %9s %9s %9s %8s %8s %5s' \
		    "$prog" "$b" "${C[mib.$b]}" "$pk" \
		    "$(minmed "${T[native]:-}")" "$kt" \
		    "$(minmed "${T[upvm.$b]:-}")" "$ratio" \
		    "$(med "${C[MAJFLT.kernel.$b]:-}")" \
		    "$(med "${C[PSWPIN.kernel.$b]:-}")" \
		    "$(med "${C[PAGEIN_IOS.upvm.$b]:-}")" \
		    "$(med "${C[PAGEINS.upvm.$b]:-}")" \
		    "$(med "${C[UCPU.upvm.$b]:-}")" \
		    "$(med "${C[KCPU.kernel.$b]:-}")" "$same")")
		echo "${OUT[-1]}"
	done
	[ ${#MISMATCH[@]} -gt 0 ] &&
	    echo "$prog: OUTPUT DIFFERS in ${MISMATCH[*]} (sha256 of native: $REF)"
	[ ${#FAILS[@]} -gt 0 ] && echo "$prog: FAILED: ${FAILS[*]}"
	echo "$prog: done"
	unset T C
done
echo
echo "$hdr"
printf '%s\n' "${OUT[@]}"
echo "(seconds: min/median over --repeat; budget and peak in MiB, peak:" \
    "largest native RssAnon; k_*: kernel swap, u_*: upvm; counters: medians)"
[ ${#NOTES[@]} -gt 0 ] && printf 'note: %s\n' "${NOTES[@]}"
exit $FAILED
