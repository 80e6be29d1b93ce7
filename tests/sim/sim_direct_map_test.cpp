// SPDX-License-Identifier: MIT
/*
 * Tests for sim/sim_direct_map.h (and the two models it composes,
 * sim_page_tables.h and sim_module_area.h): exact CPA counters for each
 * split/no-split/collapse case, the boot layout, a 1 TiB machine, alias
 * placement, and a randomized comparison against a flat per-frame model.
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

TEST_CASE("boot layout of a 1 GiB machine: 4 MiB of 4 KiB pages, the rest 2 MiB")
{
	ua::sim_direct_map m(gib(1));
	const ua::backend_stats s = m.stats();
	CHECK(m.nr_pages() == gib(1));
	CHECK(s.directmap_4k_kb == 4096);
	CHECK(s.directmap_2m_kb == kb_1g - 4096);
	CHECK(s.directmap_1g_kb == 0);
	CHECK(s.pgtable_pages == 3);  /* the PMD table of GiB 0 and two PTE tables */
	CHECK(s.splits_2m == 0);
	CHECK(s.splits_1g == 0);
	CHECK(s.tlb_flushes == 0);
	CHECK(m.direct_map_level(0) == map_level::pte_4k);
	CHECK(m.direct_map_level(1023) == map_level::pte_4k);
	CHECK(m.direct_map_level(1024) == map_level::pmd_2m);
	CHECK(m.direct_map_level(gib(1) - 1) == map_level::pmd_2m);
	CHECK(m.direct_map_level(gib(1)) == map_level::none);
	CHECK(m.direct_map_state(0) == dm_state::rw);
	CHECK(m.direct_map_state(gib(1)) == dm_state::invalid);
	CHECK(m.check_consistency() == "");
}

TEST_CASE("boot layout of an unaligned machine: 1 GiB pages only for whole GiBs after the first")
{
	/* 4 GiB + 6 MiB + 12 KiB: GiBs 1..3 are 1 GiB pages, the 6 MiB tail is 2 MiB pages, the 12 KiB tail 4 KiB. */
	const std::uint64_t pages = gib(4) + 3 * pmd_pages + 3;
	ua::sim_direct_map m(pages);
	const ua::backend_stats s = m.stats();
	CHECK(s.directmap_1g_kb == 3 * kb_1g);
	CHECK(s.directmap_4k_kb == 4096 + 12);
	CHECK(s.directmap_2m_kb == (kb_1g - 4096) + 3 * kb_2m);
	CHECK(directmap_sum_kb(s) == pages * 4);
	CHECK(s.pgtable_pages == 2 + 3);  /* PMD tables of GiB 0 and the tail; PTE tables: 2 boot + tail */
	CHECK(m.direct_map_level(gib(1)) == map_level::pud_1g);
	CHECK(m.direct_map_level(gib(4) - 1) == map_level::pud_1g);
	CHECK(m.direct_map_level(gib(4)) == map_level::pmd_2m);
	CHECK(m.direct_map_level(gib(4) + 3 * pmd_pages) == map_level::pte_4k);
	CHECK(m.direct_map_level(pages - 1) == map_level::pte_4k);
	CHECK(m.direct_map_level(pages) == map_level::none);
	CHECK(m.check_consistency() == "");

	/* The tail's partial PTE table cannot merge: there is no whole 2 MiB page behind it. */
	CHECK(m.collapse({gib(4) + 3 * pmd_pages, 3}) == 0);
	CHECK(m.stats().collapses_2m == 0);
	CHECK(m.direct_map_level(pages - 1) == map_level::pte_4k);
	CHECK(m.set_direct_map_invalid({pages - 1, 1}) == 0);
	CHECK(m.direct_map_state(pages - 1) == dm_state::invalid);
	CHECK(m.set_direct_map_invalid({pages - 1, 2}) == -EINVAL);
}

TEST_CASE("a 4 KiB change inside a 2 MiB page splits it once")
{
	ua::sim_direct_map m(gib(1));
	const ua::backend_stats before = m.stats();
	const std::uint64_t pfn = 10 * pmd_pages + 7;
	REQUIRE(m.set_direct_map_invalid({pfn, 1}) == 0);
	const ua::backend_stats s = m.stats();
	CHECK(s.splits_2m == 1);
	CHECK(s.splits_1g == 0);
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

	/* A second change inside the same, now split, page costs no split. */
	REQUIRE(m.set_direct_map_ro({pfn + 1, 3}) == 0);
	CHECK(m.stats().splits_2m == 1);
	CHECK(m.stats().tlb_flushes == s.tlb_flushes);
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
	CHECK(s.splits_1g == 1);
	CHECK(s.splits_2m == 0);
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
	CHECK(s.splits_1g == 1);
	CHECK(s.splits_2m == 1);
	CHECK(s.tlb_flushes == before.tlb_flushes + 2);
	CHECK(s.pgtable_pages == before.pgtable_pages + 2);
	CHECK(s.prot_changes == before.prot_changes + 1);
	CHECK(s.directmap_1g_kb == 0);
	CHECK(s.directmap_4k_kb == before.directmap_4k_kb + kb_2m);
	CHECK(directmap_sum_kb(s) == gib(2) * 4);
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
	CHECK(s.splits_1g == 2);
	CHECK(s.splits_2m == 2);
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
		REQUIRE(m.set_direct_map_ro(gig) == 0);
		CHECK(m.direct_map_level(gig.pfn) == map_level::pud_1g);
		CHECK(m.direct_map_state(gig.pfn + 12345) == dm_state::ro);
		CHECK(m.direct_map_state(gig.pfn - 1) == dm_state::rw);
	}
	SUBCASE("several whole 2 MiB pages across a GiB boundary of 2 MiB-mapped GiB 0")
	{
		const frame_range r{gib(1) - 4 * pmd_pages, 4 * pmd_pages};
		REQUIRE(m.set_direct_map_invalid(r) == 0);
		CHECK(m.direct_map_level(r.pfn) == map_level::pmd_2m);
	}
	const ua::backend_stats s = m.stats();
	CHECK(s.splits_2m == 0);
	CHECK(s.splits_1g == 0);
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
	CHECK(s.splits_2m == before.splits_2m);
	CHECK(s.splits_1g == before.splits_1g);
	CHECK(s.tlb_flushes == before.tlb_flushes);
	CHECK(s.prot_changes == before.prot_changes);
	CHECK(s.pgtable_pages == before.pgtable_pages);
	CHECK(m.direct_map_level(gib(1)) == map_level::pud_1g);

	/* The same on split pages: a repeated ro is counted once. */
	REQUIRE(m.set_direct_map_ro({30 * pmd_pages + 1, 2}) == 0);
	const ua::backend_stats s1 = m.stats();
	REQUIRE(m.set_direct_map_ro({30 * pmd_pages + 1, 2}) == 0);
	CHECK(m.stats().prot_changes == s1.prot_changes);
	CHECK(m.stats().splits_2m == s1.splits_2m);
	/* A whole large page already ro: also a no-op. */
	REQUIRE(m.set_direct_map_ro({31 * pmd_pages, pmd_pages}) == 0);
	const ua::backend_stats s2 = m.stats();
	REQUIRE(m.set_direct_map_ro({31 * pmd_pages + 8, 8}) == 0);
	CHECK(m.stats().prot_changes == s2.prot_changes);
	CHECK(m.stats().splits_2m == s2.splits_2m);
	CHECK(m.direct_map_level(31 * pmd_pages) == map_level::pmd_2m);
}

TEST_CASE("restoring does not merge; collapse does, at both levels")
{
	ua::sim_direct_map m(gib(2));
	const ua::backend_stats boot = m.stats();
	const std::uint64_t pfn = gib(1) + 9 * pmd_pages + 100;
	REQUIRE(m.set_direct_map_invalid({pfn, 1}) == 0);
	REQUIRE(m.set_direct_map_default({pfn, 1}) == 0);
	const ua::backend_stats restored = m.stats();
	CHECK(restored.splits_1g == 1);
	CHECK(restored.splits_2m == 1);
	CHECK(restored.collapses_2m == 0);
	CHECK(restored.prot_changes == 2);
	CHECK(m.direct_map_level(pfn) == map_level::pte_4k);
	CHECK(m.direct_map_state(pfn) == dm_state::rw);
	CHECK(restored.directmap_4k_kb == boot.directmap_4k_kb + kb_2m);

	REQUIRE(m.collapse({pfn, 1}) == 0);
	const ua::backend_stats s = m.stats();
	CHECK(s.collapses_2m == 1);
	CHECK(s.collapses_1g == 1);
	CHECK(s.tlb_flushes == restored.tlb_flushes + 1);  /* one flush for the whole call */
	CHECK(s.pgtable_pages == boot.pgtable_pages);
	CHECK(s.directmap_4k_kb == boot.directmap_4k_kb);
	CHECK(s.directmap_2m_kb == boot.directmap_2m_kb);
	CHECK(s.directmap_1g_kb == boot.directmap_1g_kb);
	CHECK(m.direct_map_level(pfn) == map_level::pud_1g);
	CHECK(m.direct_map_state(pfn) == dm_state::rw);
	CHECK(m.check_consistency() == "");

	/* Nothing left to merge: no count, no flush. */
	REQUIRE(m.collapse({pfn, 1}) == 0);
	CHECK(m.stats().collapses_2m == 1);
	CHECK(m.stats().tlb_flushes == s.tlb_flushes);
}

TEST_CASE("collapse refuses entries that disagree")
{
	ua::sim_direct_map m(gib(2));
	const std::uint64_t pfn = gib(1) + 40 * pmd_pages;

	SUBCASE("4 KiB entries disagree: neither level merges")
	{
		REQUIRE(m.set_direct_map_invalid({pfn + 1, 1}) == 0);
		const ua::backend_stats before = m.stats();
		REQUIRE(m.collapse({pfn, pmd_pages}) == 0);
		const ua::backend_stats s = m.stats();
		CHECK(s.collapses_2m == 0);
		CHECK(s.collapses_1g == 0);
		CHECK(s.tlb_flushes == before.tlb_flushes);
		CHECK(s.pgtable_pages == before.pgtable_pages);
		CHECK(m.direct_map_level(pfn) == map_level::pte_4k);
		CHECK(m.direct_map_state(pfn + 1) == dm_state::invalid);
	}
	SUBCASE("4 KiB entries agree on a non-default state: 2 MiB merges, 1 GiB does not")
	{
		REQUIRE(m.set_direct_map_invalid({pfn, 1}) == 0);
		REQUIRE(m.set_direct_map_invalid({pfn + 1, pmd_pages - 1}) == 0);
		REQUIRE(m.collapse({pfn + 3, 1}) == 0);
		const ua::backend_stats s = m.stats();
		CHECK(s.collapses_2m == 1);
		CHECK(s.collapses_1g == 0);  /* one 2 MiB entry is invalid, the others rw */
		CHECK(m.direct_map_level(pfn) == map_level::pmd_2m);
		CHECK(m.direct_map_state(pfn) == dm_state::invalid);
		CHECK(m.direct_map_state(pfn + pmd_pages - 1) == dm_state::invalid);
		CHECK(m.direct_map_state(pfn + pmd_pages) == dm_state::rw);
		CHECK(m.direct_map_level(gib(1)) == map_level::pmd_2m);

		/* Once the GiB agrees again, collapse merges it. */
		REQUIRE(m.set_direct_map_default({pfn, pmd_pages}) == 0);
		REQUIRE(m.collapse({gib(1), 1}) == 0);
		CHECK(m.stats().collapses_1g == 1);
		CHECK(m.direct_map_level(pfn) == map_level::pud_1g);
	}
	SUBCASE("a 4 KiB entry elsewhere in the GiB blocks the 1 GiB merge")
	{
		REQUIRE(m.set_direct_map_ro({pfn, pmd_pages}) == 0);      /* splits 1 GiB only */
		REQUIRE(m.set_direct_map_default({pfn, pmd_pages}) == 0);
		REQUIRE(m.set_direct_map_invalid({gib(2) - 1, 1}) == 0);  /* last 2 MiB of the GiB */
		REQUIRE(m.set_direct_map_default({gib(2) - 1, 1}) == 0);
		REQUIRE(m.collapse({pfn, 1}) == 0);                       /* touches only pfn's 2 MiB */
		CHECK(m.stats().collapses_2m == 0);
		CHECK(m.stats().collapses_1g == 0);
		CHECK(m.direct_map_level(pfn) == map_level::pmd_2m);
		REQUIRE(m.collapse({gib(1), pud_pages}) == 0);            /* the whole GiB */
		CHECK(m.stats().collapses_2m == 1);
		CHECK(m.stats().collapses_1g == 1);
		CHECK(m.direct_map_level(gib(2) - 1) == map_level::pud_1g);
	}
	CHECK(m.check_consistency() == "");
}

TEST_CASE("collapse can merge the boot mappings of GiB 0, which the model gives no holes")
{
	ua::sim_direct_map m(gib(1));
	REQUIRE(m.collapse({0, gib(1)}) == 0);
	const ua::backend_stats s = m.stats();
	CHECK(s.collapses_2m == 2);
	CHECK(s.collapses_1g == 1);  /* GiB 0 lies wholly inside the machine, so it merges too */
	CHECK(m.direct_map_level(0) == ua::map_level::pud_1g);
	CHECK(s.directmap_1g_kb == kb_1g);
	CHECK(s.pgtable_pages == 0);
	CHECK(m.check_consistency() == "");
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
	CHECK(s.splits_2m == before.splits_2m);
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
	CHECK(s.directmap_1g_kb == 1023 * kb_1g);
	CHECK(s.directmap_2m_kb == kb_1g - 4096);
	CHECK(s.directmap_4k_kb == 4096);
	CHECK(directmap_sum_kb(s) == pages * 4);
	CHECK(pt.count().pmd_tables == 1);
	CHECK(pt.count().pte_tables == 2);
	CHECK(pt.table_bytes() < 64 * 1024);  /* 1024 PUD entries plus the boot tables */

	/* Fragment the top GiB a little, and flip a whole far GiB: only the touched pages get tables. */
	const std::uint64_t top = gib(1023);
	REQUIRE(m.set_direct_map_invalid({top + 3 * pmd_pages, pmd_pages}) == 0);  /* 1 GiB split */
	REQUIRE(m.set_direct_map_ro({top + 9 * pmd_pages + 4, 1}) == 0);          /* 2 MiB split */
	REQUIRE(m.set_direct_map_invalid({gib(700), pud_pages}) == 0);           /* in place */
	s = m.stats();
	CHECK(s.splits_1g == 1);
	CHECK(s.splits_2m == 1);
	CHECK(pt.count().pmd_tables == 2);
	CHECK(pt.count().pte_tables == 3);
	CHECK(s.directmap_1g_kb == 1022 * kb_1g);
	CHECK(directmap_sum_kb(s) == pages * 4);
	CHECK(m.direct_map_state(gib(700) + 77) == dm_state::invalid);
	CHECK(m.direct_map_level(gib(700)) == map_level::pud_1g);
	CHECK(m.direct_map_state(pages - 1) == dm_state::rw);
	CHECK(m.direct_map_state(top + 9 * pmd_pages + 4) == dm_state::ro);

	/* The whole machine read-only in one call: no new tables, GiB pages changed in place. */
	REQUIRE(m.set_direct_map_ro({0, pages}) == 0);
	CHECK(m.stats().splits_1g == 1);
	CHECK(m.stats().splits_2m == 1);
	CHECK(pt.count().pmd_tables == 2);
	CHECK(m.direct_map_state(gib(512) + 5) == dm_state::ro);
	CHECK(m.direct_map_state(gib(700)) == dm_state::ro);
	CHECK(pt.table_bytes() < 64 * 1024);
	REQUIRE(m.set_direct_map_default({0, pages}) == 0);
	REQUIRE(m.collapse({0, pages}) == 0);
	CHECK(pt.count().pmd_tables == 0);  /* everything back to 1 GiB pages, boot tables included */
	CHECK(pt.count().pte_tables == 0);
	CHECK(m.stats().directmap_1g_kb == 1024 * kb_1g);
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
	ua::sim_direct_map m(pages);
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
			if (err == 0)
				for (std::uint64_t p = pfn; p < pfn + n; p++)
					ref[p] = s;
		}
		const bool inside = pfn + n <= pages;
		REQUIRE(err == (inside ? 0 : -EINVAL));
		const ua::backend_stats after = m.stats();
		REQUIRE(directmap_sum_kb(after) == pages * 4);
		REQUIRE(after.pgtable_pages + after.collapses_2m + after.collapses_1g ==
			before.pgtable_pages + before.collapses_2m + before.collapses_1g +
				(after.splits_2m - before.splits_2m) + (after.splits_1g - before.splits_1g));
		for (int k = 0; k < 16; k++) {
			const std::uint64_t p = pick(pages);
			REQUIRE(m.direct_map_state(p) == ref[p]);
		}
	}
	for (std::uint64_t p = 0; p < pages; p++)
		REQUIRE(m.direct_map_state(p) == ref[p]);
	CHECK(m.check_consistency() == "");
}
