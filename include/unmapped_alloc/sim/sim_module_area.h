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
 * vmalloc reuses its vmap areas. An alias of a whole number of 2 MiB chunks
 * is 2 MiB aligned (a PMD-mappable alias, as execmem asks for with
 * VM_ALLOW_HUGE_VMAP); any other alias is page aligned.
 *
 * Every live alias is recorded (address -> frame runs, size, protection), so
 * an operation on an address that is not exactly one live alias is refused
 * with -EINVAL, as vunmap() of a bad address is a bug the kernel warns about.
 * An alias maps one or more runs of frames in order, as vmap() maps an array
 * of scattered pages at one virtual range (vmap_pages_range()); the runs of
 * an alias of more than one are kept in an array allocated with nothrow new.
 *
 * No exceptions escape: the std::map insertions that can throw are done
 * first, caught, and turned into -ENOMEM before anything is changed.
 */
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <utility>

#include "../config.h"
#include "../mapping.h"

namespace ua {

class sim_module_area {
public:
	static constexpr std::uintptr_t default_base = 0x0000600000000000;
	static constexpr std::size_t default_size = std::size_t{1} << 40;  /* 1 TiB of address space */

	/* What is known about one alias: its runs of frames, in address order. */
	struct alias {
		std::size_t bytes = 0;
		frame_range frames;                  /* the first run (the only one of a single-run alias) */
		std::unique_ptr<frame_range[]> more; /* runs 1 .. nr_runs - 1, or null */
		std::size_t nr_runs = 1;
		prot p = prot::none;

		const frame_range &run(std::size_t i) const noexcept { return i == 0 ? frames : more[i - 1]; }

		/* The run holding byte offset off of the alias, and the offset's page inside that run. */
		const frame_range *run_at(std::size_t off, std::uint64_t *page_in_run) const noexcept
		{
			std::uint64_t page = off >> page_shift;
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
	};

	explicit sim_module_area(std::uintptr_t base = default_base, std::size_t size = default_size)
	    : base_(base), size_(align_down(size, page_size))
	{
		if (size_ != 0)
			free_.emplace(base_, base_ + size_);
	}

	std::uintptr_t base() const noexcept { return base_; }
	std::size_t size() const noexcept { return size_; }
	std::uint64_t live() const noexcept { return aliases_.size(); }

	/*
	 * Record an alias of r with protection p at a new address (*addr).
	 * Arguments are checked by the caller. -ENOMEM when no free range fits
	 * or the bookkeeping cannot allocate; nothing changes then.
	 */
	int map(frame_range r, prot p, std::uintptr_t *addr) noexcept { return map_runs(&r, 1, p, addr); }

	/*
	 * Record an alias of runs[0..n) (n >= 1, each run non-empty and inside
	 * the machine, the total not overflowing: checked by the caller), mapped
	 * one after the other from *addr. 2 MiB aligned when every run is a
	 * whole number of chunks. -ENOMEM as map().
	 */
	int map_runs(const frame_range *runs, std::size_t n, prot p, std::uintptr_t *addr) noexcept
	{
		alias al;
		al.frames = runs[0];
		al.nr_runs = n;
		al.p = p;
		bool whole_chunks = true;
		for (std::size_t i = 0; i < n; i++) {
			al.bytes += runs[i].bytes();
			whole_chunks = whole_chunks && runs[i].nr_pages % pages_per_chunk == 0;
		}
		if (n > 1) {
			al.more.reset(new (std::nothrow) frame_range[n - 1]);
			if (!al.more)
				return -ENOMEM;
			std::copy(runs + 1, runs + n, al.more.get());
		}
		const std::size_t align = whole_chunks ? chunk_size : page_size;
		for (auto it = free_.begin(); it != free_.end(); ++it) {
			const std::uintptr_t start = align_up(it->first, align);
			if (start < it->first || start > it->second || it->second - start < al.bytes)
				continue;
			return carve(it, start, std::move(al), addr);
		}
		return -ENOMEM;
	}

	/* Change the protection of the alias at exactly [a, a + n). *changed: it differed. */
	int protect(std::uintptr_t a, std::size_t n, prot p, bool *changed) noexcept
	{
		auto it = aliases_.find(a);
		if (it == aliases_.end() || it->second.bytes != n)
			return -EINVAL;
		*changed = it->second.p != p;
		it->second.p = p;
		return 0;
	}

	/* Forget the alias at exactly [a, a + n) and give its addresses back. */
	int unmap(std::uintptr_t a, std::size_t n) noexcept
	{
		auto al = aliases_.find(a);
		if (al == aliases_.end() || al->second.bytes != n)
			return -EINVAL;
		if (int err = release(a, a + n))
			return err;
		aliases_.erase(al);
		return 0;
	}

	/* The alias containing address a, if any. */
	const alias *find(std::uintptr_t a) const noexcept
	{
		auto it = aliases_.upper_bound(a);
		if (it == aliases_.begin())
			return nullptr;
		--it;
		return a - it->first < it->second.bytes ? &it->second : nullptr;
	}

	/* The alias containing address a and its start address, or {0, nullptr}. */
	std::pair<std::uintptr_t, const alias *> find_with_start(std::uintptr_t a) const noexcept
	{
		auto it = aliases_.upper_bound(a);
		if (it == aliases_.begin())
			return {0, nullptr};
		--it;
		if (a - it->first >= it->second.bytes)
			return {0, nullptr};
		return {it->first, &it->second};
	}

	/* True when an alias starts exactly at a and is n bytes long. */
	bool exact(std::uintptr_t a, std::size_t n) const noexcept
	{
		auto it = aliases_.find(a);
		return it != aliases_.end() && it->second.bytes == n;
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
			const bool take_free = al == aliases_.end() || (f != free_.end() && f->first < al->first);
			const std::uintptr_t s = take_free ? f->first : al->first;
			const std::uintptr_t e = take_free ? f->second : al->first + al->second.bytes;
			if (s >= e)
				return "empty range in the module area";
			if (s < base_ || e > base_ + size_)
				return "range outside the module area";
			if (covered != 0 && s < prev_end)
				return "overlapping ranges in the module area";
			if (take_free && prev_free && s == prev_end)
				return "adjacent free ranges not merged";
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
	/* Take [start, start + bytes) out of free range *it and record the alias. */
	int carve(std::map<std::uintptr_t, std::uintptr_t>::iterator it, std::uintptr_t start, alias &&al,
		  std::uintptr_t *addr) noexcept
	{
		const std::uintptr_t end = start + al.bytes, free_start = it->first, free_end = it->second;
		std::map<std::uintptr_t, std::uintptr_t>::iterator tail = free_.end();
		try {
			if (end < free_end)
				tail = free_.emplace(end, free_end).first;
			aliases_.emplace(start, std::move(al));
		} catch (const std::bad_alloc &) {
			if (tail != free_.end())
				free_.erase(tail);
			return -ENOMEM;
		}
		if (start > free_start)
			it->second = start;
		else
			free_.erase(it);
		*addr = start;
		return 0;
	}

	/* Return [s, e) to the free list, merging with its neighbours. */
	int release(std::uintptr_t s, std::uintptr_t e) noexcept
	{
		auto next = free_.lower_bound(s);
		auto prev = next == free_.begin() ? free_.end() : std::prev(next);
		const bool join_prev = prev != free_.end() && prev->second == s;
		const bool join_next = next != free_.end() && next->first == e;
		if (join_prev) {
			prev->second = join_next ? next->second : e;
			if (join_next)
				free_.erase(next);
		} else if (join_next) {
			auto node = free_.extract(next);  /* re-key without allocating */
			node.key() = s;
			free_.insert(std::move(node));
		} else {
			try {
				free_.emplace(s, e);
			} catch (const std::bad_alloc &) {
				return -ENOMEM;
			}
		}
		return 0;
	}

	std::uintptr_t base_;
	std::size_t size_;
	std::map<std::uintptr_t, std::uintptr_t> free_;  /* start -> end, address ordered */
	std::map<std::uintptr_t, alias> aliases_;        /* start -> alias */
};

}  // namespace ua
