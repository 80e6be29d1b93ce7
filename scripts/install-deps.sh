#!/usr/bin/env bash
# install-deps.sh - install the Debian packages the build needs, and only the
# missing ones: dpkg-query decides what is missing; if nothing is, apt is not
# touched at all. Otherwise one `apt-get update`, then one
# `apt-get install --no-install-recommends` of the missing packages, as root
# or through sudo.
#
#   scripts/install-deps.sh [GROUP]...   (default: all groups)
#
#   base        compile the library, its tests and benchmarks (g++, meson,
#               ninja, pkg-config, Boost, liburcu, doctest, jemalloc for the
#               benchmarks' baseline; cmake, because doctest-dev ships only a
#               CMake package, which meson finds through cmake)
#   sanitizers  clang-14 and its runtimes, for the ASan/UBSan and TSan builds
#   bench       the allocators bench/userspace_bench compares the caches with
#               (asmjit, OpenSSL, libsodium, mimalloc; jemalloc is in base);
#               each is optional to the build
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

base_pkgs=(g++ meson ninja-build pkg-config cmake libboost-dev liburcu-dev doctest-dev libjemalloc-dev)
sanitizer_pkgs=(clang-14 libclang-rt-14-dev)
bench_pkgs=(libasmjit-dev libssl-dev libsodium-dev libjemalloc-dev libmimalloc-dev)

groups=("$@")
[ ${#groups[@]} -gt 0 ] || groups=(base sanitizers bench)
wanted=()
for g in "${groups[@]}"; do
	case $g in
	base) wanted+=("${base_pkgs[@]}") ;;
	sanitizers) wanted+=("${sanitizer_pkgs[@]}") ;;
	bench) wanted+=("${bench_pkgs[@]}") ;;
	*) ua_die "unknown package group '$g' (base, sanitizers, bench)" ;;
	esac
done

is_installed()
{
	[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

missing=()
for p in "${wanted[@]}"; do
	is_installed "$p" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
	ua_log "Debian packages: all ${#wanted[@]} present"
	exit 0
fi

ua_log "Debian packages missing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
ua_as_root env DEBIAN_FRONTEND=noninteractive apt-get update
ua_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"

for p in "${missing[@]}"; do
	is_installed "$p" || ua_die "package $p still not installed"
done
ua_log "Debian packages: installed ${missing[*]}"
