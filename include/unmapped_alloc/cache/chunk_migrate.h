// SPDX-License-Identifier: MIT
/*
 * cache/chunk_migrate.h - a chunk when the buddy lists hold no free 2 MiB
 * block: a 2 MiB range whose frames are free or page cache, taken with
 * alloc_contig_range(), which migrates the page cache out
 * (phys/page_alloc_range.h).
 *
 * This is what the kernel does for hugetlb's gigantic pages
 * (alloc_contig_pages(): scan the zone for a range pfn_range_valid_contig()
 * accepts, then alloc_contig_range()), at 2 MiB: the API exists today
 * (exported, used by CMA, virtio-mem and hugetlb), so this is a choice of
 * the library, not a proposal to the kernel. alloc_pages() of order 9 for a
 * GFP_KERNEL caller gets much less from the kernel's own compaction: the
 * async direct compaction it runs (a costly order without
 * __GFP_RETRY_MAYFAIL never escalates) scans only pageblocks of the
 * request's migratetype (suitable_migration_source(), mm/compaction.c), so
 * the page cache of movable pageblocks stays where it is; the simulated
 * page allocator models no compaction for that reason (page_alloc.h).
 *
 * The search: the zones gfp_normal_only may use, Normal then DMA32 (where
 * alloc_contig_range() keeps DMA32's watermarks), 1 GiB region by region
 * from the one the last chunk came from; with split_first
 * (cache_config::split_regions_first, on backends that report the direct
 * map's page sizes) regions whose direct map is already split come first
 * and a region still mapped by one 1 GiB page only when no split one has a
 * migratable range, as the chunk source's step 1 orders free ranges. A
 * region found without one is remembered and skipped until free memory
 * grows by a pageblock from its lowest since (a pinned frame may have been
 * freed), the role defer_compaction() plays for compaction: a failing search
 * is not repeated for every request.
 *
 * Not thread-safe: the chunk source calls it under machine::lock.
 */
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "../error.h"
#include "../phys.h"

namespace ua {

class chunk_migrate {
public:
	/*
	 * A chunk (order 9) at a range alloc_contig_range() migrated free, or
	 * no_memory (nothing changed but where migrated page-cache pages sit).
	 * hint: a frame of the region to start from (no_hint: region 0).
	 */
	template <class Backend>
	result<pfn_t> take(page_allocator &pa, const Backend &b, pfn_t hint, bool split_first) noexcept
	{
		const std::uint64_t nr_regions = (pa.end_pfn() + pages_per_region - 1) / pages_per_region;
		UA_TRY {
			if (none_.size() != nr_regions)
				none_.assign(nr_regions, 0);
		} UA_CATCH_ALL {
			return result<pfn_t>::failure(error::no_memory);
		}
		const std::uint64_t free_now = pa.nr_free_pages();
		if (free_now >= low_free_ + pageblock_nr_pages) {
			std::fill(none_.begin(), none_.end(), std::uint8_t{0});
			low_free_ = free_now;
		} else if (free_now < low_free_) {
			low_free_ = free_now;
		}
		/* The zonelist of gfp_normal_only, as alloc_contig_pages() walks it: Normal, then DMA32. */
		for (zone_type zt : {zone_type::normal, zone_type::dma32}) {
			auto got = take_in_zone(pa, b, pa.zone(zt), hint, split_first);
			if (got.ok()) {
				migrated_++;
				return got;
			}
		}
		return result<pfn_t>::failure(error::no_memory);
	}

	/* Chunks this search produced. */
	std::uint64_t migrated() const noexcept { return migrated_; }

private:
	std::vector<std::uint8_t> none_; /* per 1 GiB region: searched, nothing migratable */
	std::uint64_t low_free_ = 0;     /* the lowest free-page count since none_ was cleared */
	std::uint64_t migrated_ = 0;

	template <class Backend>
	result<pfn_t> take_in_zone(page_allocator &pa, const Backend &b, const zone_info &z, pfn_t hint,
				   bool split_first) noexcept
	{
		const pfn_t lo = (z.span.pfn + pageblock_nr_pages - 1) & ~(pageblock_nr_pages - 1);
		const pfn_t hi = z.span.end() & ~(pageblock_nr_pages - 1);
		if (z.span.nr_pages == 0 || lo >= hi)
			return result<pfn_t>::failure(error::no_memory);
		const std::uint64_t r_lo = lo / pages_per_region, r_hi = (hi - 1) / pages_per_region + 1;
		const std::uint64_t nr = r_hi - r_lo;
		const std::uint64_t first = hint != no_hint && hint >= lo && hint < hi ? hint / pages_per_region - r_lo : 0;
		for (int pass = split_first ? 0 : 1; pass < 2; pass++) {
			for (std::uint64_t k = 0; k < nr; k++) {
				const std::uint64_t r = r_lo + (first + k) % nr;
				if (none_[r])
					continue;
				const pfn_t a = std::max<pfn_t>(lo, r * pages_per_region);
				const pfn_t e = std::min<pfn_t>(hi, (r + 1) * pages_per_region);
				if (pass == 0 && intact(b, a))
					continue; /* the second pass, if no split region has one */
				bool any = false;
				for (pfn_t p = a; p < e; p += pageblock_nr_pages) {
					if (!pa.range_migratable(p, chunk_order))
						continue;
					any = true;
					auto got = pa.alloc_contig_range(p, chunk_order, gfp_normal_only);
					if (got.ok())
						return got;
				}
				/* A region searched in vain; one whose ranges failed only for want of targets stays open. */
				if (!any)
					none_[r] = 1;
			}
		}
		return result<pfn_t>::failure(error::no_memory);
	}

	template <class Backend>
	static bool intact(const Backend &b, pfn_t p) noexcept
	{
		if constexpr (reports_direct_map_pages<Backend>)
			return b.direct_map_page_size(p) == pud_size;
		else
			return false;
	}
};

}  // namespace ua
