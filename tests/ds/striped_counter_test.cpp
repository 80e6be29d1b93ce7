#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include <unmapped_alloc/ds/striped_counter.h>

TEST_CASE("striped_counter: exact sum over more threads than slots, read while they add")
{
	/*
	 * More threads than owned slots: the first ones add with plain stores
	 * to their own slot, the others share one with fetch_add; no addition
	 * may be lost either way. A reader sums concurrently (a race TSan
	 * would report if a slot were not read atomically) and never sees the
	 * sum go down.
	 */
	ua::striped_counter c;
	c.add(5); /* this thread too */
	constexpr unsigned threads = ua::striped_counter::nr_slots + 8;
	constexpr std::uint64_t per_thread = 20000;
	std::atomic<bool> done{false};
	std::uint64_t last = 0;
	bool monotonic = true;
	std::thread reader([&] {
		while (!done.load()) {
			std::uint64_t s = c.sum();
			monotonic = monotonic && s >= last;
			last = s;
		}
	});
	std::vector<std::thread> adders;
	for (unsigned t = 0; t < threads; t++)
		adders.emplace_back([&, t] {
			for (std::uint64_t i = 0; i < per_thread; i++)
				c.add(t % 3 + 1);
		});
	for (auto &t : adders)
		t.join();
	done = true;
	reader.join();
	std::uint64_t want = 5;
	for (unsigned t = 0; t < threads; t++)
		want += per_thread * (t % 3 + 1);
	CHECK(c.sum() == want);
	CHECK(monotonic);
	c.reset(7);
	CHECK(c.sum() == 7);
}
