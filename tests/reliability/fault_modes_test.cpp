// Faults that last and faults at random (tests/support/fault_backend.h's
// arm_window and arm_random), over three caches (text, secret, ro):
//   - a window of m failing operations from the nth, for every n of a
//     scenario and m = 2, 3, 8 (windows that cover the undo steps of the
//     failed call) and a window that outlasts the scenario's retries: each
//     failed call gives a clear error and changes no live allocation, retries
//     inside the window may fail too, and once the fault ends (disarm) the
//     same call succeeds;
//   - a churn of random allocations, writes, frees, deferred frees and
//     shrinks with every operation failing with probability p (1 %, 10 %,
//     50 %), seeded;
//   - shrink() under a release failure that lasts returns (it spun forever);
//   - a cache destroyed while its releases fail, more of them than the chunk
//     source can record (32): the destructor retries, leaks what still
//     fails, counts it in the machine and returns (it aborted).
// After each run, with the fault over and everything freed, every frame,
// alias and direct-map page is back as at boot.
#include <doctest/doctest.h>

#include <unistd.h>

#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "reliability_fixture.h"

using namespace ua;

namespace {

template <class Env>
class churn : public ua_test::fault_caches<Env, churn<Env>> {
	using base = ua_test::fault_caches<Env, churn<Env>>;
	friend base;
	using typename base::backend;
	using typename base::live_alloc;
	using base::alloc, base::write, base::free, base::get_err, base::live_state;
	using base::m_, base::caches_, base::live_;

public:
	explicit churn(typename Env::machine_type &m) : base(m) {}

	using base::failures;   /* calls that failed */
	unsigned recovered = 0; /* calls that succeeded only once the fault ended */
	unsigned max_retries = 3;
	double p = 0;            /* random mode: armed again with this p after a fault ended */
	std::uint64_t seed = 0;
	std::uint64_t injected = 0; /* operations failed before the last arming */

	/* The fixed scenario: allocations small and large, writes, frees direct and deferred, shrinks. */
	void scenario()
	{
		static const std::size_t sizes[] = {64, 4096, 700, 1 << 20, 3 << 20};
		for (unsigned c = 0; c < 3; c++)
			for (std::size_t i = 0; i < std::size(sizes); i++)
				alloc(c, sizes[i], i == 1 ? 4096 : 1, i == 2 || i == 4 ? ua_zero : 0);
		unsigned char b = 1;
		for (auto &[a, l] : std::map<std::uintptr_t, live_alloc>(live_))
			write(a, b++);
		std::vector<std::uintptr_t> order;
		for (auto &[a, l] : live_)
			order.push_back(a);
		for (std::size_t i = 0; i < order.size(); i += 2)
			free(order[i], i % 4 == 2);
		settle_deferred();
		for (unsigned c = 0; c < 3; c++)
			shrink(c);
		for (unsigned c = 0; c < 3; c++)
			alloc(c, 2 << 20, 1, 0);
		for (std::size_t i = 1; i < order.size(); i += 2)
			free(order[i], i % 6 == 1);
		settle_deferred();
		check_contents();
	}

	/* steps random operations over the three caches. */
	void random_churn(std::uint64_t steps, std::uint64_t seed)
	{
		std::mt19937_64 rng(seed);
		for (std::uint64_t i = 0; i < steps; i++) {
			unsigned c = unsigned(rng() % 3);
			unsigned what = unsigned(rng() % 16);
			if (live_.size() < 40 && (what < 6 || live_.empty())) {
				std::size_t size = rng() % 8 == 0 ? (std::size_t(1) << 20) * (1 + rng() % 4) : 16 + rng() % 6000;
				alloc(c, size, std::size_t(1) << (rng() % 7), rng() % 4 == 0 ? ua_zero : 0);
			} else if (what < 9) {
				auto it = std::next(live_.begin(), long(rng() % live_.size()));
				write(it->first, static_cast<unsigned char>(1 + rng() % 255));
			} else if (what < 15) {
				auto it = std::next(live_.begin(), long(rng() % live_.size()));
				free(it->first, what == 14);
			} else {
				shrink(c);
			}
			if (i % 64 == 63) {
				check_machine();
				check_contents();
			}
		}
		settle_deferred();
	}

	/* The fault ends, everything is freed and given back: the machine is as at boot. */
	void finish()
	{
		m_.backend.injector().disarm();
		check_contents();
		for (auto &[a, l] : std::map<std::uintptr_t, live_alloc>(live_))
			REQUIRE(caches_[l.cache]->free(reinterpret_cast<void *>(a)) == error::ok);
		live_.clear();
		for (auto &c : caches_) {
			c->shrink();
			cache_stats st = c->stats();
			CHECK(st.chunks == 0);
			CHECK(st.live_count == 0);
		}
		for (auto &c : caches_)
			c.reset();
		this->check_as_at_boot();
	}

private:
	/*
	 * Metadata, direct map, frames and aliases agree with what the caches
	 * hold and have yet to give back. The counts are compared only while no
	 * deferred free is queued: those complete on the RCU callback thread at
	 * any time. Once every queue is empty no completion is in flight (one
	 * leaves the queue after its free), and only this thread queues more.
	 */
	void check_machine()
	{
		for (auto &c : caches_)
			CHECK(c->check_consistency() == "");
		/* The RCU callback thread may be freeing: walk under the machine lock. */
		CHECK(m_.with_lock([](auto &pages, auto &) { return pages.check_consistency(); }) == "");
		for (auto &c : caches_)
			if (c->stats().deferred_pending)
				return;
		this->check_held_frames();
	}

	/* What was written is still there (the real backend's aliases are readable, text and ro too). */
	void check_contents()
	{
		if constexpr (backend::dereferenceable) {
			for (auto &[a, l] : live_) {
				if (!l.byte)
					continue;
				auto *p = reinterpret_cast<const unsigned char *>(a);
				std::size_t n = std::min<std::size_t>(l.size, 256);
				for (std::size_t i = 0; i < n; i += 37)
					REQUIRE(p[i] == l.byte);
				REQUIRE(p[n - 1] == l.byte);
			}
		}
	}

	/*
	 * Runs op. A failure must be a clear error, only under an injected
	 * fault, with no live allocation lost or changed; op is retried a few
	 * times inside the fault (those may fail too), then the fault ends and
	 * op must succeed.
	 */
	template <class Op>
	auto step(const char *what, Op op)
	{
		std::string before = live_state();
		auto r = op();
		for (unsigned attempt = 0; get_err(r) != error::ok; attempt++) {
			error e = get_err(r);
			INFO(std::string(what) << ": " << describe(e) << " after fault in " << fault_op_name(m_.backend.injector().failed_op()));
			REQUIRE(m_.backend.injector().fired());
			REQUIRE((e == error::backend_failure || e == error::no_memory));
			CHECK(live_state() == before);
			check_machine();
			failures++;
			if (attempt >= max_retries) {
				m_.backend.injector().disarm(); /* the fault ends */
				r = op();
				REQUIRE(get_err(r) == error::ok);
				recovered++;
				if (p > 0) { /* random faults go on */
					injected += m_.backend.injector().nr_failed();
					m_.backend.injector().arm_random(p, ++seed * 7919);
				}
				break;
			}
			r = op();
		}
		return r;
	}
	/* Never fails to its caller; must return even while every release fails. */
	void shrink(unsigned c)
	{
		caches_[c]->shrink();
		check_machine();
	}

	/* A deferred free whose step fails is retried after each grace period: it completes once the fault ends. */
	void settle_deferred()
	{
		auto pending = [&] {
			bool p = false;
			for (auto &c : caches_)
				p |= c->stats().deferred_pending != 0;
			return p;
		};
		for (int i = 0; i < 20 && pending(); i++)
			rcu::barrier();
		if (pending()) {
			m_.backend.injector().disarm();
			for (int i = 0; i < 100 && pending(); i++)
				rcu::barrier();
		}
		REQUIRE(!pending());
		CHECK(live_state().find("lost") == std::string::npos);
	}
};

/* Counts the scenario's operations, then runs it with a window of m failures from every stride-th n. */
template <class Env>
void windows(std::uint64_t m, std::uint64_t stride)
{
	const std::uint64_t total = ua_test::count_operations<Env, churn<Env>>([](churn<Env> &s) { s.scenario(); });
	REQUIRE(total > 50);
	std::uint64_t failed = 0, recovered = 0;
	for (std::uint64_t n = 1; n <= total; n += stride) {
		auto mach = Env::make();
		mach->backend.injector().arm_window(n, m);
		churn<Env> s(*mach);
		INFO("window of " << m << " from operation " << n << " of " << total);
		s.scenario();
		REQUIRE(mach->backend.injector().fired());
		failed += s.failures;
		recovered += s.recovered;
		s.finish();
	}
	MESSAGE(std::string(Env::backend::name) << ": windows of " << m << " over " << total << " operations: " << failed
					    << " failed calls, " << recovered << " recovered only after the fault ended");
	CHECK(failed > 0);
}

template <class Env>
void random_faults(double p, std::uint64_t steps, std::uint64_t seed)
{
	auto mach = Env::make();
	mach->backend.injector().arm_random(p, seed);
	churn<Env> s(*mach);
	s.max_retries = 8;
	s.p = p;
	s.seed = seed;
	s.random_churn(steps, seed);
	std::uint64_t injected = s.injected + mach->backend.injector().nr_failed();
	MESSAGE(std::string(Env::backend::name) << ": p = " << p << ", " << steps << " steps: " << injected
					    << " operations failed, " << s.failures << " failed calls, " << s.recovered
					    << " recovered after the fault ended");
	CHECK(injected > 0);
	s.finish();
}

}  // namespace

TEST_CASE("fault modes: a window fails m operations in a row, a random mode fails with probability p")
{
	fault_injector inj;
	inj.arm_window(3, 2, fault_bit(fault_op::fill));
	CHECK(!inj.should_fail(fault_op::write)); /* not in the mask: not counted */
	CHECK(!inj.should_fail(fault_op::fill));
	CHECK(!inj.should_fail(fault_op::fill));
	CHECK(inj.should_fail(fault_op::fill));
	CHECK(inj.should_fail(fault_op::fill));
	CHECK(!inj.should_fail(fault_op::fill));
	CHECK(inj.nr_failed() == 2);
	CHECK(inj.nr_failed(fault_op::fill) == 2);

	/* The same seed draws the same failures; p is kept to within a few standard deviations. */
	fault_injector a, b;
	a.arm_random(0.1, 42);
	b.arm_random(0.1, 42);
	std::uint64_t same = 0;
	for (int i = 0; i < 100000; i++)
		same += a.should_fail(fault_op::flush) == b.should_fail(fault_op::flush);
	CHECK(same == 100000);
	CHECK(a.nr_failed() > 9000);
	CHECK(a.nr_failed() < 11000);
	a.disarm();
	CHECK(!a.should_fail(fault_op::flush));
}

TEST_CASE("fault modes: windows of 2, 3 and 8 failures, covering the undo steps (simulated backend)")
{
	for (std::uint64_t m : {2, 3, 8})
		windows<ua_test::sim_fault_env>(m, 1);
}

TEST_CASE("fault modes: a fault that outlasts every retry; the call succeeds once it ends (simulated backend)")
{
	windows<ua_test::sim_fault_env>(std::uint64_t{1} << 40, 1);
}

TEST_CASE("fault modes: windows of 3 and a lasting fault (real backend)")
{
	{
		auto m = ua_test::real_fault_env::make();
		REQUIRE(m->backend.inner().ok());
	}
	windows<ua_test::real_fault_env>(3, 3);
	windows<ua_test::real_fault_env>(std::uint64_t{1} << 40, 3);
}

TEST_CASE("fault modes: random failures at p = 1 %, 10 % and 50 % over a churn (simulated backend)")
{
	random_faults<ua_test::sim_fault_env>(0.01, 3000, 1);
	random_faults<ua_test::sim_fault_env>(0.10, 3000, 2);
	random_faults<ua_test::sim_fault_env>(0.50, 1500, 3);
}

TEST_CASE("fault modes: random failures at p = 10 % over a churn (real backend)")
{
	random_faults<ua_test::real_fault_env>(0.10, 1500, 4);
}

TEST_CASE("fault modes: shrink() returns while every release of a freed large run fails")
{
	auto m = ua_test::sim_fault_env::make();
	{
		unmapped_cache<ua_test::sim_fault_env::backend> c(*m, text_cache_config());
		std::vector<void *> runs;
		for (int i = 0; i < 40; i++) {
			auto r = c.alloc(3 << 20);
			REQUIRE(r.ok());
			runs.push_back(r.value);
		}
		/*
		 * Every alias unmap fails: the first freed runs are recorded by the
		 * chunk source to be finished later, until its record is full; the
		 * rest cannot go back and wait in the cache for shrink().
		 */
		m->backend.injector().arm_window(1, std::uint64_t{1} << 40, fault_bit(fault_op::alias_unmap));
		for (void *p : runs) {
			REQUIRE(c.free(p) == error::ok);
			CHECK(c.find_allocation(p).err != error::ok);
		}
		CHECK(c.stats().source.repairs_pending > 0);

		CHECK(c.stats().spare_chunks > 0);
		::alarm(20); /* a spinning shrink() dies of SIGALRM instead of hanging the suite */
		for (int i = 0; i < 3; i++)
			c.shrink();
		::alarm(0);
		m->backend.injector().disarm();
		c.shrink();
		CHECK(c.stats().chunks == 0);
		CHECK(c.stats().source.repairs_pending == 0);
	}
	CHECK(m->nr_free_pages() == m->nr_pages());
	CHECK(ua_test::frames_out_of_direct_map(m->backend) == 0);
	CHECK(m->backend.stats().aliases == 0);
}

namespace {

/* Allocates n large runs (3 MiB: two chunks each) from c; REQUIREs each. */
template <class Cache>
std::vector<void *> alloc_large_runs(Cache &c, int n)
{
	std::vector<void *> runs;
	for (int i = 0; i < n; i++) {
		auto r = c.alloc(3 << 20);
		REQUIRE(r.ok());
		runs.push_back(r.value);
	}
	return runs;
}

}  // namespace

TEST_CASE_TEMPLATE("fault modes: a cache destroyed while more than 32 releases fail leaks them, counted, and returns", Env,
		   ua_test::sim_fault_env, ua_test::fault_env<linux_backend, 49152>)
{
	auto m = Env::make();
	const std::uint64_t free0 = m->nr_free_pages();
	constexpr int nr_runs = 40; /* more than the chunk source's 32 records */
	std::uint64_t chunks = 0;
	{
		unmapped_cache<typename Env::backend> c(*m, text_cache_config());
		const std::vector<void *> runs = alloc_large_runs(c, nr_runs); /* live at teardown: the destructor gives them back */
		chunks = c.stats().chunks;
		CHECK(chunks == 2 * nr_runs);
		/* Every alias unmap fails from now on, at teardown and after it: no run can go back. */
		m->backend.injector().arm_window(1, std::uint64_t{1} << 40, fault_bit(fault_op::alias_unmap));
	}
	/* The destructor returned. Each run was tried (32 recorded, the rest at once) and retried once more, then leaked. */
	CHECK(m->backend.injector().nr_failed(fault_op::alias_unmap) >= std::uint64_t(nr_runs) + 32);
	CHECK(m->leaked_runs.load() == std::uint64_t(nr_runs));
	CHECK(m->leaked_frames.load() == chunks * pages_per_chunk);
	/* The leaked state is the consistent one the failed step left: frames allocated, out of the direct map, mapped. */
	CHECK(m->nr_free_pages() == free0 - chunks * pages_per_chunk);
	CHECK(ua_test::frames_out_of_direct_map(m->backend) == chunks * pages_per_chunk);
	CHECK(m->backend.stats().aliases >= std::uint64_t(nr_runs));
	CHECK(ua_test::backend_consistency(m->backend) == "");
	m->backend.injector().disarm();
	/* The machine still serves a new cache from what is left, and that cache gives everything back. */
	{
		unmapped_cache<typename Env::backend> c(*m, text_cache_config());
		auto r = c.alloc(4096);
		REQUIRE(r.ok());
		CHECK(c.free(r.value) == error::ok);
	}
	CHECK(m->nr_free_pages() == free0 - chunks * pages_per_chunk);
	CHECK(m->leaked_runs.load() == std::uint64_t(nr_runs));
}

TEST_CASE_TEMPLATE("fault modes: a release fault that ends during teardown: the retries give every run back, nothing leaks",
		   Env, ua_test::sim_fault_env, ua_test::fault_env<linux_backend, 49152>)
{
	auto m = Env::make();
	const std::uint64_t free0 = m->nr_free_pages();
	constexpr int nr_runs = 40;
	{
		unmapped_cache<typename Env::backend> c(*m, text_cache_config());
		const std::vector<void *> runs = alloc_large_runs(c, nr_runs);
		/*
		 * The first 100 alias unmaps fail: the first runs fill the chunk
		 * source's record, and every later release retries them before
		 * its own run; the fault ends within the teardown.
		 */
		m->backend.injector().arm_window(1, 100, fault_bit(fault_op::alias_unmap));
	}
	CHECK(m->backend.injector().nr_failed(fault_op::alias_unmap) == 100);
	CHECK(m->leaked_runs.load() == 0);
	CHECK(m->leaked_frames.load() == 0);
	CHECK(m->nr_free_pages() == free0);
	CHECK(ua_test::frames_out_of_direct_map(m->backend) == 0);
	CHECK(m->backend.stats().aliases == 0);
	CHECK(ua_test::backend_consistency(m->backend) == "");
}
