// SPDX-License-Identifier: MIT
/*
 * validation/verdict.h - the arithmetic of the validation goals.
 *
 * Three goals, each judged per cell and computed from the figures, never
 * assumed:
 *   growth   simulated DirectMap4k growth within +-30% of the published one
 *            at every point. A published growth of 0 leaves no room: the
 *            simulation passes only with 0 too.
 *   gib      1 GiB splits within +-1 of the published count.
 *   live     simulated split count within +-30% of the live delta, judged
 *            only where the live delta is at least 20 splits (below that,
 *            "not judged": one stray split of another process on the
 *            machine is already 5%).
 */
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>

namespace ua::validation {

inline constexpr double growth_tolerance = 0.30;
inline constexpr std::int64_t gib_split_tolerance = 1;
inline constexpr std::int64_t live_min_splits = 20;

enum class verdict { pass, fail, not_judged };

inline const char *verdict_name(verdict v)
{
	switch (v) {
	case verdict::pass: return "pass";
	case verdict::fail: return "FAIL";
	case verdict::not_judged: return "not judged";
	}
	return "?";
}

/* sim / ref; NAN when ref is 0 (no ratio: the table prints "-"). */
inline double ratio_of(double sim, double ref) { return ref == 0 ? NAN : sim / ref; }

/* |sim - ref| <= tol * |ref|; with ref == 0 only sim == 0 passes. */
inline verdict within_fraction(std::int64_t sim, std::int64_t ref, double tol)
{
	const double diff = std::fabs(double(sim) - double(ref));
	return diff <= tol * std::fabs(double(ref)) ? verdict::pass : verdict::fail;
}

inline verdict judge_growth(std::int64_t sim_kb, std::int64_t published_kb)
{
	return within_fraction(sim_kb, published_kb, growth_tolerance);
}

inline verdict judge_gib(std::int64_t sim_splits, std::int64_t published_splits)
{
	return std::llabs(sim_splits - published_splits) <= gib_split_tolerance ? verdict::pass : verdict::fail;
}

inline verdict judge_live(std::int64_t sim_splits, std::int64_t live_splits)
{
	if (live_splits < live_min_splits)
		return verdict::not_judged;
	return within_fraction(sim_splits, live_splits, growth_tolerance);
}

/* "1.23", or "-" when there is no ratio. */
inline std::string ratio_text(double r)
{
	if (std::isnan(r))
		return "-";
	char b[32];
	std::snprintf(b, sizeof b, "%.2f", r);
	return b;
}

}  // namespace ua::validation
