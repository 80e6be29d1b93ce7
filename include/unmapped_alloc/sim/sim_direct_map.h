// SPDX-License-Identifier: MIT
/*
 * sim/sim_direct_map.h - the simulated mapping backend: an x86-64 direct
 * map of any size (1 GiB to 1 TiB and beyond) with CPA's rules, plus a
 * simulated module area for aliases.
 *
 * It composes two models: sim_page_tables (the direct map's PUD/PMD/PTE
 * levels, split and collapse as arch/x86/mm/pat/set_memory.c does, see that
 * header for the boot layout) and sim_module_area (alias addresses and their
 * record). Nothing is dereferenceable: frames have no contents, aliases are
 * addresses only. What the simulation gives is exact accounting: every split,
 * collapse and TLB flush CPA would perform, and DirectMap4k/2M/1G as
 * /proc/meminfo prints them, so experiments can run on machine sizes the host
 * does not have.
 *
 * This class owns the preconditions (the error contract of backend.h): a
 * range outside the machine, an empty range, an unknown protection, a
 * writable+executable protection or an address that is not exactly one live
 * alias is refused with -EINVAL before anything changes. The models below
 * only do the work, and fail only with -ENOMEM, also before any change.
 *
 * Counting (backend_stats):
 *   - splits_2m / splits_1g: each split also costs one global TLB flush
 *     (CPA flushes all CPUs after split_large_page()) and one page-table
 *     page;
 *   - collapses_2m / collapses_1g: a collapse() that merged anything costs
 *     one flush, like cpa_collapse_large_pages()' flush_tlb_all(), and frees
 *     the merged tables;
 *   - tlb_flushes: one per flush_tlb() call, plus the above;
 *   - prot_changes: one per direct-map or alias call that changed at least
 *     one entry (a change to the same state is a no-op and is not counted);
 *   - pgtable_pages: every PMD and PTE table the direct map uses, boot
 *     tables included, so it moves by exactly one per split and per merge;
 *   - aliases: live aliases; bytes_written: bytes passed to write/fill.
 */
#pragma once

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>

#include "../ds.h"
#include "../mapping.h"
#include "sim_module_area.h"
#include "sim_page_tables.h"

namespace ua {

class sim_direct_map {
public:
	static constexpr bool dereferenceable = false;
	static constexpr const char *name = "sim";

	/* A machine of nr_pages 4 KiB frames, booted with the layout of sim_page_tables.h. */
	explicit sim_direct_map(std::uint64_t nr_pages, std::size_t alias_area_bytes = sim_module_area::default_size)
	    : pt_(nr_pages), area_(sim_module_area::default_base, alias_area_bytes)
	{
	}

	std::uint64_t nr_pages() const noexcept { return pt_.nr_pages(); }

	/* --- direct map ------------------------------------------------------ */

	/* set_direct_map_invalid_noflush(): the frames leave the direct map. */
	int set_direct_map_invalid(frame_range r) noexcept { return change(r, dm_state::invalid); }
	/* set_direct_map_default_noflush(): back to present, read-write. */
	int set_direct_map_default(frame_range r) noexcept { return change(r, dm_state::rw); }
	/* set_memory_ro() on the direct-map address. */
	int set_direct_map_ro(frame_range r) noexcept { return change(r, dm_state::ro); }

	/* flush_tlb_kernel_range(): counted, one per call. */
	int flush_tlb(frame_range r) noexcept
	{
		if (!pt_.contains(r))
			return -EINVAL;
		explicit_flushes_++;
		return 0;
	}

	/* collapse_large_pages(): best effort, 0 for any valid range even if nothing merged. */
	int collapse(frame_range r) noexcept
	{
		if (!pt_.contains(r))
			return -EINVAL;
		if (pt_.collapse(r) != 0)
			collapse_flushes_++;
		return 0;
	}

	/* Frames outside the machine read as not present. */
	dm_state direct_map_state(pfn_t pfn) const noexcept { return pt_.state(pfn); }
	/* The level the frame is mapped at (map_level::none outside the machine). */
	map_level direct_map_level(pfn_t pfn) const noexcept { return pt_.level(pfn); }

	/* --- aliases ---------------------------------------------------------- */

	/* vmap()/execmem: a new alias of r; 2 MiB aligned when r is whole chunks. */
	int map_alias(frame_range r, prot p, std::uintptr_t *addr) noexcept
	{
		if (!pt_.contains(r) || !valid_prot(p) || addr == nullptr)
			return -EINVAL;
		return area_.map(r, p, addr);
	}

	/*
	 * vmap() of scattered pages / __vmalloc_node_range(): one alias of
	 * runs[0..n) mapped in order; 2 MiB aligned when every run is whole
	 * chunks. Every run must be non-empty and inside the machine.
	 */
	int map_alias_runs(const frame_range *runs, std::size_t n, prot p, std::uintptr_t *addr) noexcept
	{
		if (runs == nullptr || n == 0 || !valid_prot(p) || addr == nullptr)
			return -EINVAL;
		std::uint64_t pages = 0;
		for (std::size_t i = 0; i < n; i++) {
			if (!pt_.contains(runs[i]) || runs[i].nr_pages > max_alias_pages - pages)
				return -EINVAL;
			pages += runs[i].nr_pages;
		}
		return area_.map_runs(runs, n, p, addr);
	}

	/* set_memory_rox()/set_memory_nx() on a whole alias; n in bytes. */
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

	/* vunmap() of a whole alias; n in bytes. */
	int unmap_alias(std::uintptr_t a, std::size_t n) noexcept
	{
		int err = area_.unmap(a, n);
		if (!err)
			secured_.erase(a);
		return err;
	}

	/* Secret hardening (mlock, no dump, no fork): recorded, nothing to do in a simulation. */
	int secure_alias(std::uintptr_t a, std::size_t n) noexcept
	{
		if (!area_.exact(a, n))
			return -EINVAL;
		try {
			secured_.insert(a);
		} catch (...) {
			return -ENOMEM;
		}
		return 0;
	}
	bool alias_secured(std::uintptr_t a) const noexcept
	{
		auto it = secured_.upper_bound(a);
		if (it == secured_.begin())
			return false;
		--it;
		const sim_module_area::alias *al = area_.find(*it);
		return al && al == area_.find(a);
	}

	/* Protection of the alias containing a, if a is inside a live alias. */
	std::optional<prot> alias_prot(std::uintptr_t a) const noexcept
	{
		if (const sim_module_area::alias *al = area_.find(a))
			return al->p;
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
		constexpr std::uint64_t kb_per_page = page_size / 1024;
		s.directmap_4k_kb = c.pages_4k * kb_per_page;
		s.directmap_2m_kb = c.pages_2m * kb_per_page;
		s.directmap_1g_kb = c.pages_1g * kb_per_page;
		s.splits_2m = c.splits_2m;
		s.splits_1g = c.splits_1g;
		s.collapses_2m = c.collapses_2m;
		s.collapses_1g = c.collapses_1g;
		s.tlb_flushes = explicit_flushes_ + collapse_flushes_ + c.splits_2m + c.splits_1g;
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

	const frame_range *run_at(std::uintptr_t a, std::uint64_t *page) const noexcept
	{
		auto [start, al] = area_.find_with_start(a);
		return al ? al->run_at(a - start, page) : nullptr;
	}

	static constexpr bool valid_prot(prot p) noexcept
	{
		return unsigned(p) <= unsigned(prot::read | prot::write | prot::exec) && !is_wx(p);
	}

	/* [pfn * page_size + off, + n) lies inside the machine (no overflow). */
	bool bytes_inside(pfn_t pfn, std::size_t off, std::size_t n) const noexcept
	{
		if (pfn >= pt_.nr_pages())
			return false;
		const std::uint64_t room = (pt_.nr_pages() - pfn) * page_size;
		return off <= room && n <= room - off;
	}

	int change(frame_range r, dm_state s) noexcept
	{
		if (!pt_.contains(r))
			return -EINVAL;
		bool changed = false;
		if (int err = pt_.change(r, s, &changed))
			return err;
		if (changed)
			prot_changes_++;
		return 0;
	}

	sim_page_tables pt_;
	sim_module_area area_;
	std::set<std::uintptr_t> secured_; /* aliases secure_alias() was applied to */
	std::uint64_t explicit_flushes_ = 0;
	std::uint64_t collapse_flushes_ = 0;
	std::uint64_t prot_changes_ = 0;
	striped_counter bytes_written_; /* write/fill may run concurrently (backend.h) */
	std::uint64_t frames_released_ = 0;
};

}  // namespace ua

static_assert(ua::mapping_backend<ua::sim_direct_map>);
