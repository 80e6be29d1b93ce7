#!/usr/bin/env bash
# run.sh - the downstream check: does the library work for a project outside
# this tree? Installs it into a temporary prefix (never into the system),
# checks what was installed, then builds and runs consumer.cpp three ways:
#
#   subproject  a meson project with the repository in subprojects/
#   pkgconfig   a plain compiler command with `pkg-config --cflags --libs`
#   cmake       a CMake project with find_package(unmapped_alloc)
#
# Prints one line per check and, last, "downstream: N passed, M failed";
# exits non-zero on any failure. UA_KEEP_TMP=1 keeps the temporary directory.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ua-downstream.XXXXXX")
if [ "${UA_KEEP_TMP:-0}" = 1 ]; then
	echo "downstream: keeping $tmp"
else
	trap 'rm -rf "$tmp"' EXIT
fi
prefix=$tmp/prefix
cxx=${CXX:-g++}
passed=0
failed=0

# Runs check $1 (a shell function) with its output in $tmp/$1.log, shown only on failure.
check()
{
	local name=$1
	if "$name" >"$tmp/$name.log" 2>&1; then
		echo "downstream $name: ok ($(tail -n 1 "$tmp/$name.log"))"
		passed=$((passed + 1))
	else
		echo "downstream $name: FAILED; its log:"
		sed 's/^/    /' "$tmp/$name.log"
		failed=$((failed + 1))
	fi
}

# meson setup writes the pkg-config file and the CMake package at configure
# time, so installing needs no compilation (--no-rebuild). Neither the test
# framework (doctest) nor the benchmarks' baseline (jemalloc) is needed to
# install: both are turned off here, as if they were not on the machine.
install()
{
	meson setup "$tmp/lib-build" "$repo" --prefix="$prefix" -Dtests=disabled -Djemalloc=disabled &&
		meson install -C "$tmp/lib-build" --no-rebuild &&
		echo "installed into $prefix"
}

# What a user gets: the headers, a pkg-config file and a CMake package that
# name only what the headers need. jemalloc is the benchmarks' baseline and
# must not leak to users.
installed_files()
{
	local f
	for f in include/unmapped_alloc/error.h include/unmapped_alloc/config.h \
		share/pkgconfig/unmapped_alloc.pc \
		share/cmake/unmapped_alloc/unmapped_allocConfig.cmake \
		share/cmake/unmapped_alloc/unmapped_allocConfigVersion.cmake; do
		[ -f "$prefix/$f" ] || { echo "missing: $f"; return 1; }
	done
	if grep -ril jemalloc "$prefix/share"; then
		echo "jemalloc appears in the installed package files above"
		return 1
	fi
	if find "$prefix" -path "$prefix/include" -prune -o -type f -name '*.so*' -print | grep .; then
		echo "a header-only library installed shared objects"
		return 1
	fi
	echo "headers, pkg-config file, CMake package; no jemalloc"
}

# The headers come in as a system directory (-isystem, as CMake's imported
# target does), so a user's stricter warnings judge only the user's code:
# the consumer builds with -Wconversion -Wsign-conversion -Wold-style-cast,
# which the library's own headers do not pass.
pkgconfig()
{
	local flags
	flags=$(PKG_CONFIG_PATH=$prefix/share/pkgconfig pkg-config --cflags --libs unmapped_alloc) || return 1
	echo "pkg-config: $flags"
	case " $flags " in *jemalloc*) echo "jemalloc in the flags"; return 1 ;; esac
	case " $flags " in *" -isystem$prefix/include "*) ;; *) echo "the headers are not an -isystem directory"; return 1 ;; esac
	# shellcheck disable=SC2086 # the flags are meant to be split into words
	"$cxx" -std=c++20 -Wall -Wextra -Wpedantic -Wconversion -Wsign-conversion -Wold-style-cast -Werror \
		"$here/consumer.cpp" $flags -o "$tmp/pkgconfig-consumer" && "$tmp/pkgconfig-consumer"
}

cmake_package()
{
	local src=$tmp/cmake-src
	mkdir -p "$src" && cp "$here/cmake/CMakeLists.txt" "$here/consumer.cpp" "$src/" &&
		cmake -S "$src" -B "$tmp/cmake-build" -G Ninja -DCMAKE_CXX_COMPILER="$cxx" \
			-DCMAKE_PREFIX_PATH="$prefix" &&
		cmake --build "$tmp/cmake-build" && "$tmp/cmake-build/consumer"
}

# The subproject is the repository itself through a symlink, so what is
# checked is the checkout as it is, and no copy is ever committed.
subproject()
{
	local src=$tmp/meson-src
	mkdir -p "$src/subprojects" &&
		cp "$here/meson-subproject/meson.build" "$here/consumer.cpp" "$src/" &&
		ln -s "$repo" "$src/subprojects/unmapped_alloc" &&
		CXX=$cxx meson setup "$tmp/meson-build" "$src" --force-fallback-for=unmapped_alloc &&
		meson compile -C "$tmp/meson-build" &&
		meson test -C "$tmp/meson-build" --print-errorlogs &&
		"$tmp/meson-build/consumer"
}

command -v cmake >/dev/null || echo "downstream: cmake not found (scripts/install-deps.sh installs it)"
check install
if [ "$failed" -eq 0 ]; then
	check installed_files
	check pkgconfig
	check cmake_package
fi
check subproject

echo "downstream: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
