// Fault injection: a scenario over a text, a secret and a ro cache is run
// once to count its machine operations (direct-map changes, flushes,
// collapses, alias mapping/protection/securing, writes, fills and page
// allocations), then once for every n with the nth operation failing. After
// each failure the call reports a clear error, no live allocation is lost or
// changed, the direct map matches what the caches hold, and the same call
// succeeds when retried; at the end everything is given back: free frames,
// aliases and the direct map are as at boot.
#include <doctest/doctest.h>

#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "reliability_fixture.h"

using namespace ua;

namespace {

/*
 * Every operation is failed in the plain build; sanitizer builds (several
 * times slower, and the scenario waits for RCU grace periods) fail every
 * stride-th one, a different subset each run of CI is not needed: the plain
 * build covers them all.
 */
constexpr std::uint64_t sanitizer_stride = ua_test::sanitized ? 7 : 1;

template <class Env>
class scenario : public ua_test::fault_caches<Env, scenario<Env>> {
	using base = ua_test::fault_caches<Env, scenario<Env>>;
	friend base;
	using typename base::backend;
	using typename base::live_alloc;
	using base::alloc, base::write, base::free, base::get_err, base::live_state;
	using base::m_, base::caches_, base::live_;

public:
	explicit scenario(typename Env::machine_type &m) : base(m) {}

	using base::failures;

	void run()
	{
		static const std::size_t sizes[] = {64, 300, 4096, 700, 1 << 20, (3 << 20) / 2, 3 << 20, 5 << 20};
		/* Allocations, including large ones and zeroed ones. */
		for (unsigned c = 0; c < 3; c++)
			for (std::size_t i = 0; i < std::size(sizes); i++)
				alloc(c, sizes[i], i == 2 ? 4096 : 1, i == 3 || i == 7 ? ua_zero : 0);
		/* Writes into every allocation. */
		unsigned char b = 1;
		for (auto &[a, l] : live_)
			write(a, b++);
		check_contents();
		/* Frees: every other one directly, a few deferred, then the rest (chunks empty). */
		std::vector<std::uintptr_t> order;
		for (auto &[a, l] : live_)
			order.push_back(a);
		for (std::size_t i = 0; i < order.size(); i += 2)
			free(order[i], i % 4 == 2);
		settle_deferred();
		check_contents();
		for (std::size_t i = 1; i < order.size(); i += 2)
			free(order[i], i % 6 == 1);
		settle_deferred();
		/* Reuse of the spares, then everything back. */
		for (unsigned c = 0; c < 3; c++) {
			alloc(c, 128, 64, 0);
			alloc(c, 2 << 20, 1, 0);
		}
		for (auto &[a, l] : std::map<std::uintptr_t, live_alloc>(live_))
			free(a, false);
		shrink_all();
	}

	/* Disarms, destroys the caches and checks the machine is as at boot. */
	void finish()
	{
		m_.backend.injector().disarm();
		for (auto &c : caches_) {
			CHECK(c->stats().chunks == 0);
			c.reset();
		}
		this->check_as_at_boot();
	}

private:
	/*
	 * The caches' live counts, or "" while a deferred free is queued in any
	 * of them: those complete in the RCU callback thread whenever a grace
	 * period ends, and change the count under a step. The queue is read
	 * first: once it is empty no completion is in flight (one leaves the
	 * queue after its free), and only this thread queues more.
	 */
	std::string live_counts() const
	{
		for (unsigned c = 0; c < 3; c++)
			if (caches_[c]->stats().deferred_pending)
				return "";
		std::string s;
		for (unsigned c = 0; c < 3; c++)
			s += std::to_string(caches_[c]->stats().live_count) + ",";
		return s;
	}

	/* Whole-machine checks after a failure: metadata, direct map and frames agree with what the caches hold. */
	void check_machine()
	{
		for (auto &c : caches_)
			CHECK(c->check_consistency() == "");
		this->check_held_frames();
		CHECK(m_.with_lock([](auto &pages, auto &) { return pages.check_consistency(); }) == "");
		CHECK(m_.with_lock([](auto &, auto &b) { return ua_test::backend_consistency(b); }) == "");
	}

	void check_contents()
	{
		if constexpr (backend::dereferenceable) {
			for (auto &[a, l] : live_) {
				auto *p = reinterpret_cast<const unsigned char *>(a);
				/* ua_zero or a secret: zero; text: trap bytes; after a write: the byte. */
				if (l.byte)
					CHECK(p[0] == l.byte);
			}
		}
	}

	/*
	 * Runs op; a failure must be a clear error reported only when a fault
	 * was injected, must change no live allocation, and the retry (the
	 * injector fails one operation) must succeed.
	 */
	template <class Op>
	auto step(const char *what, Op op)
	{
		std::string before = live_state(), counts_before = live_counts();
		auto r = op();
		error e = get_err(r);
		if (e != error::ok) {
			INFO(what << ": " << describe(e) << " after fault in " << fault_op_name(m_.backend.injector().failed_op()));
			REQUIRE(m_.backend.injector().fired());
			REQUIRE((e == error::backend_failure || e == error::no_memory));
			CHECK(live_state() == before);
			if (std::string counts = live_counts(); !counts.empty() && !counts_before.empty())
				CHECK(counts == counts_before);
			check_machine();
			failures++;
			r = op();
			REQUIRE(get_err(r) == error::ok);
		}
		return r;
	}
	/* Deferred frees complete after a grace period, retried by the cache if a backend step failed. */
	void settle_deferred()
	{
		for (int i = 0; i < 100; i++) {
			rcu::barrier();
			bool pending = false;
			for (auto &c : caches_)
				pending |= c->stats().deferred_pending != 0;
			if (!pending)
				break;
		}
		for (auto &c : caches_)
			REQUIRE(c->stats().deferred_pending == 0);
		CHECK(live_state().find("lost") == std::string::npos);
	}

	/* Gives every spare back; a shrink that failed part way keeps the chunk and is retried. */
	void shrink_all()
	{
		for (auto &c : caches_) {
			for (int i = 0; i < 4 && c->stats().chunks; i++) {
				c->shrink();
				if (c->stats().chunks)
					check_machine();
			}
			CHECK(c->stats().chunks == 0);
		}
	}
};

/* Counts the scenario's operations, then fails each one in turn. */
template <class Env>
void fail_every_operation()
{
	const std::uint64_t total = ua_test::count_operations<Env, scenario<Env>>([](scenario<Env> &s) { s.run(); });
	MESSAGE(std::string(Env::backend::name) << ": the scenario makes " << total << " machine operations; each is failed once");
	REQUIRE(total > 50);
	unsigned by_kind[unsigned(fault_op::nr_ops)] = {};
	const std::uint64_t stride = sanitizer_stride * (Env::backend::dereferenceable ? 2 : 1);
	for (std::uint64_t n = 1; n <= total; n += stride) {
		auto m = Env::make();
		m->backend.injector().arm(n);
		scenario<Env> s(*m);
		{
			INFO("failing operation " << n << " of " << total);
			s.run();
			REQUIRE(m->backend.injector().fired());
			by_kind[unsigned(m->backend.injector().failed_op())]++;
			s.finish();
		}
	}
	/* Every kind of operation the scenario makes was failed somewhere. */
	if (stride == 1)
		for (fault_op op : {fault_op::dm_change, fault_op::flush, fault_op::alias_map, fault_op::alias_unmap,
			    fault_op::alias_secure, fault_op::write, fault_op::fill, fault_op::page_alloc}) {
			INFO(fault_op_name(op));
			CHECK(by_kind[unsigned(op)] > 0);
		}
}

}  // namespace

static_assert(mapping_backend<fault_backend<sim_direct_map>>);
static_assert(mapping_backend<fault_backend<linux_backend>>);

TEST_CASE("fault injection: the injector fails exactly the nth operation, once")
{
	fault_injector inj;
	inj.arm(3, fault_bit(fault_op::fill));
	CHECK(!inj.should_fail(fault_op::write)); /* not in the mask: not counted */
	CHECK(!inj.should_fail(fault_op::fill));
	CHECK(!inj.should_fail(fault_op::fill));
	CHECK(inj.should_fail(fault_op::fill));
	CHECK(inj.fired());
	CHECK(inj.failed_op() == fault_op::fill);
	CHECK(!inj.should_fail(fault_op::fill));
	CHECK(inj.count() == 4);

	auto m = ua_test::sim_fault_env::make();
	m->backend.injector().arm(1, fault_bit(fault_op::page_alloc));
	{
		ua_test::sim_fault_env::machine_type::guard g(m->lock);
		auto r = m->pages.alloc_pages(9, gfp_normal_only);
		CHECK(r.err == error::no_memory);
		CHECK(m->pages.alloc_pages(9, gfp_normal_only).ok());
	}
	m->backend.injector().arm(1, fault_bit(fault_op::dm_change), -EIO);
	CHECK(m->backend.set_direct_map_invalid({0, 512}) == -EIO);
	CHECK(m->backend.direct_map_state(0) == dm_state::rw); /* failed without touching the direct map */
	CHECK(m->backend.set_direct_map_invalid({0, 512}) == 0);
	CHECK(m->backend.direct_map_state(0) == dm_state::invalid);
}

TEST_CASE("fault injection: every operation of the scenario failed in turn (simulated backend)")
{
	fail_every_operation<ua_test::sim_fault_env>();
}

TEST_CASE("fault injection: every second operation of the scenario failed in turn (real backend)")
{
	{
		auto m = ua_test::real_fault_env::make();
		REQUIRE(m->backend.inner().ok());
	}
	fail_every_operation<ua_test::real_fault_env>();
}
