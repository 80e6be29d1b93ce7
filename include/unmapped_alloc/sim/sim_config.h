// SPDX-License-Identifier: MIT
/*
 * sim/sim_config.h - what the simulated kernel is: its release, its boot
 * options, and the proposed mechanisms that go beyond it.
 *
 * The direct-map rules that changed between releases are keyed on the
 * release here, each at one predicate that names the commit or release it
 * comes from, so a simulation of v5.17 and one of v6.18 differ exactly where
 * the kernels do:
 *
 *   - cpa_collapse_large_pages() (41d88484c71c, "x86/mm/pat: restore large
 *     ROX pages after fragmentation", v6.15): set_memory_rox() sets
 *     CPA_COLLAPSE, and cpa_flush() then tries to merge the large pages
 *     around the addresses that call changed - the addresses it was given,
 *     PMD first and the PUD only after a PMD merge. No other set_memory_*()
 *     and no set_direct_map_*_noflush() collapses.
 *
 * A proposed mechanism is anything the simulation can do that no kernel
 * release does. Each is off by default, named here, and reported as a
 * proposal; the simulation never applies one unless asked:
 *
 *   - collapse_on_restore: set_direct_map_default() (vm_reset_perms(),
 *     secretmem's and execmem's restore, the library's chunk release) merges
 *     the 2 MiB pages it restored back into 2 MiB leaves when all 512
 *     entries are RAM and agree, and then the GiBs it touched into 1 GiB
 *     leaves when all 512 PMD entries are leaves that agree - the PUD even
 *     when no PMD merged, which the kernel's collapse never does. collapse()
 *     applies the same merge on request. Without it (every kernel release),
 *     collapse() merges nothing.
 */
#pragma once

#include <compare>

namespace ua {

/* A kernel release, as uname -r's first two numbers. */
struct kernel_release {
	unsigned major = 6;
	unsigned minor = 18;

	constexpr auto operator<=>(const kernel_release &) const = default;
};

inline constexpr kernel_release linux_5_17{5, 17};
inline constexpr kernel_release linux_6_1{6, 1};
inline constexpr kernel_release linux_6_15{6, 15};
inline constexpr kernel_release linux_6_18{6, 18};

struct sim_config {
	/* The release whose rules apply (default: the release this project measures on). */
	kernel_release release = linux_6_18;
	/*
	 * direct_gbpages: 1 GiB pages in the direct map (probe_page_size_mask():
	 * CONFIG_X86_DIRECT_GBPAGES and the CPU's X86_FEATURE_GBPAGES, off with
	 * "nogbpages"). Without it the boot map uses 2 MiB pages at most and
	 * nothing collapses into a PUD (collapse_pud_page() checks it).
	 */
	bool gbpages = true;
	/* Proposed, not in any kernel: see collapse_on_restore above. */
	bool collapse_on_restore = false;
	/*
	 * Splits the kernel makes of its own before the system runs, which a
	 * memory map does not decide: the kernel image's protections
	 * (mark_rodata_ro(), free_kernel_image_pages() and the like cut the
	 * 2 MiB pages around the image's section ends) and early allocations
	 * that leave the direct map. Taken from a machine's measured boot
	 * figures (docs/backends.md, tests/sim/sim_boot_map_test.cpp); 0 by
	 * default. Placement (a choice, not a kernel fact): 2 MiB splits from the
	 * default kernel load address, 16 MiB (CONFIG_PHYSICAL_START), upwards;
	 * 1 GiB splits of the highest GiBs mapped with 1 GiB pages, where the
	 * page allocator's first allocations come from.
	 */
	unsigned boot_level2_splits = 0;
	unsigned boot_level3_splits = 0;

	/* cpa_collapse_large_pages() exists: v6.15 and later (41d88484c71c). */
	constexpr bool cpa_collapse() const noexcept { return release >= linux_6_15; }
};

}  // namespace ua
