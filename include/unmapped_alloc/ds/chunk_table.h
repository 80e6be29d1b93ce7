// SPDX-License-Identifier: MIT
/*
 * ds/chunk_table.h - O(1) address -> chunk lookup: a three-level radix table.
 *
 * Chunks are 2 MiB aligned, so an address's chunk index is addr >> 21. Over
 * the 48-bit lower canonical half that is 27 bits, split 9/9/9 into a root
 * array inside the table and lazily allocated mid and leaf arrays (4 KiB
 * each; 8 KiB leaves in a tagged table), as the kernel's page tables and
 * snmalloc's pagemap do. A lookup is three dependent loads, whatever the
 * number of chunks.
 *
 * Entries are std::atomic pointers so lookups may run without the owner's
 * lock (under RCU: see cache/ for the rules). Mid and leaf arrays are never
 * freed before the table itself, so a reader racing with erase() sees either
 * the old value or nullptr, never freed table memory. Whoever frees the chunk
 * object a reader might have loaded must wait for a grace period first.
 *
 * Writers (insert/erase) are serialised by the owner's lock.
 *
 * Tags. A chunk_table<T, true> keeps one more word per chunk beside the
 * pointer, in the same 16-byte slot (so in the same cache line): an owner
 * that must know something about a chunk before it takes a lock (the cache:
 * which shard holds it, and that shard's record of it) reads it with the
 * pointer, without loading the object the pointer names. insert() publishes
 * a slot with tag 0 and erase() leaves tag 0. Between them the tag is the
 * owner's: set_tag() and the loads through slot() follow the owner's rules,
 * which may be a different lock from the one serialising insert and erase
 * (cache/unmapped_cache.h documents its own).
 */
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>

#include "../check.h"
#include "../config.h"
#include "../error.h"

namespace ua {

namespace detail {

template <class T, bool Tagged>
struct chunk_slot {
	std::atomic<T *> value{nullptr};
	void clear_tag() noexcept {}
};

template <class T>
struct alignas(16) chunk_slot<T, true> {
	std::atomic<T *> value{nullptr};
	std::atomic<std::uintptr_t> tag{0}; /* the owner's word; 0 while the slot is empty */
	void clear_tag() noexcept { tag.store(0, std::memory_order_relaxed); }
};

}  // namespace detail

template <class T, bool Tagged = false>
class chunk_table {
	static constexpr unsigned bits = 9;
	static constexpr std::size_t fanout = std::size_t{1} << bits;
	static constexpr unsigned addr_bits = 48;

public:
	using slot_type = detail::chunk_slot<T, Tagged>;

private:
	struct leaf {
		std::array<slot_type, fanout> slot{};
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
		slot_type &sl = l->slot[i2];
		if (sl.value.load(std::memory_order_relaxed))
			return error::bad_chunk;
		sl.clear_tag();
		sl.value.store(value, std::memory_order_release);
		return error::ok;
	}

	/* Forgets the chunk at base; returns what was stored, or nullptr. */
	T *erase(std::uintptr_t base) noexcept
	{
		if (base % chunk_size || base >= limit)
			return nullptr;
		slot_type *sl = const_cast<slot_type *>(slot(base));
		if (!sl)
			return nullptr;
		sl->clear_tag();
		return sl->value.exchange(nullptr, std::memory_order_acq_rel);
	}

	/*
	 * The slot of addr's chunk, or nullptr when no chunk near addr was ever
	 * inserted. The slot's memory lives as long as the table, so the pointer
	 * may be kept and its words loaded again later (under the owner's lock);
	 * its value is nullptr while no chunk is there. Lock-free.
	 */
	const slot_type *slot(std::uintptr_t addr) const noexcept
	{
		if (addr >= limit)
			return nullptr;
		std::size_t i0, i1, i2;
		split(addr, i0, i1, i2);
		mid *m = root_[i0].load(std::memory_order_acquire);
		if (!m)
			return nullptr;
		leaf *l = m->slot[i1].load(std::memory_order_acquire);
		return l ? &l->slot[i2] : nullptr;
	}

	/* Sets the tag of the chunk at base, which is in the table (the owner's rules: see Tags above). */
	void set_tag(std::uintptr_t base, std::uintptr_t tag, std::memory_order mo = std::memory_order_release) noexcept
		requires Tagged
	{
		slot_type *sl = const_cast<slot_type *>(slot(base));
		UA_CHECK(sl && sl->value.load(std::memory_order_relaxed), "chunk_table: tag for a chunk not in the table");
		sl->tag.store(tag, mo);
	}

	/* The chunk containing addr, or nullptr. Lock-free; safe against concurrent insert/erase. */
	T *lookup(std::uintptr_t addr) const noexcept
	{
		const slot_type *sl = slot(addr);
		return sl ? sl->value.load(std::memory_order_acquire) : nullptr;
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
