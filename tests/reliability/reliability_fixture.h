// Machines with fault injection and whole-machine checks shared by the
// reliability tests (fault injection, stress, security properties).
#pragma once

#include "child.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <support/fault_backend.h>
#include <support/sanitizers.h>
#include <unmapped_alloc/unmapped_alloc.h>

namespace ua_test {

/* ua_test::sanitized, ua_test::tsan: tests/support/sanitizers.h. */

/* A machine over fault_backend<Inner> whose page allocator fails through the same injector. */
template <class Inner, std::uint64_t Pages>
struct fault_env {
	using backend = ua::fault_backend<Inner>;
	using machine_type = ua::machine<backend>;
	static constexpr std::uint64_t pages = Pages;
	static std::unique_ptr<machine_type> make()
	{
		auto m = std::make_unique<machine_type>(Pages);
		m->with_lock([](ua::page_allocator &pa, backend &b) { pa.set_fault_hook(&backend::page_alloc_hook, &b.injector()); });
		return m;
	}
};
using sim_fault_env = fault_env<ua::sim_direct_map, std::uint64_t{1} << 18>; /* 1 GiB */
using real_fault_env = fault_env<ua::linux_backend, 16384>;                    /* 64 MiB */

/* Frames not read-write in the direct map. */
template <class Backend>
std::uint64_t frames_out_of_direct_map(const Backend &b)
{
	std::uint64_t n = 0;
	for (ua::pfn_t p = 0; p < b.nr_pages(); p++)
		n += b.direct_map_state(p) != ua::dm_state::rw;
	return n;
}

/* The backend's own consistency walk where it has one (the simulation). */
template <class Backend>
std::string backend_consistency(const Backend &b)
{
	if constexpr (requires { b.check_consistency(); })
		return b.check_consistency();
	else if constexpr (requires { b.inner().check_consistency(); })
		return b.inner().check_consistency();
	else
		return {};
}

/*
 * Three caches (text, secret, ro; one shard and one spare chunk each) over a
 * fault_env machine, the allocations live in them, and the calls and checks
 * the fault tests make on them (fault_injection_test, fault_modes_test).
 * Derived says how a call that may fail is run: Derived::step(what, op) runs
 * op, checks a failure, retries it, and returns op's last result; alloc,
 * write and free go through it.
 */
template <class Env, class Derived>
class fault_caches {
public:
	unsigned failures = 0; /* calls that failed */

protected:
	using backend = typename Env::backend;
	using cache_t = ua::unmapped_cache<backend>;

	struct live_alloc {
		unsigned cache;
		std::size_t size;
		unsigned char byte; /* written over the first min(size, 256) bytes; 0: not written */
	};

	explicit fault_caches(typename Env::machine_type &m)
		: m_(m), boot_free_(m.nr_free_pages()), boot_aliases_(m.backend.stats().aliases)
	{
		const ua::cache_config cfgs[3] = {ua::text_cache_config(), ua::secret_cache_config(), ua::ro_cache_config()};
		for (unsigned i = 0; i < 3; i++) {
			ua::cache_config c = cfgs[i];
			c.nr_shards = 1;
			c.spare_chunks = 1;
			caches_[i] = std::make_unique<cache_t>(m, c);
		}
	}

	static ua::error get_err(ua::error e) { return e; }
	template <class T>
	static ua::error get_err(const ua::result<T> &r) { return r.err; }

	void alloc(unsigned c, std::size_t size, std::size_t align, ua::ua_flags flags)
	{
		auto r = self().step("alloc", [&] { return caches_[c]->alloc(size, align, flags); });
		auto a = reinterpret_cast<std::uintptr_t>(r.value);
		REQUIRE(!live_.count(a));
		live_[a] = {c, size, 0};
		if constexpr (backend::dereferenceable) {
			if (flags & ua::ua_zero)
				CHECK(static_cast<unsigned char *>(r.value)[size - 1] == 0);
		}
	}

	void write(std::uintptr_t a, unsigned char b)
	{
		live_alloc &l = live_[a];
		std::vector<unsigned char> buf(std::min<std::size_t>(l.size, 256), b);
		self().step("write", [&] { return caches_[l.cache]->write(reinterpret_cast<void *>(a), buf.data(), buf.size()); });
		l.byte = b;
	}

	void free(std::uintptr_t a, bool deferred)
	{
		cache_t &c = *caches_[live_[a].cache];
		self().step(deferred ? "free_deferred" : "free", [&] {
			return deferred ? c.free_deferred(reinterpret_cast<void *>(a)) : c.free(reinterpret_cast<void *>(a));
		});
		live_.erase(a);
		/* A second free of the same pointer is refused, whatever happened inside. */
		if (!deferred)
			CHECK(c.free(reinterpret_cast<void *>(a)) != ua::error::ok);
	}

	/* Live allocations as the caches see them: every one found at its address and size ("" if so). */
	std::string live_state() const
	{
		std::string s;
		for (auto &[a, l] : live_) {
			auto f = caches_[l.cache]->find_allocation(reinterpret_cast<void *>(a));
			if (!f.ok() || f.value.addr != a || f.value.size < l.size)
				s += "lost " + std::to_string(a) + ";";
		}
		return s;
	}

	/*
	 * Direct map, frames and aliases agree with the chunks the caches hold
	 * and the runs their chunk sources have yet to give back (chunk_source.h,
	 * Faults that last): those are out of the direct map or not, so they
	 * bound the count from above only.
	 */
	void check_held_frames()
	{
		std::uint64_t held = 0, pending_frames = 0, pending_runs = 0;
		for (auto &c : caches_) {
			ua::cache_stats st = c->stats();
			held += st.chunks;
			pending_frames += st.source.repair_frames;
			pending_runs += st.source.repairs_pending;
		}
		std::uint64_t out = frames_out_of_direct_map(m_.backend);
		INFO("chunks held " << held << ", frames recorded for later " << pending_frames << ", out of the direct map " << out);
		CHECK(out >= held * ua::pages_per_chunk);
		CHECK(out <= held * ua::pages_per_chunk + pending_frames);
		CHECK(m_.nr_pages() - m_.nr_free_pages() >= held * ua::pages_per_chunk + pending_frames);
		CHECK(m_.backend.stats().aliases - boot_aliases_ <= held + pending_runs);
	}

	/* With the caches destroyed: every frame, alias and direct-map page is back as at boot. */
	void check_as_at_boot()
	{
		CHECK(m_.nr_free_pages() == boot_free_);
		CHECK(m_.backend.stats().aliases == boot_aliases_);
		CHECK(frames_out_of_direct_map(m_.backend) == 0);
		CHECK(m_.check_consistency() == "");
		CHECK(backend_consistency(m_.backend) == "");
	}

	typename Env::machine_type &m_;
	std::uint64_t boot_free_;
	std::uint64_t boot_aliases_;
	std::unique_ptr<cache_t> caches_[3];
	std::map<std::uintptr_t, live_alloc> live_;

private:
	Derived &self() { return static_cast<Derived &>(*this); }
};

/*
 * The machine operations a scenario makes: run(s) once on a fresh machine
 * with the injector counting and failing nothing, which must fail no call
 * and give everything back (s.finish()).
 */
template <class Env, class Scenario, class Run>
std::uint64_t count_operations(Run run)
{
	auto m = Env::make();
	m->backend.injector().arm(0);
	Scenario s(*m);
	run(s);
	const std::uint64_t total = m->backend.injector().count();
	CHECK(s.failures == 0);
	s.finish();
	return total;
}

}  // namespace ua_test
