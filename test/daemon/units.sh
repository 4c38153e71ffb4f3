#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
#
# units.sh: upvmd's systemd units pass `systemd-analyze verify` (with
# ExecStart pointing at this build's upvmd), and socket activation works:
# systemd-socket-activate listens as upvmd.socket would and starts upvmd
# on the first connection with the socket as fd 3 (LISTEN_FDS), and a
# program attaches through it.  Skipped (77) without systemd's tools.
#
# usage: units.sh UNITDIR UPVMD UPVM DWORKER
set -u
UNITS=$1 UPVMD=$(realpath "$2") UPVM=$(realpath "$3") DW=$(realpath "$4")
for t in systemd-analyze systemd-socket-activate; do
	command -v $t >/dev/null || { echo "units.sh: $t not found" \
	    "(Debian: apt-get install systemd): skipped"; exit 77; }
done
WORK=$(mktemp -d "${TMPDIR:-/tmp}/upvmd-units.XXXXXX")
SA=
trap '[ -n "$SA" ] && kill $SA 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
sed "s|^ExecStart=[^ ]*|ExecStart=$UPVMD|" "$UNITS/upvmd.service" \
    >"$WORK/upvmd.service"
cp "$UNITS/upvmd.socket" "$WORK/"
if ! systemd-analyze verify --man=no "$WORK/upvmd.socket" \
    "$WORK/upvmd.service" >"$WORK/verify" 2>&1; then
	echo "FAIL units: systemd-analyze verify:"
	cat "$WORK/verify"
	exit 1
fi
# the group the socket names may not exist here; nothing else may be said
if grep -v -i "group" "$WORK/verify" | grep -q .; then
	echo "FAIL units: systemd-analyze verify said:"
	cat "$WORK/verify"
	exit 1
fi
echo "ok   units: systemd-analyze verify"
SOCK=$WORK/upvmd.sock
systemd-socket-activate --seqpacket -l "$SOCK" \
    "$UPVMD" --foreground --budget 32M >"$WORK/upvmd.log" 2>&1 &
SA=$!
for i in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
TMPDIR=$WORK "$UPVM" run --daemon="$SOCK" -- "$DW" --mib 48 --seconds 2 \
    >"$WORK/out" 2>&1
rc=$?
if [ $rc -ne 0 ] || ! grep -q OK "$WORK/out" ||
    ! grep -q "the socket systemd passed" "$WORK/upvmd.log" ||
    ! grep -q "attach: pid" "$WORK/upvmd.log"; then
	echo "FAIL units: socket activation (exit $rc):"
	cat "$WORK/out" "$WORK/upvmd.log"
	exit 1
fi
echo "ok   units: socket activation: $(grep -c 'attach: pid' \
    "$WORK/upvmd.log") attaches through the socket systemd-socket-activate passed"
