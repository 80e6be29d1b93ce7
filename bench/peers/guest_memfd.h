// SPDX-License-Identifier: MIT
/*
 * peers/guest_memfd.h - guest_memfd with GUEST_MEMFD_FLAG_NO_DIRECT_MAP
 * (Patrick Roy, Nikita Kalyazin: v9 20260114134510.1835-1-kalyazin@amazon.com,
 * successors to v12 20260410151746.61150-*-kalyazin@amazon.com; unmerged).
 *
 * Folio-granular:
 *   - a guest_memfd range is backed by folios of one size, 4 KiB (order 0,
 *     what guest_memfd allocates today) or 2 MiB (order 9, huge folios), each
 *     a block of the page allocator;
 *   - a folio leaves the direct map when it is prepared and about to be
 *     mapped into the guest or user space (kvm_gmem_folio_zap_direct_map()
 *     from kvm_gmem_get_pfn() / kvm_gmem_fault_user_mapping(), patch 7): once
 *     per folio, folio_zap_direct_map() = set_direct_map_valid_noflush(folio,
 *     nr_pages, false) plus a flush on x86 (patch 1). A 4 KiB folio splits
 *     its 2 MiB direct-map page; an aligned 2 MiB folio changes its PMD in
 *     place;
 *   - kvm_gmem_free_folio() restores it: folio_restore_direct_map(), the same
 *     call with true, no flush ("cannot fail ... this split would have
 *     already happened"). Restores never merge.
 * An allocation here is one guest_memfd range of ceil(size / folio) folios,
 * all faulted in (prepared) at once, mapped read-write at one alias (the
 * GUEST_MEMFD_FLAG_MMAP user mapping); its free is the truncation that frees
 * every folio. Nothing is cached.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <map>
#include <mutex>
#include <utility>

#include "vm_area.h"

namespace ua::peers {

struct guest_memfd_config {
	unsigned folio_order = 0; /* 0: 4 KiB folios; 9: 2 MiB folios */
};

template <mapping_backend B>
class guest_memfd_peer {
public:
	static constexpr const char *name = "guest-memfd";
	static constexpr bool proposal = true;

	explicit guest_memfd_peer(machine<B> &m, guest_memfd_config cfg = {}) : m_(m), cfg_(cfg) {}
	guest_memfd_peer(const guest_memfd_peer &) = delete;
	guest_memfd_peer &operator=(const guest_memfd_peer &) = delete;
	~guest_memfd_peer()
	{
		while (!live_.empty())
			must(int(free(live_.begin()->first)), "guest-memfd: release at destruction");
	}

	std::size_t folio_bytes() const noexcept { return page_size << cfg_.folio_order; }

	result<std::uintptr_t> alloc(std::size_t size, std::size_t align)
	{
		using res = result<std::uintptr_t>;
		if (cfg_.folio_order != 0 && cfg_.folio_order != chunk_order)
			return res::failure(error::bad_flags);
		if (error e = check_request(size, align, folio_bytes()); e != error::ok)
			return res::failure(e);
		const std::uint64_t folios = (size + folio_bytes() - 1) / folio_bytes();
		if ((folios << cfg_.folio_order) > m_.nr_pages())
			return res::failure(error::too_large);
		std::lock_guard<std::mutex> g(lock_);
		live_area la;
		la.requested = size;
		{
			ua::mutex_guard mg(m_.lock);
			if (error e = vm_alloc_pages_locked(m_.pages, folios << cfg_.folio_order, cfg_.folio_order, la.area);
			    e != error::ok)
				return res::failure(e);
			if (error e = zap_all_locked(la.area); e != error::ok) {
				vm_free_pages_locked(m_.pages, la.area);
				return res::failure(e);
			}
			if (m_.backend.map_alias_runs(la.area.runs.data(), la.area.runs.size(), prot::rw, &la.area.addr) != 0) {
				restore_locked(la.area, la.area.nr_pages >> cfg_.folio_order);
				vm_free_pages_locked(m_.pages, la.area);
				return res::failure(error::backend_failure);
			}
		}
		for (const frame_range &r : la.area.runs)
			census_.add(r);
		const std::uintptr_t addr = la.area.addr;
		requested_ += size;
		live_.emplace(addr, std::move(la));
		return {addr, error::ok};
	}

	error free(std::uintptr_t p)
	{
		std::lock_guard<std::mutex> g(lock_);
		auto it = live_.find(p);
		if (it == live_.end()) {
			auto up = live_.upper_bound(p);
			if (up != live_.begin() && p - std::prev(up)->first < std::prev(up)->second.area.bytes())
				return error::interior_pointer;
			return error::foreign_pointer;
		}
		const vm_area &a = it->second.area;
		{
			ua::mutex_guard mg(m_.lock);
			must(m_.backend.unmap_alias(a.addr, a.bytes()), "guest-memfd: unmap of an alias it mapped");
			restore_locked(a, a.nr_pages >> cfg_.folio_order); /* kvm_gmem_free_folio() */
			vm_free_pages_locked(m_.pages, a);
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
		s.live_bytes = census_.pages() << page_shift;
		s.requested_bytes = requested_;
		s.pages_held = census_.pages();
		s.chunks = census_.chunks();
		s.metadata_bytes = census_.metadata_bytes() + live_.size() * map_node_bytes<std::uintptr_t, live_area>;
		s.dm_changes = counts_.dm_changes;
		s.flushes = counts_.flushes;
		return s;
	}

private:
	struct live_area {
		vm_area area;
		std::size_t requested = 0;
	};

	template <class Fn>
	void for_each_folio(const vm_area &a, Fn fn) const
	{
		const std::uint64_t step = std::uint64_t{1} << cfg_.folio_order;
		for (const frame_range &r : a.runs)
			for (pfn_t p = r.pfn; p < r.end(); p += step)
				if (!fn(frame_range{p, step}))
					return;
	}

	/* folio_zap_direct_map() of every folio, each with its flush; undone on failure. Machine lock held. */
	error zap_all_locked(const vm_area &a) UA_REQUIRES(m_.lock)
	{
		std::uint64_t done = 0;
		bool failed = false;
		for_each_folio(a, [&](frame_range f) {
			counts_.dm_changes++;
			if (m_.backend.set_direct_map_invalid(f) != 0) {
				failed = true;
				return false;
			}
			counts_.flushes++;
			must(m_.backend.flush_tlb(f), "guest-memfd: flush of a zapped folio");
			done++;
			return true;
		});
		if (!failed)
			return error::ok;
		restore_locked(a, done);
		return error::backend_failure;
	}

	/* folio_restore_direct_map() of the first `folios` folios, no flush. Machine lock held. */
	void restore_locked(const vm_area &a, std::uint64_t folios) UA_REQUIRES(m_.lock)
	{
		for_each_folio(a, [&](frame_range f) {
			if (folios == 0)
				return false;
			folios--;
			counts_.dm_changes++;
			must(m_.backend.set_direct_map_default(f), "guest-memfd: restore of a zapped folio");
			return true;
		});
	}

	machine<B> &m_;
	const guest_memfd_config cfg_;
	mutable std::mutex lock_;
	std::map<std::uintptr_t, live_area> live_;
	frame_census census_;
	call_counts counts_;
	std::uint64_t requested_ = 0;
};

static_assert(peer_allocator<guest_memfd_peer<sim_direct_map>>);

}  // namespace ua::peers
