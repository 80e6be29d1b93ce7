// SPDX-License-Identifier: MIT
/*
 * timeline.h - the discrete-event core of the timed generators.
 *
 * A timed generator (VM host, fleet BPF, tracing host, uptime parts) is a
 * set of future events - a VM arrives, an endpoint's old programs leave
 * after their grace period - kept in a queue ordered by time. Handling an
 * event emits zero or more ops (all stamped with the event's time) and may
 * schedule later events. The stream's next() hands out the emitted ops and
 * handles the next event only when they are used up, so the generator holds
 * only what is pending, never the whole sequence.
 *
 * Events at equal times are handled in the order they were scheduled (a
 * sequence number breaks ties), so a seed fixes the sequence exactly.
 * Events after `end_ns` are never handled: the stream ends there with
 * whatever is live still live (the replay frees it).
 *
 * Time is signed here so that a generator can start its history before 0
 * (a warm start: the VM host begins with the population it would have after
 * weeks of churn); an op whose event lies before 0 is stamped 0.
 */
#pragma once

#include "workload/op.h"

#include <cstdint>
#include <deque>
#include <queue>
#include <utility>
#include <vector>

namespace ua::workload {

template <class Event>
class timeline {
public:
	explicit timeline(std::int64_t end_ns) : end_(end_ns) {}

	void schedule(std::int64_t t_ns, Event e) { q_.push(item{t_ns, seq_++, std::move(e)}); }

	/* Queues an op for the stream, stamped with the current event's time (0 if before 0). */
	void emit(op o)
	{
		o.t_ns = now_ < 0 ? 0 : std::uint64_t(now_);
		out_.push_back(std::move(o));
	}

	std::int64_t now() const noexcept { return now_; }
	std::int64_t end() const noexcept { return end_; }

	/*
	 * The next op, handling events with handle(t, event) until one emits
	 * something; false when no event is left before the end.
	 */
	template <class Handler>
	bool next(op &o, Handler &&handle)
	{
		while (out_.empty()) {
			if (q_.empty() || q_.top().t > end_)
				return false;
			item it = q_.top();
			q_.pop();
			now_ = it.t;
			handle(it.t, it.e);
		}
		o = std::move(out_.front());
		out_.pop_front();
		return true;
	}

private:
	struct item {
		std::int64_t t;
		std::uint64_t seq;
		Event e;
	};
	struct later {
		bool operator()(const item &a, const item &b) const noexcept
		{
			return a.t != b.t ? a.t > b.t : a.seq > b.seq;
		}
	};

	std::priority_queue<item, std::vector<item>, later> q_;
	std::deque<op> out_;
	std::uint64_t seq_ = 0;
	std::int64_t now_ = 0;
	std::int64_t end_;
};

/* Seconds as signed nanoseconds (events may lie before 0). */
constexpr std::int64_t seconds_ns(double s) noexcept { return std::int64_t(s * 1e9); }

}  // namespace ua::workload
