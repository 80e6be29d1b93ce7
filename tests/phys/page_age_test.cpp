// SPDX-License-Identifier: MIT
/* Tests for phys/page_age.h: ageing through the allocator's own paths. */
#include <doctest/doctest.h>

#include <unmapped_alloc/phys/page_alloc.h>

using namespace ua;

namespace {
constexpr std::uint64_t gib_pages = pages_per_region;
}

TEST_CASE("ageing leaves used_fraction allocated and free memory scattered over most pageblocks")
{
	page_allocator pa(4 * gib_pages + 512 * 512, {.min_free_kbytes = min_free_kbytes_auto});
	const std::uint64_t n = pa.nr_pages();
	const auto rep = pa.age({.used_fraction = 0.5, .free_chunk_fraction = 0.02, .seed = 3});
	REQUIRE(rep.ok());
	CHECK(pa.check_consistency() == "");
	const double used = double(n - pa.nr_free_pages()) / double(n);
	CHECK(used > 0.47);
	CHECK(used < 0.53);
	CHECK(rep.value.pages_allocated == n - pa.nr_free_pages());
	const auto fs = pa.fragmentation();
	const std::uint64_t pageblocks = (n + 511) / 512;
	CHECK(fs.pageblocks_with_free > pageblocks * 9 / 10);
	/* About 2% of pageblocks wholly free (the free_chunk_fraction ones), and no more than a few % beyond. */
	CHECK(fs.pageblocks_free > pageblocks / 100);
	CHECK(fs.pageblocks_free < pageblocks / 20);
	CHECK(rep.value.pageblocks_kept_free == fs.pageblocks_free);
	/* Scattered: most free memory is in small blocks. */
	const auto fa = pa.free_area();
	std::uint64_t small = 0;
	for (unsigned o = 0; o < 4; o++)
		small += fa.nr_free[o] << o;
	CHECK(small > fa.nr_free_pages / 2);
	/* Slab churn claimed some pageblocks for unmovable and reclaimable pages. */
	const std::string pti = pa.pagetypeinfo();
	CHECK(pti.find("Reclaimable") != std::string::npos);
	CHECK(pa.pageblock_migratetype(pa.zone(zone_type::normal).span.pfn) == migrate_movable);
}

TEST_CASE("ageing is deterministic per seed and validates its parameters")
{
	auto aged = [](std::uint64_t seed) {
		page_allocator pa(gib_pages + 1000, {.min_free_kbytes = min_free_kbytes_auto});
		REQUIRE(pa.age({.used_fraction = 0.6, .free_chunk_fraction = 0.05, .seed = seed}).ok());
		return pa.buddyinfo() + pa.pagetypeinfo();
	};
	CHECK(aged(7) == aged(7));
	CHECK(aged(7) != aged(8));
	page_allocator pa(gib_pages);
	const auto before = pa.buddyinfo();
	CHECK(pa.age({.used_fraction = 1.5}).err == error::bad_flags);
	CHECK(pa.age({.used_fraction = 0.5, .free_chunk_fraction = -0.1}).err == error::bad_flags);
	CHECK(pa.age({.gfp = gfp_movable | gfp_reclaimable}).err == error::bad_flags);
	CHECK(pa.buddyinfo() == before);
}

TEST_CASE("an aged machine's slow path reclaims page cache before failing")
{
	page_allocator pa(gib_pages, {.min_free_kbytes = min_free_kbytes_auto});
	REQUIRE(pa.age({.used_fraction = 0.9, .free_chunk_fraction = 0.0, .seed = 1}).ok());
	/* Ask for more than is free: direct reclaim evicts page cache, so every request succeeds. */
	const std::uint64_t free0 = pa.nr_free_pages();
	std::uint64_t got = 0;
	for (std::uint64_t i = 0; i < free0 + gib_pages / 20; i++)
		got += pa.alloc_pages(0, gfp_kernel).ok();
	CHECK(got == free0 + gib_pages / 20);
	CHECK(pa.check_consistency() == "");
}
