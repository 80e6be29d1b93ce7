// SPDX-License-Identifier: MIT
/* arena/stats.h - what an arena reports about itself. */
#pragma once

#include <cstddef>

namespace ua {

struct arena_stats {
	std::size_t live_bytes = 0;     /* bytes in live allocations, rounded to the granule */
	std::size_t live_count = 0;     /* live allocations */
	std::size_t free_bytes = 0;     /* bytes of the arena's chunks not in live allocations */
	std::size_t free_extents = 0;   /* nodes in the best-fit tree */
	std::size_t chunks = 0;         /* chunks the arena holds */
	std::size_t empty_chunks = 0;   /* chunks with no live allocation */
	std::size_t largest_free = 0;   /* largest free extent, bytes */
	/*
	 * External fragmentation: 1 - largest_free / free_bytes (0 when nothing is
	 * free). 0 means all free space is one extent; near 1 means it is
	 * scattered in pieces much smaller than the total.
	 */
	double fragmentation = 0.0;
	std::size_t metadata_bytes = 0; /* bitmaps, chunk records, tree nodes, lookup table */
};

}  // namespace ua
