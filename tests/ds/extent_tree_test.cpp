#include <doctest/doctest.h>

#include <deque>
#include <random>
#include <set>
#include <utility>
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

namespace {

/* Against a std::set of (size, address); indexed_units small enough that some sizes bypass the size index. */
void random_walk_check(unsigned unit_shift, std::size_t indexed_units)
{
	std::mt19937_64 rng(5 + indexed_units);
	ua::extent_tree t(unit_shift, indexed_units);
	std::deque<free_extent> nodes;
	std::vector<free_extent *> in;
	std::set<std::pair<std::size_t, std::uintptr_t>> ref;
	for (int step = 0; step < 20000; step++) {
		if (in.empty() || rng() % 100 < 55) {
			std::size_t size = 64 * (1 + rng() % 40);
			std::uintptr_t addr = 0x200000 + 64 * (rng() % 100000);
			if (ref.count({size, addr}) || t.find(size, addr))
				continue;
			REQUIRE(t.reserve(in.size() + 1));
			nodes.emplace_back(addr, size, nullptr);
			t.insert(nodes.back());
			in.push_back(&nodes.back());
			ref.emplace(size, addr);
		} else {
			std::size_t k = rng() % in.size();
			free_extent *e = in[k];
			in[k] = in.back();
			in.pop_back();
			t.erase(*e);
			ref.erase({e->size, e->addr});
			REQUIRE(t.find(e->size, e->addr) == nullptr);
		}
		REQUIRE(t.size() == ref.size());
		if (ua::extent_bucket *b = t.first_bucket_at_least(64 * (1 + rng() % 41))) {
			REQUIRE(b->front_n >= 1);
			REQUIRE(b->front[0].node == &*b->extents.begin());
		}
		std::size_t want = 64 * (1 + rng() % 41);
		auto lb = ref.lower_bound({want, 0});
		auto it = t.lower_bound(want);
		if (lb == ref.end()) {
			REQUIRE(it == t.end());
		} else {
			REQUIRE(it != t.end());
			REQUIRE(it->size == lb->first);
			REQUIRE(it->addr == lb->second);
			REQUIRE(t.first_of_size_at_least(want) == &*it);
		}
		if (step % 500 == 0) {
			auto r = ref.begin();
			std::set<std::size_t> sizes;
			for (auto i = t.begin(); i != t.end(); ++i, ++r) {
				REQUIRE(r != ref.end());
				REQUIRE(i->size == r->first);
				REQUIRE(i->addr == r->second);
				sizes.insert(i->size);
			}
			REQUIRE(r == ref.end());
			REQUIRE(t.distinct_sizes() == sizes.size());
			REQUIRE(t.fronts_consistent());
			REQUIRE(t.largest() == (ref.empty() ? 0 : ref.rbegin()->first));
		}
	}
	while (!t.empty())
		t.erase(*t.begin());
	CHECK(t.distinct_sizes() == 0);
}

}  // namespace

TEST_CASE("extent_tree: random inserts and erases walk in (size, address) order")
{
	random_walk_check(4, 4096); /* every size indexed */
	random_walk_check(6, 16);   /* sizes above 1 KiB only in the tree */
	random_walk_check(6, 0);    /* no index */
}
