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
 *   set_direct_map_invalid(r)  set_direct_map_invalid_noflush(): remove frames
 *   set_direct_map_default(r)  set_direct_map_default_noflush(): back to rw
 *   set_direct_map_ro(r)       set_memory_ro() on the direct-map address
 *   flush_tlb(r)               flush_tlb_kernel_range()
 *   collapse(r)                collapse_large_pages() / MADV_COLLAPSE
 *   map_alias(r, p)            vmap()/execmem's module-area mapping
 *   protect_alias(a, n, p)     set_memory_rox()/set_memory_nx() on the alias
 *   unmap_alias(a, n)          vunmap()
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
 *     -EINVAL (W^X).
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

template <class B>
concept alias_ops = requires(B &b, frame_range r, prot p, std::uintptr_t a, std::size_t n) {
	/* Maps r at a new chunk-aligned (2 MiB aligned when r is a whole number of chunks) address. */
	{ b.map_alias(r, p, &a) } -> std::same_as<int>;
	{ b.protect_alias(a, n, p) } -> std::same_as<int>;
	{ b.unmap_alias(a, n) } -> std::same_as<int>;
	{ b.secure_alias(a, n) } -> std::same_as<int>;
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

}  // namespace ua
