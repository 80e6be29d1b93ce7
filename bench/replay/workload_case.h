// SPDX-License-Identifier: MIT
/*
 * replay/workload_case.h - a workload as the replay runs it: the --workload
 * spec it came from and the op sequence with its figures
 * (workload_cases.h builds one from a spec).
 */
#pragma once

#include <cstdint>
#include <string>

#include "kernel_release.h"
#include "workload/op.h"

namespace ua::replay {

using workload::memory_kind;

struct workload_spec {
	std::string kind; /* bpf-churn, modules, bpftool, trace, secretmem, sockex1, ... */
	std::string arg;  /* seed, file or instance count; "" when omitted */
	std::uint64_t number = 0; /* the parsed seed or count */
};

struct workload_case {
	std::string name;     /* e.g. bpf-churn:1, modules:lsmod_x */
	std::string kind;     /* the spec's kind */
	memory_kind mem = memory_kind::bpf_text; /* the whole workload's: picks the cache and the peers' settings */
	linux_version source_kernel{}; /* the release a real listing came from; {} when unknown or generated */
	workload::workload w;
	workload::workload_stats st; /* measure(w) */
};

}  // namespace ua::replay
