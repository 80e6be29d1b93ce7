// SPDX-License-Identifier: MIT
/* Tests for bench/validation/verdict.h. */
#include <doctest/doctest.h>

#include <cmath>

#include "validation/verdict.h"

using namespace ua::validation;

TEST_CASE("growth is judged within 30% of the published figure, both ways")
{
	CHECK(judge_growth(1000, 1000) == verdict::pass);
	CHECK(judge_growth(1300, 1000) == verdict::pass);
	CHECK(judge_growth(700, 1000) == verdict::pass);
	CHECK(judge_growth(1301, 1000) == verdict::fail);
	CHECK(judge_growth(699, 1000) == verdict::fail);
	CHECK(judge_growth(-1000, 1000) == verdict::fail);
}

TEST_CASE("a published growth of 0 passes only a simulated 0")
{
	CHECK(judge_growth(0, 0) == verdict::pass);
	CHECK(judge_growth(2048, 0) == verdict::fail);
	CHECK(std::isnan(ratio_of(2048, 0)));
	CHECK(ratio_text(ratio_of(2048, 0)) == "-");
}

TEST_CASE("1 GiB splits are judged within one")
{
	CHECK(judge_gib(3, 3) == verdict::pass);
	CHECK(judge_gib(4, 3) == verdict::pass);
	CHECK(judge_gib(2, 3) == verdict::pass);
	CHECK(judge_gib(5, 3) == verdict::fail);
	CHECK(judge_gib(0, 2) == verdict::fail);
}

TEST_CASE("live deltas under 20 splits are not judged")
{
	CHECK(judge_live(100, 19) == verdict::not_judged);
	CHECK(judge_live(20, 20) == verdict::pass);
	CHECK(judge_live(26, 20) == verdict::pass);
	CHECK(judge_live(27, 20) == verdict::fail);
	CHECK(judge_live(1534, 387) == verdict::fail);
}

TEST_CASE("ratios print with two decimals")
{
	CHECK(ratio_text(ratio_of(1052672, 374784)) == "2.81");
	CHECK(ratio_text(ratio_of(0, 10)) == "0.00");
	CHECK(std::string(verdict_name(verdict::fail)) == "FAIL");
}
