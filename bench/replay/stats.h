// SPDX-License-Identifier: MIT
/*
 * replay/stats.h - figures over seeds: median, min and max, the ratio of two
 * designs with its range, and when a difference is called one.
 *
 * Every run of a plan is repeated over --seeds N seeds (ageing and workload
 * seed alike, ua_replay.cpp): a group is the runs of one (machine, workload,
 * allocator) over those seeds. A figure of a group is a range: its median
 * (the mean of the middle two for an even count), min and max over the seeds.
 *
 * A ratio of two designs is taken seed by seed (both ran on the same aged
 * machine and the same workload) and then summarised as a range; 0 / 0 is 1
 * (the same) and x / 0 is infinite. Two designs differ on a figure only when
 * their ranges do not overlap (differs()); otherwise they are "the same
 * within the seeds", whatever the medians say.
 */
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "run_result.h"

namespace ua::replay {

struct range {
	double median = 0, min = 0, max = 0;
	std::size_t n = 0; /* values it summarises; 0: none */
};

inline range range_of(std::vector<double> v)
{
	range r;
	r.n = v.size();
	if (v.empty())
		return r;
	std::sort(v.begin(), v.end());
	r.min = v.front();
	r.max = v.back();
	const std::size_t h = v.size() / 2;
	r.median = v.size() % 2 ? v[h] : (v[h - 1] + v[h]) / 2;
	return r;
}

/* Whether two ranges share a value: if they do, the two are not called different. */
constexpr bool overlaps(const range &a, const range &b) noexcept { return !(a.max < b.min || b.max < a.min); }

/* -1: a is below b on every seed's range, +1 above, 0: the ranges overlap (no difference). */
constexpr int differs(const range &a, const range &b) noexcept
{
	return a.max < b.min ? -1 : b.max < a.min ? 1 : 0;
}

/* a / b seed by seed, 0 / 0 = 1, x / 0 = infinity. */
constexpr double ratio_of(double a, double b) noexcept
{
	if (b == 0)
		return a == 0 ? 1.0 : std::numeric_limits<double>::infinity();
	return a / b;
}

/* "3 (2-5)", or "3" when every seed gave 3; "inf" for infinity. */
inline std::string range_text(const range &r, const char *fmt = "%.0f")
{
	auto one = [&](double v) {
		if (std::isinf(v))
			return std::string("inf");
		char b[48];
		std::snprintf(b, sizeof b, fmt, v);
		return std::string(b);
	};
	if (r.n == 0)
		return "-";
	if (r.min == r.max)
		return one(r.median);
	return one(r.median) + " (" + one(r.min) + "-" + one(r.max) + ")";
}

/* A figure of a run, by name: what the tables, JSON and goals summarise. */
struct figure {
	const char *name;
	double (*of)(const run_result &);
	const char *fmt;
};

inline constexpr figure figures[] = {
	{"peak_chunks", [](const run_result &r) { return double(r.peak_chunks); }, "%.0f"},
	{"final_chunks", [](const run_result &r) { return double(r.final_chunks); }, "%.0f"},
	{"drained_chunks", [](const run_result &r) { return double(r.drained_chunks); }, "%.0f"},
	{"lower_bound_chunks", [](const run_result &r) { return double(r.lower_bound_chunks); }, "%.0f"},
	{"chunks_over_bound",
	 [](const run_result &r) { return ratio_of(double(r.peak_chunks), double(r.lower_bound_chunks)); }, "%.2f"},
	{"splits_2m", [](const run_result &r) { return double(r.splits_2m); }, "%.0f"},
	{"splits_1g", [](const run_result &r) { return double(r.splits_1g); }, "%.0f"},
	{"prot_changes", [](const run_result &r) { return double(r.prot_changes); }, "%.0f"},
	{"tlb_flushes", [](const run_result &r) { return double(r.tlb_flushes); }, "%.0f"},
	{"ns_per_op", [](const run_result &r) { return r.ns_per_op; }, "%.0f"},
	{"metadata_bytes", [](const run_result &r) { return double(r.metadata_bytes); }, "%.0f"},
	{"failed_allocs", [](const run_result &r) { return double(r.failed_allocs); }, "%.0f"},
	{"read_ns_ratio", [](const run_result &r) { return r.read_ns_ratio; }, "%.3f"},
};

inline const figure *find_figure(const std::string &name)
{
	for (const figure &f : figures)
		if (name == f.name)
			return &f;
	return nullptr;
}

/* The runs of one (machine, workload, allocator) over the seeds, in seed order. */
struct run_group {
	std::string machine, workload, allocator;
	std::vector<const run_result *> runs; /* every seed, ran or not */

	std::vector<const run_result *> ran() const
	{
		std::vector<const run_result *> v;
		for (const run_result *r : runs)
			if (r->ran)
				v.push_back(r);
		return v;
	}
	range of(const figure &f) const
	{
		std::vector<double> v;
		for (const run_result *r : ran())
			v.push_back(f.of(*r));
		return range_of(v);
	}
	range of(const char *name) const { return of(*find_figure(name)); }
	const run_result *at_seed(std::uint64_t seed) const
	{
		for (const run_result *r : runs)
			if (r->seed == seed && r->ran)
				return r;
		return nullptr;
	}
	std::size_t failed_runs() const
	{
		std::size_t n = 0;
		for (const run_result *r : runs)
			n += r->ran && r->failed_allocs > 0;
		return n;
	}
};

/* Groups in the order their first run appears (the plan's order). */
inline std::vector<run_group> group_runs(const std::vector<run_result> &rs)
{
	std::vector<run_group> out;
	std::map<std::tuple<std::string, std::string, std::string>, std::size_t> at;
	for (const run_result &r : rs) {
		auto key = std::make_tuple(r.machine, r.workload, r.allocator);
		auto [it, fresh] = at.emplace(key, out.size());
		if (fresh)
			out.push_back({r.machine, r.workload, r.allocator, {}});
		out[it->second].runs.push_back(&r);
	}
	return out;
}

/*
 * a's figure over b's, seed by seed, over the seeds both ran: the range of
 * the ratios. n == 0 when they share no seed.
 */
inline range ratio_range(const run_group &a, const run_group &b, const figure &f)
{
	std::vector<double> v;
	for (const run_result *x : a.ran())
		if (const run_result *y = b.at_seed(x->seed))
			v.push_back(ratio_of(f.of(*x), f.of(*y)));
	return range_of(v);
}

/*
 * The best of `others` on the figure at each seed (the lowest value among
 * those that ran without a failed allocation), over a's seeds: for each seed
 * a's value and the best's, and the best's name.
 */
struct best_at_seed {
	std::uint64_t seed = 0;
	double mine = 0, best = 0;
	std::string best_name;
	bool have_best = false;
};

inline std::vector<best_at_seed> against_best(const run_group &a, const std::vector<const run_group *> &others,
					      const figure &f)
{
	std::vector<best_at_seed> out;
	for (const run_result *x : a.ran()) {
		best_at_seed b;
		b.seed = x->seed;
		b.mine = f.of(*x);
		for (const run_group *g : others) {
			const run_result *y = g->at_seed(x->seed);
			if (!y || y->failed_allocs > 0)
				continue;
			const double v = f.of(*y);
			if (!b.have_best || v < b.best) {
				b.best = v;
				b.best_name = g->allocator;
				b.have_best = true;
			}
		}
		out.push_back(b);
	}
	return out;
}

}  // namespace ua::replay
