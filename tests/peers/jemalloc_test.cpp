// SPDX-License-Identifier: MIT
/*
 * Tests for bench/peers/jemalloc_peer.h (and jemalloc_arena.h) over both
 * backends. jemalloc is linked into this executable only.
 */
#include <doctest/doctest.h>

#include <random>
#include <vector>

#include "peer_fixture.h"
#include "peers/jemalloc_peer.h"
#include <support/machine_lock.h>

using namespace ua;
using namespace ua::peers;
using peer_test::make_machine;

TEST_CASE_TEMPLATE("jemalloc: extents come from 2 MiB chunks out of the direct map; split and merge hooks run", B,
		   sim_direct_map, linux_backend)
{
	auto m = make_machine<B>();
	const std::uint64_t free0 = m->nr_free_pages();
	jemalloc_peer<B> je(*m);
	REQUIRE(je.ok());
	std::vector<std::uintptr_t> live;
	for (std::size_t size : {100, 320, 4000, 20000, 64000}) {
		auto r = je.alloc(size, 64);
		REQUIRE(r.ok());
		CHECK(r.value % 64 == 0);
		live.push_back(r.value);
	}
	auto s = je.stats();
	CHECK(s.pages_held >= pages_per_chunk);
	CHECK(s.pages_held % pages_per_chunk == 0);
	CHECK(s.chunks == s.pages_held / pages_per_chunk);
	CHECK(s.dm_changes == s.chunks); /* one call per 2 MiB block, one flush per hook region */
	CHECK(s.flushes == je.hook_regions().size());
	CHECK(s.live_bytes >= s.requested_bytes);
	CHECK(s.requested_bytes == 100 + 320 + 4000 + 20000 + 64000);
	CHECK(s.metadata_bytes > 0); /* stats.arenas.<i>.base, in jemalloc's own memory */
	CHECK(je.arena().split_calls() > 0);
	for (const auto &[addr, blocks] : je.hook_regions())
		for (const frame_range &blk : blocks)
			CHECK(peer_test::count_state(*m, blk, dm_state::invalid) == blk.nr_pages);
	for (std::uintptr_t p : live)
		CHECK(je.arena().in_hook_memory(reinterpret_cast<void *>(p)));
	for (std::uintptr_t p : live)
		CHECK(je.free(p) == error::ok);
	CHECK(je.arena().merge_calls() > 0); /* freed neighbours coalesce */
	CHECK(je.stats().pages_held == s.pages_held); /* retained, as opt.retain keeps them */

	je.drain();
	s = je.stats();
	CHECK(s.pages_held == 0);
	CHECK(s.chunks == 0);
	CHECK(m->nr_free_pages() == free0);
	CHECK(peer_test::direct_map_all_rw(*m) == "");
	CHECK(m->backend.stats().aliases == 0);
	/* A fresh arena after the drain. */
	auto again = je.alloc(1000, 1);
	REQUIRE(again.ok());
	CHECK(je.stats().pages_held == pages_per_chunk);
}

TEST_CASE_TEMPLATE("jemalloc: requests above 2 MiB take order-9 blocks at one alias, never a larger block", B,
		   sim_direct_map, linux_backend)
{
	auto m = make_machine<B>();
	jemalloc_peer<B> je(*m);
	auto r = je.alloc(3 * chunk_size, 1);
	REQUIRE(r.ok());
	bool found = false;
	for (const auto &[addr, blocks] : je.hook_regions()) {
		std::uint64_t pages = 0;
		for (const frame_range &blk : blocks) {
			CHECK(blk.nr_pages == pages_per_chunk);
			CHECK(ua_test::allocated_order(*m, blk.pfn).value == chunk_order);
			pages += blk.nr_pages;
		}
		found |= pages >= 3 * pages_per_chunk;
	}
	CHECK(found);
	CHECK(je.free(r.value) == error::ok);
}

TEST_CASE_TEMPLATE("jemalloc: bad input and bad frees are refused", B, sim_direct_map, linux_backend)
{
	auto m = make_machine<B>();
	jemalloc_peer<B> je(*m);
	CHECK(je.alloc(0, 1).err == error::zero_size);
	CHECK(je.alloc(64, 24).err == error::bad_alignment);
	CHECK(je.alloc(64, 2 * chunk_size).err == error::bad_alignment);
	auto a = je.alloc(256, 64);
	REQUIRE(a.ok());
	const auto before = je.stats();
	CHECK(je.free(a.value + 8) == error::interior_pointer);
	CHECK(je.free(99) == error::foreign_pointer);
	CHECK(je.stats().live_bytes == before.live_bytes);
	CHECK(je.free(a.value) == error::ok);
	CHECK(je.free(a.value) == error::foreign_pointer); /* double free never reaches dallocx */
}

TEST_CASE("jemalloc: its metadata stays out of hook memory (hook memory unmapped and PROT_NONE)")
{
	auto m = make_machine<linux_backend>();
	/* In a child: a fault there kills the child, not the test run. */
	const int status = peer_test::run_in_child([&] {
		jemalloc_peer<linux_backend> je(*m, {dm_action::invalid, prot::none});
		if (!je.ok())
			return 3;
		std::mt19937_64 rng(5);
		std::vector<std::uintptr_t> live;
		for (int i = 0; i < 6000; i++) {
			if (!live.empty() && rng() % 3 == 0) {
				const std::size_t k = rng() % live.size();
				if (je.free(live[k]) != error::ok)
					return 4;
				live[k] = live.back();
				live.pop_back();
				continue;
			}
			const std::size_t size = 16 + rng() % (rng() % 16 == 0 ? 100000 : 3000);
			auto r = je.alloc(size, std::size_t{1} << (rng() % 7));
			if (!r.ok())
				return 5;
			if (!je.arena().in_hook_memory(reinterpret_cast<void *>(r.value), size))
				return 6;
			live.push_back(r.value);
		}
		for (const auto &[addr, blocks] : je.hook_regions()) {
			if (m->backend.alias_prot(addr) != prot::none)
				return 7;
			for (const frame_range &blk : blocks)
				for (pfn_t p = blk.pfn; p < blk.end(); p++)
					if (m->backend.direct_map_state(p) != dm_state::invalid)
						return 8;
		}
		for (std::uintptr_t p : live)
			if (je.free(p) != error::ok)
				return 9;
		return 0;
	});
	CHECK_MESSAGE(WIFEXITED(status), "child died of signal ", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("jemalloc: concurrent callers are serialised by the peer's lock")
{
	auto m = make_machine<sim_direct_map>();
	const std::uint64_t free0 = m->nr_free_pages();
	{
		jemalloc_peer<sim_direct_map> p(*m);
		CHECK(peer_test::hammer(p, 4, 300, 20000, 16) == 0);
		CHECK(p.stats().live_count == 0);
		p.drain();
		CHECK(p.stats().pages_held == 0);
	}
	CHECK(m->nr_free_pages() == free0);
}
