// SPDX-License-Identifier: MIT
/*
 * replay/workload_cases.h - turning --workload specs into op sequences.
 *
 * Each spec becomes one workload_case: its op sequence (bench/workload/),
 * a short name for tables and file names, and the memory kind (workload/op.h)
 * that picks the cache configuration and the peers' settings (allocators.h):
 *
 *   bpf-churn[:SEED]  generate_bpf_churn(server preset, SEED)      bpf_text
 *   bpftool:FILE      bpf_listing_workload(read_bpftool(FILE), pack) bpf_text
 *   sockex1:N         generate_sockex1(N instances, pack sizes)      bpf_text
 *   trace:FILE        read_trace(FILE)                               bpf_text
 *   modules:FILE      generate_module_churn(read_modules(FILE))      module_text
 *   secretmem[:SEED]  generate_secretmem_churn(SEED)                 secret
 *   vm-host[:SEED]    generate_vm_host(256 GiB, 4 KiB folios, SEED)  guest
 *   vm-host-2m[:SEED] generate_vm_host(256 GiB, 2 MiB folios, SEED)  guest
 *   bpf-fleet[:SEED]  generate_bpf_fleet(1000 endpoints, SEED)       bpf_text
 *   tracing-host[:SEED] generate_tracing_host(SEED)                  bpf_text
 *   uptime:FILE       generate_uptime(read_modules(FILE))            module_text
 *   colocation:FILE   generate_colocation(read_modules(FILE))        secret
 *
 * The last six mix memory kinds (or, for vm-host, need a host of 256 GiB or
 * more: --machine-gib): each op carries its own kind (op.h memory_kind), and
 * the kind given here is only the whole workload's until the replay routes
 * op by op. They are generated as streams and collected here.
 *
 * The replay frees what is still live itself (after measuring), so the
 * generators run without their own drain. `ops` (when non-zero) replaces the
 * churn length of bpf-churn and secretmem. A file that cannot be read or
 * parsed gives the reader's message, "FILE:LINE: what is wrong".
 */
#pragma once

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "workload/workload.h"
#include "workload_case.h"

namespace ua::replay {

inline std::string file_stem(const std::string &path)
{
	std::string s = std::filesystem::path(path).filename().string();
	if (auto dot = s.rfind('.'); dot != std::string::npos && dot > 0)
		s.resize(dot);
	return s;
}

/* The kinds whose argument is a generator seed (the others take a file or a count). */
inline bool seeded_kind(const std::string &kind)
{
	return kind == "bpf-churn" || kind == "secretmem" || kind == "vm-host" || kind == "vm-host-2m" ||
	       kind == "bpf-fleet" || kind == "tracing-host";
}

/*
 * The release a listing came from: the row naming the file in a SOURCES.md
 * beside it or one directory up (workloads/SOURCES.md: "Debian 11 KVM
 * guest, kernel 5.10"), read by source_kernel(); {} when no row says.
 */
inline linux_version source_kernel_of(const std::string &path)
{
	namespace fs = std::filesystem;
	const std::string file = fs::path(path).filename().string();
	const fs::path dir = fs::path(path).parent_path();
	for (const fs::path &md : {dir / "SOURCES.md", dir.parent_path() / "SOURCES.md"}) {
		std::ifstream in(md);
		for (std::string line; std::getline(in, line);)
			if (line.find("`" + file + "`") != std::string::npos)
				return source_kernel(line);
	}
	return {};
}

/*
 * The case of a spec. `seed` 0: the spec's own seed (a generator's
 * argument, default 1) and its name says it ("bpf-churn:3"). `seed` s > 0:
 * run s of a plan over seeds: a seeded generator uses its argument + s - 1,
 * the listing generators (modules, uptime, colocation) and sockex1 use s,
 * and the name leaves the seed out ("bpf-churn", "bpf-churn:3" for a base
 * of 3), so the runs of every seed group under one name. A bpftool listing
 * and a trace are the same at every seed; only the ageing seed changes.
 */
inline workload::parse_result<workload_case> load_case(const workload_spec &spec, std::size_t ops, std::uint64_t seed = 0)
{
	using R = workload::parse_result<workload_case>;
	workload_spec s = spec;
	if (seed && seeded_kind(s.kind))
		s.number = (s.arg.empty() ? 1 : s.number) + seed - 1;
	const std::uint64_t gen_seed = seed ? seed : 1;
	workload_case c;
	c.kind = s.kind;
	if (s.kind == "bpf-churn") {
		auto p = workload::bpf_churn_params::server();
		p.seed = s.number;
		if (ops)
			p.ops = ops;
		c.w = workload::generate_bpf_churn(p);
		c.name = "bpf-churn:" + std::to_string(s.number);
	} else if (s.kind == "secretmem") {
		workload::secretmem_params p;
		p.seed = s.number;
		if (ops)
			p.ops = ops;
		c.w = workload::generate_secretmem_churn(p);
		c.name = "secretmem:" + std::to_string(s.number);
		c.mem = memory_kind::secret;
	} else if (s.kind == "vm-host" || s.kind == "vm-host-2m") {
		auto p = s.kind == "vm-host" ? workload::vm_host_params::defaults() : workload::vm_host_params::huge_folios();
		p.seed = s.number;
		c.w = workload::generate_vm_host(p);
		c.name = s.kind + ":" + std::to_string(s.number);
		c.mem = memory_kind::guest;
	} else if (s.kind == "bpf-fleet") {
		workload::bpf_fleet_params p;
		p.seed = s.number;
		c.w = workload::generate_bpf_fleet(p);
		c.name = "bpf-fleet:" + std::to_string(s.number);
	} else if (s.kind == "tracing-host") {
		workload::tracing_host_params p;
		p.seed = s.number;
		c.w = workload::generate_tracing_host(p);
		c.name = "tracing-host:" + std::to_string(s.number);
	} else if (s.kind == "uptime" || s.kind == "colocation") {
		auto l = workload::read_modules(s.arg);
		if (!l)
			return R::failure(l.error);
		if (s.kind == "uptime") {
			workload::uptime_params up;
			up.seed = gen_seed;
			c.w = workload::generate_uptime(l.value, up);
			c.mem = memory_kind::module_text;
		} else {
			workload::colocation_params cp;
			cp.seed = gen_seed;
			c.w = workload::generate_colocation(l.value, cp);
			c.mem = memory_kind::secret;
		}
		c.name = s.kind + ":" + file_stem(s.arg);
	} else if (s.kind == "sockex1") {
		workload::sockex1_params p;
		p.instances = std::size_t(s.number);
		p.seed = gen_seed;
		c.w = workload::generate_sockex1(p);
		c.name = "sockex1:" + std::to_string(s.number);
	} else if (s.kind == "modules") {
		auto l = workload::read_modules(s.arg);
		if (!l)
			return R::failure(l.error);
		workload::module_churn_params mp;
		mp.seed = gen_seed;
		c.w = workload::generate_module_churn(l.value, mp);
		c.name = "modules:" + file_stem(s.arg);
		c.mem = memory_kind::module_text;
	} else if (s.kind == "bpftool") {
		auto l = workload::read_bpftool(s.arg);
		if (!l)
			return R::failure(l.error);
		c.name = "bpftool:" + file_stem(s.arg);
		c.w = workload::bpf_listing_workload(l.value, workload::bpf_alloc_model::pack, c.name);
		if (c.w.ops.empty())
			return R::failure(s.arg + ": no JIT-ed program to replay");
	} else if (s.kind == "trace") {
		auto t = workload::read_trace(s.arg);
		if (!t)
			return R::failure(t.error);
		c.w = std::move(t.value);
		c.name = "trace:" + file_stem(s.arg);
		if (c.w.ops.empty())
			return R::failure(s.arg + ": the trace has no operation");
	} else {
		return R::failure("unknown workload kind " + s.kind);
	}
	if (seed && seeded_kind(s.kind))
		c.name = s.kind + (spec.arg.empty() ? "" : ":" + spec.arg);
	if (s.kind == "modules" || s.kind == "bpftool" || s.kind == "uptime" || s.kind == "colocation")
		c.source_kernel = source_kernel_of(s.arg);
	if (std::string why = workload::validate(c.w); !why.empty())
		return R::failure(c.name + ": " + why);
	c.st = workload::measure(c.w);
	return R{std::move(c), {}};
}

/* The listings of a directory the default plan replays, sorted by name: modules first, then bpftool. */
inline std::vector<workload_spec> listing_specs(const std::string &dir)
{
	std::vector<std::string> mods, progs;
	std::error_code ec;
	for (const auto &e : std::filesystem::directory_iterator(dir, ec)) {
		if (!e.is_regular_file(ec))
			continue;
		std::string f = e.path().filename().string();
		if (f.rfind("lsmod_", 0) == 0 || f.rfind("proc_modules_", 0) == 0)
			mods.push_back(e.path().string());
		else if (f.rfind("bpftool_", 0) == 0)
			progs.push_back(e.path().string());
	}
	std::sort(mods.begin(), mods.end());
	std::sort(progs.begin(), progs.end());
	std::vector<workload_spec> out;
	for (auto &m : mods)
		out.push_back({"modules", m, 0});
	for (auto &p : progs)
		out.push_back({"bpftool", p, 0});
	return out;
}

}  // namespace ua::replay
