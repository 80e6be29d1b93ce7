// SPDX-License-Identifier: MIT
/*
 * ds/chunk_table.h - O(1) address -> chunk lookup: a three-level radix table.
 *
 * Chunks are 2 MiB aligned, so an address's chunk index is addr >> 21. Over
 * the 48-bit lower canonical half that is 27 bits, split 9/9/9 into a root
 * array inside the table and lazily allocated 4 KiB mid and leaf arrays, as
 * the kernel's page tables and snmalloc's pagemap do. A lookup is three
 * dependent loads, whatever the number of chunks.
 *
 * Entries are std::atomic pointers so lookups may run without the owner's
 * lock (under RCU: see cache/ for the rules). Mid and leaf arrays are never
 * freed before the table itself, so a reader racing with erase() sees either
 * the old value or nullptr, never freed table memory. Whoever frees the chunk
 * object a reader might have loaded must wait for a grace period first.
 *
 * Writers (insert/erase) are serialised by the owner's lock.
 */
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>

#include "../config.h"
#include "../error.h"

namespace ua {

template <class T>
class chunk_table {
	static constexpr unsigned bits = 9;
	static constexpr std::size_t fanout = std::size_t{1} << bits;
	static constexpr unsigned addr_bits = 48;

	struct leaf {
		std::array<std::atomic<T *>, fanout> slot{};
	};
	struct mid {
		std::array<std::atomic<leaf *>, fanout> slot{};
	};

public:
	/* Addresses this table can hold: [0, limit). */
	static constexpr std::uintptr_t limit = std::uintptr_t{1} << addr_bits;

	chunk_table() = default;
	chunk_table(const chunk_table &) = delete;
	chunk_table &operator=(const chunk_table &) = delete;
	~chunk_table()
	{
		for (auto &m : root_) {
			mid *mp = m.load(std::memory_order_relaxed);
			if (!mp)
				continue;
			for (auto &l : mp->slot)
				delete l.load(std::memory_order_relaxed);
			delete mp;
		}
	}

	/* Records value for the chunk at base. Errors: bad_chunk (misaligned, out of range, taken), no_memory. */
	error insert(std::uintptr_t base, T *value) noexcept
	{
		if (base % chunk_size || base >= limit || !value)
			return error::bad_chunk;
		std::size_t i0, i1, i2;
		split(base, i0, i1, i2);
		mid *m = root_[i0].load(std::memory_order_acquire);
		if (!m) {
			m = new (std::nothrow) mid();
			if (!m)
				return error::no_memory;
			root_[i0].store(m, std::memory_order_release);
			bytes_ += sizeof(mid);
		}
		leaf *l = m->slot[i1].load(std::memory_order_acquire);
		if (!l) {
			l = new (std::nothrow) leaf();
			if (!l)
				return error::no_memory; /* the empty mid stays: harmless, reused later */
			m->slot[i1].store(l, std::memory_order_release);
			bytes_ += sizeof(leaf);
		}
		if (l->slot[i2].load(std::memory_order_relaxed))
			return error::bad_chunk;
		l->slot[i2].store(value, std::memory_order_release);
		return error::ok;
	}

	/* Forgets the chunk at base; returns what was stored, or nullptr. */
	T *erase(std::uintptr_t base) noexcept
	{
		if (base % chunk_size || base >= limit)
			return nullptr;
		std::size_t i0, i1, i2;
		split(base, i0, i1, i2);
		mid *m = root_[i0].load(std::memory_order_acquire);
		leaf *l = m ? m->slot[i1].load(std::memory_order_acquire) : nullptr;
		if (!l)
			return nullptr;
		return l->slot[i2].exchange(nullptr, std::memory_order_acq_rel);
	}

	/* The chunk containing addr, or nullptr. Lock-free; safe against concurrent insert/erase. */
	T *lookup(std::uintptr_t addr) const noexcept
	{
		if (addr >= limit)
			return nullptr;
		std::size_t i0, i1, i2;
		split(addr, i0, i1, i2);
		mid *m = root_[i0].load(std::memory_order_acquire);
		if (!m)
			return nullptr;
		leaf *l = m->slot[i1].load(std::memory_order_acquire);
		if (!l)
			return nullptr;
		return l->slot[i2].load(std::memory_order_acquire);
	}

	std::size_t memory_bytes() const noexcept { return sizeof(*this) + bytes_; }

private:
	static void split(std::uintptr_t addr, std::size_t &i0, std::size_t &i1, std::size_t &i2) noexcept
	{
		std::uintptr_t idx = addr >> chunk_shift;
		i2 = idx & (fanout - 1);
		i1 = (idx >> bits) & (fanout - 1);
		i0 = (idx >> (2 * bits)) & (fanout - 1);
	}

	std::array<std::atomic<mid *>, fanout> root_{};
	std::size_t bytes_ = 0;
};

}  // namespace ua
