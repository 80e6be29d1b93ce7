// SPDX-License-Identifier: MIT
/*
 * phys/page_alloc.h - the simulated page allocator the library sits beside.
 *
 * A buddy allocator over 4 KiB frames [0, nr_pages), orders 0..18 (4 KiB up to
 * 1 GiB, the x86-64 PUD page), with two zones: ZONE_NORMAL below, ZONE_MOVABLE
 * on top. The state of a buddy allocator is fully determined by its set of
 * free pages: with eager merging (mm/page_alloc.c __free_one_page()) the free
 * blocks are exactly the maximal aligned power-of-two runs of free pages. So
 * instead of free lists of struct pages this allocator keeps the free set in
 * three sparse levels, none of them per frame:
 *
 *   machine   one bit per 1 GiB region and order: "this region has a free
 *             block of that order" (top_free_), plus "region allocated as one
 *             order-18 block" (top_alloc_). A region that is a single block
 *             has no other state, so a 1 TiB machine is 1024 bits per order.
 *   region    created when its 1 GiB block is first split (3.8 KiB): per order
 *             9..17 a 512-bit mask of pageblocks starting a free block, the
 *             same for allocated blocks, and per order 0..8 a mask of the
 *             pageblocks whose record holds a free block of that order.
 *   pageblock (2 MiB) created only when split below order 9 (pageblock_rec,
 *             152 bytes): a 512-bit free mask and a 512-bit mask of allocated
 *             block heads. A block's order is the distance from its head to
 *             the next head, free page or pageblock end (the kernel keeps it
 *             in struct page). Maximal free blocks are computed from the free
 *             mask with word operations when needed.
 *
 * Allocation takes the smallest order that has a free block, lowest address
 * first (deterministic); with a hint it takes the hint's 1 GiB region if any
 * block fits there, else the nearest region, so chunks for unmapped memory
 * cluster in a region whose direct-map PUD is already split. The block is
 * split as expand() does: the low part is returned, the upper halves freed.
 * Freeing checks the block is allocated with exactly that order (a double free
 * or wrong order is refused, changing nothing) and merges with free buddies.
 *
 * Zones: ZONE_MOVABLE is the top movable_fraction of memory, its start rounded
 * up to the maximum block size (1 GiB), as find_zone_movable_pfns_for_nodes()
 * rounds it to MAX_ORDER_NR_PAGES; so every region is in one zone and no block
 * crosses zones. Requests name acceptable zones as GFP flags do: a chunk that
 * will leave the direct map takes gfp_normal_only, since memory hotplug needs
 * ZONE_MOVABLE to stay movable; page-cache load may take any zone.
 *
 * Ageing (the "long-running machine") is in page_age.h, included at the end.
 *
 * Thread safety: none. The owner serialises every call (the cache layer does
 * so under its chunk lock), as the kernel does with zone->lock.
 */
#pragma once

#include <array>
#include <bit>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../check.h"
#include "../config.h"
#include "../error.h"
#include "pageblock.h"
#include "../mapping.h"

namespace ua {

/* Orders and the no-hint value are in pageblock.h. */

enum class zone_type : unsigned { normal = 0, movable = 1 };
inline constexpr unsigned nr_zones = 2;

/* Which zones a request accepts, and in which order (the kernel's gfp zone bits). */
using gfp_t = unsigned;
inline constexpr gfp_t gfp_zone_normal = 1u;      /* may use ZONE_NORMAL */
inline constexpr gfp_t gfp_zone_movable = 2u;     /* may use ZONE_MOVABLE (__GFP_MOVABLE) */
inline constexpr gfp_t gfp_prefer_movable = 4u;   /* try ZONE_MOVABLE first, as the zonelist does */
inline constexpr gfp_t gfp_normal_only = gfp_zone_normal;
inline constexpr gfp_t gfp_movable_only = gfp_zone_movable;
inline constexpr gfp_t gfp_any_zone = gfp_zone_normal | gfp_zone_movable;
inline constexpr gfp_t gfp_movable_first = gfp_any_zone | gfp_prefer_movable;

struct page_alloc_config {
	/* Top fraction of memory that is ZONE_MOVABLE (movablecore=), in [0, 1]; 0 = none, as by default in Linux. */
	double movable_fraction = 0.0;
};

/* Free blocks per order (the kernel's free_area[order].nr_free) and free pages. */
struct free_area_stats {
	std::array<std::uint64_t, nr_page_orders> nr_free{};
	std::uint64_t nr_free_pages = 0;
};

struct zone_info {
	zone_type type = zone_type::normal;
	frame_range span;               /* empty when the zone has no memory */
	std::uint64_t nr_free_pages = 0;
};

/* Ageing parameters and outcome; the procedure is described in page_age.h. */
struct age_config {
	double used_fraction = 0.5;        /* share of the aged free memory left allocated as page cache */
	double free_chunk_fraction = 0.02; /* share of aged pageblocks kept wholly free (kswapd/compaction) */
	std::uint64_t seed = 1;
	gfp_t gfp = gfp_any_zone;          /* zones whose free memory is aged */
};
struct age_report {
	std::uint64_t pageblocks_aged = 0;       /* filled, then partly freed */
	std::uint64_t pageblocks_kept_free = 0;
	std::uint64_t pages_allocated = 0;       /* order-0 page-cache pages left allocated */
};
/* How widely free memory is spread (page_age.h). */
struct fragmentation_stats {
	std::uint64_t pageblocks_with_free = 0;  /* 2 MiB blocks holding any free page */
	std::uint64_t pageblocks_free = 0;       /* 2 MiB blocks wholly free */
	std::uint64_t regions_with_free = 0;     /* 1 GiB regions holding any free page */
	std::uint64_t regions_free = 0;          /* 1 GiB regions wholly free */
};


class page_allocator {
public:
	/*
	 * A machine of nr_pages free frames. Construction touches one bit per
	 * region and order, plus one region (and pageblock) record for a partial
	 * last region, so it is cheap for any size.
	 */
	explicit page_allocator(std::uint64_t nr_pages, page_alloc_config cfg = {});

	/*
	 * A free block of 2^order frames from an acceptable zone. Errors:
	 * too_large (order > 18), bad_flags (no zone, unknown bits, prefer_movable
	 * without both zones), foreign_pointer (hint outside the machine),
	 * no_memory (nothing fits; nothing changed).
	 */
	result<pfn_t> alloc_pages(unsigned order, gfp_t gfp, pfn_t hint = no_hint);

	/*
	 * Free a block returned by alloc_pages() with the same order. Refused,
	 * changing nothing: too_large (order), foreign_pointer (beyond the
	 * machine), bad_alignment (pfn not 2^order aligned), not_live (the frame
	 * is free: double free), interior_pointer (inside an allocated block but
	 * not its start), bad_chunk (start of an allocated block of another order).
	 */
	error free_pages(pfn_t pfn, unsigned order);

	/* The order of the allocated block starting at pfn, or the error free_pages() would give. */
	result<unsigned> allocated_order(pfn_t pfn) const;

	std::uint64_t nr_pages() const noexcept { return nr_pages_; }
	std::uint64_t nr_free_pages() const noexcept { return free_[0].nr_free_pages + free_[1].nr_free_pages; }
	const free_area_stats &free_area(zone_type z) const noexcept { return free_[unsigned(z)]; }
	free_area_stats free_area() const noexcept;
	zone_info zone(zone_type z) const noexcept;
	zone_type zone_of(pfn_t pfn) const noexcept { return zone_of_region(pfn / pages_per_region); }

	/* Age the free memory of cfg.gfp's zones (page_age.h). Errors: bad_flags for bad parameters. */
	result<age_report> age(const age_config &cfg = {});
	fragmentation_stats fragmentation() const;

	/* Expensive walk of every level (check.h): "" or the first violation. */
	std::string check_consistency() const;

	/*
	 * Fault injection, as the kernel's should_fail_alloc_page()
	 * (mm/fail_page_alloc.c): when set, a valid alloc_pages() request asks
	 * fn(ctx, order) first and fails with no_memory, changing nothing, when
	 * it answers true. For tests (tests/support/fault_backend.h); nullptr clears it.
	 */
	using fault_hook = bool (*)(void *ctx, unsigned order) noexcept;
	void set_fault_hook(fault_hook fn, void *ctx) noexcept
	{
		fault_hook_ = fn;
		fault_ctx_ = ctx;
	}

private:
	using region_state = detail::pa::region_state;
	using pageblock_rec = detail::pa::pageblock_rec;

	std::uint64_t nr_pages_;
	std::uint64_t nr_regions_;
	std::uint64_t movable_region_; /* first region of ZONE_MOVABLE (== nr_regions_: none) */
	std::array<std::vector<std::uint64_t>, nr_page_orders> top_free_;
	std::vector<std::uint64_t> top_alloc_;
	std::vector<std::unique_ptr<region_state>> regions_;
	std::vector<std::unique_ptr<region_state>> spare_regions_;
	std::vector<pageblock_rec> recs_;
	std::vector<std::uint32_t> spare_recs_;
	std::array<free_area_stats, nr_zones> free_;
	fault_hook fault_hook_ = nullptr;
	void *fault_ctx_ = nullptr;

	zone_type zone_of_region(std::uint64_t r) const noexcept
	{
		return r >= movable_region_ ? zone_type::movable : zone_type::normal;
	}
	free_area_stats &area(std::uint64_t r) noexcept { return free_[unsigned(zone_of_region(r))]; }
	std::uint64_t region_pages(std::uint64_t r) const noexcept
	{
		const std::uint64_t left = nr_pages_ - r * pages_per_region;
		return left < pages_per_region ? left : pages_per_region;
	}
	static std::uint64_t pb_pfn(std::uint64_t r, std::uint64_t pb) noexcept
	{
		return r * pages_per_region + (pb << pageblock_order);
	}

	bool reserve_records() noexcept;
	region_state &get_region(std::uint64_t r);
	void put_region(std::uint64_t r);
	std::uint32_t get_rec(std::uint64_t r, unsigned pb, unsigned nr_valid);
	void put_rec(std::uint64_t r, unsigned pb);
	void account_rec(std::uint64_t r, unsigned pb);
	void update_top_small(std::uint64_t r, unsigned o);

	void add_free_large(std::uint64_t r, unsigned pb, unsigned order);
	void del_free_large(std::uint64_t r, unsigned pb, unsigned order);
	void add_free_region(std::uint64_t r);
	void del_free_region(std::uint64_t r);
	void free_large_merge(std::uint64_t r, unsigned pb, unsigned order);
	void free_range_init(std::uint64_t r);

	bool find_block(unsigned order, std::uint64_t r0, std::uint64_t r1, pfn_t hint,
			std::uint64_t &region, unsigned &found) const;
	pfn_t take_block(std::uint64_t r, unsigned found, unsigned order, pfn_t hint);
	void carve_small(std::uint64_t r, unsigned pb, unsigned page, unsigned order);
	void free_small(std::uint64_t r, unsigned pb, unsigned page, unsigned order);
	static unsigned small_block_order(const pageblock_rec &rec, unsigned page) noexcept;
};

/* ---- construction ---- */

inline page_allocator::page_allocator(std::uint64_t nr_pages, page_alloc_config cfg)
	: nr_pages_(nr_pages), nr_regions_((nr_pages + pages_per_region - 1) / pages_per_region)
{
	/* 2^40 frames (4 PiB): keeps every pfn sum far from overflow and the region table small. */
	UA_CHECK(nr_pages <= (std::uint64_t{1} << 40), "machine too large");
	double f = cfg.movable_fraction;
	f = (f > 0.0) ? (f < 1.0 ? f : 1.0) : 0.0; /* NaN and negatives: no ZONE_MOVABLE */
	const auto movable = std::uint64_t(double(nr_pages) * f);
	movable_region_ = movable ? (nr_pages - movable + pages_per_region - 1) / pages_per_region : nr_regions_;

	const std::uint64_t words = (nr_regions_ + 63) / 64;
	for (auto &t : top_free_)
		t.assign(words, 0);
	top_alloc_.assign(words, 0);
	regions_.resize(nr_regions_);
	spare_regions_.reserve(8); /* put_region() keeps at most 8: freeing never allocates */
	for (std::uint64_t r = 0; r < nr_regions_; r++)
		free_range_init(r);
	spare_recs_.reserve(recs_.capacity());
}

/*
 * Room for the records one alloc_pages() may take (a region record and a
 * pageblock record) and for every pageblock record to come back to the spare
 * list, made before the call changes anything: a heap that is out of memory
 * (std::bad_alloc) fails the call with no_memory, changing nothing, and
 * free_pages() never allocates (both are reached from noexcept paths).
 */
inline bool page_allocator::reserve_records() noexcept
{
	UA_TRY {
		if (spare_regions_.empty())
			spare_regions_.push_back(std::make_unique<region_state>());
		if (recs_.size() == recs_.capacity())
			recs_.reserve(recs_.size() * 2 + 8);
		if (spare_recs_.capacity() < recs_.capacity())
			spare_recs_.reserve(recs_.capacity());
	} UA_CATCH_ALL {
		return false;
	}
	return true;
}

/* Free a whole region at boot: one order-18 block, or maximal blocks of a partial last region. */
inline void page_allocator::free_range_init(std::uint64_t r)
{
	const std::uint64_t n = region_pages(r);
	if (n == pages_per_region) {
		add_free_region(r);
		return;
	}
	get_region(r);
	const unsigned full_pbs = unsigned(n >> pageblock_order);
	for (unsigned pb = 0; pb < full_pbs;) {
		unsigned o = pageblock_order;
		while (o + 1 < page_max_order && pb % (1u << (o + 1 - pageblock_order)) == 0 &&
		       pb + (1u << (o + 1 - pageblock_order)) <= full_pbs)
			o++;
		add_free_large(r, pb, o);
		pb += 1u << (o - pageblock_order);
	}
	if (const unsigned tail = unsigned(n & (pages_per_chunk - 1))) {
		auto &rec = recs_[get_rec(r, full_pbs, tail)];
		for (unsigned i = 0; i < tail; i++)
			detail::pa::set_bit(rec.free, i);
		account_rec(r, full_pbs);
	}
}

/* ---- region and pageblock records ---- */

inline detail::pa::region_state &page_allocator::get_region(std::uint64_t r)
{
	if (!regions_[r]) {
		if (spare_regions_.empty()) {
			regions_[r] = std::make_unique<region_state>();
		} else {
			regions_[r] = std::move(spare_regions_.back());
			spare_regions_.pop_back();
		}
		regions_[r]->reset();
	}
	return *regions_[r];
}

/* Keep a few region records for reuse: a region that merges back often splits again. */
inline void page_allocator::put_region(std::uint64_t r)
{
	if (spare_regions_.size() < 8)
		spare_regions_.push_back(std::move(regions_[r]));
	regions_[r].reset();
}

inline std::uint32_t page_allocator::get_rec(std::uint64_t r, unsigned pb, unsigned nr_valid)
{
	std::uint32_t i;
	if (spare_recs_.empty()) {
		i = std::uint32_t(recs_.size());
		recs_.emplace_back();
	} else {
		i = spare_recs_.back();
		spare_recs_.pop_back();
	}
	recs_[i] = pageblock_rec{};
	recs_[i].nr_valid = std::uint16_t(nr_valid);
	regions_[r]->rec[pb] = i;
	return i;
}

/* Drop a pageblock record, unaccounting its free blocks: the caller re-adds the frames. */
inline void page_allocator::put_rec(std::uint64_t r, unsigned pb)
{
	auto &rec = recs_[regions_[r]->rec[pb]];
	for (auto &w : rec.free)
		w = 0;
	account_rec(r, pb);
	spare_recs_.push_back(regions_[r]->rec[pb]);
	regions_[r]->rec[pb] = detail::pa::no_rec;
}

inline void page_allocator::update_top_small(std::uint64_t r, unsigned o)
{
	detail::pa::assign_bit(top_free_[o].data(), r, detail::pa::any(regions_[r]->has_small[o], 8));
}

/* Re-derive a record's free blocks after its masks changed and fix every count and summary bit. */
inline void page_allocator::account_rec(std::uint64_t r, unsigned pb)
{
	auto &rs = *regions_[r];
	auto &rec = recs_[rs.rec[pb]];
	const detail::pa::pageblock_blocks blocks(rec.free);
	auto &fa = area(r);
	for (unsigned o = 0; o < pageblock_order; o++) {
		const unsigned n = blocks.count(o);
		if (n == rec.nr_free[o])
			continue;
		fa.nr_free[o] += n;
		fa.nr_free[o] -= rec.nr_free[o];
		fa.nr_free_pages += std::uint64_t(n) << o;
		fa.nr_free_pages -= std::uint64_t(rec.nr_free[o]) << o;
		if ((n != 0) != (rec.nr_free[o] != 0)) {
			detail::pa::assign_bit(rs.has_small[o], pb, n != 0);
			update_top_small(r, o);
		}
		rec.nr_free[o] = std::uint16_t(n);
	}
}

/* ---- free blocks of order >= 9 ---- */

inline void page_allocator::add_free_large(std::uint64_t r, unsigned pb, unsigned order)
{
	auto &rs = *regions_[r];
	detail::pa::set_bit(rs.free_blk[order - pageblock_order], pb);
	detail::pa::set_bit(top_free_[order].data(), r);
	area(r).nr_free[order]++;
	area(r).nr_free_pages += std::uint64_t{1} << order;
}

inline void page_allocator::del_free_large(std::uint64_t r, unsigned pb, unsigned order)
{
	auto &rs = *regions_[r];
	auto *m = rs.free_blk[order - pageblock_order];
	detail::pa::clear_bit(m, pb);
	if (!detail::pa::any(m, 8))
		detail::pa::clear_bit(top_free_[order].data(), r);
	area(r).nr_free[order]--;
	area(r).nr_free_pages -= std::uint64_t{1} << order;
}

/* A whole region as one free order-18 block: it needs no region record. */
inline void page_allocator::add_free_region(std::uint64_t r)
{
	if (regions_[r])
		put_region(r);
	detail::pa::set_bit(top_free_[page_max_order].data(), r);
	area(r).nr_free[page_max_order]++;
	area(r).nr_free_pages += pages_per_region;
}

inline void page_allocator::del_free_region(std::uint64_t r)
{
	detail::pa::clear_bit(top_free_[page_max_order].data(), r);
	area(r).nr_free[page_max_order]--;
	area(r).nr_free_pages -= pages_per_region;
}

/* __free_one_page() for orders >= 9: merge with the buddy while it is free at the same order. */
inline void page_allocator::free_large_merge(std::uint64_t r, unsigned pb, unsigned order)
{
	while (order < page_max_order) {
		const unsigned buddy = pb ^ (1u << (order - pageblock_order));
		if (!detail::pa::test_bit(regions_[r]->free_blk[order - pageblock_order], buddy))
			break;
		del_free_large(r, buddy, order);
		pb &= ~(1u << (order - pageblock_order));
		order++;
	}
	if (order == page_max_order)
		add_free_region(r);
	else
		add_free_large(r, pb, order);
}

/* ---- allocation ---- */

/*
 * Pick the region and order to allocate from within regions [r0, r1).
 * Without a hint: the smallest order with a free block, lowest region first.
 * With a hint: the region nearest the hint's region that has any block of a
 * sufficient order (the hint's own region first), then its smallest order.
 */
inline bool page_allocator::find_block(unsigned order, std::uint64_t r0, std::uint64_t r1, pfn_t hint,
				       std::uint64_t &region, unsigned &found) const
{
	using detail::pa::npos;
	if (hint == no_hint) {
		for (unsigned o = order; o < nr_page_orders; o++) {
			const std::uint64_t r = detail::pa::find_next(top_free_[o].data(), r0, r1);
			if (r != npos) {
				region = r;
				found = o;
				return true;
			}
		}
		return false;
	}
	const std::uint64_t hr = hint / pages_per_region;
	const std::uint64_t pos = hr < r0 ? r0 : (hr >= r1 ? r1 - 1 : hr);
	std::uint64_t best = npos, best_dist = npos;
	for (unsigned o = order; o < nr_page_orders; o++) {
		const std::uint64_t r = detail::pa::find_nearest(top_free_[o].data(), r0, r1, pos);
		if (r == npos)
			continue;
		const std::uint64_t d = r > pos ? r - pos : pos - r;
		if (d < best_dist || (d == best_dist && r < best)) {
			best = r;
			best_dist = d;
		}
	}
	if (best == npos)
		return false;
	region = best;
	for (found = order; !detail::pa::test_bit(top_free_[found].data(), best); found++)
		;
	return true;
}

/* Take the free block of order `found` in region r nearest the hint (or lowest) and split it as expand() does. */
inline pfn_t page_allocator::take_block(std::uint64_t r, unsigned found, unsigned order, pfn_t hint)
{
	const pfn_t base = r * pages_per_region;
	/* Position of the hint inside the region, clamped, in pages. */
	const std::uint64_t hp = hint == no_hint ? 0
				: hint < base ? 0
				: hint - base >= pages_per_region ? pages_per_region - 1 : hint - base;
	const unsigned hpb = unsigned(hp >> pageblock_order);
	unsigned pb;
	if (found < pageblock_order) {
		auto &rs = *regions_[r];
		pb = unsigned(hint == no_hint ? detail::pa::find_next(rs.has_small[found], 0, pages_per_chunk)
					      : detail::pa::find_nearest(rs.has_small[found], 0, pages_per_chunk, hpb));
		const auto &rec = recs_[rs.rec[pb]];
		std::uint64_t m[8];
		detail::pa::pageblock_blocks(rec.free).blocks(found, m);
		/* Nearest the hint, clamped to this pageblock; lowest without a hint. */
		const std::uint64_t at = hint == no_hint ? 0
				       : pb < hpb ? pages_per_chunk - 1
				       : pb > hpb ? 0 : (hp & (pages_per_chunk - 1));
		const unsigned page = unsigned(detail::pa::find_nearest(m, 0, pages_per_chunk, at));
		carve_small(r, pb, page, order);
		return pb_pfn(r, pb) + page;
	}
	if (found == page_max_order) {
		del_free_region(r);
		if (order == page_max_order) {
			detail::pa::set_bit(top_alloc_.data(), r);
			return base;
		}
		get_region(r);
		pb = 0;
	} else {
		const auto *m = regions_[r]->free_blk[found - pageblock_order];
		pb = unsigned(hint == no_hint ? detail::pa::find_next(m, 0, pages_per_chunk)
					      : detail::pa::find_nearest(m, 0, pages_per_chunk, hpb));
		del_free_large(r, pb, found);
	}
	/* expand(): keep the low half, free the high halves down to the requested order. */
	const unsigned low = order > pageblock_order ? order : pageblock_order;
	for (unsigned o = found; o > low; o--)
		add_free_large(r, pb + (1u << (o - 1 - pageblock_order)), o - 1);
	if (order >= pageblock_order) {
		detail::pa::set_bit(regions_[r]->alloc_blk[order - pageblock_order], pb);
		return pb_pfn(r, pb);
	}
	/* Below a pageblock: the pageblock gets a record, all free but for the block carved from it. */
	auto &rec = recs_[get_rec(r, pb, pages_per_chunk)];
	for (auto &w : rec.free)
		w = ~std::uint64_t{0};
	carve_small(r, pb, 0, order);
	return pb_pfn(r, pb);
}

inline void page_allocator::carve_small(std::uint64_t r, unsigned pb, unsigned page, unsigned order)
{
	auto &rec = recs_[regions_[r]->rec[pb]];
	detail::pa::assign_aligned(rec.free, page, 1u << order, false);
	detail::pa::set_bit(rec.head, page);
	account_rec(r, pb);
}

inline result<pfn_t> page_allocator::alloc_pages(unsigned order, gfp_t gfp, pfn_t hint)
{
	if (order > page_max_order)
		return result<pfn_t>::failure(error::too_large);
	if ((gfp & ~gfp_movable_first) || !(gfp & gfp_any_zone) ||
	    ((gfp & gfp_prefer_movable) && (gfp & gfp_any_zone) != gfp_any_zone))
		return result<pfn_t>::failure(error::bad_flags);
	if (hint != no_hint && hint >= nr_pages_)
		return result<pfn_t>::failure(error::foreign_pointer);
	if (fault_hook_ && fault_hook_(fault_ctx_, order))
		return result<pfn_t>::failure(error::no_memory);
	if (!reserve_records())
		return result<pfn_t>::failure(error::no_memory);

	/* Zones are contiguous region ranges: normal [0, mr), movable [mr, nr_regions). */
	struct { std::uint64_t r0, r1; } pass[2];
	unsigned npass = 0;
	const std::uint64_t mr = movable_region_;
	if (gfp & gfp_prefer_movable) {
		pass[npass++] = {mr, nr_regions_};
		pass[npass++] = {0, mr};
	} else {
		pass[npass++] = {(gfp & gfp_zone_normal) ? 0 : mr, (gfp & gfp_zone_movable) ? nr_regions_ : mr};
	}
	for (unsigned i = 0; i < npass; i++) {
		std::uint64_t r;
		unsigned found;
		if (find_block(order, pass[i].r0, pass[i].r1, hint, r, found))
			return result<pfn_t>{take_block(r, found, order, hint), error::ok};
	}
	return result<pfn_t>::failure(error::no_memory);
}

/* ---- freeing ---- */

/* Order of the allocated block whose head is `page`: the distance to the next head, free frame or end. */
inline unsigned page_allocator::small_block_order(const pageblock_rec &rec, unsigned page) noexcept
{
	std::uint64_t bounds[8];
	for (unsigned k = 0; k < 8; k++)
		bounds[k] = rec.free[k] | rec.head[k];
	return detail::pa::block_order_at(bounds, page, rec.nr_valid);
}

inline result<unsigned> page_allocator::allocated_order(pfn_t pfn) const
{
	using res = result<unsigned>;
	if (pfn >= nr_pages_)
		return res::failure(error::foreign_pointer);
	const std::uint64_t r = pfn / pages_per_region;
	const pfn_t base = r * pages_per_region;
	const region_state *rs = regions_[r].get();
	if (!rs) {
		if (!detail::pa::test_bit(top_alloc_.data(), r))
			return res::failure(error::not_live);
		return pfn == base ? res{page_max_order, error::ok} : res::failure(error::interior_pointer);
	}
	const unsigned pb = unsigned((pfn - base) >> pageblock_order);
	if (rs->rec[pb] != detail::pa::no_rec) {
		const auto &rec = recs_[rs->rec[pb]];
		const unsigned page = unsigned(pfn & (pages_per_chunk - 1));
		if (detail::pa::test_bit(rec.free, page))
			return res::failure(error::not_live);
		if (!detail::pa::test_bit(rec.head, page))
			return res::failure(error::interior_pointer);
		return res{small_block_order(rec, page), error::ok};
	}
	for (unsigned j = 0; j < detail::pa::large_orders; j++) {
		const unsigned start = pb & ~((1u << j) - 1);
		if (detail::pa::test_bit(rs->free_blk[j], start))
			return res::failure(error::not_live);
		if (detail::pa::test_bit(rs->alloc_blk[j], start))
			return pfn == pb_pfn(r, start) ? res{pageblock_order + j, error::ok}
						       : res::failure(error::interior_pointer);
	}
	UA_CHECK(false, "page_allocator: frame covered by no block");
	return res::failure(error::foreign_pointer);
}

inline void page_allocator::free_small(std::uint64_t r, unsigned pb, unsigned page, unsigned order)
{
	auto &rec = recs_[regions_[r]->rec[pb]];
	detail::pa::assign_aligned(rec.free, page, 1u << order, true);
	detail::pa::clear_bit(rec.head, page);
	if (rec.nr_valid == pages_per_chunk && detail::pa::pageblock_blocks(rec.free).whole()) {
		/* The pageblock merged back to order 9: drop its record and keep merging upwards. */
		put_rec(r, pb);
		free_large_merge(r, pb, pageblock_order);
		return;
	}
	account_rec(r, pb);
}

inline error page_allocator::free_pages(pfn_t pfn, unsigned order)
{
	if (order > page_max_order)
		return error::too_large;
	if (pfn >= nr_pages_)
		return error::foreign_pointer;
	if (pfn & ((pfn_t{1} << order) - 1))
		return error::bad_alignment;
	const auto cur = allocated_order(pfn);
	if (!cur)
		return cur.err;
	if (cur.value != order)
		return error::bad_chunk;

	const std::uint64_t r = pfn / pages_per_region;
	if (order == page_max_order) {
		detail::pa::clear_bit(top_alloc_.data(), r);
		add_free_region(r);
		return error::ok;
	}
	const unsigned pb = unsigned((pfn - r * pages_per_region) >> pageblock_order);
	if (order < pageblock_order) {
		free_small(r, pb, unsigned(pfn & (pages_per_chunk - 1)), order);
		return error::ok;
	}
	detail::pa::clear_bit(regions_[r]->alloc_blk[order - pageblock_order], pb);
	free_large_merge(r, pb, order);
	return error::ok;
}

/* ---- statistics ---- */

inline free_area_stats page_allocator::free_area() const noexcept
{
	free_area_stats s = free_[0];
	for (unsigned o = 0; o < nr_page_orders; o++)
		s.nr_free[o] += free_[1].nr_free[o];
	s.nr_free_pages += free_[1].nr_free_pages;
	return s;
}

inline zone_info page_allocator::zone(zone_type z) const noexcept
{
	const pfn_t split = movable_region_ * pages_per_region < nr_pages_ ? movable_region_ * pages_per_region : nr_pages_;
	zone_info zi;
	zi.type = z;
	zi.span = z == zone_type::normal ? frame_range{0, split} : frame_range{split, nr_pages_ - split};
	zi.nr_free_pages = free_[unsigned(z)].nr_free_pages;
	return zi;
}

/* ---- consistency ---- */


}  // namespace ua

#include "page_age.h"
#include "page_alloc_check.h"
