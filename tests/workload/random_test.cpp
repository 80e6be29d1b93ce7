// Tests for random.h: the seeded draws behind every generator, checked
// against their distributions on large samples (tolerances from support.h).
#include "workload/random.h"
#include "workload/vm_host.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "support.h"

using namespace ua::workload;
using ua::workload::test::mean_tolerance;
using ua::workload::test::proportion_tolerance;

TEST_CASE("draw_exponential: mean and median of a large sample")
{
	rng_t rng(7);
	const double mean = 3.0, n = 200000;
	double sum = 0, below_median = 0;
	for (int i = 0; i < int(n); i++) {
		double x = draw_exponential(rng, mean);
		REQUIRE(x >= 0);
		sum += x;
		below_median += x < mean * std::log(2.0);
	}
	CHECK(std::fabs(sum / n - mean) < mean_tolerance(mean, n)); /* sd of an exponential = its mean */
	CHECK(std::fabs(below_median / n - 0.5) < proportion_tolerance(0.5, n));
}

TEST_CASE("draw_normal and draw_lognormal: moments and quantiles")
{
	rng_t rng(11);
	const double n = 200000;
	double sum = 0, sq = 0, below1 = 0;
	for (int i = 0; i < int(n); i++) {
		double z = draw_normal(rng);
		sum += z;
		sq += z * z;
		below1 += z < 1.0;
	}
	CHECK(std::fabs(sum / n) < mean_tolerance(1.0, n));
	CHECK(std::fabs(sq / n - 1.0) < mean_tolerance(std::sqrt(2.0), n)); /* Var(Z^2) = 2 */
	CHECK(std::fabs(below1 / n - 0.841345) < proportion_tolerance(0.841345, n));

	/* Log-normal quantiles: median m, and m e^(+-sigma) at the 84.1% and 15.9% points. */
	const double m = 7200, sigma = 2.5;
	double q50 = 0, q84 = 0, q16 = 0;
	for (int i = 0; i < int(n); i++) {
		double x = draw_lognormal(rng, m, sigma);
		REQUIRE(x > 0);
		q50 += x < m;
		q84 += x < m * std::exp(sigma);
		q16 += x < m * std::exp(-sigma);
	}
	CHECK(std::fabs(q50 / n - 0.5) < proportion_tolerance(0.5, n));
	CHECK(std::fabs(q84 / n - 0.841345) < proportion_tolerance(0.841345, n));
	CHECK(std::fabs(q16 / n - 0.158655) < proportion_tolerance(0.158655, n));
}

TEST_CASE("draw_weighted: frequencies follow the weights; zero weights are never drawn")
{
	rng_t rng(3);
	const std::vector<double> w = {0.22, 0, 0.5, 0.28};
	std::vector<double> count(w.size());
	const double n = 100000;
	for (int i = 0; i < int(n); i++)
		count[draw_weighted(rng, w)]++;
	CHECK(count[1] == 0);
	for (std::size_t i = 0; i < w.size(); i++)
		CHECK(std::fabs(count[i] / n - w[i]) < proportion_tolerance(std::max(w[i], 1e-9), n) + 1e-12);
}

TEST_CASE("to_ns and seconds_ns")
{
	CHECK(to_ns(0) == 0);
	CHECK(to_ns(-1) == 0);
	CHECK(to_ns(1.5) == 1500000000ull);
	CHECK(seconds_ns(-2.0) == -2000000000ll);
}
