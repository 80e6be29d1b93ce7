// SPDX-License-Identifier: MIT
/*
 * userspace_bench - the library's caches on real memory against the
 * allocators userspace reaches for, measured side by side in one run.
 *
 * Two groups, each at every live size of --live (1 K, 10 K, 100 K, 1 M):
 *   text    the BPF size mix (bench/workload/bpf_size_mix.h), 64-byte
 *           aligned: the text cache on the real backend (a memfd,
 *           mapping/linux_backend.h), on each write path (the backend's
 *           pwrite(), the default; a read-write, never executable alias:
 *           cache_config::write), with and without writing the program
 *           after each allocation; asmjit's JitAllocator with dual mapping
 *           and fill, with and without writing; jemalloc with its thread
 *           cache and mimalloc (neither W^X: ceilings); the text cache on
 *           the simulated backend.
 *   secret  sizes log-uniform in [16, 4096] B, 16-byte aligned: the secret
 *           cache on the real backend, OpenSSL's secure heap, libsodium's
 *           sodium_malloc, jemalloc and mimalloc; and the same allocators
 *           holding only 32-byte secrets ("secret32"), for the overhead per
 *           32-byte secret.
 * Every member of a group holds its live set at once. The steady state frees
 * a random live allocation and allocates a new one (bench/rounds.h's turns,
 * one operation sequence for the whole group); round r runs the next steps on
 * every member in turn, starting with member r mod n, each turn after a tenth
 * of its steps untimed. A figure is the median over rounds of ns per step
 * (one free and one allocation); a ratio is the median over rounds of the
 * per-round ratio to the group's first member (the library's cache), with
 * the range of the rounds beside it.
 *
 * Footprint, measured around each member's construction and fill: the
 * change of the process's VmRSS and VmLck (/proc/self/status) and of its VMA
 * count (/proc/self/maps). "held" is what the allocator took from the system:
 * for the library, its chunks (2 MiB each) and metadata, since its real
 * backend's memfd is the machine's physical memory, populated when the
 * machine is built, before the window; for the others, the RSS change
 * (OpenSSL's secure heap is created inside the window: its mlock()ed arena is
 * what it holds), except jemalloc, whose change of "stats.resident" is
 * read, since it keeps pages a previous live set used. Pages of jemalloc and
 * mimalloc that nothing touched (the benchmark does not write to their
 * memory) are not resident, so their overhead can come out below zero. Overhead per live allocation = (held - requested bytes) /
 * live allocations, where requested is the sum of the fill's sizes.
 *
 * Members that cannot run at a live size are left out with the reason
 * printed: sodium_malloc maps every allocation on its own (4 VMAs), bounded
 * by vm.max_map_count (at 10 K live it failed once the process had other
 * mappings too); asmjit above --asmjit-max-live (the time its
 * allocation search takes at that size); any member whose estimated memory
 * does not fit the budget (--mem-gib, default 60% of MemAvailable), given
 * first to the rows the goals compare (the write-alias rows, asmjit, the
 * simulated cache, jemalloc), then to the rest in the order listed.
 *
 * Usage: userspace_bench [--live N,N,...] [--steps N] [--rounds R] [--seed S]
 *                        [--group text|secret|all] [--asmjit-max-live N] [--mem-gib G] [--json FILE]
 *                        [--only ROW]...   (just the rows named, e.g. for a profiler)
 *                        [--secret-granule B] (the secret cache's granule, for an A/B; default
 *                                              secret_cache_config()'s)
 */
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <unmapped_alloc/unmapped_alloc.h>

#include "args.h"
#include "rounds.h"
#include "userspace_heaps.h"

namespace {

using ua::bench::step_sequence;

struct options {
	std::vector<std::size_t> live{1000, 10000, 100000, 1000000};
	std::size_t steps = 200000;
	std::size_t rounds = 10;
	std::uint64_t seed = 1;
	std::string group = "all";
	std::size_t asmjit_max_live = 100000;
	double mem_gib = 0;
	const char *json = nullptr;
	std::vector<std::string> only; /* --only: run just these rows (for profilers) */
	std::size_t secret_granule = 0; /* --secret-granule: the secret cache's granule (0: secret_cache_config()'s) */
};

/* ---- the process's footprint ---------------------------------------- */

struct footprint {
	long long rss = 0, locked = 0, vmas = 0;
};

long long status_kib(const std::string &text, const char *key)
{
	auto at = text.find(key);
	return at == std::string::npos ? 0 : std::atoll(text.c_str() + at + std::strlen(key));
}

footprint read_footprint()
{
	std::string text;
	footprint f;
	if (ua::smaps::read_proc_file("/proc/self/status", &text) == 0) {
		f.rss = status_kib(text, "VmRSS:") * 1024;
		f.locked = status_kib(text, "VmLck:") * 1024;
	}
	std::uint64_t n = 0;
	if (ua::smaps::count_vmas(&n) == 0)
		f.vmas = (long long)n;
	return f;
}

double mem_available_gib()
{
	std::string text;
	if (ua::smaps::read_proc_file("/proc/meminfo", &text) != 0)
		return 0;
	return double(status_kib(text, "MemAvailable:")) / (1024.0 * 1024.0);
}

long max_map_count()
{
	std::string text;
	return ua::smaps::read_proc_file("/proc/sys/vm/max_map_count", &text) == 0 ? std::atol(text.c_str()) : 65530;
}

/* ---- members ----------------------------------------------------------- */

/* One allocator of a group, type-erased per turn (the steps themselves are not). */
struct member {
	std::string name;
	virtual ~member() = default;
	virtual void start() = 0; /* construct and fill; the footprint window */
	virtual double turn(std::size_t warm, std::size_t n) = 0;
	virtual void stop() = 0;  /* drain and destroy */
	virtual long long own_held() const { return -1; } /* -1: use the RSS change */
	footprint delta;
	long long held = 0;
};

template <class Heap>
struct member_of : member {
	std::function<std::unique_ptr<Heap>()> make;
	bool construct_counted;
	const step_sequence &seq;
	std::unique_ptr<Heap> heap;
	std::unique_ptr<ua::bench::turns<Heap>> t;
	std::function<void()> after_stop;

	member_of(std::string n, const step_sequence &s, std::function<std::unique_ptr<Heap>()> mk, bool counted,
		  std::function<void()> after = {})
		: make(std::move(mk)), construct_counted(counted), seq(s), after_stop(std::move(after))
	{
		name = std::move(n);
	}
	void start() override
	{
		if (after_stop)
			after_stop(); /* what earlier live sets left behind goes back first */
		if (!construct_counted)
			heap = make();
		long long r0 = resident();
		footprint f0 = read_footprint();
		if (construct_counted)
			heap = make();
		t = std::make_unique<ua::bench::turns<Heap>>(*heap, seq, name.c_str());
		/* the table of live pointers is the benchmark's, not the allocator's */
		footprint f1 = read_footprint();
		t->fill();
		footprint f2 = read_footprint();
		delta = {f2.rss - f1.rss + (f1.rss - f0.rss) * construct_counted, f2.locked - f0.locked, f2.vmas - f0.vmas};
		long long own = own_held();
		/* VmRSS is approximate (per-CPU counters): an mlock()ed arena is resident whole. */
		held = own >= 0 ? own : r0 >= 0 ? resident() - r0 : std::max(delta.rss, delta.locked);
	}
	/* The allocator's own count of its resident memory, or -1 when it keeps none. */
	static long long resident()
	{
		if constexpr (requires { Heap::resident_bytes(); })
			return Heap::resident_bytes();
		return -1;
	}
	double turn(std::size_t warm, std::size_t n) override { return 2 * t->turn(warm, n); }
	void stop() override
	{
		t->drain();
		t.reset();
		heap.reset();
		if (after_stop)
			after_stop();
	}
	long long own_held() const override
	{
		if constexpr (requires(const Heap &h) { h.held_bytes(); })
			return (long long)heap->held_bytes();
		return -1;
	}
};

/* ---- sequences --------------------------------------------------------- */

std::size_t secret_size(std::mt19937_64 &rng)
{
	std::uniform_real_distribution<double> u01(0.0, 1.0);
	return std::min<std::size_t>(4096, std::size_t(16.0 * std::pow(256.0, u01(rng))));
}

step_sequence make_sequence(const std::string &group, std::size_t live, std::size_t steps, std::uint64_t seed)
{
	if (group == "text")
		return ua::bench::make_bpf_sequence(live, steps, seed);
	std::mt19937_64 rng(seed);
	step_sequence s;
	auto size = [&] { return group == "secret32" ? std::size_t(32) : secret_size(rng); };
	for (std::size_t i = 0; i < live; i++)
		s.fill.push_back(size());
	for (std::size_t i = 0; i < steps; i++) {
		s.sizes.push_back(size());
		s.victims.push_back(std::size_t(rng() % live));
	}
	return s;
}

std::size_t sum(const std::vector<std::size_t> &v)
{
	std::size_t t = 0;
	for (std::size_t x : v)
		t += x;
	return t;
}

std::size_t pow2_at_least(std::size_t n)
{
	std::size_t p = 1;
	while (p < n)
		p <<= 1;
	return p;
}

/* A real machine for a live set of `bytes`: room for the arena's spread in the steady state. */
std::uint64_t machine_pages(std::size_t bytes)
{
	std::uint64_t b = std::uint64_t(bytes) * 8 / 5 + (std::uint64_t{128} << 20);
	b = (b + ua::chunk_size - 1) / ua::chunk_size * ua::chunk_size;
	return b >> ua::page_shift;
}

/* ---- one group at one live size ------------------------------------- */

struct result_row {
	std::string name;
	double ns = 0, ratio = 0, lo = 0, hi = 0;
	footprint delta;
	long long held = 0;
	double overhead = 0;
};

struct group_result {
	std::string group;
	std::size_t live = 0, steps = 0;
	std::vector<result_row> rows;
	std::vector<std::string> left_out;
};

struct candidate {
	std::unique_ptr<member> m;
	double gib; /* estimated memory */
	std::string excluded;
	int priority = 0; /* the memory budget goes to lower values first */
};

std::vector<candidate> make_members(const std::string &group, const step_sequence &s, const options &o)
{
	std::vector<candidate> c;
	std::size_t live = s.fill.size(), bytes = sum(s.fill);
	double gib = double(bytes) / double(1 << 30);
	double machine_gib = double(machine_pages(bytes) << ua::page_shift) / double(1 << 30);
	int next_priority = 0;
	auto add = [&](member *m, double g, std::string excl = {}, int prio = -1) {
		c.push_back({std::unique_ptr<member>(m), g, std::move(excl), prio >= 0 ? prio : 100 + next_priority++});
	};
	using real = ua::linux_backend;
	using sim = ua::sim_direct_map;
	std::string sodium_excl;
	/* 4 VMAs per allocation as measured (the two guard pages, the canary page, the data); half the limit leaves room for the rest. */
	if (long vmas = 4 * long(live) + read_footprint().vmas; vmas > max_map_count() / 2)
		sodium_excl = "one mapping per allocation (4 VMAs): " + std::to_string(4 * live) + " VMAs would pass half of vm.max_map_count " +
			      std::to_string(max_map_count());
	if (group == "text") {
		auto cfg = ua::text_cache_config("text");
		auto alias_cfg = cfg;
		alias_cfg.write = ua::write_path::writable_alias;
		std::uint64_t pages = machine_pages(bytes);
		/* The rows the goals compare get the memory budget first, then the ceilings, then the default path's rows. */
		add(new member_of<ua::bench::ua_heap<real, false>>("ua text, real", s,
			[=] { return std::make_unique<ua::bench::ua_heap<real, false>>(pages, cfg, 64); }, false), machine_gib, {}, 5);
		add(new member_of<ua::bench::ua_heap<real, true>>("ua text, real, + write", s,
			[=] { return std::make_unique<ua::bench::ua_heap<real, true>>(pages, cfg, 64); }, false), machine_gib, {}, 6);
		add(new member_of<ua::bench::ua_heap<real, false>>("ua text, real, alias", s,
			[=] { return std::make_unique<ua::bench::ua_heap<real, false>>(pages, alias_cfg, 64); }, false), machine_gib, {}, 0);
		add(new member_of<ua::bench::ua_heap<real, true>>("ua text, real, alias + write", s,
			[=] { return std::make_unique<ua::bench::ua_heap<real, true>>(pages, alias_cfg, 64); }, false), machine_gib, {}, 1);
#if UA_BENCH_ASMJIT
		std::string aexcl = live > o.asmjit_max_live ? "above --asmjit-max-live " + std::to_string(o.asmjit_max_live) +
								   " (its steps slow down with the live set, ~9x the library's at 100 K)"
							     : std::string();
		add(new member_of<ua::bench::asmjit_heap<false>>("asmjit dual+fill", s,
			[] { return std::make_unique<ua::bench::asmjit_heap<false>>(); }, true), gib * 1.3, aexcl, 2);
		add(new member_of<ua::bench::asmjit_heap<true>>("asmjit dual+fill, + write", s,
			[] { return std::make_unique<ua::bench::asmjit_heap<true>>(); }, true), gib * 1.3, aexcl, 2);
#endif
#if UA_BENCH_JEMALLOC
		add(new member_of<ua::bench::jemalloc_heap>("jemalloc tcache (not W^X)", s,
			[] { return std::make_unique<ua::bench::jemalloc_heap>(ua::bench::jemalloc_heap{64}); }, true,
			&ua::bench::jemalloc_heap::release_all), gib * 1.3, {}, 4);
#endif
#if UA_BENCH_MIMALLOC
		add(new member_of<ua::bench::mimalloc_heap>("mimalloc (not W^X)", s,
			[] { return std::make_unique<ua::bench::mimalloc_heap>(ua::bench::mimalloc_heap{64}); }, true,
			&ua::bench::mimalloc_heap::release_all), gib * 1.3);
#endif
		/* The simulated machine: big enough, and its memory is not real. */
		std::uint64_t sim_pages = std::max<std::uint64_t>(std::uint64_t{64} << 18, pages * 2);
		add(new member_of<ua::bench::ua_heap<sim, false>>("ua text, sim", s,
			[=] { return std::make_unique<ua::bench::ua_heap<sim, false>>(sim_pages, cfg, 64); }, false), 0.05 + gib * 0.05, {}, 3);
	} else {
		auto cfg = ua::secret_cache_config("secret");
		if (o.secret_granule)
			cfg.granule = o.secret_granule;
		std::uint64_t pages = machine_pages(bytes);
		add(new member_of<ua::bench::ua_heap<real, false>>("ua secret, real", s,
			[=] { return std::make_unique<ua::bench::ua_heap<real, false>>(pages, cfg, 16); }, false), machine_gib);
#if UA_BENCH_OPENSSL
		/*
		 * The arena: a power of two, twice the live set's buddy-rounded bytes
		 * (a user sizes it for the peak); for 32-byte secrets, which cannot
		 * fragment a buddy allocator, the least power of two that holds them.
		 */
		std::size_t rounded = 0;
		for (std::size_t x : s.fill)
			rounded += pow2_at_least(std::max<std::size_t>(x, 16));
		std::size_t arena = pow2_at_least(group == "secret32" ? rounded : 2 * rounded);
		add(new member_of<ua::bench::openssl_heap>("openssl secure heap", s,
			[=] { return std::make_unique<ua::bench::openssl_heap>(arena, 16); }, true), double(arena) / double(1 << 30));
#endif
#if UA_BENCH_SODIUM
		add(new member_of<ua::bench::sodium_heap>("sodium_malloc", s,
			[] { return std::make_unique<ua::bench::sodium_heap>(); }, true), double(live) * 4 * 4096 / double(1 << 30) + gib,
			sodium_excl);
#endif
#if UA_BENCH_JEMALLOC
		add(new member_of<ua::bench::jemalloc_heap>("jemalloc tcache", s,
			[] { return std::make_unique<ua::bench::jemalloc_heap>(ua::bench::jemalloc_heap{16}); }, true,
			&ua::bench::jemalloc_heap::release_all), gib * 1.3);
#endif
#if UA_BENCH_MIMALLOC
		add(new member_of<ua::bench::mimalloc_heap>("mimalloc", s,
			[] { return std::make_unique<ua::bench::mimalloc_heap>(ua::bench::mimalloc_heap{16}); }, true,
			&ua::bench::mimalloc_heap::release_all), gib * 1.3);
#endif
	}
	return c;
}

group_result run_group(const std::string &group, std::size_t live, const options &o, double budget_gib)
{
	group_result g;
	g.group = group;
	g.live = live;
	/* Fewer steps for smaller live sets would not reach a steady state any sooner: the same count everywhere. */
	g.steps = o.steps;
	step_sequence s = make_sequence(group, live, ua::bench::sequence_steps(o.steps, o.rounds), o.seed);
	std::vector<candidate> cands = make_members(group, s, o);
	std::vector<member *> ms;
	double used = 0;
	std::vector<candidate *> by_priority;
	for (auto &c : cands)
		by_priority.push_back(&c);
	std::stable_sort(by_priority.begin(), by_priority.end(), [](const candidate *a, const candidate *b) { return a->priority < b->priority; });
	for (candidate *cp : by_priority) {
		candidate &c = *cp;
		if (!o.only.empty() && std::find(o.only.begin(), o.only.end(), c.m->name) == o.only.end())
			c.excluded = "not named by --only";
		if (c.excluded.empty() && used + c.gib > budget_gib) {
			char why[160];
			std::snprintf(why, sizeof(why), "memory: needs ~%.2f GiB, %.2f GiB of the %.2f GiB budget left", c.gib, budget_gib - used,
				      budget_gib);
			c.excluded = why;
		}
		if (!c.excluded.empty()) {
			g.left_out.push_back(c.m->name + ": " + c.excluded);
			continue;
		}
		used += c.gib;
	}
	for (auto &c : cands) /* in the order listed */
		if (c.excluded.empty())
			ms.push_back(c.m.get());
	if (ms.empty())
		return g;
	for (member *m : ms)
		m->start();
	std::size_t n = ms.size(), warm = ua::bench::warm_steps(o.steps, o.rounds);
	std::vector<std::vector<double>> ns(n), ratio(n);
	for (std::size_t r = 0; r < o.rounds; r++) {
		std::size_t k = o.steps / o.rounds + (r < o.steps % o.rounds);
		std::vector<double> t(n);
		for (std::size_t i = 0; i < n; i++) {
			std::size_t j = (r + i) % n;
			t[j] = ms[j]->turn(warm, k);
		}
		for (std::size_t j = 0; j < n; j++) {
			ns[j].push_back(t[j]);
			ratio[j].push_back(t[j] / t[0]);
		}
	}
	std::size_t requested = sum(s.fill);
	for (std::size_t j = 0; j < n; j++) {
		result_row row;
		row.name = ms[j]->name;
		row.ns = ua::bench::median(ns[j]);
		row.ratio = ua::bench::median(ratio[j]);
		row.lo = *std::min_element(ratio[j].begin(), ratio[j].end());
		row.hi = *std::max_element(ratio[j].begin(), ratio[j].end());
		row.delta = ms[j]->delta;
		row.held = ms[j]->held;
		row.overhead = (double(row.held) - double(requested)) / double(live);
		g.rows.push_back(row);
	}
	for (member *m : ms)
		m->stop();
	return g;
}

const char *live_label(std::size_t live, char *buf, std::size_t n)
{
	if (live % 1000000 == 0)
		std::snprintf(buf, n, "%zu M", live / 1000000);
	else if (live % 1000 == 0)
		std::snprintf(buf, n, "%zu K", live / 1000);
	else
		std::snprintf(buf, n, "%zu", live);
	return buf;
}

void print_group(const group_result &g)
{
	char lb[32];
	std::printf("\n%s, %s live, %zu steps (median of rounds; ratio = ns / first row's ns):\n", g.group.c_str(),
		    live_label(g.live, lb, sizeof(lb)), g.steps);
	std::printf("| %-28s | %9s | %8s | %15s | %13s | %10s | %8s | %12s | %12s |\n", "allocator", "ns/step", "ratio", "rounds", "overhead B/live",
		    "held MiB", "VMAs", "mlocked MiB", "RSS MiB");
	for (const result_row &r : g.rows)
		std::printf("| %-28s | %9.0f | %8.3f | %6.3f-%-8.3f | %15.1f | %10.1f | %8lld | %12.1f | %12.1f |\n", r.name.c_str(), r.ns,
			    r.ratio, r.lo, r.hi, r.overhead, double(r.held) / 1048576.0, r.delta.vmas, double(r.delta.locked) / 1048576.0,
			    double(r.delta.rss) / 1048576.0);
	for (const std::string &s : g.left_out)
		std::printf("  left out: %s\n", s.c_str());
}

const result_row *find_row(const group_result &g, const char *name)
{
	for (const result_row &r : g.rows)
		if (r.name == name)
			return &r;
	return nullptr;
}

/* The goals, each a ratio of this run. */
void print_goals(const std::vector<group_result> &all)
{
	std::printf("\ngoals:\n");
	for (const group_result &g : all) {
		char lb[32];
		live_label(g.live, lb, sizeof(lb));
		auto pair = [&](const char *a, const char *b, const char *what, bool at_least, double target) {
			const result_row *x = find_row(g, a), *y = find_row(g, b);
			if (!x || !y)
				return;
			double ratio = y->ns / x->ns;
			if (!at_least)
				ratio = x->ns / y->ns;
			bool met = at_least ? ratio >= target : ratio <= target;
			std::printf("  %-8s %5s: %-58s %.3f (target %s %.1f) %s\n", g.group.c_str(), lb, what, ratio, at_least ? ">=" : "<=", target,
				    met ? "met" : "MISSED");
		};
		if (g.group == "text") {
			pair("ua text, real", "asmjit dual+fill", "asmjit / ua text real (backend write path)", true, 2.0);
			pair("ua text, real, + write", "asmjit dual+fill, + write", "asmjit / ua text real, program written (backend)", true, 2.0);
			pair("ua text, real, alias", "asmjit dual+fill", "asmjit / ua text real (write alias)", true, 2.0);
			pair("ua text, real, alias + write", "asmjit dual+fill, + write", "asmjit / ua text real, program written (alias)", true, 2.0);
			if (g.live == 100000)
				pair("ua text, sim", "jemalloc tcache (not W^X)", "ua text sim / jemalloc tcache", false, 1.0);
		} else if (g.group == "secret") {
			pair("ua secret, real", "openssl secure heap", "openssl / ua secret real", true, 1.0);
		} else if (g.group == "secret32") {
			const result_row *x = find_row(g, "ua secret, real"), *y = find_row(g, "openssl secure heap");
			if (x && y)
				std::printf("  %-8s %5s: %-58s %.1f vs %.1f B %s\n", g.group.c_str(), lb, "overhead per 32-byte secret, ua vs openssl",
					    x->overhead, y->overhead, x->overhead <= y->overhead ? "met" : "MISSED");
			pair("ua secret, real", "openssl secure heap", "openssl / ua secret real (32-byte)", true, 1.0);
		}
	}
}

void write_json(const char *path, const options &o, const std::vector<group_result> &all)
{
	FILE *out = std::fopen(path, "w");
	if (!out) {
		std::fprintf(stderr, "userspace_bench: cannot write %s: %s\n", path, std::strerror(errno));
		std::exit(1);
	}
	std::fprintf(out, "{\"steps\": %zu, \"rounds\": %zu, \"seed\": %llu, \"groups\": [\n", o.steps, o.rounds, (unsigned long long)o.seed);
	for (std::size_t i = 0; i < all.size(); i++) {
		const group_result &g = all[i];
		std::fprintf(out, " {\"group\": \"%s\", \"live\": %zu, \"rows\": [\n", g.group.c_str(), g.live);
		for (std::size_t j = 0; j < g.rows.size(); j++) {
			const result_row &r = g.rows[j];
			std::fprintf(out,
				     "  {\"allocator\": \"%s\", \"ns_per_step\": %.1f, \"ratio\": %.4f, \"ratio_rounds\": [%.4f, %.4f], "
				     "\"overhead_bytes_per_live\": %.1f, \"held_bytes\": %lld, \"vmas\": %lld, \"mlocked_bytes\": %lld, \"rss_bytes\": %lld}%s\n",
				     r.name.c_str(), r.ns, r.ratio, r.lo, r.hi, r.overhead, r.held, r.delta.vmas, r.delta.locked, r.delta.rss,
				     j + 1 < g.rows.size() ? "," : "");
		}
		std::fprintf(out, " ], \"left_out\": [");
		for (std::size_t j = 0; j < g.left_out.size(); j++)
			std::fprintf(out, "%s\"%s\"", j ? ", " : "", g.left_out[j].c_str());
		std::fprintf(out, "]}%s\n", i + 1 < all.size() ? "," : "");
	}
	std::fprintf(out, "]}\n");
	std::fclose(out);
}

[[noreturn]] void usage(const char *argv0)
{
	std::fprintf(stderr,
		     "usage: %s [--live N,N,...] [--steps N] [--rounds R] [--seed S] [--group text|secret|all]\n"
		     "          [--asmjit-max-live N] [--mem-gib G] [--json FILE] [--only ROW]... [--secret-granule B]\n",
		     argv0);
	std::exit(2);
}

}  // namespace

int main(int argc, char **argv)
{
	options o;
	ua::bench::arg_reader args(argc, argv, [&](const std::string &) { usage(argv[0]); });
	while (args.next()) {
		const std::string &a = args.option();
		if (ua::bench::rounds_option(args, o.steps, o.rounds, o.seed))
			continue;
		if (a == "--live") {
			o.live.clear();
			std::stringstream ss(args.value());
			for (std::string x; std::getline(ss, x, ',');)
				o.live.push_back(std::strtoull(x.c_str(), nullptr, 10));
		} else if (a == "--group")
			o.group = args.value();
		else if (a == "--asmjit-max-live")
			o.asmjit_max_live = args.count();
		else if (a == "--mem-gib")
			o.mem_gib = std::strtod(args.value(), nullptr);
		else if (a == "--json")
			o.json = args.value();
		else if (a == "--only")
			o.only.push_back(args.value());
		else if (a == "--secret-granule")
			o.secret_granule = args.count();
		else
			usage(argv[0]);
	}
	bool bad_live = o.live.empty();
	for (std::size_t l : o.live)
		bad_live |= l < 2;
	if (bad_live || o.rounds == 0 || o.steps < o.rounds || (o.group != "text" && o.group != "secret" && o.group != "all")) {
		std::fprintf(stderr, "userspace_bench: --live needs sizes of at least 2, --rounds positive and at most --steps, "
				     "--group text, secret or all\n");
		return 2;
	}
	if (o.secret_granule) {
		auto cfg = ua::secret_cache_config("secret");
		cfg.granule = o.secret_granule;
		if (const char *why = cfg.invalid_reason()) {
			std::fprintf(stderr, "userspace_bench: --secret-granule %zu: %s\n", o.secret_granule, why);
			return 2;
		}
	}
	double budget = o.mem_gib > 0 ? o.mem_gib : 0.6 * mem_available_gib();
	std::printf("userspace_bench: %zu steady-state steps per live size in %zu alternating rounds, seed %llu, memory budget %.1f GiB\n", o.steps,
		    o.rounds, (unsigned long long)o.seed, budget);
	std::printf("secret cache granule: %zu B%s\n", o.secret_granule ? o.secret_granule : ua::secret_cache_config().granule,
		    o.secret_granule ? " (--secret-granule)" : "");
	std::printf("built with:%s%s%s%s%s\n", UA_BENCH_ASMJIT ? " asmjit" : "", UA_BENCH_OPENSSL ? " openssl" : "",
		    UA_BENCH_SODIUM ? " libsodium" : "", UA_BENCH_JEMALLOC ? " jemalloc" : "", UA_BENCH_MIMALLOC ? " mimalloc" : "");
	std::vector<group_result> all;
	std::vector<std::string> groups;
	if (o.group != "secret")
		groups.push_back("text");
	if (o.group != "text") {
		groups.push_back("secret");
		groups.push_back("secret32");
	}
	for (const std::string &g : groups)
		for (std::size_t live : o.live) {
			all.push_back(run_group(g, live, o, budget));
			print_group(all.back());
			std::fflush(stdout);
		}
	print_goals(all);
	if (o.json)
		write_json(o.json, o, all);
	return 0;
}
