// SPDX-License-Identifier: MIT
/* Tests for bench/peers/bpf_prog_pack.h over both backends, and its kernel releases on hand-worked cases. */
#include <doctest/doctest.h>

#include <unistd.h>

#include <set>
#include <vector>

#include "peer_fixture.h"
#include "peers/bpf_prog_pack.h"
#include <support/machine_lock.h>

using namespace ua;
using namespace ua::peers;
using peer_test::make_machine;

namespace {

constexpr std::size_t unit = 64; /* BPF_PROG_CHUNK_SIZE */

/* Bytes of frames [pfn * 4096 + off, + n), read from the memfd (the direct map may be gone). */
std::vector<unsigned char> read_frames(const linux_backend &b, pfn_t pfn, std::size_t off, std::size_t n)
{
	std::vector<unsigned char> out(n);
	REQUIRE(::pread(ua::linux_backend_test_access::memfd(b), out.data(), n, off_t((pfn << page_shift) + off)) == ssize_t(n));
	return out;
}

std::uint64_t distinct_regions(std::vector<pfn_t> pfns, unsigned shift)
{
	std::set<pfn_t> s;
	for (pfn_t p : pfns)
		s.insert(p >> shift);
	return s.size();
}

}  // namespace

TEST_CASE_TEMPLATE("bpf-prog-pack 6.18: a pack is 512 order-0 pages, INT3-filled, read-only in the direct map, rx", B,
		   sim_direct_map, linux_backend)
{
	auto m = make_machine<B>();
	const std::uint64_t free0 = m->nr_free_pages();
	const std::uint64_t written0 = m->backend.stats().bytes_written;
	bpf_prog_pack_peer<B> pp(*m);
	CHECK(pp.pack_size() == chunk_size); /* SZ_2M * num_possible_nodes(), one node */
	auto a = pp.alloc(320, 64);
	REQUIRE(a.ok());
	const std::vector<pfn_t> pfns = peer_test::alias_pfns(*m, a.value, pages_per_chunk);
	for (pfn_t p : pfns) {
		CHECK(ua_test::allocated_order(*m, p).value == 0u); /* vmalloc: order-0 pages */
		CHECK(m->backend.direct_map_state(p) == dm_state::ro);
	}
	CHECK(m->backend.alias_prot(a.value) == prot::rx);
	CHECK(m->backend.stats().bytes_written - written0 == chunk_size);
	auto s = pp.stats();
	CHECK(s.pages_held == pages_per_chunk);
	CHECK(s.chunks == distinct_regions(pfns, chunk_order));
	CHECK(s.live_bytes == 320);
	CHECK(s.dm_changes == 1); /* one set_memory_rox() call; the backend steps through the alias a frame at a time */
	CHECK(s.flushes == 1);
	if constexpr (B::dereferenceable) {
		const auto *p = reinterpret_cast<const unsigned char *>(a.value);
		CHECK(p[0] == trap_byte);
		CHECK(p[chunk_size - 1] == trap_byte);
	}
	/* The pack rounds to 64 B: 100 bytes take two units, right after the first program. */
	auto b = pp.alloc(100, 1);
	REQUIRE(b.ok());
	CHECK(b.value == a.value + 320);
	CHECK(pp.stats().live_bytes == 320 + 128);
	CHECK(pp.nr_packs() == 1);

	/* A freed range is filled with INT3 again. */
	const pfn_t pfn0 = pfns[0];
	if constexpr (B::dereferenceable) {
		const char code[] = "\x55\x48\x89\xe5";
		REQUIRE(m->backend.write_frames(pfn0, 320, code, 4) == 0);
		CHECK(read_frames(m->backend, pfn0, 320, 1)[0] == 0x55);
	}
	const std::uint64_t w1 = m->backend.stats().bytes_written;
	CHECK(pp.free(b.value) == error::ok);
	CHECK(m->backend.stats().bytes_written - w1 == 128);
	if constexpr (B::dereferenceable)
		CHECK(read_frames(m->backend, pfn0, 320, 4) == std::vector<unsigned char>(4, trap_byte));

	/* The last program out releases the pack at once (no spare), through vm_reset_perms(). */
	CHECK(pp.free(a.value) == error::ok);
	CHECK(pp.nr_packs() == 0);
	s = pp.stats();
	CHECK(s.pages_held == 0);
	CHECK(s.chunks == 0);
	CHECK(s.dm_changes == 1 + 2 * pages_per_chunk); /* rox, then invalid and default page by page */
	CHECK(s.flushes == 2);
	CHECK(m->nr_free_pages() == free0);
	CHECK(peer_test::direct_map_all_rw(*m) == "");
	CHECK(m->backend.stats().aliases == 0);
}

TEST_CASE("bpf-prog-pack 6.18: a pack over 512 scattered frames splits exactly the 2 MiB pages they lie in")
{
	/* 2 GiB; free only frame 7 of each 2 MiB page of the second GiB (mapped 1 GiB at boot). */
	machine<sim_direct_map> m(std::uint64_t{2} << 18);
	std::vector<pfn_t> keep;
	for (pfn_t k = 512; k < 1024; k++)
		keep.push_back(k * pages_per_chunk + 7);
	const std::vector<pfn_t> pinned = peer_test::pin_all_but(m, keep);
	REQUIRE(m.backend.direct_map_level(keep[0]) == map_level::pud_1g);
	const auto before = m.backend.stats();
	{
		bpf_prog_pack_peer<sim_direct_map> pp(m);
		auto a = pp.alloc(64, 64);
		REQUIRE(a.ok());
		std::vector<pfn_t> pfns = peer_test::alias_pfns(m, a.value, pages_per_chunk);
		std::sort(pfns.begin(), pfns.end());
		CHECK(pfns == keep);
		const auto after = m.backend.stats();
		CHECK(after.direct_map_level2_splits - before.direct_map_level2_splits == 512); /* one per frame: 512 distinct 2 MiB pages */
		CHECK(after.direct_map_level3_splits - before.direct_map_level3_splits == 1);   /* all in one 1 GiB page */
		CHECK(pp.stats().chunks == 512);
		CHECK(pp.free(a.value) == error::ok);
		/* vm_reset_perms() restores, nothing merges back. */
		CHECK(m.backend.stats().direct_map_level2_splits - before.direct_map_level2_splits == 512);
		CHECK(m.backend.stats().direct_map_level2_collapses == before.direct_map_level2_collapses);
	}
	peer_test::unpin(m, pinned);
	CHECK(m.nr_free_pages() == m.nr_pages());
}

TEST_CASE("bpf-prog-pack 6.18: on a fresh machine a pack still splits the 2 MiB page it lies in")
{
	auto m = make_machine<sim_direct_map>();
	bpf_prog_pack_peer<sim_direct_map> pp(*m);
	const auto before = m->backend.stats();
	/* Which frames the first pack gets is the page allocator's business; what they split is not. */
	auto a = pp.alloc(64, 64);
	REQUIRE(a.ok());
	const std::vector<pfn_t> pfns = peer_test::alias_pfns(*m, a.value, pages_per_chunk);
	machine<sim_direct_map> shadow(m->nr_pages()); /* the same boot direct map, untouched */
	const auto expect = peer_test::splits_if_changed_one_by_one(shadow, pfns);
	CHECK(m->backend.stats().direct_map_level2_splits - before.direct_map_level2_splits == expect.s2m);
	CHECK(m->backend.stats().direct_map_level3_splits - before.direct_map_level3_splits == expect.s1g);
	/* One frame at a time: even 512 frames filling one aligned 2 MiB page split it. */
	if (distinct_regions(pfns, chunk_order) == 1 && shadow.backend.direct_map_level(pfns[0]) != map_level::pte_4k)
		CHECK(expect.s2m == 1);
	CHECK(pp.free(a.value) == error::ok);
}

TEST_CASE("bpf-prog-pack 5.18: a pack is one page (huge vmalloc is opt-in since 559089e0a93d)")
{
	auto m = make_machine<sim_direct_map>();
	bpf_prog_pack_peer<sim_direct_map> pp(*m, {.release = v5_18});
	CHECK(pp.pack_size() == page_size);
	CHECK(pp.chunk_count() == 64);
	/* 320 B is 5 units: 12 programs fill 60 of a pack's 64 units, the 13th opens a second pack. */
	std::vector<std::uintptr_t> progs;
	for (int i = 0; i < 13; i++) {
		auto a = pp.alloc(320, 64);
		REQUIRE(a.ok());
		progs.push_back(a.value);
	}
	CHECK(pp.nr_packs() == 2);
	CHECK(pp.stats().pages_held == 2);
	CHECK(progs[11] == progs[0] + 11 * 320);
	CHECK(progs[12] != progs[0] + 12 * 320);
	/* 5000 B is more than a pack: its own two pages. */
	auto big = pp.alloc(5000, 64);
	REQUIRE(big.ok());
	CHECK(pp.stats().pages_held == 4);
	CHECK(pp.nr_packs() == 2);
	CHECK(pp.stats().flushes == 3 * 2); /* ro and x: two CPA calls per area before 6.2 */
	for (std::uintptr_t p : progs)
		CHECK(pp.free(p) == error::ok);
	CHECK(pp.free(big.value) == error::ok);
	CHECK(pp.stats().pages_held == 0);
}

TEST_CASE("bpf-prog-pack 5.18-rc: a huge pack changes its 2 MiB in place, and vm_reset_perms() splits it at free")
{
	auto m = make_machine<sim_direct_map>();
	bpf_prog_pack_peer<sim_direct_map> pp(*m, {.release = v5_18_rc});
	const auto before = m->backend.stats();
	auto a = pp.alloc(64, 64);
	REQUIRE(a.ok());
	const frame_range f = peer_test::frames_of(*m, a.value);
	CHECK(f.nr_pages == pages_per_chunk);
	CHECK(ua_test::allocated_order(*m, f.pfn).value == chunk_order); /* one order-9 page */
	CHECK(peer_test::count_state(*m, f, dm_state::ro) == pages_per_chunk);
	machine<sim_direct_map> shadow(m->nr_pages());
	const bool was_large = shadow.backend.direct_map_level(f.pfn) != map_level::pte_4k;
	const bool was_1g = shadow.backend.direct_map_level(f.pfn) == map_level::pud_1g;
	CHECK(m->backend.stats().direct_map_level2_splits == before.direct_map_level2_splits); /* whole leaf: in place */
	CHECK(m->backend.stats().direct_map_level3_splits - before.direct_map_level3_splits == (was_1g ? 1u : 0u));
	CHECK(pp.free(a.value) == error::ok);
	CHECK(m->backend.stats().direct_map_level2_splits - before.direct_map_level2_splits == (was_large ? 1u : 0u));
	CHECK(peer_test::direct_map_all_rw(*m) == "");
}

TEST_CASE("bpf-prog-pack: 6.0 makes a pack ro then x (two flushes), 6.2 set_memory_rox() (one); 5.17 has no pack")
{
	auto m = make_machine<sim_direct_map>();
	bpf_prog_pack_peer<sim_direct_map> p60(*m, {.release = v6_0}), p62(*m, {.release = v6_2}),
		p61(*m, {.release = v6_1}), p517(*m, {.release = v5_17});
	REQUIRE(p60.alloc(64, 64).ok());
	REQUIRE(p62.alloc(64, 64).ok());
	REQUIRE(p61.alloc(64, 64).ok());
	CHECK(p60.stats().flushes == 2);
	CHECK(p61.stats().flushes == 2); /* 6.1 follows 6.0 */
	CHECK(p62.stats().flushes == 1);
	CHECK(p60.stats().dm_changes == 1); /* set_memory_x does not reach the direct map */
	CHECK(p60.pack_size() == chunk_size);
	CHECK(!p517.supported());
	CHECK(p517.alloc(64, 64).err == error::not_supported);
	CHECK(release_at(bpf_prog_pack_peer<sim_direct_map>::releases, v6_18) == v6_2);
	CHECK(release_at(bpf_prog_pack_peer<sim_direct_map>::releases, v5_17) == linux_version{});
}

TEST_CASE("bpf-prog-pack on freetype-unmapped: the pack's pages come out of one flipped pageblock")
{
	auto m = make_machine<sim_direct_map>();
	const std::uint64_t free0 = m->nr_free_pages();
	const auto before = m->backend.stats();
	{
		bpf_prog_pack_peer<sim_direct_map> pp(*m, {.source = pack_source::freetype_unmapped});
		auto a = pp.alloc(320, 64);
		REQUIRE(a.ok());
		REQUIRE(pp.pool() != nullptr);
		CHECK(pp.pool()->stats().pageblocks_unmapped == 1);
		const std::vector<pfn_t> pfns = peer_test::alias_pfns(*m, a.value, pages_per_chunk);
		const auto blk = pp.pool()->lists().blocks().begin();
		CHECK(ua_test::allocated_order(*m, blk->first).value == chunk_order);
		for (pfn_t p : pfns) {
			CHECK((p >> chunk_order) == (blk->first >> chunk_order)); /* all 512 in the one pageblock */
			CHECK(m->backend.direct_map_state(p) == dm_state::invalid);
		}
		CHECK(m->backend.alias_prot(a.value) == prot::rx);
		CHECK(m->backend.stats().direct_map_level2_splits == before.direct_map_level2_splits); /* a whole aligned 2 MiB: in place */
		CHECK(pp.stats().dm_changes == 2); /* the pageblock flip, and set_memory_rox(), which finds nothing mapped */
		CHECK(pp.stats().chunks == 1);
		/* The freed pack's pages stay unmapped on the unmapped lists; drain() maps them back. */
		CHECK(pp.free(a.value) == error::ok);
		CHECK(m->backend.direct_map_state(pfns[0]) == dm_state::invalid);
		CHECK(pp.stats().pages_held == pages_per_chunk);
		pp.drain();
		CHECK(pp.stats().pages_held == 0);
	}
	CHECK(m->nr_free_pages() == free0);
	CHECK(peer_test::direct_map_all_rw(*m) == "");
}

TEST_CASE_TEMPLATE("bpf-prog-pack: first fit takes the lowest hole that fits, across packs in list order", B,
		   sim_direct_map, linux_backend)
{
	auto m = make_machine<B>();
	bpf_prog_pack_peer<B> pp(*m);
	/* Pack 1: [h1: 20 units][x][h2: 6 units][y][rest]. */
	auto h1 = pp.alloc(20 * unit, unit), x = pp.alloc(unit, unit), h2 = pp.alloc(6 * unit, unit),
	     y = pp.alloc(unit, unit);
	REQUIRE((h1.ok() && x.ok() && h2.ok() && y.ok()));
	CHECK(pp.free(h1.value) == error::ok);
	CHECK(pp.free(h2.value) == error::ok);
	/* 6 units: best fit would take h2 exactly; first fit takes the lowest hole, h1. */
	auto c = pp.alloc(6 * unit, unit);
	REQUIRE(c.ok());
	CHECK(c.value == h1.value);
	/* 15 units no longer fit in h1's remaining 14: they go past y, not into h2. */
	auto d = pp.alloc(15 * unit, unit);
	REQUIRE(d.ok());
	CHECK(d.value == y.value + unit);

	/* Fill pack 1 to the end, so the next request opens pack 2. */
	const std::size_t used = (y.value + unit - h1.value) / unit + 15;
	auto fill = pp.alloc((pp.chunk_count() - used) * unit, unit);
	REQUIRE(fill.ok());
	/* 15 units fit in no hole of pack 1 (14 and 6 are left): pack 2. */
	auto e = pp.alloc(15 * unit, unit);
	REQUIRE(e.ok());
	CHECK(pp.nr_packs() == 2);
	CHECK_FALSE((e.value >= h1.value && e.value < h1.value + chunk_size));
	/* A hole in pack 1 is found before pack 2's free space. */
	auto g = pp.alloc(8 * unit, unit);
	REQUIRE(g.ok());
	CHECK(g.value == h1.value + 6 * unit);
	CHECK(pp.stats().pages_held == 2 * pages_per_chunk);
}

TEST_CASE_TEMPLATE("bpf-prog-pack: a request larger than a pack gets its own page-rounded mapping", B, sim_direct_map,
		   linux_backend)
{
	auto m = make_machine<B>();
	const std::uint64_t free0 = m->nr_free_pages();
	bpf_prog_pack_peer<B> pp(*m);
	auto a = pp.alloc(chunk_size + 1, 64);
	REQUIRE(a.ok());
	CHECK(pp.nr_packs() == 0);
	auto s = pp.stats();
	CHECK(s.pages_held == pages_per_chunk + 1);
	CHECK(s.live_bytes == chunk_size + page_size);
	for (pfn_t p : peer_test::alias_pfns(*m, a.value, pages_per_chunk + 1)) {
		CHECK(m->backend.direct_map_state(p) == dm_state::ro);
		CHECK(ua_test::allocated_order(*m, p).value == 0u); /* module_alloc/execmem: order-0 pages */
	}
	CHECK(m->backend.alias_prot(a.value) == prot::rx);
	CHECK(pp.free(a.value + page_size) == error::interior_pointer);
	CHECK(pp.free(a.value) == error::ok);
	CHECK(m->nr_free_pages() == free0);
	CHECK(peer_test::direct_map_all_rw(*m) == "");
}

TEST_CASE_TEMPLATE("bpf-prog-pack: bad input and bad frees are refused", B, sim_direct_map, linux_backend)
{
	auto m = make_machine<B>();
	bpf_prog_pack_peer<B> pp(*m);
	CHECK(pp.alloc(0, 1).err == error::zero_size);
	CHECK(pp.alloc(64, 128).err == error::bad_alignment);
	CHECK(pp.alloc(64, 48).err == error::bad_alignment);
	auto a = pp.alloc(256, 64);
	REQUIRE(a.ok());
	const auto before = pp.stats();
	CHECK(pp.free(a.value + 64) == error::interior_pointer);
	CHECK(pp.free(a.value + 1024) == error::not_live);
	CHECK(pp.free(42) == error::foreign_pointer);
	CHECK(pp.stats().live_bytes == before.live_bytes);
	CHECK(pp.stats().dm_changes == before.dm_changes);
	CHECK(pp.free(a.value) == error::ok);
	CHECK(pp.free(a.value) == error::foreign_pointer); /* the pack went with it */
}

TEST_CASE("bpf-prog-pack: a failing backend operation is unwound")
{
	using peer_test::flaky_sim;
	auto m = make_machine<flaky_sim>();
	const std::uint64_t free0 = m->nr_free_pages();
	bpf_prog_pack_peer<flaky_sim> pp(*m);
	flaky_sim::fail_map_alias = 0;
	CHECK(pp.alloc(64, 64).err == error::backend_failure);
	flaky_sim::fail_cpa = 0; /* set_memory_rox() */
	CHECK(pp.alloc(64, 64).err == error::backend_failure);
	flaky_sim::fail_map_alias = 0; /* the page-rounded path */
	CHECK(pp.alloc(chunk_size + page_size, 64).err == error::backend_failure);
	flaky_sim::fail_cpa = 0;
	CHECK(pp.alloc(chunk_size + page_size, 64).err == error::backend_failure);
	{
		bpf_prog_pack_peer<flaky_sim> p60(*m, {.release = v6_0});
		flaky_sim::fail_cpa = 1; /* set_memory_x() after set_memory_ro(): ro is undone */
		CHECK(p60.alloc(64, 64).err == error::backend_failure);
		flaky_sim::reset();
		CHECK(peer_test::direct_map_all_rw(*m) == "");
	}
	flaky_sim::reset();
	CHECK(pp.nr_packs() == 0);
	CHECK(m->nr_free_pages() == free0);
	CHECK(peer_test::direct_map_all_rw(*m) == "");
	CHECK(m->backend.stats().aliases == 0);
}

TEST_CASE("bpf-prog-pack: concurrent callers are serialised by the peer's lock")
{
	auto m = make_machine<sim_direct_map>();
	const std::uint64_t free0 = m->nr_free_pages();
	{
		bpf_prog_pack_peer<sim_direct_map> p(*m);
		CHECK(peer_test::hammer(p, 4, 300, 4000, 64) == 0);
		CHECK(p.stats().live_count == 0);
		p.drain();
		CHECK(p.stats().pages_held == 0);
	}
	CHECK(m->nr_free_pages() == free0);
}
