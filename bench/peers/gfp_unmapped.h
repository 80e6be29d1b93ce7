// SPDX-License-Identifier: MIT
/*
 * peers/gfp_unmapped.h - the __GFP_UNMAPPED cache of Mike Rapoport's RFC
 * (20230308094106.227365-1-rppt@kernel.org, March 2023; mm/unmapped-alloc.c).
 *
 * A buddy cache beside the page allocator (buddy_lists.h: LIFO lists per
 * order, __rmqueue_smallest() + expand(), __free_one_page() merging):
 *   - unmapped_pages_alloc(gfp, order): the cache first; on a miss
 *     alloc_pages(gfp | __GFP_ZERO, cache_order) for cache_order = PMD_ORDER
 *     (= pageblock_order: the cache is refilled by pageblocks) down to the
 *     request's order, the new block cached (set_pageblock_unmapped()), and
 *     the request served from it; an order above PMD_ORDER never refills and
 *     fails;
 *   - pages leave the direct map one by one as they are handed out
 *     (set_direct_map_invalid_noflush() per page, then one
 *     flush_tlb_kernel_range()), not the whole block up front;
 *   - freed pages go back to the cache (free_pages_prepare() sees the
 *     pageblock flag and calls unmapped_pages_free());
 *   - a shrinker (patch 3, 20230308094106.227365-4): count_objects() is the
 *     cached free pages; scan_objects() walks the lists from order 0 up, maps
 *     each page back (set_direct_map_default_noflush(), no flush) and frees
 *     it (__free_unmapped_page()); drain() runs a full scan.
 * Users (config.use):
 *   module_alloc  patch 4 (20230308094106.227365-5): x86 module_alloc()
 *                 passes GFP_KERNEL | __GFP_UNMAPPED to vmalloc, and
 *                 vm_area_alloc_pages() skips the bulk allocator for it: an
 *                 n-page request is n order-0 unmapped_pages_alloc() calls
 *                 mapped at one alias; the text is made ROX with
 *                 set_memory_rox(), whose alias step finds the frames not
 *                 present (set_memory.h); vfree() with VM_FLUSH_RESET_PERMS
 *                 (x86 module_alloc() sets it) runs vm_reset_perms(), which
 *                 maps the pages back before they return to the cache;
 *   pages         alloc_pages(GFP_KERNEL | __GFP_UNMAPPED, get_order(n)): one
 *                 block per request, mapped read-write, freed unmapped.
 *
 * Differences, each forced by the model or chosen and said in docs/peers.md:
 *   - the RFC's code unmaps only the pages of the request that triggered a
 *     refill and hands later cache hits out as they are (still mapped, or
 *     mapped again by vm_reset_perms()), which contradicts the flag's
 *     contract; we unmap every handed-out page that is still mapped;
 *   - buddies merge only inside the block the cache took (the RFC merges up
 *     to MAX_ORDER - 1), and the shrinker gives back whole taken blocks only:
 *     the page allocator frees a block with the order it was taken with. A
 *     smaller free block is mapped back but stays cached;
 *   - __GFP_ZERO zeroing of the refill block is not counted.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <list>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include "buddy_lists.h"
#include "set_memory.h"

namespace ua::peers {

enum class gfp_unmapped_use { module_alloc, pages };

struct gfp_unmapped_config {
	gfp_unmapped_use use = gfp_unmapped_use::module_alloc;
};

template <mapping_backend B>
class gfp_unmapped_peer {
public:
	static constexpr const char *name = "gfp-unmapped";
	static constexpr bool proposal = true; /* never merged: the same at every kernel */
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
		const std::uint64_t n = pages_of(size);
		if (n > m_.nr_pages())
			return res::failure(error::too_large);
		const bool vm = cfg_.use == gfp_unmapped_use::module_alloc;
		const unsigned order = vm ? 0 : order_of(n);
		if (order > cache_order)
			return res::failure(error::too_large);
		std::lock_guard<std::mutex> g(lock_);
		live_area la;
		la.requested = size;
		{
			ua::mutex_guard mg(m_.lock);
			take_record rec;
			if (error e = take_locked(vm ? n : 1, order, la.area, rec); e != error::ok)
				return res::failure(e);
			if (m_.backend.map_alias_runs(la.area.runs.data(), la.area.runs.size(), prot::rw, &la.area.addr) != 0) {
				untake_locked(la.area, rec);
				return res::failure(error::backend_failure);
			}
			if (vm) {
				/* The module's text: set_memory_rox(); its alias step finds the frames not present. */
				if (error e = set_memory_locked(m_, la.area, 0, n, cpa_op::rox, counts_); e != error::ok) {
					must(m_.backend.unmap_alias(la.area.addr, la.area.bytes()), "gfp-unmapped: unmap");
					untake_locked(la.area, rec);
					return res::failure(e);
				}
			}
		}
		const std::uintptr_t addr = la.area.addr;
		live_pages_ += la.area.nr_pages;
		requested_ += size;
		live_.emplace(addr, std::move(la));
		return {addr, error::ok};
	}

	error free(std::uintptr_t p)
	{
		std::lock_guard<std::mutex> g(lock_);
		auto it = live_.find(p);
		if (it == live_.end()) {
			auto up = live_.upper_bound(p);
			if (up != live_.begin() && p - std::prev(up)->first < std::prev(up)->second.area.bytes())
				return error::interior_pointer;
			return error::foreign_pointer;
		}
		const vm_area &a = it->second.area;
		{
			ua::mutex_guard mg(m_.lock);
			if (cfg_.use == gfp_unmapped_use::module_alloc) {
				/* vfree() with VM_FLUSH_RESET_PERMS: the pages are mapped back, then cached. */
				if (error e = vm_reset_perms_locked(m_, a, counts_); e != error::ok)
					return e;
			}
			must(m_.backend.unmap_alias(a.addr, a.bytes()), "gfp-unmapped: unmap of an alias it mapped");
			give_back_locked(a); /* unmapped_pages_free() */
		}
		live_pages_ -= a.nr_pages;
		requested_ -= it->second.requested;
		live_.erase(it);
		return error::ok;
	}

	/* The shrinker's count_objects(): free pages held in the cache. */
	std::uint64_t shrink_count() const
	{
		std::lock_guard<std::mutex> g(lock_);
		return lists_.free_pages();
	}

	/* The shrinker's scan_objects(): up to nr_to_scan pages, lists from order 0 up. Returns pages freed. */
	std::uint64_t shrink_scan(std::uint64_t nr_to_scan)
	{
		std::lock_guard<std::mutex> g(lock_);
		ua::mutex_guard mg(m_.lock);
		std::uint64_t freed = 0;
		for (unsigned o = 0; o <= buddy_lists::max_order && freed < nr_to_scan; o++) {
			const std::list<pfn_t> heads = lists_.list(o);
			for (pfn_t pfn : heads) {
				if (freed >= nr_to_scan)
					break;
				for (pfn_t q = pfn; q < pfn + (pfn_t{1} << o); q++) {
					if (m_.backend.direct_map_state(q) == dm_state::rw)
						continue;
					counts_.dm_changes++;
					must(set_direct_map_default_page(m_.backend, q), "gfp-unmapped: remap of a cached page");
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
		s.metadata_bytes = census_.metadata_bytes() + lists_.metadata_bytes() +
				   live_.size() * map_node_bytes<std::uintptr_t, live_area>;
		s.dm_changes = counts_.dm_changes;
		s.flushes = counts_.flushes;
		return s;
	}

	/* Free blocks of an order in the cache (the RFC's free_area[order].nr_free). */
	std::uint64_t nr_free(unsigned order) const
	{
		std::lock_guard<std::mutex> g(lock_);
		return lists_.nr_free(order);
	}

private:
	struct live_area {
		vm_area area;
		std::size_t requested = 0;
	};

	/* What take_locked() did beyond taking blocks off the lists, so that it can be undone. */
	struct take_record {
		std::vector<pfn_t> refills;  /* blocks this call took from the page allocator */
		std::vector<pfn_t> unmapped; /* pages this call removed from the direct map */
	};

	/*
	 * count blocks of 2^order from the cache (refilled as needed), every
	 * page still mapped unmapped, one flush when any was. All or nothing.
	 * Machine lock held.
	 */
	error take_locked(std::uint64_t count, unsigned order, vm_area &out, take_record &rec) UA_REQUIRES(m_.lock)
	{
		vm_area a;
		a.page_order = order;
		const std::uint64_t step = std::uint64_t{1} << order;
		for (std::uint64_t i = 0; i < count; i++) {
			pfn_t pfn = lists_.alloc(order);
			if (pfn == no_hint) {
				const pfn_t r = refill_locked(order);
				if (r != no_hint) {
					rec.refills.push_back(r);
					pfn = lists_.alloc(order);
				}
			}
			if (pfn == no_hint) {
				untake_locked(a, rec);
				return error::no_memory;
			}
			if (!a.runs.empty() && a.runs.back().end() == pfn)
				a.runs.back().nr_pages += step;
			else
				a.runs.push_back({pfn, step});
			a.nr_pages += step;
		}
		for (const frame_range &r : a.runs) {
			for (pfn_t p = r.pfn; p < r.end(); p++) {
				if (m_.backend.direct_map_state(p) != dm_state::rw)
					continue;
				counts_.dm_changes++;
				if (m_.backend.set_direct_map_invalid({p, 1}) != 0) {
					untake_locked(a, rec);
					return error::backend_failure;
				}
				rec.unmapped.push_back(p);
			}
		}
		if (!rec.unmapped.empty()) {
			counts_.flushes++;
			must(m_.backend.flush_tlb(a.hull()), "gfp-unmapped: flush of frames it holds");
		}
		out = std::move(a);
		return error::ok;
	}

	/* Undo of take_locked(): pages mapped again, blocks back to the cache, this call's refills released. */
	void untake_locked(const vm_area &a, const take_record &rec) UA_REQUIRES(m_.lock)
	{
		for (std::size_t i = rec.unmapped.size(); i-- > 0;) {
			counts_.dm_changes++;
			must(set_direct_map_default_page(m_.backend, rec.unmapped[i]), "gfp-unmapped: remap during rollback");
		}
		give_back_locked(a);
		for (pfn_t r : rec.refills)
			UA_CHECK(release_if_whole_locked(r), "gfp-unmapped: a refill of this call is not whole again");
	}

	/* The area's blocks back to the cache (unmapped_pages_free()). Machine lock held. */
	void give_back_locked(const vm_area &a) UA_REQUIRES(m_.lock)
	{
		const std::uint64_t step = std::uint64_t{1} << a.page_order;
		for (const frame_range &r : a.runs)
			for (pfn_t p = r.pfn; p < r.end(); p += step)
				lists_.free(p, a.page_order);
	}

	/* The refill loop of unmapped_pages_alloc(): PMD order first, then smaller, down to the request's. */
	pfn_t refill_locked(unsigned order) UA_REQUIRES(m_.lock)
	{
		for (unsigned o = cache_order + 1; o-- > order;) {
			auto r = alloc_frames(m_.pages, o);
			if (!r)
				continue;
			lists_.add_block(r.value, o);
			census_.add({r.value, std::uint64_t{1} << o});
			return r.value;
		}
		return no_hint;
	}

	/* Give a wholly free taken block back to the page allocator (mapped). Machine lock held. */
	bool release_if_whole_locked(pfn_t pfn) UA_REQUIRES(m_.lock)
	{
		if (!lists_.whole_free(pfn))
			return false;
		const unsigned order = lists_.blocks().at(pfn);
		const frame_range r{pfn, std::uint64_t{1} << order};
		for (pfn_t p = r.pfn; p < r.end(); p++) {
			if (m_.backend.direct_map_state(p) == dm_state::rw)
				continue;
			counts_.dm_changes++;
			must(set_direct_map_default_page(m_.backend, p), "gfp-unmapped: remap before release");
		}
		lists_.remove_block(pfn);
		UA_CHECK(m_.pages.free_pages(pfn, order) == error::ok, "gfp-unmapped: release of a taken block");
		census_.remove(r);
		return true;
	}

	machine<B> &m_;
	const gfp_unmapped_config cfg_;
	mutable std::mutex lock_; /* the cache's lock (the RFC's free_area->lock); before machine::lock */
	buddy_lists lists_;
	std::map<std::uintptr_t, live_area> live_;
	frame_census census_;
	call_counts counts_;
	std::uint64_t live_pages_ = 0, requested_ = 0;
};

static_assert(peer_allocator<gfp_unmapped_peer<sim_direct_map>>);

}  // namespace ua::peers
