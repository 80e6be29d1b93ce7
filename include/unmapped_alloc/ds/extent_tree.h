// SPDX-License-Identifier: MIT
/*
 * ds/extent_tree.h - the best-fit tree of free extents, keyed by (size, address).
 *
 * One red-black tree (Boost.Intrusive, so nodes are ours and the tree never
 * allocates) holds every free extent of an arena across all its chunks. The
 * key orders extents by size and then by address, so lower_bound(size) is the
 * smallest extent that can hold a request (best fit), and among extents of
 * one size they appear in address order. The owner keeps the fullness
 * tie-break (see arena/arena.h): it inspects the few extents of the best size.
 *
 * Nodes carry their chunk so the arena can prefer fuller chunks without a
 * lookup. Nodes come from a node_pool in ordinary memory (never from managed
 * memory). Not thread-safe: the owner locks.
 */
#pragma once

#include <cstddef>
#include <cstdint>

#include <boost/intrusive/set.hpp>

namespace ua {

struct arena_chunk;

/*
 * The (size, address) order packed in one 64-bit key: size / 16 in the top
 * 20 bits, address / 16 in the low 44. Every extent is a multiple of the
 * granule (>= 16 B) in size and alignment, no larger than a chunk (2^21 B:
 * 18 bits after the shift), and lies below 2^48 (the chunk table's limit), so
 * the packing is exact and one integer compare orders two extents.
 */
inline constexpr unsigned extent_key_addr_bits = 44;
inline constexpr unsigned extent_key_shift = 4;

constexpr std::uint64_t pack_extent_key(std::size_t size, std::uintptr_t addr) noexcept
{
	return (std::uint64_t(size >> extent_key_shift) << extent_key_addr_bits) | std::uint64_t(addr >> extent_key_shift);
}

struct free_extent {
	boost::intrusive::set_member_hook<boost::intrusive::optimize_size<true>> hook; /* first: node == value */
	std::uint64_t key = 0; /* pack_extent_key(size, addr), set by extent_tree::insert */
	std::uintptr_t addr = 0;
	std::size_t size = 0;
	arena_chunk *chunk = nullptr;

	free_extent(std::uintptr_t a, std::size_t s, arena_chunk *c) noexcept : addr(a), size(s), chunk(c) {}
	std::uintptr_t end() const noexcept { return addr + size; }
};

struct extent_key_of {
	using type = std::uint64_t;
	type operator()(const free_extent &e) const noexcept { return e.key; }
};

/*
 * Descents are our own, over Boost's nodes: the child to follow is chosen
 * with a conditional move rather than a branch. A search key's path through
 * a best-fit tree is close to random, so a branchy descent mispredicts about
 * every other level (~15 cycles each); profiles of the arena showed those
 * descents as its largest cost. Linking, unlinking and rebalancing stay
 * Boost's (insert_commit with the parent our descent found).
 */
class extent_tree {
	using tree_t = boost::intrusive::set<
		free_extent,
		boost::intrusive::member_hook<free_extent, decltype(free_extent::hook), &free_extent::hook>,
		boost::intrusive::key_of_value<extent_key_of>,
		boost::intrusive::constant_time_size<true>>;
	using node_traits = tree_t::node_traits;
	using node_ptr = tree_t::node_ptr;

public:
	using iterator = tree_t::iterator;
	using const_iterator = tree_t::const_iterator;

	extent_tree() = default;
	extent_tree(const extent_tree &) = delete;
	extent_tree &operator=(const extent_tree &) = delete;
	~extent_tree() { tree_.clear(); }

	/* Inserts e under its current (size, addr); the pair must not be in the tree. */
	void insert(free_extent &e) noexcept
	{
		e.key = pack_extent_key(e.size, e.addr);
		node_ptr header = tree_.end().pointed_node(), p = header;
		node_ptr x = node_traits::get_parent(header); /* the root (the header's parent) */
		bool left = true;
		while (x) {
			p = x;
			left = e.key < key_at(x);
			x = pick(left, node_traits::get_left(x), node_traits::get_right(x));
		}
		tree_t::insert_commit_data d;
		d.link_left = left;
		d.node = p;
		tree_.insert_commit(e, d);
	}
	void erase(free_extent &e) noexcept { tree_.erase(tree_.iterator_to(e)); }

	/* The extent with exactly this key, or nullptr. */
	free_extent *find(std::size_t size, std::uintptr_t addr) noexcept
	{
		std::uint64_t k = pack_extent_key(size, addr);
		auto it = lower_bound_key(k);
		return it != end() && it->key == k && it->addr == addr && it->size == size ? &*it : nullptr;
	}

	/* First extent of size >= size (lowest address among the smallest such size). */
	iterator lower_bound(std::size_t size) noexcept { return lower_bound_key(pack_extent_key(size, 0)); }

	iterator begin() noexcept { return tree_.begin(); }
	iterator end() noexcept { return tree_.end(); }
	const_iterator begin() const noexcept { return tree_.begin(); }
	const_iterator end() const noexcept { return tree_.end(); }

	std::size_t size() const noexcept { return tree_.size(); }
	bool empty() const noexcept { return tree_.empty(); }

	/* Size of the largest free extent, 0 when empty. */
	std::size_t largest() const noexcept { return tree_.empty() ? 0 : tree_.rbegin()->size; }

private:
	/*
	 * cond ? a : b as a mask blend: compilers turn a plain ?: in a loop back
	 * into a branch, which is what the descent must avoid.
	 */
	static node_ptr pick(bool cond, node_ptr a, node_ptr b) noexcept
	{
		auto ia = reinterpret_cast<std::uintptr_t>(a), ib = reinterpret_cast<std::uintptr_t>(b);
		std::uintptr_t m = std::uintptr_t{0} - std::uintptr_t(cond);
		return reinterpret_cast<node_ptr>(ib ^ ((ia ^ ib) & m));
	}
	static std::uint64_t key_at(node_ptr n) noexcept { return tree_t::value_traits::to_value_ptr(n)->key; }

	/* First extent whose key is >= k: branch-free child selection. */
	iterator lower_bound_key(std::uint64_t k) noexcept
	{
		node_ptr header = tree_.end().pointed_node(), y = header;
		node_ptr x = node_traits::get_parent(header);
		while (x) {
			bool less = key_at(x) < k;
			y = pick(less, y, x);
			x = pick(less, node_traits::get_right(x), node_traits::get_left(x));
		}
		return y == header ? tree_.end() : tree_.iterator_to(*tree_t::value_traits::to_value_ptr(y));
	}

	tree_t tree_;
};

}  // namespace ua
