#!/bin/sh
# ua-replay's exit status, from the binary (bench/replay/ua_replay.cpp):
#   0  every run made, no failed allocation;
#   2  bad arguments;
#   3  a run not made because its machine could not be built, the reason
#      printed whatever --quiet says.
# A real-backend machine of 64 TiB cannot be built on any host this runs on
# (linux_backend refuses a size beyond MemAvailable + SwapFree: "memory
# check", ENOMEM, before mapping anything), so it gives 3 quickly.
# Usage: exit_status_test.sh PATH/TO/ua-replay
set -u
replay=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
printf 'alloc 1 4096 64\nalloc 2 8192 64\nfree 1\nfree 2\n' >"$dir/trace.txt"
fails=0

# expect CODE NAME ARGS...: runs ua-replay, checks its exit status; output in $dir/NAME.{out,err}.
expect()
{
	want=$1 name=$2
	shift 2
	"$replay" "$@" >"$dir/$name.out" 2>"$dir/$name.err"
	got=$?
	if [ "$got" -ne "$want" ]; then
		echo "FAIL $name: exit $got, expected $want: ua-replay $*"
		sed 's/^/  stderr: /' "$dir/$name.err"
		fails=$((fails + 1))
	else
		echo "ok   $name: exit $got"
	fi
}

# must_say NAME FILE TEXT: the output names the reason.
must_say()
{
	if ! grep -qF -- "$3" "$dir/$1.$2"; then
		echo "FAIL $1: $2 does not say: $3"
		sed 's/^/  '"$2"': /' "$dir/$1.$2"
		fails=$((fails + 1))
	fi
}

small="--workload trace:$dir/trace.txt --allocator unmapped --seeds 1 --jobs 1"

expect 0 sim --backend sim --machine-gib 1 --fresh $small
expect 2 usage --backend nowhere $small
must_say usage err "--backend"

# 3: the real machine cannot be built; the run is reported, not made.
expect 3 real --backend real --machine-gib 65536 $small
must_say real err "not run: real backend not constructed: memory check"
must_say real err "runs not made: their machine could not be built"
# --quiet hides progress, never why a run was not made, nor the status.
expect 3 real_quiet --backend real --machine-gib 65536 --quiet $small
must_say real_quiet err "real backend not constructed"
[ "$fails" -eq 0 ] && echo "exit status: all as documented"
[ "$fails" -eq 0 ]
