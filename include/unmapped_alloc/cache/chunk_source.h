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
 *   6. for secrets: lock it, exclude it from core dumps and from fork;
 *      with write_path::writable_alias (text and ro), map it a second time,
 *      read-write and never executable, at an address of its own: the
 *      cache's writes and fills go through that alias.
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
 * (as alloc_pages() without alloc_pages_exact()), so they are contiguous.
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
#include "written_granules.h"

namespace ua {

/* A run of whole chunks held by a cache. */
struct chunk_run {
	pfn_t pfn = 0;             /* first frame */
	unsigned order = 0;        /* page-allocator order of the block (9 for one chunk) */
	std::size_t nr_chunks = 0; /* chunks the cache uses from the block */
	std::uintptr_t alias = 0;  /* the user-visible address */
	std::uintptr_t write_alias = 0; /* the read-write, never executable alias (write_path::writable_alias), else 0 */
	written_granules written;  /* text and ro runs: granules not known to hold the fill byte (freed by release) */

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
		if (order > page_max_order)
			return result<chunk_run>::failure(error::too_large);
		typename machine<Backend>::guard g(m_.lock);
		auto pa = m_.pages.alloc_pages(order, gfp_normal_only, m_.unmapped_hint);
		if (!pa.ok()) {
			stats_.failures++;
			return result<chunk_run>::failure(pa.err == error::no_memory ? error::no_memory : pa.err);
		}
		chunk_run run;
		run.pfn = pa.value;
		run.order = order;
		run.nr_chunks = nr_chunks;
		/* Secrets are written by their users directly: only text and ro runs know what was written. */
		if (cfg_.user_prot() != prot::rw && !run.written.init(run.bytes(), cfg_.granule)) {
			UA_CHECK(m_.pages.free_pages(run.pfn, order) == error::ok, "chunk_source: cannot return frames");
			stats_.failures++;
			return result<chunk_run>::failure(error::no_memory);
		}
		error e = map_run_locked(run);
		if (e != error::ok) {
			run.written.destroy();
			UA_CHECK(m_.pages.free_pages(run.pfn, order) == error::ok, "chunk_source: cannot return frames");
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
		if (run.write_alias) {
			if (b.unmap_alias(run.write_alias, run.bytes()) != 0)
				return error::backend_failure;
			run.write_alias = 0;
		}
		if (b.unmap_alias(run.alias, run.bytes()) != 0)
			goto rewrite;
		if (b.set_direct_map_default(r) != 0)
			goto remap;
		stats_.dm_changes++;
		if (b.flush_tlb(r) != 0)
			goto unrestore;
		stats_.tlb_flushes++;
		(void)b.collapse(r); /* best effort: the large pages are normally intact already */
		UA_CHECK(m_.pages.free_pages(run.pfn, run.order) == error::ok, "chunk_source: page allocator refused a run");
		run.written.destroy();
		stats_.released++;
		return error::ok;
	unrestore:
		UA_CHECK(set_direct_map_locked(r) == 0, "chunk_source: rollback of a direct-map restore failed");
		stats_.dm_changes++;
	remap:
		UA_CHECK(b.map_alias(r, cfg_.user_prot(), &run.alias) == 0, "chunk_source: cannot map a run again");
		if (cfg_.kind == cache_kind::secret)
			UA_CHECK(b.secure_alias(run.alias, run.bytes()) == 0, "chunk_source: cannot secure a run again");
	rewrite:
		if (wants_write_alias())
			UA_CHECK(b.map_alias(r, prot::rw, &run.write_alias) == 0, "chunk_source: cannot map a write alias again");
		return error::backend_failure;
	}

	/*
	 * Writes into a run's frames through the backend (text_poke_copy()), or
	 * through the run's write alias. No machine lock: contents operations
	 * may run concurrently (backend.h); the caller's lock for the range
	 * serialises the run's written granules (written_granules.h). Marked
	 * before the write, since a failed write may have changed some bytes.
	 */
	error write(chunk_run &run, std::size_t off, const void *src, std::size_t n) noexcept
	{
		if (run.written.tracking())
			run.written.mark(off, n);
		if constexpr (Backend::dereferenceable) {
			if (run.write_alias) {
				std::memcpy(reinterpret_cast<void *>(run.write_alias + off), src, n);
				return error::ok;
			}
		}
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
	 * threads serialise there. A fill through the alias cannot fail. A
	 * text or ro run with a write alias is filled through that alias.
	 *
	 * A text or ro run fills with its fill byte only the granules written
	 * since they last held it (written_granules.h): a freed program pays
	 * for the bytes it wrote, not for its allocation. Any other byte
	 * (ua_zero in a text cache) fills the whole range and marks it.
	 */
	error fill(chunk_run &run, std::size_t off, int byte, std::size_t n) noexcept
	{
		if (run.written.tracking()) {
			if (byte != cfg_.fill_byte()) {
				run.written.mark(off, n);
				return fill_bytes(run, off, byte, n);
			}
			bool ok = run.written.fill_written(off, n, [&](std::size_t o, std::size_t l) noexcept {
				return fill_bytes(run, o, byte, l) == error::ok;
			});
			return ok ? error::ok : error::backend_failure;
		}
		return fill_bytes(run, off, byte, n);
	}

	chunk_source_stats stats() const noexcept
	{
		typename machine<Backend>::guard g(m_.lock);
		return stats_;
	}

private:
	/* Fills [off, off + n) of a run: through a writable alias when there is one, else the backend. */
	error fill_bytes(const chunk_run &run, std::size_t off, int byte, std::size_t n) noexcept
	{
		if constexpr (Backend::dereferenceable) {
			std::uintptr_t base = cfg_.user_prot() == prot::rw ? run.alias : run.write_alias;
			if (base) {
				void *p = reinterpret_cast<void *>(base + off);
				std::memset(p, byte, n);
				asm volatile("" : : "r"(p) : "memory"); /* nothing reads the bytes before reuse: keep the stores */
				return error::ok;
			}
		}
		return m_.backend.fill_frames(run.pfn, off, byte, n) == 0 ? error::ok : error::backend_failure;
	}

	/* Text and ro caches with write_path::writable_alias map a second, read-write alias of each run. */
	bool wants_write_alias() const noexcept
	{
		return cfg_.write == write_path::writable_alias && cfg_.user_prot() != prot::rw;
	}

	/* The cache's direct-map action on r. Machine lock held. */
	int set_direct_map_locked(frame_range r) noexcept
	{
		Backend &b = m_.backend;
		return cfg_.dm_action == direct_map_action::remove ? b.set_direct_map_invalid(r) : b.set_direct_map_ro(r);
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
		/* Never executable: PROT_READ|PROT_WRITE only, so no address of the run is ever W and X. */
		if (wants_write_alias() && b.map_alias(r, prot::rw, &run.write_alias) != 0)
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
