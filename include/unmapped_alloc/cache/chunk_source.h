// SPDX-License-Identifier: MIT
/*
 * cache/chunk_source.h - where a cache's chunks come from and go back to.
 *
 * A cache takes memory in runs of whole 2 MiB chunks from the page allocator
 * and changes the direct map only at that granularity, so no large page is
 * ever split for it. Acquiring a run (the cache's "populate" step, as
 * execmem_cache_populate()):
 *
 *   1. alloc_pages(order, gfp_normal_only, hint): never ZONE_MOVABLE, since
 *      memory hotplug needs it movable; the hint is machine::unmapped_hint,
 *      honoured only under the proposed page_alloc_config::placement_hint
 *      (the kernel's page allocator takes no hint), so that chunks cluster
 *      inside a 1 GiB region whose PUD mapping is already split;
 *   2. remove the run from the direct map (or make it read-only) with one
 *      call per piece (below; one piece unless the run is scattered)
 *      covering whole 2 MiB pages, which CPA changes in place;
 *   3. one TLB flush per piece;
 *   4. fill it (trap bytes for text, zeroes otherwise) through the backend's
 *      write path, never through the user alias (later fills of freed
 *      ranges: see fill());
 *   5. map it at an alias with the cache's user protection;
 *   6. for secrets: lock it, exclude it from core dumps and from fork.
 *
 * A failing step undoes the earlier ones in reverse order and reports
 * error::no_memory (page allocator) or error::backend_failure (backend); a
 * failed acquire leaves the machine exactly as it was. Releasing a run undoes
 * the steps (secrets are zeroed before their frames return), restores the
 * direct map with one call per piece, flushes each, asks the backend to
 * collapse each (a no-op when its large pages are intact, as they are unless
 * something else split them) and frees the frames.
 *
 * The page allocator may throw (std::bad_alloc from the records it grows,
 * phys/page_alloc.h); acquire() and release() are noexcept,
 * so every call to it goes through alloc_block_locked() and
 * free_block_locked(), which turn an exception into error::no_memory. A
 * release whose frames cannot be freed maps the run again (steps 2-6) and
 * reports error::backend_failure: the run is still held, as for any failed
 * release.
 *
 * Runs larger than a chunk (cache/chunk_run.h) are virtually contiguous and
 * physically wherever there is room, as the kernel's vmalloc(): a run of a
 * power-of-two number of chunks up to MAX_PAGE_ORDER (one or two chunks)
 * first asks for one block of that order (contiguous, one direct-map
 * change); otherwise, or when no such block is
 * free, it takes nr_chunks order-9 blocks one by one, each asked for next to
 * the previous one (the page allocator's hint: the same 1 GiB region first,
 * then the nearest), so chunks come out adjacent or in one region when they
 * can. Its runs of adjacent chunks ("pieces") each get one direct-map
 * change, flush and fill, and one map_alias_runs() joins them at one alias
 * (mapping/backend.h). No block larger than the request is ever taken, so no
 * request fails while enough chunks are free: no allocation that vmalloc()
 * of 2 MiB pages would satisfy. Any failing step undoes every piece done
 * before it.
 *
 * Locking: every method takes machine::lock itself; the caller may hold its
 * cache's chunk lock (lock order: cache shard lock -> cache chunk lock ->
 * machine lock, see cache/unmapped_cache.h).
 */
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>

#include "../error.h"
#include "../phys.h"
#include "cache_config.h"
#include "chunk_run.h"

namespace ua {

/* Counters of what a cache did to the machine (all protected by the machine lock). */
struct chunk_source_stats {
	std::uint64_t acquired = 0;    /* runs taken from the page allocator */
	std::uint64_t released = 0;    /* runs given back */
	std::uint64_t dm_changes = 0;  /* direct-map change calls */
	std::uint64_t tlb_flushes = 0; /* flush calls */
	std::uint64_t failures = 0;    /* acquires that failed and were rolled back */
};

template <mapping_backend Backend>
class chunk_source {
public:
	/* The largest run: 1 GiB, the largest alias a cache maps. */
	static constexpr std::size_t max_run_chunks = std::size_t{1} << (30 - chunk_shift);

	chunk_source(machine<Backend> &m, const cache_config &cfg) noexcept : m_(m), cfg_(cfg) {}

	/* Takes a run of nr_chunks chunks, out of the direct map and mapped at an alias. */
	result<chunk_run> acquire(std::size_t nr_chunks) noexcept
	{
		if (nr_chunks == 0)
			return result<chunk_run>::failure(error::zero_size);
		if (nr_chunks > max_run_chunks)
			return result<chunk_run>::failure(error::too_large);
		unsigned order = chunk_order + unsigned(std::bit_width(nr_chunks - 1));
		typename machine<Backend>::guard g(m_.lock);
		auto r = take_frames_locked(nr_chunks, order);
		if (!r.ok()) {
			stats_.failures++;
			return r;
		}
		chunk_run run = r.value;
		error e = map_run_locked(run);
		if (e != error::ok) {
			free_frames_locked(run);
			stats_.failures++;
			return result<chunk_run>::failure(e);
		}
		m_.unmapped_hint = run.pfn;
		stats_.acquired++;
		return {run, error::ok};
	}

	/*
	 * Gives a run back: the direct map is whole again and the frames are
	 * free. On failure (error::backend_failure) the run is still held and
	 * usable, possibly at a new alias address stored in run.alias.
	 */
	error release(chunk_run &run) noexcept
	{
		typename machine<Backend>::guard g(m_.lock);
		Backend &b = m_.backend;
		const std::size_t np = run.piece_count();
		/* Secrets never reach the direct map with their contents (zeroed as a free is: fill()). */
		if (cfg_.kind == cache_kind::secret && fill(run, 0, 0, run.bytes()) != error::ok)
			return error::backend_failure;
		if (b.unmap_alias(run.alias, run.bytes()) != 0)
			return error::backend_failure;
		std::size_t restored = 0, flushed = 0;
		for (; restored < np && b.set_direct_map_default(run.piece(restored)) == 0; restored++)
			stats_.dm_changes++;
		if (restored == np)
			for (; flushed < np && b.flush_tlb(run.piece(flushed)) == 0; flushed++)
				stats_.tlb_flushes++;
		if (flushed < np) {
			/* Undo in reverse: the pieces restored go back out of the direct map, the alias comes back. */
			while (restored--) {
				UA_CHECK(set_direct_map_locked(run.piece(restored)) == 0,
					 "chunk_source: rollback of a direct-map restore failed");
				stats_.dm_changes++;
			}
			UA_CHECK(map_alias_locked(run) == 0, "chunk_source: cannot map a run again");
			if (cfg_.kind == cache_kind::secret)
				UA_CHECK(b.secure_alias(run.alias, run.bytes()) == 0, "chunk_source: cannot secure a run again");
			return error::backend_failure;
		}
		for (std::size_t i = 0; i < np; i++)
			(void)b.collapse(run.piece(i)); /* best effort: the large pages are normally intact already */
		if (error e = free_block_locked(run.pfn, run.order); e != error::ok) {
			/* Out of memory for the allocator's records: the run stays held, mapped again. */
			UA_CHECK(e == error::no_memory, "chunk_source: page allocator refused a run");
			UA_CHECK(map_run_locked(run) == error::ok, "chunk_source: cannot map a run again");
			return error::backend_failure;
		}
		/* A scattered run's other chunks: each its own order-9 block (the first went just above). */
		free_frames_locked(run, 1);
		stats_.released++;
		return error::ok;
	}

	/*
	 * Writes into a run's frames through the backend (text_poke_copy()).
	 * No machine lock: contents operations may run concurrently (backend.h).
	 */
	error write(const chunk_run &run, std::size_t off, const void *src, std::size_t n) noexcept
	{
		auto *p = static_cast<const unsigned char *>(src);
		int rc = run.for_each_span(off, n, [&](pfn_t pfn, std::size_t o, std::size_t len) noexcept {
			int e = m_.backend.write_frames(pfn, o, p, len);
			p += len;
			return e;
		});
		return rc == 0 ? error::ok : error::backend_failure;
	}
	/*
	 * Fills part of a run (text_poke_set()); no machine lock, as write().
	 *
	 * Where the user alias is writable real memory (a secret cache on the
	 * real backend) the bytes go through the alias instead: stores instead
	 * of a syscall, and nothing shared between threads. On the real backend
	 * the write path is pwrite() to the one memfd, and the kernel's shmem
	 * write path takes the file's inode lock, so fills from different
	 * threads serialise there. A fill through the alias cannot fail.
	 */
	error fill(const chunk_run &run, std::size_t off, int byte, std::size_t n) noexcept
	{
		if constexpr (Backend::dereferenceable) {
			if (cfg_.user_prot() == prot::rw) {
				void *p = reinterpret_cast<void *>(run.alias + off);
				std::memset(p, byte, n);
				asm volatile("" : : "r"(p) : "memory"); /* nothing reads the bytes before reuse: keep the stores */
				return error::ok;
			}
		}
		int rc = run.for_each_span(off, n, [&](pfn_t pfn, std::size_t o, std::size_t len) noexcept {
			return m_.backend.fill_frames(pfn, o, byte, len);
		});
		return rc == 0 ? error::ok : error::backend_failure;
	}

	chunk_source_stats stats() const noexcept
	{
		typename machine<Backend>::guard g(m_.lock);
		return stats_;
	}

private:
	/*
	 * The frames of a run of nr_chunks chunks (order: the block that would
	 * hold them): one block when nr_chunks is a power of two and such a block
	 * is free, else nr_chunks order-9 blocks (see the top). No alias yet.
	 * Machine lock held.
	 */
	result<chunk_run> take_frames_locked(std::size_t nr_chunks, unsigned order) noexcept
	{
		/* One buddy block only up to MAX_PAGE_ORDER: above it vmalloc() takes pages, not blocks. */
		if (std::has_single_bit(nr_chunks) && order <= page_max_order) {
			auto pa = alloc_block_locked(order, m_.unmapped_hint);
			if (pa.ok())
				return {chunk_run{pa.value, order, nr_chunks, 0, nullptr, 0}, error::ok};
			if (nr_chunks == 1 || pa.err != error::no_memory)
				return result<chunk_run>::failure(pa.err);
		}
		std::unique_ptr<pfn_t[]> blocks(new (std::nothrow) pfn_t[nr_chunks]);
		if (!blocks)
			return result<chunk_run>::failure(error::no_memory);
		pfn_t hint = m_.unmapped_hint;
		for (std::size_t i = 0; i < nr_chunks; i++) {
			auto pa = alloc_block_locked(chunk_order, hint);
			if (!pa.ok()) {
				while (i--)
					UA_CHECK(free_block_locked(blocks[i], chunk_order) == error::ok, "chunk_source: cannot return frames");
				return result<chunk_run>::failure(pa.err);
			}
			blocks[i] = pa.value;
			/* Ask next for the chunk just above: adjacent when it is free, else the nearest in the region. */
			hint = pa.value + pages_per_chunk < m_.pages.nr_pages() ? pa.value + pages_per_chunk : pa.value;
		}
		std::sort(blocks.get(), blocks.get() + nr_chunks);
		std::size_t np = 1;
		for (std::size_t i = 1; i < nr_chunks; i++)
			np += blocks[i] != blocks[i - 1] + pages_per_chunk;
		auto *pieces = new (std::nothrow) frame_range[np];
		if (!pieces) {
			for (std::size_t i = 0; i < nr_chunks; i++)
				UA_CHECK(free_block_locked(blocks[i], chunk_order) == error::ok, "chunk_source: cannot return frames");
			return result<chunk_run>::failure(error::no_memory);
		}
		std::size_t k = 0;
		pieces[0] = {blocks[0], pages_per_chunk};
		for (std::size_t i = 1; i < nr_chunks; i++) {
			if (blocks[i] == pieces[k].end())
				pieces[k].nr_pages += pages_per_chunk;
			else
				pieces[++k] = {blocks[i], pages_per_chunk};
		}
		return {chunk_run{blocks[0], chunk_order, nr_chunks, 0, pieces, np}, error::ok};
	}

	/*
	 * Gives the frames of a run back to the page allocator, from its
	 * first_chunk'th chunk on (a run of one block: its block), and frees a
	 * scattered run's pieces array. Machine lock held.
	 */
	void free_frames_locked(chunk_run &run, std::size_t first_chunk = 0) noexcept
	{
		if (!run.scattered()) {
			if (first_chunk == 0)
				UA_CHECK(free_block_locked(run.pfn, run.order) == error::ok, "chunk_source: cannot return frames");
			return;
		}
		std::size_t c = 0;
		for (std::size_t i = 0; i < run.nr_pieces; i++)
			for (pfn_t p = run.pieces[i].pfn; p < run.pieces[i].end(); p += pages_per_chunk, c++)
				if (c >= first_chunk)
					UA_CHECK(free_block_locked(p, chunk_order) == error::ok, "chunk_source: cannot return frames");
		delete[] run.pieces;
		run.pieces = nullptr;
		run.nr_pieces = 0;
	}

	/* alloc_pages() for a cache's block, no exception (see the top). Machine lock held. */
	result<pfn_t> alloc_block_locked(unsigned order, pfn_t hint) noexcept
	{
		try {
			auto pa = m_.pages.alloc_pages(order, gfp_normal_only, hint);
			return pa;
		} catch (...) {
			return result<pfn_t>::failure(error::no_memory);
		}
	}

	/* free_pages(), no exception: error::no_memory when the allocator could not grow its records. Machine lock held. */
	error free_block_locked(pfn_t pfn, unsigned order) noexcept
	{
		try {
			return m_.pages.free_pages(pfn, order);
		} catch (...) {
			return error::no_memory;
		}
	}

	/* The cache's direct-map action on r. Machine lock held. */
	int set_direct_map_locked(frame_range r) noexcept
	{
		Backend &b = m_.backend;
		return cfg_.dm_action == direct_map_action::remove ? b.set_direct_map_invalid(r) : b.set_direct_map_ro(r);
	}

	/* The run's alias: one mapping of every piece, in order. Machine lock held. */
	int map_alias_locked(chunk_run &run) noexcept
	{
		Backend &b = m_.backend;
		return run.scattered() ? b.map_alias_runs(run.pieces, run.nr_pieces, cfg_.user_prot(), &run.alias)
				       : b.map_alias(run.frames(), cfg_.user_prot(), &run.alias);
	}

	/* Steps 2-6 of acquire on every piece, undone in reverse on failure. Machine lock held. */
	error map_run_locked(chunk_run &run) noexcept
	{
		Backend &b = m_.backend;
		const std::size_t np = run.piece_count();
		std::size_t changed = 0;
		int rc = 0;
		error e = error::backend_failure;
		for (; changed < np; changed++) {
			if ((rc = set_direct_map_locked(run.piece(changed))) != 0)
				break;
			stats_.dm_changes++;
		}
		if (changed < np) {
			e = rc == -ENOMEM ? error::no_memory : error::backend_failure;
			goto restore;
		}
		for (std::size_t i = 0; i < np; i++) {
			if (b.flush_tlb(run.piece(i)) != 0)
				goto restore;
			stats_.tlb_flushes++;
		}
		for (std::size_t i = 0; i < np; i++)
			if (b.fill_frames(run.piece(i).pfn, 0, cfg_.fill_byte(), std::size_t(run.piece(i).bytes())) != 0)
				goto restore;
		if (map_alias_locked(run) != 0)
			goto restore;
		if (cfg_.kind == cache_kind::secret && b.secure_alias(run.alias, run.bytes()) != 0)
			goto unmap;
		return error::ok;
	unmap:
		UA_CHECK(b.unmap_alias(run.alias, run.bytes()) == 0, "chunk_source: rollback of map_alias failed");
	restore:
		while (changed--) {
			UA_CHECK(b.set_direct_map_default(run.piece(changed)) == 0,
				 "chunk_source: rollback of a direct-map change failed");
			stats_.dm_changes++;
			b.flush_tlb(run.piece(changed));
			stats_.tlb_flushes++;
		}
		return e;
	}

	machine<Backend> &m_;
	const cache_config &cfg_;
	chunk_source_stats stats_;
};

}  // namespace ua
