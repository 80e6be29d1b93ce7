// Helpers shared by the workload tests: figures of a stream as it goes, and the
// tolerances of the statistical checks.
#pragma once

#include "workload/workload.h"

#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>

namespace ua::workload::test {

/*
 * Tolerance of a sample proportion: 5 standard deviations of a binomial
 * proportion p over n draws. A check with it fails by chance with
 * probability below 6e-7; the draws are seeded, so a failure is a change of
 * the distribution, not bad luck.
 */
inline double proportion_tolerance(double p, double n) { return 5.0 * std::sqrt(p * (1.0 - p) / n); }

/* Tolerance of a sample mean of n draws with standard deviation sd: 5 sd / sqrt(n). */
inline double mean_tolerance(double sd, double n) { return 5.0 * sd / std::sqrt(n); }

/*
 * Walks a stream, calling each(op, checker) after every op was accepted; the
 * stream must be valid (CHECKed: the first violation is reported). Returns
 * the final figures.
 */
inline workload_stats walk(op_stream s, const std::function<void(const op &, const op_checker &)> &each)
{
	op_checker c;
	std::size_t i = 0;
	std::string why;
	for (op o; s.next(o); i++) {
		why = c.check(o);
		if (!why.empty())
			break;
		each(o, c);
	}
	INFO("op " << i << ": " << why);
	CHECK(why == "");
	return c.stats();
}

/*
 * Time average of a quantity of the live set between from_ns and the last
 * op: value(checker) is held from one op's time to the next op's.
 */
inline double time_average(op_stream s, std::uint64_t from_ns, const std::function<double(const op_checker &)> &value)
{
	double area = 0, held = 0;
	std::uint64_t last = from_ns, end = from_ns;
	bool started = false;
	walk(std::move(s), [&](const op &o, const op_checker &c) {
		if (o.t_ns >= from_ns) {
			if (started)
				area += held * double(o.t_ns - last);
			last = o.t_ns;
			started = true;
		}
		held = value(c);
		end = o.t_ns;
	});
	return end > from_ns ? area / double(end - from_ns) : held;
}

}  // namespace ua::workload::test
