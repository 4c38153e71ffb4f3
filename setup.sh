#!/bin/sh
# setup.sh: the two quick-start commands of the README.
#   ./setup.sh demo   install build dependencies if missing, build, run the demo
#   ./setup.sh test   same setup, then every test suite, normal and ASan/UBSan
# It ends with one line "N passed, N failed" for the whole test run.
set -eu
cd "$(dirname "$0")"

PKGS="gcc meson ninja-build pkg-config liburing-dev libnuma-dev
      libcriterion-dev libjemalloc-dev libbsd-dev"

need_pkgs() {
	missing=""
	for p in $PKGS; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
		    grep -q "install ok installed" || missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	echo "setup.sh: installing$missing"
	if [ "$(id -u)" -ne 0 ]; then
		echo "setup.sh: run as root (apt-get install -y$missing)" >&2
		exit 1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
}

build() {	# build DIR [meson options...]
	dir=$1; shift
	[ -f "$dir/build.ninja" ] || meson setup "$dir" -Dwerror=true "$@" >/dev/null
	ninja -C "$dir" >/dev/null
}

# sum the Criterion "Synthesis" lines of one meson test run; a suite that
# died before printing its synthesis counts as one failure
tally() {	# tally DIR
	log="$1/meson-logs/testlog.txt"
	suites=$(grep -c '^==================================== ' "$log" || true)
	awk -v suites="$suites" '
	    /Synthesis: Tested:/ {
		for (i = 1; i <= NF; i++) {
			if ($i == "Passing:") p += $(i + 1)
			if ($i == "Failing:") f += $(i + 1)
			if ($i == "Crashing:") f += $(i + 1)
		}
		n++
	    }
	    END { if (suites > n) f += suites - n; print p + 0, f + 0 }' "$log"
}

case "${1:-}" in
demo)
	need_pkgs
	build build
	./build/tools/upvm demo
	;;
test)
	need_pkgs
	build build
	build build-asan -Db_sanitize=address,undefined -Db_lundef=false
	pass=0 fail=0
	for dir in build build-asan; do
		echo "== $dir"
		ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		LSAN_OPTIONS=suppressions=$PWD/test/lsan.supp:print_suppressions=0 \
		UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		    meson test -C "$dir" --print-errorlogs --num-processes 1 \
		    >"$dir/meson-test.out" 2>&1 || true
		grep -E '^ *[0-9]+/[0-9]+ ' "$dir/meson-test.out" || true
		set -- $(tally "$dir")
		pass=$((pass + $1)) fail=$((fail + $2))
	done
	echo "$pass passed, $fail failed"
	[ "$fail" -eq 0 ]
	;;
*)
	echo "usage: ./setup.sh demo|test" >&2
	exit 2
	;;
esac
