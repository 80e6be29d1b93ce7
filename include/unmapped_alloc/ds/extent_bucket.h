// SPDX-License-Identifier: MIT
/*
 * ds/extent_bucket.h - the free extents of one size, in address order.
 *
 * The best-fit tree (ds/extent_tree.h) keeps one bucket per distinct free
 * size. A bucket holds its extents in address order, split in two: the
 * lowest front_cap (8) in `front`, a sorted array inside the bucket that also
 * repeats each one's address and chunk number, and the others, all at higher
 * addresses, in `rest`, a Boost.Intrusive red-black tree keyed by address.
 * An extent is in the tree only while the front is full and the extent lies
 * above it.
 *
 * Why an array in front. Most sizes hold a handful of extents (BPF mix at
 * 100 K live allocations: 84% of the sizes hold at most 8, while the 1- and
 * 2-unit slivers hold more than half of all extents), and the arena's
 * fullness tie-break reads exactly the lowest 8 of the best size. For those
 * sizes a relink is a shift inside one array instead of a descent and a
 * rebalance, and the tie-break reads the array, not the tree: where it
 * walked a bucket tree it took a dependent miss per node and one per node's
 * chunk. The extent next after the front may sit in the spill slot (see
 * there) instead of `rest`. A full front that receives a lower extent hands
 * its highest to spill (and spill's to `rest` as its first node: no
 * descent); a front that loses an extent takes spill's, else `rest`'s first.
 *
 * No branch on the position. Where an address falls among the front is
 * data, and loops that stopped there mispredicted their exit about once per
 * update. So the position is a count over the whole array (unused slots hold
 * `none`, an address above every real one) and the shift is a mask blend per
 * slot: cachegrind at 100 K live, 13.9 -> 11.1 mispredicts per alloc/free
 * pair for +10% instructions, and faster in wall time (docs/design.md).
 *
 * Memory: the extents are the caller's nodes; the bucket allocates nothing.
 * Not thread-safe: the owner locks.
 */
#pragma once

#include <cstddef>
#include <cstdint>

#include <boost/intrusive/set.hpp>

#include "tree_descend.h"

namespace ua {

struct arena_chunk;
struct extent_bucket;

struct free_extent {
	boost::intrusive::set_member_hook<boost::intrusive::optimize_size<true>> hook; /* first: node == value */
	std::uintptr_t addr = 0;
	arena_chunk *chunk = nullptr;
	extent_bucket *bucket = nullptr; /* the size node holding it, while in a tree */
	free_extent *chain_next = nullptr; /* the owner's: next free extent in the same chain by start */
	std::uint32_t size = 0;           /* bytes: an extent never spans more than a chunk (2 MiB) */
	std::uint32_t chunk_id = 0;       /* the owner's dense number for chunk (see front_entry) */

	free_extent(std::uintptr_t a, std::size_t s, arena_chunk *c, std::uint32_t id = 0) noexcept
		: addr(a), chunk(c), size(std::uint32_t(s)), chunk_id(id)
	{
	}
	std::uintptr_t end() const noexcept { return addr + size; }
};
static_assert(sizeof(free_extent) <= 64, "a free extent node fills one cache line at most");

namespace detail {

struct extent_addr_of {
	using type = std::uintptr_t;
	type operator()(const free_extent &e) const noexcept { return e.addr; }
};

using extent_set = boost::intrusive::set<
	free_extent, boost::intrusive::member_hook<free_extent, decltype(free_extent::hook), &free_extent::hook>,
	boost::intrusive::key_of_value<extent_addr_of>, boost::intrusive::constant_time_size<false>>;

}  // namespace detail

struct alignas(64) extent_bucket { /* line-aligned: header in one line, front entries after */
	static constexpr unsigned front_cap = 8;

	boost::intrusive::set_member_hook<boost::intrusive::optimize_size<true>> hook; /* first: node == value */
	std::uint32_t size = 0;  /* bytes: an extent never spans more than a chunk (2 MiB) */
	unsigned front_n = 0;    /* >= 1 while the bucket is in a tree */
	detail::extent_set rest; /* extents above spill (or the front); empty unless the front is full */
	/*
	 * The spill slot: when not null, the extent next after the front in
	 * address order (above front[front_cap - 1], below everything in
	 * `rest`), held outside both. A full front that receives a lower
	 * extent moves its highest here, and a front that loses one takes it
	 * back from here: no tree operation while inserts below the front and
	 * removals from it alternate, as they do on the few sizes with a full
	 * front (they moved the boundary extent into `rest` and out again, ~1.2
	 * tree operations with their rebalancing per alloc/free pair).
	 */
	free_extent *spill = nullptr;
	/*
	 * Sorted by address; entries from front_n on are `none`. chunk_id is the
	 * owner's dense chunk number: the fullness tie-break reads each entry's
	 * chunk fill from one small array indexed by it, not from the chunks'
	 * own records, a cache line each.
	 */
	struct front_entry {
		std::uintptr_t addr;
		std::uint64_t chunk_id;
		free_extent *node;
	} front[front_cap];
	static constexpr front_entry none{~std::uintptr_t{0}, 0, nullptr};

	explicit extent_bucket(std::size_t s) noexcept : size(std::uint32_t(s))
	{
		for (front_entry &f : front)
			f = none;
	}

	/* Adds e (of this size, at an address not in the bucket). */
	void insert(free_extent &e) noexcept
	{
		unsigned n = front_n;
		if (n == front_cap) {
			if (e.addr > front[front_cap - 1].addr) {
				if (spill ? e.addr > spill->addr : !rest.empty() && e.addr > rest.begin()->addr) {
					by_addr::insert(rest, e, e.addr);
					return;
				}
				if (spill)
					rest.push_front(*spill); /* below every extent in rest */
				spill = &e;
				return;
			}
			/* The front's highest goes to spill, and spill's to the rest tree. */
			if (spill)
				rest.push_front(*spill);
			spill = front[front_cap - 1].node;
			front[front_cap - 1] = none;
			n--;
		}
		/* Entries at and above e's rank move up one slot. */
		unsigned r = rank(e.addr);
		for (unsigned j = front_cap - 1; j > 0; j--)
			select(front[j], front[j - 1], j > r);
		front[r] = {e.addr, e.chunk_id, &e};
		front_n = n + 1;
	}

	/* Removes e, which is in the bucket; front_n == 0 afterwards means the bucket is empty. */
	void erase(free_extent &e) noexcept
	{
		if (!in_front(e)) {
			if (&e == spill)
				spill = nullptr;
			else
				rest.erase(rest.iterator_to(e));
			return;
		}
		unsigned r = rank(e.addr);
		for (unsigned j = 0; j + 1 < front_cap; j++)
			select(front[j], front[j + 1], j >= r);
		free_extent *f = spill;
		if (f) {
			spill = nullptr;
		} else if (!rest.empty()) {
			f = &*rest.begin();
			rest.erase(rest.begin());
		} else {
			front[front_cap - 1] = none;
			front_n--;
			return;
		}
		front[front_cap - 1] = {f->addr, f->chunk_id, f};
	}

	/* The extent at addr, or nullptr. */
	free_extent *find(std::uintptr_t addr) const noexcept
	{
		if (addr <= front[front_cap - 1].addr) {
			unsigned r = rank(addr);
			return front[r].addr == addr ? front[r].node : nullptr;
		}
		if (spill && spill->addr == addr)
			return spill;
		free_extent *e = by_addr::lower_bound(const_cast<detail::extent_set &>(rest), addr);
		return e && e->addr == addr ? e : nullptr;
	}

	free_extent *first() const noexcept { return front[0].node; }

	/* The extent after e in address order, or nullptr. */
	free_extent *next(const free_extent &e) const noexcept
	{
		if (in_front(e)) {
			unsigned i = rank(e.addr) + 1;
			if (i < front_n)
				return front[i].node;
			if (spill)
				return spill;
			return rest.empty() ? nullptr : const_cast<free_extent *>(&*rest.begin());
		}
		if (&e == spill)
			return rest.empty() ? nullptr : const_cast<free_extent *>(&*rest.begin());
		auto it = ++rest.iterator_to(e);
		return it == rest.end() ? nullptr : const_cast<free_extent *>(&*it);
	}

	/*
	 * Expensive: the front is sorted, `none` from front_n on, full before
	 * spill or `rest` hold anything, below spill, spill below every address
	 * in `rest`, and all name nodes of this size and bucket (the front with
	 * their addresses and chunks).
	 */
	bool consistent() const noexcept
	{
		if (front_n < 1 || front_n > front_cap)
			return false;
		for (unsigned i = 0; i < front_cap; i++) {
			const front_entry &f = front[i];
			if (i >= front_n) {
				if (f.addr != none.addr)
					return false;
				continue;
			}
			if (!f.node || f.node->addr != f.addr || f.node->chunk_id != f.chunk_id || f.node->size != size ||
			    f.node->bucket != this || (i && front[i - 1].addr >= f.addr))
				return false;
		}
		std::uintptr_t above = front[front_n - 1].addr; /* what rest must lie above */
		if (spill) {
			if (front_n != front_cap || spill->addr <= above || spill->size != size || spill->bucket != this)
				return false;
			above = spill->addr;
		}
		if (!rest.empty() && (front_n != front_cap || rest.begin()->addr <= above))
			return false;
		for (const free_extent &e : rest)
			if (e.size != size || e.bucket != this)
				return false;
		return true;
	}

private:
	using by_addr = detail::descend<detail::extent_set, detail::extent_addr_of>;

	/* e is in the bucket: is it a front entry? (A front that is not full holds them all.) */
	bool in_front(const free_extent &e) const noexcept { return e.addr <= front[front_cap - 1].addr; }

	/* Front entries below addr: e's slot when it is in the front, where it goes when it joins. */
	unsigned rank(std::uintptr_t addr) const noexcept
	{
		unsigned r = 0;
		for (const front_entry &f : front)
			r += f.addr < addr;
		return r;
	}

	/* d = cond ? s : d as mask blends (a plain ?: here compiles to a branch per slot). */
	static void select(front_entry &d, const front_entry &s, bool cond) noexcept
	{
		std::uintptr_t m = std::uintptr_t{0} - std::uintptr_t(cond);
		auto blend = [m](std::uintptr_t x, std::uintptr_t y) { return x ^ ((x ^ y) & m); };
		d.addr = blend(d.addr, s.addr);
		d.chunk_id = blend(d.chunk_id, s.chunk_id);
		d.node = reinterpret_cast<free_extent *>(
			blend(reinterpret_cast<std::uintptr_t>(d.node), reinterpret_cast<std::uintptr_t>(s.node)));
	}
};

}  // namespace ua
