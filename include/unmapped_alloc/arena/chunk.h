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
 * chunk (which may be unmapped or executable): one allocation per chunk, the
 * record's cache line followed by the bitmaps (create()). Both bitmaps share it,
 * interleaved word by word (used[w], starts[w], used[w + 1], ...), because
 * free() and alloc() read and write both for the same units: one cache line
 * then serves both (256 units of each). used's `any` summary follows
 * (ds/bitmap.h); nothing else. Searches that stay inside one allocation -
 * from a unit back to its allocation's start (starts), from a start to the
 * allocation's end (allocation_end) - read no more words than free() clears
 * anyway, so they walk words; only the free runs on both sides of a freed
 * range, which may span the chunk, are searched through `any`. Every other
 * summary (`full` of used, both of starts) would serve no search and cost a
 * second cache line behind an unpredictable branch on many updates.
 *
 * Free extents by start. free() must find the nodes of the free extents on
 * both sides of the range it releases; the bitmaps give their start units.
 * After the bitmaps comes one chain head per 256 units (head_shift): the
 * arena's free extents that start in those units, linked through
 * free_extent::chain_next in no order. Free extents are rare among units (on
 * the BPF mix at 100 K live allocations, ~2,600 extents over ~200 chunks of
 * 32,768 units), so a chain holds one extent or none nearly always, and one
 * line of heads covers 2,048 units: the neighbours of a freed range, and the
 * remainder of a carved extent, are usually in one line. 1 KiB per chunk at
 * the 64-byte granule (the bitmaps take 8 KiB; one head per 64 units made
 * it 4 KiB and pushed the metadata past the L2, docs/design.md). The arena owns the
 * chains (arena.h); they are written under its owner's lock and never read
 * by lockless readers.
 *
 * Lockless readers. `seq` is a sequence counter as the kernel's seqcount_t
 * (include/linux/seqlock.h): the writer (under the owner's lock) makes it odd
 * before it changes either bitmap and even again after; a reader that saw the
 * same even value before and after its search read a consistent state.
 * write_begin/write_end and read_begin/read_retry are that protocol.
 */
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>

#include <boost/intrusive/list_hook.hpp>

#include "../ds.h"

namespace ua {

struct free_extent;

struct alignas(64) arena_chunk {
	boost::intrusive::list_member_hook<> link; /* the arena's list of chunks */
	std::uintptr_t base = 0;
	std::uint32_t units = 0;      /* bits per bitmap */
	std::uint32_t id = 0;         /* dense number in its arena; its live units are the arena's fill_[id] */
	std::size_t live_count = 0;
	std::atomic<std::uint64_t> seq{0}; /* odd while the bitmaps change */

	/*
	 * One allocation holds the record (one cache line) and, right after it,
	 * both bitmaps and the summary: the bitmaps' address follows from the
	 * record's without a load, so free() fetches the record and the line of
	 * its bitmaps at once. The record used to span three lines, with two
	 * bitmap objects repeating the same geometry in every chunk; now the
	 * geometry is `units` and used()/starts() make views of it inline.
	 * callgrind, 100 K live (arena_profile, 48 KiB L1): 14.7 -> 12.4 L1 read
	 * misses per alloc/free pair, same instructions. nullptr when out of memory.
	 */
	static arena_chunk *create(std::uintptr_t chunk_base, std::size_t nbits) noexcept
	{
		void *p = ::operator new(sizeof(arena_chunk) + meta_words(nbits) * sizeof(std::uint64_t),
					 std::align_val_t{alignof(arena_chunk)}, std::nothrow);
		if (!p)
			return nullptr;
		arena_chunk *c = ::new (p) arena_chunk();
		c->base = chunk_base;
		c->units = std::uint32_t(nbits);
		std::fill_n(c->meta(), bitmap_words(nbits), std::uint64_t{0});
		std::uninitialized_fill_n(c->heads(), nr_heads(nbits), nullptr);
		return c;
	}
	static void destroy(arena_chunk *c) noexcept
	{
		if (!c)
			return;
		c->~arena_chunk();
		::operator delete(c, std::align_val_t{alignof(arena_chunk)});
	}
	struct deleter {
		void operator()(arena_chunk *c) const noexcept { destroy(c); }
	};

	/*
	 * Both bitmaps interleaved word by word (used[w], starts[w], used[w + 1],
	 * ...), then used's `any`. words_at(c, w) is the address of used[w] (and
	 * starts[w] after it) as a number, computed from c's address alone
	 * without reading the record: for a handle that may be stale
	 * (arena::prefetch_free). meta() stays pointer arithmetic: derived from
	 * an integer, the pointer cost the cache 3-5% (scripts/ab-compare.sh),
	 * presumably as the compiler's alias analysis loses track of it.
	 */
	static std::uintptr_t words_at(const arena_chunk *c, std::size_t w) noexcept
	{
		return reinterpret_cast<std::uintptr_t>(c) + sizeof(arena_chunk) + 2 * w * sizeof(std::uint64_t);
	}
	std::uint64_t *meta() const noexcept
	{
		return reinterpret_cast<std::uint64_t *>(const_cast<arena_chunk *>(this) + 1);
	}
	/* The bitmaps and the summary, rounded up to whole cache lines. */
	static std::size_t bitmap_words(std::size_t nbits) noexcept
	{
		return (2 * bitmap::words_for(nbits) + bitmap::any_summary_words(nbits) + 7) & ~std::size_t{7};
	}
	/* Then the chain heads: one per 2^head_shift units (see the top of this file). */
	static constexpr unsigned head_shift = 8;
	static std::size_t nr_heads(std::size_t nbits) noexcept
	{
		return (nbits + (std::size_t{1} << head_shift) - 1) >> head_shift;
	}
	static std::size_t meta_words(std::size_t nbits) noexcept
	{
		return bitmap_words(nbits) + nr_heads(nbits);
	}
	free_extent **heads() const noexcept { return reinterpret_cast<free_extent **>(meta() + bitmap_words(units)); }
	/*
	 * Views of the two bitmaps: no storage of their own, and always inlined
	 * (with the bitmap's update and search steps), so that the compiler keeps
	 * their fields in registers and folds the summary modes away.
	 */
	[[gnu::always_inline]] bitmap used() const noexcept
	{
		bitmap b;
		b.attach(units, meta(), 1, meta() + 2 * bitmap::words_for(units), false); /* `any` only: see above */
		return b;
	}
	[[gnu::always_inline]] bitmap starts() const noexcept
	{
		bitmap b;
		b.attach(units, meta() + 1, 1, nullptr); /* no summaries: see allocation_end */
		return b;
	}

	/* Writer (owner's lock held): the store of the odd value is ordered before the bitmap stores. */
	void write_begin() noexcept
	{
		seq.store(seq.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
		std::atomic_thread_fence(std::memory_order_release); /* smp_wmb() in write_seqcount_begin */
	}
	/* The bitmap stores are ordered before the even value. */
	void write_end() noexcept { seq.store(seq.load(std::memory_order_relaxed) + 1, std::memory_order_release); }

	/* Reader: an even sequence to validate against, waiting out a writer in progress. */
	std::uint64_t read_begin() const noexcept
	{
		for (;;) {
			std::uint64_t s = seq.load(std::memory_order_acquire);
			if (!(s & 1))
				return s;
#if defined(__x86_64__) || defined(__i386__)
			__builtin_ia32_pause();
#endif
		}
	}
	/* True when a writer ran since read_begin returned s: the reads must be redone. */
	bool read_retry(std::uint64_t s) const noexcept
	{
		std::atomic_thread_fence(std::memory_order_acquire); /* smp_rmb() in read_seqcount_retry */
		return seq.load(std::memory_order_relaxed) != s;
	}

	std::size_t memory_bytes() const noexcept { return sizeof(*this) + meta_words(units) * sizeof(std::uint64_t); }

	/*
	 * One past the last unit of the live allocation that starts at unit
	 * `start`: the first unit after it with a start bit or a clear used bit.
	 * A walk over the words of the allocation itself (one or two for most),
	 * each tested for both boundaries at once, so neither bitmap needs a
	 * summary here. Also a lockless reader's search: over torn words it
	 * stops at the end of the chunk at worst.
	 */
	std::size_t allocation_end(std::size_t start) const noexcept
	{
		std::size_t n = units, from = start + 1;
		if (from >= n)
			return n;
		std::size_t w = from >> 6, nw = bitmap::words_for(n);
		/*
		 * The interleaved words read directly (used[w] at 2w, starts[w] at
		 * 2w + 1): through the used()/starts() views the same walk measured
		 * 4-5% slower for the arena (scripts/ab-compare.sh), at the same
		 * instruction count.
		 */
		const std::uint64_t *m2 = meta();
		auto boundary = [m2](std::size_t i) {
			return bitmap::load(m2[2 * i + 1]) | ~bitmap::load(m2[2 * i]);
		};
		std::uint64_t m = boundary(w) & (~std::uint64_t{0} << (from & 63));
		while (!m) {
			if (++w == nw)
				return n;
			m = boundary(w);
		}
		std::size_t e = w * 64 + std::size_t(std::countr_zero(m));
		return e > n ? n : e;
	}
};

}  // namespace ua
