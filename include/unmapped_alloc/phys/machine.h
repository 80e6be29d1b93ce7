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
 * Use machine::guard (or with_lock) rather than touching the fields unlocked
 * when more than one thread can reach the machine.
 */
#pragma once

#include <concepts>
#include <cstdint>
#include <mutex>
#include <utility>

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
		: pages(nr_pages, pcfg), backend(nr_pages, std::forward<Args>(backend_args)...)
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
		: pages(mm, pcfg), backend(mm, std::forward<Args>(backend_args)...)
	{
	}
	machine(const machine &) = delete;
	machine &operator=(const machine &) = delete;

	std::uint64_t nr_pages() const noexcept { return backend.nr_pages(); }

	/* Runs fn(pages, backend) under the machine lock. */
	template <class Fn>
	decltype(auto) with_lock(Fn &&fn)
	{
		std::lock_guard<std::mutex> g(lock);
		return std::forward<Fn>(fn)(pages, backend);
	}

	using guard = std::lock_guard<std::mutex>;

	page_allocator pages; /* protected by lock */
	Backend backend;      /* protected by lock */
	/*
	 * Where memory that leaves the direct map clusters: a frame inside the
	 * 1 GiB region whose direct-map page the last unmapped chunk already
	 * split, passed as the page allocator's placement hint so the next chunk
	 * splits nothing new. The kernel's page allocator takes no such hint:
	 * it is honoured only with page_alloc_config::placement_hint (a
	 * proposal), and ignored otherwise. Protected by lock.
	 */
	pfn_t unmapped_hint = no_hint;
	std::mutex lock;
};

}  // namespace ua
