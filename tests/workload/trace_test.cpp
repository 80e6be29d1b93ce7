// Tests for workload/op.h (validator) and workload/trace.h (trace format).
#include "workload/trace.h"

#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <unistd.h>

using namespace ua::workload;

namespace {

std::string fixture(const char *name) { return std::string(UA_FIXTURES) + "/" + name; }

/* Expects parse_trace(text) to fail at line with a message containing words. */
void check_trace_error(const std::string &text, std::size_t line, const char *words)
{
	auto r = parse_trace(text, "t.trace");
	CAPTURE(text);
	CAPTURE(r.error);
	REQUIRE_FALSE(r.ok());
	CHECK(r.error.rfind("t.trace:" + std::to_string(line) + ": ", 0) == 0);
	CHECK(r.error.find(words) != std::string::npos);
}

/*
 * A random valid workload: allocs and frees of live IDs, IDs reused after
 * free; with rich, every optional field of op.h set at random too (memory
 * kinds, folios, footprints, non-decreasing time stamps with nanosecond
 * parts).
 */
workload random_workload(std::uint64_t seed, std::size_t n, bool rich = false)
{
	std::uint64_t now = 0;
	std::mt19937_64 rng(seed);
	workload w{"random " + std::to_string(seed), {}};
	std::vector<std::uint64_t> live;
	std::vector<std::uint64_t> dead;
	std::uint64_t next = 0;
	for (std::size_t i = 0; i < n; i++) {
		if (live.empty() || rng() % 3 != 0) {
			std::uint64_t id;
			if (!dead.empty() && rng() % 2) {
				id = dead.back();
				dead.pop_back();
			} else {
				id = next++ * 7919 + (rng() % 7);  /* sparse, large-ish IDs */
				id = id * 1000003;
			}
			std::size_t size = 1 + rng() % 100000;
			std::size_t align = std::size_t(1) << (rng() % 22);
			op o = op::make_alloc(id, size, align, rng() % 4 ? "" : "tag " + std::to_string(i));
			if (rich) {
				o.mem = memory_kind(rng() % nr_memory_kinds);
				if (rng() % 2) {
					o.folio = std::size_t(1) << (12 + rng() % 10);
					o.size = o.folio * (1 + rng() % 8);
				}
				o.footprint = rng() % 3 ? 0 : std::size_t(rng() % (1u << 30));
				now += rng() % 2 ? 0 : rng() % 5000000000ull;
				o.t_ns = now;
			}
			w.ops.push_back(o);
			live.push_back(id);
		} else {
			std::size_t k = rng() % live.size();
			if (rich)
				now += rng() % 1000;
			w.ops.push_back(op::make_free(live[k]).at(rich ? now : 0));
			dead.push_back(live[k]);
			live[k] = live.back();
			live.pop_back();
		}
	}
	return w;
}

}  // namespace

TEST_CASE("validator: free of unknown id, alloc of live id, bad size and alignment")
{
	std::vector<op> ok = {op::make_alloc(1, 10), op::make_alloc(2, 20, 64), op::make_free(1), op::make_alloc(1, 30)};
	CHECK(validate(ok) == "");

	std::vector<op> unknown = {op::make_alloc(1, 10), op::make_free(2)};
	CHECK(validate(unknown) == "op 1: free of id 2, which is not live");

	std::vector<op> twice = {op::make_alloc(1, 10), op::make_free(1), op::make_free(1)};
	CHECK(validate(twice) == "op 2: free of id 1, which is not live");

	std::vector<op> live = {op::make_alloc(5, 10), op::make_alloc(6, 10), op::make_alloc(5, 10)};
	CHECK(validate(live) == "op 2: alloc of id 5, which is already live");

	std::vector<op> zero = {op::make_alloc(5, 0)};
	CHECK(validate(zero).rfind("op 0: ", 0) == 0);

	std::vector<op> align = {op::make_alloc(5, 10, 1), op::make_alloc(6, 10, 48)};
	CHECK(validate(align).rfind("op 1: ", 0) == 0);
	std::vector<op> align0 = {op::make_alloc(5, 10, 0)};
	CHECK(validate(align0) != "");
}

TEST_CASE("measure: counts, live set and peaks")
{
	workload w{"m", {op::make_alloc(1, 100), op::make_alloc(2, 50), op::make_free(1), op::make_alloc(3, 10)}};
	auto st = measure(w);
	CHECK(st.allocs == 3);
	CHECK(st.frees == 1);
	CHECK(st.live_count == 2);
	CHECK(st.live_bytes == 60);
	CHECK(st.peak_count == 2);
	CHECK(st.peak_bytes == 150);
	CHECK(st.total_bytes == 160);
	CHECK(live_ids(w.ops) == std::vector<std::uint64_t>{2, 3});
}

TEST_CASE("trace fixture: comments, blank lines, default alignment, CRLF, name")
{
	auto r = read_trace(fixture("trace_example.txt"));
	INFO(r.error);
	REQUIRE(r.ok());
	CHECK(r.value.name == "example");
	const std::vector<op> expected = {
		op::make_alloc(1, 320, 64), op::make_alloc(2, 4096, 4096), op::make_alloc(3, 100, 1),
		op::make_free(1), op::make_alloc(1, 448, 64), op::make_free(3),
	};
	CHECK(r.value.ops == expected);
	CHECK(validate(r.value) == "");

	auto unnamed = parse_trace("alloc 1 8\n", "plain.trace");
	REQUIRE(unnamed.ok());
	CHECK(unnamed.value.name == "plain.trace");
}

TEST_CASE("trace round trip: write then read gives the same ops and name")
{
	for (std::uint64_t seed = 1; seed <= 5; seed++) {
		workload w = random_workload(seed, 3000);
		REQUIRE(validate(w) == "");
		std::string text = write_trace(w);
		auto r = parse_trace(text, "rt");
		INFO(r.error);
		REQUIRE(r.ok());
		CHECK(r.value.name == w.name);
		CHECK(r.value.ops == w.ops);
		CHECK(write_trace(r.value).size() <= text.size());  /* only tag comments can be lost */
	}
	workload edge{"edge # with hash", {op::make_alloc(UINT64_MAX, SIZE_MAX, std::size_t(1) << 63, "a\nb"),
					    op::make_free(UINT64_MAX)}};
	auto r = parse_trace(write_trace(edge), "rt");
	INFO(r.error);
	REQUIRE(r.ok());
	CHECK(r.value.ops == edge.ops);
	CHECK(r.value.name == edge.name);
}

TEST_CASE("trace round trip of the optional fields: kind, folio, footprint, time")
{
	for (std::uint64_t seed = 1; seed <= 5; seed++) {
		workload w = random_workload(seed, 3000, true);
		REQUIRE(validate(w) == "");
		auto r = parse_trace(write_trace(w), "rt");
		INFO(r.error);
		REQUIRE(r.ok());
		CHECK(r.value.ops == w.ops);
	}
	const std::string text = "alloc 1 2097152 4096 kind=guest folio=4096 footprint=5242880 t=0.5\n"
				 "alloc 2 320 t=1 kind=bpf_text   # fields in any order\n"
				 "free 1 t=3600.000000001\n"
				 "free 2 t=3600.000000001\n";
	auto r = parse_trace(text, "f");
	INFO(r.error);
	REQUIRE(r.ok());
	const std::vector<op> expected = {
		op::make_alloc(1, 2097152, 4096).of(memory_kind::guest).in_folios(4096).with_footprint(5242880).at(500000000),
		op::make_alloc(2, 320).of(memory_kind::bpf_text).at(1000000000),
		op::make_free(1).at(3600000000001ull),
		op::make_free(2).at(3600000000001ull),
	};
	CHECK(r.value.ops == expected);
	CHECK(write_trace(r.value) == "# workload: f\n"
				       "alloc 1 2097152 4096 kind=guest folio=4096 footprint=5242880 t=0.5\n"
				       "alloc 2 320 kind=bpf_text t=1\n"
				       "free 1 t=3600.000000001\n"
				       "free 2 t=3600.000000001\n");
}

TEST_CASE("trace errors in the optional fields carry the line number")
{
	check_trace_error("alloc 1 8\nalloc 2 8 kind=text\n", 2, "unknown memory kind `text`");
	check_trace_error("alloc 1 8 kind=unspecified\n", 1, "unknown memory kind");
	check_trace_error("alloc 1 8 colour=red\n", 1, "unknown field `colour=red`");
	check_trace_error("alloc 1 8 t=1 t=2\n", 1, "field `t=` given twice");
	check_trace_error("alloc 1 8\nfree 1 kind=secret\n", 2, "belongs to an alloc, not a free");
	check_trace_error("alloc 1 8\nfree 1 folio=4096\n", 2, "belongs to an alloc, not a free");
	check_trace_error("alloc 1 8192 folio=3000\n", 1, "folio 3000 is not a power of two");
	check_trace_error("alloc 1 6144 folio=4096\n", 1, "not a power of two dividing its size 6144");
	check_trace_error("alloc 1 8 folio=x\n", 1, "folio `x` is not a number");
	check_trace_error("alloc 1 8 footprint=-1\n", 1, "footprint `-1` is not a number");
	check_trace_error("alloc 1 8 t=1.0000000001\n", 1, "at most 9 decimals");
	check_trace_error("alloc 1 8 t=1.\n", 1, "at most 9 decimals");
	check_trace_error("alloc 1 8 t=-1\n", 1, "at most 9 decimals");
	check_trace_error("alloc 1 8 t=99999999999999999999\n", 1, "at most 9 decimals");
	check_trace_error("alloc 1 8 t=5\n\n# gap\nfree 1 t=4.5\n", 4, "is before the previous op's");
	check_trace_error("alloc 1 8 4096 7\n", 1, "unexpected field `7`");
	check_trace_error("alloc 1 kind=secret\n", 1, "needs ID and SIZE");
	check_trace_error("free t=1\n", 1, "needs an ID");
}

TEST_CASE("trace round trip through a file")
{
	workload w = random_workload(42, 500);
	const std::string path = (std::filesystem::temp_directory_path() /
				  ("ua_trace_test_" + std::to_string(::getpid()) + ".trace")).string();
	REQUIRE(write_trace_file(w, path) == "");
	auto r = read_trace(path);
	std::remove(path.c_str());
	INFO(r.error);
	REQUIRE(r.ok());
	CHECK(r.value.ops == w.ops);
	CHECK(write_trace_file(w, "/nonexistent-dir/x.trace") != "");
}

TEST_CASE("trace errors carry the line number")
{
	check_trace_error("alloc 1 8\nmalloc 2 8\n", 2, "unknown operation `malloc`");
	check_trace_error("# c\n\nalloc 1\n", 3, "needs ID and SIZE");
	check_trace_error("free\n", 1, "needs an ID");
	check_trace_error("alloc 1 8 8 8\n", 1, "unexpected field");
	check_trace_error("alloc 1 8\nfree 1 2\n", 2, "unexpected field");
	check_trace_error("alloc x 8\n", 1, "ID `x` is not a number");
	check_trace_error("alloc 1 8k\n", 1, "SIZE `8k` is not a number");
	check_trace_error("alloc 1 -8\n", 1, "is not a number");
	check_trace_error("alloc 1 99999999999999999999999\n", 1, "is not a number");
	check_trace_error("alloc 1 8 abc\n", 1, "ALIGN `abc` is not a number");
	check_trace_error("alloc 1 0\n", 1, "SIZE is 0");
	check_trace_error("alloc 1 8 48\n", 1, "ALIGN 48 is not a power of two");
	check_trace_error("alloc 1 8 0\n", 1, "ALIGN 0 is not a power of two");
	check_trace_error("alloc 1 8\r\nfree 2\r\n", 2, "free of id 2, which is not live");
	check_trace_error("alloc 1 8\nfree 1\nfree 1\n", 3, "free of id 1, which is not live");
	check_trace_error("alloc 1 8\n  alloc 1 16  # again\n", 2, "alloc of id 1, which is already live");
	check_trace_error("free 0x10\n", 1, "ID `0x10` is not a number");

	auto missing = read_trace(fixture("no_such.trace"));
	REQUIRE_FALSE(missing.ok());
	CHECK(missing.error.find("cannot open") != std::string::npos);

	auto empty = parse_trace("# nothing\n\n", "e");
	REQUIRE(empty.ok());
	CHECK(empty.value.ops.empty());
}
