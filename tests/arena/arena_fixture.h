// Shared helpers for the arena tests: a fake chunk source. The arena never
// touches the memory it manages, so test chunks can be bare aligned addresses.
#pragma once

#include <cstdint>
#include <vector>

#include <unmapped_alloc/arena.h>

namespace ua_test {

struct fake_chunks {
	std::uintptr_t next = std::uintptr_t{0x100} << 32;
	std::vector<std::uintptr_t> spare;

	std::uintptr_t get()
	{
		if (!spare.empty()) {
			auto b = spare.back();
			spare.pop_back();
			return b;
		}
		auto b = next;
		next += ua::chunk_size;
		return b;
	}
	void put(std::uintptr_t b) { spare.push_back(b); }
};

/* alloc with the owner's populate-and-retry loop. */
inline ua::result<std::uintptr_t> alloc_grow(ua::arena &a, fake_chunks &src, std::size_t size, std::size_t align = 1)
{
	auto r = a.alloc(size, align);
	if (r.err != ua::error::no_space)
		return r;
	if (a.add_chunk(src.get()) != ua::error::ok)
		return ua::result<std::uintptr_t>::failure(ua::error::no_memory);
	return a.alloc(size, align);
}

}  // namespace ua_test
