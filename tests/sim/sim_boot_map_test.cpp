// SPDX-License-Identifier: MIT
/*
 * Tests for sim/sim_boot_map.h and the boot half of sim/sim_page_tables.h:
 * init_mem_mapping()'s calls worked out by hand for small layouts, and the
 * DirectMap figures of two real boots - this project's machine (6.18, 24 GiB
 * of RAM, DirectMap totalling 26 GiB) and the 8 GiB VM of the published
 * sockex1 experiment (LKML, Y2ioTodn+mBXdIqp@ziqianlu-desk2, totalling
 * 10485596 kB). Each test below works its boot out.
 */
#include <doctest/doctest.h>

#include <vector>

#include <unmapped_alloc/sim/sim_boot_map.h>
#include <unmapped_alloc/sim/sim_direct_map.h>

using ua::boot_map_plan;
using ua::boot_map_range;
using ua::map_level;

namespace {

constexpr std::uint64_t mib = 256;               /* frames per MiB */
constexpr std::uint64_t pmd = 512, pud = 512 * 512;
constexpr std::uint64_t gib(std::uint64_t n) { return n * pud; }
constexpr unsigned k4 = 0, m2 = boot_map_plan::page_2m, g1 = boot_map_plan::page_1g;

/* This machine's /proc/iomem, top-level lines (Linux 6.18, Firecracker VM, 24 GiB). */
constexpr const char *this_machine_iomem = "00000000-00000fff : Reserved\n"
					   "00001000-0009fbff : System RAM\n"
					   "0009fc00-000fffff : Reserved\n"
					   "00100000-bfffffff : System RAM\n"
					   "c0001000-eebfffff : PCI Bus 0000:00\n"
					   "eec00000-febfffff : Reserved\n"
					   "fec00000-fec003ff : IOAPIC 0\n"
					   "100000000-63fffffff : System RAM\n"
					   "4000000000-7fffffffff : PCI Bus 0000:00\n";

/*
 * The published 8 GiB QEMU guest: 3 GiB below the PCI hole, 5 GiB from 4 GiB.
 * SeaBIOS reserves the top of low RAM; 0xbffd7000 as its end is the one value
 * fitted here (from the published total), see boot_direct_map.md.
 */
constexpr const char *published_vm_iomem = "00000000-00000fff : Reserved\n"
					   "00001000-0009fbff : System RAM\n"
					   "0009fc00-000fffff : Reserved\n"
					   "00100000-bffd6fff : System RAM\n"
					   "bffd7000-bfffffff : Reserved\n"
					   "100000000-23fffffff : System RAM\n";

ua::memory_map parse(const char *text)
{
	auto r = ua::memory_map::parse_iomem(text);
	REQUIRE(r.ok());
	return std::move(r.value);
}

std::uint64_t sum_kb(const ua::backend_stats &s) { return s.directmap_4k_kb + s.directmap_2m_kb + s.directmap_1g_kb; }

}  // namespace

TEST_CASE("split_mem_range: head, 2 MiB, 1 GiB and tails, widened where the big page around is RAM")
{
	/* RAM [1 MiB, 3 GiB - 2 MiB + 12 KiB) only: nothing around the edges is RAM. */
	ua::memory_map mm = parse("00100000-bfe02fff : System RAM\n");
	const auto plan = boot_map_plan::init_mem_mapping(mm, true);
	/* ISA first, always 4 KiB. Then top-down: real_end = 3 GiB - 2 MiB (the highest whole 2 MiB of RAM). */
	REQUIRE(plan.size() >= 6);
	CHECK(plan[0] == boot_map_range{0, mib, k4});
	/* step 1: the 2 MiB below real_end; its GiB is not all RAM, so no 1 GiB page */
	CHECK(plan[1] == boot_map_range{gib(3) - 2 * pmd, gib(3) - pmd, m2});
	/* step 2 (512 MiB): [2.5 GiB, 3 GiB - 4 MiB); less than 512 MiB mapped so far: the step stays */
	CHECK(plan[2] == boot_map_range{gib(2) + pud / 2, gib(3) - 2 * pmd, m2});
	/* step 3 (512 MiB): [2 GiB, 2.5 GiB) */
	CHECK(plan[3] == boot_map_range{gib(2), gib(2) + pud / 2, m2});
	/* step 4 (128 GiB): from 1 MiB: a 4 KiB head to 2 MiB, 2 MiB pages to 1 GiB, a 1 GiB page */
	CHECK(plan[4] == boot_map_range{mib, 2 * mib, k4});
	CHECK(plan[5] == boot_map_range{2 * mib, gib(1), m2});
	CHECK(plan[6] == boot_map_range{gib(1), gib(2), m2 | g1});
	/* above real_end: the 4 KiB tail [3 GiB - 2 MiB, + 12 KiB) */
	REQUIRE(plan.size() == 8);
	CHECK(plan[7] == boot_map_range{gib(3) - pmd, gib(3) - pmd + 3, k4});

	/* Without gbpages nothing gets a 1 GiB page. */
	for (const boot_map_range &r : boot_map_plan::init_mem_mapping(mm, false))
		CHECK((r.page_size_mask & g1) == 0);
}

TEST_CASE("a GiB the first steps reach into is counted once per step: DirectMap1G exceeds the RAM")
{
	/* Flat 4 GiB + 6 MiB + 12 KiB (see the hand count in boot_direct_map.md). */
	const std::uint64_t pages = gib(4) + 3 * pmd + 3;
	ua::sim_page_tables pt(pages);
	const auto &c = pt.count();
	CHECK(c.direct_pages_4k == 256 + 256 + 3); /* ISA, [1 MiB, 2 MiB), the tail */
	CHECK(c.direct_pages_2m == 511 + 3);       /* GiB 0, and three at 4 GiB */
	CHECK(c.direct_pages_1g == 4);             /* GiBs 1-3, GiB 3 twice */
	CHECK(pt.boot_recount()[2] == 1);
	CHECK(pt.boot_recount()[1] == 0);
	CHECK(pt.boot_recount()[0] == 0);
	CHECK(c.pmd_tables == 2);
	CHECK(c.pte_tables == 2);
	CHECK(pt.level(0) == map_level::pte_4k);
	CHECK(pt.level(2 * mib - 1) == map_level::pte_4k);
	CHECK(pt.level(2 * mib) == map_level::pmd_2m);
	CHECK(pt.level(gib(3)) == map_level::pud_1g);
	CHECK(pt.level(gib(4) + 2 * pmd) == map_level::pmd_2m);
	CHECK(pt.level(pages - 1) == map_level::pte_4k);
	CHECK(pt.level(pages) == map_level::none);
	CHECK(pt.check_consistency() == "");
}

TEST_CASE("holes are never mapped; 4 KiB only at the edges of RAM and in the ISA range")
{
	ua::sim_page_tables pt(parse(this_machine_iomem), true);
	CHECK(pt.nr_pages() == 0x640000);
	CHECK(pt.level(0) == map_level::pte_4k);              /* the ISA range is mapped whatever is there */
	CHECK(pt.level(0xa0) == map_level::pte_4k);
	CHECK(pt.level(gib(3)) == map_level::none);            /* the PCI hole */
	CHECK(pt.level(gib(4) - 1) == map_level::none);
	CHECK(pt.level(gib(1)) == map_level::pud_1g);
	CHECK(pt.level(gib(4)) == map_level::pud_1g);
	CHECK(pt.level(gib(25) - 1) == map_level::pud_1g);
	CHECK(pt.state(gib(3) + 5) == ua::dm_state::invalid);
	CHECK(pt.check_consistency() == "");
}

TEST_CASE("this machine: 26 GiB of DirectMap for 24 GiB of RAM, and its measured figures")
{
	const ua::memory_map mm = parse(this_machine_iomem);
	{
		ua::sim_direct_map m(mm);
		const ua::backend_stats s = m.stats();
		CHECK(s.directmap_4k_kb == 2048);            /* ISA and [1 MiB, 2 MiB) */
		CHECK(s.directmap_2m_kb == 511 * 2048);      /* [2 MiB, 1 GiB) */
		CHECK(s.directmap_1g_kb == 25 * 1048576);    /* GiBs 1, 2, 4-24, and GiB 24 twice more */
		CHECK(sum_kb(s) == 27262976);                /* 26 GiB: what /proc/meminfo totals here */
		CHECK(m.page_tables().boot_recount()[2] == 2);
	}
	/*
	 * grep Direct /proc/meminfo and grep direct_map /proc/vmstat after boot:
	 * DirectMap4k 26624 kB, 2M 2070528 kB, 1G 25165824 kB; 3 level-2 splits,
	 * no level-3 split, no collapse. Before SYSTEM_RUNNING the kernel split
	 * one GiB and nine 2 MiB pages (sizes from the figures, not derived).
	 */
	ua::sim_config cfg;
	cfg.boot_level3_splits = 1;
	cfg.boot_level2_splits = 9;
	ua::sim_direct_map m(mm, cfg);
	const ua::backend_stats boot = m.stats();
	CHECK(boot.direct_map_level2_splits == 0);
	CHECK(boot.direct_map_level3_splits == 0);
	CHECK(boot.tlb_flushes == 0);
	for (std::uint64_t i = 0; i < 3; i++) /* three 4 KiB changes in three 2 MiB pages of GiB 0 */
		REQUIRE(m.set_direct_map_ro({(200 + i) * pmd + 1, 1}) == 0);
	const ua::backend_stats s = m.stats();
	CHECK(s.directmap_4k_kb == 26624);
	CHECK(s.directmap_2m_kb == 2070528);
	CHECK(s.directmap_1g_kb == 25165824);
	CHECK(s.direct_map_level2_splits == 3);
	CHECK(s.direct_map_level3_splits == 0);
	CHECK(s.direct_map_level2_collapses == 0);
	CHECK(s.direct_map_level3_collapses == 0);
	CHECK(m.check_consistency() == "");
}

TEST_CASE("the published 8 GiB VM: 10485596 kB, and every published boot row")
{
	const ua::memory_map mm = parse(published_vm_iomem);
	{
		ua::sim_direct_map m(mm);
		const ua::backend_stats s = m.stats();
		CHECK(s.directmap_4k_kb == 983 * 4);      /* 256 + 256 + 471 below 0xbffd7000 */
		CHECK(s.directmap_2m_kb == 1022 * 2048);  /* [2 MiB, 1 GiB) and [2 GiB, 3 GiB - 2 MiB) */
		CHECK(s.directmap_1g_kb == 8 * 1048576);  /* GiBs 1, 4-8, GiB 8 twice more */
		CHECK(sum_kb(s) == 10485596);
	}
	struct row {
		const char *what;
		unsigned l3, l2;
		std::uint64_t k4, m2, g1;
	};
	/* Published boot rows (kB), and the boot splits that give them. */
	const row rows[] = {
		{"v5.17 fresh", 3, 41, 87900, 5154816, 5242880},
		{"v5.17 aged", 2, 44, 94044, 4100096, 6291456},
		{"v6.1-rc3", 1, 9, 22364, 3123200, 7340032},
	};
	for (const row &r : rows) {
		CAPTURE(r.what);
		ua::sim_config cfg;
		cfg.boot_level3_splits = r.l3;
		cfg.boot_level2_splits = r.l2;
		ua::sim_direct_map m(mm, cfg);
		const ua::backend_stats s = m.stats();
		CHECK(s.directmap_4k_kb == r.k4);
		CHECK(s.directmap_2m_kb == r.m2);
		CHECK(s.directmap_1g_kb == r.g1);
		CHECK(m.check_consistency() == "");
	}
}
