// SPDX-License-Identifier: MIT
/*
 * peers/jemalloc_arena.h - a jemalloc arena whose extents come from our chunks.
 *
 * The general-purpose baseline, configured as a user of jemalloc would to keep
 * a class of memory apart:
 *   - an arena created with custom extent hooks through
 *     `experimental.arenas_create_ext` with metadata_use_hooks = false, so
 *     jemalloc's own metadata (base allocations) never lands in hook memory
 *     (which may be unmapped from the direct map);
 *   - the hooks take memory from a chunk source in 2 MiB units (the same
 *     source the library's arena uses in a comparison), and implement split
 *     and merge (return false), or jemalloc could not carve its extents;
 *   - dalloc opts out (returns true), so jemalloc retains extents, as its
 *     default hooks do under opt.retain (the Linux default); destroy gives
 *     them back when the arena is destroyed (reset() destroys and re-creates
 *     it); commit/purge hooks are absent (memory is always committed);
 *   - split and merge calls are counted, so tests can see jemalloc carve
 *     and coalesce its extents;
 *   - `arena.<i>.retain_grow_limit` = 2 MiB, so jemalloc grows one chunk at a
 *     time like the other allocators instead of doubling its retained region;
 *   - every mallocx/dallocx passes MALLOCX_TCACHE_NONE, since jemalloc's
 *     thread cache ignores the arena.
 *
 * Debian builds jemalloc without a symbol prefix, so a binary linking it gets
 * jemalloc as its malloc too: benchmark binaries say so when they start.
 * Library users never link jemalloc.
 */
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <map>
#include <mutex>

#include <jemalloc/jemalloc.h>

#include <unmapped_alloc/config.h>

namespace ua::peers {

/* jemalloc's arena_config_t (include/jemalloc/internal/arena_types.h, 5.3). */
struct je_arena_config {
	extent_hooks_t *extent_hooks;
	bool metadata_use_hooks;
};

/*
 * Source: a type with
 *   void *get(std::size_t bytes);            // bytes: a multiple of 2 MiB; result 2 MiB aligned, or nullptr
 *   void put(void *addr, std::size_t bytes); // give back exactly what get() returned
 */
template <class Source>
class jemalloc_arena {
	struct hooks_box {
		extent_hooks_t hooks; /* first member: jemalloc hands us &hooks back */
		jemalloc_arena *self;
	};

public:
	static constexpr const char *replaces_note =
		"jemalloc (Debian, no symbol prefix) is linked into this binary and also serves its malloc/free";

	explicit jemalloc_arena(Source &src) : src_(src)
	{
		box_.hooks = extent_hooks_t{&hook_alloc, &hook_dalloc, &hook_destroy, nullptr, nullptr,
					    nullptr,     nullptr,      &hook_split,   &hook_merge};
		box_.self = this;
		create();
	}
	jemalloc_arena(const jemalloc_arena &) = delete;
	jemalloc_arena &operator=(const jemalloc_arena &) = delete;
	~jemalloc_arena() { destroy(); }

	bool ok() const noexcept { return ok_; }
	unsigned index() const noexcept { return arena_; }

	/* Destroy the arena (every extent, live or retained, goes back to the source) and create a fresh one. */
	bool reset()
	{
		destroy();
		create();
		return ok_;
	}

	/* arena.<i>.purge: dirty and muzzy extents to dalloc (which opts out: they stay retained). */
	void purge() noexcept
	{
		if (!ok_)
			return;
		char name[64];
		std::snprintf(name, sizeof name, "arena.%u.purge", arena_);
		mallctl(name, nullptr, nullptr, nullptr, 0);
	}

	/* jemalloc's own metadata for this arena (stats.arenas.<i>.base), 0 if stats are unavailable. */
	std::size_t metadata_bytes() const noexcept
	{
		if (!ok_)
			return 0;
		std::uint64_t epoch = 1;
		std::size_t esz = sizeof(epoch);
		mallctl("epoch", &epoch, &esz, &epoch, esz);
		char name[64];
		std::snprintf(name, sizeof name, "stats.arenas.%u.base", arena_);
		std::size_t base = 0, sz = sizeof(base);
		return mallctl(name, &base, &sz, nullptr, 0) == 0 ? base : 0;
	}

	std::uint64_t split_calls() const noexcept { return splits_.load(); }
	std::uint64_t merge_calls() const noexcept { return merges_.load(); }

private:
	void create()
	{
		je_arena_config cfg{&box_.hooks, false};
		std::size_t sz = sizeof(arena_);
		ok_ = mallctl("experimental.arenas_create_ext", &arena_, &sz, &cfg, sizeof(cfg)) == 0;
		if (ok_) {
			char name[64];
			std::snprintf(name, sizeof name, "arena.%u.retain_grow_limit", arena_);
			std::size_t limit = chunk_size;
			mallctl(name, nullptr, nullptr, &limit, sizeof(limit));
		}
	}
	void destroy()
	{
		if (!ok_)
			return;
		char name[64];
		std::snprintf(name, sizeof name, "arena.%u.destroy", arena_);
		mallctl(name, nullptr, nullptr, nullptr, 0);
		ok_ = false;
		/* Whatever jemalloc retained without destroying goes back too. */
		std::lock_guard<std::mutex> g(lock_);
		for (auto &[addr, bytes] : regions_)
			src_.put(reinterpret_cast<void *>(addr), bytes);
		regions_.clear();
		held_ = 0;
	}

public:

	void *alloc(std::size_t size, std::size_t align = 1) noexcept
	{
		int flags = MALLOCX_ARENA(arena_) | MALLOCX_TCACHE_NONE;
		if (align > 1)
			flags |= MALLOCX_ALIGN(align);
		return mallocx(size, flags);
	}
	void free(void *p) noexcept
	{
		if (p)
			dallocx(p, MALLOCX_TCACHE_NONE);
	}

	/* Bytes of chunks jemalloc holds from the source. */
	std::size_t chunk_bytes() const noexcept
	{
		std::lock_guard<std::mutex> g(lock_);
		return held_;
	}

	/* True when [p, p + n) lies inside memory the hooks handed out. */
	bool in_hook_memory(const void *p, std::size_t n = 1) const noexcept
	{
		std::lock_guard<std::mutex> g(lock_);
		auto a = reinterpret_cast<std::uintptr_t>(p);
		auto it = regions_.upper_bound(a);
		if (it == regions_.begin())
			return false;
		--it;
		return a + n <= it->first + it->second;
	}

	/* Calls fn(addr, bytes) for each region obtained from the source. */
	template <class Fn>
	void for_each_region(Fn &&fn) const
	{
		std::lock_guard<std::mutex> g(lock_);
		for (auto &[addr, bytes] : regions_)
			fn(reinterpret_cast<void *>(addr), bytes);
	}

private:
	static jemalloc_arena *self_of(extent_hooks_t *h) { return reinterpret_cast<hooks_box *>(h)->self; }

	static void *hook_alloc(extent_hooks_t *h, void *new_addr, std::size_t size, std::size_t alignment, bool *zero,
				bool *commit, unsigned)
	{
		if (new_addr || alignment > chunk_size)
			return nullptr; /* we cannot place at a given address */
		jemalloc_arena *self = self_of(h);
		std::size_t bytes = align_up(size, chunk_size);
		void *p = self->src_.get(bytes);
		if (!p)
			return nullptr;
		{
			std::lock_guard<std::mutex> g(self->lock_);
			self->regions_[reinterpret_cast<std::uintptr_t>(p)] = bytes;
			self->held_ += bytes;
		}
		*zero = false; /* contents unknown: jemalloc zeroes itself when asked */
		*commit = true;
		return p;
	}

	/* Opt out: jemalloc keeps the extent as retained; destroy returns it. */
	static bool hook_dalloc(extent_hooks_t *, void *, std::size_t, bool, unsigned) { return true; }

	/* Destroy may cover parts of several source regions (after merges); regions go back once whole. */
	static void hook_destroy(extent_hooks_t *, void *, std::size_t, bool, unsigned) {}

	/* Splitting and merging need no work on our side: the memory stays mapped as it is. */
	static bool hook_split(extent_hooks_t *h, void *, std::size_t, std::size_t, std::size_t, bool, unsigned)
	{
		self_of(h)->splits_++;
		return false;
	}
	static bool hook_merge(extent_hooks_t *h, void *, std::size_t, void *, std::size_t, bool, unsigned)
	{
		self_of(h)->merges_++;
		return false;
	}

	Source &src_;
	hooks_box box_{};
	unsigned arena_ = 0;
	bool ok_ = false;
	mutable std::mutex lock_;
	std::map<std::uintptr_t, std::size_t> regions_;
	std::size_t held_ = 0;
	std::atomic<std::uint64_t> splits_{0}, merges_{0};
};

}  // namespace ua::peers
