#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
#
# xproc.sh: upvm-xproc, the probe behind two measured claims of the README
# (a fault served from another process costs what one served in-process
# does; what a first touch costs by who mapped the page), runs at a small
# size and prints every row with a figure, or says which kernel feature it
# lacks; bad usage gets the usage line and status 2.
#
# usage: xproc.sh UPVM-XPROC   (skipped, status 77, without userfaultfd)
set -u
XPROC=$1
OUT=$(mktemp "${TMPDIR:-/tmp}/upvm-xproc-test.XXXXXX")
trap 'rm -f "$OUT"' EXIT
fail() { echo "FAIL: $*"; cat "$OUT"; exit 1; }

"$XPROC" --pages 256 --repeat 1 > "$OUT" 2>&1
rc=$?
if [ $rc -ne 0 ] && grep -q "userfaultfd" "$OUT"; then
	echo "SKIP: no userfaultfd here: $(cat "$OUT")"; exit 77
fi
[ $rc -eq 0 ] || fail "hand-offs: status $rc"
[ "$(grep -cE 'min +[0-9]+\.[0-9]+ us +median +[0-9]+\.[0-9]+ us' "$OUT")" = 3 ] ||
	fail "hand-offs: not three rows with figures"

"$XPROC" --touch --pages 1024 --repeat 2 > "$OUT" 2>&1 || fail "--touch: status $?"
rows=$(grep -cE '(min +[0-9]+\.[0-9]+ us +median +[0-9]+\.[0-9]+ us|skipped: the kernel lacks it)$' "$OUT")
[ "$rows" = 6 ] || fail "--touch: $rows rows of 6"
for r in "anonymous fault" "1st mapping" "2nd mapping" "UFFDIO_COPY, writable" \
    "UFFDIO_COPY, write-protected"; do
	grep "$r" "$OUT" | grep -q "min " || fail "--touch: no figure for $r"
done

for bad in "--pages" "--pages 0" "--pages 12x" "--repeat 65" "--bogus"; do
	# shellcheck disable=SC2086
	"$XPROC" $bad > "$OUT" 2>&1
	rc=$?
	[ $rc -eq 2 ] || fail "'$bad': status $rc, not 2"
	grep -q "^usage: upvm-xproc" "$OUT" || fail "'$bad': no usage line"
done
echo "xproc: hand-offs and first touch measured; bad usage refused"
