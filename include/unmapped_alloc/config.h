// SPDX-License-Identifier: MIT
/*
 * config.h - compile-time constants shared by every layer.
 *
 * The library mirrors x86-64: 4 KiB base pages, 2 MiB PMD pages and 1 GiB PUD
 * pages. A chunk is exactly one PMD page, so a chunk can leave the direct map
 * as one whole large page without splitting it (the CPA rule in
 * arch/x86/mm/pat/set_memory.c keeps a large page large when a change covers
 * all of it with one protection).
 */
#pragma once

#include <cstddef>
#include <cstdint>

namespace ua {

inline constexpr unsigned page_shift = 12;
inline constexpr std::size_t page_size = std::size_t{1} << page_shift;  // 4 KiB
inline constexpr unsigned pmd_shift = 21;
inline constexpr std::size_t pmd_size = std::size_t{1} << pmd_shift;    // 2 MiB
inline constexpr unsigned pud_shift = 30;
inline constexpr std::size_t pud_size = std::size_t{1} << pud_shift;    // 1 GiB

/* A chunk is one PMD page: the unit taken from the page allocator. */
inline constexpr unsigned chunk_shift = pmd_shift;
inline constexpr std::size_t chunk_size = pmd_size;
inline constexpr std::size_t pages_per_chunk = chunk_size / page_size;  // 512
inline constexpr unsigned chunk_order = chunk_shift - page_shift;       // 9

/* The trap byte freed text is filled with (x86 INT3), as bpf_prog_pack does. */
inline constexpr std::uint8_t trap_byte = 0xcc;

constexpr bool is_pow2(std::size_t x) noexcept { return x != 0 && (x & (x - 1)) == 0; }
constexpr std::size_t align_up(std::size_t x, std::size_t a) noexcept { return (x + a - 1) & ~(a - 1); }
constexpr std::size_t align_down(std::size_t x, std::size_t a) noexcept { return x & ~(a - 1); }

static_assert(is_pow2(page_size) && is_pow2(chunk_size) && chunk_size % page_size == 0);

}  // namespace ua
