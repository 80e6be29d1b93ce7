// SPDX-License-Identifier: MIT
/*
 * arena/arena_check.h - the arena's expensive whole-structure consistency walk.
 *
 * For tests (check.h's third level): recomputes everything the arena keeps
 * incrementally and compares. Included by arena.h; not for hot paths.
 */
#pragma once

#include <string>

#include "arena.h"

namespace ua {

inline std::string arena::check_consistency() const
{
	auto fail = [](const std::string &what, std::uintptr_t where) {
		char buf[32];
		std::snprintf(buf, sizeof buf, "%#lx", static_cast<unsigned long>(where));
		return what + " at " + buf;
	};
	std::size_t runs = 0, live = 0, count = 0, chained = 0, empty = 0;
	for (const arena_chunk &c : chunks_) {
		if (table_.lookup(c.base) != &c)
			return fail("chunk missing from the lookup table", c.base);
		if (!c.used().summaries_consistent() || !c.starts().summaries_consistent())
			return fail("bitmap summary out of date", c.base);
		std::size_t used_units = c.used().count(), starts = c.starts().count();
		if (starts != c.live_count)
			return fail("chunk live_count disagrees with its start bits", c.base);
		if (c.id >= ids_cap_ || fill_[c.id] != used_units)
			return fail("chunk fill (by chunk number) disagrees with its bitmap", c.base);
		for (std::size_t s = c.starts().find_next_set(0); s != bitmap::npos; s = c.starts().find_next_set(s + 1))
			if (!c.used().test(s))
				return fail("allocation start on a free unit", c.base + (s << granule_shift_));
		/* Every used run begins with a start bit; every free run is one tree node. */
		std::size_t p = 0;
		while (p < units_) {
			if (c.used().test(p)) {
				if (!c.starts().test(p))
					return fail("used run without an allocation start", c.base + (p << granule_shift_));
				std::size_t z = c.used().find_next_zero(p);
				p = z == bitmap::npos ? units_ : z;
				continue;
			}
			std::size_t q = c.used().find_next_set(p);
			q = q == bitmap::npos ? units_ : q;
			free_extent *x = const_cast<extent_tree &>(tree_).find((q - p) << granule_shift_, c.base + (p << granule_shift_));
			if (!x)
				return fail("free run without a tree node", c.base + (p << granule_shift_));
			if (x->chunk != &c || x->chunk_id != c.id)
				return fail("tree node points at the wrong chunk", x->addr);
			if (find_extent(c, x->addr) != x)
				return fail("free extent missing from its chunk's chain", x->addr);
			runs++;
			p = q;
		}
		/* Every chained node is a free extent of this chunk starting in its chain's units. */
		for (std::size_t w = 0; w < arena_chunk::nr_heads(units_); w++)
			for (const free_extent *x = c.heads()[w]; x; x = x->chain_next) {
				if (x->chunk != &c || !x->bucket || chain_of(c, x->addr) != c.heads() + w)
					return fail("chain holds a node of other units, another chunk or no tree", x->addr);
				if (++chained > tree_.size())
					return fail("chains hold more nodes than the tree (a cycle?)", c.base);
			}
		live += chunk_live(c);
		count += c.live_count;
		empty += c.live_count == 0;
	}
	if (empty != empty_chunks_)
		return "arena's count of empty chunks disagrees with its chunks";
	if (runs != tree_.size())
		return "tree holds " + std::to_string(tree_.size()) + " extents but chunks have " + std::to_string(runs) + " free runs";
	if (!tree_.fronts_consistent())
		return "a size node's front array disagrees with its lowest-address extents";
	if (chained != tree_.size())
		return "chains hold " + std::to_string(chained) + " extents, the tree " + std::to_string(tree_.size());
	if (chunks_.size() + nr_free_ids_ != ids_cap_)
		return "chunk numbers in use and free do not add up to those allocated";
	if (live != live_bytes_ || count != live_count_)
		return "arena live totals disagree with its chunks";
	if (pool_.in_use() != tree_.size())
		return "node pool in use (" + std::to_string(pool_.in_use()) + ") differs from tree size";
	if (pool_.available() + tree_.size() < live_count_ + chunks_.size())
		return "node reserve below the free-extent bound";
	return {};
}

}  // namespace ua
