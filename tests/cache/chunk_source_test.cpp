// The chunk source: whole chunks out of the direct map, clustered, never movable.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <type_traits>
#include <vector>

#include <support/fault_backend.h>
#include <support/machine_lock.h>

#include "cache_fixture.h"

using namespace ua;

#define BACKENDS ua_test::sim_machine, ua_test::real_machine

TEST_CASE_TEMPLATE("chunk_source: acquire and release undo each other exactly", M, BACKENDS)
{
	auto m = M::make();
	cache_config cfg = text_cache_config();
	chunk_source<typename M::backend> src(*m, cfg);
	auto free0 = m->nr_free_pages();
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
	CHECK(run3.value.order == chunk_order); /* no block holds exactly 3 chunks: three order-9 blocks, none wasted */
	CHECK(run3.value.bytes() == 3 * chunk_size);
	REQUIRE(src.release(run3.value) == error::ok);
	REQUIRE(src.release(r.value) == error::ok);
	CHECK(m->nr_free_pages() == free0);
	CHECK(m->backend.direct_map_state(r.value.pfn) == dm_state::rw);
	CHECK(!m->backend.alias_prot(r.value.alias).has_value());
	auto end = m->backend.stats();
	CHECK(end.direct_map_level2_splits == boot.direct_map_level2_splits);
	CHECK(end.aliases == boot.aliases);
	CHECK(src.acquire(0).err == error::zero_size);
}

TEST_CASE("chunk_source: chunks cluster in few 1 GiB regions, fill a split one first, and never come from ZONE_MOVABLE")
{
	/* 16 GiB simulated, the top half movable, aged like a long-running machine. */
	machine<sim_direct_map> m(std::uint64_t{16} << 18, page_alloc_config{.movable_fraction = 0.5});
	REQUIRE(m.with_lock([](page_allocator &pa, auto &) {
		return pa.age(age_config{.used_fraction = 0.6, .free_chunk_fraction = 0.05, .seed = 7}).ok();
	}));
	auto boot = m.backend.stats();
	cache_config cfg = secret_cache_config();
	chunk_source<sim_direct_map> src(m, cfg);
	std::vector<chunk_run> runs;
	std::set<std::uint64_t> regions, new_split_regions;
	for (int i = 0; i < 40; i++) {
		const auto before = m.backend.stats().direct_map_level3_splits;
		auto r = src.acquire(1);
		REQUIRE(r.ok());
		if (m.backend.stats().direct_map_level3_splits != before)
			new_split_regions.insert(r.value.pfn / pages_per_region);
		/* Normal, or DMA32 memory boot already mapped by 2 MiB pages (split_regions_first) */
		const zone_type z = ua_test::zone_of(m, r.value.pfn);
		CHECK((z == zone_type::normal || z == zone_type::dma32));
		CHECK(z != zone_type::movable);
		regions.insert(r.value.pfn >> (pud_shift - page_shift));
		runs.push_back(r.value);
	}
	auto s = m.backend.stats();
	CHECK(s.direct_map_level2_splits == boot.direct_map_level2_splits);
	/* 40 chunks fit in few regions: at most one new 1 GiB split per region used. */
	CHECK(s.direct_map_level3_splits - boot.direct_map_level3_splits <= regions.size());
	CHECK(regions.size() <= 3);
	/* Each new 1 GiB split is a region of its own: once split, a region is filled before another one is split. */
	CHECK(s.direct_map_level3_splits - boot.direct_map_level3_splits == new_split_regions.size());
	CHECK(new_split_regions.size() <= 2);
	for (auto &r : runs)
		REQUIRE(src.release(r) == error::ok);
	CHECK(m.backend.stats().direct_map_level2_splits == boot.direct_map_level2_splits);
}

/* Single chunks from src until acquire() fails, which it must do with no_memory. */
template <class Src>
static std::vector<chunk_run> acquire_until_full(Src &src)
{
	std::vector<chunk_run> runs;
	for (;;) {
		auto r = src.acquire(1);
		if (!r.ok()) {
			CHECK(r.err == error::no_memory);
			return runs;
		}
		runs.push_back(r.value);
	}
}

/*
 * Chunks until acquire() fails, on a 6 GiB machine whose memory 64 CPUs
 * filled with page cache one page each in turn: the LRU's oldest pages lie
 * in 64 places at once, so what reclaim evicts for a request never frees a
 * whole 2 MiB block (the situation of a busy machine's LRU).
 */
static std::size_t chunks_until_full(bool migrate, std::uint64_t &migrated)
{
	constexpr unsigned cpus = 64;
	machine<sim_direct_map> m(std::uint64_t{6} << 18,
				  page_alloc_config{.min_free_kbytes = min_free_kbytes_auto, .nr_cpus = cpus});
	{
		machine<sim_direct_map>::guard g(m.lock);
		for (std::uint64_t i = 0, n = m.pages.nr_free_pages(); i < n; i++) {
			m.pages.set_cpu(unsigned(i % cpus));
			REQUIRE(m.pages.page_cache_read(1) == 1);
		}
		m.pages.set_cpu(0);
	}
	const auto boot = m.backend.stats();
	cache_config cfg = secret_cache_config();
	cfg.migrate_for_chunks = migrate;
	chunk_source<sim_direct_map> src(m, cfg);
	std::vector<chunk_run> runs = acquire_until_full(src);
	for (auto &r : runs)
		CHECK(m.backend.direct_map_state(r.pfn) == dm_state::invalid);
	migrated = src.stats().chunks_migrated;
	CHECK(m.backend.stats().direct_map_level2_splits == boot.direct_map_level2_splits);
	CHECK(m.check_consistency() == "");
	for (auto &r : runs)
		REQUIRE(src.release(r) == error::ok);
	CHECK(m.check_consistency() == "");
	CHECK(m.backend.stats().direct_map_level2_splits == boot.direct_map_level2_splits);
	return runs.size();
}

TEST_CASE("chunk_source: with no free 2 MiB block, a chunk comes from migrating page cache out (migrate_for_chunks)")
{
	std::uint64_t mig_off = 0, mig_on = 0;
	const std::size_t off = chunks_until_full(false, mig_off);
	const std::size_t on = chunks_until_full(true, mig_on);
	MESSAGE("chunks without migration ", off, ", with ", on, " (", mig_on, " migrated)");
	CHECK(mig_off == 0);
	CHECK(on >= off + 256);    /* at least half of a 1 GiB zone more */
	/* The same machine and choices until the buddy lists ran dry; then chunks by migration, and by reclaim again. */
	CHECK(mig_on > 0);
	CHECK(mig_on <= on - off);
}

TEST_CASE("chunk_source: with only movable memory free, acquiring fails cleanly")
{
	machine<sim_direct_map> m(std::uint64_t{2} << 18, page_alloc_config{.movable_fraction = 0.5});
	cache_config cfg = text_cache_config();
	chunk_source<sim_direct_map> src(m, cfg);
	std::vector<chunk_run> runs = acquire_until_full(src);
	CHECK(runs.size() == 512); /* exactly the 1 GiB normal zone */
	CHECK(m.nr_free_pages() == std::uint64_t{1} << 18);
	for (auto &r : runs)
		REQUIRE(src.release(r) == error::ok);
}

TEST_CASE_TEMPLATE("chunk_source: a run larger than a chunk takes chunks wherever they are, as vmalloc()", M, BACKENDS)
{
	auto m = M::make();
	cache_config cfg = text_cache_config();
	chunk_source<typename M::backend> src(*m, cfg);
	const auto aged = ua_test::scatter_free_chunks(*m);
	const std::uint64_t free0 = m->nr_free_pages();
	const std::size_t nr_free = aged.freed.size();
	REQUIRE(nr_free >= 4);
	REQUIRE(free0 == nr_free * pages_per_chunk); /* nothing but the scattered chunks is free */
	const auto boot = m->backend.stats();
	std::set<pfn_t> free_chunks(aged.freed.begin(), aged.freed.end());
	for (std::size_t n : {std::size_t{2}, std::size_t{3}, std::min<std::size_t>(nr_free, 512)}) {
		CAPTURE(n);
		auto r = src.acquire(n);
		REQUIRE(r.ok());
		chunk_run run = r.value;
		CHECK(run.scattered());
		CHECK(run.piece_count() == n); /* no two free chunks were adjacent */
		CHECK(run.bytes() == n * chunk_size);
		CHECK(run.alias % chunk_size == 0);
		CHECK(m->nr_free_pages() == free0 - n * pages_per_chunk); /* exactly n chunks: nothing wasted */
		for (std::size_t i = 0; i < n; i++) {
			const frame_range p = run.piece(i);
			CHECK(free_chunks.count(p.pfn) == 1);
			CHECK(m->backend.direct_map_state(p.pfn) == dm_state::invalid);
			CHECK(m->backend.direct_map_state(p.end() - 1) == dm_state::invalid);
			/* The alias maps the pieces one after another. */
			CHECK(m->backend.alias_pfn(run.alias + i * chunk_size + 5 * page_size) == p.pfn + 5);
			CHECK(m->backend.alias_prot(run.alias + i * chunk_size) == prot::rx);
		}
		/* A write across the boundary of two pieces lands in both. */
		const char code[] = "one write, two chunks";
		REQUIRE(src.write(run, chunk_size - 4, code, sizeof code) == error::ok);
		char back[sizeof code] = {};
		if (ua_test::read_alias<typename M::backend>(reinterpret_cast<const void *>(run.alias + chunk_size - 4), back,
							     sizeof back))
			CHECK(std::memcmp(back, code, sizeof code) == 0);
		const pfn_t first = run.piece(0).pfn, last = run.piece(n - 1).pfn;
		REQUIRE(src.release(run) == error::ok);
		CHECK(m->nr_free_pages() == free0);
		CHECK(m->backend.direct_map_state(first) == dm_state::rw);
		CHECK(m->backend.direct_map_state(last) == dm_state::rw);
		CHECK(m->backend.stats().aliases == boot.aliases);
	}
	/* Every free chunk can be had; one more cannot, and the failed acquire gives back what it took. */
	std::vector<chunk_run> runs;
	for (std::size_t left = nr_free; left;) {
		auto r = src.acquire(std::min<std::size_t>(left, 512));
		REQUIRE(r.ok());
		left -= r.value.nr_chunks;
		runs.push_back(r.value);
	}
	CHECK(m->nr_free_pages() == 0);
	CHECK(src.acquire(2).err == error::no_memory);
	CHECK(src.acquire(1).err == error::no_memory);
	for (auto &run : runs)
		REQUIRE(src.release(run) == error::ok);
	CHECK(m->nr_free_pages() == free0);
	CHECK(m->backend.stats().aliases == boot.aliases);
	ua_test::free_blocks(*m, aged);
}

TEST_CASE_TEMPLATE("chunk_source: a power-of-two run up to MAX_PAGE_ORDER takes one contiguous block when there is one", M,
		   BACKENDS)
{
	auto m = M::make();
	cache_config cfg = text_cache_config();
	chunk_source<typename M::backend> src(*m, cfg);
	const std::uint64_t free0 = m->nr_free_pages();
	static_assert(chunk_order + 1 <= page_max_order, "two chunks fit one buddy block");
	auto r = src.acquire(2);
	REQUIRE(r.ok());
	CHECK_FALSE(r.value.scattered());
	CHECK(r.value.order == chunk_order + 1);
	CHECK(src.stats().dm_changes == 1);
	/* Three chunks: no block holds exactly three, so three order-9 blocks, in the 1 GiB region of the first. */
	auto r3 = src.acquire(3);
	REQUIRE(r3.ok());
	CHECK(r3.value.order == chunk_order);
	CHECK(m->nr_free_pages() == free0 - 5 * pages_per_chunk); /* 2 + 3: nothing wasted */
	for (std::size_t i = 0; i < r3.value.piece_count(); i++)
		CHECK((r3.value.piece(i).pfn >> (pud_shift - page_shift)) == (r.value.pfn >> (pud_shift - page_shift)));
	CHECK(src.stats().dm_changes == 1 + r3.value.piece_count()); /* one change per run of adjacent chunks */
	/* Four chunks: a block of order 11 is above MAX_PAGE_ORDER, so order-9 blocks, as vmalloc() takes pages. */
	auto r4 = src.acquire(4);
	REQUIRE(r4.ok());
	CHECK(r4.value.scattered());
	CHECK(r4.value.order == chunk_order);
	CHECK(m->nr_free_pages() == free0 - 9 * pages_per_chunk);
	REQUIRE(src.release(r4.value) == error::ok);
	REQUIRE(src.release(r3.value) == error::ok);
	REQUIRE(src.release(r.value) == error::ok);
	CHECK(m->nr_free_pages() == free0);
}

/* Every operation of a scattered acquire failed in turn: each failure is reported and leaves the machine as it was. */
template <class Inner>
void check_scattered_rollback(std::uint64_t nr_pages)
{
	using B = fault_backend<Inner>;
	machine<B> m(nr_pages);
	if constexpr (std::is_same_v<Inner, linux_backend>)
		REQUIRE(m.backend.inner().ok());
	m.with_lock([](page_allocator &pa, B &b) { pa.set_fault_hook(&B::page_alloc_hook, &b.injector()); });
	cache_config cfg = text_cache_config();
	chunk_source<B> src(m, cfg);
	const auto aged = ua_test::scatter_free_chunks(m);
	const std::uint64_t free0 = m.nr_free_pages();
	const auto aliases0 = m.backend.stats().aliases;
	m.backend.injector().arm(0);
	{
		auto r = src.acquire(3);
		REQUIRE(r.ok());
		REQUIRE(r.value.piece_count() == 3);
		REQUIRE(src.release(r.value) == error::ok);
	}
	const std::uint64_t ops = m.backend.injector().count();
	CHECK(ops > 3 * 3); /* blocks, direct-map changes, flushes, fills, the alias */
	for (std::uint64_t n = 1; n <= ops; n++) {
		CAPTURE(n);
		m.backend.injector().arm(n);
		auto r = src.acquire(3);
		m.backend.injector().disarm();
		if (r.ok()) {
			/* The failed step was in release's half of the count: the acquire went through. */
			REQUIRE(src.release(r.value) == error::ok);
			continue;
		}
		CHECK((r.err == error::no_memory || r.err == error::backend_failure));
		CHECK(m.nr_free_pages() == free0);
		CHECK(m.backend.stats().aliases == aliases0);
		for (pfn_t p : aged.freed)
			CHECK(m.backend.direct_map_state(p) == dm_state::rw);
	}
	auto r = src.acquire(3);
	REQUIRE(r.ok());
	REQUIRE(src.release(r.value) == error::ok);
	CHECK(m.nr_free_pages() == free0);
	ua_test::free_blocks(m, aged);
}

TEST_CASE("chunk_source: a failing step of a scattered acquire undoes every piece (simulated backend)")
{
	check_scattered_rollback<sim_direct_map>(std::uint64_t{1} << 16);
}

TEST_CASE("chunk_source: a failing step of a scattered acquire undoes every piece (real backend)")
{
	check_scattered_rollback<linux_backend>(ua_test::real_machine::default_pages);
}

TEST_CASE("chunk_source: chunks go first where the direct map is already split, and split no 1 GiB page there")
{
	/* 8 GiB: DMA32 below 4 GiB, Normal above; boot maps the first GiB with smaller pages. */
	auto count_split_regions = [](machine<sim_direct_map> &m) {
		std::uint64_t n = 0;
		const pfn_t end = m.with_lock([](page_allocator &pa, auto &) { return pa.end_pfn(); });
		for (pfn_t p = 0; p < end; p += pages_per_region)
			n += m.backend.direct_map_page_size(p) != pud_size;
		return n;
	};
	machine<sim_direct_map> m(std::uint64_t{8} << 18);
	machine<sim_direct_map> off_m(std::uint64_t{8} << 18);
	const std::uint64_t boot_split = count_split_regions(m);
	REQUIRE(boot_split >= 1);
	auto boot = m.backend.stats();
	cache_config on = text_cache_config();
	cache_config off = text_cache_config();
	off.split_regions_first = false;
	chunk_source<sim_direct_map> src(m, on), off_src(off_m, off);
	std::vector<chunk_run> runs, off_runs;
	for (int i = 0; i < 16; i++) {
		auto r = src.acquire(1);
		REQUIRE(r.ok());
		runs.push_back(r.value);
		auto o = off_src.acquire(1);
		REQUIRE(o.ok());
		off_runs.push_back(o.value);
	}
	auto run2 = src.acquire(2); /* an order-10 run: both of its 2 MiB pages already small */
	REQUIRE(run2.ok());
	runs.push_back(run2.value);
	/* Every chunk came from a region boot had split: no 1 GiB page, no 2 MiB page split. */
	const auto s = m.backend.stats();
	CHECK(s.direct_map_level3_splits == boot.direct_map_level3_splits);
	CHECK(s.direct_map_level2_splits == boot.direct_map_level2_splits);
	CHECK(count_split_regions(m) == boot_split);
	for (const auto &r : runs)
		CHECK(ua_test::zone_of(m, r.pfn) != zone_type::dma);
	/* The page allocator's own choice (ZONE_NORMAL, above 4 GiB) splits a 1 GiB page. */
	CHECK(off_m.backend.stats().direct_map_level3_splits > boot.direct_map_level3_splits);
	CHECK(m.check_consistency() == "");
	for (auto &r : runs)
		REQUIRE(src.release(r) == error::ok);
	for (auto &r : off_runs)
		REQUIRE(off_src.release(r) == error::ok);
	CHECK(m.backend.stats().direct_map_level3_splits == boot.direct_map_level3_splits);
	CHECK(m.backend.stats().directmap_1g_kb == boot.directmap_1g_kb);
	CHECK(m.check_consistency() == "");
}
