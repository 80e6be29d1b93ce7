// SPDX-License-Identifier: MIT
/*
 * heaps.h - the allocators the speed benchmarks compare, behind the heap
 * shape of bench/rounds.h: `std::uintptr_t alloc(size)` (0 on failure) and
 * `void free(std::uintptr_t)`, every allocation 64-byte aligned as
 * bpf_prog_pack gives. Used by arena_bench, cache_bench and arena_profile.
 *
 *   arena_heap       the bare arena with its owner's loop over plain chunks,
 *                    as the cache does it without the mapping layer: on
 *                    no_space take a chunk and retry; keep the first chunk
 *                    that becomes empty as a spare, give others back;
 *   cache_heap<B>    an unmapped cache; any error is reported and ends the
 *                    program (a benchmark step must never fail);
 *   jemalloc_heap<J> a jemalloc arena (bench/peers/jemalloc_arena.h) over
 *                    any chunk source.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include <unmapped_alloc/unmapped_alloc.h>

#include "plain_chunks.h"

namespace ua::bench {

inline constexpr std::size_t heap_align = 64;

struct arena_heap {
	static constexpr std::size_t align = heap_align;
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

template <class B>
struct cache_heap {
	ua::unmapped_cache<B> &c;
	std::uintptr_t alloc(std::size_t n)
	{
		auto r = c.alloc(n, heap_align);
		if (!r.ok())
			die("alloc", r.err);
		return reinterpret_cast<std::uintptr_t>(r.value);
	}
	void free(std::uintptr_t p)
	{
		if (ua::error e = c.free(reinterpret_cast<void *>(p)); e != ua::error::ok)
			die("free", e);
	}
	[[noreturn]] void die(const char *what, ua::error e)
	{
		std::fprintf(stderr, "cache %s %s: %s\n", c.name(), what, ua::describe(e));
		std::exit(1);
	}
};

template <class J>
struct jemalloc_heap {
	J &j;
	std::uintptr_t alloc(std::size_t n) { return reinterpret_cast<std::uintptr_t>(j.alloc(n, heap_align)); }
	void free(std::uintptr_t p) { j.free(reinterpret_cast<void *>(p)); }
};

}  // namespace ua::bench
