// SPDX-License-Identifier: MIT
/*
 * tests/support/no_threads.cpp - an LD_PRELOAD module whose pthread_create()
 * ends the process with status 97 and says why.
 *
 * The tests listed in single_threaded_tests (tests/support/meson.build) never
 * start a second thread, so ThreadSanitizer can find nothing in them (a data
 * race needs two threads) and the TSan build neither builds nor runs them.
 * The g++ build runs each of them with this module preloaded, so a listed
 * test that starts a thread (std::thread, liburcu's call_rcu thread, a
 * library that starts one) fails there and has to leave the list.
 */
#include <pthread.h>
#include <unistd.h>

#include <cstring>

extern "C" int pthread_create(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *)
{
	static const char msg[] =
		"no_threads.so: this test is in single_threaded_tests (tests/support/meson.build), "
		"so the TSan build skips it, but it started a thread: take it off the list\n";
	(void)!write(2, msg, sizeof msg - 1);
	_exit(97);
}
