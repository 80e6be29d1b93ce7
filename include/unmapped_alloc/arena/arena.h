// SPDX-License-Identifier: MIT
/*
 * arena/arena.h - variable-size allocation inside 2 MiB chunks.
 *
 * Design. The arena manages addresses only; it never reads or writes the
 * memory it hands out (that memory may be unmapped from this process, or
 * executable). Its chunks come from its owner through add_chunk() and go back
 * through remove_chunk(); the arena never calls up. An allocation:
 *
 *   1. looks up the best fit in one tree of free extents ordered by
 *      (size, address) across all chunks (ds/extent_tree.h: sizes, each
 *      with its address-ordered bucket, and a size index below 4096 units);
 *   2. among the few extents of that best size, prefers the one whose chunk
 *      is fullest, then the lowest address, so lightly used chunks drain and
 *      can be given back (up to `fullness_window` candidates are compared);
 *   3. carves the request at the requested alignment and puts the leading
 *      and trailing remainders back in the tree, except that a trailing
 *      remainder of one granule goes with the allocation as long as no
 *      one-granule request has come (dlmalloc's minimum chunk, made
 *      adaptive): such a sliver could serve no request seen so far, and on
 *      the BPF mix slivers were half of all free extents. lookup() and
 *      free() then report the larger size, which live_bytes counts;
 *   4. marks the units in the chunk's `used` and `starts` bitmaps.
 *
 * free(ptr) finds the chunk in O(1) (ds/chunk_table.h), checks that ptr is the
 * start of a live allocation, finds its end from the bitmaps, and coalesces
 * with the free extents on both sides, found in O(1): the bitmaps give their
 * start addresses, and the chunk's chain of free extents starting near
 * there (one per 256 units, arena/chunk.h) gives their nodes.
 * Extents never cross a chunk boundary. docs/design.md has the whole picture.
 * When an allocation fails with error::no_space the owner adds a chunk and
 * retries (as execmem_cache_alloc() populates and retries); when free()
 * reports that a chunk became empty, the owner may remove it.
 *
 * Why best fit: allocations of very different sizes (BPF programs of 128 B to
 * 64 KiB) share chunks; best fit leaves the largest extents whole for large
 * requests and is known to keep fragmentation low on such mixes, where the
 * kernel's first fit (bpf_prog_pack, execmem) carves large extents early.
 *
 * Memory. Every free extent is followed by a live allocation or by the end of
 * its chunk, so free extents <= live allocations + chunks. alloc() reserves
 * tree nodes for that bound before it changes anything, so free() never needs
 * memory and cannot fail for lack of it. Node memory comes from a pool in
 * blocks: no malloc per operation.
 *
 * Length: about 580 lines, over the usual 400, because alloc(), free() and
 * the lockless lookup are one protocol over the same records (the bitmaps,
 * the chains, the tree, the seqcount): the fit search (arena_fit.h), the
 * consistency walk (arena_check.h) and the chunk record (chunk.h) are
 * already rooms of their own, and what remains here is the part whose
 * invariants must be read together.
 *
 * Errors (ua::error; nothing changes on any error):
 *   alloc: zero_size, too_large (> chunk size: whole-chunk allocations are the
 *          owner's job), bad_alignment (not a power of two, or > chunk size),
 *          no_space (add a chunk and retry), no_memory (metadata).
 *   free:  foreign_pointer (no chunk of this arena), not_live (double free or
 *          never allocated), interior_pointer. free(0) is a no-op.
 *   add_chunk/remove_chunk: bad_chunk (misaligned, present twice, unknown,
 *          or not empty), no_memory.
 *
 * Locking: none inside. The owner serialises every call (cache/ documents the
 * lock), except lookup_chunk(), owns() and lookup_lockless(), which may run
 * concurrently with the owner's writers inside an RCU read-side critical
 * section. lookup_lockless() is a seqcount reader (arena/chunk.h) over the
 * chunk found through the lock-free chunk table (ds/chunk_table.h); since a
 * reader may still hold a removed chunk's record, remove_chunk() retires the
 * record and reclaim_retired() frees it after a grace period (see there).
 */
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <string>
#include <utility>

#include <boost/intrusive/list.hpp>

#include "../check.h"
#include "../config.h"
#include "../ds.h"
#include "../error.h"
#include "chunk.h"
#include "stats.h"

namespace ua {

struct arena_config {
	/* Allocation unit: a power of two from 16 B to 4 KiB (64 B as bpf_prog_pack). */
	std::size_t granule = 64;
	/* How many extents of the best size compete on chunk fullness. */
	std::size_t fullness_window = 8;
	/* Candidates examined for an aligned fit before jumping to a size that surely fits. */
	std::size_t align_scan_limit = 32;

	constexpr bool valid() const noexcept
	{
		return is_pow2(granule) && granule >= 16 && granule <= page_size && fullness_window >= 1;
	}
};

/* What free() tells the owner. */
struct free_info {
	std::size_t bytes = 0;           /* size of the freed allocation */
	std::uintptr_t empty_chunk = 0;  /* base of the chunk that became empty, or 0 */
};

/* A live allocation, as lookup() reports it. */
struct allocation {
	std::uintptr_t addr = 0;
	std::size_t size = 0;
};

class arena {
	using chunk_list = boost::intrusive::list<
		arena_chunk,
		boost::intrusive::member_hook<arena_chunk, boost::intrusive::list_member_hook<>, &arena_chunk::link>>;

public:
	explicit arena(arena_config cfg = {})
		: cfg_(cfg), tree_(unsigned(std::countr_zero(cfg.granule)), size_index_units(cfg.granule))
	{
		UA_CHECK(cfg.valid(), "arena_config: granule must be a power of two in [16, 4096]");
		granule_shift_ = unsigned(std::countr_zero(cfg.granule));
		units_ = chunk_size >> granule_shift_;
	}
	arena(const arena &) = delete;
	arena &operator=(const arena &) = delete;
	~arena()
	{
		for (free_extent *e = nullptr; !tree_.empty();) {
			e = &*tree_.begin();
			unlink_extent(*e);
			pool_.destroy(e);
		}
		while (!chunks_.empty()) {
			arena_chunk *c = &chunks_.front();
			chunks_.pop_front();
			arena_chunk::destroy(c);
		}
		reclaim_retired();
	}

	const arena_config &config() const noexcept { return cfg_; }
	std::size_t granule() const noexcept { return cfg_.granule; }

	/* Adds a 2 MiB-aligned chunk, all free. */
	error add_chunk(std::uintptr_t base) noexcept
	{
		if (base == 0 || base % chunk_size || base >= chunk_table<arena_chunk>::limit || table_.lookup(base))
			return error::bad_chunk;
		if (!reserve_nodes(1))
			return error::no_memory;
		std::unique_ptr<arena_chunk, arena_chunk::deleter> c(arena_chunk::create(base, units_));
		if (!c || !reserve_ids())
			return error::no_memory;
		if (error e = table_.insert(base, c.get()); e != error::ok)
			return e;
		c->id = free_ids_[--nr_free_ids_];
		fill_[c->id] = 0;
		free_extent *x = pool_.create(base, chunk_size, c.get(), c->id);
		UA_CHECK(x, "reserved node missing");
		link_extent(*x);
		chunks_.push_back(*c.release());
		empty_chunks_++;
		reserved_bound_ = 0;
		return error::ok;
	}

	/* Removes an empty chunk (the owner gives it back). */
	error remove_chunk(std::uintptr_t base) noexcept
	{
		arena_chunk *c = chunk_at(base);
		if (!c || c->live_count)
			return error::bad_chunk;
		free_extent *x = find_extent(*c, base);
		UA_CHECK(x && x->chunk == c && x->size == chunk_size, "empty chunk without its whole free extent");
		unlink_extent(*x);
		pool_.destroy(x);
		table_.erase(base);
		free_ids_[nr_free_ids_++] = c->id;
		chunks_.erase(chunks_.iterator_to(*c));
		empty_chunks_--;
		/* A lockless reader may hold c: it is freed by reclaim_retired() after a grace period. */
		retired_.push_back(*c);
		return error::ok;
	}

	/*
	 * Frees the records of chunks removed so far. The RCU rule: call it only
	 * after a grace period (synchronize_rcu(), or a call_rcu() callback) that
	 * began after the remove_chunk() calls whose records it frees, so that no
	 * lookup_lockless() still reads them; with the owner's lock held. An arena
	 * without lockless readers may call it right after remove_chunk(). The
	 * destructor frees whatever is left. Returns how many records it freed.
	 */
	std::size_t reclaim_retired() noexcept
	{
		std::size_t n = 0;
		while (!retired_.empty()) {
			arena_chunk *c = &retired_.front();
			retired_.pop_front();
			arena_chunk::destroy(c);
			n++;
		}
		return n;
	}
	std::size_t nr_retired() const noexcept { return retired_.size(); }

	/* Allocates size bytes at a power-of-two alignment (1 means the granule). */
	result<std::uintptr_t> alloc(std::size_t size, std::size_t align = 1) noexcept
	{
		if (size == 0)
			return result<std::uintptr_t>::failure(error::zero_size);
		if (size > chunk_size)
			return result<std::uintptr_t>::failure(error::too_large);
		if (!is_pow2(align) || align > chunk_size)
			return result<std::uintptr_t>::failure(error::bad_alignment);
		std::size_t need = align_up(size, cfg_.granule);
		std::size_t a = align < cfg_.granule ? cfg_.granule : align;
		free_extent *best = find_fit(need, a);
		if (!best)
			return result<std::uintptr_t>::failure(error::no_space);
		/* Up to two remainders and one more free extent per live allocation: reserve first. */
		if (!reserve_nodes(1))
			return result<std::uintptr_t>::failure(error::no_memory);
		std::uintptr_t start = align_up(best->addr, a);
		if (need == cfg_.granule)
			one_granule_seen_ = true;
		else if (start + need + cfg_.granule == best->end() && !one_granule_seen_)
			need += cfg_.granule; /* the tail sliver could serve no request seen so far */
		carve(*best, start, need);
		return {start, error::ok};
	}

	/* Frees the allocation starting at addr; addr == 0 is a no-op. */
	result<free_info> free(std::uintptr_t addr) noexcept
	{
		return free(addr, [](std::uintptr_t, std::size_t) noexcept { return error::ok; });
	}

	/*
	 * free() with a step of the owner's between the checks and the change:
	 * once addr is known to start a live allocation of `bytes` bytes,
	 * prepare(addr, bytes) runs (the cache fills the range there); if it
	 * returns an error, free returns it and nothing changed.
	 */
	template <class Prepare>
	result<free_info> free(std::uintptr_t addr, Prepare &&prepare) noexcept
	{
		if (addr == 0)
			return {};
		arena_chunk *c = table_.lookup(addr);
		if (!c)
			return result<free_info>::failure(error::foreign_pointer);
		return free_in(*c, addr, std::forward<Prepare>(prepare));
	}

	/*
	 * The record of this arena's chunk at base, or nullptr: a handle an
	 * owner that already keeps per-chunk records may store beside its own
	 * (valid until remove_chunk(base)), to free without the chunk lookup.
	 */
	arena_chunk *chunk_at(std::uintptr_t base) const noexcept
	{
		return base % chunk_size ? nullptr : table_.lookup(base);
	}

	/*
	 * Starts loading the bitmap line that free_in(c, addr) reads first, for
	 * an owner that can issue it before waiting for its lock. Reads no
	 * memory (the arena's granule is fixed at construction): c may be a
	 * stale handle, read without the lock, and a prefetch never faults.
	 */
	void prefetch_free(const arena_chunk *c, std::uintptr_t addr) const noexcept
	{
		std::size_t w = (addr & (chunk_size - 1)) >> (granule_shift_ + 6);
		__builtin_prefetch(reinterpret_cast<const void *>(arena_chunk::words_at(c, w)), 1);
	}

	/*
	 * free() of an address the owner knows to lie in chunk c of this arena
	 * (c from chunk_at(), not removed since): the same checks and errors
	 * after the chunk lookup, which it skips.
	 */
	template <class Prepare>
	result<free_info> free_in(arena_chunk &chunk, std::uintptr_t addr, Prepare &&prepare) noexcept
	{
		arena_chunk *c = &chunk;
		UA_DEBUG_ASSERT(table_.lookup(addr) == c);
		std::size_t off = addr - c->base, u = off >> granule_shift_;
		if (off & (cfg_.granule - 1) || !c->starts().test(u))
			return result<free_info>::failure(c->used().test(u) ? error::interior_pointer : error::not_live);
		std::size_t e = c->allocation_end(u);
		std::size_t bytes = (e - u) << granule_shift_;
		if (error pe = prepare(addr, bytes); pe != error::ok)
			return result<free_info>::failure(pe);
		c->write_begin();
		c->used().clear_range(u, e - u);
		c->starts().clear(u);
		c->write_end();
		if (--c->live_count == 0)
			empty_chunks_++;
		fill_[c->id] -= std::uint32_t(e - u);
		live_bytes_ -= bytes;
		live_count_--;
		release_range(*c, u, e);
		return {free_info{bytes, c->live_count ? 0 : c->base}, error::ok};
	}

	/* The live allocation containing addr (any interior address), if any. */
	result<allocation> lookup(std::uintptr_t addr) const noexcept
	{
		arena_chunk *c = table_.lookup(addr);
		if (!c)
			return result<allocation>::failure(error::foreign_pointer);
		std::size_t u = (addr - c->base) >> granule_shift_;
		if (!c->used().test(u))
			return result<allocation>::failure(error::not_live);
		std::size_t s = c->starts().find_prev_set(u);
		UA_CHECK(s != bitmap::npos, "used unit without an allocation start");
		std::size_t e = c->allocation_end(s);
		return {allocation{c->base + (s << granule_shift_), (e - s) << granule_shift_}, error::ok};
	}

	/*
	 * lookup() without the owner's lock: may run while the owner allocates,
	 * frees, adds or removes chunks, provided the caller is inside an RCU
	 * read-side critical section (rcu_read_lock()) and the owner frees
	 * removed chunk records only through reclaim_retired() after a grace
	 * period. The answer is an allocation that was live at some moment during
	 * the call (the usual seqcount guarantee), or foreign_pointer / not_live
	 * as observed at some such moment. Retries while a writer changes the
	 * chunk's bitmaps; wait-free with respect to other readers.
	 */
	result<allocation> lookup_lockless(std::uintptr_t addr) const noexcept
	{
		const arena_chunk *c = table_.lookup(addr);
		if (!c)
			return result<allocation>::failure(error::foreign_pointer);
		std::size_t u = (addr - c->base) >> granule_shift_;
		for (;;) {
			std::uint64_t seq = c->read_begin();
			bool live = c->used().test(u);
			std::size_t s = live ? c->starts().find_prev_set(u) : 0, e = 0;
			if (live && s < units_)
				e = c->allocation_end(s);
			if (c->read_retry(seq))
				continue;
			if (!live)
				return result<allocation>::failure(error::not_live);
			UA_CHECK(s < e && e <= units_ && u < e, "consistent chunk bitmaps without an allocation at a used unit");
			return {allocation{c->base + (s << granule_shift_), (e - s) << granule_shift_}, error::ok};
		}
	}

	/* O(1): the base of the chunk of this arena containing addr, or 0. */
	std::uintptr_t lookup_chunk(std::uintptr_t addr) const noexcept
	{
		arena_chunk *c = table_.lookup(addr);
		return c ? c->base : 0;
	}
	bool owns(std::uintptr_t addr) const noexcept { return table_.lookup(addr) != nullptr; }

	/* Live bytes in the chunk at base (0 if unknown). */
	std::size_t chunk_live_bytes(std::uintptr_t base) const noexcept
	{
		arena_chunk *c = table_.lookup(base);
		return c ? chunk_live(*c) : 0;
	}

	/* Calls fn(base, live_bytes) for every chunk, in the order they were added. */
	template <class Fn>
	void for_each_chunk(Fn &&fn) const
	{
		for (const arena_chunk &c : chunks_)
			fn(c.base, chunk_live(c));
	}

	std::size_t nr_chunks() const noexcept { return chunks_.size(); }
	std::size_t live_bytes() const noexcept { return live_bytes_; }
	std::size_t live_count() const noexcept { return live_count_; }

	arena_stats stats() const noexcept
	{
		arena_stats s;
		s.live_bytes = live_bytes_;
		s.live_count = live_count_;
		s.chunks = chunks_.size();
		s.free_bytes = s.chunks * chunk_size - live_bytes_;
		s.free_extents = tree_.size();
		s.largest_free = tree_.largest();
		s.fragmentation = s.free_bytes ? 1.0 - double(s.largest_free) / double(s.free_bytes) : 0.0;
		s.metadata_bytes = sizeof(*this) + pool_.memory_bytes() + tree_.memory_bytes() + table_.memory_bytes() +
				   2 * ids_cap_ * sizeof(std::uint32_t);
		/* O(1): every chunk record has the same size (units_ bits per bitmap), and the empty ones are counted. */
		const std::size_t nr_records = chunks_.size() + retired_.size();
		if (nr_records)
			s.metadata_bytes += nr_records * (chunks_.empty() ? retired_.front() : chunks_.front()).memory_bytes();
		s.empty_chunks = empty_chunks_;
		return s;
	}

	/* Expensive: walks every chunk and the tree. Returns "" or the first violation. */
	std::string check_consistency() const;

private:
	/* Sizes the tree's size index covers: up to 4096 units (256 KiB at 64 B), every size at 4 KiB. */
	static std::size_t size_index_units(std::size_t granule) noexcept
	{
		std::size_t units = granule ? chunk_size / granule : 0;
		return units < 4096 ? units : 4096;
	}

	/*
	 * Reserve before change: room for the free-extent bound (one extent per
	 * live allocation and chunk) after one more allocation or chunk, in the
	 * extent pool and the tree's size nodes. (The chains of extents by start
	 * live in the chunks' metadata and need nothing.)
	 */
	bool reserve_nodes(std::size_t extra) noexcept
	{
		std::size_t bound = live_count_ + chunks_.size() + extra + 1;
		return bound <= reserved_bound_ || reserve_nodes_for(bound, extra);
	}

	/*
	 * The pool and the size nodes only grow, so a reservation made for a
	 * bound holds until the bound passes it: reserve for 64 allocations
	 * ahead (falling back to the exact bound when memory is short) and skip
	 * the work until then. add_chunk() resets reserved_bound_, since the
	 * distinct-size bound depends on the number of chunks.
	 */
	bool reserve_nodes_for(std::size_t bound, std::size_t extra) noexcept
	{
		std::size_t n = chunks_.size() + extra;
		if (n != sizes_bound_chunks_) { /* a square root per chunk count, not per allocation */
			sizes_bound_ = max_distinct_sizes(n * units_);
			sizes_bound_chunks_ = n;
		}
		for (std::size_t ahead : {std::size_t{64}, std::size_t{0}}) {
			std::size_t b = bound + ahead, sizes = sizes_bound_ < b ? sizes_bound_ : b;
			/* In use == tree size: the pool must hold b nodes in all, plus one. */
			if (pool_.reserve(b + 1 - tree_.size()) && tree_.reserve(sizes)) {
				reserved_bound_ = b;
				return true;
			}
		}
		return false;
	}

	/*
	 * Chunk numbers. Each chunk has a dense number (arena_chunk::id) while
	 * it is in the arena, and fill_[id] is its live units: the fullness
	 * tie-break compares up to 8 chunks per allocation, and reading their
	 * fill from one array of a few KiB instead of 8 chunk records cut
	 * ~1.5 cache misses per alloc/free pair at 100 K live allocations
	 * (cachegrind). Numbers of removed chunks are reused. Grows (doubling)
	 * only in add_chunk, so that a free number exists before anything changes.
	 */
	std::size_t chunk_live(const arena_chunk &c) const noexcept { return std::size_t(fill_[c.id]) << granule_shift_; }

	bool reserve_ids() noexcept
	{
		if (nr_free_ids_)
			return true;
		std::size_t cap = ids_cap_ ? 2 * ids_cap_ : 64;
		std::unique_ptr<std::uint32_t[]> fill(new (std::nothrow) std::uint32_t[cap]());
		std::unique_ptr<std::uint32_t[]> ids(new (std::nothrow) std::uint32_t[cap]);
		if (!fill || !ids)
			return false;
		for (std::size_t i = 0; i < ids_cap_; i++)
			fill[i] = fill_[i];
		/* Every number below ids_cap_ is in use (none is free): the new ones are free, lowest on top. */
		nr_free_ids_ = 0;
		for (std::size_t i = cap; i-- > ids_cap_;)
			ids[nr_free_ids_++] = std::uint32_t(i);
		fill_ = std::move(fill);
		free_ids_ = std::move(ids);
		ids_cap_ = cap;
		return true;
	}

	/*
	 * Distinct free sizes need distinct size nodes, and k distinct sizes
	 * take at least 1 + 2 + ... + k = k(k + 1)/2 units: the largest such k
	 * for `units` units (~sqrt(2 units): 443 for three 64 B-granule chunks,
	 * ~10,700 for 1,740). Far below the extent bound, which would reserve a
	 * size node per live allocation.
	 */
	static std::size_t max_distinct_sizes(std::size_t units) noexcept
	{
		std::size_t k = std::size_t(std::sqrt(2.0 * double(units))) + 1;
		while (k && k * (k + 1) / 2 > units)
			k--;
		return k;
	}

	static bool fits(const free_extent &x, std::size_t need, std::size_t a) noexcept
	{
		return align_up(x.addr, a) + need <= x.end();
	}

	/* Best fit, fullest chunk among equals, then lowest address (arena_fit.h). */
	free_extent *find_fit(std::size_t need, std::size_t a) noexcept;
	/* Takes [start, start + need) out of free extent x; remainders go back to the tree. */
	void carve(free_extent &x, std::uintptr_t start, std::size_t need) noexcept;
	/* Units [u, e) of c just became free: merge with free neighbours into one extent. */
	void release_range(arena_chunk &c, std::size_t u, std::size_t e) noexcept;

	/*
	 * A free extent is in the tree (by size) and in its chunk's chain for
	 * the 256 units it starts in (by start; arena/chunk.h). The chains are
	 * exact, so free() finds both neighbours without the tree. Chains are
	 * short (one extent nearly always): walks and pushes, no order.
	 */
	free_extent **chain_of(const arena_chunk &c, std::uintptr_t addr) const noexcept
	{
		return c.heads() + ((addr - c.base) >> (granule_shift_ + arena_chunk::head_shift));
	}
	void chain_push(free_extent &x) noexcept
	{
		free_extent **h = chain_of(*x.chunk, x.addr);
		x.chain_next = *h;
		*h = &x;
	}
	void chain_remove(free_extent &x) noexcept
	{
		free_extent **p = chain_of(*x.chunk, x.addr);
		while (*p != &x)
			p = &(*p)->chain_next;
		*p = x.chain_next;
	}
	/* x now starts at addr (in the same chunk): it changes chains only when the chain differs. */
	void chain_move(free_extent &x, std::uintptr_t addr) noexcept
	{
		if (chain_of(*x.chunk, addr) == chain_of(*x.chunk, x.addr)) {
			x.addr = addr;
			return;
		}
		chain_remove(x);
		x.addr = addr;
		chain_push(x);
	}
	void link_extent(free_extent &x) noexcept
	{
		tree_.insert(x);
		chain_push(x);
	}
	void unlink_extent(free_extent &x) noexcept
	{
		tree_.erase(x);
		chain_remove(x);
	}
	/* The free extent of c starting at addr, or nullptr. */
	free_extent *find_extent(const arena_chunk &c, std::uintptr_t addr) const noexcept
	{
		free_extent *x = *chain_of(c, addr);
		while (x && x->addr != addr)
			x = x->chain_next;
		return x;
	}

	arena_config cfg_;
	unsigned granule_shift_ = 6;
	std::size_t units_ = 0;
	extent_tree tree_;
	node_pool<free_extent> pool_;
	chunk_table<arena_chunk> table_;
	chunk_list chunks_;
	chunk_list retired_; /* removed, awaiting reclaim_retired() */
	std::size_t live_bytes_ = 0, live_count_ = 0;
	std::size_t empty_chunks_ = 0; /* chunks with live_count 0 (stats() in O(1)) */
	std::unique_ptr<std::uint32_t[]> fill_;     /* live units per chunk number */
	std::unique_ptr<std::uint32_t[]> free_ids_; /* numbers not in use: a stack */
	std::size_t ids_cap_ = 0, nr_free_ids_ = 0;
	std::size_t sizes_bound_ = 0, sizes_bound_chunks_ = ~std::size_t{0}; /* max_distinct_sizes, cached */
	std::size_t reserved_bound_ = 0; /* reserve_nodes_for() has made room for this bound */
	bool one_granule_seen_ = false;  /* a one-granule request came: stop absorbing slivers */
};

}  // namespace ua

#include "arena_check.h"
#include "arena_fit.h"
