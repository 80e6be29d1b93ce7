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

/* A free block that holds pfn starts at pfn rounded down to its order: the smallest such head. */
inline pfn_t page_allocator::free_block_of(pfn_t pfn) const noexcept
{
	using namespace detail::pa;
	for (unsigned o = 0; o <= page_max_order; o++) {
		const pfn_t head = pfn & ~((pfn_t{1} << o) - 1);
		if (state_kind(state_[head]) == fk_buddy && state_order(state_[head]) >= o)
			return head;
		if (state_kind(state_[head]) != fk_free_tail)
			break; /* a frame that is neither a buddy head nor a free tail: pfn is not in a free block */
	}
	return no_page;
}

inline bool page_allocator::range_free(pfn_t pfn, unsigned order) const noexcept
{
	using namespace detail::pa;
	const pfn_t nr = pfn_t{1} << order;
	if (order > max_contig_order || pfn >= end_pfn_ || pfn + nr > end_pfn_ || (pfn & (nr - 1)) ||
	    zone_idx(pfn) != zone_idx(pfn + nr - 1))
		return false;
	/* Block after block from pfn, each free: inside the range, or one block holding all of it. */
	for (pfn_t p = pfn; p < pfn + nr;) {
		const pfn_t head = free_block_of(p);
		if (head == no_page)
			return false;
		p = head + (pfn_t{1} << state_order(state_[head]));
	}
	return true;
}

/*
 * isolate_freepages_range() of a wholly free aligned range: its free blocks
 * come off the lists; one larger block holding all of it is taken and its
 * halves outside the range go back (split_free_page()).
 */
inline void page_allocator::take_free_range(zone_t &z, pfn_t pfn, pfn_t nr) noexcept
{
	using namespace detail::pa;
	for (pfn_t p = pfn; p < pfn + nr;) {
		pfn_t head = free_block_of(p);
		unsigned o = state_order(state_[head]);
		del_page_from_free_list(z, head, o, pb_mt_[head >> pageblock_order]);
		for (; (pfn_t{1} << o) > nr; o--) {
			const pfn_t half = pfn_t{1} << (o - 1);
			const bool lower = pfn < head + half;
			const pfn_t other = lower ? head + half : head;
			add_to_free_list(z, other, o - 1, pb_mt_[other >> pageblock_order], false);
			head = lower ? head : head + half;
		}
		p = head + (pfn_t{1} << o);
	}
}

inline result<pfn_t> page_allocator::alloc_contig_range(pfn_t pfn, unsigned order, gfp_t gfp) noexcept
{
	using namespace detail::pa;
	if (order > page_max_order)
		return result<pfn_t>::failure(error::too_large);
	if (!gfp_valid(gfp))
		return result<pfn_t>::failure(error::bad_flags);
	const pfn_t nr = pfn_t{1} << order;
	if (pfn >= end_pfn_ || pfn + nr > end_pfn_)
		return result<pfn_t>::failure(error::foreign_pointer);
	if (pfn & (nr - 1))
		return result<pfn_t>::failure(error::bad_alignment);
	/*
	 * The zones gfp allows (gfp_zone() and below, never ZONE_DMA unless
	 * asked); a zone below the one gfp prefers (DMA32 for a GFP_KERNEL
	 * request) only while it stays above its high watermark plus the
	 * lowmem_reserve a request from the preferred zone must leave it: the
	 * check get_page_from_freelist() makes before falling back to a lower
	 * zone, at the high mark, so that low memory kept for its own users is
	 * never what a caller's choice of address eats.
	 */
	const unsigned preferred = unsigned(gfp_zone(gfp)), zi = zone_idx(pfn);
	if (zi > preferred || (zi == unsigned(zone_type::dma) && !(gfp & gfp_dma)))
		return result<pfn_t>::failure(error::no_memory);
	if (!range_free(pfn, order))
		return result<pfn_t>::failure(error::no_memory);
	zone_t &z = zones_[zi];
	if (zi < preferred && !zone_watermark_fast(z, order, z.watermark[wmark_high], preferred))
		return result<pfn_t>::failure(error::no_memory);
	if (fault_hook_ && fault_hook_(fault_ctx_, order))
		return result<pfn_t>::failure(error::no_memory);
	take_free_range(z, pfn, nr);
	prep_new_page(pfn, order, migrate_unmovable);
	return result<pfn_t>{pfn, error::ok};
}

inline std::uint64_t page_allocator::region_free_blocks(std::uint64_t region) const noexcept
{
	return region < region_free_.size() ? region_free_[region] : 0;
}

}  // namespace ua
