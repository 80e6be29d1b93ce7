// SPDX-License-Identifier: MIT
/*
 * Tests for mapping/linux_backend.h and mapping/smaps.h on real memory.
 *
 * Every access that may fault runs in a forked child; the parent (where
 * doctest runs) checks that the child died of SIGSEGV or exited with the code
 * it expects. The huge-page figures depend on
 * /sys/kernel/mm/transparent_hugepage/shmem_enabled, which the tests never
 * write: with advise/always they check the kernel's counters move as CPA's
 * rules say, otherwise they check the figures are reported as unavailable.
 */
#include <doctest/doctest.h>

#include "child.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <unmapped_alloc/mapping/linux_backend.h>
#include <unmapped_alloc/mapping/smaps.h>

using namespace ua;

namespace {

constexpr std::uint64_t test_pages = 4 * pages_per_chunk; /* 8 MiB: four 2 MiB pages */
constexpr std::uint64_t view_kb = (test_pages << page_shift) >> 10;
constexpr std::uint64_t pmd_kb = pmd_size >> 10;

using ua_test::died_of_sigsegv;
using ua_test::exited_with;
using ua_test::run_in_child;

int child_read(const std::byte *p, std::byte expect)
{
	return *reinterpret_cast<const volatile std::byte *>(p) == expect ? 0 : 1;
}

int child_write(std::byte *p)
{
	*reinterpret_cast<volatile std::byte *>(p) = std::byte{0x5a};
	return 0;
}

/* The perms of the VMA containing addr, from /proc/self/maps ("" when none). */
std::string perms_at(std::uintptr_t addr)
{
	std::string text;
	if (smaps::read_proc_file("/proc/self/maps", &text) != 0)
		return "?"; /* no doctest macros here: children call it too */
	std::string perms;
	smaps::for_each_vma(text, [&](const smaps::vma &v) {
		if (addr >= v.start && addr < v.end)
			perms = v.perms;
	});
	return perms;
}

bool huge_allowed() { return linux_backend::shmem_huge_allowed(linux_backend::shmem_enabled_setting()); }

}  // namespace

TEST_CASE("construction: sizes, failures are values, frames start read-write")
{
	for (std::uint64_t bad : {std::uint64_t{0}, std::uint64_t{100}, pages_per_chunk + 1}) {
		linux_backend b(bad);
		CHECK_FALSE(b.ok());
		CHECK(b.init_error() == -EINVAL);
		CHECK(b.nr_pages() == 0);
		CHECK(b.set_direct_map_invalid({0, 1}) == -EINVAL);
		std::uintptr_t a = 0;
		CHECK(b.map_alias({0, 1}, prot::read, &a) == -EINVAL);
		CHECK_FALSE(b.stats().unavailable_reason.empty());
	}

	linux_backend b(test_pages);
	REQUIRE_MESSAGE(b.ok(), "construction failed at ", b.init_step(), ": ", std::strerror(-b.init_error()));
	CHECK(b.nr_pages() == test_pages);
	CHECK(reinterpret_cast<std::uintptr_t>(b.direct_map_address(0)) % pmd_size == 0);
	for (pfn_t pfn = 0; pfn < test_pages; pfn += 97)
		CHECK(b.direct_map_state(pfn) == dm_state::rw);
	CHECK(b.direct_map_state(test_pages) == dm_state::invalid);
	CHECK(perms_at(reinterpret_cast<std::uintptr_t>(b.direct_map_address(0))) == "rw-s");

	/* The view and the memfd are the same memory. */
	*b.direct_map_address(5) = std::byte{0x77};
	unsigned char c = 0;
	REQUIRE(::pread(ua::linux_backend_test_access::memfd(b), &c, 1, 5 << page_shift) == 1);
	CHECK(c == 0x77);

	/* Moving hands the memory over. */
	linux_backend moved(std::move(b));
	CHECK(moved.nr_pages() == test_pages);
	CHECK(*moved.direct_map_address(5) == std::byte{0x77});
	CHECK(b.nr_pages() == 0);
	CHECK_FALSE(b.ok());
	CHECK(b.set_direct_map_invalid({0, 1}) == -EINVAL);
}

TEST_CASE("direct map: removed frames fault, read-only frames read but fault on write")
{
	linux_backend b(test_pages);
	REQUIRE(b.ok());
	std::byte *p10 = b.direct_map_address(10), *p11 = b.direct_map_address(11);
	*p10 = std::byte{1};
	*p11 = std::byte{2};

	REQUIRE(b.set_direct_map_invalid({10, 1}) == 0);
	CHECK(b.direct_map_state(10) == dm_state::invalid);
	CHECK(b.direct_map_state(11) == dm_state::rw);
	CHECK(died_of_sigsegv(run_in_child([&] { return child_read(p10, std::byte{1}); })));
	CHECK(died_of_sigsegv(run_in_child([&] { return child_write(p10); })));
	CHECK(exited_with(run_in_child([&] { return child_read(p11, std::byte{2}); }), 0));
	CHECK(perms_at(reinterpret_cast<std::uintptr_t>(p10)) == "---s");

	/* set_memory_ro() clears write only: frame 10 stays out of the direct map. */
	REQUIRE(b.set_direct_map_ro({10, 2}) == 0);
	CHECK(b.direct_map_state(10) == dm_state::invalid);
	CHECK(b.direct_map_state(11) == dm_state::ro);
	CHECK(died_of_sigsegv(run_in_child([&] { return child_read(p10, std::byte{1}); })));
	CHECK(exited_with(run_in_child([&] { return child_read(p11, std::byte{2}); }), 0));
	CHECK(died_of_sigsegv(run_in_child([&] { return child_write(p11); })));

	REQUIRE(b.set_direct_map_default({10, 2}) == 0);
	*p10 = std::byte{3}; /* in the parent: would crash the test run if still protected */
	CHECK(*p10 == std::byte{3});
	CHECK(b.flush_tlb({10, 2}) == 0);

	backend_stats s = b.stats();
	CHECK(s.prot_changes == 3);
	CHECK(s.tlb_flushes == 1);
	/* A change to the state the frames already have is not a change. */
	CHECK(b.set_direct_map_default({0, test_pages}) == 0);
	CHECK(b.stats().prot_changes == 3);
}

TEST_CASE("kernel figures: whole-chunk changes keep the PMD, a 4 KiB change splits it, collapse merges")
{
	linux_backend b(test_pages);
	REQUIRE(b.ok());
	backend_stats s = b.stats();
	CHECK(s.kernel_figures);
	CHECK(s.vma_count > 0);
	CHECK(s.pgtable_available);
	CHECK(s.pgtable_pages > 0);
	CHECK(s.directmap_1g_kb == 0);

	if (!s.directmap_available) {
		/* Unavailable is said, with the reason, never reported as zero silently. */
		CHECK_FALSE(s.unavailable_reason.empty());
		CHECK(s.directmap_2m_kb == 0);
		CHECK(s.directmap_4k_kb == 0);
		if (!huge_allowed())
			CHECK(s.unavailable_reason.find("shmem_enabled") != std::string::npos);
		MESSAGE("huge-page figures unavailable (", s.unavailable_reason,
			"); the split/collapse checks need transparent_hugepage/shmem_enabled = advise or always");
		/* Everything else still works. */
		CHECK(b.set_direct_map_invalid({pages_per_chunk, 1}) == 0);
		CHECK(b.set_direct_map_default({pages_per_chunk, 1}) == 0);
		return;
	}

	REQUIRE_MESSAGE(s.pmd_mapped_kb == view_kb, "the view was not fully PMD-mapped at construction");
	CHECK(s.directmap_2m_kb == view_kb);
	CHECK(s.directmap_4k_kb == 0);
	CHECK(s.direct_map_level2_splits == 0);
	CHECK(s.unavailable_reason.empty());

	/* Chunk 1 removed as a whole: the PMD stays (as PROT_NONE). */
	REQUIRE(b.set_direct_map_invalid({pages_per_chunk, pages_per_chunk}) == 0);
	s = b.stats();
	CHECK(s.pmd_mapped_kb == view_kb);
	CHECK(s.direct_map_level2_splits == 0);
	REQUIRE(b.set_direct_map_ro({2 * pages_per_chunk, pages_per_chunk}) == 0);
	CHECK(b.stats().pmd_mapped_kb == view_kb);
	REQUIRE(b.set_direct_map_default({2 * pages_per_chunk, pages_per_chunk}) == 0);
	/* Whole-chunk changes leave nothing for collapse() to do. */
	CHECK_FALSE(ua::linux_backend_test_access::may_be_split(b, pages_per_chunk));
	CHECK_FALSE(ua::linux_backend_test_access::may_be_split(b, 2 * pages_per_chunk));
	CHECK(b.collapse({pages_per_chunk, 2 * pages_per_chunk}) == 0);
	CHECK(b.stats().direct_map_level2_collapses == 0);

	/* One 4 KiB page inside chunk 2: that 2 MiB page is split. */
	*b.direct_map_address(2 * pages_per_chunk + 7) = std::byte{9};
	std::uint64_t vmas_before = b.stats().vma_count;
	REQUIRE(b.set_direct_map_invalid({2 * pages_per_chunk + 7, 1}) == 0);
	s = b.stats();
	CHECK(s.pmd_mapped_kb == view_kb - pmd_kb);
	CHECK(s.directmap_4k_kb == pmd_kb);
	CHECK(s.direct_map_level2_splits == 1);
	CHECK(s.vma_count == vmas_before + 2); /* the page's VMA cut the chunk's in three */
	CHECK(ua::linux_backend_test_access::may_be_split(b, 2 * pages_per_chunk + 500));
	CHECK_FALSE(ua::linux_backend_test_access::may_be_split(b, pages_per_chunk));
	CHECK_FALSE(ua::linux_backend_test_access::may_be_split(b, 3 * pages_per_chunk));

	/* Restoring does not merge it back. */
	REQUIRE(b.set_direct_map_default({2 * pages_per_chunk + 7, 1}) == 0);
	s = b.stats();
	CHECK(s.pmd_mapped_kb == view_kb - pmd_kb);
	CHECK(s.direct_map_level2_splits == 1);
	CHECK(s.vma_count == vmas_before);

	/* collapse() does (MADV_COLLAPSE), contents intact. */
	int rc = b.collapse({2 * pages_per_chunk + 7, 1});
	REQUIRE_MESSAGE(rc == 0, "MADV_COLLAPSE failed: ", std::strerror(-rc));
	s = b.stats();
	CHECK(s.pmd_mapped_kb == view_kb);
	CHECK(s.direct_map_level2_collapses == 1);
	CHECK(s.direct_map_level2_splits == 0);
	CHECK(*b.direct_map_address(2 * pages_per_chunk + 7) == std::byte{9});
	CHECK_FALSE(ua::linux_backend_test_access::may_be_split(b, 2 * pages_per_chunk));

	/*
	 * Unlike CPA, the split only zapped the PMD: the shmem folio stayed one
	 * 2 MiB page, so once the VMAs are whole again a fault maps it by PMD.
	 */
	REQUIRE(b.set_direct_map_ro({2 * pages_per_chunk + 9, 1}) == 0);
	CHECK(b.stats().pmd_mapped_kb == view_kb - pmd_kb);
	REQUIRE(b.set_direct_map_default({2 * pages_per_chunk + 9, 1}) == 0);
	CHECK(b.stats().pmd_mapped_kb == view_kb - pmd_kb);
	*b.direct_map_address(2 * pages_per_chunk + 9) = std::byte{10};
	s = b.stats();
	CHECK(s.pmd_mapped_kb == view_kb);
	CHECK(s.direct_map_level2_splits == 0);
	CHECK(s.direct_map_level2_collapses == 1);

	/* A chunk whose frames differ cannot be one PMD: collapse leaves it alone. */
	REQUIRE(b.set_direct_map_ro({3 * pages_per_chunk, 1}) == 0);
	CHECK(b.collapse({3 * pages_per_chunk, pages_per_chunk}) == 0);
	s = b.stats();
	CHECK(s.pmd_mapped_kb == view_kb - pmd_kb);
	CHECK(s.direct_map_level2_splits == 1);
	CHECK(s.direct_map_level2_collapses == 1);
	CHECK(ua::linux_backend_test_access::may_be_split(b, 3 * pages_per_chunk)); /* still to merge once its frames agree */

	/* They do: the next collapse merges it. A change that ends inside a 2 MiB page marks that page too. */
	REQUIRE(b.set_direct_map_default({3 * pages_per_chunk, 1}) == 0);
	REQUIRE(b.collapse({3 * pages_per_chunk, pages_per_chunk}) == 0);
	s = b.stats();
	CHECK(s.pmd_mapped_kb == view_kb);
	CHECK(s.direct_map_level2_collapses == 2);
	REQUIRE(b.set_direct_map_default({pages_per_chunk, pages_per_chunk}) == 0);
	REQUIRE(b.set_direct_map_invalid({0, pages_per_chunk + 3}) == 0);
	CHECK_FALSE(ua::linux_backend_test_access::may_be_split(b, 0));
	CHECK(ua::linux_backend_test_access::may_be_split(b, pages_per_chunk));
	CHECK(b.stats().pmd_mapped_kb == view_kb - pmd_kb);
	REQUIRE(b.set_direct_map_default({0, pages_per_chunk + 3}) == 0);
	REQUIRE(b.collapse({0, 2 * pages_per_chunk}) == 0);
	CHECK(b.stats().pmd_mapped_kb == view_kb);
	CHECK_FALSE(ua::linux_backend_test_access::may_be_split(b, pages_per_chunk));
}

#if defined(__x86_64__)
TEST_CASE("aliases: code written with write_frames runs through an executable alias")
{
	linux_backend b(test_pages);
	REQUIRE(b.ok());
	std::uintptr_t x = 0;
	REQUIRE(b.map_alias({pages_per_chunk, pages_per_chunk}, prot::rx, &x) == 0);
	CHECK(x % pmd_size == 0);
	CHECK(perms_at(x) == "r-xs");

	const unsigned char ret42[] = {0xb8, 0x2a, 0x00, 0x00, 0x00, 0xc3}; /* mov eax, 42; ret */
	const unsigned char ret7[] = {0xb8, 0x07, 0x00, 0x00, 0x00, 0xc3};  /* mov eax, 7; ret */
	REQUIRE(b.write_frames(pages_per_chunk, 64, ret42, sizeof(ret42)) == 0);
	auto fn = reinterpret_cast<int (*)()>(x + 64);
	CHECK(fn() == 42);
	/* Rewritten in place, as text_poke_copy() does: the alias sees it at once. */
	REQUIRE(b.write_frames(pages_per_chunk, 64, ret7, sizeof(ret7)) == 0);
	CHECK(fn() == 7);

	/* Freed text is filled with traps (text_poke_set()). */
	REQUIRE(b.fill_frames(pages_per_chunk, 64, trap_byte, 300000) == 0);
	CHECK(reinterpret_cast<const unsigned char *>(x)[64] == trap_byte);
	CHECK(reinterpret_cast<const unsigned char *>(x)[64 + 299999] == trap_byte);
	CHECK(reinterpret_cast<const unsigned char *>(x)[64 + 300000] == 0);
	CHECK(b.stats().bytes_written == 2 * sizeof(ret42) + 300000);
	/* The executable alias is not writable. */
	CHECK(died_of_sigsegv(run_in_child([&] { return child_write(reinterpret_cast<std::byte *>(x)); })));
	CHECK(b.unmap_alias(x, chunk_size) == 0);
}
#endif

TEST_CASE("aliases: a write through a writable alias is seen through the others")
{
	linux_backend b(test_pages);
	REQUIRE(b.ok());
	std::uintptr_t w = 0, r = 0, small = 0;
	REQUIRE(b.map_alias({0, pages_per_chunk}, prot::rw, &w) == 0);
	REQUIRE(b.map_alias({0, pages_per_chunk}, prot::read, &r) == 0);
	REQUIRE(b.map_alias({3, 2}, prot::read, &small) == 0);
	CHECK(w % pmd_size == 0);
	CHECK(r % pmd_size == 0);
	CHECK(b.stats().aliases == 3);
	CHECK(b.alias_frames(small) == frame_range{3, 2});
	CHECK(b.alias_frames(small + page_size + 17) == frame_range{3, 2});
	CHECK_FALSE(b.alias_prot(0x1000).has_value());
	CHECK(b.alias_prot(w) == prot::rw);

	reinterpret_cast<volatile char *>(w)[(3 << page_shift) + 5] = 'k';
	CHECK(reinterpret_cast<const char *>(r)[(3 << page_shift) + 5] == 'k');
	CHECK(reinterpret_cast<const char *>(small)[5] == 'k');
	CHECK(static_cast<char>(*(b.direct_map_address(3) + 5)) == 'k');

	/* set_memory_ro() on the writable alias: it reads, writes fault. */
	REQUIRE(b.protect_alias(w, chunk_size, prot::read) == 0);
	CHECK(b.alias_prot(w) == prot::read);
	CHECK(perms_at(w) == "r--s");
	CHECK(died_of_sigsegv(run_in_child([&] { return child_write(reinterpret_cast<std::byte *>(w)); })));
	CHECK(exited_with(run_in_child([&] {
		return child_read(reinterpret_cast<std::byte *>(w) + (3 << page_shift) + 5, std::byte{'k'});
	}), 0));

	CHECK(b.unmap_alias(w, chunk_size) == 0);
	CHECK(b.unmap_alias(r, chunk_size) == 0);
	CHECK(b.unmap_alias(small, 2 * page_size) == 0);
	CHECK(b.stats().aliases == 0);
	CHECK(perms_at(w).empty());
}

TEST_CASE("W^X: no address is writable and executable, whatever aliases exist")
{
	/* The check itself catches a writable+executable mapping. */
	void *rwx = ::mmap(nullptr, page_size, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (rwx != MAP_FAILED) {
		char addr[32];
		std::snprintf(addr, sizeof(addr), "%lx-", reinterpret_cast<unsigned long>(rwx));
		std::string found = smaps::find_wx_mapping();
		CHECK(found.find(addr) == 0);
		::munmap(rwx, page_size);
	}
	REQUIRE(smaps::find_wx_mapping().empty());

	linux_backend b(test_pages);
	REQUIRE(b.ok());
	std::vector<std::uintptr_t> aliases;
	for (prot p : {prot::none, prot::read, prot::rw, prot::rx, prot::exec, prot::write}) {
		std::uintptr_t a = 0;
		REQUIRE(b.map_alias({0, pages_per_chunk}, p, &a) == 0);
		aliases.push_back(a);
	}
	std::uintptr_t flip = 0;
	REQUIRE(b.map_alias({pages_per_chunk, 1}, prot::rw, &flip) == 0);
	REQUIRE(b.protect_alias(flip, page_size, prot::rx) == 0);
	REQUIRE(b.set_direct_map_ro({0, 3}) == 0);
	REQUIRE(b.set_direct_map_invalid({5, 3}) == 0);
	CHECK(smaps::find_wx_mapping() == "");
	CHECK(b.stats().aliases == 7);

	/* Asking for W+X is refused, by map and by protect. */
	std::uintptr_t a = 0;
	CHECK(b.map_alias({0, 1}, prot::rw | prot::exec, &a) == -EINVAL);
	CHECK(b.protect_alias(flip, page_size, prot::rw | prot::exec) == -EINVAL);
	CHECK(b.protect_alias(aliases[2], chunk_size, prot::read | prot::write | prot::exec) == -EINVAL);
	CHECK(b.alias_prot(flip) == prot::rx);
	CHECK(b.stats().aliases == 7);
	CHECK(smaps::find_wx_mapping() == "");
}

TEST_CASE("failures: bad ranges, unknown or partial aliases and W^X change nothing")
{
	linux_backend b(test_pages);
	REQUIRE(b.ok());
	std::uintptr_t a = 0;
	REQUIRE(b.map_alias({0, pages_per_chunk}, prot::rw, &a) == 0);
	REQUIRE(b.set_direct_map_ro({4, 1}) == 0);
	backend_stats before = b.stats();

	const frame_range bad[] = {{0, 0}, {test_pages, 1}, {test_pages - 1, 2}, {1, ~std::uint64_t{0}},
				   {~std::uint64_t{0}, 2}};
	for (frame_range r : bad) {
		CHECK(b.set_direct_map_invalid(r) == -EINVAL);
		CHECK(b.set_direct_map_default(r) == -EINVAL);
		CHECK(b.set_direct_map_ro(r) == -EINVAL);
		CHECK(b.flush_tlb(r) == -EINVAL);
		CHECK(b.collapse(r) == -EINVAL);
		CHECK(b.release_frames(r) == -EINVAL);
		std::uintptr_t x = 0;
		CHECK(b.map_alias(r, prot::read, &x) == -EINVAL);
	}
	CHECK(b.map_alias({0, 1}, prot::read, nullptr) == -EINVAL);
	CHECK(b.map_alias({0, 1}, prot(8), &a) == -EINVAL);

	CHECK(b.protect_alias(a + page_size, page_size, prot::read) == -EINVAL); /* inside, not its start */
	CHECK(b.protect_alias(a, page_size, prot::read) == -EINVAL);             /* partial */
	CHECK(b.protect_alias(a, 2 * chunk_size, prot::read) == -EINVAL);        /* longer */
	CHECK(b.protect_alias(0x1000, page_size, prot::read) == -EINVAL);        /* unknown */
	CHECK(b.unmap_alias(a, page_size) == -EINVAL);
	CHECK(b.unmap_alias(a + page_size, chunk_size - page_size) == -EINVAL);
	CHECK(b.unmap_alias(0x1000, page_size) == -EINVAL);

	unsigned char buf[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	CHECK(b.write_frames(test_pages, 0, buf, 1) == -EINVAL);
	CHECK(b.write_frames(test_pages - 1, page_size - 4, buf, 8) == -EINVAL);
	CHECK(b.write_frames(0, ~std::size_t{0}, buf, 8) == -EINVAL);
	CHECK(b.write_frames(0, 0, nullptr, 8) == -EINVAL);
	CHECK(b.fill_frames(test_pages - 1, 0, 0, page_size + 1) == -EINVAL);
	CHECK(b.fill_frames(1, 0, 0, ~std::size_t{0}) == -EINVAL);
	CHECK(b.write_frames(test_pages - 1, page_size - 8, buf, 8) == 0); /* the last byte is inside */

	backend_stats after = b.stats();
	CHECK(after.aliases == before.aliases);
	CHECK(after.prot_changes == before.prot_changes);
	CHECK(after.tlb_flushes == before.tlb_flushes);
	CHECK(after.bytes_written == before.bytes_written + 8);
	CHECK(b.alias_prot(a) == prot::rw);
	CHECK(perms_at(a) == "rw-s");
	CHECK(b.direct_map_state(4) == dm_state::ro);
	CHECK(b.direct_map_state(3) == dm_state::rw);
	CHECK(perms_at(reinterpret_cast<std::uintptr_t>(b.direct_map_address(4))) == "r--s");
	CHECK(perms_at(reinterpret_cast<std::uintptr_t>(b.direct_map_address(3))) == "rw-s");
	reinterpret_cast<volatile char *>(a)[0] = 1; /* still writable */
}

TEST_CASE("release_frames gives the contents back: they read as zeros")
{
	linux_backend b(test_pages);
	REQUIRE(b.ok());
	std::uintptr_t a = 0;
	REQUIRE(b.map_alias({0, pages_per_chunk}, prot::read, &a) == 0);
	std::memset(b.direct_map_address(0), 0xab, 2 * chunk_size);
	CHECK_FALSE(ua::linux_backend_test_access::frames_released(b, 3));

	REQUIRE(b.release_frames({3, 2}) == 0);
	/* Writes into that 2 MiB page allocate first from now on; the next page's do not need to. */
	CHECK(ua::linux_backend_test_access::frames_released(b, 0));
	CHECK(ua::linux_backend_test_access::frames_released(b, pages_per_chunk - 1));
	CHECK_FALSE(ua::linux_backend_test_access::frames_released(b, pages_per_chunk));
	CHECK(*b.direct_map_address(2) == std::byte{0xab});
	CHECK(*b.direct_map_address(3) == std::byte{0});
	CHECK(*(b.direct_map_address(5) - 1) == std::byte{0});
	CHECK(*b.direct_map_address(5) == std::byte{0xab});
	CHECK(reinterpret_cast<const unsigned char *>(a)[3 << page_shift] == 0);

	/* A whole chunk, released while out of the direct map, comes back zeroed. */
	REQUIRE(b.set_direct_map_invalid({pages_per_chunk, pages_per_chunk}) == 0);
	REQUIRE(b.release_frames({pages_per_chunk, pages_per_chunk}) == 0);
	REQUIRE(b.set_direct_map_default({pages_per_chunk, pages_per_chunk}) == 0);
	bool zero = true;
	for (std::size_t i = 0; i < chunk_size; i += 511)
		zero &= *(b.direct_map_address(pages_per_chunk) + i) == std::byte{0};
	CHECK(zero);

	/* Writes after a release allocate again. */
	CHECK(ua::linux_backend_test_access::frames_released(b, pages_per_chunk));
	const char msg[] = "again";
	REQUIRE(b.write_frames(pages_per_chunk, 10, msg, sizeof(msg)) == 0);
	CHECK(std::memcmp(b.direct_map_address(pages_per_chunk) + 10, msg, sizeof(msg)) == 0);
	REQUIRE(b.fill_frames(3, 0, 0x5a, 2 * page_size) == 0);
	CHECK(*b.direct_map_address(3) == std::byte{0x5a});
	CHECK(*(b.direct_map_address(5) - 1) == std::byte{0x5a});
	/* And where nothing was released, writes go straight to pwrite. */
	CHECK_FALSE(ua::linux_backend_test_access::frames_released(b, 2 * pages_per_chunk));
	REQUIRE(b.fill_frames(2 * pages_per_chunk, 100, 0x77, 3 * page_size) == 0);
	CHECK(*(b.direct_map_address(2 * pages_per_chunk) + 100) == std::byte{0x77});
	CHECK(*(b.direct_map_address(2 * pages_per_chunk) + 100 + 3 * page_size - 1) == std::byte{0x77});
}

TEST_CASE("a direct-map change refused by the kernel (vm.max_map_count) changes nothing")
{
	linux_backend b(test_pages);
	REQUIRE(b.ok());
	/* VMAs of the view: rw [0, 512) | ro [512, 1024) | rw [1024, ...). */
	REQUIRE(b.set_direct_map_ro({pages_per_chunk, pages_per_chunk}) == 0);
	std::byte *view = b.direct_map_address(0);
	const auto at = [&](pfn_t pfn) { return reinterpret_cast<std::uintptr_t>(view) + (pfn << page_shift); };

	int status = run_in_child([&]() -> int {
		/*
		 * Fill the VMA table with pages of alternating protection (they
		 * cannot merge) until mmap() refuses: any further split fails.
		 */
		std::vector<void *> fill;
		fill.reserve(1 << 17);
		for (int i = 0;; i++) {
			void *p = ::mmap(nullptr, page_size, (i & 1) ? PROT_READ : PROT_NONE,
					 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (p == MAP_FAILED)
				break;
			if (fill.size() == fill.capacity())
				return 10;
			fill.push_back(p);
		}
		/* One page inside the ro VMA needs two new VMAs: refused. */
		int rc1 = b.set_direct_map_invalid({pages_per_chunk + 100, 1});
		/* Covering the rw VMA and part of the ro one merges instead of splitting: allowed. */
		int rc2 = b.set_direct_map_ro({0, pages_per_chunk + 100});
		for (std::size_t i = 0; i < 64; i++)
			::munmap(fill[fill.size() - 1 - i], page_size);
		if (rc1 != -ENOMEM)
			return 11;
		if (rc2 != 0)
			return 12;
		if (b.direct_map_state(pages_per_chunk + 100) != dm_state::ro || b.direct_map_state(0) != dm_state::ro ||
		    b.direct_map_state(2 * pages_per_chunk) != dm_state::rw)
			return 13;
		if (perms_at(at(pages_per_chunk + 100)) != "r--s" || perms_at(at(0)) != "r--s" ||
		    perms_at(at(2 * pages_per_chunk)) != "rw-s")
			return 14;
		/* With VMAs free again the same change succeeds. */
		if (b.set_direct_map_invalid({pages_per_chunk + 100, 1}) != 0 || perms_at(at(pages_per_chunk + 100)) != "---s")
			return 15;
		return 0;
	});
	CHECK_MESSAGE(exited_with(status, 0), "child status ", status);
	/* The child's changes were its own: the parent's view is as before. */
	CHECK(b.direct_map_state(0) == dm_state::rw);
	CHECK(perms_at(at(0)) == "rw-s");
}
