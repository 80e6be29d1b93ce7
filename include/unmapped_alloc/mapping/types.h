// SPDX-License-Identifier: MIT
/*
 * mapping/types.h - vocabulary of the mapping layer: page frames, frame ranges,
 * protections and the statistics every backend reports.
 */
#pragma once

#include <cstdint>
#include <cstddef>
#include <string>

#include "../config.h"

namespace ua {

/* A page frame number: physical address >> page_shift (4 KiB frames). */
using pfn_t = std::uint64_t;

/* A run of contiguous page frames [pfn, pfn + nr_pages). */
struct frame_range {
	pfn_t pfn = 0;
	std::uint64_t nr_pages = 0;

	constexpr pfn_t end() const noexcept { return pfn + nr_pages; }
	constexpr std::uint64_t bytes() const noexcept { return nr_pages << page_shift; }
	constexpr bool operator==(const frame_range &) const = default;
};

/* Protection bits, as PROT_* but independent of <sys/mman.h>. */
enum class prot : unsigned {
	none = 0,
	read = 1,
	write = 2,
	exec = 4,
	rw = read | write,
	rx = read | exec,
};
constexpr prot operator|(prot a, prot b) noexcept { return prot(unsigned(a) | unsigned(b)); }
constexpr bool has(prot p, prot bit) noexcept { return (unsigned(p) & unsigned(bit)) != 0; }
/* W^X: no address may ever be writable and executable at once. */
constexpr bool is_wx(prot p) noexcept { return has(p, prot::write) && has(p, prot::exec); }

/*
 * The set_memory_*() calls of arch/x86/mm/pat/set_memory.c a backend applies
 * to part of an alias, with alias processing (backend.h, set_memory()).
 */
enum class cpa_op : std::uint8_t {
	ro,  /* set_memory_ro(): clear write */
	rw,  /* set_memory_rw(): set write */
	x,   /* set_memory_x(): set exec */
	nx,  /* set_memory_nx(): clear exec */
	rox, /* set_memory_rox() (v6.2+): clear write, set exec */
};

/* The protection op makes of p on an alias. */
constexpr prot apply(cpa_op op, prot p) noexcept
{
	const unsigned w = unsigned(prot::write), x = unsigned(prot::exec);
	switch (op) {
	case cpa_op::ro: return prot(unsigned(p) & ~w);
	case cpa_op::rw: return prot(unsigned(p) | w);
	case cpa_op::x: return prot(unsigned(p) | x);
	case cpa_op::nx: return prot(unsigned(p) & ~x);
	case cpa_op::rox: return prot((unsigned(p) & ~w) | x);
	}
	return p;
}

/* How an alias is mapped (the vmap flags that matter to CPA). */
enum class map_flags : unsigned {
	none = 0,
	/*
	 * VM_ALLOW_HUGE_VMAP: every 2 MiB-aligned 2 MiB of the alias backed by
	 * 512 contiguous frames from a 2 MiB-aligned one is PMD-mapped
	 * (vmap_pages_range() with PMD_SHIFT), as execmem and huge vmalloc map;
	 * without it (vmap(), module_alloc()) the alias is 4 KiB pages.
	 */
	huge = 1,
};

/* State of a frame in the direct map. */
enum class dm_state : std::uint8_t {
	rw,      /* default: present, read-write (set_direct_map_default_noflush) */
	ro,      /* present, read-only (set_memory_ro) */
	invalid, /* not present (set_direct_map_invalid_noflush) */
};

/*
 * What a backend reports. Sizes are in kB as /proc/meminfo prints DirectMap*.
 * A backend that cannot read a figure sets the matching *_available to false and
 * says why in unavailable_reason; it never reports an unknown figure as zero.
 */
struct backend_stats {
	std::uint64_t directmap_4k_kb = 0;
	std::uint64_t directmap_2m_kb = 0;
	std::uint64_t directmap_1g_kb = 0;
	bool directmap_available = true;

	/* The kernel's vmstat events (/proc/vmstat, split_page_count() / collapse_page_count()). */
	std::uint64_t direct_map_level2_splits = 0;    /* 2 MiB mappings split into 4 KiB ones */
	std::uint64_t direct_map_level3_splits = 0;    /* 1 GiB mappings split into 2 MiB ones */
	std::uint64_t direct_map_level2_collapses = 0; /* 512 x 4 KiB merged back into 2 MiB (v6.15+) */
	std::uint64_t direct_map_level3_collapses = 0; /* 512 x 2 MiB merged back into 1 GiB (v6.15+) */
	std::uint64_t tlb_flushes = 0;   /* explicit flushes plus those splits cost */
	std::uint64_t prot_changes = 0;  /* direct-map and alias protection changes */
	std::uint64_t pgtable_pages = 0; /* page-table pages in use for the direct map */
	bool pgtable_available = true;

	std::uint64_t aliases = 0;       /* alias mappings currently live */
	std::uint64_t bytes_written = 0; /* bytes written through write_frames/fill_frames */

	/* Real backend only: the kernel's own figures (see docs/backends.md). */
	std::uint64_t pmd_mapped_kb = 0; /* ShmemPmdMapped of the direct-map view */
	std::uint64_t vma_count = 0;     /* VMAs of the whole process, from /proc/self/maps */
	bool kernel_figures = false;     /* true when the figures above were read from the kernel */

	std::string unavailable_reason;  /* empty when everything is available */
};

}  // namespace ua
