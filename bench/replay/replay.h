// SPDX-License-Identifier: MIT
/*
 * replay/replay.h - one run: one workload against one allocator on one
 * fresh machine.
 *
 * A run: build the machine (page allocator + backend) of the setup, age it
 * with the setup's seed (so every allocator sees the same aged machine), then
 * replay the workload's ops against the allocator (replay_ops.h, which says
 * what is measured) built by its row of the registry (allocators.h) for the
 * workload's memory kind and the release asked for.
 */
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>

#include <unmapped_alloc/phys.h>
#include <unmapped_alloc/sim.h>

#include "allocators.h"
#include "machine_load.h"
#include "replay_ops.h"
#include "run_result.h"
#include "workload_case.h"

namespace ua::replay {

struct machine_setup {
	std::string backend = "sim"; /* sim | real */
	double gib = 64;
	bool aged = true;
	std::uint64_t seed = 1;
	std::size_t samples = 200;
	std::size_t reads = 65536; /* per pass: short passes, many rounds, best of each resists noise */
	int read_rounds = 40;
	double free_chunk_fraction = 0.02; /* age_config: pageblocks ageing keeps wholly free */
	/* The machine's kernel (machine_load.h): CPUs with their own pcp lists, what runs beside the workload. */
	unsigned nr_cpus = 2;
	bool background = true;      /* page-cache reads and slab churn between ops */
	bool footprints = true;      /* instances with a footprint are processes */
	bool placement_hint = false; /* proposal: the page allocator honours the chunk source's hint */

	std::uint64_t nr_pages() const noexcept { return std::uint64_t(gib * 512) * pages_per_chunk; }
	std::string label() const
	{
		char g[32];
		std::snprintf(g, sizeof g, "%g", gib);
		return backend + "-" + g + "g-" + (aged ? "aged" : "fresh") + (placement_hint ? "-hint" : "");
	}
	replay_settings settings() const { return {samples, reads, read_rounds, seed, background, footprints}; }
};

/* The release a run of `a` follows and its label: "execmem@6.13-rc" unless it is the plan's `k`. */
inline std::string release_label(const allocator_info &a, linux_version release)
{
	switch (a.rule) {
	case follows::library:
		return "library";
	case follows::release:
		return release.str();
	case follows::proposal:
		return "proposal";
	case follows::baseline:
		return "baseline";
	}
	return {};
}

/*
 * One run on a fresh machine of the setup. `alloc` is a registry name,
 * optionally "@X.Y" for the release it follows (else `kernel`).
 */
template <mapping_backend B>
run_result run_case(const machine_setup &ms, const workload_case &wc, const std::string &alloc,
		    linux_version kernel = peers::newest_release)
{
	run_result r;
	r.allocator = alloc;
	r.workload = wc.name;
	r.workload_kind = wc.kind;
	r.backend = ms.backend;
	r.machine = ms.label();
	r.seed = ms.seed;
	r.machine_gib = ms.gib;
	r.aged = ms.aged;
	r.ops = wc.w.ops.size();
	r.peak_live_bytes = wc.st.peak_bytes;
	r.lower_bound_chunks = chunks_for_bytes(wc.st.peak_bytes);
	const allocator_info *a = find_allocator(alloc);
	if (!a) {
		r.note = "unknown allocator " + alloc;
		return r;
	}
	if (auto at = alloc.find('@'); at != std::string::npos && !parse_release(alloc.substr(at + 1), kernel)) {
		r.note = "unknown release in " + alloc;
		return r;
	}
	r.release = release_label(*a, kernel);
	if (!a->applies_to(wc.mem)) {
		r.note = std::string("not applicable: ") + a->name + " serves " + a->serves;
		return r;
	}
	const page_alloc_config pcfg = detail::page_alloc_config_for(ms.nr_cpus, ms.placement_hint);
	/* The sim machine is an x86-64 VM of that much RAM (machine_load.h); the real one a flat memfd. */
	memory_map mm;
	if constexpr (std::is_same_v<B, sim_direct_map>) {
		auto x = memory_map::x86_vm(ms.nr_pages());
		if (!x.ok()) {
			r.note = "no x86 memory map for this size";
			return r;
		}
		mm = std::move(x.value);
	} else {
		mm = memory_map::flat(ms.nr_pages());
	}
	/*
	 * Aged once per machine and settings; each run starts from a copy of
	 * the aged allocator. Runs go in parallel (runner): the first run of a
	 * key ages under the cache's lock, the others wait for it and copy.
	 */
	std::shared_ptr<const page_allocator> aged;
	if (ms.aged) {
		char key[160];
		std::snprintf(key, sizeof key, "%s/%llu/%g/%u/%d", ms.label().c_str(), (unsigned long long)ms.seed,
			      ms.free_chunk_fraction, ms.nr_cpus, int(ms.placement_hint));
		aged = detail::aged_allocator(key, [&]() -> std::shared_ptr<const page_allocator> {
			auto pa = std::make_shared<page_allocator>(mm, pcfg);
			age_config ac;
			ac.seed = ms.seed;
			ac.free_chunk_fraction = ms.free_chunk_fraction;
			if (!pa->age(ac).ok())
				return nullptr;
			return pa;
		});
		if (!aged) {
			r.note = "ageing failed";
			return r;
		}
	}
	std::unique_ptr<machine<B>> m;
	if constexpr (std::is_same_v<B, sim_direct_map>)
		m = aged ? std::make_unique<machine<B>>(mm, *aged) : std::make_unique<machine<B>>(mm, pcfg);
	else
		m = aged ? std::make_unique<machine<B>>(ms.nr_pages(), *aged) : std::make_unique<machine<B>>(ms.nr_pages(), pcfg);
	if constexpr (requires { m->backend.ok(); }) {
		if (!m->backend.ok()) {
			r.note = std::string("real backend not constructed: ") + m->backend.init_step() + ": " +
				 std::strerror(-m->backend.init_error());
			return r;
		}
	}
	const run_context c{wc.w.ops, wc.mem, wc.kind, ms.settings(), kernel};
	a->runner<B>()(*m, c, r);
	return r;
}

}  // namespace ua::replay
