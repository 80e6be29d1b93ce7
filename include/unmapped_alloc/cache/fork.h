// SPDX-License-Identifier: MIT
/*
 * cache/fork.h - what a cache does in the child of a fork().
 *
 * A child of fork() gets a copy of its parent's address space, and with it
 * copies of every cache: their metadata, their locks - possibly held, by
 * threads that do not exist in the child - and their aliases, which on the
 * real backend are MAP_SHARED mappings of the same memfd as the parent's.
 * So a child's write, fill or free through a cache inherited from its parent
 * lands in the parent's memory (its live code, on a text cache), a lock held
 * at fork time is never released in the child, and liburcu's call_rcu thread
 * is not there to run deferred frees. None of that can be made safe after
 * the fact: the frames are the parent's.
 *
 * The rule, as for a kernel object that must not cross a fork: a cache
 * belongs to the process that created it. In a child every call on an
 * inherited cache is refused with error::forked before it takes any lock or
 * touches any memory (alloc, free, free_deferred, write, find_allocation;
 * contains() is false, shrink() gives back nothing, stats() reports
 * nothing), and its destructor only unregisters it. A child that needs
 * memory out of the direct map creates its own machine and caches, which are
 * its own (a linux_backend there makes a new memfd).
 *
 * How: a pthread_atfork() child handler, registered once by the first cache
 * created, counts the forks the process came out of; each cache records the
 * count when it is created and compares it at the start of every call (one
 * relaxed load of a process-wide counter that changes only in children).
 * Secret caches' aliases are also MADV_DONTFORK (the real backend): absent
 * from the child.
 */
#pragma once

#include <pthread.h>

#include <atomic>

namespace ua::detail {

/* Forks this process came out of (incremented in each child), as seen by caches. */
inline std::atomic<unsigned> fork_generation{0};

inline void fork_child_handler() noexcept { fork_generation.fetch_add(1, std::memory_order_relaxed); }

/* Registers the child handler (once per process) and returns the current generation. */
inline unsigned fork_generation_register() noexcept
{
	static const int registered = ::pthread_atfork(nullptr, nullptr, &fork_child_handler);
	(void)registered;
	return fork_generation.load(std::memory_order_relaxed);
}

/* True in a child of a fork() after which a cache of generation gen was inherited. */
inline bool forked_since(unsigned gen) noexcept { return fork_generation.load(std::memory_order_relaxed) != gen; }

}  // namespace ua::detail
