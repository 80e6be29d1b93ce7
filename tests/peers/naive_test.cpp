// SPDX-License-Identifier: MIT
/* Tests for bench/peers/naive.h over both backends, and its releases on hand-worked cases. */
#include <doctest/doctest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "peer_fixture.h"
#include "peers/naive.h"
#include <support/machine_lock.h>

using namespace ua;
using namespace ua::peers;
using peer_test::make_machine;

TEST_CASE_TEMPLATE("naive secretmem: each page its own order-0 page, invalid and flushed one by one", B, sim_direct_map,
		   linux_backend)
{
	auto m = make_machine<B>();
	const std::uint64_t free0 = m->nr_free_pages();
	naive_peer<B> nv(*m);

	auto a = nv.alloc(3 * page_size - 100, 64);
	REQUIRE(a.ok());
	auto s = nv.stats();
	CHECK(s.live_count == 1);
	CHECK(s.pages_held == 3);
	CHECK(s.live_bytes == 3 * page_size);
	CHECK(s.requested_bytes == 3 * page_size - 100);
	CHECK(s.dm_changes == 3); /* secretmem_fault(): one call per page */
	CHECK(s.flushes == 3);    /* ... and one flush per page */
	CHECK(m->nr_free_pages() == free0 - 3);
	const std::vector<pfn_t> pfns = peer_test::alias_pfns(*m, a.value, 3);
	for (pfn_t p : pfns) {
		CHECK(m->backend.direct_map_state(p) == dm_state::invalid);
		CHECK(ua_test::allocated_order(*m, p).value == 0u);
	}
	CHECK(m->backend.alias_prot(a.value) == prot::rw);

	auto b = nv.alloc(1, 1);
	REQUIRE(b.ok());
	CHECK(nv.stats().flushes == 4);
	CHECK(nv.stats().pages_held == 4);

	/* secretmem_free_folio(): default page by page, no flush. */
	CHECK(nv.free(a.value) == error::ok);
	for (pfn_t p : pfns)
		CHECK(m->backend.direct_map_state(p) == dm_state::rw);
	CHECK(nv.stats().flushes == 4);
	CHECK(nv.stats().dm_changes == 4 + 3);
	CHECK(nv.free(b.value) == error::ok);
	nv.drain();
	s = nv.stats();
	CHECK(s.pages_held == 0);
	CHECK(s.chunks == 0);
	CHECK(s.live_bytes == 0);
	CHECK(s.requested_bytes == 0);
	CHECK(m->nr_free_pages() == free0);
	CHECK(peer_test::direct_map_all_rw(*m) == "");
	CHECK(m->backend.stats().aliases == 0);
}

TEST_CASE_TEMPLATE("naive vmalloc_text: set_memory_rox() makes each page read-only, the alias rx; vfree resets", B,
		   sim_direct_map, linux_backend)
{
	auto m = make_machine<B>();
	naive_peer<B> nv(*m, {.use = naive_use::vmalloc_text});
	auto a = nv.alloc(2 * page_size, page_size);
	REQUIRE(a.ok());
	const std::vector<pfn_t> pfns = peer_test::alias_pfns(*m, a.value, 2);
	for (pfn_t p : pfns)
		CHECK(m->backend.direct_map_state(p) == dm_state::ro);
	CHECK(m->backend.alias_prot(a.value) == prot::rx);
	CHECK(nv.stats().dm_changes == 1); /* one set_memory_rox() call */
	CHECK(nv.stats().flushes == 1);
	if constexpr (B::dereferenceable) {
		/* The alias is real memory: the frames read back through it. */
		const char payload[] = "module text";
		REQUIRE(m->backend.write_frames(pfns[0], 0, payload, sizeof payload) == 0);
		CHECK(std::string(reinterpret_cast<const char *>(a.value)) == payload);
	}
	CHECK(nv.free(a.value) == error::ok);
	for (pfn_t p : pfns)
		CHECK(m->backend.direct_map_state(p) == dm_state::rw);
	CHECK(nv.stats().dm_changes == 1 + 2 * 2); /* vm_reset_perms(): invalid, then default, page by page */
	CHECK(nv.stats().flushes == 2);
}

TEST_CASE("naive vmalloc_text: before 6.2 set_memory_ro() and set_memory_x() are two CPA calls (d48567c9a0d1)")
{
	auto m = make_machine<sim_direct_map>();
	naive_peer<sim_direct_map> n517(*m, {.use = naive_use::vmalloc_text, .release = v5_17});
	naive_peer<sim_direct_map> n62(*m, {.use = naive_use::vmalloc_text, .release = v6_2});
	REQUIRE(n517.alloc(page_size, 1).ok());
	REQUIRE(n62.alloc(page_size, 1).ok());
	CHECK(n517.stats().flushes == 2);
	CHECK(n62.stats().flushes == 1);
	CHECK(n517.stats().dm_changes == n62.stats().dm_changes); /* set_memory_x does not reach the direct map */
	CHECK(release_at(naive_peer<sim_direct_map>::releases, v6_1) == v5_17);
	CHECK(release_at(naive_peer<sim_direct_map>::releases, v6_6) == v6_2);
}

TEST_CASE("naive: a 5.17 sockex1 instance's three JIT images split the 2 MiB pages of their frames")
{
	/* bpf_jit_binary_alloc(): round_up(proglen + 4 + 128, PAGE_SIZE), so each image is one page. */
	machine<sim_direct_map> m(std::uint64_t{2} << 18);
	const std::vector<pfn_t> keep = {(600u << chunk_order) + 3, (700u << chunk_order) + 9, (700u << chunk_order) + 10};
	const std::vector<pfn_t> pinned = peer_test::pin_all_but(m, keep);
	const auto before = m.backend.stats();
	{
		naive_peer<sim_direct_map> nv(m, {.use = naive_use::vmalloc_text, .release = v5_17});
		std::vector<std::uintptr_t> images;
		for (int i = 0; i < 3; i++) {
			auto a = nv.alloc(233 + 4 + 128, 1);
			REQUIRE(a.ok());
			images.push_back(a.value);
		}
		CHECK(nv.stats().pages_held == 3);
		/* Frames in two distinct 2 MiB pages of one 1 GiB page: two splits at 2 MiB, one at 1 GiB. */
		CHECK(m.backend.stats().direct_map_level2_splits - before.direct_map_level2_splits == 2);
		CHECK(m.backend.stats().direct_map_level3_splits - before.direct_map_level3_splits == 1);
		/* Two of them are libbpf's probes, freed at once: their pages stay split. */
		CHECK(nv.free(images[0]) == error::ok);
		CHECK(nv.free(images[1]) == error::ok);
		CHECK(m.backend.stats().direct_map_level2_splits - before.direct_map_level2_splits == 2);
		CHECK(m.backend.stats().direct_map_level2_collapses == before.direct_map_level2_collapses);
		CHECK(nv.free(images[2]) == error::ok);
	}
	peer_test::unpin(m, pinned);
}

TEST_CASE_TEMPLATE("naive: bad input and bad frees are refused and change nothing", B, sim_direct_map, linux_backend)
{
	auto m = make_machine<B>();
	const std::uint64_t free0 = m->nr_free_pages();
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
	CHECK(m->nr_free_pages() == free0);
}

TEST_CASE("naive: on an aged machine its one-page allocations split each unmovable 2 MiB page they land in")
{
	machine<sim_direct_map> m(std::uint64_t{4} << 18);
	/* Nearly full memory: about 1.5 free frames per 2 MiB pageblock. */
	REQUIRE(m.with_lock([](page_allocator &pa, auto &) {
		return pa.age({.used_fraction = 0.997, .free_chunk_fraction = 0.0, .seed = 7}).ok();
	}));
	const std::uint64_t free0 = m.nr_free_pages();
	machine<sim_direct_map> shadow(m.nr_pages()); /* the boot direct map, untouched */
	naive_peer<sim_direct_map> nv(m, {.use = naive_use::vmalloc_text});
	const auto before = m.backend.stats();
	std::vector<std::uintptr_t> live;
	std::vector<pfn_t> pfns;
	constexpr int n = 200;
	for (int i = 0; i < n; i++) {
		auto a = nv.alloc(64, 1);
		REQUIRE(a.ok());
		live.push_back(a.value);
		pfns.push_back(peer_test::alias_pfns(m, a.value, 1)[0]);
	}
	const auto expect = peer_test::splits_if_changed_one_by_one(shadow, pfns);
	CHECK(m.backend.stats().direct_map_level2_splits - before.direct_map_level2_splits == expect.s2m);
	CHECK(m.backend.stats().direct_map_level3_splits - before.direct_map_level3_splits == expect.s1g);
	std::set<pfn_t> regions;
	for (pfn_t p : pfns)
		regions.insert(p >> chunk_order);
	CHECK(nv.stats().chunks == regions.size());
	/*
	 * Grouping by mobility: vmalloc's GFP_KERNEL pages come from unmovable
	 * pageblocks (those ageing's slab claimed, or ones claimed now), not
	 * from the movable page cache's, so each 2 MiB page they land in is
	 * split once and they share few of them.
	 */
	{
		machine<sim_direct_map>::guard g(m.lock);
		for (pfn_t p : pfns)
			CHECK(m.pages.pageblock_migratetype(p) != migrate_movable);
	}
	CHECK(expect.s2m <= regions.size());
	CHECK(expect.s2m >= 1);
	MESSAGE("aged 4 GiB machine: ", n, " one-page allocations split ", expect.s2m, " 2 MiB pages");
	for (std::uintptr_t a : live)
		CHECK(nv.free(a) == error::ok);
	CHECK(m.nr_free_pages() == free0);
	CHECK(nv.stats().pages_held == 0);
}

TEST_CASE("naive: a failing backend operation is unwound")
{
	using peer_test::flaky_sim;
	auto m = make_machine<flaky_sim>();
	const std::uint64_t free0 = m->nr_free_pages();
	for (naive_use use : {naive_use::secretmem, naive_use::vmalloc_text}) {
		naive_peer<flaky_sim> nv(*m, {.use = use});
		flaky_sim::fail_map_alias = 0;
		CHECK(nv.alloc(5 * page_size, 1).err == error::backend_failure);
		const bool text = use == naive_use::vmalloc_text;
		(text ? flaky_sim::fail_cpa : flaky_sim::fail_dm) = 0; /* set_memory_rox(), or the first page */
		CHECK(nv.alloc(5 * page_size, 1).err == error::backend_failure);
		(text ? flaky_sim::fail_cpa : flaky_sim::fail_dm) = text ? 0 : 3; /* the fourth page */
		CHECK(nv.alloc(5 * page_size, 1).err == error::backend_failure);
		flaky_sim::reset();
		CHECK(m->nr_free_pages() == free0);
		CHECK(peer_test::direct_map_all_rw(*m) == "");
		CHECK(m->backend.stats().aliases == 0);
		CHECK(nv.stats().pages_held == 0);
		auto a = nv.alloc(5 * page_size, 1);
		REQUIRE(a.ok());
		CHECK(nv.free(a.value) == error::ok);
	}
}

TEST_CASE("naive: concurrent callers are serialised by the peer's lock")
{
	auto m = make_machine<sim_direct_map>();
	const std::uint64_t free0 = m->nr_free_pages();
	{
		naive_peer<sim_direct_map> p(*m);
		CHECK(peer_test::hammer(p, 4, 300, 3 * page_size, 1) == 0);
		CHECK(p.stats().live_count == 0);
		p.drain();
		CHECK(p.stats().pages_held == 0);
	}
	CHECK(m->nr_free_pages() == free0);
}
