// SPDX-License-Identifier: MIT
/* Tests for bench/peers/freetype_unmapped.h (and freetype_pool.h) over both backends, on hand-worked cases. */
#include <doctest/doctest.h>

#include <vector>

#include "peer_fixture.h"
#include "peers/freetype_unmapped.h"
#include <support/machine_lock.h>

using namespace ua;
using namespace ua::peers;
using peer_test::make_machine;

TEST_CASE_TEMPLATE("freetype-unmapped: the first order-0 allocation flips exactly one pageblock, whole", B,
		   sim_direct_map, linux_backend)
{
	auto m = make_machine<B>();
	const std::uint64_t free0 = m->nr_free_pages();
	const auto before = m->backend.stats();
	{
		freetype_unmapped_peer<B> ft(*m);
		auto a = ft.alloc(100, 1);
		REQUIRE(a.ok());
		CHECK(ft.pool_stats().pageblocks_unmapped == 1);
		const pfn_t pfn = peer_test::alias_pfns(*m, a.value, 1)[0];
		const frame_range block{pfn & ~pfn_t{pages_per_chunk - 1}, pages_per_chunk};
		CHECK(ua_test::allocated_order(*m, block.pfn).value == chunk_order); /* max(order 0, pageblock_order) */
		CHECK(peer_test::count_state(*m, block, dm_state::invalid) == pages_per_chunk); /* the whole pageblock */
		auto s = ft.stats();
		CHECK(s.dm_changes == 1); /* one call over the aligned 2 MiB */
		CHECK(s.flushes == 1);
		CHECK(s.pages_held == pages_per_chunk);
		CHECK(s.chunks == 1);
		if constexpr (std::is_same_v<B, sim_direct_map>)
			CHECK(m->backend.stats().direct_map_level2_splits == before.direct_map_level2_splits); /* in place: nothing splits at 2 MiB */
		/* The rest of the pageblock serves later requests: no second flip, no direct-map call. */
		std::vector<std::uintptr_t> more;
		for (int i = 0; i < 100; i++) {
			auto b = ft.alloc(page_size, 1);
			REQUIRE(b.ok());
			more.push_back(b.value);
		}
		CHECK(ft.pool_stats().pageblocks_unmapped == 1);
		CHECK(ft.stats().dm_changes == 1);
		/* Frees stay unmapped, on the unmapped lists. */
		for (std::uintptr_t p : more)
			CHECK(ft.free(p) == error::ok);
		CHECK(ft.free(a.value) == error::ok);
		CHECK(peer_test::count_state(*m, block, dm_state::invalid) == pages_per_chunk);
		CHECK(ft.stats().pages_held == pages_per_chunk);
		/* Pressure: the wholly free pageblock is zeroed and mapped back, with one call. */
		const std::uint64_t written = m->backend.stats().bytes_written;
		ft.drain();
		CHECK(m->backend.stats().bytes_written - written == chunk_size);
		CHECK(ft.pool_stats().pageblocks_mapped_back == 1);
		CHECK(ft.stats().dm_changes == 2);
		CHECK(ft.stats().pages_held == 0);
	}
	CHECK(m->nr_free_pages() == free0);
	CHECK(peer_test::direct_map_all_rw(*m) == "");
	CHECK(m->backend.stats().aliases == 0);
}

TEST_CASE_TEMPLATE("freetype-unmapped: refused in atomic context when the unmapped lists are empty", B, sim_direct_map,
		   linux_backend)
{
	auto m = make_machine<B>();
	const std::uint64_t free0 = m->nr_free_pages();
	freetype_unmapped_peer<B> ft(*m);
	CHECK(ft.alloc_atomic(page_size, 1).err == error::no_memory);
	CHECK(ft.pool_stats().atomic_refusals == 1);
	CHECK(m->nr_free_pages() == free0); /* nothing taken, nothing changed */
	CHECK(ft.stats().dm_changes == 0);
	auto a = ft.alloc(page_size, 1); /* may sleep: flips a pageblock */
	REQUIRE(a.ok());
	auto b = ft.alloc_atomic(page_size, 1); /* now the lists have pages: served */
	REQUIRE(b.ok());
	CHECK(ft.pool_stats().pageblocks_unmapped == 1);
	CHECK(ft.free(a.value) == error::ok);
	CHECK(ft.free(b.value) == error::ok);
}

TEST_CASE_TEMPLATE("freetype-unmapped: orders above the pageblock flip their own block; above order 10 is refused", B,
		   sim_direct_map, linux_backend)
{
	auto m = make_machine<B>();
	freetype_unmapped_peer<B> ft(*m);
	auto a = ft.alloc(4 << 20, 1); /* order 10: two pageblocks at once */
	REQUIRE(a.ok());
	CHECK(ft.pool_stats().pageblocks_unmapped == 2);
	CHECK(ft.stats().dm_changes == 1);
	const pfn_t pfn = peer_test::alias_pfns(*m, a.value, 1)[0];
	CHECK(ua_test::allocated_order(*m, pfn).value == 10u);
	CHECK(ft.alloc(std::size_t{8} << 20, 1).err == error::too_large);
	CHECK(ft.free(a.value) == error::ok);
	ft.drain();
	CHECK(ft.stats().pages_held == 0);
}

TEST_CASE("freetype-unmapped: with no free pageblock in the page allocator there is nothing to flip")
{
	machine<sim_direct_map> m(std::uint64_t{1} << 18);
	std::vector<pfn_t> keep;
	for (pfn_t k = 0; k < 64; k++)
		keep.push_back(k * pages_per_chunk + 5);
	const std::vector<pfn_t> pinned = peer_test::pin_all_but(m, keep);
	{
		freetype_unmapped_peer<sim_direct_map> ft(m);
		CHECK(ft.alloc(page_size, 1).err == error::no_memory); /* 64 free frames, no free pageblock */
		CHECK(m.nr_free_pages() == 64);
	}
	peer_test::unpin(m, pinned);
}

TEST_CASE_TEMPLATE("freetype-unmapped vmalloc: module text is n order-0 unmapped pages at one rx alias", B, sim_direct_map,
		   linux_backend)
{
	auto m = make_machine<B>();
	freetype_unmapped_peer<B> ft(*m, {.use = freetype_use::vmalloc, .alias_prot = prot::rx});
	auto a = ft.alloc(3 * page_size, 1);
	REQUIRE(a.ok());
	for (pfn_t p : peer_test::alias_pfns(*m, a.value, 3)) {
		CHECK(ua_test::allocated_order(*m, p & ~pfn_t{pages_per_chunk - 1}).value == chunk_order);
		CHECK(m->backend.direct_map_state(p) == dm_state::invalid);
	}
	CHECK(m->backend.alias_prot(a.value) == prot::rx);
	CHECK(ft.stats().dm_changes == 2); /* the flip, and set_memory_rox(), which finds nothing mapped */
	CHECK(ft.free(a.value) == error::ok);
}

TEST_CASE_TEMPLATE("freetype-unmapped: bad input and bad frees are refused", B, sim_direct_map, linux_backend)
{
	auto m = make_machine<B>();
	freetype_unmapped_peer<B> ft(*m);
	CHECK(ft.alloc(0, 1).err == error::zero_size);
	CHECK(ft.alloc(10, 3).err == error::bad_alignment);
	CHECK(ft.alloc(10, 2 * page_size).err == error::bad_alignment);
	freetype_unmapped_peer<B> wx(*m, {.use = freetype_use::vmalloc, .alias_prot = prot::rw | prot::exec});
	CHECK(wx.alloc(10, 1).err == error::bad_flags);
	auto a = ft.alloc(2 * page_size, 1);
	REQUIRE(a.ok());
	const auto before = ft.stats();
	CHECK(ft.free(a.value + page_size) == error::interior_pointer);
	CHECK(ft.free(9) == error::foreign_pointer);
	CHECK(ft.stats().live_count == before.live_count);
	CHECK(ft.free(a.value) == error::ok);
	CHECK(ft.free(a.value) == error::foreign_pointer);
}

TEST_CASE("freetype-unmapped: a failing backend operation is unwound")
{
	using peer_test::flaky_sim;
	auto m = make_machine<flaky_sim>();
	const std::uint64_t free0 = m->nr_free_pages();
	{
		freetype_unmapped_peer<flaky_sim> ft(*m);
		flaky_sim::fail_dm = 0; /* the flip */
		CHECK(ft.alloc(page_size, 1).err == error::backend_failure);
		CHECK(m->nr_free_pages() == free0);
		flaky_sim::fail_map_alias = 0;
		CHECK(ft.alloc(page_size, 1).err == error::backend_failure);
		flaky_sim::reset();
		CHECK(m->backend.stats().aliases == 0);
		CHECK(ft.stats().live_count == 0);
		ft.drain();
	}
	CHECK(m->nr_free_pages() == free0);
	CHECK(peer_test::direct_map_all_rw(*m) == "");
}

TEST_CASE("freetype-unmapped: concurrent callers are serialised by the peer's lock")
{
	auto m = make_machine<sim_direct_map>();
	const std::uint64_t free0 = m->nr_free_pages();
	{
		freetype_unmapped_peer<sim_direct_map> p(*m);
		CHECK(peer_test::hammer(p, 4, 300, 5 * page_size, 1) == 0);
		CHECK(p.stats().live_count == 0);
		p.drain();
		CHECK(p.stats().pages_held == 0);
	}
	CHECK(m->nr_free_pages() == free0);
}
