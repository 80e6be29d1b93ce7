// SPDX-License-Identifier: MIT
/*
 * tests/support/sanitizers.h - which sanitizer a test is built with, for the
 * few checks their runtimes change.
 *
 * sanitized: ASan or TSan. Their runtimes make mlock() a no-op (the
 * sanitizer_common interceptor returns 0 without locking, since shadow
 * memory cannot be locked), and ASan's quarantine keeps freed heap resident,
 * so tests of RLIMIT_MEMLOCK and of a flat RSS hold only without them.
 * Both make a test several times slower, so the exhaustive fault tests
 * take a stride of their cases under them.
 *
 * thread_sanitized: TSan, whose runtime maps its own shadow and metadata
 * memory as the process allocates, so a process's VMA count moves under it
 * without any mapping of the code under test.
 */
#pragma once

namespace ua_test {

#if defined(__SANITIZE_THREAD__)
inline constexpr bool thread_sanitized = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
inline constexpr bool thread_sanitized = true;
#else
inline constexpr bool thread_sanitized = false;
#endif
#else
inline constexpr bool thread_sanitized = false;
#endif

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool sanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool sanitized = true;
#else
inline constexpr bool sanitized = thread_sanitized;
#endif
#else
inline constexpr bool sanitized = thread_sanitized;
#endif

}  // namespace ua_test
