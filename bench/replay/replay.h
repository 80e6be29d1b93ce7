// SPDX-License-Identifier: MIT
/*
 * replay/replay.h - one run: one workload against one allocator on one
 * fresh machine.
 *
 * A run: build the machine (page allocator + backend) of the setup
 * (machine_load.h: on sim an x86-64 VM of that RAM), age it with the
 * setup's seed (so every allocator sees the same aged machine), then
 * replay the workload's ops against the allocator (replay_ops.h, which says
 * what is measured) built by its row of the registry (allocators.h) for the
 * workload's memory kind and the release asked for.
 */
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
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
		return backend + "-" + g + "g-" + (aged ? "aged" : "fresh");
	}
	replay_settings settings() const { return {samples, reads, read_rounds, seed, background, footprints}; }
};

namespace detail {

/*
 * The aged page allocators, by machine label and settings, shared by the
 * runs of a plan (which may run on several threads: under a lock). A copy
 * of an aged 64 GiB machine is ~150 MB, so only the most recent few are
 * kept: the plan runs every workload and allocator of a seed before the
 * next seed (plan.h), so each key is wanted by runs close together.
 */
struct aged_store {
	static constexpr std::size_t keep = 3;
	std::mutex lock;
	std::map<std::string, std::shared_ptr<const page_allocator>> by_key;
	std::deque<std::string> order;
};

inline aged_store &aged_allocators()
{
	static aged_store s;
	return s;
}

}  // namespace detail

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
	std::unique_ptr<machine<B>> m;
	if constexpr (std::is_same_v<B, sim_direct_map>) {
		/* An x86-64 VM of that much RAM (machine_load.h). */
		auto mm = memory_map::x86_vm(ms.nr_pages());
		if (!mm.ok()) {
			r.note = "no x86 memory map for this size";
			return r;
		}
		m = std::make_unique<machine<B>>(mm.value, pcfg);
	} else {
		m = std::make_unique<machine<B>>(ms.nr_pages(), pcfg);
	}
	if constexpr (requires { m->backend.ok(); }) {
		if (!m->backend.ok()) {
			r.note = std::string("real backend not constructed: ") + m->backend.init_step() + ": " +
				 std::strerror(-m->backend.init_error());
			return r;
		}
	}
	if (ms.aged) {
		/* Aged once per machine and settings; each run copies the aged allocator. */
		char key[160];
		std::snprintf(key, sizeof key, "%s/%llu/%g/%u/%d", ms.label().c_str(), (unsigned long long)ms.seed,
			      ms.free_chunk_fraction, ms.nr_cpus, int(ms.placement_hint));
		auto &store = detail::aged_allocators();
		std::shared_ptr<const page_allocator> aged;
		{
			std::lock_guard<std::mutex> g(store.lock);
			if (auto it = store.by_key.find(key); it != store.by_key.end())
				aged = it->second;
		}
		if (!aged) { /* two runs may age the same machine at once; both get the same allocator */
			auto fresh = m->with_lock([](page_allocator &pa, auto &) { return std::make_shared<page_allocator>(pa); });
			age_config ac;
			ac.seed = ms.seed;
			ac.free_chunk_fraction = ms.free_chunk_fraction;
			if (auto a = fresh->age(ac); !a.ok()) {
				r.note = std::string("ageing failed: ") + describe(a.err);
				return r;
			}
			aged = fresh;
			std::lock_guard<std::mutex> g(store.lock);
			if (store.by_key.emplace(key, aged).second) {
				store.order.push_back(key);
				while (store.order.size() > detail::aged_store::keep) {
					store.by_key.erase(store.order.front());
					store.order.pop_front();
				}
			}
		}
		m->with_lock([&](page_allocator &pa, auto &) { pa = *aged; });
	}
	const run_context c{wc.w.ops, wc.mem, wc.kind, ms.settings(), kernel};
	a->runner<B>()(*m, c, r);
	return r;
}

}  // namespace ua::replay
