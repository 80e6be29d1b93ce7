// SPDX-License-Identifier: MIT
/*
 * peers/set_memory.h - set_memory_*() on a vmalloc area, as x86 CPA does it.
 *
 * arch/x86/mm/pat/set_memory.c, __change_page_attr_set_clr(): the primary
 * step changes the vmalloc mapping one leaf at a time, and after each step
 * cpa_process_alias() changes the direct-map alias of that leaf's frames with
 * the same page count the step consumed. For a 4 KiB-mapped area that is one
 * frame per step, so the first change to any frame splits the 2 MiB
 * direct-map page it lies in (however the frames are placed); for a 2 MiB
 * (huge vmalloc) leaf covered whole, the aligned 2 MiB of the alias changes in
 * place. A change covering part of a huge leaf first splits the vmalloc PMD
 * (__should_split_large_page()) and then goes page by page. The alias step
 * never touches NX ("Directmap always has NX set, do not modify"), so:
 *
 *   set_memory_ro, set_memory_rox  direct map read-only
 *   set_memory_rw                  direct map read-write (present)
 *   set_memory_x, set_memory_nx    nothing on the direct map
 *
 * A frame whose direct-map entry is not present (__GFP_UNMAPPED pages) keeps
 * it not present: CPA updates the bits of a non-present PTE, it does not map
 * it. The backend's direct-map calls are the alias steps (one call per step);
 * the vmalloc alias's own protection is the caller's protect_alias(). One
 * cpa_flush() per call is counted as one flush_tlb() over the area's frames.
 *
 * Collapse (6.15+, 41d88484c71c): set_memory_rox() collapses only the primary
 * (vmalloc) range, never the alias, so nothing here collapses the direct map.
 * When the backend gains the CPA engineer's set_memory operation on an alias,
 * set_memory_locked() becomes a call to it.
 *
 * All or nothing: if a step fails, the steps done are undone in reverse
 * order with the same granularity (a restore never splits more) and the call
 * returns backend_failure. Callers hold machine::lock.
 */
#pragma once

#include <cstdint>
#include <vector>

#include "vm_area.h"

namespace ua::peers {

enum class mem_change { ro, rox, rw, x, nx };

/* What the alias step leaves in the direct map, or false when the change does not reach it. */
constexpr bool reaches_direct_map(mem_change c, dm_state *to) noexcept
{
	switch (c) {
	case mem_change::ro:
	case mem_change::rox:
		*to = dm_state::ro;
		return true;
	case mem_change::rw:
		*to = dm_state::rw;
		return true;
	default:
		return false;
	}
}

template <mapping_backend B>
int set_direct_map_state(B &b, frame_range r, dm_state s) noexcept
{
	switch (s) {
	case dm_state::ro:
		return b.set_direct_map_ro(r);
	case dm_state::invalid:
		return b.set_direct_map_invalid(r);
	default:
		return b.set_direct_map_default(r);
	}
}

namespace detail {

struct dm_step {
	frame_range r;
	dm_state prev;
};

/* Frames [page, page + n) of the area in address order, cut at run ends and at `step` boundaries. */
template <class Fn>
void for_each_step(const vm_area &a, std::uint64_t page, std::uint64_t n, std::uint64_t step, Fn fn)
{
	std::uint64_t base = 0;
	for (const frame_range &run : a.runs) {
		if (n == 0)
			return;
		if (page >= base + run.nr_pages) {
			base += run.nr_pages;
			continue;
		}
		std::uint64_t off = page - base;
		while (n && off < run.nr_pages) {
			std::uint64_t len = step - (off % step);
			if (len > run.nr_pages - off)
				len = run.nr_pages - off;
			if (len > n)
				len = n;
			if (!fn(frame_range{run.pfn + off, len}))
				return;
			off += len;
			page += len;
			n -= len;
		}
		base += run.nr_pages;
	}
}

}  // namespace detail

/*
 * set_memory_<c>() on pages [page, page + n) of area a. Counts one direct-map
 * call per alias step and one flush. Machine lock held.
 */
template <mapping_backend B>
error set_memory_locked(machine<B> &m, const vm_area &a, std::uint64_t page, std::uint64_t n, mem_change c,
			call_counts &cnt)
{
	UA_CHECK(n != 0 && page <= a.nr_pages && n <= a.nr_pages - page, "set_memory: range outside the area");
	dm_state to{};
	if (reaches_direct_map(c, &to)) {
		/* Whole huge leaves change in place; anything else goes a frame at a time. */
		const std::uint64_t leaf = std::uint64_t{1} << a.page_order;
		const bool whole_leaves = a.page_order && page % leaf == 0 && n % leaf == 0;
		const std::uint64_t step = whole_leaves ? leaf : 1;
		std::vector<detail::dm_step> done;
		done.reserve(std::size_t(n / step));
		bool failed = false;
		detail::for_each_step(a, page, n, step, [&](frame_range r) {
			for (pfn_t p = r.pfn; p < r.end(); p++) {
				const dm_state prev = m.backend.direct_map_state(p);
				/* A frame out of the direct map stays out: CPA changes a non-present entry's bits only. */
				if (prev == dm_state::invalid)
					continue;
				/* Group the step's frames by their previous state (uniform but for split pages). */
				pfn_t q = p + 1;
				while (q < r.end() && m.backend.direct_map_state(q) == prev)
					q++;
				const frame_range sub{p, q - p};
				cnt.dm_changes++;
				if (set_direct_map_state(m.backend, sub, to) != 0) {
					failed = true;
					return false;
				}
				done.push_back({sub, prev});
				p = q - 1;
			}
			return true;
		});
		if (failed) {
			for (std::size_t i = done.size(); i-- > 0;) {
				cnt.dm_changes++;
				must(set_direct_map_state(m.backend, done[i].r, done[i].prev), "set_memory: undo of an alias step");
			}
			return error::backend_failure;
		}
	}
	cnt.flushes++;
	must(m.backend.flush_tlb(a.hull()), "set_memory: cpa_flush of frames it holds");
	return error::ok;
}

}  // namespace ua::peers
