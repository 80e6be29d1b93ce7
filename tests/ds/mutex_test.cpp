#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include <unmapped_alloc/ds/mutex.h>

namespace {

/*
 * try_lock() and unlock() where the lock is taken inside an assertion macro,
 * which clang's thread-safety analysis cannot follow (thread_safety.h).
 */
bool try_lock(ua::mutex &m) UA_NO_THREAD_SAFETY_ANALYSIS
{
	return m.try_lock();
}
void unlock(ua::mutex &m) UA_NO_THREAD_SAFETY_ANALYSIS
{
	m.unlock();
}

}  // namespace

TEST_CASE("mutex: try_lock fails while held and succeeds after unlock")
{
	ua::mutex m;
	REQUIRE(try_lock(m));
	CHECK_FALSE(try_lock(m));
	std::thread t([&] { CHECK_FALSE(try_lock(m)); });
	t.join();
	unlock(m);
	CHECK(try_lock(m));
	unlock(m);
}

TEST_CASE("mutex: excludes under contention, with waiters that sleep and are woken")
{
	ua::mutex m;
	long counter = 0; /* plain: only the lock keeps the increments whole */
	constexpr int threads = 4, rounds = 20000;
	std::atomic<int> started{0};
	/* Held at first, long enough that the others give up spinning and sleep. */
	m.lock();
	std::vector<std::thread> ts;
	for (int t = 0; t < threads; t++)
		ts.emplace_back([&] {
			started.fetch_add(1);
			for (int i = 0; i < rounds; i++) {
				std::lock_guard<ua::mutex> g(m);
				counter++;
			}
		});
	while (started.load() < threads)
		std::this_thread::yield();
	std::this_thread::sleep_for(std::chrono::milliseconds(20));
	counter = -1; /* written under the lock: nobody may have incremented yet */
	m.unlock();
	for (auto &t : ts)
		t.join();
	CHECK(counter == long(threads) * rounds - 1);
	CHECK(try_lock(m)); /* left unlocked */
	unlock(m);
}
