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

TEST_CASE("chunk_table: a tagged table keeps the owner's word beside each pointer")
{
	ua::chunk_table<int, true> t;
	int a = 1, b = 2;
	std::uintptr_t base = 0x7f0000000000ull;
	CHECK(t.slot(base) == nullptr); /* no leaf yet */
	REQUIRE(t.insert(base, &a) == error::ok);
	const auto *sl = t.slot(base + 4096);
	REQUIRE(sl != nullptr);
	CHECK(sl == t.slot(base)); /* one slot per chunk, whatever the address inside it */
	CHECK(sl->value.load() == &a);
	CHECK(sl->tag.load() == 0); /* published with tag 0 */
	t.set_tag(base, 0x1234);
	CHECK(t.slot(base + chunk_size - 1)->tag.load() == 0x1234);
	CHECK(t.slot(base + chunk_size)->value.load() == nullptr); /* the next chunk's slot: empty */
	CHECK(t.slot(base + chunk_size)->tag.load() == 0);
	CHECK(t.erase(base) == &a);
	CHECK(sl->value.load() == nullptr); /* the slot outlives the chunk */
	CHECK(sl->tag.load() == 0);         /* erase leaves tag 0 */
	REQUIRE(t.insert(base, &b) == error::ok);
	CHECK(sl->tag.load() == 0); /* a new chunk never sees the old one's tag */
	CHECK(t.lookup(base + 7) == &b);
	CHECK(t.slot(ua::chunk_table<int, true>::limit) == nullptr);
	static_assert(sizeof(ua::chunk_table<int, true>::slot_type) == 16, "pointer and tag share one 16-byte slot");
	static_assert(sizeof(ua::chunk_table<int>::slot_type) == sizeof(void *), "an untagged table keeps pointers only");
}
