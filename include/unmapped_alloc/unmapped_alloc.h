// SPDX-License-Identifier: MIT
/*
 * unmapped_alloc.h - the public API (the top layer; includes everything below).
 *
 * Memory that must leave the kernel's direct map (executable code, read-only
 * data, secrets) comes from caches that carve 2 MiB chunks removed from the
 * direct map as whole large pages, so no large page is ever split for them.
 *
 *   ua::machine<ua::linux_backend> m(nr_pages);         // or ua::sim_direct_map
 *   ua::unmapped_cache<ua::linux_backend> text(m, ua::text_cache_config());
 *   auto r = ua::unmapped_alloc(text, 300, 64, 0);     // result<void *>
 *   ua::unmapped_write(text, r.value, code, len);       // text_poke_copy()
 *   ua::unmapped_free(text, r.value);
 *
 * Errors are values: result<T>::err / ua::error, to_errno() gives EINVAL for
 * caller mistakes and ENOMEM for lack of memory (see error.h, and docs/api.md
 * for every error of every call, the locks and the RCU rules).
 */
#pragma once

#include <cstddef>

#include "cache.h"

namespace ua {

/* Allocates size bytes aligned to align (a power of two; 1 for the cache's granule). */
template <mapping_backend Backend>
result<void *> unmapped_alloc(unmapped_cache<Backend> &c, std::size_t size, std::size_t align = 1, ua_flags flags = 0) noexcept
{
	return c.alloc(size, align, flags);
}

/* Frees an allocation; nullptr is a no-op. */
template <mapping_backend Backend>
error unmapped_free(unmapped_cache<Backend> &c, const void *p) noexcept
{
	return c.free(p);
}

/* Frees after an RCU grace period: for memory other threads may still execute or read. */
template <mapping_backend Backend>
error unmapped_free_deferred(unmapped_cache<Backend> &c, const void *p) noexcept
{
	return c.free_deferred(p);
}

/* Writes len bytes at dst inside one live allocation, never through a writable+executable address. */
template <mapping_backend Backend>
error unmapped_write(unmapped_cache<Backend> &c, void *dst, const void *src, std::size_t len) noexcept
{
	return c.write(dst, src, len);
}

}  // namespace ua
