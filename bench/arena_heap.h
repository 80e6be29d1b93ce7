// SPDX-License-Identifier: MIT
/*
 * arena_heap.h - the bare arena with its owner's loop, over plain chunks, for
 * the benchmarks that measure the arena alone (arena_bench, arena_profile).
 *
 * As the cache does it, without the mapping layer: on no_space take a chunk
 * from the plain-memory source and retry; keep the first chunk that becomes
 * empty as a spare, give other empty chunks back. 64-byte alignment, as
 * bpf_prog_pack gives. The heap shape of bench/rounds.h.
 */
#pragma once

#include <cstddef>
#include <cstdint>

#include <unmapped_alloc/arena.h>

#include "plain_chunks.h"

namespace ua::bench {

struct arena_heap {
	static constexpr std::size_t align = 64;
	ua::arena a;
	plain_chunks &src;
	std::uintptr_t spare = 0;

	explicit arena_heap(plain_chunks &s) : src(s) {}
	arena_heap(const arena_heap &) = delete;
	arena_heap &operator=(const arena_heap &) = delete;
	~arena_heap()
	{
		a.for_each_chunk([&](std::uintptr_t b, std::size_t) { src.put(reinterpret_cast<void *>(b), ua::chunk_size); });
	}
	std::uintptr_t alloc(std::size_t size)
	{
		auto r = a.alloc(size, align);
		if (r.err == ua::error::no_space) {
			void *c = src.get(ua::chunk_size);
			if (!c || a.add_chunk(reinterpret_cast<std::uintptr_t>(c)) != ua::error::ok)
				return 0;
			r = a.alloc(size, align);
		}
		return r.ok() ? r.value : 0;
	}
	void free(std::uintptr_t p)
	{
		auto f = a.free(p);
		if (f.ok() && f.value.empty_chunk) {
			if (!spare) {
				spare = f.value.empty_chunk;
				return;
			}
			if (f.value.empty_chunk != spare && a.remove_chunk(f.value.empty_chunk) == ua::error::ok)
				src.put(reinterpret_cast<void *>(f.value.empty_chunk), ua::chunk_size);
		}
	}
};

}  // namespace ua::bench
