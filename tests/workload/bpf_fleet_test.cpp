// Tests for bpf_fleet.h: a Cilium/Katran node with thousands of endpoints.
#include "workload/bpf_fleet.h"

#include <doctest/doctest.h>

#include <cmath>
#include <unordered_map>
#include <unordered_set>

#include "support.h"

using namespace ua::workload;
using ua::chunk_size;
using ua::page_size;
using ua::workload::test::proportion_tolerance;

namespace {
bpf_fleet_params short_run(std::uint64_t seed = 1)
{
	bpf_fleet_params p;
	p.seed = seed;
	p.hours = 4;
	return p;
}
}  // namespace

TEST_CASE("bpf fleet: deterministic per seed, different across seeds, valid")
{
	workload a = generate_bpf_fleet(short_run(1));
	CHECK(a.ops == generate_bpf_fleet(short_run(1)).ops);
	workload c = generate_bpf_fleet(short_run(2));
	CHECK_FALSE(a.ops == c.ops);
	CHECK(validate(a) == "");
	CHECK(validate(c) == "");
	CHECK(a.name == "bpf_fleet_1000ep");
}

TEST_CASE("bpf fleet: boot loads the node's programs and every endpoint's set, sizes as bpf_prog_pack allocates")
{
	bpf_fleet_params p = short_run(3);
	std::unordered_map<std::string, std::pair<std::size_t, std::size_t>> range; /* name -> alloc size range */
	for (const auto &s : endpoint_programs)
		range[s.name] = {bpf_pack_alloc_size(s.jited_lo), bpf_pack_alloc_size(s.jited_hi)};
	for (const auto &s : node_programs)
		range[s.name] = {bpf_pack_alloc_size(s.jited_lo), bpf_pack_alloc_size(s.jited_hi)};
	std::size_t at_zero = 0;
	test::walk(bpf_fleet_stream(p), [&](const op &o, const op_checker &) {
		if (o.k != op::alloc)
			return;
		CHECK(o.mem == memory_kind::bpf_text);
		CHECK(o.align == 64);
		CHECK(o.size % 64 == 0);
		REQUIRE(range.count(o.tag));
		CHECK(o.size >= range[o.tag].first);
		CHECK(o.size <= range[o.tag].second);
		at_zero += o.t_ns == 0;
	});
	CHECK(at_zero == node_programs.size() + p.endpoints * endpoint_programs.size());
	CHECK(bpf_pack_alloc_size(10305) == 10368); /* Katran's balancer_ingress */
}

TEST_CASE("bpf fleet: policy updates replace a share of the endpoints, old programs freed after the grace period")
{
	bpf_fleet_params p = short_run(4);
	bpf_fleet_generator g(p);
	op_checker c;
	std::unordered_set<std::uint64_t> load_times;
	std::size_t grace_frees = 0;
	const std::uint64_t grace = std::uint64_t(p.grace_s * 1e9);
	for (op o; g.next(o);) {
		REQUIRE(c.check(o) == "");
		if (o.k == op::alloc)
			load_times.insert(o.t_ns);
		else if (o.t_ns >= grace && load_times.count(o.t_ns - grace))
			grace_frees++;
	}
	/* Updates are Poisson: their count within 5 sd of hours / interval. */
	const double expected = p.hours * 3600 / p.update_interval_s;
	CHECK(std::fabs(double(g.updates()) - expected) < 5 * std::sqrt(expected));
	/* Each regenerates round(5%) of ~1000 endpoints: 12 programs each, freed grace_s after their successors. */
	const double per_update = double(g.regenerations()) / double(g.updates());
	CHECK(per_update == doctest::Approx(p.update_fraction * double(p.endpoints)).epsilon(0.1));
	CHECK(grace_frees >= g.regenerations() * endpoint_programs.size() * 9 / 10);
}

TEST_CASE("bpf fleet: live programs stay within 1,000 - 50,000, however the node is pushed")
{
	struct push {
		std::size_t endpoints;
		double fraction;
	};
	for (push pu : {push{4100, 0.5}, push{60, 0.05}, push{1000, 0.05}}) {
		bpf_fleet_params p = short_run(5);
		p.endpoints = pu.endpoints;
		p.update_fraction = pu.fraction;
		p.update_interval_s = 30;
		p.grace_s = 20;
		p.endpoint_lifetime_h = 0.5; /* fast churn */
		CAPTURE(pu.endpoints);
		bpf_fleet_generator g(p);
		op_checker c;
		std::size_t lo = SIZE_MAX, hi = 0;
		for (op o; g.next(o);) {
			REQUIRE(c.check(o) == "");
			if (o.t_ns > 0) { /* after the boot's loads */
				lo = std::min(lo, c.stats().live_count);
				hi = std::max(hi, c.stats().live_count);
			}
		}
		CHECK(hi <= p.max_programs);
		if (pu.endpoints * 12 + 26 >= p.min_programs)
			CHECK(lo >= p.min_programs);
		if (pu.endpoints == 4100)
			CHECK(hi >= p.max_programs - 12 * 2); /* pressed against the top */
	}
}

TEST_CASE("bpf fleet: the endpoint population averages its target (M/M/inf)")
{
	/*
	 * Stationary M/M/inf with mean m and exponential lifetimes tau: the time
	 * average over T has sd about sqrt(2 m tau / T); with m = 1000, tau = 1 h,
	 * T = 48 h that is 6.5 endpoints, 78 programs; the check allows 5 sd.
	 */
	bpf_fleet_params p;
	p.seed = 6;
	p.hours = 48;
	p.endpoint_lifetime_h = 1;
	p.update_interval_s = 0; /* no updates: live programs = node + 12 x endpoints */
	const double avg = test::time_average(bpf_fleet_stream(p), 0, [](const op_checker &c) {
		return double(c.stats().live_count);
	});
	CHECK(std::fabs(avg - p.mean_live_programs()) < 5 * 78);
}
