// SPDX-License-Identifier: MIT
/*
 * replay/report.h - the results as JSON and as tables.
 *
 * results.json: an array with one object per run (allocator, workload,
 * machine, seed); a figure a backend could not read (DirectMap on the real
 * backend when shmem_enabled forbids huge pages) is null, never 0. Keys are
 * listed in docs/benchmarks.md.
 *
 * summary.json (summary_json()): per (machine, workload, allocator) group
 * every figure as {median, min, max, n} over the seeds (stats.h), the
 * library's ratio to each other design seed by seed as a range with the
 * verdict of the no-overlap rule, and the goals (goals.h).
 *
 * Tables: one row per group, every figure "median (min-max)" over the
 * seeds; the comparison table gives the ratios and verdicts.
 */
#pragma once

#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "allocators.h"
#include "goals.h"
#include "json.h"
#include "run_result.h"
#include "stats.h"

namespace ua::replay {

/* ---- JSON (json_string(), json_number(): json.h) ----------------------- */

inline std::string run_json(const run_result &r)
{
	std::string s = "{";
	bool first = true;
	auto key = [&](const char *k) {
		s += first ? "" : ", ";
		first = false;
		s += json_string(k) + ": ";
	};
	auto str = [&](const char *k, const std::string &v) { key(k), s += json_string(v); };
	auto num = [&](const char *k, double v) { key(k), s += json_number(v); };
	auto u64 = [&](const char *k, std::uint64_t v) { key(k), s += std::to_string(v); };
	auto boolean = [&](const char *k, bool v) { key(k), s += v ? "true" : "false"; };
	auto dm = [&](const char *k, const backend_stats &b, std::uint64_t v) {
		key(k);
		s += b.directmap_available ? std::to_string(v) : "null";
	};
	str("allocator", r.allocator);
	str("workload", r.workload);
	str("backend", r.backend);
	str("machine", r.machine);
	u64("seed", r.seed);
	if (!r.release.empty())
		str("release", r.release);
	num("machine_gib", r.machine_gib);
	boolean("aged", r.aged);
	boolean("ran", r.ran);
	if (!r.note.empty())
		str("note", r.note);
	u64("ops", r.ops);
	u64("peak_live_bytes", r.peak_live_bytes);
	u64("lower_bound_chunks", r.lower_bound_chunks);
	if (!r.ran)
		return s + "}";
	u64("peak_chunks", r.peak_chunks);
	u64("final_chunks", r.final_chunks);
	u64("drained_chunks", r.drained_chunks);
	u64("spare_chunks", r.spare_chunks);
	dm("directmap_4k_kb", r.after, r.after.directmap_4k_kb);
	dm("directmap_2m_kb", r.after, r.after.directmap_2m_kb);
	dm("directmap_1g_kb", r.after, r.after.directmap_1g_kb);
	dm("directmap_4k_kb_before", r.before, r.before.directmap_4k_kb);
	dm("directmap_2m_kb_before", r.before, r.before.directmap_2m_kb);
	dm("directmap_1g_kb_before", r.before, r.before.directmap_1g_kb);
	dm("directmap_4k_kb_drained", r.drained, r.drained.directmap_4k_kb);
	dm("directmap_2m_kb_drained", r.drained, r.drained.directmap_2m_kb);
	dm("directmap_1g_kb_drained", r.drained, r.drained.directmap_1g_kb);
	dm("splits_2m", r.after, std::uint64_t(r.splits_2m));
	u64("splits_1g", std::uint64_t(r.splits_1g));
	u64("prot_changes", r.prot_changes);
	u64("tlb_flushes", r.tlb_flushes);
	num("ns_per_op", r.ns_per_op);
	num("seconds", r.seconds);
	u64("metadata_bytes", r.metadata_bytes);
	u64("failed_allocs", r.failed_allocs);
	u64("failed_frees", r.failed_frees);
	if (!r.first_failure.empty())
		str("first_failure", r.first_failure);
	key("whole_after_drain");
	s += r.drained.directmap_available ? (r.whole_after_drain ? "true" : "false") : "null";
	if (r.backend == "real") {
		u64("pmd_mapped_kb", r.after.pmd_mapped_kb);
		u64("pmd_mapped_kb_drained", r.drained.pmd_mapped_kb);
		u64("vma_count", r.after.vma_count);
		num("read_ns_intact", r.read_ns_intact);
		num("read_ns_after", r.read_ns_after);
		num("read_ns_ratio", r.read_ns_ratio);
		num("read_ns_ratio_median", r.read_ns_ratio_median);
		u64("reads_after", r.reads_after);
		if (!r.after.unavailable_reason.empty())
			str("unavailable_reason", r.after.unavailable_reason);
	}
	return s + "}";
}

inline std::string results_json(const std::vector<run_result> &rs)
{
	std::string s = "[\n";
	for (std::size_t i = 0; i < rs.size(); i++)
		s += "  " + run_json(rs[i]) + (i + 1 < rs.size() ? ",\n" : "\n");
	return s + "]\n";
}

/* ---- tables over seeds (stats.h) ---------------------------------------- */

inline std::vector<std::string> group_header(bool real)
{
	std::vector<std::string> h = {"allocator", "release", "seeds", "LB", "peak ch", "peak/LB", "final ch",
				      "drained ch", "spl 2M", "spl 1G", "prot", "flushes", "ns/op", "meta B", "failed",
				      "whole"};
	if (real)
		h.push_back("read x");
	return h;
}

/* One group's row: every figure median (min-max) over the seeds that ran. */
inline std::vector<std::string> group_cells(const run_group &g, bool real)
{
	const auto ran = g.ran();
	std::string release = g.runs.front()->release;
	std::vector<std::string> c = {g.allocator, release.empty() ? "-" : release,
				      std::to_string(ran.size()) + "/" + std::to_string(g.runs.size())};
	if (ran.empty()) {
		c.resize(group_header(real).size(), "-");
		c.back() = "not run: " + g.runs.front()->note;
		return c;
	}
	const bool dm = ran.front()->after.directmap_available;
	auto cell = [&](const char *name) {
		const figure &f = *find_figure(name);
		return range_text(g.of(f), f.fmt);
	};
	std::size_t whole = 0;
	for (const run_result *r : ran)
		whole += r->whole_after_drain;
	c.push_back(cell("lower_bound_chunks"));
	c.push_back(cell("peak_chunks"));
	c.push_back(cell("chunks_over_bound"));
	c.push_back(cell("final_chunks"));
	c.push_back(cell("drained_chunks"));
	c.push_back(dm ? cell("splits_2m") : "n/a");
	c.push_back(cell("splits_1g"));
	c.push_back(cell("prot_changes"));
	c.push_back(cell("tlb_flushes"));
	c.push_back(cell("ns_per_op"));
	c.push_back(cell("metadata_bytes"));
	c.push_back(g.failed_runs() ? cell("failed_allocs") + " in " + std::to_string(g.failed_runs()) + " runs"
				    : std::string("0"));
	c.push_back(ran.front()->drained.directmap_available ? std::to_string(whole) + "/" + std::to_string(ran.size())
							     : "n/a");
	if (real)
		c.push_back(cell("read_ns_ratio"));
	return c;
}

inline std::string pad_rows(const std::vector<std::vector<std::string>> &rows)
{
	std::string out;
	std::vector<std::size_t> w;
	for (auto &row : rows) {
		w.resize(std::max(w.size(), row.size()), 0);
		for (std::size_t i = 0; i < row.size(); i++)
			w[i] = std::max(w[i], row[i].size());
	}
	for (auto &row : rows) {
		std::string line;
		for (std::size_t i = 0; i < row.size(); i++) {
			std::string cell = row[i];
			cell.resize(std::max(cell.size(), w[i]), ' ');
			line += (i ? " " : "") + cell;
		}
		while (!line.empty() && line.back() == ' ')
			line.pop_back();
		out += line + "\n";
	}
	return out;
}

/* Plain-text tables, one per (machine, workload). */
inline std::string text_table(const std::vector<run_result> &rs)
{
	std::string out, at;
	std::vector<std::vector<std::string>> rows;
	for (const run_group &g : group_runs(rs)) {
		const std::string here = g.machine + " " + g.workload;
		const bool real = g.runs.front()->backend == "real";
		if (here != at) {
			if (!rows.empty())
				out += pad_rows(rows) + "\n";
			rows.clear();
			at = here;
			out += here + "\n";
			rows.push_back(group_header(real));
		}
		rows.push_back(group_cells(g, real));
	}
	if (!rows.empty())
		out += pad_rows(rows) + "\n";
	return out;
}

inline std::string markdown_rows(const std::vector<std::string> &h, const std::vector<std::vector<std::string>> &rows)
{
	std::string s = "|";
	for (auto &c : h)
		s += " " + c + " |";
	s += "\n|";
	for (std::size_t i = 0; i < h.size(); i++)
		s += i == 0 ? " --- |" : " ---: |";
	s += "\n";
	for (const auto &r : rows) {
		s += "|";
		for (const auto &c : r)
			s += " " + c + " |";
		s += "\n";
	}
	return s;
}

/* The groups of one (machine, workload) as a markdown table. */
inline std::string markdown_table(const std::vector<const run_group *> &gs)
{
	if (gs.empty())
		return {};
	const bool real = gs.front()->runs.front()->backend == "real";
	std::vector<std::vector<std::string>> rows;
	for (const run_group *g : gs)
		rows.push_back(group_cells(*g, real));
	return markdown_rows(group_header(real), rows);
}

/*
 * The library against each other design of the same (machine, workload):
 * the ratio seed by seed as a range, and "fewer"/"more" only when the two
 * ranges do not overlap (differs()), else "same within the seeds".
 */
inline constexpr const char *comparison_figures[] = {"peak_chunks", "splits_2m", "splits_1g"};

inline std::string verdict(const range &mine, const range &theirs)
{
	switch (differs(mine, theirs)) {
	case -1:
		return "fewer";
	case 1:
		return "more";
	default:
		return "same within the seeds";
	}
}

inline std::string comparison_table(const std::vector<const run_group *> &gs)
{
	const run_group *lib = nullptr;
	for (const run_group *g : gs)
		if (is_library(g->allocator) && !g->ran().empty())
			lib = g;
	if (!lib)
		return {};
	std::vector<std::string> h = {"vs"};
	for (const char *f : comparison_figures) {
		h.push_back(std::string(f) + " ratio");
		h.push_back(f);
	}
	std::vector<std::vector<std::string>> rows;
	for (const run_group *g : gs) {
		if (g == lib || g->ran().empty())
			continue;
		std::vector<std::string> row = {g->allocator};
		for (const char *name : comparison_figures) {
			const figure &f = *find_figure(name);
			row.push_back(range_text(ratio_range(*lib, *g, f), "%.2f"));
			row.push_back(verdict(lib->of(f), g->of(f)));
		}
		rows.push_back(row);
	}
	if (rows.empty())
		return {};
	return markdown_rows(h, rows);
}

/* File-name-safe form of a label. */
inline std::string slug(const std::string &s)
{
	std::string o;
	for (char c : s)
		o += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.') ? c : '_';
	return o;
}

inline std::string range_json(const range &r)
{
	return "{\"median\": " + json_number(r.median) + ", \"min\": " + json_number(r.min) + ", \"max\": " +
	       json_number(r.max) + ", \"n\": " + std::to_string(r.n) + "}";
}

/* The groups, comparisons and goals as one JSON object (summary.json). */
inline std::string summary_json(const std::vector<run_result> &rs, const std::vector<goal_line> &goals,
				const std::string &command)
{
	const auto groups = group_runs(rs);
	std::string s = "{\n  \"command\": " + json_string(command) + ",\n  \"groups\": [\n";
	for (std::size_t i = 0; i < groups.size(); i++) {
		const run_group &g = groups[i];
		const run_result &f = *g.runs.front();
		s += "    {\"machine\": " + json_string(g.machine) + ", \"workload\": " + json_string(g.workload) +
		     ", \"workload_kind\": " + json_string(f.workload_kind) + ", \"backend\": " + json_string(f.backend) +
		     ", \"allocator\": " + json_string(g.allocator) + ", \"release\": " + json_string(f.release) +
		     ", \"library\": " + (is_library(g.allocator) ? "true" : "false") +
		     ", \"seeds\": " + std::to_string(g.runs.size()) + ", \"ran\": " + std::to_string(g.ran().size()) +
		     ", \"failed_runs\": " + std::to_string(g.failed_runs());
		if (g.ran().empty())
			s += ", \"note\": " + json_string(f.note);
		s += ", \"figures\": {";
		bool first = true;
		for (const figure &fig : figures) {
			s += (first ? "" : ", ") + json_string(fig.name) + ": " + range_json(g.of(fig));
			first = false;
		}
		s += "}";
		/* The library against each other design of the same machine and workload. */
		if (is_library(g.allocator)) {
			s += ", \"versus\": {";
			bool firstv = true;
			for (const run_group &o : groups) {
				if (&o == &g || o.machine != g.machine || o.workload != g.workload || o.ran().empty())
					continue;
				s += (firstv ? "" : ", ") + json_string(o.allocator) + ": {";
				firstv = false;
				bool firstf = true;
				for (const char *name : comparison_figures) {
					const figure &fig = *find_figure(name);
					s += (firstf ? "" : ", ") + json_string(name) + ": {\"ratio\": " +
					     range_json(ratio_range(g, o, fig)) + ", \"verdict\": " +
					     json_string(verdict(g.of(fig), o.of(fig))) + "}";
					firstf = false;
				}
				s += "}";
			}
			s += "}";
		}
		s += "}" + std::string(i + 1 < groups.size() ? ",\n" : "\n");
	}
	s += "  ],\n  \"goals\": [\n";
	for (std::size_t i = 0; i < goals.size(); i++) {
		const goal_line &g = goals[i];
		s += "    {\"goal\": " + json_string(g.goal) + ", \"machine\": " + json_string(g.machine) +
		     ", \"workload\": " + json_string(g.workload) + ", \"met\": " + (g.met ? "true" : "false") +
		     ", \"seeds\": " + std::to_string(g.seeds) + ", \"seeds_met\": " + std::to_string(g.seeds_met) +
		     ", \"figure\": " + json_string(g.figure) + "}" + (i + 1 < goals.size() ? ",\n" : "\n");
	}
	return s + "  ]\n}\n";
}

}  // namespace ua::replay
