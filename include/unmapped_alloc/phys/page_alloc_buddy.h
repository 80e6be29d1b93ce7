// SPDX-License-Identifier: MIT
/*
 * phys/page_alloc_buddy.h - the buddy free lists of mm/page_alloc.c:
 * __free_one_page() and its merging, expand(), __rmqueue_smallest() and the
 * migratetype fallbacks (__rmqueue_claim(), try_to_claim_block(),
 * __rmqueue_steal()). Included at the end of page_alloc.h.
 *
 * Invariant kept as 6.18 keeps it: a free block sits on the free list of its
 * pageblock's migratetype (the "freelist type hygiene" of 6.10+).
 */
#pragma once

#include "page_alloc.h"

namespace ua {

namespace detail::pa {
inline constexpr pfn_t no_page = ~pfn_t{0};
/* fallbacks[]: where each type falls back to, in order. */
inline constexpr unsigned fallbacks[migrate_pcptypes][migrate_pcptypes - 1] = {
	{migrate_reclaimable, migrate_movable},   /* MIGRATE_UNMOVABLE */
	{migrate_reclaimable, migrate_unmovable}, /* MIGRATE_MOVABLE */
	{migrate_unmovable, migrate_movable},     /* MIGRATE_RECLAIMABLE */
};
}  // namespace detail::pa

/* __add_to_free_list() + account_freepages() + set_buddy_order() */
inline void page_allocator::add_to_free_list(zone_t &z, pfn_t pfn, unsigned order, unsigned mt, bool tail) noexcept
{
	state_[pfn] = detail::pa::make_state(detail::pa::fk_buddy, order);
	auto &l = z.free_list[order][mt];
	if (tail)
		list_add_tail(l, std::uint32_t(pfn));
	else
		list_add(l, std::uint32_t(pfn));
	z.nr_free[order]++;
	z.nr_free_mt[order][mt]++;
	z.free_pages += std::uint64_t{1} << order;
	if (order >= pageblock_order)
		region_free_[pfn / pages_per_region]++;
}

/* del_page_from_free_list(): the frame stops being PageBuddy. */
inline void page_allocator::del_page_from_free_list(zone_t &z, pfn_t pfn, unsigned order, unsigned mt) noexcept
{
	list_del(z.free_list[order][mt], std::uint32_t(pfn));
	state_[pfn] = detail::pa::make_state(detail::pa::fk_free_tail, 0);
	z.nr_free[order]--;
	z.nr_free_mt[order][mt]--;
	z.free_pages -= std::uint64_t{1} << order;
	if (order >= pageblock_order)
		region_free_[pfn / pages_per_region]--;
}

/* move_to_free_list(): list_move_tail() onto the new type's list. */
inline void page_allocator::move_to_free_list(zone_t &z, pfn_t pfn, unsigned order, unsigned old_mt,
					      unsigned new_mt) noexcept
{
	list_del(z.free_list[order][old_mt], std::uint32_t(pfn));
	list_add_tail(z.free_list[order][new_mt], std::uint32_t(pfn));
	z.nr_free_mt[order][old_mt]--;
	z.nr_free_mt[order][new_mt]++;
}

/* page_is_buddy(): PageBuddy, of that order, in the same zone. */
inline bool page_allocator::page_is_buddy(const zone_t &z, pfn_t buddy, unsigned order) const noexcept
{
	return buddy < end_pfn_ && state_[buddy] == detail::pa::make_state(detail::pa::fk_buddy, order) &&
	       zone_idx(buddy) == unsigned(z.type);
}

/* buddy_merge_likely(): the block's parent has a free buddy, so it will probably merge soon: free it to the tail. */
inline bool page_allocator::buddy_merge_likely(const zone_t &z, pfn_t pfn, pfn_t buddy_pfn, unsigned order) const noexcept
{
	if (order >= page_max_order - 1)
		return false;
	const pfn_t higher = buddy_pfn & pfn;
	return page_is_buddy(z, higher ^ (pfn_t{1} << (order + 1)), order + 1);
}

/*
 * __free_one_page(): merge with the buddy while it is free at the same
 * order (all three modelled types are mergeable; a buddy pageblock of
 * another type takes the freed block's type), then add to the head of the
 * free list, or to the tail for FPI_TO_TAIL or when buddy_merge_likely().
 * Every frame of the block is fk_free_tail on entry.
 */
inline void page_allocator::free_one_page(zone_t &z, pfn_t pfn, unsigned order, unsigned mt, bool to_tail) noexcept
{
	pfn_t buddy_pfn = 0;
	while (order < page_max_order) {
		buddy_pfn = pfn ^ (pfn_t{1} << order);
		if (!page_is_buddy(z, buddy_pfn, order))
			break;
		unsigned buddy_mt = mt;
		if (order >= pageblock_order)
			buddy_mt = pb_mt_[buddy_pfn >> pageblock_order];
		del_page_from_free_list(z, buddy_pfn, order, buddy_mt);
		if (buddy_mt != mt)
			change_pageblock_range(buddy_pfn, order, mt); /* "Match buddy type" */
		pfn &= buddy_pfn;
		order++;
	}
	if (!to_tail)
		to_tail = buddy_merge_likely(z, pfn, buddy_pfn, order);
	add_to_free_list(z, pfn, order, mt, to_tail);
}

/* split_large_buddy(): a block above pageblock order is freed one pageblock at a time, each with its own type. */
inline void page_allocator::split_large_buddy(zone_t &z, pfn_t pfn, unsigned order, bool to_tail) noexcept
{
	const pfn_t end = pfn + (pfn_t{1} << order);
	const unsigned o = order > pageblock_order ? pageblock_order : order;
	for (; pfn < end; pfn += pfn_t{1} << o)
		free_one_page(z, pfn, o, pb_mt_[pfn >> pageblock_order], to_tail);
}

/* expand(): keep the low part, give the upper halves back to the head of the free lists, largest first. */
inline void page_allocator::expand(zone_t &z, pfn_t pfn, unsigned low, unsigned high, unsigned mt) noexcept
{
	while (high > low) {
		high--;
		add_to_free_list(z, pfn + (pfn_t{1} << high), high, mt, false);
	}
}

/* change_pageblock_range(): every pageblock of the block takes the type. */
inline void page_allocator::change_pageblock_range(pfn_t pfn, unsigned order, unsigned mt) noexcept
{
	const std::uint64_t n = order > pageblock_order ? std::uint64_t{1} << (order - pageblock_order) : 1;
	for (std::uint64_t i = 0; i < n; i++)
		pb_mt_[(pfn >> pageblock_order) + i] = std::uint8_t(mt);
}

/* __rmqueue_smallest(): the first block of the smallest order with one, of this type. */
inline pfn_t page_allocator::rmqueue_smallest(zone_t &z, unsigned order, unsigned mt) noexcept
{
	for (unsigned o = order; o < nr_page_orders; o++) {
		const auto &l = z.free_list[o][mt];
		if (l.empty())
			continue;
		const pfn_t pfn = l.first;
		del_page_from_free_list(z, pfn, o, mt);
		expand(z, pfn, order, o, mt);
		return pfn;
	}
	return detail::pa::no_page;
}

/*
 * find_suitable_fallback(): -2 when claiming is not worth trying at this
 * order (should_try_claim_block()), else the first fallback type with a
 * free block of this order, else -1.
 */
inline int page_allocator::find_suitable_fallback(const zone_t &z, unsigned order, unsigned mt, bool claimable) const noexcept
{
	if (claimable) {
		/* should_try_claim_block() */
		const bool claim = order >= pageblock_order || order >= pageblock_order / 2 ||
				   mt == migrate_reclaimable || mt == migrate_unmovable || mobility_disabled_;
		if (!claim)
			return -2;
	}
	if (!z.nr_free[order])
		return -1;
	for (unsigned fmt : detail::pa::fallbacks[mt])
		if (!z.free_list[order][fmt].empty())
			return int(fmt);
	return -1;
}

/*
 * try_to_claim_block(): a block of pageblock order or more changes type
 * whole; a smaller one takes its pageblock only if at least half of it is
 * free or "alike" (prep_move_freepages_block() counts free and movable
 * pages; for a non-movable request from a movable block, every allocated
 * page that is not movable is alike), moving its free pages to the new
 * type's lists (__move_freepages_block()) and retrying
 * __rmqueue_smallest(). Watermark boosting is not modelled.
 */
inline pfn_t page_allocator::try_to_claim_block(zone_t &z, pfn_t pfn, unsigned current_order, unsigned order,
						unsigned start_type, unsigned block_type) noexcept
{
	using namespace detail::pa;
	if (current_order >= pageblock_order) {
		del_page_from_free_list(z, pfn, current_order, block_type);
		change_pageblock_range(pfn, current_order, start_type);
		expand(z, pfn, order, current_order, start_type);
		return pfn;
	}
	const pfn_t start = pfn & ~(pageblock_nr_pages - 1), end = start + pageblock_nr_pages - 1;
	if (!z.spans(start) || !z.spans(end))
		return no_page;
	std::uint64_t free_pages = 0, movable_pages = 0;
	for (pfn_t p = start; p <= end;) {
		const std::uint8_t s = state_[p];
		if (state_kind(s) == fk_buddy) {
			free_pages += std::uint64_t{1} << state_order(s);
			p += pfn_t{1} << state_order(s);
			continue;
		}
		movable_pages += (s & fs_movable) != 0;
		p++;
	}
	std::uint64_t alike = 0;
	if (start_type == migrate_movable)
		alike = movable_pages;
	else if (block_type == migrate_movable)
		alike = pageblock_nr_pages - (free_pages + movable_pages);
	if (free_pages + alike < (pageblock_nr_pages >> 1) && !mobility_disabled_)
		return no_page;
	/* __move_freepages_block() */
	for (pfn_t p = start; p <= end;) {
		const std::uint8_t s = state_[p];
		if (state_kind(s) != fk_buddy) {
			p++;
			continue;
		}
		move_to_free_list(z, p, state_order(s), block_type, start_type);
		p += pfn_t{1} << state_order(s);
	}
	pb_mt_[start >> pageblock_order] = std::uint8_t(start_type);
	return rmqueue_smallest(z, order, start_type);
}

/*
 * __rmqueue_claim(): the largest free block of a fallback type ("roughly
 * the pageblock with the most free pages"), claimed when
 * try_to_claim_block() agrees. ALLOC_NOFRAGMENT stops at pageblock order.
 */
inline pfn_t page_allocator::rmqueue_claim(zone_t &z, unsigned order, unsigned mt, unsigned alloc_flags) noexcept
{
	unsigned min_order = order;
	if (order < pageblock_order && (alloc_flags & alloc_nofragment))
		min_order = pageblock_order;
	for (int co = int(page_max_order); co >= int(min_order); co--) {
		const int fmt = find_suitable_fallback(z, unsigned(co), mt, true);
		if (fmt == -1)
			continue;
		if (fmt == -2)
			break;
		const pfn_t page = z.free_list[unsigned(co)][unsigned(fmt)].first;
		const pfn_t p = try_to_claim_block(z, page, unsigned(co), order, mt, unsigned(fmt));
		if (p != detail::pa::no_page)
			return p;
	}
	return detail::pa::no_page;
}

/* __rmqueue_steal(): the smallest block of a fallback type, its pageblock keeping its type. */
inline pfn_t page_allocator::rmqueue_steal(zone_t &z, unsigned order, unsigned mt) noexcept
{
	for (unsigned co = order; co < nr_page_orders; co++) {
		const int fmt = find_suitable_fallback(z, co, mt, false);
		if (fmt == -1)
			continue;
		const pfn_t page = z.free_list[co][unsigned(fmt)].first;
		del_page_from_free_list(z, page, co, unsigned(fmt));
		expand(z, page, order, co, unsigned(fmt));
		return page;
	}
	return detail::pa::no_page;
}

/* __rmqueue(): normal, then claim, then steal; `mode` remembers where rmqueue_bulk() found pages. */
inline pfn_t page_allocator::rmqueue_fallbacks(zone_t &z, unsigned order, unsigned mt, unsigned alloc_flags,
					       rmqueue_mode &mode) noexcept
{
	pfn_t p;
	switch (mode) {
	case rmqueue_mode_normal:
		p = rmqueue_smallest(z, order, mt);
		if (p != detail::pa::no_page)
			return p;
		[[fallthrough]];
	case rmqueue_mode_claim:
		p = rmqueue_claim(z, order, mt, alloc_flags);
		if (p != detail::pa::no_page) {
			mode = rmqueue_mode_normal; /* replenished the preferred freelist */
			return p;
		}
		[[fallthrough]];
	case rmqueue_mode_steal:
		if (!(alloc_flags & alloc_nofragment)) {
			p = rmqueue_steal(z, order, mt);
			if (p != detail::pa::no_page) {
				mode = rmqueue_mode_steal;
				return p;
			}
		}
	}
	return detail::pa::no_page;
}

}  // namespace ua
