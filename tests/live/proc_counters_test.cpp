// SPDX-License-Identifier: MIT
/* Tests for bench/live/proc_counters.h and the trace reader of page_trace.h. */
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "live/page_trace.h"
#include "live/proc_counters.h"

using namespace ua::live;

namespace {

const char *vmstat_text =
	"nr_free_pages 100\n"
	"direct_map_level2_splits 36\n"
	"direct_map_level3_splits 1\n"
	"direct_map_level2_collapses 0\n"
	"direct_map_level3_collapses 0\n";

const char *meminfo_text =
	"MemTotal:       24611244 kB\n"
	"MemFree:        20000000 kB\n"
	"MemAvailable:   21000000 kB\n"
	"Cached:           100000 kB\n"
	"HugePages_Total:       0\n"
	"DirectMap4k:       94208 kB\n"
	"DirectMap2M:     2002944 kB\n"
	"DirectMap1G:    25165824 kB\n";

/* A fake /proc: a temporary directory with the files given. */
struct fake_proc {
	std::string dir;
	explicit fake_proc(std::initializer_list<std::pair<const char *, std::string>> files)
	{
		char t[] = "/tmp/ua-live-proc-XXXXXX";
		dir = mkdtemp(t);
		for (auto &[n, text] : files) {
			std::filesystem::create_directories(std::filesystem::path(dir + "/" + n).parent_path());
			std::ofstream(dir + "/" + n) << text;
		}
	}
	~fake_proc() { std::filesystem::remove_all(dir); }
};

}  // namespace

TEST_CASE("vmstat: names and values; a malformed line is rejected with its line number")
{
	auto v = parse_vmstat(vmstat_text, "vmstat");
	REQUIRE(v);
	CHECK(v.value.at("direct_map_level2_splits") == 36);
	CHECK(v.value.at("direct_map_level3_splits") == 1);
	auto bad = parse_vmstat("a 1\nb\nc 3\n", "vmstat");
	CHECK(!bad);
	CHECK(bad.error.rfind("vmstat:2: ", 0) == 0);
	CHECK(!parse_vmstat("a 1\nb -2\n", "vmstat"));
	CHECK(parse_vmstat("a 1\nb x\n", "vmstat").error.rfind("vmstat:2:", 0) == 0);
}

TEST_CASE("meminfo: kB and unitless values; a line without a colon or with another unit is rejected")
{
	auto m = parse_meminfo(meminfo_text, "meminfo");
	REQUIRE(m);
	CHECK(m.value.at("DirectMap1G") == 25165824);
	CHECK(m.value.at("HugePages_Total") == 0);
	CHECK(parse_meminfo("MemTotal: 1 kB\nMemFree 2 kB\n", "meminfo").error.rfind("meminfo:2:", 0) == 0);
	CHECK(parse_meminfo("MemTotal: 1 MB\n", "meminfo").error.rfind("meminfo:1:", 0) == 0);
	CHECK(parse_meminfo("MemTotal: 1 kB extra\n", "meminfo").error.rfind("meminfo:1:", 0) == 0);
}

TEST_CASE("buddyinfo and zoneinfo: zones, orders and page counts; malformed lines rejected with the line number")
{
	auto b = parse_buddyinfo("Node 0, zone      DMA      0      1      2\nNode 0, zone   Normal   3091   1465\n",
				 "buddyinfo");
	REQUIRE(b);
	REQUIRE(b.value.size() == 2);
	CHECK(b.value[1].zone == "Normal");
	CHECK(b.value[1].blocks == std::vector<std::uint64_t>{3091, 1465});
	CHECK(parse_buddyinfo("Node 0, zone DMA 1 2\nNode 0, zone Normal 1 x\n", "buddyinfo").error.rfind("buddyinfo:2:", 0) ==
	      0);
	auto z = parse_zoneinfo("Node 0, zone   Normal\n  pages free     628473\n        spanned  5505024\n"
				"        present  5505024\n        managed  720896\n  other x y\n",
				"zoneinfo");
	REQUIRE(z);
	REQUIRE(z.value.size() == 1);
	CHECK(z.value[0].present == 5505024);
	CHECK(z.value[0].managed == 720896);
	CHECK(z.value[0].free == 628473);
	CHECK(parse_zoneinfo("        present  5\n", "zoneinfo").error.rfind("zoneinfo:1:", 0) == 0);
	CHECK(parse_zoneinfo("Node 0, zone DMA\n present x\n", "zoneinfo").error.rfind("zoneinfo:2:", 0) == 0);
}

TEST_CASE("vmallocinfo: bpf_prog_pack areas of 512 pages are packs, others are large programs")
{
	const char *t =
		"0x00000000a-0x00000000b    8192 bpf_prog_alloc_no_stats+0x40/0x1d0 pages=1 vmalloc N0=1\n"
		"0x00000000c-0x00000000d 2101248 bpf_prog_pack_alloc+0x28b/0x3a0 pages=512 vmalloc N0=512\n"
		"0x00000000e-0x00000000f 2101248 bpf_prog_pack_alloc+0x28b/0x3a0 pages=512 vmalloc N0=512\n"
		"0x000000010-0x000000011 3149824 bpf_prog_pack_alloc+0x1ab/0x3a0 pages=768 vmalloc N0=768\n"
		"0x000000012-0x000000013    8192 unpurged vm_area\n";
	auto p = parse_vmallocinfo(t, "vmallocinfo");
	REQUIRE(p);
	CHECK(p.value.packs == 2);
	CHECK(p.value.pack_pages == 1024);
	CHECK(p.value.large == 1);
	CHECK(p.value.large_pages == 768);
	CHECK(parse_vmallocinfo("0x1-0x2 8192 x\nnot a line\n", "vmallocinfo").error.rfind("vmallocinfo:2:", 0) == 0);
	CHECK(parse_vmallocinfo("0x1-0x2 2101248 bpf_prog_pack_alloc+0x2/0x3 vmalloc\n", "vmallocinfo")
		      .error.rfind("vmallocinfo:1:", 0) == 0);
}

TEST_CASE("read_counters on a fake /proc: every key read; a missing key or file named")
{
	{
		fake_proc f({{"vmstat", vmstat_text}, {"meminfo", meminfo_text}});
		auto c = read_counters(f.dir);
		REQUIRE(c);
		CHECK(c.value.l2_splits == 36);
		CHECK(c.value.l3_splits == 1);
		CHECK(c.value.dm_4k_kb == 94208);
		CHECK(c.value.dm_1g_kb == 25165824);
		CHECK(c.value.mem_free_kb == 20000000);
	}
	{
		fake_proc f({{"vmstat", "nr_free_pages 1\n"}, {"meminfo", meminfo_text}});
		auto c = read_counters(f.dir);
		CHECK(!c);
		CHECK(c.error == f.dir + "/vmstat has no direct_map_level2_splits");
	}
	{
		fake_proc f({{"vmstat", vmstat_text}, {"meminfo", "MemTotal: 1 kB\n"}});
		CHECK(read_counters(f.dir).error == f.dir + "/meminfo has no DirectMap4k");
	}
	{
		fake_proc f({{"vmstat", "direct_map_level2_splits 1\ngarbage\n"}, {"meminfo", meminfo_text}});
		CHECK(read_counters(f.dir).error == f.dir + "/vmstat:2: expected `name value`, got `garbage`");
	}
	{
		fake_proc f({{"meminfo", meminfo_text}});
		CHECK(read_counters(f.dir).error.find("vmstat: cannot open") != std::string::npos);
	}
	{
		/* UA_LIVE_PROC_ROOT is the default root. */
		fake_proc f({{"vmstat", vmstat_text}, {"meminfo", meminfo_text}});
		setenv("UA_LIVE_PROC_ROOT", f.dir.c_str(), 1);
		auto c = read_counters();
		unsetenv("UA_LIVE_PROC_ROOT");
		REQUIRE(c);
		CHECK(c.value.l2_splits == 36);
	}
}

TEST_CASE("the real /proc: counters and state read where the kernel has them")
{
	auto c = read_counters("/proc");
	if (!c) {
		MESSAGE("skipped: " << c.error);
		return;
	}
	CHECK(c.value.mem_total_kb > 0);
	CHECK(c.value.dm_4k_kb + c.value.dm_2m_kb + c.value.dm_1g_kb > 0);
	auto s = read_state("/proc");
	if (!s) {
		MESSAGE("state not readable (not root?): " << s.error);
		return;
	}
	CHECK(!s.value.buddy.empty());
	CHECK(!s.value.zones.empty());
	bool has_managed = false;
	for (const auto &z : s.value.zones)
		has_managed |= z.managed > 0;
	CHECK(has_managed);
	CHECK(!s.value.kernel.empty());
}

TEST_CASE("trace text: markers split sections, events give pfn and order, a broken event is rejected")
{
	const char *t =
		"# tracer: nop\n"
		"#\n"
		"   ua-live-1  [000] .....  1.0: mm_page_alloc: page=0 pfn=0x10 order=0 migratetype=0 gfp_flags=GFP_KERNEL\n"
		"   ua-live-1  [000] .....  1.1: tracing_mark_write: ua-live: load 7\n"
		"   ua-live-1  [000] .....  1.2: mm_page_alloc_zone_locked: page=0 pfn=0x200 order=0 migratetype=0 percpu_refill=1\n"
		"   ua-live-1  [000] .....  1.3: mm_page_alloc: page=0 pfn=0x40000 order=3 migratetype=0 gfp_flags=GFP_KERNEL|__GFP_COMP\n"
		"   ua-live-1  [000] .....  1.4: sched_switch: prev=x\n";
	auto s = parse_trace_text(t, "trace");
	REQUIRE(s);
	REQUIRE(s.value.size() == 2);
	CHECK(s.value[0].events.size() == 1);
	CHECK(s.value[1].marker == "load 7");
	REQUIRE(s.value[1].events.size() == 2);
	CHECK(s.value[1].events[0].zone_locked);
	CHECK(s.value[1].events[0].percpu_refill);
	CHECK(s.value[1].events[0].pfn == 0x200);
	CHECK(s.value[1].events[1].order == 3);
	CHECK(s.value[1].events[1].gfp == "GFP_KERNEL|__GFP_COMP");
	auto bad = parse_trace_text("x\n   a-1 [0] ..... 1.0: mm_page_alloc: page=0 order=0\n", "trace");
	CHECK(bad.error.rfind("trace:2:", 0) == 0);
	/* pfns 0x10, 0x200 (same 2 MiB region as 0x10? no: 0x200 is the next one), 0x40000 (the next GiB). */
	auto sp = spread_of({0x10, 0x11, 0x200, 0x40000});
	CHECK(sp.pages == 4);
	CHECK(sp.regions_2m == 3);
	CHECK(sp.regions_1g == 2);
}
