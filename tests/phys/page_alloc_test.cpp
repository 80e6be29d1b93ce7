// SPDX-License-Identifier: MIT
/* Tests for phys/page_alloc.h and phys/page_age.h. */
#include <doctest/doctest.h>

#include <map>
#include <random>
#include <vector>

#include <unmapped_alloc/phys/page_alloc.h>

using namespace ua;

namespace {

constexpr std::uint64_t gib_pages = pages_per_region;           /* 262144 */
constexpr std::uint64_t mib2_pages = pages_per_chunk;           /* 512 */

pfn_t must_alloc(page_allocator &pa, unsigned order, gfp_t gfp, pfn_t hint = no_hint)
{
	const auto r = pa.alloc_pages(order, gfp, hint);
	REQUIRE_MESSAGE(r.ok(), describe(r.err));
	return r.value;
}

bool same_stats(const free_area_stats &a, const free_area_stats &b)
{
	return a.nr_free == b.nr_free && a.nr_free_pages == b.nr_free_pages;
}

/*
 * Reference decomposition: the free blocks a buddy allocator must hold for a
 * given set of free frames are the maximal aligned runs (at most order 18,
 * never crossing a zone). Computed from a per-frame map with prefix sums.
 */
struct ref_blocks {
	std::vector<std::pair<pfn_t, unsigned>> blocks; /* address order */
	std::array<std::uint64_t, nr_page_orders> hist{};
};

ref_blocks reference_blocks(const std::vector<std::uint8_t> &used, pfn_t zone_split)
{
	const std::uint64_t n = used.size();
	std::vector<std::uint64_t> prefix(n + 1, 0);
	for (std::uint64_t i = 0; i < n; i++)
		prefix[i + 1] = prefix[i] + (used[i] ? 0 : 1);
	ref_blocks ref;
	for (std::uint64_t i = 0; i < n;) {
		if (used[i]) {
			i++;
			continue;
		}
		const std::uint64_t end = i < zone_split ? zone_split : n;
		unsigned o = 0;
		while (o < page_max_order) {
			const std::uint64_t len = std::uint64_t{2} << o;
			if (i % len || i + len > end || prefix[i + len] - prefix[i] != len)
				break;
			o++;
		}
		ref.blocks.emplace_back(i, o);
		ref.hist[o]++;
		i += std::uint64_t{1} << o;
	}
	return ref;
}

}  // namespace

TEST_CASE("a machine starts as maximal free blocks, partial tails included")
{
	page_allocator whole(4 * gib_pages);
	CHECK(whole.nr_free_pages() == 4 * gib_pages);
	CHECK(whole.free_area().nr_free[page_max_order] == 4);
	CHECK(whole.check_consistency() == "");

	/* 2 GiB + 3 MiB + 5 pages: two order-18 blocks, one order-9, and a record for 1 MiB + 5 pages. */
	const std::uint64_t n = 2 * gib_pages + 3 * 256 + 5;
	page_allocator odd(n);
	const auto fa = odd.free_area();
	CHECK(fa.nr_free_pages == n);
	CHECK(fa.nr_free[18] == 2);
	CHECK(fa.nr_free[9] == 1);
	CHECK(fa.nr_free[8] == 1);
	CHECK(fa.nr_free[2] == 1);
	CHECK(fa.nr_free[0] == 1);
	CHECK(odd.check_consistency() == "");

	page_allocator empty(0);
	CHECK(empty.alloc_pages(0, gfp_any_zone).err == error::no_memory);
	CHECK(empty.check_consistency() == "");
}

TEST_CASE("order-0 allocation splits like expand() and freeing merges back")
{
	page_allocator pa(gib_pages);
	CHECK(must_alloc(pa, 0, gfp_normal_only) == 0);
	auto fa = pa.free_area();
	for (unsigned o = 0; o < page_max_order; o++)
		CHECK(fa.nr_free[o] == 1); /* one upper half per order */
	CHECK(fa.nr_free[page_max_order] == 0);
	CHECK(must_alloc(pa, 0, gfp_normal_only) == 1);
	CHECK(must_alloc(pa, chunk_order, gfp_normal_only) == mib2_pages);
	CHECK(pa.nr_free_pages() == gib_pages - 2 - mib2_pages);
	CHECK(pa.check_consistency() == "");

	CHECK(pa.free_pages(0, 0) == error::ok);
	CHECK(pa.free_pages(mib2_pages, chunk_order) == error::ok);
	CHECK(pa.free_pages(1, 0) == error::ok);
	fa = pa.free_area();
	CHECK(fa.nr_free[page_max_order] == 1);
	CHECK(fa.nr_free_pages == gib_pages);
	CHECK(pa.check_consistency() == "");
}

TEST_CASE("the smallest sufficient order wins over a lower address")
{
	page_allocator pa(gib_pages);
	std::vector<pfn_t> p;
	for (int i = 0; i < 16; i++)
		p.push_back(must_alloc(pa, 0, gfp_any_zone));
	CHECK(p[15] == 15);
	for (int i = 0; i < 4; i++)
		REQUIRE(pa.free_pages(p[i], 0) == error::ok); /* order-2 block at 0 */
	REQUIRE(pa.free_pages(9, 0) == error::ok);          /* order-0 block at 9 */
	CHECK(pa.free_area().nr_free[2] == 1);
	CHECK(must_alloc(pa, 0, gfp_any_zone) == 9);        /* exact fit above beats splitting below */
	CHECK(must_alloc(pa, 1, gfp_any_zone) == 0);        /* order 2 at 0 beats order 4 at 16 */
	CHECK(must_alloc(pa, 1, gfp_any_zone) == 2);        /* the upper half expand() freed */
	CHECK(pa.check_consistency() == "");
}

TEST_CASE("zones: ZONE_MOVABLE is the top fraction rounded up to 1 GiB, and gfp flags are honoured")
{
	page_allocator pa(4 * gib_pages, {.movable_fraction = 0.3}); /* 1.2 GiB -> starts at 3 GiB */
	CHECK(pa.zone(zone_type::normal).span == frame_range{0, 3 * gib_pages});
	CHECK(pa.zone(zone_type::movable).span == frame_range{3 * gib_pages, gib_pages});
	CHECK(pa.zone_of(3 * gib_pages - 1) == zone_type::normal);
	CHECK(pa.zone_of(3 * gib_pages) == zone_type::movable);
	CHECK(pa.free_area(zone_type::movable).nr_free_pages == gib_pages);

	/* movable_first takes ZONE_MOVABLE even though normal memory is lower. */
	const pfn_t m = must_alloc(pa, 0, gfp_movable_first);
	CHECK(pa.zone_of(m) == zone_type::movable);
	CHECK(pa.zone_of(must_alloc(pa, 0, gfp_movable_only)) == zone_type::movable);
	/* any_zone is one address space: the smallest fitting block is the split one in ZONE_MOVABLE. */
	CHECK(must_alloc(pa, 0, gfp_any_zone) == 3 * gib_pages + 2);

	/* Exhaust ZONE_NORMAL with chunks: a normal-only request then fails although movable memory is free. */
	std::vector<pfn_t> chunks;
	for (;;) {
		auto r = pa.alloc_pages(chunk_order, gfp_normal_only);
		if (!r)
			break;
		CHECK(pa.zone_of(r.value) == zone_type::normal);
		chunks.push_back(r.value);
	}
	while (pa.alloc_pages(0, gfp_normal_only))
		;
	CHECK(pa.free_area(zone_type::normal).nr_free_pages == 0);
	CHECK(pa.free_area(zone_type::movable).nr_free_pages > 0);
	const auto before = pa.free_area();
	CHECK(pa.alloc_pages(chunk_order, gfp_normal_only).err == error::no_memory);
	CHECK(pa.alloc_pages(0, gfp_normal_only, 3 * gib_pages + 5).err == error::no_memory);
	CHECK(same_stats(before, pa.free_area()));
	/* movable_first falls back from movable to normal, and any_zone still finds movable memory. */
	CHECK(pa.zone_of(must_alloc(pa, chunk_order, gfp_any_zone)) == zone_type::movable);
	CHECK(pa.free_pages(chunks[0], chunk_order) == error::ok);
	while (pa.alloc_pages(0, gfp_movable_only))
		;
	CHECK(must_alloc(pa, 0, gfp_movable_first) == chunks[0]);
	CHECK(pa.check_consistency() == "");

	/* Default: no ZONE_MOVABLE at all; a fraction of one: no ZONE_NORMAL. */
	page_allocator plain(2 * gib_pages);
	CHECK(plain.zone(zone_type::movable).span.nr_pages == 0);
	CHECK(plain.alloc_pages(0, gfp_movable_only).err == error::no_memory);
	page_allocator all_movable(2 * gib_pages, {.movable_fraction = 1.0});
	CHECK(all_movable.zone(zone_type::normal).span.nr_pages == 0);
	CHECK(all_movable.alloc_pages(0, gfp_normal_only).err == error::no_memory);
}

TEST_CASE("bad requests are refused with the right error")
{
	page_allocator pa(gib_pages);
	CHECK(pa.alloc_pages(page_max_order + 1, gfp_any_zone).err == error::too_large);
	CHECK(pa.alloc_pages(0, 0).err == error::bad_flags);
	CHECK(pa.alloc_pages(0, 8).err == error::bad_flags);
	CHECK(pa.alloc_pages(0, gfp_zone_normal | gfp_prefer_movable).err == error::bad_flags);
	CHECK(pa.alloc_pages(0, gfp_any_zone, gib_pages).err == error::foreign_pointer);
	CHECK(to_errno(pa.alloc_pages(0, 0).err) == EINVAL);
	CHECK(pa.nr_free_pages() == gib_pages);
	CHECK(must_alloc(pa, page_max_order, gfp_any_zone) == 0);
	CHECK(to_errno(pa.alloc_pages(0, gfp_any_zone).err) == ENOMEM);
	CHECK(pa.free_pages(0, page_max_order) == error::ok);
	CHECK(pa.check_consistency() == "");
}

TEST_CASE("bad frees are refused, changing nothing; a double free is detected")
{
	page_allocator pa(2 * gib_pages);
	const pfn_t small = must_alloc(pa, 2, gfp_any_zone);  /* 0..3 */
	const pfn_t chunk = must_alloc(pa, chunk_order, gfp_any_zone);
	const pfn_t big = must_alloc(pa, 12, gfp_any_zone);
	const pfn_t huge = must_alloc(pa, page_max_order, gfp_any_zone);
	const auto before = pa.free_area();

	struct bad { pfn_t pfn; unsigned order; error want; };
	const bad cases[] = {
		{small, page_max_order + 1, error::too_large},
		{2 * gib_pages, 0, error::foreign_pointer},
		{small + 2, 2, error::bad_alignment},
		{small + 1, 0, error::interior_pointer},
		{small, 1, error::bad_chunk},
		{small, 3, error::bad_chunk},
		{small + 4, 0, error::not_live},           /* free frame */
		{chunk + mib2_pages * 4, chunk_order, error::not_live},
		{chunk, chunk_order + 1, error::bad_alignment},
		{chunk + 8, 3, error::interior_pointer},
		{chunk, 0, error::bad_chunk},
		{big + mib2_pages, chunk_order, error::interior_pointer},
		{big, 11, error::bad_chunk},
		{huge + mib2_pages, chunk_order, error::interior_pointer},
		{huge, chunk_order, error::bad_chunk},
	};
	for (const auto &c : cases) {
		CAPTURE(c.pfn);
		CAPTURE(c.order);
		CHECK(pa.free_pages(c.pfn, c.order) == c.want);
		CHECK(same_stats(before, pa.free_area()));
	}
	CHECK(pa.allocated_order(small).value == 2);
	CHECK(pa.allocated_order(chunk).value == chunk_order);
	CHECK(pa.allocated_order(big).value == 12);
	CHECK(pa.allocated_order(huge).value == page_max_order);

	CHECK(pa.free_pages(small, 2) == error::ok);
	CHECK(pa.free_pages(small, 2) == error::not_live);
	CHECK(pa.free_pages(chunk, chunk_order) == error::ok);
	CHECK(pa.free_pages(chunk, chunk_order) == error::not_live);
	CHECK(pa.free_pages(huge, page_max_order) == error::ok);
	const auto after = pa.free_area();
	CHECK(pa.free_pages(huge, page_max_order) == error::not_live);
	CHECK(pa.free_pages(big, 12) == error::ok);
	CHECK(pa.free_pages(big, 12) == error::not_live);
	CHECK(pa.nr_free_pages() == 2 * gib_pages);
	CHECK(after.nr_free_pages == 2 * gib_pages - (std::uint64_t{1} << 12));
	CHECK(pa.check_consistency() == "");
}

TEST_CASE("hints: a chunk lands in the hint's 1 GiB region, else the nearest region")
{
	page_allocator pa(5 * gib_pages);
	const pfn_t r2 = 2 * gib_pages;
	/* Without a hint the lowest region is used. */
	CHECK(must_alloc(pa, chunk_order, gfp_normal_only) == 0);
	/* With one, the hint's region, even though region 0 has a smaller free block. */
	const pfn_t c1 = must_alloc(pa, chunk_order, gfp_normal_only, r2 + 12345);
	CHECK(c1 / gib_pages == 2);
	const pfn_t p1 = must_alloc(pa, 0, gfp_normal_only, r2 + 100000);
	CHECK(p1 / gib_pages == 2);
	/* A second chunk near the first: same region, and the free block nearest the hint. */
	const pfn_t c2 = must_alloc(pa, chunk_order, gfp_normal_only, c1);
	CHECK(c2 / gib_pages == 2);
	/* Pageblock 1 holds p1, so the smallest fit is the order-10 block right after it. */
	CHECK(c2 == c1 + 2 * mib2_pages);

	/* Within a region the hint picks the nearest free block of the smallest order. */
	page_allocator near(gib_pages);
	std::vector<pfn_t> all;
	while (auto r = near.alloc_pages(chunk_order, gfp_any_zone))
		all.push_back(r.value);
	REQUIRE(all.size() == 512);
	REQUIRE(near.free_pages(all[10], chunk_order) == error::ok);
	REQUIRE(near.free_pages(all[300], chunk_order) == error::ok);
	REQUIRE(near.free_pages(all[400], chunk_order) == error::ok);
	CHECK(must_alloc(near, chunk_order, gfp_any_zone, all[290]) == all[300]);
	CHECK(must_alloc(near, chunk_order, gfp_any_zone) == all[10]);
	CHECK(must_alloc(near, 0, gfp_any_zone, all[500]) == all[400]);

	/* Region 2 wholly taken: a hint there goes to the nearest region (ties to the lower one). */
	page_allocator fill(5 * gib_pages);
	REQUIRE(must_alloc(fill, page_max_order, gfp_any_zone, r2) == r2);
	CHECK(must_alloc(fill, chunk_order, gfp_any_zone, r2 + 7) / gib_pages == 1);
	CHECK(must_alloc(fill, chunk_order, gfp_any_zone, 4 * gib_pages - 1) / gib_pages == 3);
	/* Region 1 is now split: a hint in region 2 still goes to region 1, which is as near as 3. */
	CHECK(must_alloc(fill, chunk_order, gfp_any_zone, r2) / gib_pages == 1);
	/* A hint in a zone the request may not use picks the nearest acceptable region. */
	page_allocator zoned(4 * gib_pages, {.movable_fraction = 0.5});
	CHECK(must_alloc(zoned, chunk_order, gfp_normal_only, 3 * gib_pages + 9) / gib_pages == 1);
	CHECK(must_alloc(zoned, chunk_order, gfp_movable_only, 1) / gib_pages == 2);
	CHECK(pa.check_consistency() == "");
	CHECK(near.check_consistency() == "");
	CHECK(fill.check_consistency() == "");
	CHECK(zoned.check_consistency() == "");
}

TEST_CASE("randomized: buddy invariants hold against a reference model")
{
	/* 3 GiB + 391 pages; ZONE_MOVABLE is the last 1 GiB + 391 pages. */
	const std::uint64_t n = 3 * gib_pages + 391;
	page_allocator pa(n, {.movable_fraction = 0.4});
	const pfn_t split = pa.zone(zone_type::movable).span.pfn;
	REQUIRE(split == 2 * gib_pages);

	std::mt19937_64 rng(20240611);
	std::vector<std::uint8_t> used(n, 0);
	std::map<pfn_t, unsigned> live;
	std::uint64_t used_pages = 0;
	const gfp_t gfps[] = {gfp_normal_only, gfp_movable_only, gfp_any_zone, gfp_movable_first};
	auto pick_order = [&] {
		const unsigned x = unsigned(rng() % 100);
		if (x < 55)
			return unsigned(rng() % 3);
		if (x < 75)
			return unsigned(3 + rng() % 6);
		if (x < 93)
			return chunk_order;
		return unsigned(10 + rng() % 9);
	};
	auto mark = [&](pfn_t p, unsigned o, std::uint8_t v) {
		for (pfn_t i = p; i < p + (pfn_t{1} << o); i++)
			used[i] = v;
	};
	auto accepts = [&](gfp_t g, pfn_t p) {
		return (p >= split) ? (g & gfp_zone_movable) != 0 : (g & gfp_zone_normal) != 0;
	};
	/* The block the buddy rule must pick without a hint, from the reference decomposition. */
	auto expected = [&](const ref_blocks &ref, unsigned order, gfp_t g) -> pfn_t {
		auto best_in = [&](bool movable) -> pfn_t {
			pfn_t best = no_hint;
			unsigned best_o = nr_page_orders;
			for (auto [p, o] : ref.blocks)
				if (o >= order && (p >= split) == movable && o < best_o) {
					best = p;
					best_o = o;
				}
			return best;
		};
		if (g == gfp_movable_first) {
			const pfn_t m = best_in(true);
			return m != no_hint ? m : best_in(false);
		}
		if (g != gfp_any_zone)
			return best_in(g == gfp_movable_only);
		pfn_t best = no_hint;
		unsigned best_o = nr_page_orders;
		for (auto [p, o] : ref.blocks)
			if (o >= order && o < best_o) {
				best = p;
				best_o = o;
			}
		return best;
	};

	const int steps = 12000;
	for (int step = 0; step < steps; step++) {
		const bool do_alloc = live.empty() || (rng() % 100) < (used_pages < n / 2 ? 60u : 40u);
		if (do_alloc) {
			const unsigned order = pick_order();
			const gfp_t g = gfps[rng() % 4];
			const pfn_t hint = (rng() % 3 == 0) ? pfn_t(rng() % n) : no_hint;
			const auto before = pa.free_area();
			const auto r = pa.alloc_pages(order, g, hint);
			if (!r) {
				REQUIRE(r.err == error::no_memory);
				CHECK(same_stats(before, pa.free_area()));
				continue;
			}
			const pfn_t p = r.value;
			REQUIRE(p % (pfn_t{1} << order) == 0);
			REQUIRE(p + (pfn_t{1} << order) <= n);
			REQUIRE(accepts(g, p));
			REQUIRE((p >= split) == (p + (pfn_t{1} << order) - 1 >= split));
			bool overlaps = false;
			for (pfn_t i = p; i < p + (pfn_t{1} << order); i++)
				overlaps |= used[i] != 0;
			REQUIRE(!overlaps);
			mark(p, order, 1);
			live[p] = order;
			used_pages += pfn_t{1} << order;
		} else {
			auto it = live.begin();
			std::advance(it, rng() % live.size());
			/* Now and then a bad free first: wrong order or interior frame; nothing may change. */
			if (rng() % 8 == 0) {
				const auto before = pa.free_area();
				if (it->second > 0)
					CHECK(pa.free_pages(it->first + 1, 0) == error::interior_pointer);
				CHECK(pa.free_pages(it->first, it->second == 0 ? 1 : 0) != error::ok);
				CHECK(same_stats(before, pa.free_area()));
			}
			REQUIRE(pa.free_pages(it->first, it->second) == error::ok);
			CHECK(pa.free_pages(it->first, it->second) == error::not_live);
			mark(it->first, it->second, 0);
			used_pages -= pfn_t{1} << it->second;
			live.erase(it);
		}
		REQUIRE(pa.nr_free_pages() == n - used_pages);
		if (step % 100 == 0)
			REQUIRE(pa.check_consistency() == "");
		if (step % 1000 == 0) {
			const auto ref = reference_blocks(used, split);
			CHECK(ref.hist == pa.free_area().nr_free);
			/* The next unhinted allocation must be the smallest sufficient block, lowest address. */
			const unsigned order = pick_order();
			const gfp_t g = gfps[rng() % 4];
			const pfn_t want = expected(ref, order, g);
			const auto r = pa.alloc_pages(order, g);
			if (want == no_hint) {
				CHECK(r.err == error::no_memory);
			} else {
				REQUIRE(r.ok());
				CHECK(r.value == want);
				mark(r.value, order, 1);
				live[r.value] = order;
				used_pages += pfn_t{1} << order;
			}
		}
	}
	for (auto [p, o] : live)
		REQUIRE(pa.free_pages(p, o) == error::ok);
	CHECK(pa.nr_free_pages() == n);
	CHECK(pa.check_consistency() == "");
	const auto fa = pa.free_area();
	CHECK(fa.nr_free[page_max_order] == 3); /* everything merged back; the partial tail cannot */
}

TEST_CASE("ageing scatters free memory over most pageblocks yet keeps some 2 MiB blocks")
{
	const std::uint64_t n = 64 * gib_pages; /* a 64 GiB machine */
	page_allocator pa(n, {.movable_fraction = 0.25});
	const auto rep = pa.age({.used_fraction = 0.5, .free_chunk_fraction = 0.02, .seed = 7});
	REQUIRE(rep.ok());
	const std::uint64_t pageblocks = n / mib2_pages;
	CHECK(rep.value.pageblocks_aged + rep.value.pageblocks_kept_free == pageblocks);
	CHECK(rep.value.pageblocks_kept_free > pageblocks / 100);
	CHECK(rep.value.pageblocks_kept_free < pageblocks / 25);
	CHECK(pa.nr_free_pages() == n - rep.value.pages_allocated);
	/* About half of memory stays allocated as page cache. */
	CHECK(rep.value.pages_allocated > n * 45 / 100);
	CHECK(rep.value.pages_allocated < n * 55 / 100);

	const auto fa = pa.free_area();
	std::uint64_t small = 0, large_blocks = 0;
	for (unsigned o = 0; o < pageblock_order; o++)
		small += fa.nr_free[o] << o;
	for (unsigned o = pageblock_order; o < nr_page_orders; o++)
		large_blocks += fa.nr_free[o];
	CHECK(small > fa.nr_free_pages * 9 / 10);  /* most free memory in orders 0..8 */
	CHECK(fa.nr_free[0] > fa.nr_free[1]);      /* and mostly the smallest ones */
	CHECK(fa.nr_free[page_max_order] == 0);
	CHECK(large_blocks > 0);                   /* yet free 2 MiB blocks remain */
	const auto fs = pa.fragmentation();
	CHECK(fs.pageblocks_with_free > pageblocks * 99 / 100);
	CHECK(fs.pageblocks_free == rep.value.pageblocks_kept_free);
	CHECK(fs.regions_with_free == 64);
	CHECK(fs.regions_free == 0);
	CHECK(pa.check_consistency() == "");

	/* Serve thousands of requests on the aged machine: chunks with hints, order-0 background load. */
	std::vector<pfn_t> chunks, pages;
	pfn_t hint = 5 * gib_pages + 3;
	for (int i = 0; i < 200; i++) {
		auto r = pa.alloc_pages(chunk_order, gfp_normal_only, hint);
		if (!r)
			break;
		CHECK(pa.zone_of(r.value) == zone_type::normal);
		chunks.push_back(r.value);
		hint = r.value;
	}
	CHECK(!chunks.empty());
	for (int i = 0; i < 20000; i++)
		pages.push_back(must_alloc(pa, 0, gfp_movable_first));
	CHECK(pa.check_consistency() == "");
	for (pfn_t p : pages)
		REQUIRE(pa.free_pages(p, 0) == error::ok);
	for (pfn_t c : chunks)
		REQUIRE(pa.free_pages(c, chunk_order) == error::ok);
	CHECK(same_stats(fa, pa.free_area()));

	/* The page-cache pages are ordinary order-0 allocations. */
	pfn_t cached = 0;
	while (!pa.allocated_order(cached))
		cached++;
	CHECK(pa.allocated_order(cached).value == 0);
	CHECK(pa.free_pages(cached, 0) == error::ok);
	CHECK(pa.free_pages(cached, 0) == error::not_live);
	CHECK(pa.check_consistency() == "");
}

TEST_CASE("ageing is deterministic per seed, bounded to its zones, and validates parameters")
{
	const std::uint64_t n = 4 * gib_pages + 3 * mib2_pages;
	const page_alloc_config cfg{.movable_fraction = 0.3};
	page_allocator a(n, cfg), b(n, cfg), c(n, cfg);
	REQUIRE(a.age({.seed = 3, .gfp = gfp_normal_only}).ok());
	REQUIRE(b.age({.seed = 3, .gfp = gfp_normal_only}).ok());
	REQUIRE(c.age({.seed = 4, .gfp = gfp_normal_only}).ok());
	CHECK(same_stats(a.free_area(), b.free_area()));
	CHECK(!same_stats(a.free_area(), c.free_area()));
	/* ZONE_MOVABLE (the last 1 GiB + 3 pageblocks, from 3 GiB) was not aged. */
	CHECK(a.free_area(zone_type::movable).nr_free_pages == gib_pages + 3 * mib2_pages);
	CHECK(a.free_area(zone_type::movable).nr_free[page_max_order] == 1);
	CHECK(a.check_consistency() == "");

	/* free_chunk_fraction 1 keeps everything free and merged; used_fraction 1 fills the rest. */
	page_allocator d(2 * gib_pages);
	REQUIRE(d.age({.free_chunk_fraction = 1.0}).ok());
	CHECK(d.free_area().nr_free[page_max_order] == 2);
	page_allocator e(2 * gib_pages);
	const auto full = e.age({.used_fraction = 1.0, .free_chunk_fraction = 0.0});
	REQUIRE(full.ok());
	CHECK(e.nr_free_pages() == 0);
	CHECK(full.value.pages_allocated == 2 * gib_pages);
	CHECK(e.check_consistency() == "");

	page_allocator f(gib_pages);
	CHECK(f.age({.used_fraction = 1.5}).err == error::bad_flags);
	CHECK(f.age({.free_chunk_fraction = -0.1}).err == error::bad_flags);
	CHECK(f.age({.gfp = 0}).err == error::bad_flags);
	CHECK(f.nr_free_pages() == gib_pages);
}

TEST_CASE("a 1 TiB machine constructs cheaply and serves chunks")
{
	const std::uint64_t n = 1024 * gib_pages; /* 268M frames */
	page_allocator pa(n, {.movable_fraction = 0.25});
	CHECK(pa.nr_free_pages() == n);
	CHECK(pa.zone(zone_type::movable).span.pfn == 768 * gib_pages);
	std::vector<pfn_t> chunks;
	for (int i = 0; i < 2000; i++) {
		const pfn_t c = must_alloc(pa, chunk_order, gfp_normal_only, 700 * gib_pages);
		CHECK(pa.zone_of(c) == zone_type::normal);
		chunks.push_back(c);
	}
	/* 2000 chunks fill region 700, then spill to its neighbours: at most 4 regions touched. */
	std::map<pfn_t, int> regions;
	for (pfn_t c : chunks)
		regions[c / gib_pages]++;
	CHECK(regions.size() == 4);
	CHECK(regions[700] == 512);
	CHECK(regions.begin()->first >= 698);
	CHECK(must_alloc(pa, page_max_order, gfp_movable_first) == 768 * gib_pages);
	CHECK(pa.check_consistency() == "");
	for (pfn_t c : chunks)
		REQUIRE(pa.free_pages(c, chunk_order) == error::ok);
	CHECK(pa.free_pages(768 * gib_pages, page_max_order) == error::ok);
	CHECK(pa.free_area().nr_free[page_max_order] == 1024);
	CHECK(pa.check_consistency() == "");
}
