// SPDX-License-Identifier: MIT
/*
 * ua-validate - the simulated kernel checked against the published
 * concurrent-sockex1 experiment and against this machine's live runs
 * (docs/validation.md).
 *
 * Runs in the simulator (a) the published experiment at every cell and
 * (b) the live rows of ua-live's files on a machine configured like the one
 * they were measured on, and prints the figures side by side with the
 * ratio and a verdict per cell. The verdicts are computed here from the
 * figures; nothing asserts them.
 */
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "validation/experiments.h"
#include "validation/validation_report.h"

#ifndef UA_VALIDATION_DATA
#define UA_VALIDATION_DATA "bench/validation/data"
#endif

namespace {

using namespace ua;
using namespace ua::validation;

void usage(FILE *f)
{
	std::fprintf(f,
		     "usage: ua-validate [--live-json FILE]... [--live-csv FILE]... [--iomem FILE] [--boot-meminfo FILE]\n"
		     "                   [--published-only | --live-only] [--no-footprints] [--no-boot-program]\n"
		     "                   [--page-age] [--pages-per-instance N] [--table FILE] [--json FILE]\n"
		     "defaults: --live-csv " UA_VALIDATION_DATA "/live-fresh-previous-boot.csv --live-json " UA_VALIDATION_DATA
		     "/live-aged.json\n"
		     "          --iomem " UA_VALIDATION_DATA "/iomem-24g.txt --boot-meminfo " UA_VALIDATION_DATA
		     "/boot-5d22deef/meminfo.txt\n");
}

bool read_file(const std::string &path, std::string &out)
{
	std::ifstream in(path, std::ios::binary);
	if (!in)
		return false;
	std::ostringstream ss;
	ss << in.rdbuf();
	out = ss.str();
	return bool(in) || in.eof();
}

bool write_file(const std::string &path, const std::string &text)
{
	std::ofstream out(path, std::ios::binary);
	out << text;
	return bool(out);
}

}  // namespace

int main(int argc, char **argv)
{
	std::vector<std::string> jsons, csvs;
	std::string iomem = UA_VALIDATION_DATA "/iomem-24g.txt", table_path, json_path;
	std::string boot_meminfo = UA_VALIDATION_DATA "/boot-5d22deef/meminfo.txt";
	bool published = true, live = true;
	published_model pm;
	live_model lm;
	for (int i = 1; i < argc; i++) {
		const std::string a = argv[i];
		auto next = [&]() -> std::string {
			if (i + 1 >= argc) {
				std::fprintf(stderr, "ua-validate: %s needs a value\n", a.c_str());
				std::exit(2);
			}
			return argv[++i];
		};
		if (a == "--live-json")
			jsons.push_back(next());
		else if (a == "--live-csv")
			csvs.push_back(next());
		else if (a == "--iomem")
			iomem = next();
		else if (a == "--boot-meminfo")
			boot_meminfo = next();
		else if (a == "--table")
			table_path = next();
		else if (a == "--json")
			json_path = next();
		else if (a == "--published-only")
			live = false;
		else if (a == "--live-only")
			published = false;
		else if (a == "--no-footprints")
			pm.footprints = false;
		else if (a == "--page-age")
			pm.ageing_by = lm.ageing_by = ageing_mode::page_age;
		else if (a == "--no-boot-program")
			pm.boot_program = lm.boot_program = false;
		else if (a == "--pages-per-instance") {
			const std::string v = next();
			char *end = nullptr;
			const unsigned long n = std::strtoul(v.c_str(), &end, 10);
			if (v.empty() || *end || n == 0 || n > 64) {
				std::fprintf(stderr, "ua-validate: --pages-per-instance wants 1..64, not '%s'\n", v.c_str());
				return 2;
			}
			pm.pages_per_instance = unsigned(n);
		} else if (a == "--help" || a == "-h") {
			usage(stdout);
			return 0;
		} else {
			std::fprintf(stderr, "ua-validate: unknown option '%s'\n", a.c_str());
			usage(stderr);
			return 2;
		}
	}
	if (!published && !live) {
		std::fprintf(stderr, "ua-validate: --published-only and --live-only exclude each other\n");
		return 2;
	}
	if (jsons.empty() && csvs.empty()) {
		csvs.push_back(UA_VALIDATION_DATA "/live-fresh-previous-boot.csv");
		jsons.push_back(UA_VALIDATION_DATA "/live-aged.json");
	}

	/* Read every input before running anything: bad input changes nothing. */
	std::vector<live_row> rows;
	std::int64_t live_boot[3] = {0, 0, 0};
	if (live) {
		for (const std::string &p : csvs) {
			std::string text;
			if (!read_file(p, text)) {
				std::fprintf(stderr, "ua-validate: cannot read %s: %s\n", p.c_str(), std::strerror(errno));
				return 1;
			}
			live_rows r = read_live_csv(text);
			if (!r.ok()) {
				std::fprintf(stderr, "ua-validate: %s: %s\n", p.c_str(), r.error.c_str());
				return 1;
			}
			rows.insert(rows.end(), r.rows.begin(), r.rows.end());
		}
		for (const std::string &p : jsons) {
			std::string text;
			if (!read_file(p, text)) {
				std::fprintf(stderr, "ua-validate: cannot read %s: %s\n", p.c_str(), std::strerror(errno));
				return 1;
			}
			live_rows r = read_live_json(text);
			if (!r.ok()) {
				std::fprintf(stderr, "ua-validate: %s: %s\n", p.c_str(), r.error.c_str());
				return 1;
			}
			rows.insert(rows.end(), r.rows.begin(), r.rows.end());
		}
		std::string text;
		if (!read_file(iomem, text)) {
			std::fprintf(stderr, "ua-validate: cannot read %s: %s\n", iomem.c_str(), std::strerror(errno));
			return 1;
		}
		std::size_t line = 0;
		auto mm = memory_map::parse_iomem(text, &line);
		if (!mm.ok()) {
			std::fprintf(stderr, "ua-validate: %s: not /proc/iomem text (line %zu)\n", iomem.c_str(), line);
			return 1;
		}
		lm.map = std::move(mm.value);
		if (!read_file(boot_meminfo, text)) {
			std::fprintf(stderr, "ua-validate: cannot read %s: %s\n", boot_meminfo.c_str(), std::strerror(errno));
			return 1;
		}
		if (!read_meminfo_directmap(text, live_boot[0], live_boot[1], live_boot[2])) {
			std::fprintf(stderr, "ua-validate: %s: no DirectMap4k/2M/1G lines\n", boot_meminfo.c_str());
			return 1;
		}
	}

	std::string out;
	validation_tallies tl;
	std::vector<published_series> series;
	std::vector<live_point> points;
	if (published) {
		for (bool aged : {false, true})
			for (const char *k : {"5.17", "6.1-rc3"})
				series.push_back(simulate_published(k, aged, pm));
		out += "## The published experiment (LKML " + std::string(published_message_id) + ")\n\n";
		char hdr[512];
		std::snprintf(hdr, sizeof hdr,
			      "Simulated: %llu GiB x86-64 VM (RAM below 3 GiB, PCI hole, rest above 4 GiB); v5.17: %u page(s) "
			      "per instance; footprints %s; %u CPUs; v6.1: %s; aged by %s.\n\n",
			      (unsigned long long)pm.machine_gib, pm.pages_per_instance,
			      pm.footprints ? "2 MiB per instance" : "off", pm.nr_cpus,
			      pm.boot_program ? "one program loaded at boot" : "no program at boot",
			      pm.ageing_by == ageing_mode::page_cache ? "the page cache of a file as large as RAM, reclaimed by the "
									   "allocator's kswapd and direct reclaim"
								       : "phys/page_age.h");
		out += hdr;
		out += boot_table(series) + "\n" + published_table(series, tl) + "\n";
	}
	if (live) {
		for (bool aged : {false, true}) {
			std::string err;
			std::vector<live_point> ps = simulate_live(rows, aged, lm, err);
			if (!err.empty()) {
				std::fprintf(stderr, "ua-validate: the live-like machine (%s): %s\n", aged ? "aged" : "fresh",
					     err.c_str());
				return 1;
			}
			points.insert(points.end(), ps.begin(), ps.end());
		}
		char hdr[512];
		std::snprintf(hdr, sizeof hdr,
			      "## This machine's live runs\n\nSimulated: the memory map of %s (%llu MiB of RAM, max_pfn %llu), "
			      "release 6.18, %u CPUs, one machine per ageing, rows in the order they ran; aged by %s.\n\n",
			      std::filesystem::path(iomem).filename().c_str(), (unsigned long long)(lm.map.ram_pages() >> 8),
			      (unsigned long long)lm.map.end_pfn(), lm.nr_cpus,
			      lm.ageing_by == ageing_mode::page_cache ? "page cache filled before each row as far as its live run "
									"filled it, dropped after"
								      : "phys/page_age.h, once");
		sim_machine_spec spec{lm.map, sim_config{}, false, {}, kernel_page_alloc(lm.nr_cpus)};
		sim_machine_build b = build_sim_machine(spec);
		out += hdr;
		out += "| machine | DM4k/2M/1G kB at boot |\n|---|---|\n| live (" +
		       std::filesystem::path(boot_meminfo).parent_path().filename().string() + ") | " +
		       std::to_string(live_boot[0]) + "/" + std::to_string(live_boot[1]) + "/" + std::to_string(live_boot[2]) +
		       " |\n| simulated | " + (b.error.empty() ? kib_of(sim_stats(*b.m)) : "error: " + b.error) + " |\n\n";
		out += live_table(points, tl) + "\n";
	}
	out += "## Goals\n\n";
	if (published) {
		out += std::string("- DirectMap4k growth within +-30% of published at every point: ") +
		       (tl.growth.met() ? "met" : "not met") + " (" + tl.growth.text() + ")\n";
		out += std::string("- 1 GiB splits within +-1 of published: ") + (tl.gib.met() ? "met" : "not met") + " (" +
		       tl.gib.text() + ")\n";
	}
	if (live)
		out += std::string("- within +-30% of the live delta where it is >= 20 splits: ") +
		       (tl.live.met() ? "met" : "not met") + " (" + tl.live.text() + ")\n";
	std::fputs(out.c_str(), stdout);
	if (!table_path.empty() && !write_file(table_path, out)) {
		std::fprintf(stderr, "ua-validate: cannot write %s\n", table_path.c_str());
		return 1;
	}
	if (!json_path.empty() && !write_file(json_path, validation_json(series, points))) {
		std::fprintf(stderr, "ua-validate: cannot write %s\n", json_path.c_str());
		return 1;
	}
	return 0;
}
