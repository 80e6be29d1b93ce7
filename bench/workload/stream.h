// SPDX-License-Identifier: MIT
/*
 * stream.h - workloads as streams of ops, for sequences too long to hold.
 *
 * A week of VM churn or a day of fleet BPF updates is millions of ops; as a
 * std::vector<op> that is hundreds of megabytes, and the replay only ever
 * looks at one op at a time. So every timed generator is a *stream*: an
 * object with `bool next(op &)` that yields the next op, or false at the
 * end, holding state proportional to its live set, not to its length.
 * op_stream erases the generator's type (one indirect call per op), so the
 * replay and the tools handle every workload alike:
 *
 *   op_stream s = vm_host_stream(p);        // or vector_stream(w) for a vector
 *   for (op o; s.next(o);) replay(o);
 *   workload w = collect(vm_host_stream(p)); // the vector form, when it fits
 *
 * check_stream() and measure_stream() apply op_checker (op.h) as the stream
 * goes; merge_by_time() interleaves several timed streams into one, which is
 * how the uptime and co-location workloads are built from their parts.
 */
#pragma once

#include "workload/op.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace ua::workload {

/* Anything that yields ops one at a time. */
template <class G>
concept op_generator = requires(G g, op o) {
	{ g.next(o) } -> std::same_as<bool>;
};

class op_stream {
public:
	op_stream() = default;

	/* Takes the generator over; the stream may be moved, never copied into two readers. */
	template <op_generator G>
	op_stream(std::string name, G g) : name_(std::move(name))
	{
		auto held = std::make_shared<G>(std::move(g));
		next_ = [held](op &o) { return held->next(o); };
	}

	/* The next op into o and true, or false once the stream has ended (and for ever after). */
	bool next(op &o)
	{
		if (!next_ || !next_(o)) {
			next_ = nullptr;
			return false;
		}
		return true;
	}

	const std::string &name() const noexcept { return name_; }

private:
	std::string name_;
	std::function<bool(op &)> next_;
};

namespace detail {
struct vector_gen {
	std::shared_ptr<const std::vector<op>> ops;
	std::size_t at = 0;

	bool next(op &o)
	{
		if (at >= ops->size())
			return false;
		o = (*ops)[at++];
		return true;
	}
};
}  // namespace detail

/* A stream over a workload held in memory (it keeps the workload alive). */
inline op_stream vector_stream(workload w)
{
	auto ops = std::make_shared<const std::vector<op>>(std::move(w.ops));
	return op_stream(std::move(w.name), detail::vector_gen{std::move(ops), 0});
}

/* The vector form of a stream: every op, in order. */
inline workload collect(op_stream s)
{
	workload w{s.name(), {}};
	for (op o; s.next(o);)
		w.ops.push_back(std::move(o));
	return w;
}

/*
 * Checks a whole stream against op.h's rules; "" or "op N: ..." for the first
 * violation. On return st holds the figures up to that op (all of them if
 * the stream was valid).
 */
inline std::string check_stream(op_stream s, workload_stats &st)
{
	op_checker c;
	std::size_t i = 0;
	for (op o; s.next(o); i++) {
		std::string why = c.check(o);
		if (!why.empty()) {
			st = c.stats();
			return "op " + std::to_string(i) + ": " + why;
		}
	}
	st = c.stats();
	return {};
}

inline std::string validate_stream(op_stream s)
{
	workload_stats st;
	return check_stream(std::move(s), st);
}

/* measure() of a stream; meaningful only if validate_stream() returned "". */
inline workload_stats measure_stream(op_stream s)
{
	workload_stats st;
	(void)check_stream(std::move(s), st);
	return st;
}

namespace detail {
/*
 * The k-way merge behind merge_by_time(): the earliest head next; on equal
 * time stamps the stream listed first. IDs are renumbered id * k + i
 * (stream i of k), so IDs of different parts never collide and each part's
 * IDs keep their order.
 */
struct merge_gen {
	std::vector<op_stream> parts;
	std::vector<op> heads;
	std::vector<bool> has;
	bool started = false;

	bool next(op &o)
	{
		const std::size_t k = parts.size();
		if (!started) {
			heads.resize(k);
			has.assign(k, false);
			for (std::size_t i = 0; i < k; i++)
				has[i] = parts[i].next(heads[i]);
			started = true;
		}
		std::size_t best = k;
		for (std::size_t i = 0; i < k; i++)
			if (has[i] && (best == k || heads[i].t_ns < heads[best].t_ns))
				best = i;
		if (best == k)
			return false;
		o = std::move(heads[best]);
		o.id = o.id * k + best;
		has[best] = parts[best].next(heads[best]);
		return true;
	}
};
}  // namespace detail

/*
 * One stream of the ops of several timed streams, in time order. Each part
 * must be valid and non-decreasing in time on its own; the merge then is
 * too. IDs are renumbered (id * k + i); tags and every other field are kept.
 */
inline op_stream merge_by_time(std::string name, std::vector<op_stream> parts)
{
	return op_stream(std::move(name), detail::merge_gen{std::move(parts), {}, {}, false});
}

}  // namespace ua::workload
