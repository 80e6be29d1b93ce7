// SPDX-License-Identifier: MIT
/*
 * peers/set_memory.h - set_memory_*() on a vmalloc area, the way the peers'
 * kernels call it.
 *
 * The backend's set_memory(a, n, op) is change_page_attr_set_clr() with a
 * vmalloc or module address (backend.h, sim/sim_cpa.h): the alias changes
 * one leaf at a time and cpa_process_alias() applies the same change to the
 * direct-map alias of each leaf's frames. For a 4 KiB-mapped area (vmalloc
 * of order-0 pages, module_alloc()) that is page by page, so the first change
 * to any frame splits the 2 MiB direct-map page it lies in, however the
 * frames are placed - even 512 frames filling one aligned 2 MiB page split
 * it; for an area mapped with VM_ALLOW_HUGE_VMAP (vm_area::page_order 9) a
 * whole 2 MiB leaf changes its aligned 2 MiB of the direct map in place,
 * and a change to part of a leaf splits the leaf and goes page by page. What
 * reaches the direct map: ro and rox make it read-only, rw read-write; x and
 * nx never (the direct map keeps NX); a frame not present stays not present.
 * The alias's own protection changes with it, so no protect_alias() follows.
 * On v6.15+ set_memory_rox() collapses the alias's own range
 * (cpa_collapse_large_pages(), 41d88484c71c), never the direct map.
 *
 * Counting: a peer counts each set_memory_*() call as one flush (its
 * cpa_flush()), and as one direct-map change when the op reaches the direct
 * map (ro, rox, rw).
 *
 * All or nothing (backend.h): a failing call changes nothing and is reported
 * as backend_failure. Callers hold machine::lock.
 */
#pragma once

#include <cstdint>

#include "vm_area.h"

namespace ua::peers {

/* Whether op's alias step reaches the direct map (only the write bit does). */
constexpr bool reaches_direct_map(cpa_op op) noexcept { return op == cpa_op::ro || op == cpa_op::rox || op == cpa_op::rw; }

/* set_memory_<op>() on pages [page, page + n) of area a. Machine lock held. */
template <mapping_backend B>
error set_memory_locked(machine<B> &m, const vm_area &a, std::uint64_t page, std::uint64_t n, cpa_op op,
			call_counts &cnt) noexcept
{
	UA_CHECK(n != 0 && page <= a.nr_pages && n <= a.nr_pages - page, "set_memory: range outside the area");
	if (m.backend.set_memory(a.addr + (page << page_shift), std::size_t(n) << page_shift, op) != 0)
		return error::backend_failure;
	cnt.flushes++;
	if (reaches_direct_map(op))
		cnt.dm_changes++;
	return error::ok;
}

/*
 * Back from ROX to RW+NX, as execmem_force_rw() does it: set_memory_nx()
 * first, then set_memory_rw() (W^X forbids rw on an executable page). A
 * failing rw leaves the range nx, which the caller's own undo (rox) turns
 * back. Machine lock held.
 */
template <mapping_backend B>
error set_memory_rw_nx_locked(machine<B> &m, const vm_area &a, std::uint64_t page, std::uint64_t n,
			      call_counts &cnt) noexcept
{
	if (error e = set_memory_locked(m, a, page, n, cpa_op::nx, cnt); e != error::ok)
		return e;
	if (error e = set_memory_locked(m, a, page, n, cpa_op::rw, cnt); e != error::ok) {
		must(int(set_memory_locked(m, a, page, n, cpa_op::x, cnt)), "set_memory: undo of nx");
		return e;
	}
	return error::ok;
}

}  // namespace ua::peers
