// SPDX-License-Identifier: MIT
/* Tests for bench/validation/published.h: the growth arithmetic over the published cells. */
#include <doctest/doctest.h>

#include "validation/published.h"

using namespace ua::validation;

TEST_CASE("every series has its boot cell and the three steps")
{
	for (const char *k : {"5.17", "6.1-rc3"})
		for (bool aged : {false, true}) {
			REQUIRE(published_boot(k, aged));
			unsigned steps = 0;
			for (const published_cell &c : published_cells)
				steps += c.kernel == k && c.aged == aged && c.instances != 0;
			CHECK(steps == 3);
		}
	CHECK(published_boot("5.18", false) == nullptr);
}

TEST_CASE("growth is since the series' own boot")
{
	/* v5.17 fresh, 1024: 884572 - 87900 kB; 5242880 - 3145728 kB = two 1 GiB pages */
	const published_growth g = growth_of(published_cells[2]);
	CHECK(g.dm_4k_kb == 796672);
	CHECK(g.splits_1g == 2);
	/* v5.17 aged, 2048: 2340700 - 94044 kB; 6291456 - 2097152 kB = four */
	const published_growth a = growth_of(published_cells[11]);
	CHECK(a.dm_4k_kb == 2246656);
	CHECK(a.splits_1g == 4);
	/* the boot cell itself grew by nothing */
	CHECK(growth_of(published_cells[0]).dm_4k_kb == 0);
}

TEST_CASE("v6.1-rc3 grows by nothing, with figures or without")
{
	for (const published_cell &c : published_cells) {
		if (c.kernel != "6.1-rc3")
			continue;
		CHECK(growth_of(c).dm_4k_kb == 0);
		CHECK(growth_of(c).splits_1g == 0);
		CHECK(c.has_figures == !c.aged);
	}
}
