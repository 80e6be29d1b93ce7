// SPDX-License-Identifier: MIT
/*
 * sockex1.h - the published concurrent-sockex1 experiment as an op sequence.
 *
 * The published experiment: on an 8 GiB x86-64
 * VM, N = 512, 1024 and 2048 instances of the kernel's samples/bpf `sockex1`
 * (one small socket filter program each) are started concurrently and then
 * stopped; DirectMap4k/2M/1G are read after each step. Under bpf_prog_pack
 * each program takes 320 bytes (bpftool.h: bpf_pack_alloc_size() of a JIT
 * image of 233 to 296 bytes), before it one page
 * (bpf_jit_binary_alloc()).
 *
 * The sequence: N allocations (IDs 1..N, in start order), then N frees in a
 * seeded random order, since concurrent processes exit in no fixed order.
 * Each allocation is memory kind bpf_text and carries its process's
 * footprint (sockex1_footprint), which a replay may take from the page
 * allocator beside it.
 * The machine side, 8 GiB and "fresh" (right after boot) or "aged" (memory
 * first filled with page cache), is a setting of the replay tool, not part of
 * the sequence.
 */
#pragma once

#include "workload/bpftool.h"
#include "workload/op.h"
#include "workload/random.h"

#include <unmapped_alloc/config.h>

#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

namespace ua::workload {

inline constexpr std::size_t sockex1_pack_bytes = 320;        /* as allocated under bpf_prog_pack */
inline constexpr std::size_t sockex1_page_bytes = page_size;  /* as allocated before it */
inline constexpr std::size_t sockex1_instances[] = {512, 1024, 2048};
/*
 * Each instance is a process holding its program: the published experiment's
 * author found that about 4000 instances fill the 8 GiB VM, i.e. about
 * 2 MiB of ordinary memory per instance (op.h footprint).
 */
inline constexpr std::size_t sockex1_footprint = std::size_t(2) << 20;

static_assert(bpf_pack_alloc_size(233) == sockex1_pack_bytes && bpf_pack_alloc_size(296) == sockex1_pack_bytes);
static_assert(bpf_page_alloc_size(296) == sockex1_page_bytes);

struct sockex1_params {
	std::size_t instances = 512;
	bpf_alloc_model model = bpf_alloc_model::pack;
	std::uint64_t seed = 1;  /* order of the frees */
	std::size_t footprint = sockex1_footprint; /* each program's process; 0: none */
};

inline workload generate_sockex1(const sockex1_params &p)
{
	const bool pack = p.model == bpf_alloc_model::pack;
	workload w{"sockex1_" + std::to_string(p.instances) + (pack ? "_pack" : "_page"), {}};
	w.ops.reserve(2 * p.instances);
	for (std::uint64_t id = 1; id <= p.instances; id++)
		w.ops.push_back((pack ? op::make_alloc(id, sockex1_pack_bytes, bpf_prog_chunk_size, "sockex1")
				      : op::make_alloc(id, sockex1_page_bytes, page_size, "sockex1"))
					.of(memory_kind::bpf_text)
					.with_footprint(p.footprint));
	std::vector<std::uint64_t> order(p.instances);
	std::iota(order.begin(), order.end(), std::uint64_t{1});
	rng_t rng(p.seed);
	shuffle_seeded(order, rng);
	for (std::uint64_t id : order)
		w.ops.push_back(op::make_free(id));
	return w;
}

}  // namespace ua::workload
