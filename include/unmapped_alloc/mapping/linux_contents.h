// SPDX-License-Identifier: MIT
/*
 * mapping/linux_contents.h - the real backend's physical memory and its contents path.
 *
 * Physical memory is a memfd (memfd_create(2)); frame pfn is the file's bytes
 * [pfn << 12, (pfn + 1) << 12). This type owns the file and everything that
 * touches only the frames' contents:
 *   write_frames/fill_frames  pwrite(2) on the memfd: the text_poke_copy()
 *                      equivalent, the bytes never pass through an executable
 *                      (or any) mapping, so no address is ever W and X.
 *                      Preceded by fallocate(2) in 2 MiB pages where
 *                      release_frames has punched a hole (below).
 *   release_frames     fallocate(PUNCH_HOLE): the frames read back as zeros.
 *
 * Locking: none. The backend contract (mapping/backend.h) lets a caller that
 * owns the frames call these concurrently with each other and with any other
 * backend operation, without the machine lock, so what they share is atomic
 * (released_, bytes_written_) or fixed after open() (fd_, nr_pages_). The
 * rest of the real backend - the direct-map view and the aliases - is
 * linux_backend's (mapping/linux_backend.h), under the machine lock.
 */
#pragma once

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <new>
#include <utility>

#include "../ds.h"
#include "types.h"

namespace ua {

class linux_contents {
public:
	linux_contents() noexcept = default;
	~linux_contents() { close(); }
	linux_contents(const linux_contents &) = delete;
	linux_contents &operator=(const linux_contents &) = delete;
	linux_contents(linux_contents &&o) noexcept { steal(o); }
	linux_contents &operator=(linux_contents &&o) noexcept
	{
		if (this != &o) {
			close();
			steal(o);
		}
		return *this;
	}

	/* Creates the memfd of nr_pages frames: 0, or a negative errno with *step naming what failed. */
	int open(std::uint64_t nr_pages, const char **step) noexcept
	{
		released_.reset(new (std::nothrow) std::atomic<std::uint8_t>[nr_pages / pages_per_chunk]()); /* the view is populated */
		if (!released_) {
			*step = "frame state";
			return -ENOMEM;
		}
		/* MFD_EXEC (6.3+) keeps exec aliases possible under vm.memfd_noexec=1; older kernels reject it. */
		fd_ = ::memfd_create("unmapped_alloc-physmem", MFD_CLOEXEC | 0x10U);
		if (fd_ < 0 && errno == EINVAL)
			fd_ = ::memfd_create("unmapped_alloc-physmem", MFD_CLOEXEC);
		if (fd_ < 0) {
			*step = "memfd_create";
			return -errno;
		}
		if (::ftruncate(fd_, off_t(nr_pages << page_shift)) != 0) {
			*step = "ftruncate";
			return -errno;
		}
		nr_pages_ = nr_pages;
		return 0;
	}

	void close() noexcept
	{
		if (fd_ >= 0)
			::close(fd_);
		fd_ = -1;
		nr_pages_ = 0;
		released_.reset();
	}

	int fd() const noexcept { return fd_; }
	std::uint64_t bytes_written() const noexcept { return bytes_written_.sum(); }

	int write_frames(pfn_t pfn, std::size_t off, const void *src, std::size_t n) noexcept;
	int fill_frames(pfn_t pfn, std::size_t off, int byte, std::size_t n) noexcept;
	int release_frames(frame_range r) noexcept;

	/* True when release_frames() has punched a frame of pfn's 2 MiB page: writes there fallocate first. */
	bool frames_released(pfn_t pfn) const noexcept
	{
		return pfn < nr_pages_ && released_[pfn / pages_per_chunk].load(std::memory_order_relaxed);
	}

private:
	bool valid(frame_range r) const noexcept
	{
		return r.nr_pages != 0 && r.pfn < nr_pages_ && r.nr_pages <= nr_pages_ - r.pfn;
	}
	/* [pfn << 12 + off, + n) inside the machine, without overflow. */
	bool valid_bytes(pfn_t pfn, std::size_t off, std::size_t n) const noexcept
	{
		std::uint64_t size = nr_pages_ << page_shift;
		return pfn < nr_pages_ && off <= size - (pfn << page_shift) && n <= size - (pfn << page_shift) - off;
	}
	int pwrite_all(iovec *iov, int iovcnt, std::uint64_t pos, std::size_t n) noexcept;

	void steal(linux_contents &o) noexcept
	{
		fd_ = std::exchange(o.fd_, -1);
		nr_pages_ = std::exchange(o.nr_pages_, 0);
		released_ = std::move(o.released_);
		bytes_written_.reset(o.bytes_written_.sum());
	}

	int fd_ = -1;
	std::uint64_t nr_pages_ = 0;
	/* Per 2 MiB page: 1 once release_frames() punched any of its frames (never cleared). */
	std::unique_ptr<std::atomic<std::uint8_t>[]> released_;
	striped_counter bytes_written_;
};

/*
 * Writes n bytes at file position pos. Where the range may hold a hole (a 2
 * MiB page release_frames() punched), it is allocated first (fallocate mode
 * 0; shmem_fallocate() undoes its own allocations on failure), so the copy
 * itself cannot run out of memory half way and leave a partial write behind.
 * Elsewhere every page exists since construction populated the view, and the
 * fallocate() would be a second syscall per write that takes the inode lock
 * again (without it, cache_bench --backend real --cache text measured
 * cache/jemalloc 5.9-8.1 against 10.1-11.7).
 */
inline int linux_contents::pwrite_all(iovec *iov, int iovcnt, std::uint64_t pos, std::size_t n) noexcept
{
	if (n == 0)
		return 0;
	bool holes = false;
	for (std::uint64_t c = pos >> chunk_shift; c <= (pos + n - 1) >> chunk_shift && !holes; c++)
		holes = released_[c].load(std::memory_order_relaxed);
	if (holes && ::fallocate(fd_, 0, off_t(pos), off_t(n)) != 0)
		return -errno;
	std::size_t done = 0;
	while (done < n) {
		ssize_t w = ::pwritev(fd_, iov, iovcnt, off_t(pos + done));
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		if (w == 0)
			return -EIO;
		done += std::size_t(w);
		/* A short write (a signal): step over what was written and go on. */
		for (std::size_t left = std::size_t(w); left && iovcnt;) {
			std::size_t l = std::min(left, iov->iov_len);
			iov->iov_base = static_cast<char *>(iov->iov_base) + l;
			iov->iov_len -= l;
			left -= l;
			if (iov->iov_len == 0) {
				iov++;
				iovcnt--;
			}
		}
	}
	bytes_written_.add(n);
	return 0;
}

inline int linux_contents::write_frames(pfn_t pfn, std::size_t off, const void *src, std::size_t n) noexcept
{
	if (!valid_bytes(pfn, off, n) || (!src && n))
		return -EINVAL;
	std::uint64_t pos = (pfn << page_shift) + off;
	std::size_t done = 0;
	int err = 0;
	while (done < n && !err) {
		std::size_t len = std::min<std::size_t>(n - done, std::size_t(1) << 30);
		iovec iov{const_cast<char *>(static_cast<const char *>(src)) + done, len};
		err = pwrite_all(&iov, 1, pos + done, len);
		done += len;
	}
	return err;
}

inline int linux_contents::fill_frames(pfn_t pfn, std::size_t off, int byte, std::size_t n) noexcept
{
	if (!valid_bytes(pfn, off, n))
		return -EINVAL;
	/* One page of the byte, repeated by an iovec array: 256 KiB per pwritev(). */
	char page[page_size];
	std::memset(page, byte, sizeof(page));
	iovec iov[64];
	std::uint64_t pos = (pfn << page_shift) + off;
	std::size_t done = 0;
	int err = 0;
	while (done < n && !err) {
		std::size_t len = std::min(n - done, sizeof(page) * 64);
		int cnt = 0;
		for (std::size_t left = len; left; cnt++) {
			std::size_t l = std::min(left, sizeof(page));
			iov[cnt] = iovec{page, l};
			left -= l;
		}
		err = pwrite_all(iov, cnt, pos + done, len);
		done += len;
	}
	return err;
}

inline int linux_contents::release_frames(frame_range r) noexcept
{
	if (!valid(r))
		return -EINVAL;
	/* Marked first: a punch that fails part way may still have freed pages. */
	for (pfn_t c = r.pfn / pages_per_chunk; c <= (r.end() - 1) / pages_per_chunk; c++)
		released_[c].store(1, std::memory_order_relaxed);
	/* shmem_fallocate(PUNCH_HOLE) frees the pages and zaps every mapping of them; they refault as zeros. */
	if (::fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off_t(r.pfn << page_shift), off_t(r.bytes())) != 0)
		return -errno;
	return 0;
}

}  // namespace ua
