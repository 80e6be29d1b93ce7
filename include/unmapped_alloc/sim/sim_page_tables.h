// SPDX-License-Identifier: MIT
/*
 * sim/sim_page_tables.h - a sparse model of the x86-64 direct map's page
 * tables below the PUD level, with CPA's split and collapse rules.
 *
 * The direct map is a run of 1 GiB regions (one PUD entry each). A region is
 * either one 1 GiB leaf (one state, no table) or points to a PMD table of 512
 * entries; each PMD entry is either a 2 MiB leaf or points to a PTE table of
 * 512 4 KiB entries. Tables exist only where a region or a 2 MiB page is
 * split, so an unfragmented 1 TiB machine costs 1024 PUD entries and the few
 * boot tables: memory follows fragmentation, not machine size.
 *
 * The rules mirror arch/x86/mm/pat/set_memory.c (__change_page_attr,
 * should_split_large_page, split_large_page, collapse_large_pages):
 *   - a change that covers a whole aligned large page with one new state
 *     changes the leaf in place; the page stays large;
 *   - a change to the state the page already has is a no-op (no split);
 *   - a change to part of a large page splits it: 1 GiB -> 512 x 2 MiB,
 *     2 MiB -> 512 x 4 KiB (both, when a 4 KiB change lands in a 1 GiB
 *     page). Each split takes one page-table page; the caller counts the
 *     global TLB flush CPA issues for it;
 *   - restoring a state never merges; only collapse() does, as
 *     collapse_large_pages() does since Linux 6.15: 512 agreeing 4 KiB
 *     entries become one 2 MiB leaf, then 512 agreeing 2 MiB leaves become one
 *     1 GiB leaf, and the emptied tables are freed.
 *
 * Boot layout (what init_memory_mapping() builds on a machine without
 * gbpages restrictions): the first GiB with 2 MiB pages, because the kernel
 * maps the low-memory holes there at finer granularity; the first 4 MiB of it
 * with 4 KiB pages; every further 1 GiB-aligned GiB that lies wholly inside
 * the machine with one 1 GiB page; the tail after the last whole GiB with
 * 2 MiB pages; a tail shorter than 2 MiB with 4 KiB pages. The model has no
 * holes, so collapse() may merge the boot 4 KiB and 2 MiB mappings too.
 *
 * Cost: change() is proportional to the large pages it touches (a whole
 * 2 MiB leaf changed in place is O(1); a GiB region already split costs at
 * most its 512 PMD entries), plus the 4 KiB entries it rewrites inside PTE
 * tables. Tables are allocated with nothrow new, all before the first
 * mutation, so a change either completes or fails with -ENOMEM having
 * changed nothing.
 */
#pragma once

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "../check.h"
#include "../config.h"
#include "../mapping.h"

namespace ua {

/* The level a frame is mapped at in the direct map. */
enum class map_level : std::uint8_t {
	none,   /* outside the machine */
	pte_4k, /* 4 KiB PTE */
	pmd_2m, /* 2 MiB PMD leaf */
	pud_1g, /* 1 GiB PUD leaf */
};

class sim_page_tables {
public:
	static constexpr std::uint64_t entries_per_table = 512;
	static constexpr std::uint64_t pages_per_pmd = pmd_size / page_size;  /* 512 */
	static constexpr std::uint64_t pages_per_pud = pud_size / page_size;  /* 262144 */
	/* Frames the boot layout maps with 4 KiB pages (the first 4 MiB). */
	static constexpr std::uint64_t boot_4k_pages = 2 * pages_per_pmd;

	/* Counters the backend turns into backend_stats. Page counts, not kB. */
	struct counters {
		std::uint64_t pages_4k = 0, pages_2m = 0, pages_1g = 0;
		std::uint64_t pmd_tables = 0, pte_tables = 0;
		std::uint64_t splits_2m = 0, splits_1g = 0;
		std::uint64_t collapses_2m = 0, collapses_1g = 0;
	};

	explicit sim_page_tables(std::uint64_t nr_pages) : nr_pages_(nr_pages), puds_((nr_pages + pages_per_pud - 1) / pages_per_pud)
	{
		for (std::uint64_t g = 0; g < puds_.size(); g++)
			boot_map_pud(g);
	}

	std::uint64_t nr_pages() const noexcept { return nr_pages_; }
	const counters &count() const noexcept { return c_; }

	/* True when r is non-empty and lies wholly inside the machine. */
	bool contains(frame_range r) const noexcept
	{
		return r.nr_pages != 0 && r.pfn < nr_pages_ && r.nr_pages <= nr_pages_ - r.pfn;
	}

	/* State of one frame; frames outside the machine read as not present. */
	dm_state state(pfn_t pfn) const noexcept
	{
		if (pfn >= nr_pages_)
			return dm_state::invalid;
		const pud_entry &pud = puds_[pfn / pages_per_pud];
		if (!pud.pmd)
			return pud.state;
		const pmd_entry &pmd = pud.pmd->e[(pfn % pages_per_pud) / pages_per_pmd];
		return pmd.pte ? pmd.pte->e[pfn % pages_per_pmd] : pmd.state;
	}

	map_level level(pfn_t pfn) const noexcept
	{
		if (pfn >= nr_pages_)
			return map_level::none;
		const pud_entry &pud = puds_[pfn / pages_per_pud];
		if (!pud.pmd)
			return map_level::pud_1g;
		return pud.pmd->e[(pfn % pages_per_pud) / pages_per_pmd].pte ? map_level::pte_4k : map_level::pmd_2m;
	}

	/*
	 * Set every frame of r (inside the machine, checked by the caller) to s,
	 * splitting large pages only where r covers part of one whose state
	 * differs. *changed tells whether any entry changed. 0 or -ENOMEM (then
	 * nothing changed).
	 */
	int change(frame_range r, dm_state s, bool *changed) noexcept
	{
		UA_DEBUG_ASSERT(contains(r));
		table_reserve res;
		if (!reserve_tables(r, s, res))
			return -ENOMEM;
		*changed = false;
		for_each_pud(r, [&](std::uint64_t g, std::uint64_t a, std::uint64_t b) {
			if (change_pud(g, a, b, s, res))
				*changed = true;
		});
		return 0;
	}

	/*
	 * Merge what can be merged in the 2 MiB pages r touches, then in the
	 * GiB regions it touches. Returns the number of merges (2 MiB plus
	 * 1 GiB); never fails, like collapse_large_pages() which is best effort.
	 */
	std::uint64_t collapse(frame_range r) noexcept
	{
		UA_DEBUG_ASSERT(contains(r));
		std::uint64_t merged = 0;
		for_each_pud(r, [&](std::uint64_t g, std::uint64_t a, std::uint64_t b) {
			merged += collapse_pud(g, a, b);
		});
		return merged;
	}

	/* Bytes this model holds for its tables: the figure that must stay small. */
	std::uint64_t table_bytes() const noexcept
	{
		return puds_.capacity() * sizeof(pud_entry) + c_.pmd_tables * sizeof(pmd_table) +
		       c_.pte_tables * sizeof(pte_table);
	}

	/* Expensive walk: recount every table and leaf and compare with the counters. */
	std::string check_consistency() const
	{
		counters n;
		for (std::uint64_t g = 0; g < puds_.size(); g++) {
			const std::uint64_t base = g * pages_per_pud;
			const pud_entry &pud = puds_[g];
			if (!pud.pmd) {
				if (base + pages_per_pud > nr_pages_)
					return "1 GiB leaf reaches past the end of the machine";
				n.pages_1g += pages_per_pud;
				continue;
			}
			n.pmd_tables++;
			for (std::uint64_t j = 0; j < entries_per_table; j++) {
				const std::uint64_t b2 = base + j * pages_per_pmd;
				if (b2 >= nr_pages_)
					break;
				const std::uint64_t in = std::min(pages_per_pmd, nr_pages_ - b2);
				if (pud.pmd->e[j].pte) {
					n.pte_tables++;
					n.pages_4k += in;
				} else {
					if (in < pages_per_pmd)
						return "2 MiB leaf reaches past the end of the machine";
					n.pages_2m += pages_per_pmd;
				}
			}
		}
		if (n.pages_4k != c_.pages_4k || n.pages_2m != c_.pages_2m || n.pages_1g != c_.pages_1g)
			return "per-level page counts disagree with the tables";
		if (n.pmd_tables != c_.pmd_tables || n.pte_tables != c_.pte_tables)
			return "table counts disagree with the tables";
		if (n.pages_4k + n.pages_2m + n.pages_1g != nr_pages_)
			return "levels do not sum to the machine size";
		return "";
	}

private:
	struct pte_table {
		std::array<dm_state, entries_per_table> e;
	};
	struct pmd_entry {
		dm_state state = dm_state::rw;   /* meaningful when pte is null */
		std::unique_ptr<pte_table> pte;  /* non-null: split into 4 KiB */
	};
	struct pmd_table {
		std::array<pmd_entry, entries_per_table> e;
	};
	struct pud_entry {
		dm_state state = dm_state::rw;   /* meaningful when pmd is null */
		std::unique_ptr<pmd_table> pmd;  /* non-null: split into 2 MiB */
	};

	/*
	 * Tables a change needs, allocated before anything is touched. Splits
	 * happen only where r begins or ends inside a large page, so at most two
	 * PMD tables (the GiB regions at both ends) and two PTE tables (the
	 * 2 MiB pages at both ends) are ever needed.
	 */
	struct table_reserve {
		std::unique_ptr<pmd_table> pmd[2];
		std::unique_ptr<pte_table> pte[2];
		unsigned nr_pmd = 0, nr_pte = 0;

		std::unique_ptr<pmd_table> take_pmd() noexcept
		{
			UA_CHECK(nr_pmd > 0, "PMD table not reserved");
			return std::move(pmd[--nr_pmd]);
		}
		std::unique_ptr<pte_table> take_pte() noexcept
		{
			UA_CHECK(nr_pte > 0, "PTE table not reserved");
			return std::move(pte[--nr_pte]);
		}
	};

	/* Calls f(region, a, b) for each GiB region r touches, [a, b) relative to it. */
	template <class F>
	static void for_each_pud(frame_range r, F &&f)
	{
		for (pfn_t p = r.pfn; p < r.end();) {
			const std::uint64_t g = p / pages_per_pud, base = g * pages_per_pud;
			const pfn_t stop = std::min<pfn_t>(r.end(), base + pages_per_pud);
			f(g, p - base, stop - base);
			p = stop;
		}
	}

	/* Blocks of `unit` pages that [a, b) touches without covering them whole. */
	static unsigned partial_blocks(std::uint64_t a, std::uint64_t b, std::uint64_t unit) noexcept
	{
		if (a / unit == (b - 1) / unit)
			return (a % unit == 0 && b - a == unit) ? 0 : 1;
		return unsigned(a % unit != 0) + unsigned(b % unit != 0);
	}

	bool reserve_tables(frame_range r, dm_state s, table_reserve &res) const noexcept
	{
		unsigned pmds = 0, ptes = 0;
		for_each_pud(r, [&](std::uint64_t g, std::uint64_t a, std::uint64_t b) {
			const pud_entry &pud = puds_[g];
			if (!pud.pmd) {
				if (pud.state == s || (a == 0 && b == pages_per_pud))
					return;
				pmds++;
				ptes += partial_blocks(a, b, pages_per_pmd);
				return;
			}
			const std::uint64_t j0 = a / pages_per_pmd, j1 = (b - 1) / pages_per_pmd;
			for (std::uint64_t j : {j0, j1}) {
				const pmd_entry &e = pud.pmd->e[j];
				const std::uint64_t lo = std::max(a, j * pages_per_pmd);
				const std::uint64_t hi = std::min(b, (j + 1) * pages_per_pmd);
				if (!e.pte && e.state != s && hi - lo != pages_per_pmd)
					ptes++;
				if (j0 == j1)
					break;
			}
		});
		UA_CHECK(pmds <= 2 && ptes <= 2, "a change splits at most two pages per level");
		for (; res.nr_pmd < pmds; res.nr_pmd++)
			if (!(res.pmd[res.nr_pmd] = std::unique_ptr<pmd_table>(new (std::nothrow) pmd_table)))
				return false;
		for (; res.nr_pte < ptes; res.nr_pte++)
			if (!(res.pte[res.nr_pte] = std::unique_ptr<pte_table>(new (std::nothrow) pte_table)))
				return false;
		return true;
	}

	/* 1 GiB -> 512 x 2 MiB with the old state: split_large_page() at PUD level. */
	void split_pud(pud_entry &pud, table_reserve &res) noexcept
	{
		pud.pmd = res.take_pmd();
		for (pmd_entry &e : pud.pmd->e)
			e.state = pud.state;
		c_.pmd_tables++;
		c_.splits_1g++;
		c_.pages_1g -= pages_per_pud;
		c_.pages_2m += pages_per_pud;
	}

	/* 2 MiB -> 512 x 4 KiB with the old state: split_large_page() at PMD level. */
	void split_pmd(pmd_entry &e, table_reserve &res) noexcept
	{
		e.pte = res.take_pte();
		e.pte->e.fill(e.state);
		c_.pte_tables++;
		c_.splits_2m++;
		c_.pages_2m -= pages_per_pmd;
		c_.pages_4k += pages_per_pmd;
	}

	bool change_pud(std::uint64_t g, std::uint64_t a, std::uint64_t b, dm_state s, table_reserve &res) noexcept
	{
		pud_entry &pud = puds_[g];
		if (!pud.pmd) {
			if (pud.state == s)
				return false;
			if (a == 0 && b == pages_per_pud) {
				pud.state = s;  /* whole 1 GiB page: changed in place */
				return true;
			}
			split_pud(pud, res);
		}
		bool changed = false;
		for (std::uint64_t j = a / pages_per_pmd; j <= (b - 1) / pages_per_pmd; j++) {
			pmd_entry &e = pud.pmd->e[j];
			const std::uint64_t lo = std::max(a, j * pages_per_pmd) - j * pages_per_pmd;
			const std::uint64_t hi = std::min(b, (j + 1) * pages_per_pmd) - j * pages_per_pmd;
			if (!e.pte) {
				if (e.state == s)
					continue;
				if (hi - lo == pages_per_pmd) {
					e.state = s;  /* whole 2 MiB page: changed in place */
					changed = true;
					continue;
				}
				split_pmd(e, res);
			}
			for (std::uint64_t k = lo; k < hi; k++) {
				if (e.pte->e[k] != s) {
					e.pte->e[k] = s;
					changed = true;
				}
			}
		}
		return changed;
	}

	std::uint64_t collapse_pud(std::uint64_t g, std::uint64_t a, std::uint64_t b) noexcept
	{
		pud_entry &pud = puds_[g];
		if (!pud.pmd)
			return 0;
		const std::uint64_t base = g * pages_per_pud;
		std::uint64_t merged = 0;
		for (std::uint64_t j = a / pages_per_pmd; j <= (b - 1) / pages_per_pmd; j++) {
			pmd_entry &e = pud.pmd->e[j];
			/* A PTE table cut by the end of the machine has nothing to merge into. */
			if (!e.pte || base + (j + 1) * pages_per_pmd > nr_pages_)
				continue;
			const dm_state s0 = e.pte->e[0];
			if (!std::all_of(e.pte->e.begin(), e.pte->e.end(), [s0](dm_state s) { return s == s0; }))
				continue;
			e.state = s0;
			e.pte.reset();
			c_.pte_tables--;
			c_.collapses_2m++;
			c_.pages_4k -= pages_per_pmd;
			c_.pages_2m += pages_per_pmd;
			merged++;
		}
		if (base + pages_per_pud > nr_pages_)
			return merged;
		const dm_state s0 = pud.pmd->e[0].state;
		for (const pmd_entry &e : pud.pmd->e)
			if (e.pte || e.state != s0)
				return merged;
		pud.state = s0;
		pud.pmd.reset();
		c_.pmd_tables--;
		c_.collapses_1g++;
		c_.pages_2m -= pages_per_pud;
		c_.pages_1g += pages_per_pud;
		return merged + 1;
	}

	void boot_map_pud(std::uint64_t g)
	{
		const std::uint64_t base = g * pages_per_pud;
		pud_entry &pud = puds_[g];
		if (g != 0 && base + pages_per_pud <= nr_pages_) {
			c_.pages_1g += pages_per_pud;
			return;
		}
		pud.pmd = std::make_unique<pmd_table>();
		c_.pmd_tables++;
		for (std::uint64_t j = 0; j < entries_per_table; j++) {
			const std::uint64_t b2 = base + j * pages_per_pmd;
			if (b2 >= nr_pages_)
				break;  /* past the machine: never reached by a valid range */
			const std::uint64_t in = std::min(pages_per_pmd, nr_pages_ - b2);
			if (b2 < boot_4k_pages || in < pages_per_pmd) {
				pud.pmd->e[j].pte = std::make_unique<pte_table>();
				pud.pmd->e[j].pte->e.fill(dm_state::rw);
				c_.pte_tables++;
				c_.pages_4k += in;
			} else {
				c_.pages_2m += pages_per_pmd;
			}
		}
	}

	std::uint64_t nr_pages_;
	std::vector<pud_entry> puds_;
	counters c_;
};

}  // namespace ua
