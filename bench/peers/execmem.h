// SPDX-License-Identifier: MIT
/*
 * peers/execmem.h - execmem's ROX cache for module text (mm/execmem.c), by
 * release, on x86 (research/peers_by_release.md has every source).
 *
 * Common to every release that has it:
 *   - free and busy ranges in two maple trees under one mutex (ordered maps
 *     here), whole pages; __execmem_cache_alloc() walks free_areas in address
 *     order (mas_for_each) and takes the low end of the first range that
 *     fits: address-ordered first fit;
 *   - execmem_cache_populate() on a miss: execmem_vmalloc() of
 *     round_up(size, PMD_SIZE) with VM_ALLOW_HUGE_VMAP - order-9 pages,
 *     vmalloc falling back to order-0 pages for the whole area when one
 *     fails (vm_area.h) - filled with INT3, added to free_areas; the request
 *     retries;
 *   - a free returns the range to free_areas (execmem_cache_add() merges it
 *     with the free neighbours below and above) and schedules
 *     execmem_cache_clean(): every free range that is PMD-aligned and a
 *     PMD multiple gets its direct map back (execmem_set_direct_map_valid(vm,
 *     true): set_direct_map_valid_noflush() per vmalloc page, 512 pages at a
 *     time for a huge area) and is vfree()d. No shrinker, no spare.
 * By release:
 *   6.13-rc   5185e7f9f3bd: populate unmaps the area (vunmap_range(), which
 *             flushes), removes it from the direct map
 *             (execmem_set_direct_map_valid(vm, false), per vmalloc page: in
 *             place per 2 MiB for a huge area, page by page after the order-0
 *             fallback) and maps it ROX; modules write through a writable
 *             copy, so allocation changes nothing; a free fills the range
 *             through text_poke_set(). Disabled before v6.13 shipped
 *             (a9bbe3413331): 6.13 and 6.14 have no cache (`releases` lists
 *             6.13 as a point where the peer is absent again).
 *   6.15      925f42645118: populate does set_memory_rox() instead, leaving
 *             the area in the direct map read-only (set_memory.h: in place
 *             per 2 MiB for a huge area); modules call execmem_make_temp_rw()
 *             (set_memory_nx() + set_memory_rw()) on their range before
 *             writing and execmem_restore_rox() after: the RW step reaches
 *             the direct-map alias, splitting the chunk's 2 MiB direct-map
 *             page unless the range covers it whole, and the restore collapses
 *             only the vmalloc range (41d88484c71c); a free still fills
 *             through text_poke_set().
 *   6.17      838955f64ae7/187fd8521dd8/3bd4e0ac61b2: allocation through
 *             execmem_alloc_rw() (execmem_force_rw(), as make_temp_rw); a
 *             free is execmem_force_rw(), memset, execmem_restore_rox(), and
 *             when that fails the busy range is marked pending
 *             (PENDING_FREE_MASK) for execmem_cache_free_slow(), delayed work
 *             that retries (here: at the start of the next call and in
 *             drain()); populate tries the request's own size when
 *             round_up(size, PMD_SIZE) fails. 6.18 is the same.
 * Modelling choices (docs/peers.md): clean runs synchronously after each free
 * (a workqueue in the kernel); the writes between make_temp_rw and
 * restore_rox happen inside alloc() (the range's alias pages are RW+NX for
 * that window, ROX after it); a chunk is released when its whole range is free, and
 * merging never crosses chunks (each vmalloc area has a guard page).
 *
 * Length: about 430 lines, just over the usual 400: one peer and the four
 * releases it models, each rule beside the release that changed it.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <map>
#include <mutex>

#include "set_memory.h"

namespace ua::peers {

struct execmem_config {
	linux_version release = newest_release;
};

template <mapping_backend B>
class execmem_peer {
public:
	static constexpr const char *name = "execmem";
	/* 6.13 is where the cache is gone again (a9bbe3413331): the peer is absent at 6.13 and 6.14. */
	static constexpr linux_version releases[] = {v6_13_rc, v6_13, v6_15, v6_17};
	static constexpr bool proposal = false;

	explicit execmem_peer(machine<B> &m, execmem_config cfg = {})
		: m_(m), cfg_(cfg), at_(release_at(releases, cfg.release))
	{
	}
	execmem_peer(const execmem_peer &) = delete;
	execmem_peer &operator=(const execmem_peer &) = delete;
	~execmem_peer()
	{
		std::lock_guard<std::mutex> g(lock_);
		busy_.clear();
		while (!chunks_.empty())
			must(int(release_chunk(chunks_.begin())), "execmem: release at destruction");
	}

	/* False when the release has no ROX cache on x86: every alloc is not_supported. */
	bool supported() const noexcept { return at_ != linux_version{} && at_ != v6_13; }

	result<std::uintptr_t> alloc(std::size_t size, std::size_t align)
	{
		using res = result<std::uintptr_t>;
		if (!supported())
			return res::failure(error::not_supported);
		if (error e = check_request(size, align, page_size); e != error::ok)
			return res::failure(e);
		if (pages_of(size) > m_.nr_pages())
			return res::failure(error::too_large);
		const std::size_t bytes = align_up(size, page_size);
		std::lock_guard<std::mutex> g(lock_);
		run_pending_frees();
		std::uintptr_t addr = cache_alloc(bytes);
		if (!addr) {
			if (error e = populate(bytes); e != error::ok)
				return res::failure(e);
			addr = cache_alloc(bytes);
			UA_CHECK(addr != 0, "execmem: a populated chunk did not fit the request");
		}
		if (at_ >= v6_15) {
			/* execmem_make_temp_rw() / execmem_force_rw(), the module written, execmem_restore_rox(). */
			ua::mutex_guard mg(m_.lock);
			if (error e = force_rw_then_rox_locked(addr, bytes); e != error::ok) {
				busy_.erase(addr);
				(void)cache_add(addr, bytes);
				return res::failure(e);
			}
		}
		requested_[addr] = size;
		requested_total_ += size;
		live_bytes_ += bytes;
		return {addr, error::ok};
	}

	error free(std::uintptr_t p)
	{
		std::lock_guard<std::mutex> g(lock_);
		run_pending_frees();
		auto it = busy_.find(p);
		if (it == busy_.end() || it->second.pending)
			return it == busy_.end() ? classify(p) : error::not_live;
		live_bytes_ -= it->second.bytes;
		requested_total_ -= requested_[p];
		requested_.erase(p);
		if (error e = cache_free(it); e != error::ok) {
			/* execmem_cache_free(): the range waits for execmem_cache_free_slow(). */
			it->second.pending = true;
			pending_++;
		}
		return error::ok;
	}

	/* The pending frees retried (execmem_cache_free_slow()), then a clean pass. */
	void drain()
	{
		std::lock_guard<std::mutex> g(lock_);
		run_pending_frees();
		for (auto ch = chunks_.begin(); ch != chunks_.end();) {
			auto cur = ch++;
			auto fr = free_.find(cur->first);
			if (fr != free_.end())
				clean(fr, cur);
		}
	}

	peer_stats stats() const
	{
		std::lock_guard<std::mutex> g(lock_);
		peer_stats s;
		s.live_count = busy_.size() - pending_;
		s.live_bytes = live_bytes_;
		s.requested_bytes = requested_total_;
		s.pages_held = census_.pages();
		s.chunks = census_.chunks();
		s.metadata_bytes = census_.metadata_bytes() + (busy_.size() + free_.size()) * map_node_bytes<std::uintptr_t, busy> +
				   chunks_.size() * map_node_bytes<std::uintptr_t, vm_area>;
		s.dm_changes = counts_.dm_changes;
		s.flushes = counts_.flushes;
		return s;
	}

	/* The free ranges, address-ordered (tests). */
	std::map<std::uintptr_t, std::size_t> free_ranges() const
	{
		std::lock_guard<std::mutex> g(lock_);
		return free_;
	}
	/* Frees waiting for execmem_cache_free_slow() (pending_free_cnt). */
	std::size_t pending_frees() const
	{
		std::lock_guard<std::mutex> g(lock_);
		return pending_;
	}

private:
	struct busy {
		std::size_t bytes;
		bool pending = false; /* PENDING_FREE_MASK */
	};
	using chunk_iter = typename std::map<std::uintptr_t, vm_area>::iterator;
	using range_iter = std::map<std::uintptr_t, std::size_t>::iterator;

	chunk_iter chunk_of(std::uintptr_t p)
	{
		auto it = chunks_.upper_bound(p);
		UA_CHECK(it != chunks_.begin(), "execmem: address outside every chunk");
		return --it;
	}
	/* Pages [page, page + n) of the chunk holding addr. */
	std::uint64_t page_in_chunk(chunk_iter ch, std::uintptr_t addr) const { return (addr - ch->first) >> page_shift; }

	/* force_rw (set_memory_nx + set_memory_rw), the writes, restore_rox (set_memory_rox). Machine lock held. */
	error force_rw_then_rox_locked(std::uintptr_t addr, std::size_t bytes) UA_REQUIRES(m_.lock)
	{
		auto ch = chunk_of(addr);
		const std::uint64_t page = page_in_chunk(ch, addr), n = bytes >> page_shift;
		if (error e = set_memory_rw_nx_locked(m_, ch->second, page, n, counts_); e != error::ok)
			return e;
		must(int(set_memory_locked(m_, ch->second, page, n, cpa_op::rox, counts_)), "execmem: restore_rox");
		return error::ok;
	}

	/* execmem_cache_free() / __execmem_cache_free(): fill (6.17: through force_rw/restore_rox), add, clean. */
	error cache_free(typename std::map<std::uintptr_t, busy>::iterator it)
	{
		const std::uintptr_t p = it->first;
		const std::size_t bytes = it->second.bytes;
		auto ch = chunk_of(p);
		{
			ua::mutex_guard mg(m_.lock);
			if (at_ >= v6_17) {
				const std::uint64_t page = page_in_chunk(ch, p), n = bytes >> page_shift;
				if (error e = set_memory_rw_nx_locked(m_, ch->second, page, n, counts_); e != error::ok)
					return e;
				must(vm_fill(m_.backend, ch->second, p - ch->first, trap_byte, bytes), "execmem: memset of the range");
				must(int(set_memory_locked(m_, ch->second, page, n, cpa_op::rox, counts_)),
				     "execmem: restore_rox of pages made rw");
			} else if (vm_fill(m_.backend, ch->second, p - ch->first, trap_byte, bytes) != 0) {
				return error::backend_failure; /* text_poke_set() */
			}
		}
		busy_.erase(it);
		const auto merged = cache_add(p, bytes);
		clean(merged, ch);
		return error::ok;
	}

	/* execmem_cache_free_slow(): retry every pending range. */
	void run_pending_frees()
	{
		if (!pending_)
			return;
		for (auto it = busy_.begin(); it != busy_.end();) {
			auto cur = it++;
			if (!cur->second.pending)
				continue;
			cur->second.pending = false;
			if (cache_free(cur) == error::ok)
				pending_--;
			else
				cur->second.pending = true;
		}
	}

	/* __execmem_cache_alloc(): address-ordered first fit; 0 when nothing fits. */
	std::uintptr_t cache_alloc(std::size_t bytes)
	{
		for (auto it = free_.begin(); it != free_.end(); ++it) {
			if (it->second < bytes)
				continue;
			const std::uintptr_t addr = it->first;
			const std::size_t rest = it->second - bytes;
			free_.erase(it);
			if (rest)
				free_.emplace(addr + bytes, rest);
			busy_.emplace(addr, busy{bytes});
			return addr;
		}
		return 0;
	}

	/* execmem_cache_add(): insert [p, p + bytes), merged with free neighbours of the same chunk. */
	range_iter cache_add(std::uintptr_t p, std::size_t bytes)
	{
		const auto ch = chunk_of(p);
		const std::uintptr_t lo_chunk = ch->first, hi_chunk = ch->first + ch->second.bytes();
		std::uintptr_t lower = p;
		std::size_t len = bytes;
		auto next = free_.lower_bound(p);
		if (next != free_.begin()) {
			auto prev = std::prev(next);
			if (prev->first + prev->second == p && prev->first >= lo_chunk) {
				lower = prev->first;
				len += prev->second;
				free_.erase(prev);
			}
		}
		if (next != free_.end() && next->first == p + bytes && next->first < hi_chunk) {
			len += next->second;
			free_.erase(next);
		}
		return free_.emplace(lower, len).first;
	}

	/* execmem_cache_clean() for one free range: release its chunk when the range is all of it. */
	void clean(range_iter fr, chunk_iter ch)
	{
		const std::size_t chunk_bytes = ch->second.bytes();
		if (fr->first != ch->first || fr->second != chunk_bytes || chunk_bytes % chunk_size != 0)
			return;
		(void)release_chunk(ch); /* on failure the chunk stays cached, whole and free */
	}

	/* execmem_set_direct_map_valid(vm, true) per vmalloc page, then vfree(). */
	error release_chunk(chunk_iter ch)
	{
		const vm_area &a = ch->second;
		{
			ua::mutex_guard mg(m_.lock);
			if (error e = set_valid_locked(a, true); e != error::ok)
				return e;
			must(int(vfree_locked(m_, a, false, counts_)), "execmem: vfree of a chunk");
		}
		for (const frame_range &r : a.runs)
			census_.remove(r);
		free_.erase(ch->first);
		chunks_.erase(ch);
		return error::ok;
	}

	/* execmem_set_direct_map_valid(): per vmalloc page of the area's order, undone on failure. Machine lock held. */
	error set_valid_locked(const vm_area &a, bool valid) UA_REQUIRES(m_.lock)
	{
		const std::uint64_t step = std::uint64_t{1} << a.page_order;
		std::uint64_t done = 0;
		auto apply = [&](frame_range r, bool v) {
			counts_.dm_changes++;
			return v ? m_.backend.set_direct_map_default(r) : m_.backend.set_direct_map_invalid(r);
		};
		for (const frame_range &run : a.runs) {
			for (pfn_t p = run.pfn; p < run.end(); p += step) {
				if (apply({p, step}, valid) != 0) {
					std::uint64_t i = 0;
					for (const frame_range &r2 : a.runs)
						for (pfn_t q = r2.pfn; q < r2.end() && i < done; q += step, i++)
							must(apply({q, step}, !valid), "execmem: undo of execmem_set_direct_map_valid");
					return error::backend_failure;
				}
				done++;
			}
		}
		return error::ok;
	}

	/*
	 * execmem_cache_populate(): an area of round_up(bytes, PMD_SIZE) (6.17:
	 * then of bytes), INT3, out of the direct map (6.13-rc) or set_memory_rox
	 * (6.15+), alias rx, into free_areas.
	 */
	error populate(std::size_t bytes)
	{
		vm_area a;
		{
			ua::mutex_guard mg(m_.lock);
			const vmalloc_opts o{true, prot::rw, trap_byte};
			error e = vmalloc_locked(m_, pages_of(align_up(bytes, chunk_size)), o, a);
			if (e == error::no_memory && at_ >= v6_17)
				e = vmalloc_locked(m_, pages_of(bytes), o, a);
			if (e != error::ok)
				return e;
			auto undo = [&](error err) UA_REQUIRES(m_.lock) {
				must(int(vfree_locked(m_, a, false, counts_)), "execmem: free of a new chunk");
				return err;
			};
			if (at_ == v6_13_rc) {
				/* vunmap_range() flushes the vmalloc range; the direct-map removal after it is _noflush. */
				counts_.flushes++;
				must(m_.backend.flush_tlb(a.hull()), "execmem: vunmap_range() flush");
				if (error err = set_valid_locked(a, false); err != error::ok)
					return undo(err);
				/* vmap_pages_range_noflush(..., PAGE_KERNEL_ROX, PMD_SHIFT) */
				if (m_.backend.protect_alias(a.addr, a.bytes(), prot::rx) != 0) {
					must(int(set_valid_locked(a, true)), "execmem: restore during rollback");
					return undo(error::backend_failure);
				}
			} else if (error err = set_memory_locked(m_, a, 0, a.nr_pages, cpa_op::rox, counts_); err != error::ok) {
				return undo(err);
			}
		}
		for (const frame_range &r : a.runs)
			census_.add(r);
		const std::uintptr_t addr = a.addr;
		const std::size_t len = a.bytes();
		chunks_.emplace(addr, std::move(a));
		cache_add(addr, len);
		return error::ok;
	}

	error classify(std::uintptr_t p)
	{
		auto in = [p](const auto &m, auto len) {
			auto it = m.upper_bound(p);
			if (it == m.begin())
				return false;
			--it;
			return p - it->first < len(it->second);
		};
		if (in(busy_, [](const busy &b) { return b.bytes; }))
			return error::interior_pointer;
		if (in(free_, [](std::size_t n) { return n; }))
			return error::not_live;
		return error::foreign_pointer;
	}

	machine<B> &m_;
	const execmem_config cfg_;
	const linux_version at_;
	mutable std::mutex lock_; /* execmem_cache.mutex; taken before machine::lock */
	std::map<std::uintptr_t, std::size_t> free_; /* free_areas: start -> bytes */
	std::map<std::uintptr_t, busy> busy_;         /* busy_areas: start -> bytes, pending flag */
	std::map<std::uintptr_t, vm_area> chunks_;    /* the vmalloc areas, by alias address */
	std::map<std::uintptr_t, std::size_t> requested_;
	frame_census census_;
	call_counts counts_;
	std::size_t pending_ = 0; /* pending_free_cnt */
	std::uint64_t live_bytes_ = 0, requested_total_ = 0;
};

static_assert(peer_allocator<execmem_peer<sim_direct_map>>);

}  // namespace ua::peers
