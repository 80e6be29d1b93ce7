// SPDX-License-Identifier: MIT
/*
 * replay/summary.h - report/summary.md: the command, the wall time, the
 * summary figure of each machine, the goals, and per machine and workload
 * the table over seeds, the comparison of the library with each other
 * design, the plots of the first seed, and the notes of runs not made or
 * with failed allocations.
 */
#pragma once

#include <algorithm>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "goals.h"
#include "report.h"
#include "stats.h"

namespace ua::replay {

/* File-name part of a machine's summary figure. */
inline std::string summary_svg_name(const std::string &machine) { return "summary_" + slug(machine) + ".svg"; }

/* What one run's notes say in the report: not run, or failed allocations with the first reason. */
inline std::string run_note(const run_result &r)
{
	if (!r.ran)
		return r.note;
	if (r.failed_allocs)
		return std::to_string(r.failed_allocs) + " failed allocations, first: " + r.first_failure;
	return r.first_failure;
}

inline std::string summary_markdown(const std::vector<run_result> &rs, const std::vector<goal_line> &goals,
				    const std::string &command, const std::string &date, double seconds,
				    unsigned workers)
{
	const auto groups = group_runs(rs);
	std::string s = "# ua-replay report\n\n";
	std::vector<std::string> machines;
	for (const run_group &g : groups)
		if (std::find(machines.begin(), machines.end(), g.machine) == machines.end())
			machines.push_back(g.machine);
	s += "Summary figures (2 MiB splits, 1 GiB splits, peak chunks over the lower bound; one bar group per "
	     "workload, medians with min-max over the seeds):";
	for (const auto &m : machines)
		s += " [" + m + "](" + summary_svg_name(m) + ")";
	s += "\n\n";
	s += "Command: `" + command + "`  \nDate: " + date + "  \n";
	char t[96];
	std::snprintf(t, sizeof t, "Wall time: %.1f s, %zu runs on %u workers\n\n", seconds, rs.size(), workers);
	s += t;
	s += "Every figure is defined in docs/benchmarks.md. Each run uses a fresh machine of its setup; seed s ages "
	     "the machine and generates the workload with s, the same for every allocator. A cell is the median "
	     "(min-max) over the seeds that ran. Two designs are called different only when their ranges do not "
	     "overlap. \"After the workload\" means before the drain; `drained ch` and `whole` are after every "
	     "allocation was freed and the allocator's drain() ran. A peer labelled NAME@X.Y follows release X.Y: "
	     "the release the workload's listing came from, beside the newest.\n\n";
	s += "## Goals\n\n" + goals_markdown(goals) + "\n";
	std::string machine;
	for (std::size_t i = 0; i < groups.size();) {
		const run_group &f = groups[i];
		std::vector<const run_group *> here;
		for (; i < groups.size() && groups[i].machine == f.machine && groups[i].workload == f.workload; i++)
			here.push_back(&groups[i]);
		if (f.machine != machine) {
			machine = f.machine;
			s += "## Machine " + machine + "\n\n![summary](" + summary_svg_name(machine) + ")\n\n";
			const run_result &r = *f.runs.front();
			if (r.backend == "real" && r.ran && !r.after.directmap_available)
				s += "DirectMap figures unavailable: " + r.after.unavailable_reason + "\n\n";
		}
		const run_result &r0 = *f.runs.front();
		s += "### " + f.workload + "\n\n";
		char b[200];
		std::snprintf(b, sizeof b, "%zu ops (seed %llu), peak live %llu bytes, lower bound %llu chunks.\n\n", r0.ops,
			      (unsigned long long)r0.seed, (unsigned long long)r0.peak_live_bytes,
			      (unsigned long long)r0.lower_bound_chunks);
		s += b;
		s += markdown_table(here) + "\n";
		if (std::string c = comparison_table(here); !c.empty())
			s += "The library against each design, seed by seed (ratio median (min-max); verdict by the "
			     "no-overlap rule):\n\n" + c + "\n";
		const std::string base = slug(f.machine + "_" + f.workload);
		s += "![direct map](" + base + "_directmap.svg) ![chunks](" + base + "_chunks.svg) (first seed)\n\n";
		for (const run_group *g : here) {
			std::set<std::string> seen;
			for (const run_result *r : g->runs) {
				std::string n = run_note(*r);
				if (!n.empty() && seen.insert(n).second)
					s += "- " + g->allocator + " (seed " + std::to_string(r->seed) + "): " + n + "\n";
			}
		}
		s += "\n";
	}
	return s;
}

}  // namespace ua::replay
