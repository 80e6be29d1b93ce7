// SPDX-License-Identifier: MIT
/*
 * workload_stats - the figures of the timed generators, without replaying
 * them: ops, allocations, peak live count and bytes per memory kind, peak
 * footprint, end time. docs/workloads.md quotes its output; the report can
 * use it to size machines (a vm-host run needs a host of host_gib).
 *
 *   workload_stats [--seeds N] [--listing FILE]
 *
 * One line per generator and seed (1..N, default 3), each a stream: nothing
 * is held but the live set. Exit status 1 if a generated workload breaks
 * op.h's rules (it never should), 2 for bad arguments.
 */
#include "workload/workload.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>

using namespace ua::workload;

namespace {
int report(const std::string &what, std::uint64_t seed, op_stream s)
{
	workload_stats st;
	const std::string why = check_stream(std::move(s), st);
	auto mib = [&](memory_kind k) { return double(st.peak_bytes_by_kind[std::size_t(k)]) / 1048576.0; };
	std::printf("%-13s %2llu %9zu %8zu %7zu %10.1f %8.2f %7.1f %6.1f %6.1f %6.1f %7.1f %8.1f %6.1f%s%s\n", what.c_str(),
		    (unsigned long long)seed, st.allocs + st.frees, st.allocs, st.peak_count,
		    double(st.peak_bytes_by_kind[std::size_t(memory_kind::guest)]) / 1073741824.0,
		    mib(memory_kind::bpf_text), mib(memory_kind::module_text), mib(memory_kind::ro), mib(memory_kind::data),
		    mib(memory_kind::secret), double(st.peak_footprint) / 1048576.0, double(st.end_ns) / 3.6e12,
		    double(st.peak_bytes) / 1073741824.0, why.empty() ? "" : "  INVALID: ", why.c_str());
	return why.empty() ? 0 : 1;
}
}  // namespace

int main(int argc, char **argv)
{
	unsigned long seeds = 3;
	std::string listing = "../shared/workloads/real/lsmod_slackware_hp_omen16_laptop_kernel6x.txt";
	for (int i = 1; i < argc; i++) {
		if (!std::strcmp(argv[i], "--seeds") && i + 1 < argc) {
			seeds = std::strtoul(argv[++i], nullptr, 10);
		} else if (!std::strcmp(argv[i], "--listing") && i + 1 < argc) {
			listing = argv[++i];
		} else {
			std::fprintf(stderr, "usage: workload_stats [--seeds N] [--listing FILE]\n");
			return 2;
		}
	}
	auto l = read_modules(listing);
	if (!l) {
		std::fprintf(stderr, "%s\n", l.error.c_str());
		return 2;
	}
	std::printf("%-13s %2s %9s %8s %7s %10s %8s %7s %6s %6s %6s %7s %8s %6s\n", "generator", "s", "ops", "allocs",
		    "peak#", "guest_GiB", "bpf_MiB", "mtxt_MiB", "ro_MiB", "dat_MiB", "sec_MiB", "fp_MiB", "hours",
		    "all_GiB");
	int bad = 0;
	for (std::uint64_t s = 1; s <= seeds; s++) {
		vm_host_params vm;
		vm.seed = s;
		bad |= report("vm-host", s, vm_host_stream(vm));
		vm = vm_host_params::huge_folios();
		vm.seed = s;
		bad |= report("vm-host-2m", s, vm_host_stream(vm));
		vm = vm_host_params::large();
		vm.seed = s;
		bad |= report("vm-host-1t", s, vm_host_stream(vm));
		bpf_fleet_params f;
		f.seed = s;
		bad |= report("bpf-fleet", s, bpf_fleet_stream(f));
		tracing_host_params t;
		t.seed = s;
		bad |= report("tracing-host", s, tracing_host_stream(t));
		uptime_params u;
		u.seed = s;
		bad |= report("uptime", s, uptime_stream(l.value, u));
		colocation_params c;
		c.seed = s;
		bad |= report("colocation", s, colocation_stream(l.value, c));
	}
	return bad;
}
