// SPDX-License-Identifier: MIT
/*
 * Tests for bench/live: the program maker, the secret-file plan, the fills,
 * graceful absence (forced through UA_LIVE_FORCE_ABSENT and a fake /proc),
 * the stop path, ageing, the report shapes, and small live runs that assert
 * only what the kernel guarantees. The live runs need root; elsewhere they
 * say why they were skipped.
 */
#include <doctest/doctest.h>

#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

#include "live/live_workloads.h"
#include "live/replay_hook.h"

using namespace ua::live;
using ua::workload::op;

namespace {

/* Bytes the x86-64 JIT emits for the body of program_insns() (bpf_prog.h): 2, 5 or 3 per instruction. */
std::size_t modelled_body(const std::vector<bpf_insn> &v)
{
	std::size_t n = 0;
	for (std::size_t i = 1; i + 1 < v.size(); i++) /* the first `r0 = 0` and the exit are the fixed part */
		n += v[i].code == (BPF_ALU | BPF_ADD | BPF_K) ? 3 : v[i].imm == 0 ? 2 : 5;
	return n;
}

struct env_guard {
	const char *name;
	env_guard(const char *n, const char *v) : name(n) { setenv(n, v, 1); }
	~env_guard() { unsetenv(name); }
};

bool is_root() { return geteuid() == 0; }

void check_monotone(const kernel_counters &a, const kernel_counters &b)
{
	CHECK(b.l2_splits >= a.l2_splits);
	CHECK(b.l3_splits >= a.l3_splits);
	CHECK(b.l2_collapses >= a.l2_collapses);
	CHECK(b.l3_collapses >= a.l3_collapses);
}

}  // namespace

TEST_CASE("program_insns: every body length from 2 bytes up is made exactly; 1 becomes 2")
{
	for (std::size_t body = 0; body < 64; body++) {
		auto v = program_insns(body);
		CHECK(v.front().code == (BPF_ALU64 | BPF_MOV | BPF_K));
		CHECK(v.back().code == (BPF_JMP | BPF_EXIT));
		CHECK(modelled_body(v) == (body == 1 ? 2 : body));
	}
	CHECK(image_for_alloc(320) == 296);
	CHECK(image_for_alloc(4096) == 4072);
	CHECK(image_for_alloc(129) == 168); /* rounded to 192 as allocated */
}

TEST_CASE("plan_secret_files: a user's pages are one file, released at its last free")
{
	/* user A: ids 1-3; user B: 4-5; B exits first, then A. */
	std::vector<op> ops = {op::make_alloc(1, 4096), op::make_alloc(2, 4096), op::make_alloc(3, 4096),
			       op::make_alloc(4, 4096), op::make_alloc(5, 4096), op::make_free(4),
			       op::make_free(5),        op::make_free(1),        op::make_free(2),
			       op::make_free(3)};
	auto p = detail::plan_secret_files(ops);
	REQUIRE(p.pages.size() == 2);
	CHECK(p.pages[0] == 3);
	CHECK(p.pages[1] == 2);
	CHECK(p.release_at[0] == 9);
	CHECK(p.release_at[1] == 6);
	CHECK(p.group_of_op[3] == 1);
	CHECK(p.index_of_op[4] == 1);
	CHECK(p.group_of_op[7] == 0);

	/* Two users freed back to back in allocation order are one file: nothing happens between their frees. */
	std::vector<op> joined = {op::make_alloc(1, 4096), op::make_alloc(2, 4096), op::make_free(1), op::make_free(2)};
	auto q = detail::plan_secret_files(joined);
	REQUIRE(q.pages.size() == 1);
	CHECK(q.release_at[0] == 3);

	/* Pages never freed: a file never released by the ops (the run releases it at the end). */
	std::vector<op> live = {op::make_alloc(1, 4096), op::make_alloc(2, 4096), op::make_alloc(3, 4096), op::make_free(3)};
	auto l = detail::plan_secret_files(live);
	REQUIRE(l.pages.size() == 2);
	CHECK(l.pages[0] == 2);
	CHECK(l.release_at[0] == std::size_t(-1));
	CHECK(l.release_at[1] == 3);
}

TEST_CASE("the fills: bpf-fill holds PACKS packs of programs, secretmem-fill MIB MiB, then frees everything")
{
	auto b = bpf_fill(2);
	CHECK(ua::workload::validate(b) == "");
	auto st = ua::workload::measure(b);
	CHECK(st.allocs == 1024);
	CHECK(st.peak_bytes == 2 * ua::workload::bpf_prog_pack_size);
	CHECK(st.live_bytes == 0);
	auto s = secretmem_fill(4);
	CHECK(ua::workload::validate(s) == "");
	CHECK(ua::workload::measure(s).peak_bytes == 4u << 20);
	CHECK(ua::workload::measure(s).allocs == 1024);
}

TEST_CASE("graceful absence: each missing piece skips the run with a one-line reason")
{
	for (const char *what : {"root", "bpf", "memfd_secret", "counters"}) {
		env_guard g("UA_LIVE_FORCE_ABSENT", what);
		const live_kind k = std::string(what) == "memfd_secret" ? live_kind::secret : live_kind::bpf;
		auto r = run_live(k == live_kind::secret ? secretmem_fill(1) : bpf_fill(1), k, live_config{});
		CHECK(!r.ran);
		CHECK(!r.skipped.empty());
		CHECK(r.skipped.find('\n') == std::string::npos);
		const std::string w = what;
		const char *said = w == "root" ? "not root" : w == "bpf" ? "BPF unavailable" : w == "counters" ? "counters missing"
												      : "memfd_secret unavailable";
		if (is_root() || w == "root")
			CHECK(r.skipped.find(said) != std::string::npos);
	}
	{
		/* A /proc without the direct-map counters. */
		char t[] = "/tmp/ua-live-proc-XXXXXX";
		std::string dir = mkdtemp(t);
		std::ofstream(dir + "/vmstat") << "nr_free_pages 1\n";
		std::ofstream(dir + "/meminfo") << "MemTotal: 1 kB\n";
		env_guard g("UA_LIVE_PROC_ROOT", dir.c_str());
		auto r = run_live(secretmem_fill(1), live_kind::secret, live_config{});
		std::filesystem::remove_all(dir);
		CHECK(!r.ran);
		if (is_root())
			CHECK(r.skipped == "kernel counters missing: " + dir + "/vmstat has no direct_map_level2_splits");
	}
	/* The skip reaches the report: ran false, the reason in the note and in "kernel". */
	env_guard g("UA_LIVE_FORCE_ABSENT", "root");
	ua::replay::workload_case wc;
	wc.name = "secretmem-fill:1";
	wc.kind = "secretmem";
	wc.mem = ua::replay::memory_kind::secret;
	wc.w = secretmem_fill(1);
	ua::replay::machine_setup ms;
	ms.backend = "kernel";
	ms.aged = false;
	CHECK(runs_live("naive", wc));
	CHECK(!runs_live("unmapped", wc));
	auto rr = run_case(ms, wc, "naive");
	CHECK(!rr.ran);
	CHECK(rr.note.rfind("live run skipped: not root", 0) == 0);
	const std::string js = results_json({rr});
	CHECK(js.find("\"backend\": \"kernel\"") != std::string::npos);
	CHECK(js.find("\"kernel\": {\"design\": \"secretmem\"") != std::string::npos);
	CHECK(js.find("\"skipped\": \"not root") != std::string::npos);
}

TEST_CASE("designs the kernel lacks, and secret ops larger than a page, are skipped with the reason")
{
	CHECK(kernel_lacks("vm-host").find("GUEST_MEMFD_FLAG_NO_DIRECT_MAP") != std::string::npos);
	CHECK(kernel_lacks("modules").find("no loadable modules") != std::string::npos);
	CHECK(kernel_lacks("uptime") == kernel_lacks("modules"));
	CHECK(kernel_lacks("secretmem").empty());
	CHECK(kernel_lacks("bpf-churn").empty());
	ua::workload::workload w{"big", {op::make_alloc(1, 4096, 4096), op::make_alloc(2, 2 << 20, 2 << 20)}};
	auto r = run_live(w, live_kind::secret, live_config{});
	CHECK(!r.ran);
	if (is_root() && live_availability(live_kind::secret).empty())
		CHECK(r.skipped == "secretmem faults one page at a time: this workload has 2097152-byte secret allocations");
}

TEST_CASE("ageing: bounded by bytes and by the free-memory floor; the file never outlives the filler")
{
	page_cache_filler f;
	age_params p;
	p.dir = std::filesystem::temp_directory_path().string();
	p.max_bytes = 16u << 20;
	p.stop_free_kb = 0;
	auto r = f.fill(p);
	CHECK(r.err == 0);
	CHECK(r.bytes_read == p.max_bytes);
	CHECK(r.stopped_by == "max bytes");
	CHECK(!std::filesystem::exists(p.dir + "/ua-live-age." + std::to_string(getpid())));
	CHECK(f.holding());
	f.release();
	CHECK(!f.holding());
	p.stop_free_kb = std::uint64_t(1) << 50; /* no machine has that much free: stops before reading */
	auto r2 = f.fill(p);
	CHECK(r2.bytes_read == 0);
	CHECK(r2.stopped_by == "free memory floor");
}

TEST_CASE("live secretmem: counters never decrease, the released memory leaves DirectMap4k where it was or higher")
{
	if (!is_root()) {
		MESSAGE("skipped: not root");
		return;
	}
	if (auto why = live_availability(live_kind::secret); !why.empty()) {
		MESSAGE("skipped: " << why);
		return;
	}
	live_config cfg;
	cfg.samples = 4;
	auto r = run_live(secretmem_fill(4), live_kind::secret, cfg);
	REQUIRE(r.ran);
	CHECK(r.stopped_by == "");
	CHECK(r.pages_touched == 1024);
	CHECK(r.files_opened == 1);
	CHECK(r.files_released == 1);
	check_monotone(r.start.counters, r.before);
	check_monotone(r.before, r.after);
	check_monotone(r.after, r.released);
	for (std::size_t i = 1; i < r.samples.size(); i++)
		check_monotone(r.samples[i - 1].c, r.samples[i].c);
	CHECK(r.released.dm_4k_kb >= r.before.dm_4k_kb);
}

TEST_CASE("live BPF: one pack of programs, every image within the tolerance, every program closed")
{
	if (!is_root()) {
		MESSAGE("skipped: not root");
		return;
	}
	if (auto why = live_availability(live_kind::bpf); !why.empty()) {
		MESSAGE("skipped: " << why);
		return;
	}
	const long at_start = count_programs_named("ua_live");
	REQUIRE(at_start >= 0);
	live_config cfg;
	cfg.samples = 4;
	auto r = run_live(bpf_fill(1), live_kind::bpf, cfg);
	REQUIRE(r.ran);
	CHECK(r.stopped_by == "");
	CHECK(r.failed_allocs == 0);
	CHECK(r.programs_loaded == 512);
	CHECK(r.programs_closed == r.programs_loaded);
	CHECK(r.size_below_minimum == 0);
	CHECK(r.size_error_min >= -jited_tolerance);
	CHECK(r.size_error_max <= jited_tolerance);
	CHECK(r.packs_max >= r.packs_before.packs);
	check_monotone(r.before, r.after);
	check_monotone(r.after, r.released);
	CHECK(r.released.dm_4k_kb >= r.before.dm_4k_kb);
	/* The kernel frees a closed program's id at once, its memory after an RCU grace period. */
	long now = count_programs_named("ua_live");
	for (int i = 0; i < 30 && now > at_start; i++) {
		std::this_thread::sleep_for(std::chrono::milliseconds(100));
		now = count_programs_named("ua_live");
	}
	CHECK(now == at_start);
}

TEST_CASE("a stop request ends the run before its next op and releases everything")
{
	if (!is_root() || !live_availability(live_kind::secret).empty()) {
		MESSAGE("skipped: not root or no memfd_secret");
		return;
	}
	{
		signal_guard g;
		std::raise(SIGINT);
	}
	REQUIRE(stop_requested());
	auto r = run_live(secretmem_fill(4), live_kind::secret, live_config{});
	clear_stop();
	REQUIRE(r.ran);
	CHECK(r.ops_done == 0);
	CHECK(r.stopped_by.rfind("stop requested", 0) == 0);
	CHECK(r.files_opened == r.files_released);
	auto lr = to_run_result(r, secretmem_fill(4), "secretmem-fill:4", "secretmem");
	CHECK(lr.note.find("stopped after 0 of") != std::string::npos);
}
