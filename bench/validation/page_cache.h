// SPDX-License-Identifier: MIT
/*
 * validation/page_cache.h - ageing as the measurements did it: memory
 * filled with page cache by reading a sparse file, reclaimed oldest first.
 *
 * Both aged measurements fill memory with the page cache of a file read
 * once, front to back: the published one "firstly consume[s] all memory to
 * page cache by reading some sparse files", then runs the workload, which
 * gets its memory back by reclaim; ua-live (live/ageing.h) reads until free
 * memory is down to its floor plus reserve, keeps the cache while the
 * workload runs and drops it after (POSIX_FADV_DONTNEED).
 *
 * The model: each page read is one order-0 page-cache allocation, taken in
 * reading order (large folios are not modelled). Reclaim frees the oldest
 * first: a file read once has all its pages on the inactive file LRU in the
 * order they were added, and shrink_inactive_list() takes from the tail,
 * SWAP_CLUSTER_MAX (32) pages per batch (mm/vmscan.c). The workload
 * reclaims only when an allocation fails (the kernel's direct reclaim;
 * kswapd, which starts at the low watermark, is not modelled).
 */
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>

#include "validation/sim_machine.h"

namespace ua::validation {

inline constexpr std::uint64_t swap_cluster_max = 32; /* SWAP_CLUSTER_MAX, include/linux/swap.h */

class page_cache {
public:
	explicit page_cache(sim_machine &m) : m_(m) {}

	/*
	 * The free memory the fill leaves when told to take "all memory": the
	 * min watermark, min_free_kbytes = int_sqrt(lowmem_kbytes * 16) clamped
	 * to [128, 262144] (calculate_min_free_kbytes(), mm/page_alloc.c).
	 */
	static std::uint64_t min_free_pages(std::uint64_t ram_pages)
	{
		const std::uint64_t kb = ram_pages * (page_size / 1024);
		std::uint64_t r = 0;
		while ((r + 1) * (r + 1) <= kb * 16)
			r++;
		r = std::clamp<std::uint64_t>(r, 128, 262144);
		return r / (page_size / 1024);
	}
	page_cache(const page_cache &) = delete;
	page_cache &operator=(const page_cache &) = delete;
	~page_cache() { drop(); }

	/* Reads pages into the cache until free memory is at most free_target pages or nothing is left. */
	std::uint64_t fill(std::uint64_t free_target)
	{
		sim_machine::guard g(m_.lock);
		std::uint64_t n = 0;
		while (m_.pages.nr_free_pages() > free_target) {
			auto p = m_.pages.alloc_pages(0, gfp_any_zone);
			if (!p.ok())
				break;
			lru_.push_back(p.value);
			n++;
		}
		return n;
	}

	/* Reclaims one batch, oldest first; the pages reclaimed (0: the cache is empty). */
	std::uint64_t reclaim_batch()
	{
		sim_machine::guard g(m_.lock);
		std::uint64_t n = 0;
		for (; n < swap_cluster_max && !lru_.empty(); n++) {
			(void)m_.pages.free_pages(lru_.front(), 0);
			lru_.pop_front();
		}
		reclaimed_ += n;
		return n;
	}

	/* Drops the whole cache (POSIX_FADV_DONTNEED, or the file's last close). */
	void drop()
	{
		sim_machine::guard g(m_.lock);
		for (pfn_t p : lru_)
			(void)m_.pages.free_pages(p, 0);
		lru_.clear();
	}

	std::uint64_t pages() const noexcept { return lru_.size(); }
	std::uint64_t reclaimed() const noexcept { return reclaimed_; }

private:
	sim_machine &m_;
	std::deque<pfn_t> lru_; /* oldest first */
	std::uint64_t reclaimed_ = 0;
};

}  // namespace ua::validation
