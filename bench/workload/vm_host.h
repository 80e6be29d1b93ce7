// SPDX-License-Identifier: MIT
/*
 * vm_host.h - a host running confidential or secret-memory guests: VMs of
 * 1-64 GiB arriving and leaving for a week, their memory leaving the direct
 * map folio by folio.
 *
 * Guest memory here is guest_memfd memory created with
 * GUEST_MEMFD_FLAG_NO_DIRECT_MAP (Patrick Roy's series, v9 2026-01,
 * unmerged): each folio is removed from the direct map with
 * set_direct_map_valid_noflush() when it is prepared, and restored when the
 * file is truncated. Mainline guest_memfd allocates order-0 (4 KiB) folios;
 * 2 MiB folios are what the hugepage work for guest_memfd adds. A VM has one
 * folio size; `huge_fraction` of VMs get 2 MiB folios.
 *
 * Ops. Guest memory is written in 2 MiB extents, one alloc op each: size
 * 2 MiB, memory kind guest, `folio` 4096 (the op is 512 folios, each removed
 * on its own) or 2 MiB (the op is one folio), alignment the folio size. A
 * 64 GiB guest is 32768 ops rather than 16.7 million; a replay gives an op to
 * the guest-memfd peer as its folios and to the library's secret cache as one
 * 2 MiB chunk. The VM's first extent carries its footprint: the VMM process
 * (`vmm_bytes`) and the EPT page tables (8 bytes per mapped 4 KiB page for
 * 4 KiB folios, per 2 MiB page for 2 MiB folios).
 *
 * Model (docs/workloads.md gives the source or the reasoning of each):
 *  - arrivals are a Poisson process; the rate follows from Little's law so
 *    that the offered guest memory is `load` of the host:
 *    rate = load * host / (E[size] * E[lifetime]);
 *  - a VM's size is drawn from vm_sizes (1-64 GiB, most VMs small);
 *  - its lifetime is log-normal (median `lifetime_median_h`, sigma
 *    `lifetime_sigma`): most VMs short, a few living for weeks;
 *  - admission: a VM is placed only if the guest memory committed to the
 *    VMs on the host, its own included, stays within `admit_limit` of the
 *    host (else a scheduler places it elsewhere: it is dropped);
 *  - at boot a VM faults `boot_fraction` of its extents (at least one),
 *    the rest one by one at uniformly distributed times over the next
 *    `ramp_h` hours (lazy acceptance / first touch), unless it exits first;
 *  - at exit the file is truncated: every faulted extent freed, in order.
 *  - warm start: the history begins `warmup_days` before 0, so at 0 the host
 *    holds the population weeks of churn leave (every extent a VM alive at 0
 *    had faulted is allocated at 0); VMs that came and went before 0 emit
 *    nothing.
 * The stream ends after `days`, with the VMs alive then still allocated.
 */
#pragma once

#include "workload/op.h"
#include "workload/random.h"
#include "workload/stream.h"
#include "workload/timeline.h"

#include <unmapped_alloc/config.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <unordered_map>

namespace ua::workload {

inline constexpr std::size_t gib = std::size_t(1) << 30;
inline constexpr std::size_t vm_extent_bytes = chunk_size; /* 2 MiB per guest-memory op */

/* Guest memory sizes and their weights (docs/workloads.md, "VM host"). */
struct vm_size_class {
	std::size_t gib;
	double weight;
};
inline constexpr std::array<vm_size_class, 7> vm_sizes = {{
	{1, 0.22}, {2, 0.22}, {4, 0.20}, {8, 0.16}, {16, 0.10}, {32, 0.06}, {64, 0.04},
}};

struct vm_host_params {
	std::uint64_t seed = 1;
	double host_gib = 256;          /* host memory (256 GiB - 1 TiB) */
	double days = 7;                /* length of the stream */
	double load = 0.6;              /* offered guest memory / host memory */
	double admit_limit = 0.85;      /* committed guest memory never exceeds this share of the host */
	double lifetime_median_h = 6;   /* log-normal lifetime: mean 18.5 h, 1.3% over a week */
	double lifetime_sigma = 1.5;
	double huge_fraction = 0;       /* share of VMs whose guest_memfd uses 2 MiB folios */
	double boot_fraction = 0.25;    /* extents faulted at boot */
	double ramp_h = 1;              /* the rest faulted over this long */
	std::size_t vmm_bytes = 5 << 20;/* the VMM process (Firecracker: < 5 MiB per microVM) */
	double warmup_days = 30;        /* history before 0; 0 starts with an empty host */

	static vm_host_params defaults() { return {}; }
	/* Every VM with 2 MiB folios (guest_memfd with hugepage support). */
	static vm_host_params huge_folios()
	{
		vm_host_params p;
		p.huge_fraction = 1;
		return p;
	}
	/* The top of the range: 1 TiB. */
	static vm_host_params large()
	{
		vm_host_params p;
		p.host_gib = 1024;
		return p;
	}

	double mean_vm_bytes() const noexcept
	{
		double sum = 0, w = 0;
		for (const auto &c : vm_sizes) {
			sum += c.weight * double(c.gib) * double(gib);
			w += c.weight;
		}
		return sum / w;
	}
	double mean_lifetime_s() const noexcept
	{
		return lifetime_median_h * 3600.0 * std::exp(lifetime_sigma * lifetime_sigma / 2.0);
	}
	/* Arrivals per second that offer `load` of the host (Little's law). */
	double arrival_rate_per_s() const noexcept
	{
		return load * host_gib * double(gib) / (mean_vm_bytes() * mean_lifetime_s());
	}
};

/* One VM as drawn: its memory, lifetime and folio size. */
struct vm_draw {
	std::size_t bytes;
	double lifetime_s;
	std::size_t folio;
};

inline vm_draw draw_vm(rng_t &rng, const vm_host_params &p)
{
	static constexpr auto weights = [] {
		std::array<double, vm_sizes.size()> w{};
		for (std::size_t i = 0; i < vm_sizes.size(); i++)
			w[i] = vm_sizes[i].weight;
		return w;
	}();
	vm_draw d;
	d.bytes = vm_sizes[draw_weighted(rng, weights)].gib * gib;
	d.lifetime_s = draw_lognormal(rng, p.lifetime_median_h * 3600.0, p.lifetime_sigma);
	d.folio = draw_chance(rng, p.huge_fraction) ? chunk_size : page_size;
	return d;
}

/* Ordinary memory a VM's process holds: the VMM and its EPT page tables, page-rounded. */
constexpr std::size_t vm_footprint(std::size_t guest_bytes, std::size_t folio, std::size_t vmm_bytes) noexcept
{
	const std::size_t ept = guest_bytes / (folio == chunk_size ? chunk_size : page_size) * 8;
	return (vmm_bytes + ept + page_size - 1) / page_size * page_size;
}

class vm_host_generator {
public:
	explicit vm_host_generator(const vm_host_params &p)
		: p_(p), rng_(p.seed), tl_(seconds_ns(p.days * 86400.0)),
		  limit_(std::size_t(p.admit_limit * p.host_gib * double(gib))), rate_(p.arrival_rate_per_s())
	{
		if (rate_ > 0)
			tl_.schedule(-seconds_ns(p.warmup_days * 86400.0), event{event::arrive, 0});
	}

	bool next(op &o)
	{
		return tl_.next(o, [this](std::int64_t t, const auto &e) { handle(t, e); });
	}

	/* Figures of what was generated so far. */
	std::size_t rejected() const noexcept { return rejected_; }
	std::size_t committed_bytes() const noexcept { return committed_; }

private:
	struct event {
		enum what : std::uint8_t { arrive, fault, leave } w;
		std::uint64_t vm;
	};
	struct vm_state {
		std::size_t bytes, folio, extents, faulted = 0;
		std::uint64_t first_id = 0;
		std::int64_t ramp_end = 0;
		bool silent = false; /* gone before 0: no ops */
	};

	void handle(std::int64_t t, const event &e)
	{
		if (e.w == event::arrive)
			arrive(t);
		else if (e.w == event::fault)
			fault(t, e.vm);
		else
			leave(e.vm);
	}

	void arrive(std::int64_t t)
	{
		tl_.schedule(t + std::max<std::int64_t>(1, seconds_ns(draw_exponential(rng_, 1.0 / rate_))),
			     event{event::arrive, 0});
		const vm_draw d = draw_vm(rng_, p_);
		if (committed_ + d.bytes > limit_) {
			rejected_++;
			return;
		}
		committed_ += d.bytes;
		const std::uint64_t no = next_vm_++;
		const std::int64_t exit = t + std::max<std::int64_t>(1, seconds_ns(d.lifetime_s));
		vm_state v{d.bytes, d.folio, d.bytes / vm_extent_bytes};
		tl_.schedule(exit, event{event::leave, no});
		if (exit < 0) {
			v.silent = true;
			vms_.emplace(no, v);
			return;
		}
		v.first_id = next_id_;
		next_id_ += v.extents;
		std::size_t boot = std::size_t(std::ceil(p_.boot_fraction * double(v.extents)));
		boot = std::clamp<std::size_t>(boot, 1, v.extents);
		v.ramp_end = t + seconds_ns(p_.ramp_h * 3600.0);
		auto &s = vms_.emplace(no, v).first->second;
		for (std::size_t i = 0; i < boot; i++)
			fault_one(s, no);
		schedule_fault(t, s, no);
	}

	/* The next of the remaining extents: the minimum of n uniform times in (t, ramp_end]. */
	void schedule_fault(std::int64_t t, const vm_state &v, std::uint64_t no)
	{
		const std::size_t left = v.extents - v.faulted;
		if (left == 0)
			return;
		const double span = double(std::max<std::int64_t>(v.ramp_end - t, 0));
		const double gap = span * (1.0 - std::pow(1.0 - draw_unit(rng_), 1.0 / double(left)));
		tl_.schedule(t + std::int64_t(gap), event{event::fault, no});
	}

	void fault_one(vm_state &v, std::uint64_t no)
	{
		op o = op::make_alloc(v.first_id + v.faulted, vm_extent_bytes, v.folio, "vm" + std::to_string(no))
			       .of(memory_kind::guest)
			       .in_folios(v.folio);
		if (v.faulted == 0)
			o.with_footprint(vm_footprint(v.bytes, v.folio, p_.vmm_bytes));
		tl_.emit(std::move(o));
		v.faulted++;
	}

	void fault(std::int64_t t, std::uint64_t no)
	{
		auto it = vms_.find(no);
		if (it == vms_.end())
			return; /* exited before this fault */
		fault_one(it->second, no);
		schedule_fault(t, it->second, no);
	}

	void leave(std::uint64_t no)
	{
		auto it = vms_.find(no);
		const vm_state &v = it->second;
		committed_ -= v.bytes;
		if (!v.silent)
			for (std::size_t i = 0; i < v.faulted; i++)
				tl_.emit(op::make_free(v.first_id + i));
		vms_.erase(it);
	}

	vm_host_params p_;
	rng_t rng_;
	timeline<event> tl_;
	std::size_t limit_, committed_ = 0, rejected_ = 0;
	double rate_;
	std::uint64_t next_vm_ = 1, next_id_ = 1;
	std::unordered_map<std::uint64_t, vm_state> vms_;
};

inline std::string vm_host_name(const vm_host_params &p)
{
	return "vm_host_" + std::to_string(std::size_t(p.host_gib)) + "g" + (p.huge_fraction >= 1 ? "_2m" : "");
}

inline op_stream vm_host_stream(const vm_host_params &p) { return op_stream(vm_host_name(p), vm_host_generator(p)); }
inline workload generate_vm_host(const vm_host_params &p) { return collect(vm_host_stream(p)); }

}  // namespace ua::workload
