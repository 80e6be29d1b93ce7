// SPDX-License-Identifier: MIT
/*
 * mapping/backend.h - the mapping backend contract.
 *
 * Everything the allocator does to the direct map and to the mappings users
 * touch goes through a backend: a static-policy class (no virtual calls) that
 * satisfies the ua::mapping_backend concept below. Each backend ends with a
 * static_assert that it does. Two exist: sim_direct_map (an x86-64 direct map
 * with CPA's split rules, any machine size) and linux_backend (real memory: a
 * memfd, a huge-page direct-map view, mprotect/madvise).
 *
 * Operations mirror the kernel:
 *   set_direct_map_invalid(r)  set_direct_map_invalid_noflush() /
 *                              set_direct_map_valid_noflush(r, false): one
 *                              change over the range (a caller modelling a
 *                              kernel that calls the one-page form per page
 *                              calls it per page); no flush, no collapse
 *   set_direct_map_default(r)  set_direct_map_default_noflush(): back to rw;
 *                              no flush; no collapse (unless the simulation
 *                              runs the proposed collapse_on_restore)
 *   set_direct_map_ro(r)       set_memory_ro() on the direct-map address:
 *                              clears write, so a frame not present stays
 *                              not present (flushes when it changed anything)
 *   flush_tlb(r)               flush_tlb_kernel_range()
 *   collapse(r)                no kernel call merges on request: the
 *                              simulation merges only under its proposed
 *                              collapse_on_restore, the real backend asks
 *                              MADV_COLLAPSE of its own view
 *   map_alias(r, p, f)         vmap()/execmem's module-area mapping
 *   map_alias_runs(runs, n, p) vmap() of scattered pages / __vmalloc_node_range()
 *                              (vmap_pages_range()): one alias of n runs of
 *                              frames, mapped one after the other in order
 *   protect_alias(a, n, p)     the protection of a whole alias, and nothing
 *                              else (the direct map is the caller's)
 *   set_memory(a, n, op)       set_memory_ro/rw/x/nx/rox() on [a, a + n) of
 *                              an alias, with cpa_process_alias(): the
 *                              direct-map alias of each frame behind it is
 *                              changed too, page by page (a large page at a
 *                              time where the alias itself is PMD-mapped).
 *                              What reaches the direct map: write (ro, rox
 *                              clear it, rw sets it); never exec (the direct
 *                              map keeps NX). Flushes when it changed
 *                              anything; on v6.15+ set_memory_rox() then
 *                              collapses the large pages around [a, a + n)
 *                              of the alias itself (cpa_collapse_large_pages()),
 *                              never the direct map's
 *   unmap_alias(a, n)          vunmap()
 *   alias_frames(a)            the run of frames behind address a of an alias
 *   alias_pfn(a)               the frame behind address a (vmalloc_to_page())
 *   secure_alias(a, n)         memfd_secret()'s guarantees for an alias: locked
 *                              in memory, not in core dumps, not inherited by
 *                              fork; undone by unmap_alias()
 *   write_frames/fill_frames   text_poke_copy()/text_poke_set(): write through
 *                              a temporary writable path, never through the
 *                              executable alias
 *   release_frames(r)          give the frames' contents back (hole punch)
 *
 * Error contract, for every operation:
 *   - return 0 on success, a negative errno on failure (-EINVAL for ranges
 *     outside the machine or misaligned addresses, -ENOMEM when the backend
 *     runs out of memory for its own structures or mappings);
 *   - all-or-nothing: on failure the backend's state (direct map, aliases,
 *     counters other than failure counters) is exactly as before the call;
 *   - the *_noflush-style direct-map changes do NOT flush the TLB: the caller
 *     flushes once with flush_tlb() after a batch, as the kernel does. Splits
 *     that CPA performs cost their own global flush, counted by the backend;
 *   - a protection that is writable and executable at once is refused with
 *     -EINVAL (W^X), also when a set_memory() would make one page so (x on
 *     a writable page, rw on an executable one).
 *
 * Thread safety: a backend is not internally synchronised; its owner
 * serialises calls under machine::lock (phys/machine.h). The exception is
 * write_frames() and fill_frames(): they touch only the frames' contents
 * (pwrite() to the memfd; a counter in the simulation), so a caller that owns
 * the frames may call them concurrently with each other and with any other
 * operation, without the machine lock. This keeps the trap fill of every
 * free off the machine-wide lock.
 */
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "types.h"

namespace ua {

template <class B>
concept direct_map_ops = requires(B &b, frame_range r) {
	{ b.set_direct_map_invalid(r) } -> std::same_as<int>;
	{ b.set_direct_map_default(r) } -> std::same_as<int>;
	{ b.set_direct_map_ro(r) } -> std::same_as<int>;
	{ b.flush_tlb(r) } -> std::same_as<int>;
	{ b.collapse(r) } -> std::same_as<int>;
	{ b.direct_map_state(pfn_t{}) } -> std::same_as<dm_state>;
};

/*
 * Aliases. An alias is one virtual range mapping one or more runs of frames
 * in order; a, n below name a whole alias (its start and its size in bytes),
 * anything else is -EINVAL.
 *   map_alias(r, p, &a)             maps r at a new page-aligned address,
 *                                   2 MiB aligned when r is a whole number
 *                                   of chunks;
 *   map_alias_runs(runs, n, p, &a)  maps runs[0], runs[1], ... runs[n-1]
 *                                   one after the other at a new address,
 *                                   2 MiB aligned when every run is a whole
 *                                   number of chunks (n >= 1; every run
 *                                   non-empty and inside the machine; the
 *                                   same frame may appear in two runs).
 *                                   All or nothing: on failure no run is
 *                                   mapped. map_alias(r) is
 *                                   map_alias_runs(&r, 1). A last argument
 *                                   map_flags::huge maps it as
 *                                   VM_ALLOW_HUGE_VMAP does (types.h).
 *   set_memory(a, n, op)            [a, a + n) page aligned, n > 0, inside
 *                                   one live alias (any part of it).
 * Queries (never fail, never counted) for any address a inside a live alias:
 *   alias_frames(a)   the run holding a (for a one-run alias, all its frames)
 *   alias_pfn(a)      the frame behind a
 *   alias_prot(a)     the protection of the page holding a
 *   alias_secured(a)  whether secure_alias() was applied to it
 * and std::nullopt / false for an address in no alias.
 */
template <class B>
concept alias_ops = requires(B &b, const B &cb, frame_range r, const frame_range *runs, prot p, std::uintptr_t a,
			     std::size_t n, map_flags f, cpa_op op) {
	{ b.map_alias(r, p, &a) } -> std::same_as<int>;
	{ b.map_alias(r, p, &a, f) } -> std::same_as<int>;
	{ b.map_alias_runs(runs, n, p, &a) } -> std::same_as<int>;
	{ b.map_alias_runs(runs, n, p, &a, f) } -> std::same_as<int>;
	{ b.protect_alias(a, n, p) } -> std::same_as<int>;
	{ b.set_memory(a, n, op) } -> std::same_as<int>;
	{ b.unmap_alias(a, n) } -> std::same_as<int>;
	{ b.secure_alias(a, n) } -> std::same_as<int>;
	{ cb.alias_frames(a) } -> std::same_as<std::optional<frame_range>>;
	{ cb.alias_pfn(a) } -> std::same_as<std::optional<pfn_t>>;
	{ cb.alias_prot(a) } -> std::same_as<std::optional<prot>>;
	{ cb.alias_secured(a) } -> std::same_as<bool>;
};

template <class B>
concept memory_ops = requires(B &b, frame_range r, pfn_t pfn, std::size_t off, const void *src, std::size_t n, int byte) {
	{ b.write_frames(pfn, off, src, n) } -> std::same_as<int>;
	{ b.fill_frames(pfn, off, byte, n) } -> std::same_as<int>;
	{ b.release_frames(r) } -> std::same_as<int>;
};

template <class B>
concept mapping_backend = direct_map_ops<B> && alias_ops<B> && memory_ops<B> && requires(const B &cb) {
	{ cb.nr_pages() } -> std::same_as<std::uint64_t>;
	{ cb.stats() } -> std::same_as<backend_stats>;
	/* True when aliases are real, dereferenceable memory (tests may read them). */
	{ B::dereferenceable } -> std::convertible_to<bool>;
	{ B::name } -> std::convertible_to<const char *>;
};

/*
 * Optional: a backend that can say how its direct map maps a frame, as
 * lookup_address() tells kernel code the level of a kernel address.
 * direct_map_page_size(pfn) is the size of the direct-map page that maps
 * pfn (page_size, pmd_size or pud_size), 0 where nothing is mapped. The
 * chunk source uses it to take chunks where removing them splits no large
 * page (cache/chunk_source.h); a backend without it is served as before.
 * The simulated kernel has it; the real backends do not (their direct map
 * is never mapped by 1 GiB pages, or is the running kernel's own).
 */
template <class B>
concept reports_direct_map_pages = requires(const B &cb, pfn_t pfn) {
	{ cb.direct_map_page_size(pfn) } -> std::same_as<std::uint64_t>;
};

}  // namespace ua
