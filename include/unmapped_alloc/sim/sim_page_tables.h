// SPDX-License-Identifier: MIT
/*
 * sim/sim_page_tables.h - a sparse model of the x86-64 direct map's page
 * tables below the PUD level, built at boot as the kernel builds them and
 * counted as the kernel counts them.
 *
 * The direct map is a run of 1 GiB regions (one PUD entry each). An entry of
 * any level is none (not mapped: a hole, or past the end of RAM), a leaf
 * (1 GiB, 2 MiB or 4 KiB, with its protection bits) or, for PUD and PMD
 * entries, a table of 512 entries of the next level. Tables exist only where
 * a region or a 2 MiB page is split or was never mapped whole, so an
 * unfragmented 1 TiB machine costs 1024 PUD entries and the few boot tables:
 * memory follows fragmentation, not machine size.
 *
 * Boot (kernel_physical_mapping_init() of arch/x86/mm/init_64.c, fed the
 * ranges of sim_boot_map.h): phys_pud_init(), phys_pmd_init() and
 * phys_pte_init() fill none entries with PAGE_KERNEL leaves of the sizes the
 * range allows, descend into existing tables, and count every leaf they set
 * *and every existing leaf they pass again* (update_page_count(); the
 * "if (!after_bootmem) pages++" on an existing entry). The counters are the
 * kernel's direct_pages_count[], which /proc/meminfo prints as
 * DirectMap4k/2M/1G; because of that recount they can exceed what the
 * tables map, exactly as on a real machine. What the recount added is kept
 * (boot_recount) so the consistency walk can check the tables against the
 * counters.
 *
 * Protection bits are those CPA changes here: present and RW (_PAGE_PRESENT,
 * _PAGE_RW), and exec (NX clear), which only a set_memory_x()/rox() whose
 * own address is in the direct map can set. The dirty bit, which
 * set_memory_ro() also clears since the shadow-stack work, decides nothing
 * this model counts and is left out.
 *
 * The CPA rules (arch/x86/mm/pat/set_memory.c) applied by change():
 *   - __change_page_attr_set_clr() walks the range; an address whose entry is
 *     none is skipped a page at a time (__cpa_process_fault(): "Ignore the
 *     NULL PTE for kernel identity mapping, as it is expected to have
 *     holes");
 *   - __should_split_large_page(): a large page whose new protection equals
 *     the old one is kept and the rest of it skipped (sameprot), whatever the
 *     range covers; one the range covers whole is changed in place; any other
 *     is split by split_large_page() into 512 entries of the next level with
 *     the old protection, and the walk repeats on the new entry;
 *   - split_page_count(): the level's count loses one page and the next
 *     level gains 512 (unless the level's count is already 0); only once
 *     the system is running (SYSTEM_RUNNING) does it also count the vmstat
 *     event direct_map_level2_splits (2 MiB -> 4 KiB) or
 *     direct_map_level3_splits (1 GiB -> 2 MiB). Each split costs a global
 *     TLB flush (__split_large_page()'s flush_tlb_all()) and a table page.
 * Merges (collapse_pmd()/collapse_pud()) follow collapse_pmd_page() and
 * collapse_pud_page() of v6.15+: all 512 entries present, with the same
 * protection (and physically contiguous, which a direct map always is), the
 * PUD only with direct_gbpages; collapse_page_count() moves the counts back
 * and counts direct_map_level2/3_collapses when running.
 *
 * Failure: change() takes the tables it needs from a table_pool that the
 * caller filled (plan() tells how many, reserve() allocates them with nothrow
 * new) before anything was changed, so a change either completes or fails
 * with -ENOMEM having changed nothing. Construction may throw std::bad_alloc
 * (it is not noexcept); nothing else allocates.
 *
 * Cost: change() is proportional to the large pages it touches plus the
 * 4 KiB entries it rewrites; a none region is skipped a GiB or 2 MiB at a
 * time.
 *
 * Length: about 630 lines, over the usual 400, because the boot builder,
 * the CPA walk (split, change in place, collapse) and the consistency walk
 * are three readers and writers of one sparse representation and its
 * counters; each relies on the others keeping the same invariants (a table
 * exists only where something is split or never mapped whole; the counters
 * equal the leaves plus the boot recount). The boot ranges (sim_boot_map.h)
 * and the backend that joins the tables to a machine (sim_direct_map.h) are
 * rooms of their own.
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
#include "../mapping/types.h"
#include "../mapping/memory_map.h"
#include "sim_boot_map.h"

namespace ua {

/* The level a frame is mapped at in the direct map. */
enum class map_level : std::uint8_t {
	none,   /* not mapped: a hole, or outside the machine */
	pte_4k, /* 4 KiB PTE */
	pmd_2m, /* 2 MiB PMD leaf */
	pud_1g, /* 1 GiB PUD leaf */
};

/* Protection bits of a direct-map entry (the pgprot bits CPA changes here). */
namespace pte_bits {
inline constexpr std::uint8_t present = 1;       /* _PAGE_PRESENT */
inline constexpr std::uint8_t rw = 2;            /* _PAGE_RW */
inline constexpr std::uint8_t exec = 4;          /* _PAGE_NX clear */
inline constexpr std::uint8_t kernel = present | rw; /* PAGE_KERNEL: what the boot map installs */
inline constexpr std::uint8_t unmapped = 0x80;   /* pte_none(): no entry */
}  // namespace pte_bits

/* change_page_attr_set_clr()'s mask_set / mask_clr on the bits above. */
struct cpa_mask {
	std::uint8_t set = 0, clr = 0;
	constexpr std::uint8_t apply(std::uint8_t s) const noexcept { return std::uint8_t((s & ~clr) | set); }
	constexpr bool empty() const noexcept { return set == 0 && clr == 0; }
};

class sim_page_tables {
public:
	static constexpr std::uint64_t entries_per_table = 512;
	static constexpr std::uint64_t pages_per_pmd = pmd_size / page_size;  /* 512 */
	static constexpr std::uint64_t pages_per_pud = pud_size / page_size;  /* 262144 */

	/* The kernel's figures. Page counts are in pages of their own level, as direct_pages_count[]. */
	struct counters {
		std::uint64_t direct_pages_4k = 0, direct_pages_2m = 0, direct_pages_1g = 0;
		/* vmstat events, counted once running (split_page_count(), collapse_page_count()) */
		std::uint64_t level2_splits = 0, level3_splits = 0, level2_collapses = 0, level3_collapses = 0;
		/* global TLB flushes of splits and merges, once running */
		std::uint64_t flushes = 0;
		std::uint64_t pmd_tables = 0, pte_tables = 0;
	};

	/* Tables a change needs: plan() counts them, reserve() allocates them, change() takes them. */
	class table_pool;

	/* The direct map of mm as init_mem_mapping() builds it; gbpages: direct_gbpages. */
	sim_page_tables(const memory_map &mm, bool gbpages)
	    : nr_pages_(mm.end_pfn()), gbpages_(gbpages), puds_((nr_pages_ + pages_per_pud - 1) / pages_per_pud),
	      ram_(mm.ram())
	{
		for (const boot_map_range &r : boot_map_plan::init_mem_mapping(mm, gbpages))
			kernel_physical_mapping_init(r);
	}

	/* A machine of nr_pages frames (boot_map_plan::x86_flat()). */
	explicit sim_page_tables(std::uint64_t nr_pages, bool gbpages = true)
	    : sim_page_tables(boot_map_plan::x86_flat(nr_pages), gbpages)
	{
	}

	/* max_pfn: one past the last frame of RAM. */
	std::uint64_t nr_pages() const noexcept { return nr_pages_; }
	bool gbpages() const noexcept { return gbpages_; }
	const counters &count() const noexcept { return c_; }
	/* What phys_*_init() counted twice at boot, per level (4k, 2m, 1g). */
	const std::array<std::uint64_t, 3> &boot_recount() const noexcept { return recount_; }

	/* system_state reaches SYSTEM_RUNNING: from now on splits and merges are vmstat events. */
	void set_running() noexcept { running_ = true; }
	bool running() const noexcept { return running_; }

	/* True when r is non-empty and lies wholly inside [0, nr_pages). */
	bool contains(frame_range r) const noexcept
	{
		return r.nr_pages != 0 && r.pfn < nr_pages_ && r.nr_pages <= nr_pages_ - r.pfn;
	}

	/* True when every frame of [pfn, pfn + n) is RAM in the memory map. */
	bool is_ram(pfn_t pfn, std::uint64_t n) const noexcept
	{
		for (const frame_range &r : ram_)
			if (r.pfn <= pfn && pfn < r.end())
				return n <= r.end() - pfn;
		return false;
	}

	/* Protection bits of one frame's entry, pte_bits::unmapped when there is none. */
	std::uint8_t bits(pfn_t pfn) const noexcept
	{
		if (pfn >= nr_pages_)
			return pte_bits::unmapped;
		const pud_entry &pud = puds_[pfn / pages_per_pud];
		if (!pud.pmd)
			return pud.state;
		const pmd_entry &pmd = pud.pmd->e[(pfn % pages_per_pud) / pages_per_pmd];
		return pmd.pte ? pmd.pte->e[pfn % pages_per_pmd] : pmd.state;
	}

	/* State of one frame; frames not mapped read as not present. */
	dm_state state(pfn_t pfn) const noexcept
	{
		const std::uint8_t b = bits(pfn);
		if (b == pte_bits::unmapped || !(b & pte_bits::present))
			return dm_state::invalid;
		return (b & pte_bits::rw) ? dm_state::rw : dm_state::ro;
	}

	map_level level(pfn_t pfn) const noexcept
	{
		if (bits(pfn) == pte_bits::unmapped)
			return map_level::none;
		const pud_entry &pud = puds_[pfn / pages_per_pud];
		if (!pud.pmd)
			return map_level::pud_1g;
		return pud.pmd->e[(pfn % pages_per_pud) / pages_per_pmd].pte ? map_level::pte_4k : map_level::pmd_2m;
	}

	/* ---- CPA ---------------------------------------------------------------- */

	/*
	 * Tables change() needs to apply m to every range of targets[0..n), in
	 * order: the large pages a target covers only part of and whose
	 * protection m changes (at most the two ends of a target per level).
	 * A page two targets would split is counted once. Returns false only
	 * when its scratch memory cannot be had (then *pmds, *ptes are unset).
	 */
	bool plan(const frame_range *targets, std::size_t n, cpa_mask m, std::uint64_t *pmds, std::uint64_t *ptes) const noexcept;

	/*
	 * __change_page_attr_set_clr() over the frames of r (inside the machine,
	 * checked by the caller) with the rules in the header comment, taking
	 * split tables from pool. *changed is set when any entry changed.
	 */
	void change(frame_range r, cpa_mask m, table_pool &pool, bool *changed) noexcept;

	/* collapse_pmd_page() on the 2 MiB page holding pfn; true when it merged. require_ram: never merge non-RAM. */
	bool collapse_pmd(pfn_t pfn, bool require_ram) noexcept;
	/* collapse_pud_page() on the GiB holding pfn (with direct_gbpages only); true when it merged. */
	bool collapse_pud(pfn_t pfn) noexcept;
	/* One flush_tlb_all() after a batch of merges (cpa_collapse_large_pages()). */
	void count_collapse_flush() noexcept
	{
		if (running_)
			c_.flushes++;
	}

	/* Bytes this model holds for its tables: the figure that must stay small. */
	std::uint64_t table_bytes() const noexcept
	{
		return puds_.capacity() * sizeof(pud_entry) + c_.pmd_tables * sizeof(pmd_table) +
		       c_.pte_tables * sizeof(pte_table);
	}

	/* Expensive walk: the tables against the counters (minus the boot recount). "" or the first violation. */
	std::string check_consistency() const;

private:
	struct pte_table {
		std::array<std::uint8_t, entries_per_table> e;
	};
	struct pmd_entry {
		std::uint8_t state = pte_bits::unmapped; /* a leaf's bits when pte is null; unmapped: none */
		std::unique_ptr<pte_table> pte;          /* non-null: a table of 4 KiB entries */
	};
	struct pmd_table {
		std::array<pmd_entry, entries_per_table> e;
	};
	struct pud_entry {
		std::uint8_t state = pte_bits::unmapped;
		std::unique_ptr<pmd_table> pmd;
	};

	void kernel_physical_mapping_init(const boot_map_range &r);
	void phys_pud_init(pfn_t paddr, pfn_t paddr_end, unsigned mask);
	void phys_pmd_init(pmd_table &t, pfn_t gbase, pfn_t paddr, pfn_t paddr_end, unsigned mask);
	void phys_pte_init(pte_table &t, pfn_t mbase, pfn_t paddr, pfn_t paddr_end);

	void split_page_count(std::uint64_t &from, std::uint64_t &to, std::uint64_t &event) noexcept
	{
		if (from == 0)
			return; /* split_page_count(): "if (direct_pages_count[level] == 0) return;" */
		from--;
		to += entries_per_table;
		if (running_) {
			event++;
			c_.flushes++;
		}
	}
	void collapse_page_count(std::uint64_t &to, std::uint64_t &from, std::uint64_t &event) noexcept
	{
		to++;
		from -= entries_per_table;
		if (running_)
			event++;
	}
	void split_pud(pud_entry &pud, table_pool &pool) noexcept;
	void split_pmd(pmd_entry &e, table_pool &pool) noexcept;

	std::uint64_t nr_pages_;
	bool gbpages_;
	bool running_ = false;
	std::vector<pud_entry> puds_;
	std::vector<frame_range> ram_; /* the memory map's RAM ranges */
	counters c_;
	std::array<std::uint64_t, 3> recount_{};
};

/*
 * Split tables reserved before a change. Tables not taken are freed with
 * the pool.
 */
class sim_page_tables::table_pool {
public:
	/* Allocates pmds PMD tables and ptes PTE tables; false (nothing kept) when memory runs out. */
	bool reserve(std::uint64_t pmds, std::uint64_t ptes) noexcept
	{
		pmd_.reset(pmds ? new (std::nothrow) std::unique_ptr<pmd_table>[pmds] : nullptr);
		pte_.reset(ptes ? new (std::nothrow) std::unique_ptr<pte_table>[ptes] : nullptr);
		if ((pmds && !pmd_) || (ptes && !pte_))
			return false;
		for (nr_pmd_ = 0; nr_pmd_ < pmds; nr_pmd_++)
			if (!(pmd_[nr_pmd_] = std::unique_ptr<pmd_table>(new (std::nothrow) pmd_table)))
				return false;
		for (nr_pte_ = 0; nr_pte_ < ptes; nr_pte_++)
			if (!(pte_[nr_pte_] = std::unique_ptr<pte_table>(new (std::nothrow) pte_table)))
				return false;
		return true;
	}

private:
	friend class sim_page_tables;
	std::unique_ptr<pmd_table> take_pmd() noexcept
	{
		UA_CHECK(nr_pmd_ > 0, "sim_page_tables: PMD table not reserved");
		return std::move(pmd_[--nr_pmd_]);
	}
	std::unique_ptr<pte_table> take_pte() noexcept
	{
		UA_CHECK(nr_pte_ > 0, "sim_page_tables: PTE table not reserved");
		return std::move(pte_[--nr_pte_]);
	}

	std::unique_ptr<std::unique_ptr<pmd_table>[]> pmd_;
	std::unique_ptr<std::unique_ptr<pte_table>[]> pte_;
	std::uint64_t nr_pmd_ = 0, nr_pte_ = 0;
};

/* ---- boot ---------------------------------------------------------------------- */

inline void sim_page_tables::kernel_physical_mapping_init(const boot_map_range &r)
{
	phys_pud_init(r.start, r.end, r.page_size_mask);
}

/* phys_pud_init(): one PUD entry per GiB from paddr's. */
inline void sim_page_tables::phys_pud_init(pfn_t paddr, pfn_t paddr_end, unsigned mask)
{
	for (std::uint64_t g = paddr / pages_per_pud;; g++) {
		const pfn_t p = std::max(paddr, g * pages_per_pud);
		if (p >= paddr_end)
			break;
		pud_entry &pud = puds_[g];
		if (pud.pmd) {
			phys_pmd_init(*pud.pmd, g * pages_per_pud, p, paddr_end, mask);
			continue;
		}
		if (pud.state != pte_bits::unmapped) {
			/* An existing 1 GiB leaf: kept, and counted again. */
			UA_CHECK(mask & boot_map_plan::page_1g, "sim boot: a later range cannot keep a 1 GiB page");
			c_.direct_pages_1g++;
			recount_[2]++;
			continue;
		}
		if (mask & boot_map_plan::page_1g) {
			pud.state = pte_bits::kernel;
			c_.direct_pages_1g++;
			continue;
		}
		pud.pmd = std::make_unique<pmd_table>();
		c_.pmd_tables++;
		phys_pmd_init(*pud.pmd, g * pages_per_pud, p, paddr_end, mask);
	}
}

/* phys_pmd_init(): one PMD entry per 2 MiB of the GiB at gbase. */
inline void sim_page_tables::phys_pmd_init(pmd_table &t, pfn_t gbase, pfn_t paddr, pfn_t paddr_end, unsigned mask)
{
	for (std::uint64_t j = (paddr - gbase) / pages_per_pmd; j < entries_per_table; j++) {
		const pfn_t mbase = gbase + j * pages_per_pmd, p = std::max(paddr, mbase);
		if (p >= paddr_end)
			break;
		pmd_entry &e = t.e[j];
		if (e.pte) {
			phys_pte_init(*e.pte, mbase, p, paddr_end);
			continue;
		}
		if (e.state != pte_bits::unmapped) {
			UA_CHECK(mask & boot_map_plan::page_2m, "sim boot: a later range cannot keep a 2 MiB page");
			c_.direct_pages_2m++;
			recount_[1]++;
			continue;
		}
		if (mask & boot_map_plan::page_2m) {
			e.state = pte_bits::kernel;
			c_.direct_pages_2m++;
			continue;
		}
		e.pte = std::make_unique<pte_table>();
		e.pte->e.fill(pte_bits::unmapped);
		c_.pte_tables++;
		phys_pte_init(*e.pte, mbase, p, paddr_end);
	}
}

/* phys_pte_init(): every 4 KiB of [paddr, paddr_end) inside the 2 MiB page at mbase. */
inline void sim_page_tables::phys_pte_init(pte_table &t, pfn_t mbase, pfn_t paddr, pfn_t paddr_end)
{
	for (std::uint64_t k = paddr - mbase; k < entries_per_table && mbase + k < paddr_end; k++) {
		if (t.e[k] != pte_bits::unmapped)
			recount_[0]++; /* "We will re-use the existing mapping." - and count it again */
		else
			t.e[k] = pte_bits::kernel;
		c_.direct_pages_4k++;
	}
}

/* ---- CPA ----------------------------------------------------------------------- */

/*
 * Not inlined: g++ 12 at -O3 loses track of which buffer gk/mk point to once
 * this is inlined into a caller and reports a false -Warray-bounds on the
 * inline buffers (the release build is -Werror). One call per change costs
 * nothing next to the walk.
 */
[[gnu::noinline]] inline bool sim_page_tables::plan(const frame_range *targets, std::size_t n, cpa_mask m,
						    std::uint64_t *pmds, std::uint64_t *ptes) const noexcept
{
	/* At most two GiBs and two 2 MiB pages per target can be covered only in part. */
	constexpr std::size_t inline_keys = 8;
	std::uint64_t gbuf[inline_keys], mbuf[inline_keys];
	std::unique_ptr<std::uint64_t[]> gheap, mheap;
	std::uint64_t *gk = gbuf, *mk = mbuf;
	if (2 * n > inline_keys) {
		gheap.reset(new (std::nothrow) std::uint64_t[2 * n]);
		mheap.reset(new (std::nothrow) std::uint64_t[2 * n]);
		if (!gheap || !mheap)
			return false;
		gk = gheap.get();
		mk = mheap.get();
	}
	std::size_t ng = 0, nm = 0;
	for (std::size_t i = 0; i < n; i++) {
		const pfn_t s = targets[i].pfn, e = targets[i].end();
		for (const pfn_t p : {s, e - 1}) {
			const std::uint64_t g = p / pages_per_pud, gb = g * pages_per_pud;
			const pud_entry &pud = puds_[g];
			std::uint8_t st = pud.state;
			if (!pud.pmd) {
				if (st == pte_bits::unmapped || m.apply(st) == st)
					continue;
				if (!(s <= gb && e >= gb + pages_per_pud))
					gk[ng++] = g;
			} else {
				const pmd_entry &pe = pud.pmd->e[(p - gb) / pages_per_pmd];
				if (pe.pte || pe.state == pte_bits::unmapped)
					continue;
				st = pe.state;
			}
			/* The 2 MiB page at p: a leaf now, or a child of the 1 GiB leaf about to split. */
			const std::uint64_t mb = p / pages_per_pmd * pages_per_pmd;
			if (m.apply(st) != st && !(s <= mb && e >= mb + pages_per_pmd))
				mk[nm++] = p / pages_per_pmd;
		}
	}
	std::sort(gk, gk + ng);
	std::sort(mk, mk + nm);
	*pmds = std::uint64_t(std::unique(gk, gk + ng) - gk);
	*ptes = std::uint64_t(std::unique(mk, mk + nm) - mk);
	return true;
}

inline void sim_page_tables::split_pud(pud_entry &pud, table_pool &pool) noexcept
{
	pud.pmd = pool.take_pmd();
	for (pmd_entry &e : pud.pmd->e) {
		e.state = pud.state;
		e.pte.reset();
	}
	pud.state = pte_bits::unmapped;
	c_.pmd_tables++;
	split_page_count(c_.direct_pages_1g, c_.direct_pages_2m, c_.level3_splits);
}

inline void sim_page_tables::split_pmd(pmd_entry &e, table_pool &pool) noexcept
{
	e.pte = pool.take_pte();
	e.pte->e.fill(e.state);
	e.state = pte_bits::unmapped;
	c_.pte_tables++;
	split_page_count(c_.direct_pages_2m, c_.direct_pages_4k, c_.level2_splits);
}

inline void sim_page_tables::change(frame_range r, cpa_mask m, table_pool &pool, bool *changed) noexcept
{
	UA_DEBUG_ASSERT(contains(r));
	const pfn_t end = r.end();
	for (pfn_t p = r.pfn; p < end;) {
		const std::uint64_t g = p / pages_per_pud, gb = g * pages_per_pud;
		pud_entry &pud = puds_[g];
		if (!pud.pmd) {
			const std::uint8_t s = pud.state;
			if (s == pte_bits::unmapped || m.apply(s) == s) {
				p = std::min(end, gb + pages_per_pud); /* a hole, or sameprot: the rest of this page */
				continue;
			}
			if (p == gb && end - p >= pages_per_pud) {
				pud.state = m.apply(s); /* the whole 1 GiB page: changed in place */
				*changed = true;
				p += pages_per_pud;
				continue;
			}
			split_pud(pud, pool);
		}
		pmd_entry &e = pud.pmd->e[(p - gb) / pages_per_pmd];
		const pfn_t mb = p / pages_per_pmd * pages_per_pmd;
		if (!e.pte) {
			const std::uint8_t s = e.state;
			if (s == pte_bits::unmapped || m.apply(s) == s) {
				p = std::min(end, mb + pages_per_pmd);
				continue;
			}
			if (p == mb && end - p >= pages_per_pmd) {
				e.state = m.apply(s); /* the whole 2 MiB page: changed in place */
				*changed = true;
				p += pages_per_pmd;
				continue;
			}
			split_pmd(e, pool);
		}
		for (const pfn_t stop = std::min(end, mb + pages_per_pmd); p < stop; p++) {
			std::uint8_t &s = e.pte->e[p - mb];
			if (s != pte_bits::unmapped && m.apply(s) != s) {
				s = m.apply(s);
				*changed = true;
			}
		}
	}
}

inline bool sim_page_tables::collapse_pmd(pfn_t pfn, bool require_ram) noexcept
{
	if (pfn >= nr_pages_)
		return false;
	pud_entry &pud = puds_[pfn / pages_per_pud];
	/* collapse_large_pages(): nothing to do under a PUD leaf or a none PUD */
	if (!pud.pmd)
		return false;
	pmd_entry &e = pud.pmd->e[(pfn % pages_per_pud) / pages_per_pmd];
	if (!e.pte)
		return false;
	const std::uint8_t first = e.pte->e[0];
	/* collapse_pmd_page(): every PTE present, with the first one's flags */
	if (first == pte_bits::unmapped || !(first & pte_bits::present))
		return false;
	for (std::uint8_t s : e.pte->e)
		if (s != first)
			return false;
	const pfn_t mb = pfn / pages_per_pmd * pages_per_pmd;
	if (require_ram && !is_ram(mb, pages_per_pmd))
		return false;
	e.pte.reset();
	e.state = first;
	c_.pte_tables--;
	collapse_page_count(c_.direct_pages_2m, c_.direct_pages_4k, c_.level2_collapses);
	return true;
}

inline bool sim_page_tables::collapse_pud(pfn_t pfn) noexcept
{
	if (!gbpages_ || pfn >= nr_pages_)
		return false; /* collapse_pud_page(): "if (!direct_gbpages) return 0;" */
	pud_entry &pud = puds_[pfn / pages_per_pud];
	if (!pud.pmd)
		return false;
	const std::uint8_t first = pud.pmd->e[0].state;
	/* every PMD a present leaf with the first one's flags */
	if (first == pte_bits::unmapped || !(first & pte_bits::present))
		return false;
	for (const pmd_entry &e : pud.pmd->e)
		if (e.pte || e.state != first)
			return false;
	pud.pmd.reset();
	pud.state = first;
	c_.pmd_tables--;
	collapse_page_count(c_.direct_pages_1g, c_.direct_pages_2m, c_.level3_collapses);
	return true;
}

inline std::string sim_page_tables::check_consistency() const
{
	std::uint64_t n4 = 0, n2 = 0, n1 = 0, pmds = 0, ptes = 0;
	for (std::uint64_t g = 0; g < puds_.size(); g++) {
		const std::uint64_t base = g * pages_per_pud;
		const pud_entry &pud = puds_[g];
		if (!pud.pmd) {
			if (pud.state == pte_bits::unmapped)
				continue;
			if (base + pages_per_pud > nr_pages_)
				return "1 GiB leaf reaches past the end of the machine";
			n1++;
			continue;
		}
		if (pud.state != pte_bits::unmapped)
			return "PUD entry is both a table and a leaf";
		pmds++;
		for (std::uint64_t j = 0; j < entries_per_table; j++) {
			const pmd_entry &e = pud.pmd->e[j];
			const std::uint64_t b2 = base + j * pages_per_pmd;
			if (e.pte) {
				if (e.state != pte_bits::unmapped)
					return "PMD entry is both a table and a leaf";
				ptes++;
				for (std::uint64_t k = 0; k < entries_per_table; k++) {
					if (e.pte->e[k] == pte_bits::unmapped)
						continue;
					if (b2 + k >= nr_pages_)
						return "4 KiB entry past the end of the machine";
					n4++;
				}
			} else if (e.state != pte_bits::unmapped) {
				if (b2 + pages_per_pmd > nr_pages_)
					return "2 MiB leaf reaches past the end of the machine";
				n2++;
			}
		}
	}
	if (pmds != c_.pmd_tables || ptes != c_.pte_tables)
		return "table counts disagree with the tables";
	if (n4 + recount_[0] != c_.direct_pages_4k || n2 + recount_[1] != c_.direct_pages_2m ||
	    n1 + recount_[2] != c_.direct_pages_1g)
		return "direct_pages_count disagrees with the tables and the boot recount";
	return "";
}

}  // namespace ua
