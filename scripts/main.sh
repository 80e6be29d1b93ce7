#!/usr/bin/env bash
# main.sh - the main job: build the arena benchmark in release mode and run it.
#
#   scripts/main.sh [arena_bench arguments...]      e.g. scripts/main.sh --json out.json
#
# Installs missing Debian packages first (apt-get, as root or through sudo)
# and, as root, sets shmem_enabled to "advise" if it is "never" (see lib.sh).
# The build lives in build/release; arguments are passed to arena_bench
# unchanged and relative paths are taken from the caller's directory.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

"$ua_repo/scripts/install-deps.sh" base
ua_setup_shmem

build=$ua_repo/build/release
CXX=g++ ua_meson_setup "$build" --buildtype=release || ua_die "meson setup of $build failed"

# bench/meson.build defines the benchmark; refuse clearly rather than run
# something else while it does not exist.
targets=$(ninja -C "$build" -t targets all) || ua_die "cannot list the targets of $build"
if ! grep -q '^bench/arena_bench:' <<<"$targets"; then
	ua_die "the arena benchmark is not defined yet: bench/meson.build has no executable 'arena_bench'"
fi

ua_log "building bench/arena_bench (buildtype=release)"
ninja -C "$build" bench/arena_bench
ua_log "running arena_bench $*"
exec "$build/bench/arena_bench" "$@"
