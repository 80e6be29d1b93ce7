#include <doctest/doctest.h>

#include <random>
#include <vector>

#include <unmapped_alloc/ds/bitmap.h>

using ua::bitmap;

TEST_CASE("bitmap: set, clear, test and count")
{
	bitmap b(1000);
	CHECK(b.size() == 1000);
	CHECK(b.count() == 0);
	b.set_range(10, 100);
	CHECK(b.count() == 100);
	CHECK(!b.test(9));
	CHECK(b.test(10));
	CHECK(b.test(109));
	CHECK(!b.test(110));
	b.clear_range(50, 10);
	CHECK(b.count() == 90);
	CHECK(!b.test(55));
	CHECK(b.summaries_consistent());
}

TEST_CASE("bitmap: searches on an empty and a full map")
{
	bitmap b(32768);
	CHECK(b.find_next_set(0) == bitmap::npos);
	CHECK(b.find_prev_set(32767) == bitmap::npos);
	CHECK(b.find_next_zero(0) == 0);
	CHECK(b.find_prev_zero(32767) == 32767);
	b.set_range(0, 32768);
	CHECK(b.find_next_zero(0) == bitmap::npos);
	CHECK(b.find_prev_zero(32767) == bitmap::npos);
	CHECK(b.find_next_set(123) == 123);
	CHECK(b.find_prev_set(32767) == 32767);
	CHECK(b.range_clear(0, 0));
}

TEST_CASE("bitmap: partial last word never reports bits past the end")
{
	bitmap b(70);
	b.set_range(0, 70);
	CHECK(b.find_next_zero(0) == bitmap::npos);
	b.clear(69);
	CHECK(b.find_next_zero(0) == 69);
	CHECK(b.find_prev_zero(200) == 69);
	CHECK(b.summaries_consistent());
}

TEST_CASE("bitmap: searches agree with a naive scan on random contents")
{
	std::mt19937_64 rng(42);
	for (std::size_t n : {1u, 63u, 64u, 65u, 512u, 4096u + 7u, 32768u}) {
		bitmap b(n);
		std::vector<bool> ref(n);
		for (int step = 0; step < 400; step++) {
			std::size_t s = rng() % n, len = 1 + rng() % std::min<std::size_t>(n - s, 300);
			bool v = rng() & 1;
			v ? b.set_range(s, len) : b.clear_range(s, len);
			for (std::size_t i = s; i < s + len; i++)
				ref[i] = v;
			std::size_t from = rng() % n;
			auto next = [&](bool want) {
				for (std::size_t i = from; i < n; i++)
					if (ref[i] == want)
						return i;
				return bitmap::npos;
			};
			auto prev = [&](bool want) {
				for (std::size_t i = from + 1; i-- > 0;)
					if (ref[i] == want)
						return i;
				return bitmap::npos;
			};
			REQUIRE(b.find_next_set(from) == next(true));
			REQUIRE(b.find_next_zero(from) == next(false));
			REQUIRE(b.find_prev_set(from) == prev(true));
			REQUIRE(b.find_prev_zero(from) == prev(false));
		}
		CHECK(b.summaries_consistent());
	}
}

TEST_CASE("bitmap: long ranges keep the summaries exact across summary words")
{
	std::mt19937_64 rng(43);
	for (std::size_t n : {4096u * 3u + 5u, 32768u}) {
		bitmap b(n);
		std::vector<bool> ref(n);
		for (int step = 0; step < 300; step++) {
			std::size_t s = rng() % n, len = 1 + rng() % (n - s);
			bool v = rng() & 1;
			v ? b.set_range(s, len) : b.clear_range(s, len);
			for (std::size_t i = s; i < s + len; i++)
				ref[i] = v;
			REQUIRE(b.summaries_consistent());
			std::size_t c = 0;
			for (bool x : ref)
				c += x;
			REQUIRE(b.count() == c);
			std::size_t from = rng() % n, want = bitmap::npos;
			for (std::size_t i = from; i < n; i++)
				if (!ref[i]) {
					want = i;
					break;
				}
			REQUIRE(b.find_next_zero(from) == want);
		}
	}
}

TEST_CASE("bitmap: with both, only `any` or no summaries (attached, interleaved), searches agree with a naive scan")
{
	std::mt19937_64 rng(44);
	for (std::size_t n : {1u, 64u, 65u, 512u, 4096u + 7u, 32768u}) {
		/* Three bitmaps interleaved word by word (stride 4 words), as a chunk's used and starts. */
		std::size_t nw = bitmap::words_for(n);
		std::vector<std::uint64_t> words(4 * nw + bitmap::summary_words(n) + bitmap::any_summary_words(n), 0);
		bitmap with, without, any_only;
		with.attach(n, words.data(), 2, words.data() + 4 * nw);
		without.attach(n, words.data() + 1, 2, nullptr);
		any_only.attach(n, words.data() + 2, 2, words.data() + 4 * nw + bitmap::summary_words(n), false);
		CHECK(without.memory_bytes() == nw * sizeof(std::uint64_t));
		CHECK(any_only.memory_bytes() == (nw + bitmap::any_summary_words(n)) * sizeof(std::uint64_t));
		std::vector<bool> ref(n);
		for (int step = 0; step < 300; step++) {
			std::size_t s = rng() % n, len = 1 + rng() % std::min<std::size_t>(n - s, 300);
			bool v = rng() & 1;
			for (bitmap *b : {&with, &without, &any_only})
				v ? b->set_range(s, len) : b->clear_range(s, len);
			if (rng() % 4 == 0) {
				std::size_t i = rng() % n;
				for (bitmap *b : {&with, &without, &any_only})
					v ? b->set(i) : b->clear(i);
				ref[i] = v;
			}
			for (std::size_t i = s; i < s + len; i++)
				ref[i] = v;
			std::size_t from = rng() % n, limit = from + rng() % (n - from + 1);
			std::size_t next_set = bitmap::npos, next_zero = bitmap::npos, prev_set = bitmap::npos, bounded = bitmap::npos;
			for (std::size_t i = from; i < n; i++) {
				if (ref[i] && next_set == bitmap::npos)
					next_set = i;
				if (!ref[i] && next_zero == bitmap::npos)
					next_zero = i;
			}
			for (std::size_t i = from + 1; i-- > 0;)
				if (ref[i]) {
					prev_set = i;
					break;
				}
			if (next_set < limit)
				bounded = next_set;
			for (bitmap *b : {&with, &without, &any_only}) {
				REQUIRE(b->find_next_set(from) == next_set);
				REQUIRE(b->find_next_zero(from) == next_zero);
				REQUIRE(b->find_prev_set(from) == prev_set);
				REQUIRE(b->find_next_set(from, limit) == bounded);
			}
		}
		CHECK(with.summaries_consistent());
		CHECK(without.summaries_consistent());
		CHECK(any_only.summaries_consistent());
		CHECK(with.count() == without.count());
		CHECK(with.count() == any_only.count());
	}
}
