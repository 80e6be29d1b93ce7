// SPDX-License-Identifier: MIT
/*
 * replay/svg.h - the report's plots, written as plain SVG text (no plotting
 * dependency; any browser shows them).
 *
 * Two plots per (machine, workload):
 *   - direct map: one panel per allocator, DirectMap4k/2M/1G in kB (log
 *     scale, as the three differ by orders of magnitude) against the op
 *     index, from the backend samples taken during the replay; the last
 *     point, a little to the right, is the state after the drain;
 *   - chunks: chunks held by each allocator against the op index, with the
 *     running lower bound ceil(live bytes / 2 MiB) drawn dashed.
 * and one summary figure per machine (summary_plot()): three panels, 2 MiB
 * splits, 1 GiB splits and peak chunks over the lower bound, one bar group
 * per workload, one bar per design in its registry colour, the bar at the
 * median over the seeds and a whisker from min to max. Splits are drawn on
 * a log scale (log10(1 + n)): they run from 0 to tens of thousands.
 */
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "allocators.h"
#include "run_result.h"
#include "stats.h"

namespace ua::replay::svg {

inline std::string escape(const std::string &s)
{
	std::string o;
	for (char c : s) {
		if (c == '<')
			o += "&lt;";
		else if (c == '>')
			o += "&gt;";
		else if (c == '&')
			o += "&amp;";
		else
			o += c;
	}
	return o;
}

inline std::string fmt(const char *f, double a, double b)
{
	char buf[256];
	std::snprintf(buf, sizeof buf, f, a, b);
	return buf;
}

inline std::string kb_label(double kb)
{
	char buf[32];
	if (kb >= 1073741824)
		std::snprintf(buf, sizeof buf, "%g TiB", kb / 1073741824);
	else if (kb >= 1048576)
		std::snprintf(buf, sizeof buf, "%g GiB", kb / 1048576);
	else if (kb >= 1024)
		std::snprintf(buf, sizeof buf, "%g MiB", kb / 1024);
	else
		std::snprintf(buf, sizeof buf, "%g KiB", kb);
	return buf;
}

/* A panel: x in [0, xmax], y mapped by yf into [0, 1]. */
struct panel {
	double x0, y0, w, h, xmax;
	double px(double x) const { return x0 + w * (xmax > 0 ? x / xmax : 0); }
	double py(double f) const { return y0 + h * (1 - std::clamp(f, 0.0, 1.0)); }
};

inline std::string polyline(const std::vector<std::pair<double, double>> &pts, const char *colour, const char *extra = "")
{
	std::string s = "<polyline fill=\"none\" stroke=\"" + std::string(colour) + "\" stroke-width=\"1.5\" " + extra +
			" points=\"";
	for (auto [x, y] : pts)
		s += fmt("%.1f,%.1f ", x, y);
	return s + "\"/>\n";
}

inline std::string text(double x, double y, const std::string &t, const char *anchor = "start", int size = 11)
{
	return fmt("<text x=\"%.1f\" y=\"%.1f\"", x, y) + " font-size=\"" + std::to_string(size) +
	       "\" font-family=\"sans-serif\" text-anchor=\"" + anchor + "\">" + escape(t) + "</text>\n";
}

/* DirectMap 4K/2M/1G through the workload, one panel per allocator. */
inline std::string directmap_plot(const std::string &title, const std::vector<const run_result *> &runs)
{
	const double W = 760, ph = 120, gap = 40, left = 80;
	const double H = 70 + double(runs.size()) * (ph + gap);
	std::string s = fmt("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\">\n", W, H);
	s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
	s += text(10, 20, title, "start", 13);
	s += text(10, 38, "DirectMap through the workload (log scale); the last point is after the drain", "start", 11);
	const char *cols[3] = {"#d7301f", "#1f78b4", "#33a02c"};
	const char *names[3] = {"4k", "2M", "1G"};
	for (int k = 0; k < 3; k++)
		s += "<rect x=\"" + std::to_string(int(W - 300 + k * 100)) + "\" y=\"45\" width=\"10\" height=\"10\" fill=\"" +
		     cols[k] + "\"/>" + text(W - 286 + k * 100, 54, std::string("DirectMap") + names[k], "start", 10);
	double y = 70;
	for (const run_result *r : runs) {
		double xmax = 1, vmax = 1;
		for (const auto &p : r->samples) {
			xmax = std::max(xmax, double(p.op));
			vmax = std::max({vmax, double(p.dm_4k_kb), double(p.dm_2m_kb), double(p.dm_1g_kb)});
		}
		const double lmax = std::ceil(std::log10(vmax));
		panel pn{left, y + 14, W - left - 20, ph - 14, xmax};
		auto fy = [&](double v) { return v < 1 ? 0.0 : std::log10(v) / lmax; };
		s += text(left, y + 8, r->allocator + (r->ran ? "" : " (not run: " + r->note + ")"), "start", 12);
		s += fmt("<rect x=\"%.1f\" y=\"%.1f\"", pn.x0, pn.y0) + fmt(" width=\"%.1f\" height=\"%.1f\"", pn.w, pn.h) +
		     " fill=\"none\" stroke=\"#999\"/>\n";
		/* Ticks at 1 KiB, 1 MiB, 1 GiB, 1 TiB (values are kB). */
		for (double kb = 1; std::log10(kb) <= lmax + 1e-9; kb *= 1024)
			s += text(left - 4, pn.py(std::log10(kb) / lmax) + 4, kb_label(kb), "end", 9);
		s += text(pn.x0 + pn.w, pn.y0 + pn.h + 12, "op " + std::to_string(std::size_t(xmax)), "end", 9);
		for (int k = 0; k < 3; k++) {
			std::vector<std::pair<double, double>> pts;
			for (const auto &p : r->samples) {
				double v = k == 0 ? double(p.dm_4k_kb) : k == 1 ? double(p.dm_2m_kb) : double(p.dm_1g_kb);
				pts.emplace_back(pn.px(double(p.op)), pn.py(fy(v)));
			}
			s += polyline(pts, cols[k]);
		}
		y += ph + gap;
	}
	return s + "</svg>\n";
}

/* Chunks held by every allocator, against the running lower bound. */
inline std::string chunks_plot(const std::string &title, const std::vector<const run_result *> &runs)
{
	const double W = 760, H = 360, left = 60;
	panel pn{left, 56, W - left - 150, H - 96, 1};
	double vmax = 1;
	const run_result *ref = nullptr;
	for (const run_result *r : runs) {
		for (const auto &p : r->samples) {
			pn.xmax = std::max(pn.xmax, double(p.op));
			vmax = std::max(vmax, double(p.chunks));
		}
		if (r->ran && !ref)
			ref = r;
	}
	vmax = std::max(vmax, ref ? double(ref->lower_bound_chunks) : 1.0) * 1.1;
	std::string s = fmt("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\">\n", W, H);
	s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
	s += text(10, 20, title, "start", 13);
	s += text(10, 38, "2 MiB chunks held through the workload; dashed: the lower bound, ceil(live bytes / 2 MiB)", "start", 11);
	s += fmt("<rect x=\"%.1f\" y=\"%.1f\"", pn.x0, pn.y0) + fmt(" width=\"%.1f\" height=\"%.1f\"", pn.w, pn.h) +
	     " fill=\"none\" stroke=\"#999\"/>\n";
	for (int t = 0; t <= 4; t++)
		s += text(left - 4, pn.py(t / 4.0) + 4, fmt("%.0f", vmax * t / 4, 0), "end", 9);
	s += text(pn.x0 + pn.w, pn.y0 + pn.h + 14, "op " + std::to_string(std::size_t(pn.xmax)), "end", 9);
	double ly = 60;
	if (ref) {
		std::vector<std::pair<double, double>> pts;
		for (const auto &p : ref->samples)
			pts.emplace_back(pn.px(double(p.op)),
					 pn.py(double((p.live_bytes + chunk_size - 1) / chunk_size) / vmax));
		s += polyline(pts, "#000", "stroke-dasharray=\"4 3\"");
		s += fmt("<line x1=\"%.1f\" y1=\"%.1f\"", pn.x0 + pn.w + 8, ly - 4) +
		     fmt(" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#000\" stroke-width=\"1.5\" stroke-dasharray=\"4 3\"/>", pn.x0 + pn.w + 22, ly - 4);
		s += text(pn.x0 + pn.w + 24, ly, "lower bound", "start", 10);
		ly += 16;
	}
	for (const run_result *r : runs) {
		if (!r->ran)
			continue;
		std::vector<std::pair<double, double>> pts;
		for (const auto &p : r->samples)
			pts.emplace_back(pn.px(double(p.op)), pn.py(double(p.chunks) / vmax));
		s += polyline(pts, colour_of(r->allocator));
		s += "<rect x=\"" + std::to_string(int(pn.x0 + pn.w + 10)) + "\" y=\"" + std::to_string(int(ly - 9)) +
		     "\" width=\"10\" height=\"10\" fill=\"" + colour_of(r->allocator) + "\"/>";
		s += text(pn.x0 + pn.w + 24, ly, r->allocator + " (peak " + std::to_string(r->peak_chunks) + ")", "start", 10);
		ly += 16;
	}
	return s + "</svg>\n";
}

/* The summary figure of one machine over all its workloads (the groups of that machine). */
inline std::string summary_plot(const std::string &machine, const std::vector<const run_group *> &groups)
{
	std::vector<std::string> workloads, allocs;
	for (const run_group *g : groups) {
		if (g->ran().empty())
			continue;
		if (std::find(workloads.begin(), workloads.end(), g->workload) == workloads.end())
			workloads.push_back(g->workload);
		if (std::find(allocs.begin(), allocs.end(), g->allocator) == allocs.end())
			allocs.push_back(g->allocator);
	}
	const double bar = 7, group_gap = 14, left = 70, ph = 150, top = 60;
	const double gw = double(allocs.size()) * bar + group_gap;
	const double W = std::max(520.0, left + 20 + gw * double(workloads.size()) + 160);
	struct panel_def {
		const char *figure, *title;
		bool log;
	};
	const panel_def panels[] = {{"splits_2m", "2 MiB page splits (log scale)", true},
				    {"splits_1g", "1 GiB page splits (log scale)", true},
				    {"chunks_over_bound", "peak chunks / lower bound", false}};
	const double H = top + 3 * (ph + 70) + 10;
	std::string s = fmt("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\">\n", W, H);
	s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
	s += text(10, 20, machine + ": every workload, every design", "start", 13);
	s += text(10, 38, "bar: median over the seeds; whisker: min to max", "start", 11);
	double ly = top;
	for (const auto &a : allocs) {
		s += "<rect x=\"" + std::to_string(int(W - 150)) + "\" y=\"" + std::to_string(int(ly - 9)) +
		     "\" width=\"10\" height=\"10\" fill=\"" + colour_of(a) + "\"/>" + text(W - 136, ly, a, "start", 10);
		ly += 14;
	}
	double y = top;
	for (const panel_def &pd : panels) {
		const figure &f = *find_figure(pd.figure);
		double vmax = pd.log ? 1 : 1.2;
		for (const run_group *g : groups)
			if (!g->ran().empty())
				vmax = std::max(vmax, g->of(f).max);
		auto scale = [&](double v) {
			if (std::isinf(v))
				v = vmax;
			return pd.log ? std::log10(1 + v) / std::log10(1 + vmax) : v / vmax;
		};
		panel pn{left, y + 14, gw * double(workloads.size()), ph, 1};
		s += text(left, y + 8, pd.title, "start", 12);
		s += fmt("<rect x=\"%.1f\" y=\"%.1f\"", pn.x0, pn.y0) + fmt(" width=\"%.1f\" height=\"%.1f\"", pn.w, pn.h) +
		     " fill=\"none\" stroke=\"#999\"/>\n";
		s += text(left - 4, pn.py(0) + 4, "0", "end", 9);
		s += text(left - 4, pn.py(1) + 4, fmt(pd.log ? "%.0f" : "%.2f", vmax, 0), "end", 9);
		if (!pd.log) /* the bound itself */
			s += fmt("<line x1=\"%.1f\" y1=\"%.1f\"", pn.x0, pn.py(1 / vmax)) +
			     fmt(" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#000\" stroke-dasharray=\"4 3\"/>\n", pn.x0 + pn.w,
				 pn.py(1 / vmax));
		for (std::size_t wi = 0; wi < workloads.size(); wi++) {
			const double gx = left + gw * double(wi) + group_gap / 2;
			for (std::size_t ai = 0; ai < allocs.size(); ai++) {
				const run_group *g = nullptr;
				for (const run_group *c : groups)
					if (c->workload == workloads[wi] && c->allocator == allocs[ai] && !c->ran().empty())
						g = c;
				if (!g)
					continue;
				const range r = g->of(f);
				const double x = gx + bar * double(ai);
				const double yt = pn.py(scale(r.median));
				s += fmt("<rect x=\"%.1f\" y=\"%.1f\"", x, yt) +
				     fmt(" width=\"%.1f\" height=\"%.1f\"", bar - 1, pn.py(0) - yt) + " fill=\"" +
				     colour_of(g->allocator) + "\"><title>" + escape(g->allocator + " " + g->workload + ": " +
										       range_text(r, f.fmt)) +
				     "</title></rect>\n";
				s += fmt("<line x1=\"%.1f\" y1=\"%.1f\"", x + bar / 2 - 0.5, pn.py(scale(r.min))) +
				     fmt(" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#000\" stroke-width=\"1\"/>\n", x + bar / 2 - 0.5,
					 pn.py(scale(r.max)));
			}
			s += "<text x=\"" + fmt("%.1f", gx, 0) + "\" y=\"" + fmt("%.1f", pn.y0 + pn.h + 10, 0) +
			     "\" font-size=\"8\" font-family=\"sans-serif\" transform=\"rotate(20 " +
			     fmt("%.1f %.1f", gx, pn.y0 + pn.h + 10) + ")\">" + escape(workloads[wi]) + "</text>\n";
		}
		y += ph + 70;
	}
	return s + "</svg>\n";
}

}  // namespace ua::replay::svg
