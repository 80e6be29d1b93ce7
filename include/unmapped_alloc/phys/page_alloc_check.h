// SPDX-License-Identifier: MIT
/*
 * phys/page_alloc_check.h - the page allocator's expensive consistency walk
 * (check.h's third level), for tests: every list, every frame, every count.
 * Included at the end of page_alloc.h.
 */
#pragma once

#include <string>

#include "page_alloc.h"

namespace ua {

inline std::string page_allocator::check_consistency() const
{
	using namespace detail::pa;
	auto at = [](const char *what, pfn_t p) { return std::string(what) + " (pfn " + std::to_string(p) + ")"; };
	std::vector<std::uint8_t> seen(end_pfn_, 0); /* 1: head of a listed block */
	std::uint64_t covered = 0;
	/* A free block: aligned, inside its zone, its tails free. */
	auto check_block = [&](const zone_t &z, pfn_t p, unsigned order) -> std::string {
		const pfn_t n = pfn_t{1} << order;
		if (p & (n - 1))
			return at("free block misaligned", p);
		if (p < z.start || p + n > z.end)
			return at("free block outside its zone", p);
		for (pfn_t i = 1; i < n; i++)
			if (state_[p + i] != make_state(fk_free_tail, 0))
				return at("free block tail not free", p + i);
		if (seen[p]++)
			return at("block on two lists", p);
		covered += n;
		return {};
	};
	std::vector<std::uint64_t> region_free(region_free_.size(), 0);
	for (const zone_t &z : zones_) {
		std::uint64_t free_pages = 0;
		for (unsigned o = 0; o < nr_page_orders; o++) {
			std::uint64_t nr = 0;
			for (unsigned mt = 0; mt < migrate_pcptypes; mt++) {
				std::uint64_t n = 0;
				std::uint32_t prev = nil;
				for (std::uint32_t p = z.free_list[o][mt].first; p != nil; prev = p, p = next_[p]) {
					if (prev_[p] != prev)
						return at("free list back link broken", p);
					if (state_[p] != make_state(fk_buddy, o))
						return at("free list entry not a buddy of its order", p);
					if (pb_mt_[p >> pageblock_order] != mt)
						return at("free block on another type's list than its pageblock's", p);
					if (o < page_max_order && page_is_buddy(z, p ^ (pfn_t{1} << o), o))
						return at("free buddies of equal order not merged", p);
					if (auto e = check_block(z, p, o); !e.empty())
						return e;
					if (o >= pageblock_order)
						region_free[p / pages_per_region]++;
					n++;
				}
				if (z.free_list[o][mt].last != prev)
					return "free list tail wrong";
				if (n != z.nr_free_mt[o][mt])
					return "free count per type wrong at order " + std::to_string(o);
				nr += n;
				free_pages += n << o;
			}
			if (nr != z.nr_free[o])
				return "free_area nr_free wrong at order " + std::to_string(o);
		}
		if (free_pages != z.free_pages)
			return std::string("NR_FREE_PAGES wrong in zone ") + zone_name(z.type);
		for (const per_cpu_pages &pcp : z.pcp) {
			std::uint64_t count = 0;
			for (unsigned pi = 0; pi < nr_pcp_lists; pi++) {
				const unsigned o = pindex_to_order(pi);
				std::uint32_t prev = nil;
				for (std::uint32_t p = pcp.lists[pi].first; p != nil; prev = p, p = next_[p]) {
					if (prev_[p] != prev)
						return at("pcp list back link broken", p);
					if (state_[p] != make_state(fk_pcp, o))
						return at("pcp entry not a pcp block of its order", p);
					if (auto e = check_block(z, p, o); !e.empty())
						return e;
					count += std::uint64_t{1} << o;
				}
				if (pcp.lists[pi].last != prev)
					return "pcp list tail wrong";
			}
			if (count != std::uint64_t(pcp.count))
				return std::string("pcp count wrong in zone ") + zone_name(z.type);
		}
	}
	for (std::size_t r = 0; r < region_free.size(); r++)
		if (region_free[r] != region_free_[r])
			return "free 2 MiB+ blocks of 1 GiB region " + std::to_string(r) + " miscounted";
	for (pfn_t p = 0; p < end_pfn_;) {
		const std::uint8_t s = state_[p];
		switch (state_kind(s)) {
		case fk_alloc: {
			const pfn_t n = pfn_t{1} << state_order(s);
			if ((p & (n - 1)) || p + n > end_pfn_ || state_order(s) > max_contig_order)
				return at("allocated block misaligned or past the end", p);
			for (pfn_t i = 1; i < n; i++)
				if (state_[p + i] != make_state(fk_alloc_tail, 0, (s & fs_movable) != 0))
					return at("allocated block tail wrong", p + i);
			const zone_t &z = zones_[zone_idx(p)];
			if (p < z.start || p + n > z.end)
				return at("allocated block outside its zone", p);
			covered += n;
			p += n;
			continue;
		}
		case fk_alloc_tail: return at("allocated tail without head", p);
		case fk_buddy:
		case fk_pcp:
			if (!seen[p])
				return at("free block on no list", p);
			p += pfn_t{1} << state_order(s);
			continue;
		case fk_free_tail: return at("free frame outside any free block", p);
		default: p++;
		}
	}
	std::uint64_t nr_page_cache = 0;
	for (pfn_t p = 0; p < end_pfn_; p++) {
		if (!in_page_cache(p))
			continue;
		nr_page_cache++;
		if (state_kind(state_[p]) != fk_alloc || state_order(state_[p]) != 0)
			return at("page-cache frame not an allocated order-0 page", p);
	}
	if (nr_page_cache != page_cache_nr_)
		return "page-cache pages miscounted";
	if (covered != managed_)
		return "frames in blocks (" + std::to_string(covered) + ") differ from managed frames (" +
		       std::to_string(managed_) + ")";
	return {};
}

}  // namespace ua
