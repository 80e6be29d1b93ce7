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
 * error::no_memory (the page allocator, or a backend step that failed with
 * -ENOMEM or -EAGAIN: out of memory, of VMAs, of lockable memory) or
 * error::backend_failure (any other backend error); the errno and the step
 * are kept in stats() (last_errno, last_step). A failed acquire leaves the
 * machine exactly as it was. Releasing a run undoes
 * the steps (secrets are zeroed before their frames return), restores the
 * direct map with one call, flushes once, asks the backend to collapse the
 * range (a no-op when its large pages are intact, as they are unless
 * something else split them) and frees the frames.
 *
 * Faults that last. An undo step may fail too (a fault that lasts reaches
 * the rollback), and a release has no caller that could do anything with a
 * failure, as vfree() has none. So neither is rolled back again: the steps
 * still to do are recorded (repairs_, a fixed array: recording allocates
 * nothing) and every later acquire() and release() of this source, and its
 * destructor, first finishes them, in order. Until then the run's frames stay
 * allocated and out of the direct map (or at least not yet returned), a
 * consistent state: no cache holds them and nothing else can reach them.
 * release() therefore fails only when the list is full, and then it changed
 * nothing; acquire() refuses to start (backend_failure) in that case.
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
	std::uint64_t repairs = 0;     /* undo or release steps that failed and were recorded for later */
	std::uint64_t repairs_pending = 0; /* runs whose recorded steps are not done yet */
	std::uint64_t repair_frames = 0;   /* their frames: allocated, not held by the cache */
	/*
	 * Why the last backend step failed: its negative errno and its name
	 * ("set_direct_map", "flush_tlb", "fill", "map_alias", "secure_alias"),
	 * e.g. -ENOMEM from secure_alias's mlock() at RLIMIT_MEMLOCK. 0 and ""
	 * until one fails.
	 */
	int last_errno = 0;
	const char *last_step = "";
};

template <mapping_backend Backend>
class chunk_source {
public:
	chunk_source(machine<Backend> &m, const cache_config &cfg) noexcept : m_(m), cfg_(cfg) {}
	chunk_source(const chunk_source &) = delete;
	chunk_source &operator=(const chunk_source &) = delete;
	/* Finishes what it can of the recorded steps; a run whose step still fails stays allocated. */
	~chunk_source()
	{
		typename machine<Backend>::guard g(m_.lock);
		repair_locked();
	}

	/* Takes a run of nr_chunks chunks, out of the direct map and mapped at an alias. */
	result<chunk_run> acquire(std::size_t nr_chunks) noexcept
	{
		if (nr_chunks == 0)
			return result<chunk_run>::failure(error::zero_size);
		unsigned order = chunk_order + unsigned(std::bit_width(nr_chunks - 1));
		if (order > page_max_order)
			return result<chunk_run>::failure(error::too_large);
		typename machine<Backend>::guard g(m_.lock);
		/* A rollback that fails must have somewhere to record its steps. */
		if (!repair_locked()) {
			stats_.failures++;
			return result<chunk_run>::failure(error::backend_failure);
		}
		auto pa = m_.pages.alloc_pages(order, gfp_normal_only, m_.unmapped_hint);
		if (!pa.ok()) {
			stats_.failures++;
			return result<chunk_run>::failure(pa.err == error::no_memory ? error::no_memory : pa.err);
		}
		chunk_run run{pa.value, order, nr_chunks, 0};
		error e = map_run_locked(run);
		if (e != error::ok) {
			stats_.failures++;
			return result<chunk_run>::failure(e);
		}
		m_.unmapped_hint = run.pfn;
		stats_.acquired++;
		return {run, error::ok};
	}

	/*
	 * Gives a run back: the direct map is whole again and the frames are
	 * free, now or, when a backend step fails, after a later call finished
	 * the recorded steps (see Faults that last). Fails (backend_failure,
	 * nothing changed, the run still held and usable) only when the steps
	 * could not be recorded.
	 */
	error release(chunk_run &run) noexcept
	{
		typename machine<Backend>::guard g(m_.lock);
		if (!repair_locked())
			return error::backend_failure;
		/* Secrets never reach the direct map with their contents (zeroed as a free is: fill()). */
		unsigned steps = step_unmap | step_direct_map | step_flush | step_free;
		if (cfg_.kind == cache_kind::secret)
			steps |= step_zero;
		finish_or_record_locked({run, steps, true});
		return error::ok;
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

	/*
	 * The error a failed backend step gives the caller, its errno kept in
	 * stats_: no_memory when the kernel ran out of something the caller can
	 * free or raise (-ENOMEM: memory, VMAs at vm.max_map_count, mlock() at
	 * RLIMIT_MEMLOCK; -EAGAIN: pages that could not be locked), else
	 * backend_failure.
	 */
	error backend_error_locked(const char *step, int rc) noexcept
	{
		stats_.last_errno = rc;
		stats_.last_step = step;
		return rc == -ENOMEM || rc == -EAGAIN ? error::no_memory : error::backend_failure;
	}

	/* Steps 2-6 of acquire, undone in reverse on failure (the frames freed too). Machine lock held. */
	error map_run_locked(chunk_run &run) noexcept
	{
		Backend &b = m_.backend;
		frame_range r = run.frames();
		int rc = set_direct_map_locked(r);
		if (rc != 0) {
			UA_CHECK(m_.pages.free_pages(run.pfn, run.order) == error::ok, "chunk_source: cannot return frames");
			return backend_error_locked("set_direct_map", rc);
		}
		stats_.dm_changes++;
		unsigned undo = step_direct_map | step_flush | step_free;
		const char *step = "flush_tlb";
		if ((rc = b.flush_tlb(r)) != 0)
			goto undo;
		stats_.tlb_flushes++;
		step = "fill";
		if ((rc = b.fill_frames(r.pfn, 0, cfg_.fill_byte(), run.bytes())) != 0)
			goto undo;
		step = "map_alias";
		if ((rc = b.map_alias(r, cfg_.user_prot(), &run.alias)) != 0)
			goto undo;
		step = "secure_alias";
		if (cfg_.kind == cache_kind::secret && (rc = b.secure_alias(run.alias, run.bytes())) != 0) {
			undo |= step_unmap;
			goto undo;
		}
		return error::ok;
	undo:
		finish_or_record_locked({run, undo, false});
		return backend_error_locked(step, rc);
	}

	/* What is left to do for a run leaving the cache, in this order. */
	enum : unsigned {
		step_zero = 1,       /* a secret's contents zeroed through the write path */
		step_unmap = 2,      /* its alias unmapped */
		step_direct_map = 4, /* its frames back in the direct map */
		step_flush = 8,      /* the TLB flushed for them (then a best-effort collapse) */
		step_free = 16,      /* its block back to the page allocator */
	};
	struct repair_rec {
		chunk_run run;
		unsigned steps = 0;
		bool release = false; /* a release (counted in stats_.released when done), else an undone acquire */
	};
	static constexpr std::size_t max_repairs = 32;

	/* Does rr's steps in order; false, with the failed step and those after it left in rr, when one fails. */
	bool finish_locked(repair_rec &rr) noexcept
	{
		Backend &b = m_.backend;
		frame_range r = rr.run.frames();
		if (rr.steps & step_zero) {
			if (fill(rr.run, 0, 0, rr.run.bytes()) != error::ok)
				return false;
			rr.steps &= ~unsigned(step_zero);
		}
		if (rr.steps & step_unmap) {
			if (b.unmap_alias(rr.run.alias, rr.run.bytes()) != 0)
				return false;
			rr.steps &= ~unsigned(step_unmap);
		}
		if (rr.steps & step_direct_map) {
			if (b.set_direct_map_default(r) != 0)
				return false;
			stats_.dm_changes++;
			rr.steps &= ~unsigned(step_direct_map);
		}
		if (rr.steps & step_flush) {
			if (b.flush_tlb(r) != 0)
				return false;
			stats_.tlb_flushes++;
			rr.steps &= ~unsigned(step_flush);
			if (rr.release)
				(void)b.collapse(r); /* best effort: the large pages are normally intact already */
		}
		UA_CHECK(m_.pages.free_pages(rr.run.pfn, rr.run.order) == error::ok, "chunk_source: page allocator refused a run");
		rr.steps = 0;
		if (rr.release)
			stats_.released++;
		return true;
	}

	/* Finishes rr now, or records what is left of it (the caller made sure there is room). */
	void finish_or_record_locked(repair_rec rr) noexcept
	{
		if (finish_locked(rr))
			return;
		UA_CHECK(nr_repairs_ < max_repairs, "chunk_source: no room to record a run's steps");
		repairs_[nr_repairs_++] = rr;
		stats_.repairs++;
		stats_.repairs_pending = nr_repairs_;
		stats_.repair_frames += rr.run.frames().nr_pages;
	}

	/* Retries every recorded run's steps; true when there is room to record one more. */
	bool repair_locked() noexcept
	{
		std::size_t kept = 0;
		for (std::size_t i = 0; i < nr_repairs_; i++) {
			if (!finish_locked(repairs_[i]))
				repairs_[kept++] = repairs_[i];
			else
				stats_.repair_frames -= repairs_[i].run.frames().nr_pages;
		}
		nr_repairs_ = kept;
		stats_.repairs_pending = nr_repairs_;
		return nr_repairs_ < max_repairs;
	}

	machine<Backend> &m_;
	const cache_config &cfg_;
	chunk_source_stats stats_;
	repair_rec repairs_[max_repairs]; /* machine lock: runs whose undo or release is not finished */
	std::size_t nr_repairs_ = 0;      /* machine lock */
};

}  // namespace ua
