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
 */
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "thread_number.h"

namespace ua {

class striped_counter {
public:
	static constexpr unsigned nr_slots = 16;

	void add(std::uint64_t n) noexcept
	{
		slots_[detail::thread_number() % nr_slots].v.fetch_add(n, std::memory_order_relaxed);
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
	slot slots_[nr_slots];
};

}  // namespace ua
