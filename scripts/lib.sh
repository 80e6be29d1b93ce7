# shellcheck shell=bash
# lib.sh - helpers shared by main.sh, test.sh and install-deps.sh (sourced, not run).

ua_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

ua_log() { printf '==> %s\n' "$*"; }
ua_warn() { printf 'warning: %s\n' "$*" >&2; }
ua_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Runs a command as root: directly when we are root, through sudo otherwise.
ua_as_root()
{
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		ua_die "need root for: $* (run as root, or install sudo)"
	fi
}

# The real mapping backend backs chunks with a memfd and needs 2 MiB pages for
# shared memory, which the kernel gives only when shmem_enabled is not
# "never" (the default on some distributions). As root we switch "never" to
# "advise" (huge pages only where MADV_HUGEPAGE asks for them, so nothing else
# on the machine changes behaviour); any other setting is left alone. Without
# root we only say what is missing.
ua_shmem_knob=${UA_SHMEM_KNOB:-/sys/kernel/mm/transparent_hugepage/shmem_enabled}

ua_shmem_mode()
{
	# The active mode is the bracketed word: "always within_size advise [never] deny force".
	sed -n 's/.*\[\([a-z_]*\)\].*/\1/p' "$ua_shmem_knob" 2>/dev/null
}

ua_setup_shmem()
{
	local mode
	mode=$(ua_shmem_mode)
	if [ -z "$mode" ]; then
		ua_warn "$ua_shmem_knob not readable: shared-memory huge pages unavailable"
		return 0
	fi
	if [ "$mode" != never ]; then
		ua_log "shmem_enabled is '$mode': left alone"
		return 0
	fi
	if [ "$(id -u)" -ne 0 ]; then
		ua_warn "shmem_enabled is 'never': run as root, or 'echo advise | sudo tee $ua_shmem_knob', for 2 MiB shared-memory pages"
		return 0
	fi
	if echo advise >"$ua_shmem_knob" 2>/dev/null && [ "$(ua_shmem_mode)" = advise ]; then
		ua_log "shmem_enabled: never -> advise"
	else
		ua_warn "could not set $ua_shmem_knob to advise (read-only sysfs?)"
	fi
}

# Configures build dir $1 with the remaining arguments as meson options, or
# reconfigures it when it exists (a build dir keeps its compiler).
ua_meson_setup()
{
	local dir=$1
	shift
	if [ -f "$dir/meson-private/coredata.dat" ]; then
		meson setup --reconfigure "$dir" "$ua_repo" "$@"
	else
		rm -rf "$dir"
		meson setup "$dir" "$ua_repo" "$@"
	fi
}
