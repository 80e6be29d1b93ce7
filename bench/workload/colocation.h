// SPDX-License-Identifier: MIT
/*
 * colocation.h - every kind of unmapped memory on one machine at once:
 * guest memory, BPF text, module text, read-only data and secrets.
 *
 * The question it asks a design: with all its users on one host, does it
 * keep its 1 GiB regions shared, or does each user split its own? So it is
 * the other generators side by side on one clock, merged by time
 * (merge_by_time(), IDs renumbered):
 *  - VMs: vm_host.h on the whole host (`vm`, by default 256 GiB at load 0.5,
 *    leaving room for the rest), guest memory;
 *  - a Cilium node: bpf_fleet.h with `fleet` (by default 200 endpoints,
 *    2,426 programs, updates every 5 minutes), bpf_text;
 *  - modules, systemd's cgroup programs and secretmem users: uptime.h's parts
 *    (`uptime`), module_text, ro, data, bpf_text and secret.
 * Each part keeps its own seed derived from `seed`; `days` sets every
 * part's length.
 */
#pragma once

#include "workload/bpf_fleet.h"
#include "workload/listing.h"
#include "workload/stream.h"
#include "workload/uptime.h"
#include "workload/vm_host.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace ua::workload {

struct colocation_params {
	std::uint64_t seed = 1;
	double days = 1;
	vm_host_params vm = [] {
		vm_host_params p;
		p.load = 0.5;
		p.admit_limit = 0.75;
		return p;
	}();
	bpf_fleet_params fleet = [] {
		bpf_fleet_params p;
		p.endpoints = 200;
		return p;
	}();
	uptime_params uptime;
};

inline op_stream colocation_stream(const module_listing &l, const colocation_params &p)
{
	vm_host_params vm = p.vm;
	vm.seed = p.seed * 5 + 1;
	vm.days = p.days;
	bpf_fleet_params fleet = p.fleet;
	fleet.seed = p.seed * 5 + 2;
	fleet.hours = p.days * 24;
	uptime_params up = p.uptime;
	up.seed = p.seed * 5 + 3;
	up.days = p.days;

	std::vector<op_stream> parts;
	parts.push_back(vm_host_stream(vm));
	parts.push_back(bpf_fleet_stream(fleet));
	parts.push_back(uptime_stream(l, up));
	return merge_by_time("colocation", std::move(parts));
}
inline workload generate_colocation(const module_listing &l, const colocation_params &p)
{
	return collect(colocation_stream(l, p));
}

}  // namespace ua::workload
