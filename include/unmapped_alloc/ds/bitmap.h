// SPDX-License-Identifier: MIT
/*
 * ds/bitmap.h - a fixed-size bitmap with a one-level summary for fast searches.
 *
 * The arena keeps two of these per chunk (occupied units and allocation
 * starts), 32768 bits each at the default 64-byte granule. Finding the end of
 * a free run or the start of the run before a freed range is the hot
 * operation of free(), and a plain scan would walk up to 512 words for a
 * large free extent. So each bitmap also keeps two summary bitmaps with one
 * bit per word: `any_` (the word has a set bit) and `full_` (all bits set).
 * find_next_set/find_prev_set then skip empty words through `any_`, and
 * find_next_zero/find_prev_zero skip full words through `full_`: at most a
 * few summary words per search (8 for 32768 bits).
 *
 * Sizes are fixed at construction; the storage is ordinary heap memory owned
 * by the bitmap (never managed memory). Writers are serialised by the owner's
 * lock. Every word (and summary word) is read and written through
 * std::atomic_ref with relaxed order - a plain mov on x86 - so that a reader
 * may search the bitmap without the lock while a writer changes it, as the
 * kernel's seqcount readers do: such a reader may see a torn mix of old and
 * new words and must validate its answer against a sequence counter (see
 * arena::lookup_lockless). The searches stay inside the storage whatever
 * they read, and a torn result is only a wrong index.
 *
 * attach(), the update and search steps and the public calls the arena makes
 * on its views (set/clear of a bit or a range, find_next_set/find_prev_set)
 * are always inlined: the arena makes a view of a chunk's bitmaps per
 * operation (arena/chunk.h), and inlined, the view's fields stay in registers
 * and its summary mode is a constant that removes the branches of the modes
 * it does not have. While set_range and clear_range were calls, the view went
 * through memory and every mode was tested: inlining them cut the arena's
 * instructions per alloc/free pair from 1,202 to 1,099 (callgrind,
 * docs/design.md).
 */
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>

#include "../check.h"

namespace ua {

class bitmap {
public:
	static constexpr std::size_t npos = ~std::size_t{0};

	bitmap() = default;
	explicit bitmap(std::size_t nbits) { UA_CHECK(init(nbits), "bitmap allocation failed"); }

	/* Allocates storage for nbits cleared bits; false on allocation failure (nothing changed). */
	bool init(std::size_t nbits) noexcept
	{
		std::size_t nw = words_for(nbits), ns = words_for(nw);
		std::unique_ptr<std::uint64_t[]> w(new (std::nothrow) std::uint64_t[nw + 2 * ns]());
		if (!w)
			return false;
		own_ = std::move(w);
		attach(nbits, own_.get(), 0, own_.get() + nw);
		return true;
	}

	/*
	 * Storage the caller owns, for bitmaps that share cache lines: word w is
	 * words[w << stride_shift] (stride_shift 1 interleaves two bitmaps word
	 * by word, so one line holds both for the same units) and the two
	 * summaries take summary_words(nbits) words at sums. All of it must be
	 * zero and outlive the bitmap.
	 *
	 * sums == nullptr: no summaries. Updates then never touch a second
	 * cache line or branch on a word becoming empty or full, and searches
	 * walk the words one by one: for a bitmap whose searches are short by
	 * construction (the arena's allocation starts: a search never passes
	 * the allocation it starts in). full_summary == false: only `any`
	 * (any_summary_words(nbits) words at sums), for a bitmap whose searches
	 * for set bits may be long but whose searches for clear bits are short
	 * (the arena's used units: see arena/chunk.h).
	 */
	[[gnu::always_inline]] void attach(std::size_t nbits, std::uint64_t *words, unsigned stride_shift, std::uint64_t *sums,
		    bool full_summary = true) noexcept
	{
		words_ = words;
		sums_ = sums;
		full_ = sums && full_summary;
		shift_ = stride_shift;
		nbits_ = nbits;
		nwords_ = words_for(nbits);
		nsum_ = words_for(nwords_);
		last_mask_ = nbits % 64 ? (std::uint64_t{1} << (nbits % 64)) - 1 : ~std::uint64_t{0};
	}
	static constexpr std::size_t words_for(std::size_t bits) noexcept { return (bits + 63) / 64; }
	static constexpr std::size_t summary_words(std::size_t bits) noexcept { return 2 * words_for(words_for(bits)); }
	static constexpr std::size_t any_summary_words(std::size_t bits) noexcept { return words_for(words_for(bits)); }

	std::size_t size() const noexcept { return nbits_; }
	std::size_t memory_bytes() const noexcept
	{
		return (nwords_ + (sums_ ? nsum_ : 0) + (full_ ? nsum_ : 0)) * sizeof(std::uint64_t);
	}

	bool test(std::size_t i) const noexcept
	{
		UA_DEBUG_ASSERT(i < nbits_);
		return (ld(at(i >> 6)) >> (i & 63)) & 1;
	}

	[[gnu::always_inline]] void set_range(std::size_t start, std::size_t len) noexcept { update_range<true>(start, len); }
	[[gnu::always_inline]] void clear_range(std::size_t start, std::size_t len) noexcept { update_range<false>(start, len); }
	[[gnu::always_inline]] void set(std::size_t i) noexcept
	{
		UA_DEBUG_ASSERT(i < nbits_);
		update_word<true>(i >> 6, std::uint64_t{1} << (i & 63));
	}
	[[gnu::always_inline]] void clear(std::size_t i) noexcept
	{
		UA_DEBUG_ASSERT(i < nbits_);
		update_word<false>(i >> 6, std::uint64_t{1} << (i & 63));
	}

	/* A bitmap word of storage shared with lockless readers, read as the bitmap reads its own. */
	static std::uint64_t load(const std::uint64_t &w) noexcept { return ld(w); }

	/* Word w (bits 64w .. 64w + 63) as stored; bits past the end are 0. */
	std::uint64_t word(std::size_t w) const noexcept
	{
		UA_DEBUG_ASSERT(w < nwords_);
		return ld(at(w));
	}

	/* First set bit at index >= from, or npos. */
	[[gnu::always_inline]] std::size_t find_next_set(std::size_t from) const noexcept { return find_next(from, false); }
	/* First set bit in [from, limit), or npos: without summaries, reads only the words of that range. */
	std::size_t find_next_set(std::size_t from, std::size_t limit) const noexcept
	{
		if (sums_) {
			std::size_t r = find_next(from, false);
			return r < limit ? r : npos;
		}
		limit = limit < nbits_ ? limit : nbits_;
		for (std::size_t i = from; i < limit; i = (i | 63) + 1) {
			std::uint64_t v = ld(at(i >> 6)) & (~std::uint64_t{0} << (i & 63));
			if (v) {
				std::size_t r = (i & ~std::size_t{63}) + std::size_t(std::countr_zero(v));
				return r < limit ? r : npos;
			}
		}
		return npos;
	}
	/* First clear bit at index >= from, or npos. */
	std::size_t find_next_zero(std::size_t from) const noexcept { return find_next(from, true); }
	/* Last set bit at index <= from, or npos. */
	[[gnu::always_inline]] std::size_t find_prev_set(std::size_t from) const noexcept { return find_prev(from, false); }
	/* Last clear bit at index <= from, or npos. */
	std::size_t find_prev_zero(std::size_t from) const noexcept { return find_prev(from, true); }

	/* True when no bit of [start, start + len) is set. */
	bool range_clear(std::size_t start, std::size_t len) const noexcept
	{
		return find_next_set(start, start + len) == npos;
	}

	std::size_t count() const noexcept
	{
		std::size_t c = 0;
		for (std::size_t w = 0; w < nwords_; w++)
			c += std::size_t(std::popcount(ld(at(w))));
		return c;
	}

	/* Expensive: the summaries agree with the words. */
	bool summaries_consistent() const noexcept
	{
		if (!sums_)
			return true;
		for (std::size_t w = 0; w < nwords_; w++) {
			std::uint64_t v = ld(at(w));
			bool any = v != 0, full = v == word_mask(w);
			if (sum_bit(any_base(), w) != any || (full_ && sum_bit(full_base(), w) != full))
				return false;
		}
		return true;
	}

private:
	std::uint64_t &at(std::size_t w) const noexcept { return words_[w << shift_]; }
	std::uint64_t *any_base() const noexcept { return sums_; }
	std::uint64_t *full_base() const noexcept { return sums_ + nsum_; }
	static bool sum_bit(const std::uint64_t *s, std::size_t w) noexcept { return (ld(s[w >> 6]) >> (w & 63)) & 1; }

	/* Relaxed atomic word access: plain loads and stores on x86, race-free for lockless readers. */
	static std::uint64_t ld(const std::uint64_t &w) noexcept
	{
		return std::atomic_ref<std::uint64_t>(const_cast<std::uint64_t &>(w)).load(std::memory_order_relaxed);
	}
	static void st(std::uint64_t &w, std::uint64_t v) noexcept
	{
		std::atomic_ref<std::uint64_t>(w).store(v, std::memory_order_relaxed);
	}

	/* Bits of word w that lie inside the bitmap (the last word may be partial). */
	std::uint64_t word_mask(std::size_t w) const noexcept
	{
		return w + 1 == nwords_ ? last_mask_ : ~std::uint64_t{0};
	}

	/*
	 * Sets (V) or clears the bits m of word w and keeps the summaries in
	 * step: setting can only make a word non-empty or full, clearing only
	 * empty or not full, so each case needs two tests and no table.
	 */
	template <bool V>
	[[gnu::always_inline]] void update_word(std::size_t w, std::uint64_t m) noexcept
	{
		/*
		 * Members into locals first: the atomic stores below would make the
		 * compiler reload them from *this after each one.
		 */
		std::uint64_t *word = &words_[w << shift_], *sums = sums_;
		std::uint64_t full_mask = word_mask(w), bit = std::uint64_t{1} << (w & 63);
		std::size_t nsum = nsum_;
		bool with_full = full_;
		std::uint64_t old = ld(*word), now = V ? (old | m) : (old & ~m);
		st(*word, now);
		if (!sums)
			return;
		std::uint64_t &any = sums[w >> 6];
		if constexpr (V) {
			if (!old)
				st(any, ld(any) | bit);
		} else {
			if (old && !now)
				st(any, ld(any) & ~bit);
		}
		if (!with_full)
			return;
		std::uint64_t &full = sums[nsum + (w >> 6)];
		if constexpr (V) {
			if (now == full_mask && old != full_mask)
				st(full, ld(full) | bit);
		} else {
			if (old == full_mask && now != full_mask)
				st(full, ld(full) & ~bit);
		}
	}

	template <bool V>
	[[gnu::always_inline]] void update_range(std::size_t start, std::size_t len) noexcept
	{
		UA_DEBUG_ASSERT(start + len <= nbits_);
		if (!len)
			return;
		std::size_t w = start >> 6, last = (start + len - 1) >> 6;
		std::uint64_t first_mask = ~std::uint64_t{0} << (start & 63);
		std::uint64_t last_mask = ~std::uint64_t{0} >> (63 - ((start + len - 1) & 63));
		if (w == last) {
			update_word<V>(w, first_mask & last_mask);
			return;
		}
		update_word<V>(w, first_mask);
		if (last > w + 1) {
			/* Whole words: store them, then flip their summary bits as a range (no per-word test). */
			std::uint64_t *words = words_;
			unsigned sh = shift_;
			for (std::size_t i = w + 1; i < last; i++)
				st(words[i << sh], V ? ~std::uint64_t{0} : 0);
			if (sums_)
				update_summary_range(any_base(), w + 1, last, V);
			if (full_)
				update_summary_range(full_base(), w + 1, last, V);
		}
		update_word<V>(last, last_mask);
	}

	/* Sets or clears summary bits [from, to) (whole words of the bitmap, none of them the partial last). */
	static void update_summary_range(std::uint64_t *sum, std::size_t from, std::size_t to, bool value) noexcept
	{
		while (from < to) {
			std::size_t s = from >> 6, hi = (s + 1) * 64 < to ? (s + 1) * 64 : to;
			std::uint64_t m = (~std::uint64_t{0} << (from & 63)) & (~std::uint64_t{0} >> (63 - ((hi - 1) & 63)));
			std::uint64_t v = ld(sum[s]);
			st(sum[s], value ? (v | m) : (v & ~m));
			from = hi;
		}
	}

	/* The word as seen by a search: inverted (and masked) when looking for zeros. */
	std::uint64_t view(std::size_t w, bool zeros) const noexcept
	{
		std::uint64_t v = ld(at(w));
		return zeros ? (~v & word_mask(w)) : v;
	}

	[[gnu::always_inline]] std::size_t find_next(std::size_t from, bool zeros) const noexcept
	{
		if (from >= nbits_)
			return npos;
		std::size_t w = from >> 6;
		std::uint64_t cur = view(w, zeros) & (~std::uint64_t{0} << (from & 63));
		if (cur)
			return w * 64 + std::size_t(std::countr_zero(cur));
		if (zeros ? !full_ : !sums_) {
			for (std::size_t nw = w + 1; nw < nwords_; nw++)
				if (std::uint64_t v = view(nw, zeros))
					return nw * 64 + std::size_t(std::countr_zero(v));
			return npos;
		}
		/* Skip through the summary: words with a set bit (any_) or with a clear bit (~full_). */
		const std::uint64_t *sum = zeros ? full_base() : any_base();
		std::size_t nw = w + 1;
		while (nw < nwords_) {
			std::size_t s = nw >> 6;
			std::uint64_t sv = zeros ? ~ld(sum[s]) : ld(sum[s]);
			sv &= ~std::uint64_t{0} << (nw & 63);
			if (sv) {
				std::size_t hit = s * 64 + std::size_t(std::countr_zero(sv));
				if (hit >= nwords_)
					return npos;
				return hit * 64 + std::size_t(std::countr_zero(view(hit, zeros)));
			}
			nw = (s + 1) * 64;
		}
		return npos;
	}

	[[gnu::always_inline]] std::size_t find_prev(std::size_t from, bool zeros) const noexcept
	{
		if (nbits_ == 0)
			return npos;
		if (from >= nbits_)
			from = nbits_ - 1;
		std::size_t w = from >> 6;
		std::size_t sh = 63 - (from & 63);
		std::uint64_t cur = view(w, zeros) & (~std::uint64_t{0} >> sh);
		if (cur)
			return w * 64 + 63 - std::size_t(std::countl_zero(cur));
		if (zeros ? !full_ : !sums_) {
			while (w-- > 0)
				if (std::uint64_t v = view(w, zeros))
					return w * 64 + 63 - std::size_t(std::countl_zero(v));
			return npos;
		}
		const std::uint64_t *sum = zeros ? full_base() : any_base();
		while (w > 0) {
			std::size_t pw = w - 1, s = pw >> 6;
			std::uint64_t sv = zeros ? ~ld(sum[s]) : ld(sum[s]);
			sv &= ~std::uint64_t{0} >> (63 - (pw & 63));
			if (sv) {
				std::size_t hit = s * 64 + 63 - std::size_t(std::countl_zero(sv));
				return hit * 64 + 63 - std::size_t(std::countl_zero(view(hit, zeros)));
			}
			w = s * 64;
		}
		return npos;
	}

	std::unique_ptr<std::uint64_t[]> own_; /* storage from init(); attach() leaves it empty */
	std::uint64_t *words_ = nullptr, *sums_ = nullptr;
	unsigned shift_ = 0;
	bool full_ = false; /* the `full` summary exists (after `any` at sums_) */
	std::size_t nbits_ = 0, nwords_ = 0, nsum_ = 0;
	std::uint64_t last_mask_ = ~std::uint64_t{0}; /* valid bits of the last word */
};

}  // namespace ua
