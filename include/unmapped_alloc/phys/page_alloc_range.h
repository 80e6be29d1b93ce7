// SPDX-License-Identifier: MIT
/*
 * phys/page_alloc_range.h - one block at an address the caller chose, as
 * kernel code gets it with alloc_contig_range() (mm/page_alloc.c; exported,
 * what CMA, virtio-mem and hugetlb's gigantic pages use): the caller names
 * the range, the kernel isolates its pageblocks, drains the per-CPU lists,
 * migrates movable pages out, and takes the range's free blocks off the
 * buddy lists. As in page_alloc_contig.h, migration is not modelled: a range
 * qualifies only when all of it is on the buddy lists (so this model fails
 * where the kernel could succeed, never the other way round). The caller
 * must have drained the per-CPU lists (drain_all_pages(), as the kernel's
 * isolation does) to find frames that sit there.
 *
 * A range in a zone below the one gfp prefers must leave that zone above
 * its high watermark and lowmem_reserve (see alloc_contig_range()).
 *
 * region_free_blocks() is the simulation's own index, not a kernel counter:
 * the free buddy blocks of pageblock order (2 MiB) or more per 1 GiB region.
 * Free buddies of equal order are always merged, so a wholly free aligned
 * 2 MiB range on the buddy lists lies in such a block: a region whose count
 * is 0 holds none, and a caller scanning for one skips it without testing
 * its 512 ranges (the same ranges a full scan would find; faster only).
 * Blocks on the per-CPU lists are not counted, as range_free() does not see
 * them either.
 *
 * Included at the end of page_alloc.h.
 */
#pragma once

#include "page_alloc.h"

namespace ua {

inline bool page_allocator::range_free(pfn_t pfn, unsigned order) const noexcept
{
	using namespace detail::pa;
	const pfn_t nr = pfn_t{1} << order;
	if (order > page_max_order || pfn >= end_pfn_ || pfn + nr > end_pfn_ || (pfn & (nr - 1)))
		return false;
	/* A free block that holds pfn starts at pfn rounded down to its order: find its head. */
	pfn_t p = pfn;
	if (state_kind(state_[p]) == fk_free_tail) {
		pfn_t head = p;
		for (unsigned o = order + 1; o <= page_max_order; o++) {
			head = pfn & ~((pfn_t{1} << o) - 1);
			if (state_kind(state_[head]) == fk_buddy && state_order(state_[head]) >= o)
				return zone_idx(head) == zone_idx(pfn + nr - 1);
		}
		return false;
	}
	while (p < pfn + nr && state_kind(state_[p]) == fk_buddy)
		p += pfn_t{1} << state_order(state_[p]);
	return p >= pfn + nr && zone_idx(pfn) == zone_idx(pfn + nr - 1);
}

inline result<pfn_t> page_allocator::alloc_contig_range(pfn_t pfn, unsigned order, gfp_t gfp) noexcept
{
	using namespace detail::pa;
	if (order > page_max_order)
		return result<pfn_t>::failure(error::too_large);
	if ((gfp & ~gfp_all_bits) || ((gfp & gfp_dma) && (gfp & gfp_dma32)))
		return result<pfn_t>::failure(error::bad_flags);
	const pfn_t nr = pfn_t{1} << order;
	if (pfn >= end_pfn_ || pfn + nr > end_pfn_)
		return result<pfn_t>::failure(error::foreign_pointer);
	if (pfn & (nr - 1))
		return result<pfn_t>::failure(error::bad_alignment);
	/* The zones the gfp allows (gfp_zone()): never ZONE_MOVABLE without __GFP_MOVABLE, never ZONE_DMA unless asked. */
	const zone_type zt = zone_of(pfn);
	const bool movable_ok = (gfp & gfp_highmem) && (gfp & gfp_movable);
	if ((zt == zone_type::movable && !movable_ok) || (zt == zone_type::dma && !(gfp & gfp_dma)))
		return result<pfn_t>::failure(error::no_memory);
	if (!range_free(pfn, order))
		return result<pfn_t>::failure(error::no_memory);
	/*
	 * A range below the zone gfp prefers (DMA32 for a GFP_KERNEL request)
	 * is taken only while that zone stays above its high watermark plus the
	 * lowmem_reserve a request from the preferred zone must leave it: the
	 * check get_page_from_freelist() makes before falling back to a lower
	 * zone, at the high mark, so that low memory kept for its own users is
	 * never what a caller's choice of address eats.
	 */
	const unsigned preferred = (gfp & gfp_dma) ? unsigned(zone_type::dma)
				   : (gfp & gfp_dma32) ? unsigned(zone_type::dma32)
				   : movable_ok ? unsigned(zone_type::movable)
						: unsigned(zone_type::normal);
	if (unsigned(zt) < preferred &&
	    !zone_watermark_fast(zones_[unsigned(zt)], order, zones_[unsigned(zt)].watermark[wmark_high], preferred))
		return result<pfn_t>::failure(error::no_memory);
	if (fault_hook_ && fault_hook_(fault_ctx_, order))
		return result<pfn_t>::failure(error::no_memory);
	zone_t &z = zone_of_pfn(pfn);
	/* isolate_freepages_range(): the free blocks covering the range come off the lists; a larger one is split. */
	pfn_t head = pfn;
	unsigned ho = state_order(state_[pfn]);
	if (state_kind(state_[pfn]) != fk_buddy) {
		for (unsigned o = order + 1; o <= page_max_order; o++) {
			head = pfn & ~((pfn_t{1} << o) - 1);
			if (state_kind(state_[head]) == fk_buddy && state_order(state_[head]) >= o) {
				ho = state_order(state_[head]);
				break;
			}
		}
	}
	if (head != pfn || ho > order) {
		/* One block holds the range: take it and give back the parts outside (split_free_page()). */
		const unsigned mt = pb_mt_[head >> pageblock_order];
		del_page_from_free_list(z, head, ho, mt);
		for (unsigned o = ho; o > order; o--) {
			const pfn_t half = pfn_t{1} << (o - 1);
			const pfn_t lo = head, hi = head + half;
			const bool in_lo = pfn < hi;
			const pfn_t other = in_lo ? hi : lo;
			add_to_free_list(z, other, o - 1, pb_mt_[other >> pageblock_order], false);
			head = in_lo ? lo : hi;
		}
	} else {
		for (pfn_t p = pfn; p < pfn + nr;) {
			const unsigned o = state_order(state_[p]);
			del_page_from_free_list(z, p, o, pb_mt_[p >> pageblock_order]);
			p += pfn_t{1} << o;
		}
	}
	prep_new_page(pfn, order, migrate_unmovable);
	return result<pfn_t>{pfn, error::ok};
}

inline std::uint64_t page_allocator::region_free_blocks(std::uint64_t region) const noexcept
{
	return region < region_free_.size() ? region_free_[region] : 0;
}

}  // namespace ua
