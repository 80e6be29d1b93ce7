// SPDX-License-Identifier: MIT
/*
 * replay/replay_ops.h - replaying one workload's ops against one allocator
 * on a machine already built and aged (replay.h), and what is measured.
 *
 * Record the backend's figures ("before"), replay the ops, record them again
 * ("after the workload", with everything the workload left live), then free
 * what is still live, in allocation order, call the allocator's drain()
 * (spare chunks and caches go back) and record them a third time ("drained").
 *
 * Figures (docs/benchmarks.md defines each):
 *   peak_live_bytes     most bytes requested and live at once (the workload's,
 *                       measure().peak_bytes);
 *   lower_bound_chunks  ceil(peak_live_bytes / 2 MiB): no allocator that keeps
 *                       its memory in 2 MiB chunks can hold fewer at the peak;
 *   peak_chunks         the most peer_stats::chunks seen, read after every
 *                       op that changed the page allocator's free count (the
 *                       only ops that can change it), and for the cache also
 *                       its own peak_chunks counter;
 *   final_chunks        chunks held after the workload; drained_chunks after
 *                       the drain;
 *   splits_2m/_1g, prot_changes, tlb_flushes
 *                       backend counters after the workload minus before it:
 *                       what the workload caused (on the real backend
 *                       splits_2m is the kernel's gauge, see backends.md);
 *   ns_per_op           time inside alloc()/free() only, per op;
 *   read_ns_ratio       (real backend) read_probe.h: ns per random read over
 *                       the frames still in the direct map after the
 *                       workload, divided by the same reads over an intact
 *                       direct map; best pass over best pass.
 * An allocation that fails is counted (failed_allocs, with the first error)
 * and its free skipped; the run goes on.
 *
 * Backend samples (DirectMap 4K/2M/1G, chunks held, live bytes) are taken
 * every ceil(ops / samples) ops for the plots; on the real backend a sample
 * reads /proc/self/smaps (~5 ms per GiB), so setups sample sparsely there.
 */
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include <unmapped_alloc/phys.h>
#include <unmapped_alloc/sim.h>

#include "machine_load.h"
#include "peers/peer.h"
#include "read_probe.h"
#include "run_result.h"
#include "workload/op.h"

namespace ua::replay {

/* What the replay needs of a machine setup (replay.h's machine_setup has more). */
struct replay_settings {
	std::size_t samples = 200;
	std::size_t reads = 65536; /* per pass: short passes, many rounds, best of each resists noise */
	int read_rounds = 40;
	std::uint64_t seed = 1;
	bool background = true, footprints = true; /* machine_load.h */
};

template <mapping_backend B>
backend_stats locked_stats(machine<B> &m)
{
	typename machine<B>::guard g(m.lock);
	return m.backend.stats();
}

/* One replay in progress: the live allocations by workload id, the clock, the samples. */
template <mapping_backend B, class Peer>
class op_replayer {
public:
	using clock = std::chrono::steady_clock;

	op_replayer(machine<B> &m, Peer &peer, run_result &r, std::size_t nr_ops, const replay_settings &rs)
		: m_(m), peer_(peer), r_(r), nr_ops_(nr_ops),
		  step_(std::max<std::size_t>(1, (nr_ops + rs.samples - 1) / std::max<std::size_t>(1, rs.samples))),
		  load_(m, rs.background, rs.footprints, rs.seed)
	{
		live_.reserve(1024);
		r_.ops = nr_ops;
		r_.before = locked_stats(m_);
		chunks_ = peer_.stats().chunks;
		sample(0, chunks_);
	}

	/*
	 * Op i of the workload: what runs beside it first (machine_load.h), an
	 * alloc or a free, then the chunk count and a sample when due.
	 */
	void step(std::size_t i, const workload::op &o)
	{
		if (o.k == workload::op::alloc)
			load_.before_alloc(o);
		else
			load_.before_free(o);
		const std::uint64_t before = free_pages();
		if (o.k == workload::op::alloc)
			alloc_op(i, o);
		else
			free_op(i, o);
		const std::uint64_t after = free_pages();
		if (o.k != workload::op::alloc)
			load_.after_free(o);
		note_chunks(before, after);
		if ((i + 1) % step_ == 0 || i + 1 == nr_ops_)
			sample(i + 1, chunks_);
	}

	/* After the workload: everything it left live is still allocated. */
	void measure_after()
	{
		r_.ns_per_op = nr_ops_ ? std::chrono::duration<double, std::nano>(busy_).count() / double(nr_ops_) : 0;
		r_.after = locked_stats(m_);
		load_.finish();
		const peers::peer_stats end = peer_.stats();
		r_.final_chunks = end.chunks;
		r_.metadata_bytes = end.metadata_bytes;
		r_.splits_2m = grown(r_.after.direct_map_level2_splits, r_.before.direct_map_level2_splits);
		r_.splits_1g = grown(r_.after.direct_map_level3_splits, r_.before.direct_map_level3_splits);
		r_.prot_changes = r_.after.prot_changes - r_.before.prot_changes;
		r_.tlb_flushes = r_.after.tlb_flushes - r_.before.tlb_flushes;
	}

	/* Drain: free the rest in allocation order, then let the allocator give back what it caches. */
	void drain()
	{
		std::vector<std::pair<std::uint64_t, live_alloc>> rest(live_.begin(), live_.end());
		std::sort(rest.begin(), rest.end(), [](const auto &a, const auto &b) { return a.second.seq < b.second.seq; });
		for (const auto &[id, la] : rest) {
			if (peer_.free(la.addr) == error::ok) {
				live_bytes_ -= la.size;
				live_.erase(id);
			} else {
				r_.failed_frees++;
			}
		}
		peer_.drain();
		r_.drained_chunks = peer_.stats().chunks;
		sample(nr_ops_, r_.drained_chunks);
		r_.samples.back().op = nr_ops_ + std::max<std::size_t>(1, nr_ops_ / 50); /* drawn a little to the right */
		r_.drained = locked_stats(m_);
		/*
		 * Whole again: no more memory mapped by 4 KiB pages, none less by
		 * 1 GiB pages than before the workload. Not "equal": a collapse() on
		 * release may also merge what was finer before (on the simulation the
		 * boot 4 KiB pages of GiB 0, which has no holes in the model).
		 */
		r_.whole_after_drain = r_.drained.directmap_available &&
				       r_.drained.directmap_4k_kb <= r_.before.directmap_4k_kb &&
				       r_.drained.directmap_1g_kb >= r_.before.directmap_1g_kb;
	}

private:
	struct live_alloc {
		std::uintptr_t addr = 0;
		std::size_t size = 0;
		std::uint64_t seq = 0; /* allocation order, for the drain */
	};

	static std::int64_t grown(std::uint64_t after, std::uint64_t before)
	{
		return after > before ? std::int64_t(after - before) : 0;
	}

	std::uint64_t free_pages()
	{
		typename machine<B>::guard g(m_.lock);
		return m_.pages.nr_free_pages();
	}

	void sample(std::size_t at, std::uint64_t chunks_held)
	{
		backend_stats s = locked_stats(m_);
		r_.samples.push_back({at, s.directmap_4k_kb, s.directmap_2m_kb, s.directmap_1g_kb, chunks_held, live_bytes_});
	}

	void alloc_op(std::size_t i, const workload::op &o)
	{
		auto t0 = clock::now();
		auto res = peer_.alloc(o.size, o.align);
		busy_ += clock::now() - t0;
		r_.allocs++;
		if (res.ok()) {
			live_[o.id] = live_alloc{res.value, o.size, seq_++};
			live_bytes_ += o.size;
		} else if (r_.failed_allocs++ == 0) {
			r_.first_failure = "op " + std::to_string(i) + ": alloc of " + std::to_string(o.size) +
					   " bytes: " + describe(res.err);
		}
	}

	void free_op(std::size_t i, const workload::op &o)
	{
		auto it = live_.find(o.id);
		if (it == live_.end())
			return; /* its alloc failed: nothing to free */
		auto t0 = clock::now();
		error e = peer_.free(it->second.addr);
		busy_ += clock::now() - t0;
		r_.frees++;
		if (e != error::ok) {
			if (r_.failed_frees++ == 0 && r_.first_failure.empty())
				r_.first_failure = "op " + std::to_string(i) + ": free: " + describe(e);
			return;
		}
		live_bytes_ -= it->second.size;
		live_.erase(it);
	}

	/*
	 * Chunks held change only when the allocator takes or returns frames,
	 * which moves the page allocator's free count across its own op (the
	 * load beside it is outside the two counts): ask for its stats (for
	 * jemalloc a mallctl refresh, microseconds) only then. Every op either
	 * allocates or frees, never both.
	 */
	void note_chunks(std::uint64_t before, std::uint64_t after)
	{
		if (before != after) {
			chunks_ = peer_.stats().chunks;
			r_.peak_chunks = std::max<std::uint64_t>(r_.peak_chunks, chunks_);
		}
	}

	machine<B> &m_;
	Peer &peer_;
	run_result &r_;
	const std::size_t nr_ops_, step_;
	std::unordered_map<std::uint64_t, live_alloc> live_;
	std::uint64_t live_bytes_ = 0, seq_ = 0, chunks_ = 0;
	clock::duration busy_{};
	machine_load<B> load_;
};

/* read_ns_ratio on the real backend (read_probe.h); nothing on the simulation. */
template <mapping_backend B>
void probe_reads(machine<B> &m, const replay_settings &rs, run_result &r)
{
	if constexpr (std::is_same_v<B, linux_backend>) {
		const linux_backend *ref = rs.reads ? detail::reference_view(m.nr_pages()) : nullptr;
		if (!ref)
			return;
		auto set = detail::make_read_set(m.nr_pages(), rs.reads, rs.seed);
		auto offs = detail::readable(m.backend, set);
		r.reads_after = offs.size();
		auto c = detail::compare_reads(reinterpret_cast<const std::byte *>(m.backend.direct_map_address(0)),
					       reinterpret_cast<const std::byte *>(ref->direct_map_address(0)), offs,
					       rs.read_rounds);
		r.read_ns_after = c.ns;
		r.read_ns_intact = c.ref_ns;
		r.read_ns_ratio = c.ratio;
		r.read_ns_ratio_median = c.median_ratio;
	} else {
		(void)m, (void)rs, (void)r;
	}
}

/* The whole replay of `ops` (peak_live_bytes and the bound are the caller's: they are the workload's). */
template <mapping_backend B, class Peer>
void replay_ops(machine<B> &m, Peer &peer, const std::vector<workload::op> &ops, const replay_settings &rs, run_result &r)
{
	op_replayer<B, Peer> rp(m, peer, r, ops.size(), rs);
	for (std::size_t i = 0; i < ops.size(); i++)
		rp.step(i, ops[i]);
	rp.measure_after();
	probe_reads(m, rs, r);
	rp.drain();
	r.ran = true;
}

}  // namespace ua::replay
