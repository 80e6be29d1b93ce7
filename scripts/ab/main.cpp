// SPDX-License-Identifier: MIT
/*
 * scripts/ab/main.cpp - two builds of the library in one process, taking
 * turns on the same steady state as bench/rounds.h does for two allocators:
 * both hold their live sets at once, each turn starts with a tenth of its
 * steps untimed, who goes first alternates. Prints the median of the
 * per-round ratios new/old with their range.
 *
 *   ab [arena|cache] [ROUNDS] [LIVE] [STEPS_PER_TURN]
 */
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "runner.h"

int main(int argc, char **argv)
{
	const char *kind = argc > 1 ? argv[1] : "arena";
	if (std::strcmp(kind, "arena") && std::strcmp(kind, "cache")) {
		std::fprintf(stderr, "usage: %s [arena|cache] [ROUNDS] [LIVE] [STEPS_PER_TURN]\n", argv[0]);
		return 2;
	}
	int rounds = argc > 2 ? std::atoi(argv[2]) : 20;
	std::size_t live = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 100000;
	std::size_t steps = argc > 4 ? std::strtoull(argv[4], nullptr, 10) : 200000;
	if (rounds < 1 || live < 1 || steps < 10) {
		std::fprintf(stderr, "ab: ROUNDS, LIVE and STEPS_PER_TURN (>= 10) must be positive\n");
		return 2;
	}
	std::size_t total = (steps + steps / 10) * std::size_t(rounds);
	std::unique_ptr<ab_runner> o(ab_make_old(kind, live, total, 1)), n(ab_make_new(kind, live, total, 1));
	o->fill();
	n->fill();
	std::vector<double> ro, rn, ratio;
	for (int r = 0; r < rounds; r++) {
		double a, b;
		if (r % 2 == 0) {
			a = o->turn(steps / 10, steps);
			b = n->turn(steps / 10, steps);
		} else {
			b = n->turn(steps / 10, steps);
			a = o->turn(steps / 10, steps);
		}
		ro.push_back(a);
		rn.push_back(b);
		ratio.push_back(b / a);
	}
	auto median = [](std::vector<double> v) {
		std::sort(v.begin(), v.end());
		return v[v.size() / 2];
	};
	std::printf("%s, %zu live: old %.1f ns/op, new %.1f ns/op, new/old median %.3f (rounds %.3f-%.3f)\n", kind, live,
		    median(ro), median(rn), median(ratio), *std::min_element(ratio.begin(), ratio.end()),
		    *std::max_element(ratio.begin(), ratio.end()));
	return 0;
}
