// Behaviour of unmapped_cache over both backends.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <random>
#include <thread>
#include <vector>

#include "cache_fixture.h"
#include "workload/bpf_size_mix.h"

using namespace ua;
using ua_test::fingerprint;
using ua_test::read_alias;

#define BACKENDS ua_test::sim_machine, ua_test::real_machine

namespace {

/* The direct-map state of the first frame behind an alias address. */
template <class Machine>
dm_state dm_state_of(Machine &m, const void *p)
{
	auto fr = m.backend.alias_frames(reinterpret_cast<std::uintptr_t>(p));
	REQUIRE(fr.has_value());
	return m.backend.direct_map_state(fr->pfn);
}

}  // namespace

TEST_CASE_TEMPLATE("cache: allocations are aligned, disjoint and found again", M, BACKENDS)
{
	auto m = M::make();
	unmapped_cache<typename M::backend> c(*m, text_cache_config());
	std::mt19937_64 rng(3);
	std::map<std::uintptr_t, std::size_t> live;
	for (int i = 0; i < 2000; i++) {
		std::size_t size = workload::bpf_size(rng), align = std::size_t{1} << (rng() % 13);
		auto r = c.alloc(size, align);
		REQUIRE(r.ok());
		auto a = reinterpret_cast<std::uintptr_t>(r.value);
		CHECK(a % std::max<std::size_t>(align, 64) == 0);
		auto next = live.lower_bound(a);
		if (next != live.end())
			REQUIRE(a + size <= next->first);
		if (next != live.begin())
			REQUIRE(std::prev(next)->first + std::prev(next)->second <= a);
		live[a] = size;
		CHECK(c.contains(r.value));
		auto f = c.find_allocation(static_cast<char *>(r.value) + size - 1);
		REQUIRE(f.ok());
		CHECK(f.value.addr == a);
		CHECK(f.value.size >= size);
	}
	CHECK(c.check_consistency() == "");
	auto s = c.stats();
	CHECK(s.live_count == 2000);
	for (auto &[a, n] : live)
		REQUIRE(c.free(reinterpret_cast<void *>(a)) == error::ok);
	CHECK(c.stats().live_count == 0);
	CHECK(c.check_consistency() == "");
}

TEST_CASE_TEMPLATE("cache: a chunk leaves the direct map whole, with one call and one flush", M, BACKENDS)
{
	auto m = M::make();
	auto before = m->backend.stats();
	std::uint64_t free_before = m->nr_free_pages();
	unmapped_cache<typename M::backend> c(*m, text_cache_config());
	auto r = c.alloc(100);
	REQUIRE(r.ok());
	CHECK(dm_state_of(*m, r.value) == dm_state::invalid);
	auto s = c.stats();
	CHECK(s.chunks == 1);
	CHECK(s.source.dm_changes == 1);
	CHECK(s.source.tlb_flushes == 1);
	CHECK(m->nr_free_pages() == free_before - pages_per_chunk);
	auto after = m->backend.stats();
	CHECK(after.direct_map_level2_splits == before.direct_map_level2_splits); /* no 2 MiB page split: the chunk changed as a whole */
	if (after.directmap_available)
		CHECK(after.directmap_2m_kb + after.directmap_1g_kb == before.directmap_2m_kb + before.directmap_1g_kb);
	/* Many more small allocations in the same chunk change nothing in the direct map. */
	for (int i = 0; i < 1000; i++)
		REQUIRE(c.alloc(64).ok());
	CHECK(c.stats().source.dm_changes == 1);
	CHECK(c.stats().chunks == 1);
}

TEST_CASE_TEMPLATE("cache: spare chunks, release beyond them and shrink restore the direct map", M, BACKENDS)
{
	auto m = M::make();
	auto before = m->backend.stats();
	std::uint64_t free_before = m->nr_free_pages();
	cache_config cfg = text_cache_config();
	cfg.spare_chunks = 1;
	cfg.nr_shards = 1;
	{
		unmapped_cache<typename M::backend> c(*m, cfg);
		/* Fill three chunks with 1 MiB allocations. */
		std::vector<void *> v;
		for (int i = 0; i < 6; i++) {
			auto r = c.alloc(1 << 20);
			REQUIRE(r.ok());
			v.push_back(r.value);
		}
		CHECK(c.stats().chunks == 3);
		auto fr = m->backend.alias_frames(reinterpret_cast<std::uintptr_t>(v[0]));
		REQUIRE(fr.has_value());
		for (void *p : v)
			REQUIRE(c.free(p) == error::ok);
		auto s = c.stats();
		CHECK(s.live_count == 0);
		CHECK(s.spare_chunks == 1); /* one kept, two given back */
		CHECK(s.chunks == 1);
		CHECK(s.source.released == 2);
		CHECK(m->nr_free_pages() == free_before - pages_per_chunk);
		/* Reuse of the spare takes no new direct-map change. */
		auto dm = s.source.dm_changes;
		auto r = c.alloc(4096);
		REQUIRE(r.ok());
		CHECK(c.stats().source.dm_changes == dm);
		CHECK(c.stats().spare_chunks == 0);
		REQUIRE(c.free(r.value) == error::ok);
		CHECK(c.stats().spare_chunks == 1);
		/* r's chunk is the spare now: held, but in no arena (its table tag is 0). */
		CHECK(c.contains(r.value));
		CHECK(c.free(r.value) == error::not_live);
		CHECK(c.free_deferred(r.value) == error::not_live);
		CHECK(c.find_allocation(r.value).err == error::not_live);
		char code[4] = {};
		CHECK(c.write(r.value, code, sizeof(code)) == error::not_live);
		/* The other chunks went back: their addresses are no longer the cache's. */
		int foreign = 0;
		for (void *p : v) {
			error e = c.free(p);
			CHECK((e == error::not_live || e == error::foreign_pointer));
			foreign += e == error::foreign_pointer;
		}
		CHECK(foreign == 4); /* two chunks of two allocations each */
		CHECK(c.check_consistency() == "");
		/* The shrinker gives the spare back; its frames are in the direct map again. */
		CHECK(c.shrink() == 1);
		CHECK(c.free(r.value) == error::foreign_pointer);
		CHECK_FALSE(c.contains(r.value));
		CHECK(m->backend.direct_map_state(fr->pfn) == dm_state::rw);
		CHECK(c.stats().chunks == 0);
		CHECK(m->nr_free_pages() == free_before);
		CHECK(c.check_consistency() == "");
	}
	auto after = m->backend.stats();
	CHECK(after.direct_map_level2_splits == before.direct_map_level2_splits);
	if (after.directmap_available) {
		/* Whole again: never more small mappings than before (release may even collapse some). */
		CHECK(after.directmap_4k_kb <= before.directmap_4k_kb);
		CHECK(after.directmap_1g_kb >= before.directmap_1g_kb);
	}
	CHECK(m->nr_free_pages() == free_before);
}

TEST_CASE_TEMPLATE("cache: allocations larger than a chunk take whole chunks at one contiguous alias", M, BACKENDS)
{
	auto m = M::make();
	std::uint64_t free_before = m->nr_free_pages();
	unmapped_cache<typename M::backend> c(*m, text_cache_config());
	auto r = c.alloc(3 * chunk_size + 5);
	REQUIRE(r.ok());
	auto a = reinterpret_cast<std::uintptr_t>(r.value);
	CHECK(a % chunk_size == 0);
	auto s = c.stats();
	CHECK(s.large_runs == 1);
	CHECK(s.chunks == 4);
	auto f = c.find_allocation(reinterpret_cast<void *>(a + 3 * chunk_size));
	REQUIRE(f.ok());
	CHECK(f.value.addr == a);
	CHECK(c.free(reinterpret_cast<void *>(a + chunk_size)) == error::interior_pointer);
	REQUIRE(c.free(r.value) == error::ok);
	CHECK(c.free(r.value) != error::ok);
	CHECK(c.stats().chunks == 0);
	CHECK(m->nr_free_pages() == free_before);
}

TEST_CASE_TEMPLATE("cache: no large allocation that vmalloc() would satisfy fails when no two free chunks are adjacent", M,
		   BACKENDS)
{
	auto m = M::make();
	const auto aged = ua_test::scatter_free_chunks(*m);
	const std::uint64_t free0 = m->nr_free_pages();
	const std::size_t nr_free = aged.freed.size();
	REQUIRE(nr_free >= 8);
	unmapped_cache<typename M::backend> c(*m, text_cache_config());
	/* Allocations of 2, 3, 5, 7, ... chunks (up to 1 GiB) until every free chunk is in one. */
	const std::size_t counts[] = {2, 3, 5, 7, 11, 64, 512};
	std::vector<std::pair<void *, std::size_t>> live;
	std::size_t left = nr_free;
	for (std::size_t i = 0; left >= 2; i++) {
		std::size_t n = std::min(left, counts[i % std::size(counts)]);
		CAPTURE(n);
		auto r = c.alloc(n * chunk_size - 100);
		REQUIRE(r.ok());
		auto a = reinterpret_cast<std::uintptr_t>(r.value);
		/* One write across the last two chunks, which are not adjacent in memory. */
		const char code[] = "\x0f\x0b across chunks";
		REQUIRE(c.write(reinterpret_cast<void *>(a + (n - 1) * chunk_size - 8), code, sizeof code) == error::ok);
		char back[sizeof code] = {};
		if (ua_test::read_alias<typename M::backend>(reinterpret_cast<const void *>(a + (n - 1) * chunk_size - 8), back,
							     sizeof back))
			CHECK(std::memcmp(back, code, sizeof code) == 0);
		auto f = c.find_allocation(reinterpret_cast<void *>(a + n * chunk_size - 1));
		REQUIRE(f.ok());
		CHECK(f.value.addr == a);
		CHECK(f.value.size == n * chunk_size);
		live.emplace_back(r.value, n);
		left -= n;
	}
	CHECK(c.check_consistency().empty());
	CHECK(m->nr_free_pages() == left * pages_per_chunk);
	/* Now there is no room: refused, and nothing changed. */
	const std::string before = fingerprint(c);
	CHECK(c.alloc(2 * chunk_size).err == error::no_memory);
	CHECK(fingerprint(c) == before);
	for (auto &[p, n] : live)
		REQUIRE(c.free(p) == error::ok);
	CHECK(c.stats().chunks == 0);
	CHECK(m->nr_free_pages() == free0);
	ua_test::free_blocks(*m, aged);
}

TEST_CASE_TEMPLATE("cache: bad input gets a clear error and changes nothing", M, BACKENDS)
{
	auto m = M::make();
	unmapped_cache<typename M::backend> c(*m, text_cache_config());
	unmapped_cache<typename M::backend> other(*m, secret_cache_config());
	auto p = c.alloc(1000);
	auto gone = c.alloc(256);
	auto q = other.alloc(64);
	REQUIRE((p.ok() && gone.ok() && q.ok()));
	REQUIRE(c.free(gone.value) == error::ok);
	const std::string before = fingerprint(c);
	char local = 0;
	CHECK(c.free(nullptr) == error::ok);
	CHECK(c.free(gone.value) == error::not_live);                         /* double free */
	CHECK(c.free(static_cast<char *>(p.value) + 64) == error::interior_pointer);
	CHECK(c.free(q.value) == error::foreign_pointer);                     /* another cache's */
	CHECK(c.free(&local) == error::foreign_pointer);                      /* from nowhere */
	CHECK(c.alloc(0).err == error::zero_size);
	CHECK(c.alloc(unmapped_cache<typename M::backend>::max_size() + 1).err == error::too_large);
	CHECK(c.alloc(64, 3).err == error::bad_alignment);
	CHECK(c.alloc(64, 0).err == error::bad_alignment);
	CHECK(c.alloc(64, 2 * chunk_size).err == error::bad_alignment);
	CHECK(c.alloc(64, 1, 0x80).err == error::bad_flags);
	CHECK(c.write(p.value, nullptr, 4) == error::null_pointer);
	char code[8] = {};
	CHECK(c.write(static_cast<char *>(p.value) + 1000, code, 64) == error::too_large); /* past the allocation */
	CHECK(c.write(gone.value, code, 4) == error::not_live);
	CHECK(c.free_deferred(gone.value) == error::not_live);
	CHECK(c.free_deferred(static_cast<char *>(p.value) + 128) == error::interior_pointer);
	CHECK(fingerprint(c) == before);
	CHECK(to_errno(c.alloc(0).err) == EINVAL);
	REQUIRE(other.free(q.value) == error::ok);
}

TEST_CASE_TEMPLATE("cache: ENOMEM is told apart from EINVAL and nothing leaks", M, BACKENDS)
{
	/* A 16 MiB machine: 8 chunks at most. */
	auto m = M::make(4096);
	std::uint64_t free_before = m->nr_free_pages();
	cache_config cfg = secret_cache_config();
	cfg.nr_shards = 1;
	{
		unmapped_cache<typename M::backend> c(*m, cfg);
		std::vector<void *> v;
		result<void *> r;
		while ((r = c.alloc(chunk_size)).ok())
			v.push_back(r.value);
		CHECK(r.err == error::no_memory);
		CHECK(to_errno(r.err) == ENOMEM);
		CHECK(!v.empty());
		CHECK(c.alloc(2 * chunk_size).err == error::no_memory);
		CHECK(c.check_consistency() == "");
		for (void *p : v)
			REQUIRE(c.free(p) == error::ok);
		/* ua_norefill: no chunk may be taken. */
		c.shrink();
		CHECK(c.alloc(64, 1, ua_norefill).err == error::no_memory);
		CHECK(c.stats().chunks == 0);
	}
	CHECK(m->nr_free_pages() == free_before);
}

TEST_CASE_TEMPLATE("cache: text is written through the write path and trap-filled when freed", M, BACKENDS)
{
	auto m = M::make();
	unmapped_cache<typename M::backend> c(*m, text_cache_config());
	auto r = c.alloc(64);
	REQUIRE(r.ok());
	unsigned char fresh[64];
	if (read_alias<typename M::backend>(r.value, fresh, 64))
		CHECK(std::count(fresh, fresh + 64, 0xcc) == 64); /* new chunks are trap-filled */
	const unsigned char code[] = {0xb8, 0x2a, 0x00, 0x00, 0x00, 0xc3};
	auto written = m->backend.stats().bytes_written;
	REQUIRE(c.write(r.value, code, sizeof code) == error::ok);
	CHECK(m->backend.stats().bytes_written == written + sizeof code);
	unsigned char back[sizeof code];
	if (read_alias<typename M::backend>(r.value, back, sizeof code))
		CHECK(std::memcmp(back, code, sizeof code) == 0);
	auto keep = c.alloc(64); /* keeps the chunk in use after the free below */
	REQUIRE(keep.ok());
	REQUIRE(c.free(r.value) == error::ok);
	CHECK(m->backend.stats().bytes_written >= written + sizeof code + 64); /* trap fill of the freed range */
	unsigned char after[64];
	if (read_alias<typename M::backend>(r.value, after, 64))
		CHECK(std::count(after, after + 64, 0xcc) == 64);
	CHECK(m->backend.alias_prot(reinterpret_cast<std::uintptr_t>(keep.value)) == prot::rx);
}

TEST_CASE_TEMPLATE("cache: secrets are zeroed when freed and their aliases are secured", M, BACKENDS)
{
	auto m = M::make();
	unmapped_cache<typename M::backend> c(*m, secret_cache_config());
	auto r = c.alloc(128, 1, ua_zero);
	auto keep = c.alloc(64);
	REQUIRE((r.ok() && keep.ok()));
	auto a = reinterpret_cast<std::uintptr_t>(r.value);
	CHECK(m->backend.alias_prot(a) == prot::rw);
	CHECK(m->backend.alias_secured(a));
	CHECK(dm_state_of(*m, r.value) == dm_state::invalid);
	if constexpr (M::backend::dereferenceable) {
		std::memset(r.value, 0x5a, 128);
		REQUIRE(c.free(r.value) == error::ok);
		unsigned char after[128];
		std::memcpy(after, r.value, 128);
		CHECK(std::count(after, after + 128, 0) == 128);
	} else {
		auto written = m->backend.stats().bytes_written;
		REQUIRE(c.free(r.value) == error::ok);
		CHECK(m->backend.stats().bytes_written == written + 128);
	}
}

TEST_CASE_TEMPLATE("cache: deferred frees wait for a grace period", M, BACKENDS)
{
	auto m = M::make();
	unmapped_cache<typename M::backend> c(*m, text_cache_config());
	auto r = c.alloc(200);
	auto keep = c.alloc(64);
	REQUIRE((r.ok() && keep.ok()));
	{
		rcu::read_guard rg; /* a reader that may still run this code */
		REQUIRE(c.free_deferred(r.value) == error::ok);
		CHECK(c.find_allocation(r.value).ok()); /* still there while the reader runs */
	}
	CHECK(c.free_deferred(r.value) == error::not_live); /* twice */
	CHECK(c.free(r.value) == error::not_live);           /* or freed directly meanwhile */
	rcu::barrier();
	CHECK(c.stats().deferred_pending == 0);
	CHECK(c.find_allocation(r.value).err == error::not_live);
	CHECK(c.stats().live_count == 1);
	CHECK(c.check_consistency() == "");
}

TEST_CASE_TEMPLATE("cache: churn on the BPF mix stays within a few chunks of its live set and splits nothing", M, BACKENDS)
{
	auto m = M::make();
	auto before = m->backend.stats();
	unmapped_cache<typename M::backend> c(*m, text_cache_config());
	std::mt19937_64 rng(11);
	std::vector<void *> live;
	std::size_t peak_live = 0, live_bytes = 0;
	std::vector<std::size_t> sizes;
	for (int i = 0; i < 50000; i++) {
		if (live.size() < 300 && (live.empty() || rng() % 2)) {
			std::size_t s = workload::bpf_size(rng);
			auto r = c.alloc(s, 64);
			REQUIRE(r.ok());
			live.push_back(r.value);
			sizes.push_back(s);
			live_bytes += s;
			peak_live = std::max(peak_live, live_bytes);
		} else {
			std::size_t k = rng() % live.size();
			REQUIRE(c.free(live[k]) == error::ok);
			live_bytes -= sizes[k];
			live[k] = live.back();
			sizes[k] = sizes.back();
			live.pop_back();
			sizes.pop_back();
		}
	}
	auto s = c.stats();
	std::size_t lower = (peak_live + chunk_size - 1) / chunk_size;
	CHECK(s.peak_chunks <= lower + 1 + c.config().nr_shards);
	/* Steady state: direct-map changes are rare (one per chunk acquired or released). */
	CHECK(s.source.dm_changes <= 2 * (s.source.acquired + s.source.released));
	CHECK(s.source.dm_changes * 1000 <= 50000);
	auto after = m->backend.stats();
	CHECK(after.direct_map_level2_splits == before.direct_map_level2_splits);
	for (void *p : live)
		REQUIRE(c.free(p) == error::ok);
	c.shrink();
	CHECK(c.stats().chunks == 0);
}

TEST_CASE_TEMPLATE("cache: allocations from every shard are freed from any thread", M, BACKENDS)
{
	auto m = M::make();
	cache_config cfg = text_cache_config();
	cfg.nr_shards = 2;
	unmapped_cache<typename M::backend> c(*m, cfg);
	/* Two new threads have consecutive thread numbers, so they allocate from both shards. */
	std::vector<void *> got[2];
	auto work = [&](int t) {
		for (int i = 0; i < 64; i++) {
			auto r = c.alloc(128 + 64 * i);
			if (r.ok())
				got[t].push_back(r.value);
		}
	};
	std::thread a(work, 0);
	a.join();
	std::thread b(work, 1);
	b.join();
	REQUIRE(got[0].size() == 64);
	REQUIRE(got[1].size() == 64);
	/* Different shards take different chunks: no chunk holds allocations of both threads. */
	auto chunk_of = [](void *p) { return reinterpret_cast<std::uintptr_t>(p) & ~(chunk_size - 1); };
	for (void *p : got[0])
		for (void *q : got[1])
			REQUIRE(chunk_of(p) != chunk_of(q));
	CHECK(c.check_consistency() == ""); /* every arena chunk's tag names its shard */
	for (int t = 0; t < 2; t++)
		for (void *p : got[t]) {
			auto f = c.find_allocation(static_cast<char *>(p) + 1);
			CHECK((f.ok() && f.value.addr == reinterpret_cast<std::uintptr_t>(p)));
			REQUIRE(c.free(p) == error::ok); /* from this thread, whichever shard holds it */
		}
	CHECK(c.stats().live_count == 0);
	CHECK(c.check_consistency() == "");
}
