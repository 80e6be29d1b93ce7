// SPDX-License-Identifier: MIT
/*
 * Shared pieces of the peer tests: the two machines every test runs on
 * (a 4 GiB simulated one, a 64 MiB real one), whole-machine checks, a
 * simulated backend that fails on demand, and a forked-child runner.
 */
#pragma once

#include "child.h"

#include <doctest/doctest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <thread>
#include <vector>
#include <string>
#include <type_traits>

#include <unmapped_alloc/phys.h>
#include <unmapped_alloc/sim.h>

namespace peer_test {

using namespace ua;

template <class B>
struct machine_size;
template <>
struct machine_size<sim_direct_map> {
	static constexpr std::uint64_t pages = std::uint64_t{4} << 18; /* 4 GiB */
};
template <>
struct machine_size<linux_backend> {
	static constexpr std::uint64_t pages = std::uint64_t{64} << 8; /* 64 MiB */
};

template <class B>
std::unique_ptr<machine<B>> make_machine()
{
	auto m = std::make_unique<machine<B>>(machine_size<B>::pages);
	if constexpr (std::is_same_v<B, linux_backend>)
		REQUIRE_MESSAGE(m->backend.ok(), "linux_backend: ", m->backend.init_step());
	return m;
}

/* Every frame of the machine is mapped read-write in the direct map: "" or the first that is not. */
template <class B>
std::string direct_map_all_rw(const machine<B> &m)
{
	for (pfn_t p = 0; p < m.nr_pages(); p++)
		if (m.backend.direct_map_state(p) != dm_state::rw)
			return "frame " + std::to_string(p) + " is not rw";
	return {};
}

/* The frames of the alias containing addr; fails the test when there is none. */
template <class B>
frame_range frames_of(const machine<B> &m, std::uintptr_t addr)
{
	auto f = m.backend.alias_frames(addr);
	REQUIRE(f.has_value());
	return *f;
}

/* The frame behind each of the first `pages` pages of the alias at addr, in address order. */
template <class B>
std::vector<pfn_t> alias_pfns(const machine<B> &m, std::uintptr_t addr, std::uint64_t pages)
{
	std::vector<pfn_t> out;
	for (std::uint64_t i = 0; i < pages; i++) {
		auto f = m.backend.alias_pfn(addr + (i << page_shift));
		REQUIRE(f.has_value());
		out.push_back(*f);
	}
	return out;
}

/*
 * What changing each of these frames alone would split in a simulated direct
 * map as it is now: every distinct 2 MiB page among them still mapped at
 * 2 MiB or 1 GiB, and every distinct 1 GiB page still mapped at 1 GiB.
 */
struct split_count {
	std::uint64_t s2m = 0, s1g = 0;
};
inline split_count splits_if_changed_one_by_one(const machine<sim_direct_map> &m, std::vector<pfn_t> pfns)
{
	split_count c;
	std::sort(pfns.begin(), pfns.end());
	pfn_t last2m = ~pfn_t{0}, last1g = ~pfn_t{0};
	for (pfn_t p : pfns) {
		const map_level l = m.backend.direct_map_level(p);
		if (p >> chunk_order != last2m && (l == map_level::pmd_2m || l == map_level::pud_1g))
			c.s2m++;
		if (p >> (2 * chunk_order) != last1g && l == map_level::pud_1g)
			c.s1g++;
		last2m = p >> chunk_order;
		last1g = p >> (2 * chunk_order);
	}
	return c;
}

/*
 * Every frame of the machine allocated with order 0 but `keep`, which is left
 * free: the only frames a peer can get. Returns the pinned frames (free them
 * with unpin()).
 */
template <class B>
std::vector<pfn_t> pin_all_but(machine<B> &m, const std::vector<pfn_t> &keep)
{
	std::vector<pfn_t> pinned;
	pinned.reserve(std::size_t(m.nr_pages()));
	typename machine<B>::guard g(m.lock);
	for (;;) {
		auto r = m.pages.alloc_pages(0, gfp_normal_only);
		if (!r)
			break;
		pinned.push_back(r.value);
	}
	REQUIRE(m.pages.nr_free_pages() == 0);
	std::vector<pfn_t> sorted = keep;
	std::sort(sorted.begin(), sorted.end());
	std::vector<pfn_t> still;
	for (pfn_t p : pinned) {
		if (std::binary_search(sorted.begin(), sorted.end(), p))
			REQUIRE(m.pages.free_pages(p, 0) == error::ok);
		else
			still.push_back(p);
	}
	return still;
}
template <class B>
void unpin(machine<B> &m, const std::vector<pfn_t> &pinned)
{
	typename machine<B>::guard g(m.lock);
	for (pfn_t p : pinned)
		REQUIRE(m.pages.free_pages(p, 0) == error::ok);
}

template <class B>
std::uint64_t count_state(const machine<B> &m, frame_range r, dm_state s)
{
	std::uint64_t n = 0;
	for (pfn_t p = r.pfn; p < r.end(); p++)
		n += m.backend.direct_map_state(p) == s;
	return n;
}

/*
 * A simulated backend whose alias mapping or direct-map removal fails when a
 * countdown reaches zero (-1: never), to check that peers unwind.
 */
struct flaky_sim : sim_direct_map {
	static constexpr const char *name = "flaky-sim";
	using sim_direct_map::sim_direct_map;

	static inline int fail_map_alias = -1;
	static inline int fail_dm = -1;

	static bool hit(int &countdown) noexcept { return countdown >= 0 && countdown-- == 0; }

	static inline int fail_default = -1;

	int map_alias(frame_range r, prot p, std::uintptr_t *a, map_flags f = map_flags::none) noexcept
	{
		return hit(fail_map_alias) ? -ENOMEM : sim_direct_map::map_alias(r, p, a, f);
	}
	int map_alias_runs(const frame_range *runs, std::size_t n, prot p, std::uintptr_t *a,
			   map_flags f = map_flags::none) noexcept
	{
		return hit(fail_map_alias) ? -ENOMEM : sim_direct_map::map_alias_runs(runs, n, p, a, f);
	}
	int set_direct_map_default(frame_range r) noexcept
	{
		return hit(fail_default) ? -ENOMEM : sim_direct_map::set_direct_map_default(r);
	}
	static inline int fail_cpa = -1;
	int set_memory(std::uintptr_t a, std::size_t n, cpa_op op) noexcept
	{
		return hit(fail_cpa) ? -ENOMEM : sim_direct_map::set_memory(a, n, op);
	}
	static void reset() noexcept { fail_map_alias = fail_dm = fail_default = fail_cpa = -1; }
	int set_direct_map_invalid(frame_range r) noexcept
	{
		return hit(fail_dm) ? -ENOMEM : sim_direct_map::set_direct_map_invalid(r);
	}
	int set_direct_map_ro(frame_range r) noexcept
	{
		return hit(fail_dm) ? -ENOMEM : sim_direct_map::set_direct_map_ro(r);
	}
};
static_assert(mapping_backend<flaky_sim>);

template <>
struct machine_size<flaky_sim> {
	static constexpr std::uint64_t pages = std::uint64_t{1} << 18; /* 1 GiB */
};

using ua_test::run_in_child;

/*
 * Threads allocating and freeing through one peer at once (the peer's mutex
 * is all that serialises them); returns the number of failed calls.
 */
template <class Peer>
int hammer(Peer &peer, int threads, int ops, std::size_t max_size, std::size_t align)
{
	std::vector<std::thread> ts;
	std::vector<int> failures(std::size_t(threads), 0);
	for (int t = 0; t < threads; t++)
		ts.emplace_back([&, t] {
			std::mt19937_64 rng(std::uint64_t(t) + 1);
			std::vector<std::uintptr_t> live;
			for (int i = 0; i < ops; i++) {
				if (!live.empty() && rng() % 2) {
					failures[std::size_t(t)] += peer.free(live.back()) != error::ok;
					live.pop_back();
					continue;
				}
				auto r = peer.alloc(1 + rng() % max_size, align);
				failures[std::size_t(t)] += !r.ok();
				if (r.ok())
					live.push_back(r.value);
			}
			for (std::uintptr_t p : live)
				failures[std::size_t(t)] += peer.free(p) != error::ok;
		});
	for (auto &t : ts)
		t.join();
	int n = 0;
	for (int f : failures)
		n += f;
	return n;
}

}  // namespace peer_test
