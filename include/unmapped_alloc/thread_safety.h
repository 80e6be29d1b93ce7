// SPDX-License-Identifier: MIT
/*
 * thread_safety.h - lock rules written into the types, checked by clang.
 *
 * clang's thread-safety analysis (-Wthread-safety) checks at compile time
 * that a member declared UA_GUARDED_BY(l) is touched only with l held, that
 * a function declared UA_REQUIRES(l) is called only with l held, and that a
 * lock is released on every path that took it. The macros are clang's
 * capability attributes (clang.llvm.org/docs/ThreadSafetyAnalysis.html, as
 * scudo's thread_annotations.h spells them) and expand to nothing on other
 * compilers, so g++ builds the same code unchecked.
 *
 *   UA_CAPABILITY(x)          a lock type (ua::mutex, ds/mutex.h)
 *   UA_SCOPED_CAPABILITY      an RAII holder (ua::mutex_guard)
 *   UA_GUARDED_BY(l)          a member that only l's holder reads or writes
 *   UA_PT_GUARDED_BY(l)       what a pointer member points to, likewise
 *   UA_REQUIRES(l...)         a function its caller calls with l held (the
 *                             *_locked functions)
 *   UA_EXCLUDES(l...)         a function that takes l itself: not with l held
 *   UA_ACQUIRE / UA_RELEASE / UA_TRY_ACQUIRE  lock and unlock functions
 *   UA_ACQUIRED_BEFORE(l...) / UA_ACQUIRED_AFTER(l...)  the lock order
 *                             (checked under -Wthread-safety-beta, for locks
 *                             taken in one function)
 *   UA_RETURN_CAPABILITY(l)   a function that returns l: the analysis reads
 *                             a call of it as l itself
 *   UA_NO_THREAD_SAFETY_ANALYSIS  a function the analysis cannot follow (a
 *                             lockless reader whose safety rests on RCU or
 *                             on a publication order): say why where it is used
 *
 * The build adds -Wthread-safety -Wthread-safety-beta to every clang build
 * (meson.build, and the fuzz stage of scripts/test.sh), with -Werror: a
 * missing lock, or two locks taken out of order, is a build failure.
 */
#pragma once

#if defined(__clang__)
#define UA_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define UA_THREAD_ANNOTATION(x)
#endif

#define UA_CAPABILITY(x) UA_THREAD_ANNOTATION(capability(x))
#define UA_SCOPED_CAPABILITY UA_THREAD_ANNOTATION(scoped_lockable)
#define UA_GUARDED_BY(x) UA_THREAD_ANNOTATION(guarded_by(x))
#define UA_PT_GUARDED_BY(x) UA_THREAD_ANNOTATION(pt_guarded_by(x))
#define UA_ACQUIRED_BEFORE(...) UA_THREAD_ANNOTATION(acquired_before(__VA_ARGS__))
#define UA_ACQUIRED_AFTER(...) UA_THREAD_ANNOTATION(acquired_after(__VA_ARGS__))
#define UA_REQUIRES(...) UA_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define UA_EXCLUDES(...) UA_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define UA_ACQUIRE(...) UA_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define UA_RELEASE(...) UA_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define UA_TRY_ACQUIRE(...) UA_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define UA_RETURN_CAPABILITY(x) UA_THREAD_ANNOTATION(lock_returned(x))
#define UA_NO_THREAD_SAFETY_ANALYSIS UA_THREAD_ANNOTATION(no_thread_safety_analysis)
