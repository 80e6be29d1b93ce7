/*
 * arena_bench - alloc+free on the published BPF size mix, the library's arena
 * against a jemalloc arena, on the same operation sequence in the same run.
 *
 * For each live-set size (1 K, 100 K, 1 M allocations): fill to that many live
 * allocations, then a steady state where each step frees a random live
 * allocation and allocates a new one (sizes from bench/workload/bpf_size_mix.h,
 * 64-byte alignment as bpf_prog_pack gives). Both allocators take 2 MiB chunks
 * from plain memory of the same kind (bench/plain_chunks.h), each from its own
 * reservation, and hold their live sets at once: the steady state runs in
 * alternating rounds (bench/rounds.h). Prints the median ns per operation (one
 * alloc or one free) of each, the median of the per-round ratios
 * arena/jemalloc with their range, and each allocator's 1M/1K ratio. Absolute
 * times are context only; the ratios are the result.
 *
 * Usage: arena_bench [--json FILE] [--steps N] [--rounds R] [--seed S]
 */
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "heaps.h"
#include "peers/jemalloc_arena.h"
#include "plain_chunks.h"
#include "rounds.h"

namespace {

using ua::bench::arena_heap;

using je_arena = ua::peers::jemalloc_arena<ua::bench::plain_chunks>;
using je_heap = ua::bench::jemalloc_heap<je_arena>;

void report_state(arena_heap &h)
{
	auto st = h.a.stats();
	std::printf("  arena state: %zu chunks, %zu free extents, largest free %zu B, fragmentation %.3f, metadata %zu KiB\n",
		    st.chunks, st.free_extents, st.largest_free, st.fragmentation, st.metadata_bytes >> 10);
}

}  // namespace

int main(int argc, char **argv)
{
	const char *json = nullptr;
	std::size_t steps = 1000000, rounds = 10;
	std::uint64_t seed = 1;
	for (int i = 1; i < argc; i++) {
		if (!std::strcmp(argv[i], "--json") && i + 1 < argc)
			json = argv[++i];
		else if (!std::strcmp(argv[i], "--steps") && i + 1 < argc)
			steps = std::strtoull(argv[++i], nullptr, 10);
		else if (!std::strcmp(argv[i], "--rounds") && i + 1 < argc)
			rounds = std::strtoull(argv[++i], nullptr, 10);
		else if (!std::strcmp(argv[i], "--seed") && i + 1 < argc)
			seed = std::strtoull(argv[++i], nullptr, 10);
		else {
			std::fprintf(stderr, "usage: %s [--json FILE] [--steps N] [--rounds R] [--seed S]\n", argv[0]);
			return 2;
		}
	}
	if (rounds == 0 || steps < rounds) {
		std::fprintf(stderr, "arena_bench: --rounds must be positive and --steps at least --rounds\n");
		return 2;
	}
	std::printf("arena_bench: BPF size mix, 64-byte alignment, %zu steady-state steps per size in %zu alternating rounds, seed %llu\n",
		    steps, rounds, (unsigned long long)seed);
	std::printf("note: %s\n", je_arena::replaces_note);

	const std::size_t sizes[] = {1000, 100000, 1000000};
	ua::bench::side_by_side rows[3];
	for (int k = 0; k < 3; k++) {
		auto s = ua::bench::make_bpf_sequence(sizes[k], ua::bench::sequence_steps(steps, rounds), seed + std::uint64_t(k));
		/* The 1 M live set of this mix needs ~4 GiB of address space per allocator. */
		ua::bench::plain_chunks arena_mem(std::size_t{16} << 30), je_mem(std::size_t{16} << 30);
		if (!arena_mem.ok() || !je_mem.ok()) {
			std::fprintf(stderr, "arena_bench: cannot reserve address space\n");
			return 1;
		}
		arena_heap h(arena_mem);
		je_arena je(je_mem);
		if (!je.ok()) {
			std::fprintf(stderr, "arena_bench: experimental.arenas_create_ext failed\n");
			return 1;
		}
		je_heap jh{je};
		ua::bench::turns<arena_heap> ta(h, s, "arena_bench (arena)");
		ua::bench::turns<je_heap> tj(jh, s, "arena_bench (jemalloc)");
		ta.fill();
		tj.fill();
		rows[k] = ua::bench::alternate(ta, tj, steps, rounds);
		report_state(h);
		ta.drain();
		tj.drain();
		std::printf("live %8zu: arena %7.1f ns/op   jemalloc %7.1f ns/op   arena/jemalloc %.3f (rounds %.3f-%.3f)\n",
			    sizes[k], rows[k].a_ns, rows[k].b_ns, rows[k].ratio, rows[k].ratio_lo, rows[k].ratio_hi);
		std::fflush(stdout);
	}
	double growth = rows[2].a_ns / rows[0].a_ns, je_growth = rows[2].b_ns / rows[0].b_ns;
	double vs100k = rows[1].ratio;
	std::printf("growth 1M/1K: arena %.3f   jemalloc %.3f   (target: arena <= jemalloc) %s\n", growth, je_growth,
		    growth <= je_growth ? "met" : "MISSED");
	std::printf("arena/jemalloc at 100K live: %.3f   (target: <= 1.0) %s\n", vs100k, vs100k <= 1.0 ? "met" : "MISSED");
	if (json) {
		FILE *f = std::fopen(json, "w");
		if (!f) {
			std::fprintf(stderr, "arena_bench: cannot write %s: %s\n", json, std::strerror(errno));
			return 1;
		}
		std::fprintf(f,
			     "{\"steps\": %zu, \"rounds\": %zu, \"seed\": %llu,\n"
			     " \"arena_ns_per_op\": {\"1k\": %.2f, \"100k\": %.2f, \"1m\": %.2f},\n"
			     " \"jemalloc_ns_per_op\": {\"1k\": %.2f, \"100k\": %.2f, \"1m\": %.2f},\n"
			     " \"vs_jemalloc_1k\": %.4f, \"vs_jemalloc_100k\": %.4f, \"vs_jemalloc_1m\": %.4f,\n"
			     " \"vs_jemalloc_100k_rounds\": [%.4f, %.4f],\n"
			     " \"ratio_1m_over_1k\": %.4f, \"jemalloc_ratio_1m_over_1k\": %.4f}\n",
			     steps, rounds, (unsigned long long)seed, rows[0].a_ns, rows[1].a_ns, rows[2].a_ns, rows[0].b_ns,
			     rows[1].b_ns, rows[2].b_ns, rows[0].ratio, vs100k, rows[2].ratio, rows[1].ratio_lo, rows[1].ratio_hi,
			     growth, je_growth);
		std::fclose(f);
	}
	return 0;
}
