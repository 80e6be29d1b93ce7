// SPDX-License-Identifier: MIT
/*
 * phys/machine.h - one machine: its page allocator and its mapping backend.
 *
 * Everything that allocates memory leaving the direct map, the library's
 * caches and the peer allocators alike, sits beside the same page allocator
 * and changes the same direct map. A machine bundles the two with the lock
 * that serialises them.
 *
 * Locking. machine::lock is the innermost lock of the library (the analogue of
 * zone->lock plus cpa_lock): it protects the page allocator and the backend,
 * neither of which is internally synchronised. Callers hold it only around
 * page-allocator and backend calls, never while taking another lock. A cache's
 * own lock (cache/) may be held while taking it; never the other way round.
 * pages and unmapped_hint are UA_GUARDED_BY(lock): clang's -Wthread-safety
 * rejects any touch of them without it, tests included (they hold
 * machine::guard, or call with_lock(), nr_free_pages(), check_consistency()).
 * The backend is not, for its contents path runs unlocked (see below).
 */
#pragma once

#include <atomic>
#include <concepts>
#include <cstdint>
#include <string>
#include <utility>

#include "../check.h"
#include "../ds.h"
#include "../mapping.h"
#include "page_alloc.h"

namespace ua {

template <mapping_backend Backend>
class machine {
public:
	using backend_type = Backend;

	/* nr_pages of memory; the backend is built with the same size (extra args go to it). */
	template <class... Args>
	explicit machine(std::uint64_t nr_pages, page_alloc_config pcfg = {}, Args &&...backend_args)
		: backend(nr_pages, std::forward<Args>(backend_args)...), pages(page_count(nr_pages), pcfg)
	{
	}
	/*
	 * The machine of memory map mm: the page allocator frees only its RAM,
	 * and a backend built from the same map (the simulated direct map)
	 * maps it as x86 boot does.
	 */
	template <class... Args>
		requires std::constructible_from<Backend, const memory_map &, Args...>
	machine(const memory_map &mm, page_alloc_config pcfg, Args &&...backend_args)
		: backend(mm, std::forward<Args>(backend_args)...), pages(mm, pcfg)
	{
	}
	/* The same, with a page allocator already built (a copy of an aged one, say) instead of booting one. */
	template <class... Args>
		requires std::constructible_from<Backend, const memory_map &, Args...>
	machine(const memory_map &mm, const page_allocator &pa, Args &&...backend_args)
		: backend(mm, std::forward<Args>(backend_args)...), pages(pa)
	{
	}
	template <class... Args>
	machine(std::uint64_t nr_pages, const page_allocator &pa, Args &&...backend_args)
		: backend(nr_pages, std::forward<Args>(backend_args)...), pages(pa)
	{
	}
	machine(const machine &) = delete;
	machine &operator=(const machine &) = delete;
	/*
	 * A cache holds a reference to its machine (its chunk source, which
	 * counts itself in users): a machine must outlive its caches. Destroying
	 * it first would leave each cache's destructor giving chunks back to
	 * freed memory, so it stops the process here, naming the rule.
	 */
	~machine()
	{
		UA_CHECK(users.load(std::memory_order_relaxed) == 0,
			 "machine destroyed before the caches that use it (destroy every cache first)");
	}

	std::uint64_t nr_pages() const noexcept { return backend.nr_pages(); }

private:
	/* Frames for the page allocator: as asked, or one chunk when the backend did not come up. */
	std::uint64_t page_count(std::uint64_t asked) const noexcept { return backend.nr_pages() == 0 ? pages_per_chunk : asked; }

public:

	/* Runs fn(pages, backend) under the machine lock (not held by the caller: it is not recursive). */
	template <class Fn>
	decltype(auto) with_lock(Fn &&fn) UA_EXCLUDES(lock)
	{
		mutex_guard g(lock);
		return std::forward<Fn>(fn)(pages, backend);
	}

	using guard = mutex_guard; /* annotated: clang sees the lock held */

	/* Free frames of the page allocator (buddy and per-CPU lists), read under the lock. */
	std::uint64_t nr_free_pages() UA_EXCLUDES(lock)
	{
		mutex_guard g(lock);
		return pages.nr_free_pages();
	}

	/* page_allocator::check_consistency() under the lock: "" when its lists and records agree. */
	std::string check_consistency() UA_EXCLUDES(lock)
	{
		mutex_guard g(lock);
		return pages.check_consistency();
	}

	/*
	 * The backend is built first: one that cannot come up (a linux_backend
	 * larger than the host, ok() == false, nr_pages() == 0) leaves a page
	 * allocator of one chunk's frames, not of the size asked for, whose
	 * per-frame records would take memory the host does not have (a 4 TiB
	 * machine: gigabytes before the backend could say no). Every backend
	 * operation of such a machine fails, so its caches allocate nothing.
	 */
	/*
	 * The backend's mapping operations (direct map, aliases, flushes) run
	 * under lock; its contents path (write/fill/release_frames) runs without
	 * any lock by contract (mapping/backend.h), so the backend as a whole is
	 * not UA_GUARDED_BY(lock): clang checks the lock on the page allocator
	 * and the hint, and on every *_locked step that touches them.
	 */
	Backend backend;
	page_allocator pages UA_GUARDED_BY(lock);
	/*
	 * Where memory that leaves the direct map clusters: a frame inside the
	 * 1 GiB region whose direct-map page the last unmapped chunk already
	 * split, passed as the page allocator's placement hint so the next chunk
	 * splits nothing new. The kernel's page allocator takes no such hint:
	 * it is honoured only with page_alloc_config::placement_hint (a
	 * proposal), and ignored otherwise. Protected by lock.
	 */
	pfn_t unmapped_hint UA_GUARDED_BY(lock) = no_hint;
	ua::mutex lock; /* a capability: functions called under it say UA_REQUIRES(lock) */
	std::atomic<unsigned> users{0}; /* chunk sources (one per cache) on this machine */
	/*
	 * Runs, and their frames, that a cache could not give back when it was
	 * destroyed because a backend step kept failing (cache/chunk_source.h,
	 * docs/reliability.md): allocated in `pages`, owned by nothing, as the
	 * failed step left them. 0 unless a backend failed at a cache's teardown.
	 */
	std::atomic<std::uint64_t> leaked_runs{0}, leaked_frames{0};
};

}  // namespace ua
