// SPDX-License-Identifier: MIT
/*
 * live/ageing.h - ageing the live machine the way the published experiment
 * did: fill memory with page cache by reading a large sparse file (LKML,
 * Message-ID Y2ioTodn+mBXdIqp@ziqianlu-desk2, 7 Nov 2022; its figures are
 * in bench/validation/published.h).
 *
 * Reading a hole of a sparse file allocates page-cache pages (zeroed) like
 * reading data does, without writing anything to disk. On these machines
 * (deferred_init=lazy) it also brings the uninitialised part of ZONE_NORMAL
 * onto the free lists (deferred_grow_zone()), as any first use of memory
 * does: after an aged run no later run is "fresh" in that sense again.
 *
 * Bounded, because the machine is shared: the fill stops as soon as MemFree
 * reaches `stop_free_kb` (the caller passes the floor plus what the workload
 * will take), after `max_bytes`, after `max_seconds`, or when a stop was
 * requested (Ctrl-C, live/stop.h). MemFree is read every `check_bytes`.
 * The published experiment let the workload force reclaim of that page
 * cache; here the page cache stays while the workload runs and the workload
 * takes its memory from what the fill left free, so the floor holds.
 *
 * Cleanup that survives anything: the file is unlinked the moment it is
 * created, so the only reference is the fd; release() drops its page cache
 * (POSIX_FADV_DONTNEED) and closes it, and if the process dies the kernel
 * closes the fd, frees the inode and its page cache alike.
 */
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "live/proc_counters.h"
#include "live/stop.h"

namespace ua::live {

struct age_params {
	std::string dir = "/var/tmp";       /* a disk filesystem: tmpfs pages are not page cache that reclaim drops */
	std::uint64_t stop_free_kb = 0;     /* stop when MemFree <= this */
	std::uint64_t max_bytes = 64ull << 30;
	double max_seconds = 60;
	std::uint64_t check_bytes = 256ull << 20;
};

struct age_result {
	int err = 0;                    /* 0 or -errno of the step that failed */
	std::string step;               /* which step failed */
	std::uint64_t bytes_read = 0;
	std::uint64_t cached_kb_before = 0, cached_kb_after = 0;
	std::uint64_t free_kb_before = 0, free_kb_after = 0;
	double seconds = 0;
	std::string stopped_by;         /* "free memory floor", "max bytes", "time limit", "stop requested" */
};

class page_cache_filler {
public:
	page_cache_filler() = default;
	page_cache_filler(const page_cache_filler &) = delete;
	page_cache_filler &operator=(const page_cache_filler &) = delete;
	~page_cache_filler() { release(); }

	age_result fill(const age_params &p)
	{
		age_result r;
		release();
		const auto t0 = std::chrono::steady_clock::now();
		auto c0 = read_counters();
		if (!c0) {
			r.err = -ENOENT;
			r.step = c0.error;
			return r;
		}
		r.cached_kb_before = c0.value.cached_kb;
		r.free_kb_before = r.free_kb_after = c0.value.mem_free_kb;
		if (c0.value.mem_free_kb <= p.stop_free_kb) {
			r.stopped_by = "free memory floor";
			return r;
		}
		std::string path = p.dir + "/ua-live-age." + std::to_string(getpid());
		int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0) {
			r.err = -errno;
			r.step = "open " + path;
			return r;
		}
		::unlink(path.c_str());
		fd_ = fd;
		if (ftruncate(fd_, off_t(p.max_bytes)) != 0) {
			r.err = -errno;
			r.step = "ftruncate";
			release();
			return r;
		}
		std::vector<char> buf(1 << 20);
		std::uint64_t since_check = 0;
		while (true) {
			if (stop_requested()) {
				r.stopped_by = "stop requested";
				break;
			}
			if (r.bytes_read >= p.max_bytes) {
				r.stopped_by = "max bytes";
				break;
			}
			if (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() > p.max_seconds) {
				r.stopped_by = "time limit";
				break;
			}
			if (since_check >= p.check_bytes || r.bytes_read == 0) {
				since_check = 0;
				auto c = read_counters();
				if (c && c.value.mem_free_kb <= p.stop_free_kb) {
					r.stopped_by = "free memory floor";
					break;
				}
			}
			ssize_t n = pread(fd_, buf.data(), buf.size(), off_t(r.bytes_read));
			if (n < 0) {
				if (errno == EINTR)
					continue;
				r.err = -errno;
				r.step = "pread";
				break;
			}
			if (n == 0) {
				r.stopped_by = "max bytes";
				break;
			}
			r.bytes_read += std::uint64_t(n);
			since_check += std::uint64_t(n);
		}
		if (auto c = read_counters()) {
			r.cached_kb_after = c.value.cached_kb;
			r.free_kb_after = c.value.mem_free_kb;
		}
		r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
		return r;
	}

	/* Drops the file's page cache and closes it (the file was unlinked at creation). */
	void release() noexcept
	{
		if (fd_ < 0)
			return;
		(void)posix_fadvise(fd_, 0, 0, POSIX_FADV_DONTNEED);
		::close(fd_);
		fd_ = -1;
	}

	bool holding() const noexcept { return fd_ >= 0; }

private:
	int fd_ = -1;
};

}  // namespace ua::live
