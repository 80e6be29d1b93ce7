/*
 * Randomized model test of the arena: at least 1,000,000 mixed alloc/free
 * operations (BPF size mix, random alignments) against a reference model (an
 * ordered map of live allocations). After every step: the new allocation is
 * aligned, inside one chunk of the arena, overlaps no live allocation, is the
 * size asked for (rounded to the granule; one granule more only while no
 * one-granule request has come), and the arena's whole-structure consistency
 * walk (bitmaps, tree, stats) passes.
 * UA_MODEL_OPS overrides the operation count (sanitizer builds use fewer).
 */
#include <doctest/doctest.h>

#include <cstdlib>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "arena_fixture.h"
#include "workload/bpf_size_mix.h"

using ua::chunk_size;
using ua::error;

namespace {

std::size_t model_ops()
{
	const char *e = std::getenv("UA_MODEL_OPS");
	return e ? std::strtoull(e, nullptr, 10) : 1000000;
}

std::size_t random_align(std::mt19937_64 &rng)
{
	unsigned r = rng() % 100;
	if (r < 70)
		return 1;
	if (r < 99)
		return std::size_t{1} << (3 + rng() % 14); /* 8 B .. 64 KiB */
	return std::size_t{1} << (17 + rng() % 5);         /* 128 KiB .. 2 MiB, rare */
}

/*
 * tiny_from: from this step on, 2% of the requests are of one granule or
 * less. Before the first of them the arena may absorb a one-granule tail
 * remainder into an allocation (arena.h); the model accepts exactly that
 * one extra granule then, and none after.
 */
void run_model(std::size_t granule, std::uint64_t seed, std::size_t ops, std::size_t tiny_from, bool expect_absorbed)
{
	ua::arena a(ua::arena_config{.granule = granule});
	ua_test::fake_chunks src;
	std::mt19937_64 rng(seed);
	std::map<std::uintptr_t, std::size_t> live; /* addr -> rounded size */
	std::vector<std::uintptr_t> keys;           /* for O(1) random choice */
	std::size_t live_bytes = 0, target = 50;
	std::size_t adds = 0, removes = 0, absorbed = 0;
	bool one_granule_seen = false;

	for (std::size_t i = 0; i < ops; i++) {
		if (i % 20000 == 0)
			target = 1 + rng() % 400; /* the live set breathes: chunks come and go */
		bool do_alloc = keys.empty() || (keys.size() < target ? rng() % 100 < 65 : rng() % 100 < 35);
		if (do_alloc) {
			std::size_t size = ua::workload::bpf_size(rng), align = random_align(rng);
			if (i >= tiny_from && rng() % 50 == 0)
				size = 1 + rng() % granule;
			auto r = a.alloc(size, align);
			if (r.err == error::no_space) {
				REQUIRE(a.add_chunk(src.get()) == error::ok);
				adds++;
				r = a.alloc(size, align);
			}
			REQUIRE(r.ok());
			std::uintptr_t p = r.value;
			std::size_t rs = ua::align_up(size, granule);
			one_granule_seen |= rs == granule;
			auto got = a.lookup(p);
			REQUIRE(got.ok());
			REQUIRE(got.value.addr == p);
			if (got.value.size != rs) {
				REQUIRE(!one_granule_seen);
				REQUIRE(got.value.size == rs + granule);
				rs += granule;
				absorbed++;
			}
			REQUIRE(p % (align < granule ? granule : align) == 0);
			std::uintptr_t base = a.lookup_chunk(p);
			REQUIRE(base != 0);
			REQUIRE(p + rs <= base + chunk_size);
			auto next = live.lower_bound(p);
			if (next != live.end())
				REQUIRE(p + rs <= next->first);
			if (next != live.begin())
				REQUIRE(std::prev(next)->first + std::prev(next)->second <= p);
			live.emplace(p, rs);
			keys.push_back(p);
			live_bytes += rs;
		} else {
			std::size_t k = rng() % keys.size();
			std::uintptr_t p = keys[k];
			keys[k] = keys.back();
			keys.pop_back();
			std::size_t rs = live[p];
			if (rs > granule && rng() % 64 == 0)
				REQUIRE(a.free(p + granule).err == error::interior_pointer);
			auto l = a.lookup(p + rng() % rs);
			REQUIRE(l.ok());
			REQUIRE(l.value.addr == p);
			REQUIRE(l.value.size == rs);
			auto f = a.free(p);
			REQUIRE(f.ok());
			REQUIRE(f.value.bytes == rs);
			live.erase(p);
			live_bytes -= rs;
			if (rng() % 64 == 0)
				REQUIRE(a.free(p).err == error::not_live);
			if (f.value.empty_chunk && rng() % 2) {
				REQUIRE(a.remove_chunk(f.value.empty_chunk) == error::ok);
				src.put(f.value.empty_chunk);
				removes++;
			}
		}
		REQUIRE(a.live_bytes() == live_bytes);
		REQUIRE(a.live_count() == live.size());
		std::string why = a.check_consistency();
		if (!why.empty())
			FAIL("step " << i << ": " << why);
	}
	INFO("chunks added " << adds << ", removed " << removes << ", slivers absorbed " << absorbed);
	CHECK(adds > 0);
	CHECK(removes > 0);
	CHECK((absorbed > 0) == expect_absorbed);
	for (auto &[p, s] : live)
		REQUIRE(a.free(p).ok());
	CHECK(a.live_bytes() == 0);
	CHECK(a.stats().empty_chunks == a.stats().chunks);
	CHECK(a.check_consistency() == "");
}

}  // namespace

TEST_CASE("arena model: 1M mixed operations, 64-byte granule")
{
	/* One-granule requests join half way: slivers are absorbed before, not after. */
	run_model(64, 1, model_ops(), model_ops() / 2, true);
}

TEST_CASE("arena model: page granule")
{
	/* The mix asks for single pages from the start: nothing is ever absorbed. */
	run_model(4096, 2, model_ops() / 10, model_ops() / 20, false);
}
