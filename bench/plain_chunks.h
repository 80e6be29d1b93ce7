// SPDX-License-Identifier: MIT
/*
 * plain_chunks.h - 2 MiB-aligned chunks of plain memory, for benchmarks that
 * compare allocators before any mapping backend is involved.
 *
 * One large MAP_NORESERVE reservation carved into chunks; freed chunks go to a
 * free list and are reused. Both the library's arena and the jemalloc baseline
 * take their chunks from the same source in a comparison, so neither gets
 * cheaper memory than the other. Not thread-safe (callers lock).
 */
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include <unmapped_alloc/config.h>

namespace ua::bench {

class plain_chunks {
public:
	explicit plain_chunks(std::size_t reserve_bytes)
	{
		std::size_t len = align_up(reserve_bytes, chunk_size) + chunk_size;
		void *p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p == MAP_FAILED)
			return;
		base_ = reinterpret_cast<std::uintptr_t>(p);
		len_ = len;
		next_ = align_up(base_, chunk_size);
		end_ = base_ + len;
	}
	~plain_chunks()
	{
		if (base_)
			munmap(reinterpret_cast<void *>(base_), len_);
	}
	plain_chunks(const plain_chunks &) = delete;
	plain_chunks &operator=(const plain_chunks &) = delete;

	bool ok() const noexcept { return base_ != 0; }

	void *get(std::size_t bytes) noexcept
	{
		if (bytes == chunk_size && !free_.empty()) {
			std::uintptr_t c = free_.back();
			free_.pop_back();
			in_use_ += bytes;
			return reinterpret_cast<void *>(c);
		}
		if (next_ + bytes > end_)
			return nullptr;
		std::uintptr_t c = next_;
		next_ += bytes;
		in_use_ += bytes;
		return reinterpret_cast<void *>(c);
	}
	void put(void *addr, std::size_t bytes) noexcept
	{
		auto a = reinterpret_cast<std::uintptr_t>(addr);
		for (std::size_t off = 0; off < bytes; off += chunk_size)
			free_.push_back(a + off);
		in_use_ -= bytes;
	}
	std::size_t in_use() const noexcept { return in_use_; }

private:
	std::uintptr_t base_ = 0, next_ = 0, end_ = 0;
	std::size_t len_ = 0, in_use_ = 0;
	std::vector<std::uintptr_t> free_;
};

}  // namespace ua::bench
