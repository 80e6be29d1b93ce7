#include <doctest/doctest.h>

#include <vector>

#include "arena_fixture.h"

using ua::chunk_size;
using ua::error;
using ua_test::alloc_grow;
using ua_test::fake_chunks;

TEST_CASE("arena: empty arena needs a chunk")
{
	ua::arena a;
	auto r = a.alloc(100);
	CHECK(r.err == error::no_space);
	CHECK(a.stats().chunks == 0);
	CHECK(a.check_consistency() == "");
}

TEST_CASE("arena: sizes round to the granule and free needs no size")
{
	ua::arena a;
	fake_chunks src;
	auto p = alloc_grow(a, src, 100);
	REQUIRE(p.ok());
	CHECK(p.value % 64 == 0);
	CHECK(a.live_bytes() == 128);
	auto q = alloc_grow(a, src, 64);
	REQUIRE(q.ok());
	CHECK(q.value == p.value + 128); /* best fit of a fresh chunk: packed */
	auto l = a.lookup(p.value + 77);
	REQUIRE(l.ok());
	CHECK(l.value.addr == p.value);
	CHECK(l.value.size == 128);
	auto f = a.free(p.value);
	REQUIRE(f.ok());
	CHECK(f.value.bytes == 128);
	CHECK(f.value.empty_chunk == 0);
	CHECK(a.check_consistency() == "");
	f = a.free(q.value);
	REQUIRE(f.ok());
	CHECK(f.value.empty_chunk == a.lookup_chunk(q.value));
	CHECK(a.stats().free_extents == 1); /* coalesced with both neighbours */
	CHECK(a.check_consistency() == "");
}

TEST_CASE("arena: a one-granule tail is absorbed until a one-granule request comes")
{
	ua::arena a;
	fake_chunks src;
	auto p0 = alloc_grow(a, src, 192); /* 3 units at the chunk base */
	REQUIRE(p0.ok());
	auto p1 = a.alloc(128);
	REQUIRE(p1.ok());
	CHECK(p1.value == p0.value + 192);
	REQUIRE(a.free(p0.value).ok()); /* a 3-unit hole before p1 */
	auto q = a.alloc(128);           /* best fit: the hole, leaving one unit */
	REQUIRE(q.ok());
	CHECK(q.value == p0.value);
	auto l = a.lookup(q.value);
	REQUIRE(l.ok());
	CHECK(l.value.size == 192); /* the sliver went with it: no 64-byte request has come */
	CHECK(a.live_bytes() == 192 + 128);
	CHECK(a.stats().free_extents == 1);
	CHECK(a.check_consistency() == "");

	auto t = a.alloc(64); /* a one-granule request: slivers are worth keeping from now on */
	REQUIRE(t.ok());
	auto f = a.free(q.value);
	REQUIRE(f.ok());
	CHECK(f.value.bytes == 192);
	auto q2 = a.alloc(128);
	REQUIRE(q2.ok());
	CHECK(q2.value == p0.value);
	l = a.lookup(q2.value);
	REQUIRE(l.ok());
	CHECK(l.value.size == 128);
	CHECK(a.stats().free_extents == 2); /* the one-unit sliver stays free */
	auto t2 = a.alloc(64);              /* and best fit puts the next 64 bytes there */
	REQUIRE(t2.ok());
	CHECK(t2.value == p0.value + 128);
	CHECK(a.check_consistency() == "");
}

TEST_CASE("arena: page granule for page-granular users")
{
	ua::arena a(ua::arena_config{.granule = 4096});
	fake_chunks src;
	auto p = alloc_grow(a, src, 1);
	REQUIRE(p.ok());
	CHECK(a.live_bytes() == 4096);
	std::vector<std::uintptr_t> v;
	for (int i = 0; i < 511; i++) {
		auto r = a.alloc(4096);
		REQUIRE(r.ok());
		v.push_back(r.value);
	}
	CHECK(a.alloc(1).err == error::no_space); /* 512 pages fill the chunk */
	CHECK(a.check_consistency() == "");
}

TEST_CASE("arena: best fit picks the smallest hole, not the first")
{
	ua::arena a;
	fake_chunks src;
	std::vector<std::uintptr_t> p;
	for (int i = 0; i < 6; i++)
		p.push_back(alloc_grow(a, src, i % 2 ? 64 : 1024).value);
	/* holes: 1024 at p[0], 1024 at p[2], 64 at p[3]... free a large and a small one */
	REQUIRE(a.free(p[0]).ok());
	REQUIRE(a.free(p[3]).ok());
	auto r = a.alloc(64);
	REQUIRE(r.ok());
	CHECK(r.value == p[3]); /* first fit would take p[0] */
	CHECK(a.check_consistency() == "");
}

TEST_CASE("arena: alignment up to the chunk size, remainders kept")
{
	ua::arena a;
	fake_chunks src;
	auto small = alloc_grow(a, src, 64);
	REQUIRE(small.ok());
	for (std::size_t al : {128u, 4096u, 65536u}) {
		auto r = alloc_grow(a, src, 300, al);
		REQUIRE(r.ok());
		CHECK(r.value % al == 0);
	}
	auto big = alloc_grow(a, src, chunk_size, chunk_size);
	REQUIRE(big.ok());
	CHECK(big.value % chunk_size == 0);
	CHECK(a.stats().chunks == 2);
	CHECK(a.check_consistency() == "");
}

TEST_CASE("arena: among equal fits the fuller chunk wins, so light chunks drain")
{
	ua::arena a(ua::arena_config{.granule = 4096});
	fake_chunks src;
	std::vector<std::uintptr_t> pages;
	for (int i = 0; i < 512 + 300; i++) {
		auto r = alloc_grow(a, src, 4096);
		REQUIRE(r.ok());
		pages.push_back(r.value);
	}
	REQUIRE(a.stats().chunks == 2);
	/* The lower chunk becomes the lighter one: 7 one-page holes and one large run. */
	for (int i = 0; i < 14; i += 2)
		REQUIRE(a.free(pages[std::size_t(i)]).ok());
	for (int i = 100; i < 400; i++)
		REQUIRE(a.free(pages[std::size_t(i)]).ok());
	/* The upper chunk keeps 299 pages and gets one one-page hole. */
	REQUIRE(a.free(pages[512 + 10]).ok());
	std::uintptr_t lighter = a.lookup_chunk(pages[0]), fuller = a.lookup_chunk(pages[512]);
	REQUIRE(a.chunk_live_bytes(lighter) < a.chunk_live_bytes(fuller));
	auto r = a.alloc(4096);
	REQUIRE(r.ok());
	CHECK(r.value == pages[512 + 10]); /* not the lower-address hole in the lighter chunk */
	/* Without a fuller candidate, the lowest address wins. */
	auto r2 = a.alloc(4096);
	REQUIRE(r2.ok());
	CHECK(r2.value == pages[0]);
	CHECK(a.check_consistency() == "");
}

TEST_CASE("arena: remove_chunk only when empty")
{
	ua::arena a;
	fake_chunks src;
	auto p = alloc_grow(a, src, 1000);
	std::uintptr_t base = a.lookup_chunk(p.value);
	CHECK(a.remove_chunk(base) == error::bad_chunk);
	auto f = a.free(p.value);
	REQUIRE(f.ok());
	CHECK(f.value.empty_chunk == base);
	CHECK(a.remove_chunk(base) == error::ok);
	CHECK(a.stats().chunks == 0);
	CHECK(a.stats().free_extents == 0);
	CHECK(a.remove_chunk(base) == error::bad_chunk);
	CHECK(a.check_consistency() == "");
}

TEST_CASE("arena: stats")
{
	ua::arena a;
	fake_chunks src;
	auto p1 = alloc_grow(a, src, 64 * 10);
	auto p2 = alloc_grow(a, src, 64 * 10);
	auto p3 = alloc_grow(a, src, 64 * 10);
	REQUIRE((p1.ok() && p2.ok() && p3.ok()));
	REQUIRE(a.free(p2.value).ok());
	auto s = a.stats();
	CHECK(s.live_bytes == 64 * 20);
	CHECK(s.live_count == 2);
	CHECK(s.chunks == 1);
	CHECK(s.free_bytes == chunk_size - 64 * 20);
	CHECK(s.free_extents == 2);
	CHECK(s.largest_free == chunk_size - 64 * 30);
	CHECK(s.fragmentation == doctest::Approx(1.0 - double(chunk_size - 64 * 30) / double(chunk_size - 64 * 20)));
	CHECK(s.metadata_bytes > 2 * 4096); /* two 32768-bit bitmaps per chunk */
}

TEST_CASE("arena: long chains of free extents by start (every other unit free)")
{
	/*
	 * Freeing every other one-granule allocation leaves 128 free extents
	 * starting in each 256-unit span, all in that span's chain
	 * (arena/chunk.h): the frees after that find their neighbours deep in
	 * long chains and take them out of the middle.
	 */
	ua::arena a;
	fake_chunks src;
	std::vector<std::uintptr_t> p;
	for (int i = 0; i < 4000; i++) {
		auto r = alloc_grow(a, src, 64);
		REQUIRE(r.ok());
		p.push_back(r.value);
	}
	for (std::size_t i = 0; i < p.size(); i += 2) {
		REQUIRE(a.free(p[i]).ok());
		if (i % 64 == 0)
			REQUIRE(a.check_consistency() == "");
	}
	CHECK(a.stats().free_extents >= 2000);
	for (std::size_t i = 1; i < p.size(); i += 2) {
		auto f = a.free(p[i]);
		REQUIRE(f.ok());
		CHECK(f.value.bytes == 64);
		if (i % 64 == 1)
			REQUIRE(a.check_consistency() == "");
	}
	CHECK(a.live_count() == 0);
	CHECK(a.stats().free_extents == a.stats().chunks);
	CHECK(a.check_consistency() == "");
	REQUIRE(a.remove_chunk(a.lookup_chunk(p[0])) == error::ok);
	CHECK(a.check_consistency() == "");
}

TEST_CASE("arena: the chunk handle: free_in behaves as free, prefetch_free reads nothing")
{
	ua::arena a;
	fake_chunks src;
	auto p = alloc_grow(a, src, 300);
	auto q = alloc_grow(a, src, 64);
	REQUIRE(p.ok());
	REQUIRE(q.ok());
	std::uintptr_t base = a.lookup_chunk(p.value);
	ua::arena_chunk *c = a.chunk_at(base);
	REQUIRE(c);
	CHECK(a.chunk_at(base + 64) == nullptr); /* not a chunk base */
	CHECK(a.chunk_at(base + ua::chunk_size * 64) == nullptr);
	a.prefetch_free(c, p.value);
	auto noop = [](std::uintptr_t, std::size_t) noexcept { return error::ok; };
	/* The same refusals as free(), and nothing changes. */
	CHECK(a.free_in(*c, p.value + 64, noop).err == error::interior_pointer);
	CHECK(a.check_consistency() == "");
	auto f = a.free_in(*c, p.value, noop);
	REQUIRE(f.ok());
	CHECK(f.value.bytes == 320);
	CHECK(f.value.empty_chunk == 0);
	CHECK(a.free_in(*c, p.value, noop).err == error::not_live);
	CHECK(a.check_consistency() == "");
	f = a.free_in(*c, q.value, noop);
	REQUIRE(f.ok());
	CHECK(f.value.empty_chunk == base);
	CHECK(a.check_consistency() == "");
	/* A stale handle (its record freed) and a null one: a prefetch never faults. */
	REQUIRE(a.remove_chunk(base) == error::ok);
	CHECK(a.reclaim_retired() == 1);
	a.prefetch_free(c, p.value);
	a.prefetch_free(nullptr, p.value);
	CHECK(a.check_consistency() == "");
	CHECK(a.nr_chunks() == 0);
}
