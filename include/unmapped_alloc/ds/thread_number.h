// SPDX-License-Identifier: MIT
/*
 * ds/thread_number.h - a small number per thread, for spreading threads over
 * per-thread slots (the caches' shards, the striped counters), as the kernel
 * spreads work by CPU number. Numbers are handed out in the order threads
 * first ask, so two threads that start together get neighbouring numbers and
 * land in different slots of any power-of-two-sized set.
 */
#pragma once

#include <atomic>

namespace ua::detail {

inline std::atomic<unsigned> next_thread_number{0};

inline unsigned thread_number() noexcept
{
	thread_local unsigned n = next_thread_number.fetch_add(1, std::memory_order_relaxed);
	return n;
}

}  // namespace ua::detail
