// SPDX-License-Identifier: MIT
/*
 * tracing_host.h - a tracing-heavy host: hundreds of kprobe and uprobe
 * programs attached and detached.
 *
 * Two populations:
 *  - agents: `agent_programs` programs loaded at 0 and kept (the resident
 *    observability and security agents; Meta counts about 40 active
 *    programs per server);
 *  - sessions: tracing tools (bpftrace scripts, BCC tools, a Tetragon
 *    TracingPolicy) that attach a set of probes, run for a while and detach
 *    them all. An M/M/inf population with `sessions` live on average:
 *    arrivals Poisson at sessions / lifetime, lifetimes exponential (mean
 *    `session_minutes`); the host starts with `sessions` of them. A session
 *    loads n programs at once, n log-uniform in [1, max_probes]
 *    (floor((max + 1)^u), as draw_secret_pages() draws), half kprobes and
 *    half uprobes, and frees them in load order when it ends.
 * Program sizes come from the published mix (bpf_size_mix.h), as allocated,
 * alignment 64. Live programs: agent_programs + sessions * E[n], with
 * E[n] = max / ln(max + 1) (9.2 for 32): about 320 by default.
 */
#pragma once

#include "workload/bpf_size_mix.h"
#include "workload/bpftool.h"
#include "workload/op.h"
#include "workload/random.h"
#include "workload/secretmem_churn.h"
#include "workload/stream.h"
#include "workload/timeline.h"

#include <cmath>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace ua::workload {

struct tracing_host_params {
	std::uint64_t seed = 1;
	double hours = 24;
	std::size_t agent_programs = 40;  /* resident, loaded at 0 */
	std::size_t sessions = 30;        /* mean live tracing sessions */
	double session_minutes = 10;      /* mean, exponential */
	std::size_t max_probes = 32;      /* programs per session, log-uniform in [1, max] */

	double mean_probes() const noexcept { return double(max_probes) / std::log(double(max_probes) + 1.0); }
	double mean_live_programs() const noexcept { return double(agent_programs) + double(sessions) * mean_probes(); }
};

class tracing_host_generator {
public:
	explicit tracing_host_generator(const tracing_host_params &p)
		: p_(p), rng_(p.seed), tl_(seconds_ns(p.hours * 3600.0))
	{
		tl_.schedule(0, event{true, 0});
	}

	bool next(op &o)
	{
		return tl_.next(o, [this](std::int64_t t, const event &e) { handle(t, e); });
	}

	std::size_t live_sessions() const noexcept { return sessions_.size(); }

private:
	struct event {
		bool arrive;
		std::uint64_t session; /* leave: which; arrive with 0: the boot */
	};

	std::int64_t gap(double mean_s) { return std::max<std::int64_t>(1, seconds_ns(draw_exponential(rng_, mean_s))); }

	std::uint64_t load(const char *tag)
	{
		tl_.emit(op::make_alloc(next_id_, bpf_size(rng_), bpf_prog_chunk_size, tag).of(memory_kind::bpf_text));
		return next_id_++;
	}

	void start_session(std::int64_t t)
	{
		const std::size_t n = draw_secret_pages(rng_, std::max<std::size_t>(1, p_.max_probes));
		const char *tag = draw_chance(rng_, 0.5) ? "kprobe" : "uprobe";
		std::vector<std::uint64_t> ids(n);
		for (auto &id : ids)
			id = load(tag);
		const std::uint64_t no = next_session_++;
		sessions_.emplace(no, std::move(ids));
		tl_.schedule(t + gap(p_.session_minutes * 60.0), event{false, no});
	}

	void handle(std::int64_t t, const event &e)
	{
		if (!e.arrive) {
			auto it = sessions_.find(e.session);
			for (std::uint64_t id : it->second)
				tl_.emit(op::make_free(id));
			sessions_.erase(it);
			return;
		}
		if (e.session == 0) { /* boot */
			for (std::size_t i = 0; i < p_.agent_programs; i++)
				(void)load("agent");
			for (std::size_t i = 0; i < p_.sessions; i++)
				start_session(t);
		} else {
			start_session(t);
		}
		if (p_.sessions)
			tl_.schedule(t + gap(p_.session_minutes * 60.0 / double(p_.sessions)), event{true, 1});
	}

	tracing_host_params p_;
	rng_t rng_;
	timeline<event> tl_;
	std::uint64_t next_id_ = 1, next_session_ = 1;
	std::unordered_map<std::uint64_t, std::vector<std::uint64_t>> sessions_;
};

inline op_stream tracing_host_stream(const tracing_host_params &p)
{
	return op_stream("tracing_host", tracing_host_generator(p));
}
inline workload generate_tracing_host(const tracing_host_params &p) { return collect(tracing_host_stream(p)); }

}  // namespace ua::workload
