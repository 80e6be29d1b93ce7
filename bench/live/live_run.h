// SPDX-License-Identifier: MIT
/*
 * live/live_run.h - one workload replayed on the running kernel, measured
 * with the kernel's own counters.
 *
 * What runs is the kernel's own design as this kernel ships it, never a
 * design of the project: BPF text goes through bpf_prog_pack (each alloc op
 * loads a real program whose JIT image has the op's size, live/bpf_prog.h;
 * each free closes it), secrets through secretmem (each alloc op faults one
 * page of a real memfd_secret file, live/secret_file.h). Module text cannot
 * run live (no loadable modules here, and no way to give a module a size).
 *
 * A run:
 *   1. availability (live_availability()): root, the counters, BPF or
 *      memfd_secret; else the run is skipped with a one-line reason;
 *   2. the state at start (live/proc_counters.h read_state());
 *   3. ageing when asked (live/ageing.h), bounded by the free-memory floor;
 *   4. "before": counters and packs; then the ops, with counters sampled
 *      every ceil(ops / samples) ops and free memory checked every 256 ops
 *      (a run stops, as "free memory floor", before MemFree drops under the
 *      floor, and as "time limit" after max_seconds);
 *   5. "after": everything the workload left live still held;
 *   6. release of everything (programs closed, files released, page cache
 *      dropped), then "released": the counters once more.
 * Deltas are after - before and released - before; the kernel's counters
 * are global, so they include whatever else the machine did meanwhile (the
 * report says so; other engineers build on these machines).
 *
 * Secret ops are grouped into memfd_secret files by live/secret_plan.h.
 *
 * Length: about 420 lines, just over the usual 400: the six steps above and
 * their release on every path (error, stop, signal) are one procedure.
 */
#pragma once

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "live/ageing.h"
#include "live/availability.h"
#include "live/bpf_prog.h"
#include "live/page_trace.h"
#include "live/proc_counters.h"
#include "live/secret_file.h"
#include "live/secret_plan.h"
#include "live/stop.h"
#include "workload/workload.h"

namespace ua::live {

struct live_config {
	bool aged = false;
	double floor_gib = 6;           /* MemFree never below this */
	double max_seconds = 120;       /* the ops, per run */
	std::size_t samples = 20;
	bool trace_packs = false;       /* BPF: tracefs composition of each new pack */
	age_params age;                 /* stop_free_kb is set from the floor and the reserve */
	double age_reserve_gib = 2;     /* left free above the floor for the workload */
};

struct kernel_sample {
	std::size_t op = 0;
	kernel_counters c;
	std::uint64_t packs = 0;        /* BPF: packs listed; secrets: files open */
};

struct live_result {
	bool ran = false;
	std::string skipped;            /* the one-line reason when not run */
	live_kind kind = live_kind::bpf;
	std::string workload;
	std::size_t ops = 0, ops_done = 0;
	std::string stopped_by;         /* "" when every op ran */

	machine_state start;
	kernel_counters before, after, released;
	vmalloc_packs packs_before, packs_after, packs_released;
	std::uint64_t packs_max = 0;
	std::vector<kernel_sample> samples;
	age_result age;
	bool aged = false;

	std::size_t allocs = 0, frees = 0, failed_allocs = 0;
	std::string first_failure;
	double ns_per_op = 0;

	/* BPF */
	std::size_t programs_loaded = 0, programs_closed = 0, max_programs_open = 0;
	std::size_t minimal_image = 0;
	std::int64_t size_error_min = 0, size_error_max = 0; /* achieved - wanted jited_prog_len */
	std::size_t size_exact = 0, size_below_minimum = 0;
	std::vector<pack_composition> compositions;
	std::string trace_note;

	/* secretmem */
	std::size_t files_opened = 0, files_released = 0, max_files_open = 0, pages_touched = 0;
};

inline std::int64_t delta(std::uint64_t a, std::uint64_t b) { return std::int64_t(a) - std::int64_t(b); }

namespace detail {

inline std::uint64_t floor_kb(const live_config &c) { return std::uint64_t(c.floor_gib * 1024 * 1024); }

/* Raises RLIMIT_NOFILE to its hard limit for the run; restores it after. */
class nofile_guard {
public:
	nofile_guard() noexcept
	{
		if (getrlimit(RLIMIT_NOFILE, &old_) == 0) {
			rlimit r = old_;
			r.rlim_cur = r.rlim_max;
			have_ = setrlimit(RLIMIT_NOFILE, &r) == 0;
		}
	}
	~nofile_guard()
	{
		if (have_)
			setrlimit(RLIMIT_NOFILE, &old_);
	}
	nofile_guard(const nofile_guard &) = delete;
	nofile_guard &operator=(const nofile_guard &) = delete;

private:
	rlimit old_{};
	bool have_ = false;
};

}  // namespace detail

/*
 * Replays w as live_kind k. `wanted_jited` (BPF only, may be empty) gives
 * the JIT image per alloc op id (a bpftool listing's own sizes); else each
 * op's image is image_for_alloc(size).
 */
inline live_result run_live(const workload::workload &w, live_kind k, const live_config &cfg,
			    const std::unordered_map<std::uint64_t, std::size_t> &wanted_jited = {})
{
	using clock = std::chrono::steady_clock;
	live_result r;
	r.kind = k;
	r.workload = w.name;
	r.ops = w.ops.size();
	if (std::string why = live_availability(k); !why.empty()) {
		r.skipped = why;
		return r;
	}
	if (k == live_kind::secret)
		for (const auto &o : w.ops)
			if (o.k == workload::op::alloc && (o.size > page_size || o.align > page_size)) {
				r.skipped = "secretmem faults one page at a time: this workload has " + std::to_string(o.size) +
					    "-byte secret allocations";
				return r;
			}
	signal_guard signals;
	detail::nofile_guard nofile;
	auto st = read_state();
	if (!st) {
		r.skipped = "kernel counters missing: " + st.error;
		return r;
	}
	r.start = std::move(st.value);

	page_cache_filler filler;
	if (cfg.aged) {
		age_params ap = cfg.age;
		ap.stop_free_kb = detail::floor_kb(cfg) + std::uint64_t(cfg.age_reserve_gib * 1024 * 1024);
		r.age = filler.fill(ap);
		r.aged = true;
		if (r.age.err != 0) {
			r.skipped = "ageing failed: " + r.age.step + ": " + std::strerror(-r.age.err);
			return r;
		}
	}

	program_maker maker;
	std::unordered_map<std::uint64_t, bpf_program> progs;
	std::vector<secret_file> files;
	detail::secret_plan plan;
	trace_session trace;
	if (k == live_kind::bpf) {
		if (int e = maker.calibrate(); e != 0) {
			r.skipped = std::string("BPF calibration failed: ") + std::strerror(-e);
			return r;
		}
		r.minimal_image = maker.minimal_image();
		progs.reserve(w.ops.size() / 2 + 1);
		if (cfg.trace_packs) {
			r.trace_note = trace.start();
			if (r.trace_note.empty())
				(void)trace.take();
		}
	} else {
		plan = detail::plan_secret_files(w.ops);
		files.resize(plan.pages.size());
	}

	auto bc = read_counters();
	auto bp = k == live_kind::bpf ? read_packs() : parse_result<vmalloc_packs>{};
	if (!bc || !bp) {
		r.skipped = "kernel counters missing: " + (bc ? bp.error : bc.error);
		return r;
	}
	r.before = bc.value;
	r.packs_before = bp.value;
	r.packs_max = r.packs_before.packs;

	const std::size_t step = std::max<std::size_t>(1, (w.ops.size() + cfg.samples - 1) / std::max<std::size_t>(1, cfg.samples));
	std::size_t open_files = 0;
	auto sample = [&](std::size_t at) {
		kernel_sample s;
		s.op = at;
		if (auto c = read_counters())
			s.c = c.value;
		if (k == live_kind::bpf) {
			if (auto p = read_packs()) {
				s.packs = p.value.packs;
				r.packs_max = std::max(r.packs_max, s.packs);
			}
		} else {
			s.packs = open_files;
		}
		r.samples.push_back(s);
	};
	sample(0);

	const auto t0 = clock::now();
	clock::duration busy{};
	const std::uint64_t floor = detail::floor_kb(cfg);
	std::uint64_t last_packs = r.packs_before.packs;
	bool first_size = true;
	for (std::size_t i = 0; i < w.ops.size(); i++) {
		if (stop_requested()) {
			r.stopped_by = "stop requested (signal " + std::to_string(stop_signal_number()) + ")";
			break;
		}
		if (i % 256 == 0) {
			if (std::chrono::duration<double>(clock::now() - t0).count() > cfg.max_seconds) {
				r.stopped_by = "time limit";
				break;
			}
			if (auto c = read_counters(); c && c.value.mem_free_kb < floor) {
				r.stopped_by = "free memory floor";
				break;
			}
		}
		if (i > 0 && i % step == 0)
			sample(i);
		r.ops_done = i + 1;
		const workload::op &o = w.ops[i];
		if (k == live_kind::bpf) {
			if (o.k == workload::op::alloc) {
				r.allocs++;
				std::size_t want = image_for_alloc(o.size);
				if (auto it = wanted_jited.find(o.id); it != wanted_jited.end())
					want = it->second;
				if (o.size > workload::bpf_prog_pack_size) {
					if (r.failed_allocs++ == 0)
						r.first_failure = "op " + std::to_string(i) + ": " + std::to_string(o.size) +
								  " bytes: larger than a pack, not replayed live";
					continue;
				}
				kernel_counters c0;
				if (trace.active()) {
					trace.marker("load " + std::to_string(i));
					if (auto c = read_counters())
						c0 = c.value;
				}
				bpf_program p;
				auto a = clock::now();
				int e = maker.make(want, p);
				busy += clock::now() - a;
				if (e != 0) {
					if (r.failed_allocs++ == 0)
						r.first_failure = "op " + std::to_string(i) + ": load of a " + std::to_string(want) +
								  "-byte image: " + std::strerror(-e);
					continue;
				}
				const std::int64_t err = std::int64_t(p.jited_len()) - std::int64_t(want);
				if (want < r.minimal_image)
					r.size_below_minimum++;
				else {
					r.size_error_min = first_size ? err : std::min(r.size_error_min, err);
					r.size_error_max = first_size ? err : std::max(r.size_error_max, err);
					first_size = false;
					r.size_exact += err == 0;
				}
				r.programs_loaded++;
				progs.emplace(o.id, std::move(p));
				r.max_programs_open = std::max(r.max_programs_open, progs.size());
				if (trace.active()) do {
					/*
					 * A new pack takes 512 order-0 frames in this load; only a
					 * load with at least half that many refills can have made
					 * one, and only then is /proc/vmallocinfo (tens of ms with
					 * thousands of programs loaded) read to be sure.
					 */
					std::string text = trace.take();
					auto secs = parse_trace_text(text, trace.instance_dir() + "/trace");
					if (!secs) {
						if (r.trace_note.empty())
							r.trace_note = secs.error;
						break;
					}
					trace_section all;
					for (auto &s : secs.value)
						for (auto &ev : s.events)
							all.events.push_back(std::move(ev));
					pack_composition pc = compose(all);
					if (pc.order0_refills < bpf_prog_pack_pages / 2)
						break;
					auto pk = read_packs();
					if (!pk)
						break;
					if (pk.value.packs > last_packs) {
						pc.load = i;
						pc.packs_after = pk.value.packs;
						if (auto c = read_counters()) {
							pc.l2_splits = delta(c.value.l2_splits, c0.l2_splits);
							pc.l3_splits = delta(c.value.l3_splits, c0.l3_splits);
						}
						r.compositions.push_back(std::move(pc));
					}
					last_packs = pk.value.packs;
					r.packs_max = std::max(r.packs_max, last_packs);
				} while (false);
			} else {
				auto it = progs.find(o.id);
				if (it != progs.end()) {
					auto a = clock::now();
					progs.erase(it);
					busy += clock::now() - a;
					r.programs_closed++;
					r.frees++;
				}
			}
		} else {
			const std::size_t g = plan.group_of_op[i];
			if (o.k == workload::op::alloc) {
				r.allocs++;
				auto a = clock::now();
				if (!files[g].open_now()) {
					if (int e = files[g].open(plan.pages[g]); e != 0) {
						busy += clock::now() - a;
						if (r.failed_allocs++ == 0)
							r.first_failure = "op " + std::to_string(i) + ": memfd_secret of " +
									  std::to_string(plan.pages[g]) + " pages: " + std::strerror(-e);
						continue;
					}
					r.files_opened++;
					open_files++;
					r.max_files_open = std::max(r.max_files_open, open_files);
				}
				files[g].touch(plan.index_of_op[i]);
				busy += clock::now() - a;
				r.pages_touched++;
			} else if (g < files.size() && files[g].open_now()) {
				r.frees++;
				if (plan.release_at[g] == i) {
					auto a = clock::now();
					files[g].release();
					busy += clock::now() - a;
					r.files_released++;
					open_files--;
				}
			}
		}
	}
	sample(r.ops_done);
	r.ns_per_op = r.ops_done ? std::chrono::duration<double, std::nano>(busy).count() / double(r.ops_done) : 0;

	if (auto c = read_counters())
		r.after = c.value;
	if (k == live_kind::bpf)
		if (auto p = read_packs()) {
			r.packs_after = p.value;
			r.packs_max = std::max(r.packs_max, p.value.packs);
		}
	r.programs_closed += progs.size();
	progs.clear();
	for (auto &f : files)
		if (f.open_now()) {
			f.release();
			r.files_released++;
		}
	trace.stop();
	filler.release();
	/*
	 * A closed program's memory, and an empty pack, are freed by deferred
	 * work (bpf_prog_put(): RCU, then a workqueue): give it 3 s at most to
	 * bring the packs back to their number before the run.
	 */
	if (k == live_kind::bpf)
		for (int t = 0; t < 60; t++) {
			auto p = read_packs();
			if (!p || p.value.packs <= r.packs_before.packs)
				break;
			::usleep(50000);
		}
	if (auto c = read_counters())
		r.released = c.value;
	if (k == live_kind::bpf)
		if (auto p = read_packs())
			r.packs_released = p.value;
	r.ran = true;
	return r;
}

}  // namespace ua::live
