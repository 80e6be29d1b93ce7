// SPDX-License-Identifier: MIT
/* Tests for bench/peers/execmem.h over both backends, and its kernel releases on hand-worked cases. */
#include <doctest/doctest.h>

#include <vector>

#include "peer_fixture.h"
#include "peers/execmem.h"
#include <support/machine_lock.h>

using namespace ua;
using namespace ua::peers;
using peer_test::make_machine;

namespace {

/* Whether the direct map of a fresh machine maps pfn with a large page (a 4 KiB change there splits it). */
bool boot_large(std::uint64_t nr_pages, pfn_t pfn)
{
	machine<sim_direct_map> shadow(nr_pages);
	return shadow.backend.direct_map_level(pfn) != map_level::pte_4k;
}
bool boot_1g(std::uint64_t nr_pages, pfn_t pfn)
{
	machine<sim_direct_map> shadow(nr_pages);
	return shadow.backend.direct_map_level(pfn) == map_level::pud_1g;
}

/* 2 GiB with only frame 7 of each 2 MiB page of the second GiB free: no order-9 block anywhere. */
std::vector<pfn_t> scattered_frames(std::size_t n)
{
	std::vector<pfn_t> keep;
	for (pfn_t k = 512; k < 512 + n; k++)
		keep.push_back(k * pages_per_chunk + 7);
	return keep;
}

}  // namespace

TEST_CASE_TEMPLATE("execmem 6.18: an order-9 chunk, set_memory_rox'd in place, serves page-rounded module text", B,
		   sim_direct_map, linux_backend)
{
	auto m = make_machine<B>();
	const std::uint64_t free0 = m->nr_free_pages();
	const std::uint64_t written0 = m->backend.stats().bytes_written;
	const auto before = m->backend.stats();
	execmem_peer<B> em(*m);
	auto a = em.alloc(5000, 64);
	REQUIRE(a.ok());
	const frame_range f = peer_test::frames_of(*m, a.value);
	CHECK(f.nr_pages == pages_per_chunk);
	CHECK(ua_test::allocated_order(*m, f.pfn).value == chunk_order); /* VM_ALLOW_HUGE_VMAP */
	CHECK(peer_test::count_state(*m, f, dm_state::ro) == pages_per_chunk); /* 925f42645118: in the direct map, ro */
	CHECK(m->backend.alias_prot(a.value) == prot::rx);
	CHECK(m->backend.stats().bytes_written - written0 == chunk_size);
	if constexpr (B::dereferenceable)
		CHECK(reinterpret_cast<const unsigned char *>(a.value)[100] == trap_byte);
	auto s = em.stats();
	CHECK(s.live_bytes == 2 * page_size);
	CHECK(s.requested_bytes == 5000);
	CHECK(s.pages_held == pages_per_chunk);
	CHECK(s.chunks == 1);
	/* populate: rox over the whole leaf; force_rw: nx (not the direct map), rw on 2 frames; restore_rox. */
	CHECK(s.dm_changes == 1 + 1 + 1);
	CHECK(s.flushes == 4);
	if constexpr (std::is_same_v<B, sim_direct_map>) {
		const auto now = m->backend.stats();
		CHECK(now.direct_map_level2_splits - before.direct_map_level2_splits == (boot_large(m->nr_pages(), f.pfn) ? 1u : 0u));
		CHECK(now.direct_map_level3_splits - before.direct_map_level3_splits == (boot_1g(m->nr_pages(), f.pfn) ? 1u : 0u));
	}
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
	em.drain();
	CHECK(m->nr_free_pages() == free0);
	CHECK(peer_test::direct_map_all_rw(*m) == "");
	CHECK(m->backend.stats().aliases == 0);
}

TEST_CASE("execmem 6.13-rc: the chunk leaves the direct map whole; allocation and free change nothing more")
{
	auto m = make_machine<sim_direct_map>();
	const auto before = m->backend.stats();
	execmem_peer<sim_direct_map> em(*m, {.release = v6_13_rc});
	auto a = em.alloc(3 * page_size, 1);
	REQUIRE(a.ok());
	const frame_range f = peer_test::frames_of(*m, a.value);
	CHECK(peer_test::count_state(*m, f, dm_state::invalid) == pages_per_chunk);
	CHECK(em.stats().dm_changes == 1); /* execmem_set_direct_map_valid(vm, false): one call per 2 MiB page */
	CHECK(em.stats().flushes == 1);    /* vunmap_range()'s; the direct-map removal is _noflush */
	CHECK(m->backend.stats().direct_map_level2_splits == before.direct_map_level2_splits);
	CHECK(em.free(a.value) == error::ok); /* text_poke_set() fill, clean: valid again, vfree */
	CHECK(em.stats().dm_changes == 2);
	CHECK(m->backend.stats().direct_map_level2_splits == before.direct_map_level2_splits);
	CHECK(peer_test::direct_map_all_rw(*m) == "");
}

TEST_CASE("execmem: a 6.15 free fills through text_poke_set(); a 6.17 free goes through force_rw and restore_rox")
{
	auto m = make_machine<sim_direct_map>();
	execmem_peer<sim_direct_map> e15(*m, {.release = v6_15}), e17(*m, {.release = v6_17});
	auto a15 = e15.alloc(3 * page_size, 1), k15 = e15.alloc(page_size, 1);
	auto a17 = e17.alloc(3 * page_size, 1), k17 = e17.alloc(page_size, 1);
	REQUIRE((a15.ok() && k15.ok() && a17.ok() && k17.ok()));
	CHECK(e15.stats().dm_changes == e17.stats().dm_changes); /* make_temp_rw and alloc_rw do the same */
	const auto s15 = e15.stats(), s17 = e17.stats();
	CHECK(e15.free(a15.value) == error::ok);
	CHECK(e17.free(a17.value) == error::ok);
	CHECK(e15.stats().dm_changes == s15.dm_changes); /* nothing reaches the direct map */
	CHECK(e15.stats().flushes == s15.flushes);
	CHECK(e17.stats().dm_changes - s17.dm_changes == 2); /* set_memory_rw(), then set_memory_rox() */
	CHECK(e17.stats().flushes - s17.flushes == 3);            /* nx, rw, rox */
	for (pfn_t p : peer_test::alias_pfns(*m, a17.value, 3))
		CHECK(m->backend.direct_map_state(p) == dm_state::ro);
	CHECK(release_at(execmem_peer<sim_direct_map>::releases, v6_18) == v6_17);
	CHECK(release_at(execmem_peer<sim_direct_map>::releases, v6_15) == v6_15);
}

TEST_CASE("execmem 6.15: without a free order-9 block vmalloc falls back to order-0 pages, and populate splits them all")
{
	machine<sim_direct_map> m(std::uint64_t{2} << 18);
	const std::vector<pfn_t> keep = scattered_frames(512);
	const std::vector<pfn_t> pinned = peer_test::pin_all_but(m, keep);
	const auto before = m.backend.stats();
	{
		execmem_peer<sim_direct_map> em(m, {.release = v6_15});
		auto a = em.alloc(page_size, 1);
		REQUIRE(a.ok());
		std::vector<pfn_t> pfns = peer_test::alias_pfns(m, a.value, pages_per_chunk);
		std::sort(pfns.begin(), pfns.end());
		CHECK(pfns == keep);
		/* set_memory_rox() on a 4 KiB-mapped area: one alias step, and one split, per frame. */
		CHECK(m.backend.stats().direct_map_level2_splits - before.direct_map_level2_splits == 512);
		CHECK(m.backend.stats().direct_map_level3_splits - before.direct_map_level3_splits == 1);
		CHECK(em.stats().chunks == 512);
		CHECK(em.free(a.value) == error::ok);
		CHECK(em.stats().pages_held == 0); /* 512 pages = a PMD multiple: clean releases it */
	}
	peer_test::unpin(m, pinned);
}

TEST_CASE("execmem: with less than 2 MiB free, 6.15 fails and 6.17 populates the request's own size (3bd4e0ac61b2)")
{
	machine<sim_direct_map> m(std::uint64_t{2} << 18);
	const std::vector<pfn_t> keep = scattered_frames(4);
	const std::vector<pfn_t> pinned = peer_test::pin_all_but(m, keep);
	{
		execmem_peer<sim_direct_map> e15(m, {.release = v6_15});
		CHECK(e15.alloc(2 * page_size, 1).err == error::no_memory);
		CHECK(m.nr_free_pages() == 4);
		execmem_peer<sim_direct_map> e17(m, {.release = v6_17});
		auto a = e17.alloc(2 * page_size, 1);
		REQUIRE(a.ok());
		CHECK(e17.stats().pages_held == 2);
		CHECK(m.nr_free_pages() == 2);
		/* Clean frees only PMD-aligned PMD multiples: the 8 KiB chunk stays cached after its free. */
		CHECK(e17.free(a.value) == error::ok);
		e17.drain();
		CHECK(e17.stats().pages_held == 2);
		CHECK(e17.free_ranges().size() == 1);
	}
	CHECK(m.nr_free_pages() == 4);
	peer_test::unpin(m, pinned);
}

TEST_CASE("execmem: 6.13 and 6.14 shipped without the x86 ROX cache (a9bbe3413331), nor did 6.12")
{
	auto m = make_machine<sim_direct_map>();
	for (linux_version k : {v6_13, linux_version{6, 14}, linux_version{6, 12}, v6_6}) {
		execmem_peer<sim_direct_map> em(*m, {.release = k});
		CHECK(!em.supported());
		CHECK(em.alloc(page_size, 1).err == error::not_supported);
	}
	execmem_peer<sim_direct_map> rc(*m, {.release = v6_13_rc});
	CHECK(rc.supported());
}

TEST_CASE("execmem 6.17: a free whose force_rw fails waits in pending_free and completes later")
{
	using peer_test::flaky_sim;
	auto m = make_machine<flaky_sim>();
	const std::uint64_t free0 = m->nr_free_pages();
	{
		execmem_peer<flaky_sim> em(*m, {.release = v6_17});
		auto a = em.alloc(page_size, 1), b = em.alloc(page_size, 1);
		REQUIRE((a.ok() && b.ok()));
		flaky_sim::fail_cpa = 0; /* the set_memory_nx() of a's free (execmem_force_rw()) */
		CHECK(em.free(a.value) == error::ok);
		flaky_sim::reset();
		CHECK(em.pending_frees() == 1);
		CHECK(em.stats().live_count == 1);
		CHECK(em.free(a.value) == error::not_live); /* pending, not live */
		/* execmem_cache_free_slow() runs before the next call. */
		CHECK(em.free(b.value) == error::ok);
		CHECK(em.pending_frees() == 0);
		CHECK(em.stats().pages_held == 0);
	}
	CHECK(m->nr_free_pages() == free0);
	CHECK(peer_test::direct_map_all_rw(*m) == "");
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

TEST_CASE_TEMPLATE("execmem: chunks above 2 MiB are order-9 pages at one alias; ranges never merge across chunks", B,
		   sim_direct_map, linux_backend)
{
	auto m = make_machine<B>();
	const std::uint64_t free0 = m->nr_free_pages();
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
		/* 2 MiB + 4 KiB: round_up to 4 MiB, two order-9 pages, no block above order 9. */
		auto big = em.alloc(chunk_size + page_size, 1);
		REQUIRE(big.ok());
		const auto pfns = peer_test::alias_pfns(*m, big.value, 2 * pages_per_chunk);
		CHECK(ua_test::allocated_order(*m, pfns[0]).value == chunk_order);
		CHECK(ua_test::allocated_order(*m, pfns[pages_per_chunk]).value == chunk_order);
		CHECK(em.stats().pages_held == 4 * pages_per_chunk);
		CHECK(em.free(big.value) == error::ok);
		CHECK(em.stats().pages_held == 2 * pages_per_chunk);
		CHECK(em.free(a1.value) == error::ok);
		CHECK(em.stats().chunks == 1);
		CHECK(em.free(b2.value) == error::ok);
		CHECK(em.stats().pages_held == 0);
	}
	CHECK(m->nr_free_pages() == free0);
	CHECK(peer_test::direct_map_all_rw(*m) == "");
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
	CHECK(em.stats().dm_changes == before.dm_changes);
	CHECK(em.free(a.value) == error::ok);
	CHECK(em.free(a.value) == error::not_live); /* double free: now a free range */
}

TEST_CASE("execmem: a failing backend operation is unwound")
{
	using peer_test::flaky_sim;
	auto m = make_machine<flaky_sim>();
	const std::uint64_t free0 = m->nr_free_pages();
	for (linux_version k : {v6_13_rc, v6_15, v6_17}) {
		execmem_peer<flaky_sim> em(*m, {.release = k});
		flaky_sim::fail_map_alias = 0;
		CHECK(em.alloc(page_size, 1).err == error::backend_failure);
		flaky_sim::fail_dm = flaky_sim::fail_cpa = 0; /* populate's removal (6.13-rc) or its set_memory_rox() */
		CHECK(em.alloc(page_size, 1).err == error::backend_failure);
		flaky_sim::reset();
		CHECK(em.stats().pages_held == 0);
		CHECK(m->nr_free_pages() == free0);
		CHECK(peer_test::direct_map_all_rw(*m) == "");
		CHECK(m->backend.stats().aliases == 0);
		auto a = em.alloc(page_size, 1);
		REQUIRE(a.ok());
		CHECK(em.free(a.value) == error::ok);
	}
}

TEST_CASE("execmem: concurrent callers are serialised by the peer's lock")
{
	auto m = make_machine<sim_direct_map>();
	const std::uint64_t free0 = m->nr_free_pages();
	{
		execmem_peer<sim_direct_map> p(*m);
		CHECK(peer_test::hammer(p, 4, 300, 20000, 1) == 0);
		CHECK(p.stats().live_count == 0);
		p.drain();
		CHECK(p.stats().pages_held == 0);
	}
	CHECK(m->nr_free_pages() == free0);
}
