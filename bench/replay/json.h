// SPDX-License-Identifier: MIT
/*
 * replay/json.h - the two JSON values the reports write by hand: a string
 * (quoted, with '"', '\' and control characters escaped; the names and
 * labels written are ASCII) and a number (null when not finite, since JSON
 * has no NaN or infinity). Shared by replay/report.h (and through it
 * live/live_report.h) and validation/validation_report.h.
 */
#pragma once

#include <cmath>
#include <cstdio>
#include <string>

namespace ua::replay {

inline std::string json_string(const std::string &s)
{
	std::string o = "\"";
	for (char c : s) {
		if (c == '"' || c == '\\') {
			o += '\\';
			o += c;
		} else if (static_cast<unsigned char>(c) < 0x20) {
			char b[8];
			std::snprintf(b, sizeof b, "\\u%04x", unsigned(c));
			o += b;
		} else {
			o += c;
		}
	}
	return o + "\"";
}

inline std::string json_number(double v)
{
	if (!std::isfinite(v))
		return "null";
	char b[48];
	std::snprintf(b, sizeof b, "%.6g", v);
	return b;
}

}  // namespace ua::replay
