// SPDX-License-Identifier: MIT
/*
 * validation/page_cache.h - ageing as the measurements did it: memory
 * filled with the page cache of a sparse file read once.
 *
 * Both aged measurements fill memory with page cache before the workload:
 * the published one "firstly consume[s] all memory to page cache by
 * reading some sparse files", then runs the workload, which gets its memory
 * back by reclaim; ua-live (live/ageing.h) reads until free memory is down
 * to its floor plus reserve, keeps the cache while the workload runs and
 * drops it after (POSIX_FADV_DONTNEED).
 *
 * Both go through the page allocator's own page cache (phys/page_age.h):
 * page_cache_read() reads order-0 GFP_HIGHUSER_MOVABLE pages onto the LRU,
 * kswapd evicting the oldest when the fast path fails at the low
 * watermark; an allocation that still fails reclaims directly from the
 * LRU's old end (the slow path); page_cache_evict() drops the oldest.
 */
#pragma once

#include <cstdint>

#include "validation/sim_machine.h"

namespace ua::validation {

class page_cache {
public:
	explicit page_cache(sim_machine &m) : m_(m) {}
	page_cache(const page_cache &) = delete;
	page_cache &operator=(const page_cache &) = delete;
	~page_cache() { drop(); }

	/* Reads pages until free memory is at most free_target pages; the pages read. */
	std::uint64_t fill_to(std::uint64_t free_target)
	{
		sim_machine::guard g(m_.lock);
		const std::uint64_t f = m_.pages.nr_free_pages();
		const std::uint64_t n = f > free_target ? m_.pages.page_cache_read(f - free_target) : 0;
		read_ += n;
		return n;
	}

	/*
	 * Reads a file as large as the machine's RAM: the cache takes all the
	 * memory kswapd lets it take (down to the low watermark, then evicting
	 * its own oldest pages to the high one), as reading sparse files larger
	 * than memory does.
	 */
	std::uint64_t fill_all(std::uint64_t ram_pages)
	{
		sim_machine::guard g(m_.lock);
		const std::uint64_t n = m_.pages.page_cache_read(ram_pages);
		read_ += n;
		return n;
	}

	/* Drops what this cache read and is still cached (oldest first: a file read once is all old). */
	void drop()
	{
		sim_machine::guard g(m_.lock);
		const std::uint64_t left = m_.pages.page_cache_pages();
		(void)m_.pages.page_cache_evict(std::min(left, read_));
		read_ = 0;
	}

	std::uint64_t pages() const
	{
		sim_machine::guard g(m_.lock);
		return m_.pages.page_cache_pages();
	}

private:
	sim_machine &m_;
	std::uint64_t read_ = 0;
};

}  // namespace ua::validation
