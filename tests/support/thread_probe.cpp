// SPDX-License-Identifier: MIT
/*
 * tests/support/thread_probe.cpp - starts one thread and joins it; exits 0.
 * The single_threaded_guard test runs it with no_threads.so preloaded and
 * expects status 97: the guard of single_threaded_tests catches std::thread.
 */
#include <thread>

int main()
{
	int v = 0;
	std::thread t([&v] { v = 1; });
	t.join();
	return v == 1 ? 0 : 1;
}
