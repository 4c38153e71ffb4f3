#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
#
# files.sh: an unmodified program that maps a file larger than its budget,
# under `upvm run --files`: sqlite3 reads its database through mmap
# (PRAGMA mmap_size), so upvm pages that mapping (read by upvm from the
# file, clean pages dropped under the budget).  The queries' output must
# match a native run, and upvm must have read the file (file_reads in its
# --stats).  Skipped when sqlite3 is not installed.  Then LMDB, and a
# file truncated under its mapping (python3's mmap).  First, filewrite.c:
# pwrite(2) beside a read-only shared mapping of the same file that grows
# by mremap, every page read checked, on both pageout protocols and
# without a budget (SEED: FILEWRITE_SEED, else random; printed).
#
# usage: files.sh UPVM FILEWRITE [ROWS]   (UPVM: the upvm binary;
#        FILEWRITE: filewrite.c built; ROWS: 200000, a database of about
#        230 MiB, run with a budget of 48M)
set -u
UPVM=$(realpath "$1")
FILEWRITE=$(realpath "$2")
. "$(dirname "$0")/filedb.sh"
ROWS=${3:-200000}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/upvm-files.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

SEED=${FILEWRITE_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
echo "filewrite: pwrite beside a mapping of the file, seed $SEED"
# (the first run's size: the stale write-back it guards against showed
# in about half such runs before the fix, rarely in smaller ones)
for run in move:16M:32768:25000 wp:16M:16384:10000 move:none:8192:8000; do
	IFS=: read -r proto budget pages iters <<EOF
$run
EOF
	set -- --files
	[ "$budget" != none ] && set -- --files --budget "$budget"
	if ! UPVM_PAGEOUT=$proto "$UPVM" run "$@" -- "$FILEWRITE" \
	    "$WORK/fw.dat" "$pages" "$iters" "$SEED" >"$WORK/fw.out" 2>&1; then
		echo "files.sh: filewrite under upvm run $* (pageout $proto)" \
		    "failed, seed $SEED (FILEWRITE_SEED replays it):"
		cat "$WORK/fw.out"
		exit 1
	fi
	echo "pageout $proto, budget $budget: $(tail -n 1 "$WORK/fw.out")"
done
rm -f "$WORK/fw.dat"

if ! command -v sqlite3 >/dev/null; then
	echo "files.sh: sqlite3 is not installed: skipped"
	exit 0
fi
DB=$WORK/t.db
make_sqlite_db "$DB" "$ROWS" || exit 1
Q="PRAGMA mmap_size=4294967296;
SELECT count(*), sum(length(v)), max(s), min(s) FROM t;
SELECT k, s FROM t WHERE s >= 'AB' ORDER BY s LIMIT 5;
SELECT sum(k), sum(length(v)) FROM t WHERE k % 7 = 3;
SELECT count(*) FROM t WHERE s LIKE '%FF%';"
MIB=$(( $(stat -c %s "$DB") >> 20 ))
t0=$(date +%s.%N)
sqlite3 "$DB" "$Q" >"$WORK/native.out" || exit 1
t1=$(date +%s.%N)
"$UPVM" run --files --budget 48M --stats="$WORK/stats.json" -- \
    sqlite3 "$DB" "$Q" >"$WORK/upvm.out" 2>"$WORK/upvm.err"
rc=$?
t2=$(date +%s.%N)
if [ $rc -ne 0 ] || ! cmp -s "$WORK/native.out" "$WORK/upvm.out"; then
	echo "files.sh: sqlite3 under upvm run --files (rc $rc) differs:"
	diff "$WORK/native.out" "$WORK/upvm.out" | head -5
	cat "$WORK/upvm.err"
	exit 1
fi
reads=$(grep -o '"file_reads": [0-9]*' "$WORK/stats.json" | grep -o '[0-9]*$')
peak=$(grep -o '"resident_peak_pages": [0-9]*' "$WORK/stats.json" |
    grep -o '[0-9]*$')
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
printf "sqlite3 on a %d MiB database, mmap_size 4G: native %s s, upvm " \
    "$MIB" "$(secs "$t0" "$t1")"
printf "run --files --budget 48M %s s; %s pages read from the file, " \
    "$(secs "$t1" "$t2")" "${reads:-0}"
echo "peak resident $(( ${peak:-0} * 4 / 1024 )) MiB; output identical"
if [ "${reads:-0}" -lt $(( MIB * 256 )) ]; then
	echo "files.sh: upvm read ${reads:-0} pages of the file, fewer than" \
	    "its $(( MIB * 256 )): the mapping was not paged by upvm"
	exit 1
fi

# writes with write(2) beside reads through the mapping: sqlite3 updates
# the database it maps (upvm drops its copies of what write(2) changed);
# every later read must see the new rows
W="PRAGMA mmap_size=4294967296;
UPDATE t SET s = 'X' || substr(s, 2) WHERE k % 5 = 0;
SELECT count(*), sum(k) FROM t WHERE s LIKE 'X%';
SELECT k, s FROM t WHERE k % 5 = 0 ORDER BY k LIMIT 3 OFFSET 1000;
SELECT count(*), max(s) FROM t;"
cp "$DB" "$WORK/n.db" && mv "$DB" "$WORK/u.db" || exit 1
sqlite3 "$WORK/n.db" "$W" >"$WORK/wn.out" || exit 1
"$UPVM" run --files --budget 48M --stats="$WORK/wstats.json" -- \
    sqlite3 "$WORK/u.db" "$W" >"$WORK/wu.out" 2>"$WORK/wu.err"
rc=$?
A="SELECT count(*), sum(k), sum(length(v)), max(s), min(s) FROM t;
PRAGMA integrity_check;"
if [ $rc -ne 0 ] || ! cmp -s "$WORK/wn.out" "$WORK/wu.out" ||
    [ "$(sqlite3 "$WORK/n.db" "$A")" != "$(sqlite3 "$WORK/u.db" "$A")" ]; then
	echo "files.sh: sqlite3 updating its mapped database under upvm" \
	    "(rc $rc) differs from native:"
	diff "$WORK/wn.out" "$WORK/wu.out" | head -5
	cat "$WORK/wu.err"
	exit 1
fi
echo "sqlite3 updating a fifth of its rows through write(2) while reading" \
    "through mmap: output and database identical"

# LMDB: mdb_load writes with pwrite(2) and reads its B-tree back through
# its shared mapping of the database; mdb_dump reads it all through it
if command -v mdb_load >/dev/null; then
	lmdb_input $((ROWS / 2)) 1073741824 600 >"$WORK/lmdb.in"
	mdb_load -n -f "$WORK/lmdb.in" "$WORK/n.mdb" || exit 1
	"$UPVM" run --files --budget 32M -- \
	    mdb_load -n -f "$WORK/lmdb.in" "$WORK/u.mdb" || exit 1
	nd=$(mdb_dump -n -p "$WORK/n.mdb" | sha256sum)
	ud=$("$UPVM" run --files --budget 32M --stats="$WORK/lstats.json" -- \
	    mdb_dump -n -p "$WORK/u.mdb" | sha256sum)
	lreads=$(grep -o '"file_reads": [0-9]*' "$WORK/lstats.json" |
	    grep -o '[0-9]*$')
	if [ "$nd" != "$ud" ] || [ "${lreads:-0}" -eq 0 ]; then
		echo "files.sh: LMDB under upvm run --files: dumps differ or" \
		    "upvm read nothing (${lreads:-0} pages)"
		exit 1
	fi
	echo "LMDB: mdb_load and mdb_dump of a $(( $(stat -c %s \
	    "$WORK/u.mdb") >> 20 )) MiB database under --budget 32M:" \
	    "dump identical, ${lreads} pages read from the file"
else
	echo "files.sh: mdb_load is not installed (lmdb-utils): LMDB skipped"
fi

# a file truncated under its mapping: natively and under upvm run --files,
# the first pages keep their data and a page past the new end, read (so
# resident) before the truncation, raises SIGBUS (exit 135)
cat >"$WORK/trunc.py" <<'PY'
import mmap, os, sys
with open(sys.argv[1], "wb") as f:
    f.write(bytes(range(256)) * (4 << 20 >> 8))
fd = os.open(sys.argv[1], os.O_RDWR)
m = mmap.mmap(fd, 4 << 20)
print("read", sum(m[i] for i in range(0, 4 << 20, 4096)), flush=True)
os.ftruncate(fd, 1 << 20)
print("kept", m[4096 * 10 + 7], flush=True)
print("past the end", m[(2 << 20) + 5], flush=True)
PY
if command -v python3 >/dev/null; then
	# (subshells: the shell's own "Bus error" line goes nowhere)
	(python3 "$WORK/trunc.py" "$WORK/tn" >"$WORK/tn.out"; exit $?) 2>/dev/null
	nrc=$?
	("$UPVM" run --files --stats="$WORK/tstats.json" -- \
	    python3 "$WORK/trunc.py" "$WORK/tu" >"$WORK/tu.out"; exit $?) 2>/dev/null
	urc=$?
	treads=$(grep -o '"file_reads": [0-9]*' "$WORK/tstats.json" \
	    2>/dev/null | grep -o '[0-9]*$')
	if [ "$nrc" != 135 ] || [ "$urc" != 135 ] ||
	    ! cmp -s "$WORK/tn.out" "$WORK/tu.out" || [ -z "$treads" ]; then
		echo "files.sh: truncation under a mapping: native exit $nrc," \
		    "upvm exit $urc (both should be 135, SIGBUS), outputs:"
		cat "$WORK/tn.out" "$WORK/tu.out"
		exit 1
	fi
	echo "a file truncated under its mapping: SIGBUS past the new end," \
	    "natively and under upvm run --files"
else
	echo "files.sh: python3 is not installed: truncation skipped"
fi
