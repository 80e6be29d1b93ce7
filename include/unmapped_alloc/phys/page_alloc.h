// SPDX-License-Identifier: MIT
/*
 * phys/page_alloc.h - the simulated page allocator the library sits beside,
 * placing pages the way Linux 6.18's mm/page_alloc.c does.
 *
 * Memory comes from a memory map (mapping/memory_map.h): its RAM ranges are
 * freed to the buddy allocator at boot as memblock_free_all() does (blocks
 * of up to MAX_PAGE_ORDER, to the tail of the free lists, so a fresh free
 * list is in address order); holes and reserved ranges are never free.
 * Frames are grouped into zones (zone.h: DMA, DMA32, Normal, Movable) and
 * pageblocks of order 9, each with a migratetype.
 *
 * The rules, each in the function that models its kernel counterpart:
 *   - alloc_pages() is __alloc_pages(): gfp_zone() picks the highest zone,
 *     the zonelist falls back Movable -> Normal -> DMA32 -> DMA; each zone
 *     must pass zone_watermark_fast() at the low watermark (the fast path)
 *     or, in the slow path after kswapd ran, the min watermark; then direct
 *     reclaim, drain_all_pages() and a last try. Reclaim evicts only the
 *     page cache ageing and page_cache_read() filled (page_age.h); there is
 *     no compaction, so a request the kernel would satisfy by compaction
 *     fails here with no_memory. For the unmovable order-9 requests of the
 *     designs here that is close: a costly order without
 *     __GFP_RETRY_MAYFAIL gets only async direct compaction, which for a
 *     non-movable request scans only pageblocks of its own migratetype
 *     (suitable_migration_source(), mm/compaction.c). alloc_contig_range()
 *     does migrate page-cache pages (page_alloc_range.h).
 *   - rmqueue(): orders up to PAGE_ALLOC_COSTLY_ORDER and order 9 (THP)
 *     come from this CPU's per-CPU list, refilled by rmqueue_bulk() with
 *     nr_pcp_alloc() pages; other orders from the buddy lists.
 *   - __rmqueue(): __rmqueue_smallest() from the request's migratetype,
 *     then __rmqueue_claim() (largest block of a fallback type, claiming
 *     its pageblock when try_to_claim_block() allows), then
 *     __rmqueue_steal(); ALLOC_NOFRAGMENT (preferred zone Normal) forbids
 *     claiming below pageblock order and stealing until every zone failed.
 *   - Free lists are LIFO: list_first_entry() on allocation, list_add() on
 *     free, except where __free_one_page() adds to the tail
 *     (buddy_merge_likely(), FPI_TO_TAIL at boot) and
 *     __move_freepages_block() (list_move_tail()).
 *   - free_pages() is free_frozen_pages(): pcp orders go to this CPU's
 *     list (free_frozen_page_commit()), which free_pcppages_bulk() drains
 *     past pcp->high; other orders go to __free_one_page() through
 *     split_large_buddy(), merging with free buddies.
 *
 * Not modelled (see docs/page_alloc.md): highatomic reserves, CMA,
 * isolation, watermark boosting, compaction, pcp->high auto-tuning, NUMA.
 *
 * Proposal, off by default: cfg.placement_hint makes alloc_pages() take
 * the free block nearest the hint's 1 GiB region (bypassing the pcp lists),
 * as the library's chunk source would like; the kernel takes no such hint.
 *
 * Frames' state is 9 bytes each (pageblock.h); the object is copyable, so a
 * machine aged once can be copied for each run.
 *
 * Thread safety: none. The owner serialises every call (machine::lock), as
 * the kernel does with zone->lock and the pcp locks.
 */
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "../check.h"
#include "../config.h"
#include "../error.h"
#include "../mapping/memory_map.h"
#include "pageblock.h"
#include "zone.h"

namespace ua {

/*
 * gfp flags (include/linux/gfp_types.h), the subset the simulation reads:
 * zone modifiers and mobility. GFP_KERNEL is 0 here: highest zone Normal,
 * unmovable. __GFP_MOVABLE alone keeps the highest zone Normal; with
 * __GFP_HIGHMEM it is Movable (gfp_zone()).
 */
using gfp_t = unsigned;
inline constexpr gfp_t gfp_dma = 1u << 0;          /* __GFP_DMA */
inline constexpr gfp_t gfp_dma32 = 1u << 1;        /* __GFP_DMA32 */
inline constexpr gfp_t gfp_highmem = 1u << 2;      /* __GFP_HIGHMEM */
inline constexpr gfp_t gfp_movable = 1u << 3;      /* __GFP_MOVABLE */
inline constexpr gfp_t gfp_reclaimable = 1u << 4;  /* __GFP_RECLAIMABLE */
inline constexpr gfp_t gfp_all_bits = (1u << 5) - 1;
inline constexpr gfp_t gfp_kernel = 0;                               /* GFP_KERNEL */
inline constexpr gfp_t gfp_highuser_movable = gfp_highmem | gfp_movable; /* GFP_HIGHUSER_MOVABLE: user and page-cache pages */
/* The names the library uses: a chunk that leaves the direct map is GFP_KERNEL, never ZONE_MOVABLE. */
inline constexpr gfp_t gfp_normal_only = gfp_kernel;
inline constexpr gfp_t gfp_any_zone = gfp_highuser_movable;
inline constexpr gfp_t gfp_movable_first = gfp_highuser_movable;

/* Known bits only, one zone modifier, one mobility. */
constexpr bool gfp_valid(gfp_t gfp) noexcept
{
	return !(gfp & ~gfp_all_bits) && !((gfp & gfp_dma) && (gfp & gfp_dma32)) &&
	       !((gfp & gfp_movable) && (gfp & gfp_reclaimable));
}

/* gfp_zone(): the highest zone a request may use. */
constexpr zone_type gfp_zone(gfp_t gfp) noexcept
{
	return (gfp & gfp_dma) ? zone_type::dma
	       : (gfp & gfp_dma32) ? zone_type::dma32
	       : ((gfp & gfp_highmem) && (gfp & gfp_movable)) ? zone_type::movable
							      : zone_type::normal;
}

/* Watermarks: 0 = off (no watermark, no lowmem_reserve), or this many KiB, or the kernel's formula. */
inline constexpr std::int64_t min_free_kbytes_auto = -1;

struct page_alloc_config {
	/* Top fraction of RAM that is ZONE_MOVABLE (movablecore=), in [0, 1]; 0 = none, as by default in Linux. */
	double movable_fraction = 0.0;
	/*
	 * vm.min_free_kbytes. min_free_kbytes_auto: calculate_min_free_kbytes()
	 * and, with thp, set_recommended_min_free_kbytes(). 0 (default): no
	 * watermarks and no lowmem_reserve, so the library's tests can run
	 * machines of a few frames (the kernel's floor is 128 KiB).
	 */
	std::int64_t min_free_kbytes = 0;
	unsigned nr_cpus = 2;  /* CPUs, each with its own per-CPU lists */
	bool thp = true;       /* CONFIG_TRANSPARENT_HUGEPAGE: order-9 pcp lists, khugepaged's min_free_kbytes */
	bool placement_hint = false; /* proposal: honour alloc_pages()'s hint (see above) */
};

/* Free blocks per order (free_area[order].nr_free) and free pages (NR_FREE_PAGES plus the pcp lists). */
struct free_area_stats {
	std::array<std::uint64_t, nr_page_orders> nr_free{};
	std::uint64_t nr_free_pages = 0;
};

struct zone_info {
	zone_type type = zone_type::normal;
	frame_range span;               /* empty when the zone has no memory */
	std::uint64_t managed = 0;      /* RAM frames the zone's buddy allocator owns */
	std::uint64_t nr_free_pages = 0; /* buddy and pcp */
	std::uint64_t pcp_pages = 0;
	std::uint64_t wmark_min = 0, wmark_low = 0, wmark_high = 0;
	int pcp_high = 0, pcp_batch = 0;
};

/* Ageing parameters and outcome; the procedure is described in page_age.h. */
struct age_config {
	double used_fraction = 0.5;        /* share of the aged memory left allocated (page cache, slab, anon) */
	double free_chunk_fraction = 0.02; /* share of pageblocks left wholly free, as kswapd/compaction keep some */
	std::uint64_t seed = 1;
	gfp_t gfp = gfp_any_zone;          /* the page cache's gfp (mapping_gfp_mask()) */
};
struct age_report {
	std::uint64_t pageblocks_aged = 0;       /* pageblocks holding an allocated page after ageing */
	std::uint64_t pageblocks_kept_free = 0;  /* pageblocks wholly free after ageing */
	std::uint64_t pages_allocated = 0;       /* pages left allocated by ageing */
};
/* How widely free memory is spread (buddy and pcp frames). */
struct fragmentation_stats {
	std::uint64_t pageblocks_with_free = 0;  /* 2 MiB blocks holding any free page */
	std::uint64_t pageblocks_free = 0;       /* 2 MiB blocks wholly free */
	std::uint64_t regions_with_free = 0;     /* 1 GiB regions holding any free page */
	std::uint64_t regions_free = 0;          /* 1 GiB regions wholly free */
};

class page_allocator {
public:
	/* A machine of nr_pages frames of RAM from pfn 0 (memory_map::flat()). */
	explicit page_allocator(std::uint64_t nr_pages, page_alloc_config cfg = {});
	/* A machine laid out as mm says: only its RAM is ever free. */
	explicit page_allocator(const memory_map &mm, page_alloc_config cfg = {});

	/*
	 * A block of 2^order frames. Errors: too_large (order > MAX_PAGE_ORDER,
	 * as __alloc_pages() refuses), bad_flags (unknown or contradictory gfp
	 * bits), foreign_pointer (hint past the machine), no_memory (nothing
	 * passes the watermarks; nothing changed).
	 */
	result<pfn_t> alloc_pages(unsigned order, gfp_t gfp, pfn_t hint = no_hint);

	/*
	 * Free a block returned by alloc_pages() with the same order. Refused,
	 * changing nothing: too_large (order), foreign_pointer (beyond the
	 * machine or in a hole), bad_alignment (pfn not 2^order aligned),
	 * not_live (the frame is free: double free), interior_pointer (inside an
	 * allocated block but not its start), bad_chunk (start of an allocated
	 * block of another order).
	 */
	error free_pages(pfn_t pfn, unsigned order);

	/*
	 * A block of order max_contig_order >= order > MAX_PAGE_ORDER, as
	 * alloc_contig_pages() gets one (page_alloc_contig.h): the lowest
	 * aligned wholly free range of the zonelist's first zone that has one.
	 * Errors: bad_flags (order <= MAX_PAGE_ORDER: use alloc_pages(); bad
	 * gfp), too_large, no_memory. free_contig_range() gives it back, with
	 * free_pages()'s checks (orders above MAX_PAGE_ORDER only).
	 */
	static constexpr unsigned max_contig_order = 15;
	result<pfn_t> alloc_contig_pages(unsigned order, gfp_t gfp);
	error free_contig_range(pfn_t pfn, unsigned order);

	/*
	 * The block of 2^order frames at pfn (order <= MAX_PAGE_ORDER, pfn
	 * aligned to it), as alloc_contig_range() takes a range the caller chose
	 * (page_alloc_range.h): when every frame of it is free or a page-cache
	 * page, which is migrated out, and it is in a zone gfp allows. Errors:
	 * too_large, bad_flags, foreign_pointer, bad_alignment, no_memory (a
	 * frame that cannot move, a zone gfp does not allow, or no migration
	 * target; nothing changed but where migrated page-cache pages sit).
	 * free_pages() gives it back.
	 */
	result<pfn_t> alloc_contig_range(pfn_t pfn, unsigned order, gfp_t gfp) noexcept;
	/* Whether alloc_contig_range(pfn, order, ...) would find the range free. */
	bool range_free(pfn_t pfn, unsigned order) const noexcept;
	/* Whether every frame of the range is free or a page-cache page alloc_contig_range() can migrate. */
	bool range_migratable(pfn_t pfn, unsigned order) const noexcept;
	/* Free buddy blocks of pageblock order or more in 1 GiB region `region` (the simulation's index; page_alloc_range.h). */
	std::uint64_t region_free_blocks(std::uint64_t region) const noexcept;

	/* The order of the allocated block starting at pfn, or the error free_pages() would give. */
	result<unsigned> allocated_order(pfn_t pfn) const;

	std::uint64_t nr_pages() const noexcept { return managed_; }   /* RAM frames managed */
	pfn_t end_pfn() const noexcept { return end_pfn_; }             /* max_pfn */
	std::uint64_t nr_free_pages() const noexcept;                   /* buddy and pcp frames */
	free_area_stats free_area(zone_type z) const noexcept;
	free_area_stats free_area() const noexcept;
	zone_info zone(zone_type z) const noexcept;
	zone_type zone_of(pfn_t pfn) const noexcept { return zone_type(zone_idx(pfn)); }
	unsigned pageblock_migratetype(pfn_t pfn) const noexcept { return pb_mt_[pfn >> pageblock_order]; }
	const page_alloc_config &config() const noexcept { return cfg_; }

	/* The CPU whose per-CPU lists the next calls use (smp_processor_id()); wraps modulo nr_cpus. */
	void set_cpu(unsigned cpu) noexcept { cpu_ = cpu % nr_cpus_; }
	unsigned cpu() const noexcept { return cpu_; }
	unsigned nr_cpus() const noexcept { return nr_cpus_; }
	/* drain_all_pages(NULL): every CPU's lists back to the buddy lists. */
	void drain_all_pages();

	/* /proc/buddyinfo and /proc/pagetypeinfo (free blocks per order; per migratetype), page_alloc_dump.h. */
	std::string buddyinfo() const;
	std::string pagetypeinfo() const;

	/*
	 * The page cache (page_age.h). page_cache_read() reads nr order-0
	 * GFP_HIGHUSER_MOVABLE pages onto the LRU's young end; when the fast
	 * path fails, kswapd evicts from the old end until a zone is above its
	 * high watermark (pgdat_balanced()). Returns the pages read (fewer only
	 * when nothing is left to evict). page_cache_evict() evicts up to nr of
	 * the oldest pages and returns how many it evicted.
	 */
	std::uint64_t page_cache_read(std::uint64_t nr);
	std::uint64_t page_cache_evict(std::uint64_t nr);
	std::uint64_t page_cache_pages() const noexcept { return page_cache_nr_; }

	/* Age the machine (page_age.h). Errors: bad_flags for bad parameters. */
	result<age_report> age(const age_config &cfg = {});
	fragmentation_stats fragmentation() const;

	/* Expensive walk of every frame and list (check.h): "" or the first violation. */
	std::string check_consistency() const;

	/*
	 * Fault injection, as the kernel's should_fail_alloc_page()
	 * (mm/fail_page_alloc.c): when set, a valid alloc_pages() request asks
	 * fn(ctx, order) first and fails with no_memory, changing nothing, when
	 * it answers true. For tests (tests/support/fault_backend.h); nullptr clears it.
	 */
	using fault_hook = bool (*)(void *ctx, unsigned order) noexcept;
	void set_fault_hook(fault_hook fn, void *ctx) noexcept
	{
		fault_hook_ = fn;
		fault_ctx_ = ctx;
	}

private:
	using zone_t = detail::pa::zone;
	using pcp_t = detail::pa::per_cpu_pages;
	using list_head = detail::pa::list_head;

	/* alloc_flags (mm/internal.h) */
	static constexpr unsigned alloc_wmark_min = detail::pa::wmark_min;
	static constexpr unsigned alloc_wmark_low = detail::pa::wmark_low;
	static constexpr unsigned alloc_wmark_mask = 3;
	static constexpr unsigned alloc_nofragment = 0x100;
	enum rmqueue_mode { rmqueue_mode_normal, rmqueue_mode_claim, rmqueue_mode_steal };

	page_alloc_config cfg_;
	unsigned nr_cpus_ = 1;
	unsigned cpu_ = 0;
	pfn_t end_pfn_ = 0;
	std::uint64_t managed_ = 0;
	bool mobility_disabled_ = false; /* page_group_by_mobility_disabled */
	std::array<pfn_t, nr_zones> zone_lo_{}; /* first pfn of each zone's range */
	std::array<zone_t, nr_zones> zones_;
	std::vector<std::uint32_t> next_, prev_; /* page->lru links */
	std::vector<std::uint8_t> state_;        /* pageblock.h frame state */
	std::vector<std::uint8_t> pb_mt_;        /* pageblock migratetype */
	std::vector<std::uint32_t> region_free_; /* buddy blocks of order >= 9 per 1 GiB region (page_alloc_range.h) */
	fault_hook fault_hook_ = nullptr;
	void *fault_ctx_ = nullptr;
	/*
	 * Page-cache LRU of ageing, oldest first (page_age.h), and which frames
	 * hold a page-cache page (PageLRU of a file folio): an LRU entry counts
	 * only while its frame's bit is set, so the entry a migrated page leaves
	 * behind (page_alloc_range.h) is skipped.
	 */
	std::vector<std::uint32_t> lru_;
	std::uint64_t lru_head_ = 0;
	std::vector<std::uint64_t> page_cache_bits_;
	bool in_page_cache(pfn_t p) const noexcept { return (page_cache_bits_[p >> 6] >> (p & 63)) & 1; }
	std::uint64_t page_cache_nr_ = 0;
	void set_page_cache(pfn_t p, bool on) noexcept
	{
		const std::uint64_t bit = std::uint64_t{1} << (p & 63);
		if (bool(page_cache_bits_[p >> 6] & bit) == on)
			return;
		page_cache_bits_[p >> 6] ^= bit;
		page_cache_nr_ = on ? page_cache_nr_ + 1 : page_cache_nr_ - 1;
	}
	/* Push p onto the LRU's young end as a page-cache page. */
	void lru_add(pfn_t p)
	{
		lru_.push_back(std::uint32_t(p));
		set_page_cache(p, true);
	}
	/* page_alloc_range.h: migrate_page_cache() moves one page-cache page out of an isolated range. */
	bool migrate_page_cache(pfn_t src) noexcept;

	void boot(const memory_map &mm);
	unsigned zone_idx(pfn_t pfn) const noexcept
	{
		return pfn >= zone_lo_[3] ? 3u : pfn >= zone_lo_[2] ? 2u : pfn >= zone_lo_[1] ? 1u : 0u;
	}
	zone_t &zone_of_pfn(pfn_t pfn) noexcept { return zones_[zone_idx(pfn)]; }

	/* list.h */
	void list_add(list_head &h, std::uint32_t p) noexcept;
	void list_add_tail(list_head &h, std::uint32_t p) noexcept;
	void list_del(list_head &h, std::uint32_t p) noexcept;

	/* buddy.h */
	void add_to_free_list(zone_t &z, pfn_t pfn, unsigned order, unsigned mt, bool tail) noexcept;
	void del_page_from_free_list(zone_t &z, pfn_t pfn, unsigned order, unsigned mt) noexcept;
	/* page_alloc_range.h: the free buddy block holding pfn (its head), or no page; taking a wholly free range. */
	pfn_t free_block_of(pfn_t pfn) const noexcept;
	void take_free_range(zone_t &z, pfn_t pfn, pfn_t nr) noexcept;
	/* pfn aligned to 2^order, the range inside the frames and inside one zone. */
	bool range_in_one_zone(pfn_t pfn, unsigned order) const noexcept;
	bool migrate_range(zone_t &z, pfn_t pfn, pfn_t nr) noexcept;
	void move_to_free_list(zone_t &z, pfn_t pfn, unsigned order, unsigned old_mt, unsigned new_mt) noexcept;
	bool page_is_buddy(const zone_t &z, pfn_t buddy, unsigned order) const noexcept;
	bool buddy_merge_likely(const zone_t &z, pfn_t pfn, pfn_t buddy_pfn, unsigned order) const noexcept;
	void free_one_page(zone_t &z, pfn_t pfn, unsigned order, unsigned mt, bool to_tail) noexcept;
	void split_large_buddy(zone_t &z, pfn_t pfn, unsigned order, bool to_tail) noexcept;
	void expand(zone_t &z, pfn_t pfn, unsigned low, unsigned high, unsigned mt) noexcept;
	void change_pageblock_range(pfn_t pfn, unsigned order, unsigned mt) noexcept;
	pfn_t rmqueue_smallest(zone_t &z, unsigned order, unsigned mt) noexcept;
	int find_suitable_fallback(const zone_t &z, unsigned order, unsigned mt, bool claimable) const noexcept;
	pfn_t try_to_claim_block(zone_t &z, pfn_t pfn, unsigned current_order, unsigned order, unsigned start_type,
				 unsigned block_type) noexcept;
	pfn_t rmqueue_claim(zone_t &z, unsigned order, unsigned mt, unsigned alloc_flags) noexcept;
	pfn_t rmqueue_steal(zone_t &z, unsigned order, unsigned mt) noexcept;
	pfn_t rmqueue_fallbacks(zone_t &z, unsigned order, unsigned mt, unsigned alloc_flags, rmqueue_mode &mode) noexcept;

	/* pcp.h */
	int nr_pcp_alloc(pcp_t &pcp, unsigned order) noexcept;
	int rmqueue_bulk(zone_t &z, unsigned order, int count, list_head &list, unsigned mt, unsigned alloc_flags) noexcept;
	pfn_t rmqueue_pcplist(zone_t &z, unsigned order, unsigned mt, unsigned alloc_flags) noexcept;
	void free_pcppages_bulk(zone_t &z, int count, pcp_t &pcp, unsigned pindex) noexcept;
	void free_frozen_page_commit(zone_t &z, pcp_t &pcp, pfn_t pfn, unsigned mt, unsigned order) noexcept;
	void drain_pages_zone(zone_t &z, pcp_t &pcp) noexcept;

	/* page_alloc_path.h */
	bool zone_watermark_ok(const zone_t &z, unsigned order, std::uint64_t mark, unsigned highest_zoneidx) const noexcept;
	bool zone_watermark_fast(const zone_t &z, unsigned order, std::uint64_t mark, unsigned highest_zoneidx) const noexcept;
	pfn_t rmqueue(zone_t &z, unsigned order, unsigned mt, unsigned alloc_flags) noexcept;
	pfn_t get_page_from_freelist(unsigned order, unsigned mt, unsigned alloc_flags, unsigned highest_zoneidx,
				     pfn_t hint) noexcept;
	pfn_t take_hinted(zone_t &z, unsigned order, unsigned mt, pfn_t hint) noexcept;
	void prep_new_page(pfn_t pfn, unsigned order, unsigned mt) noexcept;
	/* The checks of a free after its order's: pfn starts an allocated block of that order, or the error. */
	error check_allocated_block(pfn_t pfn, unsigned order) const;
	bool reclaim_lru(std::uint64_t nr_pages);
	pfn_t alloc_fast(unsigned order, gfp_t gfp) noexcept;
	bool kswapd_balance();
};

}  // namespace ua

#include "page_alloc_list.h"
#include "page_alloc_buddy.h"
#include "page_alloc_pcp.h"
#include "page_alloc_path.h"
#include "page_alloc_boot.h"
#include "page_alloc_contig.h"
#include "page_alloc_range.h"
#include "page_alloc_dump.h"
#include "page_age.h"
#include "page_alloc_check.h"
