#include <doctest/doctest.h>

#include <deque>
#include <map>
#include <random>

#include <unmapped_alloc/ds/extent_index.h>

TEST_CASE("extent_index: insert, find, erase against a reference map")
{
	ua::extent_index idx;
	std::deque<ua::free_extent> nodes;
	std::map<std::uintptr_t, ua::free_extent *> ref;
	std::mt19937_64 rng(7);
	for (int step = 0; step < 200000; step++) {
		std::uintptr_t addr = (std::uintptr_t{0x100} << 32) + (rng() % 50000) * 64;
		auto it = ref.find(addr);
		if (it == ref.end()) {
			REQUIRE(idx.reserve(ref.size() + 1));
			nodes.emplace_back(addr, 64, nullptr);
			idx.insert(&nodes.back());
			ref[addr] = &nodes.back();
		} else {
			REQUIRE(idx.find(addr) == it->second);
			idx.erase(addr);
			ref.erase(it);
			REQUIRE(idx.find(addr) == nullptr);
		}
		REQUIRE(idx.size() == ref.size());
		if (step % 1000 == 0)
			for (auto &[a, n] : ref)
				REQUIRE(idx.find(a) == n);
	}
	CHECK(idx.memory_bytes() >= 2 * ref.size() * sizeof(void *));
}

TEST_CASE("extent_index: reserve up front means no growth on insert")
{
	ua::extent_index idx;
	REQUIRE(idx.reserve(1000));
	std::size_t mem = idx.memory_bytes();
	std::deque<ua::free_extent> nodes;
	for (std::uintptr_t i = 0; i < 1000; i++) {
		nodes.emplace_back(0x200000 + i * 4096, 4096, nullptr);
		idx.insert(&nodes.back());
	}
	CHECK(idx.memory_bytes() == mem);
	CHECK(idx.find(0x200000 + 999 * 4096) == &nodes.back());
	CHECK(idx.find(0x200000 + 1000 * 4096) == nullptr);
}
