// SPDX-License-Identifier: MIT
/*
 * ua-replay - replays workloads against the library's cache and the kernel
 * designs it is compared with, side by side, each run on a fresh machine,
 * over seeds, the runs spread over the cores (pool.h).
 *
 * Options: replay/options.h (a stable interface). Figures: replay/replay_ops.h
 * and docs/benchmarks.md. Progress: one line per finished run on stderr with
 * an estimate of what remains (--quiet leaves them out, never an error).
 * Exit status:
 *   0  every run was made without a failed allocation (goals missed are
 *      reported, not an error);
 *   1  output could not be written;
 *   2  bad arguments or workload files;
 *   3  a run was not made because its machine could not be built (the real
 *      backend, ageing): the reason is printed, --quiet or not;
 *   4  a run had failed allocations (counted and reasoned in the tables).
 * The first that applies, in the order 1, 3, 4.
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
#include "replay/plan.h"
#include "replay/pool.h"
#include "replay/replay.h"
#include "replay/report.h"
#include "replay/summary.h"
#include "replay/svg.h"
#include "replay/workload_cases.h"
#include "live/replay_hook.h"

namespace {

using namespace ua::replay;

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
	s.samples = o.samples ? o.samples : (backend == "real" ? 12 : 200);
	s.reads = o.reads;
	s.free_chunk_fraction = o.free_chunk_fraction >= 0 ? o.free_chunk_fraction : (backend == "real" ? 0.1 : 0.02);
	s.placement_hint = o.placement_hint;
	s.background = o.background;
	s.footprints = o.footprints;
	return s;
}

plan_machine machine_of(const options &o, machine_setup s, std::vector<workload_spec> specs, std::size_t ops,
			std::uint64_t seeds)
{
	plan_machine m;
	m.setup = std::move(s);
	m.specs = std::move(specs);
	m.ops = ops;
	m.first_seed = o.seed;
	m.seeds = seeds;
	return m;
}

/*
 * The default comparison (docs/benchmarks.md): on a simulated 64 GiB aged
 * machine BPF churn, the listings, secretmem, the tracing host and the
 * uptime of the first module listing; the VM host on a simulated 256 GiB
 * machine; the churns and listings on the real backend (over at most 3
 * seeds, --real-ops long); sockex1 on a simulated 8 GiB machine fresh and
 * aged. --quick: 2 seeds, no VM host and no uptime, the real backend on BPF
 * churn only.
 */
std::string default_plan(const options &o, plan &p)
{
	std::vector<workload_spec> listings;
	if (!o.listings_dir.empty()) {
		if (!std::filesystem::is_directory(o.listings_dir))
			return "--listings " + o.listings_dir + ": not a directory";
		listings = listing_specs(o.listings_dir);
	}
	const std::uint64_t seeds = o.quick ? std::min<std::uint64_t>(o.seeds, 2) : o.seeds;
	std::vector<workload_spec> sim = {{"bpf-churn", "", 1}};
	sim.insert(sim.end(), listings.begin(), listings.end());
	sim.push_back({"secretmem", "", 1});
	sim.push_back({"tracing-host", "", 1});
	if (!o.quick)
		for (const auto &l : listings)
			if (l.kind == "modules") {
				sim.push_back({"uptime", l.arg, 0});
				break;
			}
	std::vector<workload_spec> real = {{"bpf-churn", "", 1}};
	if (!o.quick) {
		real.insert(real.end(), listings.begin(), listings.end());
		real.push_back({"secretmem", "", 1});
	}
	std::vector<workload_spec> sock;
	for (std::size_t n : ua::workload::sockex1_instances)
		sock.push_back({"sockex1", std::to_string(n), n});

	p.machines.push_back(machine_of(o, setup_of(o, "sim", 64, true), sim, o.ops, seeds));
	if (!o.quick)
		p.machines.push_back(machine_of(o, setup_of(o, "sim", 256, true), {{"vm-host-2m", "", 1}}, 0, seeds));
	p.machines.push_back(machine_of(o, setup_of(o, "real", 1, true), real, o.real_ops,
					std::min<std::uint64_t>(seeds, o.quick ? 1 : 3)));
	p.machines.push_back(machine_of(o, setup_of(o, "sim", 8, false), sock, 0, seeds));
	p.machines.push_back(machine_of(o, setup_of(o, "sim", 8, true), sock, 0, seeds));
	return {};
}

std::string build_plan(const options &o, plan &p)
{
	if (o.default_plan) {
		if (auto e = default_plan(o, p); !e.empty())
			return e;
	} else {
		for (const auto &b : o.backends)
			p.machines.push_back(machine_of(o, setup_of(o, b, o.machine_gib, o.aged), o.workloads, o.ops, o.seeds));
	}
	return add_runs(o, p);
}

run_result run_one(const plan &p, case_store &cases, std::size_t i)
{
	const plan_run &pr = p.runs[i];
	machine_setup ms = p.machines[pr.machine].setup;
	ms.seed = pr.seed;
	auto wc = cases.get(pr);
	if (!wc) { /* a file changed since the plan read it */
		run_result r;
		r.allocator = pr.allocator;
		r.machine = ms.label();
		r.seed = pr.seed;
		r.note = wc.error;
		return r;
	}
	const auto t0 = std::chrono::steady_clock::now();
	run_result r;
	if (ms.backend == "kernel") /* the running kernel, live: bench/live/replay_hook.h */
		r = ua::live::run_case(ms, *wc.value, pr.allocator);
	else if (ms.backend == "real")
		r = run_case<ua::linux_backend>(ms, *wc.value, pr.allocator, pr.release);
	else
		r = run_case<ua::sim_direct_map>(ms, *wc.value, pr.allocator, pr.release);
	r.seed = pr.seed;
	r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
	return r;
}

bool write_report(const std::string &dir, const std::vector<run_result> &rs, const std::vector<goal_line> &goals,
		  const std::string &command, const std::string &date, double seconds, unsigned workers)
{
	std::error_code ec;
	std::filesystem::create_directories(dir, ec);
	if (ec) {
		std::fprintf(stderr, "ua-replay: %s: %s\n", dir.c_str(), ec.message().c_str());
		return false;
	}
	bool ok = write_file(dir + "/results.json", ua::live::results_json(rs));
	ok = ok && write_file(dir + "/summary.json", summary_json(rs, goals, command));
	ok = ok && write_file(dir + "/summary.md", summary_markdown(rs, goals, command, date, seconds, workers));
	const auto groups = group_runs(rs);
	std::map<std::string, std::vector<const run_group *>> by_machine;
	for (const run_group &g : groups)
		by_machine[g.machine].push_back(&g);
	for (const auto &[machine, gs] : by_machine)
		ok = ok && write_file(dir + "/" + summary_svg_name(machine), svg::summary_plot(machine, gs));
	/* The plots through the workload: the first seed of each (machine, workload). */
	std::map<std::string, std::vector<const run_result *>> plots;
	std::vector<std::string> order;
	for (const run_group &g : groups) {
		const std::string k = g.machine + "_" + g.workload;
		if (!plots.count(k))
			order.push_back(k);
		auto ran = g.ran();
		auto &v = plots[k];
		if (!ran.empty())
			v.push_back(ran.front());
	}
	for (const auto &k : order) {
		const auto &v = plots[k];
		const std::string title = v.empty() ? k : v.front()->machine + " " + v.front()->workload;
		ok = ok && write_file(dir + "/" + slug(k) + "_directmap.svg", svg::directmap_plot(title, v));
		ok = ok && write_file(dir + "/" + slug(k) + "_chunks.svg", svg::chunks_plot(title, v));
	}
	return ok;
}

/* Whether the run was not made because its machine could not be built. */
bool setup_failed(const run_result &r)
{
	return !r.ran && (r.note.rfind("real backend not constructed", 0) == 0 || r.note.rfind("ageing failed", 0) == 0);
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
		std::printf("%s\n", allocator_list(" ").c_str());
		return 0;
	}
	plan p;
	if (std::string e = build_plan(o, p); !e.empty())
		return fail_usage(e);

	std::string command = "ua-replay";
	for (int i = 1; i < argc; i++)
		command += std::string(" ") + argv[i];
	char date[64];
	std::time_t now = std::time(nullptr);
	std::strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S %Z", std::localtime(&now));

	/* On the running kernel only its own designs run (bench/live/replay_hook.h). */
	case_store cases(p);
	std::vector<plan_run> runs;
	for (const plan_run &r : p.runs) {
		if (p.machines[r.machine].setup.backend == "kernel") {
			auto wc = cases.get(r);
			if (wc && !ua::live::runs_live(r.allocator, *wc.value))
				continue;
		}
		runs.push_back(r);
	}
	p.runs = std::move(runs);

	const unsigned workers = o.jobs ? o.jobs : default_workers(p.runs.size());
	const auto t0 = std::chrono::steady_clock::now();
	std::size_t setup_failures = 0;
	auto results = run_pool(
		p.runs.size(), workers, [&](std::size_t i) { return run_one(p, cases, i); },
		[&](std::size_t, std::size_t done, const run_result &r) {
			const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
			const std::string pre = progress_prefix(done, p.runs.size(), el);
			if (setup_failed(r)) {
				/* Printed whatever --quiet says: the report would otherwise only show a hole. */
				if (setup_failures++ == 0 || !o.quiet)
					std::fprintf(stderr, "ua-replay: %s %s seed %llu %s: not run: %s\n", r.machine.c_str(),
						     r.workload.c_str(), (unsigned long long)r.seed, r.allocator.c_str(),
						     r.note.c_str());
			} else if (o.quiet) {
				return;
			} else if (r.ran) {
				std::fprintf(stderr,
					     "%s: %s %s seed %llu %s: peak %llu chunks (bound %llu), %lld 2M splits, %lld 1G "
					     "splits%s, %.1f s\n",
					     pre.c_str(), r.machine.c_str(), r.workload.c_str(), (unsigned long long)r.seed,
					     r.allocator.c_str(), (unsigned long long)r.peak_chunks,
					     (unsigned long long)r.lower_bound_chunks, (long long)r.splits_2m,
					     (long long)r.splits_1g,
					     r.failed_allocs ? (", " + std::to_string(r.failed_allocs) + " FAILED allocations").c_str()
							     : "",
					     r.seconds);
			} else {
				std::fprintf(stderr, "%s: %s %s seed %llu %s: not run: %s\n", pre.c_str(), r.machine.c_str(),
					     r.workload.c_str(), (unsigned long long)r.seed, r.allocator.c_str(), r.note.c_str());
			}
		});
	const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
	const auto goals = evaluate_goals(results);
	std::fputs(text_table(results).c_str(), stdout);
	std::fputs(goals_text(goals).c_str(), stdout);
	std::size_t failed_runs = 0;
	for (const run_result &r : results)
		failed_runs += r.ran && r.failed_allocs > 0;
	std::printf("%zu runs in %.1f s on %u workers\n", results.size(), seconds, workers);

	bool ok = true;
	if (!o.json_file.empty())
		ok = write_file(o.json_file, ua::live::results_json(results)) && ok;
	if (!o.report_dir.empty()) {
		ok = write_report(o.report_dir, results, goals, command, date, seconds, workers) && ok;
		if (ok)
			std::printf("report: %s/summary.md, summary.json, results.json and SVG plots\n", o.report_dir.c_str());
	}
	if (!ok)
		return 1;
	if (setup_failures) {
		std::fprintf(stderr, "ua-replay: %zu runs not made: their machine could not be built (see above)\n",
			     setup_failures);
		return 3;
	}
	if (failed_runs) {
		std::fprintf(stderr, "ua-replay: %zu runs had failed allocations (see the tables)\n", failed_runs);
		return 4;
	}
	return 0;
}
