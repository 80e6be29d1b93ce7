// SPDX-License-Identifier: MIT
/*
 * mapping/alias_table.h - the aliases a real backend has mapped, by start
 * address: the runs of frames behind each (one for map_alias(), several back
 * to back for map_alias_runs(), as vmap() of scattered pages), its
 * protection (one for the whole alias, or one per page once set_memory()
 * changed part of it), and whether secure_alias() hardened it.
 *
 * linux_backend and secretmem_backend keep theirs in one, under their
 * owner's lock (the machine lock), and differ in how they protect and
 * secure; mapping an alias (into one aligned reservation), the lookups by
 * an address inside an alias, the calls that name a whole alias, and
 * unmapping are the same for both, and are here.
 *
 * The table owns the mappings it records: map_runs() maps and records an
 * alias, unmap() and unmap_all() munmap() them. Nothing here allocates except insert(), which reports failure as
 * -ENOMEM (the caller unmaps what it mapped); records are built with
 * new (std::nothrow), so no exception leaves an allocation path.
 */
#pragma once

#include <sys/mman.h>

#include <cerrno>
#include <cstddef>
#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <utility>

#include "../error.h"
#include "types.h"

namespace ua {

/*
 * A PROT_NONE reservation of bytes at an address aligned to align (a power
 * of two, at least a page), for MAP_FIXED mappings to be placed into:
 * over-reserve and trim, which is how the kernel's thp_get_unmapped_area()
 * finds such a hole. nullptr and *err = -errno when mmap() fails. A trim
 * cuts the head or tail off one VMA, which adds none, so vm.max_map_count
 * does not refuse it (mm/vma.c, vms_gather_munmap_vmas(), checks the count
 * only when a range splits a VMA in two); should a trim fail all the same,
 * the whole reservation is unmapped again (which splits nothing) and its
 * -errno returned: a failure leaves no VMA behind.
 */
inline std::byte *reserve_aligned(std::size_t bytes, std::size_t align, int *err) noexcept
{
	const std::size_t slack = align > page_size ? align : 0;
	void *res = ::mmap(nullptr, bytes + slack, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (res == MAP_FAILED) {
		*err = -errno;
		return nullptr;
	}
	auto *base = static_cast<std::byte *>(res);
	auto *a = reinterpret_cast<std::byte *>(align_up(reinterpret_cast<std::uintptr_t>(base), slack ? slack : page_size));
	auto *end = base + bytes + slack; /* the reservation is [base, end) until a trim succeeds */
	if (a != base) {
		if (::munmap(base, std::size_t(a - base)) != 0) {
			*err = -errno;
			::munmap(base, std::size_t(end - base));
			return nullptr;
		}
		base = a;
	}
	if (end != a + bytes && ::munmap(a + bytes, std::size_t(end - (a + bytes))) != 0) {
		*err = -errno;
		::munmap(base, std::size_t(end - base));
		return nullptr;
	}
	return a;
}

/* One alias: bytes long, the runs run(0) .. run(nr_runs - 1) mapped back to back. */
struct alias_record {
	std::size_t bytes = 0;
	frame_range frames{};                /* the first run (the only one of map_alias()) */
	prot p = prot::none;                 /* the protection of every page while page_prot is null */
	bool secured = false;
	std::unique_ptr<frame_range[]> more; /* runs 1 .. nr_runs - 1 of map_alias_runs(), or null */
	std::size_t nr_runs = 1;
	std::unique_ptr<prot[]> page_prot;   /* per page once set_memory() changed part of the alias */

	std::uint64_t nr_pages() const noexcept { return bytes >> page_shift; }
	const frame_range &run(std::size_t i) const noexcept { return i == 0 ? frames : more[i - 1]; }
	/* The protection of the alias's page i. */
	prot prot_at(std::uint64_t i) const noexcept { return page_prot ? page_prot[i] : p; }
	/* One protection for the whole alias (protect_alias()). */
	void set_prot(prot to) noexcept
	{
		p = to;
		page_prot.reset();
	}
	/* next[i]: the protection of page i, every page; kept per page only while they differ. */
	void set_page_prots(std::unique_ptr<prot[]> next) noexcept
	{
		bool uniform = true;
		for (std::uint64_t i = 1; i < nr_pages() && uniform; i++)
			uniform = next[i] == next[0];
		p = next[0];
		if (uniform)
			page_prot.reset();
		else
			page_prot = std::move(next);
	}
};

class alias_table {
public:
	/* The alias containing addr (its start in *start, if asked), or nullptr. */
	const alias_record *find(std::uintptr_t addr, std::uintptr_t *start = nullptr) const noexcept
	{
		auto it = aliases_.upper_bound(addr);
		if (it == aliases_.begin())
			return nullptr;
		--it;
		if (addr - it->first >= it->second.bytes)
			return nullptr;
		if (start)
			*start = it->first;
		return &it->second;
	}
	alias_record *find(std::uintptr_t addr, std::uintptr_t *start = nullptr) noexcept
	{
		return const_cast<alias_record *>(std::as_const(*this).find(addr, start));
	}
	/* The alias that starts at addr and is bytes long (the calls that name a whole alias), or nullptr. */
	alias_record *find_whole(std::uintptr_t addr, std::size_t bytes) noexcept
	{
		auto it = aliases_.find(addr);
		return it == aliases_.end() || it->second.bytes != bytes ? nullptr : &it->second;
	}
	/* The run behind addr and addr's page inside that run, or nullptr if addr is in no alias. */
	const frame_range *run_at(std::uintptr_t addr, std::uint64_t *page) const noexcept
	{
		std::uintptr_t start = 0;
		const alias_record *a = find(addr, &start);
		if (!a)
			return nullptr;
		std::uint64_t off = (addr - start) >> page_shift;
		for (std::size_t i = 0; i < a->nr_runs; i++) {
			const frame_range &r = a->run(i);
			if (off < r.nr_pages) {
				*page = off;
				return &r;
			}
			off -= r.nr_pages;
		}
		return nullptr;
	}

	/* ---- the backends' alias_* inspectors ---- */
	/* True when the alias containing addr was secured. */
	bool secured(std::uintptr_t addr) const noexcept
	{
		const alias_record *a = find(addr);
		return a && a->secured;
	}
	/* Protection of the alias containing addr, if addr is inside one. */
	std::optional<prot> prot_at(std::uintptr_t addr) const noexcept
	{
		std::uintptr_t start = 0;
		const alias_record *a = find(addr, &start);
		return a ? std::optional<prot>(a->prot_at((addr - start) >> page_shift)) : std::nullopt;
	}
	/* The run of frames behind addr (all the frames of a one-run alias), if addr is inside an alias. */
	std::optional<frame_range> frames_at(std::uintptr_t addr) const noexcept
	{
		std::uint64_t page = 0;
		const frame_range *r = run_at(addr, &page);
		return r ? std::optional<frame_range>(*r) : std::nullopt;
	}
	/* The frame behind addr, if addr is inside an alias. */
	std::optional<pfn_t> pfn_at(std::uintptr_t addr) const noexcept
	{
		std::uint64_t page = 0;
		const frame_range *r = run_at(addr, &page);
		return r ? std::optional<pfn_t>(r->pfn + page) : std::nullopt;
	}

	/* ---- changes ---- */
	/*
	 * vmap() of runs[0..n) of the file fd, nr_frames frames long: one
	 * reservation of their total (reserve_aligned() to align), each run's
	 * range of the file placed into it with MAP_FIXED, back to back, mmap
	 * protection mprot; recorded with protection p, the start in *addr. All
	 * or nothing: a failure unmaps the reservation, which removes the runs
	 * already placed with it. Errors: -EINVAL (no runs, an empty run or one
	 * past the file's end, a total beyond 2^62 bytes), -ENOMEM (the record),
	 * mmap()'s -errno.
	 */
	int map_runs(int fd, std::uint64_t nr_frames, const frame_range *runs, std::size_t n, int mprot, prot p,
		     std::size_t align, std::uintptr_t *addr) noexcept
	{
		if (!runs || n == 0 || !addr)
			return -EINVAL;
		constexpr std::uint64_t max_pages = std::uint64_t{1} << (62 - page_shift); /* bytes fit any 64-bit size_t */
		std::uint64_t pages = 0;
		for (std::size_t i = 0; i < n; i++) {
			const frame_range &r = runs[i];
			if (r.nr_pages == 0 || r.pfn >= nr_frames || r.nr_pages > nr_frames - r.pfn ||
			    r.nr_pages > max_pages - pages)
				return -EINVAL;
			pages += r.nr_pages;
		}
		alias_record al{std::size_t(pages << page_shift), runs[0], p, false, nullptr, n, nullptr};
		if (n > 1) {
			al.more.reset(new (std::nothrow) frame_range[n - 1]);
			if (!al.more)
				return -ENOMEM;
			std::copy(runs + 1, runs + n, al.more.get());
		}
		int err = 0;
		std::byte *a = reserve_aligned(al.bytes, align, &err);
		if (!a)
			return err;
		std::size_t off = 0;
		for (std::size_t i = 0; i < n; i++) {
			if (::mmap(a + off, runs[i].bytes(), mprot, MAP_SHARED | MAP_FIXED, fd, off_t(runs[i].pfn << page_shift)) ==
			    MAP_FAILED) {
				err = -errno;
				::munmap(a, al.bytes);
				return err;
			}
			off += runs[i].bytes();
		}
		const std::size_t bytes = al.bytes;
		if (insert(reinterpret_cast<std::uintptr_t>(a), std::move(al)) != 0) {
			::munmap(a, bytes);
			return -ENOMEM;
		}
		*addr = reinterpret_cast<std::uintptr_t>(a);
		return 0;
	}

	/* Records the alias just mapped at addr: 0, or -ENOMEM (recorded nothing; the caller unmaps it). */
	int insert(std::uintptr_t addr, alias_record &&a) noexcept
	{
		UA_TRY {
			aliases_.emplace(addr, std::move(a));
		} UA_CATCH_ALL {
			return -ENOMEM;
		}
		return 0;
	}
	/*
	 * munmap() of the whole alias at addr, bytes long (-EINVAL if there is
	 * none). munmap() splits the VMAs it needs before it unmaps anything: a
	 * failure changed nothing, and the alias stays recorded.
	 */
	int unmap(std::uintptr_t addr, std::size_t bytes) noexcept
	{
		auto it = aliases_.find(addr);
		if (it == aliases_.end() || it->second.bytes != bytes)
			return -EINVAL;
		if (::munmap(reinterpret_cast<void *>(addr), bytes) != 0)
			return -errno;
		aliases_.erase(it);
		return 0;
	}
	/* Every alias unmapped and forgotten (the backend's destruction). */
	void unmap_all() noexcept
	{
		for (auto &[addr, a] : aliases_)
			::munmap(reinterpret_cast<void *>(addr), a.bytes);
		aliases_.clear();
	}

	std::size_t size() const noexcept { return aliases_.size(); }

private:
	std::map<std::uintptr_t, alias_record> aliases_;
};

}  // namespace ua
