// SPDX-License-Identifier: MIT
/*
 * phys/page_alloc_path.h - the allocation and free paths of mm/page_alloc.c
 * (__alloc_pages(), get_page_from_freelist(), rmqueue(),
 * free_frozen_pages()) and the statistics. Included at the end of
 * page_alloc.h.
 */
#pragma once

#include "page_alloc.h"

namespace ua {

/* __zone_watermark_ok(): above mark + lowmem_reserve after the unusable (1 << order) - 1, and a free block of the order. */
inline bool page_allocator::zone_watermark_ok(const zone_t &z, unsigned order, std::uint64_t mark,
					      unsigned highest_zoneidx) const noexcept
{
	const std::int64_t free = std::int64_t(z.free_pages) - ((std::int64_t{1} << order) - 1);
	if (free <= std::int64_t(mark + z.lowmem_reserve[highest_zoneidx]))
		return false;
	if (!order)
		return true;
	for (unsigned o = order; o < nr_page_orders; o++) {
		if (!z.nr_free[o])
			continue;
		for (unsigned mt = 0; mt < migrate_pcptypes; mt++)
			if (!z.free_list[o][mt].empty())
				return true;
	}
	return false;
}

/* zone_watermark_fast(): the order-0 shortcut, then __zone_watermark_ok(). */
inline bool page_allocator::zone_watermark_fast(const zone_t &z, unsigned order, std::uint64_t mark,
						unsigned highest_zoneidx) const noexcept
{
	if (!order && z.free_pages > mark + z.lowmem_reserve[highest_zoneidx])
		return true;
	return zone_watermark_ok(z, order, mark, highest_zoneidx);
}

/* rmqueue(): pcp orders from this CPU's list, else (or when that fails) rmqueue_buddy(). */
inline pfn_t page_allocator::rmqueue(zone_t &z, unsigned order, unsigned mt, unsigned alloc_flags) noexcept
{
	if (detail::pa::pcp_allowed_order(order, cfg_.thp)) {
		const pfn_t p = rmqueue_pcplist(z, order, mt, alloc_flags);
		if (p != detail::pa::no_page)
			return p;
	}
	rmqueue_mode mode = rmqueue_mode_normal;
	return rmqueue_fallbacks(z, order, mt, alloc_flags, mode);
}

/*
 * Proposal (cfg.placement_hint): the free block nearest the hint's 1 GiB
 * region, smallest sufficient order on ties, taken off the buddy lists
 * directly. A block of pageblock order or more changes type as
 * try_to_claim_block() would change it; a smaller one keeps its type.
 */
inline pfn_t page_allocator::take_hinted(zone_t &z, unsigned order, unsigned mt, pfn_t hint) noexcept
{
	const std::uint64_t want = hint / pages_per_region;
	pfn_t best = detail::pa::no_page;
	unsigned best_order = 0, best_mt = 0;
	std::uint64_t best_dist = ~std::uint64_t{0};
	for (unsigned o = order; o < nr_page_orders && best_dist; o++)
		for (unsigned t = 0; t < migrate_pcptypes && best_dist; t++)
			for (std::uint32_t p = z.free_list[o][t].first; p != detail::pa::nil; p = next_[p]) {
				const std::uint64_t r = p / pages_per_region;
				const std::uint64_t d = r > want ? r - want : want - r;
				if (d < best_dist) {
					best = p, best_order = o, best_mt = t, best_dist = d;
					if (!d)
						break;
				}
			}
	if (best == detail::pa::no_page)
		return best;
	del_page_from_free_list(z, best, best_order, best_mt);
	unsigned type = best_mt;
	if (best_order >= pageblock_order && best_mt != mt) {
		change_pageblock_range(best, best_order, mt);
		type = mt;
	}
	expand(z, best, order, best_order, type);
	return best;
}

/* prep_new_page(): the block is allocated; movable ones count as PageLRU for the fallback rules. */
inline void page_allocator::prep_new_page(pfn_t pfn, unsigned order, unsigned mt) noexcept
{
	using namespace detail::pa;
	const bool movable = mt == migrate_movable;
	state_[pfn] = make_state(fk_alloc, order, movable);
	const std::uint8_t tail = make_state(fk_alloc_tail, 0, movable);
	for (pfn_t i = 1; i < (pfn_t{1} << order); i++)
		state_[pfn + i] = tail;
}

/*
 * get_page_from_freelist(): the zonelist from the highest allowed zone
 * down, each zone passing zone_watermark_fast() at the alloc_flags mark;
 * with ALLOC_NOFRAGMENT, a second pass without it when every zone failed
 * ("It's possible on a UMA machine to get through all zones that are
 * fragmented").
 */
inline pfn_t page_allocator::get_page_from_freelist(unsigned order, unsigned mt, unsigned alloc_flags,
						    unsigned highest_zoneidx, pfn_t hint) noexcept
{
	for (;;) {
		for (int zi = int(highest_zoneidx); zi >= 0; zi--) {
			zone_t &z = zones_[unsigned(zi)];
			if (!z.populated())
				continue;
			if (!zone_watermark_fast(z, order, z.watermark[alloc_flags & alloc_wmark_mask], highest_zoneidx))
				continue;
			const pfn_t p = (cfg_.placement_hint && hint != no_hint) ? take_hinted(z, order, mt, hint)
										 : rmqueue(z, order, mt, alloc_flags);
			if (p != detail::pa::no_page) {
				prep_new_page(p, order, mt);
				return p;
			}
		}
		if (!(alloc_flags & alloc_nofragment))
			return detail::pa::no_page;
		alloc_flags &= ~alloc_nofragment;
	}
}

/*
 * __alloc_pages(): gfp_zone() and gfp_migratetype(), the fast path at the
 * low watermark (alloc_flags_nofragment(): ALLOC_NOFRAGMENT when the
 * preferred zone is Normal), then the slow path: kswapd (synchronously),
 * the min watermark, the
 * page-cache reclaim of ageing (direct reclaim), drain_all_pages() and a
 * last try (__alloc_pages_direct_reclaim()).
 */
inline result<pfn_t> page_allocator::alloc_pages(unsigned order, gfp_t gfp, pfn_t hint)
{
	if (order > page_max_order)
		return result<pfn_t>::failure(error::too_large);
	if (!gfp_valid(gfp))
		return result<pfn_t>::failure(error::bad_flags);
	if (hint != no_hint && hint >= end_pfn_)
		return result<pfn_t>::failure(error::foreign_pointer);
	if (fault_hook_ && fault_hook_(fault_ctx_, order))
		return result<pfn_t>::failure(error::no_memory);

	const unsigned highest = unsigned(gfp_zone(gfp));
	/* gfp_migratetype() */
	unsigned mt = (gfp & gfp_movable) ? migrate_movable : (gfp & gfp_reclaimable) ? migrate_reclaimable
										: migrate_unmovable;
	if (mobility_disabled_)
		mt = migrate_unmovable;
	/* alloc_flags_nofragment(): the preferred zone is the first populated one of the zonelist. */
	unsigned alloc_flags = alloc_wmark_low;
	for (int zi = int(highest); zi >= 0; zi--)
		if (zones_[unsigned(zi)].populated()) {
			if (zones_[unsigned(zi)].type == zone_type::normal)
				alloc_flags |= alloc_nofragment;
			break;
		}

	pfn_t p = get_page_from_freelist(order, mt, alloc_flags, highest, hint);
	/* wake_all_kswapds(): kswapd runs at once here, evicting page cache to the high watermark. */
	if (p == detail::pa::no_page && page_cache_pages() && kswapd_balance())
		p = get_page_from_freelist(order, mt, alloc_flags, highest, hint);
	if (p == detail::pa::no_page)
		p = get_page_from_freelist(order, mt, alloc_wmark_min, highest, hint);
	if (p == detail::pa::no_page && reclaim_lru(std::uint64_t{1} << order))
		p = get_page_from_freelist(order, mt, alloc_wmark_min, highest, hint);
	if (p == detail::pa::no_page) {
		drain_all_pages();
		p = get_page_from_freelist(order, mt, alloc_wmark_min, highest, hint);
	}
	if (p == detail::pa::no_page)
		return result<pfn_t>::failure(error::no_memory);
	return result<pfn_t>{p, error::ok};
}

inline result<unsigned> page_allocator::allocated_order(pfn_t pfn) const
{
	using res = result<unsigned>;
	using namespace detail::pa;
	if (pfn >= end_pfn_)
		return res::failure(error::foreign_pointer);
	const std::uint8_t s = state_[pfn];
	switch (state_kind(s)) {
	case fk_hole: return res::failure(error::foreign_pointer);
	case fk_alloc: return res{state_order(s), error::ok};
	case fk_alloc_tail: return res::failure(error::interior_pointer);
	default: return res::failure(error::not_live);
	}
}

/*
 * free_frozen_pages(): pcp orders to this CPU's list of the page's zone,
 * with the pageblock's type; others through __free_pages_ok() ->
 * split_large_buddy() -> __free_one_page().
 */
inline error page_allocator::check_allocated_block(pfn_t pfn, unsigned order) const
{
	if (pfn >= end_pfn_)
		return error::foreign_pointer;
	if (pfn & ((pfn_t{1} << order) - 1))
		return error::bad_alignment;
	const auto cur = allocated_order(pfn);
	if (!cur)
		return cur.err;
	if (cur.value != order)
		return error::bad_chunk;
	return error::ok;
}

inline error page_allocator::free_pages(pfn_t pfn, unsigned order)
{
	if (order > page_max_order)
		return error::too_large;
	if (error e = check_allocated_block(pfn, order); e != error::ok)
		return e;
	const std::uint8_t free_tail = detail::pa::make_state(detail::pa::fk_free_tail, 0);
	for (pfn_t i = 0; i < (pfn_t{1} << order); i++)
		state_[pfn + i] = free_tail;
	zone_t &z = zone_of_pfn(pfn);
	if (!detail::pa::pcp_allowed_order(order, cfg_.thp)) {
		split_large_buddy(z, pfn, order, false);
		return error::ok;
	}
	free_frozen_page_commit(z, z.pcp[cpu_], pfn, pb_mt_[pfn >> pageblock_order], order);
	return error::ok;
}

/* ---- statistics ---- */

inline std::uint64_t page_allocator::nr_free_pages() const noexcept
{
	std::uint64_t n = 0;
	for (const zone_t &z : zones_)
		n += z.free_pages + z.pcp_pages();
	return n;
}

inline free_area_stats page_allocator::free_area(zone_type zt) const noexcept
{
	const zone_t &z = zones_[unsigned(zt)];
	free_area_stats s;
	s.nr_free = z.nr_free;
	s.nr_free_pages = z.free_pages + z.pcp_pages();
	return s;
}

inline free_area_stats page_allocator::free_area() const noexcept
{
	free_area_stats s;
	for (unsigned zi = 0; zi < nr_zones; zi++) {
		const free_area_stats f = free_area(zone_type(zi));
		for (unsigned o = 0; o < nr_page_orders; o++)
			s.nr_free[o] += f.nr_free[o];
		s.nr_free_pages += f.nr_free_pages;
	}
	return s;
}

inline zone_info page_allocator::zone(zone_type zt) const noexcept
{
	const zone_t &z = zones_[unsigned(zt)];
	zone_info zi;
	zi.type = zt;
	zi.span = z.populated() ? frame_range{z.start, z.end - z.start} : frame_range{z.start, 0};
	zi.managed = z.managed;
	zi.pcp_pages = z.pcp_pages();
	zi.nr_free_pages = z.free_pages + zi.pcp_pages;
	zi.wmark_min = z.watermark[detail::pa::wmark_min];
	zi.wmark_low = z.watermark[detail::pa::wmark_low];
	zi.wmark_high = z.watermark[detail::pa::wmark_high];
	if (!z.pcp.empty()) {
		zi.pcp_high = z.pcp[0].high;
		zi.pcp_batch = z.pcp[0].batch;
	}
	return zi;
}

}  // namespace ua
