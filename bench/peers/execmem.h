// SPDX-License-Identifier: MIT
/*
 * peers/execmem.h - the execmem ROX cache (mm/execmem.c, 6.13+).
 *
 *   - free and busy ranges in two maple trees (free_areas, busy_areas) under
 *     one mutex; ordered maps here. Sizes are whole pages (4 KiB
 *     granularity: module sections and BPF packs are page-aligned);
 *   - __execmem_cache_alloc(): walk free_areas in address order
 *     (mas_for_each) and take the first range that fits: address-ordered
 *     first fit; the request takes the range's low end, the rest stays free;
 *   - execmem_cache_populate() on a miss: execmem_vmalloc() of
 *     round_up(size, PMD_SIZE) with VM_ALLOW_HUGE_VMAP (2 MiB pages), filled
 *     with trapping instructions (execmem_fill_trapping_insns()), removed
 *     from the direct map (6.13: execmem_set_direct_map_valid(vm, false); 6.16+:
 *     set_memory_rox(), which leaves the direct map read-only - the
 *     dm_action config), mapped ROX, one flush; then the allocation retries.
 *     When no 2 MiB block is free, 6.16+ retries with the request's own size;
 *   - execmem_cache_free(): the range is filled with trapping instructions
 *     (text_poke_set()) and returned to free_areas by execmem_cache_add(),
 *     which merges it with the free neighbours just below and above;
 *   - execmem_cache_clean(), run from a workqueue after a free: each free
 *     range that is PMD-aligned and a multiple of PMD_SIZE goes back (direct
 *     map valid again, vfree()). No shrinker, no spare chunk.
 *
 * Modelling choices (docs/peers.md): clean runs synchronously after each
 * free. A chunk is one contiguous block of frames mapped at one alias (the
 * backend maps contiguous frames only), so a request above 2 MiB takes a
 * block of the next power-of-two order. Merging never crosses separately
 * obtained chunks: in the kernel each vmalloc area is followed by a guard
 * page, so two areas are never adjacent; alias addresses here can be. A
 * chunk is released when its whole range is free and it is a multiple of
 * 2 MiB, which is what clean's test amounts to for a single area.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <map>
#include <mutex>

#include "peer.h"

namespace ua::peers {

struct execmem_config {
	dm_action action = dm_action::invalid; /* invalid: 6.13; ro: 6.16+ (set_memory_rox) */
};

template <mapping_backend B>
class execmem_peer {
public:
	static constexpr const char *name = "execmem";

	explicit execmem_peer(machine<B> &m, execmem_config cfg = {}) : m_(m), cfg_(cfg) {}
	execmem_peer(const execmem_peer &) = delete;
	execmem_peer &operator=(const execmem_peer &) = delete;
	~execmem_peer()
	{
		std::lock_guard<std::mutex> g(lock_);
		busy_.clear();
		while (!chunks_.empty())
			must(int(release_chunk(chunks_.begin())), "execmem: release at destruction");
	}

	result<std::uintptr_t> alloc(std::size_t size, std::size_t align)
	{
		using res = result<std::uintptr_t>;
		if (error e = check_request(size, align, page_size); e != error::ok)
			return res::failure(e);
		if (pages_of(size) > m_.nr_pages())
			return res::failure(error::too_large);
		const std::size_t bytes = align_up(size, page_size);
		std::lock_guard<std::mutex> g(lock_);
		std::uintptr_t addr = cache_alloc(bytes);
		if (!addr) {
			if (error e = populate(bytes); e != error::ok)
				return res::failure(e);
			addr = cache_alloc(bytes);
			UA_CHECK(addr != 0, "execmem: a populated chunk did not fit the request");
		}
		requested_[addr] = size;
		requested_total_ += size;
		live_bytes_ += bytes;
		return {addr, error::ok};
	}

	error free(std::uintptr_t p)
	{
		std::lock_guard<std::mutex> g(lock_);
		auto it = busy_.find(p);
		if (it == busy_.end())
			return classify(p);
		const std::size_t bytes = it->second;
		auto ch = chunk_of(p);
		{
			std::lock_guard<std::mutex> mg(m_.lock);
			const pfn_t pfn = ch->second.frames.pfn + ((p - ch->first) >> page_shift);
			if (m_.backend.fill_frames(pfn, 0, trap_byte, bytes) != 0)
				return error::backend_failure;
		}
		busy_.erase(it);
		live_bytes_ -= bytes;
		requested_total_ -= requested_[p];
		requested_.erase(p);
		const auto merged = cache_add(p, bytes);
		clean(merged, ch);
		return error::ok;
	}

	/* No shrinker: the clean pass is all there is, and it ran after each free. */
	void drain()
	{
		std::lock_guard<std::mutex> g(lock_);
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
		s.live_count = busy_.size();
		s.live_bytes = live_bytes_;
		s.requested_bytes = requested_total_;
		s.pages_held = census_.pages();
		s.chunks = census_.chunks();
		s.metadata_bytes = census_.metadata_bytes() + (busy_.size() + free_.size()) * map_node_bytes<std::uintptr_t, std::size_t> +
				   chunks_.size() * map_node_bytes<std::uintptr_t, chunk>;
		s.dm_changes = dm_changes_;
		s.flushes = flushes_;
		return s;
	}

	/* The free ranges, address-ordered (tests). */
	std::map<std::uintptr_t, std::size_t> free_ranges() const
	{
		std::lock_guard<std::mutex> g(lock_);
		return free_;
	}

private:
	struct chunk {
		frame_range frames;
		unsigned order;
	};
	using chunk_iter = typename std::map<std::uintptr_t, chunk>::iterator;
	using range_iter = std::map<std::uintptr_t, std::size_t>::iterator;

	chunk_iter chunk_of(std::uintptr_t p)
	{
		auto it = chunks_.upper_bound(p);
		UA_CHECK(it != chunks_.begin(), "execmem: address outside every chunk");
		return --it;
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
			busy_.emplace(addr, bytes);
			return addr;
		}
		return 0;
	}

	/* execmem_cache_add(): insert [p, p + bytes), merged with free neighbours of the same chunk. */
	range_iter cache_add(std::uintptr_t p, std::size_t bytes)
	{
		const auto ch = chunk_of(p);
		const std::uintptr_t lo_chunk = ch->first, hi_chunk = ch->first + ch->second.frames.bytes();
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
		const std::size_t chunk_bytes = ch->second.frames.bytes();
		if (fr->first != ch->first || fr->second != chunk_bytes || chunk_bytes % chunk_size != 0)
			return;
		(void)release_chunk(ch); /* on failure the chunk stays cached, whole and free */
	}

	error release_chunk(chunk_iter ch)
	{
		const frame_range r = ch->second.frames;
		{
			std::lock_guard<std::mutex> mg(m_.lock);
			dm_changes_++;
			if (m_.backend.set_direct_map_default(r) != 0)
				return error::backend_failure;
			flushes_++;
			must(m_.backend.flush_tlb(r), "execmem: flush of a chunk it holds");
			must(m_.backend.unmap_alias(ch->first, r.bytes()), "execmem: unmap of a chunk it mapped");
			UA_CHECK(m_.pages.free_pages(r.pfn, ch->second.order) == error::ok, "execmem: freeing a chunk");
		}
		census_.remove(r);
		free_.erase(ch->first);
		chunks_.erase(ch);
		return error::ok;
	}

	/* execmem_cache_populate(): a chunk for at least `bytes`, trap-filled, out of the direct map, mapped ROX. */
	error populate(std::size_t bytes)
	{
		std::lock_guard<std::mutex> mg(m_.lock);
		unsigned order = order_of(pages_of(align_up(bytes, chunk_size)));
		auto r = m_.pages.alloc_pages(order, gfp_normal_only);
		if (!r) {
			/* 6.16+: no 2 MiB pages, so a chunk of the request's own size. */
			order = order_of(pages_of(bytes));
			r = m_.pages.alloc_pages(order, gfp_normal_only);
			if (!r)
				return error::no_memory;
		}
		const frame_range fr{r.value, std::uint64_t{1} << order};
		auto undo_frames = [&] {
			UA_CHECK(m_.pages.free_pages(fr.pfn, order) == error::ok, "execmem: freeing a new chunk");
			return error::backend_failure;
		};
		if (m_.backend.fill_frames(fr.pfn, 0, trap_byte, fr.bytes()) != 0)
			return undo_frames();
		std::uintptr_t addr = 0;
		if (m_.backend.map_alias(fr, prot::rx, &addr) != 0)
			return undo_frames();
		dm_changes_++;
		if (apply_dm(m_.backend, fr, cfg_.action) != 0) {
			must(m_.backend.unmap_alias(addr, fr.bytes()), "execmem: unmap during rollback");
			return undo_frames();
		}
		flushes_++;
		must(m_.backend.flush_tlb(fr), "execmem: flush of a new chunk");
		census_.add(fr);
		chunks_.emplace(addr, chunk{fr, order});
		cache_add(addr, fr.bytes());
		return error::ok;
	}

	error classify(std::uintptr_t p)
	{
		auto in = [p](const std::map<std::uintptr_t, std::size_t> &m) {
			auto it = m.upper_bound(p);
			if (it == m.begin())
				return false;
			--it;
			return p - it->first < it->second;
		};
		if (in(busy_))
			return error::interior_pointer;
		if (in(free_))
			return error::not_live;
		return error::foreign_pointer;
	}

	machine<B> &m_;
	const execmem_config cfg_;
	mutable std::mutex lock_; /* execmem_cache.mutex; taken before machine::lock */
	std::map<std::uintptr_t, std::size_t> free_; /* free_areas: start -> bytes */
	std::map<std::uintptr_t, std::size_t> busy_; /* busy_areas: start -> bytes */
	std::map<std::uintptr_t, chunk> chunks_;     /* obtained chunks by alias address */
	std::map<std::uintptr_t, std::size_t> requested_;
	frame_census census_;
	std::uint64_t live_bytes_ = 0, requested_total_ = 0, dm_changes_ = 0, flushes_ = 0;
};

static_assert(peer_allocator<execmem_peer<sim_direct_map>>);

}  // namespace ua::peers
