// SPDX-License-Identifier: MIT
/*
 * Tests for mapping/secretmem_backend.h on the running kernel's memfd_secret.
 *
 * Where the kernel gives no memfd_secret file (ENOSYS, secretmem disabled,
 * RLIMIT_MEMLOCK), every case says why and checks only that the failure is a
 * clear value. The kernel's split counters are global and other processes
 * move them, so nothing here asserts a split count: only what the kernel
 * guarantees (counters never decrease, a page that faulted in stays in the
 * file until it is released) and what the backend promises. Each case uses
 * a few MiB: what it splits stays split until reboot (docs/live.md).
 */
#include <doctest/doctest.h>

#include "child.h"

#include <support/sanitizers.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>

#include <unmapped_alloc/mapping/secretmem_backend.h>
#include <unmapped_alloc/mapping/smaps.h>

using namespace ua;
using ua_test::child_signal;

namespace {

constexpr std::uint64_t test_pages = 2 * pages_per_chunk; /* 4 MiB */

/* True when memfd_secret works here; otherwise says why (the caller returns). */
bool secretmem_here()
{
	std::string why = secretmem_backend::unavailable_reason();
	if (!why.empty())
		MESSAGE("memfd_secret unavailable, case skipped: " << why);
	return why.empty();
}

/* The VmFlags line of the VMA holding addr ("" if none). */
std::string vm_flags(std::uintptr_t a)
{
	std::string text;
	if (smaps::read_proc_file("/proc/self/smaps", &text) != 0)
		return {};
	bool inside = false;
	for (std::size_t pos = 0; pos < text.size();) {
		std::size_t nl = text.find('\n', pos);
		std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
		pos = nl == std::string::npos ? text.size() : nl + 1;
		std::size_t dash = line.find('-'), sp = line.find(' ');
		if (dash != std::string::npos && sp != std::string::npos && dash < sp && line.find(':') > sp) {
			std::uintptr_t s = std::stoull(line.substr(0, dash), nullptr, 16);
			std::uintptr_t e = std::stoull(line.substr(dash + 1, sp - dash - 1), nullptr, 16);
			inside = s <= a && a < e;
		} else if (inside && line.rfind("VmFlags:", 0) == 0) {
			return line;
		}
	}
	return {};
}

bool has_flag(const std::string &flags, const char *f) { return flags.find(std::string(" ") + f) != std::string::npos; }

}  // namespace

TEST_CASE("secretmem: bad sizes are refused with the reason; a failed backend refuses everything")
{
	secretmem_backend b(100);
	CHECK_FALSE(b.ok());
	CHECK(b.init_error() == -EINVAL);
	CHECK(b.init_reason().find("multiple of 512") != std::string::npos);
	CHECK(b.nr_pages() == 0);
	CHECK(b.set_direct_map_invalid({0, 1}) == -EINVAL);
	std::uintptr_t a = 0;
	CHECK(b.map_alias({0, 1}, prot::rw, &a) == -EINVAL);
	CHECK(b.fill_frames(0, 0, 0, 1) == -EINVAL);
	CHECK(b.stats().unavailable_reason.find("not constructed") != std::string::npos);
}

TEST_CASE("secretmem: frames leave the kernel's direct map as they fault in, and stay out until the file goes")
{
	if (!secretmem_here())
		return;
	secretmem_backend b(test_pages);
	REQUIRE_MESSAGE(b.ok(), b.init_reason());
	CHECK(b.resident_pages() == 0); /* sizing the file takes no page */
	const backend_stats before = b.stats();
	REQUIRE_MESSAGE(before.kernel_figures, before.unavailable_reason);

	const frame_range chunk0{0, pages_per_chunk};
	REQUIRE(b.set_direct_map_invalid(chunk0) == 0);
	CHECK(b.direct_map_state(0) == dm_state::invalid);
	CHECK(b.direct_map_state(pages_per_chunk) == dm_state::rw);
	CHECK(b.resident_pages() == long(pages_per_chunk)); /* each page faulted: secretmem_fault() */

	/* Given back to the owner, the frames stay in the file: the kernel has no way to restore them but release. */
	REQUIRE(b.set_direct_map_default(chunk0) == 0);
	CHECK(b.direct_map_state(0) == dm_state::rw);
	CHECK(b.resident_pages() == long(pages_per_chunk));
	REQUIRE(b.set_direct_map_invalid(chunk0) == 0); /* reused: no new page */
	CHECK(b.resident_pages() == long(pages_per_chunk));

	const backend_stats after = b.stats();
	CHECK(after.direct_map_level2_splits >= before.direct_map_level2_splits);
	CHECK(after.direct_map_level3_splits >= before.direct_map_level3_splits);
	MESSAGE("kernel deltas for 2 MiB faulted in: level2 splits +"
		<< after.direct_map_level2_splits - before.direct_map_level2_splits << ", DirectMap4k "
		<< std::int64_t(after.directmap_4k_kb) - std::int64_t(before.directmap_4k_kb) << " kB");
	CHECK(b.flush_tlb(chunk0) == 0);
	CHECK(b.collapse(chunk0) == 0);
	CHECK(b.stats().tlb_flushes == before.tlb_flushes + 1);
}

TEST_CASE("secretmem: never executable, never read-only in the direct map; refusals change nothing")
{
	if (!secretmem_here())
		return;
	secretmem_backend b(test_pages);
	REQUIRE_MESSAGE(b.ok(), b.init_reason());
	const frame_range r{0, pages_per_chunk};
	std::uintptr_t a = 0;
	CHECK(b.map_alias(r, prot::rx, &a) == -EINVAL);
	CHECK(b.map_alias(r, prot::exec, &a) == -EINVAL);
	CHECK(b.map_alias(r, prot::rw | prot::exec, &a) == -EINVAL);
	CHECK(b.stats().aliases == 0);
	CHECK(b.set_direct_map_ro(r) == -EINVAL);
	CHECK(b.direct_map_state(0) == dm_state::rw);
	REQUIRE(b.map_alias(r, prot::read, &a) == 0);
	CHECK(a % pmd_size == 0); /* whole chunks: 2 MiB aligned, as the contract says */
	CHECK(b.set_memory(a, page_size, cpa_op::x) == -EINVAL);
	CHECK(b.set_memory(a, page_size, cpa_op::rox) == -EINVAL);
	CHECK(b.alias_prot(a) == prot::read);
	CHECK(b.protect_alias(a, r.bytes(), prot::rx) == -EINVAL);
	CHECK(b.unmap_alias(a + page_size, r.bytes()) == -EINVAL);
	CHECK(b.unmap_alias(a, r.bytes()) == 0);
	CHECK(b.stats().aliases == 0);
	/* The kernel agrees: a secretmem file cannot be mapped executable at all (MNT_NOEXEC). */
	CHECK(child_signal([] {
		      int fd = int(::syscall(__NR_memfd_secret, 0u));
		      if (fd < 0 || ::ftruncate(fd, 4096) != 0)
			      return 2;
		      return ::mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0) == MAP_FAILED ? 0 : 1;
	      }) == 0);
}

TEST_CASE("secretmem: contents go through mappings; not even the process reads them through the kernel")
{
	if (!secretmem_here())
		return;
	secretmem_backend b(test_pages);
	REQUIRE_MESSAGE(b.ok(), b.init_reason());
	const frame_range r{pages_per_chunk, pages_per_chunk};
	REQUIRE(b.set_direct_map_invalid(r) == 0);
	std::uintptr_t rw = 0, ro = 0;
	REQUIRE(b.map_alias(r, prot::rw, &rw) == 0);
	REQUIRE(b.map_alias(r, prot::read, &ro) == 0);
	CHECK(b.alias_pfn(rw + 5 * page_size) == r.pfn + 5);
	CHECK(b.alias_frames(ro) == r);

	const char key[] = "0123456789abcdef";
	REQUIRE(b.write_frames(r.pfn, 100, key, sizeof key) == 0);
	CHECK(std::memcmp(reinterpret_cast<const char *>(rw) + 100, key, sizeof key) == 0);
	std::memset(reinterpret_cast<char *>(rw) + 8192, 0x5a, 64);
	CHECK(reinterpret_cast<const unsigned char *>(ro)[8192 + 63] == 0x5a);
	CHECK(std::to_integer<int>(b.view_address(r.pfn)[8192]) == 0x5a);
	REQUIRE(b.fill_frames(r.pfn, 8192, 0x11, 32) == 0);
	CHECK(reinterpret_cast<const unsigned char *>(ro)[8192 + 31] == 0x11);
	CHECK(b.stats().bytes_written == sizeof key + 32);
	CHECK(b.write_frames(r.end(), 0, key, 1) == -EINVAL);
	CHECK(b.write_frames(test_pages - 1, page_size - 1, key, 2) == -EINVAL);

	/* The kernel's own access path refuses secretmem (GUP): /proc/self/mem cannot read the secret. */
	int mem = ::open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
	REQUIRE(mem >= 0);
	char out[sizeof key] = {};
	CHECK(::pread(mem, out, sizeof out, off_t(rw + 100)) < 0);
	::close(mem);
	CHECK(std::memcmp(out, key, sizeof key) != 0);

	/* A read-only alias faults on write; rw parts through set_memory() too. */
	CHECK(child_signal([&] { *reinterpret_cast<volatile char *>(ro) = 1; }) == SIGSEGV);
	REQUIRE(b.set_memory(rw + page_size, page_size, cpa_op::ro) == 0);
	CHECK(b.alias_prot(rw + page_size) == prot::read);
	CHECK(b.alias_prot(rw) == prot::rw);
	CHECK(child_signal([&] { *reinterpret_cast<volatile char *>(rw + page_size) = 1; }) == SIGSEGV);
	CHECK(child_signal([&] { *reinterpret_cast<volatile char *>(rw) = 1; }) == 0);
	REQUIRE(b.set_memory(rw + page_size, page_size, cpa_op::rw) == 0);
	CHECK(b.alias_prot(rw + page_size) == prot::rw);

	/* release_frames: no hole punching in secretmem, the frames read back as zeros and stay resident. */
	const long long resident = b.resident_pages();
	REQUIRE(b.release_frames(r) == 0);
	CHECK(reinterpret_cast<const unsigned char *>(ro)[100] == 0);
	CHECK(reinterpret_cast<const unsigned char *>(ro)[8192] == 0);
	CHECK(b.resident_pages() == resident);
	CHECK(b.unmap_alias(rw, r.bytes()) == 0);
	CHECK(b.unmap_alias(ro, r.bytes()) == 0);
}

TEST_CASE("secretmem: mappings are locked and out of core dumps by the kernel; secured ones and the view skip fork")
{
	if (!secretmem_here())
		return;
	secretmem_backend b(test_pages);
	REQUIRE_MESSAGE(b.ok(), b.init_reason());
	const frame_range r{0, pages_per_chunk};
	REQUIRE(b.set_direct_map_invalid(r) == 0);
	std::uintptr_t a = 0;
	REQUIRE(b.map_alias(r, prot::rw, &a) == 0);
	std::string flags = vm_flags(a);
	INFO("VmFlags of the alias: " << flags);
	CHECK(has_flag(flags, "lo")); /* VM_LOCKED, from secretmem_mmap_prepare() */
	CHECK(has_flag(flags, "dd")); /* VM_DONTDUMP */
	CHECK_FALSE(has_flag(flags, "dc"));
	CHECK_FALSE(b.alias_secured(a));
	REQUIRE(b.secure_alias(a, r.bytes()) == 0);
	CHECK(b.alias_secured(a));
	CHECK(has_flag(vm_flags(a), "dc")); /* VM_DONTCOPY */
	CHECK(has_flag(vm_flags(reinterpret_cast<std::uintptr_t>(b.view_address(0))), "dc"));
#ifndef UA_TEST_TSAN
	/* (VM_DONTCOPY is checked above; TSan's fork handling keeps the child from faulting here) */
	CHECK(child_signal([&] { (void)*reinterpret_cast<volatile char *>(a); }) == SIGSEGV);
	CHECK(child_signal([&] { (void)*reinterpret_cast<volatile std::byte *>(b.view_address(0)); }) == SIGSEGV);
#endif
	CHECK(b.unmap_alias(a, r.bytes()) == 0);
}

TEST_CASE("secretmem: an alias over several runs maps them in order")
{
	if (!secretmem_here())
		return;
	secretmem_backend b(test_pages);
	REQUIRE_MESSAGE(b.ok(), b.init_reason());
	const frame_range runs[] = {{pages_per_chunk + 3, 2}, {7, 1}};
	REQUIRE(b.fill_frames(7, 0, 0x77, page_size) == 0);
	REQUIRE(b.fill_frames(pages_per_chunk + 4, 0, 0x44, page_size) == 0);
	std::uintptr_t a = 0;
	REQUIRE(b.map_alias_runs(runs, 2, prot::read, &a) == 0);
	CHECK(reinterpret_cast<const unsigned char *>(a)[page_size] == 0x44);
	CHECK(reinterpret_cast<const unsigned char *>(a)[2 * page_size] == 0x77);
	CHECK(b.alias_pfn(a + 2 * page_size) == 7u);
	CHECK(b.alias_frames(a + page_size) == runs[0]);
	const frame_range bad[] = {{0, 1}, {test_pages, 1}};
	std::uintptr_t c = 0;
	CHECK(b.map_alias_runs(bad, 2, prot::read, &c) == -EINVAL);
	CHECK(b.stats().aliases == 1);
	CHECK(b.unmap_alias(a, 3 * page_size) == 0);
}
