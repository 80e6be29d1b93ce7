// SPDX-License-Identifier: MIT
/* Tests for bench/validation/page_cache.h. */
#include <doctest/doctest.h>

#include "validation/page_cache.h"

using namespace ua;
using namespace ua::validation;

namespace {

sim_machine_build small_machine()
{
	auto mm = memory_map::x86_vm(2 * (pud_size / page_size));
	REQUIRE(mm.ok());
	sim_machine_build b = build_sim_machine({std::move(mm.value), sim_config{}, false, {}});
	REQUIRE(b.error.empty());
	return b;
}

}  // namespace

TEST_CASE("the min watermark follows calculate_min_free_kbytes()")
{
	/* 8 GiB: int_sqrt(8388608 * 16) = 11585 kB */
	CHECK(page_cache::min_free_pages(8 * (pud_size / page_size)) == 11585 / 4);
	/* small machines are clamped to 128 kB, huge ones to 256 MiB */
	CHECK(page_cache::min_free_pages(256) == 128 / 4);
	CHECK(page_cache::min_free_pages(std::uint64_t{1} << 30) == 262144 / 4);
}

TEST_CASE("a fill takes memory down to its target; reclaim gives back the oldest 32; drop gives back the rest")
{
	sim_machine_build b = small_machine();
	sim_machine &m = *b.m;
	const std::uint64_t free0 = m.pages.nr_free_pages();
	page_cache c(m);
	const std::uint64_t target = free0 / 2;
	const std::uint64_t n = c.fill(target);
	CHECK(n == free0 - target);
	CHECK(c.pages() == n);
	CHECK(m.pages.nr_free_pages() == target);

	CHECK(c.reclaim_batch() == swap_cluster_max);
	CHECK(c.reclaimed() == swap_cluster_max);
	CHECK(m.pages.nr_free_pages() == target + swap_cluster_max);
	CHECK(c.pages() == n - swap_cluster_max);

	c.drop();
	CHECK(c.pages() == 0);
	CHECK(m.pages.nr_free_pages() == free0);
	CHECK(c.reclaim_batch() == 0); /* nothing left to reclaim */
}

TEST_CASE("filling all memory stops when the allocator has nothing left, and the destructor drops it")
{
	sim_machine_build b = small_machine();
	sim_machine &m = *b.m;
	const std::uint64_t free0 = m.pages.nr_free_pages();
	{
		page_cache c(m);
		CHECK(c.fill(0) == free0);
		CHECK(m.pages.nr_free_pages() == 0);
	}
	CHECK(m.pages.nr_free_pages() == free0);
}
