// Running a piece of a test in a forked child, for checks that may fault
// (touching memory the backend took away) or must see what a child sees.
// Shared by the mapping, cache, peer and reliability tests.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <type_traits>

namespace ua_test {

/*
 * Runs fn in a forked child and returns the raw wait status. fn returns the
 * child's exit code, or nothing (exit code 0). The child restores the default
 * SIGSEGV and SIGBUS actions first: the test runner's and the sanitizers'
 * handlers would otherwise turn the expected fault into an ordinary exit.
 * Output is flushed before the fork so the child cannot print it twice.
 */
template <class Fn>
int run_in_child(Fn &&fn)
{
	std::fflush(nullptr);
	pid_t pid = ::fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		::signal(SIGSEGV, SIG_DFL);
		::signal(SIGBUS, SIG_DFL);
		if constexpr (std::is_void_v<decltype(fn())>) {
			fn();
			::_exit(0);
		} else {
			::_exit(int(fn()));
		}
	}
	int status = 0;
	if (::waitpid(pid, &status, 0) != pid)
		return -1;
	return status;
}

inline bool died_of(int status, int sig) { return status != -1 && WIFSIGNALED(status) && WTERMSIG(status) == sig; }
inline bool died_of_sigsegv(int status) { return died_of(status, SIGSEGV); }
inline bool exited_with(int status, int code) { return status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == code; }

/* The signal that killed the child running fn, 0 if it exited (its exit code in *code), -1 on error. */
template <class Fn>
int child_signal(Fn &&fn, int *code = nullptr)
{
	int status = run_in_child(static_cast<Fn &&>(fn));
	if (status == -1)
		return -1;
	if (WIFEXITED(status) && code)
		*code = WEXITSTATUS(status);
	return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

}  // namespace ua_test
