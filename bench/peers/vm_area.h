// SPDX-License-Identifier: MIT
/*
 * peers/vm_area.h - the vmalloc() analogue the peers share.
 *
 * __vmalloc_node_range() (mm/vmalloc.c) takes the pages of an area from the
 * page allocator - order-0 pages (vm_area_alloc_pages()), or, with
 * VM_ALLOW_HUGE_VMAP and a size of at least PMD_SIZE, order-9 pages, and
 * when any of those fails the whole area again with order-0 pages (the
 * `fail: if (shift > PAGE_SHIFT) ... goto again` fallback) - and maps them,
 * in allocation order, at one virtual range: one alias over the scattered
 * frames (backend.map_alias_runs(), the vmap() of a page array; a huge area
 * PMD-mapped, map_flags::huge). vmalloc
 * itself does not touch the direct map; set_memory.h does that for the
 * callers that change protections. vfree() of a VM_FLUSH_RESET_PERMS area
 * runs vm_reset_perms(): every page set invalid in the direct map, one flush
 * over the hull of their direct-map addresses, every page back to default -
 * page by page (set_area_direct_map()), so a huge area whose direct map was
 * changed in place splits here. Restores never merge.
 *
 * Pages come from the page allocator through alloc_frames() (peer.h), one
 * call per page of the area's order. Nothing here takes a lock: callers hold
 * machine::lock around every call.
 */
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "peer.h"

namespace ua::peers {

struct vm_area {
	std::vector<frame_range> runs; /* the area's frames in address order, consecutive frames merged */
	unsigned page_order = 0;       /* 0, or chunk_order for a huge area */
	std::uint64_t nr_pages = 0;
	std::uintptr_t addr = 0;       /* the one alias; 0 until mapped */

	std::size_t bytes() const noexcept { return std::size_t(nr_pages) << page_shift; }
	/* Smallest frame range covering every run: what one flush_tlb_kernel_range() spans. */
	frame_range hull() const noexcept
	{
		if (runs.empty())
			return {};
		pfn_t lo = runs.front().pfn, hi = runs.front().end();
		for (const frame_range &r : runs) {
			lo = r.pfn < lo ? r.pfn : lo;
			hi = r.end() > hi ? r.end() : hi;
		}
		return {lo, hi - lo};
	}
};

/* Counters a peer keeps for the backend calls it makes. */
struct call_counts {
	std::uint64_t dm_changes = 0;
	std::uint64_t flushes = 0;
};

/* Give every page of the area's runs back (each with the area's order). Machine lock held. */
inline void vm_free_pages_locked(page_allocator &pa, const vm_area &a)
{
	const std::uint64_t step = std::uint64_t{1} << a.page_order;
	for (const frame_range &r : a.runs)
		for (pfn_t p = r.pfn; p < r.end(); p += step)
			UA_CHECK(pa.free_pages(p, a.page_order) == error::ok, "vm_area: freeing a page it holds failed");
}

/*
 * vm_area_alloc_pages(): nr_pages as pages of 2^order (nr_pages a multiple of
 * that), consecutive ones merged into runs. All or nothing. Machine lock held.
 */
inline error vm_alloc_pages_locked(page_allocator &pa, std::uint64_t nr_pages, unsigned order, vm_area &out)
{
	const std::uint64_t step = std::uint64_t{1} << order;
	vm_area a;
	a.page_order = order;
	for (std::uint64_t i = 0; i < nr_pages; i += step) {
		auto r = alloc_frames(pa, order);
		if (!r) {
			vm_free_pages_locked(pa, a);
			return error::no_memory;
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

struct vmalloc_opts {
	bool huge = false;    /* VM_ALLOW_HUGE_VMAP: order-9 pages when nr_pages is a multiple of 512 */
	prot alias_prot = prot::rw;
	int fill = -1;        /* >= 0: every byte written first, through the still writable mapping */
};

/*
 * __vmalloc_node_range(): pages (huge first when asked, then order-0), fill,
 * one alias. All or nothing. Machine lock held.
 */
template <mapping_backend B>
error vmalloc_locked(machine<B> &m, std::uint64_t nr_pages, const vmalloc_opts &o, vm_area &out) UA_REQUIRES(m.lock)
{
	if (nr_pages == 0)
		return error::zero_size;
	vm_area a;
	error e = error::no_memory;
	if (o.huge && nr_pages % pages_per_chunk == 0)
		e = vm_alloc_pages_locked(m.pages, nr_pages, chunk_order, a);
	if (e != error::ok)
		e = vm_alloc_pages_locked(m.pages, nr_pages, 0, a);
	if (e != error::ok)
		return e;
	if (o.fill >= 0) {
		for (const frame_range &r : a.runs) {
			if (m.backend.fill_frames(r.pfn, 0, o.fill, r.bytes()) != 0) {
				vm_free_pages_locked(m.pages, a);
				return error::backend_failure;
			}
		}
	}
	const map_flags f = a.page_order ? map_flags::huge : map_flags::none; /* PMD-mapped, as vmap_pages_range() does */
	if (m.backend.map_alias_runs(a.runs.data(), a.runs.size(), o.alias_prot, &a.addr, f) != 0) {
		vm_free_pages_locked(m.pages, a);
		return error::backend_failure;
	}
	out = std::move(a);
	return error::ok;
}

/*
 * text_poke_set() over bytes [off, off + n) of the area: the fill goes
 * through the frames, since the alias may be read-only. fill_frames() needs
 * no machine lock (backend.h).
 */
template <mapping_backend B>
int vm_fill(B &b, const vm_area &a, std::size_t off, int byte, std::size_t n) noexcept
{
	std::size_t base = 0;
	for (const frame_range &r : a.runs) {
		if (n == 0)
			break;
		if (off < base + r.bytes()) {
			const std::size_t in = off - base;
			const std::size_t len = n < r.bytes() - in ? n : r.bytes() - in;
			if (int rc = b.fill_frames(r.pfn, in, byte, len))
				return rc;
			off += len;
			n -= len;
		}
		base += r.bytes();
	}
	return n == 0 ? 0 : -EINVAL;
}

/* Each page of the area, one direct-map call each (set_area_direct_map()). */
template <mapping_backend B>
int set_area_direct_map(B &b, const vm_area &a, bool valid, call_counts &cnt) noexcept
{
	for (const frame_range &r : a.runs) {
		for (pfn_t p = r.pfn; p < r.end(); p++) {
			cnt.dm_changes++;
			if (int rc = valid ? b.set_direct_map_default({p, 1}) : b.set_direct_map_invalid({p, 1}))
				return rc;
		}
	}
	return 0;
}

/*
 * vm_reset_perms(): invalid page by page, one flush, default page by page.
 * Both backends restore a page that a split already made 4 KiB without
 * needing memory; a page still mapped large is split by the first call,
 * which can fail: then nothing has changed but what CPA split, and the area
 * is left as it was (backend_failure). Machine lock held.
 */
template <mapping_backend B>
error vm_reset_perms_locked(machine<B> &m, const vm_area &a, call_counts &cnt) UA_REQUIRES(m.lock)
{
	std::vector<dm_state> prev;
	prev.reserve(std::size_t(a.nr_pages));
	for (const frame_range &r : a.runs)
		for (pfn_t p = r.pfn; p < r.end(); p++)
			prev.push_back(m.backend.direct_map_state(p));
	if (set_area_direct_map(m.backend, a, false, cnt) != 0) {
		std::size_t i = 0;
		for (const frame_range &r : a.runs)
			for (pfn_t p = r.pfn; p < r.end(); p++, i++) {
				if (m.backend.direct_map_state(p) == prev[i])
					continue;
				cnt.dm_changes++;
				must(prev[i] == dm_state::ro ? m.backend.set_direct_map_ro({p, 1})
							     : m.backend.set_direct_map_default({p, 1}),
				     "vm_area: undo of a reset step");
			}
		return error::backend_failure;
	}
	cnt.flushes++;
	must(m.backend.flush_tlb(a.hull()), "vm_area: flush of frames it holds");
	must(set_area_direct_map(m.backend, a, true, cnt), "vm_area: default of a page already 4 KiB");
	return error::ok;
}

/*
 * vfree(): with reset_perms (VM_FLUSH_RESET_PERMS) the direct map first goes
 * back to default through vm_reset_perms(); then the alias is unmapped and
 * the pages freed. On failure the area is intact. Machine lock held.
 */
template <mapping_backend B>
error vfree_locked(machine<B> &m, const vm_area &a, bool reset_perms, call_counts &cnt) UA_REQUIRES(m.lock)
{
	if (reset_perms)
		if (error e = vm_reset_perms_locked(m, a, cnt); e != error::ok)
			return e;
	must(m.backend.unmap_alias(a.addr, a.bytes()), "vm_area: unmap of an alias it mapped");
	vm_free_pages_locked(m.pages, a);
	return error::ok;
}

}  // namespace ua::peers
