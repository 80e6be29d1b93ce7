// SPDX-License-Identifier: MIT
/*
 * live/replay_hook.h - `ua-replay --backend kernel`: ua-replay's workload
 * cases run on the running kernel (live_run.h), as run_results of the same
 * shape as the other backends'.
 *
 * ua-replay calls three things (bench/replay/ua_replay.cpp):
 *   runs_live(alloc, wc)     whether the pair is run at all on the kernel
 *                            backend: only the peer that models the kernel's
 *                            own design for the workload's memory (bpf-prog-
 *                            pack for BPF text, naive for secrets); the
 *                            kernel has none of the others;
 *   run_case(ms, wc, alloc)  the live run, its run_result labelled with the
 *                            kernel's design (bpf_prog_pack, secretmem);
 *   results_json(rs)         bench/replay's results_json(), each kernel run
 *                            with its "kernel" object (live_report.h).
 * The "kernel" objects are kept here, keyed by machine, workload and
 * allocator (a plan runs each triple once), under a mutex; the same mutex
 * serialises the live runs, whose counters are global to the machine, even
 * if the caller runs other backends in parallel.
 *
 * Setup: --aged ages the machine before each run (live/ageing.h) and
 * releases the page cache after it; --machine-gib and --seed do not apply
 * (the machine is the one running); --samples gives the counter samples.
 * Module listings are not run live (no loadable modules): runs_live() is
 * true for modules only so that the skip and its reason reach the report.
 */
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "live/live_report.h"
#include "replay/replay.h"
#include "replay/workload_cases.h"

namespace ua::live {

namespace detail {
struct kernel_registry {
	std::mutex lock;
	std::map<std::string, std::string> json; /* machine \x1f workload \x1f allocator -> "kernel" object */
};
inline kernel_registry &registry()
{
	static kernel_registry r;
	return r;
}
inline std::string key_of(const replay::run_result &r) { return r.machine + "\x1f" + r.workload + "\x1f" + r.allocator; }
}  // namespace detail

inline bool runs_live(const std::string &alloc, const replay::workload_case &wc)
{
	if (wc.mem == replay::memory_kind::module_text || !kernel_lacks(wc.kind).empty())
		return alloc == "naive"; /* once, to report the skip */
	return alloc == (wc.mem == replay::memory_kind::secret ? "naive" : "bpf-prog-pack");
}

inline replay::run_result run_case(const replay::machine_setup &ms, const replay::workload_case &wc, const std::string &alloc)
{
	auto &reg = detail::registry();
	std::lock_guard<std::mutex> g(reg.lock);
	const live_kind k = wc.mem == replay::memory_kind::secret ? live_kind::secret : live_kind::bpf;
	live_result lr;
	lr.kind = k;
	if (std::string why = kernel_lacks(wc.kind); !why.empty()) {
		lr.skipped = why;
	} else if (wc.mem == replay::memory_kind::module_text) {
		lr.skipped = kernel_lacks("modules");
	} else if (!runs_live(alloc, wc)) {
		lr.skipped = "the running kernel has no " + alloc + ": live runs are its own designs (bpf_prog_pack, secretmem)";
	} else {
		live_config cfg;
		cfg.aged = ms.aged;
		cfg.samples = ms.samples ? ms.samples : 20;
		/*
		 * A bpftool case carries sizes as allocated, not the listing's jited
		 * sizes (ua-live passes those): each image is the largest of its
		 * allocation class, so the packs see the same requests.
		 */
		lr = run_live(wc.w, k, cfg);
	}
	replay::run_result r = to_run_result(lr, wc.w, wc.name, wc.kind);
	if (wc.mem == replay::memory_kind::module_text)
		r.allocator = "execmem"; /* this kernel's design for module text, which is not run live */
	else if (!kernel_lacks(wc.kind).empty())
		r.allocator = "none";    /* no design of this kernel serves it */
	if (!lr.ran) {
		r.aged = ms.aged;
		r.machine = ms.aged ? "kernel-aged" : "kernel-fresh";
	}
	reg.json[detail::key_of(r)] = kernel_json(lr);
	return r;
}

inline std::string results_json(const std::vector<replay::run_result> &rs)
{
	auto &reg = detail::registry();
	std::lock_guard<std::mutex> g(reg.lock);
	std::string s = "[\n";
	for (std::size_t i = 0; i < rs.size(); i++) {
		std::string k;
		if (rs[i].backend == "kernel")
			if (auto it = reg.json.find(detail::key_of(rs[i])); it != reg.json.end())
				k = it->second;
		s += "  " + run_json(rs[i], k) + (i + 1 < rs.size() ? ",\n" : "\n");
	}
	return s + "]\n";
}

}  // namespace ua::live
