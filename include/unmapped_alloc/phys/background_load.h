// SPDX-License-Identifier: MIT
/*
 * phys/background_load.h - the rest of the machine, running while a
 * workload runs: files read into the page cache (reclaimed by kswapd in LRU
 * order when memory is full) and kernel objects allocated and freed (slab
 * churn of unmovable and reclaimable pages). A replay calls step() between
 * workload operations, so the workload's pages are interleaved with other
 * users' as on a busy machine.
 *
 * Per step, on the CPU currently selected: cache_pages page-cache reads
 * (page_allocator::page_cache_read()), and slab_pages slab pages allocated
 * (GFP_KERNEL, or __GFP_RECLAIMABLE with probability reclaimable) while as
 * many random older ones are freed once slab_live are held. Deterministic
 * per seed. The rates are parameters (docs/page_alloc.md). The caller holds
 * the machine lock.
 */
#pragma once

#include <cstdint>
#include <vector>

#include "page_alloc.h"

namespace ua {

struct background_config {
	std::uint64_t seed = 1;
	unsigned cache_pages = 8;   /* page-cache pages read per step */
	unsigned slab_pages = 1;    /* slab pages allocated (and, at steady state, freed) per step */
	unsigned slab_live = 2048;  /* slab pages the background holds at most */
	double reclaimable = 0.85;  /* share of slab pages that are reclaimable */
};

class background_load {
public:
	explicit background_load(background_config cfg = {}) : cfg_(cfg), rng_{cfg.seed} {}

	void step(page_allocator &pa)
	{
		(void)pa.page_cache_read(cfg_.cache_pages);
		const detail::pa::bernoulli rec(cfg_.reclaimable);
		for (unsigned i = 0; i < cfg_.slab_pages; i++) {
			if (slab_.size() >= cfg_.slab_live && !slab_.empty()) {
				const std::size_t k = std::size_t(rng_.next() % slab_.size());
				UA_CHECK(pa.free_pages(slab_[k], 0) == error::ok, "background_load: freeing a slab page");
				slab_[k] = slab_.back();
				slab_.pop_back();
			}
			auto r = pa.alloc_pages(0, rec(rng_) ? gfp_reclaimable : gfp_kernel);
			if (r)
				slab_.push_back(r.value);
		}
	}

	/* Free the slab pages held (the page cache stays, as on a real machine). */
	void release(page_allocator &pa)
	{
		for (pfn_t p : slab_)
			UA_CHECK(pa.free_pages(p, 0) == error::ok, "background_load: releasing a slab page");
		slab_.clear();
	}

	std::size_t slab_held() const noexcept { return slab_.size(); }

private:
	background_config cfg_;
	detail::pa::splitmix64 rng_;
	std::vector<pfn_t> slab_;
};

}  // namespace ua
