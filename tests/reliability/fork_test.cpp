// fork(): a child never changes its parent's memory through a cache it
// inherited, gets a clear error (error::forked) from every call on it, never
// hangs on a lock a parent thread held at fork time, and can create caches of
// its own that work (cache/fork.h). Real backend: its aliases and the
// memfd's write path are shared with the parent, so this is where a child
// could reach the parent's memory.
#include <doctest/doctest.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "reliability_fixture.h"

using namespace ua;

namespace {

using real_machine = machine<linux_backend>;
constexpr std::uint64_t machine_pages = 16384; /* 64 MiB */

}  // namespace

TEST_CASE("fork: a child's calls on an inherited cache are refused and the parent's memory is unchanged")
{
	real_machine m(machine_pages);
	REQUIRE(m.backend.ok());
	unmapped_cache<linux_backend> text(m, text_cache_config()), secret(m, secret_cache_config());
	auto p = text.alloc(256);
	auto s = secret.alloc(256);
	REQUIRE(p.ok());
	REQUIRE(s.ok());
	unsigned char code[256];
	std::memset(code, 0xc3, sizeof code); /* ret */
	REQUIRE(text.write(p.value, code, sizeof code) == error::ok);
	std::memset(s.value, 0x5a, 256);

	int exit_code = -1;
	::alarm(30); /* a hang in the child shows as the parent's SIGALRM */
	int sig = ua_test::child_signal(
		[&]() -> int {
			unsigned char other[256];
			std::memset(other, 0xcc, sizeof other);
			/* Before cache/fork.h: the free succeeded, the same address came back, and the write landed in the parent. */
			if (text.free(p.value) != error::forked)
				return 1;
			if (text.alloc(256).err != error::forked)
				return 2;
			if (text.write(p.value, other, sizeof other) != error::forked)
				return 3;
			if (text.free_deferred(p.value) != error::forked)
				return 4;
			if (text.find_allocation(p.value).err != error::forked || text.contains(p.value))
				return 5;
			if (secret.alloc(64).err != error::forked || secret.free(s.value) != error::forked)
				return 6;
			if (text.shrink() != 0 || text.stats().chunks != 0)
				return 7;
			if (shrinker_registry::global().shrink_all() != 0)
				return 8;
			/* A cache of the child's own, on a machine of its own, works. */
			real_machine mine(2048);
			if (!mine.backend.ok())
				return 9;
			{
				unmapped_cache<linux_backend> c(mine, text_cache_config());
				auto q = c.alloc(128);
				if (!q.ok() || c.write(q.value, other, 128) != error::ok || c.free(q.value) != error::ok)
					return 10;
			}
			return 0;
		},
		&exit_code);
	::alarm(0);
	CHECK(sig == 0);
	CHECK(exit_code == 0);
	/* The parent's allocations are as they were, and its caches work. */
	const auto *bytes = static_cast<const unsigned char *>(p.value);
	for (int i = 0; i < 256; i++)
		REQUIRE(bytes[i] == 0xc3);
	for (int i = 0; i < 256; i++)
		REQUIRE(static_cast<const unsigned char *>(s.value)[i] == 0x5a);
	CHECK(text.find_allocation(p.value).ok());
	CHECK(text.free(p.value) == error::ok);
	CHECK(secret.free(s.value) == error::ok);
	auto again = text.alloc(64);
	CHECK(again.ok());
	CHECK(text.free(again.value) == error::ok);
}

TEST_CASE("fork: children forked while two parent threads churn never hang")
{
	real_machine m(machine_pages);
	REQUIRE(m.backend.ok());
	unmapped_cache<linux_backend> c(m, text_cache_config());
	std::atomic<bool> stop{false};
	auto churn = [&] {
		std::vector<void *> mine;
		unsigned i = 0;
		while (!stop.load(std::memory_order_relaxed)) {
			if (mine.size() < 200 || i++ % 2) {
				auto r = c.alloc(64 + (i % 4000));
				if (r.ok())
					mine.push_back(r.value);
			} else {
				(void)(i % 3 ? c.free(mine.back()) : c.free_deferred(mine.back()));
				mine.pop_back();
			}
		}
		for (void *p : mine)
			(void)c.free(p);
	};
	std::thread t1(churn), t2(churn);
	unsigned ok = 0, hung = 0;
	for (int k = 0; k < 12; k++) {
		int status = ua_test::run_in_child([&]() -> int {
			::alarm(10); /* a hang is SIGALRM */
			auto r = c.alloc(64);
			if (r.err != error::forked)
				return 1;
			(void)c.stats();
			return 0;
		});
		if (ua_test::exited_with(status, 0))
			ok++;
		else if (ua_test::died_of(status, SIGALRM))
			hung++;
		std::this_thread::sleep_for(std::chrono::milliseconds(20));
	}
	stop = true;
	t1.join();
	t2.join();
	CHECK(hung == 0);
	CHECK(ok == 12);
	rcu::barrier();
	CHECK(c.stats().live_count == 0);
}
