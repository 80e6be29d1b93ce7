// SPDX-License-Identifier: MIT
/* Tests for bench/peers/naive.h over both backends. */
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "peer_fixture.h"
#include "peers/naive.h"

using namespace ua;
using namespace ua::peers;
using peer_test::make_machine;

TEST_CASE_TEMPLATE("naive: each allocation takes its own pages, changes each and flushes once", B, sim_direct_map,
		   linux_backend)
{
	auto m = make_machine<B>();
	const std::uint64_t free0 = m->pages.nr_free_pages();
	naive_peer<B> nv(*m);

	auto a = nv.alloc(3 * page_size - 100, 64);
	REQUIRE(a.ok());
	auto s = nv.stats();
	CHECK(s.live_count == 1);
	CHECK(s.pages_held == 3);
	CHECK(s.live_bytes == 3 * page_size);
	CHECK(s.requested_bytes == 3 * page_size - 100);
	CHECK(s.dm_changes == 1); /* a fresh machine gives consecutive order-0 pages: one run */
	CHECK(s.flushes == 1);
	CHECK(s.chunks == 1);
	CHECK(m->pages.nr_free_pages() == free0 - 3);
	const frame_range f = peer_test::frames_of(*m, a.value);
	CHECK(f.nr_pages == 3);
	CHECK(peer_test::count_state(*m, f, dm_state::invalid) == 3);
	CHECK(m->backend.alias_prot(a.value) == prot::rw);
	for (pfn_t p = f.pfn; p < f.end(); p++)
		CHECK(m->pages.allocated_order(p).value == 0u); /* one alloc_pages(0) per page */

	auto b = nv.alloc(1, 1);
	REQUIRE(b.ok());
	CHECK(nv.stats().flushes == 2);
	CHECK(nv.stats().pages_held == 4);

	CHECK(nv.free(a.value) == error::ok);
	CHECK(peer_test::count_state(*m, f, dm_state::rw) == 3);
	CHECK(nv.stats().flushes == 3);
	CHECK(nv.free(b.value) == error::ok);
	nv.drain();
	s = nv.stats();
	CHECK(s.pages_held == 0);
	CHECK(s.chunks == 0);
	CHECK(s.live_bytes == 0);
	CHECK(s.requested_bytes == 0);
	CHECK(m->pages.nr_free_pages() == free0);
	CHECK(peer_test::direct_map_all_rw(*m) == "");
	CHECK(m->backend.stats().aliases == 0);
}

TEST_CASE_TEMPLATE("naive: module-like configuration makes pages read-only and the alias rx", B, sim_direct_map,
		   linux_backend)
{
	auto m = make_machine<B>();
	naive_peer<B> nv(*m, {dm_action::ro, prot::rx});
	auto a = nv.alloc(2 * page_size, page_size);
	REQUIRE(a.ok());
	const frame_range f = peer_test::frames_of(*m, a.value);
	CHECK(peer_test::count_state(*m, f, dm_state::ro) == 2);
	CHECK(m->backend.alias_prot(a.value) == prot::rx);
	if constexpr (B::dereferenceable) {
		/* The alias is real memory: the frames read back through it. */
		const char payload[] = "module text";
		REQUIRE(m->backend.write_frames(f.pfn, 0, payload, sizeof payload) == 0);
		CHECK(std::string(reinterpret_cast<const char *>(a.value)) == payload);
	}
	CHECK(nv.free(a.value) == error::ok);
	CHECK(peer_test::count_state(*m, f, dm_state::rw) == 2);
}

TEST_CASE_TEMPLATE("naive: bad input and bad frees are refused and change nothing", B, sim_direct_map, linux_backend)
{
	auto m = make_machine<B>();
	const std::uint64_t free0 = m->pages.nr_free_pages();
	naive_peer<B> nv(*m);
	CHECK(nv.alloc(0, 1).err == error::zero_size);
	CHECK(nv.alloc(100, 3).err == error::bad_alignment);
	CHECK(nv.alloc(100, 2 * page_size).err == error::bad_alignment);
	CHECK(nv.alloc((m->nr_pages() + 1) * page_size, 1).err == error::too_large);
	auto a = nv.alloc(2 * page_size, 1);
	REQUIRE(a.ok());
	const auto before = nv.stats();
	CHECK(nv.free(a.value + 64) == error::interior_pointer);
	CHECK(nv.free(a.value + page_size) == error::interior_pointer);
	CHECK(nv.free(12345) == error::foreign_pointer);
	const auto after = nv.stats();
	CHECK(after.pages_held == before.pages_held);
	CHECK(after.dm_changes == before.dm_changes);
	CHECK(nv.free(a.value) == error::ok);
	CHECK(nv.free(a.value) == error::foreign_pointer); /* double free */
	CHECK(m->pages.nr_free_pages() == free0);
}

TEST_CASE("naive: on an aged machine allocations split the 2 MiB pages they land in")
{
	machine<sim_direct_map> m(std::uint64_t{4} << 18);
	/* Nearly full memory: about 1.5 free frames per 2 MiB pageblock. */
	REQUIRE(m.pages.age({.used_fraction = 0.997, .free_chunk_fraction = 0.0, .seed = 7}).ok());
	const std::uint64_t free0 = m.pages.nr_free_pages();
	naive_peer<sim_direct_map> nv(m);
	const std::uint64_t splits0 = m.backend.stats().direct_map_level2_splits;
	std::vector<std::uintptr_t> live;
	std::vector<pfn_t> pageblocks;
	constexpr int n = 200;
	for (int i = 0; i < n; i++) {
		auto a = nv.alloc(64, 1);
		REQUIRE(a.ok());
		live.push_back(a.value);
		pageblocks.push_back(peer_test::frames_of(m, a.value).pfn >> chunk_order);
	}
	const std::uint64_t splits = m.backend.stats().direct_map_level2_splits - splits0;
	std::sort(pageblocks.begin(), pageblocks.end());
	const auto distinct = std::uint64_t(std::unique(pageblocks.begin(), pageblocks.end()) - pageblocks.begin());
	/* Every 2 MiB page touched was split for it (the first is 4 KiB from boot: the ISA range and the 4 KiB head)... */
	const std::uint64_t boot_4k = std::uint64_t(std::count_if(pageblocks.begin(), pageblocks.begin() + std::ptrdiff_t(distinct),
								   [](pfn_t pb) { return pb < 1; }));
	CHECK(splits == distinct - boot_4k);
	CHECK(nv.stats().chunks == distinct);
	/* ... and with about two free frames per pageblock that is one split per two or three allocations. */
	CHECK(splits * 3 >= n);
	MESSAGE("aged 4 GiB machine: ", n, " one-page allocations split ", splits, " 2 MiB pages");
	for (std::uintptr_t a : live)
		CHECK(nv.free(a) == error::ok);
	CHECK(m.pages.nr_free_pages() == free0);
	CHECK(nv.stats().pages_held == 0);
}

TEST_CASE("naive: a failing backend operation is unwound")
{
	using peer_test::flaky_sim;
	auto m = make_machine<flaky_sim>();
	const std::uint64_t free0 = m->pages.nr_free_pages();
	naive_peer<flaky_sim> nv(*m);
	flaky_sim::fail_map_alias = 0;
	CHECK(nv.alloc(5 * page_size, 1).err == error::backend_failure);
	flaky_sim::fail_dm = 0;
	CHECK(nv.alloc(5 * page_size, 1).err == error::backend_failure);
	flaky_sim::fail_map_alias = flaky_sim::fail_dm = -1;
	CHECK(m->pages.nr_free_pages() == free0);
	CHECK(peer_test::direct_map_all_rw(*m) == "");
	CHECK(m->backend.stats().aliases == 0);
	CHECK(nv.stats().pages_held == 0);
	CHECK(nv.alloc(5 * page_size, 1).ok());
}

TEST_CASE("naive: concurrent callers are serialised by the peer's lock")
{
	auto m = make_machine<sim_direct_map>();
	const std::uint64_t free0 = m->pages.nr_free_pages();
	{
		naive_peer<sim_direct_map> p(*m);
		CHECK(peer_test::hammer(p, 4, 300, 3 * page_size, 1) == 0);
		CHECK(p.stats().live_count == 0);
		p.drain();
		CHECK(p.stats().pages_held == 0);
	}
	CHECK(m->pages.nr_free_pages() == free0);
}
