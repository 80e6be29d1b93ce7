// SPDX-License-Identifier: MIT
/*
 * mapping/text_lines.h - reading the kernel's text files line by line:
 * /proc/iomem (memory_map.h), /proc/self/smaps and /proc/self/status
 * (smaps.h), and the figures saved from them. No allocation, no exceptions:
 * the simulation includes it through memory_map.h.
 */
#pragma once

#include <string_view>

namespace ua {

/*
 * The first line of text, without its '\n'; text moves past it (to empty
 * after the last line, which may lack the '\n'). A '\r' is left in place.
 */
constexpr std::string_view next_line(std::string_view &text) noexcept
{
	const std::size_t nl = text.find('\n');
	std::string_view line = text.substr(0, nl);
	text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
	return line;
}

}  // namespace ua
