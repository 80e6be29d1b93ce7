// SPDX-License-Identifier: MIT
/* Tests for phys/process_pages.h. */
#include <doctest/doctest.h>

#include <unmapped_alloc/phys/process_pages.h>

using namespace ua;

TEST_CASE("a process takes its stack, tables and slab unmovable and its user memory movable")
{
	page_allocator pa(pages_per_region, {.min_free_kbytes = min_free_kbytes_auto});
	const std::uint64_t free0 = pa.nr_free_pages();
	process_pages proc;
	REQUIRE(spawn_process(pa, std::size_t(2) << 20, proc) == error::ok);
	/* 512 pages in all: 4 stack + 6 slab + 2 PGD + 11 tables = 23 kernel, 489 user. */
	CHECK(proc.nr_pages() == 512);
	CHECK(proc.blocks.size() == 4 + 6 + 1 + 11 + 489);
	CHECK(proc.blocks[10].second == 1); /* the PGD */
	CHECK(pa.pageblock_migratetype(proc.blocks[0].first) == migrate_unmovable);
	CHECK(pa.pageblock_migratetype(proc.blocks.back().first) == migrate_movable);
	CHECK(pa.nr_free_pages() == free0 - 512);
	exit_process(pa, proc);
	CHECK(proc.blocks.empty());
	CHECK(pa.nr_free_pages() == free0);
	CHECK(pa.check_consistency() == "");
}

TEST_CASE("spawning is all-or-nothing")
{
	page_allocator pa(100);
	process_pages proc;
	CHECK(spawn_process(pa, std::size_t(2) << 20, proc) == error::no_memory);
	CHECK(proc.blocks.empty());
	CHECK(pa.nr_free_pages() == 100);
	CHECK(pa.check_consistency() == "");
}
