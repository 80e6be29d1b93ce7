// SPDX-License-Identifier: MIT
/*
 * Tests for sim/sim_direct_map.h (and the two models it composes,
 * sim_page_tables.h and sim_module_area.h): exact CPA counters for each
 * split/no-split case of the set_direct_map_*() calls, the flat boot layout,
 * the proposed collapse_on_restore, a 1 TiB machine, alias placement, and a
 * randomized comparison against a flat per-frame model. set_memory_*() with
 * alias processing and the kernel's collapse are in sim_cpa_test.cpp, the
 * boot map from a memory map in sim_boot_map_test.cpp.
 */
#include <doctest/doctest.h>

#include <random>
#include <vector>

#include <unmapped_alloc/sim/sim_direct_map.h>

using ua::dm_state;
using ua::frame_range;
using ua::map_level;
using ua::prot;

namespace {

constexpr std::uint64_t pmd_pages = 512;              /* frames per 2 MiB */
constexpr std::uint64_t pud_pages = 512 * 512;        /* frames per 1 GiB */
constexpr std::uint64_t kb_2m = 2048, kb_1g = 1024 * 1024;
constexpr std::uint64_t gib(std::uint64_t n) { return n * pud_pages; }

std::uint64_t directmap_sum_kb(const ua::backend_stats &s)
{
	return s.directmap_4k_kb + s.directmap_2m_kb + s.directmap_1g_kb;
}

}  // namespace

TEST_CASE("boot layout of a flat 1 GiB machine: 2 MiB of 4 KiB pages, the rest 2 MiB")
{
	ua::sim_direct_map m(gib(1));
	const ua::backend_stats s = m.stats();
	CHECK(m.nr_pages() == gib(1));
	/* init_mem_mapping(): the ISA range [0, 1 MiB) and the 4 KiB head [1 MiB, 2 MiB) share one PTE table. */
	CHECK(s.directmap_4k_kb == 2048);
	CHECK(s.directmap_2m_kb == kb_1g - 2048);
	CHECK(s.directmap_1g_kb == 0);
	CHECK(s.pgtable_pages == 2);  /* the PMD table of GiB 0 and one PTE table */
	CHECK(s.direct_map_level2_splits == 0);
	CHECK(s.direct_map_level3_splits == 0);
	CHECK(s.tlb_flushes == 0);
	CHECK(m.direct_map_level(0) == map_level::pte_4k);
	CHECK(m.direct_map_level(511) == map_level::pte_4k);
	CHECK(m.direct_map_level(512) == map_level::pmd_2m);
	CHECK(m.direct_map_level(gib(1) - 1) == map_level::pmd_2m);
	CHECK(m.direct_map_level(gib(1)) == map_level::none);
	CHECK(m.direct_map_state(0) == dm_state::rw);
	CHECK(m.direct_map_state(gib(1)) == dm_state::invalid);
	CHECK(m.check_consistency() == "");
}

TEST_CASE("boot layout of a flat 2 GiB machine: GiB 1 one 1 GiB page, counted three times")
{
	ua::sim_direct_map m(gib(2));
	const ua::backend_stats s = m.stats();
	/* The 2 MiB step, the 512 MiB step and the last step each reach into GiB 1 (phys_pud_init() recount). */
	CHECK(s.directmap_1g_kb == 3 * kb_1g);
	CHECK(s.directmap_4k_kb == 2048);
	CHECK(s.directmap_2m_kb == kb_1g - 2048);
	CHECK(m.page_tables().boot_recount()[2] == 2);
	CHECK(m.direct_map_level(gib(1)) == map_level::pud_1g);
	CHECK(m.check_consistency() == "");
}

TEST_CASE("a 4 KiB change inside a 2 MiB page splits it once")
{
	ua::sim_direct_map m(gib(1));
	const ua::backend_stats before = m.stats();
	const std::uint64_t pfn = 10 * pmd_pages + 7;
	REQUIRE(m.set_direct_map_invalid({pfn, 1}) == 0);
	const ua::backend_stats s = m.stats();
	CHECK(s.direct_map_level2_splits == 1);
	CHECK(s.direct_map_level3_splits == 0);
	CHECK(s.tlb_flushes == before.tlb_flushes + 1);
	CHECK(s.pgtable_pages == before.pgtable_pages + 1);
	CHECK(s.prot_changes == before.prot_changes + 1);
	CHECK(s.directmap_4k_kb == before.directmap_4k_kb + kb_2m);
	CHECK(s.directmap_2m_kb == before.directmap_2m_kb - kb_2m);
	CHECK(directmap_sum_kb(s) == directmap_sum_kb(before));
	CHECK(m.direct_map_state(pfn) == dm_state::invalid);
	CHECK(m.direct_map_state(pfn - 1) == dm_state::rw);
	CHECK(m.direct_map_state(pfn + 1) == dm_state::rw);
	CHECK(m.direct_map_level(10 * pmd_pages) == map_level::pte_4k);
	CHECK(m.direct_map_level(11 * pmd_pages) == map_level::pmd_2m);

	/* A second change inside the same, now split, page costs no split (set_memory_ro()'s own flush only). */
	REQUIRE(m.set_direct_map_ro({pfn + 1, 3}) == 0);
	CHECK(m.stats().direct_map_level2_splits == 1);
	CHECK(m.stats().tlb_flushes == s.tlb_flushes + 1);
	CHECK(m.stats().prot_changes == s.prot_changes + 1);
	CHECK(m.direct_map_state(pfn + 3) == dm_state::ro);
	CHECK(m.check_consistency() == "");
}

TEST_CASE("a 2 MiB change inside a 1 GiB page splits only the 1 GiB page")
{
	ua::sim_direct_map m(gib(2));
	const ua::backend_stats before = m.stats();
	const std::uint64_t pfn = gib(1) + 5 * pmd_pages;
	REQUIRE(m.direct_map_level(pfn) == map_level::pud_1g);
	REQUIRE(m.set_direct_map_invalid({pfn, pmd_pages}) == 0);
	const ua::backend_stats s = m.stats();
	CHECK(s.direct_map_level3_splits == 1);
	CHECK(s.direct_map_level2_splits == 0);
	CHECK(s.tlb_flushes == before.tlb_flushes + 1);
	CHECK(s.pgtable_pages == before.pgtable_pages + 1);
	CHECK(s.directmap_1g_kb == before.directmap_1g_kb - kb_1g);
	CHECK(s.directmap_2m_kb == before.directmap_2m_kb + kb_1g);
	CHECK(s.directmap_4k_kb == before.directmap_4k_kb);
	CHECK(m.direct_map_level(pfn) == map_level::pmd_2m);
	CHECK(m.direct_map_level(gib(1)) == map_level::pmd_2m);
	CHECK(m.direct_map_state(pfn) == dm_state::invalid);
	CHECK(m.direct_map_state(pfn + pmd_pages - 1) == dm_state::invalid);
	CHECK(m.direct_map_state(pfn + pmd_pages) == dm_state::rw);
	CHECK(m.direct_map_state(pfn - 1) == dm_state::rw);
	CHECK(m.check_consistency() == "");
}

TEST_CASE("a 4 KiB change inside a 1 GiB page splits both levels")
{
	ua::sim_direct_map m(gib(2));
	const ua::backend_stats before = m.stats();
	const std::uint64_t pfn = gib(1) + 100 * pmd_pages + 17;
	REQUIRE(m.set_direct_map_ro({pfn, 1}) == 0);
	const ua::backend_stats s = m.stats();
	CHECK(s.direct_map_level3_splits == 1);
	CHECK(s.direct_map_level2_splits == 1);
	CHECK(s.tlb_flushes == before.tlb_flushes + 3); /* two splits, and set_memory_ro()'s cpa_flush() */
	CHECK(s.pgtable_pages == before.pgtable_pages + 2);
	CHECK(s.prot_changes == before.prot_changes + 1);
	CHECK(s.directmap_1g_kb == before.directmap_1g_kb - kb_1g);
	CHECK(s.directmap_4k_kb == before.directmap_4k_kb + kb_2m);
	CHECK(directmap_sum_kb(s) == directmap_sum_kb(before));
	CHECK(m.direct_map_level(pfn) == map_level::pte_4k);
	CHECK(m.direct_map_level(pfn + pmd_pages) == map_level::pmd_2m);
	CHECK(m.direct_map_state(pfn) == dm_state::ro);
	CHECK(m.direct_map_state(pfn + 1) == dm_state::rw);
	CHECK(m.check_consistency() == "");
}

TEST_CASE("a range from inside one GiB to inside the next splits at both ends only")
{
	ua::sim_direct_map m(gib(4));
	/* From 4 KiB into a 2 MiB page of GiB 1 to 4 KiB into one of GiB 2. */
	const std::uint64_t start = gib(1) + 300 * pmd_pages + 1, end = gib(2) + 2 * pmd_pages + 1;
	REQUIRE(m.set_direct_map_invalid({start, end - start}) == 0);
	const ua::backend_stats s = m.stats();
	CHECK(s.direct_map_level3_splits == 2);
	CHECK(s.direct_map_level2_splits == 2);
	CHECK(s.tlb_flushes == 4);
	CHECK(s.prot_changes == 1);
	CHECK(m.direct_map_state(start - 1) == dm_state::rw);
	CHECK(m.direct_map_state(start) == dm_state::invalid);
	CHECK(m.direct_map_state(gib(2) - 1) == dm_state::invalid);
	CHECK(m.direct_map_state(end - 1) == dm_state::invalid);
	CHECK(m.direct_map_state(end) == dm_state::rw);
	CHECK(m.direct_map_level(gib(1) + 301 * pmd_pages) == map_level::pmd_2m);
	CHECK(m.direct_map_level(gib(3)) == map_level::pud_1g);
	CHECK(m.check_consistency() == "");
}

TEST_CASE("a change covering a whole large page keeps it large")
{
	ua::sim_direct_map m(gib(3));
	const ua::backend_stats before = m.stats();

	SUBCASE("2 MiB page")
	{
		const frame_range chunk{7 * pmd_pages, pmd_pages};
		REQUIRE(m.set_direct_map_invalid(chunk) == 0);
		CHECK(m.direct_map_level(chunk.pfn) == map_level::pmd_2m);
		CHECK(m.direct_map_state(chunk.pfn) == dm_state::invalid);
		CHECK(m.direct_map_state(chunk.end() - 1) == dm_state::invalid);
		CHECK(m.direct_map_state(chunk.end()) == dm_state::rw);
	}
	SUBCASE("1 GiB page")
	{
		const frame_range gig{gib(2), pud_pages};
		REQUIRE(m.set_direct_map_invalid(gig) == 0);
		CHECK(m.direct_map_level(gig.pfn) == map_level::pud_1g);
		CHECK(m.direct_map_state(gig.pfn + 12345) == dm_state::invalid);
		CHECK(m.direct_map_state(gig.pfn - 1) == dm_state::rw);
	}
	SUBCASE("several whole 2 MiB pages across a GiB boundary of 2 MiB-mapped GiB 0")
	{
		const frame_range r{gib(1) - 4 * pmd_pages, 4 * pmd_pages};
		REQUIRE(m.set_direct_map_invalid(r) == 0);
		CHECK(m.direct_map_level(r.pfn) == map_level::pmd_2m);
	}
	const ua::backend_stats s = m.stats();
	CHECK(s.direct_map_level2_splits == 0);
	CHECK(s.direct_map_level3_splits == 0);
	CHECK(s.tlb_flushes == before.tlb_flushes);
	CHECK(s.pgtable_pages == before.pgtable_pages);
	CHECK(s.prot_changes == before.prot_changes + 1);
	CHECK(s.directmap_4k_kb == before.directmap_4k_kb);
	CHECK(s.directmap_2m_kb == before.directmap_2m_kb);
	CHECK(s.directmap_1g_kb == before.directmap_1g_kb);
	CHECK(m.check_consistency() == "");
}

TEST_CASE("a change to the state a page already has is a no-op")
{
	ua::sim_direct_map m(gib(2));
	const ua::backend_stats before = m.stats();
	/* Partial ranges in a 2 MiB and a 1 GiB page, already rw: nothing splits, nothing counted. */
	CHECK(m.set_direct_map_default({20 * pmd_pages + 3, 5}) == 0);
	CHECK(m.set_direct_map_default({gib(1) + 3, 5}) == 0);
	const ua::backend_stats s = m.stats();
	CHECK(s.direct_map_level2_splits == before.direct_map_level2_splits);
	CHECK(s.direct_map_level3_splits == before.direct_map_level3_splits);
	CHECK(s.tlb_flushes == before.tlb_flushes);
	CHECK(s.prot_changes == before.prot_changes);
	CHECK(s.pgtable_pages == before.pgtable_pages);
	CHECK(m.direct_map_level(gib(1)) == map_level::pud_1g);

	/* The same on split pages: a repeated ro is counted once. */
	REQUIRE(m.set_direct_map_ro({30 * pmd_pages + 1, 2}) == 0);
	const ua::backend_stats s1 = m.stats();
	REQUIRE(m.set_direct_map_ro({30 * pmd_pages + 1, 2}) == 0);
	CHECK(m.stats().prot_changes == s1.prot_changes);
	CHECK(m.stats().direct_map_level2_splits == s1.direct_map_level2_splits);
	/* A whole large page already ro: also a no-op. */
	REQUIRE(m.set_direct_map_ro({31 * pmd_pages, pmd_pages}) == 0);
	const ua::backend_stats s2 = m.stats();
	REQUIRE(m.set_direct_map_ro({31 * pmd_pages + 8, 8}) == 0);
	CHECK(m.stats().prot_changes == s2.prot_changes);
	CHECK(m.stats().direct_map_level2_splits == s2.direct_map_level2_splits);
	CHECK(m.direct_map_level(31 * pmd_pages) == map_level::pmd_2m);
}

TEST_CASE("restoring does not merge, nor does collapse(): no kernel merges on request")
{
	ua::sim_direct_map m(gib(2));
	const ua::backend_stats boot = m.stats();
	const std::uint64_t pfn = gib(1) + 9 * pmd_pages + 100;
	REQUIRE(m.set_direct_map_invalid({pfn, 1}) == 0);
	REQUIRE(m.set_direct_map_default({pfn, 1}) == 0);
	const ua::backend_stats restored = m.stats();
	CHECK(restored.direct_map_level3_splits == 1);
	CHECK(restored.direct_map_level2_splits == 1);
	CHECK(restored.direct_map_level2_collapses == 0);
	CHECK(restored.prot_changes == 2);
	CHECK(m.direct_map_level(pfn) == map_level::pte_4k);
	CHECK(m.direct_map_state(pfn) == dm_state::rw);
	CHECK(restored.directmap_4k_kb == boot.directmap_4k_kb + kb_2m);

	/* set_direct_map_default() and collapse() of every release: nothing merges, nothing is counted. */
	REQUIRE(m.set_direct_map_default({gib(1), pud_pages}) == 0);
	REQUIRE(m.collapse({0, gib(2)}) == 0);
	const ua::backend_stats s = m.stats();
	CHECK(s.direct_map_level2_collapses == 0);
	CHECK(s.direct_map_level3_collapses == 0);
	CHECK(s.tlb_flushes == restored.tlb_flushes);
	CHECK(s.pgtable_pages == restored.pgtable_pages);
	CHECK(s.directmap_4k_kb == restored.directmap_4k_kb);
	CHECK(m.direct_map_level(pfn) == map_level::pte_4k);
	CHECK(m.check_consistency() == "");
}

TEST_CASE("proposed collapse_on_restore: a restore merges what it restored, the PUD even without a PMD merge")
{
	ua::sim_config cfg;
	cfg.collapse_on_restore = true;

	SUBCASE("a 4 KiB change restored: the 2 MiB page, then the GiB")
	{
		ua::sim_direct_map m(gib(2), cfg);
		const ua::backend_stats boot = m.stats();
		const std::uint64_t pfn = gib(1) + 9 * pmd_pages + 100;
		REQUIRE(m.set_direct_map_invalid({pfn, 1}) == 0);
		const ua::backend_stats split = m.stats();
		REQUIRE(m.set_direct_map_default({pfn, 1}) == 0);
		const ua::backend_stats s = m.stats();
		CHECK(s.direct_map_level2_collapses == 1);
		CHECK(s.direct_map_level3_collapses == 1);
		CHECK(s.tlb_flushes == split.tlb_flushes + 1); /* one flush for the merges of one call */
		CHECK(s.pgtable_pages == boot.pgtable_pages);
		CHECK(s.directmap_4k_kb == boot.directmap_4k_kb);
		CHECK(s.directmap_2m_kb == boot.directmap_2m_kb);
		CHECK(s.directmap_1g_kb == boot.directmap_1g_kb);
		CHECK(m.direct_map_level(pfn) == map_level::pud_1g);
		CHECK(m.check_consistency() == "");
	}
	SUBCASE("a whole 2 MiB page restored (the library's chunk release): the GiB, with no PMD merge")
	{
		ua::sim_direct_map m(gib(2), cfg);
		const frame_range chunk{gib(1) + 40 * pmd_pages, pmd_pages};
		REQUIRE(m.set_direct_map_invalid(chunk) == 0);
		CHECK(m.stats().direct_map_level3_splits == 1);
		CHECK(m.stats().direct_map_level2_splits == 0);
		REQUIRE(m.set_direct_map_default(chunk) == 0);
		CHECK(m.stats().direct_map_level2_collapses == 0);
		CHECK(m.stats().direct_map_level3_collapses == 1);
		CHECK(m.direct_map_level(chunk.pfn) == map_level::pud_1g);
	}
	SUBCASE("entries that disagree do not merge; collapse() merges once they agree")
	{
		ua::sim_direct_map m(gib(2), cfg);
		const std::uint64_t pfn = gib(1) + 40 * pmd_pages;
		REQUIRE(m.set_direct_map_invalid({pfn, 2}) == 0);
		REQUIRE(m.set_direct_map_default({pfn, 1}) == 0); /* pfn + 1 still out */
		CHECK(m.stats().direct_map_level2_collapses == 0);
		CHECK(m.stats().direct_map_level3_collapses == 0);
		CHECK(m.direct_map_level(pfn) == map_level::pte_4k);
		/* invalid entries agree among themselves but are not present: never merged */
		REQUIRE(m.set_direct_map_invalid({pfn, pmd_pages}) == 0);
		REQUIRE(m.collapse({pfn, pmd_pages}) == 0);
		CHECK(m.stats().direct_map_level2_collapses == 0);
		REQUIRE(m.set_direct_map_default({pfn, pmd_pages}) == 0);
		CHECK(m.stats().direct_map_level2_collapses == 1);
		CHECK(m.stats().direct_map_level3_collapses == 1);
	}
	SUBCASE("a GiB with another 4 KiB table elsewhere is not merged by a restore that does not reach it")
	{
		ua::sim_direct_map m(gib(2), cfg);
		const std::uint64_t pfn = gib(1) + 40 * pmd_pages;
		REQUIRE(m.set_direct_map_ro({gib(2) - 1, 1}) == 0);   /* a 4 KiB ro entry in the last 2 MiB */
		REQUIRE(m.set_direct_map_invalid({pfn, 1}) == 0);
		REQUIRE(m.set_direct_map_default({pfn, 1}) == 0);
		CHECK(m.stats().direct_map_level2_collapses == 1);
		CHECK(m.stats().direct_map_level3_collapses == 0);    /* that table is still there */
		REQUIRE(m.set_direct_map_default({gib(2) - 1, 1}) == 0);
		CHECK(m.stats().direct_map_level2_collapses == 2);
		CHECK(m.stats().direct_map_level3_collapses == 1);
	}
}

TEST_CASE("proposed collapse_on_restore never merges what is not RAM")
{
	ua::sim_config cfg;
	cfg.collapse_on_restore = true;
	/* An x86 VM: page 0 and [0x9f000, 1 MiB) are not RAM, yet mapped (the ISA range). */
	auto mm = ua::memory_map::x86_vm(gib(2));
	REQUIRE(mm.ok());
	ua::sim_direct_map m(mm.value, cfg);
	REQUIRE(m.direct_map_level(300) == map_level::pte_4k); /* [1 MiB, 2 MiB) */
	REQUIRE(m.set_direct_map_invalid({300, 1}) == 0);
	REQUIRE(m.set_direct_map_default({300, 1}) == 0);
	CHECK(m.stats().direct_map_level2_collapses == 0);
	CHECK(m.direct_map_level(0) == map_level::pte_4k);
	REQUIRE(m.collapse({0, pmd_pages}) == 0);
	CHECK(m.stats().direct_map_level2_collapses == 0);
	/* Where the first 2 MiB are all RAM (a memory map with RAM from pfn 0), the same restore merges. */
	ua::sim_direct_map flat(ua::memory_map::flat(gib(1) - pmd_pages), cfg);
	REQUIRE(flat.direct_map_level(300) == map_level::pmd_2m); /* [0, 2 MiB) all RAM: the ISA range gets 2 MiB */
	REQUIRE(flat.set_direct_map_invalid({300, 1}) == 0);
	REQUIRE(flat.set_direct_map_default({300, 1}) == 0);
	CHECK(flat.stats().direct_map_level2_collapses == 1);
	CHECK(flat.direct_map_level(0) == map_level::pmd_2m);
	CHECK(m.check_consistency() == "");
	CHECK(flat.check_consistency() == "");
}

TEST_CASE("invalid arguments are refused and change nothing")
{
	ua::sim_direct_map m(gib(1));
	REQUIRE(m.set_direct_map_invalid({5 * pmd_pages + 1, 1}) == 0);
	const ua::backend_stats before = m.stats();
	const frame_range bad[] = {
		{gib(1), 1},                 /* just past the end */
		{gib(1) - 1, 2},             /* straddles the end */
		{5 * pmd_pages, 0},          /* empty */
		{~std::uint64_t{0} - 1, 4},  /* pfn + nr_pages overflows */
		{1, ~std::uint64_t{0}},      /* huge */
	};
	for (const frame_range &r : bad) {
		CHECK(m.set_direct_map_invalid(r) == -EINVAL);
		CHECK(m.set_direct_map_default(r) == -EINVAL);
		CHECK(m.set_direct_map_ro(r) == -EINVAL);
		CHECK(m.flush_tlb(r) == -EINVAL);
		CHECK(m.collapse(r) == -EINVAL);
		CHECK(m.release_frames(r) == -EINVAL);
		std::uintptr_t a = 0;
		CHECK(m.map_alias(r, prot::rx, &a) == -EINVAL);
	}
	const ua::backend_stats s = m.stats();
	CHECK(s.direct_map_level2_splits == before.direct_map_level2_splits);
	CHECK(s.tlb_flushes == before.tlb_flushes);
	CHECK(s.prot_changes == before.prot_changes);
	CHECK(s.aliases == 0);
	CHECK(s.directmap_4k_kb == before.directmap_4k_kb);
	CHECK(m.frames_released() == 0);
	CHECK(m.direct_map_state(5 * pmd_pages + 1) == dm_state::invalid);
	CHECK(m.direct_map_state(gib(1) - 1) == dm_state::rw);
	CHECK(m.check_consistency() == "");
}

TEST_CASE("a 1 TiB machine: figures and small memory")
{
	const std::uint64_t pages = gib(1024);
	ua::sim_direct_map m(pages);
	const ua::sim_page_tables &pt = m.page_tables();
	ua::backend_stats s = m.stats();
	/* GiBs 1-1023 are 1 GiB pages; the 2 MiB, 512 MiB and 128 GiB steps each reach into GiB 1023. */
	CHECK(s.directmap_1g_kb == 1025 * kb_1g);
	CHECK(s.directmap_2m_kb == kb_1g - 2048);
	CHECK(s.directmap_4k_kb == 2048);
	CHECK(pt.boot_recount()[2] == 2);
	CHECK(pt.count().pmd_tables == 1);
	CHECK(pt.count().pte_tables == 1);
	CHECK(pt.table_bytes() < 64 * 1024); /* 1024 PUD entries plus the boot tables */
	const std::uint64_t boot_kb = directmap_sum_kb(s);

	/* Fragment the top GiB a little, and flip a whole far GiB: only the touched pages get tables. */
	const std::uint64_t top = gib(1023);
	REQUIRE(m.set_direct_map_invalid({top + 3 * pmd_pages, pmd_pages}) == 0); /* 1 GiB split */
	REQUIRE(m.set_direct_map_ro({top + 9 * pmd_pages + 4, 1}) == 0);         /* 2 MiB split */
	REQUIRE(m.set_direct_map_invalid({gib(700), pud_pages}) == 0);          /* in place */
	s = m.stats();
	CHECK(s.direct_map_level3_splits == 1);
	CHECK(s.direct_map_level2_splits == 1);
	CHECK(pt.count().pmd_tables == 2);
	CHECK(pt.count().pte_tables == 2);
	CHECK(s.directmap_1g_kb == 1024 * kb_1g);
	CHECK(directmap_sum_kb(s) == boot_kb);
	CHECK(m.direct_map_state(gib(700) + 77) == dm_state::invalid);
	CHECK(m.direct_map_level(gib(700)) == map_level::pud_1g);
	CHECK(m.direct_map_state(pages - 1) == dm_state::rw);
	CHECK(m.direct_map_state(top + 9 * pmd_pages + 4) == dm_state::ro);

	/* The whole machine read-only in one call: no new tables, GiB pages changed in place. */
	REQUIRE(m.set_direct_map_ro({0, pages}) == 0);
	CHECK(m.stats().direct_map_level3_splits == 1);
	CHECK(m.stats().direct_map_level2_splits == 1);
	CHECK(pt.count().pmd_tables == 2);
	CHECK(m.direct_map_state(gib(512) + 5) == dm_state::ro);
	CHECK(m.direct_map_state(gib(700)) == dm_state::invalid); /* set_memory_ro() clears RW; not present stays so */
	CHECK(pt.table_bytes() < 64 * 1024);
	CHECK(m.check_consistency() == "");
}

TEST_CASE("aliases: placement, alignment, reuse and bookkeeping")
{
	ua::sim_direct_map m(gib(1));
	const std::uintptr_t base = ua::sim_module_area::default_base;
	std::uintptr_t a = 0, b = 0, c = 0;

	/* A page-sized alias first, so the chunk alias must skip to the next 2 MiB boundary. */
	REQUIRE(m.map_alias({4096, 3}, prot::rw, &a) == 0);
	CHECK(a == base);
	REQUIRE(m.map_alias({8 * pmd_pages, 2 * pmd_pages}, prot::rx, &b) == 0);
	CHECK(b % ua::chunk_size == 0);
	CHECK(b == base + ua::chunk_size);
	REQUIRE(m.map_alias({5000, 1}, prot::read, &c) == 0);
	CHECK(c == base + 3 * ua::page_size);  /* first fit: the gap after the first alias */
	CHECK(m.stats().aliases == 3);

	CHECK(m.alias_prot(b) == prot::rx);
	CHECK(m.alias_prot(b + ua::chunk_size + 5) == prot::rx);
	CHECK(m.alias_prot(b + 2 * ua::chunk_size) == std::nullopt);
	CHECK(m.alias_frames(a + 2 * ua::page_size) == frame_range{4096, 3});
	CHECK(m.alias_frames(base + 4 * ua::page_size) == std::nullopt);

	/* Exact matches only. */
	CHECK(m.protect_alias(b + ua::page_size, ua::chunk_size, prot::read) == -EINVAL);
	CHECK(m.protect_alias(b, ua::chunk_size, prot::read) == -EINVAL);
	CHECK(m.unmap_alias(b, ua::chunk_size) == -EINVAL);
	CHECK(m.unmap_alias(a, 4 * ua::page_size) == -EINVAL);
	CHECK(m.protect_alias(b, 2 * ua::chunk_size, prot(8)) == -EINVAL);
	CHECK(m.protect_alias(b, 2 * ua::chunk_size, prot::rw | prot::exec) == -EINVAL);
	CHECK(m.alias_prot(b) == prot::rx);
	CHECK(m.stats().prot_changes == 0);
	CHECK(m.stats().aliases == 3);

	/* Unmapped space is reused, and neighbours merge back into one free range. */
	REQUIRE(m.unmap_alias(a, 3 * ua::page_size) == 0);
	std::uintptr_t d = 0;
	REQUIRE(m.map_alias({1, 2}, prot::none, &d) == 0);
	CHECK(d == a);
	REQUIRE(m.unmap_alias(d, 2 * ua::page_size) == 0);
	REQUIRE(m.unmap_alias(b, 2 * ua::chunk_size) == 0);
	CHECK(m.module_area().free_ranges() == 2);
	CHECK(m.check_consistency() == "");
	REQUIRE(m.unmap_alias(c, ua::page_size) == 0);
	CHECK(m.module_area().free_ranges() == 1);
	CHECK(m.stats().aliases == 0);
	CHECK(m.unmap_alias(c, ua::page_size) == -EINVAL);  /* already gone */
	CHECK(m.check_consistency() == "");
}

TEST_CASE("alias area exhaustion is -ENOMEM and changes nothing")
{
	ua::sim_direct_map m(gib(1), 4 * ua::chunk_size);
	std::uintptr_t a = 0, b = 0, c = 0;
	REQUIRE(m.map_alias({0, 1}, prot::rw, &a) == 0);
	REQUIRE(m.map_alias({pmd_pages, 3 * pmd_pages}, prot::rx, &b) == 0);
	CHECK(b == a + ua::chunk_size);
	/* 2 MiB-aligned room left: none; 4 KiB room: the 511 pages after a. */
	CHECK(m.map_alias({pmd_pages, pmd_pages}, prot::rx, &c) == -ENOMEM);
	CHECK(m.stats().aliases == 2);
	CHECK(m.check_consistency() == "");
	REQUIRE(m.map_alias({7, 511}, prot::read, &c) == 0);
	CHECK(c == a + ua::page_size);
	CHECK(m.map_alias({7, 1}, prot::read, &c) == -ENOMEM);
	REQUIRE(m.unmap_alias(b, 3 * ua::chunk_size) == 0);
	REQUIRE(m.map_alias({pmd_pages, pmd_pages}, prot::rx, &c) == 0);
	CHECK(c == b);
}

TEST_CASE("write, fill and release: validated and counted")
{
	ua::sim_direct_map m(gib(1));
	const char buf[16] = {};
	CHECK(m.write_frames(5, 100, buf, sizeof buf) == 0);
	CHECK(m.fill_frames(6, 0, ua::trap_byte, 4096) == 0);
	CHECK(m.write_frames(gib(1) - 1, 4096 - 16, buf, 16) == 0);
	CHECK(m.stats().bytes_written == 16 + 4096 + 16);
	CHECK(m.write_frames(gib(1) - 1, 4096 - 15, buf, 16) == -EINVAL);
	CHECK(m.write_frames(gib(1), 0, buf, 1) == -EINVAL);
	CHECK(m.write_frames(0, 0, nullptr, 1) == -EINVAL);
	CHECK(m.fill_frames(0, ~std::size_t{0}, 0xcc, 2) == -EINVAL);
	CHECK(m.stats().bytes_written == 16 + 4096 + 16);
	CHECK(m.release_frames({10, 20}) == 0);
	CHECK(m.frames_released() == 20);
}

TEST_CASE("random changes agree with a flat per-frame model")
{
	/* 2 GiB + 3 MiB: GiB 0 in 2 MiB pages, GiB 1 one 1 GiB page, a 2 MiB and a partial tail. */
	const std::uint64_t pages = gib(2) + pmd_pages + 256;
	ua::sim_config cfg;
	SUBCASE("every release") {}
	SUBCASE("with the proposed collapse_on_restore") { cfg.collapse_on_restore = true; }
	ua::sim_direct_map m(pages, cfg);
	const std::uint64_t boot_kb = directmap_sum_kb(m.stats());
	std::vector<dm_state> ref(pages, dm_state::rw);
	std::mt19937_64 rng(12345);
	auto pick = [&](std::uint64_t n) { return std::uniform_int_distribution<std::uint64_t>(0, n - 1)(rng); };

	for (int i = 0; i < 3000; i++) {
		/* Mostly small ranges near large-page boundaries, sometimes whole large pages. */
		std::uint64_t pfn, n;
		switch (pick(4)) {
		case 0: pfn = pick(pages); n = 1 + pick(8); break;
		case 1: pfn = pick(pages / pmd_pages) * pmd_pages; n = pmd_pages * (1 + pick(3)); break;
		case 2: pfn = pick(3) * pud_pages + pick(pud_pages); n = 1 + pick(3 * pmd_pages); break;
		default: pfn = pick(2) * pud_pages; n = pud_pages; break;
		}
		const dm_state s = dm_state(pick(3));
		const ua::backend_stats before = m.stats();
		int err;
		if (pick(8) == 0) {
			err = m.collapse({pfn, n});
		} else {
			err = s == dm_state::rw ? m.set_direct_map_default({pfn, n})
			      : s == dm_state::ro ? m.set_direct_map_ro({pfn, n})
						  : m.set_direct_map_invalid({pfn, n});
			/* set_memory_ro() only clears RW: a frame not present stays not present */
			if (err == 0)
				for (std::uint64_t p = pfn; p < pfn + n; p++)
					ref[p] = s == dm_state::ro && ref[p] == dm_state::invalid ? dm_state::invalid : s;
		}
		const bool inside = pfn + n <= pages;
		REQUIRE(err == (inside ? 0 : -EINVAL));
		const ua::backend_stats after = m.stats();
		REQUIRE(directmap_sum_kb(after) == boot_kb);
		REQUIRE(after.pgtable_pages + after.direct_map_level2_collapses + after.direct_map_level3_collapses ==
			before.pgtable_pages + before.direct_map_level2_collapses + before.direct_map_level3_collapses +
				(after.direct_map_level2_splits - before.direct_map_level2_splits) + (after.direct_map_level3_splits - before.direct_map_level3_splits));
		for (int k = 0; k < 16; k++) {
			const std::uint64_t p = pick(pages);
			REQUIRE(m.direct_map_state(p) == ref[p]);
		}
	}
	for (std::uint64_t p = 0; p < pages; p++)
		REQUIRE(m.direct_map_state(p) == ref[p]);
	CHECK(m.check_consistency() == "");
}
