// SPDX-License-Identifier: MIT
/*
 * validation/experiments.h - the two experiments the simulation is checked
 * against, run in the simulator.
 *
 * The published one (validation/published.h): an 8 GiB x86-64 VM, then 512,
 * 1024 and 2048 concurrent sockex1 instances one after the other on the same
 * machine (workload/sockex1.h), DirectMap read after each step; v5.17 runs
 * each program's text through the naive peer (module_alloc-era
 * bpf_jit_binary_alloc() + set_memory_ro()/set_memory_x(), peers/naive.h at
 * 5.17), v6.1-rc3 through bpf_prog_pack (peers/bpf_prog_pack.h at 6.1-rc3);
 * fresh, and aged first.
 *
 * The live one (validation/live_figures.h): ua-live's rows replayed in their
 * order on one simulated machine per ageing, configured like the machine
 * they were measured on (its memory map, release 6.18), bpf-fill through
 * bpf_prog_pack at 6.18 and secretmem-fill through the naive peer's
 * secretmem path.
 *
 * Parameters not taken from kernel source are fields of the models below,
 * each with its source in docs/validation.md.
 */
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "live/live_workloads.h"
#include "peers/bpf_prog_pack.h"
#include "peers/naive.h"
#include "validation/live_figures.h"
#include "validation/page_cache.h"
#include "validation/published.h"
#include "validation/sim_replay.h"
#include "workload/sockex1.h"

namespace ua::validation {

/*
 * How an aged machine is made: by the measurements' own procedure, page
 * cache read into memory (page_cache.h), or by the page allocator's ageing
 * model (phys/page_age.h, age_config).
 */
enum class ageing_mode { page_cache, page_age };

/* ---- the published experiment --------------------------------------------- */

struct published_model {
	std::uint64_t machine_gib = published_machine_gib;
	x86_vm_layout layout{};                      /* i440FX: RAM below 3 GiB, then the PCI hole */
	unsigned nr_cpus = 16;                       /* the author's call trace runs on "CPU: 15" */
	unsigned pages_per_instance = published_pages_per_instance; /* v5.17: pages made RO+X per load */
	bool footprints = true;                      /* each instance's process memory (sockex1_footprint) */
	bool boot_program = true;                    /* v6.1: a program loaded at boot, so a pack exists */
	ageing_mode ageing_by = ageing_mode::page_cache;
	age_config ageing{};                         /* ageing_by page_age */
	std::uint64_t seed = 1;                      /* order of the exits */
};

struct published_point {
	const published_cell *cell = nullptr;
	sim_delta since_boot;
	backend_stats now;
	std::size_t failed_allocs = 0, failed_footprints = 0;
	std::string first_failure;
};

struct published_series {
	std::string_view kernel;
	bool aged = false;
	backend_stats boot; /* the simulated machine's figures "right after boot" (after ageing when aged) */
	std::vector<published_point> points;
	std::string error;
};

inline bool is_v5_17(std::string_view kernel) { return kernel == "5.17"; }

inline published_series simulate_published(std::string_view kernel, bool aged, const published_model &pm)
{
	published_series s;
	s.kernel = kernel;
	s.aged = aged;
	const bool old = is_v5_17(kernel);
	auto map = memory_map::x86_vm(pm.machine_gib * (pud_size / page_size), pm.layout);
	if (!map.ok()) {
		s.error = "no memory map for the VM";
		return s;
	}
	const bool by_cache = aged && pm.ageing_by == ageing_mode::page_cache;
	const std::uint64_t ram = map.value.ram_pages();
	sim_machine_spec spec{std::move(map.value), sim_config{}, aged && !by_cache, pm.ageing, kernel_page_alloc(pm.nr_cpus)};
	spec.kernel.release = old ? linux_5_17 : linux_6_1;
	sim_machine_build b = build_sim_machine(spec);
	if (!b.error.empty()) {
		s.error = b.error;
		return s;
	}
	sim_machine &m = *b.m;
	const peers::linux_version rel = old ? peers::v5_17 : peers::linux_version{6, 1, 3}; /* v6.1-rc3 */
	std::unique_ptr<peers::naive_peer<sim_direct_map>> naive;
	std::unique_ptr<peers::bpf_prog_pack_peer<sim_direct_map>> pack;
	std::uintptr_t boot_prog = 0;
	if (old) {
		naive = std::make_unique<peers::naive_peer<sim_direct_map>>(
			m, peers::naive_config{peers::naive_use::vmalloc_text, rel});
	} else {
		pack = std::make_unique<peers::bpf_prog_pack_peer<sim_direct_map>>(m, peers::bpf_prog_pack_config{rel});
		if (pm.boot_program) {
			auto a = pack->alloc(workload::sockex1_pack_bytes, workload::bpf_prog_chunk_size);
			if (!a.ok()) {
				s.error = std::string("the boot program could not be loaded: ") + describe(a.err);
				return s;
			}
			boot_prog = a.value;
		}
	}
	s.boot = sim_stats(m);
	/* "firstly consume all memory to page cache": the workload gets its memory back by reclaim */
	page_cache cache(m);
	if (by_cache)
		cache.fill_all(ram);
	for (const published_cell &c : published_cells) {
		if (c.kernel != kernel || c.aged != aged || c.instances == 0)
			continue;
		workload::sockex1_params sp;
		sp.instances = c.instances;
		sp.model = old ? workload::bpf_alloc_model::page : workload::bpf_alloc_model::pack;
		sp.seed = pm.seed;
		const workload::workload w = workload::generate_sockex1(sp);
		replay_options o;
		o.footprints = pm.footprints;
		o.copies = old ? pm.pages_per_instance : 1;
		sim_run r = old ? replay_on(m, *naive, w, o) : replay_on(m, *pack, w, o);
		published_point p;
		p.cell = &c;
		p.now = r.after;
		p.since_boot = delta_of(r.after, s.boot);
		p.failed_allocs = r.failed_allocs;
		p.failed_footprints = r.failed_footprints;
		p.first_failure = r.first_failure;
		s.points.push_back(p);
	}
	if (pack && boot_prog)
		(void)pack->free(boot_prog);
	return s;
}

/* ---- the live experiment ---------------------------------------------------- */

struct live_model {
	memory_map map;               /* the live machine's, from its /proc/iomem */
	unsigned nr_cpus = 2;         /* the live machine's vCPUs */
	bool boot_program = true;     /* a pack exists at start (ua-live: "1 -> ... packs") */
	ageing_mode ageing_by = ageing_mode::page_cache;
	age_config ageing{};          /* ageing_by page_age: the aged rows' machine */
	/* ua-live's default floor + reserve, where the fill stops when a row does not record it */
	std::uint64_t default_fill_free_kb = std::uint64_t(6 + 2) << 20;
};

struct live_point {
	const live_row *row = nullptr;
	sim_run run;
	std::string error; /* the row could not be replayed */
};

/* The workload ua-live ran for a row's name, or an empty one with error set. */
inline workload::workload live_workload_of(std::string_view name, std::string &error)
{
	auto num = [](std::string_view s, std::uint64_t &v) {
		if (s.empty())
			return false;
		auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
		return ec == std::errc{} && p == s.data() + s.size();
	};
	auto field = [](std::string_view &rest) {
		const std::size_t c = rest.find(':');
		std::string_view f = rest.substr(0, c);
		rest = c == std::string_view::npos ? std::string_view{} : rest.substr(c + 1);
		return f;
	};
	std::string_view rest = name;
	const std::string_view kind = field(rest);
	std::uint64_t a = 0, size = live::bpf_fill_default_size;
	if (kind == "bpf-fill" && num(field(rest), a) && (rest.empty() || num(field(rest), size)) && rest.empty() &&
	    size >= 128 && size % 64 == 0 && size <= workload::bpf_prog_pack_size)
		return live::bpf_fill(a, size);
	if (kind == "secretmem-fill" && num(field(rest), a) && rest.empty())
		return live::secretmem_fill(a);
	error = "not a fill workload: " + std::string(name);
	return {};
}

inline bool is_bpf_workload(std::string_view name) { return name.substr(0, 9) == "bpf-fill:"; }

/* The rows of one ageing, in order, on one machine like the live one. */
inline std::vector<live_point> simulate_live(const std::vector<live_row> &rows, bool aged, const live_model &lm,
					     std::string &error)
{
	std::vector<live_point> out;
	const bool by_cache = aged && lm.ageing_by == ageing_mode::page_cache;
	sim_machine_spec spec{lm.map, sim_config{}, aged && !by_cache, lm.ageing, kernel_page_alloc(lm.nr_cpus)};
	spec.kernel.release = linux_6_18;
	sim_machine_build b = build_sim_machine(spec);
	if (!b.error.empty()) {
		error = b.error;
		return out;
	}
	sim_machine &m = *b.m;
	peers::bpf_prog_pack_peer<sim_direct_map> pack(m, peers::bpf_prog_pack_config{peers::v6_18});
	peers::naive_peer<sim_direct_map> secret(m, peers::naive_config{peers::naive_use::secretmem, peers::v6_18});
	std::uintptr_t boot_prog = 0;
	if (lm.boot_program) {
		auto a = pack.alloc(workload::bpf_prog_chunk_size, workload::bpf_prog_chunk_size);
		if (!a.ok()) {
			error = std::string("the boot program could not be loaded: ") + describe(a.err);
			return out;
		}
		boot_prog = a.value;
	}
	for (const live_row &r : rows) {
		if (r.aged != aged)
			continue;
		live_point p;
		p.row = &r;
		const workload::workload w = live_workload_of(r.workload, p.error);
		if (p.error.empty()) {
			/* ua-live's ageing: fill to where its run stopped, keep the cache meanwhile, drop it after */
			page_cache cache(m);
			if (by_cache)
				cache.fill_to(std::uint64_t(r.age_free_kb > 0 ? r.age_free_kb : std::int64_t(lm.default_fill_free_kb)) /
					   (page_size / 1024));
			replay_options o;
			o.ops_limit = r.ops_done;
			p.run = is_bpf_workload(r.workload) ? replay_on(m, pack, w, o) : replay_on(m, secret, w, o);
			cache.drop();
		}
		out.push_back(std::move(p));
	}
	if (boot_prog)
		(void)pack.free(boot_prog);
	return out;
}

}  // namespace ua::validation
