// SPDX-License-Identifier: MIT
/*
 * arena/arena_fit.h - the arena's placement and coalescing steps.
 *
 * find_fit picks the extent (best fit by size, then the fullest chunk among
 * the lowest-address extents of that size, then the lowest address), carve
 * takes an allocation out of it, release_range gives a freed range back and
 * merges it with its free neighbours. Included by arena.h; the rules they
 * implement are described there and in docs/design.md.
 */
#pragma once

#include "arena.h"

namespace ua {

/* Best fit, fullest chunk among equals, then lowest address. */
inline free_extent *arena::find_fit(std::size_t need, std::size_t a) noexcept
{
	if (a <= cfg_.granule && cfg_.fullness_window <= extent_bucket::front_cap) {
		/*
		 * Every extent of the best size fits: compare the first window of
		 * its bucket (address order), read from the bucket's front array.
		 */
		extent_bucket *b = tree_.first_bucket_at_least(need);
		if (!b)
			return nullptr;
		unsigned n = b->front_n < cfg_.fullness_window ? b->front_n : unsigned(cfg_.fullness_window);
		unsigned best = 0;
		const std::uint32_t *fill = fill_.get();
		std::uint32_t best_live = fill[b->front[0].chunk_id];
		for (unsigned i = 1; i < n; i++) {
			/* Which chunk is fuller is data, not pattern: select without a branch. */
			std::uint32_t live = fill[b->front[i].chunk_id];
			bool better = live > best_live;
			best = better ? i : best;
			best_live = better ? live : best_live;
		}
		return b->front[best].node;
	}
	auto it = tree_.lower_bound(need), end = tree_.end();
	std::size_t scanned = 0;
	while (it != end && !fits(*it, need, a)) {
		if (++scanned == cfg_.align_scan_limit) {
			/*
			 * Any extent of at least need + a - granule holds an aligned
			 * start, and so does a whole free chunk (chunk aligned).
			 */
			std::size_t sure = need + a - cfg_.granule;
			it = tree_.lower_bound(sure < chunk_size ? sure : chunk_size);
			break;
		}
		++it;
	}
	if (it == end)
		return nullptr;
	free_extent *best = &*it;
	std::size_t window = cfg_.fullness_window;
	for (++it; --window && it != end && it->size == best->size; ++it) {
		if (fill_[it->chunk_id] > fill_[best->chunk_id] && fits(*it, need, a))
			best = &*it;
	}
	return best;
}

/* Takes [start, start + need) out of free extent x; remainders go back to the tree. */
inline void arena::carve(free_extent &x, std::uintptr_t start, std::size_t need) noexcept
{
	arena_chunk *c = x.chunk;
	std::uintptr_t lead_addr = x.addr, tail_addr = start + need, end = x.end();
	tree_.erase(x);
	if (start > lead_addr) {
		/* x keeps its start, so its chain stays; only its size (its place in the tree) changes. */
		x.size = std::uint32_t(start - lead_addr);
		tree_.insert(x);
		if (end > tail_addr) {
			free_extent *t = pool_.create(tail_addr, end - tail_addr, c, c->id);
			UA_CHECK(t, "reserved node missing");
			link_extent(*t);
		}
	} else if (end > tail_addr) {
		chain_move(x, tail_addr);
		x.size = std::uint32_t(end - tail_addr);
		tree_.insert(x);
	} else {
		chain_remove(x);
		pool_.destroy(&x);
	}
	std::size_t u = (start - c->base) >> granule_shift_, n = need >> granule_shift_;
	c->write_begin();
	c->used().set_range(u, n);
	c->starts().set(u);
	c->write_end();
	if (c->live_count++ == 0)
		empty_chunks_--;
	fill_[c->id] += std::uint32_t(n);
	live_bytes_ += need;
	live_count_++;
}

/* Units [u, e) of c just became free: merge with free neighbours into one extent. */
inline void arena::release_range(arena_chunk &c, std::size_t u, std::size_t e) noexcept
{
	std::size_t lo = u, hi = e;
	free_extent *left = nullptr, *right = nullptr;
	bitmap used = c.used();
	if (u > 0 && !used.test(u - 1)) {
		std::size_t p = used.find_prev_set(u - 1);
		lo = p == bitmap::npos ? 0 : p + 1;
		left = find_extent(c, c.base + (lo << granule_shift_));
		UA_CHECK(left && left->end() == c.base + (u << granule_shift_), "free run left of a freed range has no node");
		tree_.erase(*left); /* it keeps its start: its chain stays */
	}
	if (e < units_ && !used.test(e)) {
		right = find_extent(c, c.base + (e << granule_shift_));
		UA_CHECK(right, "free run right of a freed range has no node");
		hi = e + (right->size >> granule_shift_);
		tree_.erase(*right);
	}
	if (left) {
		if (right) {
			chain_remove(*right);
			pool_.destroy(right);
		}
		left->size = std::uint32_t((hi - lo) << granule_shift_);
		tree_.insert(*left);
		return;
	}
	std::uintptr_t addr = c.base + (lo << granule_shift_);
	free_extent *node = right;
	if (node) {
		chain_move(*node, addr);
	} else {
		node = pool_.create(addr, 0, &c, c.id);
		UA_CHECK(node, "reserved node missing");
		chain_push(*node);
	}
	node->size = std::uint32_t((hi - lo) << granule_shift_);
	tree_.insert(*node);
}

}  // namespace ua
