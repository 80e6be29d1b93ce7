// SPDX-License-Identifier: MIT
/*
 * ds/striped_counter.h - a statistics counter threads add to without sharing a
 * cache line (the kernel's percpu_counter, with threads for CPUs).
 *
 * Each thread adds to one of a few cache-line-sized slots picked by its thread
 * number; reading sums the slots. A single atomic that every free() bumps
 * would bounce one cache line between cores and serialise threads that share
 * nothing else. Reads are exact once the writers are quiet, and otherwise see
 * some interleaving of the additions, as percpu_counter_sum() does.
 *
 * The first nr_slots threads (thread numbers are never reused) each own a
 * slot and add with a plain load and store, no locked instruction: a
 * read-modify-write would also wait for every store before it, and the
 * simulated backend's fill counts its bytes on every free() of a text
 * cache, under the shard lock. Later threads share the last slot with
 * fetch_add. Readers load each slot atomically, so a reader never sees a
 * torn value.
 */
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "thread_number.h"

namespace ua {

class striped_counter {
public:
	static constexpr unsigned nr_slots = 16; /* slots of single threads; one more is shared */

	void add(std::uint64_t n) noexcept
	{
		unsigned t = detail::thread_number();
		if (t < nr_slots) { /* this thread's own slot: the only writer */
			std::atomic<std::uint64_t> &v = slots_[t].v;
			v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
			return;
		}
		slots_[nr_slots].v.fetch_add(n, std::memory_order_relaxed);
	}
	std::uint64_t sum() const noexcept
	{
		std::uint64_t s = 0;
		for (const auto &x : slots_)
			s += x.v.load(std::memory_order_relaxed);
		return s;
	}
	/* Sets the total (no writer may run concurrently). */
	void reset(std::uint64_t n = 0) noexcept
	{
		for (auto &x : slots_)
			x.v.store(0, std::memory_order_relaxed);
		slots_[0].v.store(n, std::memory_order_relaxed);
	}

private:
	struct alignas(64) slot {
		std::atomic<std::uint64_t> v{0};
	};
	slot slots_[nr_slots + 1];
};

}  // namespace ua
