// SPDX-License-Identifier: MIT
/*
 * phys/page_age.h - ageing a simulated machine, and measuring how widely
 * its free memory is spread.
 *
 * The "aged" machine of the published sockex1 experiment had its memory first
 * filled with page cache, which was then partly freed. On such a machine the
 * free memory is mostly order-0..2 holes scattered over nearly every 2 MiB
 * and 1 GiB region, while kswapd and compaction keep a few pageblocks wholly
 * free (watermark boosting, kcompactd's proactive compaction). A chunk taken
 * from it therefore usually sits in a 1 GiB region that background load has
 * already touched, and small allocations split 2 MiB pages that are mapped.
 *
 * page_allocator::age(cfg) reproduces this at pageblock granularity, never
 * per frame, so a 64 GiB machine ages in a few tens of milliseconds:
 *
 *   1. Every free block of order >= 9 in cfg.gfp's zones is taken off the
 *      free lists, region by region, in address order.
 *   2. Each of its 2 MiB pageblocks, in address order, draws from a seeded
 *      splitmix64 stream: with probability free_chunk_fraction it stays wholly
 *      free; otherwise it is "filled with page cache, then partly freed": each
 *      of its 512 frames stays allocated as an order-0 page with probability
 *      used_fraction / (1 - free_chunk_fraction), so that used_fraction of the
 *      aged memory ends up allocated. The pageblock gets its record directly
 *      (free mask and head mask), not 512 separate allocations.
 *   3. The pageblocks kept free are freed again and merge with each other.
 *
 * Pageblocks already split before the call are left as they are. The pages
 * left allocated are ordinary order-0 allocations (the page cache): they stay
 * allocated and free_pages(pfn, 0) releases any of them. The same seed on the
 * same state gives the same machine.
 */
#pragma once

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "page_alloc.h"

namespace ua {

namespace detail::pa {
/* splitmix64: tiny, fast, and identical on every standard library (unlike std distributions). */
struct splitmix64 {
	std::uint64_t state;
	std::uint64_t next() noexcept
	{
		std::uint64_t z = (state += 0x9e3779b97f4a7c15);
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
		return z ^ (z >> 31);
	}
};

/* A draw below the threshold happens with probability p (p >= 1 always, p <= 0 never). */
struct bernoulli {
	std::uint64_t threshold;
	bool always;
	explicit bernoulli(double p) noexcept
		: threshold(p <= 0.0 ? 0 : p >= 1.0 ? 0 : std::uint64_t(std::ldexp(p, 64))), always(p >= 1.0) {}
	bool operator()(splitmix64 &rng) const noexcept { return always || rng.next() < threshold; }
};
}  // namespace detail::pa

inline result<age_report> page_allocator::age(const age_config &cfg)
{
	using namespace detail::pa;
	auto fraction_ok = [](double f) { return f >= 0.0 && f <= 1.0; }; /* false for NaN */
	if (!fraction_ok(cfg.used_fraction) || !fraction_ok(cfg.free_chunk_fraction) ||
	    (cfg.gfp & ~gfp_movable_first) || !(cfg.gfp & gfp_any_zone))
		return result<age_report>::failure(error::bad_flags);

	const double keep = cfg.free_chunk_fraction < 1.0
				    ? std::min(1.0, cfg.used_fraction / (1.0 - cfg.free_chunk_fraction)) : 0.0;
	const bernoulli keep_page(keep), keep_free(cfg.free_chunk_fraction);
	splitmix64 rng{cfg.seed};
	age_report rep;
	const std::uint64_t r0 = (cfg.gfp & gfp_zone_normal) ? 0 : movable_region_;
	const std::uint64_t r1 = (cfg.gfp & gfp_zone_movable) ? nr_regions_ : movable_region_;
	std::vector<std::pair<unsigned, unsigned>> blocks; /* (pageblock, order) */
	std::vector<unsigned> kept;

	for (std::uint64_t r = r0; r < r1; r++) {
		blocks.clear();
		kept.clear();
		if (!regions_[r]) {
			if (!test_bit(top_free_[page_max_order].data(), r))
				continue;
			del_free_region(r);
			get_region(r);
			blocks.emplace_back(0u, page_max_order);
		} else {
			for (unsigned j = 0; j < large_orders; j++)
				for (std::uint64_t pb = find_next(regions_[r]->free_blk[j], 0, pages_per_chunk); pb != npos;
				     pb = find_next(regions_[r]->free_blk[j], pb + 1, pages_per_chunk))
					blocks.emplace_back(unsigned(pb), pageblock_order + j);
			std::sort(blocks.begin(), blocks.end());
			for (auto [pb, o] : blocks)
				del_free_large(r, pb, o);
		}
		for (auto [first, o] : blocks) {
			for (unsigned pb = first; pb < first + (1u << (o - pageblock_order)); pb++) {
				std::uint64_t used[8] = {};
				unsigned nr_used = 0;
				if (!keep_free(rng)) {
					for (unsigned k = 0; k < 8; k++) {
						std::uint64_t w = 0;
						for (unsigned i = 0; i < 64; i++)
							w |= std::uint64_t(keep_page(rng)) << i;
						used[k] = w;
						nr_used += unsigned(std::popcount(w));
					}
				}
				if (nr_used == 0) {
					kept.push_back(pb);
					continue;
				}
				auto &rec = recs_[get_rec(r, pb, pages_per_chunk)];
				for (unsigned k = 0; k < 8; k++) {
					rec.free[k] = ~used[k];
					rec.head[k] = used[k];
				}
				account_rec(r, pb);
				rep.pageblocks_aged++;
				rep.pages_allocated += nr_used;
			}
		}
		for (unsigned pb : kept)
			free_large_merge(r, pb, pageblock_order);
		rep.pageblocks_kept_free += kept.size();
	}
	return result<age_report>{rep, error::ok};
}

inline fragmentation_stats page_allocator::fragmentation() const
{
	using namespace detail::pa;
	fragmentation_stats s;
	for (std::uint64_t r = 0; r < nr_regions_; r++) {
		const region_state *rs = regions_[r].get();
		if (!rs) {
			if (test_bit(top_free_[page_max_order].data(), r)) {
				s.pageblocks_with_free += pages_per_chunk;
				s.pageblocks_free += pages_per_chunk;
				s.regions_with_free++;
				s.regions_free++;
			}
			continue;
		}
		std::uint64_t with_free = 0;
		for (unsigned j = 0; j < large_orders; j++)
			for (unsigned k = 0; k < 8; k++)
				with_free += std::uint64_t(std::popcount(rs->free_blk[j][k])) << j;
		s.pageblocks_free += with_free;
		for (unsigned pb = 0; pb < pages_per_chunk; pb++)
			if (rs->rec[pb] != no_rec && any(recs_[rs->rec[pb]].free, 8))
				with_free++;
		s.pageblocks_with_free += with_free;
		s.regions_with_free += with_free != 0;
	}
	return s;
}

}  // namespace ua
