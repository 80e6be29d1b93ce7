// SPDX-License-Identifier: MIT
/*
 * rounds.h - two allocators timed side by side, in alternating rounds.
 *
 * Both allocators hold their live sets at once and take turns on the same
 * operation sequence: round r runs the next steps of the sequence on one,
 * then the same steps on the other (who goes first alternates). A slow spell
 * of the shared machine then falls on both, and each round's ratio compares
 * two runs a few milliseconds apart; the result is the median over the
 * rounds, with the range of the per-round ratios beside it.
 *
 * Each turn first runs a tenth of its steps untimed: a turn that follows the
 * other allocator's finds its own metadata evicted from L1/L2, and without
 * the warm-up whoever went second in a round paid ~25 ns/op more at 100 K
 * live allocations (arena_bench, 20 rounds, 2026-11-22).
 *
 * A heap here has `std::uintptr_t alloc(std::size_t)` (0 on failure) and
 * `void free(std::uintptr_t)`. A step frees a random live allocation and
 * allocates a new one in its place.
 */
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "workload/bpf_size_mix.h"

namespace ua::bench {

/* The initial live set, then one new allocation and one victim per steady-state step. */
struct step_sequence {
	std::vector<std::size_t> fill, sizes, victims;
};

inline step_sequence make_bpf_sequence(std::size_t live, std::size_t steps, std::uint64_t seed)
{
	std::mt19937_64 rng(seed);
	step_sequence s;
	s.fill.reserve(live);
	for (std::size_t i = 0; i < live; i++)
		s.fill.push_back(ua::workload::bpf_size(rng));
	s.sizes.reserve(steps);
	s.victims.reserve(steps);
	for (std::size_t i = 0; i < steps; i++) {
		s.sizes.push_back(ua::workload::bpf_size(rng));
		s.victims.push_back(std::size_t(rng() % live));
	}
	return s;
}

/* One allocator walking one sequence. */
template <class Heap>
class turns {
public:
	turns(Heap &h, const step_sequence &s, const char *who) : h_(h), s_(s), who_(who), table_(s.fill.size()) {}

	void fill()
	{
		for (std::size_t i = 0; i < table_.size(); i++)
			if (!(table_[i] = h_.alloc(s_.fill[i])))
				fail("allocation failed while filling");
	}
	/* warm untimed steps, then n timed ones; ns per operation (one alloc or one free). */
	double turn(std::size_t warm, std::size_t n)
	{
		run(warm);
		auto t0 = std::chrono::steady_clock::now();
		run(n);
		auto t1 = std::chrono::steady_clock::now();
		return std::chrono::duration<double, std::nano>(t1 - t0).count() / double(2 * n);
	}
	void drain()
	{
		for (std::uintptr_t p : table_)
			h_.free(p);
		table_.clear();
	}

private:
	void run(std::size_t n)
	{
		std::size_t end = next_ + n;
		if (end > s_.sizes.size())
			fail("sequence too short");
		for (std::size_t i = next_; i < end; i++) {
			std::size_t v = s_.victims[i];
			h_.free(table_[v]);
			if (!(table_[v] = h_.alloc(s_.sizes[i])))
				fail("allocation failed in steady state");
		}
		next_ = end;
	}
	[[noreturn]] void fail(const char *what)
	{
		std::fprintf(stderr, "%s: %s\n", who_, what);
		std::exit(1);
	}

	Heap &h_;
	const step_sequence &s_;
	const char *who_;
	std::vector<std::uintptr_t> table_;
	std::size_t next_ = 0;
};

inline double median(std::vector<double> v)
{
	std::sort(v.begin(), v.end());
	std::size_t n = v.size();
	return n == 0 ? 0.0 : n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* What alternate() measured: medians of each side's ns/op, and of the per-round ratios a/b. */
struct side_by_side {
	double a_ns = 0, b_ns = 0, ratio = 0, ratio_lo = 0, ratio_hi = 0;
};

/* Steps each turn runs untimed before its timed steps. */
inline std::size_t warm_steps(std::size_t steps, std::size_t rounds) { return steps / rounds / 10; }

/* Steps a sequence needs for alternate(steps, rounds). */
inline std::size_t sequence_steps(std::size_t steps, std::size_t rounds)
{
	return steps + rounds * warm_steps(steps, rounds);
}

/* steps timed steady-state steps for each of a and b (already filled), in rounds. */
template <class A, class B>
side_by_side alternate(turns<A> &a, turns<B> &b, std::size_t steps, std::size_t rounds)
{
	std::size_t warm = warm_steps(steps, rounds);
	std::vector<double> a_ns, b_ns, ratio;
	for (std::size_t r = 0; r < rounds; r++) {
		std::size_t n = steps / rounds + (r < steps % rounds);
		double x, y;
		if (r % 2) {
			y = b.turn(warm, n);
			x = a.turn(warm, n);
		} else {
			x = a.turn(warm, n);
			y = b.turn(warm, n);
		}
		a_ns.push_back(x);
		b_ns.push_back(y);
		ratio.push_back(x / y);
	}
	side_by_side s;
	s.a_ns = median(a_ns);
	s.b_ns = median(b_ns);
	s.ratio = median(ratio);
	s.ratio_lo = *std::min_element(ratio.begin(), ratio.end());
	s.ratio_hi = *std::max_element(ratio.begin(), ratio.end());
	return s;
}

}  // namespace ua::bench
