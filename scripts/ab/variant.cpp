// SPDX-License-Identifier: MIT
/*
 * scripts/ab/variant.cpp - compiled once per library tree, with -Dua=<name>
 * (the whole library and bench/ helpers move to their own namespace) and
 * -DAB_MAKE=ab_make_old or ab_make_new. Exactly the adapters and step
 * sequence of bench/arena_bench and bench/cache_bench (bench/heaps.h,
 * bench/rounds.h).
 */
#include <cstring>
#include <memory>

#include <unmapped_alloc/unmapped_alloc.h>

#include "heaps.h"
#include "plain_chunks.h"
#include "rounds.h"
#include "runner.h"

namespace {

struct arena_runner : ab_runner {
	ua::bench::step_sequence s;
	ua::bench::plain_chunks mem{std::size_t{16} << 30};
	ua::bench::arena_heap h{mem};
	ua::bench::turns<ua::bench::arena_heap> t;
	arena_runner(std::size_t live, std::size_t steps, unsigned long seed)
		: s(ua::bench::make_bpf_sequence(live, steps, seed)), t(h, s, "ab (arena)")
	{
	}
	void fill() override { t.fill(); }
	double turn(std::size_t w, std::size_t n) override { return t.turn(w, n); }
};

using sim = ua::sim_direct_map;

struct cache_runner : ab_runner {
	ua::bench::step_sequence s;
	std::unique_ptr<ua::machine<sim>> m = std::make_unique<ua::machine<sim>>(std::uint64_t{64} << 18); /* 64 GiB */
	ua::cache_config cfg = [] {
		ua::cache_config c = ua::text_cache_config("ab");
		c.nr_shards = 1;
		return c;
	}();
	ua::unmapped_cache<sim> c{*m, cfg};
	ua::bench::cache_heap<sim> h{c};
	ua::bench::turns<ua::bench::cache_heap<sim>> t;
	cache_runner(std::size_t live, std::size_t steps, unsigned long seed)
		: s(ua::bench::make_bpf_sequence(live, steps, seed)), t(h, s, "ab (cache)")
	{
	}
	void fill() override { t.fill(); }
	double turn(std::size_t w, std::size_t n) override { return t.turn(w, n); }
};

}  // namespace

ab_runner *AB_MAKE(const char *kind, std::size_t live, std::size_t steps, unsigned long seed)
{
	if (!std::strcmp(kind, "cache"))
		return new cache_runner(live, steps, seed);
	return new arena_runner(live, steps, seed);
}
