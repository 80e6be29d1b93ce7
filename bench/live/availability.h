// SPDX-License-Identifier: MIT
/*
 * live/availability.h - whether a live run can run here, and which of the
 * kernel's designs it is.
 *
 * A live run needs root (BPF programs, locked secret memory, tracefs), the
 * kernel's counters in /proc, and BPF with a JIT (a minimal program must load
 * and report a JIT image) or memfd_secret. When one is missing the run is
 * skipped with a one-line reason, and nothing else is affected.
 */
#pragma once

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "live/bpf_prog.h"
#include "live/proc_counters.h"
#include "live/secret_file.h"

namespace ua::live {

enum class live_kind { bpf, secret };

inline const char *design_of(live_kind k) { return k == live_kind::bpf ? "bpf_prog_pack" : "secretmem"; }
/* The project's simulated peer that models the kernel's design (bench/peers/). */
inline const char *model_of(live_kind k) { return k == live_kind::bpf ? "bpf-prog-pack" : "naive"; }

/*
 * UA_LIVE_FORCE_ABSENT=root,bpf,memfd_secret,counters (any subset) makes
 * availability report that piece missing, so every skip path can be tested
 * on a machine that has them all.
 */
inline bool forced_absent(const char *what)
{
	const char *v = std::getenv("UA_LIVE_FORCE_ABSENT");
	if (!v)
		return false;
	std::string s = std::string(",") + v + ",";
	return s.find(std::string(",") + what + ",") != std::string::npos;
}

/* "" when a live run of kind k can run here, else the one-line reason. */
inline std::string live_availability(live_kind k)
{
	if (geteuid() != 0 || forced_absent("root"))
		return "not root: live runs load BPF programs and lock secret memory as root";
	if (forced_absent("counters"))
		return "kernel counters missing (forced by UA_LIVE_FORCE_ABSENT)";
	if (auto c = read_counters(); !c)
		return "kernel counters missing: " + c.error;
	if (k == live_kind::bpf) {
		if (forced_absent("bpf"))
			return "BPF unavailable (forced by UA_LIVE_FORCE_ABSENT)";
		program_maker m;
		if (int e = m.calibrate(); e != 0)
			return std::string("BPF programs cannot be loaded and JIT-compiled: ") + std::strerror(-e);
		if (auto p = read_packs(); !p)
			return "bpf_prog_pack areas cannot be read: " + p.error;
	} else {
		if (forced_absent("memfd_secret"))
			return "memfd_secret unavailable (forced by UA_LIVE_FORCE_ABSENT)";
		int fd = sys_memfd_secret(0);
		if (fd < 0)
			return std::string("memfd_secret unavailable: ") + std::strerror(errno) +
			       (errno == ENOSYS ? " (secretmem.enable=0 or no CONFIG_SECRETMEM)" : "");
		::close(fd);
	}
	return {};
}

/*
 * "" when the running kernel has the design a workload kind needs, else
 * why not: guest memory without a direct map (vm-host, the unmerged
 * GUEST_MEMFD_FLAG_NO_DIRECT_MAP) and module text (no loadable modules
 * here, and no way to give a module a size) cannot be run live.
 */
inline std::string kernel_lacks(const std::string &workload_kind)
{
	if (workload_kind == "vm-host" || workload_kind == "vm-host-2m")
		return "the running kernel has no guest_memfd without a direct map (GUEST_MEMFD_FLAG_NO_DIRECT_MAP is "
		       "unmerged)";
	if (workload_kind == "modules" || workload_kind == "uptime")
		return "no loadable modules on this kernel, and module text cannot be given a size from user space";
	return {};
}

}  // namespace ua::live
