// SPDX-License-Identifier: MIT
/*
 * Tests for sim/sim_cpa.h: set_memory_*() on an alias with alias processing
 * (cpa_process_alias()), page by page for 4 KiB-mapped aliases and a large
 * page at a time for PMD-mapped ones, and the collapse of v6.15+
 * (cpa_collapse_large_pages(), set_memory_rox() only, the call's own
 * addresses, PMD first and the PUD only after a PMD merge), per release.
 * Each case is small enough to count by hand.
 */
#include <doctest/doctest.h>

#include <vector>

#include <unmapped_alloc/sim/sim_direct_map.h>

using ua::cpa_op;
using ua::dm_state;
using ua::frame_range;
using ua::map_level;
using ua::prot;

namespace {

constexpr std::uint64_t pmd = 512, pud = 512 * 512;
constexpr std::uint64_t gib(std::uint64_t n) { return n * pud; }
constexpr std::size_t chunk = ua::chunk_size, pg = ua::page_size;

ua::sim_config release(ua::kernel_release r)
{
	ua::sim_config c;
	c.release = r;
	return c;
}

}  // namespace

TEST_CASE("set_memory_rox over 512 frames spread over k distinct 2 MiB pages splits exactly k")
{
	for (const std::uint64_t k : {1, 2, 4, 8}) {
		CAPTURE(k);
		ua::sim_direct_map m(gib(1));
		/* GiB 0 is 2 MiB pages: frames in 2 MiB pages 10, 20, ... */
		std::vector<std::uint64_t> pages;
		std::vector<frame_range> runs;
		for (std::uint64_t i = 0; i < k; i++)
			for (std::uint64_t j = 0; j < 512 / k; j++)
				runs.push_back({(10 + 10 * i) * pmd + j, 1});
		REQUIRE(runs.size() == 512);
		std::uintptr_t a = 0;
		REQUIRE(m.map_alias_runs(runs.data(), runs.size(), prot::rw, &a) == 0);
		const ua::backend_stats before = m.stats();
		REQUIRE(m.set_memory(a, chunk, cpa_op::rox) == 0);
		const ua::backend_stats s = m.stats();
		CHECK(s.direct_map_level2_splits == k);
		CHECK(s.direct_map_level3_splits == 0);
		CHECK(s.tlb_flushes == before.tlb_flushes + k + 1); /* a flush per split, one cpa_flush() */
		CHECK(s.prot_changes == before.prot_changes + 1);
		CHECK(s.directmap_4k_kb == before.directmap_4k_kb + k * 2048);
		CHECK(m.alias_prot(a + chunk - 1) == prot::rx);
		CHECK(m.direct_map_state(runs[0].pfn) == dm_state::ro);
		CHECK(m.direct_map_state(runs[511].pfn) == dm_state::ro);
		CHECK(m.direct_map_state(runs[511].pfn + 1) == dm_state::rw);
		CHECK(m.check_consistency() == "");
	}
}

TEST_CASE("a 4 KiB-mapped alias splits even a 2 MiB page it covers whole; a PMD-mapped one does not")
{
	ua::sim_direct_map m(gib(2));
	const frame_range c0{100 * pmd, pmd}, c1{gib(1) + 7 * pmd, pmd};

	SUBCASE("vmap(): page by page")
	{
		std::uintptr_t a = 0, b = 0;
		REQUIRE(m.map_alias(c0, prot::rw, &a) == 0);
		REQUIRE(m.map_alias(c1, prot::rw, &b) == 0);
		REQUIRE(m.set_memory(a, chunk, cpa_op::rox) == 0);
		CHECK(m.stats().direct_map_level2_splits == 1);
		REQUIRE(m.set_memory(b, chunk, cpa_op::rox) == 0); /* in GiB 1: the 1 GiB page, then the 2 MiB one */
		CHECK(m.stats().direct_map_level3_splits == 1);
		CHECK(m.stats().direct_map_level2_splits == 2);
		CHECK(m.direct_map_level(c1.pfn) == map_level::pte_4k);
		/* v6.18's set_memory_rox() then merged the alias's own PTEs (512 contiguous, aligned, all rox) */
		CHECK(m.alias_pmd_mapped(a));
		CHECK(m.direct_map_level(c0.pfn) == map_level::pte_4k);
	}
	SUBCASE("VM_ALLOW_HUGE_VMAP: the large page at once")
	{
		std::uintptr_t a = 0, b = 0;
		REQUIRE(m.map_alias(c0, prot::rw, &a, ua::map_flags::huge) == 0);
		REQUIRE(m.map_alias(c1, prot::rw, &b, ua::map_flags::huge) == 0);
		CHECK(m.alias_pmd_mapped(a));
		REQUIRE(m.set_memory(a, chunk, cpa_op::rox) == 0);
		CHECK(m.stats().direct_map_level2_splits == 0);
		CHECK(m.direct_map_level(c0.pfn) == map_level::pmd_2m);
		CHECK(m.direct_map_state(c0.end() - 1) == dm_state::ro);
		REQUIRE(m.set_memory(b, chunk, cpa_op::rox) == 0); /* in GiB 1: only the 1 GiB page splits */
		CHECK(m.stats().direct_map_level3_splits == 1);
		CHECK(m.stats().direct_map_level2_splits == 0);
		CHECK(m.direct_map_level(c1.pfn) == map_level::pmd_2m);
		/* Part of a PMD-mapped block with a new protection: the alias block splits, then page by page. */
		REQUIRE(m.set_memory(a + 5 * pg, 2 * pg, cpa_op::nx) == 0);
		CHECK_FALSE(m.alias_pmd_mapped(a));
		CHECK(m.stats().direct_map_level2_splits == 0); /* nx never reaches the direct map */
		REQUIRE(m.set_memory(a + 6 * pg, pg, cpa_op::rw) == 0);
		CHECK(m.stats().direct_map_level2_splits == 1);
		CHECK(m.direct_map_state(c0.pfn + 6) == dm_state::rw);
		CHECK(m.direct_map_state(c0.pfn + 7) == dm_state::ro);
	}
	SUBCASE("huge, but the frames are not one aligned contiguous 2 MiB: 4 KiB pages")
	{
		const frame_range runs[] = {{300 * pmd, 256}, {400 * pmd, 256}};
		std::uintptr_t a = 0;
		REQUIRE(m.map_alias_runs(runs, 2, prot::rw, &a, ua::map_flags::huge) == 0);
		CHECK_FALSE(m.alias_pmd_mapped(a));
		REQUIRE(m.set_memory(a, chunk, cpa_op::ro) == 0);
		CHECK(m.stats().direct_map_level2_splits == 2);
	}
	CHECK(m.check_consistency() == "");
}

TEST_CASE("a partial change to a 1 GiB page splits it once")
{
	ua::sim_direct_map m(gib(3));
	REQUIRE(m.direct_map_level(gib(2)) == map_level::pud_1g);
	REQUIRE(m.set_direct_map_invalid({gib(2) + 4 * pmd, pmd}) == 0);
	CHECK(m.stats().direct_map_level3_splits == 1);
	REQUIRE(m.set_direct_map_invalid({gib(2) + 9 * pmd, 2 * pmd}) == 0);
	REQUIRE(m.set_direct_map_ro({gib(2) + 300 * pmd, pmd}) == 0);
	CHECK(m.stats().direct_map_level3_splits == 1);
	CHECK(m.stats().direct_map_level2_splits == 0);
	/* set_memory on an alias of frames in the same GiB: the GiB is split already */
	std::uintptr_t a = 0;
	REQUIRE(m.map_alias({gib(2) + 20 * pmd, pmd}, prot::rw, &a, ua::map_flags::huge) == 0);
	REQUIRE(m.set_memory(a, chunk, cpa_op::ro) == 0);
	CHECK(m.stats().direct_map_level3_splits == 1);
	CHECK(m.check_consistency() == "");
}

TEST_CASE("no collapse from set_direct_map_default, on any release")
{
	for (const ua::kernel_release r : {ua::linux_5_17, ua::linux_6_1, ua::linux_6_15, ua::linux_6_18}) {
		CAPTURE(r.major);
		CAPTURE(r.minor);
		ua::sim_direct_map m(gib(2), release(r));
		const std::uint64_t pfn = gib(1) + 30 * pmd + 5;
		REQUIRE(m.set_direct_map_invalid({pfn, 1}) == 0);
		REQUIRE(m.set_direct_map_default({pfn, 1}) == 0);
		REQUIRE(m.set_direct_map_default({gib(1), pud}) == 0);
		CHECK(m.stats().direct_map_level2_collapses == 0);
		CHECK(m.stats().direct_map_level3_collapses == 0);
		CHECK(m.direct_map_level(pfn) == map_level::pte_4k);
	}
}

TEST_CASE("set_memory_rw never collapses; set_memory_rox of the direct map restores a whole 2 MiB page on 6.15+, not on 6.1")
{
	for (const ua::kernel_release r : {ua::linux_6_1, ua::linux_6_15, ua::linux_6_18}) {
		CAPTURE(r.minor);
		ua::sim_direct_map m(gib(1), release(r));
		const frame_range page{50 * pmd, pmd};
		REQUIRE(m.set_memory_direct({page.pfn + 9, 1}, cpa_op::ro) == 0);
		REQUIRE(m.set_memory_direct({page.pfn + 9, 1}, cpa_op::rw) == 0);
		CHECK(m.stats().direct_map_level2_splits == 1);
		CHECK(m.stats().direct_map_level2_collapses == 0); /* set_memory_rw(): no CPA_COLLAPSE */
		const ua::backend_stats before = m.stats();
		REQUIRE(m.set_memory_direct(page, cpa_op::rox) == 0);
		const bool collapses = r >= ua::linux_6_15;
		CHECK(m.stats().direct_map_level2_collapses == (collapses ? 1u : 0u));
		CHECK(m.direct_map_level(page.pfn) == (collapses ? map_level::pmd_2m : map_level::pte_4k));
		CHECK(m.stats().directmap_4k_kb == before.directmap_4k_kb - (collapses ? 2048 : 0));
		/* cpa_flush(), and one flush for the merge */
		CHECK(m.stats().tlb_flushes == before.tlb_flushes + 1 + (collapses ? 1 : 0));
		CHECK(m.direct_map_state(page.pfn) == dm_state::ro);
		CHECK(m.check_consistency() == "");
	}
}

TEST_CASE("PUD collapse only after a PMD collapse")
{
	const ua::sim_config cfg = release(ua::linux_6_18);
	SUBCASE("512 agreeing 2 MiB leaves, no PTE table to merge: the GiB stays split")
	{
		ua::sim_direct_map m(gib(2), cfg);
		REQUIRE(m.set_memory_direct({gib(1) + 3 * pmd, pmd}, cpa_op::ro) == 0); /* 1 GiB -> 2 MiB */
		REQUIRE(m.set_memory_direct({gib(1), pud}, cpa_op::rox) == 0);         /* every leaf rox */
		CHECK(m.stats().direct_map_level3_splits == 1);
		CHECK(m.stats().direct_map_level2_collapses == 0);
		CHECK(m.stats().direct_map_level3_collapses == 0);
		CHECK(m.direct_map_level(gib(1)) == map_level::pmd_2m);
	}
	SUBCASE("one PTE table merges: then the PUD")
	{
		ua::sim_direct_map m(gib(2), cfg);
		REQUIRE(m.set_memory_direct({gib(1) + 7 * pmd + 3, 1}, cpa_op::ro) == 0); /* both levels split */
		REQUIRE(m.set_memory_direct({gib(1), pud}, cpa_op::rox) == 0);
		CHECK(m.stats().direct_map_level2_collapses == 1);
		CHECK(m.stats().direct_map_level3_collapses == 1);
		CHECK(m.direct_map_level(gib(1)) == map_level::pud_1g);
		CHECK(m.direct_map_state(gib(1) + 12345) == dm_state::ro);
		CHECK(m.check_consistency() == "");
	}
	SUBCASE("on 6.1 neither")
	{
		ua::sim_direct_map m(gib(2), release(ua::linux_6_1));
		REQUIRE(m.set_memory_direct({gib(1) + 7 * pmd + 3, 1}, cpa_op::ro) == 0);
		REQUIRE(m.set_memory_direct({gib(1), pud}, cpa_op::rox) == 0);
		CHECK(m.stats().direct_map_level2_collapses == 0);
		CHECK(m.stats().direct_map_level3_collapses == 0);
	}
}

TEST_CASE("set_memory_rox on an alias collapses the alias's own PTEs on 6.15+, never the direct map")
{
	for (const ua::kernel_release r : {ua::linux_6_1, ua::linux_6_18}) {
		CAPTURE(r.minor);
		ua::sim_direct_map m(gib(1), release(r));
		const frame_range c{60 * pmd, pmd};
		std::uintptr_t a = 0;
		REQUIRE(m.map_alias(c, prot::rw, &a, ua::map_flags::huge) == 0);
		REQUIRE(m.set_memory(a + 2 * pg, pg, cpa_op::ro) == 0); /* splits the alias block and the direct map */
		CHECK_FALSE(m.alias_pmd_mapped(a));
		CHECK(m.stats().direct_map_level2_splits == 1);
		REQUIRE(m.set_memory(a, chunk, cpa_op::rox) == 0);
		CHECK(m.alias_pmd_mapped(a) == (r >= ua::linux_6_15));
		CHECK(m.stats().direct_map_level2_collapses == 0);
		CHECK(m.direct_map_level(c.pfn) == map_level::pte_4k);
		/* A 4 KiB vmap() of the same kind of frames merges too on 6.15+: the PTEs decide, not the flag. */
		std::uintptr_t b = 0;
		REQUIRE(m.map_alias({70 * pmd, pmd}, prot::rw, &b) == 0);
		CHECK_FALSE(m.alias_pmd_mapped(b));
		REQUIRE(m.set_memory(b, chunk, cpa_op::rox) == 0);
		CHECK(m.alias_pmd_mapped(b) == (r >= ua::linux_6_15));
		CHECK(m.check_consistency() == "");
	}
}

TEST_CASE("set_memory changes nothing it need not: x and nx never reach the direct map, a repeat is free")
{
	ua::sim_direct_map m(gib(1));
	std::uintptr_t a = 0;
	REQUIRE(m.map_alias({80 * pmd, pmd}, prot::read, &a) == 0);
	REQUIRE(m.set_memory(a, chunk, cpa_op::x) == 0);
	CHECK(m.stats().direct_map_level2_splits == 0);
	CHECK(m.direct_map_state(80 * pmd) == dm_state::rw);
	const ua::backend_stats s = m.stats();
	REQUIRE(m.set_memory(a, chunk, cpa_op::x) == 0); /* nothing changes: no flush, not counted */
	CHECK(m.stats().tlb_flushes == s.tlb_flushes);
	CHECK(m.stats().prot_changes == s.prot_changes);
	/* ro on a read-only alias still reaches the direct map (alias processing follows every step). */
	REQUIRE(m.set_memory(a, pg, cpa_op::nx) == 0);
	REQUIRE(m.set_memory(a, pg, cpa_op::ro) == 0);
	CHECK(m.direct_map_state(80 * pmd) == dm_state::ro);
	CHECK(m.stats().direct_map_level2_splits == 1);
}

TEST_CASE("frames in holes are skipped, as the kernel skips the NULL PTEs of the direct map")
{
	auto mm = ua::memory_map::x86_vm(gib(4)); /* RAM to 3 GiB, the PCI hole, 1 GiB from 4 GiB */
	REQUIRE(mm.ok());
	ua::sim_direct_map m(mm.value);
	REQUIRE(m.direct_map_level(gib(3)) == map_level::none);
	const ua::backend_stats before = m.stats();
	/* A range from the last 2 MiB below the hole into it: only the RAM part changes. */
	REQUIRE(m.set_direct_map_invalid({gib(3) - pmd, 2 * pmd}) == 0);
	CHECK(m.direct_map_state(gib(3) - 1) == dm_state::invalid);
	CHECK(m.direct_map_level(gib(3)) == map_level::none);
	CHECK(m.stats().direct_map_level2_splits == before.direct_map_level2_splits);
	CHECK(m.check_consistency() == "");
}
