// SPDX-License-Identifier: MIT
/* Tests for bench/validation/page_cache.h. */
#include <doctest/doctest.h>

#include "validation/page_cache.h"

#include "validation_fixture.h"

using namespace ua;
using namespace ua::validation;
using ua_test::small_machine;

TEST_CASE("a fill takes memory down to its target and a drop gives it back")
{
	sim_machine_build b = small_machine();
	sim_machine &m = *b.m;
	const std::uint64_t free0 = m.nr_free_pages();
	page_cache c(m);
	const std::uint64_t target = free0 / 2;
	const std::uint64_t n = c.fill_to(target);
	CHECK(n == free0 - target);
	CHECK(c.pages() == n);
	CHECK(m.nr_free_pages() == target);
	CHECK(c.fill_to(free0) == 0); /* already below */
	c.drop();
	CHECK(c.pages() == 0);
	CHECK(m.nr_free_pages() == free0);
}

TEST_CASE("reading a file as large as memory leaves only what kswapd keeps free, and allocations reclaim it")
{
	sim_machine_build b = small_machine();
	sim_machine &m = *b.m;
	const std::uint64_t free0 = m.nr_free_pages();
	{
		page_cache c(m);
		c.fill_all(free0);
		CHECK(c.pages() > free0 * 9 / 10);
		CHECK(m.nr_free_pages() < free0 / 10);
		/* a request for more than is free still succeeds: the slow path reclaims the cache */
		std::vector<pfn_t> got;
		const std::uint64_t cached = c.pages();
		const std::uint64_t want = m.nr_free_pages() + 4096;
		{
			sim_machine::guard g(m.lock);
			for (std::uint64_t i = 0; i < want; i++) {
				auto r = m.pages.alloc_pages(0, gfp_kernel);
				REQUIRE(r.ok());
				got.push_back(r.value);
			}
		}
		CHECK(c.pages() < cached);
		sim_machine::guard g(m.lock);
		for (pfn_t p : got)
			REQUIRE(m.pages.free_pages(p, 0) == error::ok);
	}
	sim_machine::guard g(m.lock);
	CHECK(m.pages.page_cache_pages() == 0); /* the destructor dropped the rest */
}
