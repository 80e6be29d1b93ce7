// Tests for tracing_host.h: hundreds of kprobe and uprobe programs attached and detached.
#include "workload/tracing_host.h"

#include <doctest/doctest.h>

#include <cmath>
#include <unordered_map>

#include "support.h"

using namespace ua::workload;
using ua::chunk_size;
using ua::page_size;

TEST_CASE("tracing host: deterministic per seed, different across seeds, valid")
{
	tracing_host_params p;
	p.hours = 6;
	workload a = generate_tracing_host(p);
	CHECK(a.ops == generate_tracing_host(p).ops);
	p.seed = 2;
	workload c = generate_tracing_host(p);
	CHECK_FALSE(a.ops == c.ops);
	CHECK(validate(a) == "");
	CHECK(validate(c) == "");
}

TEST_CASE("tracing host: sessions load their probes at once and free them at once; agents stay")
{
	tracing_host_params p;
	p.hours = 6;
	std::unordered_map<std::uint64_t, std::uint64_t> born;
	std::size_t agents = 0, kprobes = 0, uprobes = 0;
	auto st = test::walk(tracing_host_stream(p), [&](const op &o, const op_checker &) {
		if (o.k == op::alloc) {
			CHECK(o.mem == memory_kind::bpf_text);
			CHECK(o.align == 64);
			agents += o.tag == "agent";
			kprobes += o.tag == "kprobe";
			uprobes += o.tag == "uprobe";
			born[o.id] = o.t_ns;
		}
	});
	CHECK(agents == p.agent_programs);
	CHECK(kprobes > 0);
	CHECK(uprobes > 0);
	CHECK(st.live_count >= p.agent_programs);
}

TEST_CASE("tracing host: hundreds of programs live, the M/M/inf mean, on a long run")
{
	/*
	 * Live programs = agents + programs of live sessions. Sessions: M/M/inf,
	 * mean 30, lifetimes 10 min; over 10 days the time average of the
	 * session count has sd sqrt(2 * 30 * 600 / 864000) = 0.2, and of the
	 * programs (9.2 per session, with their own spread) a few programs: the
	 * check allows 5%.
	 */
	tracing_host_params p;
	p.hours = 240;
	const double avg = test::time_average(tracing_host_stream(p), 0, [](const op_checker &c) {
		return double(c.stats().live_count);
	});
	CHECK(p.mean_live_programs() == doctest::Approx(40 + 30 * 32 / std::log(33.0)));
	CHECK(avg == doctest::Approx(p.mean_live_programs()).epsilon(0.05));
	CHECK(avg > 200);
}
