// SPDX-License-Identifier: MIT
/*
 * sim/sim_cpa.h - set_memory_*() on the simulated machine: a change to part
 * of an alias with alias processing, the same on a direct-map address, and
 * the kernel's own splits at boot. Included by sim_direct_map.h, whose
 * members these are.
 *
 * set_memory(a, n, op) follows change_page_attr_set_clr() with a vmalloc or
 * module address as its own address (arch/x86/mm/pat/set_memory.c):
 *   - __change_page_attr_set_clr() walks the alias a step at a time: one
 *     4 KiB page where the alias is 4 KiB-mapped; a whole 2 MiB block where
 *     it is PMD-mapped and the change covers the block or does not alter its
 *     protection (__should_split_large_page() keeps the large page); a
 *     PMD-mapped block the change covers in part, with a new protection, is
 *     split for good and then walked a page at a time;
 *   - after every step cpa_process_alias() applies the same change to the
 *     direct-map alias of the step's frames (__va(cpa->pfn), numpages of
 *     the step), with NX taken out of both masks ("Directmap always has NX
 *     set, do not modify"): ro and rox clear RW there, rw sets it, x and nx
 *     change nothing there. So a 4 KiB-mapped alias changes the direct map
 *     page by page, and every 2 MiB page of the direct map one of its frames
 *     lies in is split even when all 512 of them are changed;
 *   - cpa_flush() flushes once when anything changed; on v6.15+, for
 *     set_memory_rox() only (CPA_COLLAPSE), cpa_collapse_large_pages() then
 *     walks the call's own addresses, the alias, in 2 MiB steps and merges
 *     each 2 MiB block whose 512 PTEs are present with one protection and
 *     map 512 contiguous frames from a 2 MiB-aligned one (collapse_pmd_page());
 *     such a merge is not a direct-map event (collapse_page_count() runs
 *     only for virt_addr_valid() addresses) and the direct map is left as
 *     the call left it. The PUD level of an alias (a 1 GiB virtual block)
 *     is not modelled.
 * The kernel changes as it goes and may fail half way with -ENOMEM; here
 * every table the walk needs is counted and allocated first, so the call is
 * all or nothing, as backend.h requires.
 */
#pragma once

#include "sim_direct_map.h"

namespace ua {

inline int sim_direct_map::set_memory(std::uintptr_t a, std::size_t n, cpa_op op) noexcept
{
	if (!valid_op(op) || n == 0 || a % page_size != 0 || n % page_size != 0)
		return -EINVAL;
	sim_module_area::alias *al = area_.find_mut(a);
	if (!al || n > al->bytes - (a - al->start))
		return -EINVAL;
	const std::uint64_t p0 = (a - al->start) >> page_shift, p1 = p0 + (n >> page_shift);
	const bool whole = p0 == 0 && p1 == al->pages();

	/* W^X on every page, and whether the alias changes at all. */
	bool alias_changes = false;
	if (!al->page_prot) {
		const prot np = apply(op, al->p);
		if (is_wx(np))
			return -EINVAL;
		alias_changes = np != al->p;
	} else {
		for (std::uint64_t i = p0; i < p1; i++) {
			const prot np = apply(op, al->page_prot[i]);
			if (is_wx(np))
				return -EINVAL;
			alias_changes = alias_changes || np != al->page_prot[i];
		}
	}
	std::unique_ptr<prot[]> per_page;
	if (alias_changes && !whole && !al->page_prot) {
		per_page.reset(new (std::nothrow) prot[al->pages()]);
		if (!per_page)
			return -ENOMEM;
		std::fill(per_page.get(), per_page.get() + al->pages(), al->p);
	}

	/* The steps of the walk, and the direct-map range each hands to cpa_process_alias(). */
	const cpa_mask m = alias_mask(op);
	std::unique_ptr<frame_range[]> targets;
	std::size_t nt = 0;
	if (!m.empty()) {
		targets.reset(new (std::nothrow) frame_range[p1 - p0]);
		if (!targets)
			return -ENOMEM;
		for (std::uint64_t page = p0; page < p1;) {
			const std::uint64_t b = page / pages_per_chunk, bs = b * pages_per_chunk, be = bs + pages_per_chunk;
			if (al->pmd_mapped(b)) {
				const prot old = al->prot_at(bs);
				if (apply(op, old) == old || (page == bs && p1 >= be)) {
					/* large page kept: one step over what the call covers of it */
					const std::uint64_t cnt = std::min(p1, be) - page;
					targets[nt++] = {al->pfn_at(page), cnt};
					page += cnt;
					continue;
				}
			}
			targets[nt++] = {al->pfn_at(page), 1};
			page++;
		}
	}
	std::uint64_t pmds = 0, ptes = 0;
	sim_page_tables::table_pool pool;
	if (nt && (!pt_.plan(targets.get(), nt, m, &pmds, &ptes) || !pool.reserve(pmds, ptes)))
		return -ENOMEM;

	/* Nothing can fail from here. The alias: blocks split by a partial change, then the protections. */
	if (al->huge) {
		for (std::uint64_t b = p0 / pages_per_chunk; b * pages_per_chunk < p1; b++) {
			const std::uint64_t bs = b * pages_per_chunk;
			if (al->pmd_mapped(b) && !(p0 <= bs && p1 >= bs + pages_per_chunk) &&
			    apply(op, al->prot_at(bs)) != al->prot_at(bs))
				al->set_pmd_mapped(b, false);
		}
	}
	if (per_page)
		al->page_prot = std::move(per_page);
	if (!al->page_prot) {
		al->p = apply(op, al->p);
	} else {
		bool uniform = true;
		for (std::uint64_t i = p0; i < p1; i++)
			al->page_prot[i] = apply(op, al->page_prot[i]);
		for (std::uint64_t i = 1; i < al->pages() && uniform; i++)
			uniform = al->page_prot[i] == al->page_prot[0];
		if (uniform) {
			al->p = al->page_prot[0];
			al->page_prot.reset();
		}
	}
	bool changed = alias_changes;
	for (std::size_t i = 0; i < nt; i++)
		pt_.change(targets[i], m, pool, &changed);
	if (!changed)
		return 0; /* CPA_FLUSHTLB not set: no flush, no collapse */
	prot_changes_++;
	cpa_flushes_++;

	/* cpa_collapse_large_pages() (v6.15+, set_memory_rox() only) on the alias's own mapping. */
	if (op == cpa_op::rox && cfg_.cpa_collapse() && al->start % chunk_size == 0) {
		bool merged = false;
		for (std::uint64_t b = p0 / pages_per_chunk; b * pages_per_chunk < p1; b++) {
			const std::uint64_t bs = b * pages_per_chunk;
			if (al->pmd_mapped(b) || !al->pmd_mappable(b) || al->prot_at(bs) == prot::none)
				continue;
			bool same = true;
			for (std::uint64_t i = bs + 1; i < bs + pages_per_chunk && same; i++)
				same = al->prot_at(i) == al->prot_at(bs);
			if (!same)
				continue;
			if (!al->huge) {
				const std::uint64_t blocks = al->pages() / pages_per_chunk;
				al->huge.reset(new (std::nothrow) std::uint64_t[(blocks + 63) / 64]());
				if (!al->huge)
					break; /* best effort, as the kernel's collapse is */
			}
			al->set_pmd_mapped(b, true);
			merged = true;
		}
		if (merged)
			cpa_flushes_++; /* flush_tlb_all() before the PTE tables are freed */
	}
	return 0;
}

inline int sim_direct_map::set_memory_direct(frame_range r, cpa_op op) noexcept
{
	if (!pt_.contains(r) || !valid_op(op))
		return -EINVAL;
	cpa_mask m;
	switch (op) {
	case cpa_op::ro: m = {0, pte_bits::rw}; break;
	case cpa_op::rw: m = {pte_bits::rw, 0}; break;
	case cpa_op::x: m = {pte_bits::exec, 0}; break;
	case cpa_op::nx: m = {0, pte_bits::exec}; break;
	case cpa_op::rox: m = {pte_bits::exec, pte_bits::rw}; break;
	}
	for (pfn_t p = r.pfn; p < r.end(); p++) {
		const std::uint8_t b = pt_.bits(p);
		if (b != pte_bits::unmapped && (m.apply(b) & (pte_bits::rw | pte_bits::exec)) == (pte_bits::rw | pte_bits::exec))
			return -EINVAL; /* W^X */
	}
	bool changed = false;
	if (int err = change(r, m, &changed))
		return err;
	if (!changed)
		return 0;
	cpa_flushes_++;
	/* cpa_collapse_large_pages(): collapse_large_pages() at each 2 MiB of r, the PUD only after a PMD merge. */
	if (op == cpa_op::rox && cfg_.cpa_collapse()) {
		bool merged = false;
		for (pfn_t p = align_down(r.pfn, pages_per_chunk); p < r.end(); p += pages_per_chunk) {
			if (pt_.collapse_pmd(p, false)) {
				merged = true;
				pt_.collapse_pud(p);
			}
		}
		if (merged)
			pt_.count_collapse_flush();
	}
	return 0;
}

/* The kernel's own splits before SYSTEM_RUNNING (sim_config::boot_level2/3_splits). */
inline void sim_direct_map::boot_splits() noexcept
{
	constexpr pfn_t pud = sim_page_tables::pages_per_pud;
	const cpa_mask ro{0, pte_bits::rw}, rw{pte_bits::rw, 0};
	/* A whole 2 MiB page changed and changed back splits its 1 GiB page and nothing below. */
	unsigned left = cfg_.boot_level3_splits;
	for (pfn_t g = pt_.nr_pages() / pud; g-- > 0 && left;) {
		if (pt_.level(g * pud) != map_level::pud_1g)
			continue;
		UA_CHECK(change({g * pud, pages_per_chunk}, ro) == 0 && change({g * pud, pages_per_chunk}, rw) == 0,
			 "sim_direct_map: boot split of a 1 GiB page");
		left--;
	}
	/* One 4 KiB page changed and changed back splits its 2 MiB page. */
	left = cfg_.boot_level2_splits;
	constexpr pfn_t kernel_load = (std::uint64_t{16} << 20) >> page_shift; /* CONFIG_PHYSICAL_START */
	for (pfn_t p = kernel_load; p < pt_.nr_pages() && left; p += pages_per_chunk) {
		if (pt_.level(p) != map_level::pmd_2m)
			continue;
		UA_CHECK(change({p, 1}, ro) == 0 && change({p, 1}, rw) == 0, "sim_direct_map: boot split of a 2 MiB page");
		left--;
	}
	prot_changes_ = 0;
}

}  // namespace ua
