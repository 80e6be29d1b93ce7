// SPDX-License-Identifier: MIT
/*
 * cache/secret_allocator.h - a standard-library allocator over a secret cache.
 *
 * std::vector<std::byte, secret_allocator<std::byte, B>> and
 * std::basic_string<char, std::char_traits<char>, secret_allocator<char, B>>
 * keep their contents in secret memory: out of the direct map, locked, out of
 * core dumps and not inherited by fork; freed storage is zeroed before reuse.
 * Standard containers expect allocate() to throw, so this is the one place
 * the library throws: std::bad_alloc when the cache fails (the cache's own
 * paths stay exception-free). The cache must be a secret cache and must
 * outlive every container using it. Small strings that fit the string's
 * inline buffer never reach the allocator: size the container past that when
 * the contents must live in secret memory (reserve()).
 */
#pragma once

#include <cstddef>
#include <new>

#include "../check.h"
#include "unmapped_cache.h"

namespace ua {

template <class T, mapping_backend Backend>
class secret_allocator {
	static_assert(Backend::dereferenceable, "containers write their storage: the backend's aliases must be real memory");

public:
	using value_type = T;
	template <class U>
	struct rebind {
		using other = secret_allocator<U, Backend>;
	};

	explicit secret_allocator(unmapped_cache<Backend> &c) noexcept : cache_(&c)
	{
		UA_CHECK(c.config().kind == cache_kind::secret, "secret_allocator needs a secret cache");
	}
	template <class U>
	secret_allocator(const secret_allocator<U, Backend> &o) noexcept : cache_(o.cache())
	{
	}

	T *allocate(std::size_t n)
	{
		if (n > max_size())
			UA_THROW(std::bad_array_new_length());
		auto r = cache_->alloc(n * sizeof(T), alignof(T) < 16 ? 1 : alignof(T));
		if (!r.ok())
			UA_THROW(std::bad_alloc());
		return static_cast<T *>(r.value);
	}
	void deallocate(T *p, std::size_t) noexcept { UA_CHECK(cache_->free(p) == error::ok, "secret_allocator: bad free"); }

	std::size_t max_size() const noexcept { return unmapped_cache<Backend>::max_size() / sizeof(T); }
	unmapped_cache<Backend> *cache() const noexcept { return cache_; }

	template <class U>
	bool operator==(const secret_allocator<U, Backend> &o) const noexcept
	{
		return cache_ == o.cache();
	}

private:
	unmapped_cache<Backend> *cache_;
};

}  // namespace ua
