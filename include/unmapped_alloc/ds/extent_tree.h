// SPDX-License-Identifier: MIT
/*
 * ds/extent_tree.h - the best-fit tree of free extents, ordered by (size, address).
 *
 * One tree holds every free extent of an arena across all its chunks, in
 * (size, address) order: lower_bound(size) is the smallest extent that can
 * hold a request (best fit), and among extents of one size they appear in
 * address order. The owner keeps the fullness tie-break (see arena/arena.h):
 * it inspects the few extents of the best size.
 *
 * Shape. The tree is two-level (nodes are ours; the tree never allocates
 * behind our back):
 *
 *   sizes    one extent_bucket per distinct free-extent size, keyed by size,
 *            in a Boost.Intrusive red-black tree;
 *   bucket   the extents of that size in address order: the lowest
 *            front_cap (8) in a sorted array inside the size node, maybe
 *            the next one in its spill slot, the others, all at higher
 *            addresses, in a Boost.Intrusive red-black tree keyed by
 *            address (`rest`).
 *
 * The in-order walk of sizes, and inside each size its front, spill, then rest,
 * is exactly the (size, address) order of a single tree keyed by the pair;
 * the split only lets extents of equal size share one size node. Free
 * extents vastly outnumber their distinct sizes (on the BPF mix at 100 K
 * live allocations, ~5,000 extents of ~400 sizes), so the size level is a
 * small tree that stays in L1/L2 while a flat tree of all extents made every
 * descent a walk of ~13 cache-missing levels, the arena's largest cost.
 *
 * ds/extent_bucket.h has the bucket and why its front is an array.
 *
 * Size index. Up to a limit (4096 units: 256 KiB at the 64-byte granule,
 * every size at 4 KiB), a size node lives in an array indexed by its size in
 * units instead of the size tree, and a bitmap with summary words
 * (ds/bitmap.h) marks the sizes present: lower_bound(size) is a bitmap
 * search and an array load, and a new or emptied size node costs a slot and
 * a bit, no link, unlink or rebalance. Only sizes above the limit are in the
 * red-black tree, which is searched when the index has no size large enough.
 * In order, the index's sizes come before the tree's, so the walk in
 * (size, address) order is the index's set bits, then the tree.
 *
 * Descents are our own (ds/tree_descend.h): the child to follow is chosen
 * with a mask blend rather than a branch; linking, unlinking and rebalancing
 * stay Boost's.
 *
 * Memory. Extent nodes belong to the caller (the arena's node_pool); size
 * nodes come from this tree's own pool. reserve(n) guarantees that n distinct
 * sizes can be in the tree without allocating, so the arena reserves before
 * it changes anything and insert() never allocates.
 * Everything is ordinary memory, never managed memory. Not thread-safe: the
 * owner locks.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include <boost/intrusive/set.hpp>

#include "../check.h"
#include "bitmap.h"
#include "extent_bucket.h"
#include "node_pool.h"
#include "tree_descend.h"

namespace ua {

namespace detail {

struct bucket_size_of {
	using type = std::size_t;
	type operator()(const extent_bucket &b) const noexcept { return b.size; }
};

using bucket_set = boost::intrusive::set<
	extent_bucket, boost::intrusive::member_hook<extent_bucket, decltype(extent_bucket::hook), &extent_bucket::hook>,
	boost::intrusive::key_of_value<bucket_size_of>, boost::intrusive::constant_time_size<false>>;

}  // namespace detail

class extent_tree {
	using sizes_t = detail::bucket_set;
	using by_size = detail::descend<sizes_t, detail::bucket_size_of>;

public:
	/* Walks extents in (size, address) order. */
	class iterator {
	public:
		iterator() = default;
		free_extent &operator*() const noexcept { return *e_; }
		free_extent *operator->() const noexcept { return e_; }
		bool operator==(const iterator &o) const noexcept { return e_ == o.e_; }
		iterator &operator++() noexcept
		{
			extent_bucket *b = e_->bucket;
			if (free_extent *n = b->next(*e_)) {
				e_ = n;
				return *this;
			}
			extent_bucket *nb = t_->bucket_after(*b);
			e_ = nb ? nb->first() : nullptr;
			return *this;
		}

	private:
		friend class extent_tree;
		iterator(const extent_tree *t, free_extent *e) noexcept : t_(const_cast<extent_tree *>(t)), e_(e) {}
		extent_tree *t_ = nullptr;
		free_extent *e_ = nullptr;
	};
	using const_iterator = iterator;

	/*
	 * unit_shift: log2 of the unit every extent size is a multiple of (the
	 * arena's granule); indexed_units: sizes up to this many units go through
	 * the size index. Aborts if the index cannot be allocated (construction
	 * is not an allocation path).
	 */
	explicit extent_tree(unsigned unit_shift = 4, std::size_t indexed_units = 4096)
		: unit_shift_(unit_shift), limit_(indexed_units), present_(indexed_units + 1),
		  slots_(new extent_bucket *[indexed_units + 1]())
	{
	}
	extent_tree(const extent_tree &) = delete;
	extent_tree &operator=(const extent_tree &) = delete;
	~extent_tree()
	{
		for (std::size_t u = present_.find_next_set(0); u != bitmap::npos; u = present_.find_next_set(u + 1)) {
			slots_[u]->rest.clear();
			buckets_.destroy(slots_[u]);
		}
		while (!sizes_.empty()) {
			extent_bucket *b = &*sizes_.begin();
			b->rest.clear();
			sizes_.erase(sizes_.iterator_to(*b));
			buckets_.destroy(b);
		}
	}

	/*
	 * Ensures n distinct sizes can be in the tree without allocating (the
	 * caller bounds them: by the extents it may hold, and by the units free
	 * sizes can add up to). False on failure (nothing changed).
	 */
	bool reserve(std::size_t n) noexcept
	{
		std::size_t have = buckets_.in_use() + buckets_.available();
		return n <= have || buckets_.reserve(n - buckets_.in_use());
	}

	/* Inserts e under its current (size, addr); the pair must not be in the tree. */
	void insert(free_extent &e) noexcept
	{
		std::size_t u = e.size >> unit_shift_;
		extent_bucket *b = u <= limit_ ? slots_[u] : by_size::lower_bound(sizes_, e.size);
		if (b && b->size == e.size) {
			b->insert(e);
		} else {
			b = buckets_.create(e.size);
			UA_CHECK(b, "extent_tree: size node missing (reserve first)");
			if (u <= limit_) {
				slots_[u] = b;
				present_.set(u);
			} else {
				by_size::insert(sizes_, *b, e.size);
			}
			b->front[0] = {e.addr, e.chunk_id, &e}; /* a new bucket: its first entry, nothing to shift */
			b->front_n = 1;
		}
		e.bucket = b;
		count_++;
	}

	void erase(free_extent &e) noexcept
	{
		extent_bucket *b = e.bucket;
		b->erase(e);
		e.bucket = nullptr;
		count_--;
		if (!b->front_n) { /* empty */
			std::size_t u = b->size >> unit_shift_;
			if (u <= limit_) {
				slots_[u] = nullptr;
				present_.clear(u);
			} else {
				sizes_.erase(sizes_.iterator_to(*b));
			}
			buckets_.destroy(b);
		}
	}

	/* The extent with exactly this size and address, or nullptr. */
	free_extent *find(std::size_t size, std::uintptr_t addr) const noexcept
	{
		extent_bucket *b = bucket_at_least(size);
		if (!b || b->size != size)
			return nullptr;
		return b->find(addr);
	}

	/* First extent of size >= size (lowest address among the smallest such size). */
	iterator lower_bound(std::size_t size) const noexcept
	{
		extent_bucket *b = bucket_at_least(size);
		return iterator(this, b ? b->first() : nullptr);
	}

	/* The lowest-address extent of the smallest size >= size, or nullptr (lower_bound without an iterator). */
	free_extent *first_of_size_at_least(std::size_t size) const noexcept
	{
		extent_bucket *b = bucket_at_least(size);
		return b ? b->first() : nullptr;
	}

	iterator begin() const noexcept
	{
		extent_bucket *b = bucket_at_least(0);
		return iterator(this, b ? b->first() : nullptr);
	}
	iterator end() const noexcept { return iterator(this, nullptr); }

	std::size_t size() const noexcept { return count_; }
	bool empty() const noexcept { return count_ == 0; }
	/* Distinct sizes among the free extents (size nodes in use). */
	std::size_t distinct_sizes() const noexcept { return buckets_.in_use(); }
	std::size_t memory_bytes() const noexcept
	{
		return buckets_.memory_bytes() + present_.memory_bytes() + (limit_ + 1) * sizeof(extent_bucket *);
	}

	/* Size of the largest free extent, 0 when empty. */
	std::size_t largest() const noexcept
	{
		if (!sizes_.empty())
			return sizes_.rbegin()->size;
		std::size_t u = present_.find_prev_set(limit_);
		return u == bitmap::npos ? 0 : slots_[u]->size;
	}

	/* The size node of the smallest size >= size, or nullptr. */
	extent_bucket *first_bucket_at_least(std::size_t size) const noexcept { return bucket_at_least(size); }

	/* Expensive: every size node is consistent (extent_bucket::consistent). */
	bool fronts_consistent() const noexcept
	{
		for (std::size_t u = present_.find_next_set(0); u != bitmap::npos; u = present_.find_next_set(u + 1))
			if (!slots_[u] || slots_[u]->size >> unit_shift_ != u || !slots_[u]->consistent())
				return false;
		for (const extent_bucket &b : sizes_)
			if (b.size >> unit_shift_ <= limit_ || !b.consistent())
				return false;
		return true;
	}

private:
	/* The size node after b in size order, or nullptr: the index's next set bit, then the tree. */
	extent_bucket *bucket_after(const extent_bucket &b) const noexcept
	{
		auto &sizes = const_cast<sizes_t &>(sizes_);
		std::size_t u = b.size >> unit_shift_;
		if (u > limit_) {
			auto it = ++sizes.iterator_to(const_cast<extent_bucket &>(b));
			return it == sizes.end() ? nullptr : &*it;
		}
		std::size_t n = u < limit_ ? present_.find_next_set(u + 1) : bitmap::npos;
		if (n != bitmap::npos)
			return slots_[n];
		return sizes.empty() ? nullptr : &*sizes.begin();
	}

	/* The size node of the smallest size >= size: the index up to the limit, the tree above it. */
	extent_bucket *bucket_at_least(std::size_t size) const noexcept
	{
		std::size_t u = (size + (std::size_t{1} << unit_shift_) - 1) >> unit_shift_;
		if (u <= limit_) {
			std::size_t n = present_.find_next_set(u);
			if (n != bitmap::npos)
				return slots_[n];
			size = (limit_ + 1) << unit_shift_;
		}
		return by_size::lower_bound(const_cast<sizes_t &>(sizes_), size);
	}

	unsigned unit_shift_;
	std::size_t limit_;
	bitmap present_;                          /* sizes (in units, <= limit_) that have a size node */
	std::unique_ptr<extent_bucket *[]> slots_; /* their size nodes, which are not in sizes_ */
	sizes_t sizes_;                           /* size nodes above limit_ */
	node_pool<extent_bucket> buckets_;
	std::size_t count_ = 0;
};

}  // namespace ua
