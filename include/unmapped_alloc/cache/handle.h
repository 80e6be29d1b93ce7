// SPDX-License-Identifier: MIT
/*
 * cache/handle.h - an owning RAII handle for one allocation.
 *
 * unmapped_ptr owns one allocation from one cache and frees it when it goes
 * out of scope (or deferred, after an RCU grace period, when made with
 * defer_free(): for code other threads may still run). Moving transfers
 * ownership; copying is not allowed. make_unmapped() returns the handle and
 * the error, so a failed allocation is a value the caller can inspect.
 */
#pragma once

#include <cstddef>
#include <utility>

#include "unmapped_cache.h"

namespace ua {

template <mapping_backend Backend>
class unmapped_ptr {
public:
	unmapped_ptr() = default;
	unmapped_ptr(unmapped_cache<Backend> &c, void *p, std::size_t size) noexcept : cache_(&c), p_(p), size_(size) {}
	unmapped_ptr(const unmapped_ptr &) = delete;
	unmapped_ptr &operator=(const unmapped_ptr &) = delete;
	unmapped_ptr(unmapped_ptr &&o) noexcept
		: cache_(std::exchange(o.cache_, nullptr)), p_(std::exchange(o.p_, nullptr)), size_(std::exchange(o.size_, 0)),
		  deferred_(o.deferred_)
	{
	}
	unmapped_ptr &operator=(unmapped_ptr &&o) noexcept
	{
		if (this != &o) {
			reset();
			cache_ = std::exchange(o.cache_, nullptr);
			p_ = std::exchange(o.p_, nullptr);
			size_ = std::exchange(o.size_, 0);
			deferred_ = o.deferred_;
		}
		return *this;
	}
	~unmapped_ptr() { reset(); }

	void *get() const noexcept { return p_; }
	std::size_t size() const noexcept { return size_; }
	explicit operator bool() const noexcept { return p_ != nullptr; }
	unmapped_cache<Backend> *cache() const noexcept { return cache_; }

	/* Free after an RCU grace period instead of at once. */
	void defer_free(bool on = true) noexcept { deferred_ = on; }

	/* Installs bytes through the cache's write path (text and ro caches). */
	error write(std::size_t off, const void *src, std::size_t len) noexcept
	{
		if (!p_)
			return error::null_pointer;
		if (off > size_ || len > size_ - off)
			return error::too_large;
		return cache_->write(static_cast<char *>(p_) + off, src, len);
	}

	/* Gives up ownership without freeing. */
	void *release() noexcept
	{
		cache_ = nullptr;
		size_ = 0;
		return std::exchange(p_, nullptr);
	}

	/* Frees now (or deferred) and becomes empty. */
	error reset() noexcept
	{
		if (!p_)
			return error::ok;
		error e = deferred_ ? cache_->free_deferred(p_) : cache_->free(p_);
		p_ = nullptr;
		size_ = 0;
		return e;
	}

private:
	unmapped_cache<Backend> *cache_ = nullptr;
	void *p_ = nullptr;
	std::size_t size_ = 0;
	bool deferred_ = false;
};

/* Allocates and wraps; on failure the handle is empty and err says why. */
template <mapping_backend Backend>
result<unmapped_ptr<Backend>> make_unmapped(unmapped_cache<Backend> &c, std::size_t size, std::size_t align = 1,
					    ua_flags flags = 0) noexcept
{
	auto r = c.alloc(size, align, flags);
	if (!r.ok())
		return {unmapped_ptr<Backend>(), r.err};
	return {unmapped_ptr<Backend>(c, r.value, size), error::ok};
}

}  // namespace ua
