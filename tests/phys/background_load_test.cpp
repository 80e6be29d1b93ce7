// SPDX-License-Identifier: MIT
/* Tests for phys/background_load.h and the page cache it feeds. */
#include <doctest/doctest.h>

#include <unmapped_alloc/phys/background_load.h>

using namespace ua;

TEST_CASE("the background reads into the page cache and churns slab, bounded")
{
	page_allocator pa(pages_per_region, {.min_free_kbytes = min_free_kbytes_auto});
	background_load bg({.seed = 5, .cache_pages = 8, .slab_pages = 1, .slab_live = 100});
	for (int i = 0; i < 1000; i++)
		bg.step(pa);
	CHECK(pa.page_cache_pages() == 8000);
	CHECK(bg.slab_held() == 100);
	CHECK(pa.nr_pages() - pa.nr_free_pages() == 8100);
	CHECK(pa.check_consistency() == "");
	bg.release(pa);
	CHECK(pa.page_cache_evict(8000) == 8000);
	CHECK(pa.nr_free_pages() == pa.nr_pages());
}

TEST_CASE("on a full machine kswapd evicts the oldest page cache to stay above the watermarks")
{
	page_allocator pa(pages_per_region, {.min_free_kbytes = min_free_kbytes_auto});
	REQUIRE(pa.age({.used_fraction = 0.97, .free_chunk_fraction = 0.0, .seed = 2}).ok());
	const std::uint64_t cache0 = pa.page_cache_pages();
	background_load bg({.seed = 5});
	for (int i = 0; i < 20000; i++)
		bg.step(pa);
	/* 160000 pages read into a machine with far less free: the cache stayed about the same size. */
	CHECK(pa.page_cache_pages() < cache0 + 20000);
	const zone_info z = pa.zone(zone_type::dma32);
	CHECK(z.nr_free_pages + 512 >= z.wmark_min);
	CHECK(pa.check_consistency() == "");
}

TEST_CASE("the background is deterministic per seed")
{
	auto run = [](std::uint64_t seed) {
		page_allocator pa(pages_per_region / 4);
		background_load bg({.seed = seed, .slab_pages = 3, .slab_live = 50});
		for (int i = 0; i < 500; i++) {
			pa.set_cpu(unsigned(i));
			bg.step(pa);
		}
		return pa.buddyinfo() + pa.pagetypeinfo();
	};
	CHECK(run(1) == run(1));
	CHECK(run(1) != run(2));
}
