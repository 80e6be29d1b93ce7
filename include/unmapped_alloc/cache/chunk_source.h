// SPDX-License-Identifier: MIT
/*
 * cache/chunk_source.h - where a cache's chunks come from and go back to.
 *
 * A cache takes memory in runs of whole 2 MiB chunks from the page allocator
 * and changes the direct map only at that granularity, so no large page is
 * ever split for it. Acquiring a run (the cache's "populate" step, as
 * execmem_cache_populate()):
 *
 *   1. frames where the direct map is already split, when the backend says
 *      where that is (mapping/backend.h, reports_direct_map_pages) and
 *      cache_config::split_regions_first is set: the 1 GiB regions are
 *      scanned from the one of the last chunk on, a region whose PUD is a
 *      1 GiB leaf skipped whole (removing 2 MiB there splits it), as is one
 *      with no free 2 MiB block (page_allocator::region_free_blocks()), and in
 *      the others each 2 MiB range that is wholly free and mapped by a 2 MiB
 *      page or smaller is taken with alloc_contig_range() (the kernel API
 *      CMA and virtio-mem use; page_alloc_range.h), after one
 *      drain_all_pages(), as its isolation drains. So after the first chunk
 *      of a region split its 1 GiB page, the region's free 2 MiB ranges
 *      serve before any other 1 GiB page is split, and low memory that boot
 *      already mapped by 2 MiB pages serves first of all. Otherwise
 *      alloc_pages(order, gfp_normal_only, hint): never ZONE_MOVABLE, since
 *      memory hotplug needs it movable; the hint is machine::unmapped_hint,
 *      honoured only under the proposed page_alloc_config::placement_hint
 *      (the kernel's page allocator takes no hint); when that fails for a
 *      single chunk, with cache_config::migrate_for_chunks, a 2 MiB range of
 *      free and page-cache frames, the page cache migrated out by
 *      alloc_contig_range() (chunk_migrate.h);
 *   2. remove the run from the direct map (or make it read-only) with one
 *      call per piece (below; one piece unless the run is scattered)
 *      covering whole 2 MiB pages, which CPA changes in place;
 *   3. one TLB flush per piece;
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
 * error::no_memory (the page allocator, or a backend step that failed with
 * -ENOMEM or -EAGAIN: out of memory, of VMAs, of lockable memory) or
 * error::backend_failure (any other backend error); the errno and the step
 * are kept in stats() (last_errno, last_step). A failed acquire leaves the
 * machine exactly as it was. Releasing a run undoes
 * the steps (secrets are zeroed before their frames return), restores the
 * direct map with one call per piece, flushes each, asks the backend to
 * collapse each (a no-op when its large pages are intact, as they are unless
 * something else split them) and frees the frames.
 *
 * The page allocator may throw (std::bad_alloc from the records it grows,
 * phys/page_alloc.h); acquire() and release() are noexcept,
 * so every call to it goes through alloc_block_locked() and
 * free_block_locked(), which turn an exception into error::no_memory.
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
 * Length: about 710 lines, over the usual 400, because acquire, release and
 * the repair records are one transaction log: each acquire step has its undo
 * and its repair record, and splitting the steps from their undo would put
 * the rule that every step is undone (or recorded) in two files. The run
 * type (chunk_run.h) and the migration search (chunk_migrate.h) are headers
 * of their own.
 *
 * Locking: every method takes machine::lock itself (machine::guard, so clang
 * checks the UA_REQUIRES(m_.lock) of every *_locked step); the caller may hold its
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
#include "chunk_migrate.h"
#include "chunk_run.h"

namespace ua {

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
	/* Chunks taken by migrating page cache out of a 2 MiB range (chunk_migrate.h). */
	std::uint64_t chunks_migrated = 0;
};

template <mapping_backend Backend>
class chunk_source {
public:
	/* The largest run: 1 GiB, the largest alias a cache maps. */
	static constexpr std::size_t max_run_chunks = std::size_t{1} << (30 - chunk_shift);

	chunk_source(machine<Backend> &m, const cache_config &cfg) noexcept : m_(m), cfg_(cfg)
	{
		m_.users.fetch_add(1, std::memory_order_relaxed);
	}
	chunk_source(const chunk_source &) = delete;
	chunk_source &operator=(const chunk_source &) = delete;

	/* The machine's lock, named so that a cache's locks can be declared UA_ACQUIRED_BEFORE it. */
	mutex &machine_lock() const noexcept UA_RETURN_CAPABILITY(m_.lock) { return m_.lock; }
	/*
	 * Finishes what it can of the recorded steps; a run whose step still
	 * fails is leaked where it stands (leak_locked(): counted in the
	 * machine's leaked_runs and leaked_frames).
	 */
	~chunk_source()
	{
		if (nr_repairs_ != 0) { /* the owner's last call: nothing runs concurrently */
			typename machine<Backend>::guard g(m_.lock);
			repair_locked();
			for (std::size_t i = 0; i < nr_repairs_; i++)
				leak_locked(repairs_[i]);
			nr_repairs_ = 0;
			stats_.repairs_pending = 0;
		}
		m_.users.fetch_sub(1, std::memory_order_relaxed);
	}
	/* In the child of a fork() (cache/fork.h): the recorded runs are the parent's; forget them. */
	void abandon_after_fork() noexcept { nr_repairs_ = 0; }

	/* Takes a run of nr_chunks chunks, out of the direct map and mapped at an alias. */
	result<chunk_run> acquire(std::size_t nr_chunks) noexcept
	{
		if (nr_chunks == 0)
			return result<chunk_run>::failure(error::zero_size);
		if (nr_chunks > max_run_chunks)
			return result<chunk_run>::failure(error::too_large);
		unsigned order = chunk_order + unsigned(std::bit_width(nr_chunks - 1));
		typename machine<Backend>::guard g(m_.lock);
		/* A rollback that fails must have somewhere to record its steps. */
		if (!repair_locked()) {
			stats_.failures++;
			return result<chunk_run>::failure(error::backend_failure);
		}
		auto r = take_frames_locked(nr_chunks, order);
		if (!r.ok()) {
			stats_.failures++;
			return r;
		}
		chunk_run run = r.value;
		/* Secrets are written by their users directly: only text and ro runs know what was written. */
		if (cfg_.user_prot() != prot::rw && !run.written.init(run.bytes(), cfg_.granule)) {
			free_frames_locked(run);
			stats_.failures++;
			return result<chunk_run>::failure(error::no_memory);
		}
		error e = map_run_locked(run); /* on failure it gave the frames back, or recorded that it will */
		if (e != error::ok) {
			run.written.destroy();
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
		finish_or_record_locked(release_rec(run));
		return error::ok;
	}

	/*
	 * release() for the owner's teardown (the cache's destructor), which has
	 * no caller to report to and must not stop the process because a backend
	 * failed: it never fails. The recorded runs are retried first; when the
	 * record is still full (a fault that lasts keeps max_repairs runs in it),
	 * this run's steps are tried once more at once, and if one fails again
	 * the run is leaked where that step left it (leak_locked()). Either way
	 * the run is no longer the caller's.
	 */
	void release_at_teardown(chunk_run &run) noexcept
	{
		typename machine<Backend>::guard g(m_.lock);
		const bool room = repair_locked();
		repair_rec rr = release_rec(run);
		if (room)
			finish_or_record_locked(rr);
		else if (!finish_locked(rr))
			leak_locked(rr);
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
		int rc = run.for_each_span(off, n, [&](pfn_t pfn, std::size_t o, std::size_t len) noexcept {
			return m_.backend.fill_frames(pfn, o, byte, len);
		});
		return rc == 0 ? error::ok : error::backend_failure;
	}

	/*
	 * The frames of a run of nr_chunks chunks (order: the block that would
	 * hold them): one block when nr_chunks is a power of two and such a block
	 * is free, else nr_chunks order-9 blocks (see the top). No alias yet.
	 * Machine lock held.
	 */
	result<chunk_run> take_frames_locked(std::size_t nr_chunks, unsigned order) noexcept UA_REQUIRES(m_.lock)
	{
		/* One buddy block only up to MAX_PAGE_ORDER: above it vmalloc() takes pages, not blocks. */
		if (std::has_single_bit(nr_chunks) && order <= page_max_order) {
			if (auto ps = take_split_region_locked(order); ps.ok())
				return {chunk_run{ps.value, order, nr_chunks, 0, nullptr, 0, 0, {}}, error::ok};
			auto pa = alloc_chunk_locked(order, m_.unmapped_hint);
			if (pa.ok())
				return {chunk_run{pa.value, order, nr_chunks, 0, nullptr, 0, 0, {}}, error::ok};
			if (nr_chunks == 1 || pa.err != error::no_memory)
				return result<chunk_run>::failure(pa.err);
		}
		std::unique_ptr<pfn_t[]> blocks(new (std::nothrow) pfn_t[nr_chunks]);
		if (!blocks)
			return result<chunk_run>::failure(error::no_memory);
		pfn_t hint = m_.unmapped_hint;
		for (std::size_t i = 0; i < nr_chunks; i++) {
			auto pa = take_split_region_locked(chunk_order);
			if (!pa.ok())
				pa = alloc_chunk_locked(chunk_order, hint);
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
		return {chunk_run{blocks[0], chunk_order, nr_chunks, 0, pieces, np, 0, {}}, error::ok};
	}

	/*
	 * Gives the frames of a run back to the page allocator, from its
	 * first_chunk'th chunk on (a run of one block: its block), and frees a
	 * scattered run's pieces array. Machine lock held.
	 */
	void free_frames_locked(chunk_run &run, std::size_t first_chunk = 0) noexcept UA_REQUIRES(m_.lock)
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

	/*
	 * Step 1 of the top: a block of 2^order frames inside a 1 GiB region
	 * whose direct map is already split, or no_memory. Machine lock held.
	 */
	result<pfn_t> take_split_region_locked(unsigned order) noexcept UA_REQUIRES(m_.lock)
	{
		if constexpr (reports_direct_map_pages<Backend>) {
			if (!cfg_.split_regions_first || order < chunk_order || order > page_max_order)
				return result<pfn_t>::failure(error::no_memory);
			const pfn_t end = m_.pages.end_pfn();
			const std::uint64_t nr_regions = (end + pages_per_region - 1) / pages_per_region;
			const pfn_t nr = pfn_t{1} << order;
			const std::uint64_t first = m_.unmapped_hint != no_hint && m_.unmapped_hint < end
							    ? m_.unmapped_hint / pages_per_region : 0;
			bool drained = false;
			for (std::uint64_t k = 0; k < nr_regions; k++) {
				const std::uint64_t r = (first + k) % nr_regions;
				if (m_.pages.region_free_blocks(r) == 0)
					continue; /* no free 2 MiB range on its buddy lists */
				const pfn_t lo = r * pages_per_region, hi = std::min<pfn_t>(lo + pages_per_region, end);
				for (pfn_t p = lo; p + nr <= hi; p += nr) {
					const std::uint64_t sz = m_.backend.direct_map_page_size(p);
					if (sz == pud_size)
						break; /* the region is one 1 GiB page: taking from it splits it */
					/* In a split region every page is 2 MiB or smaller; holes are never free. */
					if (!m_.pages.range_free(p, order))
						continue;
					if (!drained) { /* draining only adds free frames: p stays free */
						UA_TRY {
							m_.pages.drain_all_pages();
						} UA_CATCH_ALL {
							return result<pfn_t>::failure(error::no_memory);
						}
						drained = true;
					}
					auto pa = m_.pages.alloc_contig_range(p, order, gfp_normal_only);
					if (pa.ok() || pa.err != error::no_memory)
						return pa;
				}
			}
		}
		return result<pfn_t>::failure(error::no_memory);
	}

	/* alloc_pages() for a cache's block, no exception (see the top). Machine lock held. */
	result<pfn_t> alloc_block_locked(unsigned order, pfn_t hint) noexcept UA_REQUIRES(m_.lock)
	{
		UA_TRY {
			auto pa = m_.pages.alloc_pages(order, gfp_normal_only, hint);
			return pa;
		} UA_CATCH_ALL {
			return result<pfn_t>::failure(error::no_memory);
		}
	}

	/*
	 * alloc_block_locked(), then for a single chunk that the buddy lists
	 * cannot give, a range the page cache is migrated out of
	 * (cache_config::migrate_for_chunks; chunk_migrate.h). Machine lock held.
	 */
	result<pfn_t> alloc_chunk_locked(unsigned order, pfn_t hint) noexcept UA_REQUIRES(m_.lock)
	{
		auto pa = alloc_block_locked(order, hint);
		if (pa.ok() || pa.err != error::no_memory || order != chunk_order || !cfg_.migrate_for_chunks)
			return pa;
		auto mg = migrate_.take(m_.pages, m_.backend, m_.unmapped_hint, cfg_.split_regions_first);
		if (mg.ok())
			stats_.chunks_migrated++;
		return mg.ok() ? mg : pa;
	}

	/* free_pages(), no exception: error::no_memory when the allocator could not grow its records. Machine lock held. */
	error free_block_locked(pfn_t pfn, unsigned order) noexcept UA_REQUIRES(m_.lock)
	{
		UA_TRY {
			return m_.pages.free_pages(pfn, order);
		} UA_CATCH_ALL {
			return error::no_memory;
		}
	}

	/* The cache's direct-map action on r. Machine lock held. */
	int set_direct_map_locked(frame_range r) noexcept UA_REQUIRES(m_.lock)
	{
		Backend &b = m_.backend;
		return cfg_.dm_action == direct_map_action::remove ? b.set_direct_map_invalid(r) : b.set_direct_map_ro(r);
	}

	/* The run's alias: one mapping of every piece, in order. Machine lock held. */
	int map_alias_locked(chunk_run &run) noexcept UA_REQUIRES(m_.lock)
	{
		Backend &b = m_.backend;
		return run.scattered() ? b.map_alias_runs(run.pieces, run.nr_pieces, cfg_.user_prot(), &run.alias)
				       : b.map_alias(run.frames(), cfg_.user_prot(), &run.alias);
	}

	/*
	 * The run's write alias (write_path::writable_alias, text and ro): every
	 * piece mapped once more, PROT_READ|PROT_WRITE and never executable, so
	 * no address of the run is ever W and X. Nothing to do otherwise.
	 * Machine lock held.
	 */
	int map_write_alias_locked(chunk_run &run) noexcept UA_REQUIRES(m_.lock)
	{
		if (cfg_.write != write_path::writable_alias || cfg_.user_prot() == prot::rw)
			return 0;
		Backend &b = m_.backend;
		return run.scattered() ? b.map_alias_runs(run.pieces, run.nr_pieces, prot::rw, &run.write_alias)
				       : b.map_alias(run.frames(), prot::rw, &run.write_alias);
	}

	/*
	 * The error a failed backend step gives the caller, its errno kept in
	 * stats_: no_memory when the kernel ran out of something the caller can
	 * free or raise (-ENOMEM: memory, VMAs at vm.max_map_count, mlock() at
	 * RLIMIT_MEMLOCK; -EAGAIN: pages that could not be locked), else
	 * backend_failure.
	 */
	error backend_error_locked(const char *step, int rc) noexcept UA_REQUIRES(m_.lock)
	{
		stats_.last_errno = rc;
		stats_.last_step = step;
		return rc == -ENOMEM || rc == -EAGAIN ? error::no_memory : error::backend_failure;
	}

	/* What is left to do for a run leaving the cache, in this order. */
	enum : unsigned {
		step_zero = 1,       /* a secret's contents zeroed (fill()) */
		step_unmap = 2,      /* its write alias (if any), then its alias unmapped */
		step_direct_map = 4, /* pieces [dm_done, nr_dm) back in the direct map */
		step_flush = 8,      /* the TLB flushed for pieces [flush_done, nr_dm) (then a best-effort collapse) */
		step_free = 16,      /* its frames back to the page allocator (and a scattered run's pieces array) */
	};
	struct repair_rec {
		chunk_run run;
		unsigned steps = 0;
		std::size_t nr_dm = 0;      /* pieces whose direct map was changed */
		std::size_t dm_done = 0;    /* of those, restored already */
		std::size_t flush_done = 0; /* of those, flushed already */
		bool release = false;       /* a release (counted in stats_.released when done), else an undone acquire */
	};
	static constexpr std::size_t max_repairs = 32;

	/*
	 * Steps 2-6 of acquire on every piece, undone in reverse on failure,
	 * the frames given back too (or recorded to be: Faults that last).
	 * Machine lock held.
	 */
	error map_run_locked(chunk_run &run) noexcept UA_REQUIRES(m_.lock)
	{
		Backend &b = m_.backend;
		const std::size_t np = run.piece_count();
		std::size_t changed = 0;
		int rc = 0;
		const char *step = "set_direct_map";
		repair_rec undo{run, step_direct_map | step_flush | step_free, 0, 0, 0, false};
		for (; changed < np; changed++) {
			if ((rc = set_direct_map_locked(run.piece(changed))) != 0)
				goto undo;
			stats_.dm_changes++;
		}
		step = "flush_tlb";
		for (std::size_t i = 0; i < np; i++) {
			if ((rc = b.flush_tlb(run.piece(i))) != 0)
				goto undo;
			stats_.tlb_flushes++;
		}
		step = "fill";
		for (std::size_t i = 0; i < np; i++)
			if ((rc = b.fill_frames(run.piece(i).pfn, 0, cfg_.fill_byte(), std::size_t(run.piece(i).bytes()))) != 0)
				goto undo;
		step = "map_alias";
		if ((rc = map_alias_locked(run)) != 0)
			goto undo;
		step = "secure_alias";
		if (cfg_.kind == cache_kind::secret && (rc = b.secure_alias(run.alias, run.bytes())) != 0) {
			undo.steps |= step_unmap;
			goto undo;
		}
		step = "map_write_alias";
		if ((rc = map_write_alias_locked(run)) != 0) {
			undo.steps |= step_unmap;
			goto undo;
		}
		return error::ok;
	undo:
		undo.run = run;
		undo.nr_dm = changed;
		finish_or_record_locked(undo);
		run.pieces = nullptr; /* freed with the frames, or the record's */
		run.nr_pieces = 0;
		return backend_error_locked(step, rc);
	}

	/* Does rr's steps in order; false, with the failed step and those after it left in rr, when one fails. */
	bool finish_locked(repair_rec &rr) noexcept UA_REQUIRES(m_.lock)
	{
		Backend &b = m_.backend;
		if (rr.steps & step_zero) {
			if (fill(rr.run, 0, 0, rr.run.bytes()) != error::ok)
				return false;
			rr.steps &= ~unsigned(step_zero);
		}
		if (rr.steps & step_unmap) {
			if (rr.run.write_alias) {
				if (b.unmap_alias(rr.run.write_alias, rr.run.bytes()) != 0)
					return false;
				rr.run.write_alias = 0;
			}
			if (b.unmap_alias(rr.run.alias, rr.run.bytes()) != 0)
				return false;
			rr.steps &= ~unsigned(step_unmap);
		}
		if (rr.steps & step_direct_map) {
			for (; rr.dm_done < rr.nr_dm; rr.dm_done++) {
				if (b.set_direct_map_default(rr.run.piece(rr.dm_done)) != 0)
					return false;
				stats_.dm_changes++;
			}
			rr.steps &= ~unsigned(step_direct_map);
		}
		if (rr.steps & step_flush) {
			for (; rr.flush_done < rr.nr_dm; rr.flush_done++) {
				if (b.flush_tlb(rr.run.piece(rr.flush_done)) != 0)
					return false;
				stats_.tlb_flushes++;
			}
			rr.steps &= ~unsigned(step_flush);
			if (rr.release)
				for (std::size_t i = 0; i < rr.nr_dm; i++)
					(void)b.collapse(rr.run.piece(i)); /* best effort: the large pages are normally intact already */
		}
		free_frames_locked(rr.run);
		rr.steps = 0;
		if (rr.release)
			stats_.released++;
		return true;
	}

	static std::uint64_t run_frames(const chunk_run &run) noexcept { return std::uint64_t(run.nr_chunks) * pages_per_chunk; }

	/* The steps that give run back; the run is the record's from here on (its fields the caller kept are cleared). */
	repair_rec release_rec(chunk_run &run) noexcept
	{
		/* Secrets never reach the direct map with their contents (zeroed as a free is: fill()). */
		run.written.destroy(); /* the frames are trap-filled or zeroed whole from here on */
		repair_rec rr{run, step_unmap | step_direct_map | step_flush | step_free, run.piece_count(), 0, 0, true};
		if (cfg_.kind == cache_kind::secret)
			rr.steps |= step_zero;
		run.write_alias = 0; /* unmapped, or the record's to unmap */
		run.pieces = nullptr; /* a scattered run's pieces array is the record's now, freed with its frames */
		run.nr_pieces = 0;
		return rr;
	}

	/*
	 * A run whose steps cannot be finished and cannot wait any longer (its
	 * source is going away): left as the failed step left it - frames
	 * allocated in the page allocator, the direct map, the alias and (for a
	 * secret whose zeroing failed) the contents as they were - owned by
	 * nothing, and counted in the machine (machine::leaked_runs,
	 * leaked_frames) so the owner of the machine can see it. A scattered
	 * run's pieces array is freed: no step will use it.
	 */
	void leak_locked(repair_rec &rr) noexcept UA_REQUIRES(m_.lock)
	{
		m_.leaked_runs.fetch_add(1, std::memory_order_relaxed);
		m_.leaked_frames.fetch_add(run_frames(rr.run), std::memory_order_relaxed);
		if (rr.run.scattered())
			delete[] rr.run.pieces;
		rr.run.pieces = nullptr;
		rr.run.nr_pieces = 0;
		rr.steps = 0;
	}

	/* Finishes rr now, or records what is left of it (the caller made sure there is room). */
	void finish_or_record_locked(repair_rec rr) noexcept UA_REQUIRES(m_.lock)
	{
		if (finish_locked(rr))
			return;
		UA_CHECK(nr_repairs_ < max_repairs, "chunk_source: no room to record a run's steps");
		repairs_[nr_repairs_++] = rr;
		stats_.repairs++;
		stats_.repairs_pending = nr_repairs_;
		stats_.repair_frames += run_frames(rr.run);
	}

	/* Retries every recorded run's steps; true when there is room to record one more. */
	bool repair_locked() noexcept UA_REQUIRES(m_.lock)
	{
		std::size_t kept = 0;
		for (std::size_t i = 0; i < nr_repairs_; i++) {
			std::uint64_t frames = run_frames(repairs_[i].run);
			if (!finish_locked(repairs_[i]))
				repairs_[kept++] = repairs_[i];
			else
				stats_.repair_frames -= frames;
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
	chunk_migrate migrate_ UA_GUARDED_BY(m_.lock); /* step 1b of the top */
};

}  // namespace ua
