// SPDX-License-Identifier: MIT
/*
 * ds/extent_index.h - free extents by start address, in O(1).
 *
 * free() must find the free extents on both sides of the range it releases.
 * The chunk bitmaps give their addresses (a free run's start is one past the
 * previous set bit), and this index turns an address into the extent's tree
 * node without a descent of the (size, address) tree, which at 100 K live
 * allocations is ~17 dependent loads. It is an open-addressing hash set of
 * node pointers keyed by the node's start address: linear probing, load kept
 * at or below 1/2, backward-shift deletion (no tombstones).
 *
 * reserve(n) grows the table up front so that n entries fit without
 * rehashing; has_room(n) says whether n more fit now. insert() never
 * allocates. The arena sizes the table by the extents it holds, not by their
 * bound, and leaves an extent out when the table is full (arena/arena.h,
 * link_extent): the index accelerates, the tree stays the truth. Storage is
 * ordinary heap memory. Not thread-safe: the owner locks.
 *
 * Locality. The slot is a hash of the chunk plus the extent's unit offset
 * inside it, not a hash of the whole address: one chunk's extents occupy one
 * window of the table in address order, and the extents a free() touches
 * (both neighbours, the merged result) sit within a few cache lines of each
 * other. Starts of distinct extents are at least two units apart, so one
 * chunk never collides with itself; windows of different chunks overlap
 * (the table is smaller than a chunk's units once it holds few extents), and
 * the load bound of 1/2 keeps those probe runs short.
 */
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>

#include "../check.h"
#include "../config.h"
#include "extent_tree.h"

namespace ua {

class extent_index {
public:
	/* unit_shift: log2 of the smallest spacing of extent starts (the arena's granule). */
	explicit extent_index(unsigned unit_shift = 4) noexcept : unit_shift_(unit_shift) {}
	extent_index(const extent_index &) = delete;
	extent_index &operator=(const extent_index &) = delete;

	/* Ensures n entries fit with load <= 1/2. False on allocation failure (nothing changed). */
	bool reserve(std::size_t n) noexcept
	{
		if (2 * n <= cap_)
			return true;
		std::size_t cap = cap_ ? cap_ : 64;
		while (cap < 2 * n)
			cap *= 2;
		std::unique_ptr<free_extent *[]> slots(new (std::nothrow) free_extent *[cap]());
		if (!slots)
			return false;
		std::unique_ptr<free_extent *[]> old = std::move(slots_);
		std::size_t old_cap = cap_;
		slots_ = std::move(slots);
		cap_ = cap;
		shift_ = unsigned(64 - std::countr_zero(cap));
		for (std::size_t i = 0; i < old_cap; i++)
			if (old[i])
				place(old[i]);
		return true;
	}

	/* True when n more entries fit at load <= 1/2. */
	bool has_room(std::size_t n) const noexcept { return 2 * (count_ + n) <= cap_; }

	/* Adds e (keyed by e->addr); the caller has reserved room. */
	void insert(free_extent *e) noexcept
	{
		UA_DEBUG_ASSERT(2 * (count_ + 1) <= cap_);
		place(e);
		count_++;
	}

	free_extent *find(std::uintptr_t addr) const noexcept
	{
		if (!cap_)
			return nullptr;
		for (std::size_t i = slot_of(addr);; i = (i + 1) & (cap_ - 1)) {
			free_extent *e = slots_[i];
			if (!e || e->addr == addr)
				return e;
		}
	}

	/* Removes the entry for addr (which must be present). */
	void erase(std::uintptr_t addr) noexcept
	{
		std::size_t mask = cap_ - 1, i = slot_of(addr);
		while (slots_[i]->addr != addr)
			i = (i + 1) & mask;
		/* Backward-shift: move later entries of the probe run into the hole. */
		for (std::size_t j = (i + 1) & mask; slots_[j]; j = (j + 1) & mask) {
			std::size_t home = slot_of(slots_[j]->addr);
			/* slots_[j] may move to i when its home is not within (i, j]. */
			if (((j - home) & mask) >= ((j - i) & mask)) {
				slots_[i] = slots_[j];
				i = j;
			}
		}
		slots_[i] = nullptr;
		count_--;
	}

	std::size_t size() const noexcept { return count_; }
	std::size_t memory_bytes() const noexcept { return cap_ * sizeof(free_extent *); }

private:
	std::size_t slot_of(std::uintptr_t addr) const noexcept
	{
		/* Fibonacci hashing of the chunk places its window; the unit offset keeps address order inside it. */
		std::uint64_t chunk = std::uint64_t(addr >> chunk_shift) * 0x9e3779b97f4a7c15ull;
		std::size_t win = shift_ < 64 ? std::size_t(chunk >> shift_) : 0;
		return (win + ((addr & (chunk_size - 1)) >> unit_shift_)) & (cap_ - 1);
	}

	void place(free_extent *e) noexcept
	{
		std::size_t i = slot_of(e->addr);
		while (slots_[i])
			i = (i + 1) & (cap_ - 1);
		slots_[i] = e;
	}

	std::unique_ptr<free_extent *[]> slots_;
	std::size_t cap_ = 0, count_ = 0;
	unsigned shift_ = 64;
	unsigned unit_shift_ = 4;
};

}  // namespace ua
