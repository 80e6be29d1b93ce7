// SPDX-License-Identifier: MIT
/*
 * consumer.cpp - a program outside the library that uses it the way a user
 * would: through the installed headers and one of the three ways of finding
 * them (meson subproject, pkg-config, CMake find_package). It checks a few
 * facts of the public headers at compile time and at run time, and exits
 * non-zero if one is wrong, so a broken install or include path fails loudly.
 *
 * The umbrella header is used once it exists; until then the two headers every
 * layer shares.
 */
#if __has_include(<unmapped_alloc/unmapped_alloc.h>)
#include <unmapped_alloc/unmapped_alloc.h>
#define UA_CONSUMER_UMBRELLA 1
#else
#define UA_CONSUMER_UMBRELLA 0
#endif
#include <unmapped_alloc/config.h>
#include <unmapped_alloc/error.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

static_assert(ua::chunk_size == 2u * 1024 * 1024, "a chunk is one 2 MiB PMD page");
static_assert(ua::align_up(1, ua::page_size) == ua::page_size);

static int failures;

static void expect(bool ok, const char *what)
{
	if (!ok) {
		std::fprintf(stderr, "consumer: FAILED: %s\n", what);
		++failures;
	}
}

int main(int argc, char **)
{
	/* argc keeps the values out of constant folding: these run for real. */
	const std::size_t one = static_cast<std::size_t>(argc);
	expect(ua::align_up(one, ua::page_size) == ua::page_size, "align_up(1, page_size)");
	expect(ua::align_down(ua::chunk_size + one, ua::chunk_size) == ua::chunk_size, "align_down");
	expect(ua::to_errno(ua::error::no_memory) == ENOMEM, "no_memory maps to ENOMEM");
	expect(ua::to_errno(ua::error::zero_size) == EINVAL, "zero_size maps to EINVAL");
	expect(std::strlen(ua::describe(ua::error::no_space)) > 0, "describe() says something");

	auto r = ua::result<int>::failure(ua::error::bad_alignment);
	expect(!r && r.err == ua::error::bad_alignment, "result<T>::failure carries its error");

	std::printf("consumer: %s (umbrella header: %s)\n", failures ? "FAILED" : "ok",
		    UA_CONSUMER_UMBRELLA ? "yes" : "not yet");
	return failures ? 1 : 0;
}
