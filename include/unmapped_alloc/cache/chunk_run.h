// SPDX-License-Identifier: MIT
/*
 * cache/chunk_run.h - a run of whole chunks a cache holds: its frames and its alias.
 *
 * A run is virtually contiguous: its nr_chunks chunks sit one after another
 * at alias. Physically it is either one block of the page allocator (pfn,
 * order: the frames [pfn, pfn + nr_chunks * 512)) or, when no block fits the
 * request exactly, nr_chunks order-9 blocks taken wherever they are, as
 * vmalloc() maps scattered pages into one virtual range: pieces[] then lists
 * the runs of physically adjacent chunks in alias order, and each chunk goes
 * back to the page allocator as its own order-9 block.
 *
 * The pieces array is metadata outside managed memory, owned by the run:
 * chunk_source allocates it in acquire() and frees it in release(). A run
 * is copied shallowly; one copy (the cache's chunk record) owns it.
 */
#pragma once

#include <cstddef>
#include <cstdint>

#include "../config.h"
#include "../mapping.h"

namespace ua {

struct chunk_run {
	pfn_t pfn = 0;                 /* first frame (of the first piece) */
	unsigned order = 0;            /* page-allocator order of the one block, or 9 (each chunk) when scattered */
	std::size_t nr_chunks = 0;     /* chunks the cache uses */
	std::uintptr_t alias = 0;      /* the user-visible address */
	frame_range *pieces = nullptr; /* scattered: runs of adjacent chunks in alias order; nullptr: one block */
	std::size_t nr_pieces = 0;

	bool scattered() const noexcept { return pieces != nullptr; }
	std::size_t bytes() const noexcept { return nr_chunks * chunk_size; }
	/* The frames behind the first piece: all of them for a run of one block. */
	frame_range frames() const noexcept { return piece(0); }
	/* The page-allocator block of a run of one block. */
	frame_range block() const noexcept { return {pfn, std::uint64_t{1} << order}; }

	std::size_t piece_count() const noexcept { return pieces ? nr_pieces : 1; }
	frame_range piece(std::size_t i) const noexcept
	{
		return pieces ? pieces[i] : frame_range{pfn, std::uint64_t(nr_chunks) * pages_per_chunk};
	}

	/*
	 * Calls f(pfn, off, len) for each piece that [off, off + n) of the alias
	 * covers, pfn being the piece's first frame and off the offset inside it;
	 * stops at the first non-zero return and returns it (0 when all succeed).
	 */
	template <class F>
	int for_each_span(std::size_t off, std::size_t n, F &&f) const noexcept
	{
		for (std::size_t i = 0; i < piece_count() && n; i++) {
			const frame_range p = piece(i);
			const std::size_t pb = std::size_t(p.bytes());
			if (off >= pb) {
				off -= pb;
				continue;
			}
			const std::size_t len = n < pb - off ? n : pb - off;
			if (int rc = f(p.pfn, off, len); rc != 0)
				return rc;
			n -= len;
			off = 0;
		}
		return 0;
	}
};

}  // namespace ua
