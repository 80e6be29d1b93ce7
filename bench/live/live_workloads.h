// SPDX-License-Identifier: MIT
/*
 * live/live_workloads.h - the two fills the live figures are made of, as op
 * sequences (workload/op.h), so the simulated side can replay exactly the
 * same operations (ua-live --write-traces writes them in the trace format).
 *
 *   bpf-fill:PACKS[:SIZE]  PACKS x (2 MiB / SIZE) programs of SIZE bytes as
 *                          allocated (default 4096: 512 per pack, each an
 *                          image of 4072 bytes, live/bpf_prog.h), loaded in
 *                          a row, then closed in a seeded random order as
 *                          sockex1's instances exit (workload/sockex1.h)
 *   secretmem-fill:MIB     one user holding MIB MiB of secrets: MIB x 256
 *                          page faults in a row, then the file's release
 *                          (the frees in index order, as a truncation)
 *
 * The other workloads come from bench/workload/ through ua-replay's specs
 * (bpf-churn, bpftool, sockex1, trace, secretmem).
 */
#pragma once

#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "workload/workload.h"
#include "workload/random.h"

namespace ua::live {

inline constexpr std::size_t bpf_fill_default_size = 4096;

/* SIZE must be a multiple of 64 between 128 and one pack; 0 packs is an empty sequence. */
inline workload::workload bpf_fill(std::size_t packs, std::size_t size = bpf_fill_default_size, std::uint64_t seed = 1)
{
	const std::size_t per_pack = workload::bpf_prog_pack_size / size;
	const std::size_t n = packs * per_pack;
	workload::workload w{"bpf-fill:" + std::to_string(packs) + ":" + std::to_string(size), {}};
	w.ops.reserve(2 * n);
	for (std::uint64_t id = 1; id <= n; id++)
		w.ops.push_back(workload::op::make_alloc(id, size, workload::bpf_prog_chunk_size, "bpf-fill"));
	std::vector<std::uint64_t> order(n);
	std::iota(order.begin(), order.end(), std::uint64_t{1});
	workload::rng_t rng(seed);
	workload::shuffle_seeded(order, rng);
	for (std::uint64_t id : order)
		w.ops.push_back(workload::op::make_free(id));
	return w;
}

inline workload::workload secretmem_fill(std::size_t mib)
{
	const std::size_t n = mib * (std::size_t(1) << 20) / page_size;
	workload::workload w{"secretmem-fill:" + std::to_string(mib), {}};
	w.ops.reserve(2 * n);
	for (std::uint64_t id = 1; id <= n; id++)
		w.ops.push_back(workload::op::make_alloc(id, page_size, page_size, "secretmem"));
	for (std::uint64_t id = 1; id <= n; id++)
		w.ops.push_back(workload::op::make_free(id));
	return w;
}

}  // namespace ua::live
