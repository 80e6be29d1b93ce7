// SPDX-License-Identifier: MIT
/*
 * Tests for bench/peers/set_memory.h and vm_area.h: set_memory_*() on a
 * vmalloc area (the backend's alias processing: page by page, or per leaf of
 * a huge area), vm_reset_perms(), and vmalloc's placement and fallback, on
 * hand-worked cases.
 */
#include <doctest/doctest.h>

#include <vector>

#include "peer_fixture.h"
#include "peers/set_memory.h"

using namespace ua;
using namespace ua::peers;

namespace {

/* A 2 GiB machine whose second GiB is 1 GiB-mapped at boot; frames there only. */
constexpr pfn_t second_gib = pfn_t{1} << 18;

}  // namespace

TEST_CASE("set_memory: on a 4 KiB-mapped area each frame is its own alias step, even 512 frames filling one 2 MiB page")
{
	machine<sim_direct_map> m(std::uint64_t{2} << 18);
	std::vector<pfn_t> keep;
	for (pfn_t p = second_gib; p < second_gib + pages_per_chunk; p++)
		keep.push_back(p);
	const auto pinned = peer_test::pin_all_but(m, keep);
	/*
	 * Back to the buddy lists, merged: on the per-CPU lists the kept frames
	 * would come back last-freed first (LIFO), not in address order.
	 */
	m.with_lock([](page_allocator &pa, auto &) { pa.drain_all_pages(); });
	call_counts cnt;
	vm_area a;
	{
		ua::mutex_guard g(m.lock);
		REQUIRE(vmalloc_locked(m, pages_per_chunk, vmalloc_opts{}, a) == error::ok);
	}
	REQUIRE(a.runs.size() == 1);
	CHECK(a.runs[0] == (frame_range{second_gib, pages_per_chunk}));
	CHECK(a.page_order == 0u);
	const auto before = m.backend.stats();
	{
		ua::mutex_guard g(m.lock);
		REQUIRE(set_memory_locked(m, a, 0, pages_per_chunk, cpa_op::rox, cnt) == error::ok);
	}
	CHECK(cnt.dm_changes == 1);
	CHECK(cnt.flushes == 1);
	CHECK(m.backend.stats().direct_map_level3_splits - before.direct_map_level3_splits == 1);
	CHECK(m.backend.stats().direct_map_level2_splits - before.direct_map_level2_splits == 1); /* the first frame splits it */
	CHECK(peer_test::count_state(m, a.runs[0], dm_state::ro) == pages_per_chunk);
	CHECK(m.backend.alias_prot(a.addr) == prot::rx);
	{
		ua::mutex_guard g(m.lock);
		/* set_memory_nx never reaches the direct map; rw after it does (force_rw). */
		REQUIRE(set_memory_rw_nx_locked(m, a, 3, 2, cnt) == error::ok);
		CHECK(cnt.dm_changes == 2);
		CHECK(cnt.flushes == 3);
		CHECK(m.backend.direct_map_state(second_gib + 3) == dm_state::rw);
		CHECK(m.backend.direct_map_state(second_gib + 5) == dm_state::ro);
		CHECK(m.backend.alias_prot(a.addr + 3 * page_size) == prot::rw);
		/* rw on an executable page would be W+X: refused, nothing changed. */
		CHECK(set_memory_locked(m, a, 5, 1, cpa_op::rw, cnt) == error::backend_failure);
		CHECK(m.backend.direct_map_state(second_gib + 5) == dm_state::ro);
		REQUIRE(set_memory_locked(m, a, 3, 2, cpa_op::rox, cnt) == error::ok);
		/* vm_reset_perms(): invalid then default, page by page, one flush. */
		const std::uint64_t c0 = cnt.dm_changes;
		REQUIRE(vm_reset_perms_locked(m, a, cnt) == error::ok);
		CHECK(cnt.dm_changes - c0 == 2 * pages_per_chunk);
		REQUIRE(vfree_locked(m, a, false, cnt) == error::ok);
	}
	CHECK(peer_test::direct_map_all_rw(m) == "");
	CHECK(m.backend.stats().direct_map_level2_collapses == before.direct_map_level2_collapses); /* restores never merge */
	peer_test::unpin(m, pinned);
}

TEST_CASE("set_memory: a huge (order-9) area changes whole leaves in place; a part of a leaf goes frame by frame")
{
	machine<sim_direct_map> m(std::uint64_t{2} << 18);
	std::vector<pfn_t> keep;
	for (pfn_t p = second_gib; p < second_gib + 2 * pages_per_chunk; p++)
		keep.push_back(p);
	const auto pinned = peer_test::pin_all_but(m, keep);
	call_counts cnt;
	vm_area a;
	{
		ua::mutex_guard g(m.lock);
		REQUIRE(vmalloc_locked(m, 2 * pages_per_chunk, vmalloc_opts{.huge = true}, a) == error::ok);
		CHECK(a.page_order == chunk_order);
		CHECK(m.pages.allocated_order(second_gib).value == chunk_order);
		const auto before = m.backend.stats();
		REQUIRE(set_memory_locked(m, a, 0, 2 * pages_per_chunk, cpa_op::rox, cnt) == error::ok);
		CHECK(m.backend.direct_map_level(second_gib) == map_level::pmd_2m); /* whole leaves: in place */
		CHECK(m.backend.stats().direct_map_level2_splits == before.direct_map_level2_splits);
		CHECK(m.backend.stats().direct_map_level3_splits - before.direct_map_level3_splits == 1);
		/* make_temp_rw of 3 pages of the second leaf: the leaf splits, the alias goes page by page. */
		REQUIRE(set_memory_rw_nx_locked(m, a, pages_per_chunk + 10, 3, cnt) == error::ok);
		CHECK(m.backend.stats().direct_map_level2_splits - before.direct_map_level2_splits == 1);
		CHECK(m.backend.direct_map_state(second_gib + pages_per_chunk + 11) == dm_state::rw);
		REQUIRE(set_memory_locked(m, a, pages_per_chunk + 10, 3, cpa_op::rox, cnt) == error::ok);
		/* vm_reset_perms() of a huge area goes page by page: the first leaf splits now. */
		REQUIRE(vm_reset_perms_locked(m, a, cnt) == error::ok);
		CHECK(m.backend.stats().direct_map_level2_splits - before.direct_map_level2_splits == 2);
		REQUIRE(vfree_locked(m, a, false, cnt) == error::ok);
		CHECK(m.pages.nr_free_pages() == 2 * pages_per_chunk);
	}
	peer_test::unpin(m, pinned);
}

TEST_CASE("vm_area: vmalloc falls back to order-0 pages when an order-9 page is missing, and maps one alias")
{
	machine<sim_direct_map> m(std::uint64_t{1} << 18);
	std::vector<pfn_t> keep;
	for (pfn_t k = 0; k < 8; k++)
		for (pfn_t i = 0; i < 64; i++)
			keep.push_back((k + 100) * pages_per_chunk + 64 * k + i); /* 8 runs of 64, no free 2 MiB */
	const auto pinned = peer_test::pin_all_but(m, keep);
	vm_area a;
	{
		ua::mutex_guard g(m.lock);
		REQUIRE(vmalloc_locked(m, pages_per_chunk, vmalloc_opts{.huge = true, .fill = 0xcc}, a) == error::ok);
	}
	CHECK(a.page_order == 0u);
	CHECK(a.runs.size() == 8);
	CHECK(m.backend.stats().aliases == 1);
	CHECK(m.backend.alias_nr_runs(a.addr) == 8);
	std::vector<pfn_t> pfns = peer_test::alias_pfns(m, a.addr, pages_per_chunk);
	std::sort(pfns.begin(), pfns.end());
	CHECK(pfns == keep);
	call_counts cnt;
	{
		ua::mutex_guard g(m.lock);
		REQUIRE(vfree_locked(m, a, false, cnt) == error::ok);
	}
	CHECK(m.nr_free_pages() == pages_per_chunk);
	peer_test::unpin(m, pinned);
}

TEST_CASE("set_memory: a failing call changes nothing")
{
	using peer_test::flaky_sim;
	machine<flaky_sim> m(std::uint64_t{1} << 18);
	vm_area a;
	call_counts cnt;
	ua::mutex_guard g(m.lock);
	REQUIRE(vmalloc_locked(m, 8, vmalloc_opts{}, a) == error::ok);
	flaky_sim::fail_cpa = 0;
	CHECK(set_memory_locked(m, a, 0, 8, cpa_op::ro, cnt) == error::backend_failure);
	flaky_sim::reset();
	CHECK(cnt.dm_changes == 0);
	for (const frame_range &r : a.runs)
		CHECK(peer_test::count_state(m, r, dm_state::rw) == r.nr_pages);
	REQUIRE(vfree_locked(m, a, false, cnt) == error::ok);
}
