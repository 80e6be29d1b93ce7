// SPDX-License-Identifier: MIT
/*
 * replay/options.h - the command line of ua-replay, a stable interface.
 *
 *   --backend sim|real|kernel  repeatable; default sim; kernel: the running
 *                            kernel's own designs, live (bench/live/, docs/live.md)
 *   --machine-gib N          machine size in GiB (a decimal number, rounded
 *                            down to whole 2 MiB pages); default 64 on sim, 1
 *                            on real (construction of 1 GiB takes ~0.2-2 s)
 *   --aged | --fresh         page allocator aged first (page_age.h) or not;
 *                            default aged
 *   --seeds N                runs every (machine, workload, allocator) over
 *                            seeds 1..N (default 10): seed s ages the machine
 *                            with s and generates the workload with s; every
 *                            allocator sees the same machine and workload per
 *                            seed; at most 1000
 *   --seed N                 one seed, N (instead of --seeds)
 *   --kernel X.Y             the release every peer follows: 5.17, 6.1, 6.6,
 *                            6.15 or 6.18 (default 6.18, the newest)
 *   --jobs N                 runs at once (default: one per core); each run is
 *                            single-threaded
 *   --placement-hint         proposal: the page allocator honours the chunk
 *                            source's placement hint (page_alloc_config::
 *                            placement_hint); the machine's label gets "-hint"
 *   --no-background          nothing runs beside the workload (no page-cache
 *                            reads or slab churn between ops: machine_load.h)
 *   --no-footprints          instances are not processes (their footprint is
 *                            not allocated)
 *   --free-chunk-fraction F  share of 2 MiB pageblocks ageing keeps wholly free
 *                            (kswapd/compaction; age_config); default 0.02 on
 *                            sim, 0.1 on real: 2% of a 1 GiB machine is 10
 *                            free blocks, fewer than a module listing needs
 *   --workload KIND[:ARG]    repeatable: bpf-churn[:SEED], modules:FILE,
 *                            bpftool:FILE, trace:FILE, secretmem[:SEED],
 *                            sockex1:N; the timed generators vm-host[:SEED],
 *                            vm-host-2m[:SEED], bpf-fleet[:SEED],
 *                            tracing-host[:SEED], uptime:FILE,
 *                            colocation:FILE (FILE a module listing);
 *                            default bpf-churn
 *   --allocator NAME[@X.Y]   repeatable: a name of the registry
 *                            (allocators.h); default all. NAME@X.Y runs a
 *                            release-following peer at release X.Y (or
 *                            X.Y-rcN; a bare X.Y-rc is X.Y-rc1, and every
 *                            candidate sorts before its release) beside the
 *                            others: execmem@6.13-rc
 *   --ops N                  length of the churn generators (bpf-churn,
 *                            secretmem) instead of their defaults; at most
 *                            1000000 (max_ops: a case's ops are held in memory)
 *   --json FILE              the results, one object per run
 *   --report DIR             results.json, summary.md and SVG plots in DIR
 *   --default                the default comparison (scripts/main.sh): every
 *                            workload on a simulated 64 GiB aged machine and on
 *                            the real backend, and sockex1 on a simulated 8 GiB
 *                            machine fresh and aged
 *   --listings DIR           with --default: module and bpftool listings to
 *                            replay (files named lsmod_*, proc_modules_*,
 *                            bpftool_*); without it only the generators run
 *   --real-ops N             with --default only: churn length on the real
 *                            backend (at most max_ops)
 *   --quick                  the default comparison's short subset (about a
 *                            minute on 2 cores): fewer seeds and workloads
 *   --reads N                random reads per pass for read_ns_ratio (real
 *                            backend; default 65536, 40 alternating rounds)
 *   --samples N              backend samples per run for the plots
 *   --quiet                  no progress lines; errors (a backend that could
 *                            not be built) are still printed
 *   --help                   usage, exit 0
 *
 * parse_args() returns the options or an error message; the program prints
 * the message and exits with status 2 (bad arguments). Options that
 * contradict each other are refused the same way: --aged with --fresh,
 * --seed with --seeds, --real-ops or --listings without --default,
 * --default with the options of a single machine. Files named by
 * --workload are read later (workload_cases.h), with the same status on
 * error.
 */
#pragma once

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "allocators.h"
#include "workload/op.h"
#include "workload/text.h"
#include "workload_case.h"

namespace ua::replay {

/* Ops a run may hold: the ops of a case are in memory (~130 bytes each) while its runs use it. */
inline constexpr std::size_t max_ops = 1000000;
inline constexpr std::uint64_t max_seeds = 1000;

struct options {
	std::vector<std::string> backends;
	double machine_gib = 0; /* 0: the backend's default */
	bool aged = true;
	std::uint64_t seed = 1;   /* the first seed */
	std::uint64_t seeds = 10; /* seeds seed .. seed + seeds - 1 */
	linux_version kernel = peers::newest_release;
	unsigned jobs = 0;        /* 0: one worker per core */
	std::vector<workload_spec> workloads;
	std::vector<std::string> allocators;
	std::size_t ops = 0;      /* 0: generator defaults */
	std::size_t real_ops = 20000;
	double free_chunk_fraction = -1; /* < 0: the backend's default */
	bool placement_hint = false;     /* machine_setup::placement_hint */
	bool background = true, footprints = true;
	std::size_t reads = 65536;
	std::size_t samples = 0;  /* 0: 200 on sim, 12 on real */
	std::string json_file, report_dir, listings_dir;
	bool default_plan = false;
	bool quick = false;       /* the default plan's short subset */
	bool quiet = false;
	bool help = false;
};

inline constexpr const char *usage_text =
	"usage: ua-replay [--backend sim|real|kernel]... [--machine-gib N] [--aged|--fresh] [--free-chunk-fraction F]\n"
	"                 [--workload KIND[:ARG]]... [--allocator NAME[@X.Y]]... [--ops N]\n"
	"                 [--seeds N | --seed N] [--kernel X.Y] [--jobs N]\n"
	"                 [--placement-hint] [--no-background] [--no-footprints]\n"
	"                 [--json FILE] [--report DIR] [--reads N] [--samples N] [--quiet]\n"
	"       ua-replay --default|--quick [--listings DIR] [--real-ops N] [--allocator NAME[@X.Y]]... [--seeds N]\n"
	"                 [--kernel X.Y] [--jobs N] [--json FILE] [--report DIR]\n"
	"workloads: bpf-churn[:SEED] modules:FILE bpftool:FILE trace:FILE secretmem[:SEED] sockex1:N\n"
	"           vm-host[:SEED] vm-host-2m[:SEED] bpf-fleet[:SEED] tracing-host[:SEED] uptime:FILE colocation:FILE\n"
	"allocators (default: all): ";

namespace detail {

inline bool parse_count(std::string_view s, std::uint64_t &v) { return workload::detail::parse_u64(s, v); }

/* A positive decimal number of GiB, at most 64 TiB. */
inline bool parse_gib(const std::string &s, double &v)
{
	if (s.empty() || s.find_first_not_of("0123456789.") != std::string::npos)
		return false;
	char *end = nullptr;
	v = std::strtod(s.c_str(), &end);
	return end && *end == '\0' && v > 0 && v <= 65536;
}

/* A decimal number in [0, 1]. */
inline bool parse_fraction(const std::string &s, double &v)
{
	if (s.empty() || s.find_first_not_of("0123456789.") != std::string::npos)
		return false;
	char *end = nullptr;
	v = std::strtod(s.c_str(), &end);
	return end && *end == '\0' && v >= 0 && v <= 1;
}

inline std::string parse_workload_spec(const std::string &text, workload_spec &w)
{
	auto colon = text.find(':');
	w.kind = text.substr(0, colon);
	w.arg = colon == std::string::npos ? std::string{} : text.substr(colon + 1);
	const bool has_arg = colon != std::string::npos;
	if (w.kind == "bpf-churn" || w.kind == "secretmem" || w.kind == "vm-host" || w.kind == "vm-host-2m" ||
	    w.kind == "bpf-fleet" || w.kind == "tracing-host") {
		w.number = 1;
		if (has_arg && !parse_count(w.arg, w.number))
			return "--workload " + text + ": the seed " + workload::detail::quote(w.arg) + " is not a number";
		return {};
	}
	if (w.kind == "sockex1") {
		if (!has_arg || w.arg.empty())
			return "--workload " + text + ": sockex1 needs the number of instances, e.g. sockex1:512";
		if (!parse_count(w.arg, w.number) || w.number == 0 || w.number > 10000000)
			return "--workload " + text + ": the instance count " + workload::detail::quote(w.arg) +
			       " is not a number between 1 and 10000000";
		return {};
	}
	if (w.kind == "modules" || w.kind == "bpftool" || w.kind == "trace" || w.kind == "uptime" ||
	    w.kind == "colocation") {
		if (!has_arg || w.arg.empty())
			return "--workload " + text + ": " + w.kind + " needs a file, e.g. " + w.kind + ":FILE";
		return {};
	}
	return "--workload " + text + ": unknown workload kind " + workload::detail::quote(w.kind) +
	       " (expected bpf-churn, modules, bpftool, trace, secretmem, sockex1, vm-host, vm-host-2m, bpf-fleet,"
	       " tracing-host, uptime or colocation)";
}

}  // namespace detail

/* Parses argv[1..argc); the message names the offending argument. */
inline workload::parse_result<options> parse_args(const std::vector<std::string> &args)
{
	using R = workload::parse_result<options>;
	options o;
	bool machine_options = false, aged_given = false, fresh_given = false, seed_given = false, seeds_given = false;
	bool real_ops_given = false;
	for (std::size_t i = 0; i < args.size(); i++) {
		const std::string &a = args[i];
		auto value = [&](std::string &out) -> bool {
			if (i + 1 >= args.size())
				return false;
			out = args[++i];
			return true;
		};
		auto number = [&](std::uint64_t &out, std::uint64_t min) -> std::string {
			std::string v;
			if (!value(v))
				return a + " needs a value";
			if (!detail::parse_count(v, out) || out < min)
				return a + " " + v + ": expected a whole number of at least " + std::to_string(min);
			return {};
		};
		std::string v;
		if (a == "--help" || a == "-h") {
			o.help = true;
		} else if (a == "--backend") {
			if (!value(v))
				return R::failure("--backend needs a value: sim, real or kernel");
			if (v != "sim" && v != "real" && v != "kernel")
				return R::failure("--backend " + v + ": expected sim, real or kernel");
			o.backends.push_back(v);
			machine_options = true;
		} else if (a == "--machine-gib") {
			if (!value(v))
				return R::failure("--machine-gib needs a value");
			if (!detail::parse_gib(v, o.machine_gib))
				return R::failure("--machine-gib " + v + ": expected a positive number of GiB, at most 65536");
			if (std::uint64_t(o.machine_gib * 512) == 0)
				return R::failure("--machine-gib " + v + ": smaller than one 2 MiB page");
			machine_options = true;
		} else if (a == "--aged" || a == "--fresh") {
			o.aged = a == "--aged";
			(o.aged ? aged_given : fresh_given) = true;
			if (aged_given && fresh_given)
				return R::failure("--aged and --fresh contradict each other: give one");
			machine_options = true;
		} else if (a == "--free-chunk-fraction") {
			if (!value(v))
				return R::failure("--free-chunk-fraction needs a value");
			double f = 0;
			if (!detail::parse_fraction(v, f))
				return R::failure("--free-chunk-fraction " + v + ": expected a number between 0 and 1");
			o.free_chunk_fraction = f;
			machine_options = true;
		} else if (a == "--placement-hint") {
			o.placement_hint = true;
		} else if (a == "--no-background") {
			o.background = false;
		} else if (a == "--no-footprints") {
			o.footprints = false;
		} else if (a == "--seed") {
			if (auto e = number(o.seed, 1); !e.empty())
				return R::failure(e);
			seed_given = true;
		} else if (a == "--seeds") {
			if (auto e = number(o.seeds, 1); !e.empty())
				return R::failure(e);
			if (o.seeds > max_seeds)
				return R::failure("--seeds " + std::to_string(o.seeds) + ": at most " + std::to_string(max_seeds));
			seeds_given = true;
		} else if (a == "--kernel") {
			if (!value(v))
				return R::failure(std::string("--kernel needs a value: ") + kernel_choices_text);
			if (!parse_kernel_choice(v, o.kernel))
				return R::failure("--kernel " + v + ": expected " + kernel_choices_text);
		} else if (a == "--jobs") {
			std::uint64_t n = 0;
			if (auto e = number(n, 1); !e.empty())
				return R::failure(e);
			if (n > 256)
				return R::failure("--jobs " + std::to_string(n) + ": at most 256");
			o.jobs = unsigned(n);
		} else if (a == "--workload") {
			if (!value(v))
				return R::failure("--workload needs a value, e.g. bpf-churn or modules:FILE");
			workload_spec w;
			if (auto e = detail::parse_workload_spec(v, w); !e.empty())
				return R::failure(e);
			o.workloads.push_back(std::move(w));
		} else if (a == "--allocator") {
			if (!value(v))
				return R::failure("--allocator needs a value");
			const allocator_info *info = find_allocator(v);
			if (!info)
				return R::failure("--allocator " + v + ": unknown (expected " + allocator_list() + ")");
			if (auto at = v.find('@'); at != std::string::npos) {
				linux_version k;
				if (!parse_release(v.substr(at + 1), k))
					return R::failure("--allocator " + v + ": the release " +
							  workload::detail::quote(v.substr(at + 1)) + " is not X.Y, X.Y-rcN or X.Y-rc");
				if (info->rule != follows::release)
					return R::failure("--allocator " + v + ": " + info->name +
							  " follows no kernel release (it is the same at every one)");
				if (peers::newest_release < k)
					return R::failure("--allocator " + v + ": newer than the newest release the peers know, " +
							  peers::newest_release.str());
			}
			bool dup = false;
			for (const auto &x : o.allocators)
				dup |= x == v;
			if (!dup)
				o.allocators.push_back(v);
		} else if (a == "--ops" || a == "--real-ops" || a == "--reads" || a == "--samples") {
			std::uint64_t n = 0;
			if (auto e = number(n, 1); !e.empty())
				return R::failure(e);
			if ((a == "--ops" || a == "--real-ops") && n > max_ops)
				return R::failure(a + " " + std::to_string(n) + ": at most " + std::to_string(max_ops) +
						  " (a run's ops are held in memory)");
			real_ops_given |= a == "--real-ops";
			(a == "--ops" ? o.ops : a == "--real-ops" ? o.real_ops : a == "--reads" ? o.reads : o.samples) =
				std::size_t(n);
		} else if (a == "--json" || a == "--report" || a == "--listings") {
			if (!value(v) || v.empty())
				return R::failure(a + " needs a value");
			(a == "--json" ? o.json_file : a == "--report" ? o.report_dir : o.listings_dir) = v;
		} else if (a == "--default") {
			o.default_plan = true;
		} else if (a == "--quick") {
			o.default_plan = o.quick = true;
		} else if (a == "--quiet") {
			o.quiet = true;
		} else {
			return R::failure("unknown argument " + workload::detail::quote(a) + " (see --help)");
		}
	}
	if (o.default_plan && (machine_options || !o.workloads.empty()))
		return R::failure("--default runs its own machines and workloads: it cannot be combined with --backend, "
				  "--machine-gib, --aged, --fresh or --workload");
	if (!o.default_plan && !o.listings_dir.empty())
		return R::failure("--listings is used by --default only");
	if (!o.default_plan && real_ops_given)
		return R::failure("--real-ops is used by --default only (elsewhere --ops sets the length)");
	if (seed_given && seeds_given)
		return R::failure("--seed runs one seed, --seeds N runs N: give one");
	if (seed_given)
		o.seeds = 1;
	if (o.backends.empty())
		o.backends.push_back("sim");
	if (o.workloads.empty() && !o.default_plan)
		o.workloads.push_back(workload_spec{"bpf-churn", "", 1});
	if (o.allocators.empty())
		for (const allocator_info &a : registry)
			o.allocators.emplace_back(a.name);
	return R{std::move(o), {}};
}

inline workload::parse_result<options> parse_args(int argc, char **argv)
{
	std::vector<std::string> args(argv + 1, argv + argc);
	return parse_args(args);
}

}  // namespace ua::replay
