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
