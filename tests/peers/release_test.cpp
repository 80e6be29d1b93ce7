// SPDX-License-Identifier: MIT
/* Tests for bench/peers/release.h: release order and the change point a peer follows. */
#include <doctest/doctest.h>

#include "peers/release.h"

using namespace ua::peers;

TEST_CASE("release: every -rc sorts before its release, releases by major then minor")
{
	CHECK(v6_13_rc < v6_13);
	CHECK(linux_version{6, 12} < v6_13_rc);
	CHECK(v5_18_rc < v5_18);
	CHECK(v5_17 < v5_18_rc);
	CHECK(v5_18 < v6_0);
	CHECK(v6_2 < v6_10); /* numerically, not as strings */
	CHECK(v6_18 == newest_release);
	CHECK(v6_13_rc.str() == "6.13-rc");
	CHECK(v6_15.str() == "6.15");
}

TEST_CASE("release: a peer follows the newest change point at or before the kernel, none before the first")
{
	constexpr linux_version points[] = {v6_13_rc, v6_13, v6_15, v6_17};
	CHECK(release_at(points, v6_18) == v6_17);
	CHECK(release_at(points, v6_17) == v6_17);
	CHECK(release_at(points, linux_version{6, 16}) == v6_15);
	CHECK(release_at(points, linux_version{6, 14}) == v6_13);
	CHECK(release_at(points, v6_13_rc) == v6_13_rc);
	CHECK(release_at(points, v6_6) == linux_version{});
	static_assert(release_at(points, v6_15) == v6_15);
}
