// SPDX-License-Identifier: MIT
/*
 * live/live_report.h - a live run in the report's shapes: a run_result of
 * bench/replay (so the JSON keys, the tables and the summary are the other
 * backends'), plus a "kernel" object with what only the kernel has.
 *
 * The run_result of a live run:
 *   backend "kernel", machine "kernel-<GiB>g-fresh|aged" (GiB of MemTotal;
 *   "fresh" means this run did not age the machine: the state at start says
 *   what it was), allocator the kernel's design ("bpf_prog_pack",
 *   "secretmem"), never a design the kernel does not have;
 *   before / after / drained: the kernel's DirectMap4k/2M/1G and its split
 *   and collapse counters (drained = after everything was released);
 *   splits_2m / splits_1g: direct_map_level2_splits / level3_splits, after
 *   minus before;
 *   peak_chunks / final_chunks / drained_chunks: bpf_prog_pack areas listed
 *   in /proc/vmallocinfo (packs are 2 MiB, the kernel's chunks), all of the
 *   machine's; 0 for secretmem, which has no chunks.
 * The "kernel" object (docs/live.md lists every key): the design and the
 * peer that models it, the state at start, deltas of every counter after the
 * workload and after the release, pack or file counts, the JIT image size
 * error, ageing, the samples, the pack compositions when traced.
 */
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "live/live_run.h"
#include "replay/report.h"

namespace ua::live {

inline std::string machine_label(const live_result &r)
{
	const double gib = double(r.start.counters.mem_total_kb) / (1024.0 * 1024.0);
	char b[64];
	std::snprintf(b, sizeof b, "kernel-%.0fg-%s", gib, r.aged ? "aged" : "fresh");
	return b;
}

inline backend_stats stats_of(const kernel_counters &c)
{
	backend_stats s;
	s.directmap_4k_kb = c.dm_4k_kb;
	s.directmap_2m_kb = c.dm_2m_kb;
	s.directmap_1g_kb = c.dm_1g_kb;
	s.direct_map_level2_splits = c.l2_splits;
	s.direct_map_level3_splits = c.l3_splits;
	s.direct_map_level2_collapses = c.l2_collapses;
	s.direct_map_level3_collapses = c.l3_collapses;
	s.kernel_figures = true;
	s.pgtable_available = false;
	return s;
}

inline replay::run_result to_run_result(const live_result &lr, const workload::workload &w, const std::string &workload_name,
					const std::string &workload_kind)
{
	replay::run_result r;
	r.allocator = design_of(lr.kind);
	r.workload = workload_name;
	r.workload_kind = workload_kind;
	r.backend = "kernel";
	r.ran = lr.ran;
	const auto st = workload::measure(w);
	r.ops = w.ops.size();
	r.peak_live_bytes = st.peak_bytes;
	r.lower_bound_chunks = (st.peak_bytes + chunk_size - 1) / chunk_size;
	if (!lr.ran) {
		r.machine = "kernel";
		r.note = "live run skipped: " + lr.skipped;
		return r;
	}
	r.machine = machine_label(lr);
	r.machine_gib = double(lr.start.counters.mem_total_kb) / (1024.0 * 1024.0);
	r.aged = lr.aged;
	r.note = std::string("the running kernel's own ") + design_of(lr.kind) + " (modelled by the " + model_of(lr.kind) +
		 " peer)";
	if (!lr.stopped_by.empty())
		r.note += "; stopped after " + std::to_string(lr.ops_done) + " of " + std::to_string(lr.ops) +
			  " ops: " + lr.stopped_by;
	r.allocs = lr.allocs;
	r.frees = lr.frees;
	r.failed_allocs = lr.failed_allocs;
	r.first_failure = lr.first_failure;
	r.ns_per_op = lr.ns_per_op;
	r.before = stats_of(lr.before);
	r.after = stats_of(lr.after);
	r.drained = stats_of(lr.released);
	r.splits_2m = delta(lr.after.l2_splits, lr.before.l2_splits);
	r.splits_1g = delta(lr.after.l3_splits, lr.before.l3_splits);
	if (lr.kind == live_kind::bpf) {
		r.peak_chunks = lr.packs_max;
		r.final_chunks = lr.packs_after.packs;
		r.drained_chunks = lr.packs_released.packs;
	}
	r.whole_after_drain = lr.released.dm_4k_kb <= lr.before.dm_4k_kb && lr.released.dm_1g_kb >= lr.before.dm_1g_kb;
	for (const auto &s : lr.samples)
		r.samples.push_back({s.op, s.c.dm_4k_kb, s.c.dm_2m_kb, s.c.dm_1g_kb, s.packs, 0});
	return r;
}

namespace detail {

struct json_obj {
	std::string s = "{";
	bool first = true;
	void key(const char *k)
	{
		s += first ? "" : ", ";
		first = false;
		s += replay::json_string(k) + ": ";
	}
	void u64(const char *k, std::uint64_t v) { key(k), s += std::to_string(v); }
	void i64(const char *k, std::int64_t v) { key(k), s += std::to_string(v); }
	void num(const char *k, double v) { key(k), s += replay::json_number(v); }
	void str(const char *k, const std::string &v) { key(k), s += replay::json_string(v); }
	void raw(const char *k, const std::string &v) { key(k), s += v; }
	std::string done() { return s + "}"; }
};

inline std::string counters_json(const kernel_counters &c)
{
	json_obj o;
	o.u64("direct_map_level2_splits", c.l2_splits);
	o.u64("direct_map_level3_splits", c.l3_splits);
	o.u64("direct_map_level2_collapses", c.l2_collapses);
	o.u64("direct_map_level3_collapses", c.l3_collapses);
	o.u64("directmap_4k_kb", c.dm_4k_kb);
	o.u64("directmap_2m_kb", c.dm_2m_kb);
	o.u64("directmap_1g_kb", c.dm_1g_kb);
	o.u64("mem_free_kb", c.mem_free_kb);
	o.u64("mem_available_kb", c.mem_available_kb);
	o.u64("cached_kb", c.cached_kb);
	return o.done();
}

inline std::string deltas_json(const kernel_counters &a, const kernel_counters &b)
{
	json_obj o;
	o.i64("level2_splits", delta(a.l2_splits, b.l2_splits));
	o.i64("level3_splits", delta(a.l3_splits, b.l3_splits));
	o.i64("level2_collapses", delta(a.l2_collapses, b.l2_collapses));
	o.i64("level3_collapses", delta(a.l3_collapses, b.l3_collapses));
	o.i64("directmap_4k_kb", delta(a.dm_4k_kb, b.dm_4k_kb));
	o.i64("directmap_2m_kb", delta(a.dm_2m_kb, b.dm_2m_kb));
	o.i64("directmap_1g_kb", delta(a.dm_1g_kb, b.dm_1g_kb));
	return o.done();
}

inline std::string state_json(const machine_state &s)
{
	json_obj o;
	o.str("kernel", s.kernel);
	o.str("cmdline", s.cmdline);
	o.raw("counters", counters_json(s.counters));
	o.u64("mem_total_kb", s.counters.mem_total_kb);
	o.u64("bpf_prog_packs", s.packs.packs);
	std::string zones = "[";
	for (std::size_t i = 0; i < s.zones.size(); i++) {
		json_obj z;
		z.str("zone", s.zones[i].zone);
		z.u64("present", s.zones[i].present);
		z.u64("managed", s.zones[i].managed);
		z.u64("free", s.zones[i].free);
		for (const auto &b : s.buddy)
			if (b.zone == s.zones[i].zone) {
				std::string v = "[";
				for (std::size_t k = 0; k < b.blocks.size(); k++)
					v += (k ? ", " : "") + std::to_string(b.blocks[k]);
				z.raw("free_blocks_by_order", v + "]");
			}
		zones += (i ? ", " : "") + z.done();
	}
	o.raw("zones", zones + "]");
	return o.done();
}

}  // namespace detail

/* The "kernel" object of a live run (docs/live.md). */
inline std::string kernel_json(const live_result &r)
{
	detail::json_obj o;
	o.str("design", design_of(r.kind));
	o.str("modelled_by", model_of(r.kind));
	o.str("note", "the running kernel's own design as this kernel ships it; the counters are global, the direct map "
		      "stays split until reboot, so deltas are the figures and state_at_start says what the machine was");
	if (!r.ran) {
		o.str("skipped", r.skipped);
		return o.done();
	}
	o.raw("state_at_start", detail::state_json(r.start));
	o.raw("before", detail::counters_json(r.before));
	o.raw("after", detail::counters_json(r.after));
	o.raw("released", detail::counters_json(r.released));
	o.raw("delta_after", detail::deltas_json(r.after, r.before));
	o.raw("delta_released", detail::deltas_json(r.released, r.before));
	o.u64("ops", r.ops);
	o.u64("ops_done", r.ops_done);
	if (!r.stopped_by.empty())
		o.str("stopped_by", r.stopped_by);
	if (r.aged) {
		detail::json_obj a;
		a.str("procedure", "page cache from reading a sparse file, kept during the workload");
		a.u64("bytes_read", r.age.bytes_read);
		a.u64("cached_kb_before", r.age.cached_kb_before);
		a.u64("cached_kb_after", r.age.cached_kb_after);
		a.u64("free_kb_before", r.age.free_kb_before);
		a.u64("free_kb_after", r.age.free_kb_after);
		a.num("seconds", r.age.seconds);
		a.str("stopped_by", r.age.stopped_by);
		o.raw("ageing", a.done());
	}
	if (r.kind == live_kind::bpf) {
		detail::json_obj b;
		b.u64("packs_before", r.packs_before.packs);
		b.u64("packs_max", r.packs_max);
		b.u64("packs_after", r.packs_after.packs);
		b.u64("packs_released", r.packs_released.packs);
		b.i64("packs_created", std::int64_t(r.packs_max) - std::int64_t(r.packs_before.packs));
		b.u64("large_areas_after", r.packs_after.large);
		b.u64("programs_loaded", r.programs_loaded);
		b.u64("programs_closed", r.programs_closed);
		b.u64("max_programs_open", r.max_programs_open);
		b.u64("minimal_image", r.minimal_image);
		b.i64("size_error_min", r.size_error_min);
		b.i64("size_error_max", r.size_error_max);
		b.u64("size_exact", r.size_exact);
		b.u64("size_below_minimum", r.size_below_minimum);
		o.raw("bpf", b.done());
		if (!r.trace_note.empty())
			o.str("trace_note", r.trace_note);
		if (!r.compositions.empty()) {
			std::string v = "[";
			for (std::size_t i = 0; i < r.compositions.size(); i++) {
				const auto &c = r.compositions[i];
				detail::json_obj p;
				p.u64("load_op", c.load);
				p.u64("packs_after", c.packs_after);
				p.i64("level2_splits", c.l2_splits);
				p.i64("level3_splits", c.l3_splits);
				p.u64("order0_frames", c.order0_refills);
				p.u64("regions_2m", c.refill_spread.regions_2m);
				p.u64("regions_1g", c.refill_spread.regions_1g);
				p.u64("vmalloc_order0_page_allocs", c.vmalloc_order0_allocs);
				std::string ord = "{";
				bool f = true;
				for (auto [k, n] : c.page_alloc_orders) {
					ord += (f ? "" : ", ") + replay::json_string(std::to_string(k)) + ": " + std::to_string(n);
					f = false;
				}
				p.raw("page_alloc_orders", ord + "}");
				v += (i ? ", " : "") + p.done();
			}
			o.raw("pack_compositions", v + "]");
		}
	} else {
		detail::json_obj s;
		s.u64("files_opened", r.files_opened);
		s.u64("files_released", r.files_released);
		s.u64("max_files_open", r.max_files_open);
		s.u64("pages_touched", r.pages_touched);
		o.raw("secretmem", s.done());
	}
	std::string v = "[";
	for (std::size_t i = 0; i < r.samples.size(); i++) {
		const auto &s = r.samples[i];
		detail::json_obj p;
		p.u64("op", s.op);
		p.u64("l2_splits", s.c.l2_splits);
		p.u64("l3_splits", s.c.l3_splits);
		p.u64("dm_4k_kb", s.c.dm_4k_kb);
		p.u64("dm_2m_kb", s.c.dm_2m_kb);
		p.u64("dm_1g_kb", s.c.dm_1g_kb);
		p.u64("mem_free_kb", s.c.mem_free_kb);
		p.u64(r.kind == live_kind::bpf ? "packs" : "files_open", s.packs);
		v += (i ? ", " : "") + p.done();
	}
	o.raw("samples", v + "]");
	return o.done();
}

/* The run's JSON object: bench/replay's keys, then "kernel". */
inline std::string run_json(const replay::run_result &r, const std::string &kernel)
{
	std::string s = replay::run_json(r);
	if (kernel.empty() || s.empty() || s.back() != '}')
		return s;
	s.pop_back();
	return s + ", \"kernel\": " + kernel + "}";
}

/* One line of the live figures table (docs/live.md). */
inline std::string table_header()
{
	return "| workload | machine | L2 splits | L3 splits | L2 coll | L3 coll | DM4k kB | DM2M kB | DM1G kB | packs or "
	       "files | at start: L2/L3 splits, DM4k/2M/1G kB, free kB |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n";
}

inline std::string table_line(const std::string &workload_name, const replay::run_result &rr, const live_result &r)
{
	if (!r.ran)
		return "| " + workload_name + " | - | skipped: " + r.skipped + " |||||||||\n";
	char b[512];
	const kernel_counters &a = r.after, &p = r.before, &s = r.start.counters;
	std::string count = r.kind == live_kind::bpf
				    ? std::to_string(r.packs_before.packs) + "->" + std::to_string(r.packs_max) + "->" +
					      std::to_string(r.packs_released.packs) + " packs"
				    : std::to_string(r.files_opened) + " files, " + std::to_string(r.pages_touched) + " pages";
	std::snprintf(b, sizeof b, "| %s | %s | %+lld | %+lld | %+lld | %+lld | %+lld | %+lld | %+lld | %s | %llu/%llu, %llu/%llu/%llu, %llu |\n",
		      workload_name.c_str(), rr.machine.c_str(), (long long)delta(a.l2_splits, p.l2_splits),
		      (long long)delta(a.l3_splits, p.l3_splits), (long long)delta(a.l2_collapses, p.l2_collapses),
		      (long long)delta(a.l3_collapses, p.l3_collapses), (long long)delta(a.dm_4k_kb, p.dm_4k_kb),
		      (long long)delta(a.dm_2m_kb, p.dm_2m_kb), (long long)delta(a.dm_1g_kb, p.dm_1g_kb), count.c_str(),
		      (unsigned long long)s.l2_splits, (unsigned long long)s.l3_splits, (unsigned long long)s.dm_4k_kb,
		      (unsigned long long)s.dm_2m_kb, (unsigned long long)s.dm_1g_kb, (unsigned long long)s.mem_free_kb);
	std::string line = b;
	if (!r.stopped_by.empty())
		line.insert(line.size() - 3, " (stopped: " + r.stopped_by + ")");
	return line;
}

}  // namespace ua::live
