// SPDX-License-Identifier: MIT
/*
 * ua-replay - replays workloads against the library's cache and the kernel
 * designs it is compared with, side by side, each run on a fresh machine.
 *
 * Options: replay/options.h (a stable interface). Figures: replay/replay.h
 * and docs/benchmarks.md. Exit status: 0 when every run was made (goals
 * missed are reported, not an error), 2 for bad arguments or workload files,
 * 1 when output could not be written.
 */
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "replay/options.h"
#include "replay/replay.h"
#include "replay/report.h"
#include "replay/svg.h"
#include "replay/workload_cases.h"
#include "live/replay_hook.h"

namespace {

using namespace ua::replay;

struct planned {
	machine_setup setup;
	std::vector<workload_case> cases;
};

int fail_usage(const std::string &msg)
{
	std::fprintf(stderr, "ua-replay: %s\n", msg.c_str());
	return 2;
}

bool write_file(const std::string &path, const std::string &text)
{
	std::ofstream f(path, std::ios::binary | std::ios::trunc);
	f << text;
	f.close();
	if (!f) {
		std::fprintf(stderr, "ua-replay: %s: cannot write\n", path.c_str());
		return false;
	}
	return true;
}

machine_setup setup_of(const options &o, const std::string &backend, double gib, bool aged)
{
	machine_setup s;
	s.backend = backend;
	s.gib = gib > 0 ? gib : (backend == "real" ? 1.0 : 64.0);
	s.aged = aged;
	s.seed = o.seed;
	s.samples = o.samples ? o.samples : (backend == "real" ? 12 : 200);
	s.reads = o.reads;
	s.free_chunk_fraction = o.free_chunk_fraction >= 0 ? o.free_chunk_fraction : (backend == "real" ? 0.1 : 0.02);
	s.placement_hint = o.placement_hint;
	s.background = o.background;
	s.footprints = o.footprints;
	return s;
}

/* Loads every spec; "" or the first error. */
std::string load_all(const std::vector<workload_spec> &specs, std::size_t ops, std::vector<workload_case> &out)
{
	for (const auto &s : specs) {
		auto c = load_case(s, ops);
		if (!c)
			return c.error;
		out.push_back(std::move(c.value));
	}
	return {};
}

std::string build_plan(const options &o, std::vector<planned> &plan)
{
	if (!o.default_plan) {
		std::vector<workload_case> cases;
		if (auto e = load_all(o.workloads, o.ops, cases); !e.empty())
			return e;
		for (const auto &b : o.backends)
			plan.push_back({setup_of(o, b, o.machine_gib, o.aged), cases});
		return {};
	}
	std::vector<workload_spec> specs = {{"bpf-churn", "", 1}};
	if (!o.listings_dir.empty()) {
		if (!std::filesystem::is_directory(o.listings_dir))
			return "--listings " + o.listings_dir + ": not a directory";
		for (auto &s : listing_specs(o.listings_dir))
			specs.push_back(s);
	}
	specs.push_back({"secretmem", "", 1});
	std::vector<workload_spec> sock;
	for (std::size_t n : ua::workload::sockex1_instances)
		sock.push_back({"sockex1", std::to_string(n), n});
	specs.insert(specs.end(), sock.begin(), sock.end());

	std::vector<workload_case> full, shorter, socks;
	if (auto e = load_all(specs, o.ops, full); !e.empty())
		return e;
	if (auto e = load_all(specs, o.real_ops, shorter); !e.empty())
		return e;
	if (auto e = load_all(sock, 0, socks); !e.empty())
		return e;
	plan.push_back({setup_of(o, "sim", 64, true), full});
	plan.push_back({setup_of(o, "real", 1, true), shorter});
	plan.push_back({setup_of(o, "sim", 8, false), socks});
	plan.push_back({setup_of(o, "sim", 8, true), socks});
	return {};
}

run_result run_one(const machine_setup &ms, const workload_case &wc, const std::string &alloc)
{
	if (ms.backend == "kernel") /* the running kernel, live: bench/live/replay_hook.h */
		return ua::live::run_case(ms, wc, alloc);
	if (ms.backend == "real")
		return run_case<ua::linux_backend>(ms, wc, alloc);
	return run_case<ua::sim_direct_map>(ms, wc, alloc);
}

std::string summary_markdown(const std::vector<run_result> &rs, const std::vector<goal_line> &goals,
			     const std::string &command, const std::string &date, double seconds)
{
	std::string s = "# ua-replay report\n\n";
	s += "Command: `" + command + "`  \nDate: " + date + "  \n";
	char t[64];
	std::snprintf(t, sizeof t, "Wall time: %.1f s\n\n", seconds);
	s += t;
	s += "Every figure is defined in docs/benchmarks.md. Each run uses a fresh machine of its setup (same ageing "
	     "seed for every allocator). \"After the workload\" means before the drain; `drained ch` and `whole` are "
	     "after every allocation was freed and the allocator's drain() ran.\n\n";
	s += "## Goals\n\n" + goals_markdown(goals) + "\n";
	std::string machine, workload;
	std::vector<const run_result *> group;
	auto flush = [&]() {
		if (group.empty())
			return;
		const run_result &f = *group.front();
		s += "### " + f.workload + "\n\n";
		char b[160];
		std::snprintf(b, sizeof b, "%zu ops, peak live %llu bytes, lower bound %llu chunks.\n\n", f.ops,
			      (unsigned long long)f.peak_live_bytes, (unsigned long long)f.lower_bound_chunks);
		s += b;
		s += markdown_table(group) + "\n";
		const std::string base = slug(f.machine + "_" + f.workload);
		s += "![direct map](" + base + "_directmap.svg) ![chunks](" + base + "_chunks.svg)\n\n";
		for (const run_result *r : group)
			if (!r->first_failure.empty() || !r->note.empty())
				s += "- " + r->allocator + ": " + (r->note.empty() ? "" : r->note + " ") +
				     (r->failed_allocs ? std::to_string(r->failed_allocs) + " failed allocations, first: " +
								 r->first_failure
						       : r->first_failure) +
				     "\n";
		s += "\n";
		group.clear();
	};
	for (const auto &r : rs) {
		if (r.machine != machine || r.workload != workload)
			flush();
		if (r.machine != machine) {
			s += "## Machine " + r.machine + "\n\n";
			if (r.backend == "real" && r.ran && !r.after.directmap_available)
				s += "DirectMap figures unavailable: " + r.after.unavailable_reason + "\n\n";
		}
		machine = r.machine;
		workload = r.workload;
		group.push_back(&r);
	}
	flush();
	return s;
}

bool write_report(const std::string &dir, const std::vector<run_result> &rs, const std::vector<goal_line> &goals,
		  const std::string &command, const std::string &date, double seconds)
{
	std::error_code ec;
	std::filesystem::create_directories(dir, ec);
	if (ec) {
		std::fprintf(stderr, "ua-replay: %s: %s\n", dir.c_str(), ec.message().c_str());
		return false;
	}
	bool ok = write_file(dir + "/results.json", ua::live::results_json(rs));
	ok = ok && write_file(dir + "/summary.md", summary_markdown(rs, goals, command, date, seconds));
	std::map<std::string, std::vector<const run_result *>> groups;
	std::vector<std::string> order;
	for (const auto &r : rs) {
		std::string k = r.machine + "_" + r.workload;
		if (!groups.count(k))
			order.push_back(k);
		groups[k].push_back(&r);
	}
	for (const auto &k : order) {
		const auto &g = groups[k];
		const std::string title = g.front()->machine + " " + g.front()->workload;
		std::vector<const run_result *> ran;
		for (const run_result *r : g)
			if (r->ran)
				ran.push_back(r);
		ok = ok && write_file(dir + "/" + slug(k) + "_directmap.svg", ua::replay::svg::directmap_plot(title, ran));
		ok = ok && write_file(dir + "/" + slug(k) + "_chunks.svg", ua::replay::svg::chunks_plot(title, ran));
	}
	return ok;
}

}  // namespace

int main(int argc, char **argv)
{
	auto parsed = parse_args(argc, argv);
	if (!parsed)
		return fail_usage(parsed.error);
	const options &o = parsed.value;
	if (o.help) {
		std::fputs(usage_text, stdout);
		return 0;
	}
	std::vector<planned> plan;
	if (std::string e = build_plan(o, plan); !e.empty())
		return fail_usage(e);

	std::string command = "ua-replay";
	for (int i = 1; i < argc; i++)
		command += std::string(" ") + argv[i];
	char date[64];
	std::time_t now = std::time(nullptr);
	std::strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S %Z", std::localtime(&now));

	std::size_t total = 0, done = 0;
	for (const auto &p : plan)
		for (const auto &wc : p.cases)
			for (const auto &alloc : o.allocators)
				total += p.setup.backend != "kernel" || ua::live::runs_live(alloc, wc);
	const auto t0 = std::chrono::steady_clock::now();
	std::vector<run_result> results;
	for (const auto &p : plan) {
		for (const auto &wc : p.cases) {
			for (const auto &alloc : o.allocators) {
				if (p.setup.backend == "kernel" && !ua::live::runs_live(alloc, wc))
					continue; /* the kernel has only its own designs */
				const auto r0 = std::chrono::steady_clock::now();
				results.push_back(run_one(p.setup, wc, alloc));
				const run_result &r = results.back();
				done++;
				if (!o.quiet) {
					double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - r0).count();
					if (r.ran)
						std::fprintf(stderr, "[%zu/%zu] %s %s %s: peak %llu chunks (bound %llu), %lld 4K splits, %.1f s\n",
							     done, total, r.machine.c_str(), r.workload.c_str(), r.allocator.c_str(),
							     (unsigned long long)r.peak_chunks, (unsigned long long)r.lower_bound_chunks,
							     (long long)r.splits_2m, sec);
					else
						std::fprintf(stderr, "[%zu/%zu] %s %s %s: not run: %s\n", done, total,
							     r.machine.c_str(), r.workload.c_str(), r.allocator.c_str(), r.note.c_str());
				}
			}
		}
	}
	const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
	const auto goals = evaluate_goals(results);
	std::fputs(text_table(results).c_str(), stdout);
	std::fputs(goals_text(goals).c_str(), stdout);
	std::printf("%zu runs in %.1f s\n", results.size(), seconds);

	bool ok = true;
	if (!o.json_file.empty())
		ok = write_file(o.json_file, ua::live::results_json(results)) && ok;
	if (!o.report_dir.empty()) {
		ok = write_report(o.report_dir, results, goals, command, date, seconds) && ok;
		if (ok)
			std::printf("report: %s/summary.md, results.json and SVG plots\n", o.report_dir.c_str());
	}
	return ok ? 0 : 1;
}
