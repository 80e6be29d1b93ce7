// SPDX-License-Identifier: MIT
/*
 * peers/release.h - which kernel release a peer follows.
 *
 * A peer reproduces a design as a named release shipped it: every behaviour
 * that changed between releases is switched by the release in the peer's
 * config, so two instances of one peer at two releases can run side by side
 * (configs are per instance; nothing here is global). Each peer lists its
 * change points, oldest first, as `releases`: the release it follows at a
 * kernel K is the newest change point at or before K (a behaviour holds until
 * the next change), and a peer whose first change point is after K was not in
 * that kernel. Designs that were never merged (the 2023 __GFP_UNMAPPED RFC,
 * the 2026 freetype RFC, guest_memfd's NO_DIRECT_MAP series) have no kernel
 * release; they say so with `proposal = true` and are the same at every K.
 *
 * Versions sort as the kernel's tags do: X.Y-rc1 < X.Y-rc2 < ... < X.Y <
 * X.(Y+1)-rc1. A bare "X.Y-rc" is X.Y-rc1, the first candidate: what X.Y's
 * merge window brought.
 *
 * A change point is the tag a behaviour first appeared at. Nearly every
 * behaviour the peers follow came in a merge window, so it is listed as the
 * release X.Y and holds from X.Y-rc1 on: at 6.15-rc2 execmem already has what
 * 925f42645118 brought for 6.15. Where a release's candidates differed from
 * what it shipped, the list says so with an -rc point of that release, and
 * then the release X.Y itself holds only from X.Y: execmem's ROX cache was in
 * 6.13-rc1 and disabled after the last candidate (a9bbe3413331, in v6.13), so
 * its points are 6.13-rc1 (cache) and 6.13 (none); bpf_prog_pack's huge pack
 * was in 5.18-rc1/-rc2 and gone at 5.18-rc3 (559089e0a93d), so its points are
 * 5.18-rc1 and 5.18-rc3. bench/replay/kernel_release.h parses `--kernel`
 * and NAME@X.Y[-rc[N]] into the same major/minor/rc triple.
 */
#pragma once

#include <cstdint>
#include <string>

namespace ua::peers {

struct linux_version {
	unsigned major = 0, minor = 0;
	unsigned rc = 0; /* 0: the release X.Y; N >= 1: its candidate X.Y-rcN, before it */

	/* Sort key: a release after all of its candidates (rc 0 sorts as the largest). */
	constexpr std::uint64_t key() const noexcept
	{
		return (std::uint64_t(major) << 40) | (std::uint64_t(minor) << 20) | (rc == 0 ? 0xfffffu : rc);
	}
	constexpr bool is_rc() const noexcept { return rc != 0; }
	/* X.Y of a candidate or release. */
	constexpr linux_version release() const noexcept { return {major, minor, 0}; }
	friend constexpr bool operator==(linux_version a, linux_version b) noexcept { return a.key() == b.key(); }
	friend constexpr bool operator<(linux_version a, linux_version b) noexcept { return a.key() < b.key(); }
	friend constexpr bool operator<=(linux_version a, linux_version b) noexcept { return a.key() <= b.key(); }
	friend constexpr bool operator>=(linux_version a, linux_version b) noexcept { return a.key() >= b.key(); }

	std::string str() const
	{
		return std::to_string(major) + "." + std::to_string(minor) + (rc ? "-rc" + std::to_string(rc) : "");
	}
};

/* The releases the peers tell apart (docs/peers.md gives the commit behind each use). */
inline constexpr linux_version v5_17{5, 17};
inline constexpr linux_version v5_18_rc{5, 18, 1};  /* -rc1/-rc2: huge vmalloc for module_alloc */
inline constexpr linux_version v5_18_rc3{5, 18, 3}; /* 559089e0a93d: huge vmalloc opt-in, one-page packs */
inline constexpr linux_version v5_18{5, 18};
inline constexpr linux_version v6_0{6, 0};
inline constexpr linux_version v6_1{6, 1};
inline constexpr linux_version v6_2{6, 2};
inline constexpr linux_version v6_6{6, 6};
inline constexpr linux_version v6_10{6, 10};
inline constexpr linux_version v6_13_rc{6, 13, 1}; /* -rc1 to -rc7: x86 ROX cache, disabled before v6.13 */
inline constexpr linux_version v6_13{6, 13};
inline constexpr linux_version v6_15{6, 15};
inline constexpr linux_version v6_17{6, 17};
inline constexpr linux_version v6_18{6, 18};

/* The newest release the peers know; every config defaults to it. */
inline constexpr linux_version newest_release = v6_18;

/*
 * The first tag at which change point `p` of `points` holds: p itself, or
 * X.Y-rc1 for a release X.Y when `points` lists no candidate of X.Y (the
 * behaviour came in the merge window, see above).
 */
template <std::size_t N>
constexpr linux_version first_tag(const linux_version (&points)[N], linux_version p) noexcept
{
	if (p.is_rc())
		return p;
	for (const linux_version &q : points)
		if (q.is_rc() && q.release() == p)
			return p;
	return {p.major, p.minor, 1};
}

/*
 * The change point of `points` (oldest first) that a peer follows at `k`:
 * the newest one holding at k (first_tag(p) <= k), or a default-constructed
 * release (0.0) when k is older than all of them.
 */
template <std::size_t N>
constexpr linux_version release_at(const linux_version (&points)[N], linux_version k) noexcept
{
	linux_version r{};
	for (const linux_version &p : points)
		if (first_tag(points, p) <= k)
			r = p;
	return r;
}

}  // namespace ua::peers
