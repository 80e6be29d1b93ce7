// SPDX-License-Identifier: MIT
/*
 * replay/machine_load.h - the simulated machine a replay runs on: how it is
 * built and aged, and what else runs on it while the workload runs.
 *
 * Construction (make_machine()): on the sim backend an x86-64 VM of the
 * setup's RAM (memory_map::x86_vm(): RAM to 3 GiB, the PCI hole, the rest
 * above 4 GiB), so the page allocator's zones and the boot direct map are
 * those of the published 8 GiB VM; on the real backend one flat memfd. The
 * page allocator runs the kernel's watermarks (min_free_kbytes_auto) on
 * ms.nr_cpus CPUs; ms.placement_hint turns on the proposal that the
 * allocator honours the chunk source's hint.
 *
 * Ageing is done once per (machine, seed, settings) and kept for the
 * process; each run gets a copy of the aged page allocator (page_allocator
 * is copyable: a copy of a 64 GiB machine is ~150 MB and tens of ms, where
 * ageing it again takes seconds).
 *
 * While the workload runs (machine_load): each alloc op runs on the next
 * simulated CPU in turn, after one step of the background (page-cache reads
 * with kswapd reclaim, slab churn: phys/background_load.h); an op with a
 * footprint is an instance that is a whole process, spawned on that CPU
 * before its allocation and exited after its free (phys/process_pages.h).
 */
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <unordered_map>

#include <unmapped_alloc/phys.h>

#include "workload/op.h"

namespace ua::replay {

struct machine_setup;

namespace detail {

inline page_alloc_config page_alloc_config_for(unsigned nr_cpus, bool placement_hint)
{
	page_alloc_config c;
	c.min_free_kbytes = min_free_kbytes_auto;
	c.nr_cpus = nr_cpus;
	c.placement_hint = placement_hint;
	return c;
}

}  // namespace detail

/* What runs beside the workload on the machine; every call takes the machine lock. */
template <mapping_backend B>
class machine_load {
public:
	machine_load(machine<B> &m, bool background, bool footprints, std::uint64_t seed)
		: m_(m), background_(background), footprints_(footprints), bg_({.seed = seed})
	{
	}
	machine_load(const machine_load &) = delete;
	machine_load &operator=(const machine_load &) = delete;

	/* Before a workload alloc: the next CPU, a background step, the instance's process. */
	void before_alloc(const workload::op &o)
	{
		typename machine<B>::guard g(m_.lock);
		const unsigned cpu = next_cpu_++ % m_.pages.nr_cpus();
		m_.pages.set_cpu(cpu);
		if (background_)
			bg_.step(m_.pages);
		if (footprints_ && o.footprint) {
			process_pages proc;
			if (spawn_process(m_.pages, o.footprint, proc) == error::ok)
				procs_[o.id] = {std::move(proc), cpu};
			else
				failed_spawns_++;
		}
		cpu_of_[o.id] = cpu;
	}

	/* Before a workload free: on the CPU its alloc ran on, after a background step. */
	void before_free(const workload::op &o)
	{
		typename machine<B>::guard g(m_.lock);
		auto it = cpu_of_.find(o.id);
		if (it != cpu_of_.end()) {
			m_.pages.set_cpu(it->second);
			cpu_of_.erase(it);
		}
		if (background_)
			bg_.step(m_.pages);
	}

	/* After a workload free: the instance's process exits. */
	void after_free(const workload::op &o)
	{
		typename machine<B>::guard g(m_.lock);
		auto it = procs_.find(o.id);
		if (it == procs_.end())
			return;
		m_.pages.set_cpu(it->second.cpu);
		exit_process(m_.pages, it->second.pages);
		procs_.erase(it);
	}

	/* The workload is over: its processes exit, the background's slab is freed (its page cache stays). */
	void finish()
	{
		typename machine<B>::guard g(m_.lock);
		for (auto &[id, p] : procs_)
			exit_process(m_.pages, p.pages);
		procs_.clear();
		bg_.release(m_.pages);
		m_.pages.set_cpu(0);
	}

	std::uint64_t failed_spawns() const noexcept { return failed_spawns_; }

private:
	struct proc {
		process_pages pages;
		unsigned cpu = 0;
	};
	machine<B> &m_;
	const bool background_, footprints_;
	background_load bg_;
	std::unordered_map<std::uint64_t, proc> procs_;
	std::unordered_map<std::uint64_t, unsigned> cpu_of_;
	unsigned next_cpu_ = 0;
	std::uint64_t failed_spawns_ = 0;
};

}  // namespace ua::replay
