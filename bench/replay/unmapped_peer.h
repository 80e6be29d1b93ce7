// SPDX-License-Identifier: MIT
/*
 * replay/unmapped_peer.h - the library's cache seen through the peer
 * interface (peers/peer.h), so the replay drives it exactly like the kernel
 * designs it is compared with.
 *
 * The adapter owns one ua::unmapped_cache over the run's machine and maps
 * the peer calls onto the public API: alloc() is unmapped_alloc() (the
 * cache's alias address as a uintptr_t), free() is unmapped_free(), drain()
 * is shrink() (the spare chunks go back; live memory cannot), and stats()
 * translates cache_stats into peer_stats. "chunks" there is the cache's
 * chunks held - in arenas, spare and in large runs - which for a chunk-based
 * design is the same figure the peers report (2 MiB physical regions holding
 * a frame the allocator holds).
 *
 * The requested size of each live allocation is remembered here, only to
 * report requested_bytes as the peers do; that table is the adapter's, not
 * the cache's, and is not counted in metadata_bytes.
 *
 * Which cache configuration each workload kind gets is decided by
 * cache_config_for() and documented in docs/benchmarks.md.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_map>

#include <unmapped_alloc/unmapped_alloc.h>

#include "peers/peer.h"
#include "workload/op.h"

namespace ua::replay {

using workload::memory_kind;

/* Secret memory and guest memory: both leave the direct map and are served as pages. */
constexpr bool secret_like(memory_kind k) noexcept { return k == memory_kind::secret || k == memory_kind::guest; }

/*
 * The cache per kind (workload/op.h memory_kind): BPF text with a 64 B
 * granule (the unit bpf_prog_pack allocates in); module regions with a
 * 4 KiB granule, since every region is a page multiple and page aligned, so
 * 64 B granules would only add alignment holes; read-only data from an ro
 * cache, page granular; secrets and guest memory from a secret cache
 * (removed from the direct map, zeroed before reuse) with a 4 KiB granule.
 * A workload that leaves its kind unspecified (a trace), or ordinary data,
 * is served as BPF text. One spare chunk, and one shard: the replay is
 * single-threaded, so one arena packs as tightly as it can.
 */
inline cache_config cache_config_for(memory_kind k) noexcept
{
	cache_config c;
	switch (k) {
	case memory_kind::module_text:
		c = text_cache_config("unmapped-modules");
		c.granule = page_size;
		break;
	case memory_kind::ro:
		c = ro_cache_config("unmapped-ro");
		c.granule = page_size;
		break;
	case memory_kind::secret:
	case memory_kind::guest:
		c = secret_cache_config("unmapped-secret");
		c.granule = page_size;
		break;
	case memory_kind::unspecified:
	case memory_kind::bpf_text:
	case memory_kind::data:
		c = text_cache_config("unmapped-bpf");
		c.granule = 64;
		break;
	}
	c.spare_chunks = 1;
	c.nr_shards = 1;
	return c;
}

template <mapping_backend B>
class unmapped_peer {
public:
	static constexpr const char *name = "unmapped";

	unmapped_peer(machine<B> &m, cache_config cfg) : cache_(m, cfg) {}
	unmapped_peer(const unmapped_peer &) = delete;
	unmapped_peer &operator=(const unmapped_peer &) = delete;

	result<std::uintptr_t> alloc(std::size_t size, std::size_t align)
	{
		auto r = unmapped_alloc(cache_, size, align, 0);
		if (!r.ok())
			return result<std::uintptr_t>::failure(r.err);
		auto a = reinterpret_cast<std::uintptr_t>(r.value);
		requested_.emplace(a, size);
		requested_bytes_ += size;
		return {a, error::ok};
	}

	error free(std::uintptr_t p)
	{
		error e = unmapped_free(cache_, reinterpret_cast<const void *>(p));
		if (e != error::ok)
			return e;
		if (auto it = requested_.find(p); it != requested_.end()) {
			requested_bytes_ -= it->second;
			requested_.erase(it);
		}
		return error::ok;
	}

	/* End of a workload: give the spare chunks back (live memory stays). */
	void drain() { cache_.shrink(); }

	peers::peer_stats stats() const
	{
		const cache_stats cs = cache_.stats();
		peers::peer_stats s;
		s.live_count = cs.live_count;
		s.live_bytes = cs.live_bytes;
		s.requested_bytes = requested_bytes_;
		s.chunks = cs.chunks;
		s.pages_held = std::uint64_t(cs.chunks) * pages_per_chunk;
		s.metadata_bytes = cs.metadata_bytes;
		s.dm_changes = cs.source.dm_changes;
		s.flushes = cs.source.tlb_flushes;
		return s;
	}

	/* The cache's own figures (peak_chunks, spare_chunks, ...). */
	cache_stats cache_figures() const { return cache_.stats(); }
	const cache_config &config() const noexcept { return cache_.config(); }
	unmapped_cache<B> &cache() noexcept { return cache_; }

private:
	unmapped_cache<B> cache_;
	std::unordered_map<std::uintptr_t, std::size_t> requested_;
	std::uint64_t requested_bytes_ = 0;
};

static_assert(peers::peer_allocator<unmapped_peer<sim_direct_map>>);
static_assert(peers::peer_allocator<unmapped_peer<linux_backend>>);

}  // namespace ua::replay
