// SPDX-License-Identifier: MIT
/*
 * sim/sim_module_area.h - the simulated module area: address space for
 * aliases (the executable views of frames) and the record of every alias.
 *
 * The kernel maps module text and BPF programs in a dedicated virtual range
 * (MODULES_VADDR, 0xffffffffa0000000 on x86-64) through execmem/vmalloc. The
 * simulation hands out addresses from a range of its own that is never
 * dereferenced. It sits in the lower canonical half (default base
 * 0x0000600000000000) rather than at the kernel's address because callers
 * use alias addresses as std::uintptr_t keys, and the arena's radix lookup
 * only covers the lower half.
 *
 * Placement: address-ordered first fit over a free list of [start, end)
 * ranges, neighbours merged on unmap, so space is reused after unmap as
 * vmalloc reuses its vmap areas. An alias whose runs are all whole 2 MiB
 * chunks is 2 MiB aligned (a PMD-mappable alias, as execmem asks for with
 * VM_ALLOW_HUGE_VMAP); any other alias is page aligned.
 *
 * Every live alias is recorded (address -> frame runs, size, protection), so
 * an operation on an address that is not exactly one live alias is refused
 * with -EINVAL, as vunmap() of a bad address is a bug the kernel warns about.
 * An alias maps one or more runs of frames in order, as vmap() maps an array
 * of scattered pages at one virtual range (vmap_pages_range()).
 *
 * The alias's own page size matters to CPA (cpa_process_alias() walks the
 * primary mapping a page or a large page at a time): a 2 MiB block of an
 * alias is PMD-mapped when the alias was mapped huge (vmap_pages_range()
 * with PMD_SHIFT, VM_ALLOW_HUGE_VMAP) and the block is backed by 512
 * contiguous frames starting 2 MiB aligned; a change to part of it splits
 * it for good, unless the v6.15+ collapse of set_memory_rox() merges it
 * again (collapse_pmd_page() on the alias's own PTEs). Protections are kept
 * per alias, and per page once a set_memory_*() changed part of one.
 *
 * No exceptions: records and free ranges are intrusive-set nodes allocated
 * with nothrow new; every allocation an operation needs is made before it
 * changes anything, and a failure is -ENOMEM with nothing changed.
 */
#pragma once

#include <boost/intrusive/set.hpp>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <string>

#include "../config.h"
#include "../mapping/types.h"

namespace ua {

class sim_module_area {
	template <class T>
	struct start_of {
		using type = std::uintptr_t;
		type operator()(const T &t) const noexcept { return t.start; }
	};

public:
	static constexpr std::uintptr_t default_base = 0x0000600000000000;
	static constexpr std::size_t default_size = std::size_t{1} << 40; /* 1 TiB of address space */

	/* What is known about one alias: its runs of frames in address order, its protections. */
	struct alias {
		boost::intrusive::set_member_hook<> hook;
		std::uintptr_t start = 0;
		std::size_t bytes = 0;
		frame_range frames;                    /* the first run (the only one of a single-run alias) */
		std::unique_ptr<frame_range[]> more;   /* runs 1 .. nr_runs - 1, or null */
		std::size_t nr_runs = 1;
		prot p = prot::none;                   /* every page's, while page_prot is null */
		std::unique_ptr<prot[]> page_prot;     /* per page, once a change covered part of the alias */
		std::unique_ptr<std::uint64_t[]> huge; /* per 2 MiB block: 1 bit, PMD-mapped; null: none is */
		bool secured = false;

		std::uint64_t pages() const noexcept { return bytes >> page_shift; }
		const frame_range &run(std::size_t i) const noexcept { return i == 0 ? frames : more[i - 1]; }
		prot prot_at(std::uint64_t page) const noexcept { return page_prot ? page_prot[page] : p; }

		/* The run holding page of the alias, and the page's index inside that run. */
		const frame_range *run_at(std::uint64_t page, std::uint64_t *page_in_run) const noexcept
		{
			for (std::size_t i = 0; i < nr_runs; i++) {
				const frame_range &r = run(i);
				if (page < r.nr_pages) {
					*page_in_run = page;
					return &r;
				}
				page -= r.nr_pages;
			}
			return nullptr;
		}
		pfn_t pfn_at(std::uint64_t page) const noexcept
		{
			std::uint64_t in = 0;
			const frame_range *r = run_at(page, &in);
			return r ? r->pfn + in : 0;
		}
		/* The frames of pages [page, page + n) are contiguous from pfn_at(page). */
		bool contiguous(std::uint64_t page, std::uint64_t n) const noexcept
		{
			std::uint64_t in = 0;
			const frame_range *r = run_at(page, &in);
			return r && n <= r->nr_pages - in;
		}
		/* Whether 2 MiB block b of the alias is PMD-mapped. */
		bool pmd_mapped(std::uint64_t b) const noexcept { return huge && (huge[b / 64] >> (b % 64)) & 1; }
		void set_pmd_mapped(std::uint64_t b, bool on) noexcept
		{
			if (!huge)
				return;
			const std::uint64_t bit = std::uint64_t{1} << (b % 64);
			huge[b / 64] = on ? huge[b / 64] | bit : huge[b / 64] & ~bit;
		}
		/* The 2 MiB block b could be PMD-mapped: whole, 512 contiguous frames from a 2 MiB-aligned frame. */
		bool pmd_mappable(std::uint64_t b) const noexcept
		{
			const std::uint64_t first = b * pages_per_chunk;
			return start % chunk_size == 0 && first + pages_per_chunk <= pages() &&
			       contiguous(first, pages_per_chunk) && pfn_at(first) % pages_per_chunk == 0;
		}
	};

	explicit sim_module_area(std::uintptr_t base = default_base, std::size_t size = default_size)
	    : base_(base), size_(align_down(size, page_size))
	{
		if (size_ != 0)
			if (range *r = new (std::nothrow) range{{}, base_, base_ + size_})
				free_.insert(*r);
		/* Without that one node the area is simply full: every map() is -ENOMEM. */
	}
	~sim_module_area()
	{
		free_.clear_and_dispose([](range *r) { delete r; });
		aliases_.clear_and_dispose([](alias *a) { delete a; });
	}
	sim_module_area(const sim_module_area &) = delete;
	sim_module_area &operator=(const sim_module_area &) = delete;

	std::uintptr_t base() const noexcept { return base_; }
	std::size_t size() const noexcept { return size_; }
	std::uint64_t live() const noexcept { return aliases_.size(); }

	/*
	 * Record an alias of runs[0..n) (n >= 1, each run non-empty and inside
	 * the machine, the total not overflowing: checked by the caller), mapped
	 * one after the other from *addr; huge: VM_ALLOW_HUGE_VMAP. 2 MiB aligned
	 * when every run is a whole number of chunks. -ENOMEM when no free range
	 * fits or the bookkeeping cannot allocate; nothing changes then.
	 */
	int map_runs(const frame_range *runs, std::size_t n, prot p, bool huge, std::uintptr_t *addr) noexcept
	{
		std::unique_ptr<alias> al(new (std::nothrow) alias);
		if (!al)
			return -ENOMEM;
		al->frames = runs[0];
		al->nr_runs = n;
		al->p = p;
		bool whole_chunks = true;
		for (std::size_t i = 0; i < n; i++) {
			al->bytes += runs[i].bytes();
			whole_chunks = whole_chunks && runs[i].nr_pages % pages_per_chunk == 0;
		}
		if (n > 1) {
			al->more.reset(new (std::nothrow) frame_range[n - 1]);
			if (!al->more)
				return -ENOMEM;
			std::copy(runs + 1, runs + n, al->more.get());
		}
		const std::size_t align = whole_chunks ? chunk_size : page_size;
		for (auto it = free_.begin(); it != free_.end(); ++it) {
			const std::uintptr_t start = align_up(it->start, align);
			if (start < it->start || start > it->end || it->end - start < al->bytes)
				continue;
			al->start = start;
			if (huge && start % chunk_size == 0 && al->pages() >= pages_per_chunk) {
				const std::uint64_t blocks = al->pages() / pages_per_chunk;
				al->huge.reset(new (std::nothrow) std::uint64_t[(blocks + 63) / 64]());
				if (!al->huge)
					return -ENOMEM;
				for (std::uint64_t b = 0; b < blocks; b++)
					al->set_pmd_mapped(b, al->pmd_mappable(b));
			}
			return carve(it, std::move(al), addr);
		}
		return -ENOMEM;
	}

	/* Protection of the whole alias at exactly [a, a + n). *changed: some page differed. */
	int protect(std::uintptr_t a, std::size_t n, prot p, bool *changed) noexcept
	{
		alias *al = exact_alias(a, n);
		if (!al)
			return -EINVAL;
		*changed = false;
		for (std::uint64_t i = 0; i < al->pages() && !*changed; i++)
			*changed = al->prot_at(i) != p;
		al->p = p;
		al->page_prot.reset();
		return 0;
	}

	/* Forget the alias at exactly [a, a + n) and give its addresses back. */
	int unmap(std::uintptr_t a, std::size_t n) noexcept
	{
		alias *al = exact_alias(a, n);
		if (!al)
			return -EINVAL;
		if (int err = release(a, a + n))
			return err;
		aliases_.erase_and_dispose(aliases_.iterator_to(*al), [](alias *x) { delete x; });
		return 0;
	}

	/* The alias containing address a, if any. */
	const alias *find(std::uintptr_t a) const noexcept { return const_cast<sim_module_area *>(this)->find_mut(a); }
	alias *find_mut(std::uintptr_t a) noexcept
	{
		auto it = aliases_.upper_bound(a);
		if (it == aliases_.begin())
			return nullptr;
		--it;
		return a - it->start < it->bytes ? &*it : nullptr;
	}

	/* The alias that starts exactly at a and is n bytes long, or null. */
	alias *exact_alias(std::uintptr_t a, std::size_t n) noexcept
	{
		auto it = aliases_.find(a);
		return it != aliases_.end() && it->bytes == n ? &*it : nullptr;
	}
	bool exact(std::uintptr_t a, std::size_t n) const noexcept
	{
		return const_cast<sim_module_area *>(this)->exact_alias(a, n) != nullptr;
	}

	std::size_t free_ranges() const noexcept { return free_.size(); }

	/* Expensive walk: free ranges and aliases tile the area without overlap. */
	std::string check_consistency() const
	{
		std::size_t covered = 0;
		std::uintptr_t prev_end = 0;
		bool prev_free = false;
		auto f = free_.begin();
		auto al = aliases_.begin();
		while (f != free_.end() || al != aliases_.end()) {
			const bool take_free = al == aliases_.end() || (f != free_.end() && f->start < al->start);
			const std::uintptr_t s = take_free ? f->start : al->start;
			const std::uintptr_t e = take_free ? f->end : al->start + al->bytes;
			if (s >= e)
				return "empty range in the module area";
			if (s < base_ || e > base_ + size_)
				return "range outside the module area";
			if (covered != 0 && s < prev_end)
				return "overlapping ranges in the module area";
			if (take_free && prev_free && s == prev_end)
				return "adjacent free ranges not merged";
			if (!take_free && al->huge)
				for (std::uint64_t b = 0; b < al->pages() / pages_per_chunk; b++)
					if (al->pmd_mapped(b) && !al->pmd_mappable(b))
						return "a PMD-mapped alias block is not 512 aligned contiguous frames";
			covered += e - s;
			prev_end = e;
			prev_free = take_free;
			if (take_free)
				++f;
			else
				++al;
		}
		return covered <= size_ ? "" : "module area over-covered";
	}

private:
	struct range {
		boost::intrusive::set_member_hook<> hook;
		std::uintptr_t start = 0, end = 0;
	};
	using range_set = boost::intrusive::set<
		range, boost::intrusive::member_hook<range, boost::intrusive::set_member_hook<>, &range::hook>,
		boost::intrusive::key_of_value<start_of<range>>>;
	using alias_set = boost::intrusive::set<
		alias, boost::intrusive::member_hook<alias, boost::intrusive::set_member_hook<>, &alias::hook>,
		boost::intrusive::key_of_value<start_of<alias>>>;

	/* Take [al->start, + al->bytes) out of free range *it and record the alias. */
	int carve(range_set::iterator it, std::unique_ptr<alias> al, std::uintptr_t *addr) noexcept
	{
		const std::uintptr_t start = al->start, end = start + al->bytes;
		range &fr = *it;
		const bool head = start > fr.start, tail = end < fr.end;
		range *t = nullptr;
		if (head && tail && !(t = new (std::nothrow) range{{}, end, fr.end}))
			return -ENOMEM;
		if (head && tail) {
			fr.end = start;
			free_.insert(*t);
		} else if (head) {
			fr.end = start;
		} else if (tail) {
			fr.start = end; /* same order among the free ranges: no re-insert */
		} else {
			free_.erase_and_dispose(it, [](range *r) { delete r; });
		}
		*addr = start;
		aliases_.insert(*al.release());
		return 0;
	}

	/* Return [s, e) to the free list, merging with its neighbours. */
	int release(std::uintptr_t s, std::uintptr_t e) noexcept
	{
		auto next = free_.lower_bound(s);
		auto prev = next == free_.begin() ? free_.end() : std::prev(next);
		const bool join_prev = prev != free_.end() && prev->end == s;
		const bool join_next = next != free_.end() && next->start == e;
		if (join_prev) {
			prev->end = join_next ? next->end : e;
			if (join_next)
				free_.erase_and_dispose(next, [](range *r) { delete r; });
		} else if (join_next) {
			next->start = s; /* still between the same neighbours */
		} else {
			range *r = new (std::nothrow) range{{}, s, e};
			if (!r)
				return -ENOMEM;
			free_.insert(*r);
		}
		return 0;
	}

	std::uintptr_t base_;
	std::size_t size_;
	range_set free_;    /* address ordered */
	alias_set aliases_; /* by start */
};

}  // namespace ua
