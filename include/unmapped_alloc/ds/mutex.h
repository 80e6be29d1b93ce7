// SPDX-License-Identifier: MIT
/*
 * ds/mutex.h - a sleeping lock whose uncontended path is one atomic
 * instruction each way, inlined.
 *
 * The cache takes its shard lock twice per alloc/free pair, and std::mutex
 * (pthread_mutex_lock/unlock: a call through the PLT, the mutex kind checks,
 * lock elision checks) cost ~50 instructions per pair beyond its two atomic
 * instructions (callgrind, cache_bench's steady state). This is the futex
 * mutex of Drepper's "Futexes Are Tricky" (mutex3), built on C++20 atomic
 * wait/notify, which libstdc++ implements with futex(2) on Linux:
 *
 *   state 0  unlocked
 *   state 1  locked, no waiter
 *   state 2  locked, a waiter may sleep
 *
 * lock() is one compare-exchange 0 -> 1 when free; otherwise it spins a
 * little (the holders run a few hundred instructions), then marks the lock
 * contended (2) and sleeps until it can take it, leaving it marked 2 since
 * other sleepers may remain. unlock() is one exchange to 0, and calls
 * notify_one() only when the old state was 2. Like the kernel's mutex (and
 * unlike a spinlock) a waiter does not burn a CPU while the holder is
 * preempted. Not recursive, not fair; acquire/release ordering as
 * std::mutex. Meets the standard Lockable requirements, so std::lock_guard
 * and std::unique_lock work with it.
 */
#pragma once

#include <atomic>

namespace ua {

class mutex {
public:
	mutex() = default;
	mutex(const mutex &) = delete;
	mutex &operator=(const mutex &) = delete;

	void lock() noexcept
	{
		int c = 0;
		if (state_.compare_exchange_strong(c, 1, std::memory_order_acquire, std::memory_order_relaxed)) [[likely]]
			return;
		lock_slow();
	}

	bool try_lock() noexcept
	{
		int c = 0;
		return state_.compare_exchange_strong(c, 1, std::memory_order_acquire, std::memory_order_relaxed);
	}

	void unlock() noexcept
	{
		if (state_.exchange(0, std::memory_order_release) == 2) [[unlikely]]
			state_.notify_one();
	}

private:
	[[gnu::noinline]] void lock_slow() noexcept
	{
		for (int i = 0; i < spins; i++) {
#if defined(__x86_64__) || defined(__i386__)
			__builtin_ia32_pause();
#endif
			int c = 0;
			if (state_.load(std::memory_order_relaxed) == 0 &&
			    state_.compare_exchange_strong(c, 1, std::memory_order_acquire, std::memory_order_relaxed))
				return;
		}
		/* Contended: whoever takes the lock from here on leaves it marked 2. */
		while (state_.exchange(2, std::memory_order_acquire) != 0)
			state_.wait(2, std::memory_order_relaxed);
	}

	static constexpr int spins = 100;
	std::atomic<int> state_{0};
};

}  // namespace ua
