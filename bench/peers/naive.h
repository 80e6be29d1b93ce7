// SPDX-License-Identifier: MIT
/*
 * peers/naive.h - the status quo: no grouping at all.
 *
 * What secretmem (mm/secretmem.c, secretmem_fault():
 * set_direct_map_invalid_noflush() per page then flush_tlb_kernel_range())
 * and module_alloc()/bpf_jit_alloc_exec() before bpf_prog_pack (5.18) do:
 * every allocation is its own vmalloc() area - its size rounded up to pages,
 * each page a separate order-0 allocation (vm_area_alloc_pages()) - whose
 * pages are changed in the direct map (invalid for secretmem, read-only for
 * module text via set_memory_ro()'s alias processing), mapped at an alias,
 * with one flush per allocation. Free restores every page and returns it
 * (vfree() with VM_FLUSH_RESET_PERMS, one flush). On an aged machine each
 * page can land in its own 2 MiB page and split it. Nothing is cached, so
 * drain() has nothing to give back.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <utility>

#include "vm_area.h"

namespace ua::peers {

struct naive_config {
	dm_action action = dm_action::invalid; /* invalid: secretmem; ro: module_alloc + set_memory_ro */
	prot alias_prot = prot::rw;            /* rw: secretmem's user mapping; rx: module text */
};

template <mapping_backend B>
class naive_peer {
public:
	static constexpr const char *name = "naive";

	explicit naive_peer(machine<B> &m, naive_config cfg = {}) : m_(m), cfg_(cfg) {}
	naive_peer(const naive_peer &) = delete;
	naive_peer &operator=(const naive_peer &) = delete;
	~naive_peer()
	{
		std::lock_guard<std::mutex> g(lock_);
		std::lock_guard<std::mutex> mg(m_.lock);
		for (auto &[addr, a] : live_)
			must(int(vm_area_free_locked(m_, a.area, cfg_.action, false, counts_)), "naive: release at destruction");
	}

	/* Page-aligned memory; align above a page is refused (vmalloc gives page alignment). */
	result<std::uintptr_t> alloc(std::size_t size, std::size_t align)
	{
		if (error e = check_request(size, align, page_size); e != error::ok)
			return result<std::uintptr_t>::failure(e);
		const std::uint64_t n = pages_of(size);
		if (n > m_.nr_pages())
			return result<std::uintptr_t>::failure(error::too_large);
		std::lock_guard<std::mutex> g(lock_);
		vm_area a;
		{
			std::lock_guard<std::mutex> mg(m_.lock);
			if (error e = vm_area_alloc_locked(m_, n, cfg_.action, cfg_.alias_prot, -1, counts_, a); e != error::ok)
				return result<std::uintptr_t>::failure(e);
		}
		for (const vm_run &r : a.runs)
			census_.add(r.frames);
		const std::uintptr_t addr = a.addr();
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
		{
			std::lock_guard<std::mutex> mg(m_.lock);
			if (error e = vm_area_free_locked(m_, it->second.area, cfg_.action, false, counts_); e != error::ok)
				return e;
		}
		for (const vm_run &r : it->second.area.runs)
			census_.remove(r.frames);
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
			s.metadata_bytes += a.area.runs.capacity() * sizeof(vm_run);
		s.dm_changes = counts_.dm_changes;
		s.flushes = counts_.flushes;
		return s;
	}

private:
	struct live_area {
		vm_area area;
		std::size_t requested = 0;
	};

	/* Why p is not a live allocation: inside one (interior) or not ours at all. */
	error classify(std::uintptr_t p) const
	{
		for (const auto &[addr, a] : live_)
			for (const vm_run &r : a.area.runs)
				if (p >= r.addr && p - r.addr < r.frames.bytes())
					return error::interior_pointer;
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
