// SPDX-License-Identifier: MIT
/*
 * replay/replay.h - replaying one workload against one allocator on one
 * fresh machine, and what is measured.
 *
 * A run: build the machine (page allocator + backend) of the setup, age it
 * with the setup's seed (so every allocator sees the same aged machine),
 * record the backend's figures ("before"), replay the ops, record them again
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
 *   read_ns_ratio       (real backend) random 1-byte reads over the frames
 *                       still in the direct map after the workload (frames
 *                       whose direct_map_state is invalid are skipped), ns
 *                       per read, divided by the same reads (same offsets)
 *                       over an intact direct map: a second real backend of
 *                       the same size that nothing ever changed. Passes over
 *                       the two alternate, after one untimed pass each that
 *                       faults in what a split left unmapped; the ratio is
 *                       best pass over best pass (compare_reads()).
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
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <type_traits>
#include <string>
#include <unordered_map>
#include <vector>

#include <unmapped_alloc/phys.h>
#include <unmapped_alloc/sim.h>

#include "peers/bpf_prog_pack.h"
#include "peers/execmem.h"
#include "peers/gfp_unmapped.h"
#include "peers/naive.h"
#ifdef UA_REPLAY_JEMALLOC
#include "peers/jemalloc_peer.h"
#endif
#include "machine_load.h"
#include "unmapped_peer.h"
#include "workload_cases.h"

namespace ua::replay {

struct machine_setup {
	std::string backend = "sim"; /* sim | real */
	double gib = 64;
	bool aged = true;
	std::uint64_t seed = 1;
	std::size_t samples = 200;
	std::size_t reads = 65536; /* per pass: short passes, many rounds, best of each resists noise */
	int read_rounds = 40;
	double free_chunk_fraction = 0.02; /* age_config: pageblocks ageing keeps wholly free */
	/* The machine's kernel (machine_load.h): CPUs with their own pcp lists, what runs beside the workload. */
	unsigned nr_cpus = 2;
	bool background = true;      /* page-cache reads and slab churn between ops */
	bool footprints = true;      /* instances with a footprint are processes */
	bool placement_hint = false; /* proposal: the page allocator honours the chunk source's hint */

	std::uint64_t nr_pages() const noexcept { return std::uint64_t(gib * 512) * pages_per_chunk; }
	std::string label() const
	{
		char g[32];
		std::snprintf(g, sizeof g, "%g", gib);
		return backend + "-" + g + "g-" + (aged ? "aged" : "fresh") + (placement_hint ? "-hint" : "");
	}
};

struct dm_sample {
	std::size_t op = 0;
	std::uint64_t dm_4k_kb = 0, dm_2m_kb = 0, dm_1g_kb = 0;
	std::uint64_t chunks = 0;
	std::uint64_t live_bytes = 0;
};

struct run_result {
	std::string allocator, workload, workload_kind, backend, machine;
	double machine_gib = 0;
	bool aged = false;
	bool ran = false;      /* false: setup failed or not applicable (note says why) */
	std::string note;

	std::size_t ops = 0, allocs = 0, frees = 0;
	std::size_t failed_allocs = 0, failed_frees = 0;
	std::string first_failure;

	std::uint64_t peak_live_bytes = 0, lower_bound_chunks = 0;
	std::uint64_t peak_chunks = 0, final_chunks = 0, drained_chunks = 0;
	std::uint64_t spare_chunks = 0; /* configured spares (the cache's; 0 for the peers) */
	std::uint64_t metadata_bytes = 0;
	double ns_per_op = 0;

	backend_stats before, after, drained;
	std::int64_t splits_2m = 0, splits_1g = 0;
	std::uint64_t prot_changes = 0, tlb_flushes = 0;
	bool whole_after_drain = false;

	/* real backend */
	double read_ns_intact = 0, read_ns_after = 0, read_ns_ratio = 0, read_ns_ratio_median = 0;
	std::size_t reads_after = 0;

	std::vector<dm_sample> samples;
};

/* ---- random reads over the direct map (real backend) ------------------- */

namespace detail {

struct read_set {
	std::vector<std::uint64_t> offsets; /* byte offsets into the view */
};

inline read_set make_read_set(std::uint64_t nr_pages, std::size_t n, std::uint64_t seed)
{
	read_set rs;
	rs.offsets.reserve(n);
	std::uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
	for (std::size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		std::uint64_t pfn = (x >> 16) % nr_pages;
		rs.offsets.push_back((pfn << page_shift) | ((x & 0xfff) & ~std::uint64_t{63}));
	}
	return rs;
}

/* The offsets whose frame is still in the direct map of b. */
template <class B>
std::vector<std::uint64_t> readable(const B &b, const read_set &rs)
{
	std::vector<std::uint64_t> out;
	out.reserve(rs.offsets.size());
	for (std::uint64_t off : rs.offsets)
		if (b.direct_map_state(off >> page_shift) != dm_state::invalid)
			out.push_back(off);
	return out;
}

/* One pass of 1-byte reads at base + each offset: ns per read. */
inline double read_pass(const std::byte *base, const std::vector<std::uint64_t> &offs)
{
	if (offs.empty())
		return 0;
	const auto *b = reinterpret_cast<const volatile unsigned char *>(base);
	unsigned sink = 0;
	auto t0 = std::chrono::steady_clock::now();
	for (std::uint64_t off : offs)
		sink += b[off];
	double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
	asm volatile("" : : "r"(sink)); /* the reads must happen */
	return ns / double(offs.size());
}

/*
 * The same reads over two views, interleaved so that load from elsewhere on
 * the machine hits both alike: one untimed pass each first (it faults in
 * what a split left unmapped), then `rounds` pairs of timed passes. The
 * ratio is best pass over best pass: interference from other processes only
 * ever adds time, so the fastest pass of each is the least disturbed (the
 * median of the pairs' ratios is kept as a second opinion).
 */
struct read_comparison {
	double ns = 0, ref_ns = 0, ratio = 0, median_ratio = 0;
};

inline read_comparison compare_reads(const std::byte *a, const std::byte *ref, const std::vector<std::uint64_t> &offs,
				     int rounds)
{
	(void)read_pass(a, offs);
	(void)read_pass(ref, offs);
	read_comparison c;
	std::vector<double> ratios;
	for (int i = 0; i < rounds; i++) {
		const bool ref_first = i % 2; /* neither side always runs second */
		double y = ref_first ? read_pass(ref, offs) : 0;
		double x = read_pass(a, offs);
		if (!ref_first)
			y = read_pass(ref, offs);
		c.ns = (c.ns == 0 || x < c.ns) ? x : c.ns;
		c.ref_ns = (c.ref_ns == 0 || y < c.ref_ns) ? y : c.ref_ns;
		if (y > 0)
			ratios.push_back(x / y);
	}
	if (!ratios.empty()) {
		std::nth_element(ratios.begin(), ratios.begin() + long(ratios.size() / 2), ratios.end());
		c.median_ratio = ratios[ratios.size() / 2];
	}
	c.ratio = c.ref_ns > 0 ? c.ns / c.ref_ns : 0;
	return c;
}

/*
 * An intact direct map to compare with: a real backend of the same size that
 * no allocator ever touches (all 2 MiB pages PMD-mapped), built once per size
 * and kept for the process.
 */
inline const linux_backend *reference_view(std::uint64_t nr_pages)
{
	static std::map<std::uint64_t, std::unique_ptr<linux_backend>> views;
	auto &v = views[nr_pages];
	if (!v)
		v = std::make_unique<linux_backend>(nr_pages);
	return v->ok() ? v.get() : nullptr;
}

inline std::int64_t delta(std::uint64_t after, std::uint64_t before) { return std::int64_t(after) - std::int64_t(before); }

}  // namespace detail

/* ---- the replay itself -------------------------------------------------- */

template <mapping_backend B>
backend_stats locked_stats(machine<B> &m)
{
	typename machine<B>::guard g(m.lock);
	return m.backend.stats();
}

template <mapping_backend B, class Peer>
void replay_ops(machine<B> &m, Peer &peer, const workload_case &wc, const machine_setup &ms, run_result &r)
{
	using clock = std::chrono::steady_clock;
	const auto &ops = wc.w.ops;
	const std::size_t step = std::max<std::size_t>(1, (ops.size() + ms.samples - 1) / std::max<std::size_t>(1, ms.samples));
	std::unordered_map<std::uint64_t, std::uintptr_t> addr;
	std::unordered_map<std::uint64_t, std::size_t> sizes;
	addr.reserve(1024);
	std::uint64_t live = 0;
	clock::duration busy{};

	r.ops = ops.size();
	r.peak_live_bytes = wc.st.peak_bytes;
	r.lower_bound_chunks = (wc.st.peak_bytes + chunk_size - 1) / chunk_size;
	r.before = locked_stats(m);

	auto sample = [&](std::size_t at, std::uint64_t chunks_held) {
		backend_stats s = locked_stats(m);
		r.samples.push_back({at, s.directmap_4k_kb, s.directmap_2m_kb, s.directmap_1g_kb, chunks_held, live});
	};
	auto free_pages = [&]() {
		typename machine<B>::guard g(m.lock);
		return m.pages.nr_free_pages();
	};
	std::uint64_t chunks = peer.stats().chunks;
	sample(0, chunks);
	machine_load<B> load(m, ms.background, ms.footprints, ms.seed);

	for (std::size_t i = 0; i < ops.size(); i++) {
		const workload::op &o = ops[i];
		if (o.k == workload::op::alloc)
			load.before_alloc(o);
		else
			load.before_free(o);
		const std::uint64_t last_free = free_pages();
		if (o.k == workload::op::alloc) {
			auto t0 = clock::now();
			auto res = peer.alloc(o.size, o.align);
			busy += clock::now() - t0;
			r.allocs++;
			if (res.ok()) {
				addr[o.id] = res.value;
				sizes[o.id] = o.size;
				live += o.size;
			} else {
				if (r.failed_allocs++ == 0)
					r.first_failure = std::string("op ") + std::to_string(i) + ": alloc of " +
							  std::to_string(o.size) + " bytes: " + describe(res.err);
			}
		} else {
			auto it = addr.find(o.id);
			if (it != addr.end()) { /* else its alloc failed: nothing to free */
				auto t0 = clock::now();
				error e = peer.free(it->second);
				busy += clock::now() - t0;
				r.frees++;
				if (e != error::ok) {
					if (r.failed_frees++ == 0 && r.first_failure.empty())
						r.first_failure = std::string("op ") + std::to_string(i) + ": free: " + describe(e);
				} else {
					live -= sizes[o.id];
					sizes.erase(o.id);
					addr.erase(it);
				}
			}
		}
		const std::uint64_t peer_free = free_pages();
		if (o.k != workload::op::alloc)
			load.after_free(o);
		/*
		 * Chunks held change only when the allocator takes or returns
		 * frames, which moves the page allocator's free count: ask for
		 * its stats (for jemalloc a mallctl refresh, microseconds) only
		 * then. Every op either allocates or frees, never both.
		 */
		if (peer_free != last_free) {
			chunks = peer.stats().chunks;
			r.peak_chunks = std::max<std::uint64_t>(r.peak_chunks, chunks);
		}
		if ((i + 1) % step == 0 || i + 1 == ops.size())
			sample(i + 1, chunks);
	}
	r.ns_per_op = ops.empty() ? 0 : std::chrono::duration<double, std::nano>(busy).count() / double(ops.size());

	/* After the workload: everything it left live is still allocated. */
	r.after = locked_stats(m);
	load.finish();
	const peers::peer_stats end = peer.stats();
	r.final_chunks = end.chunks;
	r.metadata_bytes = end.metadata_bytes;
	r.splits_2m = std::max<std::int64_t>(0, detail::delta(r.after.direct_map_level2_splits, r.before.direct_map_level2_splits));
	r.splits_1g = std::max<std::int64_t>(0, detail::delta(r.after.direct_map_level3_splits, r.before.direct_map_level3_splits));
	r.prot_changes = r.after.prot_changes - r.before.prot_changes;
	r.tlb_flushes = r.after.tlb_flushes - r.before.tlb_flushes;
	if constexpr (std::is_same_v<B, linux_backend>) {
		const linux_backend *ref = ms.reads ? detail::reference_view(m.nr_pages()) : nullptr;
		if (ref) {
			auto rs = detail::make_read_set(m.nr_pages(), ms.reads, ms.seed);
			auto offs = detail::readable(m.backend, rs);
			r.reads_after = offs.size();
			auto c = detail::compare_reads(reinterpret_cast<const std::byte *>(m.backend.direct_map_address(0)),
						       reinterpret_cast<const std::byte *>(ref->direct_map_address(0)), offs,
						       ms.read_rounds);
			r.read_ns_after = c.ns;
			r.read_ns_intact = c.ref_ns;
			r.read_ns_ratio = c.ratio;
			r.read_ns_ratio_median = c.median_ratio;
		}
	}

	/* Drain: free the rest in allocation order, then let the allocator give back what it caches. */
	for (std::uint64_t id : workload::live_ids(ops)) {
		auto it = addr.find(id);
		if (it == addr.end())
			continue;
		if (peer.free(it->second) == error::ok) {
			live -= sizes[id];
			addr.erase(it);
		} else {
			r.failed_frees++;
		}
	}
	peer.drain();
	r.drained_chunks = peer.stats().chunks;
	sample(ops.size(), r.drained_chunks);
	r.samples.back().op = ops.size() + std::max<std::size_t>(1, ops.size() / 50); /* drawn a little to the right */
	r.drained = locked_stats(m);
	/*
	 * Whole again: no more memory mapped by 4 KiB pages, none less by
	 * 1 GiB pages than before the workload. Not "equal": a collapse() on
	 * release may also merge what was finer before (on the simulation the
	 * boot 4 KiB pages of GiB 0, which has no holes in the model).
	 */
	r.whole_after_drain = r.drained.directmap_available && r.drained.directmap_4k_kb <= r.before.directmap_4k_kb &&
			      r.drained.directmap_1g_kb >= r.before.directmap_1g_kb;
	r.ran = true;
}

/* Whether an allocator can serve a kind at all: bpf_prog_pack gives 64 B alignment and serves BPF only. */
inline bool applicable(const std::string &alloc, memory_kind k)
{
	return !(alloc == "bpf-prog-pack" && k != memory_kind::bpf_text);
}

template <mapping_backend B>
void run_with(machine<B> &m, const std::string &alloc, const workload_case &wc, const machine_setup &ms, run_result &r)
{
	const bool secret = wc.mem == memory_kind::secret;
	if (alloc == "unmapped") {
		unmapped_peer<B> p(m, cache_config_for(wc.mem));
		r.spare_chunks = p.config().spare_chunks;
		replay_ops(m, p, wc, ms, r);
		r.peak_chunks = std::max<std::uint64_t>(r.peak_chunks, p.cache_figures().peak_chunks);
	} else if (alloc == "naive") {
		/* secretmem, or module_alloc/bpf_jit_alloc_exec + set_memory_rox (peers/naive.h) */
		peers::naive_peer<B> p(m, {secret ? peers::naive_use::secretmem : peers::naive_use::vmalloc_text});
		replay_ops(m, p, wc, ms, r);
	} else if (alloc == "gfp-unmapped") {
		peers::gfp_unmapped_peer<B> p(m, {secret ? peers::gfp_unmapped_use::pages : peers::gfp_unmapped_use::module_alloc});
		replay_ops(m, p, wc, ms, r);
	} else if (alloc == "bpf-prog-pack") {
		peers::bpf_prog_pack_peer<B> p(m, {});
		replay_ops(m, p, wc, ms, r);
	} else if (alloc == "execmem") {
		peers::execmem_peer<B> p(m, {});
		replay_ops(m, p, wc, ms, r);
	} else if (alloc == "jemalloc") {
#ifdef UA_REPLAY_JEMALLOC
		const prot alias = secret ? prot::rw : prot::rx;
		peers::jemalloc_peer<B> p(m, {peers::dm_action::invalid, alias});
		if (!p.ok()) {
			r.note = "jemalloc arena could not be created";
			return;
		}
		replay_ops(m, p, wc, ms, r);
#else
		r.note = "built without jemalloc";
#endif
	}
}

/* One run on a fresh machine of the setup. */
template <mapping_backend B>
run_result run_case(const machine_setup &ms, const workload_case &wc, const std::string &alloc)
{
	run_result r;
	r.allocator = alloc;
	r.workload = wc.name;
	r.workload_kind = wc.kind;
	r.backend = ms.backend;
	r.machine = ms.label();
	r.machine_gib = ms.gib;
	r.aged = ms.aged;
	r.ops = wc.w.ops.size();
	r.peak_live_bytes = wc.st.peak_bytes;
	r.lower_bound_chunks = (wc.st.peak_bytes + chunk_size - 1) / chunk_size;
	if (!applicable(alloc, wc.mem)) {
		r.note = "not applicable: bpf_prog_pack serves BPF programs (64 B alignment) only";
		return r;
	}
	const page_alloc_config pcfg = detail::page_alloc_config_for(ms.nr_cpus, ms.placement_hint);
	/* The sim machine is an x86-64 VM of that much RAM (machine_load.h); the real one a flat memfd. */
	memory_map mm;
	if constexpr (std::is_same_v<B, sim_direct_map>) {
		auto x = memory_map::x86_vm(ms.nr_pages());
		if (!x.ok()) {
			r.note = "no x86 memory map for this size";
			return r;
		}
		mm = std::move(x.value);
	} else {
		mm = memory_map::flat(ms.nr_pages());
	}
	/* Aged once per machine and settings; each run starts from a copy of the aged allocator. */
	std::shared_ptr<const page_allocator> aged;
	if (ms.aged) {
		char key[160];
		std::snprintf(key, sizeof key, "%s/%llu/%g/%u/%d", ms.label().c_str(), (unsigned long long)ms.seed,
			      ms.free_chunk_fraction, ms.nr_cpus, int(ms.placement_hint));
		auto &cached = detail::aged_cache()[key];
		if (!cached) {
			auto pa = std::make_shared<page_allocator>(mm, pcfg);
			age_config ac;
			ac.seed = ms.seed;
			ac.free_chunk_fraction = ms.free_chunk_fraction;
			auto a = pa->age(ac);
			if (!a.ok()) {
				detail::aged_cache().erase(key);
				r.note = std::string("ageing failed: ") + describe(a.err);
				return r;
			}
			cached = std::move(pa);
		}
		aged = cached;
	}
	std::unique_ptr<machine<B>> m;
	if constexpr (std::is_same_v<B, sim_direct_map>)
		m = aged ? std::make_unique<machine<B>>(mm, *aged) : std::make_unique<machine<B>>(mm, pcfg);
	else
		m = aged ? std::make_unique<machine<B>>(ms.nr_pages(), *aged) : std::make_unique<machine<B>>(ms.nr_pages(), pcfg);
	if constexpr (requires { m->backend.ok(); }) {
		if (!m->backend.ok()) {
			r.note = std::string("real backend not constructed: ") + m->backend.init_step() + ": " +
				 std::strerror(-m->backend.init_error());
			return r;
		}
	}
	run_with(*m, alloc, wc, ms, r);
	return r;
}

}  // namespace ua::replay
