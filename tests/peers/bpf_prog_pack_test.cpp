// SPDX-License-Identifier: MIT
/* Tests for bench/peers/bpf_prog_pack.h over both backends. */
#include <doctest/doctest.h>

#include <unistd.h>

#include <vector>

#include "peer_fixture.h"
#include "peers/bpf_prog_pack.h"

using namespace ua;
using namespace ua::peers;
using peer_test::make_machine;

namespace {

constexpr std::size_t unit = 64; /* BPF_PROG_CHUNK_SIZE */

/* Bytes of frames [pfn * 4096 + off, + n), read from the memfd (the direct map may be gone). */
std::vector<unsigned char> read_frames(const linux_backend &b, pfn_t pfn, std::size_t off, std::size_t n)
{
	std::vector<unsigned char> out(n);
	REQUIRE(::pread(b.memfd(), out.data(), n, off_t((pfn << page_shift) + off)) == ssize_t(n));
	return out;
}

}  // namespace

TEST_CASE_TEMPLATE("bpf-prog-pack: a new pack is INT3-filled, read-only in the direct map, rx at its alias", B,
		   sim_direct_map, linux_backend)
{
	auto m = make_machine<B>();
	const std::uint64_t free0 = m->pages.nr_free_pages();
	const std::uint64_t written0 = m->backend.stats().bytes_written;
	bpf_prog_pack_peer<B> pp(*m);
	auto a = pp.alloc(320, 64);
	REQUIRE(a.ok());
	const frame_range f = peer_test::frames_of(*m, a.value);
	CHECK(f.nr_pages == pages_per_chunk);
	CHECK(f.pfn % pages_per_chunk == 0);
	CHECK(m->pages.allocated_order(f.pfn).value == chunk_order);
	CHECK(peer_test::count_state(*m, f, dm_state::ro) == pages_per_chunk);
	CHECK(m->backend.alias_prot(a.value) == prot::rx);
	CHECK(m->backend.stats().bytes_written - written0 == chunk_size);
	auto s = pp.stats();
	CHECK(s.pages_held == pages_per_chunk);
	CHECK(s.chunks == 1);
	CHECK(s.live_bytes == 320);
	CHECK(s.dm_changes == 1);
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
	if constexpr (B::dereferenceable) {
		const char code[] = "\x55\x48\x89\xe5";
		REQUIRE(m->backend.write_frames(f.pfn, 320, code, 4) == 0);
		CHECK(read_frames(m->backend, f.pfn, 320, 1)[0] == 0x55);
	}
	const std::uint64_t w1 = m->backend.stats().bytes_written;
	CHECK(pp.free(b.value) == error::ok);
	CHECK(m->backend.stats().bytes_written - w1 == 128);
	if constexpr (B::dereferenceable)
		CHECK(read_frames(m->backend, f.pfn, 320, 4) == std::vector<unsigned char>(4, trap_byte));
	CHECK(pp.nr_packs() == 1);

	/* The last program out releases the pack at once: no spare. */
	CHECK(pp.free(a.value) == error::ok);
	CHECK(pp.nr_packs() == 0);
	s = pp.stats();
	CHECK(s.pages_held == 0);
	CHECK(s.chunks == 0);
	CHECK(s.dm_changes == 3); /* ro, then vm_reset_perms(): invalid, default */
	CHECK(s.flushes == 2);
	pp.drain();
	CHECK(m->pages.nr_free_pages() == free0);
	CHECK(peer_test::direct_map_all_rw(*m) == "");
	CHECK(m->backend.stats().aliases == 0);
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
	auto fill = pp.alloc((pp.chunk_count - used) * unit, unit);
	REQUIRE(fill.ok());
	/* 15 units fit in no hole of pack 1 (14 and 6 are left): pack 2. */
	auto e = pp.alloc(15 * unit, unit);
	REQUIRE(e.ok());
	CHECK(pp.nr_packs() == 2);
	CHECK(peer_test::frames_of(*m, e.value) != peer_test::frames_of(*m, h1.value));
	/* A hole in pack 1 is found before pack 2's free space. */
	auto g = pp.alloc(8 * unit, unit);
	REQUIRE(g.ok());
	CHECK(g.value == h1.value + 6 * unit);
	CHECK(pp.stats().chunks == 2);
}

TEST_CASE_TEMPLATE("bpf-prog-pack: a request larger than a pack gets its own page-rounded mapping", B, sim_direct_map,
		   linux_backend)
{
	auto m = make_machine<B>();
	const std::uint64_t free0 = m->pages.nr_free_pages();
	bpf_prog_pack_peer<B> pp(*m);
	auto a = pp.alloc(chunk_size + 1, 64);
	REQUIRE(a.ok());
	CHECK(pp.nr_packs() == 0);
	auto s = pp.stats();
	CHECK(s.pages_held == pages_per_chunk + 1);
	CHECK(s.live_bytes == chunk_size + page_size);
	const frame_range f = peer_test::frames_of(*m, a.value);
	CHECK(peer_test::count_state(*m, f, dm_state::ro) == f.nr_pages);
	CHECK(m->backend.alias_prot(a.value) == prot::rx);
	CHECK(m->pages.allocated_order(f.pfn).value == 0u); /* module_alloc: order-0 pages */
	CHECK(pp.free(a.value + page_size) == error::interior_pointer);
	CHECK(pp.free(a.value) == error::ok);
	CHECK(m->pages.nr_free_pages() == free0);
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
	CHECK(pp.free(a.value) == error::ok);
	CHECK(pp.free(a.value) == error::foreign_pointer); /* the pack went with it */
}

TEST_CASE("bpf-prog-pack: a failing backend operation is unwound")
{
	using peer_test::flaky_sim;
	auto m = make_machine<flaky_sim>();
	const std::uint64_t free0 = m->pages.nr_free_pages();
	bpf_prog_pack_peer<flaky_sim> pp(*m);
	flaky_sim::fail_map_alias = 0;
	CHECK(pp.alloc(64, 64).err == error::backend_failure);
	flaky_sim::fail_dm = 0;
	CHECK(pp.alloc(64, 64).err == error::backend_failure);
	flaky_sim::fail_map_alias = 0; /* the page-rounded path */
	CHECK(pp.alloc(chunk_size + page_size, 64).err == error::backend_failure);
	flaky_sim::fail_dm = 0;
	CHECK(pp.alloc(chunk_size + page_size, 64).err == error::backend_failure);
	flaky_sim::fail_map_alias = flaky_sim::fail_dm = -1;
	CHECK(pp.nr_packs() == 0);
	CHECK(m->pages.nr_free_pages() == free0);
	CHECK(peer_test::direct_map_all_rw(*m) == "");
	CHECK(m->backend.stats().aliases == 0);
}

TEST_CASE("bpf-prog-pack: concurrent callers are serialised by the peer's lock")
{
	auto m = make_machine<sim_direct_map>();
	const std::uint64_t free0 = m->pages.nr_free_pages();
	{
		bpf_prog_pack_peer<sim_direct_map> p(*m);
		CHECK(peer_test::hammer(p, 4, 300, 4000, 64) == 0);
		CHECK(p.stats().live_count == 0);
		p.drain();
		CHECK(p.stats().pages_held == 0);
	}
	CHECK(m->pages.nr_free_pages() == free0);
}
