// SPDX-License-Identifier: MIT
/*
 * replay/kernel_release.h - kernel releases on the command line and in the
 * listings' sources.
 *
 *   --kernel 5.17|6.1|6.6|6.15|6.18   the release every peer follows (default
 *                                     the newest, peers/release.h)
 *   --allocator NAME@X.Y[-rc[N]]      one peer at one release, beside others
 *                                     (execmem@6.13-rc and execmem@6.18)
 *
 * parse_release() reads "X.Y", "X.Y-rcN" or "X.Y-rc" into
 * peers::linux_version. A bare "-rc" is -rc1, the first candidate (what the
 * merge window brought); candidates sort before their release, 6.15-rc1 <
 * 6.15-rc7 < 6.15, so a peer at 6.15-rc has what 6.15 merged
 * (peers/release.h: release_at()).
 * source_kernel() finds the release a listing came from in a sentence such
 * as "Debian 11 KVM guest, kernel 5.10" or "NixOS desktop, Linux 6.9" (the
 * machine column of workloads/SOURCES.md): the first "kernel X.Y" or
 * "Linux X.Y"; "kernel 6.x" names no release and gives none.
 */
#pragma once

#include <cctype>
#include <cstdint>
#include <string>
#include <string_view>

#include "peers/release.h"

namespace ua::replay {

using peers::linux_version;

/* The releases --kernel accepts: the ones the peers' behaviours change at that shipped as x86 defaults. */
inline constexpr linux_version kernel_choices[] = {peers::v5_17, peers::v6_1, peers::v6_6, peers::v6_15, peers::v6_18};
inline constexpr const char *kernel_choices_text = "5.17, 6.1, 6.6, 6.15 or 6.18";

namespace detail {

inline bool parse_small(std::string_view s, unsigned &v) noexcept
{
	if (s.empty() || s.size() > 3)
		return false;
	v = 0;
	for (char c : s) {
		if (c < '0' || c > '9')
			return false;
		v = v * 10 + unsigned(c - '0');
	}
	return true;
}

/* The N of "-rcN" (1..999), or 1 for a bare "-rc"; false for anything else. */
inline bool parse_rc(std::string_view s, unsigned &rc) noexcept
{
	if (s.empty()) {
		rc = 1;
		return true;
	}
	return parse_small(s, rc) && rc >= 1;
}

}  // namespace detail

/* "6.13-rc" -> 6.13-rc1, "6.15-rc5" -> 6.15-rc5, "6.15" -> 6.15; false for anything else (no patch level). */
inline bool parse_release(std::string_view s, linux_version &v) noexcept
{
	unsigned rc = 0;
	if (const auto dash = s.find("-rc"); dash != std::string_view::npos) {
		if (!detail::parse_rc(s.substr(dash + 3), rc))
			return false;
		s = s.substr(0, dash);
	}
	const auto dot = s.find('.');
	if (dot == std::string_view::npos)
		return false;
	unsigned major = 0, minor = 0;
	if (!detail::parse_small(s.substr(0, dot), major) || !detail::parse_small(s.substr(dot + 1), minor) ||
	    major < 2 || major > 99)
		return false;
	v = linux_version{major, minor, rc};
	return true;
}

/* A --kernel value: one of kernel_choices. */
inline bool parse_kernel_choice(std::string_view s, linux_version &v) noexcept
{
	linux_version k;
	if (!parse_release(s, k))
		return false;
	for (const linux_version &c : kernel_choices)
		if (c == k) {
			v = k;
			return true;
		}
	return false;
}

/* The release named in a description ("... kernel 5.10", "Linux 6.15-rc5", "6.15-rc" is -rc1), or {} when none is. */
inline linux_version source_kernel(std::string_view text) noexcept
{
	for (std::string_view word : {std::string_view("kernel "), std::string_view("Linux ")}) {
		for (std::size_t at = text.find(word); at != std::string_view::npos; at = text.find(word, at + 1)) {
			std::size_t i = at + word.size(), j = i;
			while (j < text.size() && (std::isdigit(static_cast<unsigned char>(text[j])) || text[j] == '.'))
				j++;
			std::string_view num = text.substr(i, j - i);
			if (auto second = num.find('.', num.find('.') + 1); second != std::string_view::npos)
				num = num.substr(0, second); /* 5.10.0: the release is 5.10 */
			unsigned rc = 0;
			if (text.substr(j, 3) == "-rc") {
				std::size_t k = j + 3;
				while (k < text.size() && std::isdigit(static_cast<unsigned char>(text[k])))
					k++;
				if (!detail::parse_rc(text.substr(j + 3, k - j - 3), rc))
					rc = 0; /* "-rc0", "-rc1234": not a candidate the kernel tags */
			}
			linux_version v;
			if (parse_release(num, v)) {
				v.rc = rc;
				return v;
			}
		}
	}
	return {};
}

}  // namespace ua::replay
