// SPDX-License-Identifier: MIT
/* Tests for bench/validation/live_figures.h. */
#include <doctest/doctest.h>

#include <string>

#include "validation/live_figures.h"

using namespace ua::validation;

namespace {

std::string run_json(const char *workload, bool aged, const char *extra)
{
	return std::string("{\"workload\": \"") + workload + "\", \"aged\": " + (aged ? "true" : "false") +
	       ", \"kernel\": {\"ops\": 1024, \"ops_done\": 1000" + extra +
	       ", \"delta_after\": {\"level2_splits\": 5, \"level3_splits\": 1, \"level2_collapses\": 0,"
	       " \"directmap_4k_kb\": 10240, \"directmap_2m_kb\": 1038336, \"directmap_1g_kb\": -1048576},"
	       " \"state_at_start\": {\"counters\": {\"direct_map_level2_splits\": 7, \"direct_map_level3_splits\": 2}}," +
	       (aged ? " \"ageing\": {\"free_kb_after\": 9366252}," : "") + " \"samples\": []}}";
}

}  // namespace

TEST_CASE("ua-live's JSON gives one row per run that ran, in order")
{
	const std::string j = "[" + run_json("bpf-fill:1:4096", true, ", \"stopped_by\": \"free memory floor\"") + ", " +
			      "{\"workload\": \"secretmem:1\", \"kernel\": {\"skipped\": \"no root\"}}, " +
			      run_json("secretmem-fill:64", false, "") + "]";
	live_rows r = read_live_json(j);
	REQUIRE(r.ok());
	REQUIRE(r.rows.size() == 2);
	const live_row &a = r.rows[0];
	CHECK(a.workload == "bpf-fill:1:4096");
	CHECK(a.aged);
	CHECK(a.ops == 1024);
	CHECK(a.ops_done == 1000);
	CHECK(a.stopped_by == "free memory floor");
	CHECK(a.level2_splits == 5);
	CHECK(a.level3_splits == 1);
	CHECK(a.dm_4k_kb == 10240);
	CHECK(a.dm_1g_kb == -1048576);
	CHECK(a.start_level2 == 7);
	CHECK(a.start_level3 == 2);
	CHECK(a.age_free_kb == 9366252);
	CHECK(r.rows[1].age_free_kb == 0);
	CHECK(r.rows[1].workload == "secretmem-fill:64");
	CHECK_FALSE(r.rows[1].aged);
	CHECK(r.rows[1].stopped_by.empty());
}

TEST_CASE("a run with a missing figure is an error naming it, and gives no rows")
{
	std::string j = "[" + run_json("bpf-fill:4:4096", false, "") + "]";
	j.replace(j.find("\"level3_splits\": 1"), 18, "\"level3_splits\": \"x\"");
	live_rows r = read_live_json(j);
	CHECK_FALSE(r.ok());
	CHECK(r.rows.empty());
	CHECK(r.error.find("bpf-fill:4:4096") != std::string::npos);
	CHECK_FALSE(read_live_json("{}").ok());
	CHECK_FALSE(read_live_json("[1, 2").ok());
}

TEST_CASE("the CSV gives the same rows; comments and blank lines are skipped")
{
	const char *csv = "# comment\n"
			  "\n"
			  "bpf-fill:16:4096,fresh,5376,16384,35,0,71680,-71680,0,63,3,time limit\r\n"
			  "secretmem-fill:64,aged,32768,32768,6,0,12288,-12288,0,98,3,\n";
	live_rows r = read_live_csv(csv);
	REQUIRE(r.ok());
	REQUIRE(r.rows.size() == 2);
	CHECK(r.rows[0].workload == "bpf-fill:16:4096");
	CHECK_FALSE(r.rows[0].aged);
	CHECK(r.rows[0].ops_done == 5376);
	CHECK(r.rows[0].ops == 16384);
	CHECK(r.rows[0].level2_splits == 35);
	CHECK(r.rows[0].dm_2m_kb == -71680);
	CHECK(r.rows[0].start_level2 == 63);
	CHECK(r.rows[0].start_level3 == 3);
	CHECK(r.rows[0].stopped_by == "time limit");
	CHECK(r.rows[1].aged);
	CHECK(r.rows[1].stopped_by.empty());
}

TEST_CASE("a bad CSV line is an error naming its line")
{
	const char *bad[] = {"bpf-fill:1,fresh,1,2,3\n", "bpf-fill:1,old,1,2,3,4,5,6,7,8,9,\n",
			     "bpf-fill:1,fresh,10,2,3,4,5,6,7,8,9,\n", "bpf-fill:1,fresh,1,2,x,4,5,6,7,8,9,\n",
			     ",fresh,1,2,3,4,5,6,7,8,9,\n"};
	for (const char *b : bad) {
		CAPTURE(b);
		live_rows r = read_live_csv(std::string("# c\n") + b);
		CHECK_FALSE(r.ok());
		CHECK(r.rows.empty());
		CHECK(r.error.find("line 2") != std::string::npos);
	}
}

TEST_CASE("meminfo's DirectMap lines are read, and their absence is noticed")
{
	std::int64_t a = 0, b = 0, c = 0;
	CHECK(read_meminfo_directmap("MemTotal: 1 kB\nDirectMap4k:       20480 kB\nDirectMap2M:     2076672 kB\n"
				     "DirectMap1G:    25165824 kB\n",
				     a, b, c));
	CHECK(a == 20480);
	CHECK(b == 2076672);
	CHECK(c == 25165824);
	CHECK_FALSE(read_meminfo_directmap("DirectMap4k: 1 kB\nDirectMap2M: 2 kB\n", a, b, c));
	CHECK_FALSE(read_meminfo_directmap("DirectMap4k: x kB\nDirectMap2M: 2 kB\nDirectMap1G: 3 kB\n", a, b, c));
}
