#!/usr/bin/env bash
# main.sh - the main job: build ua-replay in release mode and run the default
# comparison, the library's cache against every kernel design and jemalloc on
# real workloads, writing report/ (summary.md, summary.json, results.json,
# SVG plots); then the live runs on the running kernel (ua-live,
# ua-secret-churn; UA_LIVE=0 leaves them out), and docs/findings.md from
# report/summary.json and the live runs' report/live.json (scripts/findings.py).
#
#   scripts/main.sh [ua-replay arguments...]      e.g. scripts/main.sh --allocator unmapped --allocator naive
#
# Installs missing Debian packages first (apt-get, as root or through sudo)
# and, as root, sets shmem_enabled to "advise" if it is "never" (see lib.sh).
# The build lives in build/release. The module and bpftool listings in
# ../shared/workloads/real/ (third-party data kept outside the repository)
# are replayed when that directory exists; otherwise only the built-in
# generators run. Extra arguments go to `ua-replay --default` unchanged.
# The arena benchmark stays its own binary: build/release/bench/arena_bench.
# Then the live runs on the running kernel (ua-live --default, bounded:
# docs/live.md) write report/live.json and report/live.md; UA_LIVE=0 leaves
# them out, and ua-secret-churn (secrets under churn: the secret cache over
# memfd_secret, one memfd_secret per secret, OpenSSL's secure heap) writes
# report/secret-churn.md. They leave the machine's direct map split until
# reboot. Last, userspace_bench writes report/userspace.{json,txt}, and
# summary.md ends with links to these sections.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

"$ua_repo/scripts/install-deps.sh" base
ua_setup_shmem

build=$ua_repo/build/release
CXX=g++ ua_meson_setup "$build" --buildtype=release || ua_die "meson setup of $build failed"

# bench/meson.build defines the program; refuse clearly rather than run
# something else while it does not exist.
targets=$(ninja -C "$build" -t targets all) || ua_die "cannot list the targets of $build"
if ! grep -q '^bench/ua-replay:' <<<"$targets"; then
	ua_die "the replay tool is not defined: bench/meson.build has no executable 'ua-replay'"
fi

ua_log "building bench/ua-replay (buildtype=release)"
ninja -C "$build" bench/ua-replay bench/live/ua-live

args=(--default --report "$ua_repo/report")
listings=$ua_repo/../shared/workloads/real
if [ -d "$listings" ]; then
	args+=(--listings "$(cd "$listings" && pwd)")
else
	ua_log "no $listings: replaying the built-in generators only"
fi
ua_log "running ua-replay ${args[*]} $*"
start=$(date +%s)
# Exit status 4: some runs had failed allocations; they are in the tables and
# fail their goals, the report is complete. Anything else non-zero stops here.
rc=0
"$build/bench/ua-replay" "${args[@]}" "$@" || rc=$?
case $rc in
0) ;;
4) ua_log "ua-replay: some runs had failed allocations (exit 4): see report/summary.md" ;;
*) ua_die "ua-replay failed with exit status $rc" ;;
esac
ua_log "report written to $ua_repo/report/ in $(($(date +%s) - start)) s (summary.md, summary.json, results.json, *.svg)"
live_json=
if [ "${UA_LIVE:-1}" != 0 ]; then
	live_json=$ua_repo/report/live.json
	live_args=(--default --json "$live_json" --table "$ua_repo/report/live.md")
	[ -d "$listings" ] && live_args+=(--listings "$(cd "$listings" && pwd)")
	ua_log "live runs: ua-live ${live_args[*]} (UA_LIVE=0 leaves them out)"
	"$build/bench/live/ua-live" "${live_args[@]}"
	# Secrets under churn (docs/live.md): the secret cache over memfd_secret,
	# one memfd_secret per secret, OpenSSL's secure heap. Rows the kernel
	# cannot serve say "skipped: why"; a run whose counters cannot be read
	# leaves the rest of the report as it is.
	ninja -C "$build" bench/live/ua-secret-churn
	churn_args=(--mib 4,16,64 --steps 20000)
	ua_log "live runs: ua-secret-churn ${churn_args[*]} > report/secret-churn.md"
	{
		echo "# Secrets under churn on the running kernel"
		echo
		echo "\`ua-secret-churn ${churn_args[*]}\` (docs/live.md, \"Secrets under churn\"), $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r)."
		echo
	} >"$ua_repo/report/secret-churn.md"
	crc=0
	"$build/bench/live/ua-secret-churn" "${churn_args[@]}" >>"$ua_repo/report/secret-churn.md" || crc=$?
	[ "$crc" = 0 ] || ua_log "ua-secret-churn stopped with exit status $crc: report/secret-churn.md holds the rows it finished"
else
	ua_log "UA_LIVE=0: live runs left out"
fi
# docs/findings.md from the simulated comparison and, when this run made
# them, the live runs (a live.json of an earlier run is never folded in).
findings_args=("$ua_repo/report" "$ua_repo/docs/findings.md")
[ -n "$live_json" ] && [ -f "$live_json" ] && findings_args+=(--live "$live_json")
python3 "$ua_repo/scripts/findings.py" "${findings_args[@]}" ||
	ua_die "docs/findings.md could not be generated from report/summary.json${live_json:+ and $live_json}"
"$ua_repo/scripts/install-deps.sh" bench && CXX=g++ ua_meson_setup "$build" --buildtype=release && ninja -C "$build" bench/userspace_bench && "$build/bench/userspace_bench" --json "$ua_repo/report/userspace.json" | tee "$ua_repo/report/userspace.txt"

# summary.md is ua-replay's; the sections the other tools wrote are listed
# at its end so the report reads from one page.
{
	echo
	echo "## Other sections of this report"
	echo
	[ -f "$ua_repo/report/live.md" ] && echo "- [live.md](live.md): the kernel's own designs on the running kernel (\`ua-live --default\`, docs/live.md)"
	[ -f "$ua_repo/report/secret-churn.md" ] && echo "- [secret-churn.md](secret-churn.md): secrets under churn on the running kernel (\`ua-secret-churn\`, docs/live.md)"
	[ -f "$ua_repo/report/userspace.txt" ] && echo "- [userspace.txt](userspace.txt): the caches on real memory against asmjit, OpenSSL, libsodium, jemalloc, mimalloc (\`userspace_bench\`, docs/benchmarks.md)"
	true
} >>"$ua_repo/report/summary.md"
