#!/bin/bash
# churn.sh: a soak test for upvmd (not run by CI): ROUNDS rounds of one
# upvmd (64M) and three dworkers (48 MiB each, one of them forking),
# while `upvm ctl budget` moves the daemon's budget between 8 and 127
# MiB every 10-90 ms.  A round whose workers fail, or whose logs say a
# page was lost, is kept in OUT/fail.N.  It found the loss that
# pd_move_check watches for once in about 500 rounds.
#   usage: churn.sh BUILD-DIR OUT-DIR [ROUNDS]
set -u
B=$1 OUT=$2 N=${3:-100}
mkdir -p "$OUT"
W=$(mktemp -d "${TMPDIR:-/tmp}/churn.XXXXXX")
trap 'rm -rf "$W"' EXIT
export TMPDIR=$W
for round in $(seq "$N"); do
	rm -f "$W/s.sock"
	"$B/tools/upvmd" --socket "$W/s.sock" --budget 64M --foreground -v \
	    2> "$W/d.log" &
	d=$!
	for _ in $(seq 50); do [ -S "$W/s.sock" ] && break; sleep 0.05; done
	pids=()
	for args in "" "--random" "--random --forks 1"; do
		# shellcheck disable=SC2086
		"$B/tools/upvm" run --daemon="$W/s.sock" -- "$B/test/dworker" \
		    --mib 48 --seconds 6 $args > "$W/w${#pids[@]}.out" 2>&1 &
		pids+=($!)
	done
	end=$((SECONDS + 7))
	while [ $SECONDS -lt $end ]; do
		"$B/tools/upvm" ctl --socket "$W/s.sock" budget \
		    $((RANDOM % 120 + 8))M > /dev/null 2>&1
		sleep 0.0$((RANDOM % 9 + 1))
	done
	bad=0
	for p in "${pids[@]}"; do wait "$p" || bad=1; done
	kill "$d"; wait "$d"
	if [ $bad = 1 ] || grep -q "FAILED\|resident but\|lost\|put back" \
	    "$W"/w*.out; then
		echo "round $round FAILED"
		mkdir -p "$OUT/fail.$round"
		cp "$W"/*.out "$W/d.log" "$OUT/fail.$round/"
	fi
	echo "round $round done $(date +%T)"
done
