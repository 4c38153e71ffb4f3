#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
#
# run.sh: build the libFuzzer targets (fuzz_*.c, with ASan and UBSan) and
# run each for SECONDS on a copy of its corpus (corpus/TARGET/, kept in
# the tree: a finding worth keeping is copied there by hand).  Prints per
# target the executions, the corpus size and the new inputs; exits 1 on a
# crash, with libFuzzer's report and the crashing input (also left in
# OUTDIR).  Skipped (exit 77) without clang.
#
# usage: run.sh SRCROOT OUTDIR [SECONDS]   (default 20; CLANG: clang)
set -u
SRC=$(realpath "$1")
OUT=$2
SECS=${3:-20}
CLANG=${CLANG:-clang}
if ! command -v "$CLANG" >/dev/null; then
	echo "run.sh: $CLANG not found (Debian: apt-get install clang):" \
	    "fuzzing skipped"
	exit 77
fi
mkdir -p "$OUT" || exit 1
OUT=$(realpath "$OUT")
CFLAGS="-g -O1 -std=c17 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined
    -fno-sanitize-recover=undefined -I$SRC/runtime -I$SRC/runtime/base
    -I$SRC/runtime/engine -I$SRC/runtime/vm -I$SRC/pager -I$SRC/numa"
PARSERS="$SRC/runtime/base/config.c $SRC/runtime/base/log.c
    $SRC/runtime/base/dproto.c $SRC/numa/policy.c $SRC/numa/topo.c -lnuma"
status=0
for t in config numa dproto; do
	# shellcheck disable=SC2086
	if ! "$CLANG" $CFLAGS -o "$OUT/fuzz_$t" "$SRC/test/fuzz/fuzz_$t.c" \
	    $PARSERS >"$OUT/fuzz_$t.build" 2>&1; then
		echo "run.sh: building fuzz_$t failed:"
		cat "$OUT/fuzz_$t.build"
		exit 1
	fi
	rm -rf "$OUT/corpus-$t"
	cp -r "$SRC/test/fuzz/corpus/$t" "$OUT/corpus-$t" || exit 1
	before=$(ls "$OUT/corpus-$t" | wc -l)
	(cd "$OUT" && ASAN_OPTIONS=detect_leaks=1 "./fuzz_$t" \
	    -max_total_time="$SECS" -timeout=10 -rss_limit_mb=1024 \
	    -artifact_prefix="$OUT/crash-$t-" "$OUT/corpus-$t" \
	    >"$OUT/fuzz_$t.log" 2>&1)
	rc=$?
	runs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$OUT/fuzz_$t.log" |
	    tail -n 1)
	after=$(ls "$OUT/corpus-$t" | wc -l)
	if [ $rc -ne 0 ]; then
		echo "run.sh: fuzz_$t found a bug (exit $rc):"
		grep -v '^#[0-9]' "$OUT/fuzz_$t.log" | tail -n 40
		ls "$OUT"/crash-"$t"-* 2>/dev/null
		status=1
	else
		echo "fuzz_$t: ${runs:-no summary} (${SECS} s asked);" \
		    "corpus $before -> $after inputs; no crash"
	fi
done
exit $status
