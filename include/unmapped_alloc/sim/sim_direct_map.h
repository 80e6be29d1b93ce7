// SPDX-License-Identifier: MIT
/*
 * sim/sim_direct_map.h - the simulated mapping backend: an x86-64 direct
 * map of any size (1 GiB to 1 TiB and beyond), booted from a memory map and
 * changed with CPA's rules, plus a simulated module area for aliases.
 *
 * It composes two models: sim_page_tables (the direct map's PUD/PMD/PTE
 * levels, built by init_mem_mapping() and changed as
 * arch/x86/mm/pat/set_memory.c does, see that header) and sim_module_area
 * (alias addresses, their frames, protections and page sizes). Nothing is
 * dereferenceable: frames have no contents, aliases are addresses only.
 * What the simulation gives is exact accounting: every split, merge and TLB
 * flush CPA would perform, DirectMap4k/2M/1G as /proc/meminfo prints them
 * and the direct_map_level2/3_splits/collapses events of /proc/vmstat, so
 * experiments can run on machine sizes the host does not have.
 *
 * Which kernel: sim_config (sim_config.h) names the release, whose rules
 * apply (collapse from v6.15), direct_gbpages, and the proposed mechanisms,
 * off unless asked for. The boot map follows the memory map (holes are never
 * mapped, sim_boot_map.h); the splits the kernel makes of its own while
 * booting (the kernel image's protections, early allocations) are taken from
 * the configuration (boot_level2_splits, boot_level3_splits) because they
 * depend on the kernel build and not on the memory map; they change the
 * DirectMap figures but count no vmstat event, as before SYSTEM_RUNNING.
 *
 * This class owns the preconditions (the error contract of backend.h): a
 * range outside the machine, an empty range, an unknown protection, a
 * writable+executable result or an address that is not exactly one live
 * alias (or not inside one, for set_memory()) is refused with -EINVAL
 * before anything changes. The models below only do the work, and fail only
 * with -ENOMEM, also before any change.
 *
 * Counting (backend_stats):
 *   - direct_map_level2/3_splits and _collapses: the vmstat events; each
 *     split costs one global TLB flush (__split_large_page()) and one
 *     page-table page, each batch of merges one flush;
 *   - tlb_flushes: one per flush_tlb() call, one per set_memory*() call that
 *     changed something (cpa_flush()), plus the above;
 *   - prot_changes: one per direct-map or alias call that changed at least
 *     one entry (a change to the state an entry already has is a no-op);
 *   - pgtable_pages: every PMD and PTE table the direct map uses, boot
 *     tables included, so it moves by exactly one per split and per merge;
 *   - aliases: live aliases; bytes_written: bytes passed to write/fill.
 *
 * Length: about 430 lines, just over the usual 400: the backend contract
 * (every operation of mapping/backend.h, each with its CPA rule) is one
 * list that reads best whole; the page tables and the module area it
 * composes are rooms of their own.
 */
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <string>

#include "../check.h"
#include "../ds/striped_counter.h"
#include "../mapping/backend.h"
#include "../mapping/memory_map.h"
#include "../mapping/types.h"
#include "sim_config.h"
#include "sim_module_area.h"
#include "sim_page_tables.h"

namespace ua {

class sim_direct_map {
public:
	static constexpr bool dereferenceable = false;
	static constexpr const char *name = "sim";

	/* The machine of memory map mm, running the kernel cfg describes. */
	explicit sim_direct_map(const memory_map &mm, const sim_config &cfg = {},
				std::size_t alias_area_bytes = sim_module_area::default_size)
	    : cfg_(cfg), pt_(mm, cfg.gbpages), area_(sim_module_area::default_base, alias_area_bytes)
	{
		boot_splits();
		pt_.set_running();
	}
	/*
	 * A machine of nr_pages frames without holes: all RAM but page 0 and the
	 * legacy 640 KiB - 1 MiB, which no x86 kernel counts as RAM
	 * (boot_map_plan::x86_flat()); both are still mapped, in the ISA range.
	 */
	explicit sim_direct_map(std::uint64_t nr_pages, std::size_t alias_area_bytes = sim_module_area::default_size)
	    : sim_direct_map(boot_map_plan::x86_flat(nr_pages), sim_config{}, alias_area_bytes)
	{
	}
	sim_direct_map(std::uint64_t nr_pages, const sim_config &cfg,
		       std::size_t alias_area_bytes = sim_module_area::default_size)
	    : sim_direct_map(boot_map_plan::x86_flat(nr_pages), cfg, alias_area_bytes)
	{
	}
	/* For machine<sim_direct_map>(nr_pages, ..., mm, cfg): nr_pages must be mm's end of RAM. */
	sim_direct_map(std::uint64_t nr_pages, const memory_map &mm, const sim_config &cfg = {},
		       std::size_t alias_area_bytes = sim_module_area::default_size)
	    : sim_direct_map(mm, cfg, alias_area_bytes)
	{
		UA_CHECK(nr_pages == mm.end_pfn(), "sim_direct_map: machine size is not the memory map's end of RAM");
	}

	std::uint64_t nr_pages() const noexcept { return pt_.nr_pages(); }
	const sim_config &config() const noexcept { return cfg_; }

	/* --- direct map ------------------------------------------------------ */

	/* set_direct_map_invalid_noflush() / set_direct_map_valid_noflush(false): __set_pages_np(). */
	int set_direct_map_invalid(frame_range r) noexcept { return change(r, {0, pte_bits::present | pte_bits::rw}); }

	/*
	 * set_direct_map_default_noflush(): __set_pages_p(). Never merges in a
	 * kernel; with the proposed collapse_on_restore it merges what it
	 * restored (sim_config.h).
	 */
	int set_direct_map_default(frame_range r) noexcept
	{
		int err = change(r, {pte_bits::present | pte_bits::rw, 0});
		if (!err && cfg_.collapse_on_restore)
			merge_restored(r);
		return err;
	}

	/* set_memory_ro() on the direct-map address: clears RW, flushes if it changed anything. */
	int set_direct_map_ro(frame_range r) noexcept
	{
		bool changed = false;
		int err = change(r, {0, pte_bits::rw}, &changed);
		if (!err && changed)
			cpa_flushes_++;
		return err;
	}

	/*
	 * set_memory_*() with a direct-map address as its own address (sim
	 * only, not in the contract; no kernel path in this project does it):
	 * here x and rox do clear NX, and on v6.15+ rox then runs
	 * cpa_collapse_large_pages() over the 2 MiB pages of r - the one place
	 * the kernel merges direct-map pages. W^X as everywhere.
	 */
	int set_memory_direct(frame_range r, cpa_op op) noexcept;

	/* flush_tlb_kernel_range(): counted, one per call. */
	int flush_tlb(frame_range r) noexcept
	{
		if (!pt_.contains(r))
			return -EINVAL;
		explicit_flushes_++;
		return 0;
	}

	/*
	 * No kernel merges on request: 0 for any valid range, and nothing
	 * changes - unless the proposed collapse_on_restore is on, which merges
	 * r's restored pages as set_direct_map_default() then does.
	 */
	int collapse(frame_range r) noexcept
	{
		if (!pt_.contains(r))
			return -EINVAL;
		if (cfg_.collapse_on_restore)
			merge_restored(r);
		return 0;
	}

	/* Frames not mapped (holes, outside the machine) read as not present. */
	dm_state direct_map_state(pfn_t pfn) const noexcept { return pt_.state(pfn); }
	/* The level the frame is mapped at (map_level::none where nothing is mapped). */
	map_level direct_map_level(pfn_t pfn) const noexcept { return pt_.level(pfn); }
	/* lookup_address()'s level as a page size (mapping/backend.h, reports_direct_map_pages). */
	std::uint64_t direct_map_page_size(pfn_t pfn) const noexcept
	{
		switch (pt_.level(pfn)) {
		case map_level::pte_4k: return page_size;
		case map_level::pmd_2m: return pmd_size;
		case map_level::pud_1g: return pud_size;
		case map_level::none: break;
		}
		return 0;
	}

	/* --- aliases ---------------------------------------------------------- */

	/* vmap()/execmem: a new alias of r; 2 MiB aligned when r is whole chunks. */
	int map_alias(frame_range r, prot p, std::uintptr_t *addr, map_flags f = map_flags::none) noexcept
	{
		return map_alias_runs(&r, 1, p, addr, f);
	}

	/*
	 * vmap() of scattered pages / __vmalloc_node_range(): one alias of
	 * runs[0..n) mapped in order; 2 MiB aligned when every run is whole
	 * chunks. Every run must be non-empty and inside the machine.
	 */
	int map_alias_runs(const frame_range *runs, std::size_t n, prot p, std::uintptr_t *addr,
			   map_flags f = map_flags::none) noexcept
	{
		if (runs == nullptr || n == 0 || !valid_prot(p) || addr == nullptr || unsigned(f) > 1)
			return -EINVAL;
		std::uint64_t pages = 0;
		for (std::size_t i = 0; i < n; i++) {
			if (!pt_.contains(runs[i]) || runs[i].nr_pages > max_alias_pages - pages)
				return -EINVAL;
			pages += runs[i].nr_pages;
		}
		return area_.map_runs(runs, n, p, f == map_flags::huge, addr);
	}

	/* The protection of a whole alias (n in bytes); the direct map is not touched. */
	int protect_alias(std::uintptr_t a, std::size_t n, prot p) noexcept
	{
		if (!valid_prot(p))
			return -EINVAL;
		bool changed = false;
		if (int err = area_.protect(a, n, p, &changed))
			return err;
		if (changed)
			prot_changes_++;
		return 0;
	}

	/* set_memory_ro/rw/x/nx/rox() on [a, a + n) of an alias, with cpa_process_alias(). */
	int set_memory(std::uintptr_t a, std::size_t n, cpa_op op) noexcept;

	/* vunmap() of a whole alias; n in bytes. */
	int unmap_alias(std::uintptr_t a, std::size_t n) noexcept { return area_.unmap(a, n); }

	/* Secret hardening (mlock, no dump, no fork): recorded, nothing to do in a simulation. */
	int secure_alias(std::uintptr_t a, std::size_t n) noexcept
	{
		sim_module_area::alias *al = area_.exact_alias(a, n);
		if (!al)
			return -EINVAL;
		al->secured = true;
		return 0;
	}
	bool alias_secured(std::uintptr_t a) const noexcept
	{
		const sim_module_area::alias *al = area_.find(a);
		return al && al->secured;
	}

	/* Protection of the page holding a, if a is inside a live alias. */
	std::optional<prot> alias_prot(std::uintptr_t a) const noexcept
	{
		if (const sim_module_area::alias *al = area_.find(a))
			return al->prot_at((a - al->start) >> page_shift);
		return std::nullopt;
	}

	/* The run of frames behind address a of a live alias (all its frames for a single-run alias), if any. */
	std::optional<frame_range> alias_frames(std::uintptr_t a) const noexcept
	{
		std::uint64_t page = 0;
		if (const frame_range *r = run_at(a, &page))
			return *r;
		return std::nullopt;
	}

	/* The frame behind address a of a live alias, if any. */
	std::optional<pfn_t> alias_pfn(std::uintptr_t a) const noexcept
	{
		std::uint64_t page = 0;
		if (const frame_range *r = run_at(a, &page))
			return r->pfn + page;
		return std::nullopt;
	}

	/* Number of frame runs of the alias containing a (0 when a is in none). */
	std::size_t alias_nr_runs(std::uintptr_t a) const noexcept
	{
		const sim_module_area::alias *al = area_.find(a);
		return al ? al->nr_runs : 0;
	}

	/* Whether the alias maps the 2 MiB block holding a with one PMD. */
	bool alias_pmd_mapped(std::uintptr_t a) const noexcept
	{
		const sim_module_area::alias *al = area_.find(a);
		return al && al->pmd_mapped(((a - al->start) >> page_shift) / pages_per_chunk);
	}

	const sim_module_area &module_area() const noexcept { return area_; }

	/* --- frame contents ---------------------------------------------------- */

	/* text_poke_copy(): nothing to store here; the target must be inside the machine. */
	int write_frames(pfn_t pfn, std::size_t off, const void *src, std::size_t n) noexcept
	{
		if (!bytes_inside(pfn, off, n) || (src == nullptr && n != 0))
			return -EINVAL;
		bytes_written_.add(n);
		return 0;
	}

	/* text_poke_set(): byte is converted to unsigned char, as memset() does. */
	int fill_frames(pfn_t pfn, std::size_t off, int byte, std::size_t n) noexcept
	{
		(void)byte;
		if (!bytes_inside(pfn, off, n))
			return -EINVAL;
		bytes_written_.add(n);
		return 0;
	}

	/* Hole punch: the frames' contents are given back (nothing to drop here). */
	int release_frames(frame_range r) noexcept
	{
		if (!pt_.contains(r))
			return -EINVAL;
		frames_released_ += r.nr_pages;
		return 0;
	}

	/* --- accounting -------------------------------------------------------- */

	backend_stats stats() const
	{
		const sim_page_tables::counters &c = pt_.count();
		backend_stats s;
		s.directmap_4k_kb = c.direct_pages_4k << 2;  /* arch_report_meminfo(): << 2, << 11, << 20 */
		s.directmap_2m_kb = c.direct_pages_2m << 11;
		s.directmap_1g_kb = c.direct_pages_1g << 20;
		s.direct_map_level2_splits = c.level2_splits;
		s.direct_map_level3_splits = c.level3_splits;
		s.direct_map_level2_collapses = c.level2_collapses;
		s.direct_map_level3_collapses = c.level3_collapses;
		s.tlb_flushes = explicit_flushes_ + cpa_flushes_ + c.flushes;
		s.prot_changes = prot_changes_;
		s.pgtable_pages = c.pmd_tables + c.pte_tables;
		s.aliases = area_.live();
		s.bytes_written = bytes_written_.sum();
		return s;
	}

	/* Frames passed to release_frames() so far. */
	std::uint64_t frames_released() const noexcept { return frames_released_; }
	/* The page-table model, for tests that look at tables and memory use. */
	const sim_page_tables &page_tables() const noexcept { return pt_; }

	/* Expensive walk over both models; "" or the first violation. */
	std::string check_consistency() const
	{
		std::string err = pt_.check_consistency();
		return err.empty() ? area_.check_consistency() : err;
	}

private:
	/* An alias is at most this many pages, so its size in bytes cannot overflow. */
	static constexpr std::uint64_t max_alias_pages = std::uint64_t{1} << (63 - page_shift);

	static constexpr bool valid_prot(prot p) noexcept
	{
		return unsigned(p) <= unsigned(prot::read | prot::write | prot::exec) && !is_wx(p);
	}
	static constexpr bool valid_op(cpa_op op) noexcept { return unsigned(op) <= unsigned(cpa_op::rox); }

	/* What op does to the direct-map alias of a frame: cpa_process_alias() strips NX ("Directmap always has NX set"). */
	static constexpr cpa_mask alias_mask(cpa_op op) noexcept
	{
		switch (op) {
		case cpa_op::ro:
		case cpa_op::rox: return {0, pte_bits::rw};
		case cpa_op::rw: return {pte_bits::rw, 0};
		default: return {};
		}
	}

	const frame_range *run_at(std::uintptr_t a, std::uint64_t *page) const noexcept
	{
		const sim_module_area::alias *al = area_.find(a);
		return al ? al->run_at((a - al->start) >> page_shift, page) : nullptr;
	}

	/* [pfn * page_size + off, + n) lies inside the machine (no overflow). */
	bool bytes_inside(pfn_t pfn, std::size_t off, std::size_t n) const noexcept
	{
		if (pfn >= pt_.nr_pages())
			return false;
		const std::uint64_t room = (pt_.nr_pages() - pfn) * page_size;
		return off <= room && n <= room - off;
	}

	/* One CPA over the direct-map range r with mask m, tables reserved first. */
	int change(frame_range r, cpa_mask m, bool *changed_out = nullptr) noexcept
	{
		if (!pt_.contains(r))
			return -EINVAL;
		std::uint64_t pmds = 0, ptes = 0;
		sim_page_tables::table_pool pool;
		if (!pt_.plan(&r, 1, m, &pmds, &ptes) || !pool.reserve(pmds, ptes))
			return -ENOMEM;
		bool changed = false;
		pt_.change(r, m, pool, &changed);
		if (changed)
			prot_changes_++;
		if (changed_out)
			*changed_out = changed;
		return 0;
	}

	/* The proposed collapse_on_restore over r: 2 MiB pages, then GiBs (the PUD even without a PMD merge). */
	void merge_restored(frame_range r) noexcept
	{
		bool merged = false;
		for (pfn_t p = align_down(r.pfn, pages_per_chunk); p < r.end(); p += pages_per_chunk)
			merged |= pt_.collapse_pmd(p, true);
		constexpr pfn_t pud = sim_page_tables::pages_per_pud;
		for (pfn_t p = r.pfn / pud * pud; p < r.end(); p += pud)
			merged |= pt_.collapse_pud(p);
		if (merged)
			pt_.count_collapse_flush();
	}

	void boot_splits() noexcept;

	sim_config cfg_;
	sim_page_tables pt_;
	sim_module_area area_;
	std::uint64_t explicit_flushes_ = 0;
	std::uint64_t cpa_flushes_ = 0;
	std::uint64_t prot_changes_ = 0;
	striped_counter bytes_written_; /* write/fill may run concurrently (backend.h) */
	std::uint64_t frames_released_ = 0;
};

}  // namespace ua

#include "sim_cpa.h"

static_assert(ua::mapping_backend<ua::sim_direct_map>);
