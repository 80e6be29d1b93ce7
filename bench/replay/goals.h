// SPDX-License-Identifier: MIT
/*
 * replay/goals.h - the report's goals, checked on every workload and seed
 * against the best peer on the same seed.
 *
 * For each machine and workload the library ran on, over the seeds (each
 * seed is one aged machine and one workload; every design saw the same):
 *   G1 the library causes no 2 MiB page split (splits_2m == 0);
 *   G2 its 1 GiB splits are at most the best peer's on that seed (the
 *      fewest splits_1g of any other design that ran with no failed
 *      allocation);
 *   G3 its peak chunks are at most 1.05 x lower bound + its spare chunks;
 *   G4 after the drain the direct map is whole again (DirectMap as before);
 *   G5 real backend: its random-read ratio is at most 1.05.
 * A goal is met when it holds on every seed. A run of the library with a
 * failed allocation meets none of them on that seed: it did not do the
 * work the figures are about (its failures and their first reason are in
 * the figure). Each line gives the seeds met and, for G1-G3, the library's
 * figure and the best peer's as ranges and the ratio to the best peer,
 * seed by seed, as a range (stats.h).
 */
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "allocators.h"
#include "stats.h"

namespace ua::replay {

struct goal_line {
	std::string goal, machine, workload, figure;
	bool met = false;
	std::size_t seeds = 0, seeds_met = 0;
};

namespace detail {

/* One goal over the seeds: holds(run, seed) says whether the seed meets it. */
template <class Holds>
goal_line check_seeds(const char *goal, const run_group &lib, Holds holds)
{
	goal_line g{goal, lib.machine, lib.workload, {}, false, 0, 0};
	std::string failed;
	for (const run_result *r : lib.ran()) {
		g.seeds++;
		if (r->failed_allocs > 0) {
			if (failed.empty())
				failed = "; seed " + std::to_string(r->seed) + ": " + std::to_string(r->failed_allocs) +
					 " failed allocations (" + r->first_failure + ")";
			continue;
		}
		g.seeds_met += holds(*r);
	}
	g.met = g.seeds > 0 && g.seeds_met == g.seeds;
	g.figure = "met on " + std::to_string(g.seeds_met) + " of " + std::to_string(g.seeds) + " seeds" + failed;
	return g;
}

inline std::string versus_best(const run_group &lib, const std::vector<const run_group *> &others, const figure &f)
{
	std::vector<double> mine, best, ratio;
	std::string names;
	for (const best_at_seed &b : against_best(lib, others, f)) {
		mine.push_back(b.mine);
		if (!b.have_best)
			continue;
		best.push_back(b.best);
		ratio.push_back(ratio_of(b.mine, b.best));
		if (names.find(b.best_name) == std::string::npos)
			names += (names.empty() ? "" : "/") + b.best_name;
	}
	std::string s = "; " + lib.allocator + " " + range_text(range_of(mine), f.fmt);
	if (best.empty())
		return s + ", no peer ran without failures";
	return s + ", best peer (" + names + ") " + range_text(range_of(best), f.fmt) + ", ratio " +
	       range_text(range_of(ratio), "%.2f");
}

}  // namespace detail

inline std::vector<goal_line> evaluate_goals(const std::vector<run_result> &rs)
{
	std::vector<goal_line> out;
	const std::vector<run_group> groups = group_runs(rs);
	for (const run_group &lib : groups) {
		if (!is_library(lib.allocator) || lib.ran().empty())
			continue;
		std::vector<const run_group *> others;
		for (const run_group &g : groups)
			if (&g != &lib && g.machine == lib.machine && g.workload == lib.workload && !is_library(g.allocator))
				others.push_back(&g);
		const run_result &first = *lib.ran().front();
		auto add = [&](goal_line g, const std::string &extra) {
			g.figure += extra;
			out.push_back(std::move(g));
		};
		auto best_of = [&](const run_result &r, const figure &f, double &best) {
			bool have = false;
			for (const run_group *g : others)
				if (const run_result *y = g->at_seed(r.seed); y && y->failed_allocs == 0)
					if (!have || f.of(*y) < best)
						best = f.of(*y), have = true;
			return have;
		};
		if (first.after.directmap_available)
			add(detail::check_seeds("G1 no 2 MiB page split", lib, [](const run_result &r) { return r.splits_2m == 0; }),
			    detail::versus_best(lib, others, *find_figure("splits_2m")));
		const figure &g1 = *find_figure("splits_1g");
		add(detail::check_seeds("G2 1 GiB splits <= the best peer's", lib,
					[&](const run_result &r) {
						double best = 0;
						return !best_of(r, g1, best) || double(r.splits_1g) <= best;
					}),
		    detail::versus_best(lib, others, g1));
		char bound[160];
		std::snprintf(bound, sizeof bound, "; bound 1.05 x %s + %llu spare",
			      range_text(lib.of("lower_bound_chunks")).c_str(), (unsigned long long)first.spare_chunks);
		add(detail::check_seeds("G3 peak chunks <= 1.05 x lower bound + spares", lib,
					[](const run_result &r) {
						return double(r.peak_chunks) <=
						       1.05 * double(r.lower_bound_chunks) + double(r.spare_chunks);
					}),
		    detail::versus_best(lib, others, *find_figure("peak_chunks")) + bound);
		if (first.drained.directmap_available)
			add(detail::check_seeds("G4 direct map whole again after the drain", lib,
						[](const run_result &r) { return r.whole_after_drain; }),
			    "");
		if (first.backend == "real" && first.read_ns_intact > 0)
			add(detail::check_seeds("G5 random-read ratio <= 1.05 of an intact direct map", lib,
						[](const run_result &r) { return r.read_ns_ratio <= 1.05; }),
			    "; " + range_text(lib.of("read_ns_ratio"), "%.3f"));
	}
	return out;
}

inline std::size_t goals_missed(const std::vector<goal_line> &gs)
{
	std::size_t n = 0;
	for (const auto &g : gs)
		n += !g.met;
	return n;
}

inline std::string goals_markdown(const std::vector<goal_line> &gs)
{
	const std::size_t missed = goals_missed(gs);
	std::string s = "Goals checked: " + std::to_string(gs.size()) + ", met: " + std::to_string(gs.size() - missed) +
			", MISSED: " + std::to_string(missed) + ".\n\n";
	s += "| goal | machine | workload | figure | result |\n| --- | --- | --- | --- | --- |\n";
	for (const auto &g : gs)
		s += "| " + g.goal + " | " + g.machine + " | " + g.workload + " | " + g.figure + " | " +
		     (g.met ? "met" : "**MISSED**") + " |\n";
	return s;
}

inline std::string goals_text(const std::vector<goal_line> &gs)
{
	std::string s;
	for (const auto &g : gs)
		if (!g.met)
			s += "MISSED  " + g.goal + "  [" + g.machine + " " + g.workload + "]  " + g.figure + "\n";
	const std::size_t missed = goals_missed(gs);
	s += "goals: " + std::to_string(gs.size() - missed) + " of " + std::to_string(gs.size()) + " met" +
	     (missed ? ", " + std::to_string(missed) + " MISSED (listed above)" : "") + "\n";
	return s;
}

}  // namespace ua::replay
