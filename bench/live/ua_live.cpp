// SPDX-License-Identifier: MIT
/*
 * ua-live - workloads replayed on the running kernel, measured with the
 * kernel's own counters (docs/live.md). The same runs are reachable as
 * `ua-replay --backend kernel`; this program adds the fills the live figures
 * are made of, the pack trace, and several machine states in one command.
 *
 *   --workload SPEC     repeatable: bpf-fill:PACKS[:SIZE], secretmem-fill:MIB,
 *                       and ua-replay's bpf-churn[:SEED], bpftool:FILE,
 *                       sockex1:N, trace:FILE, secretmem[:SEED] (modules:FILE
 *                       is skipped: no loadable modules here)
 *   --fresh | --aged    repeatable, in order: the machine states to run each
 *                       workload on (default --fresh: this run does not age
 *                       the machine; --aged fills page cache first)
 *   --ops N             churn length of bpf-churn and secretmem
 *   --floor-gib F       MemFree never below F GiB (default 6)
 *   --age-reserve-gib F ageing stops F GiB above the floor (default 2)
 *   --max-seconds S     each run's ops stop after S s (default 120)
 *   --age-max-seconds S ageing stops after S s (default 60)
 *   --age-dir DIR       where the sparse file is made (default /var/tmp)
 *   --samples N         counter samples per run (default 20)
 *   --trace-packs       BPF: the frames refilled for each new pack, from tracefs
 *   --default           the main job's bounded set (see usage)
 *   --listings DIR      with --default: the bpftool_* listings to replay
 *   --json FILE         one object per run (bench/replay's keys + "kernel")
 *   --table FILE        the markdown table of docs/live.md
 *   --write-traces DIR  write each workload as a trace file (for the simulated
 *                       side) and run nothing
 *   --quiet             no progress lines
 *
 * Exit status: 0 when every run was made or skipped with its reason, 2 for
 * bad arguments, 1 when output could not be written, 130 when stopped by a
 * signal (everything held was released first).
 */
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "live/live_report.h"
#include "live/live_workloads.h"
#include "replay/options.h"
#include "replay/workload_cases.h"

namespace {

using namespace ua;

constexpr const char *usage =
	"usage: ua-live [--workload SPEC]... [--fresh|--aged]... [--ops N] [--floor-gib F] [--age-reserve-gib F]\n"
	"               [--max-seconds S] [--age-max-seconds S] [--age-dir DIR] [--samples N] [--trace-packs]\n"
	"               [--json FILE] [--table FILE] [--write-traces DIR] [--quiet]\n"

	"       ua-live --default [--listings DIR] [--json FILE] [--table FILE]\n"
	"workloads: bpf-fill:PACKS[:SIZE] secretmem-fill:MIB bpf-churn[:SEED] bpftool:FILE sockex1:N trace:FILE\n"
	"           secretmem[:SEED]\n"
	"--default: the bpftool listings of --listings, sockex1:512, bpf-fill:1, secretmem-fill:64, bpf-churn:1 and\n"
	"           secretmem:1 (2000 ops each), on the machine as found (fresh), 30 s per run at most\n";

struct live_case {
	std::string name, kind;
	live::live_kind lk = live::live_kind::bpf;
	workload::workload w;
	std::unordered_map<std::uint64_t, std::size_t> wanted; /* bpftool: the listed jited sizes */
	std::string skip;                                        /* modules: why not live */
};

int bad(const std::string &m)
{
	std::fprintf(stderr, "ua-live: %s\n", m.c_str());
	return 2;
}

bool parse_double(const std::string &s, double &v)
{
	char *end = nullptr;
	v = std::strtod(s.c_str(), &end);
	return !s.empty() && end && *end == '\0' && v >= 0;
}

/* "" or the error. */
std::string load_live_case(const std::string &spec, std::size_t ops, live_case &c)
{
	auto colon = spec.find(':');
	const std::string kind = spec.substr(0, colon);
	const std::string arg = colon == std::string::npos ? "" : spec.substr(colon + 1);
	c.kind = kind;
	if (kind == "bpf-fill") {
		std::uint64_t packs = 0, size = live::bpf_fill_default_size;
		auto c2 = arg.find(':');
		if (!workload::detail::parse_u64(arg.substr(0, c2), packs) || packs == 0 || packs > 64)
			return "--workload " + spec + ": bpf-fill needs a number of packs between 1 and 64";
		if (c2 != std::string::npos &&
		    (!workload::detail::parse_u64(arg.substr(c2 + 1), size) || size % 64 || size < 128 || size > (1u << 20)))
			return "--workload " + spec + ": the size must be a multiple of 64 between 128 and 1048576";
		c.w = live::bpf_fill(packs, size);
		c.name = c.w.name;
		c.lk = live::live_kind::bpf;
		return {};
	}
	if (kind == "secretmem-fill") {
		std::uint64_t mib = 0;
		if (!workload::detail::parse_u64(arg, mib) || mib == 0 || mib > 4096)
			return "--workload " + spec + ": secretmem-fill needs a size in MiB between 1 and 4096";
		c.w = live::secretmem_fill(mib);
		c.name = c.w.name;
		c.lk = live::live_kind::secret;
		return {};
	}
	replay::workload_spec ws;
	if (auto e = replay::detail::parse_workload_spec(spec, ws); !e.empty())
		return e + " (or bpf-fill:PACKS[:SIZE], secretmem-fill:MIB)";
	auto wc = replay::load_case(ws, ops);
	if (!wc)
		return wc.error;
	c.name = wc.value.name;
	c.w = std::move(wc.value.w);
	c.skip = live::kernel_lacks(ws.kind);
	if (c.skip.empty() && wc.value.mem == replay::memory_kind::module_text)
		c.skip = live::kernel_lacks("modules");
	c.lk = wc.value.mem == replay::memory_kind::secret ? live::live_kind::secret : live::live_kind::bpf;
	if (ws.kind == "bpftool") {
		auto l = workload::read_bpftool(ws.arg);
		if (l)
			for (const auto &p : l.value.programs)
				if (p.is_jited())
					c.wanted[p.id] = p.jited;
	}
	return {};
}

bool write_file(const std::string &path, const std::string &text)
{
	std::ofstream f(path, std::ios::binary | std::ios::trunc);
	f << text;
	f.close();
	if (!f)
		std::fprintf(stderr, "ua-live: %s: cannot write\n", path.c_str());
	return bool(f);
}

}  // namespace

int main(int argc, char **argv)
{
	std::vector<std::string> specs, states;
	std::string json_file, table_file, traces_dir, listings;
	std::size_t ops = 0;
	bool quiet = false, dflt = false;
	live::live_config cfg;
	std::vector<std::string> args(argv + 1, argv + argc);
	for (std::size_t i = 0; i < args.size(); i++) {
		const std::string &a = args[i];
		auto value = [&](std::string &out) {
			if (i + 1 >= args.size())
				return false;
			out = args[++i];
			return true;
		};
		std::string v;
		double d = 0;
		std::uint64_t n = 0;
		if (a == "--help" || a == "-h") {
			std::fputs(usage, stdout);
			return 0;
		} else if (a == "--workload") {
			if (!value(v))
				return bad("--workload needs a value");
			specs.push_back(v);
		} else if (a == "--fresh" || a == "--aged") {
			states.push_back(a.substr(2));
		} else if (a == "--ops" || a == "--samples") {
			if (!value(v) || !workload::detail::parse_u64(v, n) || n == 0)
				return bad(a + " needs a whole number of at least 1");
			(a == "--ops" ? ops : cfg.samples) = std::size_t(n);
		} else if (a == "--floor-gib" || a == "--age-reserve-gib" || a == "--max-seconds" || a == "--age-max-seconds") {
			if (!value(v) || !parse_double(v, d))
				return bad(a + " needs a non-negative number");
			if (a == "--floor-gib")
				cfg.floor_gib = d;
			else if (a == "--age-reserve-gib")
				cfg.age_reserve_gib = d;
			else if (a == "--max-seconds")
				cfg.max_seconds = d;
			else
				cfg.age.max_seconds = d;
		} else if (a == "--age-dir" || a == "--json" || a == "--table" || a == "--write-traces" || a == "--listings") {
			if (!value(v) || v.empty())
				return bad(a + " needs a value");
			(a == "--age-dir" ? cfg.age.dir : a == "--json" ? json_file : a == "--table" ? table_file
						      : a == "--write-traces"                  ? traces_dir
											       : listings) = v;
		} else if (a == "--trace-packs") {
			cfg.trace_packs = true;
		} else if (a == "--default") {
			dflt = true;
		} else if (a == "--quiet") {
			quiet = true;
		} else {
			return bad("unknown argument " + workload::detail::quote(a) + " (see --help)");
		}
	}
	if (dflt) {
		if (!specs.empty() || !states.empty())
			return bad("--default runs its own workloads on the machine as found: no --workload, --fresh or --aged");
		if (!listings.empty())
			for (const auto &s : replay::listing_specs(listings))
				if (s.kind == "bpftool")
					specs.push_back("bpftool:" + s.arg);
		for (const char *s : {"sockex1:512", "bpf-fill:1", "secretmem-fill:64", "bpf-churn:1", "secretmem:1"})
			specs.push_back(s);
		ops = ops ? ops : 2000;
		cfg.max_seconds = std::min(cfg.max_seconds, 30.0);
	} else if (!listings.empty()) {
		return bad("--listings is used by --default only");
	}
	if (states.empty())
		states.push_back("fresh");
	if (specs.empty())
		specs.push_back("bpf-fill:1");

	std::vector<live_case> cases;
	for (const auto &s : specs) {
		live_case c;
		if (auto e = load_live_case(s, ops, c); !e.empty())
			return bad(e);
		cases.push_back(std::move(c));
	}
	bool ok = true;
	if (!traces_dir.empty()) {
		std::error_code ec;
		std::filesystem::create_directories(traces_dir, ec);
		for (const auto &c : cases) {
			const std::string path = traces_dir + "/" + replay::slug(c.name) + ".trace";
			std::string e = workload::write_trace_file(c.w, path);
			if (!e.empty()) {
				std::fprintf(stderr, "ua-live: %s\n", e.c_str());
				ok = false;
			} else if (!quiet) {
				std::printf("%s\n", path.c_str());
			}
		}
		return ok ? 0 : 1;
	}

	live::signal_guard signals; /* between runs too: a Ctrl-C ends the program after the run in progress */
	std::string json = "[\n";
	std::string table =
		"Live runs on the running kernel: its own bpf_prog_pack (BPF text) and secretmem (secrets), as it ships "
		"them, not the project's designs. Figures are deltas of its global counters; the direct map stays split "
		"until reboot, so each run starts where the last one left it (state at start in the last column).\n\n" +
		live::table_header();
	std::size_t n_runs = 0;
	for (const auto &state : states) {
		for (const auto &c : cases) {
			if (live::stop_requested())
				break;
			live::live_config rc = cfg;
			rc.aged = state == "aged";
			live::live_result lr;
			if (!c.skip.empty()) {
				lr.kind = c.lk;
				lr.skipped = c.skip;
			} else {
				lr = live::run_live(c.w, c.lk, rc, c.wanted);
			}
			replay::run_result rr = live::to_run_result(lr, c.w, c.name, c.kind);
			if (!c.skip.empty())
				rr.allocator = c.kind == "vm-host" || c.kind == "vm-host-2m"
						       ? "none"     /* no design of this kernel serves it */
						       : "execmem"; /* this kernel's design for module text, not run live */

			if (!lr.ran) {
				rr.aged = rc.aged;
				rr.machine = rc.aged ? "kernel-aged" : "kernel-fresh";
			}
			json += std::string(n_runs++ ? ",\n" : "") + "  " + live::run_json(rr, live::kernel_json(lr));
			table += live::table_line(c.name, rr, lr);
			if (!quiet) {
				if (lr.ran)
					std::fprintf(stderr, "%s %s: level2 %+lld level3 %+lld splits, DirectMap4k %+lld kB%s%s\n",
						     rr.machine.c_str(), c.name.c_str(),
						     (long long)live::delta(lr.after.l2_splits, lr.before.l2_splits),
						     (long long)live::delta(lr.after.l3_splits, lr.before.l3_splits),
						     (long long)live::delta(lr.after.dm_4k_kb, lr.before.dm_4k_kb),
						     lr.stopped_by.empty() ? "" : ", stopped: ", lr.stopped_by.c_str());
				else
					std::fprintf(stderr, "%s: live run skipped: %s\n", c.name.c_str(), lr.skipped.c_str());
			}
		}
	}
	json += "\n]\n";
	std::fputs(table.c_str(), stdout);
	if (!json_file.empty())
		ok = write_file(json_file, json) && ok;
	if (!table_file.empty())
		ok = write_file(table_file, table) && ok;
	if (live::stop_requested()) {
		std::fprintf(stderr, "ua-live: stopped by signal %d; everything held was released\n", live::stop_signal_number());
		return 130;
	}
	return ok ? 0 : 1;
}
