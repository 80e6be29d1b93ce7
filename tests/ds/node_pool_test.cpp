#include <doctest/doctest.h>

#include <set>
#include <vector>

#include <unmapped_alloc/ds/node_pool.h>

struct item {
	int a;
	long b;
	item(int x, long y) : a(x), b(y) {}
};

TEST_CASE("node_pool: create, destroy and reuse without growing")
{
	ua::node_pool<item, 16> pool;
	CHECK(pool.reserve(40));
	std::size_t mem = pool.memory_bytes();
	CHECK(pool.available() >= 40);
	std::vector<item *> v;
	for (int i = 0; i < 40; i++)
		v.push_back(pool.create(i, i * 2L));
	CHECK(pool.in_use() == 40);
	CHECK(pool.memory_bytes() == mem); /* reserved: no growth */
	std::set<item *> distinct(v.begin(), v.end());
	CHECK(distinct.size() == 40);
	for (int i = 0; i < 40; i++)
		CHECK(v[std::size_t(i)]->b == i * 2L);
	for (auto *p : v)
		pool.destroy(p);
	CHECK(pool.in_use() == 0);
	item *again = pool.create(1, 2);
	CHECK(distinct.count(again) == 1); /* reused, not new memory */
	CHECK(pool.memory_bytes() == mem);
	pool.destroy(again);
}
