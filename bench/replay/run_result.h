// SPDX-License-Identifier: MIT
/*
 * replay/run_result.h - what one run measured (the figures of replay_ops.h;
 * docs/benchmarks.md defines each), and the lower bound every chunk figure
 * is compared with.
 *
 * A run is one (machine setup, workload, seed, allocator at a release) on a
 * fresh machine. `ran` is false when the run was not made (not applicable,
 * setup failed, the release has no such design): `note` says why. A run
 * whose allocations failed did run; `failed_allocs` and `first_failure` say
 * what failed, and such a run never meets a goal about chunks (report.h).
 */
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <unmapped_alloc/config.h>
#include <unmapped_alloc/mapping.h>

namespace ua::replay {

/*
 * ceil(bytes / 2 MiB) without wrapping: a trace may name sizes up to
 * 2^64 - 1, where `bytes + chunk_size - 1` would overflow to a small number.
 */
constexpr std::uint64_t chunks_for_bytes(std::uint64_t bytes) noexcept
{
	return bytes / chunk_size + (bytes % chunk_size != 0);
}

struct dm_sample {
	std::size_t op = 0;
	std::uint64_t dm_4k_kb = 0, dm_2m_kb = 0, dm_1g_kb = 0;
	std::uint64_t chunks = 0;
	std::uint64_t live_bytes = 0;
};

struct run_result {
	std::string allocator;    /* the registry's name, with "@release" when not the plan's default */
	std::string release;      /* the kernel release the design followed ("6.18"), or "proposal", "baseline", "library" */
	std::string workload, workload_kind, backend, machine;
	std::uint64_t seed = 1;   /* ageing and workload seed */
	double machine_gib = 0;
	bool aged = false;
	bool ran = false;      /* false: setup failed or not applicable (note says why) */
	std::string note;

	std::size_t ops = 0, allocs = 0, frees = 0;
	std::size_t failed_allocs = 0, failed_frees = 0;
	std::string first_failure;

	std::uint64_t peak_live_bytes = 0, lower_bound_chunks = 0;
	std::uint64_t peak_chunks = 0, final_chunks = 0, drained_chunks = 0;
	std::uint64_t spare_chunks = 0; /* configured spares (the cache's; 0 for the peers) */
	std::uint64_t metadata_bytes = 0;
	double ns_per_op = 0;
	double seconds = 0; /* wall time of the whole run, machine construction included */

	backend_stats before, after, drained;
	std::int64_t splits_2m = 0, splits_1g = 0;
	std::uint64_t prot_changes = 0, tlb_flushes = 0;
	bool whole_after_drain = false;

	/* real backend */
	double read_ns_intact = 0, read_ns_after = 0, read_ns_ratio = 0, read_ns_ratio_median = 0;
	std::size_t reads_after = 0;

	std::vector<dm_sample> samples;
};

}  // namespace ua::replay
