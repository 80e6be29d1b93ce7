// SPDX-License-Identifier: MIT
/*
 * mapping/linux_backend.h - the real backend: Linux memory standing in for the
 * kernel's physical memory and direct map.
 *
 * Physical memory is a memfd (memfd_create(2)); frame pfn is the file's bytes
 * [pfn << 12, (pfn + 1) << 12). The file and the contents path (writes,
 * fills, releases), which runs without any lock, are linux_contents
 * (mapping/linux_contents.h); this type is the rest, everything its owner
 * serialises under the machine lock. The direct map is one MAP_SHARED read-write
 * view of the whole file, placed on a 2 MiB boundary (reserve_aligned(): a
 * larger PROT_NONE region trimmed to its aligned part, the file MAP_FIXED in),
 * marked MADV_HUGEPAGE and populated up front with MADV_POPULATE_WRITE, so that
 * with transparent_hugepage/shmem_enabled = advise it starts as PMD mappings,
 * as the kernel's direct map starts as large pages.
 *
 * The operations then behave like their kernel counterparts on real page
 * tables (measured on 6.18, see docs/backends.md):
 *   set_direct_map_*   mprotect(2) of the view. A change that covers a whole
 *                      aligned 2 MiB page keeps its PMD mapping; a change to
 *                      part of one splits it (the file THP's PMD is zapped and
 *                      refaulted by PTEs), and restoring does not merge it back
 *                      - the CPA rule. Every boundary also splits the VMA,
 *                      and VMAs are bounded by vm.max_map_count.
 *   collapse           madvise(MADV_COLLAPSE) of the 2 MiB pages touched that
 *                      this backend may have split (below).
 *   map_alias          another MAP_SHARED mmap of the same file pages, so a
 *                      writable and an executable alias share physical pages.
 *   map_alias_runs     one PROT_NONE reservation, each run's file offset
 *                      mapped into it with MAP_FIXED, in order (vmap() of
 *                      scattered pages); on failure the reservation, and with
 *                      it every run already placed, is unmapped. Both map
 *                      calls are alias_table::map_runs() (mapping/alias_table.h),
 *                      which secretmem_backend shares.
 *   write/fill_frames, release_frames  linux_contents's, lock-free.
 *   flush_tlb          nothing: mprotect() already flushed; only counted.
 *
 * Which 2 MiB pages of the view may be split is recorded too: those a change
 * covered only part of (the CPA rule above) since they were last collapsed,
 * and every page when the view was not PMD-mapped at construction. collapse()
 * acts on those only, so restoring whole chunks (every release of a cache's
 * chunk) costs no madvise and no read of /proc/self/smaps, which takes tens
 * of milliseconds in a process with large mappings. A page the kernel split
 * on its own (none does while the view is mapped and there is no swap) is
 * not known here; stats() still sees it.
 *
 * The direct-map state of every frame is recorded here, so direct_map_state()
 * needs no syscall and a failed mprotect() - which can fail part way with
 * ENOMEM when a VMA split exceeds vm.max_map_count, leaving a prefix changed -
 * is rolled back by re-applying the recorded protection of each run of frames.
 *
 * stats() reports the kernel's own figures (smaps.h): ShmemPmdMapped of the
 * view, the process's VMA count and VmPTE. Shared memory cannot be PUD-mapped
 * (shmem folios are at most PMD-sized), so directmap_1g_kb is a known 0, not
 * an unknown figure. When shmem_enabled does not allow huge pages, or the view
 * did not get PMD-mapped at construction, the 2 MiB figures are reported as
 * unavailable with the reason, never as zero. The backend never writes sysfs.
 *
 * Construction can fail (memfd_create, ftruncate, mmap, populate): the
 * constructor does not throw; ok() / init_error() say whether it worked, and
 * a failed backend has nr_pages() == 0 so every operation returns -EINVAL.
 *
 * Inspectors of private state that only tests need (the memfd, which pages
 * were punched or may be split) are linux_backend_test_access's, at the end.
 *
 * Length: about 760 lines, over the usual 400, because the aliases and the
 * direct-map view share the recorded per-frame states and set_memory()'s
 * alias processing changes both in one all-or-nothing step.
 */
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../check.h"
#include "../error.h"
#include "../ds.h"
#include "alias_table.h"
#include "backend.h"
#include "linux_contents.h"
#include "smaps.h"

namespace ua {

class linux_backend {
public:
	static constexpr bool dereferenceable = true;
	static constexpr const char *name = "real";

	/* Values from <linux/mman.h> / <asm-generic/mman-common.h>, for older headers. */
	static constexpr int madv_populate_write = 23;
	static constexpr int madv_collapse = 25;

	/* nr_pages: machine size in 4 KiB frames, a non-zero multiple of 512 (2 MiB). */
	explicit linux_backend(std::uint64_t nr_pages) noexcept { init(nr_pages); }
	~linux_backend() { destroy(); }
	linux_backend(const linux_backend &) = delete;
	linux_backend &operator=(const linux_backend &) = delete;
	linux_backend(linux_backend &&o) noexcept { steal(o); }
	linux_backend &operator=(linux_backend &&o) noexcept
	{
		if (this != &o) {
			destroy();
			steal(o);
		}
		return *this;
	}

	/* Construction outcome: 0, or the negative errno of the step init_step() names. */
	bool ok() const noexcept { return init_error_ == 0; }
	int init_error() const noexcept { return init_error_; }
	const char *init_step() const noexcept { return init_step_; }

	std::uint64_t nr_pages() const noexcept { return nr_pages_; }
	/* The direct-map address of a frame (tests touch memory through it). */
	std::byte *direct_map_address(pfn_t pfn) const noexcept { return view_ + (pfn << page_shift); }

	/* The [bracketed] word of transparent_hugepage/shmem_enabled, or "" when unreadable. */
	static std::string shmem_enabled_setting() noexcept;
	/* MemAvailable + SwapFree of /proc/meminfo in bytes: what populating may take; 0 when unreadable. */
	static std::uint64_t host_available_bytes() noexcept
	{
		int fd = ::open("/proc/meminfo", O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return 0;
		char buf[4096];
		ssize_t n = ::read(fd, buf, sizeof buf - 1);
		::close(fd);
		if (n <= 0)
			return 0;
		buf[n] = 0;
		auto field_kb = [&](const char *name) -> std::uint64_t {
			const char *p = std::strstr(buf, name);
			return p ? std::strtoull(p + std::strlen(name), nullptr, 10) : 0;
		};
		std::uint64_t avail = field_kb("MemAvailable:");
		return avail ? (avail + field_kb("SwapFree:")) << 10 : 0;
	}
	/* Whether that setting lets an MADV_HUGEPAGE shmem mapping fault in 2 MiB pages. */
	static bool shmem_huge_allowed(std::string_view setting) noexcept
	{
		return setting == "advise" || setting == "always" || setting == "within_size" || setting == "force";
	}

	/* ---- direct map ---- */
	int set_direct_map_invalid(frame_range r) noexcept { return change_direct_map(r, dm_state::invalid); }
	int set_direct_map_default(frame_range r) noexcept { return change_direct_map(r, dm_state::rw); }
	int set_direct_map_ro(frame_range r) noexcept { return change_direct_map(r, dm_state::ro); }
	dm_state direct_map_state(pfn_t pfn) const noexcept
	{
		return pfn < nr_pages_ ? dm_state(state_[pfn]) : dm_state::invalid;
	}
	int flush_tlb(frame_range r) noexcept
	{
		if (!valid(r))
			return -EINVAL;
		tlb_flushes_++; /* mprotect() flushed already: kept for the figures only */
		return 0;
	}
	int collapse(frame_range r) noexcept;

	/* ---- aliases ---- */
	/* f: advisory here (MADV_HUGEPAGE is asked for every alias); validated only. */
	int map_alias(frame_range r, prot p, std::uintptr_t *addr, map_flags f = map_flags::none) noexcept
	{
		return unsigned(f) > 1 ? -EINVAL : map_runs_alias(&r, 1, p, addr);
	}
	int map_alias_runs(const frame_range *runs, std::size_t n, prot p, std::uintptr_t *addr,
			   map_flags f = map_flags::none) noexcept
	{
		return unsigned(f) > 1 ? -EINVAL : map_runs_alias(runs, n, p, addr);
	}
	int protect_alias(std::uintptr_t addr, std::size_t bytes, prot p) noexcept;
	/* set_memory_*() on [addr, addr + bytes) of an alias, with alias processing on the view (below). */
	int set_memory(std::uintptr_t addr, std::size_t bytes, cpa_op op) noexcept;
	int unmap_alias(std::uintptr_t addr, std::size_t bytes) noexcept;
	/* Secret hardening of a whole alias: mlock, MADV_DONTDUMP, MADV_DONTFORK. */
	int secure_alias(std::uintptr_t addr, std::size_t bytes) noexcept;
	/* True when the alias containing addr was secured. */
	bool alias_secured(std::uintptr_t addr) const noexcept { return aliases_.secured(addr); }
	/* Protection of the alias containing addr, if addr is inside one. */
	std::optional<prot> alias_prot(std::uintptr_t addr) const noexcept { return aliases_.prot_at(addr); }
	/* The run of frames behind addr of an alias (all its frames for a one-run alias), if addr is inside one. */
	std::optional<frame_range> alias_frames(std::uintptr_t addr) const noexcept { return aliases_.frames_at(addr); }
	/* The frame behind addr, if addr is inside an alias. */
	std::optional<pfn_t> alias_pfn(std::uintptr_t addr) const noexcept { return aliases_.pfn_at(addr); }

	/* ---- memory: the contents path, no lock (linux_contents) ---- */
	int write_frames(pfn_t pfn, std::size_t off, const void *src, std::size_t n) noexcept
	{
		return contents_.write_frames(pfn, off, src, n);
	}
	int fill_frames(pfn_t pfn, std::size_t off, int byte, std::size_t n) noexcept
	{
		return contents_.fill_frames(pfn, off, byte, n);
	}
	int release_frames(frame_range r) noexcept { return contents_.release_frames(r); }

	backend_stats stats() const;

private:
	friend struct linux_backend_test_access;

	using alias = alias_record;

	static constexpr bool valid_prot(prot p) noexcept
	{
		return unsigned(p) <= unsigned(prot::read | prot::write | prot::exec) && !is_wx(p);
	}
	static int mmap_prot(prot p) noexcept
	{
		return (has(p, prot::read) ? PROT_READ : 0) | (has(p, prot::write) ? PROT_WRITE : 0) |
		       (has(p, prot::exec) ? PROT_EXEC : 0);
	}
	static int mmap_prot(dm_state s) noexcept
	{
		return s == dm_state::rw ? PROT_READ | PROT_WRITE : s == dm_state::ro ? PROT_READ : PROT_NONE;
	}
	bool valid(frame_range r) const noexcept
	{
		return r.nr_pages != 0 && r.pfn < nr_pages_ && r.nr_pages <= nr_pages_ - r.pfn;
	}

	int map_runs_alias(const frame_range *runs, std::size_t n, prot p, std::uintptr_t *addr) noexcept;
	void init(std::uint64_t nr_pages) noexcept;
	void destroy() noexcept;
	void steal(linux_backend &o) noexcept;
	int change_direct_map(frame_range r, dm_state to) noexcept;
	int set_present_ro(frame_range r) noexcept;
	void restore_direct_map(frame_range r) noexcept;
	void restore_alias(std::uintptr_t start, const alias &a, std::uint64_t p0, std::uint64_t p1) noexcept;
	template <class F>
	static void for_each_alias_frame(const alias &a, std::uint64_t p0, std::uint64_t p1, F &&f) noexcept;
	int read_view_pmd_kb(std::uint64_t *kb) const noexcept;
	void note_partial_change(frame_range r) noexcept;

	linux_contents contents_; /* the memfd and the lock-free contents path */
	std::byte *view_ = nullptr;
	std::uint64_t nr_pages_ = 0;
	std::vector<std::uint8_t> state_;      /* dm_state per frame; metadata outside the memfd */
	std::vector<std::uint8_t> maybe_split_; /* per 2 MiB page: 1 when it may no longer be one PMD mapping */
	alias_table aliases_;
	int init_error_ = 0;
	const char *init_step_ = "";

	std::uint64_t initial_pmd_kb_ = 0;     /* ShmemPmdMapped of the view after populating */
	std::string huge_unavailable_;         /* why the 2 MiB figures are unavailable, or "" */
	std::uint64_t tlb_flushes_ = 0;
	std::uint64_t prot_changes_ = 0;
	std::uint64_t collapses_2m_ = 0;
};

inline std::string linux_backend::shmem_enabled_setting() noexcept
{
	UA_TRY {
		std::string text;
		if (smaps::read_proc_file("/sys/kernel/mm/transparent_hugepage/shmem_enabled", &text))
			return {};
		std::size_t open = text.find('['), close = text.find(']');
		if (open == std::string::npos || close == std::string::npos || close < open)
			return {};
		return text.substr(open + 1, close - open - 1);
	} UA_CATCH_ALL {
		return {};
	}
}

inline void linux_backend::init(std::uint64_t nr_pages) noexcept
{
	auto fail = [&](const char *step, int err) {
		init_step_ = step;
		init_error_ = err < 0 ? err : -EINVAL;
		destroy();
	};
	if (nr_pages == 0 || nr_pages % pages_per_chunk != 0 || nr_pages > (std::uint64_t(1) << (63 - page_shift)))
		return fail("size check", -EINVAL);
	std::size_t bytes = std::size_t(nr_pages << page_shift);
	/*
	 * Populating a memfd larger than the host can back does not fail: the
	 * kernel's OOM killer stops the process part way (a 4 TiB machine on a
	 * 23 GiB host ran 25 s, then was killed). So a size beyond what the host
	 * has available now (MemAvailable + SwapFree) is refused first.
	 */
	if (std::uint64_t avail = host_available_bytes(); avail != 0 && bytes > avail)
		return fail("memory check", -ENOMEM);
	UA_TRY {
		state_.assign(nr_pages, std::uint8_t(dm_state::rw));
		maybe_split_.assign(nr_pages / pages_per_chunk, 0);
	} UA_CATCH_ALL {
		return fail("frame state", -ENOMEM);
	}
	const char *step = "";
	if (int rc = contents_.open(nr_pages, &step); rc != 0)
		return fail(step, rc);
	int err = 0;
	/* The view on a 2 MiB boundary, so the kernel can map it with huge pages. */
	view_ = reserve_aligned(bytes, pmd_size, &err);
	if (!view_)
		return fail("mmap direct map", err);
	if (::mmap(view_, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, contents_.fd(), 0) == MAP_FAILED) {
		err = -errno;
		::munmap(view_, bytes);
		view_ = nullptr;
		return fail("mmap direct map", err);
	}
	::madvise(view_, bytes, MADV_HUGEPAGE); /* advisory: without THP the view still works with 4 KiB pages */
	/* Populate now so the view starts as huge pages; touch pages where MADV_POPULATE_WRITE is unknown (< 5.14). */
	if (::madvise(view_, bytes, madv_populate_write) != 0) {
		if (errno != EINVAL)
			return fail("populate direct map", -errno);
		for (std::size_t off = 0; off < bytes; off += page_size)
			reinterpret_cast<volatile char *>(view_)[off] = 0;
	}
	nr_pages_ = nr_pages;

	std::string setting = shmem_enabled_setting();
	int rc = read_view_pmd_kb(&initial_pmd_kb_);
	UA_TRY {
		if (rc)
			huge_unavailable_ = "cannot read /proc/self/smaps";
		else if (!shmem_huge_allowed(setting))
			huge_unavailable_ = "transparent_hugepage/shmem_enabled is '" + setting +
					    "', not advise or always: shared memory is not PMD-mapped";
		else if (initial_pmd_kb_ == 0)
			huge_unavailable_ = "the direct-map view was not PMD-mapped at construction";
	} UA_CATCH_ALL {
		return fail("huge-page figures", -ENOMEM);
	}
	if (rc || initial_pmd_kb_ != std::uint64_t(bytes >> 10))
		std::fill(maybe_split_.begin(), maybe_split_.end(), std::uint8_t{1}); /* not (known to be) PMD-mapped */
}

inline void linux_backend::destroy() noexcept
{
	aliases_.unmap_all();
	if (view_)
		::munmap(view_, std::size_t(state_.size() << page_shift));
	contents_.close();
	view_ = nullptr;
	nr_pages_ = 0;
	state_.clear();
	maybe_split_.clear();
}

inline void linux_backend::steal(linux_backend &o) noexcept
{
	contents_ = std::move(o.contents_);
	view_ = std::exchange(o.view_, nullptr);
	nr_pages_ = std::exchange(o.nr_pages_, 0);
	state_ = std::move(o.state_);
	maybe_split_ = std::move(o.maybe_split_);
	aliases_ = std::exchange(o.aliases_, alias_table{});
	o.state_.clear();
	o.maybe_split_.clear();
	init_error_ = std::exchange(o.init_error_, -EINVAL);
	init_step_ = std::exchange(o.init_step_, "moved from");
	initial_pmd_kb_ = o.initial_pmd_kb_;
	huge_unavailable_ = std::move(o.huge_unavailable_);
	tlb_flushes_ = o.tlb_flushes_;
	prot_changes_ = o.prot_changes_;
	collapses_2m_ = o.collapses_2m_;
}

inline int linux_backend::read_view_pmd_kb(std::uint64_t *kb) const noexcept
{
	smaps::range_totals t;
	auto start = reinterpret_cast<std::uintptr_t>(view_);
	int err = smaps::read_smaps_range(start, start + (state_.size() << page_shift), &t);
	if (!err)
		*kb = t.shmem_pmd_mapped_kb;
	return err;
}

inline int linux_backend::change_direct_map(frame_range r, dm_state to) noexcept
{
	if (!valid(r))
		return -EINVAL;
	auto first = state_.begin() + std::ptrdiff_t(r.pfn), last = state_.begin() + std::ptrdiff_t(r.end());
	if (std::all_of(first, last, [to](std::uint8_t s) { return s == std::uint8_t(to); }))
		return 0; /* nothing to change, not counted (as the simulation) */
	const auto invalid = [](std::uint8_t s) { return s == std::uint8_t(dm_state::invalid); };
	if (to == dm_state::ro && std::any_of(first, last, invalid))
		return set_present_ro(r);
	if (::mprotect(direct_map_address(r.pfn), r.bytes(), mmap_prot(to)) != 0) {
		int err = -errno;
		restore_direct_map(r);
		return err;
	}
	std::fill(first, last, std::uint8_t(to));
	note_partial_change(r);
	prot_changes_++;
	return 0;
}

/*
 * set_memory_ro() clears write and nothing else: a frame not present stays
 * not present. So where r holds invalid frames, only the runs of present
 * ones are mprotect()ed; a failure re-applies the recorded states.
 */
inline int linux_backend::set_present_ro(frame_range r) noexcept
{
	auto is_invalid = [&](pfn_t p) { return state_[p] == std::uint8_t(dm_state::invalid); };
	for (pfn_t p = r.pfn; p < r.end();) {
		if (is_invalid(p)) {
			p++;
			continue;
		}
		pfn_t e = p;
		while (e < r.end() && !is_invalid(e))
			e++;
		if (::mprotect(direct_map_address(p), std::size_t((e - p) << page_shift), PROT_READ) != 0) {
			int err = -errno;
			restore_direct_map(r);
			return err;
		}
		p = e;
	}
	for (pfn_t p = r.pfn; p < r.end(); p++)
		if (!is_invalid(p))
			state_[p] = std::uint8_t(dm_state::ro);
	note_partial_change(r);
	prot_changes_++;
	return 0;
}

/* A change that covers only part of a 2 MiB page splits its PMD mapping: only the first and last page can be partial. */
inline void linux_backend::note_partial_change(frame_range r) noexcept
{
	if (r.pfn % pages_per_chunk)
		maybe_split_[r.pfn / pages_per_chunk] = 1;
	if (r.end() % pages_per_chunk)
		maybe_split_[(r.end() - 1) / pages_per_chunk] = 1;
}

/*
 * mprotect() changes VMA after VMA (mm/mprotect.c, do_mprotect_pkey()); when a
 * split fails with ENOMEM it returns with the VMAs before it already changed.
 * Re-apply the recorded protection to each run of equal frames. A run either
 * was untouched (same flags: no split, no-op) or merged with its neighbours
 * (which freed a VMA), so the restore does not need more VMAs than existed.
 */
inline void linux_backend::restore_direct_map(frame_range r) noexcept
{
	pfn_t pfn = r.pfn;
	while (pfn < r.end()) {
		pfn_t run = pfn;
		while (run < r.end() && state_[run] == state_[pfn])
			run++;
		int rc = ::mprotect(direct_map_address(pfn), std::size_t((run - pfn) << page_shift),
				    mmap_prot(dm_state(state_[pfn])));
		UA_CHECK(rc == 0, "linux_backend: cannot roll back a failed direct-map change");
		note_partial_change({pfn, run - pfn});
		pfn = run;
	}
}

inline int linux_backend::collapse(frame_range r) noexcept
{
	if (!valid(r))
		return -EINVAL;
	/*
	 * Only 2 MiB pages this backend may have split, and whose frames share
	 * one state (one VMA covers them, so they can be one PMD). The merge
	 * count reads smaps before the first madvise and after the last: with
	 * nothing to merge, no syscall at all.
	 */
	std::uint64_t before = 0, after = 0;
	bool any = false, counted = false;
	int err = 0;
	for (pfn_t chunk = align_down(r.pfn, pages_per_chunk); chunk < r.end() && !err; chunk += pages_per_chunk) {
		auto begin = state_.begin() + std::ptrdiff_t(chunk);
		if (!maybe_split_[chunk / pages_per_chunk] ||
		    std::adjacent_find(begin, begin + pages_per_chunk, std::not_equal_to<>()) != begin + pages_per_chunk)
			continue;
		if (!any) {
			any = true;
			counted = read_view_pmd_kb(&before) == 0;
		}
		if (::madvise(direct_map_address(chunk), chunk_size, madv_collapse) != 0)
			err = -errno; /* EINVAL: kernel without MADV_COLLAPSE; EAGAIN/ENOMEM: could not */
		else
			maybe_split_[chunk / pages_per_chunk] = 0;
	}
	if (counted && read_view_pmd_kb(&after) == 0 && after > before)
		collapses_2m_ += (after - before) / (pmd_size >> 10);
	return err;
}

/*
 * vmap() of runs (one for map_alias()): alias_table::map_runs() into one
 * 2 MiB-aligned reservation, so whole chunks can be PMD-mapped; a failure
 * leaves nothing behind.
 */
inline int linux_backend::map_runs_alias(const frame_range *runs, std::size_t n, prot p, std::uintptr_t *addr) noexcept
{
	if (!valid_prot(p))
		return -EINVAL;
	const int rc = aliases_.map_runs(contents_.fd(), nr_pages_, runs, n, mmap_prot(p), p, pmd_size, addr);
	if (rc == 0) /* advisory: without THP the alias still works with 4 KiB pages */
		::madvise(reinterpret_cast<void *>(*addr), aliases_.find(*addr)->bytes, MADV_HUGEPAGE);
	return rc;
}

inline int linux_backend::protect_alias(std::uintptr_t addr, std::size_t bytes, prot p) noexcept
{
	alias *a = aliases_.find_whole(addr, bytes);
	if (!a || !valid_prot(p))
		return -EINVAL;
	if (!a->page_prot && a->p == p)
		return 0; /* nothing to change, not counted (as the simulation) */
	if (::mprotect(reinterpret_cast<void *>(addr), bytes, mmap_prot(p)) != 0) {
		int err = -errno;
		/* Re-applying the recorded protections undoes any partial change. */
		restore_alias(addr, *a, 0, bytes >> page_shift);
		return err;
	}
	a->set_prot(p);
	prot_changes_++;
	return 0;
}

inline int linux_backend::unmap_alias(std::uintptr_t addr, std::size_t bytes) noexcept
{
	return aliases_.unmap(addr, bytes); /* all or nothing (alias_table.h) */
}

/*
 * memfd_secret() keeps its pages out of core dumps, locked and away from a
 * forked child. For a shared mapping MADV_WIPEONFORK is refused (it applies
 * to private anonymous memory only), so the alias is not inherited at all
 * (MADV_DONTFORK): in a child the address faults. Each step is undone if a
 * later one fails; munmap() drops all three.
 */
inline int linux_backend::secure_alias(std::uintptr_t addr, std::size_t bytes) noexcept
{
	alias *a = aliases_.find_whole(addr, bytes);
	if (!a)
		return -EINVAL;
	if (a->secured)
		return 0;
	void *p = reinterpret_cast<void *>(addr);
	if (::madvise(p, bytes, MADV_DONTDUMP) != 0)
		return -errno;
	if (::madvise(p, bytes, MADV_DONTFORK) != 0) {
		int err = -errno;
		::madvise(p, bytes, MADV_DODUMP);
		return err;
	}
	if (::mlock(p, bytes) != 0) {
		int err = -errno;
		::madvise(p, bytes, MADV_DOFORK);
		::madvise(p, bytes, MADV_DODUMP);
		return err;
	}
	a->secured = true;
	return 0;
}

/*
 * ---- set_memory_*() with alias processing -------------------------------
 *
 * The kernel's set_memory_ro/rw/x/nx/rox() on a vmalloc address changes that
 * address's PTEs and, through cpa_process_alias(), the direct-map alias of
 * every frame behind it (write only: the direct map keeps NX). Here the
 * alias range is mprotect()ed in runs of pages that end with one protection,
 * and the view - this backend's direct map - in runs of contiguous frames
 * that end in one state; a failure undoes what was done, in reverse, from
 * the recorded protections and states. The view's 2 MiB pages a run covers
 * in part are split as for any direct-map change (note_partial_change());
 * the simulation's page-by-page accounting of 4 KiB-mapped aliases is not
 * reproduced: the kernel decides the view's splits.
 */
template <class F>
inline void linux_backend::for_each_alias_frame(const alias &a, std::uint64_t p0, std::uint64_t p1, F &&f) noexcept
{
	std::uint64_t page = 0;
	for (std::size_t i = 0; i < a.nr_runs && page < p1; i++) {
		const frame_range &r = a.run(i);
		for (std::uint64_t k = 0; k < r.nr_pages && page < p1; k++, page++)
			if (page >= p0)
				f(page, r.pfn + k);
	}
}

inline void linux_backend::restore_alias(std::uintptr_t start, const alias &a, std::uint64_t p0, std::uint64_t p1) noexcept
{
	for (std::uint64_t i = p0; i < p1;) {
		const prot p = a.prot_at(i);
		std::uint64_t j = i + 1;
		while (j < p1 && a.prot_at(j) == p)
			j++;
		int rc = ::mprotect(reinterpret_cast<void *>(start + (i << page_shift)), std::size_t((j - i) << page_shift),
				    mmap_prot(p));
		UA_CHECK(rc == 0, "linux_backend: cannot roll back a failed alias protection change");
		i = j;
	}
}

inline int linux_backend::set_memory(std::uintptr_t addr, std::size_t bytes, cpa_op op) noexcept
{
	if (unsigned(op) > unsigned(cpa_op::rox) || bytes == 0 || addr % page_size || bytes % page_size)
		return -EINVAL;
	std::uintptr_t start = 0;
	alias *found = aliases_.find(addr, &start);
	if (!found || bytes > found->bytes - (addr - start))
		return -EINVAL;
	alias &a = *found;
	const std::uint64_t pages = a.nr_pages(), p0 = (addr - start) >> page_shift, p1 = p0 + (bytes >> page_shift);
	auto prot_at = [&](std::uint64_t i) { return a.prot_at(i); };
	bool alias_changes = false;
	for (std::uint64_t i = p0; i < p1; i++) {
		if (is_wx(apply(op, prot_at(i))))
			return -EINVAL; /* W^X */
		alias_changes = alias_changes || apply(op, prot_at(i)) != prot_at(i);
	}
	/* What reaches the direct map: write only. */
	auto dm_to = [op](std::uint8_t s) {
		if ((op == cpa_op::ro || op == cpa_op::rox) && s == std::uint8_t(dm_state::rw))
			return std::uint8_t(dm_state::ro);
		if (op == cpa_op::rw && s == std::uint8_t(dm_state::ro))
			return std::uint8_t(dm_state::rw);
		return s;
	};
	std::unique_ptr<prot[]> next(new (std::nothrow) prot[pages]);
	std::unique_ptr<frame_range[]> done(new (std::nothrow) frame_range[p1 - p0]);
	if (!next || !done)
		return -ENOMEM;
	for (std::uint64_t i = 0; i < pages; i++)
		next[i] = i >= p0 && i < p1 ? apply(op, prot_at(i)) : prot_at(i);

	/* The alias, in runs of one new protection. */
	int err = 0;
	for (std::uint64_t i = p0; i < p1 && !err && alias_changes;) {
		std::uint64_t j = i + 1;
		while (j < p1 && next[j] == next[i])
			j++;
		if (::mprotect(reinterpret_cast<void *>(start + (i << page_shift)), std::size_t((j - i) << page_shift),
			       mmap_prot(next[i])) != 0)
			err = -errno;
		i = j;
	}
	if (err) {
		restore_alias(start, a, p0, p1);
		return err;
	}
	/* The view, in runs of contiguous frames that change alike. */
	std::size_t nd = 0;
	frame_range cur{};
	auto flush_run = [&]() {
		if (!cur.nr_pages || err)
			return;
		if (::mprotect(direct_map_address(cur.pfn), cur.bytes(), mmap_prot(dm_state(dm_to(state_[cur.pfn])))) != 0)
			err = -errno;
		else
			done[nd++] = cur;
		cur = {};
	};
	for_each_alias_frame(a, p0, p1, [&](std::uint64_t, pfn_t pfn) {
		if (dm_to(state_[pfn]) == state_[pfn])
			return;
		if (cur.nr_pages && pfn == cur.end() && state_[pfn] == state_[cur.pfn])
			cur.nr_pages++;
		else {
			flush_run();
			if (!err)
				cur = {pfn, 1};
		}
	});
	flush_run();
	if (err) {
		while (nd)
			restore_direct_map(done[--nd]);
		restore_alias(start, a, p0, p1);
		return err;
	}
	/* Commit: the recorded states and protections. */
	for (std::size_t i = 0; i < nd; i++) {
		for (pfn_t pfn = done[i].pfn; pfn < done[i].end(); pfn++)
			state_[pfn] = dm_to(state_[pfn]);
		note_partial_change(done[i]);
	}
	a.set_page_prots(std::move(next));
	if (alias_changes || nd) {
		prot_changes_++;
		tlb_flushes_++; /* cpa_flush(); mprotect() flushed already: kept for the figures only */
	}
	return 0;
}

inline backend_stats linux_backend::stats() const
{
	backend_stats s;
	s.tlb_flushes = tlb_flushes_;
	s.prot_changes = prot_changes_;
	s.direct_map_level2_collapses = collapses_2m_;
	s.aliases = aliases_.size();
	s.bytes_written = contents_.bytes_written();
	s.direct_map_level3_splits = s.direct_map_level3_collapses = 0; /* shmem is never PUD-mapped: nothing to split */

	std::uint64_t view_kb = (nr_pages_ << page_shift) >> 10;
	std::string reason = ok() ? huge_unavailable_ : std::string("backend not constructed: ") + init_step_;
	std::uint64_t pmd_kb = 0;
	bool have_pmd = ok() && read_view_pmd_kb(&pmd_kb) == 0;
	bool have_vmas = smaps::count_vmas(&s.vma_count) == 0;
	s.kernel_figures = have_pmd && have_vmas;
	s.pmd_mapped_kb = pmd_kb;
	if (ok() && !have_pmd)
		reason = "cannot read /proc/self/smaps";

	s.directmap_available = reason.empty();
	if (s.directmap_available) {
		s.directmap_2m_kb = pmd_kb;
		s.directmap_4k_kb = view_kb - std::min(view_kb, pmd_kb);
		s.directmap_1g_kb = 0;
		/*
		 * A gauge, not an event count: the 2 MiB pages PMD-mapped at
		 * construction that are not now. The kernel keeps no per-process
		 * split counter, and a split shmem PMD can come back by itself
		 * (refault of the unsplit folio once the VMA is whole again).
		 */
		s.direct_map_level2_splits = initial_pmd_kb_ > pmd_kb ? (initial_pmd_kb_ - pmd_kb) / (pmd_size >> 10) : 0;
	}

	std::uint64_t pte_kb = 0;
	s.pgtable_available = smaps::read_vm_pte_kb(&pte_kb) == 0;
	s.pgtable_pages = pte_kb / (page_size >> 10);
	if (!s.pgtable_available)
		reason += reason.empty() ? "cannot read VmPTE from /proc/self/status" : "; cannot read VmPTE";
	s.unavailable_reason = std::move(reason);
	return s;
}

static_assert(mapping_backend<linux_backend>);

/* Inspectors of a linux_backend's private state, for tests only. */
struct linux_backend_test_access {
	static int memfd(const linux_backend &b) noexcept { return b.contents_.fd(); }
	/* True when release_frames() has punched a frame of pfn's 2 MiB page: writes there fallocate first. */
	static bool frames_released(const linux_backend &b, pfn_t pfn) noexcept { return b.contents_.frames_released(pfn); }
	/* True when the 2 MiB page holding pfn may be split (collapse() would act on it). */
	static bool may_be_split(const linux_backend &b, pfn_t pfn) noexcept
	{
		return pfn < b.nr_pages_ && b.maybe_split_[pfn / pages_per_chunk];
	}
};

}  // namespace ua
