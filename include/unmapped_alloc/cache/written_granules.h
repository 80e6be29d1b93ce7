// SPDX-License-Identifier: MIT
/*
 * cache/written_granules.h - which granules of a text or ro run were written
 * since they last held the cache's fill byte.
 *
 * A text run is trap-filled when it is taken (chunk_source::acquire) and
 * every freed range is filled again before it can be reused. Most of a freed
 * range usually still holds trap bytes: nothing wrote it (a program shorter
 * than its allocation, or one freed before it was written). One bit per
 * granule records whether anything but the fill byte may be there; a free
 * fills only the granules whose bit is set and clears them. The invariant,
 * kept by every path that changes a run's contents (chunk_source's write()
 * and fill()): a granule whose bit is clear holds the fill byte. No address
 * of a text run is writable, so nothing else can change its contents; a
 * secret's user writes it directly, so secret runs are not tracked and are
 * filled whole.
 *
 * The bits live outside the managed memory (new[]), one word per 64
 * granules: 512 B per 2 MiB chunk at the 64-byte granule. A run's bits are
 * read and changed under the lock that serialises its contents: the shard
 * lock of a chunk in an arena, the cache's chunk lock for a large run.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>

namespace ua {

class written_granules {
public:
	/* Bits for bytes of memory in granules of granule bytes (a power of two); false when out of memory. */
	bool init(std::size_t bytes, std::size_t granule) noexcept
	{
		shift_ = unsigned(__builtin_ctzll(granule));
		words_ = ((bytes >> shift_) + 63) / 64;
		bits_ = new (std::nothrow) std::uint64_t[words_]();
		return bits_ != nullptr;
	}
	void destroy() noexcept
	{
		delete[] bits_;
		bits_ = nullptr;
		words_ = 0;
	}
	bool tracking() const noexcept { return bits_ != nullptr; }
	std::size_t memory_bytes() const noexcept { return words_ * sizeof(std::uint64_t); }

	/* Every granule [off, off + n) touches may now hold other bytes. */
	void mark(std::size_t off, std::size_t n) noexcept
	{
		if (n)
			set_bits(off >> shift_, ((off + n - 1) >> shift_) + 1);
	}
	bool written(std::size_t off) const noexcept
	{
		std::size_t g = off >> shift_;
		return bits_[g / 64] >> (g % 64) & 1;
	}

	/*
	 * Calls fill(o, len) for each maximal run of written granules in
	 * [off, off + n), clipped to that range, in address order; a granule
	 * wholly inside the range is cleared once its run's fill returned true.
	 * Stops at the first fill that returns false and returns false: the
	 * granules of that run and after stay marked.
	 */
	template <class Fill>
	bool fill_written(std::size_t off, std::size_t n, Fill &&fill) noexcept
	{
		if (!n)
			return true;
		std::size_t end = off + n, g = off >> shift_, gend = (end + (std::size_t{1} << shift_) - 1) >> shift_;
		/* Granules wholly inside [off, end): only those are cleared. */
		std::size_t inside_lo = (off + (std::size_t{1} << shift_) - 1) >> shift_, inside_hi = end >> shift_;
		while ((g = next(g, gend, true)) < gend) {
			std::size_t h = next(g + 1, gend, false);
			std::size_t lo = g << shift_, hi = h << shift_;
			lo = lo < off ? off : lo;
			hi = hi > end ? end : hi;
			if (!fill(lo, hi - lo))
				return false;
			std::size_t c0 = g < inside_lo ? inside_lo : g, c1 = h > inside_hi ? inside_hi : h;
			if (c0 < c1)
				clear_bits(c0, c1);
			g = h;
		}
		return true;
	}

private:
	/* Mask of bits [a, b) of one word, 0 <= a < b <= 64. */
	static std::uint64_t mask(std::size_t a, std::size_t b) noexcept
	{
		std::uint64_t hi = b == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << b) - 1;
		return hi & ~((std::uint64_t{1} << a) - 1);
	}
	template <class Op>
	void each_word(std::size_t a, std::size_t b, Op op) noexcept
	{
		while (a < b) {
			std::size_t w = a / 64, e = (w + 1) * 64 < b ? (w + 1) * 64 : b;
			op(bits_[w], mask(a % 64, e - w * 64));
			a = e;
		}
	}
	void set_bits(std::size_t a, std::size_t b) noexcept
	{
		each_word(a, b, [](std::uint64_t &w, std::uint64_t m) { w |= m; });
	}
	void clear_bits(std::size_t a, std::size_t b) noexcept
	{
		each_word(a, b, [](std::uint64_t &w, std::uint64_t m) { w &= ~m; });
	}
	/* The first granule in [g, end) whose bit is `set`, or end. */
	std::size_t next(std::size_t g, std::size_t end, bool set) const noexcept
	{
		while (g < end) {
			std::uint64_t w = (set ? bits_[g / 64] : ~bits_[g / 64]) >> (g % 64);
			if (w) {
				std::size_t x = g + std::size_t(__builtin_ctzll(w));
				return x < end ? x : end;
			}
			g = (g / 64 + 1) * 64;
		}
		return end;
	}

	std::uint64_t *bits_ = nullptr;
	std::size_t words_ = 0;
	unsigned shift_ = 0;
};

}  // namespace ua
