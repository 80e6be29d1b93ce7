// SPDX-License-Identifier: MIT
/*
 * mapping/secretmem_backend.h - secret memory that leaves the running
 * kernel's direct map for real: frames are a memfd_secret(2) file.
 *
 * What "direct map" means here. Not a model: the kernel's own direct map.
 * Frame pfn is the bytes [pfn << 12, (pfn + 1) << 12) of one memfd_secret
 * file (system call 447; glibc has no wrapper). The kernel takes a page out
 * of its direct map when the page first faults in (mm/secretmem.c,
 * secretmem_fault(): folio_alloc(order 0), set_direct_map_invalid_noflush()
 * on that one page, flush_tlb_kernel_range()), which splits the 2 MiB (and
 * 1 GiB) page of the direct map holding it; it gives the page back only when
 * the file is released (secretmem_free_folio(): set_direct_map_default_noflush(),
 * which never re-forms the large page). A secretmem file cannot be punched
 * (no fallocate) or resized after its first ftruncate (secretmem_setattr()),
 * so between those two points a page stays out of the kernel's direct map.
 * The damage is measured, never modelled: stats() reads the kernel's
 * counters, /proc/vmstat direct_map_level2/3_splits/_collapses and
 * /proc/meminfo DirectMap4k/2M/1G. They are system-wide: take deltas.
 *
 * So userspace cannot avoid the kernel's per-page splits; it can only limit
 * them by keeping its pages and reusing them, which is what a cache over
 * this backend does. The operations:
 *   set_direct_map_invalid(r)  faults r's frames in (a read of each page of
 *                      the view; MADV_POPULATE_* is refused for secretmem,
 *                      since GUP refuses its VMAs): each frame not yet in
 *                      the file leaves the kernel's direct map now, one page
 *                      at a time; frames already there cost nothing.
 *   set_direct_map_default(r)  records the frames as free for the owner;
 *                      the kernel keeps them out of its direct map (nothing
 *                      in the kernel brings one back short of releasing the
 *                      file), so a later set_direct_map_invalid() of them
 *                      costs no fault and no split.
 *   set_direct_map_ro(r)  -EINVAL: a secretmem page is either absent from
 *                      the direct map or in it read-write; there is no
 *                      read-only state (so text and ro caches cannot use
 *                      this memory: it is secret caches' only).
 *   direct_map_state(pfn)  the owner's record (invalid between the two
 *                      calls above, rw otherwise). The kernel's direct map
 *                      lacks more: every frame resident in the file
 *                      (resident_pages()).
 *   flush_tlb, collapse  nothing to do (the kernel flushed each page at its
 *                      fault; it merges nothing back): validated, counted.
 *   map_alias(_runs)   MAP_SHARED mappings of the file; never executable:
 *                      any protection with exec is -EINVAL (the kernel also
 *                      refuses: secretmem's mount is MNT_NOEXEC).
 *   set_memory(a, n, op)  ro/rw/nx on part of an alias, x and rox -EINVAL.
 *                      No alias processing reaches a direct map: the frames
 *                      behind an alias are not in the kernel's.
 *   secure_alias(a, n) MADV_DONTFORK; the kernel already made every mapping
 *                      VM_LOCKED | VM_DONTDUMP (secretmem_mmap_prepare()).
 *   write/fill_frames  memcpy/memset through the view, a MAP_SHARED mapping
 *                      of the whole file: secretmem has no read or write
 *                      system calls, so contents can only go through a
 *                      mapping. No lock (the contract allows it).
 *   release_frames(r)  zeroes the frames (they read back as zeros); the
 *                      kernel keeps the pages until the file is released.
 *
 * Locked memory: every secretmem mapping counts against RLIMIT_MEMLOCK at
 * mmap() time, by its size (mlock_future_ok() in secretmem_mmap_prepare():
 * EAGAIN), unless the process has CAP_IPC_LOCK; the view counts once and
 * each alias again. A fault the kernel cannot serve (no free memory) is not
 * an error value: the faulting thread gets the OOM killer or SIGBUS, as for
 * any shared mapping; size the machine to what free memory allows.
 *
 * Construction never throws: ok() / init_error() / init_reason() say what
 * failed, with the reason in words (ENOSYS: the kernel has no memfd_secret,
 * or secretmem is disabled: /sys/module/secretmem/parameters/enable, or the
 * architecture cannot change its direct map). A failed backend has
 * nr_pages() == 0, so every operation returns -EINVAL. The view is never
 * inherited by fork (MADV_DONTFORK).
 *
 * Length: about 450 lines, over the usual 400: the construction and its
 * reasons, the kernel's figures and the aliases' protection and rollback
 * are this backend's own. The record of the aliases, its lookups and the
 * mapping of an alias (alias_table::map_runs()) are shared with
 * linux_backend (mapping/alias_table.h).
 */
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "../ds.h"
#include "alias_table.h"
#include "backend.h"
#include "kernel_direct_map.h"
#include "smaps.h"

#ifndef __NR_memfd_secret
#define __NR_memfd_secret 447
#endif

namespace ua {

class secretmem_backend {
public:
	static constexpr bool dereferenceable = true;
	static constexpr const char *name = "secretmem";

	/* nr_pages: the file's size in 4 KiB frames, a non-zero multiple of 512 (2 MiB). Nothing faults in yet. */
	explicit secretmem_backend(std::uint64_t nr_pages) noexcept { init(nr_pages); }
	~secretmem_backend() { destroy(); }
	secretmem_backend(const secretmem_backend &) = delete;
	secretmem_backend &operator=(const secretmem_backend &) = delete;

	bool ok() const noexcept { return init_error_ == 0; }
	int init_error() const noexcept { return init_error_; }
	/* Why construction failed, in words ("" when it worked). */
	const std::string &init_reason() const noexcept { return init_reason_; }

	/*
	 * Whether this kernel gives memfd_secret files to this process: "" when
	 * it does, else the reason (the probe creates and closes one empty file).
	 */
	static std::string unavailable_reason() noexcept;

	std::uint64_t nr_pages() const noexcept { return nr_pages_; }
	/* The frame's address in the view (contents; tests read through it). */
	std::byte *view_address(pfn_t pfn) const noexcept { return view_ + (pfn << page_shift); }
	/* Frames resident in the file, i.e. out of the kernel's direct map (mincore() of the view), or -errno. */
	long long resident_pages() const noexcept;

	/* ---- direct map (see the top) ---- */
	int set_direct_map_invalid(frame_range r) noexcept;
	int set_direct_map_default(frame_range r) noexcept { return record(r, dm_state::rw); }
	int set_direct_map_ro(frame_range) noexcept { return -EINVAL; }
	dm_state direct_map_state(pfn_t pfn) const noexcept
	{
		return pfn < nr_pages_ ? dm_state(state_[pfn]) : dm_state::invalid;
	}
	int flush_tlb(frame_range r) noexcept
	{
		if (!valid(r))
			return -EINVAL;
		tlb_flushes_++; /* secretmem_fault() flushed each page already: kept for the figures */
		return 0;
	}
	int collapse(frame_range r) noexcept { return valid(r) ? 0 : -EINVAL; }

	/* ---- aliases ---- */
	int map_alias(frame_range r, prot p, std::uintptr_t *addr, map_flags f = map_flags::none) noexcept
	{
		return map_alias_runs(&r, 1, p, addr, f);
	}
	int map_alias_runs(const frame_range *runs, std::size_t n, prot p, std::uintptr_t *addr,
			   map_flags f = map_flags::none) noexcept;
	int protect_alias(std::uintptr_t addr, std::size_t bytes, prot p) noexcept;
	int set_memory(std::uintptr_t addr, std::size_t bytes, cpa_op op) noexcept;
	int unmap_alias(std::uintptr_t addr, std::size_t bytes) noexcept;
	int secure_alias(std::uintptr_t addr, std::size_t bytes) noexcept;
	bool alias_secured(std::uintptr_t addr) const noexcept { return aliases_.secured(addr); }
	std::optional<prot> alias_prot(std::uintptr_t addr) const noexcept { return aliases_.prot_at(addr); }
	std::optional<frame_range> alias_frames(std::uintptr_t addr) const noexcept { return aliases_.frames_at(addr); }
	std::optional<pfn_t> alias_pfn(std::uintptr_t addr) const noexcept { return aliases_.pfn_at(addr); }

	/* ---- contents, through the view, no lock ---- */
	int write_frames(pfn_t pfn, std::size_t off, const void *src, std::size_t n) noexcept
	{
		if (!valid_bytes(pfn, off, n) || (!src && n))
			return -EINVAL;
		if (n)
			std::memcpy(view_address(pfn) + off, src, n);
		bytes_written_.add(n);
		return 0;
	}
	int fill_frames(pfn_t pfn, std::size_t off, int byte, std::size_t n) noexcept
	{
		if (!valid_bytes(pfn, off, n))
			return -EINVAL;
		std::memset(view_address(pfn) + off, byte, n);
		bytes_written_.add(n);
		return 0;
	}
	int release_frames(frame_range r) noexcept
	{
		if (!valid(r))
			return -EINVAL;
		std::memset(view_address(r.pfn), 0, r.bytes()); /* no hole punching in secretmem: zeroes instead */
		return 0;
	}

	backend_stats stats() const;

private:
	using alias = alias_record;

	bool valid(frame_range r) const noexcept
	{
		return r.nr_pages != 0 && r.pfn < nr_pages_ && r.nr_pages <= nr_pages_ - r.pfn;
	}
	bool valid_bytes(pfn_t pfn, std::size_t off, std::size_t n) const noexcept
	{
		std::uint64_t size = nr_pages_ << page_shift;
		return pfn < nr_pages_ && off <= size - (pfn << page_shift) && n <= size - (pfn << page_shift) - off;
	}
	/* Any protection without exec; exec is refused outright (secretmem is MNT_NOEXEC). */
	static constexpr bool valid_prot(prot p) noexcept { return unsigned(p) <= unsigned(prot::rw); }
	static int mmap_prot(prot p) noexcept
	{
		return (has(p, prot::read) ? PROT_READ : 0) | (has(p, prot::write) ? PROT_WRITE : 0);
	}
	int record(frame_range r, dm_state s) noexcept
	{
		if (!valid(r))
			return -EINVAL;
		std::memset(state_.data() + r.pfn, int(s), r.nr_pages);
		prot_changes_++;
		return 0;
	}
	/* The reason for a failed memfd_secret() with errno err (negative). */
	static std::string explain_memfd_secret(int err);
	void init(std::uint64_t nr_pages) noexcept;
	void destroy() noexcept;

	int fd_ = -1;
	std::byte *view_ = nullptr;
	std::uint64_t nr_pages_ = 0;
	std::vector<std::uint8_t> state_; /* dm_state per frame, the owner's record; metadata outside the file */
	alias_table aliases_;
	int init_error_ = 0;
	std::string init_reason_;
	std::uint64_t tlb_flushes_ = 0;
	std::uint64_t prot_changes_ = 0;
	striped_counter bytes_written_;
};

inline std::string secretmem_backend::explain_memfd_secret(int err)
{
	if (err == -ENOSYS) {
		std::string text;
		if (smaps::read_proc_file("/sys/module/secretmem/parameters/enable", &text) == 0 && !text.empty() &&
		    text[0] == 'N')
			return "memfd_secret: ENOSYS: secretmem is disabled (secretmem.enable=0 on the kernel command line)";
		return "memfd_secret: ENOSYS: this kernel has no memfd_secret (CONFIG_SECRETMEM off, or the "
		       "architecture cannot change its direct map)";
	}
	return std::string("memfd_secret: ") + std::strerror(-err);
}

inline std::string secretmem_backend::unavailable_reason() noexcept
{
	UA_TRY {
		int fd = int(::syscall(__NR_memfd_secret, unsigned(O_CLOEXEC)));
		if (fd < 0)
			return explain_memfd_secret(-errno);
		::close(fd);
		return {};
	} UA_CATCH_ALL {
		return "out of memory";
	}
}

inline void secretmem_backend::init(std::uint64_t nr_pages) noexcept
{
	auto fail = [&](int err, const char *what) {
		init_error_ = err < 0 ? err : -EINVAL;
		UA_TRY {
			init_reason_ = what;
		} UA_CATCH_ALL {
		}
		destroy();
	};
	if (nr_pages == 0 || nr_pages % pages_per_chunk != 0 || nr_pages > (std::uint64_t(1) << (62 - page_shift)))
		return fail(-EINVAL, "size check: a non-zero multiple of 512 frames");
	UA_TRY {
		state_.assign(nr_pages, std::uint8_t(dm_state::rw));
	} UA_CATCH_ALL {
		return fail(-ENOMEM, "frame states");
	}
	fd_ = int(::syscall(__NR_memfd_secret, unsigned(O_CLOEXEC)));
	if (fd_ < 0) {
		int err = -errno;
		std::string why;
		UA_TRY {
			why = explain_memfd_secret(err);
		} UA_CATCH_ALL {
		}
		return fail(err, why.c_str());
	}
	if (::ftruncate(fd_, off_t(nr_pages << page_shift)) != 0)
		return fail(-errno, "ftruncate of the memfd_secret file");
	void *v = ::mmap(nullptr, std::size_t(nr_pages << page_shift), PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
	if (v == MAP_FAILED) {
		int err = -errno;
		return fail(err, err == -EAGAIN ? "mmap of the view: EAGAIN: RLIMIT_MEMLOCK is below the file's size "
						  "(secretmem mappings are locked memory; raise it, or run with CAP_IPC_LOCK)"
						: "mmap of the view");
	}
	view_ = static_cast<std::byte *>(v);
	nr_pages_ = nr_pages;
	if (::madvise(view_, std::size_t(nr_pages << page_shift), MADV_DONTFORK) != 0)
		return fail(-errno, "madvise(MADV_DONTFORK) of the view");
}

inline void secretmem_backend::destroy() noexcept
{
	aliases_.unmap_all();
	if (view_)
		::munmap(view_, std::size_t(nr_pages_ << page_shift));
	view_ = nullptr;
	if (fd_ >= 0)
		::close(fd_); /* the last reference: secretmem_free_folio() gives each page back to the direct map */
	fd_ = -1;
	nr_pages_ = 0;
}

inline long long secretmem_backend::resident_pages() const noexcept
{
	long long n = 0;
	unsigned char vec[4096];
	for (std::uint64_t p = 0; p < nr_pages_; p += sizeof vec) {
		std::uint64_t k = std::min<std::uint64_t>(sizeof vec, nr_pages_ - p);
		if (::mincore(view_address(p), std::size_t(k << page_shift), vec) != 0)
			return -errno;
		for (std::uint64_t i = 0; i < k; i++)
			n += vec[i] & 1;
	}
	return n;
}

inline int secretmem_backend::set_direct_map_invalid(frame_range r) noexcept
{
	if (!valid(r))
		return -EINVAL;
	/* secretmem_fault() on the first access of each page: order-0 allocation, out of the direct map. */
	for (pfn_t p = r.pfn; p < r.end(); p++)
		(void)*reinterpret_cast<volatile const unsigned char *>(view_address(p));
	return record(r, dm_state::invalid);
}

inline int secretmem_backend::map_alias_runs(const frame_range *runs, std::size_t n, prot p, std::uintptr_t *addr,
					     map_flags f) noexcept
{
	if (!runs || !valid_prot(p) || unsigned(f) > 1)
		return -EINVAL;
	/* One reservation, 2 MiB aligned when every run is whole chunks (alias_table::map_runs()). */
	const bool whole_chunks = std::all_of(runs, runs + n, [](const frame_range &r) { return r.nr_pages % pages_per_chunk == 0; });
	return aliases_.map_runs(fd_, nr_pages_, runs, n, mmap_prot(p), p, whole_chunks ? pmd_size : page_size, addr);
}

inline int secretmem_backend::protect_alias(std::uintptr_t addr, std::size_t bytes, prot p) noexcept
{
	alias *a = aliases_.find_whole(addr, bytes);
	if (!a || !valid_prot(p))
		return -EINVAL;
	if (!a->page_prot && a->p == p)
		return 0;
	if (::mprotect(reinterpret_cast<void *>(addr), bytes, mmap_prot(p)) != 0) {
		int err = -errno;
		/* mprotect() may have changed a prefix: re-apply what was recorded. */
		for (std::size_t i = 0; i < bytes >> page_shift; i++)
			::mprotect(reinterpret_cast<void *>(addr + (i << page_shift)), page_size, mmap_prot(a->prot_at(i)));
		return err;
	}
	a->set_prot(p);
	prot_changes_++;
	return 0;
}

inline int secretmem_backend::set_memory(std::uintptr_t addr, std::size_t bytes, cpa_op op) noexcept
{
	if (op != cpa_op::ro && op != cpa_op::rw && op != cpa_op::nx)
		return -EINVAL; /* x, rox: never executable; unknown ops */
	if (bytes == 0 || addr % page_size || bytes % page_size)
		return -EINVAL;
	std::uintptr_t start = 0;
	alias *found = aliases_.find(addr, &start);
	if (!found || bytes > found->bytes - (addr - start))
		return -EINVAL;
	alias &a = *found;
	const std::size_t pages = a.nr_pages(), p0 = (addr - start) >> page_shift, p1 = p0 + (bytes >> page_shift);
	std::unique_ptr<prot[]> next(new (std::nothrow) prot[pages]);
	if (!next)
		return -ENOMEM;
	bool changes = false;
	for (std::size_t i = 0; i < pages; i++) {
		const prot cur = a.prot_at(i);
		next[i] = i >= p0 && i < p1 ? apply(op, cur) : cur;
		changes = changes || next[i] != cur;
	}
	if (!changes)
		return 0;
	/* Only the alias: no frame behind it is in the kernel's direct map (see the top). */
	for (std::size_t i = p0; i < p1; i++) {
		if (::mprotect(reinterpret_cast<void *>(start + (i << page_shift)), page_size, mmap_prot(next[i])) != 0) {
			int err = -errno;
			for (std::size_t j = p0; j <= i; j++)
				::mprotect(reinterpret_cast<void *>(start + (j << page_shift)), page_size, mmap_prot(a.prot_at(j)));
			return err;
		}
	}
	a.set_page_prots(std::move(next));
	prot_changes_++;
	tlb_flushes_++;
	return 0;
}

inline int secretmem_backend::unmap_alias(std::uintptr_t addr, std::size_t bytes) noexcept
{
	return aliases_.unmap(addr, bytes);
}

inline int secretmem_backend::secure_alias(std::uintptr_t addr, std::size_t bytes) noexcept
{
	alias *a = aliases_.find_whole(addr, bytes);
	if (!a)
		return -EINVAL;
	if (a->secured)
		return 0;
	/* VM_LOCKED and VM_DONTDUMP come with every secretmem mapping; fork is the one left. */
	if (::madvise(reinterpret_cast<void *>(addr), bytes, MADV_DONTFORK) != 0)
		return -errno;
	a->secured = true;
	return 0;
}

inline backend_stats secretmem_backend::stats() const
{
	backend_stats s;
	s.tlb_flushes = tlb_flushes_;
	s.prot_changes = prot_changes_;
	s.aliases = aliases_.size();
	s.bytes_written = bytes_written_.sum();
	std::string reason = ok() ? std::string() : "backend not constructed: " + init_reason_;
	if (std::string why = read_kernel_direct_map(&s); !why.empty() && reason.empty())
		reason = std::move(why);
	s.directmap_available = reason.empty();
	s.kernel_figures = s.directmap_available && smaps::count_vmas(&s.vma_count) == 0;
	std::uint64_t pte_kb = 0;
	s.pgtable_available = smaps::read_vm_pte_kb(&pte_kb) == 0;
	s.pgtable_pages = pte_kb / (page_size >> 10);
	if (!s.pgtable_available)
		reason += reason.empty() ? "cannot read VmPTE from /proc/self/status" : "; cannot read VmPTE";
	s.unavailable_reason = std::move(reason);
	return s;
}

static_assert(mapping_backend<secretmem_backend>);

}  // namespace ua
