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
	CHECK(v6_13_rc.str() == "6.13-rc1");
	CHECK(v6_15.str() == "6.15");
	/* Candidates in number order, all before their release, all after the release before. */
	constexpr linux_version rc1{6, 15, 1}, rc2{6, 15, 2}, rc10{6, 15, 10};
	static_assert(rc1 < rc2 && rc2 < rc10 && rc10 < v6_15);
	CHECK(linux_version{6, 14} < rc1);
	CHECK(!(v6_15 < rc10));
	CHECK(v6_15 < linux_version{6, 16, 1});
	CHECK(rc10.str() == "6.15-rc10");
	CHECK(rc10.release() == v6_15);
	CHECK(rc1.is_rc());
	CHECK(!v6_15.is_rc());
}

TEST_CASE("release: a release's candidates follow what its merge window brought, unless an -rc point says otherwise")
{
	/* execmem's points: 6.13-rc1 (ROX cache), 6.13 (none, after the last candidate), 6.15, 6.17. */
	constexpr linux_version points[] = {v6_13_rc, v6_13, v6_15, v6_17};
	CHECK(first_tag(points, v6_15) == linux_version{6, 15, 1});
	CHECK(first_tag(points, v6_13) == v6_13); /* 6.13's candidates are the -rc point's */
	CHECK(first_tag(points, v6_13_rc) == v6_13_rc);
	CHECK(release_at(points, linux_version{6, 15, 1}) == v6_15);
	CHECK(release_at(points, linux_version{6, 15, 7}) == v6_15);
	CHECK(release_at(points, linux_version{6, 17, 3}) == v6_17);
	CHECK(release_at(points, linux_version{6, 13, 7}) == v6_13_rc);
	CHECK(release_at(points, linux_version{6, 14, 1}) == v6_13);
	CHECK(release_at(points, linux_version{6, 12}) == linux_version{});
	/* bpf_prog_pack's: the huge pack of 5.18-rc1/-rc2, one-page packs from 5.18-rc3 (559089e0a93d), shipped in 5.18. */
	constexpr linux_version pack[] = {v5_18_rc, v5_18_rc3, v6_0, v6_2};
	CHECK(release_at(pack, linux_version{5, 18, 2}) == v5_18_rc);
	CHECK(release_at(pack, linux_version{5, 18, 3}) == v5_18_rc3);
	CHECK(release_at(pack, v5_18) == v5_18_rc3);
	CHECK(release_at(pack, linux_version{6, 0, 1}) == v6_0);
	CHECK(release_at(pack, linux_version{6, 1, 1}) == v6_0);
	CHECK(release_at(pack, linux_version{6, 2, 4}) == v6_2);
	CHECK(release_at(pack, v5_17) == linux_version{});
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
