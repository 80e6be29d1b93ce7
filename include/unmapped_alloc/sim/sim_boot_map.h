// SPDX-License-Identifier: MIT
/*
 * sim/sim_boot_map.h - which ranges x86-64 maps into the direct map at boot,
 * in which order and with which page sizes: init_mem_mapping() of
 * arch/x86/mm/init.c, as a list of kernel_physical_mapping_init() calls.
 *
 * The kernel maps memblock memory only (the E820 RAM ranges), never holes:
 *   - init_mem_mapping() maps the ISA range [0, 1 MiB) first, whatever the
 *     memory map says there ("the ISA range is always mapped regardless of
 *     memory holes"), then memory_map_top_down(1 MiB, max_pfn);
 *   - memory_map_top_down() starts at real_end, the end of the highest free
 *     2 MiB-aligned 2 MiB block (memblock_find_in_range()), and maps
 *     downwards in steps: first 2 MiB, then, once as much RAM as the step
 *     is mapped, a step 256 times larger (get_new_step_size(): << (PMD_SHIFT
 *     - PAGE_SHIFT - 1)), each step clamped to every memblock region
 *     (init_range_memory_mapping()); what lies above real_end comes last;
 *   - each clamped range goes to init_memory_mapping(), whose
 *     split_mem_range() cuts it into a 4 KiB head up to the first 2 MiB
 *     boundary, 2 MiB pages up to the first 1 GiB boundary, 1 GiB pages
 *     over the whole GiBs, 2 MiB pages, and a 4 KiB tail;
 *     adjust_range_page_size_mask() then lets a 4 KiB part use 2 MiB pages,
 *     and any part use a 1 GiB page, when the whole aligned 2 MiB or 1 GiB
 *     around it is memblock memory (memblock_is_region_memory()); ranges
 *     with the same sizes that touch are merged.
 * So a 1 GiB page only where the whole GiB is RAM, a 2 MiB page only where
 * the whole 2 MiB is, and 4 KiB pages at the edges of RAM and in [0, 1 MiB).
 *
 * Two things memblock knows and this model does not: the early reservations
 * (memblock_find_in_range() skips reserved blocks; the model takes the
 * highest 2 MiB block of RAM as free) and memblock_bottom_up() (movable_node),
 * which maps bottom-up instead. Both only move where the steps fall.
 *
 * The calls can map a range that an earlier call mapped already (a GiB the
 * 2 MiB first step touched gets a 1 GiB page then, and again in each later
 * step that reaches into it); phys_pud_init() and phys_pmd_init() count such
 * an existing leaf again (the "if (!after_bootmem) pages++" of an existing
 * PUD/PMD leaf), which is why DirectMap1G exceeds the RAM it maps. The page
 * tables (sim_page_tables.h) replay that counting.
 */
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "../config.h"
#include "../mapping/types.h"
#include "../mapping/memory_map.h"

namespace ua {

/* One kernel_physical_mapping_init() call: [start, end) in frames, page sizes allowed. */
struct boot_map_range {
	pfn_t start = 0, end = 0;
	unsigned page_size_mask = 0; /* boot_map_plan::page_2m | page_1g */

	constexpr bool operator==(const boot_map_range &) const = default;
};

class boot_map_plan {
public:
	static constexpr unsigned page_2m = 1u << 0; /* 1 << PG_LEVEL_2M */
	static constexpr unsigned page_1g = 1u << 1; /* 1 << PG_LEVEL_1G */
	static constexpr pfn_t pmd_pages = pmd_size / page_size;
	static constexpr pfn_t pud_pages = pud_size / page_size;
	static constexpr pfn_t isa_end = (std::uint64_t{1} << 20) / page_size; /* ISA_END_ADDRESS */

	/*
	 * init_mem_mapping() for the RAM of mm; gbpages as probe_page_size_mask()
	 * decides it (2 MiB pages are always allowed: PSE, no debug_pagealloc).
	 */
	/*
	 * n frames of RAM as an x86 kernel sees them when nothing else is known:
	 * all of [0, n) but page 0, which every x86 kernel reserves
	 * (trim_bios_range(): "update [mem 0x00000000-0x00000fff] usable ==>
	 * reserved"), and the legacy [0x9f000, 1 MiB) of EBDA, VGA and BIOS
	 * (memory_map::x86_vm() with no PCI hole). Smaller than 1 MiB: all RAM.
	 * The machine the simulation builds from a bare frame count.
	 */
	static memory_map x86_flat(std::uint64_t n)
	{
		auto m = memory_map::x86_vm(n, x86_vm_layout{std::uint64_t{4} << 30});
		return m.ok() ? std::move(m.value) : memory_map::flat(n);
	}

	static std::vector<boot_map_range> init_mem_mapping(const memory_map &mm, bool gbpages)
	{
		boot_map_plan p(mm, gbpages);
		p.init_memory_mapping(0, isa_end);
		p.memory_map_top_down(isa_end, mm.end_pfn());
		return std::move(p.out_);
	}

private:
	boot_map_plan(const memory_map &mm, bool gbpages) : mask_(page_2m | (gbpages ? page_1g : 0u))
	{
		/* memblock merges adjacent regions (memblock_add() -> memblock_merge_regions()). */
		for (const frame_range &r : mm.ram()) {
			if (!memory_.empty() && memory_.back().end() == r.pfn)
				memory_.back().nr_pages += r.nr_pages;
			else
				memory_.push_back(r);
		}
	}

	static constexpr pfn_t round_up(pfn_t x, pfn_t a) noexcept { return (x + a - 1) / a * a; }
	static constexpr pfn_t round_down(pfn_t x, pfn_t a) noexcept { return x / a * a; }

	/* memblock_is_region_memory(): the region holding start reaches end. */
	bool is_region_memory(pfn_t start, pfn_t end) const noexcept
	{
		for (const frame_range &r : memory_)
			if (r.pfn <= start && start < r.end())
				return r.end() >= end;
		return false;
	}

	/* memblock_find_in_range(start, end, PMD_SIZE, PMD_SIZE), top-down; 0 when nothing fits. */
	pfn_t find_top_pmd(pfn_t start, pfn_t end) const noexcept
	{
		for (auto it = memory_.rbegin(); it != memory_.rend(); ++it) {
			const pfn_t hi = std::min(end, it->end()), lo = std::max(start, it->pfn);
			if (hi < pmd_pages)
				continue;
			const pfn_t a = round_down(hi - pmd_pages, pmd_pages);
			if (a >= lo && a + pmd_pages <= hi)
				return a;
		}
		return 0;
	}

	void save_mr(std::vector<boot_map_range> &mr, pfn_t start, pfn_t end, unsigned mask) const
	{
		if (start < end)
			mr.push_back({start, end, mask});
	}

	/* split_mem_range() (x86-64) with adjust_range_page_size_mask() and the merge of equal neighbours. */
	std::vector<boot_map_range> split_mem_range(pfn_t start, pfn_t limit) const
	{
		std::vector<boot_map_range> mr;
		pfn_t pfn = start;
		/* head if not big page alignment */
		pfn_t s = pfn, e = std::min(round_up(pfn, pmd_pages), limit);
		if (s < e) {
			save_mr(mr, s, e, 0);
			pfn = e;
		}
		/* big page (2M) range */
		s = round_up(pfn, pmd_pages);
		e = std::min(round_up(pfn, pud_pages), round_down(limit, pmd_pages));
		if (s < e) {
			save_mr(mr, s, e, mask_ & page_2m);
			pfn = e;
		}
		/* big page (1G) range */
		s = round_up(pfn, pud_pages);
		e = round_down(limit, pud_pages);
		if (s < e) {
			save_mr(mr, s, e, mask_ & (page_2m | page_1g));
			pfn = e;
		}
		/* tail is not big page (1G) alignment */
		s = round_up(pfn, pmd_pages);
		e = round_down(limit, pmd_pages);
		if (s < e) {
			save_mr(mr, s, e, mask_ & page_2m);
			pfn = e;
		}
		/* tail is not big page (2M) alignment */
		save_mr(mr, pfn, limit, 0);

		/* adjust_range_page_size_mask(): bigger pages where all of the big page around is memory. */
		for (boot_map_range &r : mr) {
			if ((mask_ & page_2m) && !(r.page_size_mask & page_2m) &&
			    is_region_memory(round_down(r.start, pmd_pages), round_up(r.end, pmd_pages)))
				r.page_size_mask |= page_2m;
			if ((mask_ & page_1g) && !(r.page_size_mask & page_1g) &&
			    is_region_memory(round_down(r.start, pud_pages), round_up(r.end, pud_pages)))
				r.page_size_mask |= page_1g;
		}
		/* try to merge same page size and continuous */
		for (std::size_t i = 0; mr.size() > 1 && i + 1 < mr.size();) {
			if (mr[i].end != mr[i + 1].start || mr[i].page_size_mask != mr[i + 1].page_size_mask) {
				i++;
				continue;
			}
			mr[i].end = mr[i + 1].end;
			mr.erase(mr.begin() + std::ptrdiff_t(i + 1));
		}
		return mr;
	}

	void init_memory_mapping(pfn_t start, pfn_t end)
	{
		for (const boot_map_range &r : split_mem_range(start, end))
			out_.push_back(r);
	}

	/* init_range_memory_mapping(): every memblock region clamped to [r_start, r_end); the frames mapped. */
	pfn_t init_range_memory_mapping(pfn_t r_start, pfn_t r_end)
	{
		pfn_t mapped = 0;
		for (const frame_range &r : memory_) {
			const pfn_t s = std::clamp(r.pfn, r_start, r_end), e = std::clamp(r.end(), r_start, r_end);
			if (s >= e)
				continue;
			init_memory_mapping(s, e);
			mapped += e - s;
		}
		return mapped;
	}

	void memory_map_top_down(pfn_t map_start, pfn_t map_end)
	{
		/* xen has big range in reserved near end of ram, skip it at first. */
		const pfn_t real_end = find_top_pmd(map_start, map_end) + pmd_pages;
		pfn_t step = pmd_pages, last_start = real_end, mapped = 0;
		while (last_start > map_start) {
			pfn_t start = map_start;
			if (last_start > step)
				start = std::max(round_down(last_start - 1, step), map_start);
			mapped += init_range_memory_mapping(start, last_start);
			last_start = start;
			if (mapped >= step)
				step <<= (pmd_shift - page_shift - 1); /* get_new_step_size() */
		}
		if (real_end < map_end)
			init_range_memory_mapping(real_end, map_end);
	}

	unsigned mask_;
	std::vector<frame_range> memory_; /* memblock.memory: RAM, adjacent ranges merged */
	std::vector<boot_map_range> out_;
};

}  // namespace ua
