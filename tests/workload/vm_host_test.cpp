// Tests for vm_host.h: a week of VM churn on a confidential-guest host.
#include "workload/vm_host.h"

#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <unordered_map>

#include "support.h"

using namespace ua::workload;
using ua::chunk_size;
using ua::page_size;
using ua::workload::test::mean_tolerance;
using ua::workload::test::proportion_tolerance;

namespace {
/*
 * A small host for fast tests: 32 GiB for two days, VMs living 0.8 h on
 * average (median 0.5 h, sigma 1) and faulting their memory within 15
 * minutes, so that about 130 of them come and go.
 */
vm_host_params small_host(std::uint64_t seed = 1)
{
	vm_host_params p;
	p.seed = seed;
	p.host_gib = 32;
	p.days = 2;
	p.lifetime_median_h = 0.5;
	p.lifetime_sigma = 1;
	p.ramp_h = 0.25;
	return p;
}
constexpr std::size_t guest = std::size_t(memory_kind::guest);
}  // namespace

TEST_CASE("vm host: deterministic per seed, different across seeds, valid")
{
	workload a = generate_vm_host(small_host(1));
	workload b = generate_vm_host(small_host(1));
	workload c = generate_vm_host(small_host(2));
	CHECK(a.ops == b.ops);
	CHECK_FALSE(a.ops == c.ops);
	CHECK(validate(a) == "");
	CHECK(validate(c) == "");
	CHECK(a.name == "vm_host_32g");
	CHECK(a.ops.size() > 10000);
	CHECK(validate(generate_vm_host(vm_host_params::huge_folios())) == "");
}

TEST_CASE("vm host: every op is a 2 MiB guest extent of 4 KiB or 2 MiB folios; one footprint per VM")
{
	vm_host_params p = small_host(3);
	p.huge_fraction = 0.5;
	std::size_t allocs = 0, huge = 0, with_footprint = 0;
	std::map<std::string, std::size_t> per_vm; /* tag -> extents */
	test::walk(vm_host_stream(p), [&](const op &o, const op_checker &) {
		if (o.k != op::alloc)
			return;
		allocs++;
		CHECK(o.size == vm_extent_bytes);
		CHECK(o.mem == memory_kind::guest);
		CHECK((o.folio == page_size || o.folio == chunk_size));
		CHECK(o.align == o.folio);
		huge += o.folio == chunk_size;
		if (o.footprint) {
			with_footprint++;
			/* The VMM plus 8 bytes of EPT per mapped page, of a whole number of GiB of guest. */
			CHECK(o.footprint >= p.vmm_bytes);
			CHECK(o.footprint % page_size == 0);
			CHECK(per_vm.count(o.tag) == 0); /* the first extent of its VM */
		}
		per_vm[o.tag]++;
	});
	CHECK(with_footprint == per_vm.size());
	CHECK(huge > 0);
	CHECK(huge < allocs);
	CHECK(vm_footprint(gib, page_size, 5 << 20) == (5 << 20) + gib / page_size * 8);
	CHECK(vm_footprint(64 * gib, chunk_size, 5 << 20) == (5 << 20) + 32768 * 8);
}

TEST_CASE("vm host: the size mix and the log-normal lifetime of draw_vm(), on a large sample")
{
	vm_host_params p;
	rng_t rng(5);
	const double n = 200000;
	std::map<std::size_t, double> count;
	double below_median = 0, below_hi = 0, bytes = 0, huge = 0;
	p.huge_fraction = 0.3;
	for (int i = 0; i < int(n); i++) {
		vm_draw d = draw_vm(rng, p);
		count[d.bytes / gib]++;
		bytes += double(d.bytes);
		below_median += d.lifetime_s < p.lifetime_median_h * 3600;
		below_hi += d.lifetime_s < p.lifetime_median_h * 3600 * std::exp(p.lifetime_sigma);
		huge += d.folio == chunk_size;
	}
	for (const auto &c : vm_sizes)
		CHECK(std::fabs(count[c.gib] / n - c.weight) < proportion_tolerance(c.weight, n));
	CHECK(count.size() == vm_sizes.size());
	CHECK(p.mean_vm_bytes() == doctest::Approx(8.82 * double(gib)));
	/* The sample mean of the sizes: sd of the mix is below 16 GiB. */
	CHECK(std::fabs(bytes / n - p.mean_vm_bytes()) < mean_tolerance(16.0 * double(gib), n));
	CHECK(std::fabs(below_median / n - 0.5) < proportion_tolerance(0.5, n));
	CHECK(std::fabs(below_hi / n - 0.841345) < proportion_tolerance(0.841345, n));
	CHECK(std::fabs(huge / n - 0.3) < proportion_tolerance(0.3, n));
}

TEST_CASE("vm host: arrivals are Poisson at the Little's-law rate")
{
	/* No admission limit, so every arrival boots a VM: count the footprint-carrying extents. */
	vm_host_params p = small_host(7);
	p.admit_limit = 1e6;
	p.days = 14;
	p.boot_fraction = 0;         /* still one extent at boot */
	const double expected = p.arrival_rate_per_s() * p.days * 86400.0;
	double boots = 0;
	test::walk(vm_host_stream(p), [&](const op &o, const op_checker &) {
		boots += o.k == op::alloc && o.footprint && o.t_ns > 0;
	});
	CHECK(expected > 100);
	CHECK(std::fabs(boots - expected) < 5 * std::sqrt(expected)); /* Poisson: sd = sqrt(mean) */
}

TEST_CASE("vm host: committed guest memory never passes the admission limit")
{
	for (std::uint64_t seed = 1; seed <= 4; seed++) {
		vm_host_params p = small_host(seed);
		p.load = 1.2; /* overloaded: admission must refuse */
		vm_host_generator g(p);
		const std::size_t limit = std::size_t(p.admit_limit * p.host_gib * double(gib));
		op_checker c;
		std::size_t peak = 0;
		for (op o; g.next(o);) {
			REQUIRE(c.check(o) == "");
			CHECK(g.committed_bytes() <= limit);
			peak = std::max(peak, c.stats().live_bytes_by_kind[guest]);
		}
		CHECK(peak <= limit);
		CHECK(peak > limit / 2);
		CHECK(g.rejected() > 0);
	}
}

TEST_CASE("vm host: boot faults a quarter, the rest arrives within the ramp; exit frees every extent")
{
	vm_host_params p = small_host(9);
	p.warmup_days = 0;
	std::unordered_map<std::string, std::uint64_t> boot_ns;
	std::unordered_map<std::string, std::size_t> at_boot, total;
	std::unordered_map<std::uint64_t, std::string> owner;
	std::unordered_map<std::string, std::size_t> freed;
	test::walk(vm_host_stream(p), [&](const op &o, const op_checker &) {
		if (o.k == op::alloc) {
			owner[o.id] = o.tag;
			if (!boot_ns.count(o.tag))
				boot_ns[o.tag] = o.t_ns;
			if (o.t_ns == boot_ns[o.tag])
				at_boot[o.tag]++;
			total[o.tag]++;
			CHECK(o.t_ns <= boot_ns[o.tag] + std::uint64_t(p.ramp_h * 3600 * 1e9));
		} else {
			freed[owner[o.id]]++;
		}
	});
	std::size_t full = 0;
	for (const auto &[vm, n] : total) {
		if (freed.count(vm))
			CHECK(freed[vm] == n); /* a VM frees all its faulted extents at once */
		/* A VM that lived past its ramp faulted all its extents: a whole number of GiB. */
		if (n % 512 == 0)
			full++;
		CHECK(at_boot[vm] >= 1);
	}
	CHECK(full > total.size() / 2);
	/* Boot: ceil(25%) of the extents, e.g. 128 of a 1 GiB VM's 512. */
	std::size_t exact = 0;
	for (const auto &[vm, n] : total)
		exact += n % 512 == 0 && at_boot[vm] == (n + 3) / 4;
	CHECK(exact > 0);
}

TEST_CASE("vm host: the warm start begins near the stationary guest memory")
{
	/*
	 * Little's law: offered guest memory = load x host. Admission trims the
	 * top, so the mean at 0 over seeds lies below it and well above half.
	 */
	double sum = 0;
	const int seeds = 8;
	for (int s = 1; s <= seeds; s++) {
		vm_host_params p;
		p.seed = std::uint64_t(s);
		p.days = 0.001;
		auto st = measure_stream(vm_host_stream(p));
		sum += double(st.peak_bytes_by_kind[guest]) / (p.host_gib * double(gib));
	}
	const double mean = sum / seeds;
	CHECK(mean < 0.6 + 0.05);
	CHECK(mean > 0.4);
}
