// SPDX-License-Identifier: MIT
/*
 * phys/process_pages.h - the pages a small process holds while it runs,
 * taken from the page allocator as fork(), exec() and its first touches
 * take them, so that a workload whose instances are processes (a sockex1
 * instance loads its BPF program from its own process) interleaves their
 * memory with the allocator's.
 *
 * Per process, on the CPU currently selected (page_allocator::set_cpu()):
 *   - the kernel stack: THREAD_SIZE 16 KiB (THREAD_SIZE_ORDER 2); with
 *     CONFIG_VMAP_STACK (x86-64 default) alloc_thread_stack_node() takes it
 *     from vmalloc, i.e. 4 order-0 GFP_KERNEL pages;
 *   - the PGD: pgd_alloc() takes PGD_ALLOCATION_ORDER 1 with page-table
 *     isolation (CONFIG_MITIGATION_PAGE_TABLE_ISOLATION, the x86-64
 *     default), GFP_PGTABLE_USER;
 *   - the lower page tables: process_config::page_table_pages order-0
 *     GFP_PGTABLE_USER pages (PUD/PMD/PTE of text, heap, stack, libraries);
 *   - slab: process_config::slab_pages order-0 unmovable pages, the
 *     process's share of the slabs of task_struct (4288 bytes here, 7 per
 *     order-3 slab), mm_struct, vmas, files, signal, cred and its socket;
 *   - user memory: the rest of the footprint as order-0
 *     GFP_HIGHUSER_MOVABLE pages (anonymous memory, page cache of its files).
 * The counts that do not come from kernel source are parameters, listed
 * with their origin in docs/page_alloc.md.
 *
 * spawn_process() is all-or-nothing: on failure it frees what it took and
 * returns the allocator's error. The caller holds the machine lock.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "page_alloc.h"

namespace ua {

struct process_config {
	unsigned page_table_pages = 11; /* PUD/PMD/PTE pages: VmPTE of a small process (grep) here, 44 kB */
	unsigned slab_pages = 6;        /* order-0 slab pages per process (estimate, docs/page_alloc.md) */
};

struct process_pages {
	std::vector<std::pair<pfn_t, unsigned>> blocks; /* (pfn, order) */
	std::uint64_t nr_pages() const noexcept
	{
		std::uint64_t n = 0;
		for (auto [p, o] : blocks)
			n += std::uint64_t{1} << o;
		return n;
	}
};

inline void exit_process(page_allocator &pa, process_pages &proc)
{
	/* exit(): user pages first (exit_mmap()), then tables, slab and the stack; the reverse of spawning. */
	for (auto it = proc.blocks.rbegin(); it != proc.blocks.rend(); ++it)
		UA_CHECK(pa.free_pages(it->first, it->second) == error::ok, "process_pages: freeing a process page");
	proc.blocks.clear();
}

inline error spawn_process(page_allocator &pa, std::size_t footprint_bytes, process_pages &out,
			   const process_config &cfg = {})
{
	out.blocks.clear();
	auto take = [&](unsigned order, gfp_t gfp, std::uint64_t count) -> error {
		for (std::uint64_t i = 0; i < count; i++) {
			auto r = pa.alloc_pages(order, gfp);
			if (!r)
				return r.err;
			out.blocks.emplace_back(r.value, order);
		}
		return error::ok;
	};
	const std::uint64_t kernel_pages = 4 + 2 + cfg.page_table_pages + cfg.slab_pages;
	const std::uint64_t total = (footprint_bytes + page_size - 1) / page_size;
	const std::uint64_t user = total > kernel_pages ? total - kernel_pages : 0;
	error e = take(0, gfp_kernel, 4);                      /* kernel stack (vmalloc) */
	if (e == error::ok) e = take(0, gfp_kernel, cfg.slab_pages);
	if (e == error::ok) e = take(1, gfp_kernel, 1);        /* PGD with PTI */
	if (e == error::ok) e = take(0, gfp_kernel, cfg.page_table_pages);
	if (e == error::ok) e = take(0, gfp_highuser_movable, user);
	if (e != error::ok)
		exit_process(pa, out);
	return e;
}

}  // namespace ua
