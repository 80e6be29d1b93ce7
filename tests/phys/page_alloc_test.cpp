// SPDX-License-Identifier: MIT
/*
 * Tests for phys/page_alloc.h: each kernel rule on a case small enough to
 * work out by hand (the expected frame numbers are derived in the
 * comments), plus randomized invariant checks.
 */
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <random>
#include <vector>

#include <unmapped_alloc/phys/page_alloc.h>

using namespace ua;

namespace {

constexpr std::uint64_t gib_pages = pages_per_region; /* 262144 */
constexpr std::uint64_t mib_pages = 256;

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

}  // namespace

TEST_CASE("boot frees RAM in MAX_PAGE_ORDER blocks per zone; buddyinfo prints them")
{
	/* 32 MiB flat: DMA [0, 16 MiB) and DMA32 [16, 32 MiB), four order-10 blocks each. */
	page_allocator pa(8192);
	CHECK(pa.nr_pages() == 8192);
	CHECK(pa.zone(zone_type::dma).span.nr_pages == 4096);
	CHECK(pa.zone(zone_type::dma32).span.pfn == 4096);
	CHECK(pa.zone(zone_type::normal).managed == 0);
	CHECK(pa.free_area(zone_type::dma).nr_free[page_max_order] == 4);
	CHECK(pa.buddyinfo() ==
	      "Node 0, zone      DMA      0      0      0      0      0      0      0      0      0      0      4 \n"
	      "Node 0, zone    DMA32      0      0      0      0      0      0      0      0      0      0      4 \n");
	const std::string pti = pa.pagetypeinfo();
	CHECK(pti.find("Page block order: 9\nPages per block:  512\n") == 0);
	CHECK(pti.find("Node    0, zone      DMA, type      Movable      0      0      0      0      0      0      0      0      0      0      4 \n") != std::string::npos);
	CHECK(pti.find("Node 0, zone    DMA32            0            8            0 \n") != std::string::npos);
	CHECK(pa.check_consistency() == "");
	/* A partial tail: 3000 frames are 2 x order 10, then 952 = 512 + 256 + 128 + 32 + 16 + 8. */
	page_allocator small(3000);
	const auto fa = small.free_area();
	CHECK(fa.nr_free[10] == 2);
	CHECK(fa.nr_free[9] == 1);
	CHECK(fa.nr_free[8] == 1);
	CHECK(fa.nr_free[7] == 1);
	CHECK(fa.nr_free[6] == 0);
	CHECK(fa.nr_free[5] == 1);
	CHECK(fa.nr_free[4] == 1);
	CHECK(fa.nr_free[3] == 1);
	CHECK(small.check_consistency() == "");
}

TEST_CASE("order > MAX_PAGE_ORDER is refused, as __alloc_pages() refuses it")
{
	page_allocator pa(gib_pages);
	CHECK(pa.alloc_pages(page_max_order + 1, gfp_kernel).err == error::too_large);
	CHECK(pa.alloc_pages(18, gfp_any_zone).err == error::too_large);
	CHECK(pa.free_pages(0, page_max_order + 1) == error::too_large);
	CHECK(pa.nr_free_pages() == gib_pages);
	CHECK(must_alloc(pa, page_max_order, gfp_kernel) % 1024 == 0);
}

TEST_CASE("buddy lists are LIFO: the last freed block is reused first")
{
	page_allocator pa(8192);
	/*
	 * Order 5 is above PAGE_ALLOC_COSTLY_ORDER, so it bypasses the pcp lists.
	 * GFP_KERNEL prefers DMA32 here (no Normal): the first order-10 block at
	 * 4096 is split by expand(), the low part returned: 4096, then 4128
	 * (the order-5 half), then 4160 out of the order-6 half, leaving 4192.
	 */
	const pfn_t a = must_alloc(pa, 5, gfp_kernel), b = must_alloc(pa, 5, gfp_kernel);
	const pfn_t c = must_alloc(pa, 5, gfp_kernel), d = must_alloc(pa, 5, gfp_kernel);
	CHECK(a == 4096);
	CHECK(b == 4128);
	CHECK(c == 4160);
	CHECK(d == 4192);
	/* Neither a nor c can merge (their buddies b and d are allocated): each goes to the list head. */
	REQUIRE(pa.free_pages(a, 5) == error::ok);
	REQUIRE(pa.free_pages(c, 5) == error::ok);
	CHECK(must_alloc(pa, 5, gfp_kernel) == c);
	CHECK(must_alloc(pa, 5, gfp_kernel) == a);
	/* Order 0 goes through this CPU's pcp list: the page just freed comes straight back. */
	const pfn_t p = must_alloc(pa, 0, gfp_kernel);
	const pfn_t q = must_alloc(pa, 0, gfp_kernel);
	REQUIRE(pa.free_pages(p, 0) == error::ok);
	CHECK(must_alloc(pa, 0, gfp_kernel) == p);
	REQUIRE(pa.free_pages(q, 0) == error::ok);
	REQUIRE(pa.free_pages(p, 0) == error::ok);
	CHECK(must_alloc(pa, 0, gfp_kernel) == p);
	CHECK(must_alloc(pa, 0, gfp_kernel) == q);
	CHECK(pa.check_consistency() == "");
}

TEST_CASE("freeing merges buddies back into the boot blocks")
{
	page_allocator pa(8192);
	const auto boot = pa.free_area();
	const std::string boot_info = pa.buddyinfo();
	const pfn_t a = must_alloc(pa, 4, gfp_kernel), b = must_alloc(pa, 4, gfp_kernel);
	CHECK(b == a + 16); /* expand() hands out the low halves in turn */
	CHECK(pa.free_area(zone_type::dma32).nr_free[page_max_order] == 3);
	REQUIRE(pa.free_pages(a, 4) == error::ok);
	CHECK(pa.free_area(zone_type::dma32).nr_free[4] == 1); /* a waits for b */
	REQUIRE(pa.free_pages(b, 4) == error::ok);
	/* b merges with a, then with every upper half expand() left: one order-10 block again. */
	CHECK(same_stats(boot, pa.free_area()));
	CHECK(pa.buddyinfo() == boot_info);
	CHECK(pa.check_consistency() == "");
}

TEST_CASE("pcp: an empty list is refilled with batch pages by rmqueue_bulk(), then alloc_factor doubles it")
{
	/*
	 * 2 GiB flat: DMA32 manages 524288 - 4096 = 520192 frames.
	 * zone_batchsize(): min(520192 >> 10, 256) / 4 = 64, rounddown_pow_of_two(96) - 1 = 63.
	 * zone_highsize() without watermarks: max(0, 63 * 4) = 252.
	 */
	page_allocator pa(2 * gib_pages);
	const zone_info z0 = pa.zone(zone_type::dma32);
	REQUIRE(z0.pcp_batch == 63);
	REQUIRE(z0.pcp_high == 252);
	const std::uint64_t buddy0 = z0.nr_free_pages;
	const pfn_t first = must_alloc(pa, 0, gfp_kernel);
	zone_info z = pa.zone(zone_type::dma32);
	CHECK(z.pcp_pages == 62);                        /* 63 taken, one handed out */
	CHECK(z.nr_free_pages == buddy0 - 1);
	CHECK(pa.free_area(zone_type::dma32).nr_free[0] == 1); /* 1024 - 63 = 512 + 256 + 128 + 64 + 1 */
	/* The batch went to the list tail in physical order, so the next pages follow. */
	CHECK(first == 4096);
	for (pfn_t i = 1; i < 63; i++)
		CHECK(must_alloc(pa, 0, gfp_kernel) == first + i);
	CHECK(pa.zone(zone_type::dma32).pcp_pages == 0);
	/* Second refill: batch << alloc_factor (1) = 126 <= max(252 - 0 - 63, 63). */
	(void)must_alloc(pa, 0, gfp_kernel);
	CHECK(pa.zone(zone_type::dma32).pcp_pages == 125);
	/* Another CPU has its own list: its first request refills that list. */
	pa.set_cpu(1);
	(void)must_alloc(pa, 0, gfp_kernel);
	CHECK(pa.zone(zone_type::dma32).pcp_pages == 125 + 62);
	pa.drain_all_pages();
	CHECK(pa.zone(zone_type::dma32).pcp_pages == 0);
	CHECK(pa.check_consistency() == "");
}

TEST_CASE("pcp: frees past pcp->high go back to the buddy lists in a bulk")
{
	page_allocator pa(2 * gib_pages);
	std::vector<pfn_t> held;
	for (int i = 0; i < 600; i++)
		held.push_back(must_alloc(pa, 0, gfp_kernel));
	pa.drain_all_pages();
	int max_count = 0;
	for (pfn_t p : held) {
		REQUIRE(pa.free_pages(p, 0) == error::ok);
		max_count = std::max(max_count, int(pa.zone(zone_type::dma32).pcp_pages));
	}
	/* count reaches high (252), then nr_pcp_free() frees at least batch and leaves at least batch. */
	CHECK(max_count == 251);
	CHECK(pa.zone(zone_type::dma32).pcp_pages >= 63);
	CHECK(pa.nr_free_pages() == pa.nr_pages());
	CHECK(pa.check_consistency() == "");
}

TEST_CASE("fallback: an unmovable request claims a whole movable block")
{
	page_allocator pa(2 * gib_pages);
	/* Every pageblock starts MIGRATE_MOVABLE (memmap_init()). */
	CHECK(pa.pageblock_migratetype(4096) == migrate_movable);
	const pfn_t p = must_alloc(pa, 0, gfp_kernel);
	/*
	 * No unmovable free block: __rmqueue_claim() takes the largest movable
	 * block (order 10 at 4096) and changes its two pageblocks; the third
	 * pageblock keeps its type.
	 */
	CHECK(p == 4096);
	CHECK(pa.pageblock_migratetype(4096) == migrate_unmovable);
	CHECK(pa.pageblock_migratetype(4096 + 512) == migrate_unmovable);
	CHECK(pa.pageblock_migratetype(4096 + 1024) == migrate_movable);
	/* A movable request leaves that block alone: the next movable block, 5120. */
	CHECK(must_alloc(pa, 0, gfp_any_zone) == 5120);
	CHECK(pa.pageblock_migratetype(5120) == migrate_movable);
	CHECK(pa.check_consistency() == "");
}

TEST_CASE("fallback: a claim below pageblock order needs half the pageblock free or alike")
{
	/* 32 MiB: DMA32 holds 8 pageblocks at 4096 + 512 k. */
	page_allocator pa(8192);
	/* Fill all of DMA32 with movable order-0 pages, then free one order-3 run in pageblock 0 and 300 pages in pageblock 1. */
	std::vector<pfn_t> pages;
	for (;;) {
		auto r = pa.alloc_pages(0, gfp_movable | gfp_dma32);
		if (!r)
			break;
		pages.push_back(r.value);
	}
	(void)pa.alloc_pages(0, gfp_movable); /* DMA too: nothing free anywhere */
	std::map<pfn_t, bool> held;
	for (pfn_t p : pages)
		held[p] = true;
	REQUIRE(held.count(4096));
	auto free_range = [&](pfn_t from, pfn_t n) {
		for (pfn_t p = from; p < from + n; p++)
			REQUIRE(pa.free_pages(p, 0) == error::ok);
	};
	free_range(4096, 8);        /* pageblock 4096: 8 free, 504 movable */
	free_range(4608 + 8, 300);  /* pageblock 4608: 300 free */
	pa.drain_all_pages();
	REQUIRE(pa.zone(zone_type::dma32).nr_free_pages == 308);
	/*
	 * An unmovable order-2 request: __rmqueue_claim() tries the largest
	 * movable block first, an order-8 block inside pageblock 4608; with 300
	 * of 512 pages free it claims that pageblock.
	 */
	const pfn_t u = must_alloc(pa, 2, gfp_kernel | gfp_dma32);
	CHECK(pa.pageblock_migratetype(4608) == migrate_unmovable);
	CHECK(pa.pageblock_migratetype(4096) == migrate_movable);
	CHECK((u >= 4608 && u < 5120));
	CHECK(pa.check_consistency() == "");
}

TEST_CASE("zonelist: GFP_KERNEL falls back Normal -> DMA32 -> DMA; zone modifiers bound it")
{
	/* 4 GiB + 64 MiB flat: Normal is [4 GiB, 4 GiB + 64 MiB), 16 order-10 blocks. */
	page_allocator pa(gib_pages * 4 + 64 * mib_pages);
	CHECK(pa.zone(zone_type::normal).managed == 64 * mib_pages);
	CHECK(must_alloc(pa, 0, gfp_dma) < max_dma_pfn);
	const pfn_t d32 = must_alloc(pa, 0, gfp_dma32);
	CHECK((d32 >= max_dma_pfn && d32 < max_dma32_pfn));
	std::vector<pfn_t> normal;
	for (int i = 0; i < 16; i++)
		normal.push_back(must_alloc(pa, page_max_order, gfp_kernel));
	for (pfn_t p : normal)
		CHECK(p >= max_dma32_pfn);
	/* Normal is empty: DMA32 next, from its lowest block (boot freed it in address order). */
	const pfn_t next = must_alloc(pa, page_max_order, gfp_kernel);
	CHECK(next == max_dma_pfn + 1024);
	CHECK(pa.zone_of(next) == zone_type::dma32);
	/* Exhaust DMA32's order-10 blocks: then DMA. */
	for (;;) {
		const pfn_t p = must_alloc(pa, page_max_order, gfp_kernel);
		if (pa.zone_of(p) != zone_type::dma32) {
			CHECK(pa.zone_of(p) == zone_type::dma);
			break;
		}
	}
	CHECK(pa.check_consistency() == "");
}

TEST_CASE("ZONE_MOVABLE: only __GFP_HIGHMEM | __GFP_MOVABLE requests reach it, and they prefer it")
{
	/* 8 GiB flat, movablecore = half of RAM: Movable starts at 4 GiB rounded up to 1024 frames. */
	page_allocator pa(8 * gib_pages, {.movable_fraction = 0.5});
	const zone_info mv = pa.zone(zone_type::movable);
	CHECK(mv.span.pfn == 4 * gib_pages);
	CHECK(mv.managed == 4 * gib_pages);
	CHECK(pa.zone(zone_type::normal).managed == 0);
	CHECK(pa.zone_of(must_alloc(pa, 0, gfp_highuser_movable)) == zone_type::movable);
	CHECK(pa.zone_of(must_alloc(pa, 0, gfp_movable)) == zone_type::dma32);
	CHECK(pa.zone_of(must_alloc(pa, chunk_order, gfp_normal_only)) == zone_type::dma32);
}

TEST_CASE("watermarks: a request fails while free pages remain below min + lowmem_reserve")
{
	/*
	 * 64 MiB flat, min_free_kbytes 1024 (256 pages): DMA 4096 frames,
	 * DMA32 12288. __setup_per_zone_wmarks(): min DMA 256 * 4096 / 16384 =
	 * 64, DMA32 192; low adds max(min / 4, managed / 1000): 80 and 240.
	 * lowmem_reserve of DMA for a Normal-class request: 12288 / 256 = 48.
	 */
	page_allocator pa(16384, {.min_free_kbytes = 1024});
	const zone_info dma = pa.zone(zone_type::dma), d32 = pa.zone(zone_type::dma32);
	CHECK(dma.wmark_min == 64);
	CHECK(dma.wmark_low == 80);
	CHECK(dma.wmark_high == 96);
	CHECK(d32.wmark_min == 192);
	CHECK(d32.wmark_low == 240);
	std::uint64_t n = 0;
	for (;;) {
		auto r = pa.alloc_pages(0, gfp_kernel);
		if (!r) {
			CHECK(r.err == error::no_memory);
			break;
		}
		n++;
	}
	/* The last try drained the pcp lists; each zone is at or below its refusal line, yet not empty. */
	const zone_info dma_end = pa.zone(zone_type::dma), d32_end = pa.zone(zone_type::dma32);
	CHECK(dma_end.pcp_pages == 0);
	CHECK(d32_end.pcp_pages == 0);
	CHECK(d32_end.nr_free_pages <= 192);
	CHECK(d32_end.nr_free_pages > 150);
	CHECK(dma_end.nr_free_pages <= 64 + 48);
	CHECK(dma_end.nr_free_pages > 64);
	CHECK(n == pa.nr_pages() - pa.nr_free_pages());
	CHECK(pa.check_consistency() == "");
	/* min_free_kbytes_auto follows calculate_min_free_kbytes(): 128 KiB floor, THP's 11 pageblocks per zone capped at 5% of lowmem. */
	page_allocator au(16384, {.min_free_kbytes = min_free_kbytes_auto});
	/* int_sqrt(65536 * 16) = 1024 KiB; THP: 2 zones * 11 * 512 pages, capped at 16384 / 20 = 819 pages = 3276 KiB. */
	CHECK(au.zone(zone_type::dma32).wmark_min == 3276 / 4 * 12288 / 16384);
}

TEST_CASE("holes and reserved ranges are never handed out")
{
	/* An x86 VM of 5 GiB: page 0 and [0x9f, 0x100) reserved, RAM to 3 GiB, a hole to 4 GiB, 2 GiB above. */
	auto mm = memory_map::x86_vm(5 * gib_pages);
	REQUIRE(mm.ok());
	page_allocator pa(mm.value);
	CHECK(pa.nr_pages() == mm.value.ram_pages());
	CHECK(pa.end_pfn() == 6 * gib_pages);
	CHECK(pa.allocated_order(3 * gib_pages + 5).err == error::foreign_pointer);
	CHECK(pa.free_pages(0, 0) == error::foreign_pointer);
	std::uint64_t n = 0;
	bool in_hole = false;
	for (;;) {
		auto r = pa.alloc_pages(0, gfp_kernel);
		if (!r)
			break;
		const pfn_t p = r.value;
		in_hole |= p == 0 || (p >= 0x9f && p < 0x100) || (p >= 3 * gib_pages && p < 4 * gib_pages);
		n++;
	}
	CHECK(!in_hole);
	CHECK(n == mm.value.ram_pages());
	CHECK(pa.nr_free_pages() == 0);
	CHECK(pa.check_consistency() == "");
}

TEST_CASE("bad requests and bad frees are refused, changing nothing; a double free is detected")
{
	page_allocator pa(gib_pages);
	CHECK(pa.alloc_pages(0, 1u << 5).err == error::bad_flags);
	CHECK(pa.alloc_pages(0, gfp_dma | gfp_dma32).err == error::bad_flags);
	CHECK(pa.alloc_pages(0, gfp_movable | gfp_reclaimable).err == error::bad_flags);
	CHECK(pa.alloc_pages(0, gfp_any_zone, gib_pages).err == error::foreign_pointer);
	CHECK(to_errno(pa.alloc_pages(0, 1u << 7).err) == EINVAL);
	CHECK(pa.nr_free_pages() == gib_pages);

	const pfn_t small = must_alloc(pa, 2, gfp_kernel);
	const pfn_t chunk = must_alloc(pa, chunk_order, gfp_kernel);
	const pfn_t big = must_alloc(pa, page_max_order, gfp_kernel);
	const auto before = pa.free_area();
	struct bad { pfn_t pfn; unsigned order; error want; };
	const bad cases[] = {
		{small, page_max_order + 1, error::too_large},
		{gib_pages, 0, error::foreign_pointer},
		{small + 2, 2, error::bad_alignment},
		{small + 1, 0, error::interior_pointer},
		{small, 1, error::bad_chunk},
		{small, 3, error::bad_chunk},
		{chunk, chunk_order + 1, error::bad_alignment},
		{chunk + 8, 3, error::interior_pointer},
		{chunk, 0, error::bad_chunk},
		{big + 512, chunk_order, error::interior_pointer},
		{big, chunk_order, error::bad_chunk},
	};
	for (const auto &c : cases) {
		CAPTURE(c.pfn);
		CAPTURE(c.order);
		CHECK(pa.free_pages(c.pfn, c.order) == c.want);
		CHECK(same_stats(before, pa.free_area()));
	}
	CHECK(pa.allocated_order(small).value == 2);
	CHECK(pa.allocated_order(chunk).value == chunk_order);
	CHECK(pa.allocated_order(big).value == page_max_order);
	CHECK(pa.free_pages(small, 2) == error::ok);
	CHECK(pa.free_pages(small, 2) == error::not_live);
	CHECK(pa.free_pages(chunk, chunk_order) == error::ok);
	CHECK(pa.free_pages(chunk, chunk_order) == error::not_live);
	CHECK(pa.free_pages(big, page_max_order) == error::ok);
	CHECK(pa.free_pages(big, page_max_order) == error::not_live);
	CHECK(pa.nr_free_pages() == gib_pages);
	CHECK(pa.check_consistency() == "");
	/* Everything fits in memory, nothing is left: ENOMEM. */
	page_allocator tiny(4);
	for (int i = 0; i < 4; i++)
		(void)must_alloc(tiny, 0, gfp_kernel);
	CHECK(to_errno(tiny.alloc_pages(0, gfp_kernel).err) == ENOMEM);
}

TEST_CASE("proposal: with placement_hint the block nearest the hint's 1 GiB region is taken; without, the hint is ignored")
{
	page_allocator off(8 * gib_pages);
	page_allocator on(8 * gib_pages, {.placement_hint = true});
	const pfn_t hint = 6 * gib_pages + 12345;
	const pfn_t a = must_alloc(off, chunk_order, gfp_kernel, hint);
	const pfn_t b = must_alloc(off, chunk_order, gfp_kernel);
	CHECK(a / gib_pages == 4); /* the lowest Normal block, as without a hint */
	CHECK(b == a + 512);
	const pfn_t h = must_alloc(on, chunk_order, gfp_kernel, hint);
	CHECK(h / gib_pages == 6);
	CHECK(on.pageblock_migratetype(h) == migrate_unmovable);
	CHECK(on.check_consistency() == "");
}

TEST_CASE("a copy is an independent machine in the same state")
{
	page_allocator pa(gib_pages);
	const pfn_t p = must_alloc(pa, 0, gfp_kernel);
	page_allocator copy = pa;
	CHECK(copy.buddyinfo() == pa.buddyinfo());
	REQUIRE(copy.free_pages(p, 0) == error::ok);
	CHECK(pa.allocated_order(p).value == 0);
	CHECK(must_alloc(copy, 0, gfp_kernel) == p);
	CHECK(copy.check_consistency() == "");
	CHECK(pa.check_consistency() == "");
}

TEST_CASE("randomized: invariants hold over random allocations and frees; everything merges back")
{
	/* 4 GiB + 200 MiB + 3 pages: every zone, a partial tail; ZONE_MOVABLE the top tenth. */
	const std::uint64_t n = 4 * gib_pages + 200 * mib_pages + 3;
	page_allocator pa(n, {.movable_fraction = 0.1, .min_free_kbytes = min_free_kbytes_auto});
	const std::string boot_info = pa.buddyinfo();
	const pfn_t movable_start = pa.zone(zone_type::movable).span.pfn;
	std::mt19937_64 rng(20240611);
	std::vector<std::uint8_t> used(n, 0);
	std::map<pfn_t, unsigned> live;
	std::uint64_t used_pages = 0;
	const gfp_t gfps[] = {gfp_kernel, gfp_highuser_movable, gfp_movable, gfp_reclaimable, gfp_dma32, gfp_dma};
	for (int step = 0; step < 30000; step++) {
		pa.set_cpu(unsigned(rng() % 2));
		if (live.empty() || rng() % 100 < (used_pages < n / 2 ? 60u : 40u)) {
			const unsigned x = unsigned(rng() % 100);
			const unsigned order = x < 60 ? unsigned(rng() % 4) : x < 80 ? unsigned(4 + rng() % 5) : x < 95 ? 9u : 10u;
			const gfp_t g = gfps[rng() % 6];
			const auto r = pa.alloc_pages(order, g);
			if (!r) {
				REQUIRE(r.err == error::no_memory);
				continue;
			}
			const pfn_t p = r.value;
			REQUIRE(p % (pfn_t{1} << order) == 0);
			REQUIRE(p + (pfn_t{1} << order) <= n);
			if (!(g & gfp_highmem))
				REQUIRE(p + (pfn_t{1} << order) <= movable_start);
			if (g & gfp_dma32)
				REQUIRE(p < max_dma32_pfn);
			if (g & gfp_dma)
				REQUIRE(p < max_dma_pfn);
			for (pfn_t i = p; i < p + (pfn_t{1} << order); i++) {
				REQUIRE(!used[i]);
				used[i] = 1;
			}
			live[p] = order;
			used_pages += pfn_t{1} << order;
		} else {
			auto it = live.begin();
			std::advance(it, rng() % live.size());
			REQUIRE(pa.free_pages(it->first, it->second) == error::ok);
			CHECK(pa.free_pages(it->first, it->second) == error::not_live);
			for (pfn_t i = it->first; i < it->first + (pfn_t{1} << it->second); i++)
				used[i] = 0;
			used_pages -= pfn_t{1} << it->second;
			live.erase(it);
		}
		REQUIRE(pa.nr_free_pages() == n - used_pages);
		if (step % 2000 == 0)
			REQUIRE(pa.check_consistency() == "");
	}
	for (auto [p, o] : live)
		REQUIRE(pa.free_pages(p, o) == error::ok);
	pa.drain_all_pages();
	CHECK(pa.nr_free_pages() == n);
	CHECK(pa.check_consistency() == "");
	CHECK(pa.buddyinfo() == boot_info);
}

TEST_CASE("above MAX_PAGE_ORDER: alloc_contig_pages() takes the lowest wholly free aligned range")
{
	page_allocator pa(2 * gib_pages);
	const std::string boot = pa.buddyinfo();
	CHECK(pa.alloc_contig_pages(10, gfp_kernel).err == error::bad_flags);
	CHECK(pa.alloc_contig_pages(16, gfp_kernel).err == error::too_large);
	/* The zonelist's first zone is DMA32 (no Normal), scanned from its start, 4096, aligned to 2048. */
	const auto a = pa.alloc_contig_pages(11, gfp_kernel);
	REQUIRE(a.ok());
	CHECK(a.value == 4096);
	CHECK(pa.allocated_order(a.value).value == 11);
	/* A page in the next range makes it unusable: the one after is taken. */
	const pfn_t p = must_alloc(pa, 0, gfp_kernel); /* 6144, from the lowest order-10 block left */
	CHECK(p == 6144);
	const auto b = pa.alloc_contig_pages(11, gfp_kernel);
	REQUIRE(b.ok());
	CHECK(b.value == 8192);
	CHECK(pa.free_pages(a.value, 11) == error::too_large);
	CHECK(pa.free_contig_range(a.value + 1, 11) == error::bad_alignment);
	CHECK(pa.free_contig_range(a.value, 12) == error::bad_chunk); /* 4096 is order-12 aligned */
	CHECK(pa.free_contig_range(b.value, 11) == error::ok);
	CHECK(pa.free_contig_range(b.value, 11) == error::not_live);
	CHECK(pa.free_contig_range(a.value, 11) == error::ok);
	REQUIRE(pa.free_pages(p, 0) == error::ok);
	pa.drain_all_pages();
	CHECK(pa.buddyinfo() == boot);
	CHECK(pa.check_consistency() == "");
}

TEST_CASE("alloc_contig_range(): a block at the caller's address, only when wholly free and in a zone gfp allows")
{
	page_allocator pa(2 * gib_pages);
	const std::string boot = pa.buddyinfo();
	/* Boot frees order-10 blocks: 4 of them in ZONE_DMA's 16 MiB, 256 per GiB elsewhere. */
	const std::uint64_t r0 = pa.region_free_blocks(0);
	CHECK(pa.region_free_blocks(1) == 256);
	/* 8192 heads a free order-10 boot block: its lower half is taken, the upper half stays free. */
	CHECK(pa.range_free(8192, 9));
	CHECK(pa.range_free(8704, 9)); /* inside the order-10 block, not its head */
	const auto a = pa.alloc_contig_range(8192, 9, gfp_kernel);
	REQUIRE(a.ok());
	CHECK(a.value == 8192);
	CHECK(pa.allocated_order(8192).value == 9);
	CHECK(!pa.range_free(8192, 9));
	CHECK(pa.range_free(8704, 9));
	CHECK(pa.region_free_blocks(0) == r0); /* the order-10 block became a free order-9 one */
	CHECK(pa.check_consistency() == "");
	const auto b = pa.alloc_contig_range(8704, 9, gfp_kernel);
	REQUIRE(b.ok());
	CHECK(pa.region_free_blocks(0) == r0 - 1);
	/* Refused, changing nothing. */
	const std::string before = pa.buddyinfo();
	CHECK(pa.alloc_contig_range(8192, 9, gfp_kernel).err == error::no_memory);   /* taken */
	CHECK(pa.alloc_contig_range(9216 + 1, 9, gfp_kernel).err == error::bad_alignment);
	CHECK(pa.alloc_contig_range(9216, 11, gfp_kernel).err == error::too_large);
	CHECK(pa.alloc_contig_range(2 * gib_pages, 9, gfp_kernel).err == error::foreign_pointer);
	CHECK(pa.alloc_contig_range(0, 9, gfp_kernel).err == error::no_memory);      /* ZONE_DMA: gfp_kernel never takes it */
	CHECK(pa.buddyinfo() == before);
	const bool dma_free = pa.range_free(0, 9);
	CHECK(pa.alloc_contig_range(0, 9, gfp_dma).ok() == dma_free); /* gfp_dma may */
	/* One allocated page anywhere in the range makes it unusable. */
	const pfn_t p = must_alloc(pa, 0, gfp_kernel);
	const pfn_t block = p & ~pfn_t{511};
	CHECK(!pa.range_free(block, 9));
	CHECK(pa.alloc_contig_range(block, 9, gfp_kernel).err == error::no_memory);
	REQUIRE(pa.free_pages(p, 0) == error::ok);
	REQUIRE(pa.free_pages(a.value, 9) == error::ok);
	REQUIRE(pa.free_pages(b.value, 9) == error::ok);
	if (pa.allocated_order(0).ok()) /* the gfp_dma block above, when it was taken */
		REQUIRE(pa.free_pages(0, 9) == error::ok);
	pa.drain_all_pages();
	CHECK(pa.region_free_blocks(0) == r0);
	CHECK(pa.check_consistency() == "");
	CHECK(pa.buddyinfo() == boot);
}

/* The first pageblock of ZONE_NORMAL that holds page-cache pages and nothing else allocated, or no_page. */
static pfn_t migratable_block(const page_allocator &pa)
{
	const zone_info z = pa.zone(zone_type::normal);
	for (pfn_t b = z.span.pfn; b + 512 <= z.span.end(); b += 512)
		if (pa.range_migratable(b, 9) && !pa.range_free(b, 9))
			return b;
	return ~pfn_t{0};
}

TEST_CASE("alloc_contig_range(): page-cache pages in the range are migrated out; any other page pins it")
{
	page_allocator pa(6 * gib_pages); /* ZONE_NORMAL from 4 GiB */
	REQUIRE(pa.page_cache_read(300000) == 300000);
	const pfn_t b = migratable_block(pa);
	REQUIRE(b != ~pfn_t{0});
	const std::uint64_t cached = pa.page_cache_pages(), free0 = pa.nr_free_pages();
	const auto a = pa.alloc_contig_range(b, 9, gfp_kernel);
	REQUIRE(a.ok());
	CHECK(a.value == b);
	CHECK(pa.allocated_order(b).value == 9);
	CHECK(pa.page_cache_pages() == cached);       /* moved, not dropped */
	CHECK(pa.nr_free_pages() == free0 - 512);     /* the block, and nothing else */
	CHECK(pa.check_consistency() == "");
	/* Eviction skips the entries the migrated pages left behind: every page goes once, the block stays. */
	CHECK(pa.page_cache_evict(~std::uint64_t{0} >> 1) == cached);
	CHECK(pa.page_cache_pages() == 0);
	CHECK(pa.allocated_order(b).value == 9);
	CHECK(pa.check_consistency() == "");
	/* A range with one page that is not page cache cannot be had, and nothing changes. */
	REQUIRE(pa.page_cache_read(1000) == 1000);
	pfn_t pin = must_alloc(pa, 0, gfp_kernel);
	const pfn_t pb = pin & ~pfn_t{511};
	CHECK(!pa.range_migratable(pb, 9));
	const std::string before = pa.buddyinfo();
	const std::uint64_t cached2 = pa.page_cache_pages();
	CHECK(pa.alloc_contig_range(pb, 9, gfp_kernel).err == error::no_memory);
	CHECK(pa.buddyinfo() == before);
	CHECK(pa.page_cache_pages() == cached2);
	REQUIRE(pa.free_pages(pin, 0) == error::ok);
	REQUIRE(pa.free_pages(b, 9) == error::ok);
	CHECK(pa.check_consistency() == "");
}

TEST_CASE("alloc_contig_range(): a range whose frames sit on the per-CPU lists is drained and taken whole")
{
	page_allocator pa(6 * gib_pages);
	const pfn_t b = 4 * gib_pages + 4096;
	for (pfn_t p = b; p < b + 512; p++)
		REQUIRE(pa.alloc_contig_range(p, 0, gfp_kernel).ok());
	const std::uint64_t free0 = pa.nr_free_pages(); /* what taking the range leaves */
	for (pfn_t p = b; p < b + 512; p++) /* onto this CPU's order-0 pcp list, as much as it holds */
		REQUIRE(pa.free_pages(p, 0) == error::ok);
	REQUIRE(!pa.range_free(b, 9)); /* the buddy lists do not see the frames on the pcp list */
	CHECK(pa.range_migratable(b, 9));
	const auto a = pa.alloc_contig_range(b, 9, gfp_kernel);
	REQUIRE(a.ok());
	CHECK(a.value == b);
	CHECK(pa.nr_free_pages() == free0);
	CHECK(pa.check_consistency() == "");
	REQUIRE(pa.free_pages(b, 9) == error::ok);
	pa.drain_all_pages();
	CHECK(pa.nr_free_pages() == pa.nr_pages());
	CHECK(pa.check_consistency() == "");
}

TEST_CASE("alloc_contig_range(): with no frame to migrate to, the range stays as it was")
{
	page_allocator pa(5 * gib_pages);
	std::vector<pfn_t> held;
	for (;;) { /* everything, in order-9 blocks */
		auto r = pa.alloc_pages(9, gfp_kernel);
		if (!r.ok())
			break;
		held.push_back(r.value);
	}
	/* Two non-adjacent Normal blocks back, w first: the free lists are LIFO, so x serves the reads. */
	std::vector<pfn_t> normal;
	for (pfn_t p : held)
		if (pa.zone_of(p) == zone_type::normal)
			normal.push_back(p);
	std::sort(normal.begin(), normal.end());
	REQUIRE(normal.size() >= 3);
	const pfn_t w = normal[0], x = normal[2];
	held.erase(std::remove_if(held.begin(), held.end(), [&](pfn_t p) { return p == w || p == x; }), held.end());
	REQUIRE(pa.free_pages(w, 9) == error::ok);
	REQUIRE(pa.free_pages(x, 9) == error::ok);
	pa.drain_all_pages();
	REQUIRE(pa.page_cache_read(200) == 200);
	pa.drain_all_pages();
	/* Every free frame outside x pinned: x holds page cache and free frames, and there is nowhere to migrate to. */
	std::vector<pfn_t> pins;
	for (pfn_t p = 0; p < pa.end_pfn(); p++)
		if ((p < x || p >= x + 512) && pa.range_free(p, 0)) {
			REQUIRE(pa.alloc_contig_range(p, 0, pa.zone_of(p) == zone_type::dma ? gfp_dma : gfp_kernel).ok());
			pins.push_back(p);
		}
	REQUIRE(pa.page_cache_pages() == 200);
	REQUIRE(migratable_block(pa) == x);
	const std::string before = pa.buddyinfo();
	CHECK(pa.alloc_contig_range(x, 9, gfp_kernel).err == error::no_memory);
	CHECK(pa.buddyinfo() == before);
	CHECK(pa.page_cache_pages() == 200);
	CHECK(migratable_block(pa) == x);
	CHECK(pa.check_consistency() == "");
	/* The pins of w gone, the migration has its targets: the same request succeeds. */
	for (auto it = pins.begin(); it != pins.end();)
		if (*it >= w && *it < w + 512) {
			REQUIRE(pa.free_pages(*it, 0) == error::ok);
			it = pins.erase(it);
		} else {
			++it;
		}
	const auto a = pa.alloc_contig_range(x, 9, gfp_kernel);
	REQUIRE(a.ok());
	held.push_back(x);
	CHECK(pa.page_cache_pages() == 200);
	CHECK(pa.check_consistency() == "");
	for (pfn_t p : held)
		REQUIRE(pa.free_pages(p, 9) == error::ok);
	for (pfn_t p : pins)
		REQUIRE(pa.free_pages(p, 0) == error::ok);
	CHECK(pa.page_cache_evict(1000) == 200);
	pa.drain_all_pages();
	CHECK(pa.nr_free_pages() == pa.nr_pages());
	CHECK(pa.check_consistency() == "");
}

TEST_CASE("alloc_contig_range(): ZONE_MOVABLE only for movable requests")
{
	page_allocator pa(4 * gib_pages, page_alloc_config{.movable_fraction = 0.5});
	const pfn_t top = 4 * gib_pages - 512;
	REQUIRE(pa.zone_of(top) == zone_type::movable);
	REQUIRE(pa.range_free(top, 9));
	CHECK(pa.alloc_contig_range(top, 9, gfp_kernel).err == error::no_memory);
	const auto m = pa.alloc_contig_range(top, 9, gfp_highuser_movable);
	REQUIRE(m.ok());
	CHECK(pa.check_consistency() == "");
	CHECK(pa.free_pages(top, 9) == error::ok);
}
