// SPDX-License-Identifier: MIT
/*
 * live/stop.h - Ctrl-C and SIGTERM during a live run.
 *
 * A live run holds kernel objects (BPF programs, secret files, page cache, a
 * tracefs instance) that must go back before the process exits. A
 * signal_guard installed for the run turns SIGINT, SIGTERM and SIGHUP into a
 * flag that every loop of the run polls (stop_requested()); the loops stop,
 * the owners' destructors release what they hold, and the guard restores
 * the previous handlers. A second signal while stopping takes the previous
 * (default) action: the kernel then releases fds, mappings and the unlinked
 * ageing file itself; only a tracefs instance would stay, and the next run
 * removes instances whose process is gone (live/page_trace.h).
 */
#pragma once

#include <atomic>
#include <csignal>

namespace ua::live {

namespace detail {
inline std::atomic<int> &stop_signal() noexcept
{
	static std::atomic<int> s{0};
	return s;
}
inline void on_stop_signal(int sig) noexcept
{
	if (stop_signal().exchange(sig) != 0) {
		std::signal(sig, SIG_DFL); /* second signal: leave now */
		std::raise(sig);
	}
}
}  // namespace detail

inline bool stop_requested() noexcept { return detail::stop_signal().load(std::memory_order_relaxed) != 0; }
inline int stop_signal_number() noexcept { return detail::stop_signal().load(); }
/* Tests and the end of a run: forget a stop that was handled. */
inline void clear_stop() noexcept { detail::stop_signal().store(0); }

class signal_guard {
public:
	signal_guard() noexcept
	{
		struct sigaction sa {};
		sa.sa_handler = detail::on_stop_signal;
		sigemptyset(&sa.sa_mask);
		for (int i = 0; i < n; i++)
			sigaction(sigs[i], &sa, &old_[i]);
	}
	signal_guard(const signal_guard &) = delete;
	signal_guard &operator=(const signal_guard &) = delete;
	~signal_guard()
	{
		for (int i = 0; i < n; i++)
			sigaction(sigs[i], &old_[i], nullptr);
	}

private:
	static constexpr int n = 3;
	static constexpr int sigs[n] = {SIGINT, SIGTERM, SIGHUP};
	struct sigaction old_[n];
};

}  // namespace ua::live
