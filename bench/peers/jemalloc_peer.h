// SPDX-License-Identifier: MIT
/*
 * peers/jemalloc_peer.h - jemalloc, the general-purpose baseline, over the
 * machine's page allocator and mapping backend.
 *
 * A jemalloc arena (jemalloc_arena.h: experimental.arenas_create_ext with
 * metadata_use_hooks = false, split/merge hooks, MALLOCX_TCACHE_NONE on every
 * call) whose extent hooks take memory from this peer's chunk source:
 *   - a hook request of `bytes` (a multiple of 2 MiB) takes one contiguous
 *     block of the needed order with gfp_normal_only (order 9 for one chunk;
 *     a larger request takes the next power-of-two order, since one alias
 *     maps contiguous frames only);
 *   - the block leaves the direct map with one call and one flush, and its
 *     first `bytes` are mapped at an alias with config.alias_prot (rw by
 *     default; none proves jemalloc never touches hook memory itself);
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
	/* Frames behind the hook region at addr (tests look at their direct-map state). */
	std::map<std::uintptr_t, frame_range> hook_regions() const
	{
		std::lock_guard<std::mutex> g(lock_);
		std::map<std::uintptr_t, frame_range> out;
		for (const auto &[a, r] : regions_)
			out.emplace(a, r.block);
		return out;
	}

private:
	struct live_rec {
		std::size_t requested;
		std::size_t usable;
	};
	struct region {
		frame_range block;
		unsigned order;
		std::size_t bytes;
	};

	/* Extent hook alloc: a block out of the direct map, mapped at an alias. Peer lock held. */
	void *chunk_get(std::size_t bytes)
	{
		const unsigned order = order_of(pages_of(bytes));
		std::lock_guard<std::mutex> mg(m_.lock);
		auto r = m_.pages.alloc_pages(order, gfp_normal_only);
		if (!r)
			return nullptr;
		const frame_range blk{r.value, std::uint64_t{1} << order};
		auto undo = [&] {
			UA_CHECK(m_.pages.free_pages(blk.pfn, order) == error::ok, "jemalloc: freeing a new chunk");
			last_source_error_ = error::backend_failure;
			return nullptr;
		};
		dm_changes_++;
		if (apply_dm(m_.backend, blk, cfg_.action) != 0)
			return undo();
		flushes_++;
		must(m_.backend.flush_tlb(blk), "jemalloc: flush of a new chunk");
		std::uintptr_t addr = 0;
		if (m_.backend.map_alias({blk.pfn, pages_of(bytes)}, cfg_.alias_prot, &addr) != 0) {
			dm_changes_++;
			must(m_.backend.set_direct_map_default(blk), "jemalloc: restore during rollback");
			return undo();
		}
		regions_.emplace(addr, region{blk, order, bytes});
		census_.add(blk);
		return reinterpret_cast<void *>(addr);
	}

	/* Extent hook release (arena destroyed): exactly what chunk_get() returned. */
	void chunk_put(void *p, std::size_t bytes)
	{
		auto it = regions_.find(reinterpret_cast<std::uintptr_t>(p));
		UA_CHECK(it != regions_.end() && it->second.bytes == bytes, "jemalloc: releasing a region it never got");
		const region rg = it->second;
		{
			std::lock_guard<std::mutex> mg(m_.lock);
			must(m_.backend.unmap_alias(it->first, bytes), "jemalloc: unmap of a chunk it mapped");
			dm_changes_++;
			must(m_.backend.set_direct_map_default(rg.block), "jemalloc: restore of a chunk it holds");
			flushes_++;
			must(m_.backend.flush_tlb(rg.block), "jemalloc: flush of a chunk it holds");
			UA_CHECK(m_.pages.free_pages(rg.block.pfn, rg.order) == error::ok, "jemalloc: freeing a chunk");
		}
		census_.remove(rg.block);
		regions_.erase(it);
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
