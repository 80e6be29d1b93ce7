// SPDX-License-Identifier: MIT
/*
 * cache/rcu.h - the library's use of liburcu (bulletproof flavour).
 *
 * Lookups that must not block (is this address in a cache? which allocation
 * holds it? — what stack unwinders and kallsyms ask) run under an RCU read
 * lock and take no lock at all. The flavour is urcu-bp: threads need no
 * registration, which matters for a library whose callers' threads it does
 * not know. Rules, as in the kernel:
 *
 *   - readers: hold an rcu_read_guard for the whole lookup and do not keep
 *     pointers to cache metadata after it ends;
 *   - writers (under the cache's locks) unpublish an object first, then free
 *     it only after synchronize() returns or from a call_rcu() callback;
 *   - memory that other threads may still execute or read is handed back to
 *     the allocator only after a grace period (unmapped_free_deferred).
 *
 * Under ThreadSanitizer the grace period is invisible (liburcu is not
 * instrumented), so the wrappers add the happens-before edges it implies:
 * every read-side unlock releases a global sync object that synchronize()
 * and every call_rcu callback acquire, and call() releases the rcu_head
 * that the callback acquires (the hand-off through liburcu's queue).
 */
#pragma once

#include <urcu/urcu-bp.h>
#include <urcu/call-rcu.h>

/* urcu/map/urcu-bp.h maps generic names (rcu_read_lock, call_rcu, ...) to the
 * bp flavour with macros; the library calls the urcu_bp_* names directly. */

#if defined(__SANITIZE_THREAD__)
#define UA_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UA_TSAN 1
#endif
#endif

#ifdef UA_TSAN
extern "C" void __tsan_acquire(void *addr);
extern "C" void __tsan_release(void *addr);
#endif

namespace ua::rcu {

namespace detail {
inline char grace_period_sync;
inline void annotate_reader_done() noexcept
{
#ifdef UA_TSAN
	__tsan_release(&grace_period_sync);
#endif
}
inline void annotate_grace_period() noexcept
{
#ifdef UA_TSAN
	__tsan_acquire(&grace_period_sync);
#endif
}
}  // namespace detail

/* Scoped RCU read-side critical section; nests. */
class read_guard {
public:
	read_guard() noexcept { urcu_bp_read_lock(); }
	~read_guard()
	{
		detail::annotate_reader_done();
		urcu_bp_read_unlock();
	}
	read_guard(const read_guard &) = delete;
	read_guard &operator=(const read_guard &) = delete;
};

/* Waits for every reader that might see an unpublished object. Never call it inside a read_guard. */
inline void synchronize() noexcept
{
	urcu_bp_synchronize_rcu();
	detail::annotate_grace_period();
}

/*
 * Runs fn(head) after a grace period, on liburcu's call_rcu thread. fn must
 * begin with callback_begin(head).
 */
inline void call(rcu_head *head, void (*fn)(rcu_head *)) noexcept
{
#ifdef UA_TSAN
	__tsan_release(head); /* what was written to the object before the hand-off */
#endif
	urcu_bp_call_rcu(head, fn);
}

/* First statement of every call() callback: the grace period and the hand-off are over. */
inline void callback_begin(rcu_head *head) noexcept
{
#ifdef UA_TSAN
	__tsan_acquire(head);
#else
	(void)head;
#endif
	detail::annotate_grace_period();
}

/* Waits until every callback queued with call() has run. */
inline void barrier() noexcept
{
	urcu_bp_barrier();
	detail::annotate_grace_period();
}

}  // namespace ua::rcu
