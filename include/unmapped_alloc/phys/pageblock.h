// SPDX-License-Identifier: MIT
/*
 * phys/pageblock.h - the page allocator's orders, migratetypes and the
 * compact per-frame state that stands in for struct page.
 *
 * The kernel keeps a 64-byte struct page per 4 KiB frame; the fields the
 * buddy allocator reads are the list links (page->buddy_list / pcp_list),
 * the order of a free block (set_buddy_order()), PageBuddy, and for the
 * fallback rules whether an allocated page is movable (PageLRU). Here these
 * are 9 bytes per frame: two 32-bit list links and one state byte, plus one
 * migratetype byte per pageblock (the kernel's pageblock_flags bitmap).
 *
 * Private to the page allocator (namespace detail::pa) except the constants.
 */
#pragma once

#include <cstdint>

#include "../config.h"
#include "../mapping.h"

namespace ua {

/* include/linux/mmzone.h: MAX_PAGE_ORDER is 10 on x86-64 (CONFIG_ARCH_FORCE_MAX_ORDER unset). */
inline constexpr unsigned page_max_order = 10;
inline constexpr unsigned nr_page_orders = page_max_order + 1; /* NR_PAGE_ORDERS */
/* include/linux/pageblock-flags.h: pageblock_order = HPAGE_PMD_ORDER (9) with THP. */
inline constexpr unsigned pageblock_order = chunk_order;
inline constexpr std::uint64_t pageblock_nr_pages = std::uint64_t{1} << pageblock_order;
/* include/linux/mmzone.h: PAGE_ALLOC_COSTLY_ORDER; orders up to it (and THP's) use the pcp lists. */
inline constexpr unsigned page_alloc_costly_order = 3;
/* A 1 GiB region, the unit of the placement-hint proposal and of fragmentation statistics. */
inline constexpr std::uint64_t pages_per_region = std::uint64_t{1} << (pud_shift - page_shift);
inline constexpr pfn_t no_hint = ~pfn_t{0};

/*
 * include/linux/mmzone.h enum migratetype, the three types the pcp lists
 * hold (MIGRATE_PCPTYPES). MIGRATE_HIGHATOMIC, CMA and ISOLATE are not
 * modelled: nothing in the simulation reserves highatomic blocks, has CMA or
 * isolates pageblocks.
 */
enum migratetype : std::uint8_t {
	migrate_unmovable = 0,
	migrate_movable = 1,
	migrate_reclaimable = 2,
};
inline constexpr unsigned migrate_pcptypes = 3;
inline const char *migratetype_name(unsigned mt) noexcept
{
	static const char *const names[] = {"Unmovable", "Movable", "Reclaimable"};
	return mt < migrate_pcptypes ? names[mt] : "?";
}

namespace detail::pa {

inline constexpr std::uint32_t nil = ~std::uint32_t{0};

/* A frame's state byte: kind in bits 4..6, order in bits 0..3, bit 7 "movable allocation". */
enum frame_kind : std::uint8_t {
	fk_hole = 0,      /* not RAM, or reserved: never on a list, never allocated */
	fk_free_tail = 1, /* inside a free block (buddy or pcp), not its head */
	fk_buddy = 2,     /* PageBuddy: head of a block on a zone free list */
	fk_pcp = 3,       /* head of a block on a per-CPU list (not PageBuddy) */
	fk_alloc = 4,     /* head of an allocated block */
	fk_alloc_tail = 5,
};
inline constexpr std::uint8_t fs_movable = 0x80; /* allocated as movable: PageLRU for prep_move_freepages_block() */

constexpr std::uint8_t make_state(frame_kind k, unsigned order, bool movable = false) noexcept
{
	return std::uint8_t((unsigned(k) << 4) | order | (movable ? fs_movable : 0));
}
constexpr frame_kind state_kind(std::uint8_t s) noexcept { return frame_kind((s >> 4) & 7); }
constexpr unsigned state_order(std::uint8_t s) noexcept { return s & 15; }

/* A list of frames linked through their next/prev links (struct list_head). */
struct list_head {
	std::uint32_t first = nil, last = nil;
	bool empty() const noexcept { return first == nil; }
};

}  // namespace detail::pa

}  // namespace ua
