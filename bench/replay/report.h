// SPDX-License-Identifier: MIT
/*
 * replay/report.h - the results as JSON, as a table, and as the markdown
 * summary with the goals section.
 *
 * JSON: an array with one object per (allocator, workload, machine) run; a
 * figure a backend could not read (DirectMap on the real backend when
 * shmem_enabled forbids huge pages) is null, never 0. Keys are listed in
 * docs/benchmarks.md.
 *
 * Goals (evaluate_goals()), each checked per machine and workload where it
 * applies, each line "met" or "MISSED" with its figure:
 *   G1 unmapped peak_chunks <= 1.05 x lower_bound + spare on BPF churn;
 *   G2 unmapped peak_chunks <= 1.10 x lower_bound + spare on module listings;
 *   G3 unmapped peak_chunks <= bpf-prog-pack's and execmem's peak_chunks;
 *   G4 unmapped causes zero 4 KiB splits (splits_2m == 0);
 *   G5 unmapped splits_1g <= ceil(peak_chunks / 512);
 *   G6 after the drain the direct map is whole again (DirectMap as before);
 *   G7 real backend: unmapped read_ns_ratio <= 1.05 (naive's beside it).
 */
#pragma once

#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "replay.h"

namespace ua::replay {

/* ---- JSON -------------------------------------------------------------- */

inline std::string json_string(const std::string &s)
{
	std::string o = "\"";
	for (char c : s) {
		if (c == '"' || c == '\\') {
			o += '\\';
			o += c;
		} else if (static_cast<unsigned char>(c) < 0x20) {
			char b[8];
			std::snprintf(b, sizeof b, "\\u%04x", c);
			o += b;
		} else {
			o += c;
		}
	}
	return o + "\"";
}

inline std::string json_number(double v)
{
	if (!std::isfinite(v))
		return "null";
	char b[48];
	std::snprintf(b, sizeof b, "%.6g", v);
	return b;
}

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

/* ---- goals ------------------------------------------------------------- */

struct goal_line {
	std::string goal, machine, workload, figure;
	bool met = false;
};

inline std::vector<goal_line> evaluate_goals(const std::vector<run_result> &rs)
{
	std::vector<goal_line> out;
	auto find = [&](const run_result &u, const char *alloc) -> const run_result * {
		for (const auto &r : rs)
			if (r.ran && r.allocator == alloc && r.machine == u.machine && r.workload == u.workload)
				return &r;
		return nullptr;
	};
	char f[256];
	for (const auto &u : rs) {
		if (u.allocator != "unmapped" || !u.ran)
			continue;
		auto add = [&](const char *g, bool met) { out.push_back({g, u.machine, u.workload, f, met}); };
		const double lb = double(u.lower_bound_chunks), spare = double(u.spare_chunks);
		if (u.workload_kind == "bpf-churn") {
			std::snprintf(f, sizeof f, "peak %llu chunks, bound 1.05 x %llu + %llu spare = %.2f",
				      (unsigned long long)u.peak_chunks, (unsigned long long)u.lower_bound_chunks,
				      (unsigned long long)u.spare_chunks, 1.05 * lb + spare);
			add("G1 BPF churn: peak chunks <= 1.05 x lower bound + spares", double(u.peak_chunks) <= 1.05 * lb + spare);
		}
		if (u.workload_kind == "modules") {
			std::snprintf(f, sizeof f, "peak %llu chunks, bound 1.10 x %llu + %llu spare = %.2f",
				      (unsigned long long)u.peak_chunks, (unsigned long long)u.lower_bound_chunks,
				      (unsigned long long)u.spare_chunks, 1.10 * lb + spare);
			add("G2 modules: peak chunks <= 1.10 x lower bound + spares", double(u.peak_chunks) <= 1.10 * lb + spare);
		}
		for (const char *peer : {"bpf-prog-pack", "execmem"}) {
			if (const run_result *p = find(u, peer)) {
				std::snprintf(f, sizeof f, "unmapped %llu, %s %llu", (unsigned long long)u.peak_chunks, peer,
					      (unsigned long long)p->peak_chunks);
				add(peer == std::string("execmem") ? "G3 peak chunks <= execmem's"
								   : "G3 peak chunks <= bpf-prog-pack's",
				    u.peak_chunks <= p->peak_chunks);
			}
		}
		if (u.after.directmap_available) {
			std::snprintf(f, sizeof f, "%lld 4 KiB splits", (long long)u.splits_2m);
			add("G4 zero 4 KiB splits (2 MiB pages split)", u.splits_2m == 0);
		}
		const std::uint64_t max1g = (u.peak_chunks + 511) / 512;
		std::snprintf(f, sizeof f, "%lld 1 GiB splits, bound ceil(%llu / 512) = %llu", (long long)u.splits_1g,
			      (unsigned long long)u.peak_chunks, (unsigned long long)max1g);
		add("G5 1 GiB splits <= ceil(peak chunks / 512)", std::uint64_t(u.splits_1g) <= max1g);
		if (u.drained.directmap_available) {
			std::snprintf(f, sizeof f, "drained 4K/2M/1G %llu/%llu/%llu kB, before %llu/%llu/%llu kB",
				      (unsigned long long)u.drained.directmap_4k_kb,
				      (unsigned long long)u.drained.directmap_2m_kb,
				      (unsigned long long)u.drained.directmap_1g_kb,
				      (unsigned long long)u.before.directmap_4k_kb, (unsigned long long)u.before.directmap_2m_kb,
				      (unsigned long long)u.before.directmap_1g_kb);
			add("G6 direct map whole again after the drain", u.whole_after_drain);
		}
		if (u.backend == "real" && u.read_ns_intact > 0) {
			const run_result *nv = find(u, "naive");
			std::snprintf(f, sizeof f, "unmapped %.3f (%.1f / %.1f ns); naive %s", u.read_ns_ratio, u.read_ns_after,
				      u.read_ns_intact, nv ? json_number(nv->read_ns_ratio).c_str() : "not run");
			add("G7 random-read ratio <= 1.05 of an intact direct map", u.read_ns_ratio <= 1.05);
		}
	}
	return out;
}

/* ---- tables -------------------------------------------------------------- */

inline std::string dm_cell(const backend_stats &b, std::uint64_t v)
{
	return b.directmap_available ? std::to_string(v) : std::string("n/a");
}

struct table_row {
	std::vector<std::string> cells;
};

inline std::vector<std::string> table_header(bool real)
{
	std::vector<std::string> h = {"machine", "workload", "allocator", "peak live B", "LB", "peak ch", "final ch",
				      "drained ch", "DM4k kB", "DM2M kB", "DM1G kB", "spl 2M", "spl 1G", "prot",
				      "flushes", "ns/op", "meta B", "failed", "whole"};
	if (real) {
		h.push_back("pmd kB");
		h.push_back("read x");
	}
	return h;
}

inline std::vector<std::string> table_cells(const run_result &r, bool real)
{
	char ns[32];
	std::snprintf(ns, sizeof ns, "%.0f", r.ns_per_op);
	if (!r.ran)
		return {r.machine, r.workload, r.allocator, std::to_string(r.peak_live_bytes),
			std::to_string(r.lower_bound_chunks), "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-",
			"n/a"};
	std::vector<std::string> c = {r.machine,
				      r.workload,
				      r.allocator,
				      std::to_string(r.peak_live_bytes),
				      std::to_string(r.lower_bound_chunks),
				      std::to_string(r.peak_chunks),
				      std::to_string(r.final_chunks),
				      std::to_string(r.drained_chunks),
				      dm_cell(r.after, r.after.directmap_4k_kb),
				      dm_cell(r.after, r.after.directmap_2m_kb),
				      dm_cell(r.after, r.after.directmap_1g_kb),
				      r.after.directmap_available ? std::to_string(r.splits_2m) : "n/a",
				      std::to_string(r.splits_1g),
				      std::to_string(r.prot_changes),
				      std::to_string(r.tlb_flushes),
				      ns,
				      std::to_string(r.metadata_bytes),
				      std::to_string(r.failed_allocs),
				      r.drained.directmap_available ? (r.whole_after_drain ? "yes" : "no") : "n/a"};
	if (real) {
		char rx[32];
		std::snprintf(rx, sizeof rx, "%.3f", r.read_ns_ratio);
		c.push_back(std::to_string(r.after.pmd_mapped_kb));
		c.push_back(rx);
	}
	return c;
}

/* Plain-text table, columns padded. */
inline std::string text_table(const std::vector<run_result> &rs)
{
	std::string out;
	std::string machine;
	std::vector<std::vector<std::string>> rows;
	auto flush = [&]() {
		if (rows.empty())
			return;
		std::vector<std::size_t> w(rows[0].size(), 0);
		for (auto &row : rows)
			for (std::size_t i = 0; i < row.size() && i < w.size(); i++)
				w[i] = std::max(w[i], row[i].size());
		for (auto &row : rows) {
			for (std::size_t i = 0; i < row.size(); i++) {
				std::string cell = row[i];
				cell.resize(std::max(cell.size(), w[i]), ' ');
				out += (i ? " " : "") + cell;
			}
			while (!out.empty() && out.back() == ' ')
				out.pop_back();
			out += "\n";
		}
		out += "\n";
		rows.clear();
	};
	for (const auto &r : rs) {
		if (r.machine != machine) {
			flush();
			machine = r.machine;
			rows.push_back(table_header(r.backend == "real"));
		}
		rows.push_back(table_cells(r, r.backend == "real"));
	}
	flush();
	return out;
}

inline std::string markdown_table(const std::vector<const run_result *> &rs)
{
	if (rs.empty())
		return {};
	const bool real = rs.front()->backend == "real";
	auto h = table_header(real);
	h.erase(h.begin(), h.begin() + 2); /* machine and workload are the section's */
	std::string s = "|";
	for (auto &c : h)
		s += " " + c + " |";
	s += "\n|";
	for (std::size_t i = 0; i < h.size(); i++)
		s += i == 0 ? " --- |" : " ---: |";
	s += "\n";
	for (const run_result *r : rs) {
		auto c = table_cells(*r, real);
		s += "|";
		for (std::size_t i = 2; i < c.size(); i++)
			s += " " + c[i] + " |";
		s += "\n";
	}
	return s;
}

/* File-name-safe form of a label. */
inline std::string slug(const std::string &s)
{
	std::string o;
	for (char c : s)
		o += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.') ? c : '_';
	return o;
}

inline std::string goals_markdown(const std::vector<goal_line> &gs)
{
	std::string s;
	std::size_t missed = 0;
	for (const auto &g : gs)
		missed += !g.met;
	s += "Goals checked: " + std::to_string(gs.size()) + ", met: " + std::to_string(gs.size() - missed) +
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
	std::size_t missed = 0;
	for (const auto &g : gs)
		missed += !g.met;
	s += "goals: " + std::to_string(gs.size() - missed) + " of " + std::to_string(gs.size()) + " met" +
	     (missed ? ", " + std::to_string(missed) + " MISSED (listed above)" : "") + "\n";
	return s;
}

}  // namespace ua::replay
