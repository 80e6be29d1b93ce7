// SPDX-License-Identifier: MIT
/* Tests for bench/replay: options, workload loading, the replay's figures, JSON, goals, plots, the adapter. */
#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "replay/options.h"
#include "replay/replay.h"
#include "replay/report.h"
#include "replay/svg.h"
#include "replay/unmapped_peer.h"
#include "replay/workload_cases.h"

using namespace ua;
using namespace ua::replay;

namespace {

std::string parse_error(std::vector<std::string> args)
{
	auto r = parse_args(args);
	return r.ok() ? std::string() : r.error;
}

workload_case trace_case(const std::string &text)
{
	auto t = workload::parse_trace(text, "test.trace");
	REQUIRE(t.ok());
	workload_case c;
	c.name = "trace:test";
	c.kind = "trace";
	c.w = t.value;
	c.st = workload::measure(c.w);
	return c;
}

machine_setup small_sim(double gib, bool aged)
{
	machine_setup s;
	s.backend = "sim";
	s.gib = gib;
	s.aged = aged;
	s.samples = 16;
	return s;
}

bool has_key(const std::string &json, const char *key) { return json.find("\"" + std::string(key) + "\": ") != std::string::npos; }

}  // namespace

TEST_CASE("options: defaults")
{
	auto r = parse_args(std::vector<std::string>{});
	REQUIRE(r.ok());
	CHECK(r.value.backends == std::vector<std::string>{"sim"});
	REQUIRE(r.value.workloads.size() == 1);
	CHECK(r.value.workloads[0].kind == "bpf-churn");
	CHECK(r.value.allocators.size() == std::size(allocator_names));
	CHECK(r.value.aged);

	auto o = parse_args(std::vector<std::string>{"--backend", "real", "--machine-gib", "0.5", "--fresh", "--workload",
						     "sockex1:512", "--workload", "secretmem:7", "--allocator", "naive",
						     "--allocator", "naive", "--json", "x.json"});
	REQUIRE(o.ok());
	CHECK(o.value.backends == std::vector<std::string>{"real"});
	CHECK(o.value.machine_gib == 0.5);
	CHECK(!o.value.aged);
	CHECK(o.value.workloads[0].number == 512);
	CHECK(o.value.workloads[1].number == 7);
	CHECK(o.value.allocators == std::vector<std::string>{"naive"});
	CHECK(o.value.json_file == "x.json");
}

TEST_CASE("options: every bad argument is refused with a message naming it (exit status 2)")
{
	CHECK(parse_error({"--bogus"}).find("--bogus") != std::string::npos);
	CHECK(parse_error({"--backend"}).find("--backend needs a value") != std::string::npos);
	CHECK(parse_error({"--backend", "qemu"}).find("qemu") != std::string::npos);
	CHECK(parse_error({"--machine-gib", "0"}).find("--machine-gib 0") != std::string::npos);
	CHECK(parse_error({"--machine-gib", "-4"}).find("--machine-gib -4") != std::string::npos);
	CHECK(parse_error({"--machine-gib", "1x"}).find("1x") != std::string::npos);
	CHECK(parse_error({"--workload", "bpf"}).find("unknown workload kind") != std::string::npos);
	CHECK(parse_error({"--workload", "bpf-churn:x1"}).find("x1") != std::string::npos);
	CHECK(parse_error({"--workload", "sockex1"}).find("needs the number of instances") != std::string::npos);
	CHECK(parse_error({"--workload", "sockex1:0"}).find("sockex1:0") != std::string::npos);
	CHECK(parse_error({"--workload", "modules"}).find("needs a file") != std::string::npos);
	CHECK(parse_error({"--workload", "trace:"}).find("needs a file") != std::string::npos);
	CHECK(parse_error({"--allocator", "tcmalloc"}).find("tcmalloc") != std::string::npos);
	CHECK(parse_error({"--ops", "0"}).find("--ops 0") != std::string::npos);
	CHECK(parse_error({"--json"}).find("--json needs a value") != std::string::npos);
	CHECK(parse_error({"--free-chunk-fraction", "1.5"}).find("1.5") != std::string::npos);
	CHECK(parse_error({"--default", "--workload", "bpf-churn"}).find("--default") != std::string::npos);
	CHECK(parse_error({"--default", "--backend", "sim"}).find("--default") != std::string::npos);
	CHECK(parse_error({"--listings", "/tmp"}).find("--default only") != std::string::npos);
}

TEST_CASE("workload files: errors name the file and line")
{
	const std::string path = "/tmp/ua_replay_test_bad.trace";
	{
		std::ofstream f(path);
		f << "alloc 1 100 64\nfree 2\n";
	}
	auto c = load_case({"trace", path, 0}, 0);
	REQUIRE(!c.ok());
	CHECK(c.error.find(path + ":2:") != std::string::npos);
	std::remove(path.c_str());

	auto missing = load_case({"modules", "/nonexistent/lsmod.txt", 0}, 0);
	REQUIRE(!missing.ok());
	CHECK(missing.error.find("/nonexistent/lsmod.txt") != std::string::npos);

	auto churn = load_case({"bpf-churn", "", 3}, 500);
	REQUIRE(churn.ok());
	CHECK(churn.value.w.ops.size() == 500);
	CHECK(churn.value.name == "bpf-churn:3");
	CHECK(churn.value.mem == memory_kind::bpf_text);
	auto secret = load_case({"secretmem", "", 1}, 300);
	REQUIRE(secret.ok());
	CHECK(secret.value.mem == memory_kind::secret);
}

TEST_CASE("unmapped adapter: a peer_allocator over the library's cache")
{
	static_assert(peers::peer_allocator<unmapped_peer<sim_direct_map>>);
	machine<sim_direct_map> m(262144);
	unmapped_peer<sim_direct_map> p(m, cache_config_for(memory_kind::bpf_text));
	auto a = p.alloc(300, 64);
	REQUIRE(a.ok());
	CHECK(a.value % 64 == 0);
	auto s = p.stats();
	CHECK(s.live_count == 1);
	CHECK(s.requested_bytes == 300);
	CHECK(s.live_bytes == 320); /* 64 B granule */
	CHECK(s.chunks == 1);
	CHECK(s.pages_held == pages_per_chunk);
	CHECK(m.backend.direct_map_state(m.backend.alias_frames(a.value)->pfn) == dm_state::invalid);
	CHECK(p.free(a.value + 64) != error::ok); /* interior */
	CHECK(p.free(a.value) == error::ok);
	CHECK(p.free(a.value) != error::ok);      /* double free */
	CHECK(p.stats().chunks == 1);             /* kept as the spare */
	p.drain();
	CHECK(p.stats().chunks == 0);
	CHECK(p.stats().requested_bytes == 0);

	CHECK(cache_config_for(memory_kind::module_text).granule == page_size);
	CHECK(cache_config_for(memory_kind::secret).kind == cache_kind::secret);
	CHECK(cache_config_for(memory_kind::bpf_text).nr_shards == 1);
}

TEST_CASE("replay: a small trace on sim gives consistent figures with every allocator")
{
	/* Peak live: three 1 MiB programs = 3 MiB -> lower bound 2 chunks. */
	auto wc = trace_case("alloc 1 1048576 64\nalloc 2 1048576 64\nfree 1\nalloc 3 1048576 64\nalloc 4 1048576 64\n"
			     "free 2\nalloc 5 4096 64\n");
	CHECK(wc.st.peak_bytes == 3 * 1048576);
	for (const char *alloc : allocator_names) {
		CAPTURE(alloc);
		run_result r = run_case<sim_direct_map>(small_sim(2, false), wc, alloc);
#ifndef UA_REPLAY_JEMALLOC
		if (std::string(alloc) == "jemalloc") {
			CHECK(!r.ran);
			continue;
		}
#endif
		REQUIRE(r.ran);
		CHECK(r.lower_bound_chunks == 2);
		CHECK(r.peak_live_bytes == 3 * 1048576);
		CHECK(r.failed_allocs == 0);
		CHECK(r.failed_frees == 0);
		CHECK(r.allocs == 5);
		CHECK(r.frees == 2);
		CHECK(r.peak_chunks >= r.lower_bound_chunks); /* nobody beats the bound */
		CHECK(r.final_chunks <= r.peak_chunks);
		CHECK(r.drained_chunks == 0);
		CHECK(r.samples.size() >= 2);
		/* 2 GiB: the boot map counts GiB 1's 1 GiB page three times (phys_pud_init(), docs/backends.md) */
		CHECK(r.before.directmap_4k_kb + r.before.directmap_2m_kb + r.before.directmap_1g_kb == 4 * 1048576);
		CHECK(r.after.directmap_4k_kb + r.after.directmap_2m_kb + r.after.directmap_1g_kb == 4 * 1048576);
		if (std::string(alloc) == "unmapped") {
			CHECK(r.peak_chunks <= 3); /* 2 + at most the spare */
			CHECK(r.splits_2m == 0);
			CHECK(r.whole_after_drain);
			CHECK(r.spare_chunks == 1);
		}
	}
}

TEST_CASE("replay: unmapped stays within its bound on churn; naive splits on an aged machine")
{
	auto churn = load_case({"bpf-churn", "", 1}, 4000);
	REQUIRE(churn.ok());
	run_result u = run_case<sim_direct_map>(small_sim(4, true), churn.value, "unmapped");
	REQUIRE(u.ran);
	CHECK(u.failed_allocs == 0);
	CHECK(double(u.peak_chunks) <= 1.05 * double(u.lower_bound_chunks) + double(u.spare_chunks));
	CHECK(u.splits_2m == 0);
	CHECK(std::uint64_t(u.splits_1g) <= (u.peak_chunks + 511) / 512);
	/*
	 * No 4 KiB page is left after the drain. The 1 GiB page the chunk split
	 * stays split: the page allocator put the chunk where its free lists
	 * had a block (not in GiB 0, split at boot, as the address-ordered
	 * model did), and CPA merges a PUD back only after a PMD collapse in
	 * the same change, which a chunk-aligned change never needs.
	 */
	CHECK(u.drained.directmap_4k_kb <= u.before.directmap_4k_kb);
	CHECK(u.whole_after_drain == (u.splits_1g == 0));

	auto sock = load_case({"sockex1", "512", 512}, 0);
	REQUIRE(sock.ok());
	run_result n = run_case<sim_direct_map>(small_sim(2, true), sock.value, "naive");
	run_result v = run_case<sim_direct_map>(small_sim(2, true), sock.value, "unmapped");
	REQUIRE(n.ran);
	REQUIRE(v.ran);
	CHECK(n.splits_2m > 0);
	CHECK(n.prot_changes >= 512);
	CHECK(!n.whole_after_drain); /* restoring never merges (CPA) */
	CHECK(v.splits_2m == 0);
	CHECK(v.peak_chunks == 1);

	/* bpf_prog_pack is not applicable to page-aligned module or secret memory. */
	auto secret = load_case({"secretmem", "", 1}, 200);
	REQUIRE(secret.ok());
	run_result na = run_case<sim_direct_map>(small_sim(1, false), secret.value, "bpf-prog-pack");
	CHECK(!na.ran);
	CHECK(!na.note.empty());
}

TEST_CASE("replay: allocation failures are counted, not fatal")
{
	/* A fresh 4 MiB machine: the page-based naive peer fits, a 6 MiB request does not. */
	auto wc = trace_case("alloc 1 4096 64\nalloc 2 6291456 64\nfree 2\nfree 1\n");
	machine_setup s = small_sim(0.0078125, false); /* 8 MiB */
	run_result r = run_case<sim_direct_map>(s, wc, "unmapped");
	REQUIRE(r.ran);
	CHECK(r.failed_allocs == 1);
	CHECK(r.first_failure.find("op 1") != std::string::npos);
	CHECK(r.frees == 1); /* the free of the failed id is skipped */
}

TEST_CASE("JSON: every key, null for figures a backend cannot read")
{
	auto wc = trace_case("alloc 1 320 64\nalloc 2 640 64\nfree 1\n");
	run_result r = run_case<sim_direct_map>(small_sim(1, false), wc, "unmapped");
	std::string j = run_json(r);
	for (const char *k : {"allocator", "workload", "backend", "peak_live_bytes", "lower_bound_chunks", "peak_chunks",
			      "final_chunks", "directmap_4k_kb", "directmap_2m_kb", "directmap_1g_kb", "splits_2m",
			      "splits_1g", "prot_changes", "tlb_flushes", "ns_per_op", "metadata_bytes", "failed_allocs",
			      "drained_chunks", "whole_after_drain", "directmap_4k_kb_drained"})
		CHECK_MESSAGE(has_key(j, k), k);
	CHECK(has_key(j, "read_ns_ratio") == false);
	CHECK(j.find("\"lower_bound_chunks\": 1") != std::string::npos);

	machine_setup real;
	real.backend = "real";
	real.gib = 0.0625; /* 64 MiB */
	real.aged = false;
	real.samples = 4;
	real.reads = 2048;
	real.read_rounds = 2;
	run_result rr = run_case<linux_backend>(real, wc, "unmapped");
	REQUIRE(rr.ran);
	std::string jr = run_json(rr);
	CHECK(has_key(jr, "pmd_mapped_kb"));
	CHECK(has_key(jr, "read_ns_ratio"));
	CHECK(rr.read_ns_ratio > 0);
	CHECK(rr.reads_after > 0);
	CHECK(rr.reads_after < 2048); /* the chunk out of the direct map is skipped... unless no offset fell in it */
	if (!rr.after.directmap_available)
		CHECK(jr.find("\"directmap_2m_kb\": null") != std::string::npos);

	std::string all = results_json({r, rr});
	CHECK(all.front() == '[');
	CHECK(all.find("},\n") != std::string::npos);
}

TEST_CASE("goals: each line says met or MISSED with its figure")
{
	run_result u;
	u.allocator = "unmapped";
	u.workload = "bpf-churn:1";
	u.workload_kind = "bpf-churn";
	u.machine = "sim-64g-aged";
	u.backend = "sim";
	u.ran = true;
	u.lower_bound_chunks = 10;
	u.peak_chunks = 12; /* > 1.05 x 10 + 1 */
	u.spare_chunks = 1;
	u.splits_2m = 0;
	u.splits_1g = 1;
	u.whole_after_drain = true;
	run_result e = u;
	e.allocator = "execmem";
	e.peak_chunks = 11;
	auto gs = evaluate_goals({u, e});
	int g1 = 0, g3 = 0;
	for (const auto &g : gs) {
		if (g.goal.rfind("G1", 0) == 0) {
			g1++;
			CHECK(!g.met);
			CHECK(g.figure.find("peak 12") != std::string::npos);
		}
		if (g.goal.rfind("G3", 0) == 0) {
			g3++;
			CHECK(!g.met);
		}
		if (g.goal.rfind("G4", 0) == 0 || g.goal.rfind("G5", 0) == 0 || g.goal.rfind("G6", 0) == 0)
			CHECK(g.met);
	}
	CHECK(g1 == 1);
	CHECK(g3 == 1);
	CHECK(goals_markdown(gs).find("**MISSED**") != std::string::npos);
	CHECK(goals_text(gs).find("MISSED") != std::string::npos);
}

TEST_CASE("plots: SVG with one line per allocator and level")
{
	auto wc = trace_case("alloc 1 320 64\nalloc 2 640 64\nfree 1\n");
	run_result a = run_case<sim_direct_map>(small_sim(1, false), wc, "unmapped");
	run_result b = run_case<sim_direct_map>(small_sim(1, false), wc, "naive");
	std::string d = svg::directmap_plot("t", {&a, &b});
	std::string c = svg::chunks_plot("t", {&a, &b});
	auto count = [](const std::string &s, const std::string &what) {
		std::size_t n = 0;
		for (auto p = s.find(what); p != std::string::npos; p = s.find(what, p + 1))
			n++;
		return n;
	};
	CHECK(d.rfind("<svg", 0) == 0);
	CHECK(count(d, "<polyline") == 6);
	CHECK(count(c, "<polyline") == 3); /* two allocators and the lower bound */
	CHECK(d.find("</svg>") != std::string::npos);
}
