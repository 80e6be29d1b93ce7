// SPDX-License-Identifier: MIT
/*
 * validation/validation_report.h - the side-by-side tables of ua-validate:
 * published or live figure, simulated figure, ratio and verdict per cell,
 * as Markdown, and the same cells as JSON.
 */
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "replay/json.h"
#include "validation/experiments.h"
#include "validation/verdict.h"

namespace ua::validation {

using replay::json_string;

struct goal_tally {
	unsigned pass = 0, fail = 0, not_judged = 0;
	void add(verdict v) { (v == verdict::pass ? pass : v == verdict::fail ? fail : not_judged)++; }
	std::string text() const
	{
		return std::to_string(pass) + " pass, " + std::to_string(fail) + " fail" +
		       (not_judged ? ", " + std::to_string(not_judged) + " not judged" : "");
	}
	bool met() const noexcept { return fail == 0 && pass > 0; }
};

struct validation_tallies {
	goal_tally growth, gib, live;
};

inline std::string signed_text(std::int64_t v) { return (v > 0 ? "+" : "") + std::to_string(v); }

inline std::string kib_of(const backend_stats &s)
{
	return std::to_string(s.directmap_4k_kb) + "/" + std::to_string(s.directmap_2m_kb) + "/" +
	       std::to_string(s.directmap_1g_kb);
}

/* Boot figures: the simulated machine right after boot beside the published one. */
inline std::string boot_table(const std::vector<published_series> &ss)
{
	std::string t = "| kernel | ageing | published DM4k/2M/1G kB at boot | simulated DM4k/2M/1G kB at boot |\n"
			"|---|---|---|---|\n";
	for (const published_series &s : ss) {
		const published_cell *b = published_boot(s.kernel, s.aged);
		std::string pub = b && b->has_figures ? std::to_string(b->dm.dm_4k) + "/" + std::to_string(b->dm.dm_2m) + "/" +
								   std::to_string(b->dm.dm_1g)
						      : "not given";
		t += "| " + std::string(s.kernel) + " | " + (s.aged ? "aged" : "fresh") + " | " + pub + " | " +
		     (s.error.empty() ? kib_of(s.boot) : "error: " + s.error) + " |\n";
	}
	return t;
}

inline std::string published_table(const std::vector<published_series> &ss, validation_tallies &tl)
{
	std::string t = "| kernel | ageing | instances | published DM4k growth kB | simulated | ratio | +-30% | "
			"published 1G splits | simulated | +-1 | sim L2 splits | notes |\n"
			"|---|---|---:|---:|---:|---:|---|---:|---:|---|---:|---|\n";
	for (const published_series &s : ss) {
		for (const published_point &p : s.points) {
			const published_growth g = growth_of(*p.cell);
			const std::int64_t sim_gib = p.since_boot.level3_splits;
			const verdict vg = judge_growth(p.since_boot.dm_4k_kb, g.dm_4k_kb);
			const verdict v1 = judge_gib(sim_gib, g.splits_1g);
			tl.growth.add(vg);
			tl.gib.add(v1);
			std::string note = p.cell->has_figures ? "" : "published: \"no difference\"";
			if (p.failed_allocs || p.failed_footprints)
				note += (note.empty() ? "" : "; ") + std::to_string(p.failed_allocs) + " text and " +
					std::to_string(p.failed_footprints) + " footprint allocations failed (" + p.first_failure + ")";
			t += "| " + std::string(s.kernel) + " | " + (s.aged ? "aged" : "fresh") + " | " +
			     std::to_string(p.cell->instances) + " | " + signed_text(g.dm_4k_kb) + " | " +
			     signed_text(p.since_boot.dm_4k_kb) + " | " +
			     ratio_text(ratio_of(double(p.since_boot.dm_4k_kb), double(g.dm_4k_kb))) + " | " +
			     verdict_name(vg) + " | " + std::to_string(g.splits_1g) + " | " + std::to_string(sim_gib) + " | " +
			     verdict_name(v1) + " | " + signed_text(p.since_boot.level2_splits) + " | " + note + " |\n";
		}
		if (!s.error.empty())
			t += "| " + std::string(s.kernel) + " | " + (s.aged ? "aged" : "fresh") + " | - | | | | | | | | | error: " +
			     s.error + " |\n";
	}
	return t;
}

inline std::string live_table(const std::vector<live_point> &ps, validation_tallies &tl)
{
	std::string t = "| workload | ageing | ops replayed | live L2 splits | simulated | ratio | +-30% | "
			"live L3 splits | simulated | +-30% | live DM4k kB | simulated | at start (live L2/L3) |\n"
			"|---|---|---:|---:|---:|---:|---|---:|---:|---|---:|---:|---|\n";
	for (const live_point &p : ps) {
		const live_row &r = *p.row;
		if (!p.error.empty()) {
			t += "| " + r.workload + " | " + (r.aged ? "aged" : "fresh") + " | | | | | | | | | | | error: " + p.error +
			     " |\n";
			continue;
		}
		const verdict v2 = judge_live(p.run.d.level2_splits, r.level2_splits);
		const verdict v3 = judge_live(p.run.d.level3_splits, r.level3_splits);
		tl.live.add(v2);
		tl.live.add(v3);
		t += "| " + r.workload + " | " + (r.aged ? "aged" : "fresh") + " | " + std::to_string(p.run.ops_done) + " of " +
		     std::to_string(r.ops) + " | " + signed_text(r.level2_splits) + " | " + signed_text(p.run.d.level2_splits) +
		     " | " + ratio_text(ratio_of(double(p.run.d.level2_splits), double(r.level2_splits))) + " | " +
		     verdict_name(v2) + " | " + signed_text(r.level3_splits) + " | " + signed_text(p.run.d.level3_splits) +
		     " | " + verdict_name(v3) + " | " + signed_text(r.dm_4k_kb) + " | " + signed_text(p.run.d.dm_4k_kb) +
		     " | " + std::to_string(r.start_level2) + "/" + std::to_string(r.start_level3) +
		     (r.stopped_by.empty() ? "" : ", stopped: " + r.stopped_by) + " |\n";
	}
	return t;
}

inline std::string delta_json(const sim_delta &d)
{
	return "{\"level2_splits\": " + std::to_string(d.level2_splits) + ", \"level3_splits\": " +
	       std::to_string(d.level3_splits) + ", \"directmap_4k_kb\": " + std::to_string(d.dm_4k_kb) +
	       ", \"directmap_2m_kb\": " + std::to_string(d.dm_2m_kb) + ", \"directmap_1g_kb\": " +
	       std::to_string(d.dm_1g_kb) + "}";
}

inline std::string validation_json(const std::vector<published_series> &ss, const std::vector<live_point> &ps)
{
	std::string j = "{\"published\": [";
	bool first = true;
	for (const published_series &s : ss)
		for (const published_point &p : s.points) {
			const published_growth g = growth_of(*p.cell);
			j += std::string(first ? "" : ", ") + "{\"kernel\": " + json_string(std::string(s.kernel)) +
			     ", \"aged\": " + (s.aged ? "true" : "false") + ", \"instances\": " +
			     std::to_string(p.cell->instances) + ", \"published_dm4k_growth_kb\": " +
			     std::to_string(g.dm_4k_kb) + ", \"published_splits_1g\": " + std::to_string(g.splits_1g) +
			     ", \"sim_since_boot\": " + delta_json(p.since_boot) + ", \"growth\": \"" +
			     verdict_name(judge_growth(p.since_boot.dm_4k_kb, g.dm_4k_kb)) + "\", \"gib\": \"" +
			     verdict_name(judge_gib(p.since_boot.level3_splits, g.splits_1g)) + "\"}";
			first = false;
		}
	j += "], \"live\": [";
	first = true;
	for (const live_point &p : ps) {
		if (!p.error.empty())
			continue;
		j += std::string(first ? "" : ", ") + "{\"workload\": " + json_string(p.row->workload) +
		     ", \"aged\": " + (p.row->aged ? "true" : "false") + ", \"ops_replayed\": " +
		     std::to_string(p.run.ops_done) + ", \"live_level2_splits\": " + std::to_string(p.row->level2_splits) +
		     ", \"live_level3_splits\": " + std::to_string(p.row->level3_splits) + ", \"sim\": " +
		     delta_json(p.run.d) + ", \"level2\": \"" +
		     verdict_name(judge_live(p.run.d.level2_splits, p.row->level2_splits)) + "\", \"level3\": \"" +
		     verdict_name(judge_live(p.run.d.level3_splits, p.row->level3_splits)) + "\"}";
		first = false;
	}
	return j + "]}\n";
}

}  // namespace ua::validation
