// SPDX-License-Identifier: MIT
/*
 * arena_bench - alloc+free on the published BPF size mix, the library's arena
 * against a jemalloc arena, on the same operation sequence in the same run.
 *
 * For each live-set size (1 K, 100 K, 1 M allocations): fill to that many live
 * allocations, then time a steady state where each step frees a random live
 * allocation and allocates a new one (sizes from bench/workload/bpf_size_mix.h,
 * 64-byte alignment as bpf_prog_pack gives). Both allocators take 2 MiB chunks
 * from the same plain-memory source. Prints ns per operation (one alloc or one
 * free), the ratio arena/jemalloc per size and each allocator's 1M/1K ratio.
 * Absolute times are context only; the ratios are the result.
 *
 * Usage: arena_bench [--json FILE] [--steps N] [--seed S]
 */
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <unmapped_alloc/arena.h>

#include "peers/jemalloc_arena.h"
#include "plain_chunks.h"
#include "workload/bpf_size_mix.h"

namespace {

using clock_type = std::chrono::steady_clock;

/* The arena with the owner's loop: add a chunk on no_space, keep one spare empty chunk. */
struct arena_heap {
	ua::arena a;
	ua::bench::plain_chunks &src;
	std::uintptr_t spare = 0;

	explicit arena_heap(ua::bench::plain_chunks &s) : src(s) {}
	~arena_heap()
	{
		a.for_each_chunk([&](std::uintptr_t b, std::size_t) { src.put(reinterpret_cast<void *>(b), ua::chunk_size); });
	}
	void *alloc(std::size_t size, std::size_t align)
	{
		auto r = a.alloc(size, align);
		if (r.err == ua::error::no_space) {
			void *c = src.get(ua::chunk_size);
			if (!c || a.add_chunk(reinterpret_cast<std::uintptr_t>(c)) != ua::error::ok)
				return nullptr;
			r = a.alloc(size, align);
		}
		return r.ok() ? reinterpret_cast<void *>(r.value) : nullptr;
	}
	void free(void *p)
	{
		auto f = a.free(reinterpret_cast<std::uintptr_t>(p));
		if (f.ok() && f.value.empty_chunk) {
			if (!spare) {
				spare = f.value.empty_chunk;
				return;
			}
			if (f.value.empty_chunk != spare && a.remove_chunk(f.value.empty_chunk) == ua::error::ok)
				src.put(reinterpret_cast<void *>(f.value.empty_chunk), ua::chunk_size);
		}
	}
};

struct sequence {
	std::vector<std::size_t> fill_sizes;   /* the initial live set */
	std::vector<std::size_t> step_sizes;   /* one new allocation per step */
	std::vector<std::size_t> step_victims; /* index into the live table, per step */
};

sequence make_sequence(std::size_t live, std::size_t steps, std::uint64_t seed)
{
	std::mt19937_64 rng(seed);
	sequence s;
	s.fill_sizes.reserve(live);
	for (std::size_t i = 0; i < live; i++)
		s.fill_sizes.push_back(ua::workload::bpf_size(rng));
	for (std::size_t i = 0; i < steps; i++) {
		s.step_sizes.push_back(ua::workload::bpf_size(rng));
		s.step_victims.push_back(std::size_t(rng() % live));
	}
	return s;
}

void report_state(arena_heap &h)
{
	auto st = h.a.stats();
	std::printf("  arena state: %zu chunks, %zu free extents, largest free %zu B, fragmentation %.3f, metadata %zu KiB\n",
		    st.chunks, st.free_extents, st.largest_free, st.fragmentation, st.metadata_bytes >> 10);
}
template <class Heap>
void report_state(Heap &)
{
}

/* Runs the sequence; returns ns per operation of the steady state. */
template <class Heap>
double run(Heap &h, const sequence &s)
{
	constexpr std::size_t align = 64;
	std::vector<void *> table(s.fill_sizes.size());
	for (std::size_t i = 0; i < table.size(); i++) {
		table[i] = h.alloc(s.fill_sizes[i], align);
		if (!table[i]) {
			std::fprintf(stderr, "arena_bench: allocation failed while filling\n");
			std::exit(1);
		}
	}
	auto t0 = clock_type::now();
	for (std::size_t i = 0; i < s.step_sizes.size(); i++) {
		std::size_t v = s.step_victims[i];
		h.free(table[v]);
		table[v] = h.alloc(s.step_sizes[i], align);
		if (!table[v]) {
			std::fprintf(stderr, "arena_bench: allocation failed in steady state\n");
			std::exit(1);
		}
	}
	auto t1 = clock_type::now();
	report_state(h);
	for (void *p : table)
		h.free(p);
	double ns = double(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
	return ns / double(2 * s.step_sizes.size());
}

struct je_source {
	ua::bench::plain_chunks &src;
	void *get(std::size_t bytes) { return src.get(bytes); }
	void put(void *p, std::size_t bytes) { src.put(p, bytes); }
};

}  // namespace

int main(int argc, char **argv)
{
	const char *json = nullptr;
	std::size_t steps = 1000000;
	std::uint64_t seed = 1;
	for (int i = 1; i < argc; i++) {
		if (!std::strcmp(argv[i], "--json") && i + 1 < argc)
			json = argv[++i];
		else if (!std::strcmp(argv[i], "--steps") && i + 1 < argc)
			steps = std::strtoull(argv[++i], nullptr, 10);
		else if (!std::strcmp(argv[i], "--seed") && i + 1 < argc)
			seed = std::strtoull(argv[++i], nullptr, 10);
		else {
			std::fprintf(stderr, "usage: %s [--json FILE] [--steps N] [--seed S]\n", argv[0]);
			return 2;
		}
	}
	if (steps == 0) {
		std::fprintf(stderr, "arena_bench: --steps must be positive\n");
		return 2;
	}
	std::printf("arena_bench: BPF size mix, 64-byte alignment, %zu steady-state steps per size, seed %llu\n", steps,
		    (unsigned long long)seed);
	std::printf("note: %s\n", ua::peers::jemalloc_arena<je_source>::replaces_note);

	const std::size_t sizes[] = {1000, 100000, 1000000};
	double arena_ns[3], je_ns[3];
	for (int k = 0; k < 3; k++) {
		sequence s = make_sequence(sizes[k], steps, seed + std::uint64_t(k));
		/* The 1 M live set of this mix needs ~4 GiB of address space per allocator. */
		ua::bench::plain_chunks src(std::size_t{16} << 30);
		if (!src.ok()) {
			std::fprintf(stderr, "arena_bench: cannot reserve address space\n");
			return 1;
		}
		{
			arena_heap h(src);
			arena_ns[k] = run(h, s);
		}
		{
			je_source js{src};
			ua::peers::jemalloc_arena<je_source> je(js);
			if (!je.ok()) {
				std::fprintf(stderr, "arena_bench: experimental.arenas_create_ext failed\n");
				return 1;
			}
			je_ns[k] = run(je, s);
		}
		std::printf("live %8zu: arena %7.1f ns/op   jemalloc %7.1f ns/op   arena/jemalloc %.3f\n", sizes[k], arena_ns[k],
			    je_ns[k], arena_ns[k] / je_ns[k]);
		std::fflush(stdout);
	}
	double growth = arena_ns[2] / arena_ns[0], je_growth = je_ns[2] / je_ns[0];
	double vs100k = arena_ns[1] / je_ns[1];
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
			     "{\"steps\": %zu, \"seed\": %llu,\n"
			     " \"arena_ns_per_op\": {\"1k\": %.2f, \"100k\": %.2f, \"1m\": %.2f},\n"
			     " \"jemalloc_ns_per_op\": {\"1k\": %.2f, \"100k\": %.2f, \"1m\": %.2f},\n"
			     " \"vs_jemalloc_1k\": %.4f, \"vs_jemalloc_100k\": %.4f, \"vs_jemalloc_1m\": %.4f,\n"
			     " \"ratio_1m_over_1k\": %.4f, \"jemalloc_ratio_1m_over_1k\": %.4f}\n",
			     steps, (unsigned long long)seed, arena_ns[0], arena_ns[1], arena_ns[2], je_ns[0], je_ns[1], je_ns[2],
			     arena_ns[0] / je_ns[0], vs100k, arena_ns[2] / je_ns[2], growth, je_growth);
		std::fclose(f);
	}
	return 0;
}
