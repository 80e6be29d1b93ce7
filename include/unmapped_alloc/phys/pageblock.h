// SPDX-License-Identifier: MIT
/*
 * phys/pageblock.h - the page allocator's orders and its 512-bit block maths.
 *
 * The buddy allocator (page_alloc.h) keeps no record per frame or per free
 * block: free blocks follow from which frames are free, because buddies always
 * merge. Its sparse levels hold 512-bit masks (one bit per frame of a 2 MiB
 * pageblock, or per pageblock of a 1 GiB region), and these helpers turn the
 * masks into blocks: find the next/previous/nearest set bit, decompose a free
 * mask into maximal aligned blocks, read a block's order from the distance to
 * the next block head. Private to the page allocator (namespace detail::pa).
 */
#pragma once

#include <array>
#include <bit>
#include <cstdint>

#include "../config.h"
#include "../mapping.h"

namespace ua {

inline constexpr unsigned pageblock_order = chunk_order;             /* 9: 2 MiB */
inline constexpr unsigned page_max_order = pud_shift - page_shift;   /* 18: 1 GiB */
inline constexpr unsigned nr_page_orders = page_max_order + 1;
inline constexpr std::uint64_t pages_per_region = std::uint64_t{1} << page_max_order;
inline constexpr pfn_t no_hint = ~pfn_t{0};

namespace detail::pa {

inline constexpr std::uint64_t npos = ~std::uint64_t{0};

inline bool test_bit(const std::uint64_t *w, std::uint64_t i) noexcept { return (w[i >> 6] >> (i & 63)) & 1; }
inline void set_bit(std::uint64_t *w, std::uint64_t i) noexcept { w[i >> 6] |= std::uint64_t{1} << (i & 63); }
inline void clear_bit(std::uint64_t *w, std::uint64_t i) noexcept { w[i >> 6] &= ~(std::uint64_t{1} << (i & 63)); }
inline void assign_bit(std::uint64_t *w, std::uint64_t i, bool v) noexcept { v ? set_bit(w, i) : clear_bit(w, i); }

/* Set (v) or clear bits [i, i + n) where n is a power of two and i is n-aligned. */
inline void assign_aligned(std::uint64_t *w, unsigned i, unsigned n, bool v) noexcept
{
	if (n >= 64) {
		for (unsigned k = i >> 6; k < (i + n) >> 6; k++)
			w[k] = v ? ~std::uint64_t{0} : 0;
		return;
	}
	const std::uint64_t m = ((std::uint64_t{1} << n) - 1) << (i & 63);
	w[i >> 6] = v ? (w[i >> 6] | m) : (w[i >> 6] & ~m);
}

/* Lowest set bit in [from, end), or npos. */
inline std::uint64_t find_next(const std::uint64_t *w, std::uint64_t from, std::uint64_t end) noexcept
{
	if (from >= end)
		return npos;
	std::uint64_t k = from >> 6;
	std::uint64_t x = w[k] & (~std::uint64_t{0} << (from & 63));
	const std::uint64_t last = (end - 1) >> 6;
	for (;;) {
		if (x) {
			const std::uint64_t i = (k << 6) + std::countr_zero(x);
			return i < end ? i : npos;
		}
		if (++k > last)
			return npos;
		x = w[k];
	}
}

/* Highest set bit in [begin, before), or npos. */
inline std::uint64_t find_prev(const std::uint64_t *w, std::uint64_t begin, std::uint64_t before) noexcept
{
	if (before <= begin)
		return npos;
	std::uint64_t k = (before - 1) >> 6;
	std::uint64_t x = w[k] & (~std::uint64_t{0} >> (63 - ((before - 1) & 63)));
	for (;;) {
		if (x) {
			const std::uint64_t i = (k << 6) + 63 - std::countl_zero(x);
			return i >= begin ? i : npos;
		}
		if (k-- == (begin >> 6))
			return npos;
		x = w[k];
	}
}

/* Set bit in [begin, end) nearest to pos (ties go to the lower one), or npos. */
inline std::uint64_t find_nearest(const std::uint64_t *w, std::uint64_t begin, std::uint64_t end,
				  std::uint64_t pos) noexcept
{
	if (begin >= end)
		return npos;
	pos = pos < begin ? begin : (pos >= end ? end - 1 : pos);
	const std::uint64_t up = find_next(w, pos, end);
	const std::uint64_t down = find_prev(w, begin, pos);
	if (up == npos)
		return down;
	if (down == npos)
		return up;
	return (up - pos < pos - down) ? up : down;
}

inline bool any(const std::uint64_t *w, unsigned nwords) noexcept
{
	std::uint64_t x = 0;
	for (unsigned k = 0; k < nwords; k++)
		x |= w[k];
	return x != 0;
}

/* log2 of the distance from `page` to the next bit of `bounds` (or `end`). */
inline unsigned block_order_at(const std::uint64_t *bounds, unsigned page, unsigned end) noexcept
{
	std::uint64_t next = find_next(bounds, page + 1, end);
	if (next == npos)
		next = end;
	return unsigned(std::countr_zero(next - page));
}

/*
 * Maximal free blocks of a pageblock, from its 512-bit free mask. full[o]
 * has a bit at each o-aligned page whose 2^o pages are all free (orders 0..6
 * within a word); for orders 6..9 the same per word, one bit per word. A full
 * block is a free buddy block when its parent is not full: that is the merge
 * __free_one_page() would have done.
 */
struct pageblock_blocks {
	std::uint64_t full[7][8];
	unsigned word_full[4]; /* orders 6..9: bit k = word k starts a full block */

	explicit pageblock_blocks(const std::uint64_t *free) noexcept
	{
		static constexpr std::uint64_t align[7] = {
			~std::uint64_t{0}, 0x5555555555555555, 0x1111111111111111, 0x0101010101010101,
			0x0001000100010001, 0x0000000100000001, 1};
		for (unsigned k = 0; k < 8; k++) {
			full[0][k] = free[k];
			for (unsigned o = 0; o < 6; o++)
				full[o + 1][k] = full[o][k] & (full[o][k] >> (1u << o)) & align[o + 1];
		}
		unsigned m = 0;
		for (unsigned k = 0; k < 8; k++)
			m |= unsigned(full[6][k] & 1) << k;
		word_full[0] = m;
		word_full[1] = m & (m >> 1) & 0x55;
		word_full[2] = word_full[1] & (word_full[1] >> 2) & 0x11;
		word_full[3] = word_full[2] & (word_full[2] >> 4) & 0x01;
	}

	bool whole() const noexcept { return word_full[3] != 0; }

	/* Maximal free blocks of order o < 9 as a page-indexed 512-bit mask of block starts. */
	void blocks(unsigned o, std::uint64_t out[8]) const noexcept
	{
		if (o < 6) {
			for (unsigned k = 0; k < 8; k++)
				out[k] = full[o][k] & ~(full[o + 1][k] | (full[o + 1][k] << (1u << o)));
			return;
		}
		const unsigned s = 1u << (o - 6);
		const unsigned m = word_full[o - 6] & ~(word_full[o - 5] | (word_full[o - 5] << s));
		for (unsigned k = 0; k < 8; k++)
			out[k] = (m >> k) & 1;
	}

	unsigned count(unsigned o) const noexcept
	{
		std::uint64_t b[8];
		blocks(o, b);
		unsigned n = 0;
		for (unsigned k = 0; k < 8; k++)
			n += unsigned(std::popcount(b[k]));
		return n;
	}
};

/* A pageblock split below order 9. Frames past the machine's end are neither free nor allocated. */
struct pageblock_rec {
	std::uint64_t free[8];
	std::uint64_t head[8];
	std::uint16_t nr_free[pageblock_order]; /* maximal free blocks per order, as last accounted */
	std::uint16_t nr_valid;                 /* frames of this pageblock below nr_pages */
};

inline constexpr std::uint32_t no_rec = ~std::uint32_t{0};
inline constexpr unsigned large_orders = page_max_order - pageblock_order; /* orders 9..17 */

/* A 1 GiB region split below order 18. Indices are pageblocks within the region. */
struct region_state {
	std::uint64_t free_blk[large_orders][8];   /* order 9+j free block starts here */
	std::uint64_t alloc_blk[large_orders][8];  /* order 9+j allocated block starts here */
	std::uint64_t has_small[pageblock_order][8]; /* record holds a free block of order o */
	std::uint32_t rec[pages_per_chunk];

	void reset() noexcept
	{
		for (auto &m : free_blk) for (auto &w : m) w = 0;
		for (auto &m : alloc_blk) for (auto &w : m) w = 0;
		for (auto &m : has_small) for (auto &w : m) w = 0;
		for (auto &r : rec) r = no_rec;
	}
};

}  // namespace detail::pa

}  // namespace ua
