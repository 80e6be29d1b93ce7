// SPDX-License-Identifier: MIT
/*
 * peers/vm_area.h - the vmalloc() analogue the page-based peers share.
 *
 * __vmalloc_node_range() (mm/vmalloc.c) takes each page with its own order-0
 * allocation (vm_area_alloc_pages()), maps them at one virtual range, and -
 * for module_alloc()/bpf_jit_alloc_exec() callers - has set_memory_ro()/
 * set_memory_rox() or set_direct_map_invalid_noflush() change each page in
 * the direct map; vfree() restores them (vm_reset_perms() with
 * VM_FLUSH_RESET_PERMS: invalid, one flush, then default).
 *
 * Frames that come back consecutive form one run; each run is changed in the
 * direct map with one call and mapped at its own alias, because the backend
 * maps contiguous frames only (it has no vmap() of a page array). The
 * allocation's address is the first run's alias; on a fresh machine order-0
 * pages come back consecutive, so an allocation is one run. Nothing here
 * takes a lock: callers hold machine::lock around every call.
 */
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "peer.h"

namespace ua::peers {

struct vm_run {
	frame_range frames;
	std::uintptr_t addr = 0;
};

struct vm_area {
	std::vector<vm_run> runs;
	std::uint64_t nr_pages = 0;

	std::uintptr_t addr() const noexcept { return runs.empty() ? 0 : runs.front().addr; }
	/* Smallest frame range covering every run: what one flush_tlb_kernel_range() spans. */
	frame_range hull() const noexcept
	{
		pfn_t lo = runs.front().frames.pfn, hi = runs.front().frames.end();
		for (const vm_run &r : runs) {
			lo = r.frames.pfn < lo ? r.frames.pfn : lo;
			hi = r.frames.end() > hi ? r.frames.end() : hi;
		}
		return {lo, hi - lo};
	}
};

/* Counters a peer keeps for the backend calls it makes. */
struct call_counts {
	std::uint64_t dm_changes = 0;
	std::uint64_t flushes = 0;
};

/* Free the order-0 frames of runs [0, n). Machine lock held. */
inline void vm_free_frames_locked(page_allocator &pa, const std::vector<vm_run> &runs, std::size_t n)
{
	for (std::size_t i = 0; i < n; i++)
		for (pfn_t p = runs[i].frames.pfn; p < runs[i].frames.end(); p++)
			UA_CHECK(pa.free_pages(p, 0) == error::ok, "vm_area: freeing a frame it holds failed");
}

/*
 * vmalloc(nr_pages) for unmapped memory: nr_pages order-0 allocations, then
 * per run: fill (fill >= 0: the caller's trap byte, written before the
 * protection changes, as bpf_fill_ill_insns() writes through the still
 * writable mapping), direct-map change, alias; one flush. Machine lock held.
 * All or nothing: on failure every step is undone in reverse order.
 */
template <mapping_backend B>
error vm_area_alloc_locked(machine<B> &m, std::uint64_t nr_pages, dm_action act, prot p, int fill, call_counts &cnt,
			   vm_area &out)
{
	std::vector<vm_run> runs;
	for (std::uint64_t i = 0; i < nr_pages; i++) {
		auto r = m.pages.alloc_pages(0, gfp_normal_only);
		if (!r) {
			vm_free_frames_locked(m.pages, runs, runs.size());
			return error::no_memory;
		}
		if (!runs.empty() && runs.back().frames.end() == r.value)
			runs.back().frames.nr_pages++;
		else
			runs.push_back({{r.value, 1}, 0});
	}
	std::size_t changed = 0, mapped = 0;
	auto unwind = [&] {
		for (std::size_t i = mapped; i-- > 0;)
			must(m.backend.unmap_alias(runs[i].addr, runs[i].frames.bytes()), "vm_area: unmap during rollback");
		for (std::size_t i = changed; i-- > 0;) {
			cnt.dm_changes++;
			must(m.backend.set_direct_map_default(runs[i].frames), "vm_area: restore during rollback");
		}
		vm_free_frames_locked(m.pages, runs, runs.size());
		return error::backend_failure;
	};
	for (vm_run &r : runs) {
		if (fill >= 0 && m.backend.fill_frames(r.frames.pfn, 0, fill, r.frames.bytes()) != 0)
			return unwind();
	}
	for (vm_run &r : runs) {
		cnt.dm_changes++;
		if (apply_dm(m.backend, r.frames, act) != 0)
			return unwind();
		changed++;
	}
	for (vm_run &r : runs) {
		if (m.backend.map_alias(r.frames, p, &r.addr) != 0)
			return unwind();
		mapped++;
	}
	out.runs = std::move(runs);
	out.nr_pages = nr_pages;
	cnt.flushes++;
	must(m.backend.flush_tlb(out.hull()), "vm_area: flush of frames it holds");
	return error::ok;
}

/*
 * vfree(): direct map back to default (reset_perms: through invalid first,
 * as vm_reset_perms() does), one flush, aliases unmapped, frames freed.
 * A failed restore re-applies `act` to what was restored and reports
 * backend_failure with the area intact. Machine lock held.
 */
template <mapping_backend B>
error vm_area_free_locked(machine<B> &m, vm_area &a, dm_action act, bool reset_perms, call_counts &cnt)
{
	for (std::size_t i = 0; i < a.runs.size(); i++) {
		int rc = 0;
		if (reset_perms) {
			cnt.dm_changes++;
			rc = m.backend.set_direct_map_invalid(a.runs[i].frames);
		}
		if (rc == 0) {
			cnt.dm_changes++;
			rc = m.backend.set_direct_map_default(a.runs[i].frames);
		}
		if (rc != 0) {
			for (std::size_t j = i + 1; j-- > 0;) {
				cnt.dm_changes++;
				must(apply_dm(m.backend, a.runs[j].frames, act), "vm_area: re-apply during rollback");
			}
			return error::backend_failure;
		}
	}
	cnt.flushes++;
	must(m.backend.flush_tlb(a.hull()), "vm_area: flush of frames it holds");
	for (const vm_run &r : a.runs)
		must(m.backend.unmap_alias(r.addr, r.frames.bytes()), "vm_area: unmap of an alias it mapped");
	vm_free_frames_locked(m.pages, a.runs, a.runs.size());
	return error::ok; /* a.runs still names the frames, for the caller's accounting */
}

}  // namespace ua::peers
