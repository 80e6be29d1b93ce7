// SPDX-License-Identifier: MIT
/*
 * phys/page_alloc_contig.h - blocks above MAX_PAGE_ORDER, as the kernel gets
 * them: not from the buddy lists (__alloc_pages() refuses order > 10) but
 * with alloc_contig_pages(), which scans each zone of the zonelist from its
 * start for an aligned range it can take (pfn_range_valid_contig()), drains
 * the pcp lists (alloc_contig_range() isolates the range) and takes the
 * free blocks out of the buddy lists. The kernel also migrates movable
 * pages out of the range; that is not modelled, so a range qualifies only
 * when all of it is free. free_contig_range() frees the range page by page
 * (__free_page() of each frame), through the pcp lists.
 *
 * Included at the end of page_alloc.h.
 */
#pragma once

#include "page_alloc.h"

namespace ua {

inline result<pfn_t> page_allocator::alloc_contig_pages(unsigned order, gfp_t gfp)
{
	using namespace detail::pa;
	if (order <= page_max_order || order > max_contig_order)
		return result<pfn_t>::failure(order <= page_max_order ? error::bad_flags : error::too_large);
	if (!gfp_valid(gfp))
		return result<pfn_t>::failure(error::bad_flags);
	if (fault_hook_ && fault_hook_(fault_ctx_, order))
		return result<pfn_t>::failure(error::no_memory);
	const unsigned highest = unsigned(gfp_zone(gfp));
	const pfn_t nr = pfn_t{1} << order;
	drain_all_pages();
	for (int zi = int(highest); zi >= 0; zi--) {
		zone_t &z = zones_[unsigned(zi)];
		if (!z.populated())
			continue;
		for (pfn_t start = (z.start + nr - 1) & ~(nr - 1); start + nr <= z.end; start += nr) {
			/* pfn_range_valid_contig(), restricted to free frames: every block in the range is PageBuddy. */
			if (!range_free(start, order))
				continue;
			take_free_range(z, start, nr);
			prep_new_page(start, order, migrate_unmovable);
			return result<pfn_t>{start, error::ok};
		}
	}
	return result<pfn_t>::failure(error::no_memory);
}

inline error page_allocator::free_contig_range(pfn_t pfn, unsigned order)
{
	if (order <= page_max_order || order > max_contig_order)
		return order <= page_max_order ? error::bad_flags : error::too_large;
	if (error e = check_allocated_block(pfn, order); e != error::ok)
		return e; /* free_pages()'s checks */
	/* split_page(): each frame becomes an order-0 page, then __free_page() of each. */
	const std::uint8_t one = detail::pa::make_state(detail::pa::fk_alloc, 0);
	for (pfn_t i = 0; i < (pfn_t{1} << order); i++)
		state_[pfn + i] = one;
	for (pfn_t i = 0; i < (pfn_t{1} << order); i++)
		UA_CHECK(free_pages(pfn + i, 0) == error::ok, "free_contig_range: freeing a frame");
	return error::ok;
}

}  // namespace ua
