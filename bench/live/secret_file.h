// SPDX-License-Identifier: MIT
/*
 * live/secret_file.h - real memfd_secret(2) memory.
 *
 * memfd_secret() is system call 447 on x86-64 (glibc 2.36 has no wrapper).
 * The kernel's design (mm/secretmem.c, as this kernel ships it):
 * secretmem_fault() allocates one order-0 page per fault and removes it from
 * the direct map with set_direct_map_invalid_noflush(), which splits the
 * 2 MiB (and 1 GiB) page holding it; the file's size can be set once
 * (secretmem_setattr()); there is no fallocate and no hole punching, so its
 * pages leave only when the file is released (last close and unmap):
 * secretmem_free_folio() then restores each with
 * set_direct_map_default_noflush(), which never re-forms a large page.
 *
 * A secret_file owns its fd and mapping: open(pages) creates, sizes and maps
 * it; touch(i) writes one byte of page i (the fault that takes the page);
 * release() (and the destructor) unmaps and closes, which frees every page.
 * Errors are -errno; nothing throws. The mapping is locked memory: secretmem
 * checks RLIMIT_MEMLOCK unless the caller has CAP_IPC_LOCK (root has).
 */
#pragma once

#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <utility>

#include <unmapped_alloc/config.h>

#ifndef __NR_memfd_secret
#define __NR_memfd_secret 447
#endif

namespace ua::live {

inline int sys_memfd_secret(unsigned flags) noexcept { return int(syscall(__NR_memfd_secret, flags)); }

class secret_file {
public:
	secret_file() noexcept = default;
	secret_file(const secret_file &) = delete;
	secret_file &operator=(const secret_file &) = delete;
	secret_file(secret_file &&o) noexcept
		: fd_(std::exchange(o.fd_, -1)), map_(std::exchange(o.map_, nullptr)), pages_(std::exchange(o.pages_, 0)),
		  touched_(std::exchange(o.touched_, 0))
	{
	}
	secret_file &operator=(secret_file &&o) noexcept
	{
		if (this != &o) {
			release();
			fd_ = std::exchange(o.fd_, -1);
			map_ = std::exchange(o.map_, nullptr);
			pages_ = std::exchange(o.pages_, 0);
			touched_ = std::exchange(o.touched_, 0);
		}
		return *this;
	}
	~secret_file() { release(); }

	/* Creates a secret file of `pages` pages and maps it; 0 or -errno, all undone on failure. */
	int open(std::size_t pages) noexcept
	{
		release();
		if (pages == 0)
			return -EINVAL;
		int fd = sys_memfd_secret(0);
		if (fd < 0)
			return -errno;
		const std::size_t len = pages * page_size;
		if (ftruncate(fd, off_t(len)) != 0) {
			int e = -errno;
			::close(fd);
			return e;
		}
		void *p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED) {
			int e = -errno;
			::close(fd);
			return e;
		}
		fd_ = fd;
		map_ = static_cast<unsigned char *>(p);
		pages_ = pages;
		return 0;
	}

	/*
	 * Faults page i in (one order-0 page leaves the direct map). A fault that
	 * cannot be served kills the process with SIGBUS, as for any shared
	 * mapping: callers keep to what free memory allows.
	 */
	void touch(std::size_t i) noexcept
	{
		if (i >= pages_)
			return;
		static_cast<volatile unsigned char *>(map_)[i * page_size] = 1;
		touched_++;
	}

	/* Unmaps and closes: the kernel frees every page of the file. */
	void release() noexcept
	{
		if (map_)
			munmap(map_, pages_ * page_size);
		if (fd_ >= 0)
			::close(fd_);
		map_ = nullptr;
		fd_ = -1;
		pages_ = touched_ = 0;
	}

	bool open_now() const noexcept { return fd_ >= 0; }
	std::size_t pages() const noexcept { return pages_; }
	std::size_t touched() const noexcept { return touched_; }

private:
	int fd_ = -1;
	unsigned char *map_ = nullptr;
	std::size_t pages_ = 0;
	std::size_t touched_ = 0;
};

}  // namespace ua::live
