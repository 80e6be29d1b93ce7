// SPDX-License-Identifier: MIT
/*
 * bpf_fleet.h - BPF at fleet scale: a Cilium/Katran-style node whose
 * thousands of endpoints each own a set of programs, replaced on policy
 * updates.
 *
 * The node. Cilium attaches a compiled copy of bpf_lxc.c to every endpoint
 * (pod): the entry programs cil_from_container, cil_to_container,
 * handle_policy and handle_policy_egress, and the tail calls of its
 * per-endpoint cilium_calls map (for IPv4: tail_handle_ipv4,
 * tail_handle_ipv4_cont, tail_ipv4_ct_egress, tail_ipv4_ct_ingress,
 * tail_ipv4_ct_ingress_policy_only, tail_ipv4_policy, tail_ipv4_to_endpoint,
 * tail_handle_arp): 12 programs per endpoint (endpoint_programs below).
 * Beside them the node's own programs (bpf_host, bpf_overlay, socket LB)
 * and a Katran load balancer (balancer_ingress, healthcheck_encap) are
 * loaded once and kept.
 *
 * Sizes are JIT image sizes drawn per endpoint and program, log-uniform in
 * each program's range, allocated as bpf_pack_alloc_size() (bpftool.h) with
 * alignment 64; a replaced program keeps its size (same template).
 *
 * Churn (docs/workloads.md gives the source or the reasoning of each):
 *  - endpoints: an M/M/inf population, `endpoints` on average: arrivals
 *    Poisson at endpoints / lifetime, lifetimes exponential (mean
 *    `endpoint_lifetime_h`); the node starts with `endpoints` of them;
 *  - policy updates: Poisson, one per `update_interval_s` on average; each
 *    regenerates `update_fraction` of the live endpoints (at least one),
 *    chosen uniformly: all 12 new programs are loaded, and the old ones are
 *    freed `grace_s` later (the old program stays attached until the new one
 *    replaces it; its image is freed once its last reference is dropped);
 *  - bounds: live programs stay within [min_programs, max_programs]
 *    (1,000 - 50,000): an endpoint arrival or a regeneration that would
 *    pass the maximum is not made (dropped / skipped), and an endpoint exit
 *    that would go below the minimum is put off by a new lifetime.
 * The stream ends after `hours`.
 */
#pragma once

#include "workload/bpftool.h"
#include "workload/op.h"
#include "workload/random.h"
#include "workload/stream.h"
#include "workload/timeline.h"

#include <array>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace ua::workload {

/* A program of a fixed set, with the range its JIT image is drawn from. */
struct bpf_program_spec {
	const char *name;
	std::size_t jited_lo, jited_hi;
};

/* One endpoint's bpf_lxc programs (IPv4). */
inline constexpr std::array<bpf_program_spec, 12> endpoint_programs = {{
	{"cil_from_container", 512, 1536},
	{"cil_to_container", 512, 1536},
	{"handle_policy", 512, 1536},
	{"handle_policy_egress", 512, 1536},
	{"tail_handle_ipv4", 923, 16384},
	{"tail_handle_ipv4_cont", 923, 16384},
	{"tail_ipv4_ct_egress", 923, 16384},
	{"tail_ipv4_ct_ingress", 923, 16384},
	{"tail_ipv4_ct_ingress_po", 923, 16384},
	{"tail_ipv4_policy", 923, 16384},
	{"tail_ipv4_to_endpoint", 923, 16384},
	{"tail_handle_arp", 923, 16384},
}};

/* The node's own programs, loaded once: bpf_host, bpf_overlay, socket LB, Katran. */
inline constexpr std::array<bpf_program_spec, 26> node_programs = {{
	{"cil_from_netdev", 512, 1536}, {"cil_to_netdev", 512, 1536},
	{"cil_from_host", 512, 1536}, {"cil_to_host", 512, 1536},
	{"host_tail_0", 923, 16384}, {"host_tail_1", 923, 16384}, {"host_tail_2", 923, 16384},
	{"host_tail_3", 923, 16384}, {"host_tail_4", 923, 16384}, {"host_tail_5", 923, 16384},
	{"cil_from_overlay", 512, 1536}, {"cil_to_overlay", 512, 1536},
	{"cil_sock4_connect", 128, 2048}, {"cil_sock4_sendmsg", 128, 2048},
	{"cil_sock4_recvmsg", 128, 2048}, {"cil_sock4_getpeername", 128, 2048},
	{"cil_sock4_post_bind", 128, 2048}, {"cil_sock6_connect", 128, 2048},
	{"cil_sock6_sendmsg", 128, 2048}, {"cil_sock6_recvmsg", 128, 2048},
	{"cil_sock6_getpeername", 128, 2048}, {"cil_sock6_post_bind", 128, 2048},
	{"overlay_tail_0", 923, 16384}, {"overlay_tail_1", 923, 16384},
	{"balancer_ingress", 10305, 10305}, {"healthcheck_encap", 496, 496},
}};

struct bpf_fleet_params {
	std::uint64_t seed = 1;
	double hours = 24;
	std::size_t endpoints = 1000;      /* mean live endpoints */
	double endpoint_lifetime_h = 24;   /* mean, exponential */
	double update_interval_s = 300;    /* mean time between policy updates */
	double update_fraction = 0.05;     /* share of endpoints an update regenerates */
	double grace_s = 1;                /* old programs freed this long after the new ones load */
	std::size_t min_programs = 1000, max_programs = 50000;

	/* The programs an update replaces on average, and the live programs on average. */
	double mean_live_programs() const noexcept
	{
		return double(node_programs.size()) + double(endpoints) * double(endpoint_programs.size());
	}
};

/* A program's allocation size: its JIT image drawn log-uniformly, as bpf_prog_pack allocates it. */
inline std::size_t draw_program_bytes(rng_t &rng, const bpf_program_spec &s)
{
	const std::size_t jited = s.jited_lo == s.jited_hi ? s.jited_lo : draw_log_uniform(rng, s.jited_lo, s.jited_hi);
	return bpf_pack_alloc_size(jited);
}

class bpf_fleet_generator {
public:
	explicit bpf_fleet_generator(const bpf_fleet_params &p) : p_(p), rng_(p.seed), tl_(seconds_ns(p.hours * 3600.0))
	{
		tl_.schedule(0, event{event::boot, 0});
	}

	bool next(op &o)
	{
		return tl_.next(o, [this](std::int64_t t, const auto &e) { handle(t, e); });
	}

	std::size_t live_programs() const noexcept { return live_programs_; }
	std::size_t live_endpoints() const noexcept { return list_.size(); }
	std::size_t regenerations() const noexcept { return regenerations_; }
	std::size_t updates() const noexcept { return updates_; }
	std::size_t dropped() const noexcept { return dropped_; }

private:
	static constexpr std::size_t per_ep = endpoint_programs.size();

	struct event {
		enum what : std::uint8_t { boot, arrive, leave, update, retire } w;
		std::uint64_t ep;
	};
	struct endpoint {
		std::array<std::size_t, per_ep> bytes{};
		std::array<std::uint64_t, per_ep> ids{}, old_ids{};
		std::size_t at = 0; /* index in list_ */
		bool replacing = false;
	};

	void handle(std::int64_t t, const event &e)
	{
		switch (e.w) {
		case event::boot:
			boot(t);
			break;
		case event::arrive:
			tl_.schedule(t + gap(p_.endpoint_lifetime_h * 3600.0 / double(std::max<std::size_t>(1, p_.endpoints))),
				     event{event::arrive, 0});
			if (live_programs_ + per_ep > p_.max_programs)
				dropped_++;
			else
				add_endpoint(t);
			break;
		case event::leave:
			leave(t, e.ep);
			break;
		case event::update:
			update(t);
			break;
		case event::retire:
			retire(e.ep);
			break;
		}
	}

	std::int64_t gap(double mean_s) { return std::max<std::int64_t>(1, seconds_ns(draw_exponential(rng_, mean_s))); }

	std::uint64_t load(std::size_t bytes, const char *name)
	{
		tl_.emit(op::make_alloc(next_id_, bytes, bpf_prog_chunk_size, name).of(memory_kind::bpf_text));
		live_programs_++;
		return next_id_++;
	}
	void unload(std::uint64_t id)
	{
		tl_.emit(op::make_free(id));
		live_programs_--;
	}

	void boot(std::int64_t t)
	{
		for (const auto &s : node_programs)
			(void)load(draw_program_bytes(rng_, s), s.name);
		for (std::size_t i = 0; i < p_.endpoints && live_programs_ + per_ep <= p_.max_programs; i++)
			add_endpoint(t);
		if (p_.endpoints)
			tl_.schedule(t + gap(p_.endpoint_lifetime_h * 3600.0 / double(p_.endpoints)), event{event::arrive, 0});
		if (p_.update_interval_s > 0)
			tl_.schedule(t + gap(p_.update_interval_s), event{event::update, 0});
	}

	void add_endpoint(std::int64_t t)
	{
		const std::uint64_t no = next_ep_++;
		endpoint ep;
		for (std::size_t i = 0; i < per_ep; i++) {
			ep.bytes[i] = draw_program_bytes(rng_, endpoint_programs[i]);
			ep.ids[i] = load(ep.bytes[i], endpoint_programs[i].name);
		}
		ep.at = list_.size();
		list_.push_back(no);
		eps_.emplace(no, ep);
		tl_.schedule(t + gap(p_.endpoint_lifetime_h * 3600.0), event{event::leave, no});
	}

	void leave(std::int64_t t, std::uint64_t no)
	{
		auto it = eps_.find(no);
		endpoint &ep = it->second;
		const std::size_t held = per_ep * (ep.replacing ? 2 : 1);
		if (live_programs_ < p_.min_programs + held) {
			tl_.schedule(t + gap(p_.endpoint_lifetime_h * 3600.0), event{event::leave, no}); /* put off */
			return;
		}
		for (std::uint64_t id : ep.ids)
			unload(id);
		if (ep.replacing)
			for (std::uint64_t id : ep.old_ids)
				unload(id);
		const std::uint64_t moved = list_.back();
		list_[ep.at] = moved;
		eps_[moved].at = ep.at;
		list_.pop_back();
		eps_.erase(no);
	}

	void update(std::int64_t t)
	{
		tl_.schedule(t + gap(p_.update_interval_s), event{event::update, 0});
		updates_++;
		std::size_t n = list_.size();
		std::size_t k = std::size_t(p_.update_fraction * double(n) + 0.5);
		k = std::min(std::max<std::size_t>(k, n ? 1 : 0), n);
		/* k distinct endpoints: a partial Fisher-Yates over a copy of the live list. */
		std::vector<std::uint64_t> pick(list_);
		for (std::size_t i = 0; i < k; i++) {
			std::swap(pick[i], pick[i + std::size_t(draw_below(rng_, n - i))]);
			endpoint &ep = eps_[pick[i]];
			if (ep.replacing || live_programs_ + per_ep > p_.max_programs)
				continue;
			ep.old_ids = ep.ids;
			for (std::size_t j = 0; j < per_ep; j++)
				ep.ids[j] = load(ep.bytes[j], endpoint_programs[j].name);
			ep.replacing = true;
			regenerations_++;
			tl_.schedule(t + std::max<std::int64_t>(1, seconds_ns(p_.grace_s)), event{event::retire, pick[i]});
		}
	}

	void retire(std::uint64_t no)
	{
		auto it = eps_.find(no);
		if (it == eps_.end() || !it->second.replacing)
			return; /* the endpoint left meanwhile, with its old programs */
		for (std::uint64_t id : it->second.old_ids)
			unload(id);
		it->second.replacing = false;
	}

	bpf_fleet_params p_;
	rng_t rng_;
	timeline<event> tl_;
	std::uint64_t next_id_ = 1, next_ep_ = 1;
	std::size_t live_programs_ = 0, regenerations_ = 0, updates_ = 0, dropped_ = 0;
	std::vector<std::uint64_t> list_;
	std::unordered_map<std::uint64_t, endpoint> eps_;
};

inline op_stream bpf_fleet_stream(const bpf_fleet_params &p)
{
	return op_stream("bpf_fleet_" + std::to_string(p.endpoints) + "ep", bpf_fleet_generator(p));
}
inline workload generate_bpf_fleet(const bpf_fleet_params &p) { return collect(bpf_fleet_stream(p)); }

}  // namespace ua::workload
