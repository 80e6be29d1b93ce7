#include <doctest/doctest.h>

#include <algorithm>
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
			auto lo = ref.lower_bound({b->size, 0});
			REQUIRE(lo != ref.end());
			REQUIRE(b->front[0].addr == lo->second);
			REQUIRE(b->front[0].node->size == b->size);
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

TEST_CASE("extent_tree: one size through front and rest, in every insertion order")
{
	/* Ascending, descending and shuffled addresses: spills into the rest tree and refills from it. */
	for (int order = 0; order < 3; order++) {
		ua::extent_tree t(6, 64);
		std::mt19937_64 rng(11 + order);
		std::vector<free_extent> v;
		v.reserve(100);
		for (int i = 0; i < 100; i++)
			v.emplace_back(0x400000 + 0x1000 * std::uintptr_t(order == 1 ? 99 - i : i), 128, nullptr);
		if (order == 2)
			std::shuffle(v.begin(), v.end(), rng);
		std::set<std::uintptr_t> ref;
		auto check = [&] {
			REQUIRE(t.fronts_consistent());
			REQUIRE(t.size() == ref.size());
			auto r = ref.begin();
			for (auto i = t.begin(); i != t.end(); ++i, ++r) {
				REQUIRE(r != ref.end());
				REQUIRE(i->addr == *r);
			}
			REQUIRE(r == ref.end());
			for (auto &e : v)
				REQUIRE((t.find(128, e.addr) == &e) == (ref.count(e.addr) == 1));
		};
		REQUIRE(t.reserve(1));
		for (auto &e : v) {
			t.insert(e);
			ref.insert(e.addr);
			check();
		}
		std::vector<free_extent *> order_out;
		for (auto &e : v)
			order_out.push_back(&e);
		std::shuffle(order_out.begin(), order_out.end(), rng);
		for (std::size_t k = 0; k < order_out.size(); k++) {
			t.erase(*order_out[k]);
			ref.erase(order_out[k]->addr);
			check();
			if (k % 3 == 0 && k + 1 < order_out.size()) { /* erase then re-insert: front and rest both churn */
				free_extent *e = order_out[k];
				t.insert(*e);
				ref.insert(e->addr);
				check();
				t.erase(*e);
				ref.erase(e->addr);
			}
		}
		CHECK(t.empty());
		CHECK(t.distinct_sizes() == 0);
	}
}
