// SPDX-License-Identifier: MIT
/*
 * phys/page_alloc_check.h - the page allocator's expensive consistency walk
 * (check.h's third level), for tests. Included at the end of page_alloc.h.
 */
#pragma once

#include <string>

#include "page_alloc.h"

namespace ua {

inline std::string page_allocator::check_consistency() const
{
	using namespace detail::pa;
	std::array<free_area_stats, nr_zones> seen{};
	std::uint64_t live_recs = 0;
	auto where = [](std::uint64_t r, unsigned pb) {
		return " (region " + std::to_string(r) + ", pageblock " + std::to_string(pb) + ")";
	};
	for (std::uint64_t r = 0; r < nr_regions_; r++) {
		auto &fa = seen[unsigned(zone_of_region(r))];
		const std::uint64_t n = region_pages(r);
		const region_state *rs = regions_[r].get();
		const bool whole_free = test_bit(top_free_[page_max_order].data(), r);
		const bool whole_alloc = test_bit(top_alloc_.data(), r);
		if (!rs) {
			if (n != pages_per_region || whole_free == whole_alloc)
				return "region without record is not exactly one block" + where(r, 0);
			for (unsigned o = 0; o < page_max_order; o++)
				if (test_bit(top_free_[o].data(), r))
					return "unsplit region flagged with a smaller free order" + where(r, 0);
			if (whole_free) {
				fa.nr_free[page_max_order]++;
				fa.nr_free_pages += pages_per_region;
			}
			continue;
		}
		if (whole_free || whole_alloc)
			return "split region flagged as a whole block" + where(r, 0);
		const unsigned full_pbs = unsigned(n >> pageblock_order);
		const unsigned valid_pbs = unsigned((n + pages_per_chunk - 1) >> pageblock_order);
		std::array<std::uint8_t, pages_per_chunk> cover{};
		for (unsigned j = 0; j < large_orders; j++) {
			const unsigned span = 1u << j;
			for (int pass = 0; pass < 2; pass++) {
				const std::uint64_t *m = pass ? rs->alloc_blk[j] : rs->free_blk[j];
				for (std::uint64_t pb = find_next(m, 0, pages_per_chunk); pb != npos;
				     pb = find_next(m, pb + 1, pages_per_chunk)) {
					if (pb % span || pb + span > full_pbs)
						return "large block misaligned or past the end" + where(r, unsigned(pb));
					for (unsigned i = 0; i < span; i++)
						if (cover[pb + i]++)
							return "blocks overlap" + where(r, unsigned(pb + i));
					if (pass)
						continue;
					if (test_bit(m, pb ^ span))
						return "free buddies of equal order not merged" + where(r, unsigned(pb));
					fa.nr_free[pageblock_order + j]++;
					fa.nr_free_pages += std::uint64_t{1} << (pageblock_order + j);
				}
				if (!pass && any(m, 8) != test_bit(top_free_[pageblock_order + j].data(), r))
					return "region summary bit wrong for order " + std::to_string(pageblock_order + j) + where(r, 0);
			}
		}
		std::array<bool, pageblock_order> small_any{};
		for (unsigned pb = 0; pb < pages_per_chunk; pb++) {
			const std::uint32_t ri = rs->rec[pb];
			if (ri == no_rec) {
				for (unsigned o = 0; o < pageblock_order; o++)
					if (test_bit(rs->has_small[o], pb))
						return "pageblock without record flagged free" + where(r, pb);
				if (pb < full_pbs ? cover[pb] != 1 : pb < valid_pbs)
					return "pageblock covered by no block, or partial without record" + where(r, pb);
				continue;
			}
			live_recs++;
			if (ri >= recs_.size() || cover[pb] || pb >= valid_pbs)
				return "record overlaps a block, is past the end or has a bad index" + where(r, pb);
			const auto &rec = recs_[ri];
			const unsigned nv = unsigned(n - (std::uint64_t(pb) << pageblock_order) < pages_per_chunk
						     ? n - (std::uint64_t(pb) << pageblock_order) : pages_per_chunk);
			if (rec.nr_valid != nv)
				return "record valid length wrong" + where(r, pb);
			for (unsigned k = 0; k < 8; k++)
				if (rec.free[k] & rec.head[k])
					return "frame both free and an allocated head" + where(r, pb);
			if (find_next(rec.free, nv, pages_per_chunk) != npos || find_next(rec.head, nv, pages_per_chunk) != npos)
				return "record marks frames beyond the machine" + where(r, pb);
			const pageblock_blocks blocks(rec.free);
			if (blocks.whole())
				return "wholly free pageblock kept as a record" + where(r, pb);
			/* Every run of allocated frames starts at a head; each head's block is aligned to its size. */
			std::uint64_t bounds[8], carry = 0;
			for (unsigned k = 0; k < 8; k++) {
				const unsigned lo = k * 64;
				const std::uint64_t valid = nv >= lo + 64 ? ~std::uint64_t{0}
							  : nv <= lo ? 0 : (std::uint64_t{1} << (nv - lo)) - 1;
				const std::uint64_t busy = ~rec.free[k] & valid;
				if (busy & ~((busy << 1) | carry) & ~rec.head[k])
					return "allocated frame outside any block" + where(r, pb);
				carry = busy >> 63;
				bounds[k] = rec.free[k] | rec.head[k];
			}
			for (std::uint64_t h = find_next(rec.head, 0, nv); h != npos; h = find_next(rec.head, h + 1, nv)) {
				const unsigned len = 1u << block_order_at(bounds, unsigned(h), nv);
				if (h % len || len >= pages_per_chunk)
					return "allocated block not aligned to its size" + where(r, pb);
			}
			for (unsigned o = 0; o < pageblock_order; o++) {
				const unsigned c = blocks.count(o);
				if (c != rec.nr_free[o] || test_bit(rs->has_small[o], pb) != (c != 0))
					return "record free counts stale for order " + std::to_string(o) + where(r, pb);
				small_any[o] |= c != 0;
				fa.nr_free[o] += c;
				fa.nr_free_pages += std::uint64_t(c) << o;
			}
		}
		for (unsigned o = 0; o < pageblock_order; o++)
			if (small_any[o] != test_bit(top_free_[o].data(), r))
				return "region summary bit wrong for order " + std::to_string(o) + where(r, 0);
	}
	for (unsigned z = 0; z < nr_zones; z++) {
		if (seen[z].nr_free_pages != free_[z].nr_free_pages)
			return "free page count wrong in zone " + std::to_string(z);
		for (unsigned o = 0; o < nr_page_orders; o++)
			if (seen[z].nr_free[o] != free_[z].nr_free[o])
				return "free block count wrong for order " + std::to_string(o) + " in zone " + std::to_string(z);
	}
	if (live_recs + spare_recs_.size() != recs_.size())
		return "pageblock records leaked";
	return {};
}

}  // namespace ua
