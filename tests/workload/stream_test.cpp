// Tests for stream.h and timeline.h, and for op.h's checker on the optional fields.
#include "workload/workload.h"

#include <doctest/doctest.h>

#include <set>
#include <string>
#include <vector>

using namespace ua::workload;

namespace {
std::string check_one_by_one(const std::vector<op> &ops)
{
	return validate(ops);
}

/* A generator of n allocs then their frees, one second apart. */
struct counting_gen {
	std::uint64_t n, at = 0;
	bool next(op &o)
	{
		if (at >= 2 * n)
			return false;
		o = at < n ? op::make_alloc(at + 1, 64, 64).at(at * ns_per_s) : op::make_free(at - n + 1).at(at * ns_per_s);
		at++;
		return true;
	}
};
}  // namespace

TEST_CASE("op_checker: the optional fields' rules, with the op index")
{
	CHECK(check_one_by_one({op::make_alloc(1, 8).at(5), op::make_free(1).at(5)}) == "");
	CHECK(check_one_by_one({op::make_alloc(1, 8).at(5), op::make_free(1).at(4)}) ==
	      "op 1: time 4 ns is before the previous op's 5 ns");
	CHECK(check_one_by_one({op::make_alloc(1, 8192).in_folios(4096)}) == "");
	CHECK(check_one_by_one({op::make_alloc(1, 8192).in_folios(3000)}).find("op 0: alloc of id 1 has folio 3000") == 0);
	CHECK(check_one_by_one({op::make_alloc(1, 6144).in_folios(4096)}).find("not a power of two dividing its size 6144") !=
	      std::string::npos);
	op bad_free = op::make_free(1);
	bad_free.footprint = 4096;
	CHECK(check_one_by_one({op::make_alloc(1, 8), bad_free}) == "op 1: free of id 1 carries an alloc-only field");
	op bad_kind = op::make_alloc(1, 8);
	bad_kind.mem = memory_kind(9);
	CHECK(check_one_by_one({bad_kind}).find("unknown memory kind 9") != std::string::npos);
}

TEST_CASE("measure: per-kind live and peak bytes, footprints, end time")
{
	workload w{"k", {op::make_alloc(1, 100).of(memory_kind::secret).with_footprint(4096).at(1),
			 op::make_alloc(2, 50).of(memory_kind::guest).at(2), op::make_free(1).at(3),
			 op::make_alloc(3, 10).of(memory_kind::secret).at(9)}};
	auto st = measure(w);
	CHECK(st.peak_bytes_by_kind[std::size_t(memory_kind::secret)] == 100);
	CHECK(st.live_bytes_by_kind[std::size_t(memory_kind::secret)] == 10);
	CHECK(st.peak_bytes_by_kind[std::size_t(memory_kind::guest)] == 50);
	CHECK(st.peak_footprint == 4096);
	CHECK(st.live_footprint == 0);
	CHECK(st.end_ns == 9);
}

TEST_CASE("memory kind names round trip")
{
	for (std::size_t i = 0; i < nr_memory_kinds; i++) {
		memory_kind k{};
		REQUIRE(parse_memory_kind(memory_kind_names[i], k));
		CHECK(std::size_t(k) == i);
		CHECK(name_of(k) == memory_kind_names[i]);
	}
	memory_kind k{};
	CHECK_FALSE(parse_memory_kind("text", k));
	CHECK(name_of(memory_kind(200)) == "invalid");
}

TEST_CASE("op_stream: a generator and a vector give the same ops; collect and validate")
{
	op_stream s("counting", counting_gen{100});
	workload w = collect(std::move(s));
	CHECK(w.name == "counting");
	REQUIRE(w.ops.size() == 200);
	CHECK(validate(w) == "");
	workload again = collect(vector_stream(w));
	CHECK(again.ops == w.ops);
	CHECK(again.name == w.name);
	CHECK(validate_stream(vector_stream(w)) == "");
	auto st = measure_stream(op_stream("c", counting_gen{100}));
	CHECK(st.peak_count == 100);
	CHECK(st.end_ns == 199 * ns_per_s);

	/* A stream that has ended stays ended. */
	op_stream once("once", counting_gen{1});
	op o;
	CHECK(once.next(o));
	CHECK(once.next(o));
	CHECK_FALSE(once.next(o));
	CHECK_FALSE(once.next(o));

	workload bad{"bad", {op::make_alloc(1, 8), op::make_free(2)}};
	CHECK(validate_stream(vector_stream(bad)) == "op 1: free of id 2, which is not live");
}

TEST_CASE("merge_by_time: time order, earlier part first on ties, IDs renumbered and distinct")
{
	std::vector<op_stream> parts;
	parts.emplace_back("a", counting_gen{50});
	parts.push_back(vector_stream(workload{"b", {op::make_alloc(1, 8).at(10 * ns_per_s), op::make_free(1).at(10 * ns_per_s),
						    op::make_alloc(2, 16).at(500 * ns_per_s)}}));
	workload m = collect(merge_by_time("m", std::move(parts)));
	CHECK(m.name == "m");
	REQUIRE(m.ops.size() == 103);
	CHECK(validate(m) == "");
	std::set<std::uint64_t> ids;
	for (std::size_t i = 0; i < m.ops.size(); i++) {
		if (i)
			CHECK(m.ops[i - 1].t_ns <= m.ops[i].t_ns);
		if (m.ops[i].k == op::alloc)
			ids.insert(m.ops[i].id);
	}
	CHECK(ids.size() == 52);
	/* At t = 10 s, part a's alloc of id 11 (-> 22) comes before part b's id 1 (-> 3). */
	std::size_t a11 = 0, b1 = 0;
	for (std::size_t i = 0; i < m.ops.size(); i++) {
		if (m.ops[i].k == op::alloc && m.ops[i].id == 22)
			a11 = i;
		if (m.ops[i].k == op::alloc && m.ops[i].id == 3)
			b1 = i;
	}
	CHECK(a11 < b1);
	CHECK(m.ops.back().id == 5); /* b's id 2, last at 500 s */
}

TEST_CASE("timeline: events in time order, ties in scheduling order, none after the end")
{
	timeline<int> tl(100);
	tl.schedule(50, 1);
	tl.schedule(-20, 2);
	tl.schedule(50, 3);
	tl.schedule(101, 4);
	std::vector<int> seen;
	std::vector<std::uint64_t> stamps;
	op o;
	while (tl.next(o, [&](std::int64_t, int e) {
		seen.push_back(e);
		tl.emit(op::make_alloc(std::uint64_t(e), 8));
	}))
		stamps.push_back(o.t_ns);
	CHECK(seen == std::vector<int>{2, 1, 3});
	CHECK(stamps == std::vector<std::uint64_t>{0, 50, 50}); /* before 0 is stamped 0 */
}
