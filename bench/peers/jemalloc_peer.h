// SPDX-License-Identifier: MIT
/*
 * peers/jemalloc_peer.h - jemalloc, the general-purpose baseline, over the
 * machine's page allocator and mapping backend.
 *
 * A jemalloc arena (jemalloc_arena.h: experimental.arenas_create_ext with
 * metadata_use_hooks = false, split/merge hooks, MALLOCX_TCACHE_NONE on every
 * call) whose extent hooks take memory from this peer's chunk source:
 *   - a hook request of `bytes` (a multiple of 2 MiB) takes bytes / 2 MiB
 *     order-9 blocks (alloc_frames(): never a block above the page
 *     allocator's order limit), wherever they are;
 *   - each block leaves the direct map with one call, one flush for them
 *     all, and they are mapped one after the other at one alias
 *     (map_alias_runs()) with config.alias_prot (rw by default; none proves
 *     jemalloc never touches hook memory itself);
 *   - memory goes back when jemalloc destroys the arena. jemalloc keeps
 *     extents it no longer uses (dalloc opts out, as opt.retain does), so
 *     drain() can give memory back only when nothing is live: it destroys the
 *     arena and creates a new one; otherwise it purges (arena.<i>.purge),
 *     which frees no frames.
 *
 * The hooks run only inside this peer's calls (no background threads), with
 * the peer's lock held: lock order peer lock, jemalloc's arena locks, then
 * machine::lock. Bad frees are caught by the peer's own table before they
 * reach dallocx(), which would not survive them.
 *
 * jemalloc is linked only into benchmark and peer-test binaries; Debian's
 * build has no symbol prefix, so there it is also the process's malloc
 * (jemalloc_arena::replaces_note).
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <map>
#include <mutex>
#include <vector>

#include "jemalloc_arena.h"
#include "peer.h"

namespace ua::peers {

struct jemalloc_config {
	dm_action action = dm_action::invalid;
	prot alias_prot = prot::rw;
};

template <mapping_backend B>
class jemalloc_peer {
	struct source {
		jemalloc_peer *self;
		void *get(std::size_t bytes) { return self->chunk_get(bytes); }
		void put(void *addr, std::size_t bytes) { self->chunk_put(addr, bytes); }
	};

public:
	static constexpr const char *name = "jemalloc";
	/* Not a kernel design: the same at every kernel release (release.h). */
	static constexpr bool baseline = true;
	static constexpr bool proposal = false;
	static constexpr const char *replaces_note = jemalloc_arena<source>::replaces_note;

	explicit jemalloc_peer(machine<B> &m, jemalloc_config cfg = {}) : m_(m), cfg_(cfg), src_{this}, arena_(src_) {}
	jemalloc_peer(const jemalloc_peer &) = delete;
	jemalloc_peer &operator=(const jemalloc_peer &) = delete;

	bool ok() const noexcept { return arena_.ok(); }

	result<std::uintptr_t> alloc(std::size_t size, std::size_t align)
	{
		using res = result<std::uintptr_t>;
		if (error e = check_request(size, align, chunk_size); e != error::ok)
			return res::failure(e);
		if (pages_of(size) > m_.nr_pages())
			return res::failure(error::too_large);
		std::lock_guard<std::mutex> g(lock_);
		if (!arena_.ok())
			return res::failure(error::not_supported);
		last_source_error_ = error::no_memory;
		void *p = arena_.alloc(size, align);
		if (!p)
			return res::failure(last_source_error_);
		const auto a = reinterpret_cast<std::uintptr_t>(p);
		const std::size_t usable = sallocx(p, 0);
		live_.emplace(a, live_rec{size, usable});
		live_bytes_ += usable;
		requested_ += size;
		return {a, error::ok};
	}

	error free(std::uintptr_t p)
	{
		std::lock_guard<std::mutex> g(lock_);
		auto it = live_.find(p);
		if (it == live_.end()) {
			auto up = live_.upper_bound(p);
			if (up != live_.begin() && p - std::prev(up)->first < std::prev(up)->second.usable)
				return error::interior_pointer;
			return error::foreign_pointer;
		}
		arena_.free(reinterpret_cast<void *>(p));
		live_bytes_ -= it->second.usable;
		requested_ -= it->second.requested;
		live_.erase(it);
		return error::ok;
	}

	void drain()
	{
		std::lock_guard<std::mutex> g(lock_);
		if (live_.empty())
			(void)arena_.reset();
		else
			arena_.purge();
	}

	peer_stats stats() const
	{
		std::lock_guard<std::mutex> g(lock_);
		peer_stats s;
		s.live_count = live_.size();
		s.live_bytes = live_bytes_;
		s.requested_bytes = requested_;
		s.pages_held = census_.pages();
		s.chunks = census_.chunks();
		s.metadata_bytes = arena_.metadata_bytes();
		s.dm_changes = dm_changes_;
		s.flushes = flushes_;
		return s;
	}

	const jemalloc_arena<source> &arena() const noexcept { return arena_; }
	/* The order-9 blocks behind each hook region, by alias address (tests look at their direct-map state). */
	std::map<std::uintptr_t, std::vector<frame_range>> hook_regions() const
	{
		std::lock_guard<std::mutex> g(lock_);
		std::map<std::uintptr_t, std::vector<frame_range>> out;
		for (const auto &[a, r] : regions_)
			out.emplace(a, r.blocks);
		return out;
	}

private:
	struct live_rec {
		std::size_t requested;
		std::size_t usable;
	};
	struct region {
		std::vector<frame_range> blocks; /* order-9 blocks, in alias order */
		std::size_t bytes = 0;
	};

	/*
	 * Extent hook alloc: bytes / 2 MiB order-9 blocks (never a larger block:
	 * the page allocator's limit is order 10, and a kernel would vmap such
	 * memory from pages anyway), each out of the direct map with one call,
	 * one flush, all mapped at one alias. Peer lock held.
	 */
	void *chunk_get(std::size_t bytes)
	{
		const std::uint64_t nblocks = bytes / chunk_size;
		ua::mutex_guard mg(m_.lock);
		region rg;
		rg.bytes = bytes;
		std::uint64_t changed = 0;
		auto undo = [&](error e) UA_REQUIRES(m_.lock) {
			for (std::size_t i = 0; i < rg.blocks.size(); i++) {
				if (i < changed) {
					dm_changes_++;
					must(m_.backend.set_direct_map_default(rg.blocks[i]), "jemalloc: restore during rollback");
				}
				UA_CHECK(m_.pages.free_pages(rg.blocks[i].pfn, chunk_order) == error::ok, "jemalloc: freeing a new block");
			}
			last_source_error_ = e;
			return nullptr;
		};
		for (std::uint64_t i = 0; i < nblocks; i++) {
			auto r = alloc_frames(m_.pages, chunk_order);
			if (!r)
				return undo(error::no_memory);
			rg.blocks.push_back({r.value, pages_per_chunk});
		}
		for (const frame_range &b : rg.blocks) {
			dm_changes_++;
			if (apply_dm(m_.backend, b, cfg_.action) != 0)
				return undo(error::backend_failure);
			changed++;
		}
		flushes_++;
		must(m_.backend.flush_tlb(hull(rg.blocks)), "jemalloc: flush of a new chunk");
		std::uintptr_t addr = 0;
		if (m_.backend.map_alias_runs(rg.blocks.data(), rg.blocks.size(), cfg_.alias_prot, &addr) != 0)
			return undo(error::backend_failure);
		for (const frame_range &b : rg.blocks)
			census_.add(b);
		regions_.emplace(addr, std::move(rg));
		return reinterpret_cast<void *>(addr);
	}

	/* Extent hook release (arena destroyed): exactly what chunk_get() returned. */
	void chunk_put(void *p, std::size_t bytes)
	{
		auto it = regions_.find(reinterpret_cast<std::uintptr_t>(p));
		UA_CHECK(it != regions_.end() && it->second.bytes == bytes, "jemalloc: releasing a region it never got");
		const region &rg = it->second;
		{
			ua::mutex_guard mg(m_.lock);
			must(m_.backend.unmap_alias(it->first, bytes), "jemalloc: unmap of a chunk it mapped");
			for (const frame_range &b : rg.blocks) {
				dm_changes_++;
				must(m_.backend.set_direct_map_default(b), "jemalloc: restore of a chunk it holds");
			}
			flushes_++;
			must(m_.backend.flush_tlb(hull(rg.blocks)), "jemalloc: flush of a chunk it holds");
			for (const frame_range &b : rg.blocks)
				UA_CHECK(m_.pages.free_pages(b.pfn, chunk_order) == error::ok, "jemalloc: freeing a chunk");
		}
		for (const frame_range &b : rg.blocks)
			census_.remove(b);
		regions_.erase(it);
	}

	static frame_range hull(const std::vector<frame_range> &blocks)
	{
		pfn_t lo = blocks.front().pfn, hi = blocks.front().end();
		for (const frame_range &b : blocks) {
			lo = b.pfn < lo ? b.pfn : lo;
			hi = b.end() > hi ? b.end() : hi;
		}
		return {lo, hi - lo};
	}

	machine<B> &m_;
	const jemalloc_config cfg_;
	mutable std::mutex lock_; /* the peer's lock; before jemalloc's and machine::lock */
	std::map<std::uintptr_t, region> regions_;
	std::map<std::uintptr_t, live_rec> live_;
	frame_census census_;
	std::uint64_t live_bytes_ = 0, requested_ = 0, dm_changes_ = 0, flushes_ = 0;
	error last_source_error_ = error::no_memory;
	source src_;
	jemalloc_arena<source> arena_; /* last: destroyed first, while the rest still stands */
};

static_assert(peer_allocator<jemalloc_peer<sim_direct_map>>);

}  // namespace ua::peers
