// Stress: two threads of mixed allocations, frees and deferred frees with
// lock-free lookups running all the while, verified at the end; and a long
// churn at a steady live set whose chunks and metadata must not grow past
// the workload's own peak. UA_STRESS_OPS sets the operations per thread
// (default 200000, also under TSan); scripts/test.sh runs the long version
// (10 M per thread, 100 M churn) as its own stage.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <random>
#include <thread>
#include <vector>

#include "cache/cache_fixture.h"
#include "workload/bpf_size_mix.h"

using namespace ua;

namespace {

std::uint64_t stress_ops(std::uint64_t dflt)
{
	const char *e = std::getenv("UA_STRESS_OPS");
	return e ? std::strtoull(e, nullptr, 10) : dflt;
}

double seconds_since(std::chrono::steady_clock::time_point t0)
{
	return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

TEST_CASE("stress: two threads, deferred frees and lock-free lookups; nothing lost")
{
	const std::uint64_t ops = stress_ops(200000);
	auto m = ua_test::sim_machine::make();
	unmapped_cache<sim_direct_map> c(*m, text_cache_config());
	std::atomic<bool> stop{false};
	std::atomic<std::uintptr_t> published[64] = {};
	std::atomic<std::uint64_t> lookups{0}, bad{0};
	std::atomic<std::uint64_t> failures{0};

	auto worker = [&](unsigned seed, unsigned slot0) {
		std::mt19937_64 rng(seed);
		std::vector<std::pair<void *, std::size_t>> mine;
		for (std::uint64_t i = 0; i < ops; i++) {
			if (mine.size() < 2000 && (mine.empty() || rng() % 2)) {
				std::size_t size = workload::bpf_size(rng);
				auto r = c.alloc(size, 64);
				if (!r.ok()) {
					failures++;
					continue;
				}
				mine.push_back({r.value, size});
				published[slot0 + rng() % 32].store(reinterpret_cast<std::uintptr_t>(r.value), std::memory_order_release);
			} else {
				std::size_t k = rng() % mine.size();
				/* The thread still owns it: it must be found, whole. */
				auto f = c.find_allocation(mine[k].first);
				if (!f.ok() || f.value.addr != reinterpret_cast<std::uintptr_t>(mine[k].first) || f.value.size < mine[k].second)
					failures++;
				error e = (rng() % 4 == 0) ? c.free_deferred(mine[k].first) : c.free(mine[k].first);
				if (e != error::ok)
					failures++;
				mine[k] = mine.back();
				mine.pop_back();
			}
		}
		for (auto &[p, n] : mine)
			if (c.free(p) != error::ok)
				failures++;
	};
	auto reader = [&] {
		std::mt19937_64 rng(99);
		while (!stop.load(std::memory_order_acquire)) {
			std::uintptr_t a = published[rng() % 64].load(std::memory_order_acquire);
			if (!a)
				continue;
			auto f = c.find_allocation(reinterpret_cast<void *>(a + rng() % 64));
			lookups.fetch_add(1, std::memory_order_relaxed);
			if (f.ok() && (f.value.addr > a + 63 || f.value.addr % 64 || f.value.size == 0))
				bad++;
			(void)c.contains(reinterpret_cast<void *>(a));
		}
	};
	auto t0 = std::chrono::steady_clock::now();
	std::thread r1(reader);
	std::thread t1(worker, 1, 0), t2(worker, 2, 32);
	t1.join();
	t2.join();
	double secs = seconds_since(t0);
	stop.store(true, std::memory_order_release);
	r1.join();
	rcu::barrier();
	MESSAGE("2 threads x " << ops << " operations in " << secs << " s: " << (2.0 * double(ops) / secs / 1e6)
			       << " M ops/s; " << lookups.load() << " lock-free lookups");
	CHECK(failures.load() == 0);
	CHECK(bad.load() == 0);
	CHECK(lookups.load() > 0);
	auto s = c.stats();
	CHECK(s.live_count == 0);
	CHECK(s.deferred_pending == 0);
	CHECK(s.chunks == s.spare_chunks); /* no empty chunk stranded in an arena */
	CHECK(c.check_consistency() == "");
	c.shrink();
	CHECK(c.stats().chunks == 0);
	CHECK(m->nr_free_pages() == m->nr_pages());
}

TEST_CASE("stress: long churn at a steady live set grows neither chunks nor metadata")
{
	const std::uint64_t ops = stress_ops(200000) * 10;
	auto m = ua_test::sim_machine::make();
	cache_config cfg = text_cache_config();
	cfg.nr_shards = 1;
	unmapped_cache<sim_direct_map> c(*m, cfg);
	std::mt19937_64 rng(11);
	std::vector<void *> live;
	constexpr std::size_t steady = 4000;
	std::size_t chunks_first = 0, meta_first = 0, chunks_second = 0, meta_second = 0;
	auto t0 = std::chrono::steady_clock::now();
	for (std::uint64_t i = 0; i < ops; i++) {
		if (live.size() < steady) {
			auto r = c.alloc(workload::bpf_size(rng), 64);
			REQUIRE(r.ok());
			live.push_back(r.value);
			continue;
		}
		std::size_t k = rng() % live.size();
		REQUIRE(c.free(live[k]) == error::ok);
		auto r = c.alloc(workload::bpf_size(rng), 64);
		REQUIRE(r.ok());
		live[k] = r.value;
		if (i % 4096 == 0) {
			auto s = c.stats();
			std::size_t &ch = i < ops / 2 ? chunks_first : chunks_second;
			std::size_t &me = i < ops / 2 ? meta_first : meta_second;
			ch = std::max(ch, s.chunks);
			me = std::max(me, s.metadata_bytes);
		}
	}
	double secs = seconds_since(t0);
	MESSAGE("churn: " << ops << " operations in " << secs << " s (" << (double(ops) / secs / 1e6) << " M ops/s); chunks "
			  << chunks_first << " then " << chunks_second << ", metadata " << meta_first << " then " << meta_second
			  << " bytes");
	/* The second half runs the same workload: no more than the first half's peak (one chunk of slack). */
	CHECK(chunks_second <= chunks_first + 1);
	CHECK(meta_second <= meta_first + meta_first / 10); /* node pools settle; a leak grows with the operations */
	CHECK(c.check_consistency() == "");
	for (void *p : live)
		REQUIRE(c.free(p) == error::ok);
	c.shrink();
	CHECK(c.stats().chunks == 0);
}
