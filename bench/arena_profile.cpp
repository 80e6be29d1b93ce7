// SPDX-License-Identifier: MIT
/*
 * arena_profile - one allocator alone on arena_bench's steady state, for
 * profilers (callgrind, cachegrind, perf), not for timing comparisons.
 *
 * Builds the live set of the BPF size mix, then runs the steady-state steps
 * (free a random live allocation, allocate a new one) on the arena, the
 * cache (text cache, simulated backend, one shard) or the jemalloc arena,
 * exactly as arena_bench and cache_bench do. Under callgrind, collection
 * covers only the steady state when valgrind's headers are installed
 * (run with --instr-atstart=no); per-step figures are then the totals
 * divided by the steps.
 *
 *   valgrind --tool=callgrind --instr-atstart=no --cache-sim=yes \
 *            --LL=2097152,16,64 --branch-sim=yes \
 *            build/release/bench/arena_profile arena 100000 200000
 *
 * Usage: arena_profile arena|cache|jemalloc [LIVE [STEPS [SEED]]]
 */
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#else
#define CALLGRIND_START_INSTRUMENTATION
#define CALLGRIND_STOP_INSTRUMENTATION
#endif

#include <unmapped_alloc/unmapped_alloc.h>

#include "heaps.h"
#include "machine_chunks.h"
#include "peers/jemalloc_arena.h"
#include "plain_chunks.h"
#include "rounds.h"

namespace {

using ua::bench::arena_heap;
using ua::bench::cache_heap;
using ua::bench::jemalloc_heap;

template <class Heap>
double steady(Heap &h, const ua::bench::step_sequence &s, std::size_t steps)
{
	ua::bench::turns<Heap> t(h, s, "arena_profile");
	t.fill();
	CALLGRIND_START_INSTRUMENTATION;
	double ns = t.turn(0, steps);
	CALLGRIND_STOP_INSTRUMENTATION;
	t.drain();
	return ns;
}

}  // namespace

int main(int argc, char **argv)
{
	if (argc < 2 || (std::strcmp(argv[1], "arena") && std::strcmp(argv[1], "cache") && std::strcmp(argv[1], "jemalloc"))) {
		std::fprintf(stderr, "usage: %s arena|cache|jemalloc [LIVE [STEPS [SEED]]]\n", argv[0]);
		return 2;
	}
	std::size_t live = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 100000;
	std::size_t steps = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 200000;
	std::uint64_t seed = argc > 4 ? std::strtoull(argv[4], nullptr, 10) : 1;
	if (live < 1 || steps < 1) {
		std::fprintf(stderr, "arena_profile: LIVE and STEPS must be positive\n");
		return 2;
	}
	auto s = ua::bench::make_bpf_sequence(live, steps, seed);
	double ns = 0;
	using B = ua::sim_direct_map;
	if (!std::strcmp(argv[1], "arena")) {
		ua::bench::plain_chunks mem(std::size_t{16} << 30);
		arena_heap h(mem);
		ns = steady(h, s, steps);
	} else {
		auto m = std::make_unique<ua::machine<B>>(std::uint64_t{64} << 18); /* 64 GiB */
		if (!std::strcmp(argv[1], "cache")) {
			ua::cache_config cfg = ua::text_cache_config("profile");
			cfg.nr_shards = 1;
			ua::unmapped_cache<B> c(*m, cfg);
			cache_heap<B> h{c};
			ns = steady(h, s, steps);
		} else {
			ua::bench::machine_chunks<B> src(*m);
			ua::peers::jemalloc_arena<ua::bench::machine_chunks<B>> j(src);
			if (!j.ok()) {
				std::fprintf(stderr, "arena_profile: experimental.arenas_create_ext failed\n");
				return 1;
			}
			jemalloc_heap<decltype(j)> h{j};
			ns = steady(h, s, steps);
		}
	}
	std::printf("%s: %zu live, %zu steps, %.1f ns/op (context only)\n", argv[1], live, steps, ns);
	return 0;
}
