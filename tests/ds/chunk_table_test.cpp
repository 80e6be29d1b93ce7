#include <doctest/doctest.h>

#include <unmapped_alloc/ds/chunk_table.h>

using ua::chunk_size;
using ua::error;

TEST_CASE("chunk_table: insert, lookup of any address in the chunk, erase")
{
	ua::chunk_table<int> t;
	int a = 1, b = 2;
	std::uintptr_t base = 0x7f0000000000ull, other = 0x100000000ull;
	CHECK(t.insert(base, &a) == error::ok);
	CHECK(t.insert(other, &b) == error::ok);
	CHECK(t.lookup(base) == &a);
	CHECK(t.lookup(base + chunk_size - 1) == &a);
	CHECK(t.lookup(base + chunk_size) == nullptr);
	CHECK(t.lookup(base - 1) == nullptr);
	CHECK(t.lookup(other + 12345) == &b);
	CHECK(t.erase(base) == &a);
	CHECK(t.lookup(base + 5) == nullptr);
	CHECK(t.erase(base) == nullptr);
}

TEST_CASE("chunk_table: refuses misaligned, duplicate and out-of-range chunks")
{
	ua::chunk_table<int> t;
	int a = 1;
	CHECK(t.insert(chunk_size + 4096, &a) == error::bad_chunk);
	CHECK(t.insert(chunk_size, &a) == error::ok);
	CHECK(t.insert(chunk_size, &a) == error::bad_chunk);
	CHECK(t.insert(ua::chunk_table<int>::limit, &a) == error::bad_chunk);
	CHECK(t.lookup(~std::uintptr_t{0}) == nullptr);
	CHECK(t.lookup(ua::chunk_table<int>::limit - 1) == nullptr);
}
