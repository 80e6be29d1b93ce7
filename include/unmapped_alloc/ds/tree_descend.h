// SPDX-License-Identifier: MIT
/*
 * ds/tree_descend.h - branch-free descents over Boost.Intrusive red-black trees.
 *
 * A search key's path through a best-fit tree is close to random, so a
 * descent that branches on each comparison mispredicts about every other
 * level (~15 cycles each); profiles of the arena showed those descents as its
 * largest cost before they were rewritten this way. These loops choose the
 * child with a mask blend instead, and leave linking, unlinking and
 * rebalancing to Boost (insert_commit with the parent the descent found).
 * For sets whose hook is the value's first member and whose key is an
 * unsigned integer given by KeyOf.
 */
#pragma once

#include <cstdint>

namespace ua::detail {

/* Branch-free descents over a Boost.Intrusive set whose hook is the value's first member. */
template <class Set, class KeyOf>
struct descend {
	using node_traits = typename Set::node_traits;
	using node_ptr = typename Set::node_ptr;

	/* cond ? a : b as a mask blend: compilers turn a plain ?: in a loop back into a branch. */
	static node_ptr pick(bool cond, node_ptr a, node_ptr b) noexcept
	{
		auto ia = reinterpret_cast<std::uintptr_t>(a), ib = reinterpret_cast<std::uintptr_t>(b);
		std::uintptr_t m = std::uintptr_t{0} - std::uintptr_t(cond);
		return reinterpret_cast<node_ptr>(ib ^ ((ia ^ ib) & m));
	}
	static std::uint64_t key_at(node_ptr n) noexcept { return KeyOf{}(*Set::value_traits::to_value_ptr(n)); }

	/* The first value with key >= k, or nullptr. */
	static typename Set::value_type *lower_bound(Set &s, std::uint64_t k) noexcept
	{
		node_ptr header = s.end().pointed_node(), y = header;
		node_ptr x = node_traits::get_parent(header); /* the root */
		while (x) {
			bool less = key_at(x) < k;
			y = pick(less, y, x);
			x = pick(less, node_traits::get_right(x), node_traits::get_left(x));
		}
		return y == header ? nullptr : Set::value_traits::to_value_ptr(y);
	}

	/* Links v (whose key k is not in s) where a descent for k ends. */
	static void insert(Set &s, typename Set::value_type &v, std::uint64_t k) noexcept
	{
		node_ptr header = s.end().pointed_node(), p = header;
		node_ptr x = node_traits::get_parent(header);
		bool left = true;
		while (x) {
			p = x;
			left = k < key_at(x);
			x = pick(left, node_traits::get_left(x), node_traits::get_right(x));
		}
		typename Set::insert_commit_data d;
		d.link_left = left;
		d.node = p;
		s.insert_commit(v, d);
	}
};

}  // namespace ua::detail
