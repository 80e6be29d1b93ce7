// SPDX-License-Identifier: MIT
/*
 * random.h - the seeded draws the generators make.
 *
 * Every generator owns one std::mt19937_64 seeded with its `seed` parameter;
 * the engine's output sequence is fixed by the C++ standard, and the draws
 * below are written out here rather than taken from <random>'s distributions
 * (whose algorithms each standard library chooses), so a seed names the same
 * workload everywhere. The one exception is bpf_size() from bpf_size_mix.h,
 * which uses std::uniform_real_distribution: BPF churn sequences are the same
 * for a seed with the same standard library (libstdc++ for g++ and clang here).
 */
#pragma once

#include "workload/op.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace ua::workload {

using rng_t = std::mt19937_64;

/* Uniform in [0, n), n > 0, without modulo bias (rejects the short last bucket). */
inline std::uint64_t draw_below(rng_t &rng, std::uint64_t n)
{
	const std::uint64_t limit = UINT64_MAX - UINT64_MAX % n;
	std::uint64_t x;
	do
		x = rng();
	while (x >= limit);
	return x % n;
}

/* Uniform in [0, 1) with 53 random bits. */
inline double draw_unit(rng_t &rng) { return double(rng() >> 11) * 0x1.0p-53; }

inline bool draw_chance(rng_t &rng, double p) { return draw_unit(rng) < p; }

/* Log-uniform in [lo, hi]: lo * (hi/lo)^u, truncated and clamped, as bpf_size_mix.h draws a band. */
inline std::size_t draw_log_uniform(rng_t &rng, std::size_t lo, std::size_t hi)
{
	double v = double(lo) * std::pow(double(hi) / double(lo), draw_unit(rng));
	return std::clamp(std::size_t(v), lo, hi);
}

/* Fisher-Yates with draw_below, so the permutation is fixed by the seed. */
template <class T>
void shuffle_seeded(std::vector<T> &v, rng_t &rng)
{
	for (std::size_t i = v.size(); i > 1; i--)
		std::swap(v[i - 1], v[draw_below(rng, i)]);
}

/* Exponential with the given mean: -mean * ln(1 - u), u uniform in [0, 1). */
inline double draw_exponential(rng_t &rng, double mean) { return -mean * std::log1p(-draw_unit(rng)); }

/*
 * Standard normal by Box-Muller, one value per call (the second is dropped so
 * that a draw consumes exactly two engine outputs): sqrt(-2 ln u1) cos(2 pi u2)
 * with u1 in (0, 1].
 */
inline double draw_normal(rng_t &rng)
{
	const double u1 = 1.0 - draw_unit(rng);
	const double u2 = draw_unit(rng);
	return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

/* Log-normal: median * exp(sigma * Z); its mean is median * exp(sigma^2 / 2). */
inline double draw_lognormal(rng_t &rng, double median, double sigma)
{
	return median * std::exp(sigma * draw_normal(rng));
}

/* Index into weights (non-negative, not all 0) with probability weight / sum. */
template <class W>
std::size_t draw_weighted(rng_t &rng, const W &weights)
{
	double sum = 0;
	for (double w : weights)
		sum += w;
	double x = draw_unit(rng) * sum;
	std::size_t i = 0, last = 0;
	for (double w : weights) {
		if (w > 0) {
			last = i;
			if (x < w)
				return i;
			x -= w;
		}
		i++;
	}
	return last; /* rounding left x at the top */
}

/* Seconds (a double) as whole nanoseconds, clamped at 0. */
inline std::uint64_t to_ns(double seconds) noexcept
{
	return seconds <= 0 ? 0 : std::uint64_t(seconds * 1e9 + 0.5);
}

/*
 * Birth-death step towards a target population: load with probability
 * target / (target + live). At live == target loads and unloads are equally
 * likely, so the population drifts back to the target from either side and
 * fluctuates around it by about sqrt(target).
 */
inline bool draw_load(rng_t &rng, std::size_t live, std::size_t target)
{
	if (live == 0)
		return true;
	return draw_chance(rng, double(target) / double(target + live));
}

/*
 * Ends a generated sequence: cut it to exactly n ops (a prefix of a valid
 * sequence is valid), then, if drain, free whatever is still live in a seeded
 * random order, as processes exiting at unrelated times would.
 */
inline void finish_sequence(std::vector<op> &ops, std::size_t n, bool drain, rng_t &rng)
{
	if (ops.size() > n)
		ops.resize(n);
	if (!drain)
		return;
	std::vector<std::uint64_t> ids = live_ids(ops);
	shuffle_seeded(ids, rng);
	for (std::uint64_t id : ids)
		ops.push_back(op::make_free(id));
}

}  // namespace ua::workload
