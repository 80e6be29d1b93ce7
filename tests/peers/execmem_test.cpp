// SPDX-License-Identifier: MIT
/* Tests for bench/peers/execmem.h over both backends. */
#include <doctest/doctest.h>

#include <vector>

#include "peer_fixture.h"
#include "peers/execmem.h"

using namespace ua;
using namespace ua::peers;
using peer_test::make_machine;

TEST_CASE_TEMPLATE("execmem: a 2 MiB chunk, trap-filled and out of the direct map, serves page-rounded requests", B,
		   sim_direct_map, linux_backend)
{
	auto m = make_machine<B>();
	const std::uint64_t free0 = m->pages.nr_free_pages();
	const std::uint64_t written0 = m->backend.stats().bytes_written;
	execmem_peer<B> em(*m);
	auto a = em.alloc(5000, 64);
	REQUIRE(a.ok());
	const frame_range f = peer_test::frames_of(*m, a.value);
	CHECK(f.nr_pages == pages_per_chunk);
	CHECK(m->pages.allocated_order(f.pfn).value == chunk_order);
	CHECK(peer_test::count_state(*m, f, dm_state::invalid) == pages_per_chunk); /* 6.13 */
	CHECK(m->backend.alias_prot(a.value) == prot::rx);
	CHECK(m->backend.stats().bytes_written - written0 == chunk_size);
	if constexpr (B::dereferenceable)
		CHECK(reinterpret_cast<const unsigned char *>(a.value)[100] == trap_byte);
	auto s = em.stats();
	CHECK(s.live_bytes == 2 * page_size);
	CHECK(s.requested_bytes == 5000);
	CHECK(s.pages_held == pages_per_chunk);
	CHECK(s.chunks == 1);
	CHECK(s.dm_changes == 1);
	CHECK(s.flushes == 1);
	auto fr = em.free_ranges();
	REQUIRE(fr.size() == 1);
	CHECK(fr.begin()->first == a.value + 2 * page_size);

	/* Freed ranges are trap-filled, merged with free neighbours; a wholly free chunk goes at once. */
	auto b = em.alloc(page_size, 1);
	REQUIRE(b.ok());
	CHECK(b.value == a.value + 2 * page_size);
	const std::uint64_t w1 = m->backend.stats().bytes_written;
	CHECK(em.free(a.value) == error::ok);
	CHECK(m->backend.stats().bytes_written - w1 == 2 * page_size);
	fr = em.free_ranges();
	REQUIRE(fr.size() == 2);
	CHECK(fr.at(a.value) == 2 * page_size);
	CHECK(em.free(b.value) == error::ok);
	CHECK(em.free_ranges().empty());
	s = em.stats();
	CHECK(s.pages_held == 0);
	CHECK(s.chunks == 0);
	CHECK(s.dm_changes == 2);
	em.drain();
	CHECK(m->pages.nr_free_pages() == free0);
	CHECK(peer_test::direct_map_all_rw(*m) == "");
	CHECK(m->backend.stats().aliases == 0);
}

TEST_CASE_TEMPLATE("execmem: address-ordered first fit, not best fit", B, sim_direct_map, linux_backend)
{
	auto m = make_machine<B>();
	execmem_peer<B> em(*m);
	/* [h1: 8 pages][x][h2: 3 pages][y][rest] */
	auto h1 = em.alloc(8 * page_size, 1), x = em.alloc(page_size, 1), h2 = em.alloc(3 * page_size, 1),
	     y = em.alloc(page_size, 1);
	REQUIRE((h1.ok() && x.ok() && h2.ok() && y.ok()));
	CHECK(em.free(h1.value) == error::ok);
	CHECK(em.free(h2.value) == error::ok);
	auto c = em.alloc(3 * page_size, 1); /* best fit: h2; first fit: h1 */
	REQUIRE(c.ok());
	CHECK(c.value == h1.value);
	auto d = em.alloc(4 * page_size, 1); /* h1 has 5 pages left: still first */
	REQUIRE(d.ok());
	CHECK(d.value == h1.value + 3 * page_size);
	auto e = em.alloc(2 * page_size, 1); /* h1's last page is too small: h2 */
	REQUIRE(e.ok());
	CHECK(e.value == h2.value);
	CHECK(em.stats().pages_held == pages_per_chunk);
}

TEST_CASE_TEMPLATE("execmem: free ranges never merge across separately obtained chunks", B, sim_direct_map, linux_backend)
{
	auto m = make_machine<B>();
	const std::uint64_t free0 = m->pages.nr_free_pages();
	{
		execmem_peer<B> em(*m);
		auto a1 = em.alloc(chunk_size - page_size, 1), a2 = em.alloc(page_size, 1); /* chunk 1, full */
		auto b1 = em.alloc(page_size, 1), b2 = em.alloc(page_size, 1);             /* chunk 2 */
		REQUIRE((a1.ok() && a2.ok() && b1.ok() && b2.ok()));
		CHECK(em.stats().chunks == 2);
		CHECK(em.free(a2.value) == error::ok);
		CHECK(em.free(b1.value) == error::ok);
		const auto fr = em.free_ranges();
		/* Whether or not the aliases are adjacent, each range stays inside its chunk. */
		CHECK(fr.at(a2.value) == page_size);
		CHECK(fr.at(b1.value) == page_size);
		CHECK(em.stats().pages_held == 2 * pages_per_chunk);
		/* A request above 2 MiB takes a chunk of its own, rounded to a power-of-two block. */
		auto big = em.alloc(chunk_size + page_size, 1);
		REQUIRE(big.ok());
		CHECK(peer_test::frames_of(*m, big.value).nr_pages == 2 * pages_per_chunk);
		CHECK(em.free(big.value) == error::ok);
		CHECK(em.stats().pages_held == 2 * pages_per_chunk);
		CHECK(em.free(a1.value) == error::ok);
		CHECK(em.stats().chunks == 1);
		CHECK(em.free(b2.value) == error::ok);
		CHECK(em.stats().pages_held == 0);
	}
	CHECK(m->pages.nr_free_pages() == free0);
	CHECK(peer_test::direct_map_all_rw(*m) == "");
}

TEST_CASE_TEMPLATE("execmem: the 6.16 configuration leaves the direct map read-only", B, sim_direct_map, linux_backend)
{
	auto m = make_machine<B>();
	execmem_peer<B> em(*m, {dm_action::ro});
	auto a = em.alloc(page_size, page_size);
	REQUIRE(a.ok());
	const frame_range f = peer_test::frames_of(*m, a.value);
	CHECK(peer_test::count_state(*m, f, dm_state::ro) == pages_per_chunk);
	CHECK(em.free(a.value) == error::ok);
	CHECK(peer_test::count_state(*m, f, dm_state::rw) == pages_per_chunk);
}

TEST_CASE_TEMPLATE("execmem: bad input and bad frees are refused", B, sim_direct_map, linux_backend)
{
	auto m = make_machine<B>();
	execmem_peer<B> em(*m);
	CHECK(em.alloc(0, 1).err == error::zero_size);
	CHECK(em.alloc(10, 12).err == error::bad_alignment);
	CHECK(em.alloc(10, 2 * page_size).err == error::bad_alignment);
	CHECK(em.alloc((m->nr_pages() + 1) * page_size, 1).err == error::too_large);
	auto a = em.alloc(2 * page_size, 1);
	auto b = em.alloc(page_size, 1);
	REQUIRE((a.ok() && b.ok()));
	const auto before = em.stats();
	CHECK(em.free(a.value + page_size) == error::interior_pointer);
	CHECK(em.free(a.value + 4 * page_size) == error::not_live);
	CHECK(em.free(7) == error::foreign_pointer);
	CHECK(em.stats().live_bytes == before.live_bytes);
	CHECK(em.free(a.value) == error::ok);
	CHECK(em.free(a.value) == error::not_live); /* double free: now a free range */
}

TEST_CASE("execmem: a failing backend operation is unwound")
{
	using peer_test::flaky_sim;
	auto m = make_machine<flaky_sim>();
	const std::uint64_t free0 = m->pages.nr_free_pages();
	execmem_peer<flaky_sim> em(*m);
	flaky_sim::fail_map_alias = 0;
	CHECK(em.alloc(page_size, 1).err == error::backend_failure);
	flaky_sim::fail_dm = 0;
	CHECK(em.alloc(page_size, 1).err == error::backend_failure);
	flaky_sim::fail_map_alias = flaky_sim::fail_dm = -1;
	CHECK(em.stats().pages_held == 0);
	CHECK(m->pages.nr_free_pages() == free0);
	CHECK(peer_test::direct_map_all_rw(*m) == "");
	CHECK(m->backend.stats().aliases == 0);
	CHECK(em.alloc(page_size, 1).ok());
}

TEST_CASE("execmem: concurrent callers are serialised by the peer's lock")
{
	auto m = make_machine<sim_direct_map>();
	const std::uint64_t free0 = m->pages.nr_free_pages();
	{
		execmem_peer<sim_direct_map> p(*m);
		CHECK(peer_test::hammer(p, 4, 300, 20000, 1) == 0);
		CHECK(p.stats().live_count == 0);
		p.drain();
		CHECK(p.stats().pages_held == 0);
	}
	CHECK(m->pages.nr_free_pages() == free0);
}
