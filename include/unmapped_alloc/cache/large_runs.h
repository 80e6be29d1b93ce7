// SPDX-License-Identifier: MIT
/*
 * cache/large_runs.h - allocations larger than a chunk: a run of whole chunks each.
 *
 * As scudo's secondary allocator beside its primary, a request larger than
 * one 2 MiB chunk does not go through an arena: it takes a run of whole
 * chunks of its own from the registry (cache/chunk_registry.h), in state
 * large, and the run goes back whole when the allocation is freed. The run
 * is virtually contiguous; its chunks are wherever the page allocator had
 * them (cache/chunk_source.h), so a large request succeeds whenever enough
 * chunks are free, as vmalloc() of 2 MiB pages does. The
 * allocation starts at the run's alias; any other address inside it is an
 * interior pointer.
 *
 * A deferred free (free_deferred()) marks the run large_deferred, so that a
 * second free, deferred or not, is refused as not live; when the grace period
 * is over complete_deferred() gives the run back. A release the backend fails
 * leaves the run unreleased, no longer the caller's, until a shrink gives it
 * back (chunk_registry::release_large_locked()).
 *
 * Locking: everything here runs under the registry's lock (the cache's chunk
 * lock); a lockless reader's view of the record's state is only a hint, each
 * function checks it again under the lock.
 */
#pragma once

#include <cstddef>
#include <cstdint>

#include "../error.h"
#include "../thread_safety.h"
#include "chunk_registry.h"

namespace ua {

template <mapping_backend Backend>
class large_runs {
	using slot_type = typename chunk_registry<Backend>::slot_type;

public:
	large_runs(chunk_registry<Backend> &reg, const cache_config &cfg) noexcept : reg_(reg), cfg_(cfg) {}

	/* A new run of whole chunks for size bytes (size > chunk_size), filled, or zeroed with ua_zero. */
	result<void *> alloc(std::size_t size, ua_flags flags) noexcept UA_EXCLUDES(reg_.lock)
	{
		if (flags & ua_norefill)
			return result<void *>::failure(error::no_memory);
		std::size_t n = (size + chunk_size - 1) / chunk_size;
		auto r = reg_.new_run(n, chunk_state::large);
		if (!r.ok())
			return result<void *>::failure(r.err);
		chunk_rec *rec = r.value;
		/* A new run is filled already (trap bytes or zeroes); ua_zero needs zeroes. */
		if ((flags & ua_zero) && cfg_.fill_byte() != 0 &&
		    reg_.source().fill(rec->run, 0, 0, rec->run.bytes()) != error::ok) {
			mutex_guard g(reg_.lock);
			UA_CHECK(reg_.release_locked(rec) == error::ok, "unmapped_cache: cannot undo a large allocation");
			return result<void *>::failure(error::backend_failure);
		}
		return {reinterpret_cast<void *>(rec->run.alias), error::ok};
	}

	/* Frees the large allocation at addr, whose chunk maps to rec. */
	error free(chunk_rec *rec, std::uintptr_t addr) noexcept UA_EXCLUDES(reg_.lock)
	{
		mutex_guard g(reg_.lock);
		chunk_state st = rec->get();
		if (!is_large(st))
			return error::not_live;
		if (addr != rec->run.alias)
			return error::interior_pointer;
		if (st == chunk_state::large_deferred)
			return error::not_live; /* already freed with free_deferred() */
		reg_.release_large_locked(rec);
		return error::ok;
	}

	/* free_deferred()'s first step: addr is no longer live; complete_deferred() frees it after the grace period. */
	error defer(chunk_rec *rec, std::uintptr_t addr) noexcept UA_EXCLUDES(reg_.lock)
	{
		mutex_guard g(reg_.lock);
		chunk_state st = rec->get();
		if (st == chunk_state::free_rec)
			return error::not_live;
		if (!is_large(st) || addr != rec->run.alias)
			return error::interior_pointer;
		if (st == chunk_state::large_deferred)
			return error::not_live;
		rec->set(chunk_state::large_deferred);
		return error::ok;
	}

	/* The grace period of a deferred free of rec's run is over: give the run back. */
	void complete_deferred(chunk_rec *rec) noexcept UA_EXCLUDES(reg_.lock)
	{
		mutex_guard g(reg_.lock);
		UA_CHECK(rec->get() == chunk_state::large_deferred, "unmapped_cache: deferred free of a large run not queued");
		reg_.release_large_locked(rec);
	}

	/* Writes len bytes at addr inside the large allocation of rec, found through table slot sl. */
	error write(const slot_type &sl, chunk_rec *rec, std::uintptr_t addr, const void *src, std::size_t len) noexcept
		UA_EXCLUDES(reg_.lock)
	{
		mutex_guard g(reg_.lock);
		if (!is_large(rec->get()) || sl.value.load(std::memory_order_relaxed) != rec)
			return error::not_live;
		if (addr + len > rec->run.alias + rec->run.bytes() || addr + len < addr)
			return error::too_large;
		return reg_.source().write(rec->run, addr - rec->run.alias, src, len);
	}

private:
	chunk_registry<Backend> &reg_;
	const cache_config &cfg_;
};

}  // namespace ua
