// SPDX-License-Identifier: MIT
/* Tests for bench/peers/guest_memfd.h over both backends, on hand-worked cases. */
#include <doctest/doctest.h>

#include <vector>

#include "peer_fixture.h"
#include "peers/guest_memfd.h"
#include <support/machine_lock.h>

using namespace ua;
using namespace ua::peers;
using peer_test::make_machine;

TEST_CASE_TEMPLATE("guest-memfd 4 KiB folios: each folio zapped with its own flush, restored without one", B,
		   sim_direct_map, linux_backend)
{
	auto m = make_machine<B>();
	const std::uint64_t free0 = m->nr_free_pages();
	guest_memfd_peer<B> gm(*m);
	auto a = gm.alloc(5 * 1024, 1); /* two 4 KiB folios */
	REQUIRE(a.ok());
	const std::vector<pfn_t> pfns = peer_test::alias_pfns(*m, a.value, 2);
	for (pfn_t p : pfns) {
		CHECK(ua_test::allocated_order(*m, p).value == 0u);
		CHECK(m->backend.direct_map_state(p) == dm_state::invalid);
	}
	CHECK(m->backend.alias_prot(a.value) == prot::rw);
	auto s = gm.stats();
	CHECK(s.dm_changes == 2); /* folio_zap_direct_map() per folio */
	CHECK(s.flushes == 2);    /* with its flush on x86 */
	CHECK(s.pages_held == 2);
	CHECK(s.live_bytes == 2 * page_size);
	CHECK(gm.free(a.value) == error::ok);
	for (pfn_t p : pfns)
		CHECK(m->backend.direct_map_state(p) == dm_state::rw);
	CHECK(gm.stats().dm_changes == 4); /* folio_restore_direct_map() per folio */
	CHECK(gm.stats().flushes == 2);    /* no flush on restore */
	CHECK(m->nr_free_pages() == free0);
}

TEST_CASE("guest-memfd: a 4 KiB folio splits its 2 MiB direct-map page; an aligned 2 MiB folio changes it in place")
{
	machine<sim_direct_map> m(std::uint64_t{2} << 18);
	/* The second GiB is mapped with one 1 GiB page at boot: take frames from there only. */
	std::vector<pfn_t> keep;
	for (pfn_t p = pfn_t{600} << chunk_order; p < (pfn_t{601} << chunk_order); p++)
		keep.push_back(p); /* one whole free pageblock */
	keep.push_back((pfn_t{700} << chunk_order) + 3);
	const std::vector<pfn_t> pinned = peer_test::pin_all_but(m, keep);
	const auto before = m.backend.stats();
	{
		guest_memfd_peer<sim_direct_map> huge(m, {.folio_order = chunk_order});
		auto h = huge.alloc(chunk_size, chunk_size);
		REQUIRE(h.ok());
		CHECK(peer_test::alias_pfns(m, h.value, 1)[0] == pfn_t{600} << chunk_order);
		CHECK(m.backend.stats().direct_map_level2_splits == before.direct_map_level2_splits); /* whole and aligned: in place */
		CHECK(m.backend.stats().direct_map_level3_splits - before.direct_map_level3_splits == 1);
		guest_memfd_peer<sim_direct_map> small(m);
		auto s = small.alloc(page_size, 1);
		REQUIRE(s.ok());
		CHECK(peer_test::alias_pfns(m, s.value, 1)[0] == (pfn_t{700} << chunk_order) + 3);
		CHECK(m.backend.stats().direct_map_level2_splits - before.direct_map_level2_splits == 1);
		CHECK(huge.free(h.value) == error::ok);
		CHECK(small.free(s.value) == error::ok);
		/* Restores never merge. */
		CHECK(m.backend.stats().direct_map_level2_splits - before.direct_map_level2_splits == 1);
		CHECK(m.backend.stats().direct_map_level2_collapses == before.direct_map_level2_collapses);
	}
	peer_test::unpin(m, pinned);
}

TEST_CASE_TEMPLATE("guest-memfd: bad input and bad frees are refused", B, sim_direct_map, linux_backend)
{
	auto m = make_machine<B>();
	guest_memfd_peer<B> gm(*m);
	CHECK(gm.alloc(0, 1).err == error::zero_size);
	CHECK(gm.alloc(10, 3).err == error::bad_alignment);
	CHECK(gm.alloc(10, 2 * page_size).err == error::bad_alignment);
	guest_memfd_peer<B> odd(*m, {.folio_order = 4});
	CHECK(odd.alloc(10, 1).err == error::bad_flags);
	auto a = gm.alloc(2 * page_size, 1);
	REQUIRE(a.ok());
	const auto before = gm.stats();
	CHECK(gm.free(a.value + page_size) == error::interior_pointer);
	CHECK(gm.free(5) == error::foreign_pointer);
	CHECK(gm.stats().dm_changes == before.dm_changes);
	CHECK(gm.free(a.value) == error::ok);
	CHECK(gm.free(a.value) == error::foreign_pointer);
}

TEST_CASE("guest-memfd: a failing backend operation is unwound")
{
	using peer_test::flaky_sim;
	auto m = make_machine<flaky_sim>();
	const std::uint64_t free0 = m->nr_free_pages();
	guest_memfd_peer<flaky_sim> gm(*m);
	flaky_sim::fail_dm = 2; /* the third folio's zap */
	CHECK(gm.alloc(4 * page_size, 1).err == error::backend_failure);
	flaky_sim::fail_map_alias = 0;
	CHECK(gm.alloc(4 * page_size, 1).err == error::backend_failure);
	flaky_sim::reset();
	CHECK(m->nr_free_pages() == free0);
	CHECK(peer_test::direct_map_all_rw(*m) == "");
	CHECK(m->backend.stats().aliases == 0);
	CHECK(gm.stats().pages_held == 0);
}

TEST_CASE("guest-memfd: concurrent callers are serialised by the peer's lock")
{
	auto m = make_machine<sim_direct_map>();
	const std::uint64_t free0 = m->nr_free_pages();
	{
		guest_memfd_peer<sim_direct_map> p(*m);
		CHECK(peer_test::hammer(p, 4, 300, 5 * page_size, 1) == 0);
		CHECK(p.stats().live_count == 0);
	}
	CHECK(m->nr_free_pages() == free0);
}
