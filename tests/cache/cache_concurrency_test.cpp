// Many threads on one cache: allocations and frees from two threads, deferred
// frees, and lock-free lookups running all the while (run under TSan in CI).
#include <doctest/doctest.h>

#include <atomic>
#include <random>
#include <thread>
#include <vector>

#include "cache_fixture.h"
#include "workload/bpf_size_mix.h"

using namespace ua;

#define BACKENDS ua_test::sim_machine, ua_test::real_machine

TEST_CASE_TEMPLATE("cache concurrency: two allocating threads, deferred frees and lockless readers", M, BACKENDS)
{
	auto m = M::make();
	unmapped_cache<typename M::backend> c(*m, text_cache_config());
	std::atomic<bool> stop{false};
	std::atomic<std::uintptr_t> published[64] = {};
	std::atomic<long> lookups{0}, hits{0};

	auto worker = [&](unsigned seed, unsigned slot0) {
		std::mt19937_64 rng(seed);
		std::vector<void *> mine;
		for (int i = 0; i < 20000; i++) {
			if (mine.size() < 200 && (mine.empty() || rng() % 2)) {
				auto r = c.alloc(workload::bpf_size(rng), 64);
				REQUIRE(r.ok());
				mine.push_back(r.value);
				published[slot0 + rng() % 32].store(reinterpret_cast<std::uintptr_t>(r.value), std::memory_order_release);
			} else {
				std::size_t k = rng() % mine.size();
				error e = (rng() % 4 == 0) ? c.free_deferred(mine[k]) : c.free(mine[k]);
				REQUIRE(e == error::ok);
				mine[k] = mine.back();
				mine.pop_back();
			}
		}
		for (void *p : mine)
			REQUIRE(c.free(p) == error::ok);
	};
	auto reader = [&] {
		std::mt19937_64 rng(99);
		/* Until the workers stop, and at least 1000 lookups however the threads were scheduled. */
		while (!stop.load(std::memory_order_acquire) || lookups.load(std::memory_order_relaxed) < 1000) {
			std::uintptr_t a = published[rng() % 64].load(std::memory_order_acquire);
			if (!a)
				continue;
			auto f = c.find_allocation(reinterpret_cast<void *>(a + rng() % 64));
			lookups.fetch_add(1, std::memory_order_relaxed);
			if (f.ok()) {
				/* Whatever was found is a plausible allocation containing the address. */
				CHECK(f.value.addr <= a + 63);
				CHECK(f.value.addr % 64 == 0);
				CHECK(f.value.size > 0);
				hits.fetch_add(1, std::memory_order_relaxed);
			}
			(void)c.contains(reinterpret_cast<void *>(a));
		}
	};
	std::thread r1(reader);
	std::thread t1(worker, 1, 0), t2(worker, 2, 32);
	t1.join();
	t2.join();
	stop.store(true, std::memory_order_release);
	r1.join();
	rcu::barrier();
	CHECK(lookups.load() > 0);
	CHECK(c.stats().live_count == 0);
	CHECK(c.stats().deferred_pending == 0);
	CHECK(c.check_consistency() == "");
}
