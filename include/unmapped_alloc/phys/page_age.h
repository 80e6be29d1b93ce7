// SPDX-License-Identifier: MIT
/*
 * phys/page_age.h - ageing a simulated machine the way a long-running one
 * gets there, and measuring how widely its free memory is spread.
 *
 * page_allocator::age(cfg) runs, through the allocator's own paths (pcp
 * lists, fallbacks, LIFO free lists, merging):
 *
 *   1. Fill: the page cache reads files on every CPU in turns of
 *      VM_READAHEAD_PAGES (32 pages, the default 128 KiB readahead),
 *      order-0 pages of cfg.gfp (GFP_HIGHUSER_MOVABLE, mapping_gfp_mask()),
 *      until the fast path fails at the low watermark, where kswapd would
 *      start. Every 18th page the kernel also takes a slab page:
 *      reclaimable (dentries, inodes: __GFP_RECLAIMABLE) 85% of the time,
 *      else unmovable (GFP_KERNEL). Slab:(page cache + anon) and
 *      SReclaimable:SUnreclaim are those of /proc/meminfo on the machine
 *      this was calibrated on (docs/page_alloc.md).
 *   2. Reclaim (kswapd, shrink_folio_list()): the LRU is walked from the
 *      oldest page; a page whose referenced bit is clear is evicted (freed
 *      on CPU 0, kswapd's), one that was referenced is rotated to the young
 *      end (folio_check_references()). The referenced bit is drawn per page
 *      from a seeded splitmix64 stream so that used_fraction of the memory
 *      stays allocated; pages in a free_chunk_fraction share of pageblocks
 *      (whole files deleted, or compaction's work) are all evicted.
 *   3. Slab churn: half of the slab pages, chosen by the same stream, are
 *      freed again (objects freed, empty slabs returned).
 *
 * Pages left in the page cache stay on the LRU (lru_, oldest first); the
 * allocator's slow path reclaims from it (reclaim_lru()) before failing,
 * as direct reclaim would. The same seed on the same machine gives the
 * same result. The CPU selected before the call is selected after it.
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

inline constexpr unsigned age_readahead_pages = 32; /* VM_READAHEAD_PAGES (128 KiB) per CPU turn while filling */
inline constexpr unsigned age_slab_every = 18;      /* page-cache pages per slab page */
inline constexpr double age_slab_reclaimable = 0.85;
}  // namespace detail::pa

/*
 * Direct reclaim (try_to_free_pages()): evict nr_pages, at least
 * SWAP_CLUSTER_MAX, from the old end of the page-cache LRU, then drain the
 * pcp lists so the frames count as free. False when the LRU is empty.
 */
inline bool page_allocator::reclaim_lru(std::uint64_t nr_pages)
{
	if (lru_head_ >= lru_.size())
		return false;
	nr_pages = std::max(nr_pages, detail::pa::swap_cluster_max);
	for (std::uint64_t n = 0; n < nr_pages && lru_head_ < lru_.size(); n++) {
		const pfn_t p = lru_[lru_head_++];
		/* Only a page still in the page cache (not migrated away since it was added). */
		if (in_page_cache(p)) {
			set_page_cache(p, false);
			(void)free_pages(p, 0);
		}
	}
	drain_all_pages();
	return true;
}

/* The fast path only (the low watermark, no reclaim, no drain): what a request gets before kswapd is woken. */
inline pfn_t page_allocator::alloc_fast(unsigned order, gfp_t gfp) noexcept
{
	using namespace detail::pa;
	const unsigned highest = (gfp & gfp_highmem) && (gfp & gfp_movable) ? unsigned(zone_type::movable)
				 : (gfp & gfp_dma) ? unsigned(zone_type::dma)
				 : (gfp & gfp_dma32) ? unsigned(zone_type::dma32) : unsigned(zone_type::normal);
	const unsigned mt = mobility_disabled_ ? migrate_unmovable
			    : (gfp & gfp_movable) ? migrate_movable
			    : (gfp & gfp_reclaimable) ? migrate_reclaimable : migrate_unmovable;
	unsigned flags = alloc_wmark_low;
	for (int zi = int(highest); zi >= 0; zi--)
		if (zones_[unsigned(zi)].populated()) {
			if (zones_[unsigned(zi)].type == zone_type::normal)
				flags |= alloc_nofragment;
			break;
		}
	return get_page_from_freelist(order, mt, flags, highest, no_hint);
}

inline std::uint64_t page_allocator::page_cache_evict(std::uint64_t nr)
{
	std::uint64_t n = 0;
	while (n < nr && lru_head_ < lru_.size()) {
		const pfn_t p = lru_[lru_head_++];
		if (!in_page_cache(p))
			continue; /* migrated away: its new frame has an entry of its own */
		set_page_cache(p, false);
		if (free_pages(p, 0) == error::ok)
			n++;
	}
	/* Compact the LRU once its evicted head outweighs what is left. */
	if (lru_head_ > 4096 && lru_head_ * 2 > lru_.size()) {
		lru_.erase(lru_.begin(), lru_.begin() + std::ptrdiff_t(lru_head_));
		lru_head_ = 0;
	}
	return n;
}

/* kswapd's balance_pgdat(): evict SWAP_CLUSTER_MAX at a time until some zone is above its high watermark. */
inline bool page_allocator::kswapd_balance()
{
	const unsigned saved = cpu_;
	cpu_ = 0; /* kswapd's CPU */
	for (;;) {
		bool balanced = false;
		for (const zone_t &z : zones_)
			balanced |= z.populated() && z.type != zone_type::movable &&
				    zone_watermark_ok(z, 0, z.watermark[detail::pa::wmark_high], unsigned(zone_type::normal));
		if (balanced || page_cache_evict(detail::pa::swap_cluster_max) == 0) {
			cpu_ = saved;
			return balanced;
		}
	}
}

inline std::uint64_t page_allocator::page_cache_read(std::uint64_t nr)
{
	std::uint64_t n = 0;
	for (; n < nr; n++) {
		pfn_t p = alloc_fast(0, gfp_highuser_movable);
		if (p == detail::pa::no_page) {
			(void)kswapd_balance();
			auto r = alloc_pages(0, gfp_highuser_movable);
			if (!r)
				break;
			p = r.value;
		}
		lru_add(p);
	}
	return n;
}

inline result<age_report> page_allocator::age(const age_config &cfg)
{
	using namespace detail::pa;
	auto fraction_ok = [](double f) { return f >= 0.0 && f <= 1.0; }; /* false for NaN */
	if (!fraction_ok(cfg.used_fraction) || !fraction_ok(cfg.free_chunk_fraction) || (cfg.gfp & ~gfp_all_bits) ||
	    ((cfg.gfp & gfp_dma) && (cfg.gfp & gfp_dma32)) || ((cfg.gfp & gfp_movable) && (cfg.gfp & gfp_reclaimable)))
		return result<age_report>::failure(error::bad_flags);
	const unsigned saved_cpu = cpu_;
	const fault_hook saved_hook = fault_hook_;
	fault_hook_ = nullptr;
	splitmix64 rng{cfg.seed};
	const bernoulli reclaimable_slab(age_slab_reclaimable);

	/* 1. Fill: the fast path only, so filling stops at the low watermark. */
	std::vector<std::uint32_t> cache;
	cache.reserve(nr_free_pages());
	std::vector<std::pair<std::uint32_t, bool>> slab; /* (pfn, reclaimable) */
	for (std::uint64_t i = 0;; i++) {
		cpu_ = unsigned((i / age_readahead_pages) % nr_cpus_);
		const pfn_t p = alloc_fast(0, cfg.gfp);
		if (p == no_page)
			break;
		cache.push_back(std::uint32_t(p));
		if ((i + 1) % age_slab_every == 0) {
			const bool rec = reclaimable_slab(rng);
			const pfn_t s = alloc_fast(0, rec ? gfp_reclaimable : gfp_kernel);
			if (s != no_page)
				slab.emplace_back(std::uint32_t(s), rec);
		}
	}

	/* 2. Reclaim in LRU order, oldest first, on kswapd's CPU. */
	cpu_ = 0;
	const std::uint64_t managed = managed_;
	const std::uint64_t keep_target = std::uint64_t(double(managed) * cfg.used_fraction);
	const std::uint64_t others = managed - nr_free_pages() - cache.size(); /* slab and what was allocated before */
	const std::uint64_t keep_cache = keep_target > others ? std::min<std::uint64_t>(keep_target - others, cache.size()) : 0;
	/* Pageblocks all of whose cache pages go: chosen by a hash of the pageblock, so by address. */
	const bernoulli whole_block(cfg.free_chunk_fraction);
	auto block_freed = [&](pfn_t p) {
		splitmix64 h{cfg.seed ^ ((p >> pageblock_order) * 0x9e3779b97f4a7c15)};
		return whole_block(h);
	};
	std::uint64_t in_freed_blocks = 0;
	if (cfg.free_chunk_fraction > 0)
		for (std::uint32_t p : cache)
			in_freed_blocks += block_freed(p);
	const std::uint64_t candidates = cache.size() - in_freed_blocks;
	const bernoulli referenced(candidates ? double(keep_cache) / double(candidates) : 0.0);
	std::vector<std::uint32_t> kept;
	kept.reserve(keep_cache + keep_cache / 16 + 64);
	for (std::uint32_t p : cache) {
		const bool go = (cfg.free_chunk_fraction > 0 && block_freed(p)) || !referenced(rng);
		if (go)
			UA_CHECK(free_pages(p, 0) == error::ok, "page_age: evicting a page-cache page");
		else
			kept.push_back(p);
	}
	std::vector<std::uint32_t>().swap(cache);

	/* 3. Slab churn: half the slab pages are freed again. */
	const bernoulli half(0.5);
	std::uint64_t slab_kept = 0;
	for (auto [p, rec] : slab) {
		(void)rec;
		if (half(rng))
			UA_CHECK(free_pages(p, 0) == error::ok, "page_age: freeing a slab page");
		else
			slab_kept++;
	}

	/* The LRU: older survivors first, then what was there before. */
	std::vector<std::uint32_t> lru(lru_.begin() + std::ptrdiff_t(lru_head_), lru_.end());
	lru.insert(lru.end(), kept.begin(), kept.end());
	for (std::uint32_t p : kept)
		set_page_cache(p, true);
	lru_ = std::move(lru);
	lru_head_ = 0;
	cpu_ = saved_cpu;
	fault_hook_ = saved_hook;

	age_report rep;
	rep.pages_allocated = kept.size() + slab_kept;
	const fragmentation_stats fs = fragmentation();
	rep.pageblocks_kept_free = fs.pageblocks_free;
	std::uint64_t pageblocks = 0;
	for (const zone_t &z : zones_)
		if (z.populated())
			pageblocks += (z.end - (z.start & ~(pageblock_nr_pages - 1)) + pageblock_nr_pages - 1) >> pageblock_order;
	rep.pageblocks_aged = pageblocks - fs.pageblocks_free;
	return result<age_report>{rep, error::ok};
}

/* Free frames per pageblock and region, from the free and pcp lists. */
inline fragmentation_stats page_allocator::fragmentation() const
{
	using namespace detail::pa;
	std::vector<std::uint16_t> pb_free((end_pfn_ + pageblock_nr_pages - 1) >> pageblock_order, 0);
	std::vector<std::uint16_t> pb_ram(pb_free.size(), 0);
	auto add = [&](pfn_t p, unsigned order) {
		const pfn_t n = pfn_t{1} << order;
		if (order >= pageblock_order) {
			for (pfn_t b = p >> pageblock_order; b < (p + n) >> pageblock_order; b++)
				pb_free[b] = std::uint16_t(pageblock_nr_pages);
		} else {
			pb_free[p >> pageblock_order] = std::uint16_t(pb_free[p >> pageblock_order] + n);
		}
	};
	for (const zone_t &z : zones_) {
		for (unsigned o = 0; o < nr_page_orders; o++)
			for (unsigned mt = 0; mt < migrate_pcptypes; mt++)
				for (std::uint32_t p = z.free_list[o][mt].first; p != nil; p = next_[p])
					add(p, o);
		for (const per_cpu_pages &pcp : z.pcp)
			for (unsigned pi = 0; pi < nr_pcp_lists; pi++)
				for (std::uint32_t p = pcp.lists[pi].first; p != nil; p = next_[p])
					add(p, pindex_to_order(pi));
	}
	for (pfn_t p = 0; p < end_pfn_; p++)
		pb_ram[p >> pageblock_order] = std::uint16_t(pb_ram[p >> pageblock_order] + (state_[p] != 0));
	fragmentation_stats s;
	const std::uint64_t per_region = pages_per_region >> pageblock_order;
	for (std::uint64_t r = 0; r * per_region < pb_free.size(); r++) {
		std::uint64_t with = 0, whole = 0, ram = 0;
		for (std::uint64_t b = r * per_region; b < std::min<std::uint64_t>(pb_free.size(), (r + 1) * per_region); b++) {
			ram += pb_ram[b] != 0;
			with += pb_free[b] != 0;
			whole += pb_ram[b] && pb_free[b] == pb_ram[b];
		}
		s.pageblocks_with_free += with;
		s.pageblocks_free += whole;
		s.regions_with_free += with != 0;
		s.regions_free += ram && whole == ram;
	}
	return s;
}

}  // namespace ua
