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
 *   footprints       each alloc op's declared footprint (op.h: the memory its
 *                    process holds meanwhile) taken from the page allocator
 *                    as order-0 pages before its text is allocated, and given
 *                    back after its text is freed (a sockex1 instance is a
 *                    whole process: stack, page tables, user memory);
 *   copies           allocations of the op's size made per alloc op (and
 *                    freed per free op), for a program load that changes the
 *                    protection of several pages.
 * reclaim: when an allocation finds no memory, the page cache is reclaimed
 * a batch at a time (page_cache.h) until it succeeds or the cache is empty.
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
#include "validation/page_cache.h"
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
	page_cache *reclaim = nullptr; /* when set, a failed allocation reclaims from it and retries */
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
	struct live_op {
		std::vector<std::uintptr_t> text;
		std::vector<pfn_t> footprint;
	};
	sim_run r;
	r.before = sim_stats(m);
	std::unordered_map<std::uint64_t, live_op> live;
	std::vector<std::uint64_t> order; /* allocation order, for the release */

	auto take_page = [&]() {
		sim_machine::guard g(m.lock);
		return m.pages.alloc_pages(0, gfp_any_zone);
	};
	auto release = [&](live_op &l) {
		for (std::uintptr_t a : l.text)
			if (peer.free(a) != error::ok && r.first_failure.empty())
				r.first_failure = "a free failed";
		sim_machine::guard g(m.lock);
		for (pfn_t p : l.footprint)
			(void)m.pages.free_pages(p, 0);
	};

	for (const workload::op &op : w.ops) {
		if (r.ops_done == o.ops_limit)
			break;
		r.ops_done++;
		if (op.k == workload::op::free) {
			auto it = live.find(op.id);
			if (it != live.end()) {
				release(it->second);
				live.erase(it);
			}
			continue;
		}
		live_op l;
		const std::uint64_t n = o.footprints ? op.footprint >> page_shift : 0;
		for (std::uint64_t i = 0; i < n; i++) {
			auto p = take_page();
			while (!p.ok() && p.err == error::no_memory && o.reclaim && o.reclaim->reclaim_batch())
				p = take_page();
			if (!p.ok()) {
				if (r.failed_footprints++ == 0 && r.first_failure.empty())
					r.first_failure = "footprint page: " + std::string(describe(p.err));
				break;
			}
			l.footprint.push_back(p.value);
		}
		for (unsigned c = 0; c < o.copies; c++) {
			auto a = peer.alloc(op.size, op.align);
			while (!a.ok() && a.err == error::no_memory && o.reclaim && o.reclaim->reclaim_batch())
				a = peer.alloc(op.size, op.align);
			if (a.ok()) {
				l.text.push_back(a.value);
			} else if (r.failed_allocs++ == 0) {
				r.first_failure = "alloc of " + std::to_string(op.size) + " bytes: " + describe(a.err);
			}
		}
		order.push_back(op.id);
		live.emplace(op.id, std::move(l));
	}
	for (std::uint64_t id : order) {
		auto it = live.find(id);
		if (it != live.end()) {
			release(it->second);
			live.erase(it);
		}
	}
	r.after = sim_stats(m);
	r.d = delta_of(r.after, r.before);
	return r;
}

}  // namespace ua::validation
