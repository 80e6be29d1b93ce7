// SPDX-License-Identifier: MIT
/*
 * peers/gfp_unmapped.h - the __GFP_UNMAPPED cache (Mike Rapoport's RFC,
 * March 2023, mm/unmapped-alloc.c).
 *
 * A buddy cache beside the page allocator, with its own free lists per order
 * (struct unmapped_free_area free_area[]):
 *   - unmapped_pages_alloc(): __rmqueue_smallest() over the cache's lists
 *     (smallest order first, the head of the list: list_add() pushes at the
 *     head), expand() splitting the rest back into the lists; on a miss the
 *     cache is refilled with alloc_pages(PMD_ORDER), falling back to smaller
 *     orders down to the request's when no 2 MiB block is free, and the
 *     request is served from the new block;
 *   - a request of n pages takes an order-ceil(log2 n) block, as
 *     alloc_pages() would; orders above PMD_ORDER fail (the refill loop
 *     never runs);
 *   - pages leave the direct map one by one as they are handed out
 *     (set_direct_map_invalid_noflush() per page, then one
 *     flush_tlb_kernel_range()), not the whole block up front;
 *   - unmapped_pages_free() returns the block to the cache (__free_one_page()
 *     merging with free buddies); the pages stay unmapped;
 *   - a shrinker: count_objects() is the cached free pages; scan_objects()
 *     walks the lists from order 0 up, maps each page back
 *     (set_direct_map_default_noflush(), no flush) and frees the block to the
 *     page allocator. drain() runs a full scan.
 *
 * Differences, each forced by the model and documented in docs/peers.md:
 *   - the RFC's code unmaps only the pages of the request that triggered a
 *     refill; the design (cover letter, LSFMM 2023) unmaps every page handed
 *     out. We unmap each handed-out page that is still mapped.
 *   - buddies merge only inside the block the cache took from the page
 *     allocator (the RFC merges up to MAX_ORDER - 1), and the shrinker gives
 *     back whole taken blocks only: the page allocator frees a block with
 *     the order it was allocated with (no split_page()). A free block
 *     smaller than its taken block is mapped back but stays cached.
 *   - the user mapping is one alias per allocation (the RFC's callers vmap
 *     the pages).
 */
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <list>
#include <map>
#include <mutex>
#include <unordered_map>

#include "peer.h"

namespace ua::peers {

struct gfp_unmapped_config {
	prot alias_prot = prot::rw; /* rw: secretmem-like; rx: module text */
};

template <mapping_backend B>
class gfp_unmapped_peer {
public:
	static constexpr const char *name = "gfp-unmapped";
	static constexpr unsigned cache_order = chunk_order; /* PMD_ORDER */

	explicit gfp_unmapped_peer(machine<B> &m, gfp_unmapped_config cfg = {}) : m_(m), cfg_(cfg) {}
	gfp_unmapped_peer(const gfp_unmapped_peer &) = delete;
	gfp_unmapped_peer &operator=(const gfp_unmapped_peer &) = delete;
	~gfp_unmapped_peer()
	{
		while (!live_.empty())
			must(int(free(live_.begin()->first)), "gfp-unmapped: release at destruction");
		drain();
	}

	result<std::uintptr_t> alloc(std::size_t size, std::size_t align)
	{
		using res = result<std::uintptr_t>;
		if (error e = check_request(size, align, page_size); e != error::ok)
			return res::failure(e);
		const unsigned order = order_of(pages_of(size));
		if (order > cache_order)
			return res::failure(error::too_large);
		std::lock_guard<std::mutex> g(lock_);
		pfn_t refilled = no_hint;
		pfn_t pfn = rmqueue_smallest(order);
		if (pfn == no_hint) {
			refilled = refill(order);
			if (refilled == no_hint)
				return res::failure(error::no_memory);
			pfn = rmqueue_smallest(order);
		}
		const frame_range blk{pfn, std::uint64_t{1} << order};
		std::uintptr_t addr = 0;
		{
			std::lock_guard<std::mutex> mg(m_.lock);
			pfn_t done = blk.pfn;
			bool unmapped = false;
			int rc = 0;
			for (; done < blk.end() && rc == 0; done++) {
				if (m_.backend.direct_map_state(done) != dm_state::rw)
					continue;
				dm_changes_++;
				rc = m_.backend.set_direct_map_invalid({done, 1});
				unmapped |= rc == 0;
				if (rc != 0)
					break;
				unmapped_now_[done - blk.pfn] = true;
			}
			if (rc == 0 && unmapped) {
				flushes_++;
				must(m_.backend.flush_tlb(blk), "gfp-unmapped: flush of frames it holds");
			}
			if (rc == 0)
				rc = m_.backend.map_alias(blk, cfg_.alias_prot, &addr);
			if (rc != 0) {
				/* Unwind: remap what this call unmapped, return the block, drop a new refill. */
				for (pfn_t p = blk.end(); p-- > blk.pfn;) {
					if (p - blk.pfn < unmapped_now_.size() && unmapped_now_[p - blk.pfn]) {
						dm_changes_++;
						must(m_.backend.set_direct_map_default({p, 1}), "gfp-unmapped: remap during rollback");
					}
				}
				unmapped_now_.fill(false);
				free_one_page(blk.pfn, order);
				if (refilled != no_hint)
					release_if_whole_locked(refilled);
				return res::failure(error::backend_failure);
			}
			unmapped_now_.fill(false);
		}
		live_.emplace(addr, live_block{blk.pfn, order, size});
		live_pages_ += blk.nr_pages;
		requested_ += size;
		return {addr, error::ok};
	}

	error free(std::uintptr_t p)
	{
		std::lock_guard<std::mutex> g(lock_);
		auto it = live_.find(p);
		if (it == live_.end()) {
			auto up = live_.upper_bound(p);
			if (up != live_.begin()) {
				--up;
				if (p - up->first < (std::uint64_t{page_size} << up->second.order))
					return error::interior_pointer;
			}
			return error::foreign_pointer;
		}
		const live_block b = it->second;
		{
			std::lock_guard<std::mutex> mg(m_.lock);
			must(m_.backend.unmap_alias(p, page_size << b.order), "gfp-unmapped: unmap of an alias it mapped");
		}
		free_one_page(b.pfn, b.order); /* unmapped_pages_free(): stays unmapped, in the cache */
		live_pages_ -= std::uint64_t{1} << b.order;
		requested_ -= b.requested;
		live_.erase(it);
		return error::ok;
	}

	/* The shrinker's count_objects(): free pages held in the cache. */
	std::uint64_t shrink_count() const
	{
		std::lock_guard<std::mutex> g(lock_);
		return census_.pages() - live_pages_;
	}

	/* The shrinker's scan_objects(): up to nr_to_scan pages, lists from order 0 up. Returns pages freed. */
	std::uint64_t shrink_scan(std::uint64_t nr_to_scan)
	{
		std::lock_guard<std::mutex> g(lock_);
		std::lock_guard<std::mutex> mg(m_.lock);
		std::uint64_t freed = 0;
		for (unsigned o = 0; o <= cache_order && freed < nr_to_scan; o++) {
			for (auto it = free_[o].begin(); it != free_[o].end() && freed < nr_to_scan;) {
				const pfn_t pfn = *it++;
				for (pfn_t p = pfn; p < pfn + (pfn_t{1} << o); p++) {
					if (m_.backend.direct_map_state(p) == dm_state::rw)
						continue;
					dm_changes_++;
					must(m_.backend.set_direct_map_default({p, 1}), "gfp-unmapped: remap of a cached page");
				}
				if (release_if_whole_locked(pfn))
					freed += std::uint64_t{1} << o;
			}
		}
		return freed;
	}

	void drain() { shrink_scan(~std::uint64_t{0}); }

	peer_stats stats() const
	{
		std::lock_guard<std::mutex> g(lock_);
		peer_stats s;
		s.live_count = live_.size();
		s.live_bytes = live_pages_ << page_shift;
		s.requested_bytes = requested_;
		s.pages_held = census_.pages();
		s.chunks = census_.chunks();
		s.metadata_bytes = census_.metadata_bytes() + live_.size() * map_node_bytes<std::uintptr_t, live_block> +
				   blocks_.size() * map_node_bytes<pfn_t, unsigned> +
				   free_at_.size() * (map_node_bytes<pfn_t, free_ref> + 3 * sizeof(void *));
		s.dm_changes = dm_changes_;
		s.flushes = flushes_;
		return s;
	}

	/* Free blocks of an order in the cache (the RFC's free_area[order].nr_free). */
	std::uint64_t nr_free(unsigned order) const
	{
		std::lock_guard<std::mutex> g(lock_);
		return order <= cache_order ? free_[order].size() : 0;
	}

private:
	struct live_block {
		pfn_t pfn;
		unsigned order;
		std::size_t requested;
	};
	struct free_ref {
		unsigned order;
		std::list<pfn_t>::iterator it;
	};

	/* The block the cache took that contains pfn: (start, order). */
	std::pair<pfn_t, unsigned> taken_block(pfn_t pfn) const
	{
		auto it = blocks_.upper_bound(pfn);
		UA_CHECK(it != blocks_.begin(), "gfp-unmapped: frame outside every taken block");
		--it;
		return *it;
	}

	void add_free(pfn_t pfn, unsigned order)
	{
		free_[order].push_front(pfn); /* list_add(): at the head */
		free_at_[pfn] = free_ref{order, free_[order].begin()};
	}
	void del_free(pfn_t pfn)
	{
		auto it = free_at_.find(pfn);
		free_[it->second.order].erase(it->second.it);
		free_at_.erase(it);
	}

	/* __free_one_page(): merge with free buddies, within the taken block. */
	void free_one_page(pfn_t pfn, unsigned order)
	{
		const auto [base, top] = taken_block(pfn);
		(void)base;
		while (order < top) {
			const pfn_t buddy = pfn ^ (pfn_t{1} << order);
			auto it = free_at_.find(buddy);
			if (it == free_at_.end() || it->second.order != order)
				break;
			del_free(buddy);
			pfn &= buddy;
			order++;
		}
		add_free(pfn, order);
	}

	/* __rmqueue_smallest() + expand(); no_hint when the cache has nothing that fits. */
	pfn_t rmqueue_smallest(unsigned order)
	{
		for (unsigned o = order; o <= cache_order; o++) {
			if (free_[o].empty())
				continue;
			const pfn_t pfn = free_[o].front();
			del_free(pfn);
			while (o > order) {
				o--;
				add_free(pfn + (pfn_t{1} << o), o);
			}
			return pfn;
		}
		return no_hint;
	}

	/* The refill loop of unmapped_pages_alloc(): PMD order first, then smaller, down to the request's. */
	pfn_t refill(unsigned order)
	{
		std::lock_guard<std::mutex> mg(m_.lock);
		for (unsigned o = cache_order + 1; o-- > order;) {
			auto r = m_.pages.alloc_pages(o, gfp_normal_only);
			if (!r)
				continue;
			blocks_.emplace(r.value, o);
			census_.add({r.value, std::uint64_t{1} << o});
			add_free(r.value, o);
			return r.value;
		}
		return no_hint;
	}

	/* Give a wholly free taken block back to the page allocator (mapped). Machine lock held. */
	bool release_if_whole_locked(pfn_t pfn)
	{
		auto bit = blocks_.find(pfn);
		auto fit = free_at_.find(pfn);
		if (bit == blocks_.end() || fit == free_at_.end() || fit->second.order != bit->second)
			return false;
		const frame_range r{pfn, std::uint64_t{1} << bit->second};
		for (pfn_t p = r.pfn; p < r.end(); p++) {
			if (m_.backend.direct_map_state(p) == dm_state::rw)
				continue;
			dm_changes_++;
			must(m_.backend.set_direct_map_default({p, 1}), "gfp-unmapped: remap before release");
		}
		del_free(pfn);
		UA_CHECK(m_.pages.free_pages(pfn, bit->second) == error::ok, "gfp-unmapped: release of a taken block");
		census_.remove(r);
		blocks_.erase(bit);
		return true;
	}

	machine<B> &m_;
	const gfp_unmapped_config cfg_;
	mutable std::mutex lock_; /* the cache's lock (the RFC's free_area->lock); before machine::lock */
	std::array<std::list<pfn_t>, cache_order + 1> free_;
	std::unordered_map<pfn_t, free_ref> free_at_;
	std::map<pfn_t, unsigned> blocks_; /* blocks taken from the page allocator */
	std::map<std::uintptr_t, live_block> live_;
	std::array<bool, pages_per_chunk> unmapped_now_{};
	frame_census census_;
	std::uint64_t live_pages_ = 0, requested_ = 0, dm_changes_ = 0, flushes_ = 0;
};

static_assert(peer_allocator<gfp_unmapped_peer<sim_direct_map>>);

}  // namespace ua::peers
