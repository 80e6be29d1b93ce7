// Misuse the library must answer clearly: a write to memory queued by
// free_deferred() (not_live), a cache_config with a bad field (the message
// names it), a machine destroyed before its caches (stopped, naming the
// rule), a real machine larger than the host (-ENOMEM at once, before the
// OOM killer), and describe() of a write past the end.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "reliability_fixture.h"

using namespace ua;

namespace {

/* Runs fn in a child with stderr to a pipe; returns what it wrote, and its signal in *sig. */
template <class Fn>
std::string child_stderr(Fn &&fn, int *sig)
{
	int fds[2];
	REQUIRE(::pipe(fds) == 0);
	*sig = ua_test::child_signal([&] {
		::signal(SIGABRT, SIG_DFL); /* doctest reports a death as its own test otherwise */
		::dup2(fds[1], 2);
		::close(fds[0]);
		fn();
	});
	::close(fds[1]);
	std::string out;
	char buf[512];
	ssize_t n;
	while ((n = ::read(fds[0], buf, sizeof buf)) > 0)
		out.append(buf, std::size_t(n));
	::close(fds[0]);
	return out;
}

}  // namespace

TEST_CASE("misuse: writes to an allocation queued by free_deferred() are refused with not_live")
{
	auto m = ua_test::sim_fault_env::make();
	unmapped_cache<ua_test::sim_fault_env::backend> c(*m, text_cache_config());
	unsigned char b = 0x90;
	for (std::size_t size : {std::size_t(300), std::size_t(3) << 20}) {
		INFO("size " << size);
		auto r = c.alloc(size);
		REQUIRE(r.ok());
		REQUIRE(c.write(r.value, &b, 1) == error::ok);
		{
			/* A reader from before the deferred free holds its grace period open, so the
			 * checks see it queued: without one, the free may complete between two checks
			 * (as it did under TSan) and a chunk given back answers foreign_pointer. */
			rcu::read_guard reader;
			REQUIRE(c.free_deferred(r.value) == error::ok);
			CHECK(c.write(r.value, &b, 1) == error::not_live);
			CHECK(c.write(static_cast<char *>(r.value) + 10, &b, 1) == error::not_live);
			CHECK(c.free(r.value) == error::not_live);
		}
		rcu::barrier();
		CHECK(c.write(r.value, &b, 1) != error::ok);
	}
}

TEST_CASE("misuse: an invalid cache_config names the field")
{
	struct bad {
		cache_config cfg;
		const char *field;
	};
	cache_config g3 = text_cache_config(), g0 = text_cache_config(), s0 = text_cache_config(), s100 = text_cache_config(),
		     nul = text_cache_config(), sro = secret_cache_config();
	g3.granule = 3;
	g0.granule = 0;
	s0.nr_shards = 0;
	s100.nr_shards = 100;
	nul.name = nullptr;
	sro.dm_action = direct_map_action::read_only;
	const bad cases[] = {{g3, "granule"}, {g0, "granule"}, {s0, "nr_shards"}, {s100, "nr_shards"}, {nul, "name"},
			     {sro, "dm_action"}};
	CHECK(text_cache_config().invalid_reason() == nullptr);
	for (const bad &c : cases) {
		INFO(c.field);
		REQUIRE(c.cfg.invalid_reason() != nullptr);
		CHECK(std::string(c.cfg.invalid_reason()).find(c.field) != std::string::npos);
		int sig = 0;
		std::string err = child_stderr(
			[&] {
				auto m = ua_test::sim_fault_env::make();
				unmapped_cache<ua_test::sim_fault_env::backend> cache(*m, c.cfg);
			},
			&sig);
		CHECK(sig == SIGABRT);
		CHECK(err.find(std::string("cache_config.") + c.field) != std::string::npos);
	}
}

TEST_CASE("misuse: a machine destroyed before its cache is stopped with the rule")
{
	int sig = 0;
	std::string err = child_stderr(
		[] {
			auto m = ua_test::sim_fault_env::make();
			auto *c = new unmapped_cache<ua_test::sim_fault_env::backend>(*m, text_cache_config());
			(void)c->alloc(64);
			m.reset(); /* before the cache: used to crash later in ~unmapped_cache */
			delete c;
		},
		&sig);
	CHECK(sig == SIGABRT);
	CHECK(err.find("machine destroyed before the caches") != std::string::npos);
}

TEST_CASE("misuse: a real machine larger than the host is refused with -ENOMEM at once")
{
	int code = -1;
	int sig = ua_test::child_signal(
		[]() -> int {
			::alarm(60); /* populating 4 TiB would run until the OOM killer: SIGALRM or SIGKILL instead of exit 0 */
			machine<linux_backend> m(std::uint64_t{1} << 30); /* 4 TiB */
			if (m.backend.ok())
				return 1;
			if (m.backend.init_error() != -ENOMEM)
				return 2;
			if (std::string(m.backend.init_step()) != "memory check")
				return 3;
			return 0;
		},
		&code);
	CHECK(sig == 0);
	CHECK(code == 0);
}

TEST_CASE("misuse: describe(too_large) also names a write past the end")
{
	CHECK(std::string(describe(error::too_large)).find("past the end") != std::string::npos);
	CHECK(std::string(describe(error::forked)).find("fork") != std::string::npos);
}

TEST_CASE("memory pressure: a cache that finds no free chunk runs the shrinkers first (direct reclaim)")
{
	/* 16 MiB: 8 chunks. The first cache keeps every freed chunk as a spare; the second needs them. */
	auto m = ua_test::fault_env<sim_direct_map, 4096>::make();
	cache_config hoard = text_cache_config("hoard");
	hoard.spare_chunks = 8;
	hoard.nr_shards = 1;
	unmapped_cache<ua_test::fault_env<sim_direct_map, 4096>::backend> a(*m, hoard), b(*m, text_cache_config("needy"));
	std::vector<void *> held;
	for (;;) {
		auto r = a.alloc(chunk_size);
		if (!r.ok())
			break;
		held.push_back(r.value);
	}
	REQUIRE(held.size() >= 4);
	for (void *p : held)
		REQUIRE(a.free(p) == error::ok);
	CHECK(a.stats().spare_chunks == held.size());
	/* Before: no_memory until someone called shrink() by hand. */
	auto small = b.alloc(64);
	CHECK(small.ok());
	auto large = b.alloc(3 << 20);
	CHECK(large.ok());
	CHECK(a.stats().spare_chunks <= held.size() - 3);
	CHECK(b.free(small.value) == error::ok);
	CHECK(b.free(large.value) == error::ok);
	/* Nothing to reclaim: still a clear no_memory, quickly. */
	std::vector<void *> all;
	for (;;) {
		auto r = b.alloc(chunk_size);
		if (!r.ok()) {
			CHECK(r.err == error::no_memory);
			break;
		}
		all.push_back(r.value);
	}
	for (void *p : all)
		CHECK(b.free(p) == error::ok);
}
