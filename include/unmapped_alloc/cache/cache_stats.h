// SPDX-License-Identifier: MIT
/*
 * cache/cache_stats.h - cache figures printed as a /proc file.
 *
 * The layout follows /proc/slabinfo: a version line, a header line starting
 * with '#', then one line per cache with whitespace-separated columns, so the
 * usual tools (awk, column -t) read it:
 *
 *   unmapped_alloc - version: 0.1
 *   # name  live_bytes live_objs chunks spare peak_chunks large dm_changes tlb_flushes acquired released metadata_bytes
 *   text    1048576 2048 1 1 2 0 4 4 2 1 20480
 */
#pragma once

#include <cstdio>
#include <string>

#include "unmapped_cache.h"

namespace ua {

inline constexpr const char *cache_stats_header =
	"unmapped_alloc - version: 0.1\n"
	"# name            live_bytes  live_objs chunks  spare peak_chunks  large dm_changes tlb_flushes   acquired   released metadata_bytes\n";

inline std::string format_cache_stats(const char *name, const cache_stats &s)
{
	char line[320];
	std::snprintf(line, sizeof line, "%-16s %11zu %10zu %6zu %6zu %11zu %6zu %10llu %11llu %10llu %10llu %14zu\n", name,
		      s.live_bytes, s.live_count, s.chunks, s.spare_chunks, s.peak_chunks, s.large_runs,
		      (unsigned long long)s.source.dm_changes, (unsigned long long)s.source.tlb_flushes,
		      (unsigned long long)s.source.acquired, (unsigned long long)s.source.released, s.metadata_bytes);
	return line;
}

/* The whole file for the given caches. */
template <class... Caches>
std::string cache_stats_text(const Caches &...caches)
{
	std::string out = cache_stats_header;
	((out += format_cache_stats(caches.name(), caches.stats())), ...);
	return out;
}

template <class... Caches>
void cache_stats_print(std::FILE *f, const Caches &...caches)
{
	std::fputs(cache_stats_text(caches...).c_str(), f);
}

}  // namespace ua
