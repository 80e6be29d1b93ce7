// Machines with fault injection and whole-machine checks shared by the
// reliability tests (fault injection, stress, security properties).
#pragma once

#include "child.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <string>

#include <support/fault_backend.h>
#include <unmapped_alloc/unmapped_alloc.h>

namespace ua_test {

/*
 * Built with ASan or TSan. Their runtimes make mlock() a no-op (the
 * sanitizer_common interceptor returns 0 without locking, since shadow
 * memory cannot be locked), and ASan's quarantine keeps freed heap resident,
 * so tests of RLIMIT_MEMLOCK and of a flat RSS hold only without them.
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool sanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
inline constexpr bool sanitized = true;
#else
inline constexpr bool sanitized = false;
#endif
#else
inline constexpr bool sanitized = false;
#endif

/* A machine over fault_backend<Inner> whose page allocator fails through the same injector. */
template <class Inner, std::uint64_t Pages>
struct fault_env {
	using backend = ua::fault_backend<Inner>;
	using machine_type = ua::machine<backend>;
	static constexpr std::uint64_t pages = Pages;
	static std::unique_ptr<machine_type> make()
	{
		auto m = std::make_unique<machine_type>(Pages);
		m->pages.set_fault_hook(&backend::page_alloc_hook, &m->backend.injector());
		return m;
	}
};
using sim_fault_env = fault_env<ua::sim_direct_map, std::uint64_t{1} << 18>; /* 1 GiB */
using real_fault_env = fault_env<ua::linux_backend, 16384>;                    /* 64 MiB */

/* Frames not read-write in the direct map. */
template <class Backend>
std::uint64_t frames_out_of_direct_map(const Backend &b)
{
	std::uint64_t n = 0;
	for (ua::pfn_t p = 0; p < b.nr_pages(); p++)
		n += b.direct_map_state(p) != ua::dm_state::rw;
	return n;
}

/* The backend's own consistency walk where it has one (the simulation). */
template <class Backend>
std::string backend_consistency(const Backend &b)
{
	if constexpr (requires { b.check_consistency(); })
		return b.check_consistency();
	else if constexpr (requires { b.inner().check_consistency(); })
		return b.inner().check_consistency();
	else
		return {};
}


}  // namespace ua_test
