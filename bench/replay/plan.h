// SPDX-License-Identifier: MIT
/*
 * replay/plan.h - what ua-replay runs: machines, their workloads, the
 * allocators at their releases, over the seeds; and the runs' cases.
 *
 * A plan is a list of machine setups, each with the workload specs run on
 * it and the ops limit of its churn generators, and the list of runs: one
 * per (machine, workload, seed, allocator at a release). The allocators are
 * the options' (registry names, or NAME@X.Y), each at --kernel unless it
 * names its release; a listing whose source says which kernel it came from
 * (workloads/SOURCES.md) also runs every release-following peer at that
 * release, labelled NAME@X.Y, beside the newest: the comparison with what
 * that machine's own kernel did.
 *
 * Seeds: run s of a workload ages the machine with seed s and generates the
 * workload with seed s (workload_cases.h load_case()). The default plan runs
 * the real backend over at most `real_seeds` of them (each real run builds
 * and tears down real memory: ~1.5 s on this machine's class).
 *
 * The cases are loaded as the runs need them and shared by the runs of one
 * (machine, workload, seed) through case_store, which keeps a case only
 * while a run uses it: memory stays at a few cases whatever the plan's size.
 */
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "options.h"
#include "replay.h"
#include "workload_cases.h"

namespace ua::replay {

struct plan_machine {
	machine_setup setup;
	std::vector<workload_spec> specs;
	std::vector<linux_version> source; /* per spec: the release its listing came from, or {} */
	std::vector<memory_kind> mems;     /* per spec: its memory kind */
	std::size_t ops = 0;               /* churn length (0: the generators' defaults) */
	std::uint64_t first_seed = 1, seeds = 1; /* seeds first_seed .. first_seed + seeds - 1 */
};

struct plan_run {
	std::size_t machine = 0, spec = 0;
	std::uint64_t seed = 1;
	std::string allocator; /* label: NAME or NAME@X.Y */
	linux_version release;
};

struct plan {
	std::vector<plan_machine> machines;
	std::vector<plan_run> runs;
};

/* Cases by (machine, spec, seed), loaded on first use, kept while a run holds one. */
class case_store {
public:
	explicit case_store(const plan &p) : p_(p) {}

	workload::parse_result<std::shared_ptr<const workload_case>> get(const plan_run &r)
	{
		using R = workload::parse_result<std::shared_ptr<const workload_case>>;
		std::lock_guard<std::mutex> g(lock_);
		auto &slot = cases_[std::make_tuple(r.machine, r.spec, r.seed)];
		if (auto c = slot.lock())
			return R{c, {}};
		const plan_machine &m = p_.machines[r.machine];
		auto c = load_case(m.specs[r.spec], m.ops, r.seed);
		if (!c)
			return R::failure(c.error);
		auto held = std::make_shared<const workload_case>(std::move(c.value));
		slot = held;
		return R{held, {}};
	}

private:
	const plan &p_;
	std::mutex lock_;
	std::map<std::tuple<std::size_t, std::size_t, std::uint64_t>, std::weak_ptr<const workload_case>> cases_;
};

namespace detail {

/* A kind's memory without generating it: the kinds loaded from files are read once here. */
inline workload::parse_result<memory_kind> spec_memory(const workload_spec &s, linux_version &source)
{
	using R = workload::parse_result<memory_kind>;
	if (s.kind == "vm-host" || s.kind == "vm-host-2m")
		return R{memory_kind::guest, {}};
	if (s.kind == "secretmem")
		return R{memory_kind::secret, {}};
	if (s.kind == "bpf-churn" || s.kind == "bpf-fleet" || s.kind == "tracing-host" || s.kind == "sockex1")
		return R{memory_kind::bpf_text, {}};
	auto c = load_case(s, 1); /* a file: read (and checked) now, so a bad one stops the plan before it runs */
	if (!c)
		return R::failure(c.error);
	source = c.value.source_kernel;
	return R{c.value.mem, {}};
}

}  // namespace detail

/* The runs of every machine's workloads, seeds and allocators, in table order. */
inline std::string add_runs(const options &o, plan &p)
{
	for (std::size_t mi = 0; mi < p.machines.size(); mi++) {
		plan_machine &m = p.machines[mi];
		for (const workload_spec &s : m.specs) {
			linux_version src{};
			auto mem = detail::spec_memory(s, src);
			if (!mem)
				return mem.error;
			m.mems.push_back(mem.value);
			m.source.push_back(src);
		}
		std::vector<std::vector<std::pair<std::string, linux_version>>> allocs(m.specs.size());
		for (std::size_t si = 0; si < m.specs.size(); si++) {
			for (const std::string &a : o.allocators) {
				linux_version k = o.kernel;
				if (auto at = a.find('@'); at != std::string::npos)
					(void)parse_release(a.substr(at + 1), k); /* checked by parse_args() */
				allocs[si].emplace_back(a, k);
			}
			const linux_version src = m.source[si];
			if (src != linux_version{} && src != o.kernel)
				for (const std::string &a : o.allocators) {
					const allocator_info *info = find_allocator(a);
					if (a.find('@') == std::string::npos && info->rule == follows::release &&
					    info->applies_to(m.mems[si]))
						allocs[si].emplace_back(a + "@" + src.str(), src);
				}
		}
		/* Seed by seed: the runs of one aged machine come together (replay.h keeps few aged machines). */
		for (std::uint64_t seed = m.first_seed; seed < m.first_seed + m.seeds; seed++)
			for (std::size_t si = 0; si < m.specs.size(); si++)
				for (const auto &[label, k] : allocs[si])
					p.runs.push_back({mi, si, seed, label, k});
	}
	return {};
}

}  // namespace ua::replay
