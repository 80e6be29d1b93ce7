// SPDX-License-Identifier: MIT
/*
 * tests/support/sanitizers.h - which sanitizer runtime, if any, a test is
 * built with, for the few checks their runtimes change. The one place tests
 * learn it (the cache and reliability fixtures include it).
 *
 * UA_TEST_ASAN, UA_TEST_TSAN: defined in ASan / TSan builds, for checks that
 * must not even compile there.
 *
 * sanitized: ASan or TSan. Their runtimes make mlock() a no-op (the
 * sanitizer_common interceptor returns 0 without locking, since shadow
 * memory cannot be locked), and ASan's quarantine keeps freed heap resident,
 * so tests of RLIMIT_MEMLOCK and of a flat RSS hold only without them.
 * Both make a test several times slower, so the exhaustive fault tests
 * take a stride of their cases under them.
 *
 * tsan: TSan. Its fork() does not honour MADV_DONTFORK (clang 14), and its
 * runtime maps shadow and metadata memory as the process allocates, so a
 * process's VMA count moves without any mapping of the code under test.
 */
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define UA_TEST_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#define UA_TEST_TSAN 1
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UA_TEST_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define UA_TEST_TSAN 1
#endif
#endif

namespace ua_test {

#if defined(UA_TEST_TSAN)
inline constexpr bool tsan = true;
#else
inline constexpr bool tsan = false;
#endif

#if defined(UA_TEST_ASAN) || defined(UA_TEST_TSAN)
inline constexpr bool sanitized = true;
#else
inline constexpr bool sanitized = false;
#endif

}  // namespace ua_test
