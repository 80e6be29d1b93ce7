// SPDX-License-Identifier: MIT
/*
 * Conformance of every mapping backend to the contract in mapping/backend.h:
 * each case runs over every backend in `backends`, and asserts only what the
 * contract promises, so the simulated and the real backend must agree.
 *
 * Adding a backend is one line in `backends` (plus a backend_factory
 * specialization if it is not constructed from a machine size in pages).
 */
#include <doctest/doctest.h>

#include <cstdint>
#include <tuple>

#include <unmapped_alloc/mapping/backend.h>
#include <unmapped_alloc/sim/sim_direct_map.h>
#if __has_include(<unmapped_alloc/mapping/linux_backend.h>)
#include <unmapped_alloc/mapping/linux_backend.h>
#define UA_HAVE_LINUX_BACKEND 1
#endif
#include <support/fault_backend.h>

#include "../child.h"

using ua::dm_state;
using ua::frame_range;
using ua::prot;

namespace {

/* How a test builds a backend of a given machine size. */
template <class B>
struct backend_factory {
	static B make(std::uint64_t pages) { return B(pages); }
};

using backends = std::tuple<ua::sim_direct_map
#ifdef UA_HAVE_LINUX_BACKEND
			    , ua::linux_backend
#endif
			    >;

/* 128 MiB: small enough for a real memfd, large enough for many 2 MiB chunks. */
constexpr std::uint64_t machine_pages = (std::uint64_t{128} << 20) / ua::page_size;
constexpr std::uint64_t chunk_pages = ua::pages_per_chunk;

/* Chunk i as a frame range. Tests use chunks from 8 on, 2 MiB-mapped in every backend. */
constexpr frame_range chunk(std::uint64_t i) { return {i * chunk_pages, chunk_pages}; }

std::uint64_t directmap_sum_kb(const ua::backend_stats &s)
{
	return s.directmap_4k_kb + s.directmap_2m_kb + s.directmap_1g_kb;
}

/* The counters a backend controls; a refused call must leave all of them as they were. */
void check_same_counters(const ua::backend_stats &a, const ua::backend_stats &b)
{
	CHECK(a.directmap_4k_kb == b.directmap_4k_kb);
	CHECK(a.directmap_2m_kb == b.directmap_2m_kb);
	CHECK(a.directmap_1g_kb == b.directmap_1g_kb);
	CHECK(a.direct_map_level2_splits == b.direct_map_level2_splits);
	CHECK(a.direct_map_level3_splits == b.direct_map_level3_splits);
	CHECK(a.direct_map_level2_collapses == b.direct_map_level2_collapses);
	CHECK(a.direct_map_level3_collapses == b.direct_map_level3_collapses);
	CHECK(a.tlb_flushes == b.tlb_flushes);
	CHECK(a.prot_changes == b.prot_changes);
	CHECK(a.aliases == b.aliases);
	CHECK(a.bytes_written == b.bytes_written);
}

}  // namespace

static_assert(ua::mapping_backend<ua::sim_direct_map>);
/* The fault-injecting wrapper (tests/support) is a backend over either backend. */
static_assert(ua::mapping_backend<ua::fault_backend<ua::sim_direct_map>>);
#ifdef UA_HAVE_LINUX_BACKEND
static_assert(ua::mapping_backend<ua::fault_backend<ua::linux_backend>>);
#endif

TEST_CASE_TEMPLATE_DEFINE("direct map: remove, read-only and restore round trips", B, dm_round_trip)
{
	static_assert(ua::mapping_backend<B>);
	B b = backend_factory<B>::make(machine_pages);
	CHECK(b.nr_pages() == machine_pages);
	const frame_range c = chunk(10);
	CHECK(b.direct_map_state(c.pfn) == dm_state::rw);

	REQUIRE(b.set_direct_map_invalid(c) == 0);
	CHECK(b.direct_map_state(c.pfn) == dm_state::invalid);
	CHECK(b.direct_map_state(c.end() - 1) == dm_state::invalid);
	CHECK(b.direct_map_state(c.pfn - 1) == dm_state::rw);
	CHECK(b.direct_map_state(c.end()) == dm_state::rw);
	REQUIRE(b.set_direct_map_default(c) == 0);
	CHECK(b.direct_map_state(c.pfn) == dm_state::rw);
	CHECK(b.direct_map_state(c.end() - 1) == dm_state::rw);

	REQUIRE(b.set_direct_map_ro(c) == 0);
	CHECK(b.direct_map_state(c.pfn + 100) == dm_state::ro);
	REQUIRE(b.set_direct_map_default(c) == 0);
	CHECK(b.direct_map_state(c.pfn + 100) == dm_state::rw);

	/* Single pages inside another chunk. */
	const std::uint64_t p = chunk(12).pfn + 33;
	REQUIRE(b.set_direct_map_invalid({p, 2}) == 0);
	REQUIRE(b.set_direct_map_ro({p + 2, 1}) == 0);
	CHECK(b.direct_map_state(p - 1) == dm_state::rw);
	CHECK(b.direct_map_state(p) == dm_state::invalid);
	CHECK(b.direct_map_state(p + 1) == dm_state::invalid);
	CHECK(b.direct_map_state(p + 2) == dm_state::ro);
	CHECK(b.direct_map_state(p + 3) == dm_state::rw);
	REQUIRE(b.set_direct_map_default({p, 3}) == 0);
	for (std::uint64_t i = 0; i < 3; i++)
		CHECK(b.direct_map_state(p + i) == dm_state::rw);
	/* set_memory_ro() clears write only: a frame out of the direct map stays out. */
	REQUIRE(b.set_direct_map_invalid({p + 1, 1}) == 0);
	REQUIRE(b.set_direct_map_ro({p, 3}) == 0);
	CHECK(b.direct_map_state(p) == dm_state::ro);
	CHECK(b.direct_map_state(p + 1) == dm_state::invalid);
	CHECK(b.direct_map_state(p + 2) == dm_state::ro);
	if constexpr (B::dereferenceable) {
		auto *dm = reinterpret_cast<volatile unsigned char *>(b.direct_map_address(p + 1));
		CHECK(ua_test::child_signal([&] { (void)*dm; }) == SIGSEGV);
	}
	REQUIRE(b.set_direct_map_default({p, 3}) == 0);
	/* The last frame of the machine is as usable as any. */
	REQUIRE(b.set_direct_map_invalid({machine_pages - 1, 1}) == 0);
	CHECK(b.direct_map_state(machine_pages - 1) == dm_state::invalid);
}
TEST_CASE_TEMPLATE_APPLY(dm_round_trip, backends);

TEST_CASE_TEMPLATE_DEFINE("invalid ranges are refused and change nothing", B, invalid_ranges)
{
	B b = backend_factory<B>::make(machine_pages);
	const frame_range c = chunk(9);
	REQUIRE(b.set_direct_map_invalid(c) == 0);
	const ua::backend_stats before = b.stats();
	const frame_range bad[] = {
		{machine_pages, 1},                /* just past the end */
		{machine_pages - 1, 2},            /* straddles the end */
		{c.pfn, machine_pages},            /* starts inside, runs far past */
		{~std::uint64_t{0} - 1, 4},        /* pfn + nr_pages overflows */
	};
	for (const frame_range &r : bad) {
		CAPTURE(r.pfn);
		CAPTURE(r.nr_pages);
		CHECK(b.set_direct_map_invalid(r) == -EINVAL);
		CHECK(b.set_direct_map_default(r) == -EINVAL);
		CHECK(b.set_direct_map_ro(r) == -EINVAL);
		CHECK(b.flush_tlb(r) == -EINVAL);
		CHECK(b.collapse(r) == -EINVAL);
		CHECK(b.release_frames(r) == -EINVAL);
		std::uintptr_t a = 0;
		CHECK(b.map_alias(r, prot::rx, &a) == -EINVAL);
	}
	check_same_counters(b.stats(), before);
	CHECK(b.direct_map_state(c.pfn) == dm_state::invalid);
	CHECK(b.direct_map_state(c.end() - 1) == dm_state::invalid);
	CHECK(b.direct_map_state(machine_pages - 1) == dm_state::rw);
}
TEST_CASE_TEMPLATE_APPLY(invalid_ranges, backends);

TEST_CASE_TEMPLATE_DEFINE("aliases: map, protect and unmap round trips", B, alias_round_trip)
{
	B b = backend_factory<B>::make(machine_pages);
	const std::uint64_t aliases0 = b.stats().aliases;

	std::uintptr_t whole = 0, part = 0;
	REQUIRE(b.map_alias({chunk(8).pfn, 2 * chunk_pages}, prot::rw, &whole) == 0);
	CHECK(whole % ua::chunk_size == 0);  /* a whole number of chunks: 2 MiB aligned */
	REQUIRE(b.map_alias({chunk(11).pfn + 5, 3}, prot::read, &part) == 0);
	CHECK(part % ua::page_size == 0);
	CHECK(part != whole);
	CHECK(b.stats().aliases == aliases0 + 2);

	const std::uint64_t changes0 = b.stats().prot_changes;
	REQUIRE(b.protect_alias(whole, 2 * ua::chunk_size, prot::rx) == 0);
	REQUIRE(b.protect_alias(whole, 2 * ua::chunk_size, prot::read) == 0);
	REQUIRE(b.protect_alias(part, 3 * ua::page_size, prot::rx) == 0);
	CHECK(b.stats().prot_changes == changes0 + 3);

	REQUIRE(b.unmap_alias(part, 3 * ua::page_size) == 0);
	REQUIRE(b.unmap_alias(whole, 2 * ua::chunk_size) == 0);
	CHECK(b.stats().aliases == aliases0);

	/* Space is reusable after unmap. */
	std::uintptr_t again = 0;
	REQUIRE(b.map_alias(chunk(8), prot::rx, &again) == 0);
	CHECK(again % ua::chunk_size == 0);
	REQUIRE(b.unmap_alias(again, ua::chunk_size) == 0);
	CHECK(b.stats().aliases == aliases0);
}
TEST_CASE_TEMPLATE_APPLY(alias_round_trip, backends);

TEST_CASE_TEMPLATE_DEFINE("aliases: unknown or partial aliases are refused", B, alias_unknown)
{
	B b = backend_factory<B>::make(machine_pages);
	std::uintptr_t a = 0;
	REQUIRE(b.map_alias({chunk(8).pfn, 2 * chunk_pages}, prot::rx, &a) == 0);
	const ua::backend_stats before = b.stats();

	CHECK(b.unmap_alias(a + ua::page_size, ua::page_size) == -EINVAL);   /* inside, not the start */
	CHECK(b.unmap_alias(a, ua::chunk_size) == -EINVAL);                  /* covers half of it */
	CHECK(b.unmap_alias(a, 3 * ua::chunk_size) == -EINVAL);              /* runs past it */
	CHECK(b.protect_alias(a + ua::chunk_size, ua::chunk_size, prot::read) == -EINVAL);
	CHECK(b.protect_alias(a, ua::chunk_size, prot::read) == -EINVAL);
	check_same_counters(b.stats(), before);

	REQUIRE(b.unmap_alias(a, 2 * ua::chunk_size) == 0);
	const ua::backend_stats gone = b.stats();
	CHECK(b.unmap_alias(a, 2 * ua::chunk_size) == -EINVAL);              /* double unmap */
	CHECK(b.protect_alias(a, 2 * ua::chunk_size, prot::read) == -EINVAL);
	check_same_counters(b.stats(), gone);
}
TEST_CASE_TEMPLATE_APPLY(alias_unknown, backends);

TEST_CASE_TEMPLATE_DEFINE("W^X: writable and executable at once is refused", B, wx_refused)
{
	B b = backend_factory<B>::make(machine_pages);
	const ua::backend_stats before = b.stats();
	std::uintptr_t a = 0;
	CHECK(b.map_alias(chunk(8), prot::rw | prot::exec, &a) == -EINVAL);
	CHECK(b.map_alias(chunk(8), prot::write | prot::exec, &a) == -EINVAL);
	check_same_counters(b.stats(), before);

	REQUIRE(b.map_alias(chunk(8), prot::rw, &a) == 0);
	const ua::backend_stats mapped = b.stats();
	CHECK(b.protect_alias(a, ua::chunk_size, prot::rw | prot::exec) == -EINVAL);
	check_same_counters(b.stats(), mapped);
	/* Still writable, not executable: the legal flip works. */
	CHECK(b.protect_alias(a, ua::chunk_size, prot::rx) == 0);
	CHECK(b.unmap_alias(a, ua::chunk_size) == 0);
}
TEST_CASE_TEMPLATE_APPLY(wx_refused, backends);

TEST_CASE_TEMPLATE_DEFINE("flush_tlb counts one flush per call", B, flush_count)
{
	B b = backend_factory<B>::make(machine_pages);
	const std::uint64_t f0 = b.stats().tlb_flushes;
	REQUIRE(b.flush_tlb(chunk(8)) == 0);
	REQUIRE(b.flush_tlb({chunk(9).pfn + 1, 1}) == 0);
	REQUIRE(b.flush_tlb({0, machine_pages}) == 0);
	CHECK(b.stats().tlb_flushes == f0 + 3);
	/* A whole-chunk change does not split, so it costs no flush of its own. */
	REQUIRE(b.set_direct_map_invalid(chunk(8)) == 0);
	CHECK(b.stats().tlb_flushes == f0 + 3);
}
TEST_CASE_TEMPLATE_APPLY(flush_count, backends);

TEST_CASE_TEMPLATE_DEFINE("write and fill: arguments validated, bytes counted", B, write_fill)
{
	B b = backend_factory<B>::make(machine_pages);
	const std::uint64_t w0 = b.stats().bytes_written;
	const unsigned char code[64] = {0x90, 0x90, 0xc3};
	REQUIRE(b.write_frames(chunk(8).pfn, 128, code, sizeof code) == 0);
	REQUIRE(b.fill_frames(chunk(8).pfn + 1, 0, ua::trap_byte, ua::page_size) == 0);
	REQUIRE(b.write_frames(machine_pages - 1, ua::page_size - 8, code, 8) == 0);  /* ends at the machine's end */
	CHECK(b.stats().bytes_written == w0 + sizeof code + ua::page_size + 8);

	const ua::backend_stats before = b.stats();
	CHECK(b.write_frames(machine_pages, 0, code, 1) == -EINVAL);                  /* frame outside */
	CHECK(b.write_frames(machine_pages - 1, ua::page_size - 8, code, 9) == -EINVAL); /* runs past the end */
	CHECK(b.write_frames(chunk(8).pfn, 0, nullptr, 4) == -EINVAL);                /* no source */
	CHECK(b.fill_frames(machine_pages, 0, ua::trap_byte, 1) == -EINVAL);
	CHECK(b.fill_frames(machine_pages - 2, ua::page_size, ua::trap_byte, ua::page_size + 1) == -EINVAL);
	check_same_counters(b.stats(), before);
}
TEST_CASE_TEMPLATE_APPLY(write_fill, backends);

TEST_CASE_TEMPLATE_DEFINE("release_frames accepts frames inside the machine", B, release)
{
	B b = backend_factory<B>::make(machine_pages);
	CHECK(b.release_frames(chunk(8)) == 0);
	CHECK(b.release_frames({chunk(9).pfn + 3, 2}) == 0);
	CHECK(b.release_frames({machine_pages - 1, 2}) == -EINVAL);
}
TEST_CASE_TEMPLATE_APPLY(release, backends);

TEST_CASE_TEMPLATE_DEFINE("stats: whole chunks keep large pages, 4 KiB changes split, restoring does not merge", B, split_rules)
{
	B b = backend_factory<B>::make(machine_pages);
	const ua::backend_stats boot = b.stats();
	const std::uint64_t total_kb = directmap_sum_kb(boot);

	/* A whole, aligned chunk leaves the direct map as one large page. */
	REQUIRE(b.set_direct_map_invalid(chunk(8)) == 0);
	REQUIRE(b.flush_tlb(chunk(8)) == 0);
	ua::backend_stats s = b.stats();
	CHECK(s.direct_map_level2_splits == boot.direct_map_level2_splits);
	CHECK(s.prot_changes > boot.prot_changes);
	if (s.directmap_available) {
		CHECK(s.directmap_4k_kb == boot.directmap_4k_kb);
		CHECK(directmap_sum_kb(s) == total_kb);
	}
	REQUIRE(b.set_direct_map_default(chunk(8)) == 0);
	CHECK(b.stats().direct_map_level2_splits == boot.direct_map_level2_splits);

	/* One 4 KiB page inside another chunk splits it. */
	const frame_range page{chunk(10).pfn + 7, 1};
	REQUIRE(b.set_direct_map_invalid(page) == 0);
	const ua::backend_stats split = b.stats();
	CHECK(split.direct_map_level2_splits == boot.direct_map_level2_splits + 1);
	if (split.directmap_available) {
		CHECK(split.directmap_4k_kb == boot.directmap_4k_kb + 2048);
		CHECK(directmap_sum_kb(split) == total_kb);
	}

	/* Restoring does not merge. */
	REQUIRE(b.set_direct_map_default(page) == 0);
	const ua::backend_stats restored = b.stats();
	CHECK(b.direct_map_state(page.pfn) == dm_state::rw);
	CHECK(restored.direct_map_level2_splits == split.direct_map_level2_splits);
	CHECK(restored.direct_map_level2_collapses == boot.direct_map_level2_collapses);
	if (restored.directmap_available) {
		CHECK(restored.directmap_4k_kb == split.directmap_4k_kb);
		CHECK(directmap_sum_kb(restored) == total_kb);
	}

	/*
	 * collapse() never fails on a valid range and changes no frame's state.
	 * Whether it merges is the backend's (no kernel merges on request: the
	 * simulation does only under its proposed collapse_on_restore, the real
	 * backend asks MADV_COLLAPSE); when it does, the figures add up.
	 */
	REQUIRE(b.collapse(chunk(10)) == 0);
	const ua::backend_stats after = b.stats();
	CHECK(b.direct_map_state(page.pfn) == dm_state::rw);
	const std::uint64_t merges = after.direct_map_level2_collapses - restored.direct_map_level2_collapses;
	CHECK(merges <= 1);
	if (after.directmap_available) {
		CHECK(after.directmap_4k_kb == (merges ? boot.directmap_4k_kb : restored.directmap_4k_kb));
		CHECK(directmap_sum_kb(after) == total_kb);
	}
}
TEST_CASE_TEMPLATE_APPLY(split_rules, backends);

TEST_CASE_TEMPLATE_DEFINE("aliases over several runs: mapped in order, queries answer per address", B, alias_runs)
{
	B b = backend_factory<B>::make(machine_pages);
	const std::uint64_t aliases0 = b.stats().aliases;

	/* Four chunks from three scattered runs, out of physical order. */
	const frame_range runs[] = {chunk(20), chunk(9), {chunk(14).pfn, 2 * chunk_pages}};
	std::uintptr_t a = 0;
	REQUIRE(b.map_alias_runs(runs, 3, prot::rw, &a) == 0);
	CHECK(a % ua::chunk_size == 0); /* every run whole chunks: 2 MiB aligned */
	CHECK(b.stats().aliases == aliases0 + 1);

	CHECK(b.alias_pfn(a) == chunk(20).pfn);
	CHECK(b.alias_pfn(a + ua::chunk_size - 1) == chunk(20).end() - 1);
	CHECK(b.alias_pfn(a + ua::chunk_size + 5 * ua::page_size + 17) == chunk(9).pfn + 5);
	CHECK(b.alias_pfn(a + 3 * ua::chunk_size + ua::page_size) == chunk(15).pfn + 1);
	CHECK(b.alias_pfn(a + 4 * ua::chunk_size) == std::nullopt);
	CHECK(b.alias_frames(a + 100) == chunk(20));
	CHECK(b.alias_frames(a + ua::chunk_size) == chunk(9));
	CHECK(b.alias_frames(a + 4 * ua::chunk_size - 1) == runs[2]);
	CHECK(b.alias_prot(a + 3 * ua::chunk_size) == prot::rw);
	if constexpr (B::dereferenceable) {
		/* Each run's frames are seen at its place in the alias. */
		const unsigned char tag[] = {0x11, 0x22, 0x33};
		for (int i = 0; i < 3; i++)
			REQUIRE(b.write_frames(runs[i].pfn + 1, 8, &tag[i], 1) == 0);
		const auto *v = reinterpret_cast<const volatile unsigned char *>(a);
		CHECK(v[ua::page_size + 8] == 0x11);
		CHECK(v[ua::chunk_size + ua::page_size + 8] == 0x22);
		CHECK(v[2 * ua::chunk_size + ua::page_size + 8] == 0x33);
	}

	/* Whole-alias operations name the whole alias; a part of it is refused. */
	const ua::backend_stats before = b.stats();
	CHECK(b.protect_alias(a, ua::chunk_size, prot::read) == -EINVAL);
	CHECK(b.unmap_alias(a + ua::chunk_size, 3 * ua::chunk_size) == -EINVAL);
	CHECK(b.secure_alias(a, 3 * ua::chunk_size) == -EINVAL);
	check_same_counters(b.stats(), before);
	REQUIRE(b.protect_alias(a, 4 * ua::chunk_size, prot::rx) == 0);
	CHECK(b.alias_prot(a + 2 * ua::chunk_size + 9) == prot::rx);
	CHECK(b.stats().prot_changes == before.prot_changes + 1);
	REQUIRE(b.protect_alias(a, 4 * ua::chunk_size, prot::read) == 0);
	REQUIRE(b.secure_alias(a, 4 * ua::chunk_size) == 0);
	CHECK(b.alias_secured(a + 3 * ua::chunk_size));
	REQUIRE(b.unmap_alias(a, 4 * ua::chunk_size) == 0);
	CHECK(b.stats().aliases == aliases0);
	CHECK(b.alias_pfn(a) == std::nullopt);
	CHECK(b.alias_frames(a + ua::chunk_size) == std::nullopt);
	CHECK_FALSE(b.alias_secured(a));

	/* Runs of single pages: page aligned; the same frame may appear twice. */
	const frame_range pages[] = {{chunk(8).pfn + 3, 2}, {chunk(11).pfn, 1}, {chunk(8).pfn + 3, 1}};
	std::uintptr_t p = 0;
	REQUIRE(b.map_alias_runs(pages, 3, prot::read, &p) == 0);
	CHECK(p % ua::page_size == 0);
	CHECK(b.alias_pfn(p + ua::page_size) == chunk(8).pfn + 4);
	CHECK(b.alias_pfn(p + 2 * ua::page_size) == chunk(11).pfn);
	CHECK(b.alias_pfn(p + 3 * ua::page_size) == chunk(8).pfn + 3);
	CHECK(b.alias_pfn(p + 4 * ua::page_size) == std::nullopt);
	REQUIRE(b.unmap_alias(p, 4 * ua::page_size) == 0);

	/* One run is map_alias(). */
	std::uintptr_t one = 0;
	REQUIRE(b.map_alias_runs(runs + 1, 1, prot::rx, &one) == 0);
	CHECK(one % ua::chunk_size == 0);
	CHECK(b.alias_frames(one + 7) == chunk(9));
	REQUIRE(b.unmap_alias(one, ua::chunk_size) == 0);
	CHECK(b.stats().aliases == aliases0);
}
TEST_CASE_TEMPLATE_APPLY(alias_runs, backends);

TEST_CASE_TEMPLATE_DEFINE("aliases over several runs: bad input is refused and maps nothing", B, alias_runs_bad)
{
	B b = backend_factory<B>::make(machine_pages);
	const ua::backend_stats before = b.stats();
	std::uintptr_t a = 0;
	const frame_range good[] = {chunk(8), chunk(9)};
	CHECK(b.map_alias_runs(nullptr, 2, prot::rx, &a) == -EINVAL);
	CHECK(b.map_alias_runs(good, 0, prot::rx, &a) == -EINVAL);
	CHECK(b.map_alias_runs(good, 2, prot::rx, nullptr) == -EINVAL);
	CHECK(b.map_alias_runs(good, 2, prot::rw | prot::exec, &a) == -EINVAL); /* W^X */
	CHECK(b.map_alias_runs(good, 2, prot(8), &a) == -EINVAL);
	const frame_range empty_inside[] = {chunk(8), {chunk(9).pfn, 0}, chunk(10)};
	CHECK(b.map_alias_runs(empty_inside, 3, prot::rx, &a) == -EINVAL);
	const frame_range last_outside[] = {chunk(8), chunk(9), {machine_pages - 1, 2}};
	CHECK(b.map_alias_runs(last_outside, 3, prot::rx, &a) == -EINVAL);
	const frame_range overflow[] = {chunk(8), {~std::uint64_t{0} - 1, 4}};
	CHECK(b.map_alias_runs(overflow, 2, prot::rx, &a) == -EINVAL);
	check_same_counters(b.stats(), before);
	CHECK(b.alias_pfn(ua::sim_module_area::default_base) == std::nullopt);
}
TEST_CASE_TEMPLATE_APPLY(alias_runs_bad, backends);

TEST_CASE_TEMPLATE_DEFINE("aliases over several runs: a failed map leaves nothing behind", B, alias_runs_fault)
{
	ua::fault_backend<B> b(machine_pages);
	const frame_range runs[] = {chunk(12), chunk(8)};
	const ua::backend_stats before = b.stats();
	std::uintptr_t a = 0;
	b.injector().arm(1, ua::fault_bit(ua::fault_op::alias_map));
	CHECK(b.map_alias_runs(runs, 2, prot::rx, &a) == -ENOMEM);
	CHECK(b.injector().fired());
	check_same_counters(b.stats(), before);
	b.injector().disarm();
	REQUIRE(b.map_alias_runs(runs, 2, prot::rx, &a) == 0);
	CHECK(b.alias_pfn(a + ua::chunk_size) == chunk(8).pfn);
	REQUIRE(b.unmap_alias(a, 2 * ua::chunk_size) == 0);
}
TEST_CASE_TEMPLATE_APPLY(alias_runs_fault, backends);

TEST_CASE_TEMPLATE_DEFINE("set_memory: part of an alias, and the direct map follows write, never exec", B, set_memory)
{
	B b = backend_factory<B>::make(machine_pages);
	const frame_range c = chunk(20);
	std::uintptr_t a = 0;
	REQUIRE(b.map_alias(c, prot::rw, &a) == 0);
	const std::uintptr_t pg = ua::page_size;

	/* set_memory_ro() of two pages: those pages and their frames in the direct map only. */
	REQUIRE(b.set_memory(a + 4 * pg, 2 * pg, ua::cpa_op::ro) == 0);
	CHECK(b.alias_prot(a + 3 * pg) == prot::rw);
	CHECK(b.alias_prot(a + 4 * pg) == prot::read);
	CHECK(b.alias_prot(a + 5 * pg + 9) == prot::read);
	CHECK(b.alias_prot(a + 6 * pg) == prot::rw);
	CHECK(b.direct_map_state(c.pfn + 3) == dm_state::rw);
	CHECK(b.direct_map_state(c.pfn + 4) == dm_state::ro);
	CHECK(b.direct_map_state(c.pfn + 5) == dm_state::ro);
	CHECK(b.direct_map_state(c.pfn + 6) == dm_state::rw);
	if constexpr (B::dereferenceable) {
		auto *dm = reinterpret_cast<volatile unsigned char *>(b.direct_map_address(c.pfn + 4));
		CHECK(ua_test::child_signal([&] { (void)*dm; }) == 0);
		CHECK(ua_test::child_signal([&] { *dm = 1; }) == SIGSEGV);
		CHECK(ua_test::child_signal([&] { *reinterpret_cast<volatile unsigned char *>(a + 4 * pg) = 1; }) == SIGSEGV);
		CHECK(ua_test::child_signal([&] { *reinterpret_cast<volatile unsigned char *>(a + 3 * pg) = 1; }) == 0);
	}

	/* set_memory_x() there: the alias becomes executable, the direct map keeps NX (nothing to see but ro). */
	REQUIRE(b.set_memory(a + 4 * pg, 2 * pg, ua::cpa_op::x) == 0);
	CHECK(b.alias_prot(a + 4 * pg) == prot::rx);
	CHECK(b.direct_map_state(c.pfn + 4) == dm_state::ro);

	/* W^X: x on a writable page, rw on an executable one; nothing changes. */
	const ua::backend_stats before = b.stats();
	CHECK(b.set_memory(a + 3 * pg, 2 * pg, ua::cpa_op::x) == -EINVAL);
	CHECK(b.set_memory(a + 4 * pg, pg, ua::cpa_op::rw) == -EINVAL);
	CHECK(b.alias_prot(a + 3 * pg) == prot::rw);
	CHECK(b.alias_prot(a + 4 * pg) == prot::rx);
	check_same_counters(b.stats(), before);

	/* set_memory_rox() of the whole alias, then nx and rw back: the direct map ends read-write. */
	REQUIRE(b.set_memory(a, ua::chunk_size, ua::cpa_op::rox) == 0);
	CHECK(b.alias_prot(a) == prot::rx);
	CHECK(b.alias_prot(a + ua::chunk_size - 1) == prot::rx);
	CHECK(b.direct_map_state(c.pfn) == dm_state::ro);
	CHECK(b.direct_map_state(c.end() - 1) == dm_state::ro);
	CHECK(b.direct_map_state(c.end()) == dm_state::rw);
	REQUIRE(b.set_memory(a, ua::chunk_size, ua::cpa_op::nx) == 0);
	REQUIRE(b.set_memory(a, ua::chunk_size, ua::cpa_op::rw) == 0);
	CHECK(b.alias_prot(a + 4 * pg) == prot::rw);
	CHECK(b.direct_map_state(c.pfn + 4) == dm_state::rw);
	CHECK(b.direct_map_state(c.end() - 1) == dm_state::rw);

	/* A frame out of the direct map stays out under ro and rw alike. */
	REQUIRE(b.set_direct_map_invalid({c.pfn + 100, 1}) == 0);
	REQUIRE(b.set_memory(a + 100 * pg, pg, ua::cpa_op::ro) == 0);
	CHECK(b.direct_map_state(c.pfn + 100) == dm_state::invalid);
	REQUIRE(b.set_memory(a + 100 * pg, pg, ua::cpa_op::rw) == 0);
	CHECK(b.direct_map_state(c.pfn + 100) == dm_state::invalid);
	REQUIRE(b.unmap_alias(a, ua::chunk_size) == 0);
}
TEST_CASE_TEMPLATE_APPLY(set_memory, backends);

TEST_CASE_TEMPLATE_DEFINE("set_memory: over several runs, each frame behind its page", B, set_memory_runs)
{
	B b = backend_factory<B>::make(machine_pages);
	const frame_range runs[] = {{chunk(30).pfn + 510, 2}, {chunk(12).pfn, 3}};
	std::uintptr_t a = 0;
	REQUIRE(b.map_alias_runs(runs, 2, prot::rw, &a) == 0);
	/* Pages 1..3: the second frame of run 0 and the first two of run 1. */
	REQUIRE(b.set_memory(a + ua::page_size, 3 * ua::page_size, ua::cpa_op::rox) == 0);
	CHECK(b.direct_map_state(chunk(30).pfn + 510) == dm_state::rw);
	CHECK(b.direct_map_state(chunk(30).pfn + 511) == dm_state::ro);
	CHECK(b.direct_map_state(chunk(12).pfn) == dm_state::ro);
	CHECK(b.direct_map_state(chunk(12).pfn + 1) == dm_state::ro);
	CHECK(b.direct_map_state(chunk(12).pfn + 2) == dm_state::rw);
	CHECK(b.alias_prot(a) == prot::rw);
	CHECK(b.alias_prot(a + 3 * ua::page_size) == prot::rx);
	CHECK(b.alias_prot(a + 4 * ua::page_size) == prot::rw);
	REQUIRE(b.unmap_alias(a, 5 * ua::page_size) == 0);
}
TEST_CASE_TEMPLATE_APPLY(set_memory_runs, backends);

TEST_CASE_TEMPLATE_DEFINE("set_memory: bad input and injected failures change nothing", B, set_memory_bad)
{
	ua::fault_backend<B> b(machine_pages);
	std::uintptr_t a = 0;
	REQUIRE(b.map_alias({chunk(16).pfn, 2 * chunk_pages}, prot::rw, &a) == 0);
	const ua::backend_stats before = b.stats();
	const std::size_t all = 2 * ua::chunk_size;
	CHECK(b.set_memory(a, 0, ua::cpa_op::ro) == -EINVAL);                       /* empty */
	CHECK(b.set_memory(a + 1, ua::page_size, ua::cpa_op::ro) == -EINVAL);       /* unaligned address */
	CHECK(b.set_memory(a, ua::page_size + 1, ua::cpa_op::ro) == -EINVAL);       /* unaligned size */
	CHECK(b.set_memory(a + ua::page_size, all, ua::cpa_op::ro) == -EINVAL);     /* runs past the alias */
	CHECK(b.set_memory(a - ua::page_size, ua::page_size, ua::cpa_op::ro) == -EINVAL); /* before it */
	CHECK(b.set_memory(a, all, ua::cpa_op(7)) == -EINVAL);                      /* unknown op */
	check_same_counters(b.stats(), before);
	b.injector().arm(1, ua::fault_bit(ua::fault_op::alias_protect));
	CHECK(b.set_memory(a, ua::page_size, ua::cpa_op::ro) == -ENOMEM);
	CHECK(b.injector().fired());
	check_same_counters(b.stats(), before);
	CHECK(b.alias_prot(a) == prot::rw);
	CHECK(b.direct_map_state(chunk(16).pfn) == dm_state::rw);
	REQUIRE(b.unmap_alias(a, all) == 0);
}
TEST_CASE_TEMPLATE_APPLY(set_memory_bad, backends);
