// Security properties on the real backend: no writable+executable address
// after any phase; metadata never inside managed memory (every chunk alias
// made PROT_NONE while a churn runs, in a forked child: nothing faults); the
// process's VMA count stays proportional to chunks with 1 M live allocations,
// while the naive peer (per-allocation pages and protection) needs VMAs per
// allocation and would exhaust vm.max_map_count.
#include <doctest/doctest.h>

#include <fstream>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <unmapped_alloc/mapping/smaps.h>

#include "peers/naive.h"
#include "reliability_fixture.h"
#include "workload/bpf_size_mix.h"

using namespace ua;
using real = linux_backend;

namespace {

std::uint64_t vmas()
{
	std::uint64_t n = 0;
	REQUIRE(smaps::count_vmas(&n) == 0);
	return n;
}

/*
 * VMAs that map the backend's memfd (the direct-map view and every alias).
 * Counting these, not every VMA, keeps the figure free of the mappings a
 * sanitizer runtime or the C library makes meanwhile.
 */
std::uint64_t backend_vmas()
{
	std::string text;
	REQUIRE(smaps::read_proc_file("/proc/self/maps", &text) == 0);
	std::uint64_t n = 0;
	smaps::for_each_vma(text, [&](const smaps::vma &v) noexcept {
		if (v.path.find("unmapped_alloc-physmem") != std::string_view::npos)
			n++;
	});
	return n;
}

std::uint64_t max_map_count()
{
	std::ifstream f("/proc/sys/vm/max_map_count");
	std::uint64_t n = 65530;
	f >> n;
	return n;
}

}  // namespace

TEST_CASE("security: metadata never lives in managed memory: churn with every chunk alias PROT_NONE")
{
	machine<real> m(32768); /* 128 MiB */
	REQUIRE(m.backend.ok());
	cache_config cfg = text_cache_config();
	cfg.spare_chunks = 64;
	unmapped_cache<real> c(m, cfg);
	std::mt19937_64 rng(3);
	std::vector<void *> live;
	for (int i = 0; i < 20000; i++) {
		auto r = c.alloc(workload::bpf_size(rng), 64);
		REQUIRE(r.ok());
		live.push_back(r.value);
	}
	CHECK(smaps::find_wx_mapping() == "");
	std::set<std::uintptr_t> chunks;
	for (void *p : live)
		chunks.insert(align_down(reinterpret_cast<std::uintptr_t>(p), chunk_size));
	/* No metadata the cache can reach from here is inside a chunk. */
	auto inside = [&](const void *p) {
		return chunks.count(align_down(reinterpret_cast<std::uintptr_t>(p), chunk_size)) != 0;
	};
	CHECK(!inside(&c));
	CHECK(!inside(live.data()));
	/*
	 * In this process, not a child: a child of fork() may not use its
	 * parent's cache (cache/fork.h). A touch of alias memory while every
	 * alias is PROT_NONE is a SIGSEGV, which fails the test run.
	 */
	for (std::uintptr_t a : chunks)
		REQUIRE(m.backend.protect_alias(a, chunk_size, prot::none) == 0);
	int bad = 0;
	{
		std::mt19937_64 r2(4);
		for (int i = 0; i < 200000 && bad == 0; i++) {
			std::size_t k = r2() % live.size();
			if (c.free(live[k]) != error::ok) {
				bad = 4;
				break;
			}
			auto r = c.alloc(workload::bpf_size(r2), 64);
			if (!r.ok()) {
				bad = 5;
				break;
			}
			live[k] = r.value;
			/* a new chunk the churn took is mapped normally: hide it too */
			std::uintptr_t a = align_down(reinterpret_cast<std::uintptr_t>(r.value), chunk_size);
			if (chunks.insert(a).second && m.backend.protect_alias(a, chunk_size, prot::none) != 0)
				bad = 3;
			if (c.find_allocation(r.value).value.addr != reinterpret_cast<std::uintptr_t>(r.value))
				bad = 6;
		}
		if (bad == 0 && !c.check_consistency().empty())
			bad = 7;
	}
	for (std::uintptr_t a : chunks)
		if (m.backend.alias_prot(a))
			REQUIRE(m.backend.protect_alias(a, chunk_size, prot::rx) == 0);
	CHECK(bad == 0);
	for (void *p : live)
		REQUIRE(c.free(p) == error::ok);
	CHECK(smaps::find_wx_mapping() == "");
}

TEST_CASE("security: 1 M live allocations keep the VMA count proportional to chunks")
{
	machine<real> m(65536); /* 256 MiB */
	REQUIRE(m.backend.ok());
	const std::uint64_t before = backend_vmas();
	cache_config cfg = text_cache_config();
	cfg.nr_shards = 1;
	{
		unmapped_cache<real> c(m, cfg);
		std::vector<void *> live;
		live.reserve(1000000);
		for (int i = 0; i < 1000000; i++) {
			auto r = c.alloc(64, 64);
			REQUIRE(r.ok());
			live.push_back(r.value);
		}
		const std::uint64_t during = backend_vmas();
		const std::uint64_t chunks = c.stats().chunks;
		MESSAGE("1 M live allocations: " << chunks << " chunks, backend VMAs " << before << " -> " << during
						 << ", process VMAs " << vmas() << " (vm.max_map_count " << max_map_count() << ")");
		/* One alias per chunk, and the direct-map view split at most twice around each. */
		CHECK(during - before <= 3 * chunks + 2);
		CHECK(vmas() < max_map_count() / 10);
		CHECK(smaps::find_wx_mapping() == "");
		for (void *p : live)
			REQUIRE(c.free(p) == error::ok);
		c.shrink();
	}
	CHECK(backend_vmas() <= before + 1);
}

TEST_CASE("security: the naive peer needs VMAs per allocation and would exhaust vm.max_map_count")
{
	machine<real> m(16384);
	REQUIRE(m.backend.ok());
	peers::naive_peer<real> naive(m, {.use = peers::naive_use::secretmem});
	const std::uint64_t before = backend_vmas();
	std::vector<std::uintptr_t> live;
	/* Every other page, so no two allocations' direct-map changes merge into one VMA. */
	for (int i = 0; i < 200; i++) {
		auto r = naive.alloc(64, 64);
		REQUIRE(r.ok());
		live.push_back(r.value);
	}
	const double per_alloc = double(backend_vmas() - before) / double(live.size());
	const double needed = per_alloc * 1e6;
	MESSAGE("naive: " << per_alloc << " VMAs per allocation; 1 M allocations need about " << needed
			  << " VMAs, vm.max_map_count is " << max_map_count());
	CHECK(per_alloc >= 1.0); /* at least its own alias */
	CHECK(needed > double(max_map_count()));
	for (std::uintptr_t p : live)
		REQUIRE(naive.free(p) == error::ok);
}
