// SPDX-License-Identifier: MIT
/*
 * cache_bench - the public caches on the BPF size mix, measured side by side.
 *
 * Three figures, each a ratio measured in this one run:
 *   1. alloc+free at 100 K live allocations: the library's text cache against
 *      a jemalloc arena whose extent hooks take 2 MiB chunks from the same
 *      kind of machine (page allocator + backend; bench/machine_chunks.h and
 *      bench/peers/jemalloc_arena.h, MALLOCX_TCACHE_NONE on alloc and free).
 *      Each allocator gets its own fresh machine of the same size; both hold
 *      their live sets at once and take turns on the same operation
 *      sequence in alternating rounds (bench/rounds.h): the figure is the
 *      median of the per-round ratios.
 *   2. direct-map changes per 1,000 allocations in the steady state (after
 *      the live set is built): the cache changes the direct map only when it
 *      takes or gives back a chunk.
 *   3. throughput of 2 threads (each with its own live set, on one cache with
 *      two shards) over the throughput of 1 thread doing the same work: the
 *      median over nine such pairs of runs, in alternating order. Beside it,
 *      the same pairs for jemalloc with an arena per thread, which share
 *      nothing but the machine: what the host gives two threads just then.
 * The backend is the simulated direct map by default, so backend calls cost
 * next to nothing and the figures measure the allocators; --backend real runs
 * on memfd memory, where every free of a text cache also pays a pwrite() of
 * trap bytes (a secret cache zeroes through its alias).
 * Absolute times are context only (the machine is shared): read the ratios.
 *
 * --cache secret measures a secret cache instead of a text cache: freed
 * ranges are zeroed instead of filled with trap bytes.
 *
 * Usage: cache_bench [--json FILE] [--steps N] [--rounds R] [--live N] [--backend sim|real] [--cache text|secret] [--seed S]
 */
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <unmapped_alloc/unmapped_alloc.h>

#include "args.h"
#include "heaps.h"
#include "machine_chunks.h"
#include "peers/jemalloc_arena.h"
#include "rounds.h"

namespace {

using clock_type = std::chrono::steady_clock;

struct options {
	const char *json = nullptr;
	std::size_t steps = 1000000;
	std::size_t live = 100000;
	std::size_t rounds = 10;
	bool real = false;
	bool secret = false;
	std::uint64_t seed = 1;
};

using ua::bench::cache_heap;
template <class B>
using jemalloc_heap = ua::bench::jemalloc_heap<ua::peers::jemalloc_arena<ua::bench::machine_chunks<B>>>;

template <class B>
std::unique_ptr<ua::machine<B>> make_machine(std::uint64_t pages)
{
	auto m = std::make_unique<ua::machine<B>>(pages);
	if constexpr (requires { m->backend.ok(); }) {
		if (!m->backend.ok()) {
			std::fprintf(stderr, "cache_bench: cannot create the real backend (%s)\n", std::strerror(-m->backend.init_error()));
			std::exit(1);
		}
	}
	return m;
}

/* Medians over pairs of runs: the work on one thread and on two at once. */
struct scaling_figures {
	double t1_ops = 0, t2_ops = 0, ratio = 0;
};

template <class Work>
double seconds(Work &&work)
{
	auto t0 = clock_type::now();
	work();
	return std::chrono::duration<double>(clock_type::now() - t0).count();
}

/* work(i) runs thread i's share (i = 0 or 1); ops is one share's operations. */
template <class Work>
scaling_figures scaling_pairs(Work &work, double ops)
{
	std::vector<double> one_ops, two_ops, ratio;
	auto one = [&] { std::thread a(work, 0u); a.join(); };
	auto two = [&] {
		std::thread a(work, 0u), b(work, 1u);
		a.join();
		b.join();
	};
	for (int r = 0; r < 9; r++) {
		double t1, t2;
		if (r % 2 == 0) {
			t1 = seconds(one);
			t2 = seconds(two);
		} else {
			t2 = seconds(two);
			t1 = seconds(one);
		}
		one_ops.push_back(ops / t1);
		two_ops.push_back(2 * ops / t2);
		ratio.push_back(two_ops.back() / one_ops.back());
	}
	return {ua::bench::median(one_ops), ua::bench::median(two_ops), ua::bench::median(ratio)};
}

struct figures {
	ua::bench::side_by_side speed; /* a: the cache, b: jemalloc */
	double dm_per_1000 = 0;
	std::uint64_t steady_allocs = 0, steady_dm_changes = 0;
	scaling_figures cache_threads, jemalloc_threads; /* the cache's figure, and the host's reference */
	std::size_t cache_peak_chunks = 0;
};

template <class B>
figures measure(const options &o, std::uint64_t pages)
{
	figures f;
	{
		/*
		 * Figure 1 and 2: the cache and the jemalloc arena, each on its own
		 * machine of the same size, hold their live sets at once and take
		 * turns on the same sequence (bench/rounds.h).
		 */
		auto s = ua::bench::make_bpf_sequence(o.live, ua::bench::sequence_steps(o.steps, o.rounds), o.seed);
		auto cm = make_machine<B>(pages), jm = make_machine<B>(pages);
		ua::cache_config cfg = o.secret ? ua::secret_cache_config("bench") : ua::text_cache_config("bench");
		cfg.nr_shards = 1;
		ua::unmapped_cache<B> c(*cm, cfg);
		cache_heap<B> ch{c};
		ua::bench::machine_chunks<B> src(*jm);
		ua::peers::jemalloc_arena<ua::bench::machine_chunks<B>> j(src);
		if (!j.ok()) {
			std::fprintf(stderr, "cache_bench: experimental.arenas_create_ext failed\n");
			std::exit(1);
		}
		jemalloc_heap<B> jh{j};
		ua::bench::turns<cache_heap<B>> tc(ch, s, "cache_bench (cache)");
		ua::bench::turns<jemalloc_heap<B>> tj(jh, s, "cache_bench (jemalloc)");
		tc.fill();
		tj.fill();
		std::uint64_t dm0 = c.stats().source.dm_changes;
		f.speed = ua::bench::alternate(tc, tj, o.steps, o.rounds);
		auto st = c.stats();
		/* Warm-up steps are steady-state allocations too: count every one. */
		f.steady_allocs = ua::bench::sequence_steps(o.steps, o.rounds);
		f.steady_dm_changes = st.source.dm_changes - dm0;
		f.dm_per_1000 = 1000.0 * double(f.steady_dm_changes) / double(f.steady_allocs);
		f.cache_peak_chunks = st.peak_chunks;
		tc.drain();
		tj.drain();
	}
	/*
	 * Scaling: the same per-thread work on one thread and on two at once,
	 * for the cache and, as the host's reference, for jemalloc with an arena
	 * per thread (the threads share only the machine chunks come from, whose
	 * lock is taken when an arena grows). Nine pairs each, the order within a
	 * pair alternating so that a drift of the shared host's speed falls on
	 * both sides; each figure is the median of its pairs' ratios.
	 */
	{
		std::size_t per_thread = o.steps / 2, live = o.live / 2;
		const std::array<ua::bench::step_sequence, 2> seq{ua::bench::make_bpf_sequence(live, per_thread, o.seed + 1),
								   ua::bench::make_bpf_sequence(live, per_thread, o.seed + 2)};
		auto m = make_machine<B>(pages);
		ua::cache_config cfg = o.secret ? ua::secret_cache_config("bench2") : ua::text_cache_config("bench2");
		cfg.nr_shards = 2;
		ua::unmapped_cache<B> c(*m, cfg);
		/* One thread's share: fill its live set, run its steps, drain. */
		auto share = [&]<class Heap>(Heap h, unsigned i) {
			ua::bench::turns<Heap> t(h, seq[i], "cache_bench (threads)");
			t.fill();
			t.turn(0, per_thread);
			t.drain();
		};
		auto cache_work = [&](unsigned i) { share(cache_heap<B>{c}, i); };
		/*
		 * One machine for both arenas, as the cache's shards share one: two
		 * simulated machines would hand out the same alias addresses, which
		 * jemalloc (one address map for the process) cannot tell apart.
		 */
		auto jm = make_machine<B>(pages);
		std::array<std::unique_ptr<ua::bench::machine_chunks<B>>, 2> jsrc;
		std::array<std::unique_ptr<ua::peers::jemalloc_arena<ua::bench::machine_chunks<B>>>, 2> ja;
		for (unsigned i = 0; i < 2; i++) {
			jsrc[i] = std::make_unique<ua::bench::machine_chunks<B>>(*jm);
			ja[i] = std::make_unique<ua::peers::jemalloc_arena<ua::bench::machine_chunks<B>>>(*jsrc[i]);
			if (!ja[i]->ok()) {
				std::fprintf(stderr, "cache_bench: experimental.arenas_create_ext failed\n");
				std::exit(1);
			}
		}
		auto jemalloc_work = [&](unsigned i) { share(jemalloc_heap<B>{*ja[i]}, i); };
		double ops = double(per_thread + live); /* per thread: the fill's allocations and the steps */
		f.cache_threads = scaling_pairs(cache_work, ops);
		f.jemalloc_threads = scaling_pairs(jemalloc_work, ops);
	}
	return f;
}

}  // namespace

int main(int argc, char **argv)
{
	options o;
	ua::bench::arg_reader args(argc, argv, [](const std::string &a) {
		std::fprintf(stderr, "cache_bench: %s needs a value\n", a.c_str());
		std::exit(2);
	});
	while (args.next()) {
		const std::string &a = args.option();
		if (ua::bench::rounds_option(args, o.steps, o.rounds, o.seed))
			continue;
		if (a == "--json")
			o.json = args.value();
		else if (a == "--live")
			o.live = args.count();
		else if (a == "--backend") {
			std::string b = args.value();
			if (b != "sim" && b != "real") {
				std::fprintf(stderr, "cache_bench: --backend must be sim or real, not %s\n", b.c_str());
				return 2;
			}
			o.real = b == "real";
		} else if (a == "--cache") {
			std::string k = args.value();
			if (k != "text" && k != "secret") {
				std::fprintf(stderr, "cache_bench: --cache must be text or secret, not %s\n", k.c_str());
				return 2;
			}
			o.secret = k == "secret";
		} else {
			std::fprintf(stderr, "usage: %s [--json FILE] [--steps N] [--rounds R] [--live N] [--backend sim|real] [--cache text|secret] [--seed S]\n", argv[0]);
			return 2;
		}
	}
	if (o.steps < 2 || o.live < 2 || o.rounds == 0 || o.steps < o.rounds) {
		std::fprintf(stderr, "cache_bench: --steps and --live must be at least 2, --rounds positive and at most --steps\n");
		return 2;
	}
	std::printf("cache_bench: BPF size mix, %zu live, %zu steady-state steps in %zu alternating rounds, 64-byte alignment, %s cache, %s backend, seed %llu\n",
		    o.live, o.steps, o.rounds, o.secret ? "secret" : "text", o.real ? "real" : "sim", (unsigned long long)o.seed);
	std::printf("note: %s\n", ua::peers::jemalloc_arena<ua::bench::machine_chunks<ua::sim_direct_map>>::replaces_note);
	/* The live set of the mix needs ~0.35 GiB per 100 K allocations; give it room. */
	std::uint64_t gib = o.real ? 1 + (o.live * 4096 + (std::uint64_t{1} << 30) - 1) / (std::uint64_t{1} << 30) : 64;
	std::uint64_t pages = gib << 18;
	figures f = o.real ? measure<ua::linux_backend>(o, pages) : measure<ua::sim_direct_map>(o, pages);
	double vs = f.speed.ratio, scaling = f.cache_threads.ratio;
	std::printf("alloc+free at %zu live: cache %.1f ns/op, jemalloc %.1f ns/op, cache/jemalloc %.3f (rounds %.3f-%.3f) (target <= 1.0) %s\n",
		    o.live, f.speed.a_ns, f.speed.b_ns, vs, f.speed.ratio_lo, f.speed.ratio_hi, vs <= 1.0 ? "met" : "MISSED");
	std::printf("steady state: %llu direct-map changes over %llu allocations = %.3f per 1000 (target <= 1) %s\n",
		    (unsigned long long)f.steady_dm_changes, (unsigned long long)f.steady_allocs, f.dm_per_1000,
		    f.dm_per_1000 <= 1.0 ? "met" : "MISSED");
	std::printf("threads: 1 thread %.2f Mops/s, 2 threads %.2f Mops/s, scaling %.2fx (target >= 1.6) %s\n",
		    f.cache_threads.t1_ops / 1e6, f.cache_threads.t2_ops / 1e6, scaling, scaling >= 1.6 ? "met" : "MISSED");
	std::printf("  host reference, jemalloc with an arena per thread: 1 thread %.2f Mops/s, 2 threads %.2f Mops/s, scaling %.2fx\n",
		    f.jemalloc_threads.t1_ops / 1e6, f.jemalloc_threads.t2_ops / 1e6, f.jemalloc_threads.ratio);
	std::printf("cache peak chunks: %zu\n", f.cache_peak_chunks);
	if (o.json) {
		FILE *out = std::fopen(o.json, "w");
		if (!out) {
			std::fprintf(stderr, "cache_bench: cannot write %s: %s\n", o.json, std::strerror(errno));
			return 1;
		}
		std::fprintf(out,
			     "{\"backend\": \"%s\", \"cache\": \"%s\", \"live\": %zu, \"steps\": %zu, \"rounds\": %zu, \"seed\": %llu,\n"
			     " \"cache_ns_per_op\": %.2f, \"jemalloc_ns_per_op\": %.2f, \"vs_jemalloc\": %.4f,\n"
			     " \"vs_jemalloc_rounds\": [%.4f, %.4f],\n"
			     " \"steady_dm_changes\": %llu, \"steady_allocs\": %llu, \"dm_changes_per_1000_allocs\": %.4f,\n"
			     " \"threads1_ops_per_s\": %.0f, \"threads2_ops_per_s\": %.0f, \"thread_scaling\": %.4f,\n"
			     " \"jemalloc_threads1_ops_per_s\": %.0f, \"jemalloc_threads2_ops_per_s\": %.0f, \"jemalloc_thread_scaling\": %.4f,\n"
			     " \"cache_peak_chunks\": %zu}\n",
			     o.real ? "real" : "sim", o.secret ? "secret" : "text", o.live, o.steps, o.rounds, (unsigned long long)o.seed, f.speed.a_ns, f.speed.b_ns, vs,
			     f.speed.ratio_lo, f.speed.ratio_hi,
			     (unsigned long long)f.steady_dm_changes, (unsigned long long)f.steady_allocs, f.dm_per_1000,
			     f.cache_threads.t1_ops, f.cache_threads.t2_ops, scaling, f.jemalloc_threads.t1_ops, f.jemalloc_threads.t2_ops,
			     f.jemalloc_threads.ratio, f.cache_peak_chunks);
		std::fclose(out);
	}
	return 0;
}
