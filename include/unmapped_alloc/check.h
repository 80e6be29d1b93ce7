// SPDX-License-Identifier: MIT
/*
 * check.h - the three assertion levels.
 *
 *  UA_DEBUG_ASSERT(c)  debug builds only (compiled out with NDEBUG): internal
 *                      invariants on hot paths.
 *  UA_CHECK(c, msg)    always on and cheap: corruption that must never be
 *                      survived silently (it aborts with the message).
 *  check_consistency() expensive whole-structure walks, one per structure,
 *                      returning an empty string or the first violation found;
 *                      called by tests, never by the allocator itself.
 *
 * Caller mistakes are not assertions: they are ua::error values (error.h).
 */
#pragma once

#include <cstdio>
#include <cstdlib>

namespace ua::detail {
[[noreturn]] inline void check_failed(const char *cond, const char *msg, const char *file, int line) noexcept
{
	std::fprintf(stderr, "unmapped_alloc: check failed: %s (%s) at %s:%d\n", cond, msg, file, line);
	std::abort();
}
}  // namespace ua::detail

#define UA_CHECK(c, msg) \
	do { \
		if (__builtin_expect(!(c), 0)) \
			::ua::detail::check_failed(#c, msg, __FILE__, __LINE__); \
	} while (0)

#ifdef NDEBUG
#define UA_DEBUG_ASSERT(c) ((void)0)
#else
#define UA_DEBUG_ASSERT(c) UA_CHECK(c, "debug assertion")
#endif
