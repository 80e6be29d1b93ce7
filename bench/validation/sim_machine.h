// SPDX-License-Identifier: MIT
/*
 * validation/sim_machine.h - a simulated machine built like a real one: its
 * memory map (holes and all), the kernel release it runs, and its ageing.
 *
 * The direct map comes from the memory map as x86 builds it at boot
 * (sim_direct_map over sim/sim_boot_map.h's init_mem_mapping()). The page
 * allocator must never hand out a frame the kernel has no struct page for
 * (a hole: the 32-bit PCI window, page 0, the legacy 640 KiB - 1 MiB), so
 * every frame that is not RAM is taken out of it before anything runs, as
 * memblock never frees them to the buddy allocator (memblock_free_all()
 * frees memblock.memory minus memblock.reserved only).
 *
 * Ageing is the page allocator's own (phys/page_age.h), with the parameters
 * the caller names (docs/validation.md lists them with their sources).
 */
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <unmapped_alloc/phys.h>
#include <unmapped_alloc/sim.h>

namespace ua::validation {

using sim_machine = machine<sim_direct_map>;

struct sim_machine_spec {
	memory_map map;        /* RAM and holes */
	sim_config kernel;     /* release, gbpages */
	bool aged = false;
	age_config ageing;     /* used when aged */
};

struct sim_machine_build {
	std::unique_ptr<sim_machine> m;
	std::uint64_t hole_pages = 0; /* frames below max_pfn that are not RAM, kept out of the allocator */
	std::string error;            /* empty: built */
};

namespace detail {

/*
 * Takes every non-RAM frame of [0, end) out of a fresh page allocator. The
 * allocator's contract (phys/page_alloc.h): with a hint, a block comes from
 * the hint's 1 GiB region whenever one fits there; so a GiB that is all hole
 * is taken in blocks of the largest order, and a GiB with some holes is taken page by
 * page and its RAM pages given back (the buddies merge again). Each block's
 * address is checked to be the one meant.
 */
inline std::string reserve_holes(page_allocator &pa, const memory_map &mm, std::uint64_t &held)
{
	constexpr pfn_t gib = pud_size / page_size, max_block = pfn_t{1} << page_max_order;
	const pfn_t end = mm.end_pfn();
	for (pfn_t g = 0; g < end; g += gib) {
		const pfn_t ge = std::min<pfn_t>(g + gib, end);
		std::uint64_t holes = 0;
		for (pfn_t p = g; p < ge; p++)
			holes += mm.is_ram(p) ? 0 : 1;
		if (holes == 0)
			continue;
		if (holes == ge - g && (ge - g) % max_block == 0) {
			for (pfn_t p = g; p < ge; p += max_block) {
				auto r = pa.alloc_pages(page_max_order, gfp_any_zone, g);
				if (!r.ok() || r.value < g || r.value >= ge)
					return "a GiB of holes could not be reserved at pfn " + std::to_string(g);
			}
			held += holes;
			continue;
		}
		std::vector<pfn_t> ram;
		for (pfn_t n = 0; n < ge - g; n++) {
			auto r = pa.alloc_pages(0, gfp_any_zone, g);
			if (!r.ok() || r.value < g || r.value >= ge)
				return "the holes of the GiB at pfn " + std::to_string(g) + " could not be reserved";
			if (mm.is_ram(r.value))
				ram.push_back(r.value);
		}
		for (pfn_t p : ram)
			if (pa.free_pages(p, 0) != error::ok)
				return "a RAM page could not be given back at pfn " + std::to_string(p);
		held += holes;
	}
	return {};
}

}  // namespace detail

inline sim_machine_build build_sim_machine(const sim_machine_spec &s)
{
	sim_machine_build b;
	const std::uint64_t n = s.map.end_pfn();
	if (n == 0) {
		b.error = "the memory map has no RAM";
		return b;
	}
	b.m = std::make_unique<sim_machine>(n, page_alloc_config{}, s.map, s.kernel);
	if (std::string e = detail::reserve_holes(b.m->pages, s.map, b.hole_pages); !e.empty()) {
		b.error = e;
		b.m.reset();
		return b;
	}
	if (s.aged) {
		auto a = b.m->pages.age(s.ageing);
		if (!a.ok()) {
			b.error = std::string("ageing failed: ") + describe(a.err);
			b.m.reset();
		}
	}
	return b;
}

}  // namespace ua::validation
