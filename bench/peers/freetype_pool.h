// SPDX-License-Identifier: MIT
/*
 * peers/freetype_pool.h - the page allocator's unmapped freetype of the 2026
 * __GFP_UNMAPPED RFC (Brendan Jackman, RFC v1
 * 20260225-page_alloc-unmapped-v1-0-e8808a03cd66@google.com, v2
 * 20260320-page_alloc-unmapped-v2-0-28bf1bd54f41@google.com), modelled over
 * the page allocator's public calls.
 *
 * In the RFC a freetype is a migratetype plus flags; FREETYPE_UNMAPPED marks
 * free lists (and pageblocks) whose pages are absent from the direct map, for
 * MIGRATE_UNMOVABLE only (patch 10). An __GFP_UNMAPPED request is served from
 * those lists; when they have nothing, __rmqueue_direct_map() (patch 17):
 *   - refuses in atomic context (ALLOC_NOBLOCK: the TLB shootdown needs IRQs
 *     on and no lock held) - alloc_locked(..., atomic = true) fails;
 *   - takes alloc_order = max(request_order, pageblock_order) from the mapped
 *     side (__rmqueue() of the other freetype) - one order-9 (or order-10)
 *     block of the page allocator here;
 *   - removes those whole pageblocks from the direct map and flushes: one
 *     set_direct_map_invalid() over the block, which for an aligned 2 MiB
 *     block changes the PMD in place (splitting at most the 1 GiB page
 *     around it), and one flush;
 *   - puts the block on the unmapped lists and serves the request from them.
 * Freed pages go back to the unmapped lists, merging with free buddies, and
 * stay unmapped.
 *
 * Back to the mapped side: in the RFC a mapped request whose lists are empty
 * can take an unmapped pageblock back (__rmqueue_direct_map() with
 * want_mapped), and its contents must not show up in the direct map, so the
 * pages are zeroed first (v2 zeroes unmapped pages through the "mermap",
 * patch 20). This model cannot see the page allocator's mapped requests
 * (that needs a hook inside phys/), so it returns blocks at release_locked():
 * every taken block that is wholly free is zeroed (fill_frames(0), which
 * needs no direct map), mapped back with one set_direct_map_default() over
 * the block, and freed to the page allocator.
 *
 * What the model cannot reproduce without page-allocator internals, and says
 * so in docs/peers.md: pageblocks on the unmapped lists are not free memory
 * to the rest of the machine (the page allocator counts them allocated);
 * buddies merge only inside the block taken (the RFC merges unmapped buddies
 * across pageblocks up to order 10); the unmapped block comes from the page
 * allocator's own order-9 choice, not from __rmqueue()'s fallback rules for
 * the unmapped freetype; and one pool per peer instance, where the kernel has
 * one per zone shared by every user.
 *
 * No locking: callers hold machine::lock (the analogue of zone->lock). The
 * steps that take or give frames are passed the machine's page allocator
 * (pa, UA_GUARDED_BY the lock) by the caller, so clang checks the lock at
 * the caller, which holds it as its own machine's.
 */
#pragma once

#include <cstdint>
#include <mutex>

#include "buddy_lists.h"
#include "vm_area.h"

namespace ua::peers {

struct freetype_stats {
	std::uint64_t pageblocks_unmapped = 0; /* pageblocks flipped out of the direct map */
	std::uint64_t pageblocks_mapped_back = 0;
	std::uint64_t atomic_refusals = 0;     /* requests refused for want of a TLB shootdown */
};

template <mapping_backend B>
class freetype_pool {
public:
	static constexpr unsigned pageblock_order = chunk_order;

	explicit freetype_pool(machine<B> &m) : m_(m) {}
	freetype_pool(const freetype_pool &) = delete;
	freetype_pool &operator=(const freetype_pool &) = delete;
	~freetype_pool()
	{
		ua::mutex_guard mg(m_.lock);
		(void)release_locked(m_.pages, scratch_);
		UA_CHECK(lists_.blocks().empty(), "freetype_pool: destroyed with pages handed out");
	}

	/*
	 * __alloc_pages(GFP_KERNEL | __GFP_UNMAPPED, order): a block of 2^order
	 * frames out of the direct map. Errors: too_large (order > 10),
	 * no_memory (atomic with empty lists, or no free block of
	 * max(order, 9) in the page allocator), backend_failure (the flip
	 * failed; undone). Machine lock held.
	 */
	result<pfn_t> alloc_locked(page_allocator &pa, unsigned order, bool atomic, call_counts &cnt)
	{
		using res = result<pfn_t>;
		if (order > max_page_order)
			return res::failure(error::too_large);
		pfn_t pfn = lists_.alloc(order);
		if (pfn != no_hint)
			return {pfn, error::ok};
		if (error e = rmqueue_direct_map_locked(pa, order, atomic, cnt); e != error::ok)
			return res::failure(e);
		pfn = lists_.alloc(order);
		UA_CHECK(pfn != no_hint, "freetype_pool: a flipped block did not serve the request");
		return {pfn, error::ok};
	}

	/* __free_pages() of an unmapped block: back to the unmapped lists. Machine lock held. */
	void free_locked(pfn_t pfn, unsigned order) { lists_.free(pfn, order); }

	/* Zero, map back and give to the page allocator every wholly free taken block; returns pages freed. */
	std::uint64_t release_locked(page_allocator &pa, call_counts &cnt)
	{
		std::uint64_t freed = 0;
		for (auto it = lists_.blocks().begin(); it != lists_.blocks().end();) {
			const auto [pfn, order] = *it++;
			if (!lists_.whole_free(pfn))
				continue;
			const frame_range r{pfn, std::uint64_t{1} << order};
			/* Zeroed before the direct map shows them again (through the mermap in the RFC). */
			if (m_.backend.fill_frames(r.pfn, 0, 0, r.bytes()) != 0)
				continue;
			cnt.dm_changes++;
			if (m_.backend.set_direct_map_default(r) != 0)
				continue;
			lists_.remove_block(pfn);
			UA_CHECK(pa.free_pages(pfn, order) == error::ok, "freetype_pool: giving back a taken block");
			stats_.pageblocks_mapped_back += r.nr_pages >> pageblock_order;
			freed += r.nr_pages;
		}
		return freed;
	}

	/* Frames the pool took from the page allocator, and those of them on its free lists. */
	std::uint64_t pages_taken() const
	{
		std::uint64_t n = 0;
		for (const auto &[pfn, order] : lists_.blocks())
			n += std::uint64_t{1} << order;
		return n;
	}
	std::uint64_t free_pages() const noexcept { return lists_.free_pages(); }
	const buddy_lists &lists() const noexcept { return lists_; }
	const freetype_stats &stats() const noexcept { return stats_; }
	std::size_t metadata_bytes() const noexcept { return lists_.metadata_bytes(); }

private:
	/* __rmqueue_direct_map(): whole pageblocks of the mapped side, out of the direct map. */
	error rmqueue_direct_map_locked(page_allocator &pa, unsigned order, bool atomic, call_counts &cnt)
	{
		if (atomic) {
			stats_.atomic_refusals++;
			return error::no_memory;
		}
		const unsigned alloc_order = order > pageblock_order ? order : pageblock_order;
		auto r = alloc_frames(pa, alloc_order);
		if (!r)
			return r.err;
		const frame_range blk{r.value, std::uint64_t{1} << alloc_order};
		cnt.dm_changes++;
		if (m_.backend.set_direct_map_invalid(blk) != 0) {
			UA_CHECK(pa.free_pages(blk.pfn, alloc_order) == error::ok, "freetype_pool: undo of a block");
			return error::backend_failure;
		}
		cnt.flushes++;
		must(m_.backend.flush_tlb(blk), "freetype_pool: flush of a flipped block");
		lists_.add_block(blk.pfn, alloc_order);
		stats_.pageblocks_unmapped += blk.nr_pages >> pageblock_order;
		return error::ok;
	}

	machine<B> &m_;
	buddy_lists lists_;
	freetype_stats stats_;
	call_counts scratch_; /* counts of the release at destruction, which nobody reads */
};

}  // namespace ua::peers
