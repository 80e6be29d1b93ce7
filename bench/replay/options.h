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
 *   --placement-hint         proposal: the page allocator honours the chunk
 *                            source's placement hint (page_alloc_config::
 *                            placement_hint); the machine's label gets "-hint"
 *   --no-background          nothing runs beside the workload (no page-cache
 *                            reads or slab churn between ops: machine_load.h)
 *   --no-footprints          instances are not processes (their footprint is
 *                            not allocated)
 *   --seed N                 ageing seed (default 1): every run of a plan sees
 *                            the same machine
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
 *   --allocator NAME         repeatable: unmapped, naive, gfp-unmapped,
 *                            bpf-prog-pack, execmem, jemalloc; default all
 *   --ops N                  length of the churn generators (bpf-churn,
 *                            secretmem) instead of their defaults
 *   --json FILE              the results, one object per run
 *   --report DIR             results.json, summary.md and SVG plots in DIR
 *   --default                the default comparison (scripts/main.sh): every
 *                            workload on a simulated 64 GiB aged machine and on
 *                            the real backend, and sockex1 on a simulated 8 GiB
 *                            machine fresh and aged
 *   --listings DIR           with --default: module and bpftool listings to
 *                            replay (files named lsmod_*, proc_modules_*,
 *                            bpftool_*); without it only the generators run
 *   --real-ops N             with --default: churn length on the real backend
 *   --reads N                random reads per pass for read_ns_ratio (real
 *                            backend; default 65536, 40 alternating rounds)
 *   --samples N              backend samples per run for the plots
 *   --quiet                  no progress lines
 *   --help                   usage, exit 0
 *
 * parse_args() returns the options or an error message; the program prints
 * the message and exits with status 2 (bad arguments). Files named by
 * --workload are read later (workload_cases.h), with the same status on
 * error.
 */
#pragma once

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "workload/op.h"
#include "workload/text.h"

namespace ua::replay {

inline constexpr const char *allocator_names[] = {"unmapped", "naive", "gfp-unmapped", "bpf-prog-pack", "execmem",
						  "jemalloc"};

struct workload_spec {
	std::string kind; /* bpf-churn, modules, bpftool, trace, secretmem, sockex1 */
	std::string arg;  /* seed, file or instance count; "" when omitted */
	std::uint64_t number = 0; /* the parsed seed or count */
};

struct options {
	std::vector<std::string> backends;
	double machine_gib = 0; /* 0: the backend's default */
	bool aged = true;
	std::uint64_t seed = 1;
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
	bool quiet = false;
	bool help = false;
};

inline constexpr const char *usage_text =
	"usage: ua-replay [--backend sim|real|kernel]... [--machine-gib N] [--aged|--fresh] [--seed N] [--free-chunk-fraction F]\n"
	"                 [--placement-hint] [--no-background] [--no-footprints]\n"
	"                 [--workload KIND[:ARG]]... [--allocator NAME]... [--ops N]\n"
	"                 [--json FILE] [--report DIR] [--reads N] [--samples N] [--quiet]\n"
	"       ua-replay --default [--listings DIR] [--real-ops N] [--allocator NAME]... [--json FILE] [--report DIR]\n"
	"workloads: bpf-churn[:SEED] modules:FILE bpftool:FILE trace:FILE secretmem[:SEED] sockex1:N\n"
	"           vm-host[:SEED] vm-host-2m[:SEED] bpf-fleet[:SEED] tracing-host[:SEED] uptime:FILE colocation:FILE\n"
	"allocators: unmapped naive gfp-unmapped bpf-prog-pack execmem jemalloc (default: all)\n";

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
	bool machine_options = false;
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
			if (auto e = number(o.seed, 0); !e.empty())
				return R::failure(e);
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
			bool known = false;
			for (const char *n : allocator_names)
				known |= v == n;
			if (!known)
				return R::failure("--allocator " + v +
						  ": unknown (expected unmapped, naive, gfp-unmapped, bpf-prog-pack, execmem or jemalloc)");
			bool dup = false;
			for (const auto &x : o.allocators)
				dup |= x == v;
			if (!dup)
				o.allocators.push_back(v);
		} else if (a == "--ops" || a == "--real-ops" || a == "--reads" || a == "--samples") {
			std::uint64_t n = 0;
			if (auto e = number(n, 1); !e.empty())
				return R::failure(e);
			(a == "--ops" ? o.ops : a == "--real-ops" ? o.real_ops : a == "--reads" ? o.reads : o.samples) =
				std::size_t(n);
		} else if (a == "--json" || a == "--report" || a == "--listings") {
			if (!value(v) || v.empty())
				return R::failure(a + " needs a value");
			(a == "--json" ? o.json_file : a == "--report" ? o.report_dir : o.listings_dir) = v;
		} else if (a == "--default") {
			o.default_plan = true;
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
	if (o.backends.empty())
		o.backends.push_back("sim");
	if (o.workloads.empty() && !o.default_plan)
		o.workloads.push_back(workload_spec{"bpf-churn", "", 1});
	if (o.allocators.empty())
		for (const char *n : allocator_names)
			o.allocators.emplace_back(n);
	return R{std::move(o), {}};
}

inline workload::parse_result<options> parse_args(int argc, char **argv)
{
	std::vector<std::string> args(argv + 1, argv + argc);
	return parse_args(args);
}

}  // namespace ua::replay
