// SPDX-License-Identifier: MIT
/*
 * bpf_churn.h - BPF program load/unload churn with the published size mix.
 *
 * Published rates (Meta, LSFMM 2022/2023): about 40 BPF programs active per
 * server, about 100 more loaded on demand for short periods; a desktop with
 * systemd loads a few hundred small cgroup programs a day. The generator turns
 * them into three populations:
 *
 *  long-lived  `long_lived` programs loaded first and kept. With probability
 *              `replace_rate` per event one of them (uniformly chosen) is
 *              upgraded: the new version is loaded before the old one is
 *              released, as bpf_link_update() replaces a program atomically.
 *  on demand   a birth-death population around `on_demand`: each event loads
 *              one with probability T/(T+L) (T target, L live) or unloads a
 *              uniformly chosen live one, so lifetimes are memoryless ("short
 *              periods") and L fluctuates around T by about sqrt(T).
 *  cgroup      `cgroup_units` systemd units on average, same birth-death rule;
 *              a unit start loads a pair of equal-size programs (systemd's
 *              sd_fw_ingress / sd_fw_egress), a unit stop frees both.
 *
 * Sizes: long-lived and on-demand programs draw from the full mix
 * (bpf_size_mix.h); cgroup programs are small, drawn log-uniformly from the
 * mix's first band [128, 500] bytes. Sizes are bytes as allocated, passed as
 * drawn; alignment is 64 (BPF_PROG_CHUNK_SIZE, bpf_prog_pack's granule).
 *
 * Which population an event touches: on demand and cgroup are picked in
 * proportion to their targets in programs (T and 2 x units). IDs are never
 * reused. The sequence is cut at exactly `ops` operations; with `drain` every
 * program still loaded is then freed in a seeded random order.
 *
 * Live set: about long_lived + on_demand + 2 x cgroup_units programs. The mean
 * program of the full mix is 3563 bytes (sum over bands of weight x
 * (hi - lo) / ln(hi / lo)), of the first band 273 bytes; so the server preset
 * keeps about 140 programs, 0.5 MB, live, and the desktop preset about 104
 * programs, 40 kB.
 */
#pragma once

#include "workload/bpf_size_mix.h"
#include "workload/op.h"
#include "workload/random.h"

#include <cstdint>
#include <string>
#include <vector>

namespace ua::workload {

struct bpf_churn_params {
	std::uint64_t seed = 1;
	std::size_t ops = 200000;    /* operations in the churn, before any drain */
	std::size_t long_lived = 40; /* programs loaded first and kept */
	std::size_t on_demand = 100; /* mean live programs loaded on demand */
	std::size_t cgroup_units = 0;/* mean live systemd units, two small programs each */
	double replace_rate = 0.01;  /* chance per event of upgrading a long-lived program */
	bool drain = false;          /* free everything at the end */

	/* A server: 40 long-lived, ~100 on demand (the Meta figures). */
	static bpf_churn_params server() { return {}; }
	/* A systemd desktop: a few long-lived (LSM, HID), ~50 units of cgroup firewall pairs. */
	static bpf_churn_params desktop()
	{
		bpf_churn_params p;
		p.long_lived = 4;
		p.on_demand = 0;
		p.cgroup_units = 50;
		return p;
	}
};

inline constexpr std::size_t bpf_churn_align = 64;

namespace detail {
struct bpf_churn_state {
	rng_t rng;
	std::vector<op> ops;
	std::uint64_t next_id = 1;
	std::vector<std::uint64_t> long_lived, on_demand;
	std::vector<std::pair<std::uint64_t, std::uint64_t>> units;

	std::uint64_t load(std::size_t size, const char *tag)
	{
		ops.push_back(op::make_alloc(next_id, size, bpf_churn_align, tag).of(memory_kind::bpf_text));
		return next_id++;
	}
	void unload(std::uint64_t id) { ops.push_back(op::make_free(id)); }

	/* Removes and returns a uniformly chosen element (order of the rest is irrelevant). */
	template <class T>
	T take_random(std::vector<T> &v)
	{
		std::size_t i = std::size_t(draw_below(rng, v.size()));
		T x = v[i];
		v[i] = v.back();
		v.pop_back();
		return x;
	}
};
}  // namespace detail

inline workload generate_bpf_churn(const bpf_churn_params &p, std::string name = "bpf_churn")
{
	detail::bpf_churn_state s{rng_t(p.seed), {}, 1, {}, {}, {}};
	s.ops.reserve(p.ops + p.long_lived + p.on_demand + 2 * p.cgroup_units + 2);
	const auto &small = bpf_size_bands[0];
	const std::size_t cgroup_target = 2 * p.cgroup_units;
	const std::size_t churn_target = p.on_demand + cgroup_target;

	for (std::size_t i = 0; i < p.long_lived && s.ops.size() < p.ops; i++)
		s.long_lived.push_back(s.load(bpf_size(s.rng), "long_lived"));

	while (s.ops.size() < p.ops) {
		if (!s.long_lived.empty() && (churn_target == 0 || draw_chance(s.rng, p.replace_rate))) {
			std::size_t i = std::size_t(draw_below(s.rng, s.long_lived.size()));
			std::uint64_t old = s.long_lived[i];
			s.long_lived[i] = s.load(bpf_size(s.rng), "long_lived");
			s.unload(old);
			continue;
		}
		if (churn_target == 0)
			break;  /* nothing can change: no population at all */
		if (draw_below(s.rng, churn_target) < p.on_demand) {
			if (draw_load(s.rng, s.on_demand.size(), p.on_demand))
				s.on_demand.push_back(s.load(bpf_size(s.rng), "on_demand"));
			else
				s.unload(s.take_random(s.on_demand));
		} else {
			if (draw_load(s.rng, s.units.size(), p.cgroup_units)) {
				std::size_t size = draw_log_uniform(s.rng, small.lo, small.hi);
				std::uint64_t in = s.load(size, "sd_fw_ingress");
				std::uint64_t out = s.load(size, "sd_fw_egress");
				s.units.emplace_back(in, out);
			} else {
				auto [in, out] = s.take_random(s.units);
				s.unload(in);
				s.unload(out);
			}
		}
	}
	finish_sequence(s.ops, p.ops, p.drain, s.rng);
	return workload{std::move(name), std::move(s.ops)};
}

}  // namespace ua::workload
