// SPDX-License-Identifier: MIT
/*
 * arena/chunk.h - per-chunk metadata of the arena.
 *
 * A chunk is 2 MiB, 2 MiB aligned, divided into units of the arena's granule
 * (64 B by default as bpf_prog_pack's BPF_PROG_CHUNK_SIZE; 4 KiB for
 * page-granular users). Two bitmaps describe it:
 *
 *   used    one bit per unit, set while the unit belongs to a live allocation;
 *   starts  one bit per unit, set at the first unit of each live allocation.
 *
 * Together they give an allocation's extent without storing its size: it runs
 * from its start bit to the next start bit or the next clear `used` bit,
 * whichever comes first. So free(ptr) needs no size and rejects any pointer
 * that is not the start of a live allocation. Free runs of `used` are exactly
 * the chunk's free extents, each of which has one node in the arena's tree.
 *
 * The metadata lives in ordinary memory owned by the arena, never inside the
 * chunk (which may be unmapped or executable).
 */
#pragma once

#include <cstddef>
#include <cstdint>

#include <boost/intrusive/list_hook.hpp>

#include "../ds/bitmap.h"

namespace ua {

struct arena_chunk {
	boost::intrusive::list_member_hook<> link; /* the arena's list of chunks */
	std::uintptr_t base = 0;
	bitmap used;
	bitmap starts;
	std::size_t live_bytes = 0;
	std::size_t live_count = 0;

	/* Allocates both bitmaps; false on allocation failure. */
	bool init(std::uintptr_t chunk_base, std::size_t units) noexcept
	{
		base = chunk_base;
		return used.init(units) && starts.init(units);
	}

	std::size_t memory_bytes() const noexcept { return sizeof(*this) + used.memory_bytes() + starts.memory_bytes(); }

	/* One past the last unit of the live allocation that starts at unit `start`. */
	std::size_t allocation_end(std::size_t start) const noexcept
	{
		std::size_t n = used.size();
		std::size_t s = starts.find_next_set(start + 1), z = used.find_next_zero(start + 1);
		std::size_t e = s < z ? s : z;
		return e > n ? n : e;
	}
};

}  // namespace ua
