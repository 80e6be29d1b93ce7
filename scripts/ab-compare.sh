#!/usr/bin/env bash
# ab-compare.sh - is a change faster? Two source trees of the library, built
# into one program, take turns on the arena_bench / cache_bench steady state.
#
#   scripts/ab-compare.sh OLD_TREE NEW_TREE [arena|cache] [RUNS]
#
# e.g. git worktree add /tmp/old HEAD~1 && scripts/ab-compare.sh /tmp/old . cache 3
#
# Separate processes on a shared host differ by more than most changes do,
# and within one process whichever allocator is created second ran ~2-3%
# faster in an old/old check. So the program is built twice, once with each
# tree in the "old" place, and each run prints both orders' medians and
# their geometric mean: new/old = sqrt(fwd / rev). Needs g++ (C++20) and
# liburcu; the build goes to a temporary directory. Development tool only:
# not part of the build or the tests.
set -euo pipefail
if [ $# -lt 2 ]; then
	sed -n '2,16p' "$0"
	exit 2
fi
old=$(cd "$1" && pwd)
new=$(cd "$2" && pwd)
kind=${3:-arena}
runs=${4:-3}
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/ab" && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
flags=(-std=c++20 -O3 -DNDEBUG -pthread -Wall -Wextra)
# As bench/meson.build builds the speed benchmarks: code aligned so that a
# function's speed does not depend on where it lands, and the JCC-erratum
# mitigation.
flags+=(-falign-functions=64 -falign-loops=32 -falign-jumps=32)
if echo 'int main(){}' | g++ -x c++ -Wa,-mbranches-within-32B-boundaries -o /dev/null - 2>/dev/null; then
	flags+=("-Wa,-mbranches-within-32B-boundaries")
fi
build() { # build OUT OLD NEW
	g++ "${flags[@]}" -Dua=ua_old -DAB_MAKE=ab_make_old -I"$2/include" -I"$2/bench" -I"$src" -c "$src/variant.cpp" -o "$out/o.o" &
	g++ "${flags[@]}" -Dua=ua_new -DAB_MAKE=ab_make_new -I"$3/include" -I"$3/bench" -I"$src" -c "$src/variant.cpp" -o "$out/n.o" &
	g++ "${flags[@]}" -I"$src" -c "$src/main.cpp" -o "$out/m.o"
	wait
	g++ -pthread "$out/m.o" "$out/o.o" "$out/n.o" -o "$1" -lurcu-bp -lurcu-common
}
build "$out/fwd" "$old" "$new"
build "$out/rev" "$new" "$old"
for _ in $(seq "$runs"); do
	f=$("$out/fwd" "$kind" | tee /dev/stderr | grep -oE 'median [0-9.]+' | cut -d' ' -f2)
	r=$("$out/rev" "$kind" | tee /dev/stderr | grep -oE 'median [0-9.]+' | cut -d' ' -f2)
	awk -v f="$f" -v r="$r" 'BEGIN { printf "new tree / old tree: %.3f (geometric mean of %s and 1/%s)\n", sqrt(f / r), f, r }'
done
