#!/usr/bin/env bash
# layout-sweep.sh - a speed benchmark under several code layouts.
#
#   scripts/layout-sweep.sh [cache|arena] [LAYOUTS] [-- EXTRA_CXXFLAGS...]
#
# On this project's host the same source measured ~10% apart depending only
# on where its functions landed in the binary (docs/design.md, "Code
# layout"), on both sides of a comparison. One build is one draw of that
# lottery. This builds bench/cache_bench.cpp (or arena_bench.cpp) once with
# -ffunction-sections and links it LAYOUTS times (default 8) with lld's
# --shuffle-sections, each with its own seed, so every binary places the same
# functions in a different order; it runs each once and prints each run's
# target line, then the median ratio over the layouts. Flags as
# bench/meson.build gives the speed benchmarks, plus any EXTRA_CXXFLAGS.
# Needs g++ (C++20), ld.lld, jemalloc and liburcu. Development tool only: not
# part of the build or the tests.
set -euo pipefail
kind=${1:-cache}
layouts=${2:-8}
shift $(($# < 2 ? $# : 2))
[ "${1:-}" = "--" ] && shift
case $kind in
cache | arena) ;;
*)
	sed -n '2,16p' "$0"
	exit 2
	;;
esac
command -v ld.lld >/dev/null || {
	echo "layout-sweep: ld.lld not found (apt-get install lld)" >&2
	exit 1
}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
flags=(-std=c++20 -O3 -DNDEBUG -D_FILE_OFFSET_BITS=64 -pthread -ffunction-sections
	-falign-functions=64 -falign-loops=32 -falign-jumps=32)
if echo 'int main(){}' | g++ -x c++ -Wa,-mbranches-within-32B-boundaries -o /dev/null - 2>/dev/null; then
	flags+=("-Wa,-mbranches-within-32B-boundaries")
fi
g++ "${flags[@]}" "$@" -I"$repo/include" -I"$repo/bench" -c "$repo/bench/${kind}_bench.cpp" -o "$out/b.o"
ratios=()
for seed in $(seq "$layouts"); do
	g++ -fuse-ld=lld -pthread "$out/b.o" -o "$out/b$seed" -Wl,--shuffle-sections=".text*=$seed" \
		-ljemalloc -lurcu-bp -lurcu-common
	if [ "$kind" = cache ]; then
		line=$("$out/b$seed" | grep '^alloc+free at')
		r=$(grep -oE 'cache/jemalloc [0-9.]+' <<<"$line" | cut -d' ' -f2)
	else
		line=$("$out/b$seed" | grep '^live   100000')
		r=$(grep -oE 'arena/jemalloc [0-9.]+' <<<"$line" | cut -d' ' -f2)
	fi
	echo "layout $seed: $line"
	ratios+=("$r")
done
printf '%s\n' "${ratios[@]}" | sort -n | awk -v k="$kind" '{ v[NR] = $1 } END {
	m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
	printf "%s/jemalloc at 100 K live over %d layouts: median %.3f, range %.3f-%.3f\n", k, NR, m, v[1], v[NR] }'
