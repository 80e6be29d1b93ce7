// SPDX-License-Identifier: MIT
/*
 * phys/page_alloc_boot.h - building the zones from a memory map and
 * freeing its RAM to the buddy allocator, as boot does:
 * zone_sizes_init() and find_zone_movable_pfns_for_nodes() for the zone
 * ranges, memmap_init() (every pageblock MIGRATE_MOVABLE),
 * memblock_free_all() (RAM in blocks of up to MAX_PAGE_ORDER, FPI_TO_TAIL),
 * init_per_zone_wmark_min() (watermarks, lowmem_reserve) and
 * zone_pcp_update() (pcp high and batch). Included at the end of
 * page_alloc.h.
 */
#pragma once

#include <bit>

#include "page_alloc.h"

namespace ua {

inline page_allocator::page_allocator(std::uint64_t nr_pages, page_alloc_config cfg)
	: page_allocator(memory_map::flat(nr_pages), cfg)
{
}

inline page_allocator::page_allocator(const memory_map &mm, page_alloc_config cfg) : cfg_(cfg) { boot(mm); }

inline void page_allocator::boot(const memory_map &mm)
{
	using namespace detail::pa;
	end_pfn_ = mm.end_pfn();
	/* 32-bit list links: 16 TiB of frames at most. */
	UA_CHECK(end_pfn_ < nil, "machine too large");
	nr_cpus_ = cfg_.nr_cpus ? cfg_.nr_cpus : 1;
	next_.assign(end_pfn_, nil);
	prev_.assign(end_pfn_, nil);
	state_.assign(end_pfn_, make_state(fk_hole, 0));
	pb_mt_.assign((end_pfn_ + pageblock_nr_pages - 1) >> pageblock_order, std::uint8_t(migrate_movable));
	region_free_.assign((end_pfn_ + pages_per_region - 1) / pages_per_region, 0);
	page_cache_bits_.assign((end_pfn_ + 63) / 64, 0);
	const std::vector<frame_range> ram = mm.ram();
	std::uint64_t ram_pages = 0;
	for (const frame_range &r : ram)
		ram_pages += r.nr_pages;

	/*
	 * find_zone_movable_pfns_for_nodes() with movablecore=: the top
	 * ram_pages * fraction of RAM, its start rounded up to
	 * MAX_ORDER_NR_PAGES, taken from the highest populated zone only.
	 */
	zone_lo_ = {0, max_dma_pfn, max_dma32_pfn, end_pfn_ + 1};
	double f = cfg_.movable_fraction;
	f = (f > 0.0) ? (f < 1.0 ? f : 1.0) : 0.0; /* NaN and negatives: no ZONE_MOVABLE */
	if (const auto movable = std::uint64_t(double(ram_pages) * f)) {
		std::uint64_t left = movable;
		pfn_t start = end_pfn_;
		for (auto it = ram.rbegin(); it != ram.rend() && left; ++it) {
			const std::uint64_t take = std::min(left, it->nr_pages);
			start = it->end() - take;
			left -= take;
		}
		const pfn_t max_order_pages = pfn_t{1} << page_max_order;
		start = (start + max_order_pages - 1) & ~(max_order_pages - 1);
		pfn_t floor = 0; /* the highest populated zone below Movable */
		for (const frame_range &r : ram)
			for (pfn_t lo : {pfn_t{0}, max_dma_pfn, max_dma32_pfn})
				if (r.end() > lo)
					floor = std::max(floor, std::max(lo, r.pfn));
		floor = (floor + max_order_pages - 1) & ~(max_order_pages - 1);
		zone_lo_[3] = std::max(start, floor);
	}
	for (unsigned zi = 0; zi < nr_zones; zi++) {
		zone_t &z = zones_[zi];
		z.type = zone_type(zi);
		const pfn_t lo = zone_lo_[zi];
		pfn_t hi = end_pfn_;
		for (unsigned zj = zi + 1; zj < nr_zones; zj++)
			hi = std::min(hi, std::max(lo, zone_lo_[zj]));
		z.start = hi;
		z.end = lo;
		for (const frame_range &r : ram) {
			const pfn_t s = std::max(r.pfn, lo), e = std::min(r.end(), hi);
			if (s >= e)
				continue;
			z.start = std::min(z.start, s);
			z.end = std::max(z.end, e);
			z.present += e - s;
		}
		if (!z.present)
			z.start = z.end = lo;
	}
	/* memblock_free_all(): __free_memory_core() blocks, to the tail of the free lists. */
	for (const frame_range &r : ram) {
		for (pfn_t p = r.pfn; p < r.end(); p++)
			state_[p] = make_state(fk_free_tail, 0);
		pfn_t start = r.pfn;
		const pfn_t end = r.end();
		while (start < end) {
			unsigned order = start ? std::min(page_max_order, unsigned(std::countr_zero(start))) : page_max_order;
			while (start + (pfn_t{1} << order) > end)
				order--;
			zone_t &z = zone_of_pfn(start);
			z.managed += pfn_t{1} << order;
			split_large_buddy(z, start, order, true);
			start += pfn_t{1} << order;
		}
	}
	managed_ = 0;
	for (const zone_t &z : zones_)
		managed_ += z.managed;
	/* build_all_zonelists(): too little memory to group by mobility (MIGRATE_TYPES 6 with CMA and isolation). */
	mobility_disabled_ = managed_ < pageblock_nr_pages * 6;
	if (cfg_.min_free_kbytes != 0) {
		const std::uint64_t kb = cfg_.min_free_kbytes < 0 ? calculate_min_free_kbytes(zones_, cfg_.thp)
								  : std::uint64_t(cfg_.min_free_kbytes);
		setup_per_zone_wmarks(zones_, kb);
		setup_per_zone_lowmem_reserve(zones_);
	}
	for (zone_t &z : zones_) {
		per_cpu_pages pcp;
		pcp.batch = zone_batchsize(z.managed);
		pcp.high = zone_highsize(z.watermark[wmark_low], pcp.batch, nr_cpus_);
		z.pcp.assign(nr_cpus_, pcp);
	}
}

}  // namespace ua
