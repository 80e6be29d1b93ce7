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
 */
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "replay.h"

namespace ua::replay::svg {

inline const char *colour_of(const std::string &alloc)
{
	if (alloc == "unmapped")
		return "#1b7837";
	if (alloc == "naive")
		return "#d7301f";
	if (alloc == "gfp-unmapped")
		return "#7570b3";
	if (alloc == "bpf-prog-pack")
		return "#e6ab02";
	if (alloc == "execmem")
		return "#1f78b4";
	return "#666666";
}

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

}  // namespace ua::replay::svg
