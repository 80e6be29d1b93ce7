// SPDX-License-Identifier: MIT
/*
 * peers/naive.h - the status quo: no grouping at all.
 *
 * Two uses, both page by page:
 *   secretmem     mm/secretmem.c: secretmem_fault() takes each page with
 *                 folio_alloc(order 0), removes it with
 *                 set_direct_map_invalid_noflush() and flushes that page
 *                 (flush_tlb_kernel_range(addr, addr + PAGE_SIZE));
 *                 secretmem_free_folio() puts it back with
 *                 set_direct_map_default_noflush(), no flush. The user
 *                 mapping is read-write.
 *   vmalloc_text  module_alloc()/bpf_jit_alloc_exec() before bpf_prog_pack
 *                 (BPF, 5.17 and before) and before execmem's ROX cache
 *                 (module text through 6.14): a vmalloc() area of order-0
 *                 pages (vm_area.h), written, then made read-only and
 *                 executable - set_memory_ro() + set_memory_x() before 6.2,
 *                 set_memory_rox() (d48567c9a0d1) from 6.2 - whose alias
 *                 processing changes every frame's direct-map page
 *                 (set_memory.h: the first frame in a 2 MiB page splits it);
 *                 vfree() with VM_FLUSH_RESET_PERMS (vm_reset_perms()).
 * Sizes are taken as the caller allocates them (bpf_jit_binary_alloc():
 * round_up(proglen + 4 + 128, PAGE_SIZE)) and rounded up to pages. Nothing is
 * cached, so drain() has nothing to give back.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <utility>

#include "set_memory.h"

namespace ua::peers {

enum class naive_use { secretmem, vmalloc_text };

struct naive_config {
	naive_use use = naive_use::secretmem;
	linux_version release = newest_release;
};

template <mapping_backend B>
class naive_peer {
public:
	static constexpr const char *name = "naive";
	/* Change points (release.h): set_memory_rox() replaces set_memory_ro() + set_memory_x() in 6.2. */
	static constexpr linux_version releases[] = {v5_17, v6_2};
	static constexpr bool proposal = false;

	explicit naive_peer(machine<B> &m, naive_config cfg = {}) : m_(m), cfg_(cfg) {}
	naive_peer(const naive_peer &) = delete;
	naive_peer &operator=(const naive_peer &) = delete;
	~naive_peer()
	{
		while (!live_.empty())
			must(int(free(live_.begin()->first)), "naive: release at destruction");
	}

	/* Page-aligned memory; align above a page is refused (vmalloc and faults give pages). */
	result<std::uintptr_t> alloc(std::size_t size, std::size_t align)
	{
		using res = result<std::uintptr_t>;
		if (error e = check_request(size, align, page_size); e != error::ok)
			return res::failure(e);
		const std::uint64_t n = pages_of(size);
		if (n > m_.nr_pages())
			return res::failure(error::too_large);
		std::lock_guard<std::mutex> g(lock_);
		vm_area a;
		{
			ua::mutex_guard mg(m_.lock);
			error e = cfg_.use == naive_use::secretmem ? secretmem_alloc_locked(n, a) : text_alloc_locked(n, a);
			if (e != error::ok)
				return res::failure(e);
		}
		for (const frame_range &r : a.runs)
			census_.add(r);
		const std::uintptr_t addr = a.addr;
		requested_ += size;
		live_.emplace(addr, live_area{std::move(a), size});
		return {addr, error::ok};
	}

	error free(std::uintptr_t p)
	{
		std::lock_guard<std::mutex> g(lock_);
		auto it = live_.find(p);
		if (it == live_.end())
			return classify(p);
		const vm_area &a = it->second.area;
		{
			ua::mutex_guard mg(m_.lock);
			if (cfg_.use == naive_use::secretmem) {
				/* secretmem_free_folio(): back to default page by page, no flush. */
				must(set_area_direct_map(m_.backend, a, true, counts_), "naive: default of a 4 KiB page");
				must(int(vfree_locked(m_, a, false, counts_)), "naive: unmap and free");
			} else if (error e = vfree_locked(m_, a, true, counts_); e != error::ok) {
				return e;
			}
		}
		for (const frame_range &r : a.runs)
			census_.remove(r);
		requested_ -= it->second.requested;
		live_.erase(it);
		return error::ok;
	}

	void drain() {}

	peer_stats stats() const
	{
		std::lock_guard<std::mutex> g(lock_);
		peer_stats s;
		s.live_count = live_.size();
		s.requested_bytes = requested_;
		s.live_bytes = census_.pages() << page_shift;
		s.pages_held = census_.pages();
		s.chunks = census_.chunks();
		s.metadata_bytes = live_.size() * map_node_bytes<std::uintptr_t, live_area> + census_.metadata_bytes();
		for (const auto &[addr, a] : live_)
			s.metadata_bytes += a.area.runs.capacity() * sizeof(frame_range);
		s.dm_changes = counts_.dm_changes;
		s.flushes = counts_.flushes;
		return s;
	}

private:
	struct live_area {
		vm_area area;
		std::size_t requested = 0;
	};

	/* secretmem_fault() for each of n pages: order-0 page, invalid, one flush per page; one rw user mapping. */
	error secretmem_alloc_locked(std::uint64_t n, vm_area &out) UA_REQUIRES(m_.lock)
	{
		vm_area a;
		if (error e = vm_alloc_pages_locked(m_.pages, n, 0, a); e != error::ok)
			return e;
		std::uint64_t done = 0;
		auto unwind = [&]() UA_REQUIRES(m_.lock) {
			std::uint64_t i = 0;
			for (const frame_range &r : a.runs)
				for (pfn_t p = r.pfn; p < r.end() && i < done; p++, i++) {
					counts_.dm_changes++;
					must(m_.backend.set_direct_map_default({p, 1}), "naive: restore during rollback");
				}
			vm_free_pages_locked(m_.pages, a);
			return error::backend_failure;
		};
		for (const frame_range &r : a.runs) {
			for (pfn_t p = r.pfn; p < r.end(); p++) {
				counts_.dm_changes++;
				if (m_.backend.set_direct_map_invalid({p, 1}) != 0)
					return unwind();
				done++;
				counts_.flushes++;
				must(m_.backend.flush_tlb({p, 1}), "naive: flush of a page it holds");
			}
		}
		if (m_.backend.map_alias_runs(a.runs.data(), a.runs.size(), prot::rw, &a.addr) != 0)
			return unwind();
		out = std::move(a);
		return error::ok;
	}

	/* module_alloc() + write + set_memory_ro()/_x() (before 6.2) or set_memory_rox(); alias rx. */
	error text_alloc_locked(std::uint64_t n, vm_area &out) UA_REQUIRES(m_.lock)
	{
		vm_area a;
		if (error e = vmalloc_locked(m_, n, vmalloc_opts{false, prot::rw, trap_byte}, a); e != error::ok)
			return e;
		auto undo = [&](error e) UA_REQUIRES(m_.lock) {
			must(int(vfree_locked(m_, a, false, counts_)), "naive: free during rollback");
			return e;
		};
		const bool rox = cfg_.release >= v6_2;
		if (error e = set_memory_locked(m_, a, 0, n, rox ? cpa_op::rox : cpa_op::ro, counts_); e != error::ok)
			return undo(e);
		if (!rox) {
			if (error e = set_memory_locked(m_, a, 0, n, cpa_op::x, counts_); e != error::ok) {
				must(int(set_memory_locked(m_, a, 0, n, cpa_op::rw, counts_)), "naive: undo of set_memory_ro");
				return undo(e);
			}
		}
		out = std::move(a);
		return error::ok;
	}

	/* Why p is not a live allocation: inside one (interior) or not ours at all. */
	error classify(std::uintptr_t p) const
	{
		auto it = live_.upper_bound(p);
		if (it != live_.begin()) {
			--it;
			if (p - it->first < it->second.area.bytes())
				return error::interior_pointer;
		}
		return error::foreign_pointer;
	}

	machine<B> &m_;
	const naive_config cfg_;
	mutable std::mutex lock_; /* the peer's one lock; taken before machine::lock */
	std::map<std::uintptr_t, live_area> live_;
	frame_census census_;
	call_counts counts_;
	std::uint64_t requested_ = 0;
};

static_assert(peer_allocator<naive_peer<sim_direct_map>>);

}  // namespace ua::peers
