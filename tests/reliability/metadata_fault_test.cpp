// Metadata allocation failure: this program replaces the global operator
// new (all forms, nothrow ones included), so the nth heap allocation after
// arming fails: the throwing forms throw std::bad_alloc, the nothrow forms
// return nullptr, as when the heap is exhausted. The library's metadata comes
// from the heap (node pools, chunk records, the chunk table, the page
// allocator's records, the simulated page tables and aliases), and every
// allocation path is noexcept: a bad_alloc escaping one terminates the
// process.
//
// A scenario over a text, a secret and a ro cache on the simulated backend is
// run once to count its allocations, then once for every n (every stride-th
// under a sanitizer), in a forked child, with the nth failing, and with every
// allocation from the nth failing for the next 8 (a heap that stays
// exhausted). In the child each call must succeed or give no_memory (or
// backend_failure, when the backend's own metadata failed), with no live
// allocation lost; then the heap comes back, the same call succeeds, and at
// the end everything is freed: frames, aliases and the direct map are as at
// boot. The child exits 0, or with the number of the first check that failed;
// a terminate() is SIGABRT. The children run before anything in this process
// uses RCU, so a fork never copies a call_rcu thread's state.
#include <doctest/doctest.h>

#include <execinfo.h>
#include <sys/mman.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <type_traits>
#include <memory>
#include <new>

#include "reliability_fixture.h"

namespace {

/* Shared with the parent (MAP_SHARED): the child's allocation count and its first failed check. */
struct shared_state {
	std::uint64_t count;
	int line;
};

std::atomic<std::uint64_t> g_count{0};
std::atomic<std::uint64_t> g_first{0}, g_last{0}; /* fail allocations first..last; 0: none */
std::atomic<bool> g_armed{false};

bool should_fail_alloc() noexcept
{
	if (!g_armed.load(std::memory_order_relaxed))
		return false;
	std::uint64_t i = g_count.fetch_add(1, std::memory_order_relaxed) + 1;
	std::uint64_t f = g_first.load(std::memory_order_relaxed);
	return f && i >= f && i <= g_last.load(std::memory_order_relaxed);
}

void arm_heap(std::uint64_t first, std::uint64_t m)
{
	g_count.store(0);
	g_first.store(first);
	g_last.store(first ? first + m - 1 : 0);
	g_armed.store(true);
}
void heap_back() { g_first.store(0); }

void *checked_malloc(std::size_t n, std::size_t align)
{
	if (should_fail_alloc())
		return nullptr;
	if (n == 0)
		n = 1;
	if (align <= alignof(std::max_align_t))
		return std::malloc(n);
	void *p = nullptr;
	return ::posix_memalign(&p, align, n) == 0 ? p : nullptr;
}

/* Out of line, so the compiler does not pair a free() it sees with an operator new it sees (-Wmismatched-new-delete). */
[[gnu::noinline]] void release_heap(void *p) noexcept { std::free(p); }

}  // namespace

void *operator new(std::size_t n)
{
	if (void *p = checked_malloc(n, 0))
		return p;
	throw std::bad_alloc();
}
void *operator new[](std::size_t n) { return ::operator new(n); }
void *operator new(std::size_t n, const std::nothrow_t &) noexcept { return checked_malloc(n, 0); }
void *operator new[](std::size_t n, const std::nothrow_t &) noexcept { return checked_malloc(n, 0); }
void *operator new(std::size_t n, std::align_val_t a)
{
	if (void *p = checked_malloc(n, std::size_t(a)))
		return p;
	throw std::bad_alloc();
}
void *operator new[](std::size_t n, std::align_val_t a) { return ::operator new(n, a); }
void *operator new(std::size_t n, std::align_val_t a, const std::nothrow_t &) noexcept { return checked_malloc(n, std::size_t(a)); }
void *operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t &) noexcept { return checked_malloc(n, std::size_t(a)); }
void operator delete(void *p) noexcept { release_heap(p); }
void operator delete[](void *p) noexcept { release_heap(p); }
void operator delete(void *p, std::size_t) noexcept { release_heap(p); }
void operator delete[](void *p, std::size_t) noexcept { release_heap(p); }
void operator delete(void *p, std::align_val_t) noexcept { release_heap(p); }
void operator delete[](void *p, std::align_val_t) noexcept { release_heap(p); }
void operator delete(void *p, std::size_t, std::align_val_t) noexcept { release_heap(p); }
void operator delete[](void *p, std::size_t, std::align_val_t) noexcept { release_heap(p); }
void operator delete(void *p, const std::nothrow_t &) noexcept { release_heap(p); }
void operator delete[](void *p, const std::nothrow_t &) noexcept { release_heap(p); }

using namespace ua;

namespace {

/* The first failed allocation n: every one in the plain build, every fifth in the (slower) sanitizer builds. */
constexpr std::uint64_t sanitizer_stride = ua_test::sanitized ? 5 : 1;

using env = ua_test::fault_env<sim_direct_map, std::uint64_t{1} << 18>;
using cache_t = unmapped_cache<env::backend>;

#define EXPECT(cond)                                                                         \
	do {                                                                                 \
		if (!(cond)) {                                                               \
			heap_back();                                                         \
			std::fprintf(stderr, "metadata_fault_test: %s failed (line %d)\n", #cond, __LINE__); \
			st->line = __LINE__;                                                 \
			return 1;                                                            \
		}                                                                            \
	} while (0)

/* A call that may fail while the heap is exhausted: only no_memory (or backend_failure), then it must succeed. */
template <class Op>
bool call(Op op, error *out = nullptr)
{
	auto r = op();
	error e;
	if constexpr (std::is_same_v<decltype(r), error>)
		e = r;
	else
		e = r.err;
	if (e != error::ok) {
		if (e != error::no_memory && e != error::backend_failure) {
			std::fprintf(stderr, "metadata_fault_test: the call failed with %s\n", describe(e));
			return false;
		}
		heap_back(); /* the heap comes back: the same call succeeds */
		r = op();
		if constexpr (std::is_same_v<decltype(r), error>)
			e = r;
		else
			e = r.err;
	}
	if (out)
		*out = e;
	if (e != error::ok)
		std::fprintf(stderr, "metadata_fault_test: the call failed with %s\n", describe(e));
	return e == error::ok;
}

/* In the child: a terminate() (an exception through noexcept) prints where, then dies of SIGABRT. */
[[noreturn]] void on_terminate()
{
	heap_back();
	void *frames[32];
	int n = ::backtrace(frames, 32);
	std::fprintf(stderr, "metadata_fault_test: terminate() in the library, from:\n");
	::backtrace_symbols_fd(frames, n, 2);
	::signal(SIGABRT, SIG_DFL);
	std::abort();
}

/* The scenario, in the child: returns its exit code. first == 0 only counts. */
int scenario(shared_state *st, std::uint64_t first, std::uint64_t m)
{
	::signal(SIGABRT, SIG_DFL); /* doctest's handler would report the child's death as the parent's test */
	std::set_terminate(&on_terminate);
	auto mach = env::make();
	const std::uint64_t boot_free = mach->nr_free_pages();
	{
		std::unique_ptr<cache_t> caches[3];
		const cache_config cfgs[3] = {text_cache_config(), secret_cache_config(), ro_cache_config()};
		for (unsigned i = 0; i < 3; i++) {
			cache_config c = cfgs[i];
			c.nr_shards = 1;
			c.spare_chunks = 1;
			caches[i] = std::make_unique<cache_t>(*mach, c);
		}
		static const std::size_t sizes[] = {64, 300, 4096, 700, 100000, 1 << 20, 3 << 20};
		arm_heap(first, m);
		void *ptrs[3][std::size(sizes) * 4] = {};
		unsigned k = 0;
		for (unsigned round = 0; round < 4; round++)
			for (unsigned c = 0; c < 3; c++)
				for (std::size_t i = 0; i < std::size(sizes); i++) {
					result<void *> r{};
					EXPECT(call([&] { return r = caches[c]->alloc(sizes[i], i == 2 ? 4096 : 1, i == 3 ? ua_zero : 0); }));
					ptrs[c][round * std::size(sizes) + i] = r.value;
					unsigned char b = static_cast<unsigned char>(++k);
					EXPECT(call([&] { return caches[c]->write(r.value, &b, 1); }));
				}
		/* Half freed, some deferred; the chunks empty and are given back by shrink(). */
		for (unsigned c = 0; c < 3; c++)
			for (std::size_t j = 0; j < std::size(ptrs[c]); j += 2)
				EXPECT(call([&] { return j % 4 == 2 ? caches[c]->free_deferred(ptrs[c][j]) : caches[c]->free(ptrs[c][j]); }));
		for (unsigned c = 0; c < 3; c++) {
			caches[c]->shrink();
			for (std::size_t j = 1; j < std::size(ptrs[c]); j += 2)
				EXPECT(caches[c]->find_allocation(ptrs[c][j]).ok());
		}
		for (unsigned c = 0; c < 3; c++)
			for (std::size_t j = 1; j < std::size(ptrs[c]); j += 2)
				EXPECT(call([&] { return caches[c]->free(ptrs[c][j]); }));
		for (unsigned c = 0; c < 3; c++)
			caches[c]->shrink();
		st->count = g_count.load();
		heap_back();
		rcu::barrier();
		for (unsigned c = 0; c < 3; c++) {
			EXPECT(caches[c]->stats().deferred_pending == 0);
			caches[c]->shrink();
			EXPECT(caches[c]->stats().live_count == 0);
			EXPECT(caches[c]->stats().chunks == 0);
			EXPECT(caches[c]->check_consistency().empty());
		}
	}
	EXPECT(mach->nr_free_pages() == boot_free);
	EXPECT(mach->backend.stats().aliases == 0);
	EXPECT(ua_test::frames_out_of_direct_map(mach->backend) == 0);
	EXPECT(mach->check_consistency().empty());
	EXPECT(ua_test::backend_consistency(mach->backend).empty());
	return 0;
}

shared_state *shared()
{
	static auto *st = static_cast<shared_state *>(
		::mmap(nullptr, sizeof(shared_state), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
	return st;
}

/* Fails heap allocations [n, n + m) of the scenario, for every stride-th n. */
void fail_allocations(std::uint64_t m)
{
	shared_state *st = shared();
	REQUIRE(st != MAP_FAILED);
	st->count = 0;
	int status = ua_test::run_in_child([&] { return scenario(st, 0, 0); });
	REQUIRE(ua_test::exited_with(status, 0));
	const std::uint64_t total = st->count;
	MESSAGE("the scenario makes " << total << " heap allocations; failing " << m << " in a row from each");
	REQUIRE(total > 20);
	unsigned aborted = 0, failed = 0;
	for (std::uint64_t n = 1; n <= total; n += sanitizer_stride) {
		st->line = 0;
		status = ua_test::run_in_child([&] { return scenario(st, n, m); });
		if (ua_test::died_of(status, SIGABRT)) {
			if (aborted++ < 5)
				MESSAGE("allocation " << n << ": the child aborted (a bad_alloc through noexcept, or a UA_CHECK)");
		} else if (!ua_test::exited_with(status, 0)) {
			if (failed++ < 5)
				MESSAGE("allocation " << n << ": the child failed the check at line " << st->line << " (status " << status << ")");
		}
	}
	CHECK(aborted == 0);
	CHECK(failed == 0);
}

}  // namespace

TEST_CASE("metadata: every heap allocation of the scenario fails once, in turn")
{
	fail_allocations(1);
}

TEST_CASE("metadata: the heap stays exhausted for 8 allocations from each one")
{
	fail_allocations(8);
}
