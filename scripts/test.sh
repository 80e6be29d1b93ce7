#!/usr/bin/env bash
# test.sh - the test command: every check the project has, in one run.
#
#   scripts/test.sh            everything (what CI runs)
#   UA_QUICK=1 scripts/test.sh skip the sanitizer builds (ignored when CI=true)
#
# Stages, each in its own build directory under build/:
#   gcc         g++, debugoptimized, asserts on: build everything, meson test
#   downstream  install into a temporary prefix; use the library as a meson
#               subproject, through pkg-config and through CMake find_package
#   asan-ubsan  clang-14, -fsanitize=address,undefined, no recovery: meson test
#   stress      the long stress run (tests/reliability/stress_test) on the
#               g++ build
#   fuzz        clang-14 libFuzzer + ASan + UBSan: tests/fuzz/cache_fuzz for
#               UA_FUZZ_SECONDS (60) from the seed corpus
#   tsan        clang-14, -fsanitize=thread: meson test, which there holds the
#               tests that start threads (single_threaded_tests in
#               tests/support/meson.build are neither built nor run)
# Sanitizer options, TSan suppressions and TSan's setarch -R come from the
# default test setup in tests/meson.build, so they hold for every test.
# A failing stage does not stop the later ones. The last line is
# "summary: N passed, M failed" (tests and downstream checks; a stage that
# fails before its tests run counts as one failure); the exit status is
# non-zero if anything failed.
#
# Installs missing Debian packages first (apt-get, as root or through sudo)
# and, as root, sets shmem_enabled to "advise" if it is "never" (see lib.sh).
set -uo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

quick=0
if [ "${UA_QUICK:-0}" != 0 ]; then
	if [ "${CI:-}" = true ]; then
		ua_warn "UA_QUICK is ignored under CI: running every stage"
	else
		quick=1
	fi
fi

groups=(base)
[ "$quick" = 1 ] || groups+=(sanitizers)
"$ua_repo/scripts/install-deps.sh" "${groups[@]}" || ua_die "installing Debian packages failed"
ua_setup_shmem

t_start=$(date +%s)
passed=0
failed=0
skipped=0
report=()

# Adds the results of the last `meson test` in build dir $1 to the totals;
# sets st_pass, st_fail, st_skip.
count_meson_tests()
{
	local log=$1/meson-logs/testlog.json
	st_pass=0 st_fail=0 st_skip=0
	[ -f "$log" ] || return 0
	st_pass=$(grep -o '"result": "[A-Z]*"' "$log" | grep -c -E '"(OK|EXPECTEDFAIL)"')
	st_skip=$(grep -o '"result": "[A-Z]*"' "$log" | grep -c '"SKIP"')
	st_fail=$(grep -o '"result": "[A-Z]*"' "$log" | grep -c -v -E '"(OK|EXPECTEDFAIL|SKIP)"')
}

# stage NAME RESULT DETAIL SECONDS: one row of the closing table.
note_stage()
{
	report+=("$(printf '%-11s %-7s %-38s %5ss' "$1" "$2" "$3" "$4")")
}

# meson_stage NAME CXX TARGET WRAPPER [meson options...]: configure
# build/NAME with compiler CXX, build TARGET (empty: everything), run the
# whole suite (under WRAPPER if not empty), print failing tests' logs.
meson_stage()
{
	local name=$1 cxx=$2 target=$3 wrapper=$4 dir=$ua_repo/build/$1 t0 rc=0
	shift 4
	t0=$(date +%s)
	ua_log "stage $name: configure ($cxx $*)"
	rm -f "$dir/meson-logs/testlog.json"
	if ! CXX=$cxx ua_meson_setup "$dir" "$@"; then
		failed=$((failed + 1))
		note_stage "$name" FAILED "meson setup failed" $(($(date +%s) - t0))
		return 1
	fi
	ua_log "stage $name: build ${target:-everything}"
	# shellcheck disable=SC2086 # an empty target means ninja's default
	if ! ninja -C "$dir" $target; then
		failed=$((failed + 1))
		note_stage "$name" FAILED "build failed" $(($(date +%s) - t0))
		return 1
	fi
	ua_log "stage $name: meson test"
	# shellcheck disable=SC2086 # the wrapper is a command and its arguments
	$wrapper meson test -C "$dir" --no-rebuild --print-errorlogs || rc=$?
	count_meson_tests "$dir"
	if [ "$rc" -ne 0 ] && [ "$st_fail" -eq 0 ]; then
		st_fail=1 # meson test itself failed
	fi
	passed=$((passed + st_pass))
	failed=$((failed + st_fail))
	skipped=$((skipped + st_skip))
	note_stage "$name" "$([ "$st_fail" -eq 0 ] && echo ok || echo FAILED)" \
		"$st_pass passed, $st_fail failed, $st_skip skipped" $(($(date +%s) - t0))
	[ "$st_fail" -eq 0 ]
}

downstream_stage()
{
	local t0 out rc=0 p f
	t0=$(date +%s)
	ua_log "stage downstream"
	out=$(mktemp)
	CXX=g++ "$ua_repo/tests/downstream/run.sh" 2>&1 | tee "$out"
	rc=${PIPESTATUS[0]}
	read -r p f < <(sed -n 's/^downstream: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$out")
	rm -f "$out"
	p=${p:-0} f=${f:-0}
	[ "$rc" -eq 0 ] || [ "$f" -gt 0 ] || f=1
	passed=$((passed + p))
	failed=$((failed + f))
	note_stage downstream "$([ "$f" -eq 0 ] && echo ok || echo FAILED)" "$p passed, $f failed" \
		$(($(date +%s) - t0))
}

# The g++ build compiles everything (benchmarks and examples too); the
# sanitizer builds compile what the tests need (meson-test-prereq).
meson_stage gcc g++ "" "" --buildtype=debugoptimized -Db_ndebug=false
downstream_stage

# stress: the long version of tests/reliability/stress_test (2 threads x 10 M
# mixed operations with lock-free lookups, then a 100 M-operation churn), on
# the g++ build; the suites above run its reduced version.
stress_stage()
{
	local t0 bin=$ua_repo/build/gcc/tests/reliability/stress_test f=0
	t0=$(date +%s)
	ua_log "stage stress: UA_STRESS_OPS=${UA_STRESS_OPS_FULL:-10000000}"
	UA_STRESS_OPS=${UA_STRESS_OPS_FULL:-10000000} "$bin" || f=1
	passed=$((passed + 1 - f))
	failed=$((failed + f))
	note_stage stress "$([ "$f" -eq 0 ] && echo ok || echo FAILED)" "2 x 10 M ops + 100 M churn" $(($(date +%s) - t0))
}

# fuzz: the libFuzzer target tests/fuzz/cache_fuzz.cpp under ASan+UBSan for
# UA_FUZZ_SECONDS (60), starting from the seed corpus in tests/fuzz/corpus
# (new inputs go to build/fuzz/corpus, never into the tree).
fuzz_stage()
{
	local t0 dir=$ua_repo/build/fuzz f=0
	t0=$(date +%s)
	ua_log "stage fuzz: ${UA_FUZZ_SECONDS:-60} s"
	mkdir -p "$dir/corpus"
	# shellcheck disable=SC2046 # pkg-config prints several flags
	if clang++-14 -std=c++20 -O1 -g -Wall -Wextra -Wpedantic -Wthread-safety -Wthread-safety-beta -Werror \
		-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		-I"$ua_repo/include" "$ua_repo/tests/fuzz/cache_fuzz.cpp" \
		$(pkg-config --cflags --libs liburcu-bp) -pthread -o "$dir/cache_fuzz"; then
		(cd "$dir" && ./cache_fuzz -max_total_time="${UA_FUZZ_SECONDS:-60}" -print_final_stats=1 \
			corpus "$ua_repo/tests/fuzz/corpus") || f=1
	else
		f=1
	fi
	passed=$((passed + 1 - f))
	failed=$((failed + f))
	note_stage fuzz "$([ "$f" -eq 0 ] && echo ok || echo FAILED)" "cache_fuzz ${UA_FUZZ_SECONDS:-60} s" \
		$(($(date +%s) - t0))
}

if [ "$quick" = 1 ]; then
	note_stage stress skipped "UA_QUICK=1" 0
	note_stage fuzz skipped "UA_QUICK=1" 0
else
	stress_stage
	fuzz_stage
fi

if [ "$quick" = 1 ]; then
	note_stage asan-ubsan skipped "UA_QUICK=1" 0
	note_stage tsan skipped "UA_QUICK=1" 0
else
	meson_stage asan-ubsan clang++-14 meson-test-prereq "" --buildtype=debugoptimized -Db_ndebug=false \
		-Db_sanitize=address,undefined -Db_lundef=false -Dcpp_args=-fno-sanitize-recover=all
	meson_stage tsan clang++-14 meson-test-prereq "" --buildtype=debugoptimized -Db_ndebug=false \
		-Db_sanitize=thread -Db_lundef=false
fi

echo
echo "==== unmapped_alloc test summary ($(($(date +%s) - t_start)) s) ===="
printf '%s\n' "${report[@]}"
echo "summary: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
