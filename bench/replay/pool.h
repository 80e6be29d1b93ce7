// SPDX-License-Identifier: MIT
/*
 * replay/pool.h - the runs of a plan spread over the machine's cores.
 *
 * Each run is independent (its own machine, its own allocator, its own
 * seed) and single-threaded, so its figures do not depend on how many run
 * beside it; ns_per_op and read_ns_ratio do (they are timings): a timing is
 * only compared with timings of the same plan. run_pool() starts `workers`
 * threads; each takes the next run index from a shared counter, runs it and
 * stores its result at that index, so the output is in plan order whatever
 * the order of completion. After each run, on_done(index, result) is called
 * under a lock (the progress line), with the count done so far.
 *
 * Runs on the running kernel (--backend kernel) share the machine's global
 * counters: bench/live/replay_hook.h serialises them itself.
 */
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "run_result.h"

namespace ua::replay {

/* The number of workers for n runs: the cores the process may use, at most n, at least 1. */
inline unsigned default_workers(std::size_t n)
{
	unsigned c = std::thread::hardware_concurrency();
	if (c == 0)
		c = 1;
	return unsigned(std::max<std::size_t>(1, std::min<std::size_t>(c, n)));
}

/*
 * Runs run(i) for every i < n on `workers` threads; results[i] is run(i)'s.
 * on_done(i, done) is called after each, one at a time.
 */
inline std::vector<run_result> run_pool(std::size_t n, unsigned workers,
					const std::function<run_result(std::size_t)> &run,
					const std::function<void(std::size_t, std::size_t, const run_result &)> &on_done)
{
	std::vector<run_result> results(n);
	std::atomic<std::size_t> next{0};
	std::mutex lock;
	std::size_t done = 0;
	auto worker = [&] {
		for (std::size_t i; (i = next.fetch_add(1)) < n;) {
			results[i] = run(i);
			std::lock_guard<std::mutex> g(lock);
			on_done(i, ++done, results[i]);
		}
	};
	workers = std::max(1u, workers);
	std::vector<std::thread> threads;
	for (unsigned w = 1; w < workers; w++)
		threads.emplace_back(worker);
	worker();
	for (auto &t : threads)
		t.join();
	return results;
}

/* "[12/180] 34 s, about 51 s left": the estimate assumes the remaining runs take the mean so far. */
inline std::string progress_prefix(std::size_t done, std::size_t total, double elapsed_s)
{
	char b[96];
	const double left = done ? elapsed_s * double(total - done) / double(done) : 0;
	std::snprintf(b, sizeof b, "[%zu/%zu] %.0f s, about %.0f s left", done, total, elapsed_s, left);
	return b;
}

}  // namespace ua::replay
