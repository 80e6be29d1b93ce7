// SPDX-License-Identifier: MIT
/* Tests for bench/peers/gfp_unmapped.h over both backends, on hand-worked cases. */
#include <doctest/doctest.h>

#include <vector>

#include "peer_fixture.h"
#include "peers/gfp_unmapped.h"
#include <support/machine_lock.h>

using namespace ua;
using namespace ua::peers;
using peer_test::make_machine;

TEST_CASE_TEMPLATE("gfp-unmapped pages: refills with a pageblock and unmaps pages one by one as they are handed out", B,
		   sim_direct_map, linux_backend)
{
	auto m = make_machine<B>();
	const std::uint64_t free0 = m->nr_free_pages();
	gfp_unmapped_peer<B> gu(*m, {.use = gfp_unmapped_use::pages});

	auto a = gu.alloc(100, 1);
	REQUIRE(a.ok());
	const frame_range fa = peer_test::frames_of(*m, a.value);
	CHECK(fa.nr_pages == 1);
	const frame_range block{fa.pfn & ~pfn_t{pages_per_chunk - 1}, pages_per_chunk};
	CHECK(fa.pfn == block.pfn);
	CHECK(ua_test::allocated_order(*m, block.pfn).value == chunk_order); /* one PMD-order refill */
	auto s = gu.stats();
	CHECK(s.pages_held == pages_per_chunk);
	CHECK(s.chunks == 1);
	CHECK(s.live_bytes == page_size);
	CHECK(s.dm_changes == 1);
	CHECK(s.flushes == 1);
	CHECK(peer_test::count_state(*m, block, dm_state::invalid) == 1); /* not the whole block */

	/* 3 pages take an order-2 block: expand() left one at block + 4 (orders 0, 1 at +1, +2). */
	auto b = gu.alloc(3 * page_size, 1);
	REQUIRE(b.ok());
	const frame_range fb = peer_test::frames_of(*m, b.value);
	CHECK(fb.nr_pages == 4);
	CHECK(fb.pfn == block.pfn + 4);
	CHECK(gu.stats().live_bytes == 5 * page_size);
	CHECK(gu.stats().dm_changes == 5); /* one call per page */
	CHECK(gu.stats().flushes == 2);    /* one per allocation */
	CHECK(peer_test::count_state(*m, block, dm_state::invalid) == 5);
	auto c = gu.alloc(1, 1); /* the head of the order-0 list: block + 1 */
	REQUIRE(c.ok());
	CHECK(peer_test::frames_of(*m, c.value).pfn == block.pfn + 1);
	CHECK(gu.stats().pages_held == pages_per_chunk);

	/* Frees return pages to the cache, still unmapped. */
	CHECK(gu.free(b.value) == error::ok);
	CHECK(peer_test::count_state(*m, block, dm_state::invalid) == 6);
	CHECK(gu.stats().pages_held == pages_per_chunk);
	CHECK(gu.nr_free(2) == 1);
	/* A page handed out again is not unmapped twice. */
	auto d = gu.alloc(4 * page_size, 1);
	REQUIRE(d.ok());
	CHECK(peer_test::frames_of(*m, d.value).pfn == block.pfn + 4);
	CHECK(gu.stats().dm_changes == 6);
	CHECK(gu.free(d.value) == error::ok);

	/* The shrinker: count is the cached free pages; with a page live the block cannot go back. */
	CHECK(gu.shrink_count() == pages_per_chunk - 2);
	CHECK(gu.free(c.value) == error::ok);
	CHECK(gu.shrink_scan(~std::uint64_t{0}) == 0);
	CHECK(peer_test::count_state(*m, block, dm_state::invalid) == 1); /* cached pages mapped back */
	CHECK(gu.stats().pages_held == pages_per_chunk);

	/* All free: the buddies merge back into the taken block and it goes back whole. */
	CHECK(gu.free(a.value) == error::ok);
	CHECK(gu.nr_free(chunk_order) == 1);
	CHECK(gu.shrink_count() == pages_per_chunk);
	gu.drain();
	s = gu.stats();
	CHECK(s.pages_held == 0);
	CHECK(s.chunks == 0);
	CHECK(s.live_bytes == 0);
	CHECK(s.requested_bytes == 0);
	CHECK(gu.shrink_count() == 0);
	CHECK(m->nr_free_pages() == free0);
	CHECK(peer_test::direct_map_all_rw(*m) == "");
	CHECK(m->backend.stats().aliases == 0);
}

TEST_CASE_TEMPLATE("gfp-unmapped module_alloc: n order-0 pages from the cache at one alias; vfree maps them back", B,
		   sim_direct_map, linux_backend)
{
	auto m = make_machine<B>();
	const std::uint64_t free0 = m->nr_free_pages();
	gfp_unmapped_peer<B> gu(*m); /* module_alloc(): GFP_KERNEL | __GFP_UNMAPPED through vmalloc */
	auto a = gu.alloc(3 * page_size, 1);
	REQUIRE(a.ok());
	const std::vector<pfn_t> pfns = peer_test::alias_pfns(*m, a.value, 3);
	/* Three order-0 cache hand-outs from one refilled pageblock: block, +1, +2 (expand() order). */
	const pfn_t block = pfns[0] & ~pfn_t{pages_per_chunk - 1};
	CHECK(pfns == std::vector<pfn_t>{block, block + 1, block + 2});
	CHECK(ua_test::allocated_order(*m, block).value == chunk_order);
	for (pfn_t p : pfns)
		CHECK(m->backend.direct_map_state(p) == dm_state::invalid);
	CHECK(m->backend.alias_prot(a.value) == prot::rx);
	CHECK(gu.stats().dm_changes == 3 + 1); /* three unmapped, and set_memory_rox(), which finds them not present */
	/* Even 2 MiB of module text is order-0 pages: nothing is too large. */
	auto big = gu.alloc(chunk_size + page_size, 1);
	REQUIRE(big.ok());
	CHECK(gu.stats().pages_held == 2 * pages_per_chunk); /* 3 + 513 pages: a second pageblock refill */
	CHECK(gu.free(big.value) == error::ok);
	/* vm_reset_perms(): invalid, flush, default for each page, then back into the cache, mapped. */
	CHECK(gu.free(a.value) == error::ok);
	for (pfn_t p : pfns)
		CHECK(m->backend.direct_map_state(p) == dm_state::rw);
	/* The next hand-out of such a page removes it again. */
	auto b = gu.alloc(page_size, 1);
	REQUIRE(b.ok());
	CHECK(m->backend.direct_map_state(peer_test::alias_pfns(*m, b.value, 1)[0]) == dm_state::invalid);
	CHECK(gu.free(b.value) == error::ok);
	gu.drain();
	CHECK(gu.stats().pages_held == 0);
	CHECK(m->nr_free_pages() == free0);
	CHECK(peer_test::direct_map_all_rw(*m) == "");
}

TEST_CASE_TEMPLATE("gfp-unmapped: falls back to a smaller block when no 2 MiB block is free", B, sim_direct_map,
		   linux_backend)
{
	auto m = make_machine<B>();
	std::vector<pfn_t> taken;
	result<pfn_t> one;
	{
		typename machine<B>::guard g(m->lock);
		for (;;) {
			auto r = m->pages.alloc_pages(chunk_order, gfp_any_zone);
			if (!r)
				break;
			taken.push_back(r.value);
		}
		/* One pageblock back, with one page of it allocated: free blocks of orders 0..8 remain. */
		REQUIRE(m->pages.free_pages(taken.back(), chunk_order) == error::ok);
		taken.pop_back();
		one = m->pages.alloc_pages(0, gfp_any_zone);
		REQUIRE(one.ok());
	}
	{
		gfp_unmapped_peer<B> gu(*m, {.use = gfp_unmapped_use::pages});
		auto a = gu.alloc(page_size, 1);
		REQUIRE(a.ok());
		CHECK(gu.stats().pages_held == pages_per_chunk / 2); /* an order-8 refill */
		auto big = gu.alloc(chunk_size, 1);
		CHECK(big.err == error::no_memory);
		CHECK(gu.alloc(chunk_size + 1, 1).err == error::too_large); /* orders above PMD_ORDER never refill */
		CHECK(gu.free(a.value) == error::ok);
		gu.drain();
		CHECK(gu.stats().pages_held == 0);
	}
	{
		typename machine<B>::guard g(m->lock);
		REQUIRE(m->pages.free_pages(one.value, 0) == error::ok);
		for (pfn_t p : taken)
			REQUIRE(m->pages.free_pages(p, chunk_order) == error::ok);
	}
	CHECK(m->nr_free_pages() == m->nr_pages());
}

TEST_CASE_TEMPLATE("gfp-unmapped: bad input and bad frees are refused", B, sim_direct_map, linux_backend)
{
	auto m = make_machine<B>();
	gfp_unmapped_peer<B> gu(*m);
	CHECK(gu.alloc(0, 1).err == error::zero_size);
	CHECK(gu.alloc(10, 6).err == error::bad_alignment);
	CHECK(gu.alloc(10, 2 * page_size).err == error::bad_alignment);
	auto a = gu.alloc(2 * page_size, 1);
	REQUIRE(a.ok());
	const auto before = gu.stats();
	CHECK(gu.free(a.value + page_size) == error::interior_pointer);
	CHECK(gu.free(1) == error::foreign_pointer);
	CHECK(gu.stats().live_count == before.live_count);
	CHECK(gu.stats().dm_changes == before.dm_changes);
	CHECK(gu.free(a.value) == error::ok);
	CHECK(gu.free(a.value) == error::foreign_pointer);
	CHECK(gu.stats().pages_held == pages_per_chunk);
}

TEST_CASE("gfp-unmapped: a failing backend operation is unwound")
{
	using peer_test::flaky_sim;
	auto m = make_machine<flaky_sim>();
	const std::uint64_t free0 = m->nr_free_pages();
	for (gfp_unmapped_use use : {gfp_unmapped_use::pages, gfp_unmapped_use::module_alloc}) {
		gfp_unmapped_peer<flaky_sim> gu(*m, {.use = use});
		flaky_sim::fail_dm = 1; /* the second page of the request */
		CHECK(gu.alloc(4 * page_size, 1).err == error::backend_failure);
		flaky_sim::fail_map_alias = 0;
		CHECK(gu.alloc(4 * page_size, 1).err == error::backend_failure);
		flaky_sim::reset();
		/* The refill that served the failed request went back with it. */
		CHECK(gu.stats().pages_held == 0);
		CHECK(m->nr_free_pages() == free0);
		CHECK(peer_test::direct_map_all_rw(*m) == "");
		CHECK(m->backend.stats().aliases == 0);
		auto a = gu.alloc(4 * page_size, 1);
		REQUIRE(a.ok());
		CHECK(gu.free(a.value) == error::ok);
	}
	CHECK(m->nr_free_pages() == free0);
}

TEST_CASE("gfp-unmapped: concurrent callers are serialised by the peer's lock")
{
	auto m = make_machine<sim_direct_map>();
	const std::uint64_t free0 = m->nr_free_pages();
	{
		gfp_unmapped_peer<sim_direct_map> p(*m);
		CHECK(peer_test::hammer(p, 4, 300, 5 * page_size, 1) == 0);
		CHECK(p.stats().live_count == 0);
		p.drain();
		CHECK(p.stats().pages_held == 0);
	}
	CHECK(m->nr_free_pages() == free0);
}
