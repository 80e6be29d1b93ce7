// SPDX-License-Identifier: MIT
/*
 * phys/zone.h - zones, their free areas, per-CPU page lists and watermarks,
 * with the boot-time formulas of mm/page_alloc.c that size them.
 *
 * x86-64 zones (arch/x86/mm/init.c zone_sizes_init()): ZONE_DMA below
 * 16 MiB (MAX_DMA_PFN), ZONE_DMA32 below 4 GiB (MAX_DMA32_PFN), ZONE_NORMAL
 * above, and ZONE_MOVABLE when movablecore= carves it from the top of the
 * highest zone (find_zone_movable_pfns_for_nodes(), its start rounded up to
 * MAX_ORDER_NR_PAGES). A zone spans from its first to its last RAM frame;
 * holes inside a span are never free.
 *
 * Everything here is plain data; page_allocator (page_alloc.h) owns the
 * zones and runs the rules on them.
 */
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <vector>

#include "pageblock.h"

namespace ua {

enum class zone_type : unsigned { dma = 0, dma32 = 1, normal = 2, movable = 3 };
inline constexpr unsigned nr_zones = 4; /* MAX_NR_ZONES without ZONE_DEVICE */
inline const char *zone_name(zone_type z) noexcept
{
	static const char *const names[] = {"DMA", "DMA32", "Normal", "Movable"};
	return names[unsigned(z)];
}

/* arch/x86/include/asm/dma.h: MAX_DMA_PFN (16 MiB) and MAX_DMA32_PFN (4 GiB). */
inline constexpr pfn_t max_dma_pfn = (std::uint64_t{16} << 20) >> page_shift;
inline constexpr pfn_t max_dma32_pfn = (std::uint64_t{4} << 30) >> page_shift;

namespace detail::pa {

/*
 * NR_PCP_LISTS: one list per migratetype and order up to
 * PAGE_ALLOC_COSTLY_ORDER, plus NR_PCP_THP (2) lists for pageblock-order
 * pages, movable and not (order_to_pindex()).
 */
inline constexpr unsigned nr_loworder_pcp_lists = migrate_pcptypes * (page_alloc_costly_order + 1);
inline constexpr unsigned nr_pcp_lists = nr_loworder_pcp_lists + 2;
/* mm/Kconfig CONFIG_PCP_BATCH_SCALE_MAX default. */
inline constexpr int pcp_batch_scale_max = 5;

/* pcp_allowed_order(): orders <= PAGE_ALLOC_COSTLY_ORDER, and the PMD order with THP. */
constexpr bool pcp_allowed_order(unsigned order, bool thp) noexcept
{
	return order <= page_alloc_costly_order || (thp && order == pageblock_order);
}
/* order_to_pindex() and pindex_to_order(). */
constexpr unsigned order_to_pindex(unsigned mt, unsigned order) noexcept
{
	if (order > page_alloc_costly_order)
		return nr_loworder_pcp_lists + (mt == migrate_movable ? 1u : 0u);
	return migrate_pcptypes * order + mt;
}
constexpr unsigned pindex_to_order(unsigned pindex) noexcept
{
	return pindex >= nr_loworder_pcp_lists ? pageblock_order : pindex / migrate_pcptypes;
}

/* struct per_cpu_pages, without high auto-tuning: high_min == high_max == high. */
struct per_cpu_pages {
	std::array<list_head, nr_pcp_lists> lists{};
	int count = 0;      /* pages on the lists */
	int high = 0;       /* free_pcppages_bulk() when count reaches it */
	int batch = 1;      /* chunk size for buddy add/remove */
	int free_count = 0; /* consecutive freed pages (nr_pcp_free()) */
	std::uint8_t alloc_factor = 0;
	bool prev_free_high_order = false; /* PCPF_PREV_FREE_HIGH_ORDER */
};

enum wmark { wmark_min = 0, wmark_low = 1, wmark_high = 2 };

/* struct zone: the fields the allocation and free paths read. */
struct zone {
	zone_type type = zone_type::dma;
	pfn_t start = 0, end = 0;            /* span [start, end): zone_start_pfn, zone_end_pfn() */
	std::uint64_t present = 0;           /* RAM frames in the span */
	std::uint64_t managed = 0;           /* frames given to the buddy allocator */
	std::array<std::array<list_head, migrate_pcptypes>, nr_page_orders> free_list{};
	std::array<std::uint64_t, nr_page_orders> nr_free{};                 /* free_area[o].nr_free */
	std::array<std::array<std::uint64_t, migrate_pcptypes>, nr_page_orders> nr_free_mt{};
	std::uint64_t free_pages = 0;        /* NR_FREE_PAGES: buddy pages, not pcp */
	std::array<std::uint64_t, 3> watermark{};
	std::array<std::uint64_t, nr_zones> lowmem_reserve{};
	std::vector<per_cpu_pages> pcp;      /* one per CPU */

	bool populated() const noexcept { return managed != 0; }
	bool spans(pfn_t pfn) const noexcept { return pfn >= start && pfn < end; }
	std::uint64_t pcp_pages() const noexcept
	{
		std::uint64_t n = 0;
		for (const auto &p : pcp)
			n += std::uint64_t(p.count);
		return n;
	}
};

/* int_sqrt() */
inline std::uint64_t int_sqrt(std::uint64_t x) noexcept
{
	auto r = std::uint64_t(std::sqrt(double(x)));
	while (r * r > x)
		r--;
	while ((r + 1) * (r + 1) <= x)
		r++;
	return r;
}

/* rounddown_pow_of_two() */
inline std::uint64_t rounddown_pow_of_two(std::uint64_t x) noexcept { return x ? std::bit_floor(x) : 0; }

/*
 * zone_batchsize(): about 0.1% of the zone or 1 MiB, whichever is smaller,
 * divided by 4, clamped to 2^n - 1; zone_set_pageset_high_and_batch() then
 * uses max(1, batch).
 */
inline int zone_batchsize(std::uint64_t managed) noexcept
{
	std::uint64_t batch = std::min<std::uint64_t>(managed >> 10, (std::uint64_t{1} << 20) / page_size);
	batch /= 4;
	if (batch < 1)
		batch = 1;
	batch = rounddown_pow_of_two(batch + batch / 2) - 1;
	return int(std::max<std::uint64_t>(batch, 1));
}

/*
 * zone_highsize() with percpu_pagelist_high_fraction 0: the zone's low
 * watermark split across the node's CPUs (cpu_online 0, as
 * zone_pcp_update() passes), at least batch * 4. This is pcp->high_min;
 * the model keeps pcp->high there (no auto-tuning towards high_max).
 */
inline int zone_highsize(std::uint64_t low_wmark, int batch, unsigned nr_cpus) noexcept
{
	const std::uint64_t high = low_wmark / std::max(1u, nr_cpus);
	return int(std::max<std::uint64_t>(high, std::uint64_t(batch) << 2));
}

/* mm/page_alloc.c sysctl_lowmem_reserve_ratio[] defaults: DMA 256, DMA32 256, Normal 32, Movable 0. */
inline constexpr std::array<std::uint64_t, nr_zones> lowmem_reserve_ratio = {256, 256, 32, 0};
/* mm/page_alloc.c watermark_scale_factor default (10: 0.1% of the zone). */
inline constexpr std::uint64_t watermark_scale_factor = 10;
/* include/linux/swap.h SWAP_CLUSTER_MAX */
inline constexpr std::uint64_t swap_cluster_max = 32;

/*
 * calculate_min_free_kbytes(): int_sqrt(lowmem_kbytes * 16) clamped to
 * [128, 262144], where lowmem is nr_free_buffer_pages() at boot (the managed
 * pages of DMA..Normal, no watermark yet). With THP, khugepaged's
 * set_recommended_min_free_kbytes() raises it to 11 pageblocks per populated
 * zone up to Normal (2 free, plus MIGRATE_PCPTYPES^2 "almost free of another
 * type"), at most 5% of lowmem.
 */
inline std::uint64_t calculate_min_free_kbytes(const std::array<zone, nr_zones> &zones, bool thp) noexcept
{
	std::uint64_t lowmem = 0, nr = 0;
	for (unsigned z = 0; z <= unsigned(zone_type::normal); z++) {
		lowmem += zones[z].managed;
		nr += zones[z].populated();
	}
	std::uint64_t kb = int_sqrt(lowmem * (page_size >> 10) * 16);
	kb = std::clamp<std::uint64_t>(kb, 128, 262144);
	if (thp) {
		std::uint64_t rec = pageblock_nr_pages * nr * 2 + pageblock_nr_pages * nr * migrate_pcptypes * migrate_pcptypes;
		rec = std::min(rec, lowmem / 20) << (page_shift - 10);
		kb = std::max(kb, rec);
	}
	return kb;
}

/*
 * __setup_per_zone_wmarks(): min_free_kbytes shared out by managed pages
 * over the non-movable zones; ZONE_MOVABLE gets a small min (managed/1024
 * clamped to [SWAP_CLUSTER_MAX, 128]); low and high each add
 * max(min/4, managed * watermark_scale_factor / 10000).
 */
inline void setup_per_zone_wmarks(std::array<zone, nr_zones> &zones, std::uint64_t min_free_kbytes) noexcept
{
	const std::uint64_t pages_min = min_free_kbytes >> (page_shift - 10);
	std::uint64_t lowmem = 0;
	for (const zone &z : zones)
		if (z.type != zone_type::movable)
			lowmem += z.managed;
	for (zone &z : zones) {
		std::uint64_t tmp = lowmem ? pages_min * z.managed / lowmem : 0;
		if (z.type == zone_type::movable)
			z.watermark[wmark_min] = std::clamp<std::uint64_t>(z.managed / 1024, swap_cluster_max, 128);
		else
			z.watermark[wmark_min] = tmp;
		tmp = std::max(tmp >> 2, z.managed * watermark_scale_factor / 10000);
		z.watermark[wmark_low] = z.watermark[wmark_min] + tmp;
		z.watermark[wmark_high] = z.watermark[wmark_low] + tmp;
	}
}

/* setup_per_zone_lowmem_reserve(): zone i keeps (managed pages of zones above, up to j) / ratio[i] from requests of zone j. */
inline void setup_per_zone_lowmem_reserve(std::array<zone, nr_zones> &zones) noexcept
{
	for (unsigned i = 0; i < nr_zones; i++) {
		const std::uint64_t ratio = lowmem_reserve_ratio[i];
		const bool clear = !ratio || !zones[i].managed;
		std::uint64_t managed = 0;
		zones[i].lowmem_reserve[i] = 0;
		for (unsigned j = i + 1; j < nr_zones; j++) {
			managed += zones[j].managed;
			zones[i].lowmem_reserve[j] = clear ? 0 : managed / ratio;
		}
	}
}

}  // namespace detail::pa

}  // namespace ua
