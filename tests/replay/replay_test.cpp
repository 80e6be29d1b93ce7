// SPDX-License-Identifier: MIT
/* Tests for bench/replay: options, workload loading, the replay's figures, JSON, goals, plots, the adapter. */
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "replay/options.h"
#include "replay/plan.h"
#include "replay/pool.h"
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
	CHECK(r.value.allocators.size() == nr_allocators);
	CHECK(r.value.aged);
	CHECK(r.value.seeds == 10);
	CHECK(r.value.kernel == peers::newest_release);

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
	/* Contradictions and limits. */
	CHECK(parse_error({"--aged", "--fresh"}).find("--aged and --fresh") != std::string::npos);
	CHECK(parse_error({"--fresh", "--aged"}).find("--aged and --fresh") != std::string::npos);
	CHECK(parse_error({"--real-ops", "100"}).find("--real-ops is used by --default only") != std::string::npos);
	CHECK(parse_error({"--seed", "2", "--seeds", "3"}).find("--seed") != std::string::npos);
	CHECK(parse_error({"--seeds", "0"}).find("--seeds 0") != std::string::npos);
	CHECK(parse_error({"--ops", "100000000"}).find("--ops 100000000: at most") != std::string::npos);
	CHECK(parse_error({"--ops", "18446744073709551615"}).find("--ops") != std::string::npos);
	CHECK(parse_error({"--default", "--real-ops", "100000000"}).find("--real-ops") != std::string::npos);
	CHECK(parse_error({"--kernel", "6.13"}).find("--kernel 6.13") != std::string::npos);
	CHECK(parse_error({"--kernel"}).find("--kernel needs a value") != std::string::npos);
	CHECK(parse_error({"--allocator", "execmem@x"}).find("execmem@x") != std::string::npos);
	CHECK(parse_error({"--allocator", "jemalloc@6.1"}).find("follows no kernel release") != std::string::npos);
	CHECK(parse_error({"--allocator", "execmem@7.1"}).find("newer") != std::string::npos);
	CHECK(parse_error({"--jobs", "0"}).find("--jobs 0") != std::string::npos);
	CHECK(parse_error({"--quick", "--workload", "bpf-churn"}).find("--default") != std::string::npos);
	CHECK(parse_error({"--default", "--real-ops", "500", "--seeds", "3"}).empty());
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
	for (const allocator_info &info : registry) {
		const char *alloc = info.name;
		CAPTURE(alloc);
		if (std::string(alloc) == "guest-memfd") {
			CHECK(!run_case<sim_direct_map>(small_sim(2, false), wc, alloc).ran); /* guest memory only */
			continue;
		}
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

namespace {

run_result fake(const char *alloc, std::uint64_t seed, std::uint64_t peak, std::int64_t s2m, std::int64_t s1g)
{
	run_result u;
	u.allocator = alloc;
	u.workload = "bpf-churn";
	u.workload_kind = "bpf-churn";
	u.machine = "sim-64g-aged";
	u.backend = "sim";
	u.seed = seed;
	u.ran = true;
	u.lower_bound_chunks = 10;
	u.peak_chunks = peak;
	u.spare_chunks = is_library(alloc) ? 1 : 0;
	u.splits_2m = s2m;
	u.splits_1g = s1g;
	u.after.directmap_available = u.drained.directmap_available = true;
	u.whole_after_drain = true;
	return u;
}

const goal_line *goal(const std::vector<goal_line> &gs, const char *prefix)
{
	for (const auto &g : gs)
		if (g.goal.rfind(prefix, 0) == 0)
			return &g;
	return nullptr;
}

}  // namespace

TEST_CASE("goals: every seed against the best peer on that seed; each line says met or MISSED")
{
	/* Seed 2: the library holds 12 chunks > 1.05 x 10 + 1, and splits a 1 GiB page where execmem split none. */
	std::vector<run_result> rs = {fake("unmapped", 1, 11, 0, 0), fake("unmapped", 2, 12, 0, 1),
				      fake("execmem", 1, 11, 5, 1),  fake("execmem", 2, 11, 5, 0),
				      fake("naive", 1, 40, 90, 0),   fake("naive", 2, 40, 90, 2)};
	auto gs = evaluate_goals(rs);
	const goal_line *g1 = goal(gs, "G1"), *g2 = goal(gs, "G2"), *g3 = goal(gs, "G3"), *g4 = goal(gs, "G4");
	REQUIRE(g1);
	REQUIRE(g2);
	REQUIRE(g3);
	REQUIRE(g4);
	CHECK(g1->met);
	CHECK(g1->seeds == 2);
	CHECK(!g2->met); /* seed 2: 1 > execmem's 0 */
	CHECK(g2->seeds_met == 1);
	CHECK(g2->figure.find("best peer") != std::string::npos);
	CHECK(!g3->met);
	CHECK(g3->seeds_met == 1);
	CHECK(g3->figure.find("met on 1 of 2 seeds") != std::string::npos);
	CHECK(g4->met);
	CHECK(goals_markdown(gs).find("**MISSED**") != std::string::npos);
	CHECK(goals_text(gs).find("MISSED") != std::string::npos);
}

TEST_CASE("goals: a run with failed allocations meets no goal, whatever its figures")
{
	/* Peak 4 chunks under a bound of 5: it only looks good because 225 allocations failed. */
	run_result u = fake("unmapped", 1, 4, 0, 0);
	u.lower_bound_chunks = 5;
	u.failed_allocs = 225;
	u.first_failure = "op 7: alloc of 4096 bytes: no memory";
	auto gs = evaluate_goals({u, fake("execmem", 1, 6, 3, 0)});
	REQUIRE(!gs.empty());
	for (const auto &g : gs) {
		CAPTURE(g.goal);
		CHECK(!g.met);
		CHECK(g.figure.find("225 failed allocations") != std::string::npos);
		CHECK(g.figure.find("no memory") != std::string::npos);
	}
	/* A peer with failed allocations is not the best peer. */
	run_result e = fake("execmem", 1, 1, 0, 0);
	e.failed_allocs = 1;
	auto gp = evaluate_goals({fake("unmapped", 1, 10, 0, 1), e, fake("naive", 1, 30, 9, 1)});
	REQUIRE(goal(gp, "G2"));
	CHECK(goal(gp, "G2")->met); /* 1 <= naive's 1; execmem's 0 does not count */
}

TEST_CASE("statistics: median, min, max; ratios seed by seed; a difference only when ranges do not overlap")
{
	range r = range_of({5, 1, 3});
	CHECK(r.median == 3);
	CHECK(r.min == 1);
	CHECK(r.max == 5);
	CHECK(r.n == 3);
	CHECK(range_of({1, 2, 3, 10}).median == 2.5);
	CHECK(range_of({}).n == 0);
	CHECK(range_text(range_of({2, 2})) == "2");
	CHECK(range_text(range_of({1, 2, 9})) == "2 (1-9)");
	CHECK(ratio_of(0, 0) == 1);
	CHECK(std::isinf(ratio_of(3, 0)));
	CHECK(ratio_of(3, 6) == 0.5);

	/* No overlap: a difference; touching or overlapping: none, whatever the medians. */
	CHECK(differs(range_of({1, 2, 3}), range_of({4, 5})) == -1);
	CHECK(differs(range_of({4, 5}), range_of({1, 2, 3})) == 1);
	CHECK(differs(range_of({1, 2, 4}), range_of({4, 9, 9})) == 0);
	CHECK(differs(range_of({1, 1, 8}), range_of({5, 6, 7})) == 0);
	CHECK(!overlaps(range_of({1, 2}), range_of({3})));
	CHECK(verdict(range_of({1, 2}), range_of({3})) == "fewer");
	CHECK(verdict(range_of({1, 5}), range_of({3})) == "same within the seeds");

	/* Groups over seeds, and the ratio taken on the seeds both ran. */
	std::vector<run_result> rs = {fake("unmapped", 1, 10, 0, 0), fake("unmapped", 2, 12, 0, 0),
				      fake("execmem", 1, 20, 4, 0), fake("execmem", 2, 24, 8, 0), fake("execmem", 3, 99, 8, 0)};
	auto gs = group_runs(rs);
	REQUIRE(gs.size() == 2);
	CHECK(gs[0].runs.size() == 2);
	CHECK(gs[1].runs.size() == 3);
	range pr = ratio_range(gs[0], gs[1], *find_figure("peak_chunks"));
	CHECK(pr.n == 2);
	CHECK(pr.min == 0.5);
	CHECK(pr.max == 0.5);
	CHECK(gs[1].of("peak_chunks").median == 24);
	const std::string js = summary_json(rs, evaluate_goals(rs), "ua-replay --seeds 3");
	CHECK(js.find("\"peak_chunks\": {\"median\": 11, \"min\": 10, \"max\": 12, \"n\": 2}") != std::string::npos);
	CHECK(js.find("\"verdict\": \"fewer\"") != std::string::npos);
	CHECK(js.find("\"goals\": [") != std::string::npos);
	CHECK(text_table(rs).find("11 (10-12)") != std::string::npos);
}

TEST_CASE("lower bound: sizes near 2^64 do not wrap")
{
	CHECK(chunks_for_bytes(0) == 0);
	CHECK(chunks_for_bytes(1) == 1);
	CHECK(chunks_for_bytes(chunk_size) == 1);
	CHECK(chunks_for_bytes(chunk_size + 1) == 2);
	CHECK(chunks_for_bytes(~std::uint64_t{0}) == (~std::uint64_t{0}) / chunk_size + 1);
	workload_case wc = trace_case("alloc 1 4096 64\n");
	wc.st.peak_bytes = ~std::uint64_t{0} - 5;
	run_result r = run_case<sim_direct_map>(small_sim(1, false), wc, "bpf-prog-pack", peers::v5_17);
	CHECK(r.lower_bound_chunks > (std::uint64_t{1} << 40));
}

TEST_CASE("releases: --kernel and NAME@X.Y; a listing's source kernel")
{
	linux_version v;
	CHECK(parse_release("6.13-rc", v));
	CHECK(v == peers::v6_13_rc);
	CHECK(parse_release("6.13-rc1", v)); /* a bare -rc is -rc1 */
	CHECK(v == peers::v6_13_rc);
	CHECK(parse_release("6.15-rc5", v));
	CHECK(v == linux_version{6, 15, 5});
	CHECK(v < peers::v6_15);
	CHECK(v.str() == "6.15-rc5");
	CHECK(!parse_release("6.15-rc0", v));
	CHECK(!parse_release("6.15-rcx", v));
	CHECK(!parse_release("6.15-rc1x", v));
	CHECK(!parse_release("6.15-", v));
	CHECK(!parse_release("-rc1", v));
	CHECK(parse_release("5.10", v));
	CHECK(v.str() == "5.10");
	CHECK(!parse_release("6", v));
	CHECK(!parse_release("6.x", v));
	CHECK(!parse_release("6.1.2", v));
	CHECK(parse_kernel_choice("6.15", v));
	CHECK(!parse_kernel_choice("6.13", v));
	CHECK(source_kernel("Debian 11 KVM guest, kernel 5.10") == linux_version{5, 10});
	CHECK(source_kernel("NixOS desktop, Linux 6.9, systemd") == linux_version{6, 9});
	CHECK(source_kernel("Lenovo laptop, kernel 6.15-rc5, systemd") == linux_version{6, 15, 5});
	CHECK(source_kernel("a guest, Linux 6.13-rc") == peers::v6_13_rc);
	CHECK(source_kernel("HP Omen 16 laptop, Slackware, kernel 6.x") == linux_version{});

	auto o = parse_args(std::vector<std::string>{"--kernel", "6.1", "--allocator", "execmem@6.13-rc", "--allocator",
						     "execmem"});
	REQUIRE(o.ok());
	CHECK(o.value.kernel == peers::v6_1);
	CHECK(o.value.allocators.size() == 2);

	/* A peer at a release without it is not run, and says so; at one with it, it runs. */
	auto wc = trace_case("alloc 1 4096 64\nfree 1\n");
	run_result old = run_case<sim_direct_map>(small_sim(1, false), wc, "bpf-prog-pack@5.17");
	CHECK(!old.ran);
	CHECK(old.note.find("not in Linux 5.17") != std::string::npos);
	run_result now = run_case<sim_direct_map>(small_sim(1, false), wc, "bpf-prog-pack");
	CHECK(now.ran);
	CHECK(now.release == peers::newest_release.str());

	/* A release's candidates have what its merge window brought: execmem is in 6.15-rc (925f42645118), as in 6.15. */
	for (const char *a : {"execmem@6.15-rc", "execmem@6.15-rc1", "execmem@6.15-rc7", "execmem@6.15", "execmem@6.13-rc"}) {
		CAPTURE(a);
		CHECK(parse_error({"--allocator", a}).empty());
		run_result e = run_case<sim_direct_map>(small_sim(1, false), wc, a);
		CHECK(e.ran);
		CHECK(e.note == "");
	}
	for (const char *a : {"execmem@6.13", "execmem@6.14-rc3", "execmem@6.12"}) {
		CAPTURE(a);
		run_result e = run_case<sim_direct_map>(small_sim(1, false), wc, a);
		CHECK(!e.ran);
		CHECK(e.note.find("not in Linux") != std::string::npos);
	}
	CHECK(run_case<sim_direct_map>(small_sim(1, false), wc, "execmem@6.15-rc2").release == "6.15-rc2");
	CHECK(parse_error({"--allocator", "execmem@6.15-rcx"}).find("X.Y-rcN") != std::string::npos);

	/* The plan runs release-following peers at the listing's kernel beside the newest. */
	const std::string dir = "/tmp/ua_replay_test_src";
	std::filesystem::create_directories(dir);
	{
		std::ofstream(dir + "/SOURCES.md") << "| `lsmod_x.txt` | lsmod | somewhere | a guest, kernel 6.1 | 2 |\n";
		std::ofstream(dir + "/lsmod_x.txt") << "Module Size Used by\next4 1048576 1\nxfs 2097152 0\n";
	}
	auto po = parse_args(std::vector<std::string>{"--workload", "modules:" + dir + "/lsmod_x.txt", "--seeds", "2",
						      "--allocator", "unmapped", "--allocator", "execmem"});
	REQUIRE(po.ok());
	plan p;
	p.machines.push_back({small_sim(1, true), po.value.workloads, {}, {}, 0, 1, 2});
	REQUIRE(add_runs(po.value, p).empty());
	CHECK(p.machines[0].source[0] == peers::v6_1);
	std::set<std::string> labels;
	for (const plan_run &r : p.runs)
		labels.insert(r.allocator);
	CHECK(labels == std::set<std::string>{"unmapped", "execmem", "execmem@6.1"});
	CHECK(p.runs.size() == 6);
	std::filesystem::remove_all(dir);
}

TEST_CASE("registry: bpf-prog-pack+freetype is bpf_prog_pack's packs over freetype-unmapped pages")
{
	/*
	 * One program on a fresh machine. bpf-prog-pack's 6.18 pack is 512 order-0 vmalloc pages made ROX, whose
	 * alias step splits the 2 MiB direct-map page(s) they lie in; on freetype-unmapped the 512 pages are one
	 * pageblock taken out of the direct map whole (in place), and set_memory_rox() finds them not present.
	 */
	auto wc = trace_case("alloc 1 320 64\nfree 1\n");
	run_result plain = run_case<sim_direct_map>(small_sim(1, false), wc, "bpf-prog-pack");
	run_result ft = run_case<sim_direct_map>(small_sim(1, false), wc, "bpf-prog-pack+freetype");
	REQUIRE(plain.ran);
	REQUIRE(ft.ran);
	CHECK(ft.failed_allocs == 0);
	CHECK(ft.failed_frees == 0);
	CHECK(plain.splits_2m >= 1);
	CHECK(ft.splits_2m == 0);
	CHECK(ft.peak_chunks == 1);
	CHECK(ft.release == peers::newest_release.str());
	/* It follows the pack's release: no pack before 5.18-rc1, a one-page pack at 5.18 (no pageblock to flip whole). */
	const allocator_info *info = find_allocator("bpf-prog-pack+freetype");
	REQUIRE(info != nullptr);
	CHECK(info->rule == follows::release);
	CHECK(parse_error({"--allocator", "bpf-prog-pack+freetype@5.18"}).empty());
	run_result old = run_case<sim_direct_map>(small_sim(1, false), wc, "bpf-prog-pack+freetype@5.17");
	CHECK(!old.ran);
	CHECK(old.note.find("not in Linux 5.17") != std::string::npos);
	/* BPF only, as bpf_prog_pack. */
	CHECK(!applicable("bpf-prog-pack+freetype", memory_kind::secret));
	CHECK(!applicable("bpf-prog-pack+freetype", memory_kind::module_text));
	CHECK(applicable("bpf-prog-pack+freetype", memory_kind::bpf_text));
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
	/* The summary figure: one bar per (workload, design) per panel, in the registry's colours. */
	std::vector<run_result> rs = {a, b};
	auto gs = group_runs(rs);
	std::string sum = svg::summary_plot("sim-1g-fresh", {&gs[0], &gs[1]});
	CHECK(count(sum, "</rect>") == 3 * 2);
	CHECK(sum.find(colour_of("unmapped")) != std::string::npos);
	CHECK(sum.find(colour_of("naive")) != std::string::npos);
	CHECK(count(c, "<polyline") == 3); /* two allocators and the lower bound */
	CHECK(d.find("</svg>") != std::string::npos);
}

TEST_CASE("registry: every allocator complete, named once, found by name and by name@release")
{
	std::set<std::string> names, colours;
	for (const allocator_info &a : registry) {
		CAPTURE(a.name);
		REQUIRE(a.name != nullptr);
		CHECK(std::string(a.name).find_first_of("@ ") == std::string::npos);
		CHECK(names.insert(a.name).second);
		REQUIRE(a.colour != nullptr);
		CHECK(std::string(a.colour).size() == 7);
		CHECK(colours.insert(a.colour).second);
		CHECK(a.kinds != 0);
		CHECK(a.serves != nullptr);
		CHECK(bool(a.run_sim));
		CHECK(bool(a.run_real));
		CHECK(find_allocator(a.name) == &a);
		CHECK(find_allocator(std::string(a.name) + "@6.1") == &a);
		CHECK(colour_of(a.name) == a.colour);
	}
	CHECK(find_allocator("tcmalloc") == nullptr);
	CHECK(library_allocator().rule == follows::library);
	CHECK(is_library(library_allocator().name));
	/* The options accept exactly the registry. */
	for (const allocator_info &a : registry)
		CHECK(parse_error({"--allocator", a.name}).empty());
	CHECK(parse_error({"--allocator", "tcmalloc"}).find(allocator_list()) != std::string::npos);
	/* What each serves: a workload of another kind is not applicable, and the note says what it serves. */
	CHECK(!applicable("bpf-prog-pack", memory_kind::secret));
	CHECK(applicable("bpf-prog-pack", memory_kind::bpf_text));
	CHECK(!applicable("guest-memfd", memory_kind::bpf_text));
	CHECK(applicable("guest-memfd", memory_kind::guest));
	auto wc = trace_case("alloc 1 4096 64\nfree 1\n");
	run_result r = run_case<sim_direct_map>(small_sim(1, false), wc, "guest-memfd");
	CHECK(!r.ran);
	CHECK(r.note.find(find_allocator("guest-memfd")->serves) != std::string::npos);
}

TEST_CASE("pool: runs spread over workers come back in plan order, each as it runs alone")
{
	auto churn = load_case({"bpf-churn", "", 1}, 600, 1);
	REQUIRE(churn.ok());
	const char *allocs[] = {"unmapped", "naive", "execmem", "gfp-unmapped"};
	auto one = [&](std::size_t i) {
		machine_setup s = small_sim(1, true);
		s.seed = 1 + i / 4;
		return run_case<sim_direct_map>(s, churn.value, allocs[i % 4]);
	};
	std::size_t calls = 0, last_done = 0;
	auto par = run_pool(8, 2, one, [&](std::size_t, std::size_t done, const run_result &) {
		calls++;
		CHECK(done == last_done + 1);
		last_done = done;
	});
	CHECK(calls == 8);
	REQUIRE(par.size() == 8);
	for (std::size_t i = 0; i < 8; i++) {
		CAPTURE(i);
		run_result alone = one(i);
		CHECK(par[i].allocator == allocs[i % 4]);
		CHECK(par[i].seed == 1 + i / 4);
		CHECK(par[i].peak_chunks == alone.peak_chunks);
		CHECK(par[i].splits_2m == alone.splits_2m);
		CHECK(par[i].splits_1g == alone.splits_1g);
		CHECK(par[i].drained_chunks == alone.drained_chunks);
	}
	CHECK(progress_prefix(1, 4, 10).find("about 30 s left") != std::string::npos);
}
