// SPDX-License-Identifier: MIT
/*
 * uptime.h - weeks of a desktop or server compressed into one timed
 * workload with several memory kinds at once.
 *
 * Three parts, merged by time (stream.h merge_by_time(), IDs renumbered):
 *  - modules: a real listing through module_uptime.h (module_text, ro and
 *    data regions, some classes loaded and unloaded on demand);
 *  - BPF: systemd's cgroup programs (cgroup_bpf_generator): `long_lived`
 *    programs from the full mix loaded at 0 and kept, and units as an
 *    M/M/inf population (`units` on average, exponential lifetimes of mean
 *    `unit_hours`) each loading an sd_fw_ingress / sd_fw_egress pair of one
 *    size from the mix's first band [128, 500] B at start and freeing it at
 *    stop (bpf_text);
 *  - secrets: memfd_secret() users (secret_users_generator), an M/M/inf
 *    population (`users` on average, exponential lifetimes of mean
 *    `user_hours`), each faulting S pages at start, S log-uniform in
 *    [1, max_pages] (draw_secret_pages()), and freeing them in index order
 *    when its file is closed (secret, one 4 KiB page per op).
 * Every op carries its time stamp, so a replay can plot DirectMap against
 * time; the report samples it.
 */
#pragma once

#include "workload/bpf_size_mix.h"
#include "workload/bpftool.h"
#include "workload/module_uptime.h"
#include "workload/op.h"
#include "workload/random.h"
#include "workload/secretmem_churn.h"
#include "workload/stream.h"
#include "workload/timeline.h"

#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ua::workload {

struct population_event {
	bool arrive;
	std::uint64_t member; /* leave: which; arrive: 0 the boot, 1 a new one */
};

/*
 * An M/M/inf population of members that each take a group of allocations
 * at start and give them back at stop: arrivals Poisson at mean / lifetime,
 * lifetimes exponential, `mean` members at 0 (the stationary mean; being
 * memoryless, their remaining lifetimes are drawn like new ones). Group is
 * a callable (rng, first_id, emit) that emits a member's allocs through
 * emit(op) (the generator numbers them). A lifetime of 0 makes the members
 * permanent: `mean` of them at 0, no arrivals, no departures.
 */
template <class Group>
class population_generator {
public:
	population_generator(std::uint64_t seed, double end_s, double mean, double lifetime_s, Group g)
		: rng_(seed), tl_(seconds_ns(end_s)), mean_(mean), life_(lifetime_s), group_(std::move(g))
	{
		tl_.schedule(0, ev{true, 0});
	}

	bool next(op &o)
	{
		return tl_.next(o, [this](std::int64_t t, const ev &e) { handle(t, e); });
	}

	std::size_t live_members() const noexcept { return members_.size(); }

private:
	using ev = population_event;

	std::int64_t gap(double mean_s) { return std::max<std::int64_t>(1, seconds_ns(draw_exponential(rng_, mean_s))); }

	void start(std::int64_t t)
	{
		std::vector<std::uint64_t> ids;
		group_(rng_, [&](op o) {
			o.id = next_id_++;
			ids.push_back(o.id);
			tl_.emit(std::move(o));
		});
		const std::uint64_t no = next_member_++;
		members_.emplace(no, std::move(ids));
		if (life_ > 0)
			tl_.schedule(t + gap(life_), ev{false, no});
	}

	void handle(std::int64_t t, const ev &e)
	{
		if (!e.arrive) {
			auto it = members_.find(e.member);
			for (std::uint64_t id : it->second)
				tl_.emit(op::make_free(id));
			members_.erase(it);
			return;
		}
		if (e.member == 0)
			for (std::size_t i = 0; i < std::size_t(mean_ + 0.5); i++)
				start(t);
		else
			start(t);
		if (mean_ > 0 && life_ > 0)
			tl_.schedule(t + gap(life_ / mean_), ev{true, 1});
	}

	rng_t rng_;
	timeline<ev> tl_;
	double mean_, life_;
	Group group_;
	std::uint64_t next_id_ = 1, next_member_ = 1;
	std::unordered_map<std::uint64_t, std::vector<std::uint64_t>> members_;
};

struct uptime_params {
	std::uint64_t seed = 1;
	double days = 14;
	/* BPF (systemd desktop): a few long-lived programs, cgroup firewall pairs per unit */
	std::size_t long_lived = 4;
	double units = 50, unit_hours = 6;
	/* secretmem */
	double users = 8, user_hours = 4;
	std::size_t max_pages = 512;
	/* modules */
	double module_rate_scale = 1;
};

/* systemd units' cgroup programs, plus long-lived ones at 0 (a population of its own of zero churn). */
inline op_stream cgroup_bpf_stream(const uptime_params &p)
{
	auto pair = [](rng_t &rng, auto emit) {
		const auto &band = bpf_size_bands[0];
		const std::size_t size = draw_log_uniform(rng, band.lo, band.hi);
		emit(op::make_alloc(0, size, bpf_prog_chunk_size, "sd_fw_ingress").of(memory_kind::bpf_text));
		emit(op::make_alloc(0, size, bpf_prog_chunk_size, "sd_fw_egress").of(memory_kind::bpf_text));
	};
	auto resident = [n = p.long_lived](rng_t &rng, auto emit) {
		for (std::size_t i = 0; i < n; i++)
			emit(op::make_alloc(0, bpf_size(rng), bpf_prog_chunk_size, "long_lived").of(memory_kind::bpf_text));
	};
	const double end = p.days * 86400.0;
	std::vector<op_stream> parts;
	parts.emplace_back("resident", population_generator(p.seed, end, p.long_lived ? 1 : 0, 0, resident));
	parts.emplace_back("units", population_generator(p.seed + 1, end, p.units, p.unit_hours * 3600.0, pair));
	return merge_by_time("cgroup_bpf", std::move(parts));
}

/* memfd_secret() users, one file each, faulted whole at start and truncated at close. */
inline op_stream secret_users_stream(std::uint64_t seed, double days, double users, double user_hours,
				     std::size_t max_pages)
{
	auto user = [max_pages](rng_t &rng, auto emit) {
		const std::size_t pages = draw_secret_pages(rng, std::max<std::size_t>(1, max_pages));
		for (std::size_t i = 0; i < pages; i++)
			emit(op::make_alloc(0, page_size, page_size, "secretmem").of(memory_kind::secret));
	};
	return op_stream("secret_users", population_generator(seed, days * 86400.0, users, user_hours * 3600.0, user));
}

inline op_stream uptime_stream(const module_listing &l, const uptime_params &p)
{
	module_uptime_params mp;
	mp.seed = p.seed;
	mp.days = p.days;
	mp.rate_scale = p.module_rate_scale;
	std::vector<op_stream> parts;
	parts.push_back(module_uptime_stream(l, mp));
	uptime_params bp = p;
	bp.seed = p.seed * 3 + 1;
	parts.push_back(cgroup_bpf_stream(bp));
	parts.push_back(secret_users_stream(p.seed * 3 + 2, p.days, p.users, p.user_hours, p.max_pages));
	return merge_by_time("uptime", std::move(parts));
}
inline workload generate_uptime(const module_listing &l, const uptime_params &p) { return collect(uptime_stream(l, p)); }

}  // namespace ua::workload
