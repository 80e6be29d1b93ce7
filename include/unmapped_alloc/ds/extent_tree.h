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

struct free_extent {
	boost::intrusive::set_member_hook<boost::intrusive::optimize_size<true>> hook;
	std::uintptr_t addr = 0;
	std::size_t size = 0;
	arena_chunk *chunk = nullptr;

	free_extent(std::uintptr_t a, std::size_t s, arena_chunk *c) noexcept : addr(a), size(s), chunk(c) {}
	std::uintptr_t end() const noexcept { return addr + size; }
};

/* The (size, address) key: a plain struct so lookups need no node. */
struct extent_key {
	std::size_t size;
	std::uintptr_t addr;
};

struct extent_key_of {
	using type = extent_key;
	type operator()(const free_extent &e) const noexcept { return {e.size, e.addr}; }
};

struct extent_key_less {
	bool operator()(const extent_key &a, const extent_key &b) const noexcept
	{
		return a.size != b.size ? a.size < b.size : a.addr < b.addr;
	}
};

class extent_tree {
	using tree_t = boost::intrusive::set<
		free_extent,
		boost::intrusive::member_hook<free_extent, decltype(free_extent::hook), &free_extent::hook>,
		boost::intrusive::key_of_value<extent_key_of>,
		boost::intrusive::compare<extent_key_less>,
		boost::intrusive::constant_time_size<true>>;

public:
	using iterator = tree_t::iterator;
	using const_iterator = tree_t::const_iterator;

	extent_tree() = default;
	extent_tree(const extent_tree &) = delete;
	extent_tree &operator=(const extent_tree &) = delete;
	~extent_tree() { tree_.clear(); }

	void insert(free_extent &e) noexcept { tree_.insert(e); }
	void erase(free_extent &e) noexcept { tree_.erase(tree_.iterator_to(e)); }

	/* The extent with exactly this key, or nullptr. */
	free_extent *find(std::size_t size, std::uintptr_t addr) noexcept
	{
		auto it = tree_.find(extent_key{size, addr});
		return it == tree_.end() ? nullptr : &*it;
	}

	/* First extent of size >= size (lowest address among the smallest such size). */
	iterator lower_bound(std::size_t size) noexcept { return tree_.lower_bound(extent_key{size, 0}); }

	iterator begin() noexcept { return tree_.begin(); }
	iterator end() noexcept { return tree_.end(); }
	const_iterator begin() const noexcept { return tree_.begin(); }
	const_iterator end() const noexcept { return tree_.end(); }

	std::size_t size() const noexcept { return tree_.size(); }
	bool empty() const noexcept { return tree_.empty(); }

	/* Size of the largest free extent, 0 when empty. */
	std::size_t largest() const noexcept { return tree_.empty() ? 0 : tree_.rbegin()->size; }

private:
	tree_t tree_;
};

}  // namespace ua
