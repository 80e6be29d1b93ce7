// SPDX-License-Identifier: MIT
/*
 * machine_chunks.h - 2 MiB chunks from a machine, out of the direct map, for
 * the jemalloc arena's extent hooks in speed comparisons.
 *
 * The same steps the library's chunk source takes (cache/chunk_source.h):
 * alloc_pages(gfp_normal_only) of the order the request needs, the frames
 * removed from the direct map with one call and one flush, mapped at an
 * alias. jemalloc never touches hook memory (metadata_use_hooks = false, no
 * junk or zero fill), so the simulated backend's non-dereferenceable aliases
 * serve it. Unlike the jemalloc peer (peers/jemalloc_peer.h) there is no
 * per-allocation bookkeeping around jemalloc, so a timing compares the
 * allocators alone. Failures return nullptr after undoing what was done.
 */
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <map>

#include <unmapped_alloc/phys.h>
#include <unmapped_alloc/sim.h>

namespace ua::bench {

template <mapping_backend B>
class machine_chunks {
public:
	explicit machine_chunks(machine<B> &m) : m_(m) {}
	~machine_chunks()
	{
		typename machine<B>::guard g(m_.lock);
		for (auto &[a, r] : runs_)
			undo_locked(a, r);
	}

	void *get(std::size_t bytes)
	{
		std::size_t n = (bytes + chunk_size - 1) / chunk_size;
		unsigned order = chunk_order + unsigned(std::bit_width(n - 1));
		typename machine<B>::guard g(m_.lock);
		auto pa = order > page_max_order ? m_.pages.alloc_contig_pages(order, gfp_normal_only)
						 : m_.pages.alloc_pages(order, gfp_normal_only, m_.unmapped_hint);
		if (!pa.ok())
			return nullptr;
		frame_range r{pa.value, std::uint64_t{1} << order};
		std::uintptr_t a = 0;
		if (m_.backend.set_direct_map_invalid(r) != 0) {
			(void)free_block_locked(r.pfn, order);
			return nullptr;
		}
		m_.backend.flush_tlb(r);
		if (m_.backend.map_alias(r, prot::rx, &a) != 0) {
			(void)m_.backend.set_direct_map_default(r);
			(void)free_block_locked(r.pfn, order);
			return nullptr;
		}
		m_.unmapped_hint = r.pfn;
		runs_[a] = r;
		return reinterpret_cast<void *>(a);
	}

	void put(void *p, std::size_t)
	{
		typename machine<B>::guard g(m_.lock);
		auto it = runs_.find(reinterpret_cast<std::uintptr_t>(p));
		if (it == runs_.end())
			return;
		undo_locked(it->first, it->second);
		runs_.erase(it);
	}

private:
	error free_block_locked(pfn_t pfn, unsigned order) UA_REQUIRES(m_.lock)
	{
		return order > page_max_order ? m_.pages.free_contig_range(pfn, order) : m_.pages.free_pages(pfn, order);
	}
	void undo_locked(std::uintptr_t a, frame_range r) UA_REQUIRES(m_.lock)
	{
		(void)m_.backend.unmap_alias(a, r.bytes());
		(void)m_.backend.set_direct_map_default(r);
		m_.backend.flush_tlb(r);
		(void)free_block_locked(r.pfn, unsigned(std::countr_zero(r.nr_pages)));
	}

	machine<B> &m_;
	std::map<std::uintptr_t, frame_range> runs_;
};

}  // namespace ua::bench
