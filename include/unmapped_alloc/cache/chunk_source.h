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
 *      so chunks cluster inside a 1 GiB region whose PUD mapping is already
 *      split instead of splitting another;
 *   2. remove the run from the direct map (or make it read-only) with one
 *      call covering whole 2 MiB pages, which CPA changes in place;
 *   3. one TLB flush for the run;
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
 * direct map with one call, flushes once, asks the backend to collapse the
 * range (a no-op when its large pages are intact, as they are unless
 * something else split them) and frees the frames.
 *
 * Runs larger than a chunk come from one block of the next power-of-two order
 * (as alloc_pages() without alloc_pages_exact()), so they are contiguous;
 * above MAX_PAGE_ORDER (4 MiB) from alloc_contig_pages() and back through
 * free_contig_range(), as the kernel would have to take them.
 *
 * Locking: every method takes machine::lock itself; the caller may hold its
 * cache's chunk lock (lock order: cache shard lock -> cache chunk lock ->
 * machine lock, see cache/unmapped_cache.h).
 */
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../error.h"
#include "../phys.h"
#include "cache_config.h"

namespace ua {

/* A run of whole chunks held by a cache. */
struct chunk_run {
	pfn_t pfn = 0;             /* first frame */
	unsigned order = 0;        /* page-allocator order of the block (9 for one chunk) */
	std::size_t nr_chunks = 0; /* chunks the cache uses from the block */
	std::uintptr_t alias = 0;  /* the user-visible address */

	std::size_t bytes() const noexcept { return nr_chunks * chunk_size; }
	frame_range frames() const noexcept { return {pfn, std::uint64_t(nr_chunks) * pages_per_chunk}; }
	frame_range block() const noexcept { return {pfn, std::uint64_t{1} << order}; }
};

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
	chunk_source(machine<Backend> &m, const cache_config &cfg) noexcept : m_(m), cfg_(cfg) {}

	/* Takes a run of nr_chunks chunks, out of the direct map and mapped at an alias. */
	result<chunk_run> acquire(std::size_t nr_chunks) noexcept
	{
		if (nr_chunks == 0)
			return result<chunk_run>::failure(error::zero_size);
		unsigned order = chunk_order + unsigned(std::bit_width(nr_chunks - 1));
		if (order > page_allocator::max_contig_order)
			return result<chunk_run>::failure(error::too_large);
		typename machine<Backend>::guard g(m_.lock);
		/* Above MAX_PAGE_ORDER the buddy allocator has no block: alloc_contig_pages(), as the kernel would. */
		auto pa = order > page_max_order ? m_.pages.alloc_contig_pages(order, gfp_normal_only)
						 : m_.pages.alloc_pages(order, gfp_normal_only, m_.unmapped_hint);
		if (!pa.ok()) {
			stats_.failures++;
			return result<chunk_run>::failure(pa.err == error::no_memory ? error::no_memory : pa.err);
		}
		chunk_run run{pa.value, order, nr_chunks, 0};
		error e = map_run_locked(run);
		if (e != error::ok) {
			UA_CHECK(free_block_locked(run.pfn, order) == error::ok, "chunk_source: cannot return frames");
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
		frame_range r = run.frames();
		/* Secrets never reach the direct map with their contents (zeroed as a free is: fill()). */
		if (cfg_.kind == cache_kind::secret && fill(run, 0, 0, run.bytes()) != error::ok)
			return error::backend_failure;
		if (b.unmap_alias(run.alias, run.bytes()) != 0)
			return error::backend_failure;
		if (b.set_direct_map_default(r) != 0)
			goto remap;
		stats_.dm_changes++;
		if (b.flush_tlb(r) != 0)
			goto unrestore;
		stats_.tlb_flushes++;
		(void)b.collapse(r); /* best effort: the large pages are normally intact already */
		UA_CHECK(free_block_locked(run.pfn, run.order) == error::ok, "chunk_source: page allocator refused a run");
		stats_.released++;
		return error::ok;
	unrestore:
		UA_CHECK(set_direct_map_locked(r) == 0, "chunk_source: rollback of a direct-map restore failed");
		stats_.dm_changes++;
	remap:
		UA_CHECK(b.map_alias(r, cfg_.user_prot(), &run.alias) == 0, "chunk_source: cannot map a run again");
		if (cfg_.kind == cache_kind::secret)
			UA_CHECK(b.secure_alias(run.alias, run.bytes()) == 0, "chunk_source: cannot secure a run again");
		return error::backend_failure;
	}

	/*
	 * Writes into a run's frames through the backend (text_poke_copy()).
	 * No machine lock: contents operations may run concurrently (backend.h).
	 */
	error write(const chunk_run &run, std::size_t off, const void *src, std::size_t n) noexcept
	{
		return m_.backend.write_frames(run.pfn, off, src, n) == 0 ? error::ok : error::backend_failure;
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
		return m_.backend.fill_frames(run.pfn, off, byte, n) == 0 ? error::ok : error::backend_failure;
	}

	chunk_source_stats stats() const noexcept
	{
		typename machine<Backend>::guard g(m_.lock);
		return stats_;
	}

private:
	/* The cache's direct-map action on r. Machine lock held. */
	int set_direct_map_locked(frame_range r) noexcept
	{
		Backend &b = m_.backend;
		return cfg_.dm_action == direct_map_action::remove ? b.set_direct_map_invalid(r) : b.set_direct_map_ro(r);
	}

	/* Frees a run's block by the path that took it. Machine lock held. */
	error free_block_locked(pfn_t pfn, unsigned order) noexcept
	{
		return order > page_max_order ? m_.pages.free_contig_range(pfn, order) : m_.pages.free_pages(pfn, order);
	}

	/* Steps 2-6 of acquire, undone in reverse on failure. Machine lock held. */
	error map_run_locked(chunk_run &run) noexcept
	{
		Backend &b = m_.backend;
		frame_range r = run.frames();
		int rc = set_direct_map_locked(r);
		if (rc != 0)
			return rc == -ENOMEM ? error::no_memory : error::backend_failure;
		stats_.dm_changes++;
		if (b.flush_tlb(r) != 0)
			goto restore;
		stats_.tlb_flushes++;
		if (b.fill_frames(r.pfn, 0, cfg_.fill_byte(), run.bytes()) != 0)
			goto restore;
		if (b.map_alias(r, cfg_.user_prot(), &run.alias) != 0)
			goto restore;
		if (cfg_.kind == cache_kind::secret && b.secure_alias(run.alias, run.bytes()) != 0)
			goto unmap;
		return error::ok;
	unmap:
		UA_CHECK(b.unmap_alias(run.alias, run.bytes()) == 0, "chunk_source: rollback of map_alias failed");
	restore:
		UA_CHECK(b.set_direct_map_default(r) == 0, "chunk_source: rollback of a direct-map change failed");
		stats_.dm_changes++;
		b.flush_tlb(r);
		stats_.tlb_flushes++;
		return error::backend_failure;
	}

	machine<Backend> &m_;
	const cache_config &cfg_;
	chunk_source_stats stats_;
};

}  // namespace ua
