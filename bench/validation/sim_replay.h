// SPDX-License-Identifier: MIT
/*
 * validation/sim_replay.h - one workload replayed on a simulated machine
 * that keeps its state from run to run, as a real machine does.
 *
 * Unlike ua-replay (bench/replay/replay.h: every run on a machine of its
 * own), the validation replays a series of runs on one machine, because the
 * figures it is checked against were measured so: the published steps
 * (512, then 1024, then 2048 instances) follow each other on one boot, and
 * ua-live's runs follow each other on one boot of this machine. A run's
 * figures are the backend's counters after it minus before it.
 *
 * Two things a run may add to the op sequence, both parameters of the model
 * (docs/validation.md says where their values come from):
 *   footprints       each alloc op with a declared footprint (op.h) is a
 *                    process, spawned before its text is allocated and
 *                    exited after its text is freed (phys/process_pages.h:
 *                    kernel stack, page tables, slab, then user pages); as
 *                    in ua-replay (replay/machine_load.h), each alloc op runs
 *                    on the next simulated CPU in turn, its free on the same
 *                    CPU;
 *   copies           allocations of the op's size made per alloc op (and
 *                    freed per free op), for a program load that changes the
 *                    protection of several pages.
 * ops_limit replays only the first ops (a live run that was stopped early),
 * then frees what is still live in allocation order, as the run's release
 * closes every program.
 */
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "workload/workload.h"
#include "replay/machine_load.h"
#include "validation/sim_machine.h"

namespace ua::validation {

/* Backend counter deltas of one run: what the kernel's counters would show. */
struct sim_delta {
	std::int64_t level2_splits = 0, level3_splits = 0, level2_collapses = 0, level3_collapses = 0;
	std::int64_t dm_4k_kb = 0, dm_2m_kb = 0, dm_1g_kb = 0;
};

struct sim_run {
	sim_delta d;
	backend_stats before, after;
	std::size_t ops_done = 0, failed_allocs = 0, failed_footprints = 0;
	std::string first_failure;
};

struct replay_options {
	bool footprints = true; /* take each op's declared footprint (op.h) */
	unsigned copies = 1;
	std::size_t ops_limit = SIZE_MAX;
};

inline backend_stats sim_stats(sim_machine &m)
{
	sim_machine::guard g(m.lock);
	return m.backend.stats();
}

inline sim_delta delta_of(const backend_stats &a, const backend_stats &b)
{
	auto d = [](std::uint64_t x, std::uint64_t y) { return std::int64_t(x) - std::int64_t(y); };
	return {d(a.direct_map_level2_splits, b.direct_map_level2_splits),
		d(a.direct_map_level3_splits, b.direct_map_level3_splits),
		d(a.direct_map_level2_collapses, b.direct_map_level2_collapses),
		d(a.direct_map_level3_collapses, b.direct_map_level3_collapses),
		d(a.directmap_4k_kb, b.directmap_4k_kb),
		d(a.directmap_2m_kb, b.directmap_2m_kb),
		d(a.directmap_1g_kb, b.directmap_1g_kb)};
}

template <class Peer>
sim_run replay_on(sim_machine &m, Peer &peer, const workload::workload &w, const replay_options &o = {})
{
	sim_run r;
	r.before = sim_stats(m);
	/* CPUs and processes as ua-replay runs them; nothing else runs meanwhile (no background load). */
	replay::machine_load<sim_direct_map> load(m, false, o.footprints, 1);
	std::unordered_map<std::uint64_t, std::vector<std::uintptr_t>> live;
	std::vector<std::uint64_t> order; /* allocation order, for the release */

	auto release = [&](const workload::op &op, std::vector<std::uintptr_t> &text) {
		load.before_free(op);
		for (std::uintptr_t a : text)
			if (peer.free(a) != error::ok && r.first_failure.empty())
				r.first_failure = "a free failed";
		load.after_free(op);
	};

	for (const workload::op &op : w.ops) {
		if (r.ops_done == o.ops_limit)
			break;
		r.ops_done++;
		if (op.k == workload::op::free) {
			auto it = live.find(op.id);
			if (it != live.end()) {
				release(op, it->second);
				live.erase(it);
			}
			continue;
		}
		load.before_alloc(op);
		std::vector<std::uintptr_t> text;
		for (unsigned c = 0; c < o.copies; c++) {
			auto a = peer.alloc(op.size, op.align);
			if (a.ok()) {
				text.push_back(a.value);
			} else if (r.failed_allocs++ == 0) {
				r.first_failure = "alloc of " + std::to_string(op.size) + " bytes: " + describe(a.err);
			}
		}
		order.push_back(op.id);
		live.emplace(op.id, std::move(text));
	}
	for (std::uint64_t id : order) {
		auto it = live.find(id);
		if (it != live.end()) {
			release(workload::op::make_free(id), it->second);
			live.erase(it);
		}
	}
	load.finish();
	r.failed_footprints = load.failed_spawns();
	if (r.failed_footprints && r.first_failure.empty())
		r.first_failure = "a process could not be spawned";
	r.after = sim_stats(m);
	r.d = delta_of(r.after, r.before);
	return r;
}

}  // namespace ua::validation
