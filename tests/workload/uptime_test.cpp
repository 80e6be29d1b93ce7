// Tests for uptime.h: weeks of a desktop with modules,
// systemd's cgroup programs and secretmem at once.
#include "workload/uptime.h"

#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <unordered_map>

#include "support.h"

using namespace ua::workload;
using ua::chunk_size;
using ua::page_size;

namespace {
/* A listing with a module of every on-demand class and some of none. */
module_listing listing()
{
	auto r = parse_modules("Module Size Used by\n"
			       "usb_storage 81920 1 uas\nuas 32768 0\nxt_conntrack 16384 1\nnf_conntrack 180224 1 xt_conntrack\n"
			       "kvm_intel 380928 0\nkvm 1146880 1 kvm_intel\nvfat 20480 1\nfat 86016 1 vfat\n"
			       "i915 2809856 0\ne1000e 290816 0\nsnd_hda_intel 61440 0\n",
			       "test-listing");
	REQUIRE(r.ok());
	return r.value;
}

std::size_t kind_index(memory_kind k) { return std::size_t(k); }
}  // namespace

TEST_CASE("population: an M/M/inf population averages its mean; lifetimes are exponential")
{
	/*
	 * secretmem users, mean 8, lifetime 1 h, one page each (max_pages 1), over
	 * 20 days: time-average sd sqrt(2 * 8 * 1 / 480) = 0.18 users; the mean
	 * lifetime of the users born in the first half (censoring negligible:
	 * e^-240) is within 5 sd (1 h / sqrt(n)).
	 */
	op_stream s = secret_users_stream(3, 20, 8, 1, 1);
	std::unordered_map<std::uint64_t, std::uint64_t> born;
	double life_sum = 0, lives = 0, area = 0;
	std::uint64_t last = 0;
	std::size_t live = 0;
	const std::uint64_t half = 10ull * 86400 * ns_per_s;
	test::walk(std::move(s), [&](const op &o, const op_checker &c) {
		area += double(live) * double(o.t_ns - last);
		last = o.t_ns;
		live = c.stats().live_count;
		const bool one_secret_page = o.k == op::free || (o.mem == memory_kind::secret && o.size == page_size);
		CHECK(one_secret_page);
		if (o.k == op::alloc)
			born[o.id] = o.t_ns;
		else if (born[o.id] > 0 && born[o.id] < half) {
			life_sum += double(o.t_ns - born[o.id]) / 1e9;
			lives++;
		}
	});
	CHECK(area / double(last) == doctest::Approx(8).epsilon(5 * 0.18 / 8));
	REQUIRE(lives > 1000);
	CHECK(std::fabs(life_sum / lives - 3600) < test::mean_tolerance(3600, lives));
}

TEST_CASE("cgroup BPF: resident programs stay, units load and free a pair of one small size")
{
	uptime_params p;
	p.days = 3;
	std::unordered_map<std::uint64_t, std::size_t> ingress_size;
	std::size_t resident = 0, pairs = 0;
	std::size_t last_ingress = 0;
	test::walk(cgroup_bpf_stream(p), [&](const op &o, const op_checker &) {
		if (o.k != op::alloc)
			return;
		CHECK(o.mem == memory_kind::bpf_text);
		resident += o.tag == "long_lived";
		if (o.tag == "sd_fw_ingress")
			last_ingress = o.size;
		if (o.tag == "sd_fw_egress") {
			CHECK(o.size == last_ingress);
			CHECK(o.size >= 128);
			CHECK(o.size <= 500);
			pairs++;
		}
	});
	CHECK(resident == p.long_lived);
	/* 50 at 0, then 50 / 6 h: about 650 unit starts in 3 days */
	CHECK(pairs > 400);
	CHECK(pairs < 900);
}

TEST_CASE("uptime: two weeks, every kind of the parts, time-stamped, deterministic")
{
	module_listing l = listing();
	uptime_params p;
	workload a = generate_uptime(l, p);
	CHECK(a.ops == generate_uptime(l, p).ops);
	p.seed = 2;
	CHECK_FALSE(a.ops == generate_uptime(l, p).ops);
	auto st = test::walk(vector_stream(a), [](const op &, const op_checker &) {});
	for (memory_kind k : {memory_kind::module_text, memory_kind::ro, memory_kind::data, memory_kind::bpf_text,
			      memory_kind::secret})
		CHECK(st.peak_bytes_by_kind[kind_index(k)] > 0);
	CHECK(st.peak_bytes_by_kind[kind_index(memory_kind::guest)] == 0);
	CHECK(st.end_ns > 13ull * 86400 * ns_per_s);
	CHECK(st.end_ns <= 14ull * 86400 * ns_per_s);
}

TEST_CASE("uptime over a real listing, when present")
{
	const std::string path = std::string(UA_SHARED_WORKLOADS) + "/lsmod_slackware_hp_omen16_laptop_kernel6x.txt";
	if (!std::filesystem::exists(path)) {
		MESSAGE("skipped: " << path << " is absent");
		return;
	}
	auto l = read_modules(path);
	REQUIRE(l.ok());
	uptime_params p;
	p.days = 3;
	auto st = measure_stream(uptime_stream(l.value, p));
	CHECK(validate_stream(uptime_stream(l.value, p)) == "");
	/* At most every module of the listing at once. */
	std::size_t listed = 0;
	for (const auto &m : l.value.modules)
		listed += (m.size + page_size - 1) / page_size * page_size;
	const std::size_t modules = st.peak_bytes_by_kind[kind_index(memory_kind::module_text)] +
				    st.peak_bytes_by_kind[kind_index(memory_kind::ro)] +
				    st.peak_bytes_by_kind[kind_index(memory_kind::data)];
	CHECK(modules > listed / 2);
	CHECK(st.peak_bytes_by_kind[kind_index(memory_kind::data)] <= listed);
}
