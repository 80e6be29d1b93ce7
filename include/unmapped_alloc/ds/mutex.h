// SPDX-License-Identifier: MIT
/*
 * ds/mutex.h - a sleeping lock whose unlock is a plain store.
 *
 * The cache takes its shard lock twice per alloc/free pair. Each atomic
 * read-modify-write (x86 `lock cmpxchg`, `xchg`) waits until every earlier
 * store of the thread has left the store buffer, and the arena's stores miss
 * the cache: an unlock by exchange stalled the core on the stores of the
 * whole critical section. std::mutex (pthread) and a futex mutex in
 * Drepper's style both unlock with such an instruction, to learn whether a
 * waiter sleeps. Here unlock is a release store - a plain `mov` on x86 - and
 * then a plain load of the sleeper count in the same cache line. Release
 * build of bench/cache_bench.cpp, default arguments, four alternating runs
 * each (2026-11-22): cache/jemalloc 1.205, 1.246, 1.218, 1.291 with an
 * exchange-unlocked futex mutex (Drepper's mutex3), 1.161, 1.141, 1.149,
 * 1.136 with this lock.
 *
 *   lock()    one compare-exchange 0 -> 1 when free. Otherwise spin a little
 *             (holders run a few hundred instructions), then count itself
 *             in `sleepers_` and sleep in futex(2) on the lock word until it
 *             can take the lock.
 *   unlock()  store 0 (release), then wake one sleeper if the count says
 *             there is one.
 *
 * The one cost of the plain store: the load of the count may be performed
 * before the store is visible (x86 orders a store before a later load only
 * with a fence, which would cost what the exchange did). A waiter that
 * counts itself in exactly then, and sees the lock still held, may sleep
 * without being woken. Its futex wait therefore has a timeout (1 ms): a
 * missed wakeup costs that waiter at most that long, and only when both
 * races are lost within nanoseconds of each other. Nothing is lost: the
 * waiter re-checks the lock on every wakeup.
 *
 * Like the kernel's mutex (and unlike a spinlock) a waiter does not burn a
 * CPU while the holder is preempted. Not recursive, not fair; the lock
 * word's acquire/release give std::mutex's ordering. Meets the Lockable
 * requirements (std::lock_guard, std::unique_lock). Linux only (futex).
 *
 * The lock is a capability for clang's thread-safety analysis
 * (thread_safety.h): hold it with mutex_guard, so the analysis sees what is
 * held (a function that drops the lock early does so at a block's end).
 * std::lock_guard works too but is not annotated: the analysis would not
 * know the lock is held.
 */
#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <ctime>

#include "../thread_safety.h"

namespace ua {

class UA_CAPABILITY("mutex") mutex {
public:
	mutex() = default;
	mutex(const mutex &) = delete;
	mutex &operator=(const mutex &) = delete;

	void lock() noexcept UA_ACQUIRE()
	{
		if (try_lock()) [[likely]]
			return;
		lock_slow();
	}

	bool try_lock() noexcept UA_TRY_ACQUIRE(true)
	{
		int c = 0;
		return state_.compare_exchange_strong(c, 1, std::memory_order_acquire, std::memory_order_relaxed);
	}

	void unlock() noexcept UA_RELEASE()
	{
		state_.store(0, std::memory_order_release);
		if (sleepers_.load(std::memory_order_relaxed)) [[unlikely]]
			wake();
	}

private:
	static constexpr int spins = 100;
	static constexpr long sleep_ns = 1000000; /* bound on a missed wakeup, see above */

	/* Acquires through try_lock(), in a loop the analysis does not follow. */
	[[gnu::noinline]] void lock_slow() noexcept UA_ACQUIRE() UA_NO_THREAD_SAFETY_ANALYSIS
	{
		for (int i = 0; i < spins; i++) {
#if defined(__x86_64__) || defined(__i386__)
			__builtin_ia32_pause();
#endif
			if (state_.load(std::memory_order_relaxed) == 0 && try_lock())
				return;
		}
		sleepers_.fetch_add(1, std::memory_order_relaxed);
		while (!try_lock()) {
			timespec ts{0, sleep_ns};
			/* Returns at once if the lock word is no longer 1; EINTR and timeouts just retry. */
			syscall(SYS_futex, reinterpret_cast<int *>(&state_), FUTEX_WAIT_PRIVATE, 1, &ts, nullptr, 0);
		}
		sleepers_.fetch_sub(1, std::memory_order_relaxed);
	}

	[[gnu::noinline]] void wake() noexcept
	{
		syscall(SYS_futex, reinterpret_cast<int *>(&state_), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
	}

	std::atomic<int> state_{0};    /* 0 free, 1 held */
	std::atomic<int> sleepers_{0}; /* threads in (or about to enter) the futex wait */
	static_assert(sizeof(std::atomic<int>) == sizeof(int), "futex(2) waits on the int itself");
};

/* Holds a mutex for its scope (std::lock_guard, annotated). */
class UA_SCOPED_CAPABILITY mutex_guard {
public:
	explicit mutex_guard(mutex &m) noexcept UA_ACQUIRE(m) : m_(m) { m_.lock(); }
	~mutex_guard() UA_RELEASE() { m_.unlock(); }
	mutex_guard(const mutex_guard &) = delete;
	mutex_guard &operator=(const mutex_guard &) = delete;

private:
	mutex &m_;
};

}  // namespace ua
