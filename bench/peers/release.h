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
 * Versions sort as the kernel's tags do, every -rc of a release before the
 * release itself (6.13-rc < 6.13): a behaviour can be dropped before a release
 * ships, as x86 did with execmem's ROX cache (a9bbe3413331, in v6.13).
 * bench/replay/kernel_release.h parses `--kernel` into the same
 * major/minor/rc triple.
 */
#pragma once

#include <cstdint>
#include <string>

namespace ua::peers {

struct linux_version {
	unsigned major = 0, minor = 0;
	bool rc = false; /* a release candidate, before the release */

	constexpr std::uint32_t key() const noexcept { return (major << 16) | (minor << 1) | (rc ? 0u : 1u); }
	friend constexpr bool operator==(linux_version a, linux_version b) noexcept { return a.key() == b.key(); }
	friend constexpr bool operator<(linux_version a, linux_version b) noexcept { return a.key() < b.key(); }
	friend constexpr bool operator<=(linux_version a, linux_version b) noexcept { return a.key() <= b.key(); }
	friend constexpr bool operator>=(linux_version a, linux_version b) noexcept { return a.key() >= b.key(); }

	std::string str() const { return std::to_string(major) + "." + std::to_string(minor) + (rc ? "-rc" : ""); }
};

/* The releases the peers tell apart (docs/peers.md gives the commit behind each use). */
inline constexpr linux_version v5_17{5, 17};
inline constexpr linux_version v5_18_rc{5, 18, true}; /* -rc1/-rc2: huge vmalloc for module_alloc */
inline constexpr linux_version v5_18{5, 18};
inline constexpr linux_version v6_0{6, 0};
inline constexpr linux_version v6_1{6, 1};
inline constexpr linux_version v6_2{6, 2};
inline constexpr linux_version v6_6{6, 6};
inline constexpr linux_version v6_10{6, 10};
inline constexpr linux_version v6_13_rc{6, 13, true}; /* x86 ROX cache, disabled before v6.13 */
inline constexpr linux_version v6_13{6, 13};
inline constexpr linux_version v6_15{6, 15};
inline constexpr linux_version v6_17{6, 17};
inline constexpr linux_version v6_18{6, 18};

/* The newest release the peers know; every config defaults to it. */
inline constexpr linux_version newest_release = v6_18;

/*
 * The change point of `points` (oldest first) that a peer follows at `k`:
 * the newest one at or before k, or a default-constructed release (0.0) when
 * k is older than all of them.
 */
template <std::size_t N>
constexpr linux_version release_at(const linux_version (&points)[N], linux_version k) noexcept
{
	linux_version r{};
	for (const linux_version &p : points)
		if (p <= k)
			r = p;
	return r;
}

}  // namespace ua::peers
