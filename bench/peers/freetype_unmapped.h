// SPDX-License-Identifier: MIT
/*
 * peers/freetype_unmapped.h - __GFP_UNMAPPED as the 2026 ASI work puts it
 * inside the page allocator (freetype_pool.h has the allocator side and the
 * RFC's Message-IDs), with its callers:
 *
 *   pages    alloc_pages(GFP_KERNEL | __GFP_UNMAPPED, get_order(n)): one
 *            block per request, page-granular, mapped read-write at one
 *            alias (a user mapping, as guest_memfd or secretmem would make);
 *   vmalloc  __vmalloc() with __GFP_UNMAPPED: n order-0 pages at one alias
 *            (module text and BPF: made ROX by set_memory_rox(), whose alias
 *            step finds the frames not present).
 *
 * Frees go back to the unmapped free lists and stay unmapped; drain() is the
 * pressure that gives wholly free pageblocks back, zeroed and mapped again
 * (freetype_pool.h says why the model does it there). alloc_atomic() is a
 * request in atomic context: served from the unmapped lists, refused (no
 * memory) when they are empty, since flipping a pageblock needs a TLB
 * shootdown.
 *
 * Proposal (RFC v1, v2): never merged, the same at every kernel.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <map>
#include <mutex>
#include <utility>

#include "freetype_pool.h"
#include "set_memory.h"

namespace ua::peers {

enum class freetype_use { pages, vmalloc };

struct freetype_unmapped_config {
	freetype_use use = freetype_use::pages;
	prot alias_prot = prot::rw; /* vmalloc: rx makes it text (set_memory_rox) */
};

template <mapping_backend B>
class freetype_unmapped_peer {
public:
	static constexpr const char *name = "freetype-unmapped";
	static constexpr bool proposal = true;

	explicit freetype_unmapped_peer(machine<B> &m, freetype_unmapped_config cfg = {}) : m_(m), cfg_(cfg), pool_(m) {}
	freetype_unmapped_peer(const freetype_unmapped_peer &) = delete;
	freetype_unmapped_peer &operator=(const freetype_unmapped_peer &) = delete;
	~freetype_unmapped_peer()
	{
		while (!live_.empty())
			must(int(free(live_.begin()->first)), "freetype-unmapped: release at destruction");
		drain();
	}

	result<std::uintptr_t> alloc(std::size_t size, std::size_t align) { return alloc_ctx(size, align, false); }
	/* The same request from atomic context (ALLOC_NOBLOCK): never flips a pageblock. */
	result<std::uintptr_t> alloc_atomic(std::size_t size, std::size_t align) { return alloc_ctx(size, align, true); }

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
			must(m_.backend.unmap_alias(a.addr, a.bytes()), "freetype-unmapped: unmap of an alias it mapped");
			give_back_locked(a);
		}
		requested_ -= it->second.requested;
		live_pages_ -= a.nr_pages;
		live_.erase(it);
		return error::ok;
	}

	/* Memory pressure: every wholly free unmapped pageblock zeroed, mapped back, freed. */
	void drain()
	{
		std::lock_guard<std::mutex> g(lock_);
		ua::mutex_guard mg(m_.lock);
		pool_.release_locked(m_.pages, counts_);
	}

	peer_stats stats() const
	{
		std::lock_guard<std::mutex> g(lock_);
		ua::mutex_guard mg(m_.lock);
		peer_stats s;
		s.live_count = live_.size();
		s.live_bytes = live_pages_ << page_shift;
		s.requested_bytes = requested_;
		s.pages_held = pool_.pages_taken();
		for (const auto &[pfn, order] : pool_.lists().blocks())
			s.chunks += order > chunk_order ? std::uint64_t{1} << (order - chunk_order) : 1;
		s.metadata_bytes = pool_.metadata_bytes() + live_.size() * map_node_bytes<std::uintptr_t, live_area>;
		s.dm_changes = counts_.dm_changes;
		s.flushes = counts_.flushes;
		return s;
	}

	/* The allocator-side figures: pageblocks flipped either way, atomic refusals. */
	freetype_stats pool_stats() const
	{
		std::lock_guard<std::mutex> g(lock_);
		ua::mutex_guard mg(m_.lock);
		return pool_.stats();
	}

private:
	struct live_area {
		vm_area area;
		std::size_t requested = 0;
	};

	result<std::uintptr_t> alloc_ctx(std::size_t size, std::size_t align, bool atomic)
	{
		using res = result<std::uintptr_t>;
		if (error e = check_request(size, align, page_size); e != error::ok)
			return res::failure(e);
		const std::uint64_t n = pages_of(size);
		if (n > m_.nr_pages())
			return res::failure(error::too_large);
		const bool vm = cfg_.use == freetype_use::vmalloc;
		if (!vm && order_of(n) > max_page_order)
			return res::failure(error::too_large);
		if (is_wx(cfg_.alias_prot))
			return res::failure(error::bad_flags);
		std::lock_guard<std::mutex> g(lock_);
		live_area la;
		la.requested = size;
		{
			ua::mutex_guard mg(m_.lock);
			if (error e = take_locked(vm ? n : 1, vm ? 0 : order_of(n), atomic, la.area); e != error::ok)
				return res::failure(e);
			if (m_.backend.map_alias_runs(la.area.runs.data(), la.area.runs.size(), prot::rw, &la.area.addr) != 0) {
				give_back_locked(la.area);
				return res::failure(error::backend_failure);
			}
			/* Text: set_memory_rox(), whose alias step finds the frames not present; else a plain protection. */
			int rc = 0;
			if (has(cfg_.alias_prot, prot::exec))
				rc = int(set_memory_locked(m_, la.area, 0, la.area.nr_pages, cpa_op::rox, counts_));
			else if (cfg_.alias_prot != prot::rw)
				rc = m_.backend.protect_alias(la.area.addr, la.area.bytes(), cfg_.alias_prot);
			if (rc != 0) {
				must(m_.backend.unmap_alias(la.area.addr, la.area.bytes()), "freetype-unmapped: unmap");
				give_back_locked(la.area);
				return res::failure(error::backend_failure);
			}
		}
		const std::uintptr_t addr = la.area.addr;
		live_pages_ += la.area.nr_pages;
		requested_ += size;
		live_.emplace(addr, std::move(la));
		return {addr, error::ok};
	}

	/* count blocks of 2^order from the pool. All or nothing. Machine lock held. */
	error take_locked(std::uint64_t count, unsigned order, bool atomic, vm_area &out) UA_REQUIRES(m_.lock)
	{
		vm_area a;
		a.page_order = order;
		const std::uint64_t step = std::uint64_t{1} << order;
		for (std::uint64_t i = 0; i < count; i++) {
			auto r = pool_.alloc_locked(m_.pages, order, atomic, counts_);
			if (!r) {
				give_back_locked(a);
				return r.err;
			}
			if (!a.runs.empty() && a.runs.back().end() == r.value)
				a.runs.back().nr_pages += step;
			else
				a.runs.push_back({r.value, step});
			a.nr_pages += step;
		}
		out = std::move(a);
		return error::ok;
	}

	void give_back_locked(const vm_area &a) UA_REQUIRES(m_.lock)
	{
		const std::uint64_t step = std::uint64_t{1} << a.page_order;
		for (const frame_range &r : a.runs)
			for (pfn_t p = r.pfn; p < r.end(); p += step)
				pool_.free_locked(p, a.page_order);
	}

	machine<B> &m_;
	const freetype_unmapped_config cfg_;
	mutable std::mutex lock_; /* the peer's lock; the pool itself is under machine::lock (zone->lock) */
	std::map<std::uintptr_t, live_area> live_;
	call_counts counts_;
	std::uint64_t live_pages_ = 0, requested_ = 0;
	freetype_pool<B> pool_; /* last: destroyed after everything it lent is back */
};

static_assert(peer_allocator<freetype_unmapped_peer<sim_direct_map>>);

}  // namespace ua::peers
