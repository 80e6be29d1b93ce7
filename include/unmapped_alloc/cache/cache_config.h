// SPDX-License-Identifier: MIT
/*
 * cache/cache_config.h - what kind of memory a cache hands out.
 *
 * Caches are by use, like kmem_cache or execmem's types:
 *
 *   text    executable code. Chunks leave the direct map (or become read-only
 *           there); users see a read+execute alias; code is installed only
 *           through unmapped_write(), which never makes an address writable
 *           and executable at once (the text_poke_copy() path); new chunks and
 *           freed space are filled with the trap byte (INT3, 0xcc), as
 *           bpf_prog_pack and execmem_fill_trapping_insns() do.
 *   ro      read-only data, written once through the same write path.
 *   secret  removed from the direct map, read-write alias, zeroed before
 *           reuse and before the chunk goes back, locked in memory, excluded
 *           from core dumps and not inherited by fork (memfd_secret()).
 *
 * The configuration is a struct of documented constants with defaults; valid()
 * is checked when a cache is created (a bad configuration is a programming
 * error and aborts with its reason).
 */
#pragma once

#include <cstddef>
#include <cstdint>

#include "../config.h"
#include "../mapping.h"

namespace ua {

enum class cache_kind : std::uint8_t { text, ro, secret };

/* What happens to a chunk's frames in the direct map while the cache holds it. */
enum class direct_map_action : std::uint8_t {
	remove,    /* set_direct_map_invalid_noflush(): gone from the direct map */
	read_only, /* set_memory_ro(): still readable there, never writable */
};

/*
 * How a text or ro cache's contents (written code, trap fills of freed
 * ranges) reach its memory; docs/api.md, "Write paths", weighs the two.
 * Neither ever makes an address writable and executable.
 */
enum class write_path : std::uint8_t {
	/*
	 * The backend's write path (text_poke_copy()): pwrite() to the memfd
	 * on the real backend, so no writable mapping of the memory exists in
	 * the process. Two syscalls per program (its write, its free's fill).
	 */
	backend,
	/*
	 * A second alias of every run, read-write and never executable, at an
	 * address of its own (asmjit's dual mapping): writes and fills are
	 * stores through it. The code stays writable at that second address
	 * for as long as the cache holds the chunk.
	 */
	writable_alias,
};

struct cache_config {
	const char *name = "unmapped";
	cache_kind kind = cache_kind::text;
	/* Allocation unit: 64 B as bpf_prog_pack; 4096 for page-granular users. */
	std::size_t granule = 64;
	/* Completely free chunks kept (still out of the direct map) to avoid ping-pong at a chunk boundary. */
	std::size_t spare_chunks = 1;
	direct_map_action dm_action = direct_map_action::remove;
	/*
	 * Independent arenas, each with its own lock; a thread uses the arena
	 * of its thread number modulo this. One arena per cache packs tightest;
	 * more arenas let threads allocate in parallel.
	 */
	unsigned nr_shards = 2;
	/* Text and ro caches only: secrets are written through their read-write user alias. */
	write_path write = write_path::backend;
	/*
	 * Take each chunk first where removing it from the direct map splits no
	 * large page: a wholly free 2 MiB range inside a 1 GiB region whose PUD
	 * mapping is already split, found through the backend's
	 * direct_map_page_size() (lookup_address()) and taken with the page
	 * allocator's alloc_contig_range(); the page allocator's choice only
	 * when there is none (cache/chunk_source.h). Backends that do not report
	 * their direct map's page sizes ignore it.
	 */
	bool split_regions_first = true;
	/*
	 * When the buddy lists hold no free 2 MiB block, take a chunk where the
	 * frames are free or page cache, migrating the page cache out with
	 * alloc_contig_range(), as hugetlb's alloc_contig_pages() does
	 * (cache/chunk_migrate.h). Off: such a chunk request fails.
	 */
	bool migrate_for_chunks = true;

	/* The protection users see through the alias. */
	constexpr prot user_prot() const noexcept
	{
		switch (kind) {
		case cache_kind::text: return prot::rx;
		case cache_kind::ro: return prot::read;
		case cache_kind::secret: return prot::rw;
		}
		return prot::none;
	}
	/* Byte that freed and fresh memory is filled with. */
	constexpr int fill_byte() const noexcept { return kind == cache_kind::text ? trap_byte : 0; }

	constexpr bool valid() const noexcept { return invalid_reason() == nullptr; }
	/* nullptr when valid, else what is wrong, naming the field. */
	constexpr const char *invalid_reason() const noexcept
	{
		if (!name)
			return "cache_config.name is null";
		if (!is_pow2(granule) || granule < 16 || granule > page_size)
			return "cache_config.granule must be a power of two from 16 to 4096";
		if (nr_shards < 1 || nr_shards > 64)
			return "cache_config.nr_shards must be from 1 to 64";
		if (kind == cache_kind::secret && dm_action != direct_map_action::remove)
			return "cache_config.dm_action must be remove for a secret cache";
		if (kind == cache_kind::secret && write != write_path::backend)
			return "cache_config.write must be backend for a secret cache";
		return nullptr;
	}
};

/* Ready-made configurations. */
constexpr cache_config text_cache_config(const char *name = "text") { return {.name = name, .kind = cache_kind::text}; }
constexpr cache_config ro_cache_config(const char *name = "ro")
{
	return {.name = name, .kind = cache_kind::ro, .dm_action = direct_map_action::read_only};
}
constexpr cache_config secret_cache_config(const char *name = "secret") { return {.name = name, .kind = cache_kind::secret}; }

/* Flags of unmapped_alloc(), in the spirit of GFP flags. */
using ua_flags = unsigned;
inline constexpr ua_flags ua_zero = 1u;      /* __GFP_ZERO: contents zeroed */
inline constexpr ua_flags ua_norefill = 2u;  /* do not take a new chunk: fail with ENOMEM instead */
inline constexpr ua_flags ua_valid_flags = ua_zero | ua_norefill;

}  // namespace ua
