// SPDX-License-Identifier: MIT
/*
 * peers/peer.h - the interface every peer allocator implements, and the
 * pieces they share.
 *
 * A peer reproduces one kernel (or jemalloc) design for memory that leaves
 * the direct map, over the same ua::machine (page allocator + mapping
 * backend) as the library, so a benchmark can replay one workload against
 * all of them side by side. Every peer:
 *   - is a class template over the backend, built from a ua::machine<B>& and
 *     a config struct;
 *   - takes frames from the machine's page allocator through alloc_frames()
 *     (below): GFP_KERNEL-like flags, never above the buddy allocator's
 *     largest order (10 on x86);
 *   - follows a named kernel release, switched per instance by its config
 *     (release.h);
 *   - hands out alias addresses (backend.map_alias), as module/vmalloc
 *     addresses are; it never touches alias memory itself: contents (trap
 *     fill) go through backend.write_frames/fill_frames, the
 *     text_poke_copy()/text_poke_set() analogues;
 *   - has its own mutex (the originals have one global mutex or
 *     equivalent); lock order: peer mutex, then machine::lock, which is held
 *     only around page-allocator and backend calls;
 *   - follows the library's error contract: bad input gets a ua::error and
 *     changes nothing; a failed backend operation is unwound in reverse
 *     order and reported as error::backend_failure (a failed page
 *     allocation as error::no_memory); nothing leaks.
 *
 * peer_stats counts what the comparison needs. "chunks" is the number of
 * distinct 2 MiB-aligned physical regions holding a frame the peer holds:
 * chunks held for chunk-based designs, regions touched for page-based ones,
 * i.e. the direct-map large pages the peer's memory lies in.
 */
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>

#include <unmapped_alloc/check.h>
#include <unmapped_alloc/config.h>
#include <unmapped_alloc/error.h>
#include <unmapped_alloc/phys.h>
#include <unmapped_alloc/sim.h>

#include "release.h"

namespace ua::peers {

struct peer_stats {
	std::uint64_t live_count = 0;      /* live allocations */
	std::uint64_t live_bytes = 0;      /* as allocated, i.e. rounded by the allocator */
	std::uint64_t requested_bytes = 0; /* as asked for by the live allocations */
	std::uint64_t pages_held = 0;      /* 4 KiB frames taken from the page allocator, not returned */
	std::uint64_t chunks = 0;          /* distinct 2 MiB physical regions holding those frames */
	std::uint64_t metadata_bytes = 0;  /* the allocator's own bookkeeping, in ordinary memory */
	std::uint64_t dm_changes = 0;      /* direct-map change calls made (set_direct_map_*) */
	std::uint64_t flushes = 0;         /* flush_tlb calls made */
};

template <class A>
concept peer_allocator = requires(A &a, const A &ca, std::size_t n, std::uintptr_t p) {
	{ A::name } -> std::convertible_to<const char *>;
	/* size, align (a power of two; 1 = none) */
	{ a.alloc(n, n) } -> std::same_as<result<std::uintptr_t>>;
	{ a.free(p) } -> std::same_as<error>;
	{ ca.stats() } -> std::same_as<peer_stats>;
	/* give back everything cached (shrinker / release); end of a workload */
	{ a.drain() } -> std::same_as<void>;
};

/*
 * The page allocator as the peers' kernels call it. GFP_KERNEL: memory that
 * leaves the direct map must not come from ZONE_MOVABLE (memory hotplug needs
 * it movable). The buddy allocator's largest block is order 10 (MAX_ORDER - 1
 * on x86, the 11 columns of /proc/buddyinfo): the kernels never take more in
 * one block, so no peer asks for it (too_large, nothing changed).
 */
inline constexpr gfp_t peer_gfp = gfp_normal_only;
inline constexpr unsigned max_page_order = 10;

inline result<pfn_t> alloc_frames(page_allocator &pa, unsigned order)
{
	if (order > max_page_order)
		return result<pfn_t>::failure(error::too_large);
	return pa.alloc_pages(order, peer_gfp);
}

/* What a design does to the direct map for the frames it hands out. */
enum class dm_action {
	invalid, /* set_direct_map_invalid_noflush(): secretmem, __GFP_UNMAPPED, execmem 6.13 */
	ro,      /* set_memory_ro()/set_memory_rox() reaching the direct-map alias (cpa_process_alias()) */
};

template <mapping_backend B>
int apply_dm(B &b, frame_range r, dm_action a) noexcept
{
	return a == dm_action::invalid ? b.set_direct_map_invalid(r) : b.set_direct_map_ro(r);
}

/*
 * Undo of a backend step during rollback or release; failing stops the run
 * rather than let it go on with the record and the page tables apart. On
 * the simulated backend an undo never needs memory (CPA's restore splits
 * nothing, an alias unmaps whole). On the real backend the rollback of a
 * step just made merges the VMAs it split, but a later restore of frames
 * in the middle of an unmapped range splits that range's VMA and fails with
 * -ENOMEM once the process is at vm.max_map_count (docs/backends.md,
 * Rollback): a run that gets there stops here, naming the step, and gives
 * no figure rather than a wrong one.
 */
inline void must(int rc, const char *what) noexcept
{
	if (rc != 0) {
		char msg[192];
		std::snprintf(msg, sizeof msg, "%s: %d, %s", what, rc, std::strerror(rc < 0 ? -rc : rc));
		detail::check_failed("rc == 0", msg, __FILE__, __LINE__);
	}
}

/*
 * One page back to default in the direct map (set_direct_map_default_noflush()
 * of one page). Out of line on purpose: inlined into a per-page loop, GCC 12
 * misjudges the inline key buffer of sim_page_tables::plan() and fails the
 * -Werror build with a false -Warray-bounds.
 */
template <mapping_backend B>
[[gnu::noinline]] int set_direct_map_default_page(B &b, pfn_t pfn) noexcept
{
	return b.set_direct_map_default(frame_range{pfn, 1});
}

/* Common input checks: "" checks that change nothing. */
inline error check_request(std::size_t size, std::size_t align, std::size_t max_align) noexcept
{
	if (size == 0)
		return error::zero_size;
	if (!is_pow2(align) || align > max_align)
		return error::bad_alignment;
	return error::ok;
}

constexpr std::uint64_t pages_of(std::size_t bytes) noexcept { return (bytes + page_size - 1) >> page_shift; }

/* Smallest order whose block holds n pages (get_order()). */
constexpr unsigned order_of(std::uint64_t n) noexcept
{
	unsigned o = 0;
	while ((std::uint64_t{1} << o) < n)
		o++;
	return o;
}

/* Map node cost used for metadata estimates (red-black node header + key + value). */
template <class K, class V>
constexpr std::size_t map_node_bytes = 32 + sizeof(K) + sizeof(V);

/*
 * Which 2 MiB physical regions hold frames a peer holds, with a count per
 * region; pages() and chunks() feed peer_stats.
 */
class frame_census {
public:
	void add(frame_range r)
	{
		walk(r, [&](std::uint64_t region, std::uint64_t n) { regions_[region] += n; });
		pages_ += r.nr_pages;
	}
	void remove(frame_range r)
	{
		walk(r, [&](std::uint64_t region, std::uint64_t n) {
			auto it = regions_.find(region);
			UA_CHECK(it != regions_.end() && it->second >= n, "frame_census: removing frames never added");
			if ((it->second -= n) == 0)
				regions_.erase(it);
		});
		pages_ -= r.nr_pages;
	}
	std::uint64_t pages() const noexcept { return pages_; }
	std::uint64_t chunks() const noexcept { return regions_.size(); }
	std::size_t metadata_bytes() const noexcept
	{
		return regions_.size() * map_node_bytes<std::uint64_t, std::uint64_t>;
	}

private:
	template <class Fn>
	static void walk(frame_range r, Fn fn)
	{
		for (pfn_t p = r.pfn; p < r.end();) {
			const pfn_t next = (p | (pages_per_chunk - 1)) + 1;
			const pfn_t stop = next < r.end() ? next : r.end();
			fn(p >> chunk_order, stop - p);
			p = stop;
		}
	}

	std::map<std::uint64_t, std::uint64_t> regions_;
	std::uint64_t pages_ = 0;
};

}  // namespace ua::peers
