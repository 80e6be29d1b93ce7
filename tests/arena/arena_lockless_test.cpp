/*
 * arena::lookup_lockless under concurrent writers (run it under TSan too).
 *
 * One writer thread allocates and frees under the owner's mutex, adds chunks
 * on no_space and removes empty ones, retiring their records; reader threads
 * call lookup_lockless on addresses near recent allocations and at random
 * inside the arena's chunks, without the mutex. Every answer must be a real
 * allocation: granule aligned, inside one chunk, containing the address, and
 * an (addr, size) pair that the writer's log says it allocated at some time.
 *
 * Grace periods. The readers' critical sections are shared holds of a
 * std::shared_mutex and the writer's grace period is taking it exclusively
 * once: every reader that could have seen a removed chunk has then left its
 * critical section, which is what synchronize_rcu() guarantees. The test uses
 * that instead of liburcu because ThreadSanitizer does not see liburcu's
 * grace periods (the library is not instrumented) and would report the
 * reclaim as a race with earlier readers.
 */
#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <random>
#include <set>
#include <shared_mutex>
#include <thread>
#include <utility>
#include <vector>

#include "arena_fixture.h"
#include "workload/bpf_size_mix.h"

using ua::chunk_size;
using ua::error;

namespace {

std::size_t writer_ops()
{
	const char *e = std::getenv("UA_MODEL_OPS");
	std::size_t n = e ? std::strtoull(e, nullptr, 10) / 5 : 200000;
	return n < 1000 ? 1000 : n;
}

struct shared_state {
	ua::arena a{ua::arena_config{.granule = 64}};
	std::mutex owner;                                            /* the owner's lock: writers and the log */
	std::shared_mutex grace;                                     /* readers hold it shared; see above */
	std::set<std::pair<std::uintptr_t, std::size_t>> log;        /* every allocation ever made */
	std::set<std::uintptr_t> bases_ever;                         /* every chunk ever added */
	static constexpr std::size_t ring_size = 256;
	std::atomic<std::uintptr_t> recent[ring_size] = {};          /* recent allocations, for readers */
	std::atomic<bool> done{false};
	std::atomic<std::size_t> reclaimed{0};
};

void writer(shared_state &st, std::size_t ops)
{
	ua_test::fake_chunks src;
	std::mt19937_64 rng(11);
	std::vector<std::uintptr_t> live;
	std::size_t target = 64;
	for (std::size_t i = 0; i < ops; i++) {
		if (i % 5000 == 0)
			target = 1 + rng() % 300; /* the live set breathes: chunks come and go */
		bool do_alloc = live.empty() || (live.size() < target ? rng() % 100 < 65 : rng() % 100 < 35);
		std::uintptr_t removed = 0;
		{
			std::lock_guard<std::mutex> g(st.owner);
			if (do_alloc) {
				std::size_t size = ua::workload::bpf_size(rng);
				auto r = st.a.alloc(size, 64);
				if (r.err == error::no_space) {
					std::uintptr_t b = src.get();
					REQUIRE(st.a.add_chunk(b) == error::ok);
					st.bases_ever.insert(b);
					r = st.a.alloc(size, 64);
				}
				REQUIRE(r.ok());
				/* The arena may have given one granule more (arena.h): log what it gave. */
				auto got = st.a.lookup(r.value);
				REQUIRE(got.ok());
				REQUIRE(got.value.size - ua::align_up(size, 64) <= 64);
				st.log.emplace(r.value, got.value.size);
				live.push_back(r.value);
				st.recent[rng() % shared_state::ring_size].store(r.value, std::memory_order_relaxed);
			} else {
				std::size_t k = rng() % live.size();
				std::uintptr_t p = live[k];
				live[k] = live.back();
				live.pop_back();
				auto f = st.a.free(p);
				REQUIRE(f.ok());
				if (f.value.empty_chunk && rng() % 2) {
					REQUIRE(st.a.remove_chunk(f.value.empty_chunk) == error::ok);
					removed = f.value.empty_chunk;
				}
			}
		}
		if (removed) {
			/* Grace period, then reclaim under the owner's lock; the chunk's addresses may come back. */
			{
				std::unique_lock<std::shared_mutex> gp(st.grace);
			}
			std::lock_guard<std::mutex> g(st.owner);
			st.reclaimed += st.a.reclaim_retired();
			src.put(removed);
		}
	}
	std::lock_guard<std::mutex> g(st.owner);
	for (std::uintptr_t p : live)
		REQUIRE(st.a.free(p).ok());
	st.done = true;
}

struct reader_result {
	std::size_t found = 0, not_live = 0, foreign = 0, bad = 0;
};

void reader(shared_state &st, std::uint64_t seed, reader_result &out)
{
	std::mt19937_64 rng(seed);
	const std::uintptr_t first = ua_test::fake_chunks{}.next;
	while (!st.done.load(std::memory_order_relaxed)) {
		std::uintptr_t q;
		if (rng() % 4) {
			std::uintptr_t p = st.recent[rng() % shared_state::ring_size].load(std::memory_order_relaxed);
			q = p ? p + rng() % 4096 : first + rng() % (4 * chunk_size);
		} else {
			q = first + rng() % (8 * chunk_size);
		}
		ua::result<ua::allocation> r;
		{
			std::shared_lock<std::shared_mutex> cs(st.grace); /* rcu_read_lock() */
			r = st.a.lookup_lockless(q);
		}
		if (r.err == error::foreign_pointer) {
			out.foreign++;
			continue;
		}
		if (r.err == error::not_live) {
			out.not_live++;
			continue;
		}
		bool shape = r.ok() && r.value.addr % 64 == 0 && r.value.size % 64 == 0 && r.value.size > 0 &&
			     r.value.addr <= q && q < r.value.addr + r.value.size &&
			     ua::align_down(r.value.addr, chunk_size) == ua::align_down(r.value.addr + r.value.size - 1, chunk_size);
		bool logged;
		{
			std::lock_guard<std::mutex> g(st.owner);
			logged = st.log.count({r.value.addr, r.value.size}) != 0;
		}
		if (shape && logged)
			out.found++;
		else
			out.bad++;
	}
}

}  // namespace

TEST_CASE("arena: lookup_lockless answers are real allocations while a writer runs")
{
	shared_state st;
	reader_result res[2];
	std::thread w(writer, std::ref(st), writer_ops());
	std::thread r0(reader, std::ref(st), 21, std::ref(res[0]));
	std::thread r1(reader, std::ref(st), 22, std::ref(res[1]));
	w.join();
	r0.join();
	r1.join();
	std::size_t found = res[0].found + res[1].found;
	INFO("found " << found << ", not live " << res[0].not_live + res[1].not_live << ", foreign "
		      << res[0].foreign + res[1].foreign << ", chunk records reclaimed " << st.reclaimed.load());
	CHECK(res[0].bad == 0);
	CHECK(res[1].bad == 0);
	CHECK(found > 0);
	CHECK(st.reclaimed.load() > 0);
	CHECK(st.a.live_count() == 0);
	CHECK(st.a.check_consistency() == "");
}

TEST_CASE("arena: lookup_lockless agrees with lookup when no writer runs")
{
	ua::arena a;
	ua_test::fake_chunks src;
	auto p = ua_test::alloc_grow(a, src, 1000);
	auto q = ua_test::alloc_grow(a, src, 64);
	REQUIRE(p.ok());
	REQUIRE(q.ok());
	for (std::uintptr_t x : {p.value, p.value + 999, q.value, q.value + 63, q.value + 64, std::uintptr_t{4096}}) {
		auto l = a.lookup(x), ll = a.lookup_lockless(x);
		CHECK(l.err == ll.err);
		CHECK(l.value.addr == ll.value.addr);
		CHECK(l.value.size == ll.value.size);
	}
	REQUIRE(a.free(p.value).ok());
	REQUIRE(a.free(q.value).ok());
	std::uintptr_t base = a.lookup_chunk(p.value);
	REQUIRE(a.remove_chunk(base) == error::ok);
	CHECK(a.nr_retired() == 1);
	CHECK(a.lookup_lockless(p.value).err == error::foreign_pointer);
	CHECK(a.reclaim_retired() == 1);
	CHECK(a.nr_retired() == 0);
}
