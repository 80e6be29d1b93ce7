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
 * Shape. The tree is two-level, both levels Boost.Intrusive red-black trees
 * (nodes are ours; the tree never allocates behind our back):
 *
 *   sizes    one extent_bucket per distinct free-extent size, keyed by size;
 *   bucket   the extents of that size, keyed by address.
 *
 * The in-order walk of sizes, and inside each size its bucket, is exactly the
 * (size, address) order of a single tree keyed by the pair; the split only
 * lets extents of equal size share one size node. Free extents vastly
 * outnumber their distinct sizes (on the BPF mix at 100 K live allocations,
 * ~5,000 extents of ~460 sizes), so the size level is a small tree that stays
 * in L1/L2 while a flat tree of all extents made every descent a walk of
 * ~13 cache-missing levels, the arena's largest cost. The smallest extent of
 * a size is its bucket's leftmost node: no second descent to find it.
 *
 * Size index. Below a limit (4096 units: 256 KiB at the 64-byte granule,
 * every size at 4 KiB), size nodes are also reachable from an array indexed
 * by the size in units, and a bitmap (ds/bitmap.h) marks the sizes present.
 * lower_bound(size) is then a bitmap search and an array load, and a new size
 * node is linked before its successor (found the same way) without a descent.
 * It is an index of the size tree, not a second structure: the tree still
 * holds every size node in order and answers for sizes above the limit. The
 * answers are exactly the tree's.
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
#include "node_pool.h"
#include "tree_descend.h"

namespace ua {

struct arena_chunk;
struct extent_bucket;

struct free_extent {
	boost::intrusive::set_member_hook<boost::intrusive::optimize_size<true>> hook; /* first: node == value */
	std::uintptr_t addr = 0;
	std::size_t size = 0;
	arena_chunk *chunk = nullptr;
	extent_bucket *bucket = nullptr; /* the size node holding it, while in a tree */
	bool indexed = false;            /* also in the owner's start-address index */

	free_extent(std::uintptr_t a, std::size_t s, arena_chunk *c) noexcept : addr(a), size(s), chunk(c) {}
	std::uintptr_t end() const noexcept { return addr + size; }
};

namespace detail {

struct extent_addr_of {
	using type = std::uintptr_t;
	type operator()(const free_extent &e) const noexcept { return e.addr; }
};

using extent_set = boost::intrusive::set<
	free_extent, boost::intrusive::member_hook<free_extent, decltype(free_extent::hook), &free_extent::hook>,
	boost::intrusive::key_of_value<extent_addr_of>, boost::intrusive::constant_time_size<false>>;

}  // namespace detail

/*
 * A size node: the extents of one size, in address order. The lowest
 * min(n, front_cap) of them live in `front`, a sorted array (with their
 * addresses and chunks, so that comparisons read no extent node); only the
 * rest, all above front's last address, are linked in the `rest` tree. The
 * arena compares the front on chunk fullness, and most sizes never hold more
 * than front_cap extents, so most relinks are a shift inside one array
 * instead of a descent and a rebalance of a tree (see the file comment).
 */
struct alignas(64) extent_bucket { /* line-aligned: header in one line, front entries after */
	static constexpr unsigned front_cap = 8;

	boost::intrusive::set_member_hook<boost::intrusive::optimize_size<true>> hook; /* first: node == value */
	std::size_t size = 0;
	detail::extent_set rest; /* extents above front[front_cap - 1]; empty unless front is full */
	unsigned front_n = 0;    /* >= 1 while the node is in a tree */
	/* Entries from front_n on are `none`: their address sorts after every real one. */
	struct front_entry {
		std::uintptr_t addr;
		arena_chunk *chunk;
		free_extent *node;
	} front[front_cap];
	static constexpr front_entry none{~std::uintptr_t{0}, nullptr, nullptr};

	explicit extent_bucket(std::size_t s) noexcept : size(s)
	{
		for (front_entry &f : front)
			f = none;
	}

	/* e belongs to this bucket: is it one of the front entries? (A front that is not full holds them all.) */
	bool in_front(const free_extent &e) const noexcept { return e.addr <= front[front_cap - 1].addr; }
	/*
	 * How many front entries lie below addr: e's index when e is in the
	 * front, where it goes when it joins. A fixed count over the whole array
	 * (`none` entries never count): where the address falls is data, and a
	 * loop that stops there mispredicted its exit about once per call.
	 */
	unsigned front_rank(std::uintptr_t addr) const noexcept
	{
		unsigned r = 0;
		for (const front_entry &f : front)
			r += f.addr < addr;
		return r;
	}
};

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
	using by_addr = detail::descend<detail::extent_set, detail::extent_addr_of>;

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
			if (b->in_front(*e_)) {
				unsigned i = b->front_rank(e_->addr) + 1;
				if (i < b->front_n) {
					e_ = b->front[i].node;
					return *this;
				}
				if (!b->rest.empty()) {
					e_ = &*b->rest.begin();
					return *this;
				}
			} else if (auto it = ++b->rest.iterator_to(*e_); it != b->rest.end()) {
				e_ = &*it;
				return *this;
			}
			auto sit = ++t_->sizes_.iterator_to(*b);
			e_ = sit == t_->sizes_.end() ? nullptr : sit->front[0].node;
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
			front_insert(*b, e);
		} else {
			b = buckets_.create(e.size);
			UA_CHECK(b, "extent_tree: size node missing (reserve first)");
			std::size_t next = u < limit_ ? present_.find_next_set(u + 1) : bitmap::npos;
			if (next != bitmap::npos)
				sizes_.insert_before(sizes_.iterator_to(*slots_[next]), *b); /* its successor: no descent */
			else
				by_size::insert(sizes_, *b, e.size);
			if (u <= limit_) {
				slots_[u] = b;
				present_.set(u);
			}
			b->front[0] = {e.addr, e.chunk, &e};
			b->front_n = 1;
		}
		e.bucket = b;
		count_++;
	}

	void erase(free_extent &e) noexcept
	{
		extent_bucket *b = e.bucket;
		if (b->in_front(e))
			front_erase(*b, e);
		else
			b->rest.erase(b->rest.iterator_to(e));
		e.bucket = nullptr;
		count_--;
		if (!b->front_n) {
			std::size_t u = b->size >> unit_shift_;
			if (u <= limit_) {
				slots_[u] = nullptr;
				present_.clear(u);
			}
			sizes_.erase(sizes_.iterator_to(*b));
			buckets_.destroy(b);
		}
	}

	/* The extent with exactly this size and address, or nullptr. */
	free_extent *find(std::size_t size, std::uintptr_t addr) const noexcept
	{
		extent_bucket *b = bucket_at_least(size);
		if (!b || b->size != size)
			return nullptr;
		if (addr <= b->front[extent_bucket::front_cap - 1].addr) {
			unsigned r = b->front_rank(addr);
			return b->front[r].addr == addr ? b->front[r].node : nullptr;
		}
		free_extent *e = by_addr::lower_bound(b->rest, addr);
		return e && e->addr == addr ? e : nullptr;
	}

	/* First extent of size >= size (lowest address among the smallest such size). */
	iterator lower_bound(std::size_t size) const noexcept
	{
		extent_bucket *b = bucket_at_least(size);
		return iterator(this, b ? b->front[0].node : nullptr);
	}

	/* The lowest-address extent of the smallest size >= size, or nullptr (lower_bound without an iterator). */
	free_extent *first_of_size_at_least(std::size_t size) const noexcept
	{
		extent_bucket *b = bucket_at_least(size);
		return b ? b->front[0].node : nullptr;
	}

	iterator begin() const noexcept
	{
		auto &sizes = const_cast<sizes_t &>(sizes_);
		return sizes.empty() ? end() : iterator(this, sizes.begin()->front[0].node);
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
	std::size_t largest() const noexcept { return sizes_.empty() ? 0 : sizes_.rbegin()->size; }

	/* The size node of the smallest size >= size, or nullptr. */
	extent_bucket *first_bucket_at_least(std::size_t size) const noexcept { return bucket_at_least(size); }

	/*
	 * Expensive: every size node's front is sorted, full before its rest
	 * tree holds anything, below every address there, and names nodes of
	 * this size and bucket with their addresses and chunks.
	 */
	bool fronts_consistent() const noexcept
	{
		for (const extent_bucket &b : sizes_) {
			if (b.front_n < 1 || b.front_n > extent_bucket::front_cap)
				return false;
			for (unsigned i = b.front_n; i < extent_bucket::front_cap; i++)
				if (b.front[i].addr != extent_bucket::none.addr)
					return false;
			for (unsigned i = 0; i < b.front_n; i++) {
				const auto &f = b.front[i];
				if (!f.node || f.node->addr != f.addr || f.node->chunk != f.chunk || f.node->size != b.size ||
				    f.node->bucket != &b || (i && b.front[i - 1].addr >= f.addr))
					return false;
			}
			if (!b.rest.empty() && (b.front_n != extent_bucket::front_cap ||
						b.rest.begin()->addr <= b.front[b.front_n - 1].addr))
				return false;
			for (const free_extent &e : b.rest)
				if (e.size != b.size || e.bucket != &b)
					return false;
		}
		return true;
	}

private:
	/*
	 * e joins b: into the front if it is among the lowest addresses (a full
	 * front's highest entry then moves to the rest tree, as its new first
	 * node: no descent), else into the rest tree.
	 */
	static void front_insert(extent_bucket &b, free_extent &e) noexcept
	{
		constexpr unsigned cap = extent_bucket::front_cap;
		unsigned n = b.front_n;
		if (n == cap) {
			if (e.addr > b.front[cap - 1].addr) {
				by_addr::insert(b.rest, e, e.addr);
				return;
			}
			b.rest.push_front(*b.front[cap - 1].node);
			b.front[cap - 1] = extent_bucket::none;
			n--;
		}
		/* Shift the entries at and above e's rank up by one; every slot is a select, no branch on the rank. */
		unsigned r = b.front_rank(e.addr);
		for (unsigned j = cap - 1; j > 0; j--)
			select_entry(b.front[j], b.front[j - 1], j > r);
		b.front[r] = {e.addr, e.chunk, &e};
		b.front_n = n + 1;
	}

	/* e leaves b's front; the first node of the rest tree, if any, moves in. */
	static void front_erase(extent_bucket &b, free_extent &e) noexcept
	{
		constexpr unsigned cap = extent_bucket::front_cap;
		unsigned r = b.front_rank(e.addr);
		for (unsigned j = 0; j + 1 < cap; j++)
			select_entry(b.front[j], b.front[j + 1], j >= r);
		if (b.rest.empty()) {
			b.front[cap - 1] = extent_bucket::none;
			b.front_n--;
			return;
		}
		free_extent &f = *b.rest.begin();
		b.rest.erase(b.rest.begin());
		b.front[cap - 1] = {f.addr, f.chunk, &f};
	}

	/* d = cond ? s : d as mask blends (a plain ?: here compiles to a branch per slot). */
	static void select_entry(extent_bucket::front_entry &d, const extent_bucket::front_entry &s, bool cond) noexcept
	{
		std::uintptr_t m = std::uintptr_t{0} - std::uintptr_t(cond);
		auto blend = [m](std::uintptr_t x, std::uintptr_t y) { return x ^ ((x ^ y) & m); };
		d.addr = blend(d.addr, s.addr);
		d.chunk = reinterpret_cast<arena_chunk *>(
			blend(reinterpret_cast<std::uintptr_t>(d.chunk), reinterpret_cast<std::uintptr_t>(s.chunk)));
		d.node = reinterpret_cast<free_extent *>(
			blend(reinterpret_cast<std::uintptr_t>(d.node), reinterpret_cast<std::uintptr_t>(s.node)));
	}

	/* The size node of the smallest size >= size: the index below the limit, the tree above it. */
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
	std::unique_ptr<extent_bucket *[]> slots_; /* their size nodes */
	sizes_t sizes_;
	node_pool<extent_bucket> buckets_;
	std::size_t count_ = 0;
};

}  // namespace ua
