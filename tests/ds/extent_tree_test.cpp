#include <doctest/doctest.h>

#include <vector>

#include <unmapped_alloc/ds/extent_tree.h>

using ua::free_extent;

TEST_CASE("extent_tree: best fit by size, then lowest address")
{
	ua::extent_tree t;
	std::vector<free_extent> v{{0x5000, 256, nullptr}, {0x1000, 128, nullptr}, {0x3000, 256, nullptr},
				   {0x9000, 4096, nullptr}, {0x2000, 64, nullptr}};
	for (auto &e : v)
		t.insert(e);
	CHECK(t.size() == 5);
	CHECK(t.largest() == 4096);
	auto it = t.lower_bound(200);
	REQUIRE(it != t.end());
	CHECK(it->size == 256);
	CHECK(it->addr == 0x3000); /* lower address among equal sizes */
	CHECK(t.lower_bound(64)->addr == 0x2000);
	CHECK(t.lower_bound(5000) == t.end());
	CHECK(t.find(256, 0x5000) == &v[0]);
	CHECK(t.find(256, 0x5001) == nullptr);
	t.erase(v[2]);
	CHECK(t.lower_bound(200)->addr == 0x5000);
	t.erase(v[3]);
	CHECK(t.largest() == 256);
	while (!t.empty())
		t.erase(*t.begin());
}
