// SPDX-License-Identifier: MIT
/*
 * peers/buddy_lists.h - free lists per order over blocks a peer took from the
 * page allocator: the buddy cache of the 2023 __GFP_UNMAPPED RFC
 * (mm/unmapped-alloc.c: struct unmapped_free_area free_area[]) and the
 * unmapped freetype's free lists of the 2026 RFC share this shape.
 *
 *   - lists are LIFO: add_to_free_list() is list_add() at the head, and
 *     __rmqueue_smallest() takes list_first_entry() of the smallest order
 *     that has one, expand() putting the upper halves back (high first);
 *   - a free merges with its free buddy of the same order
 *     (__free_one_page()), but only inside the block it came from: the page
 *     allocator gives a block back with the order it was taken with (it has
 *     no split_page() here), so a taken block is the unit of release;
 *   - whole_free(pfn) says whether a taken block is free again in one piece.
 *
 * No locking: the owner serialises every call.
 */
#pragma once

#include <array>
#include <cstdint>
#include <list>
#include <map>
#include <unordered_map>
#include <utility>

#include "peer.h"

namespace ua::peers {

class buddy_lists {
public:
	static constexpr unsigned max_order = max_page_order;

	/* A block just taken from the page allocator, all free. */
	void add_block(pfn_t pfn, unsigned order)
	{
		blocks_.emplace(pfn, order);
		add_free(pfn, order);
	}
	/* Forget a block that is wholly free (whole_free()), before giving it back. */
	void remove_block(pfn_t pfn)
	{
		del_free(pfn);
		blocks_.erase(pfn);
	}

	/* __rmqueue_smallest() + expand(): a free block of `order`, or no_hint. */
	pfn_t alloc(unsigned order)
	{
		for (unsigned o = order; o <= max_order; o++) {
			if (free_[o].empty())
				continue;
			const pfn_t pfn = free_[o].front();
			del_free(pfn);
			while (o > order) {
				o--;
				add_free(pfn + (pfn_t{1} << o), o);
			}
			return pfn;
		}
		return no_hint;
	}

	/* __free_one_page(): back to the lists, merged with free buddies inside its taken block. */
	void free(pfn_t pfn, unsigned order)
	{
		const unsigned top = block_of(pfn).second;
		while (order < top) {
			const pfn_t buddy = pfn ^ (pfn_t{1} << order);
			auto it = free_at_.find(buddy);
			if (it == free_at_.end() || it->second.order != order)
				break;
			del_free(buddy);
			pfn &= ~(pfn_t{1} << order);
			order++;
		}
		add_free(pfn, order);
	}

	/* The taken block holding pfn: (start, order). */
	std::pair<pfn_t, unsigned> block_of(pfn_t pfn) const
	{
		auto it = blocks_.upper_bound(pfn);
		UA_CHECK(it != blocks_.begin(), "buddy_lists: frame outside every taken block");
		--it;
		UA_CHECK(pfn < it->first + (pfn_t{1} << it->second), "buddy_lists: frame outside every taken block");
		return *it;
	}
	/* Whether the taken block starting at pfn is one free block again. */
	bool whole_free(pfn_t pfn) const
	{
		auto b = blocks_.find(pfn);
		auto f = free_at_.find(pfn);
		return b != blocks_.end() && f != free_at_.end() && f->second.order == b->second;
	}
	/* Whether pfn is the start of a free block of the lists (of any order). */
	bool is_free_head(pfn_t pfn) const { return free_at_.count(pfn) != 0; }

	std::uint64_t nr_free(unsigned order) const { return order <= max_order ? free_[order].size() : 0; }
	std::uint64_t free_pages() const noexcept { return free_pages_; }
	const std::map<pfn_t, unsigned> &blocks() const noexcept { return blocks_; }
	/* Free block heads of an order, head of the list first. */
	const std::list<pfn_t> &list(unsigned order) const { return free_[order]; }
	std::size_t metadata_bytes() const noexcept
	{
		return blocks_.size() * map_node_bytes<pfn_t, unsigned> +
		       free_at_.size() * (map_node_bytes<pfn_t, free_ref> + 3 * sizeof(void *));
	}

private:
	struct free_ref {
		unsigned order;
		std::list<pfn_t>::iterator it;
	};

	void add_free(pfn_t pfn, unsigned order)
	{
		free_[order].push_front(pfn); /* list_add(): at the head */
		free_at_[pfn] = free_ref{order, free_[order].begin()};
		free_pages_ += std::uint64_t{1} << order;
	}
	void del_free(pfn_t pfn)
	{
		auto it = free_at_.find(pfn);
		UA_CHECK(it != free_at_.end(), "buddy_lists: removing a block that is not free");
		free_pages_ -= std::uint64_t{1} << it->second.order;
		free_[it->second.order].erase(it->second.it);
		free_at_.erase(it);
	}

	std::array<std::list<pfn_t>, max_order + 1> free_;
	std::unordered_map<pfn_t, free_ref> free_at_;
	std::map<pfn_t, unsigned> blocks_; /* blocks taken from the page allocator: start -> order */
	std::uint64_t free_pages_ = 0;
};

}  // namespace ua::peers
