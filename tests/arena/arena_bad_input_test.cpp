#include <doctest/doctest.h>

#include <string>

#include "arena_fixture.h"

using ua::chunk_size;
using ua::error;
using ua_test::alloc_grow;
using ua_test::fake_chunks;

namespace {

/* A fingerprint of the arena's whole state: stats plus the consistency walk. */
std::string fingerprint(const ua::arena &a)
{
	auto s = a.stats();
	return std::to_string(s.live_bytes) + "/" + std::to_string(s.live_count) + "/" + std::to_string(s.free_extents) + "/" +
	       std::to_string(s.chunks) + "/" + std::to_string(s.largest_free) + "|" + a.check_consistency();
}

struct populated {
	ua::arena a;
	fake_chunks src;
	std::uintptr_t p = 0, q = 0, freed = 0;
	explicit populated(std::uintptr_t first_chunk = std::uintptr_t{0x100} << 32)
	{
		src.next = first_chunk;
		p = alloc_grow(a, src, 1000).value;
		freed = alloc_grow(a, src, 256).value;
		q = alloc_grow(a, src, 300).value;
		REQUIRE(a.free(freed).ok());
	}
};

}  // namespace

TEST_CASE("arena bad input: each error is clear and changes nothing")
{
	populated s;
	const std::string before = fingerprint(s.a);
	REQUIRE(before.find('|') == before.size() - 1); /* consistent to begin with */

	SUBCASE("free(nullptr) is a no-op") {
		auto r = s.a.free(0);
		CHECK(r.ok());
		CHECK(r.value.bytes == 0);
	}
	SUBCASE("double free") {
		CHECK(s.a.free(s.freed).err == error::not_live);
	}
	SUBCASE("interior pointer, granule aligned and not") {
		CHECK(s.a.free(s.p + 64).err == error::interior_pointer);
		CHECK(s.a.free(s.p + 1).err == error::interior_pointer);
	}
	SUBCASE("pointer into free space of a chunk") {
		CHECK(s.a.free(s.q + 4096).err == error::not_live);
	}
	SUBCASE("pointer from another arena") {
		populated other(std::uintptr_t{0x200} << 32);
		auto r = alloc_grow(other.a, other.src, 64);
		REQUIRE(r.ok());
		CHECK(s.a.free(r.value).err == error::foreign_pointer);
		CHECK(other.a.check_consistency() == "");
	}
	SUBCASE("pointer from nowhere") {
		CHECK(s.a.free(0x1234).err == error::foreign_pointer);
		CHECK(s.a.free(~std::uintptr_t{0}).err == error::foreign_pointer);
	}
	SUBCASE("size 0") {
		CHECK(s.a.alloc(0).err == error::zero_size);
	}
	SUBCASE("size above the chunk") {
		CHECK(s.a.alloc(chunk_size + 1).err == error::too_large);
	}
	SUBCASE("non-power-of-two and oversized alignment") {
		CHECK(s.a.alloc(64, 0).err == error::bad_alignment);
		CHECK(s.a.alloc(64, 96).err == error::bad_alignment);
		CHECK(s.a.alloc(64, chunk_size * 2).err == error::bad_alignment);
	}
	SUBCASE("bad chunks") {
		CHECK(s.a.add_chunk(s.a.lookup_chunk(s.p)) == error::bad_chunk);  /* twice */
		CHECK(s.a.add_chunk(chunk_size + 4096) == error::bad_chunk);       /* misaligned */
		CHECK(s.a.add_chunk(0) == error::bad_chunk);
		CHECK(s.a.remove_chunk(s.a.lookup_chunk(s.p)) == error::bad_chunk); /* not empty */
		CHECK(s.a.remove_chunk(0x7000000000) == error::bad_chunk);          /* unknown */
	}
	CHECK(fingerprint(s.a) == before);
	CHECK(ua::to_errno(error::bad_alignment) == EINVAL);
	CHECK(ua::to_errno(error::no_memory) == ENOMEM);
	CHECK(std::string(ua::describe(error::not_live)).find("double free") != std::string::npos);
}
