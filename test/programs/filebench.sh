#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
#
# filebench.sh: unmodified programs that map a file larger than their
# budget, timed three ways side by side: natively (no limit), under the
# kernel in a memory cgroup v1 limited to the budget (its page cache is
# charged there), and under `upvm run --files --budget`.  Every run starts
# with the file out of the page cache (dd iflag=nocache), and every output
# must equal the native one.
#
#   sqlite3  queries (a scan and a walk in index order) over a database of
#            ROWS rows with PRAGMA mmap_size (reads through the mapping)
#   lmdb     mdb_dump of an LMDB database of ROWS/2 entries (LMDB maps it
#            whole, reads through the mapping)
#
# usage: filebench.sh UPVM [ROWS [BUDGET_MiB]]   (1200000 rows: a 1.3 GiB
#        database; budget: a quarter of the file).  Root (the cgroup).
#        The cgroup is removed at exit, whatever happens.
set -u
UPVM=$(realpath "$1")
. "$(dirname "$0")/filedb.sh"
ROWS=${2:-1200000}
BUDGET=${3:-}
CGROOT=/sys/fs/cgroup/memory
WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/upvm-filebench.XXXXXX")
CG=$CGROOT/upvm-filebench-$$
cleanup() {
	[ -d "$CG" ] && { cat "$CG/cgroup.procs" 2>/dev/null |
	    while read -r p; do echo "$p" >"$CGROOT/cgroup.procs"; done
	    rmdir "$CG"; }
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
[ -d "$CGROOT" ] && mkdir "$CG" || { echo "filebench.sh: no cgroup v1" \
    "memory controller at $CGROOT (root?)"; exit 2; }

nocache() { dd if="$1" iflag=nocache count=0 status=none; }
# timed MODE OUT CMD...: run CMD cold, stdout to OUT; prints seconds
timed() {
	local mode=$1 out=$2 t0 t1
	shift 2
	nocache "$F"
	t0=$EPOCHREALTIME
	case $mode in
	native) "$@" >"$out" ;;
	kernel) ( echo "$BASHPID" >"$CG/cgroup.procs" && exec "$@" ) >"$out" ;;
	upvm) "$UPVM" run --files --budget "${B}M" --stats="$out.stats" -- \
	    "$@" >"$out" ;;
	esac
	t1=$EPOCHREALTIME
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }'
}
# row NAME CMD...: the three modes; one table row
row() {
	local name=$1 n k u reads
	shift
	B=${BUDGET:-$(( $(stat -c %s "$F") >> 22 ))}
	echo 0 >"$CG/memory.force_empty" 2>/dev/null
	echo $((B << 20)) >"$CG/memory.limit_in_bytes"
	n=$(timed native "$WORK/n.out" "$@")
	k=$(timed kernel "$WORK/k.out" "$@")
	u=$(timed upvm "$WORK/u.out" "$@")
	reads=$(grep -o '"file_reads": [0-9]*' "$WORK/u.out.stats" |
	    grep -o '[0-9]*$')
	cmp -s "$WORK/n.out" "$WORK/k.out" && cmp -s "$WORK/n.out" \
	    "$WORK/u.out" && same=yes || same=NO
	printf "%-8s %6d %6d %8s %8s %8s %7s %9s %s\n" "$name" \
	    $(( $(stat -c %s "$F") >> 20 )) "$B" "$n" "$k" "$u" \
	    "$(awk -v k="$k" -v u="$u" 'BEGIN { printf "%.2f", u / k }')" \
	    "${reads:-0}" "$same"
}

printf "%-8s %6s %6s %8s %8s %8s %7s %9s %s\n" program MiB budget native \
    kernel upvm upvm/k "upvm rd" same
F=$WORK/t.db
make_sqlite_db "$F" "$ROWS" || exit 1
row sqlite3 sqlite3 "$F" "PRAGMA mmap_size=17179869184;
SELECT count(*), sum(length(v)), max(s) FROM t;
SELECT sum(length(v)), count(*) FROM
    (SELECT v FROM t ORDER BY s LIMIT $((ROWS / 4)));"
rm -f "$F"
if command -v mdb_load >/dev/null; then
	F=$WORK/t.mdb
	lmdb_input $((ROWS / 2)) 17179869184 1500 | mdb_load -n "$F" || exit 1
	row lmdb mdb_dump -n -p "$F"
fi
