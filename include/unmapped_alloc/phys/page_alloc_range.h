// SPDX-License-Identifier: MIT
/*
 * phys/page_alloc_range.h - one block at an address the caller chose, as
 * kernel code gets it with alloc_contig_range() (mm/page_alloc.c; exported,
 * what CMA, virtio-mem and hugetlb's gigantic pages use): the caller names
 * the range, the kernel isolates its pageblocks, drains the per-CPU lists,
 * migrates movable pages out, and takes the range's free blocks off the
 * buddy lists. Modelled: a range qualifies when every frame in it is free
 * or holds a page-cache page (range_migratable(); the only pages the
 * simulation can move: slab, page tables and the pages processes and
 * allocators hold pin their frames, where the kernel could also migrate
 * anonymous and other movable pages, so this model fails where the kernel
 * could succeed, never the other way round). Then, as
 * alloc_contig_range_noprof(): drain_all_pages(); the range's free blocks
 * come off the buddy lists (start_isolate_page_range(): nothing else can
 * take them); each page-cache page is migrated (__alloc_contig_migrate_range():
 * a new order-0 GFP_HIGHUSER_MOVABLE page from the normal allocation path,
 * alloc_migration_target(), at the min watermark and without reclaim here,
 * the contents copied, the new page added to the LRU's young end as
 * folio_putback_lru() does, the old frame held by the isolation); then the
 * range is one allocated block. When a migration target cannot be had the
 * operation fails with no_memory: the isolated free blocks go back; pages
 * already migrated stay where they moved, as in the kernel, so the free
 * memory is as before and only page-cache placement changed. A wholly free
 * range needs none of this: the caller must have drained the per-CPU lists
 * (as the kernel's isolation does) to find frames that sit there.
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

#include <bit>

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

inline bool page_allocator::range_in_one_zone(pfn_t pfn, unsigned order) const noexcept
{
	const pfn_t nr = pfn_t{1} << order;
	return pfn < end_pfn_ && pfn + nr <= end_pfn_ && !(pfn & (nr - 1)) && zone_idx(pfn) == zone_idx(pfn + nr - 1);
}

inline bool page_allocator::range_free(pfn_t pfn, unsigned order) const noexcept
{
	using namespace detail::pa;
	const pfn_t nr = pfn_t{1} << order;
	if (order > max_contig_order || !range_in_one_zone(pfn, order))
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

inline bool page_allocator::range_migratable(pfn_t pfn, unsigned order) const noexcept
{
	using namespace detail::pa;
	const pfn_t nr = pfn_t{1} << order;
	if (order > page_max_order || !range_in_one_zone(pfn, order))
		return false;
	for (pfn_t p = pfn; p < pfn + nr; p++) {
		const frame_kind k = state_kind(state_[p]);
		if (k == fk_hole || ((k == fk_alloc || k == fk_alloc_tail) && !in_page_cache(p)))
			return false;
	}
	return true;
}

/*
 * migrate_pages() of one page-cache page whose frame the caller isolated:
 * a target from the normal path (min watermark, no reclaim), the page's
 * LRU entry moved to the target (the source's entry is skipped from now
 * on), the source frame left allocated for the caller. False, changing
 * nothing, when no target passes the watermark.
 */
inline bool page_allocator::migrate_page_cache(pfn_t src) noexcept
{
	using namespace detail::pa;
	const unsigned highest = mobility_disabled_ ? unsigned(zone_type::normal) : unsigned(gfp_zone(gfp_highuser_movable));
	const unsigned mt = mobility_disabled_ ? migrate_unmovable : migrate_movable;
	const pfn_t dst = get_page_from_freelist(0, mt, alloc_wmark_min, highest, no_hint);
	if (dst == no_page)
		return false;
	set_page_cache(src, false);
	UA_TRY {
		lru_add(dst);
	} UA_CATCH_ALL {
		/* The LRU could not grow: the page stays where it is. */
		set_page_cache(src, true);
		state_[dst] = make_state(fk_alloc, 0, mt == migrate_movable);
		UA_CHECK(free_pages(dst, 0) == error::ok, "migrate_page_cache: returning the target");
		return false;
	}
	return true;
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
	const bool whole = range_free(pfn, order);
	if (!whole && !range_migratable(pfn, order))
		return result<pfn_t>::failure(error::no_memory);
	zone_t &z = zones_[zi];
	if (zi < preferred && !zone_watermark_fast(z, order, z.watermark[wmark_high], preferred))
		return result<pfn_t>::failure(error::no_memory);
	if (fault_hook_ && fault_hook_(fault_ctx_, order))
		return result<pfn_t>::failure(error::no_memory);
	if (whole)
		take_free_range(z, pfn, nr);
	else if (!migrate_range(z, pfn, nr))
		return result<pfn_t>::failure(error::no_memory);
	prep_new_page(pfn, order, migrate_unmovable);
	return result<pfn_t>{pfn, error::ok};
}

/*
 * The isolation and migration of alloc_contig_range() for a range that
 * range_migratable() accepted: true with every frame of it held (allocated,
 * on no list), or false with the range as it was but for migrated pages.
 */
inline bool page_allocator::migrate_range(zone_t &z, pfn_t pfn, pfn_t nr) noexcept
{
	using namespace detail::pa;
	UA_TRY {
		drain_all_pages(); /* start_isolate_page_range() -> drain_all_pages(zone) */
	} UA_CATCH_ALL {
		return false;
	}
	/* The drain may have made the range wholly free (frames of it sat on the pcp lists): take it as such. */
	if (range_free(pfn, unsigned(std::countr_zero(nr)))) {
		take_free_range(z, pfn, nr);
		return true;
	}
	const std::uint8_t held = make_state(fk_alloc, 0);
	/* Isolate: the free blocks inside the range come off the lists (none holds it all: not range_free()). */
	for (pfn_t p = pfn; p < pfn + nr;) {
		const std::uint8_t s = state_[p];
		if (state_kind(s) == fk_buddy) {
			const unsigned o = state_order(s);
			del_page_from_free_list(z, p, o, pb_mt_[p >> pageblock_order]);
			for (pfn_t i = 0; i < (pfn_t{1} << o); i++)
				state_[p + i] = held;
			p += pfn_t{1} << o;
		} else {
			p++;
		}
	}
	/* Migrate every page-cache page; its frame stays held. */
	for (pfn_t p = pfn; p < pfn + nr; p++) {
		if (!in_page_cache(p))
			continue;
		if (!migrate_page_cache(p)) {
			/* undo_isolate_page_range(): frames that were free go back; migrated ones too (free now). */
			for (pfn_t q = pfn; q < pfn + nr; q++)
				if (state_[q] == held && !in_page_cache(q))
					UA_CHECK(free_pages(q, 0) == error::ok, "alloc_contig_range: undoing the isolation");
			UA_TRY {
				drain_all_pages();
			} UA_CATCH_ALL {
			}
			return false;
		}
		state_[p] = held;
	}
	return true;
}

inline std::uint64_t page_allocator::region_free_blocks(std::uint64_t region) const noexcept
{
	return region < region_free_.size() ? region_free_[region] : 0;
}

}  // namespace ua
