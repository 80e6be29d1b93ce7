// The chunk source: whole chunks out of the direct map, clustered, never movable.
#include <doctest/doctest.h>

#include <set>
#include <vector>

#include "cache_fixture.h"

using namespace ua;

#define BACKENDS ua_test::sim_machine, ua_test::real_machine

TEST_CASE_TEMPLATE("chunk_source: acquire and release undo each other exactly", M, BACKENDS)
{
	auto m = M::make();
	cache_config cfg = text_cache_config();
	chunk_source<typename M::backend> src(*m, cfg);
	auto free0 = m->pages.nr_free_pages();
	auto boot = m->backend.stats();
	auto r = src.acquire(1);
	REQUIRE(r.ok());
	CHECK(r.value.alias % chunk_size == 0);
	CHECK(r.value.pfn % pages_per_chunk == 0);
	for (pfn_t p = r.value.pfn; p < r.value.frames().end(); p += 97)
		CHECK(m->backend.direct_map_state(p) == dm_state::invalid);
	CHECK(m->backend.alias_prot(r.value.alias) == prot::rx);
	CHECK(src.stats().dm_changes == 1);
	CHECK(src.stats().tlb_flushes == 1);
	auto run3 = src.acquire(3);
	REQUIRE(run3.ok());
	CHECK(run3.value.order == chunk_order + 2); /* a power-of-two block holds the 3 chunks */
	CHECK(run3.value.bytes() == 3 * chunk_size);
	REQUIRE(src.release(run3.value) == error::ok);
	REQUIRE(src.release(r.value) == error::ok);
	CHECK(m->pages.nr_free_pages() == free0);
	CHECK(m->backend.direct_map_state(r.value.pfn) == dm_state::rw);
	CHECK(!m->backend.alias_prot(r.value.alias).has_value());
	auto end = m->backend.stats();
	CHECK(end.direct_map_level2_splits == boot.direct_map_level2_splits);
	CHECK(end.aliases == boot.aliases);
	CHECK(src.acquire(0).err == error::zero_size);
}

TEST_CASE("chunk_source: chunks cluster in one 1 GiB region and never come from ZONE_MOVABLE")
{
	/* 16 GiB simulated, the top half movable, aged like a long-running machine. */
	machine<sim_direct_map> m(std::uint64_t{16} << 18, page_alloc_config{.movable_fraction = 0.5});
	REQUIRE(m.pages.age(age_config{.used_fraction = 0.6, .free_chunk_fraction = 0.05, .seed = 7}).ok());
	auto boot = m.backend.stats();
	cache_config cfg = secret_cache_config();
	chunk_source<sim_direct_map> src(m, cfg);
	std::vector<chunk_run> runs;
	std::set<std::uint64_t> regions;
	for (int i = 0; i < 40; i++) {
		auto r = src.acquire(1);
		REQUIRE(r.ok());
		CHECK(m.pages.zone_of(r.value.pfn) == zone_type::normal);
		regions.insert(r.value.pfn >> (pud_shift - page_shift));
		runs.push_back(r.value);
	}
	auto s = m.backend.stats();
	CHECK(s.direct_map_level2_splits == boot.direct_map_level2_splits);
	/* 40 chunks fit in few regions: at most one new 1 GiB split per region used. */
	CHECK(s.direct_map_level3_splits - boot.direct_map_level3_splits <= regions.size());
	CHECK(regions.size() <= 3);
	for (auto &r : runs)
		REQUIRE(src.release(r) == error::ok);
	CHECK(m.backend.stats().direct_map_level2_splits == boot.direct_map_level2_splits);
}

TEST_CASE("chunk_source: with only movable memory free, acquiring fails cleanly")
{
	machine<sim_direct_map> m(std::uint64_t{2} << 18, page_alloc_config{.movable_fraction = 0.5});
	cache_config cfg = text_cache_config();
	chunk_source<sim_direct_map> src(m, cfg);
	std::vector<chunk_run> runs;
	for (;;) {
		auto r = src.acquire(1);
		if (!r.ok()) {
			CHECK(r.err == error::no_memory);
			break;
		}
		runs.push_back(r.value);
	}
	CHECK(runs.size() == 512); /* exactly the 1 GiB normal zone */
	CHECK(m.pages.nr_free_pages() == std::uint64_t{1} << 18);
	for (auto &r : runs)
		REQUIRE(src.release(r) == error::ok);
}
